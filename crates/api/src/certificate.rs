use serde::{Deserialize, Serialize};

/// The writable part of a trusted certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CertificatePut {
    /// Name.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub name: String,
    /// `client` or `server`.
    #[serde(rename = "type", default, deserialize_with = "crate::nullable")]
    pub cert_type: String,
    /// Limited to `projects`.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub restricted: bool,
    /// Projects a restricted certificate may use.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub projects: Vec<String>,
    /// PEM.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub certificate: String,
    /// Free text.
    #[serde(
        default,
        deserialize_with = "crate::nullable",
        skip_serializing_if = "String::is_empty"
    )]
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
    #[serde(default, deserialize_with = "crate::nullable")]
    pub name: String,
    /// `client` or `server`.
    #[serde(rename = "type", default, deserialize_with = "crate::nullable")]
    pub cert_type: String,
    /// Limited to `projects`.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub restricted: bool,
    /// Projects a restricted certificate may use.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub projects: Option<Vec<String>>,
    /// Base64 DER without PEM armour; empty means "the TLS peer's certificate".
    #[serde(default, deserialize_with = "crate::nullable")]
    pub certificate: String,
    /// Trust password or token.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub password: String,
    /// LXD 5.21 sends tokens here.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub trust_token: String,
    /// Ask for a certificate-add token instead of adding a certificate.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub token: bool,
    /// Free text.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub description: String,
}
