use base64::Engine;
use serde::{Deserialize, Serialize};

/// Why a token string was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not standard base64.
    #[error("{0}")]
    Base64(#[from] base64::DecodeError),
    /// Not the expected JSON.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// A required field is empty.
    #[error("No {field} in join token")]
    Missing {
        /// The JSON field name.
        field: &'static str,
    },
}

/// A cluster join token: standard padded base64 of compact JSON, fields in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinToken {
    /// The name the joining member will have.
    pub server_name: String,
    /// Fingerprint of the cluster certificate.
    pub fingerprint: String,
    /// Addresses of the online members.
    pub addresses: Vec<String>,
    /// 64 hex characters.
    pub secret: String,
    /// RFC 3339 with nanoseconds, UTC.
    pub expires_at: String,
}

impl JoinToken {
    /// The string users pass around.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("strings always serialise");
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    /// Parses a token string, refusing one with an empty required field.
    pub fn decode(s: &str) -> Result<Self, TokenError> {
        let bytes = crate::decode_base64(s)?;
        let t: JoinToken = serde_json::from_slice(&bytes)?;
        if t.server_name.is_empty() {
            return Err(TokenError::Missing {
                field: "server_name",
            });
        }
        if t.addresses.is_empty() {
            return Err(TokenError::Missing { field: "addresses" });
        }
        if t.secret.is_empty() {
            return Err(TokenError::Missing { field: "secret" });
        }
        if t.fingerprint.is_empty() {
            return Err(TokenError::Missing {
                field: "fingerprint",
            });
        }
        Ok(t)
    }
}

/// A certificate-add token from `lxc config trust add`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateAddToken {
    /// The name the client certificate will get.
    pub client_name: String,
    /// Fingerprint of the server certificate.
    pub fingerprint: String,
    /// Addresses of the server.
    pub addresses: Vec<String>,
    /// 64 hex characters.
    pub secret: String,
    /// RFC 3339 expiry, or empty.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub expires_at: String,
}

impl CertificateAddToken {
    /// The string users pass around.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("strings always serialise");
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    /// Parses a token string.
    pub fn decode(s: &str) -> Result<Self, TokenError> {
        let bytes = crate::decode_base64(s)?;
        let t: CertificateAddToken = serde_json::from_slice(&bytes)?;
        if t.client_name.is_empty() || t.secret.is_empty() {
            return Err(TokenError::Missing {
                field: "client_name",
            });
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_token_round_trips_in_lxd_layout() {
        let t = JoinToken {
            server_name: "node2".into(),
            fingerprint: "ab".into(),
            addresses: vec!["127.0.0.1:8443".into()],
            secret: "cd".into(),
            expires_at: "2026-11-26T16:47:49.47701206Z".into(),
        };
        let s = t.encode();
        let json = base64::engine::general_purpose::STANDARD
            .decode(&s)
            .unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"server_name":"node2","fingerprint":"ab","addresses":["127.0.0.1:8443"],"secret":"cd","expires_at":"2026-11-26T16:47:49.47701206Z"}"#
        );
        assert_eq!(JoinToken::decode(&s).unwrap(), t);
    }

    #[test]
    fn bad_tokens_are_refused() {
        assert!(JoinToken::decode("not base64!").is_err());
        let empty = base64::engine::general_purpose::STANDARD.encode(
            r#"{"server_name":"","fingerprint":"a","addresses":["x"],"secret":"s","expires_at":""}"#,
        );
        assert!(matches!(
            JoinToken::decode(&empty),
            Err(TokenError::Missing {
                field: "server_name"
            })
        ));
    }
}
