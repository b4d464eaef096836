//! [`ReplicatedDb`], the handle the rest of rxd uses: propose, read, change membership, serve
//! the internal RPCs.
//!
//! ```text
//!  propose(cmd) ──> {request id, cmd} ──> leader known? ── self ──> client_write ──> Applied
//!                        │           other ─> POST propose ──> leader's client_write
//!                        ├─ NotLeader{hint} from either: try the hinted leader
//!                        └─ reset, timeout, 5xx: the same {request id, cmd} again (a few times)
//!  read(f)      ──> read index (self: get_read_log_id, other: POST read-index)
//!               ──> wait until applied >= index ──> f(&replica) in a read transaction
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, ClientWriteError, InitializeError};
use openraft::metrics::WaitError;
use openraft::{BasicNode, ChangeMembers, Config, Raft, RaftMetrics, ServerState, SnapshotPolicy};
use rusqlite::Connection;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::log_store::LogStore;
use crate::network::{NetworkFactory, SnapshotHead, Transport};
use crate::rpc::{Refusal, PATH_APPEND, PATH_PROPOSE, PATH_READ_INDEX, PATH_SNAPSHOT, PATH_VOTE};
use crate::state_machine::{open_reader, SnapshotFiles, StateMachine, STATE_FILE};
use crate::types::{Applied, Proposal, TypeConfig};
use crate::RaftError;

use crate::offline::LOG_FILE;

/// How many times a request follows a "not the leader" answer before giving up. Leadership
/// moves rarely; more hops mean the cluster is electing and the caller had better retry later.
const MAX_LEADER_HOPS: usize = 3;

/// How many times a request is sent again after the transport failed (a reset, a timeout, a
/// leader that went away), and the pause before each new attempt, times the attempt's number.
const MAX_RESENDS: u32 = 4;
const RESEND_PAUSE: Duration = Duration::from_millis(100);

/// Timing and compaction settings of the raft group.
///
/// The defaults suit members on a LAN or loopback, close to LXD's dqlite timing: heartbeats
/// every 500 ms, an election after 1.5–3 s without one (so a leader that dies is replaced within
/// a few seconds, while a busy leader is not deposed by one slow heartbeat), a snapshot every
/// 1024 entries with 8192 entries kept behind it (dqlite's threshold and trailing defaults), so
/// a member that was briefly away catches up from the log rather than a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftSettings {
    /// How often the leader sends heartbeats. openraft also uses it as the timeout of one
    /// append-entries RPC, so it must exceed a round trip with a full batch of entries.
    pub heartbeat_interval: Duration,
    /// Lower bound of the randomised election timeout; must exceed `heartbeat_interval`.
    pub election_timeout_min: Duration,
    /// Upper bound of the randomised election timeout; must exceed `election_timeout_min`.
    pub election_timeout_max: Duration,
    /// Bound on one `propose`, `read`, `change_voters` or `remove_node`: finding the leader,
    /// committing, reaching the read index.
    pub request_timeout: Duration,
    /// How long `add_learner` waits for the new learner to catch up with the leader.
    pub catch_up_timeout: Duration,
    /// Take a snapshot after this many entries have been applied since the last one.
    pub snapshot_after_entries: u64,
    /// Entries kept in the log behind the last snapshot.
    pub entries_kept_after_snapshot: u64,
    /// Bound on sending one whole snapshot to a peer (the file streams in one request).
    pub snapshot_timeout: Duration,
    /// Deliberate bugs switched on (fault suite only; empty by default).
    #[cfg(feature = "fault-injection")]
    pub faults: BTreeSet<crate::FaultSwitch>,
}

impl Default for RaftSettings {
    fn default() -> Self {
        RaftSettings {
            heartbeat_interval: Duration::from_millis(500),
            election_timeout_min: Duration::from_millis(1500),
            election_timeout_max: Duration::from_millis(3000),
            request_timeout: Duration::from_secs(10),
            catch_up_timeout: Duration::from_secs(60),
            snapshot_after_entries: 1024,
            entries_kept_after_snapshot: 8192,
            snapshot_timeout: Duration::from_secs(600),
            #[cfg(feature = "fault-injection")]
            faults: BTreeSet::new(),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl RaftSettings {
    /// Checks that the settings are consistent (what [`ReplicatedDb::open`] would refuse).
    pub fn check(&self) -> Result<(), RaftError> {
        self.to_config().map(|_| ())
    }

    /// Whether the deliberate bug `switch` is on.
    #[cfg(feature = "fault-injection")]
    fn fault(&self, switch: crate::FaultSwitch) -> bool {
        self.faults.contains(&switch)
    }

    fn to_config(&self) -> Result<Config, RaftError> {
        Config {
            cluster_name: "rxd".to_string(),
            heartbeat_interval: millis(self.heartbeat_interval),
            election_timeout_min: millis(self.election_timeout_min),
            election_timeout_max: millis(self.election_timeout_max),
            install_snapshot_timeout: millis(self.snapshot_timeout),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_after_entries),
            max_in_snapshot_log_to_keep: self.entries_kept_after_snapshot,
            ..Config::default()
        }
        .validate()
        .map_err(|e| RaftError::Settings(Box::new(e)))
    }
}

/// This member's part in the raft group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaftRole {
    /// It leads the group.
    Leader,
    /// It is a voter campaigning for leadership.
    Candidate,
    /// It is a voter following the leader.
    Follower,
    /// It replicates the database without voting (or it is not in any group yet).
    Learner,
    /// It was shut down.
    Shutdown,
}

/// A view of the raft group as this member sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftStatus {
    /// This member's raft node id.
    pub id: u64,
    /// This member's role.
    pub role: RaftRole,
    /// The leader's node id, if one is known.
    pub leader_id: Option<u64>,
    /// The leader's cluster address, if one is known.
    pub leader_address: Option<String>,
    /// The current term.
    pub term: u64,
    /// Index of the last entry applied to the local replica.
    pub last_applied: Option<u64>,
    /// Index of the last entry covered by the local snapshot.
    pub snapshot_index: Option<u64>,
    /// Voters by node id, with their cluster addresses.
    pub voters: BTreeMap<u64, String>,
    /// Learners (non-voting replicas) by node id, with their cluster addresses.
    pub learners: BTreeMap<u64, String>,
}

fn status_of(m: &RaftMetrics<u64, BasicNode>) -> RaftStatus {
    let membership = m.membership_config.membership();
    let address = |id: u64| {
        membership
            .get_node(&id)
            .map(|n| n.addr.clone())
            .unwrap_or_default()
    };
    RaftStatus {
        id: m.id,
        role: match m.state {
            ServerState::Leader => RaftRole::Leader,
            ServerState::Candidate => RaftRole::Candidate,
            ServerState::Follower => RaftRole::Follower,
            ServerState::Learner => RaftRole::Learner,
            ServerState::Shutdown => RaftRole::Shutdown,
        },
        leader_id: m.current_leader,
        leader_address: m
            .current_leader
            .and_then(|id| membership.get_node(&id))
            .map(|n| n.addr.clone()),
        term: m.current_term,
        last_applied: m.last_applied.map(|l| l.index),
        snapshot_index: m.snapshot.map(|l| l.index),
        voters: membership.voter_ids().map(|id| (id, address(id))).collect(),
        learners: membership
            .learner_ids()
            .map(|id| (id, address(id)))
            .collect(),
    }
}

/// The replicated cluster database of one member. Cheap to clone; clones share one raft node.
#[derive(Clone)]
pub struct ReplicatedDb {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    raft: Raft<TypeConfig>,
    /// A connection of its own for reads, so that reads and the applier do not wait on each
    /// other (WAL mode lets them run together).
    reader: Arc<Mutex<Connection>>,
    transport: Arc<dyn Transport>,
    settings: RaftSettings,
    /// The snapshot files, for receiving a snapshot streamed by the leader.
    snapshots: Arc<SnapshotFiles>,
    /// One snapshot transfer at a time: they share `snapshot-receive.tmp`.
    receiving: tokio::sync::Mutex<()>,
    /// What this node has done since it opened, for metrics.
    stats: Arc<crate::stats::RaftStats>,
}

type ClientWriteFailure = openraft::error::RaftError<u64, ClientWriteError<u64, BasicNode>>;
type ReadIndexFailure = openraft::error::RaftError<u64, CheckIsLeaderError<u64, BasicNode>>;

fn from_client_write(e: ClientWriteFailure) -> RaftError {
    match e {
        openraft::error::RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            RaftError::NotLeader {
                leader_id: f.leader_id,
                leader_address: f.leader_node.map(|n| n.addr),
            }
        }
        openraft::error::RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            RaftError::Membership(e)
        }
        openraft::error::RaftError::Fatal(f) => f.into(),
    }
}

fn from_read_index(e: ReadIndexFailure) -> RaftError {
    match e {
        openraft::error::RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)) => {
            RaftError::NotLeader {
                leader_id: f.leader_id,
                leader_address: f.leader_node.map(|n| n.addr),
            }
        }
        openraft::error::RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)) => {
            RaftError::NoQuorum
        }
        openraft::error::RaftError::Fatal(f) => f.into(),
    }
}

fn from_wait(e: WaitError, waiting_for: &'static str, after: Duration) -> RaftError {
    match e {
        WaitError::Timeout(_, _) => RaftError::Timeout { waiting_for, after },
        WaitError::ShuttingDown => RaftError::ShuttingDown,
    }
}

/// Runs `fut` for at most `limit`.
async fn bounded<T>(
    limit: Duration,
    waiting_for: &'static str,
    fut: impl std::future::Future<Output = Result<T, RaftError>>,
) -> Result<T, RaftError> {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or(Err(RaftError::Timeout {
            waiting_for,
            after: limit,
        }))
}

fn decode<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, RaftError> {
    serde_json::from_slice(body).map_err(|source| RaftError::BadMessage {
        path: path.to_string(),
        source,
    })
}

fn encode<T: Serialize>(path: &str, value: &T) -> Result<Vec<u8>, RaftError> {
    serde_json::to_vec(value).map_err(|source| RaftError::BadMessage {
        path: path.to_string(),
        source,
    })
}

impl ReplicatedDb {
    /// Opens (or creates) the store in `dir` for node `node_id` and starts its raft node;
    /// `transport` carries RPCs to peers. A new store belongs to no group until
    /// [`ReplicatedDb::initialize`] is called or a leader adds it.
    pub async fn open(
        dir: &Path,
        node_id: u64,
        transport: Arc<dyn Transport>,
        settings: RaftSettings,
    ) -> Result<Self, RaftError> {
        let config = Arc::new(settings.to_config()?);
        fs::create_dir_all(dir).map_err(|source| RaftError::Directory {
            path: dir.to_path_buf(),
            source,
        })?;
        let log_path = dir.join(LOG_FILE);
        let log = LogStore::open(&log_path).map_err(|e| RaftError::Open {
            path: log_path.clone(),
            source: e.into(),
        })?;
        let state_path = dir.join(STATE_FILE);
        let state_machine = StateMachine::open(dir).map_err(|e| RaftError::Recover {
            path: state_path.clone(),
            message: e.to_string(),
        })?;
        let applied = state_machine
            .applied_log_id()
            .map_err(|e| RaftError::Recover {
                path: state_path.clone(),
                message: e.to_string(),
            })?;
        if log
            .forget_past_gap(applied)
            .map_err(|e| RaftError::Recover {
                path: log_path.clone(),
                message: e.to_string(),
            })?
        {
            tracing::error!(
                "The cluster database log was purged past the applied state ({applied:?}) with no \
                 snapshot to cover the gap: the log was dropped, the leader will send a snapshot"
            );
        }
        let snapshots = state_machine.files();
        let reader = open_reader(&state_path).map_err(|e| RaftError::Open {
            path: state_path,
            source: e.into(),
        })?;
        let network = NetworkFactory {
            transport: transport.clone(),
            snapshot_timeout: settings.snapshot_timeout,
        };
        let raft = Raft::new(node_id, config, network, log, state_machine).await?;
        let stats = Arc::new(crate::stats::RaftStats::default());
        stats.follow(raft.metrics());
        Ok(ReplicatedDb {
            inner: Arc::new(Inner {
                id: node_id,
                raft,
                reader: Arc::new(Mutex::new(reader)),
                transport,
                settings,
                snapshots,
                receiving: tokio::sync::Mutex::new(()),
                stats,
            }),
        })
    }

    /// This member's raft node id.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    fn metrics(&self) -> RaftMetrics<u64, BasicNode> {
        self.inner.raft.metrics().borrow().clone()
    }

    /// This node's counters, indexes and term, for metrics.
    pub fn stats(&self) -> crate::stats::RaftStatsView {
        self.inner.stats.view(&self.metrics())
    }

    /// Whether this store already belongs to a raft group: it holds log entries (the first
    /// is a membership) or has voted. A stopped node reports `false`.
    pub async fn is_initialized(&self) -> bool {
        // Asks the core rather than the metrics, which are published a moment after open.
        self.inner.raft.is_initialized().await.unwrap_or(false)
    }

    /// Makes this node the single voter of a new group, reachable at `address` (used on the
    /// first start of a standalone server, node id 1).
    pub async fn initialize(&self, address: String) -> Result<(), RaftError> {
        let members = BTreeMap::from([(self.inner.id, BasicNode::new(address))]);
        match self.inner.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(openraft::error::RaftError::APIError(InitializeError::NotAllowed(_))) => {
                Err(RaftError::AlreadyInitialized)
            }
            Err(openraft::error::RaftError::APIError(e)) => Err(RaftError::Initialize(e)),
            Err(openraft::error::RaftError::Fatal(f)) => Err(f.into()),
        }
    }

    /// The current view of the group: own id, leader, term, last applied index, voters and
    /// learners with their addresses, as last published by the raft core (it lags the core by
    /// moments; use [`ReplicatedDb::wait_until`] to wait for a state).
    pub fn status(&self) -> RaftStatus {
        status_of(&self.metrics())
    }

    /// Waits until the status satisfies `condition` and returns that status.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        waiting_for: &'static str,
        condition: impl Fn(&RaftStatus) -> bool + Send + Sync,
    ) -> Result<RaftStatus, RaftError> {
        let m = self
            .inner
            .raft
            .wait(Some(timeout))
            .metrics(|m| condition(&status_of(m)), waiting_for)
            .await
            .map_err(|e| from_wait(e, waiting_for, timeout))?;
        Ok(status_of(&m))
    }

    /// Waits until a leader is known and returns its node id.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<u64, RaftError> {
        let m = self
            .inner
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a cluster leader")
            .await
            .map_err(|e| from_wait(e, "a cluster leader", timeout))?;
        m.current_leader.ok_or(RaftError::NoLeader)
    }

    /// The leader and its address; waits for one (bounded by the caller) if none is known, or
    /// for another than `stale` if that one turned out not to lead.
    async fn leader(&self, stale: Option<u64>) -> Result<(u64, String), RaftError> {
        let m = self
            .inner
            .raft
            .wait(None)
            .metrics(
                |m| {
                    m.current_leader.is_some_and(|id| {
                        Some(id) != stale
                            && m.membership_config.membership().get_node(&id).is_some()
                    })
                },
                "a cluster leader",
            )
            .await
            .map_err(|e| from_wait(e, "a cluster leader", Duration::MAX))?;
        let id = m.current_leader.ok_or(RaftError::NoLeader)?;
        let node = m
            .membership_config
            .membership()
            .get_node(&id)
            .ok_or(RaftError::NoLeader)?;
        Ok((id, node.addr.clone()))
    }

    async fn post<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        address: &str,
        path: &'static str,
        req: &Req,
    ) -> Result<Resp, RaftError> {
        let body = encode(path, req)?;
        let reply = self
            .inner
            .transport
            .post(address, path, body)
            .await
            .map_err(|source| RaftError::Unreachable {
                address: address.to_string(),
                source,
            })?;
        decode(path, &reply)
    }

    /// Runs `attempt` against the leader, following "not the leader" answers a few times.
    /// `attempt` must be safe to repeat: a read, or a proposal that keeps its request id. When
    /// the request certainly did not reach the leader (no connection), it waits for another
    /// leader; when its fate is unknown (a reset, a timeout, a 5xx), it sends it again to
    /// whichever member leads now, which may be the same one.
    async fn on_leader<T, F, Fut>(&self, mut attempt: F) -> Result<T, RaftError>
    where
        F: FnMut(u64, String) -> Fut,
        Fut: std::future::Future<Output = Result<T, RaftError>>,
    {
        let mut target = self.leader(None).await?;
        let mut hops = 1;
        let mut resends = 0;
        loop {
            let (id, address) = target.clone();
            match attempt(id, address).await {
                Err(RaftError::NotLeader {
                    leader_id,
                    leader_address,
                }) if hops < MAX_LEADER_HOPS => {
                    hops += 1;
                    target = match (leader_id, leader_address) {
                        (Some(hint), Some(address)) if hint != id => (hint, address),
                        _ => self.leader(Some(id)).await?,
                    };
                }
                Err(RaftError::Unreachable { source, .. })
                    if resends < MAX_RESENDS && source.may_retry() =>
                {
                    tracing::debug!(leader = id, error = %source, "cluster leader unreachable");
                    resends += 1;
                    target = if source.not_delivered() {
                        self.leader(Some(id)).await?
                    } else {
                        tokio::time::sleep(RESEND_PAUSE * resends).await;
                        self.leader(None).await?
                    };
                }
                other => return other,
            }
        }
    }

    /// Proposes a command. On a follower the command is forwarded to the leader through the
    /// transport ([`crate::PATH_PROPOSE`]) and the leader's answer is returned. The outer error
    /// means the command could not be committed (no leader, timeout, shut down); the inner one
    /// is the command's deterministic refusal, the same on every replica.
    ///
    /// The command travels with a request id chosen here, once. Within the request timeout it
    /// is sent again, under the same id, when the outcome of an attempt is unknown (a lost
    /// reply, a leader that stepped down); the state machine applies an id once and answers
    /// every later entry with that id with the first result.
    pub async fn propose(
        &self,
        cmd: rxd_db::Command,
    ) -> Result<Result<rxd_db::Response, rxd_db::ApplyError>, RaftError> {
        let proposal = Proposal {
            id: uuid::Uuid::new_v4(),
            command: cmd,
        };
        #[cfg(feature = "fault-injection")]
        if self
            .inner
            .settings
            .fault(crate::FaultSwitch::AckBeforeCommit)
            && crate::faults::acked_early(&proposal.command)
        {
            let this = self.clone();
            tokio::spawn(async move { this.propose_once(proposal).await });
            return Ok(Ok(rxd_db::Response::Done));
        }
        // Attempts made so far (read only by `reforward-new-id`).
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let attempts = &attempts;
        let limit = self.inner.settings.request_timeout;
        let started = std::time::Instant::now();
        let outcome = bounded(limit, "the command to commit", async {
            self.on_leader(|id, address| {
                #[allow(unused_mut)]
                let mut proposal = proposal.clone();
                #[cfg(feature = "fault-injection")]
                if self.inner.settings.fault(crate::FaultSwitch::ReforwardNewId)
                    && attempts.load(std::sync::atomic::Ordering::SeqCst) > 0
                {
                    proposal.id = uuid::Uuid::new_v4();
                    tracing::warn!(id = %proposal.id, "fault switch reforward-new-id: new request id");
                }
                attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    if id == self.inner.id {
                        self.propose_local(proposal).await
                    } else {
                        let reply: Result<Result<Applied, Refusal>, RaftError> =
                            self.post(&address, PATH_PROPOSE, &proposal).await;
                        reply?.map(|a| a.0).map_err(|r| r.into_error(&address))
                    }
                }
            })
            .await
        })
        .await;
        let stats = &self.inner.stats;
        match outcome {
            Ok(_) => stats.proposals.observe(started.elapsed()),
            Err(_) => {
                stats
                    .proposals_failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        outcome
    }

    /// `ack-before-commit`: one attempt at the leader known now, with no resend; the outcome
    /// is only logged.
    #[cfg(feature = "fault-injection")]
    async fn propose_once(&self, proposal: Proposal) {
        let m = self.metrics();
        let leader = m.current_leader.and_then(|id| {
            m.membership_config
                .membership()
                .get_node(&id)
                .map(|n| (id, n.addr.clone()))
        });
        let limit = self.inner.settings.request_timeout;
        let outcome = match leader {
            None => Err(RaftError::NoLeader),
            Some((id, _)) if id == self.inner.id => {
                bounded(limit, "the command to commit", self.propose_local(proposal)).await
            }
            Some((_, address)) => {
                bounded(limit, "the command to commit", async {
                    let reply: Result<Applied, Refusal> =
                        self.post(&address, PATH_PROPOSE, &proposal).await?;
                    reply.map(|a| a.0).map_err(|r| r.into_error(&address))
                })
                .await
            }
        };
        tracing::warn!("fault switch ack-before-commit: acknowledged write ended {outcome:?}");
    }

    /// Writes through this node's raft core, without forwarding.
    async fn propose_local(
        &self,
        proposal: Proposal,
    ) -> Result<Result<rxd_db::Response, rxd_db::ApplyError>, RaftError> {
        let resp = self
            .inner
            .raft
            .client_write(proposal)
            .await
            .map_err(from_client_write)?;
        Ok(resp.data.0)
    }

    /// Confirms leadership with a quorum and returns the index a linearizable read must see.
    ///
    /// One confirmation round gives each voter a heartbeat interval to answer; a busy member
    /// can miss it while the quorum is intact, so a failed round is tried again, for up to half
    /// the request timeout, before the leader reports that it cannot reach a quorum.
    async fn local_read_index(&self) -> Result<Option<u64>, RaftError> {
        let settings = &self.inner.settings;
        let deadline = tokio::time::Instant::now() + settings.request_timeout / 2;
        loop {
            match self
                .inner
                .raft
                .get_read_log_id()
                .await
                .map_err(from_read_index)
            {
                Ok((read, _applied)) => return Ok(read.map(|l| l.index)),
                Err(RaftError::NoQuorum)
                    if tokio::time::Instant::now() + settings.heartbeat_interval < deadline =>
                {
                    tokio::time::sleep(settings.heartbeat_interval).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Linearizable read: on the leader after confirming its leadership; on a follower after
    /// asking the leader for a read index ([`crate::PATH_READ_INDEX`]) and waiting until the
    /// local replica applied it. `f` then runs on the local replica inside one read
    /// transaction, so several queries see the same state.
    pub async fn read<T, F>(&self, f: F) -> Result<T, RaftError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, rxd_db::DbError> + Send + 'static,
    {
        #[cfg(feature = "fault-injection")]
        if self
            .inner
            .settings
            .fault(crate::FaultSwitch::StaleFollowerReads)
            && self.metrics().current_leader != Some(self.inner.id)
        {
            return self.read_local(f).await;
        }
        let limit = self.inner.settings.request_timeout;
        bounded(limit, "a linearizable read index", async {
            let index = self
                .on_leader(|id, address| async move {
                    if id == self.inner.id {
                        self.local_read_index().await
                    } else {
                        let reply: Result<Option<u64>, Refusal> =
                            self.post(&address, PATH_READ_INDEX, &()).await?;
                        reply.map_err(|r| r.into_error(&address))
                    }
                })
                .await?;
            if let Some(index) = index {
                self.inner
                    .raft
                    .wait(None)
                    .applied_index_at_least(Some(index), "the read index")
                    .await
                    .map_err(|e| from_wait(e, "the read index", limit))?;
            }
            Ok(())
        })
        .await?;
        self.read_local(f).await
    }

    /// Local read without the linearizability round trip, for a member's own state. `f` runs
    /// inside one read transaction on the local replica.
    pub async fn read_local<T, F>(&self, f: F) -> Result<T, RaftError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, rxd_db::DbError> + Send + 'static,
    {
        let reader = self.inner.reader.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut conn = reader.lock().unwrap_or_else(PoisonError::into_inner);
            let tx = conn.transaction()?;
            f(&tx)
        })
        .await;
        match joined {
            Ok(result) => result.map_err(RaftError::Read),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Blocking tasks are cancelled only when the runtime shuts down.
            Err(_) => Err(RaftError::ShuttingDown),
        }
    }

    /// Adds `id` at `address` as a learner and waits until the leader sees the learner's log
    /// caught up (the learner applies what it holds a moment later). Runs on the leader;
    /// elsewhere it fails with [`RaftError::NotLeader`].
    pub async fn add_learner(&self, id: u64, address: String) -> Result<(), RaftError> {
        let limit = self.inner.settings.catch_up_timeout;
        bounded(limit, "the new learner to catch up", async {
            self.inner
                .raft
                .add_learner(id, BasicNode::new(address), true)
                .await
                .map_err(from_client_write)?;
            Ok(())
        })
        .await
    }

    /// Makes exactly `voters` the voters; members that were voters stay as learners. Each new
    /// voter must already be a learner. Runs on the leader.
    pub async fn change_voters(&self, voters: BTreeSet<u64>) -> Result<(), RaftError> {
        let limit = self.inner.settings.request_timeout;
        bounded(limit, "the membership change to commit", async {
            self.inner
                .raft
                .change_membership(ChangeMembers::ReplaceAllVoters(voters), true)
                .await
                .map_err(from_client_write)?;
            Ok(())
        })
        .await
    }

    /// Records a new cluster address for node `id` (a standalone server gets its address when it
    /// bootstraps a cluster). Runs on the leader.
    pub async fn set_node_address(&self, id: u64, address: String) -> Result<(), RaftError> {
        let limit = self.inner.settings.request_timeout;
        bounded(limit, "the address change to commit", async {
            self.inner
                .raft
                .change_membership(
                    ChangeMembers::SetNodes(BTreeMap::from([(id, BasicNode::new(address))])),
                    true,
                )
                .await
                .map_err(from_client_write)?;
            Ok(())
        })
        .await
    }

    /// Removes `id` from the group, whether voter or learner. Runs on the leader.
    pub async fn remove_node(&self, id: u64) -> Result<(), RaftError> {
        let limit = self.inner.settings.request_timeout;
        let is_voter = self.status().voters.contains_key(&id);
        let ids = BTreeSet::from([id]);
        // A voter leaves the voters and, with `retain` false, the node list in the same change.
        let changes = if is_voter {
            ChangeMembers::RemoveVoters(ids)
        } else {
            ChangeMembers::RemoveNodes(ids)
        };
        bounded(limit, "the membership change to commit", async {
            self.inner
                .raft
                .change_membership(changes, false)
                .await
                .map_err(from_client_write)?;
            Ok(())
        })
        .await
    }

    /// On the leader: the other voters whose log matches the leader's last entry, with their
    /// addresses (the ones that can win an election at once). Empty on any other member.
    pub fn up_to_date_voters(&self) -> Vec<(u64, String)> {
        let m = self.metrics();
        let (Some(replication), Some(last)) = (m.replication.as_ref(), m.last_log_index) else {
            return Vec::new();
        };
        let membership = m.membership_config.membership();
        membership
            .voter_ids()
            .filter(|id| *id != self.inner.id)
            .filter(|id| {
                replication
                    .get(id)
                    .is_some_and(|matched| matched.map(|l| l.index) == Some(last))
            })
            .filter_map(|id| membership.get_node(&id).map(|n| (id, n.addr.clone())))
            .collect()
    }

    /// Starts an election on this node at once (for example after a voter was added and the
    /// caller prefers not to wait for the election timeout).
    pub async fn trigger_election(&self) -> Result<(), RaftError> {
        self.inner.raft.trigger().elect().await?;
        Ok(())
    }

    /// Handles one incoming internal RPC: the daemon routes POST `/internal/raft/{append,vote,
    /// snapshot,propose,read-index}` here with the raw JSON body and returns the bytes. An
    /// error means the request itself was wrong (unknown path, undecodable body); refusals by
    /// raft travel inside the reply.
    pub async fn handle_rpc(&self, path: &str, body: &[u8]) -> Result<Vec<u8>, RaftError> {
        let raft = &self.inner.raft;
        match path {
            PATH_APPEND => encode(path, &raft.append_entries(decode(path, body)?).await),
            PATH_VOTE => encode(path, &raft.vote(decode(path, body)?).await),
            PATH_SNAPSHOT => self.receive_snapshot(body).await,
            PATH_PROPOSE => {
                let proposal: Proposal = decode(path, body)?;
                // Only the local core: a forwarded command is never forwarded again, so a
                // stale view cannot make members bounce it between them.
                let limit = self.inner.settings.request_timeout;
                let reply = bounded(limit, "the command to commit", self.propose_local(proposal))
                    .await
                    .map(Applied)
                    .map_err(|e| Refusal::from_error(&e));
                #[cfg(feature = "fault-injection")]
                if self
                    .inner
                    .settings
                    .fault(crate::FaultSwitch::ReforwardNewId)
                    && reply.is_ok()
                    && crate::faults::lose_this_reply()
                {
                    tracing::warn!(
                        "fault switch reforward-new-id: reply to a committed proposal lost"
                    );
                    return Err(RaftError::Timeout {
                        waiting_for: "the reply, lost by fault switch reforward-new-id",
                        after: Duration::ZERO,
                    });
                }
                encode(path, &reply)
            }
            PATH_READ_INDEX => {
                let limit = self.inner.settings.request_timeout;
                let reply = bounded(limit, "a quorum", self.local_read_index())
                    .await
                    .map_err(|e| Refusal::from_error(&e));
                encode(path, &reply)
            }
            _ => Err(RaftError::UnknownRpc {
                path: path.to_string(),
            }),
        }
    }

    /// Receives a snapshot the leader streams to [`crate::PATH_SNAPSHOT`]: the framed head, then
    /// the database file, written to disk as it arrives (memory does not grow with the
    /// snapshot). The file is checked and made durable before raft installs it. The reply is
    /// the body to send back to the leader.
    pub async fn receive_snapshot<R>(&self, mut body: R) -> Result<Vec<u8>, RaftError>
    where
        R: tokio::io::AsyncRead + Unpin + Send,
    {
        use tokio::io::AsyncReadExt;
        let bad = |e: std::io::Error| RaftError::BadMessage {
            path: PATH_SNAPSHOT.to_string(),
            source: serde_json::Error::io(e),
        };
        let len = body.read_u32().await.map_err(bad)?;
        if len > 16 * 1024 * 1024 {
            return Err(bad(std::io::Error::other("snapshot head too large")));
        }
        let mut head = vec![0; len as usize];
        body.read_exact(&mut head).await.map_err(bad)?;
        let head: SnapshotHead = decode(PATH_SNAPSHOT, &head)?;

        let _one_at_a_time = self.inner.receiving.lock().await;
        let files = self.inner.snapshots.clone();
        let storage = |e: &dyn std::fmt::Display| RaftError::Recover {
            path: files.receiving_path().to_path_buf(),
            message: e.to_string(),
        };
        {
            let mut out = tokio::fs::File::create(files.receiving_path())
                .await
                .map_err(|e| storage(&e))?;
            tokio::io::copy(&mut body, &mut out).await.map_err(bad)?;
            out.sync_all().await.map_err(|e| storage(&e))?;
        }
        let meta = head.meta.clone();
        let accepted = {
            let files = files.clone();
            tokio::task::spawn_blocking(move || files.accept_received(&meta))
                .await
                .map_err(|_| RaftError::ShuttingDown)?
        };
        let reply: Result<openraft::raft::SnapshotResponse<u64>, String> = match accepted {
            Ok(file) => {
                let snapshot = openraft::Snapshot {
                    meta: head.meta,
                    snapshot: Box::new(tokio::fs::File::from_std(file)),
                };
                let installed = self
                    .inner
                    .raft
                    .install_full_snapshot(head.vote, snapshot)
                    .await
                    .map_err(|e| e.to_string());
                // Installing renamed it to snapshot.db; anything left was not installed.
                let files = files.clone();
                tokio::task::spawn_blocking(move || files.discard_received())
                    .await
                    .map_err(|_| RaftError::ShuttingDown)?
                    .map_err(|e| storage(&e))?;
                installed
            }
            // A stream cut short or a wrong file: the leader sends it again.
            Err(e) => Err(e.to_string()),
        };
        encode(PATH_SNAPSHOT, &reply)
    }

    /// Stops the raft node. Requests to a stopped node fail with [`RaftError::ShuttingDown`].
    pub async fn shutdown(&self) -> Result<(), RaftError> {
        self.inner
            .raft
            .shutdown()
            .await
            .map_err(|_| RaftError::Panicked)
    }
}
