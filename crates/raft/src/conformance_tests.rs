//! openraft's storage conformance suite against the SQLite log store and state machine, plus
//! checks of what the suite cannot see (commands, refusals, snapshot contents).

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftLogReader, RaftSnapshotBuilder,
};
use tempfile::TempDir;

use crate::log_store::LogStore;
use crate::state_machine::StateMachine;
use crate::types::{Applied, Proposal, StorageError, TypeConfig};

/// Builds a fresh store in its own temporary directory; the directory lives as long as the
/// store (it is the suite's guard value).
struct FreshStore;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for FreshStore {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("a temporary directory can be created");
        let log = LogStore::open(&dir.path().join("log.db")).expect("log.db opens");
        let sm = StateMachine::open(dir.path()).expect("state.db opens");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(FreshStore).unwrap();
}

fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn command(index: u64, cmd: rxd_db::Command) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(1, index),
        payload: EntryPayload::Normal(Proposal {
            id: uuid::Uuid::new_v4(),
            command: cmd,
        }),
    }
}

fn delete_profile(name: &str) -> rxd_db::Command {
    rxd_db::Command::DeleteProfile {
        project: "default".to_string(),
        name: name.to_string(),
    }
}

fn set_config(key: &str, value: &str) -> rxd_db::Command {
    rxd_db::Command::SetConfig {
        set: [(key.to_string(), value.to_string())].into(),
        unset: vec![],
    }
}

fn read_config(dir: &TempDir) -> rxd_db::tables::Config {
    let conn = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    rxd_db::tables::config(&conn).unwrap()
}

#[tokio::test]
async fn refused_command_rolls_back_alone_and_counts_as_applied() {
    let (dir, _log, mut sm) = FreshStore.build().await.unwrap();
    let replies = sm
        .apply([
            command(1, set_config("a", "1")),
            command(2, delete_profile("missing")),
            command(3, set_config("b", "2")),
        ])
        .await
        .unwrap();
    assert_eq!(replies[0], Applied(Ok(rxd_db::Response::Done)));
    assert!(matches!(
        replies[1].0,
        Err(rxd_db::ApplyError::NotFound { .. })
    ));
    assert_eq!(replies[2], Applied(Ok(rxd_db::Response::Done)));
    let (last, _) = sm.applied_state().await.unwrap();
    assert_eq!(last, Some(log_id(1, 3)));
    let config = read_config(&dir);
    assert_eq!(config.get("a").map(String::as_str), Some("1"));
    assert_eq!(config.get("b").map(String::as_str), Some("2"));
}

#[tokio::test]
async fn snapshot_install_replaces_state_and_keeps_wal() {
    let (_dir_l, _log_l, mut leader) = FreshStore.build().await.unwrap();
    let (dir_f, mut log_f, mut follower) = FreshStore.build().await.unwrap();
    leader
        .apply([
            Entry {
                log_id: log_id(1, 1),
                payload: EntryPayload::Membership(Membership::new(
                    vec![[1u64].into()],
                    [(1u64, openraft::BasicNode::new("127.0.0.1:1"))]
                        .into_iter()
                        .collect::<std::collections::BTreeMap<_, _>>(),
                )),
            },
            command(2, set_config("from", "leader")),
        ])
        .await
        .unwrap();
    follower
        .apply([command(1, set_config("stale", "yes"))])
        .await
        .unwrap();
    let snapshot = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    follower
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .unwrap();

    let config = read_config(&dir_f);
    assert_eq!(config.get("from").map(String::as_str), Some("leader"));
    assert_eq!(config.get("stale"), None);
    let (last, membership) = follower.applied_state().await.unwrap();
    assert_eq!(last, Some(log_id(1, 2)));
    assert_eq!(membership.log_id(), &Some(log_id(1, 1)));

    // The live database is still in WAL mode and takes writes after the restore.
    let conn = rusqlite::Connection::open(dir_f.path().join("state.db")).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    follower
        .apply([command(3, set_config("after", "install"))])
        .await
        .unwrap();
    assert_eq!(
        read_config(&dir_f).get("after").map(String::as_str),
        Some("install")
    );
    // The log was untouched by the state machine.
    assert!(log_f.try_get_log_entries(0..10).await.unwrap().is_empty());
    let state = log_f.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, None);
}
