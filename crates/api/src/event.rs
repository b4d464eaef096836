use serde::{Deserialize, Serialize};

/// One frame of `/1.0/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `operation`, `lifecycle` or `logging`.
    #[serde(rename = "type")]
    pub kind: String,
    /// RFC 3339 with nanoseconds.
    pub timestamp: String,
    /// The payload.
    pub metadata: serde_json::Value,
    /// Originating member; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub location: String,
    /// Project; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project: String,
}

/// Who asked for a change, in lifecycle events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Requestor {
    /// User name, `root` on the unix socket.
    pub username: String,
    /// `unix`, `tls` or `cluster`.
    pub protocol: String,
    /// Peer address, `@` on the unix socket.
    pub address: String,
}

/// Payload of a `lifecycle` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventLifecycle {
    /// Such as `cluster-member-added`.
    pub action: String,
    /// URL of the object.
    pub source: String,
    /// Extra facts, such as `old_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
    /// Who asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requestor: Option<Requestor>,
}

/// Payload of a `logging` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventLogging {
    /// The message.
    pub message: String,
    /// `debug`, `info`, `warning` or `error`.
    pub level: String,
    /// Structured fields.
    pub context: std::collections::BTreeMap<String, String>,
}
