//! The raft log on SQLite (`log.db`): one row per entry, plus the vote, the committed log id and
//! the last purged log id.
//!
//! Every write is its own transaction in WAL mode with `synchronous=FULL`, so an entry, once
//! reported flushed, survives a power cut: a member that acknowledged an entry must still hold
//! it after a restart, or raft's safety argument fails.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{Entry, LogId, LogState, OptionalSend, RaftLogReader, StorageIOError, Vote};
use rusqlite::{params, Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::types::{StorageError, TypeConfig};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entries (idx INTEGER PRIMARY KEY, entry TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "purged";

/// The log store. Clones share the connection; the clone handed out as log reader is used by
/// replication tasks while the raft core appends.
#[derive(Clone)]
pub(crate) struct LogStore {
    conn: Arc<Mutex<Connection>>,
}

impl LogStore {
    /// Opens (or creates) `log.db`.
    pub(crate) fn open(path: &Path) -> Result<Self, rusqlite::Error> {
        let conn = Connection::open(path)?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(LogStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held cannot leave SQLite half-written: an unfinished
        // transaction rolls back when it is dropped, so the connection is still usable.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read_entries(&self, start: u64, end: u64) -> Result<Vec<Entry<TypeConfig>>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT entry FROM entries WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
        )?;
        let rows = stmt.query_map(params![to_sql_index(start), to_sql_index(end)], |r| {
            r.get::<_, String>(0)
        })?;
        let mut entries = Vec::new();
        for row in rows {
            entries.push(serde_json::from_str(&row?)?);
        }
        Ok(entries)
    }

    fn log_state(&self) -> Result<LogState<TypeConfig>, StoreError> {
        let conn = self.lock();
        let purged: Option<LogId<u64>> = get_meta(&conn, PURGED)?;
        let last: Option<String> = conn
            .query_row(
                "SELECT entry FROM entries ORDER BY idx DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let last = match last {
            Some(text) => {
                let entry: Entry<TypeConfig> = serde_json::from_str(&text)?;
                Some(entry.log_id)
            }
            None => purged,
        };
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last,
        })
    }

    fn write_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<(), rusqlite::Error> {
        set_meta(&self.lock(), key, value)
    }

    fn read_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        get_meta(&self.lock(), key)
    }

    pub(crate) fn append_entries(
        &self,
        entries: impl IntoIterator<Item = Entry<TypeConfig>>,
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        {
            let mut stmt =
                tx.prepare_cached("INSERT OR REPLACE INTO entries (idx, entry) VALUES (?1, ?2)")?;
            for entry in entries {
                let text = serde_json::to_string(&entry)?;
                stmt.execute(params![to_sql_index(entry.log_id.index), text])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// If the log was purged past `applied` (a snapshot install that raft had begun, purging
    /// the log, was lost in a crash and no snapshot on disk covers the gap), the entries after
    /// the gap can never be applied: forget the whole log and the purge marker, so that the
    /// leader sees this member at `applied` and sends a snapshot again. Returns whether it did.
    pub(crate) fn forget_past_gap(&self, applied: Option<LogId<u64>>) -> Result<bool, StoreError> {
        let mut conn = self.lock();
        let purged: Option<LogId<u64>> = get_meta(&conn, PURGED)?;
        let applied_index = applied.map(|l| l.index);
        if purged.map(|l| l.index) <= applied_index {
            return Ok(false);
        }
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM entries", [])?;
        tx.execute("DELETE FROM meta WHERE key = ?1", [PURGED])?;
        set_meta(&tx, COMMITTED, &applied)?;
        tx.commit()?;
        Ok(true)
    }

    /// Runs a blocking SQLite step off the async runtime, so that an fsync never stalls the
    /// tasks that answer heartbeats.
    async fn blocking<T, E>(
        &self,
        step: impl FnOnce(&LogStore) -> Result<T, E> + Send + 'static,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        E: Into<StoreError> + Send + 'static,
    {
        let store = self.clone();
        match tokio::task::spawn_blocking(move || step(&store).map_err(Into::into)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(StoreError::Cancelled),
        }
    }

    fn truncate_from(&self, index: u64) -> Result<(), rusqlite::Error> {
        self.lock()
            .execute("DELETE FROM entries WHERE idx >= ?1", [to_sql_index(index)])?;
        Ok(())
    }

    fn purge_upto(&self, log_id: LogId<u64>) -> Result<(), rusqlite::Error> {
        let mut conn = self.lock();
        // The purged id is recorded with the deletion, so that `get_log_state` never reports a
        // log that starts after a gap.
        let tx = conn.transaction()?;
        set_meta(&tx, PURGED, &log_id)?;
        tx.execute(
            "DELETE FROM entries WHERE idx <= ?1",
            [to_sql_index(log_id.index)],
        )?;
        tx.commit()
    }
}

/// SQLite integers are signed; raft indexes never come near `i64::MAX`, so larger bounds (open
/// ranges) are clamped.
fn to_sql_index(index: u64) -> i64 {
    i64::try_from(index).unwrap_or(i64::MAX)
}

/// A stored row or value that could not be read or written; turned into openraft's (much
/// larger) error at the trait boundary.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("the runtime shut down during a storage step")]
    Cancelled,
}

/// Reads a JSON value from a `meta`-like key/value table (also used by the state machine).
pub(crate) fn get_meta_from<T: DeserializeOwned>(
    conn: &Connection,
    table: &str,
    key: &str,
) -> Result<Option<T>, StoreError> {
    let text: Option<String> = conn
        .query_row(
            &format!("SELECT value FROM {table} WHERE key = ?1"),
            [key],
            |r| r.get(0),
        )
        .optional()?;
    match text {
        Some(text) => Ok(Some(serde_json::from_str(&text)?)),
        None => Ok(None),
    }
}

/// Writes a JSON value into a `meta`-like key/value table.
pub(crate) fn set_meta_in<T: Serialize>(
    conn: &Connection,
    table: &str,
    key: &str,
    value: &T,
) -> Result<(), rusqlite::Error> {
    let text = serde_json::to_string(value)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    conn.execute(
        &format!(
            "INSERT INTO {table} (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value"
        ),
        params![key, text],
    )?;
    Ok(())
}

fn get_meta<T: DeserializeOwned>(conn: &Connection, key: &str) -> Result<Option<T>, StoreError> {
    get_meta_from(conn, "meta", key)
}

fn set_meta<T: Serialize>(conn: &Connection, key: &str, value: &T) -> Result<(), rusqlite::Error> {
    set_meta_in(conn, "meta", key, value)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => i.saturating_add(1),
            Bound::Excluded(&i) => i,
            Bound::Unbounded => u64::MAX,
        };
        self.read_entries(start, end)
            .map_err(|e| StorageIOError::read_logs(&e).into())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        self.log_state()
            .map_err(|e| StorageIOError::read_logs(&e).into())
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        let vote = *vote;
        self.blocking(move |s| s.write_meta(VOTE, &vote))
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        self.read_meta(VOTE)
            .map_err(|e| StorageIOError::read_vote(&e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> Result<(), StorageError> {
        self.blocking(move |s| s.write_meta(COMMITTED, &committed))
            .await
            .map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError> {
        let committed: Option<Option<LogId<u64>>> = self
            .read_meta(COMMITTED)
            .map_err(|e| StorageIOError::read(&e))?;
        Ok(committed.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // The commit is durable when it returns (synchronous=FULL), so the flush is reported at
        // once.
        let entries: Vec<_> = entries.into_iter().collect();
        self.blocking(move |s| s.append_entries(entries))
            .await
            .map_err(|e| StorageIOError::write_logs(&e))?;
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError> {
        self.blocking(move |s| s.truncate_from(log_id.index))
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError> {
        self.blocking(move |s| s.purge_upto(log_id))
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}
