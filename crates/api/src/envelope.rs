use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The three kinds of envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseType {
    /// A finished request.
    Sync,
    /// A request that created an operation.
    Async,
    /// A failed request.
    Error,
}

/// The envelope around every `/1.0` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// sync, async or error.
    #[serde(rename = "type")]
    pub kind: ResponseType,
    /// "Success", "Operation created" or "".
    pub status: String,
    /// 200, 100 or 0.
    pub status_code: u16,
    /// URL of the operation for async responses.
    pub operation: String,
    /// The HTTP status of an error.
    pub error_code: u16,
    /// The error's sentence.
    pub error: String,
    /// The payload.
    pub metadata: serde_json::Value,
}

impl Response {
    /// A sync success carrying `metadata`.
    pub fn sync(metadata: serde_json::Value) -> Self {
        Response {
            kind: ResponseType::Sync,
            status: "Success".into(),
            status_code: 200,
            operation: String::new(),
            error_code: 0,
            error: String::new(),
            metadata,
        }
    }

    /// An async response for the operation at `url`.
    pub fn async_op(url: String, metadata: serde_json::Value) -> Self {
        Response {
            kind: ResponseType::Async,
            status: "Operation created".into(),
            status_code: 100,
            operation: url,
            error_code: 0,
            error: String::new(),
            metadata,
        }
    }

    /// An error with HTTP status `code`.
    pub fn error(code: u16, message: impl Into<String>) -> Self {
        Response {
            kind: ResponseType::Error,
            status: String::new(),
            status_code: 0,
            operation: String::new(),
            error_code: code,
            error: message.into(),
            metadata: serde_json::Value::Null,
        }
    }
}

/// The ETag of a writable object: SHA-256 hex of its JSON encoding followed by a newline, as
/// LXD computes it.
pub fn etag<T: Serialize>(writable: &T) -> String {
    let mut json = serde_json::to_vec(writable).expect("wire types always serialise");
    json.push(b'\n');
    hex::encode(Sha256::digest(&json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_envelope_matches_lxd() {
        let r = serde_json::to_string(&Response::error(404, "Cluster member not found")).unwrap();
        assert_eq!(
            r,
            r#"{"type":"error","status":"","status_code":0,"operation":"","error_code":404,"error":"Cluster member not found","metadata":null}"#
        );
    }

    #[test]
    fn sync_envelope_matches_lxd() {
        let r = serde_json::to_string(&Response::sync(serde_json::json!({}))).unwrap();
        assert_eq!(
            r,
            r#"{"type":"sync","status":"Success","status_code":200,"operation":"","error_code":0,"error":"","metadata":{}}"#
        );
    }
}
