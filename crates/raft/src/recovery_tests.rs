//! Recovery at open after a crash in the middle of a snapshot install, and the checks on a
//! snapshot received from the leader.
//!
//! openraft purges the log up to a snapshot as soon as it hands the snapshot to the state
//! machine, before the install finishes. These tests lay out the files such a crash leaves
//! (state at an old index, log purged past it) and open the store again.

use std::sync::Arc;

use futures::future::BoxFuture;
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftSnapshotBuilder, Vote,
};
use tempfile::TempDir;

use crate::log_store::LogStore;
use crate::network::{frame_head, SnapshotHead};
use crate::state_machine::StateMachine;
use crate::types::{Proposal, TypeConfig};
use crate::{RaftSettings, ReplicatedDb, Transport, TransportError};

/// A transport to nowhere: the stores under test run alone.
struct Nowhere;

impl Transport for Nowhere {
    fn post(
        &self,
        _address: &str,
        _path: &'static str,
        _body: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        Box::pin(async { Err(TransportError::NoSuchPeer) })
    }
}

fn log_id(index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(1, 1), index)
}

fn membership_entry() -> Entry<TypeConfig> {
    let nodes = [
        (1, openraft::BasicNode::new("127.0.0.1:1")),
        (2, openraft::BasicNode::new("127.0.0.1:2")),
    ];
    Entry {
        log_id: log_id(1),
        payload: EntryPayload::Membership(Membership::new(
            vec![[1, 2].into()],
            nodes
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>(),
        )),
    }
}

fn config_entry(index: u64, value: &str) -> Entry<TypeConfig> {
    set_entry(log_id(index), value)
}

/// An entry at `id` that sets `user.step` to `value`.
pub(crate) fn set_entry(id: LogId<u64>, value: &str) -> Entry<TypeConfig> {
    Entry {
        log_id: id,
        payload: EntryPayload::Normal(Proposal {
            id: uuid::Uuid::new_v4(),
            command: rxd_db::Command::SetConfig {
                set: [("user.step".to_string(), value.to_string())].into(),
                unset: vec![],
            },
        }),
    }
}

/// A leader's state machine at index 3 with a snapshot of it in `snapshot.db`.
async fn leader_with_snapshot() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = StateMachine::open(dir.path()).unwrap();
    sm.apply([
        membership_entry(),
        config_entry(2, "two"),
        config_entry(3, "three"),
    ])
    .await
    .unwrap();
    sm.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    dir
}

/// A follower that applied only index 1, whose log raft already purged up to index 3 and
/// marked committed there: the state a crash leaves between raft's purge and the install.
async fn follower_cut_short() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = StateMachine::open(dir.path()).unwrap();
    sm.apply([membership_entry()]).await.unwrap();
    let mut log = LogStore::open(&dir.path().join("log.db")).unwrap();
    log.save_vote(&Vote::new_committed(1, 1)).await.unwrap();
    log.save_committed(Some(log_id(3))).await.unwrap();
    log.purge(log_id(3)).await.unwrap();
    dir
}

async fn open(dir: &TempDir) -> ReplicatedDb {
    ReplicatedDb::open(dir.path(), 2, Arc::new(Nowhere), RaftSettings::default())
        .await
        .expect("the store opens after the crash")
}

async fn step(db: &ReplicatedDb) -> Option<String> {
    db.read_local(|conn| Ok(rxd_db::tables::config(conn)?.get("user.step").cloned()))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_received_snapshot_is_restored_when_the_install_was_cut_short() {
    let leader = leader_with_snapshot().await;
    let follower = follower_cut_short().await;
    // The snapshot had arrived whole and been made durable before raft purged the log.
    std::fs::copy(
        leader.path().join("snapshot.db"),
        follower.path().join("snapshot-received.db"),
    )
    .unwrap();

    let db = open(&follower).await;
    let status = db
        .wait_until(std::time::Duration::from_secs(10), "applied 3", |s| {
            s.last_applied == Some(3)
        })
        .await
        .unwrap();
    assert_eq!(status.snapshot_index, Some(3));
    assert_eq!(step(&db).await.as_deref(), Some("three"));
    assert!(!follower.path().join("snapshot-received.db").exists());
    db.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_purged_log_with_no_snapshot_to_cover_it_is_dropped_so_the_leader_resends() {
    let follower = follower_cut_short().await;
    // A stream that never completed: nothing usable on disk.
    std::fs::write(
        follower.path().join("snapshot-receive.tmp"),
        b"SQLite format 3\0",
    )
    .unwrap();

    let db = open(&follower).await;
    let status = db
        .wait_until(std::time::Duration::from_secs(10), "raft running", |s| {
            s.last_applied == Some(1)
        })
        .await
        .unwrap();
    // Raft rebuilt a snapshot of what this member has, at the applied index.
    assert!(status.snapshot_index <= Some(1));
    assert!(!follower.path().join("snapshot-receive.tmp").exists());
    db.shutdown().await.unwrap();
    drop(db);
    let mut log = LogStore::open(&follower.path().join("log.db")).unwrap();
    let state = log.get_log_state().await.unwrap();
    assert!(state.last_purged_log_id <= Some(log_id(1)));
}

#[tokio::test]
async fn a_snapshot_stream_cut_short_is_refused_and_changes_nothing() {
    let leader = leader_with_snapshot().await;
    let follower = follower_cut_short().await;
    let db = open(&follower).await;
    let mut sm = StateMachine::open(leader.path()).unwrap();
    let snapshot = sm.get_current_snapshot().await.unwrap().unwrap();
    let mut body = frame_head(&SnapshotHead {
        vote: Vote::new_committed(1, 1),
        meta: snapshot.meta.clone(),
    })
    .unwrap();
    let data = std::fs::read(leader.path().join("snapshot.db")).unwrap();
    body.extend_from_slice(&data[..data.len() / 2]);

    let reply = db.receive_snapshot(&body[..]).await.unwrap();
    let reply: Result<serde_json::Value, String> = serde_json::from_slice(&reply).unwrap();
    let refusal = reply.expect_err("a truncated snapshot is refused");
    assert!(refusal.contains("not a complete database"), "{refusal}");
    assert_eq!(db.status().last_applied, Some(1));
    assert_eq!(step(&db).await, None);
    db.shutdown().await.unwrap();
}
