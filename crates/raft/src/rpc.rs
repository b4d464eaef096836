//! The internal RPC paths and the wire forms of forwarded proposals and read-index requests.
//!
//! ```text
//!  follower ── POST /internal/raft/propose {id, command} ──> leader: client_write
//!           <── {"Ok": Applied} | {"Err": Refusal}
//!  follower ── POST /internal/raft/read-index          ──> leader: get_read_log_id
//!           <── {"Ok": index|null} | {"Err": Refusal}
//! ```
//!
//! `id` is the request id the proposer chose (a UUID); the follower sends the same body again
//! after a reset or a timeout, and the state machine answers a known id with its first result.
//!
//! The raft RPCs themselves (append, vote, snapshot) carry openraft's own request and result
//! types as JSON.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::RaftError;

/// Path of the append-entries (and heartbeat) RPC.
pub const PATH_APPEND: &str = "/internal/raft/append";
/// Path of the vote RPC.
pub const PATH_VOTE: &str = "/internal/raft/vote";
/// Path of the snapshot-chunk RPC.
pub const PATH_SNAPSHOT: &str = "/internal/raft/snapshot";
/// Path on which the leader accepts a command forwarded by a follower.
pub const PATH_PROPOSE: &str = "/internal/raft/propose";
/// Path on which the leader hands out a read index.
pub const PATH_READ_INDEX: &str = "/internal/raft/read-index";

/// Why the leader could not serve a forwarded request. Only facts that the follower can act on
/// cross the wire; the leader logs the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Refusal {
    /// The receiver knows no leader.
    NoLeader,
    /// The receiver is not the leader (any more).
    NotLeader {
        /// The leader it knows of.
        leader_id: Option<u64>,
        /// That leader's address.
        leader_address: Option<String>,
    },
    /// The receiver could not confirm its leadership with a quorum.
    NoQuorum,
    /// The receiver is shutting down.
    ShuttingDown,
    /// The receiver ran out of time.
    Timeout {
        /// Its limit in milliseconds.
        after_ms: u64,
    },
    /// The receiver's raft core failed (storage error or panic).
    Failed,
}

impl Refusal {
    /// What to tell the follower about a local failure.
    pub(crate) fn from_error(e: &RaftError) -> Self {
        match e {
            RaftError::NoLeader => Refusal::NoLeader,
            RaftError::NotLeader {
                leader_id,
                leader_address,
            } => Refusal::NotLeader {
                leader_id: *leader_id,
                leader_address: leader_address.clone(),
            },
            RaftError::NoQuorum => Refusal::NoQuorum,
            RaftError::ShuttingDown => Refusal::ShuttingDown,
            RaftError::Timeout { after, .. } => Refusal::Timeout {
                after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
            },
            _ => Refusal::Failed,
        }
    }

    /// The follower's error for a refusal by the member at `address`.
    pub(crate) fn into_error(self, address: &str) -> RaftError {
        match self {
            Refusal::NoLeader => RaftError::NoLeader,
            Refusal::NotLeader {
                leader_id,
                leader_address,
            } => RaftError::NotLeader {
                leader_id,
                leader_address,
            },
            Refusal::NoQuorum => RaftError::NoQuorum,
            // A leader that shuts down is about to be replaced: to the caller there is no
            // leader for the moment.
            Refusal::ShuttingDown => RaftError::NoLeader,
            Refusal::Timeout { after_ms } => RaftError::Timeout {
                waiting_for: "the cluster leader",
                after: Duration::from_millis(after_ms),
            },
            Refusal::Failed => RaftError::LeaderFailed {
                address: address.to_string(),
            },
        }
    }
}
