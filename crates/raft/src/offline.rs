//! Offline changes to the raft membership, made while the daemon is stopped: the basis of
//! `rxd cluster show|edit|list-database|recover-from-quorum-loss|remove-raft-node`.
//!
//! A membership is changed by appending a membership entry to the log, never by rewriting an
//! entry or the state machine, so that every entry this member holds stays where it is:
//!
//! ```text
//!  open as the daemon would: snapshot newer than state.db restored, a log purged past the
//!  applied state forgotten
//!  one log.db transaction (synchronous=FULL, so an fsync at COMMIT):
//!      (log behind the applied state: purge the stale rows up to it)
//!      append at last+1 a membership entry with leader id (T, self), T above every term seen
//!      vote := (T, self), not committed: no other member can ever write a (T, self) entry,
//!             and this member campaigns at T+1 at the earliest
//!      recovery only: committed := the new entry; openraft applies every entry up to it at
//!             start and the member is the single voter of the group
//! ```
//!
//! An edit (new addresses or roles) and a removal leave the committed index alone: the new
//! membership is effective at start as the last one in the log and commits with the next
//! leader's first entry.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use openraft::{
    BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Membership, StoredMembership, Vote,
};
use rusqlite::{params, Connection, OptionalExtension};

use crate::log_store::{get_meta_from, set_meta_in, LogStore};
use crate::state_machine::{StateMachine, STATE_FILE};
use crate::types::TypeConfig;

/// The log file name inside the cluster database directory.
pub(crate) const LOG_FILE: &str = "log.db";

/// One node of the raft membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftNode {
    /// The raft node id (also the member's id).
    pub id: u64,
    /// The member's cluster address, `host:port`.
    pub address: String,
    /// Whether it votes; otherwise it is a learner.
    pub voter: bool,
}

/// The raft membership this member would start with, read from its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftConfig {
    /// The nodes, by id.
    pub nodes: Vec<RaftNode>,
    /// The index of the last entry this member holds (0 for none).
    pub last_index: u64,
    /// The index of the last entry this member knows to be committed (0 for none).
    pub committed_index: u64,
}

/// Why an offline change could not be made. Nothing was written when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// The cluster database could not be read or written.
    #[error("Cannot use the cluster database {path:?}: {message}")]
    Storage {
        /// The file concerned.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The store holds no membership: the server never started, or was never clustered.
    #[error("This server has no cluster database yet")]
    Uninitialized,
    /// This member is not a voter of the membership it holds.
    #[error("This member (id {0}) is not a voter of the cluster database")]
    NotVoter(u64),
    /// The new membership is not usable.
    #[error("{0}")]
    Invalid(String),
}

fn storage(path: &Path, e: impl std::fmt::Display) -> OfflineError {
    OfflineError::Storage {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// What the files of `dir` hold, after the same start-up recovery the daemon does.
struct Files {
    log_path: PathBuf,
    log: Connection,
    applied: Option<LogId<u64>>,
    last: Option<LogId<u64>>,
    vote: Option<Vote<u64>>,
    committed: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
}

fn open(dir: &Path) -> Result<Files, OfflineError> {
    let state_path = dir.join(STATE_FILE);
    let log_path = dir.join(LOG_FILE);
    if !log_path.exists() || !state_path.exists() {
        return Err(OfflineError::Uninitialized);
    }
    let sm = StateMachine::open(dir).map_err(|e| storage(&state_path, e))?;
    let (applied, sm_membership) = sm
        .applied_with_membership()
        .map_err(|e| storage(&state_path, e))?;
    drop(sm);
    let store = LogStore::open(&log_path).map_err(|e| storage(&log_path, e))?;
    store
        .forget_past_gap(applied)
        .map_err(|e| storage(&log_path, e))?;
    drop(store);
    let log = Connection::open(&log_path).map_err(|e| storage(&log_path, e))?;
    log.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| storage(&log_path, e))?;
    let read = || -> Result<_, crate::log_store::StoreError> {
        let vote: Option<Vote<u64>> = get_meta_from(&log, "meta", "vote")?;
        let committed: Option<Option<LogId<u64>>> = get_meta_from(&log, "meta", "committed")?;
        let purged: Option<LogId<u64>> = get_meta_from(&log, "meta", "purged")?;
        let last: Option<String> = log
            .query_row(
                "SELECT entry FROM entries ORDER BY idx DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let last = match last {
            Some(text) => Some(serde_json::from_str::<Entry<TypeConfig>>(&text)?.log_id),
            None => purged,
        };
        // The last membership entry of the log; a normal entry may name the word too, so
        // each candidate is decoded.
        let mut stmt = log.prepare(
            "SELECT entry FROM entries WHERE entry LIKE '%\"Membership\"%' ORDER BY idx DESC",
        )?;
        let mut rows = stmt.query([])?;
        let mut in_log = None;
        while let Some(row) = rows.next()? {
            let entry: Entry<TypeConfig> = serde_json::from_str(&row.get::<_, String>(0)?)?;
            if let EntryPayload::Membership(m) = entry.payload {
                in_log = Some(StoredMembership::new(Some(entry.log_id), m));
                break;
            }
        }
        Ok((vote, committed.flatten(), last, in_log))
    };
    let (vote, committed, last, in_log) = read().map_err(|e| storage(&log_path, e))?;
    let membership = match in_log {
        Some(m) if m.log_id() >= sm_membership.log_id() => m,
        _ => sm_membership,
    };
    if membership.log_id().is_none() || last.max(applied).is_none() {
        return Err(OfflineError::Uninitialized);
    }
    Ok(Files {
        log_path,
        log,
        applied,
        last,
        vote,
        committed,
        membership,
    })
}

fn nodes_of(membership: &Membership<u64, BasicNode>) -> Vec<RaftNode> {
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    membership
        .nodes()
        .map(|(id, node)| RaftNode {
            id: *id,
            address: node.addr.clone(),
            voter: voters.contains(id),
        })
        .collect()
}

/// The raft membership stored in the cluster database directory `dir`, as the daemon would
/// start with it.
pub fn read_config(dir: &Path) -> Result<RaftConfig, OfflineError> {
    let files = open(dir)?;
    let last = files.last.max(files.applied);
    Ok(RaftConfig {
        nodes: nodes_of(files.membership.membership()),
        last_index: last.map_or(0, |l| l.index),
        committed_index: files.committed.max(files.applied).map_or(0, |l| l.index),
    })
}

/// Appends a membership entry made of `nodes` (see the module's description); with
/// `commit_all`, every entry this member holds is marked committed with it.
fn append_membership(
    mut files: Files,
    own_id: u64,
    nodes: &[RaftNode],
    commit_all: bool,
) -> Result<LogId<u64>, OfflineError> {
    let voters: BTreeSet<u64> = nodes.iter().filter(|n| n.voter).map(|n| n.id).collect();
    if voters.is_empty() {
        return Err(OfflineError::Invalid(
            "At least one member must be a voter".to_string(),
        ));
    }
    let map: BTreeMap<u64, BasicNode> = nodes
        .iter()
        .map(|n| (n.id, BasicNode::new(n.address.clone())))
        .collect();
    if map.len() != nodes.len() {
        return Err(OfflineError::Invalid(
            "A raft node id appears twice".to_string(),
        ));
    }
    let membership = Membership::new(vec![voters], map);
    let previous = files.last.max(files.applied).expect("checked at open");
    let term = files
        .vote
        .map_or(0, |v| v.leader_id().term)
        .max(previous.leader_id.term)
        .saturating_add(1);
    let log_id = LogId::new(CommittedLeaderId::new(term, own_id), previous.index + 1);
    let entry: Entry<TypeConfig> = Entry {
        log_id,
        payload: EntryPayload::Membership(membership),
    };
    let path = files.log_path.clone();
    let err = |e: &dyn std::fmt::Display| storage(&path, e);
    let text = serde_json::to_string(&entry).map_err(|e| err(&e))?;
    let tx = files.log.transaction().map_err(|e| err(&e))?;
    if files.last < files.applied {
        // The log ends before the applied state (a snapshot was installed and the log not yet
        // cleaned): the entries it holds are all covered by the state.
        set_meta_in(&tx, "meta", "purged", &previous).map_err(|e| err(&e))?;
        tx.execute("DELETE FROM entries", []).map_err(|e| err(&e))?;
    }
    tx.execute(
        "INSERT INTO entries (idx, entry) VALUES (?1, ?2)",
        params![i64::try_from(log_id.index).unwrap_or(i64::MAX), text],
    )
    .map_err(|e| err(&e))?;
    set_meta_in(&tx, "meta", "vote", &Vote::new(term, own_id)).map_err(|e| err(&e))?;
    if commit_all {
        set_meta_in(&tx, "meta", "committed", &Some(log_id)).map_err(|e| err(&e))?;
    }
    tx.commit().map_err(|e| err(&e))?;
    Ok(log_id)
}

/// Quorum-loss recovery: member `own_id`, a voter of the membership it holds, becomes the
/// only node of the group, and every entry it holds is committed. The other members are no
/// longer raft nodes; they can join again as new members. Returns the new membership entry's
/// index.
pub fn recover(dir: &Path, own_id: u64) -> Result<u64, OfflineError> {
    let files = open(dir)?;
    let me = nodes_of(files.membership.membership())
        .into_iter()
        .find(|n| n.id == own_id);
    let me = match me {
        Some(me) if me.voter => me,
        _ => return Err(OfflineError::NotVoter(own_id)),
    };
    append_membership(files, own_id, &[me], true).map(|l| l.index)
}

/// Replaces the membership with `nodes` (new addresses or roles, fewer nodes) without changing
/// what is committed; member `own_id` writes the change. Returns the new entry's index.
pub fn reconfigure(dir: &Path, own_id: u64, nodes: &[RaftNode]) -> Result<u64, OfflineError> {
    let files = open(dir)?;
    append_membership(files, own_id, nodes, false).map(|l| l.index)
}

/// The members' names by id, from the state machine (an empty map if it has none yet).
pub fn member_names(dir: &Path) -> Result<BTreeMap<u64, String>, OfflineError> {
    let path = dir.join(STATE_FILE);
    let conn = crate::state_machine::open_reader(&path).map_err(|e| storage(&path, e))?;
    let members = rxd_db::tables::members(&conn).map_err(|e| storage(&path, e))?;
    Ok(members.into_iter().map(|m| (m.id, m.name)).collect())
}

/// Sets the members' addresses in the state machine where an offline edit changed them, as
/// the edit of every member does alike (the address of a member is also a row of the cluster
/// tables).
pub fn set_member_addresses(dir: &Path, changes: &[(u64, String)]) -> Result<(), OfflineError> {
    if changes.is_empty() {
        return Ok(());
    }
    let path = dir.join(STATE_FILE);
    let mut conn = crate::state_machine::open_state(&path).map_err(|e| storage(&path, e))?;
    let tx = conn.transaction().map_err(|e| storage(&path, e))?;
    for (id, address) in changes {
        tx.execute(
            "UPDATE members SET address = ?1 WHERE id = ?2",
            params![address, i64::try_from(*id).unwrap_or(i64::MAX)],
        )
        .map_err(|e| storage(&path, e))?;
    }
    tx.commit().map_err(|e| storage(&path, e))
}
