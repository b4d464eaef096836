//! The crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong while making, reading or using certificates.
///
/// Each message says its cause in words; no variant exposes it again through `source()`.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("Failed reading {path:?}: {cause}")]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        cause: std::io::Error,
    },

    /// A file could not be written (or renamed into place).
    #[error("Failed writing {path:?}: {cause}")]
    Write {
        /// The file that could not be written.
        path: PathBuf,
        /// The underlying I/O error.
        cause: std::io::Error,
    },

    /// rcgen refused to build the certificate.
    #[error("Failed generating certificate for {hostname:?}: {cause}")]
    Generate {
        /// The host name the certificate was for.
        hostname: String,
        /// rcgen's reason.
        cause: rcgen::Error,
    },

    /// The PEM text holds no `CERTIFICATE` block.
    #[error("No certificate found in PEM data")]
    NoCertificate,

    /// The PEM text holds no private key block (`EC PRIVATE KEY`, `PRIVATE KEY` or `RSA PRIVATE KEY`).
    #[error("No private key found in PEM data")]
    NoPrivateKey,

    /// A PEM block was found but its contents could not be decoded.
    #[error("Malformed PEM data: {cause}")]
    Pem {
        /// The PEM reader's reason.
        cause: std::io::Error,
    },

    /// The bytes are not a parseable X.509 certificate.
    #[error("Cannot parse certificate: {cause}")]
    Certificate {
        /// The X.509 parser's reason.
        cause: x509_parser::error::X509Error,
    },

    /// The private key is in a format or algorithm rustls cannot use.
    #[error("Cannot use private key: {cause}")]
    PrivateKey {
        /// rustls' reason.
        cause: rustls::Error,
    },

    /// The private key does not belong to the certificate it was paired with.
    #[error("Private key does not match certificate {fingerprint}")]
    KeyMismatch {
        /// Fingerprint of the certificate the key was paired with.
        fingerprint: String,
    },

    /// A freshly generated key could not be re-encoded as SEC1 (`EC PRIVATE KEY`).
    #[error("Cannot encode private key as SEC1: unexpected PKCS#8 layout")]
    Sec1Encoding,

    /// A pinned fingerprint is not 64 hexadecimal characters.
    #[error("Invalid certificate fingerprint {fingerprint:?}: expected 64 hexadecimal characters")]
    InvalidFingerprint {
        /// The fingerprint as given.
        fingerprint: String,
    },

    /// The server presented a certificate other than the pinned one.
    ///
    /// Pinning verifiers hand this to rustls, so it surfaces inside a
    /// `rustls::Error::InvalidCertificate(CertificateError::Other(..))`.
    #[error("The server presented certificate {actual}, not the expected certificate {expected}")]
    PinMismatch {
        /// Fingerprint of the pinned certificate.
        expected: String,
        /// Fingerprint of the certificate the server presented.
        actual: String,
    },

    /// rustls rejected the configuration (for example the certificate chain or key).
    #[error("Cannot build TLS configuration: {cause}")]
    Config {
        /// rustls' reason.
        cause: rustls::Error,
    },
}
