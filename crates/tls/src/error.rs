//! The crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong while making, reading or using certificates.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("Failed reading {path:?}: {source}")]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// A file could not be written (or renamed into place).
    #[error("Failed writing {path:?}: {source}")]
    Write {
        /// The file that could not be written.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// rcgen refused to build the certificate.
    #[error("Failed generating certificate for {hostname:?}: {source}")]
    Generate {
        /// The host name the certificate was for.
        hostname: String,
        /// rcgen's reason.
        source: rcgen::Error,
    },

    /// The PEM text holds no `CERTIFICATE` block.
    #[error("No certificate found in PEM data")]
    NoCertificate,

    /// The PEM text holds no private key block (`EC PRIVATE KEY`, `PRIVATE KEY` or `RSA PRIVATE KEY`).
    #[error("No private key found in PEM data")]
    NoPrivateKey,

    /// A PEM block was found but its contents could not be decoded.
    #[error("Malformed PEM data: {source}")]
    Pem {
        /// The PEM reader's reason.
        source: std::io::Error,
    },

    /// The bytes are not a parseable X.509 certificate.
    #[error("Cannot parse certificate: {source}")]
    Certificate {
        /// The X.509 parser's reason.
        source: x509_parser::error::X509Error,
    },

    /// The private key is in a format or algorithm rustls cannot use.
    #[error("Cannot use private key: {source}")]
    PrivateKey {
        /// rustls' reason.
        source: rustls::Error,
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
    #[error("Server certificate {actual} does not match the pinned certificate {expected}")]
    PinMismatch {
        /// Fingerprint of the pinned certificate.
        expected: String,
        /// Fingerprint of the certificate the server presented.
        actual: String,
    },

    /// rustls rejected the configuration (for example the certificate chain or key).
    #[error("Cannot build TLS configuration: {source}")]
    Config {
        /// rustls' reason.
        source: rustls::Error,
    },
}
