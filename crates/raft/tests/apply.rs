//! The state machine of a one-voter group, driven through the public API and the wire form of
//! forwarded proposals: replayed request ids, local database failures, consumed tokens.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rusqlite::Connection;
use rxd_db::tables::{Config, Profile, Token};
use rxd_db::{ApplyError, Command, Response};
use rxd_raft::{RaftSettings, ReplicatedDb, Transport, TransportError, PATH_PROPOSE};
use tempfile::TempDir;

/// Bound on every wait in these tests; generous because CI machines can be slow.
const WAIT: Duration = Duration::from_secs(30);

/// A one-voter group has no peers to call.
struct NoPeers;

impl Transport for NoPeers {
    fn post(
        &self,
        _address: &str,
        _path: &'static str,
        _body: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        Box::pin(async { Err(TransportError::NoSuchPeer) })
    }
}

fn settings() -> RaftSettings {
    RaftSettings {
        heartbeat_interval: Duration::from_millis(100),
        election_timeout_min: Duration::from_millis(500),
        election_timeout_max: Duration::from_millis(1000),
        request_timeout: WAIT,
        catch_up_timeout: WAIT,
        ..RaftSettings::default()
    }
}

fn global_dir(dir: &TempDir) -> PathBuf {
    dir.path().join("database/global")
}

async fn open(dir: &Path) -> ReplicatedDb {
    ReplicatedDb::open(dir, 1, Arc::new(NoPeers), settings())
        .await
        .unwrap()
}

/// A standalone server: a new group with this node as its only voter.
async fn standalone(dir: &TempDir) -> ReplicatedDb {
    let db = open(&global_dir(dir)).await;
    db.initialize("127.0.0.1:8443".to_string()).await.unwrap();
    db.wait_for_leader(WAIT).await.unwrap();
    db
}

/// Sends `cmd` under request id `id` as a member forwarding a proposal would, and returns the
/// leader's answer.
async fn forwarded(db: &ReplicatedDb, id: &str, cmd: &Command) -> Result<Response, ApplyError> {
    let body = serde_json::json!({ "id": id, "command": cmd });
    let reply = db
        .handle_rpc(PATH_PROPOSE, &serde_json::to_vec(&body).unwrap())
        .await
        .unwrap();
    let reply: Result<Result<Response, ApplyError>, serde_json::Value> =
        serde_json::from_slice(&reply).unwrap();
    reply.expect("the leader commits the proposal")
}

fn profile(description: &str) -> Profile {
    Profile {
        project: "default".to_string(),
        name: "web".to_string(),
        description: description.to_string(),
        config: Config::new(),
        devices: BTreeMap::new(),
    }
}

fn token(expires_at: &str) -> Token {
    Token {
        id: "op-1".to_string(),
        kind: "join".to_string(),
        name: "node2".to_string(),
        secret: "s3cr3t".to_string(),
        fingerprint: "ff".to_string(),
        addresses: vec!["127.0.0.1:8443".to_string()],
        created_at: "2026-01-01T00:00:00Z".to_string(),
        expires_at: expires_at.to_string(),
        location: "node1".to_string(),
        restricted_projects: None,
    }
}

fn consume(now: &str) -> Command {
    Command::ConsumeToken {
        kind: "join".to_string(),
        name: "node2".to_string(),
        secret: "s3cr3t".to_string(),
        now: now.to_string(),
    }
}

fn add_member() -> Command {
    Command::AddMember {
        id: 2,
        name: "node2".to_string(),
        address: "127.0.0.2:8443".to_string(),
        architecture: "x86_64".to_string(),
        state: rxd_db::tables::MemberState::Pending,
        pools: BTreeMap::new(),
        networks: BTreeMap::new(),
    }
}

/// The last applied index as the state database records it. The answer to a proposal comes
/// after the applier committed, so this is exact where `status()` trails by a moment.
fn raft_meta_last_applied(state: &Path) -> Option<u64> {
    let conn = Connection::open(state).unwrap();
    let text: String = conn
        .query_row(
            "SELECT value FROM raft_meta WHERE key = 'last_applied'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let log_id: Option<serde_json::Value> = serde_json::from_str(&text).unwrap();
    log_id.map(|l| l["index"].as_u64().unwrap())
}

/// Waits until raft's metrics show entry `index` applied.
async fn applied(db: &ReplicatedDb, index: u64) {
    db.wait_until(WAIT, "the entry to be applied", |s| {
        s.last_applied >= Some(index)
    })
    .await
    .unwrap();
}

const ID_V1: &str = "00000000-0000-4000-8000-000000000001";
const ID_V2: &str = "00000000-0000-4000-8000-000000000002";
const ID_TOKEN: &str = "00000000-0000-4000-8000-000000000003";
const ID_MEMBER: &str = "00000000-0000-4000-8000-000000000004";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_request_id_answers_the_first_result_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = standalone(&dir).await;
    assert_eq!(
        db.propose(Command::CreateProfile(profile("v0")))
            .await
            .unwrap(),
        Ok(Response::Done)
    );

    eprintln!("phase: v1, then v2 under another id, then v1's id again");
    let v1 = Command::UpdateProfile(profile("v1"));
    assert_eq!(forwarded(&db, ID_V1, &v1).await, Ok(Response::Done));
    let v2 = Command::UpdateProfile(profile("v2"));
    assert_eq!(forwarded(&db, ID_V2, &v2).await, Ok(Response::Done));
    let state = global_dir(&dir).join("state.db");
    let before = raft_meta_last_applied(&state);
    assert_eq!(forwarded(&db, ID_V1, &v1).await, Ok(Response::Done));
    // The replay is an entry of its own in the log, applied as nothing.
    assert_eq!(raft_meta_last_applied(&state), before.map(|i| i + 1));
    let web = db
        .read(|c| rxd_db::tables::profile(c, "default", "web"))
        .await
        .unwrap();
    assert_eq!(web.description, "v2");

    eprintln!("phase: a replayed token consumption answers the token it consumed");
    assert_eq!(
        db.propose(Command::AddToken(token("2030-01-01T00:00:00Z")))
            .await
            .unwrap(),
        Ok(Response::Done)
    );
    let now = "2026-06-01T00:00:00Z";
    let first = forwarded(&db, ID_TOKEN, &consume(now)).await;
    assert!(matches!(&first, Ok(Response::Token(t)) if t.id == "op-1"));
    assert_eq!(forwarded(&db, ID_TOKEN, &consume(now)).await, first);
    // Under a new id the same consumption finds no token: it was consumed once.
    assert_eq!(
        db.propose(consume(now)).await.unwrap(),
        Err(ApplyError::NoMatchingToken)
    );

    eprintln!("phase: a replayed member addition succeeds again and adds nothing");
    let added = forwarded(&db, ID_MEMBER, &add_member()).await;
    assert!(matches!(added, Ok(Response::Member(_))), "{added:?}");
    assert_eq!(forwarded(&db, ID_MEMBER, &add_member()).await, added);
    let members = db.read(rxd_db::tables::members).await.unwrap();
    assert_eq!(members.len(), 2);
    assert!(matches!(
        db.propose(add_member()).await.unwrap(),
        Err(ApplyError::Exists { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_request_ids_are_recorded_in_the_state_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = standalone(&dir).await;
    db.propose(Command::CreateProfile(profile("v0")))
        .await
        .unwrap()
        .unwrap();
    let v1 = Command::UpdateProfile(profile("v1"));
    assert_eq!(forwarded(&db, ID_V1, &v1).await, Ok(Response::Done));
    let v2 = Command::UpdateProfile(profile("v2"));
    assert_eq!(forwarded(&db, ID_V2, &v2).await, Ok(Response::Done));

    eprintln!("phase: the record of request ids is part of the replicated state");
    let state = global_dir(&dir).join("state.db");
    let conn = Connection::open(&state).unwrap();
    let recorded: i64 = conn
        .query_row("SELECT count(*) FROM raft_requests", [], |r| r.get(0))
        .unwrap();
    assert!(recorded >= 3, "{recorded} request ids recorded");
    drop(conn);

    eprintln!("phase: after a restart the replay is still recognised");
    db.shutdown().await.unwrap();
    drop(db);
    let db = open(&global_dir(&dir)).await;
    db.wait_for_leader(WAIT).await.unwrap();
    assert_eq!(forwarded(&db, ID_V1, &v1).await, Ok(Response::Done));
    let web = db
        .read(|c| rxd_db::tables::profile(c, "default", "web"))
        .await
        .unwrap();
    assert_eq!(web.description, "v2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_deleted_and_reported_expired() {
    let dir = tempfile::tempdir().unwrap();
    let db = standalone(&dir).await;
    db.propose(Command::AddToken(token("2026-01-01T00:00:01Z")))
        .await
        .unwrap()
        .unwrap();
    let outcome = db.propose(consume("2026-06-01T00:00:00Z")).await.unwrap();
    assert_eq!(outcome, Ok(Response::TokenExpired));
    let tokens = db.read(rxd_db::tables::tokens).await.unwrap();
    assert!(tokens.is_empty(), "the expired token is still stored");
    // Consumed means gone: the same secret now matches nothing.
    assert_eq!(
        db.propose(consume("2026-06-01T00:00:00Z")).await.unwrap(),
        Err(ApplyError::NoMatchingToken)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_database_failure_stops_the_node_and_the_entry_applies_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = standalone(&dir).await;
    db.propose(Command::CreateProfile(profile("v0")))
        .await
        .unwrap()
        .unwrap();
    let state = global_dir(&dir).join("state.db");
    let applied_before = raft_meta_last_applied(&state).unwrap();

    eprintln!("phase: inserting a profile now fails inside SQLite, not by a constraint");
    // The trigger's body names a table that does not exist: SQLite fails the statement with a
    // generic error, as it would for an I/O error or a full disk.
    let side = Connection::open(&state).unwrap();
    side.execute_batch(
        "CREATE TRIGGER fail_profile_insert BEFORE INSERT ON profiles
         BEGIN INSERT INTO no_such_table VALUES (1); END;",
    )
    .unwrap();
    let mut other = profile("other");
    other.name = "other".to_string();
    let outcome = db.propose(Command::CreateProfile(other.clone())).await;
    assert!(
        outcome.is_err(),
        "a local failure was answered as {outcome:?} instead of stopping the node"
    );
    assert_eq!(
        raft_meta_last_applied(&state),
        Some(applied_before),
        "the failed entry was counted as applied"
    );
    let stored: i64 = side
        .query_row(
            "SELECT count(*) FROM profiles WHERE name = 'other'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, 0);

    eprintln!("phase: once the fault is gone, a restart applies the entry from the log");
    side.execute_batch("DROP TRIGGER fail_profile_insert")
        .unwrap();
    drop(side);
    // The core stopped on its own; shutting the handle down only releases it.
    let _ = db.shutdown().await;
    drop(db);
    let db = open(&global_dir(&dir)).await;
    db.wait_for_leader(WAIT).await.unwrap();
    applied(&db, applied_before + 1).await;
    let found = db
        .read(|c| rxd_db::tables::profile(c, "default", "other"))
        .await
        .unwrap();
    assert_eq!(found.description, "other");
}
