//! The openraft type configuration of the cluster database.

use serde::{Deserialize, Serialize};

/// The application data of a log entry: a command and the request id its proposer chose. A
/// proposer that does not learn the outcome sends the same proposal again; the state machine
/// recognises the id and answers the first result without applying the command twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Proposal {
    /// Chosen at random, once per [`crate::ReplicatedDb::propose`] call.
    pub(crate) id: uuid::Uuid,
    /// The command.
    pub(crate) command: rxd_db::Command,
}

/// What applying one log entry produced: the command's response or its deterministic refusal.
/// Blank and membership entries produce `Ok(Response::Done)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Applied(pub(crate) Result<rxd_db::Response, rxd_db::ApplyError>);

openraft::declare_raft_types!(
    /// The raft types of the cluster database: commands from `rxd_db` with their request ids,
    /// u64 node ids, and nodes that carry the member's cluster address.
    pub(crate) TypeConfig:
        D = Proposal,
        R = Applied,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
        Responder = openraft::impls::OneshotResponder<TypeConfig>,
);

/// openraft's storage error for this node id type.
pub(crate) type StorageError = openraft::StorageError<u64>;
