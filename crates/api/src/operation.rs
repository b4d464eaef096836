use serde::{Deserialize, Serialize};

/// Operation states with LXD's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationStatus {
    /// 105.
    Pending,
    /// 103.
    Running,
    /// 104.
    Cancelling,
    /// 200.
    Success,
    /// 400.
    Failure,
    /// 401.
    Cancelled,
}

impl OperationStatus {
    /// LXD's status code.
    pub fn code(self) -> u16 {
        match self {
            OperationStatus::Pending => 105,
            OperationStatus::Running => 103,
            OperationStatus::Cancelling => 104,
            OperationStatus::Success => 200,
            OperationStatus::Failure => 400,
            OperationStatus::Cancelled => 401,
        }
    }

    /// LXD's status text.
    pub fn text(self) -> &'static str {
        match self {
            OperationStatus::Pending => "Pending",
            OperationStatus::Running => "Running",
            OperationStatus::Cancelling => "Cancelling",
            OperationStatus::Success => "Success",
            OperationStatus::Failure => "Failure",
            OperationStatus::Cancelled => "Cancelled",
        }
    }

    /// Whether no further change follows.
    pub fn is_final(self) -> bool {
        self.code() >= 200
    }
}

/// `api.Operation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// UUID.
    pub id: String,
    /// `task`, `websocket` or `token`.
    pub class: String,
    /// Human description, such as "Creating bootstrap node".
    pub description: String,
    /// RFC 3339 with nanoseconds.
    pub created_at: String,
    /// RFC 3339 with nanoseconds.
    pub updated_at: String,
    /// Status text.
    pub status: String,
    /// Status code.
    pub status_code: u16,
    /// Affected resources by kind.
    pub resources: Option<serde_json::Value>,
    /// Operation-specific data.
    pub metadata: Option<serde_json::Value>,
    /// Whether DELETE cancels it.
    pub may_cancel: bool,
    /// The failure message.
    pub err: String,
    /// Member that runs it, or `none`.
    pub location: String,
}
