//! In-process raft groups whose members talk through an in-memory transport: replication,
//! forwarding, linearizable reads, leader loss, restart, refused commands and snapshot install.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use rusqlite::Connection;
use rxd_db::{ApplyError, Command, DbError, Entity, Response};
use rxd_raft::{
    RaftError, RaftRole, RaftSettings, ReplicatedDb, Transport, TransportError, PATH_PROPOSE,
};
use tempfile::TempDir;

/// Bound on every wait in these tests; generous because CI machines can be slow.
const WAIT: Duration = Duration::from_secs(30);

/// Delivers each RPC by calling the peer's `handle_rpc` in a task of its own, as an HTTP
/// server would. A member missing from the map is down.
#[derive(Default)]
struct MemTransport {
    peers: Mutex<HashMap<String, ReplicatedDb>>,
    lost_reply: Mutex<Option<LostReply>>,
}

/// Loses the reply to the next forwarded proposal: the leader handles it, the transport
/// reports that it handled it, waits for `resume`, then tells the sender the connection was
/// reset.
struct LostReply {
    handled: tokio::sync::oneshot::Sender<()>,
    resume: tokio::sync::oneshot::Receiver<()>,
}

impl MemTransport {
    /// Arms a lost reply; returns the signal that the leader handled the proposal and the
    /// trigger that lets the reset reach the sender.
    fn lose_next_propose_reply(
        &self,
    ) -> (
        tokio::sync::oneshot::Receiver<()>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let (handled, handled_rx) = tokio::sync::oneshot::channel();
        let (resume_tx, resume) = tokio::sync::oneshot::channel();
        *self.lost_reply.lock().unwrap() = Some(LostReply { handled, resume });
        (handled_rx, resume_tx)
    }
}

impl Transport for MemTransport {
    fn post(
        &self,
        address: &str,
        path: &'static str,
        body: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        let peer = self.peers.lock().unwrap().get(address).cloned();
        let lost = if path == PATH_PROPOSE && peer.is_some() {
            self.lost_reply.lock().unwrap().take()
        } else {
            None
        };
        Box::pin(async move {
            let peer = peer.ok_or(TransportError::NoSuchPeer)?;
            let handled = tokio::spawn(async move { peer.handle_rpc(path, &body).await });
            match handled.await {
                Ok(Ok(_)) if lost.is_some() => {
                    let lost = lost.expect("checked above");
                    lost.handled.send(()).unwrap();
                    lost.resume.await.unwrap();
                    Err(TransportError::Exchange(Box::new(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "connection reset by peer",
                    ))))
                }
                Ok(Ok(reply)) => Ok(reply),
                Ok(Err(e)) => Err(TransportError::Status {
                    status: 500,
                    body: e.to_string(),
                }),
                Err(e) => Err(TransportError::Exchange(Box::new(e))),
            }
        })
    }
}

fn address(id: u64) -> String {
    // Never bound: the in-memory transport only uses it as a key.
    format!("127.0.0.1:{}", 8440 + id)
}

fn fast_settings() -> RaftSettings {
    RaftSettings {
        heartbeat_interval: Duration::from_millis(100),
        election_timeout_min: Duration::from_millis(500),
        election_timeout_max: Duration::from_millis(1000),
        request_timeout: WAIT,
        catch_up_timeout: WAIT,
        ..RaftSettings::default()
    }
}

struct Cluster {
    transport: Arc<MemTransport>,
    settings: RaftSettings,
    dirs: HashMap<u64, TempDir>,
    nodes: BTreeMap<u64, ReplicatedDb>,
}

impl Cluster {
    fn new(settings: RaftSettings) -> Self {
        Cluster {
            transport: Arc::new(MemTransport::default()),
            settings,
            dirs: HashMap::new(),
            nodes: BTreeMap::new(),
        }
    }

    /// Opens node `id` from its directory (created on first start) and connects it.
    async fn start(&mut self, id: u64) -> ReplicatedDb {
        let dir = self
            .dirs
            .entry(id)
            .or_insert_with(|| tempfile::tempdir().unwrap())
            .path()
            .join("database/global");
        let node = ReplicatedDb::open(&dir, id, self.transport.clone(), self.settings.clone())
            .await
            .unwrap();
        self.transport
            .peers
            .lock()
            .unwrap()
            .insert(address(id), node.clone());
        self.nodes.insert(id, node.clone());
        node
    }

    /// Disconnects node `id` and shuts it down, as if its process died.
    async fn kill(&mut self, id: u64) {
        self.transport.peers.lock().unwrap().remove(&address(id));
        let node = self.nodes.remove(&id).unwrap();
        node.shutdown().await.unwrap();
        assert_eq!(node.status().role, RaftRole::Shutdown);
    }

    fn node(&self, id: u64) -> ReplicatedDb {
        self.nodes[&id].clone()
    }

    /// Node 1 bootstraps a group; the others join as learners and become voters.
    async fn three_voters(settings: RaftSettings) -> Self {
        let mut cluster = Cluster::new(settings);
        let n1 = cluster.start(1).await;
        n1.initialize(address(1)).await.unwrap();
        assert_eq!(n1.wait_for_leader(WAIT).await.unwrap(), 1);
        for id in [2, 3] {
            cluster.start(id).await;
            n1.add_learner(id, address(id)).await.unwrap();
        }
        n1.change_voters([1, 2, 3].into()).await.unwrap();
        cluster
    }
}

fn profile(name: &str) -> Command {
    Command::CreateProfile(rxd_db::tables::Profile {
        project: "default".to_string(),
        name: name.to_string(),
        description: format!("Profile {name}"),
        config: [("limits.cpu".to_string(), "2".to_string())].into(),
        devices: BTreeMap::new(),
    })
}

/// Every table, rows rendered and sorted, but `raft_meta`. The request ids in `raft_requests`
/// are compared too: they are a function of the log, like the cluster tables.
fn dump(conn: &Connection) -> Result<Vec<(String, Vec<String>)>, DbError> {
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'raft_meta'
             ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\""))?;
        let columns = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                (0..columns)
                    .map(|i| {
                        r.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(|cells| cells.join("|"))
            })?
            .collect::<Result<_, _>>()?;
        rows.sort();
        out.push((table, rows));
    }
    Ok(out)
}

/// Reads every replica linearizably and checks that they hold the same tables.
async fn assert_replicas_equal(nodes: &[ReplicatedDb]) {
    let mut dumps = Vec::new();
    for node in nodes {
        dumps.push((node.id(), node.read(dump).await.unwrap()));
    }
    let (first_id, first) = &dumps[0];
    assert!(first.iter().any(|(t, _)| t == "profiles"));
    for (id, other) in &dumps[1..] {
        assert_eq!(first, other, "replicas {first_id} and {id} differ");
    }
}

/// Proposes `cmd` through `node` and expects it to commit and apply.
async fn commit(node: &ReplicatedDb, cmd: Command) {
    assert_eq!(node.propose(cmd).await.unwrap(), Ok(Response::Done));
}

async fn read_profile(node: &ReplicatedDb, name: &str) -> rxd_db::tables::Profile {
    let name = name.to_string();
    node.read(move |c| rxd_db::tables::profile(c, "default", &name))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_members_replicate_forward_and_survive_leader_loss() {
    eprintln!("phase: a standalone server bootstraps a one-voter group");
    let mut cluster = Cluster::new(fast_settings());
    let n1 = cluster.start(1).await;
    assert!(!n1.is_initialized().await);
    n1.initialize(address(1)).await.unwrap();
    assert_eq!(n1.wait_for_leader(WAIT).await.unwrap(), 1);
    assert!(n1.is_initialized().await);
    assert!(matches!(
        n1.initialize(address(1)).await,
        Err(RaftError::AlreadyInitialized)
    ));

    eprintln!("phase: two members join as learners, then all three become voters");
    for id in [2, 3] {
        cluster.start(id).await;
        n1.add_learner(id, address(id)).await.unwrap();
        // The leader counts the learner as caught up once it acknowledged the entries; the
        // learner's own core applies them a moment later, so wait before asking it.
        cluster
            .node(id)
            .wait_until(WAIT, "the learner to see itself as one", |s| {
                s.role == RaftRole::Learner && s.learners.contains_key(&id)
            })
            .await
            .unwrap();
        assert!(cluster.node(id).is_initialized().await);
    }
    // status() reads openraft's metrics, which trail the raft core a little: wait on them.
    n1.wait_until(WAIT, "both learners in the leader's view", |s| {
        s.learners.keys().copied().collect::<Vec<_>>() == vec![2, 3]
    })
    .await
    .unwrap();
    n1.change_voters([1, 2, 3].into()).await.unwrap();
    let status = n1
        .wait_until(WAIT, "three voters in the leader's view", |s| {
            s.voters.len() == 3 && s.learners.is_empty()
        })
        .await
        .unwrap();
    assert_eq!(status.role, RaftRole::Leader);
    assert_eq!(status.leader_address, Some(address(1)));
    assert_eq!(
        status.voters,
        (1..=3)
            .map(|id| (id, address(id)))
            .collect::<BTreeMap<_, _>>()
    );
    assert!(status.learners.is_empty());

    eprintln!("phase: a write on a follower is forwarded to the leader");
    let n2 = cluster.node(2);
    commit(&n2, profile("web")).await;
    for id in 1..=3 {
        let web = read_profile(&cluster.node(id), "web").await;
        assert_eq!(web.description, "Profile web");
    }
    assert_replicas_equal(&cluster.nodes.values().cloned().collect::<Vec<_>>()).await;

    eprintln!("phase: the leader dies; the others elect a new one and writes go on");
    cluster.kill(1).await;
    let survivors: Vec<ReplicatedDb> = cluster.nodes.values().cloned().collect();
    let status = survivors[0]
        .wait_until(WAIT, "a new leader", |s| {
            s.leader_id.is_some_and(|leader| leader != 1)
        })
        .await
        .unwrap();
    let new_leader = status.leader_id.unwrap();
    assert!([2, 3].contains(&new_leader));
    for node in &survivors {
        let name = format!("after-{}", node.id());
        commit(node, profile(&name)).await;
    }
    for node in &survivors {
        read_profile(node, "after-2").await;
        read_profile(node, "after-3").await;
    }
    assert_replicas_equal(&survivors).await;

    eprintln!("phase: the old leader restarts from its directory with its data");
    let n1 = cluster.start(1).await;
    let web = n1
        .read_local(|c| rxd_db::tables::profile(c, "default", "web"))
        .await
        .unwrap();
    assert_eq!(web.description, "Profile web");
    let target = cluster.node(new_leader).status().last_applied;
    n1.wait_until(WAIT, "the restarted member to catch up", |s| {
        s.last_applied >= target
    })
    .await
    .unwrap();
    read_profile(&n1, "after-2").await;
    commit(&n1, profile("back")).await;
    assert_replicas_equal(&cluster.nodes.values().cloned().collect::<Vec<_>>()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_command_returns_its_error_everywhere_and_later_commands_apply() {
    let cluster = Cluster::three_voters(fast_settings()).await;
    let missing = Command::DeleteProfile {
        project: "default".to_string(),
        name: "missing".to_string(),
    };

    eprintln!("phase: deleting a missing profile is refused, whichever member proposes it");
    for id in 1..=3 {
        let refused = cluster.node(id).propose(missing.clone()).await.unwrap();
        assert_eq!(
            refused,
            Err(ApplyError::NotFound {
                entity: Entity::Profile,
                name: "missing".to_string()
            })
        );
    }

    eprintln!("phase: later commands still apply on every replica");
    for id in 1..=3 {
        let name = format!("p{id}");
        commit(&cluster.node(id), profile(&name)).await;
    }
    // Another kind of refusal, on a follower, changes nothing either.
    let duplicate = cluster.node(2).propose(profile("p1")).await.unwrap();
    assert!(matches!(duplicate, Err(ApplyError::Exists { .. })));
    for id in 1..=3 {
        let names: Vec<String> = cluster
            .node(id)
            .read(|c| rxd_db::tables::profiles(c, "default"))
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["default", "p1", "p2", "p3"]);
    }
    assert_replicas_equal(&cluster.nodes.values().cloned().collect::<Vec<_>>()).await;

    eprintln!("phase: a voter is removed; the other two keep the group");
    let leader = cluster.node(1);
    assert!(matches!(
        cluster.node(2).remove_node(3).await,
        Err(RaftError::NotLeader {
            leader_id: Some(1),
            ..
        })
    ));
    leader.remove_node(3).await.unwrap();
    leader
        .wait_until(WAIT, "voters 1 and 2 only", |s| {
            s.voters.keys().copied().collect::<Vec<_>>() == vec![1, 2] && s.learners.is_empty()
        })
        .await
        .unwrap();
    commit(&cluster.node(2), profile("two")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn late_learner_catches_up_through_a_snapshot() {
    let settings = RaftSettings {
        snapshot_after_entries: 10,
        entries_kept_after_snapshot: 0,
        ..fast_settings()
    };
    let mut cluster = Cluster::new(settings);
    let n1 = cluster.start(1).await;
    n1.initialize(address(1)).await.unwrap();
    n1.wait_for_leader(WAIT).await.unwrap();

    eprintln!("phase: enough writes that the leader snapshots and purges its log");
    for i in 0..50 {
        let cmd = Command::SetConfig {
            set: [(format!("key.{i}"), i.to_string())].into(),
            unset: vec![],
        };
        commit(&n1, cmd).await;
    }
    n1.wait_until(WAIT, "a snapshot on the leader", |s| {
        s.snapshot_index >= Some(40)
    })
    .await
    .unwrap();

    eprintln!("phase: a learner added now can only catch up by installing the snapshot");
    let n2 = cluster.start(2).await;
    n1.add_learner(2, address(2)).await.unwrap();
    let status = n2
        .wait_until(WAIT, "the snapshot on the learner", |s| {
            s.snapshot_index >= Some(40)
        })
        .await
        .unwrap();
    assert_eq!(status.role, RaftRole::Learner);
    let config = n2.read(rxd_db::tables::config).await.unwrap();
    assert_eq!(config.len(), 50);
    assert_eq!(config.get("key.49").map(String::as_str), Some("49"));
    assert_replicas_equal(&[n1.clone(), n2.clone()]).await;

    eprintln!("phase: the learner follows writes made after the snapshot");
    let cmd = Command::SetConfig {
        set: [("after.snapshot".to_string(), "yes".to_string())].into(),
        unset: vec![],
    };
    commit(&n2, cmd).await;
    assert_replicas_equal(&[n1, n2]).await;
}

fn web(description: &str) -> rxd_db::tables::Profile {
    rxd_db::tables::Profile {
        project: "default".to_string(),
        name: "web".to_string(),
        description: description.to_string(),
        config: BTreeMap::new(),
        devices: BTreeMap::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forwarded_write_whose_reply_is_lost_applies_exactly_once() {
    let cluster = Cluster::three_voters(fast_settings()).await;
    let leader = cluster.node(1);
    let follower = cluster.node(2);
    commit(&leader, Command::CreateProfile(web("v0"))).await;

    eprintln!("phase: a follower forwards v1; the leader applies it and the reply is lost");
    let (handled, resume) = cluster.transport.lose_next_propose_reply();
    let sender = follower.clone();
    let v1 = tokio::spawn(async move { sender.propose(Command::UpdateProfile(web("v1"))).await });
    tokio::time::timeout(WAIT, handled).await.unwrap().unwrap();
    assert_eq!(read_profile(&leader, "web").await.description, "v1");

    eprintln!("phase: v2 commits before the follower learns that its connection broke");
    commit(&leader, Command::UpdateProfile(web("v2"))).await;
    resume.send(()).unwrap();
    let outcome = tokio::time::timeout(WAIT, v1).await.unwrap().unwrap();
    assert_eq!(outcome.unwrap(), Ok(Response::Done));
    for id in 1..=3 {
        let profile = read_profile(&cluster.node(id), "web").await;
        assert_eq!(
            profile.description, "v2",
            "v1 was applied twice on member {id}"
        );
    }

    eprintln!("phase: a token consumption whose reply is lost still answers the token");
    let token = rxd_db::tables::Token {
        id: "op-1".to_string(),
        kind: "join".to_string(),
        name: "node4".to_string(),
        secret: "s3cr3t".to_string(),
        fingerprint: "ff".to_string(),
        addresses: vec![address(1)],
        created_at: "2026-01-01T00:00:00Z".to_string(),
        expires_at: "2030-01-01T00:00:00Z".to_string(),
        location: "node1".to_string(),
        restricted_projects: None,
    };
    commit(&leader, Command::AddToken(token)).await;
    let (handled, resume) = cluster.transport.lose_next_propose_reply();
    let sender = follower.clone();
    let consumed = tokio::spawn(async move {
        sender
            .propose(Command::ConsumeToken {
                kind: "join".to_string(),
                name: "node4".to_string(),
                secret: "s3cr3t".to_string(),
                now: "2026-06-01T00:00:00Z".to_string(),
            })
            .await
    });
    tokio::time::timeout(WAIT, handled).await.unwrap().unwrap();
    resume.send(()).unwrap();
    let outcome = tokio::time::timeout(WAIT, consumed).await.unwrap().unwrap();
    assert!(
        matches!(&outcome, Ok(Ok(Response::Token(t))) if t.id == "op-1"),
        "the consumption answered {outcome:?}"
    );
    assert_replicas_equal(&cluster.nodes.values().cloned().collect::<Vec<_>>()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_whose_leader_dies_before_answering_applies_once_through_the_next_leader() {
    let mut cluster = Cluster::three_voters(fast_settings()).await;
    let leader = cluster.node(1);
    commit(&leader, Command::CreateProfile(web("v0"))).await;

    eprintln!("phase: a follower forwards v1; the leader commits it, then v2");
    let (handled, resume) = cluster.transport.lose_next_propose_reply();
    let sender = cluster.node(2);
    let v1 = tokio::spawn(async move { sender.propose(Command::UpdateProfile(web("v1"))).await });
    tokio::time::timeout(WAIT, handled).await.unwrap().unwrap();
    commit(&leader, Command::UpdateProfile(web("v2"))).await;

    eprintln!("phase: the leader dies before its answer to the follower leaves");
    cluster.kill(1).await;
    resume.send(()).unwrap();
    let outcome = tokio::time::timeout(WAIT, v1).await.unwrap().unwrap();
    assert_eq!(outcome.unwrap(), Ok(Response::Done));
    let survivors: Vec<ReplicatedDb> = cluster.nodes.values().cloned().collect();
    for node in &survivors {
        let profile = read_profile(node, "web").await;
        assert_eq!(
            profile.description,
            "v2",
            "v1 was applied twice on member {}",
            node.id()
        );
    }
    assert_replicas_equal(&survivors).await;
}

#[cfg(feature = "fault-injection")]
fn with_fault(switch: rxd_raft::FaultSwitch) -> RaftSettings {
    RaftSettings {
        faults: [switch].into(),
        ..fast_settings()
    }
}

/// The bug idempotent proposals fixed, switched back on: a new request id after a lost reply
/// makes the leader apply the command a second time.
#[cfg(feature = "fault-injection")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_reforward_new_id_a_write_whose_reply_is_lost_applies_twice() {
    let cluster = Cluster::three_voters(with_fault(rxd_raft::FaultSwitch::ReforwardNewId)).await;
    let leader = cluster.node(1);
    let follower = cluster.node(2);
    commit(&leader, Command::CreateProfile(web("v0"))).await;
    let (handled, resume) = cluster.transport.lose_next_propose_reply();
    let sender = follower.clone();
    let v1 = tokio::spawn(async move { sender.propose(Command::UpdateProfile(web("v1"))).await });
    tokio::time::timeout(WAIT, handled).await.unwrap().unwrap();
    commit(&leader, Command::UpdateProfile(web("v2"))).await;
    resume.send(()).unwrap();
    let outcome = tokio::time::timeout(WAIT, v1).await.unwrap().unwrap();
    assert_eq!(outcome.unwrap(), Ok(Response::Done));
    for id in 1..=3 {
        let profile = read_profile(&cluster.node(id), "web").await;
        assert_eq!(
            profile.description, "v1",
            "member {id}: v1 was not applied a second time after v2"
        );
    }
}

/// A follower cut off from the leader answers reads from its own, stale replica.
#[cfg(feature = "fault-injection")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_stale_follower_reads_a_cut_off_follower_reads_an_old_value() {
    let cluster =
        Cluster::three_voters(with_fault(rxd_raft::FaultSwitch::StaleFollowerReads)).await;
    let leader = cluster.node(1);
    let follower = cluster.node(3);
    commit(&leader, Command::CreateProfile(web("v0"))).await;
    follower
        .wait_until(WAIT, "v0 applied on member 3", |s| {
            s.last_applied >= leader.status().last_applied
        })
        .await
        .unwrap();
    assert_eq!(read_profile(&follower, "web").await.description, "v0");

    eprintln!("phase: member 3 no longer receives anything; v1 commits on 1 and 2");
    cluster.transport.peers.lock().unwrap().remove(&address(3));
    commit(&leader, Command::UpdateProfile(web("v1"))).await;
    // The leader still reads linearizably (member 2 reads locally too, and may lag).
    assert_eq!(read_profile(&leader, "web").await.description, "v1");
    assert_eq!(
        read_profile(&follower, "web").await.description,
        "v0",
        "member 3 answered a linearizable read"
    );
}

/// A write is acknowledged although no quorum exists to commit it.
#[cfg(feature = "fault-injection")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_ack_before_commit_a_write_without_a_quorum_is_acknowledged() {
    let settings = RaftSettings {
        request_timeout: Duration::from_secs(2),
        ..with_fault(rxd_raft::FaultSwitch::AckBeforeCommit)
    };
    let mut cluster = Cluster::three_voters(settings).await;
    let leader = cluster.node(1);
    commit(&leader, Command::CreateProfile(web("v0"))).await;
    cluster.kill(2).await;
    cluster.kill(3).await;
    let outcome = tokio::time::timeout(WAIT, leader.propose(profile("lost")))
        .await
        .unwrap();
    assert_eq!(outcome.unwrap(), Ok(Response::Done));
    let found = leader
        .read_local(|c| rxd_db::tables::profile(c, "default", "lost").map(|_| ()))
        .await;
    assert!(found.is_err(), "the write committed without a quorum");
    // Commands outside the switch's reach still wait for their commit.
    let token = leader
        .propose(Command::DeleteToken {
            id: "none".to_string(),
        })
        .await;
    assert!(
        token.is_err(),
        "a token command answered without a quorum: {token:?}"
    );
}
