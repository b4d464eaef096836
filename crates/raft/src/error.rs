//! The crate's error enum, and the error a [`crate::Transport`] reports.

use std::path::PathBuf;
use std::time::Duration;

use openraft::error::{ChangeMembershipError, Fatal, InitializeError};
use openraft::BasicNode;

/// Why an operation on the replicated database failed. A command's own refusal is not here: it
/// is the inner `Result` of [`crate::ReplicatedDb::propose`].
#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    /// The data directory could not be created or read.
    #[error("Cannot create the cluster database directory {path:?}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A database file could not be opened or brought to the current schema.
    #[error("Cannot open the cluster database {path:?}: {source}")]
    Open {
        /// The SQLite file.
        path: PathBuf,
        /// What went wrong.
        source: rxd_db::DbError,
    },
    /// Bringing the database back to a consistent state at start, or receiving a snapshot into
    /// it, failed.
    #[error("Cannot recover the cluster database {path:?}: {message}")]
    Recover {
        /// The file concerned.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The settings are inconsistent (for example the election timeout is not above the
    /// heartbeat interval).
    #[error("Invalid raft settings: {0}")]
    Settings(#[source] Box<openraft::ConfigError>),
    /// Reading or writing the log, the state or a snapshot failed; raft stops after this.
    #[error("Cluster database storage failed: {0}")]
    Storage(#[source] Box<openraft::StorageError<u64>>),
    /// The raft core panicked and stopped.
    #[error("The raft core of the cluster database panicked")]
    Panicked,
    /// The replicated database was shut down.
    #[error("The cluster database is shutting down")]
    ShuttingDown,
    /// `initialize` was called on a store that already belongs to a raft group.
    #[error("The cluster database is already initialized")]
    AlreadyInitialized,
    /// `initialize` was refused for another reason.
    #[error("Cannot initialize the cluster database: {0}")]
    Initialize(#[source] InitializeError<u64, BasicNode>),
    /// No leader is known at the moment (an election is running, or quorum is lost).
    #[error("No cluster leader is known")]
    NoLeader,
    /// The operation must run on the leader and this member is not (or no longer) the leader.
    #[error("This member is not the cluster leader (leader: {leader_address:?})")]
    NotLeader {
        /// The leader's raft node id, if known.
        leader_id: Option<u64>,
        /// The leader's cluster address, if known.
        leader_address: Option<String>,
    },
    /// The leader could not confirm its leadership with a quorum of voters.
    #[error("The cluster leader cannot reach a quorum of voters")]
    NoQuorum,
    /// The leader's raft core has stopped (storage failure or panic); see the leader's log.
    #[error("The cluster leader at {address} has failed")]
    LeaderFailed {
        /// The leader's cluster address.
        address: String,
    },
    /// A membership change was refused.
    #[error("Cannot change the cluster membership: {0}")]
    Membership(#[source] ChangeMembershipError<u64>),
    /// A peer could not be reached through the transport.
    #[error("Cannot reach cluster member {address}: {source}")]
    Unreachable {
        /// The peer's cluster address.
        address: String,
        /// What the transport reported.
        source: TransportError,
    },
    /// A wait ran out of time.
    #[error("Timed out after {after:?} waiting for {waiting_for}")]
    Timeout {
        /// What was awaited.
        waiting_for: &'static str,
        /// How long it waited.
        after: Duration,
    },
    /// `handle_rpc` got a path it does not serve.
    #[error("Unknown internal raft path {path}")]
    UnknownRpc {
        /// The path.
        path: String,
    },
    /// A request or reply body did not decode.
    #[error("Malformed message for {path}: {source}")]
    BadMessage {
        /// The RPC path.
        path: String,
        /// The decoding error.
        source: serde_json::Error,
    },
    /// The read closure failed.
    #[error(transparent)]
    Read(#[from] rxd_db::DbError),
}

impl From<Fatal<u64>> for RaftError {
    fn from(fatal: Fatal<u64>) -> Self {
        match fatal {
            Fatal::StorageError(e) => RaftError::Storage(Box::new(e)),
            Fatal::Panicked => RaftError::Panicked,
            Fatal::Stopped => RaftError::ShuttingDown,
        }
    }
}

/// Why a [`crate::Transport`] could not deliver a request or get its answer.
///
/// Only [`TransportError::Connect`] and [`TransportError::NoSuchPeer`] say that the request
/// certainly did not arrive. After a reset or a timeout the peer may have acted on it; a
/// proposal is then sent again under the same request id, so it still applies once.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No connection was established (refused, unreachable, TLS handshake failed), so no byte
    /// of the request was sent; the peer may be down.
    #[error("connection failed: {0}")]
    Connect(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The exchange broke after the connection was made (a reset, a broken body): the peer may
    /// have acted on the request.
    #[error("request failed: {0}")]
    Exchange(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The peer answered with an error status instead of a reply body.
    #[error("status {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The body the peer sent, for the log.
        body: String,
    },
    /// The peer did not answer in time; it may have acted on the request.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// No peer is known at that address (used by in-memory transports).
    #[error("no such peer")]
    NoSuchPeer,
}

impl TransportError {
    /// Whether the request certainly did not reach the peer.
    pub fn not_delivered(&self) -> bool {
        matches!(
            self,
            TransportError::Connect(_) | TransportError::NoSuchPeer
        )
    }

    /// Whether sending the same request again may succeed: it was not delivered, or its fate is
    /// unknown (a reset, a timeout, a 5xx status). A 4xx status says the peer refused the
    /// request itself, and would refuse it again.
    pub fn may_retry(&self) -> bool {
        match self {
            TransportError::Status { status, .. } => *status >= 500,
            _ => true,
        }
    }
}
