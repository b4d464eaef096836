//! The replicated cluster database: openraft with its log and its state machine on SQLite.
//!
//! This crate owns the raft group of the cluster: the log (`log.db`: entries, vote, committed and
//! purged log ids), the state machine (`state.db`: the cluster schema of `rxd_db` plus the raft
//! metadata, both changed in one SQLite transaction per batch of applied entries), snapshots
//! (`snapshot.db`, a `VACUUM INTO` copy of `state.db`), leader forwarding and linearizable reads.
//! It is the only crate that names openraft.
//!
//! It deliberately does not know HTTP, TLS, member names or roles: peers are reached through a
//! [`Transport`] the daemon supplies, a member is a raft node id with a `host:port` address, and
//! deciding who becomes a voter belongs to the cluster crate.
//!
//! ```text
//!  handler ── propose(cmd) ──> ReplicatedDb ──(follower)── POST /internal/raft/propose ──> leader
//!                                  │ (leader)
//!                                  v
//!                            openraft core ──append──> log.db (synchronous=FULL)
//!                                  │        ──POST /internal/raft/{append,vote,snapshot}──> peers
//!                                  v committed
//!                            state machine: rxd_db::apply + raft_meta, one transaction ──> state.db
//!
//!  handler ── read(f) ──> leader:   get_read_log_id (quorum heartbeat)
//!                         follower: POST /internal/raft/read-index to the leader
//!                         then wait until the local replica applied that index, run f locally
//! ```
//!
//! A standalone server is a one-voter group, so there is a single write path (DESIGN decision 1),
//! and every member holds a replica, so reads are local once the read index is reached
//! (decision 2).

#![deny(missing_docs)]

mod error;
#[cfg(feature = "fault-injection")]
mod faults;
mod log_store;
mod network;
pub mod offline;
mod replicated;
mod rpc;
mod state_machine;
pub mod stats;
mod types;

pub use error::{RaftError, TransportError};
#[cfg(feature = "fault-injection")]
pub use faults::FaultSwitch;
pub use network::{Transport, MAX_APPEND_BYTES, MAX_INTERNAL_BODY};
pub use replicated::{RaftRole, RaftSettings, RaftStatus, ReplicatedDb};
pub use rpc::{PATH_APPEND, PATH_PROPOSE, PATH_READ_INDEX, PATH_SNAPSHOT, PATH_VOTE};

#[cfg(test)]
mod conformance_tests;
#[cfg(test)]
mod offline_tests;
#[cfg(test)]
mod recovery_tests;
