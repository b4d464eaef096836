//! Certificates and TLS configuration for rxd.
//!
//! This crate owns everything about X.509 and rustls: generating LXD-shaped
//! certificates (self-signed ECDSA P-384), reading and atomically writing
//! `server.crt`/`server.key` and `cluster.crt`/`cluster.key`, fingerprints
//! (SHA-256 of the DER, lower-case hex), PEM/DER conversion, describing a
//! certificate for display, and the rustls configurations with their custom
//! verifiers: a server that accepts any client certificate and leaves the
//! decision to the caller, and clients that pin the server by certificate or
//! fingerprint, or record what it presented.
//!
//! It deliberately knows nothing of HTTP, of the trust store, of which
//! fingerprints are trusted, or of cluster membership: it answers "which
//! certificate did the peer present", never "may this peer do that". It does
//! no network I/O itself and does not depend on a process-wide rustls
//! crypto provider; every configuration is built on ring explicitly.

#![deny(missing_docs)]

mod cert;
mod config;
mod error;
mod info;

pub use cert::{
    der_to_pem, fingerprint_der, fingerprint_pem, generate, generate_client, load_or_generate,
    pem_to_der, write_atomic, CertKey, CERT_MODE, KEY_MODE,
};
pub use config::{
    capture_client_config, fingerprint_pinned_client_config, fingerprints_pinned_client_config,
    peer_certificate, peer_fingerprint, pinned_client_config, server_config, server_config_alpn,
    CapturedCert, ALPN_H2, ALPN_HTTP11,
};
pub use error::TlsError;
pub use info::CertInfo;
