//! The node-local database: settings that belong to this member alone.

use rusqlite::{params, Connection};

use crate::tables::Config;
use crate::DbError;

/// This member's local configuration keys (`core.https_address`, `cluster.https_address`).
pub fn config(conn: &Connection) -> Result<Config, DbError> {
    let mut stmt = conn.prepare("SELECT key, value FROM config ORDER BY key")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Sets (`Some`) or removes (`None`) local keys in one transaction.
pub fn update_config<'a>(
    conn: &mut Connection,
    changes: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<(), DbError> {
    let tx = conn.transaction()?;
    for (key, value) in changes {
        match value {
            Some(v) => tx.execute(
                "INSERT INTO config (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, v],
            )?,
            None => tx.execute("DELETE FROM config WHERE key = ?1", [key])?,
        };
    }
    tx.commit()?;
    Ok(())
}
