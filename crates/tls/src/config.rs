//! rustls configurations and the custom verifiers they need.
//!
//! LXD's trust model does not fit web PKI: members present self-signed
//! certificates whose only extended key usage is serverAuth, even when they
//! act as clients, and are reached by IP address while their SAN holds a host
//! name. So neither side validates a chain or a name here. What every verifier
//! still does is check the TLS 1.3 handshake signature against the presented
//! certificate, which proves the peer holds that certificate's key; who the
//! peer *is* is then decided by fingerprint.
//!
//! ```text
//!   server side                              client side
//!   AnyClientCert: request, don't require,   ServerCertCheck:
//!   accept any cert, verify signature        Pinned DER | Pinned fingerprint | Capture
//!        |                                         |
//!   peer_fingerprint() -> caller decides     mismatch -> TlsError::PinMismatch
//! ```

use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, CommonState, DigitallySignedStruct, DistinguishedName,
    OtherError, ServerConfig, SignatureScheme,
};

use crate::{der_to_pem, fingerprint_der, pem_to_der, CertKey, TlsError};

/// ALPN protocol id of HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";

/// ALPN protocol id of HTTP/1.1.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The ring provider, built per configuration so that nothing depends on a
/// process-wide default being installed.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config_err(source: rustls::Error) -> TlsError {
    TlsError::Config { cause: source }
}

/// The HTTPS listener's configuration: TLS 1.3 only, ALPN `h2` then
/// `http/1.1`, serving `cert`, and requesting (not requiring) a client
/// certificate that is accepted whatever it is. Read the client's identity
/// afterwards with [`peer_fingerprint`].
pub fn server_config(cert: &CertKey) -> Result<Arc<ServerConfig>, TlsError> {
    server_config_alpn(cert, &[ALPN_H2, ALPN_HTTP11])
}

/// Like [`server_config`], offering the given ALPN protocols in order of
/// preference (an empty list disables ALPN).
pub fn server_config_alpn(cert: &CertKey, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let verifier = Arc::new(AnyClientCert {
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_err)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(cert.cert_chain().to_vec(), cert.key_der().clone_key())
        .map_err(config_err)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Fingerprint of the peer's end-entity certificate, or `None` if the peer
/// presented none (or the handshake has not finished). Works on both ends:
/// pass a `ServerConnection` or `ClientConnection`, which dereference to
/// [`CommonState`].
pub fn peer_fingerprint(conn: &CommonState) -> Option<String> {
    conn.peer_certificates()?
        .first()
        .map(|cert| fingerprint_der(cert))
}

/// DER of the peer's end-entity certificate, or `None` if it presented none.
/// `POST /1.0/certificates` with an empty `certificate` trusts this one.
pub fn peer_certificate(conn: &CommonState) -> Option<Vec<u8>> {
    conn.peer_certificates()?
        .first()
        .map(|cert| cert.as_ref().to_vec())
}

/// A client configuration that accepts the server if and only if its
/// end-entity certificate is byte-identical to `pinned_server_cert_pem`
/// (the first certificate in that PEM). The server name is ignored: members
/// are dialled by IP while their SAN holds a host name.
///
/// Presents `client` (for member-to-member calls, the member's `server.crt`)
/// when the server asks for a certificate. TLS 1.3 only; ALPN is `http/1.1`,
/// which callers may replace through the public `alpn_protocols` field.
pub fn pinned_client_config(
    pinned_server_cert_pem: &str,
    client: Option<&CertKey>,
) -> Result<ClientConfig, TlsError> {
    let der = pem_to_der(pinned_server_cert_pem)?;
    client_config(
        ServerCertCheck::Der {
            fingerprint: fingerprint_der(&der),
            der,
        },
        client,
    )
}

/// Like [`pinned_client_config`], but pins the server by the fingerprint of its
/// certificate, as a join token carries it. Upper-case hex and colons are
/// accepted.
pub fn fingerprint_pinned_client_config(
    fingerprint: &str,
    client: Option<&CertKey>,
) -> Result<ClientConfig, TlsError> {
    let normalized: String = fingerprint
        .trim()
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if normalized.len() != 64 || !normalized.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(TlsError::InvalidFingerprint {
            fingerprint: fingerprint.to_string(),
        });
    }
    client_config(
        ServerCertCheck::Fingerprint {
            fingerprint: normalized,
        },
        client,
    )
}

/// Like [`fingerprint_pinned_client_config`], accepting a server that presents any one of
/// `fingerprints` (lower-case hex, as [`crate::fingerprint_der`] gives them). Members pin the
/// cluster certificate this way while a rotation is under way: the one they serve, and the one
/// staged or just replaced.
pub fn fingerprints_pinned_client_config(
    fingerprints: &[String],
    client: Option<&CertKey>,
) -> Result<ClientConfig, TlsError> {
    client_config(
        ServerCertCheck::AnyOf {
            fingerprints: fingerprints.to_vec(),
        },
        client,
    )
}

/// A client configuration that accepts any server certificate and records it
/// in the returned [`CapturedCert`], so the caller can show its fingerprint
/// before trusting it (as `lxc remote add` and `lxd init` do). The handshake
/// signature is still verified, so the recorded certificate is one the server
/// holds the key for.
///
/// Session resumption is off, so every connection made with this
/// configuration goes through a full handshake and records its certificate.
pub fn capture_client_config(
    client: Option<&CertKey>,
) -> Result<(ClientConfig, Arc<CapturedCert>), TlsError> {
    let captured = Arc::new(CapturedCert::default());
    let mut config = client_config(ServerCertCheck::Capture(Arc::clone(&captured)), client)?;
    config.resumption = rustls::client::Resumption::disabled();
    Ok((config, captured))
}

/// The server certificate seen by a [`capture_client_config`] connection.
#[derive(Debug, Default)]
pub struct CapturedCert {
    seen: Mutex<Option<Vec<u8>>>,
}

impl CapturedCert {
    /// DER of the last end-entity certificate seen, if any handshake got that far.
    pub fn der(&self) -> Option<Vec<u8>> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// PEM of the last certificate seen (see [`der_to_pem`]).
    pub fn pem(&self) -> Option<String> {
        self.der().map(|der| der_to_pem(&der))
    }

    /// Fingerprint of the last certificate seen.
    pub fn fingerprint(&self) -> Option<String> {
        self.der().map(|der| fingerprint_der(&der))
    }

    fn record(&self, der: &[u8]) {
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(der.to_vec());
    }
}

fn client_config(
    check: ServerCertCheck,
    client: Option<&CertKey>,
) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let verifier = Arc::new(ServerCertCheckVerifier {
        check,
        algorithms: provider.signature_verification_algorithms,
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_err)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match client {
        Some(cert) => builder
            .with_client_auth_cert(cert.cert_chain().to_vec(), cert.key_der().clone_key())
            .map_err(config_err)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(config)
}

/// Server-side verifier: asks for a client certificate, accepts its absence,
/// and accepts any certificate whose handshake signature checks out.
#[derive(Debug)]
struct AnyClientCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // An empty CA list makes Go and rustls clients offer whatever
        // certificate they have.
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Trust is decided later, by fingerprint, by whoever reads
        // `peer_fingerprint`.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// What a client checks about the server's end-entity certificate.
#[derive(Debug)]
enum ServerCertCheck {
    /// Must equal these bytes.
    Der { der: Vec<u8>, fingerprint: String },
    /// Must have this (normalised) fingerprint.
    Fingerprint { fingerprint: String },
    /// Must have one of these fingerprints.
    AnyOf { fingerprints: Vec<String> },
    /// Anything goes; remember it.
    Capture(Arc<CapturedCert>),
}

/// Client-side verifier: checks the server certificate against a pin (or
/// records it) and verifies the handshake signature, ignoring chain and name.
#[derive(Debug)]
struct ServerCertCheckVerifier {
    check: ServerCertCheck,
    algorithms: WebPkiSupportedAlgorithms,
}

fn pin_mismatch(expected: &str, actual: &[u8]) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
        TlsError::PinMismatch {
            expected: expected.to_string(),
            actual: fingerprint_der(actual),
        },
    ))))
}

impl ServerCertVerifier for ServerCertCheckVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = end_entity.as_ref();
        match &self.check {
            ServerCertCheck::Der { der, fingerprint } => {
                if presented != der.as_slice() {
                    return Err(pin_mismatch(fingerprint, presented));
                }
            }
            ServerCertCheck::Fingerprint { fingerprint } => {
                if fingerprint_der(presented) != *fingerprint {
                    return Err(pin_mismatch(fingerprint, presented));
                }
            }
            ServerCertCheck::AnyOf { fingerprints } => {
                if !fingerprints.contains(&fingerprint_der(presented)) {
                    return Err(pin_mismatch(&fingerprints.join(" or "), presented));
                }
            }
            ServerCertCheck::Capture(captured) => captured.record(presented),
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_pins_are_normalised_or_refused() {
        let good = "ab".repeat(32);
        let cases = [
            (good.clone(), true),
            (good.to_uppercase(), true),
            (format!(" {good}\n"), true),
            (
                good.as_bytes()
                    .chunks(2)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>()
                    .join(":"),
                true,
            ),
            ("ab".repeat(31), false),
            (format!("{}zz", "ab".repeat(31)), false),
            (String::new(), false),
        ];
        for (input, ok) in cases {
            let result = fingerprint_pinned_client_config(&input, None);
            match (ok, result) {
                (true, Ok(_)) => {}
                (false, Err(TlsError::InvalidFingerprint { fingerprint })) => {
                    assert_eq!(fingerprint, input)
                }
                (want, got) => panic!("{input:?}: want ok={want}, got {got:?}"),
            }
        }
    }
}
