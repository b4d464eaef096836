//! The daemon's API error: every failure a handler returns becomes LXD's error envelope here.
//! "Not found", "exists" and "no leader" become 404, 409 and 503 in one place,
//! `rxd_cluster::Error`, whose status and sentence pass through unchanged.

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

// Database and raft failures are classed in one place, `rxd_cluster::Error`.
impl From<ApplyError> for ApiError {
    fn from(e: ApplyError) -> Self {
        rxd_cluster::Error::from(e).into()
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        rxd_cluster::Error::from(e).into()
    }
}

impl From<rxd_raft::RaftError> for ApiError {
    fn from(e: rxd_raft::RaftError) -> Self {
        rxd_cluster::Error::from(e).into()
    }
}

/// Membership's errors keep their status and sentence; a status another member answered that
/// is not one passes on as a 502.
impl From<rxd_cluster::Error> for ApiError {
    fn from(e: rxd_cluster::Error) -> Self {
        let status = StatusCode::from_u16(e.status.code()).unwrap_or(StatusCode::BAD_GATEWAY);
        ApiError::new(status, e.message)
    }
}

/// The daemon's own failures inside a membership step keep their status and sentence.
impl From<ApiError> for rxd_cluster::Error {
    fn from(e: ApiError) -> Self {
        rxd_cluster::Error::new(rxd_cluster::Status::Passed(e.status.as_u16()), e.message)
    }
}

/// What handlers return.
pub type ApiResult<T> = Result<T, ApiError>;
