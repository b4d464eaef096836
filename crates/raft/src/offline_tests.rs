//! The offline membership changes: a recovered member starts as the single voter with every
//! entry it held applied, an edit changes addresses without committing anything, and a refused
//! change writes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Membership, Vote};
use tempfile::TempDir;

use crate::log_store::LogStore;
use crate::offline::{self, OfflineError, RaftNode};
use crate::recovery_tests::set_entry as step;
use crate::state_machine::StateMachine;
use crate::types::TypeConfig;
use crate::{RaftSettings, ReplicatedDb, Transport, TransportError};

/// The other members are gone for good.
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

fn log_id(term: u64, leader: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, leader), index)
}

fn three_voters() -> Entry<TypeConfig> {
    let nodes: BTreeMap<u64, openraft::BasicNode> = (1..=3)
        .map(|i| (i, openraft::BasicNode::new(format!("10.0.0.{i}:8443"))))
        .collect();
    Entry {
        log_id: log_id(0, 0, 0),
        payload: EntryPayload::Membership(Membership::new(vec![[1, 2, 3].into()], nodes)),
    }
}

/// Member 1 of three voters (the membership at index 0, as raft's initialisation writes it):
/// it applied index 2, knows index 3 committed, and holds two more
/// entries from leader 2 of term 2 that it never learnt were committed. Entry 3's value names
/// the word a membership entry is recognised by.
async fn survivor() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let entries = vec![
        three_voters(),
        step(log_id(1, 1, 1), "one"),
        step(log_id(1, 1, 2), "two"),
        step(log_id(1, 1, 3), "\"Membership\""),
        step(log_id(2, 2, 4), "four"),
        step(log_id(2, 2, 5), "five"),
    ];
    let mut sm = StateMachine::open(dir.path()).unwrap();
    sm.apply(entries[..3].to_vec()).await.unwrap();
    drop(sm);
    let mut log = LogStore::open(&dir.path().join("log.db")).unwrap();
    log.append_entries(entries).unwrap();
    log.save_vote(&Vote::new_committed(2, 2)).await.unwrap();
    log.save_committed(Some(log_id(1, 1, 3))).await.unwrap();
    dir
}

async fn value(db: &ReplicatedDb) -> Option<String> {
    db.read_local(|conn| Ok(rxd_db::tables::config(conn)?.get("user.step").cloned()))
        .await
        .unwrap()
}

fn node(id: u64, address: &str, voter: bool) -> RaftNode {
    RaftNode {
        id,
        address: address.to_string(),
        voter,
    }
}

#[tokio::test]
async fn the_stored_membership_reads_as_the_daemon_would_start_with_it() {
    let dir = survivor().await;
    let config = offline::read_config(dir.path()).unwrap();
    assert_eq!(
        config.nodes,
        vec![
            node(1, "10.0.0.1:8443", true),
            node(2, "10.0.0.2:8443", true),
            node(3, "10.0.0.3:8443", true)
        ]
    );
    assert_eq!((config.last_index, config.committed_index), (5, 3));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        offline::read_config(empty.path()),
        Err(OfflineError::Uninitialized)
    ));
}

#[tokio::test]
async fn a_recovered_voter_starts_alone_with_every_entry_it_held() {
    let dir = survivor().await;
    assert_eq!(offline::recover(dir.path(), 1).unwrap(), 6);
    let config = offline::read_config(dir.path()).unwrap();
    assert_eq!(config.nodes, vec![node(1, "10.0.0.1:8443", true)]);
    assert_eq!((config.last_index, config.committed_index), (6, 6));

    let db = ReplicatedDb::open(dir.path(), 1, Arc::new(Nowhere), RaftSettings::default())
        .await
        .unwrap();
    assert_eq!(
        db.wait_for_leader(Duration::from_secs(10)).await.unwrap(),
        1
    );
    let status = db
        .wait_until(Duration::from_secs(10), "all applied", |s| {
            s.last_applied >= Some(6)
        })
        .await
        .unwrap();
    assert_eq!(status.voters.keys().copied().collect::<Vec<_>>(), vec![1]);
    assert!(status.learners.is_empty());
    // Entries 4 and 5 were never known committed here; nothing the survivor held is lost.
    assert_eq!(value(&db).await.as_deref(), Some("five"));
    let written = db
        .propose(rxd_db::Command::SetConfig {
            set: [("user.step".to_string(), "seven".to_string())].into(),
            unset: vec![],
        })
        .await
        .unwrap();
    assert!(written.is_ok(), "{written:?}");
    assert_eq!(value(&db).await.as_deref(), Some("seven"));
    db.shutdown().await.unwrap();
}

#[tokio::test]
async fn recovery_on_a_member_that_is_not_a_voter_writes_nothing() {
    let dir = survivor().await;
    let before = offline::read_config(dir.path()).unwrap();
    assert!(matches!(
        offline::recover(dir.path(), 4),
        Err(OfflineError::NotVoter(4))
    ));
    assert_eq!(offline::read_config(dir.path()).unwrap(), before);
}

#[tokio::test]
async fn an_edit_changes_addresses_and_roles_and_commits_nothing() {
    let dir = survivor().await;
    let nodes = [
        node(1, "10.0.1.1:8443", true),
        node(2, "10.0.1.2:8443", true),
        node(3, "10.0.1.3:8443", false),
    ];
    assert_eq!(offline::reconfigure(dir.path(), 1, &nodes).unwrap(), 6);
    let config = offline::read_config(dir.path()).unwrap();
    assert_eq!(config.nodes, nodes.to_vec());
    assert_eq!((config.last_index, config.committed_index), (6, 3));

    // No voter at all is refused, and nothing is written.
    let none = [node(1, "10.0.1.1:8443", false)];
    assert!(matches!(
        offline::reconfigure(dir.path(), 1, &none),
        Err(OfflineError::Invalid(_))
    ));
    assert_eq!(offline::read_config(dir.path()).unwrap(), config);

    // The vote moved past every term in the log, so no other leader can write the new
    // entry's log id.
    let mut log = LogStore::open(&dir.path().join("log.db")).unwrap();
    let vote = log.read_vote().await.unwrap().unwrap();
    assert_eq!(vote, Vote::new(3, 1));
}

#[tokio::test]
async fn a_log_behind_an_installed_snapshot_is_cleaned_before_the_change() {
    // The state machine applied 5 from a snapshot; the log still ends at 3.
    let dir = tempfile::tempdir().unwrap();
    let mut sm = StateMachine::open(dir.path()).unwrap();
    sm.apply([
        three_voters(),
        step(log_id(1, 1, 1), "one"),
        step(log_id(1, 1, 2), "two"),
        step(log_id(1, 1, 3), "three"),
        step(log_id(2, 2, 4), "four"),
        step(log_id(2, 2, 5), "five"),
    ])
    .await
    .unwrap();
    drop(sm);
    let mut log = LogStore::open(&dir.path().join("log.db")).unwrap();
    log.append_entries(vec![three_voters(), step(log_id(1, 1, 1), "one")])
        .unwrap();
    log.save_vote(&Vote::new_committed(2, 2)).await.unwrap();
    drop(log);
    assert_eq!(offline::recover(dir.path(), 2).unwrap(), 6);
    let db = ReplicatedDb::open(dir.path(), 2, Arc::new(Nowhere), RaftSettings::default())
        .await
        .unwrap();
    assert_eq!(
        db.wait_for_leader(Duration::from_secs(10)).await.unwrap(),
        2
    );
    db.wait_until(Duration::from_secs(10), "applied 6", |s| {
        s.last_applied >= Some(6)
    })
    .await
    .unwrap();
    assert_eq!(value(&db).await.as_deref(), Some("five"));
    db.shutdown().await.unwrap();
}
