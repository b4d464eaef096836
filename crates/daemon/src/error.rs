//! The daemon's API error: every failure a handler returns becomes LXD's error envelope here,
//! in one place, with "not found", "exists" and "no leader" mapped to 404, 409 and 503.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rxd_db::{ApplyError, DbError};

/// A failed request: the HTTP status and LXD's sentence.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status, also the envelope's `error_code`.
    pub status: StatusCode,
    /// The sentence the user reads.
    pub message: String,
}

impl ApiError {
    /// 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    /// 403 `not authorized`.
    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "not authorized")
    }
    /// 403 with `message`.
    pub fn forbidden_with(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    /// 404 with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    /// 409 with `message`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    /// 500 with `message`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
    /// Any status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = rxd_api::Response::error(self.status.as_u16(), self.message);
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<ApplyError> for ApiError {
    fn from(e: ApplyError) -> Self {
        let status = match &e {
            ApplyError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApplyError::Exists { .. } | ApplyError::AddressTaken { .. } => StatusCode::CONFLICT,
            ApplyError::Changed { .. } => StatusCode::PRECONDITION_FAILED,
            ApplyError::NoMatchingToken => StatusCode::FORBIDDEN,
            ApplyError::TokenExpired => StatusCode::FORBIDDEN,
            ApplyError::InUse { .. }
            | ApplyError::NotPending { .. }
            | ApplyError::DriverMismatch { .. }
            | ApplyError::AlreadyDefined { .. }
            | ApplyError::NetworkNotPending { .. }
            | ApplyError::NetworkTypeMismatch { .. }
            | ApplyError::NetworkAlreadyDefined { .. }
            | ApplyError::LastGroup { .. }
            | ApplyError::MemberState { .. } => StatusCode::BAD_REQUEST,
            ApplyError::Storage { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound { entity, .. } => ApiError::not_found(format!("{entity} not found")),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<rxd_raft::RaftError> for ApiError {
    fn from(e: rxd_raft::RaftError) -> Self {
        match e {
            // A read that ran and found nothing is the caller's "not found", not an outage.
            rxd_raft::RaftError::Read(db) => db.into(),
            other => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, other.to_string()),
        }
    }
}

/// What handlers return.
pub type ApiResult<T> = Result<T, ApiError>;
