//! The openraft type configuration of the cluster database.

use serde::{Deserialize, Serialize};

/// What applying one log entry produced: the command's response or its deterministic refusal.
/// Blank and membership entries produce `Ok(Response::Done)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Applied(pub(crate) Result<rxd_db::Response, rxd_db::ApplyError>);

openraft::declare_raft_types!(
    /// The raft types of the cluster database: commands from `rxd_db`, u64 node ids, and nodes
    /// that carry the member's cluster address.
    pub(crate) TypeConfig:
        D = rxd_db::Command,
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
