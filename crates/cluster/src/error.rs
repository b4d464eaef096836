//! The one error of membership: the class of HTTP status it answers with and LXD's sentence.
//! The daemon turns it into its API error unchanged, so the words a client reads are made here.
//! Database and raft failures are classed here too, in one place: "not found", "exists" and
//! "no leader" are 404, 409 and 503.

use rxd_db::{ApplyError, DbError};

/// The HTTP status class of an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 400: the caller's mistake, or a refusal with a reason.
    BadRequest,
    /// 403.
    Forbidden,
    /// 404.
    NotFound,
    /// 409.
    Conflict,
    /// 412: a compared row changed meanwhile.
    PreconditionFailed,
    /// 500.
    Internal,
    /// 503: no leader, no quorum.
    Unavailable,
    /// The status another member answered, passed on as it is.
    Passed(u16),
}

impl Status {
    /// The HTTP status code.
    pub fn code(self) -> u16 {
        match self {
            Status::BadRequest => 400,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::Conflict => 409,
            Status::PreconditionFailed => 412,
            Status::Internal => 500,
            Status::Unavailable => 503,
            Status::Passed(code) => code,
        }
    }
}

/// A failed membership step: its status class and the sentence the user reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// The status class.
    pub status: Status,
    /// LXD's sentence.
    pub message: String,
}

impl Error {
    /// Any class.
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Error {
            status,
            message: message.into(),
        }
    }
    /// 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Status::BadRequest, message)
    }
    /// 403 `not authorized`: the caller learns nothing more.
    pub fn forbidden() -> Self {
        Self::new(Status::Forbidden, "not authorized")
    }
    /// 404 with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Status::NotFound, message)
    }
    /// 500 with `message`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Status::Internal, message)
    }
    /// 503 with `message`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Status::Unavailable, message)
    }
}

impl From<ApplyError> for Error {
    fn from(e: ApplyError) -> Self {
        let status = match &e {
            ApplyError::NotFound { .. } => Status::NotFound,
            ApplyError::Exists { .. } | ApplyError::AddressTaken { .. } => Status::Conflict,
            ApplyError::Changed { .. } => Status::PreconditionFailed,
            ApplyError::NoMatchingToken => Status::Forbidden,
            ApplyError::TokenExpired => Status::Forbidden,
            ApplyError::InUse { .. }
            | ApplyError::NotPending { .. }
            | ApplyError::DriverMismatch { .. }
            | ApplyError::AlreadyDefined { .. }
            | ApplyError::NetworkNotPending { .. }
            | ApplyError::NetworkTypeMismatch { .. }
            | ApplyError::NetworkAlreadyDefined { .. }
            | ApplyError::LastGroup { .. }
            | ApplyError::MemberState { .. } => Status::BadRequest,
            ApplyError::Storage { .. } => Status::Internal,
        };
        Error::new(status, e.to_string())
    }
}

impl From<DbError> for Error {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound { entity, .. } => Error::not_found(format!("{entity} not found")),
            other => Error::internal(other.to_string()),
        }
    }
}

impl From<rxd_raft::RaftError> for Error {
    fn from(e: rxd_raft::RaftError) -> Self {
        match e {
            // A read that ran and found nothing is the caller's "not found", not an outage.
            rxd_raft::RaftError::Read(db) => db.into(),
            other => Error::unavailable(other.to_string()),
        }
    }
}

/// What membership steps return.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_keep_their_codes() {
        let cases = [
            (Status::BadRequest, 400),
            (Status::Forbidden, 403),
            (Status::NotFound, 404),
            (Status::Conflict, 409),
            (Status::PreconditionFailed, 412),
            (Status::Internal, 500),
            (Status::Unavailable, 503),
            (Status::Passed(502), 502),
        ];
        for (status, code) in cases {
            assert_eq!(status.code(), code);
        }
        assert_eq!(Error::forbidden().message, "not authorized");
    }
}
