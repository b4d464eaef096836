//! The initiator's formation journal (issue 12): what it takes to leave this server as it was
//! when a formation fails, even when the daemon dies half-way.
//!
//! ```text
//!  Open:       formation.json {Open, the address before `rxd form`, the confirmed joiners}
//!              (nothing else is changed here before Committing); aborted: {RolledBack}
//!  Preparing:  formation.json {Preparing, ...}
//!  Committing: database/global copied to global.formation (the daemon's database closed
//!              meanwhile) ─> formation.json {Committing, what to put back}
//!  bootstrap, joins ...
//!  success:    formation.json {Committed} (the decision) ─> the copy removed ─> joiners: Done
//!  failure:    joined members taken out ─> cluster.crt gone, local keys put back ─> the sides
//!              the formation made removed ─> global.formation back in place of global
//!              ─> formation.json {RolledBack} ─> joiners: Abort
//!  start:      formation.json {Committing} ─> the failure's steps (each can be done again)
//!              formation.json {Open or Preparing} ─> {RolledBack} (the joiners undo)
//!              either way the server listens where it did once its joiners learnt the end
//! ```
//!
//! The journal of a formation that ended stays until the next window opens, so joiners that
//! lost the initiator while it restarted learn how the formation ended.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rxd_cluster::host::MemberSides;
use serde::{Deserialize, Serialize};

/// The journal's file in the data directory.
const FILE: &str = "formation.json";
/// The copy of the standalone database taken before the bootstrap.
const COPY: &str = "global.formation";

/// Where a formation stands, as written before each irreversible step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// The window takes servers; this server changed nothing but, maybe, where it listens.
    Open,
    /// The joiners prepare; this server changed nothing but where it listens.
    Preparing,
    /// Changing this server and the joiners; the copy is in place.
    Committing,
    /// Formed: nothing is put back.
    Committed,
    /// Failed, and this server was put back as it was.
    RolledBack,
}

/// One formation's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// The window's id, which the joiners ask about.
    pub window: String,
    /// Where the formation stands.
    pub stage: Stage,
    /// The confirmed joiners: certificate fingerprint → name.
    pub joiners: BTreeMap<String, String>,
    /// Whether this server bootstraps a new cluster (else it grows its own, and has no copy).
    pub new_cluster: bool,
    /// This server's raft node id before the formation.
    pub node_id: u64,
    /// `core.https_address` before `rxd form` set it.
    pub listened_before: String,
    /// `cluster.https_address` before the bootstrap.
    pub cluster_address_before: String,
    /// The pool and network sides the formation made here, to remove on failure.
    #[serde(default)]
    pub made: MemberSides,
    /// Why it failed, once rolled back.
    #[serde(default)]
    pub reason: String,
}

fn database(dir: &Path) -> PathBuf {
    dir.join("database")
}

/// The journal, if a formation left one.
pub fn read(dir: &Path) -> Option<Journal> {
    let text = std::fs::read(dir.join(FILE)).ok()?;
    match serde_json::from_slice(&text) {
        Ok(j) => Some(j),
        Err(e) => {
            tracing::warn!("Ignoring an unreadable {FILE}: {e}");
            None
        }
    }
}

/// Writes the journal durably.
pub fn write(dir: &Path, journal: &Journal) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(journal).map_err(std::io::Error::other)?;
    rxd_tls::write_atomic(&dir.join(FILE), &text, 0o600).map_err(std::io::Error::other)?;
    rxd_cluster::sync_dir(dir)
}

/// Marks the journal of a window still taking servers (`Open`) rolled back with `reason`: the
/// window ended without a formation, and `rxd form` put the address back itself.
pub fn close_open(dir: &Path, reason: &str) {
    if let Some(mut journal) = read(dir).filter(|j| j.stage == Stage::Open) {
        journal.stage = Stage::RolledBack;
        journal.reason = reason.to_string();
        if let Err(e) = write(dir, &journal) {
            tracing::warn!("Cannot write the formation journal: {e}");
        }
    }
}

/// Records `joiners` (fingerprint → name) in the journal of window `id` while it takes
/// servers, so a restart tells each of them the formation ended.
pub fn confirmed(dir: &Path, id: &str, joiners: BTreeMap<String, String>) -> std::io::Result<()> {
    match read(dir) {
        Some(mut journal) if journal.window == id && journal.stage == Stage::Open => {
            journal.joiners = joiners;
            write(dir, &journal)
        }
        _ => Ok(()),
    }
}

/// Removes the journal of a formation that ended (a new window opens).
pub fn forget(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(FILE));
    let _ = std::fs::remove_dir_all(database(dir).join(COPY));
}

/// Copies the closed database `database/global` to `database/global.formation`, durably.
pub fn copy_database(dir: &Path) -> std::io::Result<()> {
    let database = database(dir);
    let partial = database.join("global.formation.partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial)?;
    }
    std::fs::create_dir_all(&partial)?;
    for entry in std::fs::read_dir(database.join("global"))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            let to = partial.join(entry.file_name());
            std::fs::copy(entry.path(), &to)?;
            std::fs::File::open(&to)?.sync_all()?;
        }
    }
    rxd_cluster::sync_dir(&partial)?;
    let copy = database.join(COPY);
    if copy.exists() {
        std::fs::remove_dir_all(&copy)?;
    }
    std::fs::rename(&partial, &copy)?;
    rxd_cluster::sync_dir(&database)
}

/// Drops the copy once the formation is committed.
pub fn drop_copy(dir: &Path) -> std::io::Result<()> {
    let copy = database(dir).join(COPY);
    if copy.exists() {
        std::fs::remove_dir_all(&copy)?;
    }
    Ok(())
}

/// With the database closed: puts this server's files back as they were before the
/// formation — the cluster certificate removed, the local keys restored, the copy of the
/// database in place of the cluster's. Each step can be done again after a crash.
///
/// `core.https_address` is put back too with `listening`; otherwise it is put back through
/// the API, which moves the listener (by `rxd form`, or after a restart by the daemon once
/// the joiners learnt the end).
pub fn put_back_files(
    dir: &Path,
    local: &mut rusqlite::Connection,
    journal: &Journal,
    listening: bool,
) -> std::io::Result<()> {
    if !journal.new_cluster {
        return Ok(());
    }
    for f in ["cluster.crt", "cluster.key"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let empty = |v: &str| (!v.is_empty()).then(|| v.to_string());
    let cluster = empty(&journal.cluster_address_before);
    let core = empty(&journal.listened_before);
    let mut keys = vec![("cluster.https_address", cluster.as_deref())];
    if listening {
        keys.push(("core.https_address", core.as_deref()));
    }
    rxd_db::local::update_config(local, keys).map_err(std::io::Error::other)?;
    rxd_cluster::sync_dir(dir)?;
    let database = database(dir);
    let copy = database.join(COPY);
    if copy.exists() {
        let global = database.join("global");
        if global.exists() {
            std::fs::remove_dir_all(&global)?;
        }
        std::fs::rename(&copy, &global)?;
        rxd_cluster::sync_dir(&database)?;
    }
    Ok(())
}

/// At start, before the database opens: finishes what a formation interrupted by a crash
/// left (put back while committing, the copy dropped once committed). Answers the journal,
/// for joiners that ask how the formation ended, and whether it was put back just now: then
/// this server keeps listening where the formation had it listen until its joiners have
/// asked, and only then goes back to the address it had before.
pub async fn recover_at_start(
    dir: &Path,
    local: &mut rusqlite::Connection,
) -> std::io::Result<Option<(Journal, bool)>> {
    let Some(mut journal) = read(dir) else {
        return Ok(None);
    };
    let now = matches!(
        journal.stage,
        Stage::Open | Stage::Preparing | Stage::Committing
    );
    match journal.stage {
        Stage::Open | Stage::Preparing => {
            tracing::warn!(
                "Formation {} was cut short by a restart before it changed this server: it is aborted",
                journal.window
            );
            journal.reason = if journal.stage == Stage::Open {
                "the initiator stopped while its window was open".into()
            } else {
                "the initiator stopped while the servers prepared".into()
            };
            journal.stage = Stage::RolledBack;
            write(dir, &journal)?;
        }
        Stage::Committing => {
            tracing::warn!(
                "Putting this server back as it was before formation {}, which a restart interrupted",
                journal.window
            );
            crate::member_sides::undo(dir, &journal.made).await;
            put_back_files(dir, local, &journal, false)?;
            journal.stage = Stage::RolledBack;
            journal.reason = "the initiator stopped during the formation".into();
            write(dir, &journal)?;
        }
        Stage::Committed => drop_copy(dir)?,
        Stage::RolledBack => {}
    }
    Ok(Some((journal, now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal() -> Journal {
        Journal {
            window: "abc".into(),
            stage: Stage::Committing,
            joiners: BTreeMap::from([("fp2".to_string(), "node2".to_string())]),
            new_cluster: true,
            node_id: 1,
            listened_before: String::new(),
            cluster_address_before: String::new(),
            made: MemberSides::default(),
            reason: String::new(),
        }
    }

    /// What a start recovers from the journal in `dir`, which holds one.
    async fn recover(dir: &Path, local: &mut rusqlite::Connection) -> (Journal, bool) {
        recover_at_start(dir, local).await.unwrap().unwrap()
    }

    /// A data directory whose database (`state.db` holding "before") was copied for a
    /// formation, its global database directory, and its local database.
    fn copied() -> (tempfile::TempDir, PathBuf, rusqlite::Connection) {
        let dir = tempfile::tempdir().unwrap();
        let global = dir.path().join("database").join("global");
        std::fs::create_dir_all(&global).unwrap();
        std::fs::write(global.join("state.db"), b"before").unwrap();
        let mut local = rusqlite::Connection::open(dir.path().join("local.db")).unwrap();
        rxd_db::migrate_local(&mut local).unwrap();
        copy_database(dir.path()).unwrap();
        (dir, global, local)
    }

    #[tokio::test]
    async fn a_formation_cut_short_is_put_back_at_start_and_once_only() {
        let (dir, global, mut local) = copied();
        write(dir.path(), &journal()).unwrap();
        // What the formation changed.
        std::fs::write(global.join("state.db"), b"cluster").unwrap();
        std::fs::write(dir.path().join("cluster.crt"), b"cert").unwrap();
        rxd_db::local::update_config(
            &mut local,
            [
                ("cluster.https_address", Some("192.0.2.1:8443")),
                ("core.https_address", Some("192.0.2.1:8443")),
            ],
        )
        .unwrap();

        let (j, now) = recover(dir.path(), &mut local).await;
        assert!(now);
        assert_eq!(j.stage, Stage::RolledBack);
        assert_eq!(std::fs::read(global.join("state.db")).unwrap(), b"before");
        assert!(!dir.path().join("cluster.crt").exists());
        let config = rxd_db::local::config(&local).unwrap();
        assert_eq!(config.get("cluster.https_address"), None);
        // Still listening for the joiners to learn the end.
        assert_eq!(
            config.get("core.https_address").map(String::as_str),
            Some("192.0.2.1:8443")
        );
        // Started again: nothing more to do, and the record stays for the joiners.
        std::fs::write(global.join("state.db"), b"later").unwrap();
        let (again, now) = recover(dir.path(), &mut local).await;
        assert!(!now);
        assert_eq!(again.stage, Stage::RolledBack);
        assert_eq!(std::fs::read(global.join("state.db")).unwrap(), b"later");
    }

    #[tokio::test]
    async fn a_committed_formation_only_drops_its_copy() {
        let (dir, global, mut local) = copied();
        std::fs::write(global.join("state.db"), b"cluster").unwrap();
        write(
            dir.path(),
            &Journal {
                stage: Stage::Committed,
                ..journal()
            },
        )
        .unwrap();
        recover_at_start(dir.path(), &mut local).await.unwrap();
        assert_eq!(std::fs::read(global.join("state.db")).unwrap(), b"cluster");
        assert!(!dir.path().join("database").join(COPY).exists());
    }

    #[tokio::test]
    async fn a_window_or_a_formation_cut_short_before_committing_is_aborted_at_start_once_only() {
        for stage in [Stage::Open, Stage::Preparing] {
            let dir = tempfile::tempdir().unwrap();
            let mut local = rusqlite::Connection::open(dir.path().join("local.db")).unwrap();
            rxd_db::migrate_local(&mut local).unwrap();
            rxd_db::local::update_config(
                &mut local,
                [("core.https_address", Some("192.0.2.1:8443"))],
            )
            .unwrap();
            write(dir.path(), &Journal { stage, ..journal() }).unwrap();

            let (j, now) = recover(dir.path(), &mut local).await;
            // Aborted for the joiners to learn, then listening as before once they did.
            assert!(now, "{stage:?}");
            assert_eq!(j.stage, Stage::RolledBack);
            assert!(!j.reason.is_empty());
            assert_eq!(read(dir.path()).unwrap().stage, Stage::RolledBack);
            let (_, now) = recover(dir.path(), &mut local).await;
            assert!(!now, "{stage:?}");
        }
    }

    #[test]
    fn a_window_that_ends_without_a_formation_is_closed_in_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let open = Journal {
            stage: Stage::Open,
            ..journal()
        };
        write(dir.path(), &open).unwrap();
        let joiners = BTreeMap::from([("fp3".to_string(), "node3".to_string())]);
        confirmed(dir.path(), "another", joiners.clone()).unwrap();
        assert_eq!(
            read(dir.path()).unwrap().joiners,
            open.joiners,
            "another window's"
        );
        confirmed(dir.path(), "abc", joiners.clone()).unwrap();
        assert_eq!(read(dir.path()).unwrap().joiners, joiners);
        close_open(dir.path(), "the formation was aborted");
        let closed = read(dir.path()).unwrap();
        assert_eq!(closed.stage, Stage::RolledBack);
        assert_eq!(closed.reason, "the formation was aborted");
        // A formation that went on is not the window's to close.
        write(dir.path(), &journal()).unwrap();
        close_open(dir.path(), "the formation was aborted");
        assert_eq!(read(dir.path()).unwrap().stage, Stage::Committing);
    }
}
