//! Raft RPCs to peers over the caller's [`Transport`].
//!
//! Each RPC is a JSON request POSTed to a fixed path; the peer answers with the JSON of
//! openraft's `Result`, so a refusal by the peer's raft core (say, a higher vote) reaches this
//! node's core intact.
//!
//! Two things are not plain JSON RPCs:
//! - an append batch is bounded in bytes ([`MAX_APPEND_BYTES`]): a larger one is refused here
//!   with openraft's `PayloadTooLarge` and a hint, and openraft sends fewer entries (a single
//!   entry always goes, whatever its size);
//! - a snapshot travels as one streamed request, a short JSON head (vote and snapshot meta)
//!   followed by the raw SQLite file ([`SnapshotHead`], [`frame_head`]), so neither side holds
//!   it in memory.
//!
//! A peer that cannot be connected to is *unreachable* (openraft backs off); a status from the
//! peer, a broken exchange or a timeout is a *network error* (openraft retries), so a refusal
//! such as 413 is never taken for a member that is down.

use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use openraft::error::{
    Fatal, InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, LogId, OptionalSend, RaftNetwork, RaftNetworkFactory, Snapshot, Vote};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::rpc::{PATH_APPEND, PATH_SNAPSHOT, PATH_VOTE};
use crate::state_machine::Meta;
use crate::types::TypeConfig;
use crate::TransportError;

/// The most bytes one append-entries request may carry when it holds more than one entry.
/// Members accept internal bodies of [`MAX_INTERNAL_BODY`], so any single entry the public API
/// can produce still fits.
pub const MAX_APPEND_BYTES: usize = 8 * 1024 * 1024;

/// The largest internal request body a member must accept (the raft RPCs other than the
/// snapshot stream, forwarded proposals): room for the largest entry a 10 MiB public request
/// can produce, in a batch of one.
pub const MAX_INTERNAL_BODY: usize = 64 * 1024 * 1024;

/// The head of a snapshot transfer: the sender's vote and the snapshot's metadata; the raw
/// database file follows it in the same request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SnapshotHead {
    pub(crate) vote: Vote<u64>,
    pub(crate) meta: Meta,
}

/// The first bytes of a snapshot request: the length of the JSON head (4 bytes, big endian)
/// and the head.
pub(crate) fn frame_head(head: &SnapshotHead) -> Result<Vec<u8>, serde_json::Error> {
    let json = serde_json::to_vec(head)?;
    let len = u32::try_from(json.len()).unwrap_or(u32::MAX);
    let mut framed = Vec::with_capacity(json.len() + 4);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(&json);
    Ok(framed)
}

/// How the failure of a transport call reaches openraft.
fn rpc_error<E: std::error::Error>(
    e: &TransportError,
) -> RPCError<u64, BasicNode, RaftError<u64, E>> {
    match e {
        TransportError::Connect(_) | TransportError::NoSuchPeer => {
            RPCError::Unreachable(Unreachable::new(e))
        }
        _ => RPCError::Network(NetworkError::new(e)),
    }
}

/// Appends larger than this travel in a task of their own (see `PeerClient::send_append`).
const DETACHED_APPEND_BYTES: usize = 256 * 1024;

/// The answer of an append sent in a task of its own, shared by the calls that wait for it.
type SharedReply = Shared<BoxFuture<'static, Result<Arc<Vec<u8>>, Arc<TransportError>>>>;

/// An append on its way to the peer.
#[derive(Clone)]
struct InFlight {
    vote: Vote<u64>,
    prev: Option<LogId<u64>>,
    last: Option<LogId<u64>>,
    reply: SharedReply,
}

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

    /// POSTs `head` followed by the whole of `data` to [`crate::PATH_SNAPSHOT`] on the member
    /// at `address`, within `timeout`, and returns the reply body. The peer hands the body to
    /// [`crate::ReplicatedDb::receive_snapshot`] as a stream.
    ///
    /// The default reads `data` into memory and uses [`Transport::post`]: enough for in-memory
    /// test transports; a real transport streams the file.
    fn send_snapshot(
        &self,
        address: &str,
        head: Vec<u8>,
        data: std::fs::File,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        let _ = timeout;
        let mut body = head;
        let mut data = data;
        if let Err(e) = std::io::Read::read_to_end(&mut data, &mut body) {
            return Box::pin(async move { Err(TransportError::Exchange(Box::new(e))) });
        }
        self.post(address, PATH_SNAPSHOT, body)
    }
}

/// Hands openraft one [`PeerClient`] per target.
pub(crate) struct NetworkFactory {
    pub(crate) transport: Arc<dyn Transport>,
    /// Bound on one whole snapshot transfer.
    pub(crate) snapshot_timeout: Duration,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerClient {
        PeerClient {
            target,
            node: node.clone(),
            transport: self.transport.clone(),
            snapshot_timeout: self.snapshot_timeout,
            in_flight: None,
        }
    }
}

/// The RPC client for one peer.
pub(crate) struct PeerClient {
    target: u64,
    node: BasicNode,
    transport: Arc<dyn Transport>,
    snapshot_timeout: Duration,
    in_flight: Option<InFlight>,
}

type RpcResult<T, E> = Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

// The error type is openraft's own.
#[allow(clippy::result_large_err)]
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
            .map_err(|e| rpc_error(&e))?;
        self.answer(reply)
    }

    /// Decodes a peer's answer: openraft's result, a refusal by the peer's core included.
    fn answer<Resp, E>(&self, reply: Vec<u8>) -> RpcResult<Resp, E>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
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

// The error type is openraft's own.
#[allow(clippy::result_large_err)]
impl PeerClient {
    /// Sends one append. A large one goes in a task of its own, remembered in `in_flight`:
    /// openraft gives each append only the heartbeat interval, and an entry of several MiB can
    /// take longer than that to cross; the task goes on when openraft's timeout drops this call,
    /// and openraft's retry of the same append picks up its answer instead of starting over.
    async fn send_append(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
    ) -> RpcResult<AppendEntriesResponse<u64>, openraft::error::Infallible> {
        let count = rpc.entries.len();
        let body =
            serde_json::to_vec(&rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        if count > 1 && body.len() > MAX_APPEND_BYTES {
            // Entries of about the same size: keep the share that fits, at least one.
            let fits = (count * MAX_APPEND_BYTES / body.len()).clamp(1, count - 1);
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(u64::try_from(fits).unwrap_or(1)),
            ));
        }
        let detached = body.len() > DETACHED_APPEND_BYTES;
        let send = self.transport.post(&self.node.addr, PATH_APPEND, body);
        if !detached {
            let reply = send.await;
            return self.outcome(reply.as_deref(), count);
        }
        let task = tokio::spawn(send);
        let reply: SharedReply = async move {
            match task.await {
                Ok(reply) => reply.map(Arc::new).map_err(Arc::new),
                Err(e) => Err(Arc::new(TransportError::Exchange(Box::new(e)))),
            }
        }
        .boxed()
        .shared();
        self.in_flight = Some(InFlight {
            vote: rpc.vote,
            prev: rpc.prev_log_id,
            last: rpc.entries.last().map(|e| e.log_id),
            reply: reply.clone(),
        });
        let reply = reply.await;
        self.in_flight = None;
        self.outcome(reply.as_deref().map(Vec::as_slice).map_err(|e| &**e), count)
    }

    /// What an append's exchange means to openraft.
    fn outcome(
        &self,
        reply: Result<&[u8], &TransportError>,
        count: usize,
    ) -> RpcResult<AppendEntriesResponse<u64>, openraft::error::Infallible> {
        match reply {
            Ok(body) => self.answer(body.to_vec()),
            // The peer's limit is lower than ours: send fewer entries.
            Err(TransportError::Status { status: 413, .. }) if count > 1 => {
                Err(RPCError::PayloadTooLarge(
                    PayloadTooLarge::new_entries_hint(u64::try_from(count / 2).unwrap_or(1)),
                ))
            }
            Err(e) => Err(rpc_error(e)),
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>, openraft::error::Infallible> {
        // Entries already on their way to the peer are not sent again: a retry of the same
        // append (or a longer one from the same point) waits for the one in flight.
        if let Some(sent) = self.in_flight.clone() {
            let last = rpc.entries.last().map(|e| e.log_id);
            if sent.vote == rpc.vote && sent.prev == rpc.prev_log_id && last >= sent.last {
                let reply = sent.reply.await;
                self.in_flight = None;
                let resp =
                    self.outcome(reply.as_deref().map(Vec::as_slice).map_err(|e| &**e), 1)?;
                if last == sent.last || !matches!(resp, AppendEntriesResponse::Success) {
                    return Ok(resp);
                }
                // The rest follows on from what the peer just took.
                let rest = AppendEntriesRequest {
                    vote: rpc.vote,
                    prev_log_id: sent.last,
                    leader_commit: rpc.leader_commit,
                    entries: rpc
                        .entries
                        .into_iter()
                        .filter(|e| Some(e.log_id) > sent.last)
                        .collect(),
                };
                return self.send_append(rest).await;
            }
            if sent.vote != rpc.vote {
                self.in_flight = None;
            }
        }
        self.send_append(rpc).await
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        // Snapshots go whole through `full_snapshot`; openraft calls this only from its own
        // chunked transport, which rxd replaces.
        Err(RPCError::Network(NetworkError::new(
            &std::io::Error::other("snapshots are sent whole, not in chunks"),
        )))
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<u64>,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl std::future::Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<u64>, StreamingError<TypeConfig, Fatal<u64>>> {
        let network =
            |e: String| StreamingError::Network(NetworkError::new(&std::io::Error::other(e)));
        let head = frame_head(&SnapshotHead {
            vote,
            meta: snapshot.meta.clone(),
        })
        .map_err(|e| network(e.to_string()))?;
        let data = snapshot.snapshot.into_std().await;
        let send = self
            .transport
            .send_snapshot(&self.node.addr, head, data, self.snapshot_timeout);
        let reply = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            reply = send => reply,
        };
        let reply = reply.map_err(|e| match e {
            TransportError::Connect(_) | TransportError::NoSuchPeer => {
                StreamingError::Unreachable(Unreachable::new(&e))
            }
            _ => StreamingError::Network(NetworkError::new(&e)),
        })?;
        let result: Result<SnapshotResponse<u64>, String> =
            serde_json::from_slice(&reply).map_err(|e| network(e.to_string()))?;
        result.map_err(network)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>, openraft::error::Infallible> {
        self.call(PATH_VOTE, &rpc).await
    }
}
