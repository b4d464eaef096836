//! Raft RPCs to peers over the caller's [`Transport`].
//!
//! Each RPC is a JSON request POSTed to a fixed path; the peer answers with the JSON of
//! openraft's `Result`, so a refusal by the peer's raft core (say, a higher vote) reaches this
//! node's core intact.

use std::sync::Arc;

use futures::future::BoxFuture;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftNetwork, RaftNetworkFactory};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::rpc::{PATH_APPEND, PATH_SNAPSHOT, PATH_VOTE};
use crate::types::TypeConfig;
use crate::TransportError;

/// How RPCs reach a peer. The daemon implements it with mTLS HTTPS POSTs to the peer's cluster
/// address; tests implement it in memory by calling the peer's
/// [`crate::ReplicatedDb::handle_rpc`].
///
/// The reply is the body the peer's `handle_rpc` returned. An error from `handle_rpc` on the
/// peer should come back as [`TransportError::Status`].
pub trait Transport: Send + Sync + 'static {
    /// POSTs `body` to `path` on the member at `address` (`host:port`) and returns the reply
    /// body.
    fn post(
        &self,
        address: &str,
        path: &'static str,
        body: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>>;
}

/// Hands openraft one [`PeerClient`] per target.
pub(crate) struct NetworkFactory {
    pub(crate) transport: Arc<dyn Transport>,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerClient {
        PeerClient {
            target,
            node: node.clone(),
            transport: self.transport.clone(),
        }
    }
}

/// The RPC client for one peer.
pub(crate) struct PeerClient {
    target: u64,
    node: BasicNode,
    transport: Arc<dyn Transport>,
}

type RpcResult<T, E> = Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

impl PeerClient {
    async fn call<Req, Resp, E>(&self, path: &'static str, req: &Req) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let body = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        // openraft bounds each call with its own timeout, so none is added here.
        let reply = self
            .transport
            .post(&self.node.addr, path, body)
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let result: Result<Resp, RaftError<u64, E>> =
            serde_json::from_slice(&reply).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| {
            RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                e,
            ))
        })
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>, openraft::error::Infallible> {
        self.call(PATH_APPEND, &rpc).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        self.call(PATH_SNAPSHOT, &rpc).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>, openraft::error::Infallible> {
        self.call(PATH_VOTE, &rpc).await
    }
}
