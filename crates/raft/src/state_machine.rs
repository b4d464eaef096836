//! The state machine on SQLite (`state.db`) and its snapshots (`snapshot.db`).
//!
//! ```text
//!  committed entries ──> one SQLite transaction:
//!                          for each entry: request id known? ── yes ──> its first result
//!                                          no: SAVEPOINT; rxd_db::apply; ROLLBACK TO on refusal;
//!                                              record (request id, index, result)
//!                          raft_meta.last_applied, raft_meta.membership
//!                        COMMIT
//!                        (a local database failure: no COMMIT, a storage error to openraft)
//!
//!  build snapshot:   VACUUM INTO snapshot-build.tmp ──stamp id──> rename to snapshot.db
//!  receive snapshot: stream ──> snapshot-receive.tmp ──fsync, check──> snapshot-received.db
//!                    (durable before raft learns of it, so before raft purges its log)
//!  install snapshot: snapshot-received.db ──stamp meta──> rename to snapshot.db
//!                          ──backup API──> live state.db (one write transaction)
//!  open:             a snapshot.db or snapshot-received.db newer than state.db is restored
//! ```
//!
//! The raft metadata lives in the same database as the cluster tables, so a snapshot is a plain
//! copy of the file and carries its own last applied log id and membership; there is no second
//! file that could disagree with it. Snapshots are files from end to end: a member sends one
//! from its file and a member receives one into a file, so memory does not grow with the
//! database.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, Snapshot,
    SnapshotMeta, StorageIOError, StoredMembership,
};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction};

use crate::log_store::{get_meta_from, set_meta_in, StoreError};
use crate::types::{Applied, Proposal, StorageError, TypeConfig};

/// The raft metadata, and the request ids of recently applied proposals with their results.
const META_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS raft_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS raft_requests (
    id BLOB PRIMARY KEY,
    log_index INTEGER NOT NULL,
    result TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS raft_requests_by_index ON raft_requests (log_index);
";

/// How many log entries a request id is remembered for. A proposer sends a proposal again only
/// within its request timeout (10 s by default), so the window must hold more entries than the
/// cluster commits in that time. Ids drop out by log index, never by clock, so every replica
/// (and every snapshot) holds the same ones.
const REQUEST_WINDOW: u64 = 20_000;
const META: &str = "raft_meta";
const LAST_APPLIED: &str = "last_applied";
const MEMBERSHIP: &str = "membership";
const SNAPSHOT_ID: &str = "snapshot_id";

/// File names inside the data directory.
pub(crate) const STATE_FILE: &str = "state.db";
const SNAPSHOT_FILE: &str = "snapshot.db";
const BUILDING_FILE: &str = "snapshot-build.tmp";
const RECEIVING_FILE: &str = "snapshot-receive.tmp";
const RECEIVED_FILE: &str = "snapshot-received.db";
const CHUNKS_FILE: &str = "snapshot-chunks.tmp";

type Membership = StoredMembership<u64, BasicNode>;
pub(crate) type Meta = SnapshotMeta<u64, BasicNode>;

/// Opens (or creates) the state database with the current cluster schema and the raft metadata
/// table.
pub(crate) fn open_state(path: &Path) -> Result<Connection, rxd_db::DbError> {
    let mut conn = Connection::open(path)?;
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))?;
    // FULL, not NORMAL: the log is purged up to the last snapshot, so an applied batch lost in
    // a power cut could not be replayed.
    conn.pragma_update(None, "synchronous", "FULL")?;
    rxd_db::migrate_cluster(&mut conn)?;
    conn.execute_batch(META_SCHEMA)?;
    Ok(conn)
}

/// Opens a second connection for reads, so that reads do not wait for the applier. It refuses
/// writes: the cluster tables change only through the log.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// What went wrong in a snapshot step, turned into openraft's error at the trait boundary.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SnapshotError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Meta(#[from] StoreError),
    #[error(transparent)]
    Schema(#[from] rxd_db::DbError),
    #[error("restoring the snapshot into the live database stopped at {0:?}")]
    Incomplete(StepResult),
    #[error("snapshot path {0:?} is not UTF-8")]
    PathNotUtf8(PathBuf),
    #[error("the received snapshot is not a complete database: {0}")]
    Truncated(String),
    #[error("the received snapshot holds log id {found:?}, not the announced {expected:?}")]
    WrongSnapshot {
        expected: Option<LogId<u64>>,
        found: Option<LogId<u64>>,
    },
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // An unfinished transaction rolls back when dropped, so a panic while the lock was held
    // leaves the connection usable.
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

fn applied_state(conn: &Connection) -> Result<(Option<LogId<u64>>, Membership), StoreError> {
    let last: Option<Option<LogId<u64>>> = get_meta_from(conn, META, LAST_APPLIED)?;
    let membership: Option<Membership> = get_meta_from(conn, META, MEMBERSHIP)?;
    Ok((last.flatten(), membership.unwrap_or_default()))
}

fn sync_file(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    // A rename is durable only once the directory entry is.
    File::open(path)?.sync_all()
}

fn remove_if_exists(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Checks that `path` holds a whole SQLite database: the size its header announces, and
/// SQLite's own quick check. A file cut short by a crash or a broken stream fails.
fn check_complete(path: &Path) -> Result<(), SnapshotError> {
    let mut header = [0u8; 100];
    let mut file = File::open(path)?;
    let len = file.seek(SeekFrom::End(0))?;
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut header)
        .map_err(|_| SnapshotError::Truncated(format!("{len} bytes, no database header")))?;
    if &header[..16] != b"SQLite format 3\0" {
        return Err(SnapshotError::Truncated("no SQLite header".to_string()));
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536,
        n => u64::from(n),
    };
    let change_counter = &header[24..28];
    let valid_for = &header[92..96];
    let pages = u64::from(u32::from_be_bytes([
        header[28], header[29], header[30], header[31],
    ]));
    if change_counter == valid_for && pages > 0 && page_size * pages != len {
        return Err(SnapshotError::Truncated(format!(
            "{len} bytes where the header announces {pages} pages of {page_size}"
        )));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let verdict: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if verdict != "ok" {
        return Err(SnapshotError::Truncated(verdict));
    }
    Ok(())
}

/// A test hook: `RXD_FAILPOINT=<step>:crash` ends the process at that step of a snapshot
/// install. Compiled only with the `failpoints` feature.
#[cfg(feature = "failpoints")]
fn failpoint(step: &str) {
    if std::env::var("RXD_FAILPOINT").is_ok_and(|spec| spec == format!("{step}:crash")) {
        tracing::error!("Failpoint {step}: exiting");
        std::process::exit(137);
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
fn failpoint(_step: &str) {}

/// Paths of the snapshot files and the lock that serialises replacing `snapshot.db`.
pub(crate) struct SnapshotFiles {
    dir: PathBuf,
    state: PathBuf,
    current: PathBuf,
    building: PathBuf,
    receiving: PathBuf,
    received: PathBuf,
    chunks: PathBuf,
    replace: Mutex<()>,
}

impl SnapshotFiles {
    fn new(dir: &Path) -> Self {
        SnapshotFiles {
            dir: dir.to_path_buf(),
            state: dir.join(STATE_FILE),
            current: dir.join(SNAPSHOT_FILE),
            building: dir.join(BUILDING_FILE),
            receiving: dir.join(RECEIVING_FILE),
            received: dir.join(RECEIVED_FILE),
            chunks: dir.join(CHUNKS_FILE),
            replace: Mutex::new(()),
        }
    }

    fn lock_replace(&self) -> MutexGuard<'_, ()> {
        self.replace.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read_meta(path: &Path) -> Result<Meta, SnapshotError> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let (last_log_id, last_membership) = applied_state(&conn)?;
        let snapshot_id: Option<String> = get_meta_from(&conn, META, SNAPSHOT_ID)?;
        Ok(SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id: snapshot_id.unwrap_or_default(),
        })
    }

    /// Where a snapshot streamed from the leader is written while it arrives.
    pub(crate) fn receiving_path(&self) -> &Path {
        &self.receiving
    }

    /// Copies the state database into a new snapshot and makes it current unless a newer one
    /// (installed from the leader meanwhile) is already there. The file handed back stays
    /// readable even if it was not kept.
    fn build(&self) -> Result<(Meta, File), SnapshotError> {
        remove_if_exists(&self.building)?;
        let target = self
            .building
            .to_str()
            .ok_or_else(|| SnapshotError::PathNotUtf8(self.building.clone()))?;
        // A separate connection reads a consistent WAL snapshot while the applier goes on.
        Connection::open(&self.state)?.execute("VACUUM INTO ?1", [target])?;
        let meta = {
            let copy = Connection::open(&self.building)?;
            copy.pragma_update_and_check(None, "journal_mode", "DELETE", |r| {
                r.get::<_, String>(0)
            })?;
            let (last_log_id, last_membership) = applied_state(&copy)?;
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let snapshot_id = match &last_log_id {
                Some(l) => format!("{}-{}-{nanos}", l.leader_id.term, l.index),
                None => format!("0-0-{nanos}"),
            };
            set_meta_in(&copy, META, SNAPSHOT_ID, &snapshot_id)?;
            SnapshotMeta {
                last_log_id,
                last_membership,
                snapshot_id,
            }
        };
        sync_file(&self.building)?;
        let data = File::open(&self.building)?;

        let _guard = self.lock_replace();
        let newer_exists = if self.current.exists() {
            Self::read_meta(&self.current)?.last_log_id > meta.last_log_id
        } else {
            false
        };
        if newer_exists {
            remove_if_exists(&self.building)?;
        } else {
            fs::rename(&self.building, &self.current)?;
            sync_dir(&self.dir)?;
        }
        Ok((meta, data))
    }

    fn current(&self) -> Result<Option<(Meta, File)>, SnapshotError> {
        let _guard = self.lock_replace();
        if !self.current.exists() {
            return Ok(None);
        }
        let meta = Self::read_meta(&self.current)?;
        let data = File::open(&self.current)?;
        Ok(Some((meta, data)))
    }

    /// Accepts the stream written to [`SnapshotFiles::receiving_path`] as the snapshot `meta`
    /// announces: it must be a whole database stamped with that log id. It is made durable
    /// under its final name before raft hears of it, because raft purges its log as soon as it
    /// does: after a crash, [`SnapshotFiles::recover`] finds it there.
    pub(crate) fn accept_received(&self, meta: &Meta) -> Result<File, SnapshotError> {
        check_complete(&self.receiving)?;
        let found = Self::read_meta(&self.receiving)?.last_log_id;
        if found != meta.last_log_id {
            return Err(SnapshotError::WrongSnapshot {
                expected: meta.last_log_id,
                found,
            });
        }
        sync_file(&self.receiving)?;
        fs::rename(&self.receiving, &self.received)?;
        sync_dir(&self.dir)?;
        Ok(File::open(&self.received)?)
    }

    /// Removes a received snapshot that raft did not install (it was not newer than what this
    /// member has, or its sender no longer leads), so that no later start restores it.
    pub(crate) fn discard_received(&self) -> Result<(), SnapshotError> {
        remove_if_exists(&self.received)?;
        Ok(())
    }

    /// Brings a received file to this rxd's schema and stamps raft's metadata into it.
    fn stamp(path: &Path, meta: Option<&Meta>) -> Result<(), SnapshotError> {
        let mut copy = Connection::open(path)?;
        copy.pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get::<_, String>(0))?;
        // A snapshot from an older schema is brought up to date like state.db at open; one
        // from a newer rxd is refused.
        rxd_db::migrate_cluster(&mut copy)?;
        copy.execute_batch(META_SCHEMA)?;
        if let Some(meta) = meta {
            // The meta given by raft is authoritative; stamping it into the copy keeps the
            // file self-describing.
            let tx = copy.transaction()?;
            set_meta_in(&tx, META, LAST_APPLIED, &meta.last_log_id)?;
            set_meta_in(&tx, META, MEMBERSHIP, &meta.last_membership)?;
            set_meta_in(&tx, META, SNAPSHOT_ID, &meta.snapshot_id)?;
            tx.commit()?;
        }
        drop(copy);
        sync_file(path)?;
        Ok(())
    }

    /// Makes the received file the current snapshot and replaces the live state with it.
    fn promote_received(
        &self,
        live: &mut Connection,
        meta: Option<&Meta>,
    ) -> Result<(), SnapshotError> {
        Self::stamp(&self.received, meta)?;
        failpoint("snapshot-install-before-restore");
        let _guard = self.lock_replace();
        fs::rename(&self.received, &self.current)?;
        sync_dir(&self.dir)?;
        Self::restore(&self.current, live)
    }

    /// Copies `source` over the live database. One backup step over all pages is one write
    /// transaction on it: readers see either the old state or the snapshot, never a mix.
    fn restore(source: &Path, live: &mut Connection) -> Result<(), SnapshotError> {
        let source = Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let step = Backup::new(&source, live)?.step(-1)?;
        if step != StepResult::Done {
            return Err(SnapshotError::Incomplete(step));
        }
        Ok(())
    }

    /// Installs the snapshot `meta` names: the received file if it is that one, else `data`
    /// (a snapshot that came through openraft's own chunked transport).
    fn install(
        &self,
        live: &Mutex<Connection>,
        meta: &Meta,
        data: Option<File>,
    ) -> Result<(), SnapshotError> {
        let received_matches = self.received.exists()
            && check_complete(&self.received).is_ok()
            && Self::read_meta(&self.received)?.last_log_id == meta.last_log_id;
        if !received_matches {
            let Some(mut data) = data else {
                return Err(SnapshotError::WrongSnapshot {
                    expected: meta.last_log_id,
                    found: None,
                });
            };
            remove_if_exists(&self.receiving)?;
            data.seek(SeekFrom::Start(0))?;
            let mut out = File::create(&self.receiving)?;
            std::io::copy(&mut data, &mut out)?;
            out.sync_all()?;
            drop(out);
            fs::rename(&self.receiving, &self.received)?;
            sync_dir(&self.dir)?;
        }
        let mut live = lock(live);
        self.promote_received(&mut live, Some(meta))
    }

    /// At open, before raft reads the applied state: if a snapshot on disk is newer than
    /// `state.db` (an install was cut short by a crash, after raft had purged its log), it is
    /// restored. Leftovers of unfinished builds and transfers are removed.
    fn recover(&self, live: &mut Connection) -> Result<(), SnapshotError> {
        remove_if_exists(&self.building)?;
        remove_if_exists(&self.receiving)?;
        remove_if_exists(&self.chunks)?;
        let (applied, _) = applied_state(live)?;
        // A snapshot counts only if it is newer than the live state; only then is the whole
        // file checked, so an ordinary start reads no more than its header and metadata.
        let newer = |path: &Path| -> Option<Option<LogId<u64>>> {
            if !path.exists() {
                return None;
            }
            let last = Self::read_meta(path).ok()?.last_log_id;
            (last > applied && check_complete(path).is_ok()).then_some(last)
        };
        let received = newer(&self.received);
        let current = newer(&self.current);
        match (received, current) {
            (Some(r), c) if Some(r) > c => {
                tracing::warn!(
                    "Restoring the cluster database from a snapshot received before a crash ({r:?}, applied {applied:?})"
                );
                self.promote_received(live, None)?;
            }
            (_, Some(c)) => {
                tracing::warn!(
                    "Restoring the cluster database from its snapshot ({c:?}, applied {applied:?})"
                );
                remove_if_exists(&self.received)?;
                Self::stamp(&self.current, None)?;
                Self::restore(&self.current, live)?;
            }
            _ => remove_if_exists(&self.received)?,
        }
        Ok(())
    }
}

/// Why a batch of entries could not be applied. Raft stops on it: the batch's transaction is
/// not committed, so the entries count as not applied and are applied again after a restart.
#[derive(Debug, thiserror::Error)]
enum ApplyStop {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Command(#[from] rxd_db::ApplyFailure),
}

/// Applies the command of the entry at `index` inside the batch transaction, once per request
/// id: an id recorded in the last [`REQUEST_WINDOW`] entries answers its first result and
/// changes nothing. A refusal rolls back the command's own changes only, so every replica
/// records the same outcome and goes on; a failure of the local database stops the batch.
fn apply_command(
    tx: &Transaction,
    index: u64,
    proposal: &Proposal,
) -> Result<Result<rxd_db::Response, rxd_db::ApplyError>, ApplyStop> {
    let oldest = i64::try_from(index.saturating_sub(REQUEST_WINDOW)).unwrap_or(i64::MAX);
    tx.execute("DELETE FROM raft_requests WHERE log_index <= ?1", [oldest])?;
    let id = &proposal.id.as_bytes()[..];
    let first: Option<String> = tx
        .query_row(
            "SELECT result FROM raft_requests WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(first) = first {
        return Ok(serde_json::from_str(&first)?);
    }
    tx.execute_batch("SAVEPOINT command")?;
    let result = rxd_db::apply(tx, &proposal.command)?;
    if result.is_err() {
        tx.execute_batch("ROLLBACK TO command")?;
    }
    tx.execute_batch("RELEASE command")?;
    tx.execute(
        "INSERT INTO raft_requests (id, log_index, result) VALUES (?1, ?2, ?3)",
        rusqlite::params![
            id,
            i64::try_from(index).unwrap_or(i64::MAX),
            serde_json::to_string(&result)?
        ],
    )?;
    Ok(result)
}

/// The state machine handed to openraft.
pub(crate) struct StateMachine {
    conn: Arc<Mutex<Connection>>,
    files: Arc<SnapshotFiles>,
}

impl StateMachine {
    /// Opens (or creates) `state.db` in `dir`, first restoring a snapshot that a crash left
    /// newer than it.
    pub(crate) fn open(dir: &Path) -> Result<Self, SnapshotError> {
        let mut conn = open_state(&dir.join(STATE_FILE))?;
        let files = SnapshotFiles::new(dir);
        files.recover(&mut conn)?;
        Ok(StateMachine {
            conn: Arc::new(Mutex::new(conn)),
            files: Arc::new(files),
        })
    }

    /// The snapshot files, for the receiving side of a snapshot transfer.
    pub(crate) fn files(&self) -> Arc<SnapshotFiles> {
        self.files.clone()
    }

    /// The log id of the last applied entry and the membership it holds.
    pub(crate) fn applied_with_membership(
        &self,
    ) -> Result<(Option<LogId<u64>>, Membership), StoreError> {
        applied_state(&lock(&self.conn))
    }

    /// The log id of the last applied entry.
    pub(crate) fn applied_log_id(&self) -> Result<Option<LogId<u64>>, StoreError> {
        Ok(applied_state(&lock(&self.conn))?.0)
    }

    fn apply_entries(
        conn: &Mutex<Connection>,
        entries: impl IntoIterator<Item = Entry<TypeConfig>>,
    ) -> Result<Vec<Applied>, ApplyStop> {
        let mut conn = lock(conn);
        let tx = conn.transaction()?;
        let mut replies = Vec::new();
        let mut last_applied = None;
        let mut membership = None;
        for entry in entries {
            last_applied = Some(entry.log_id);
            let reply = match entry.payload {
                EntryPayload::Blank => Ok(rxd_db::Response::Done),
                EntryPayload::Normal(proposal) => {
                    apply_command(&tx, entry.log_id.index, &proposal)?
                }
                EntryPayload::Membership(m) => {
                    membership = Some(StoredMembership::new(Some(entry.log_id), m));
                    Ok(rxd_db::Response::Done)
                }
            };
            replies.push(Applied(reply));
        }
        if let Some(last) = last_applied {
            set_meta_in(&tx, META, LAST_APPLIED, &Some(last))?;
        }
        if let Some(m) = membership {
            set_meta_in(&tx, META, MEMBERSHIP, &m)?;
        }
        tx.commit()?;
        Ok(replies)
    }
}

/// Builds snapshots on a connection of its own, off the raft core.
pub(crate) struct SnapshotBuilder {
    files: Arc<SnapshotFiles>,
}

fn snapshot_of(meta: Meta, data: File) -> Snapshot<TypeConfig> {
    Snapshot {
        meta,
        snapshot: Box::new(tokio::fs::File::from_std(data)),
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let files = self.files.clone();
        let (meta, data) = tokio::task::spawn_blocking(move || files.build())
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        Ok(snapshot_of(meta, data))
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId<u64>>, Membership), StorageError> {
        let conn = lock(&self.conn);
        applied_state(&conn).map_err(|e| StorageIOError::read_state_machine(&e).into())
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // Off the async runtime: the commit waits for an fsync. Dropping the uncommitted batch
        // transaction rolls it back; raft stops on the error.
        let entries: Vec<_> = entries.into_iter().collect();
        let conn = self.conn.clone();
        let applied = tokio::task::spawn_blocking(move || Self::apply_entries(&conn, entries))
            .await
            .map_err(|e| StorageIOError::write_state_machine(&e))?;
        applied.map_err(|e| {
            tracing::error!(error = %e, "applying committed entries failed; raft stops");
            StorageIOError::write_state_machine(&e).into()
        })
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            files: self.files.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        // Only openraft's own chunked transport writes here; rxd's transport streams into
        // `snapshot-receive.tmp` (see `ReplicatedDb::receive_snapshot`).
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.files.chunks)
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        let files = self.files.clone();
        let live = self.conn.clone();
        let owned_meta = meta.clone();
        let data = snapshot.into_std().await;
        tokio::task::spawn_blocking(move || files.install(&live, &owned_meta, Some(data)))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let files = self.files.clone();
        let current = tokio::task::spawn_blocking(move || files.current())
            .await
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(current.map(|(meta, data)| snapshot_of(meta, data)))
    }
}
