use serde::{Deserialize, Serialize};

/// The writable part of a trusted certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CertificatePut {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// `client` or `server`.
    #[serde(rename = "type", default)]
    pub cert_type: String,
    /// Limited to `projects`.
    #[serde(default)]
    pub restricted: bool,
    /// Projects a restricted certificate may use.
    #[serde(default)]
    pub projects: Vec<String>,
    /// PEM.
    #[serde(default)]
    pub certificate: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// `GET /1.0/certificates/{fingerprint}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    /// Writable part.
    #[serde(flatten)]
    pub put: CertificatePut,
    /// SHA-256 of the DER.
    pub fingerprint: String,
}

/// `POST /1.0/certificates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CertificatesPost {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// `client` or `server`.
    #[serde(rename = "type", default)]
    pub cert_type: String,
    /// Limited to `projects`.
    #[serde(default)]
    pub restricted: bool,
    /// Projects a restricted certificate may use.
    #[serde(default)]
    pub projects: Option<Vec<String>>,
    /// Base64 DER without PEM armour; empty means "the TLS peer's certificate".
    #[serde(default)]
    pub certificate: String,
    /// Trust password or token.
    #[serde(default)]
    pub password: String,
    /// LXD 5.21 sends tokens here.
    #[serde(default)]
    pub trust_token: String,
    /// Ask for a certificate-add token instead of adding a certificate.
    #[serde(default)]
    pub token: bool,
    /// Free text.
    #[serde(default)]
    pub description: String,
}
