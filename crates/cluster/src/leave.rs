//! Leaving a cluster: removing a member (on the leader) and the removed member turning back
//! into a standalone server.
//!
//! ```text
//!  DELETE /1.0/cluster/members/X ─(forward)─> leader
//!    leader: plan_removal (refused if most voters are or would be offline)
//!            ─> replacements caught up ─> ONE voter change: X out, replacement in
//!            ─> (X was the leader: it steps down, the new leader carries on from here)
//!            ─> X told to leave (unless force) ─> X leaves raft ─> RemoveMember ─> rebalance
//!    X:      its pool directories removed ─> database set aside (fsync) ─> node id and
//!            cluster.crt gone ─> a fresh one-voter database
//! ```

use std::collections::BTreeSet;
use std::time::Duration;

use rxd_db::tables;
use rxd_db::Command;

use crate::host::NODE_ID_KEY;
use crate::peer::api_message;
use crate::{sync_dir, Error, Host, Result};

/// On the leader: removes member `name` from the cluster.
///
/// The decision is [`crate::plan_removal`]'s, from this leader's liveness view: one voter
/// change takes the member out and its replacement in, and a removal after which the cluster
/// could not commit is refused before anything changes. `force` only skips telling the member
/// (LXD's meaning: the member may be unreachable); it never overrides the quorum check.
pub async fn remove_member<H: Host + ?Sized>(d: &H, name: &str, force: bool) -> Result<()> {
    let one_at_a_time = d.membership().changes.lock().await;
    let db = d.db();
    // The local replica: a leader that lost its quorum must refuse at once rather than wait for
    // a read index it cannot get.
    let members = db.read_local(tables::members).await?;
    let m = members
        .iter()
        .find(|m| m.name == name)
        .cloned()
        .ok_or_else(|| Error::not_found("Cluster member not found"))?;
    if members.len() == 1 {
        return Err(Error::bad_request(
            "Member is the only member in the cluster",
        ));
    }
    let status = db.status();
    let t = crate::heartbeat::threshold(d).await;
    let voters: BTreeSet<u64> = status.voters.keys().copied().collect();
    let in_raft = |id: u64| status.voters.contains_key(&id) || status.learners.contains_key(&id);
    let mut cands = crate::heartbeat::candidates(d, &members, t);
    // Answers heartbeats (an evacuated member still does).
    let online = cands.iter().any(|c| c.id == m.id && c.online);
    cands.retain(|c| in_raft(c.id));
    let plan = crate::plan_removal(
        &cands,
        &voters,
        status.id,
        m.id,
        crate::heartbeat::limits(d).await,
    )
    .map_err(|e| Error::bad_request(e.to_string()))?;
    if !force && !online && m.state != tables::MemberState::Pending {
        return Err(Error::bad_request(format!(
            "Member {name:?} is offline and cannot be told it was removed: use --force to remove it anyway"
        )));
    }
    if plan.voters != voters {
        // A member becomes a voter only once its log has caught up, so the new voter set can
        // commit as soon as the change is proposed.
        for id in &plan.promoted {
            let address = status.learners.get(id).cloned().unwrap_or_default();
            db.add_learner(*id, address).await?;
        }
        tracing::info!(
            "Removing {name}: raft voters {voters:?} -> {:?}",
            plan.voters
        );
        db.change_voters(plan.voters.clone()).await?;
        let gone = m.id;
        db.wait_until(
            Duration::from_secs(30),
            "the member to leave the voters",
            move |s| !s.voters.contains_key(&gone),
        )
        .await?;
    }
    if m.id == status.id {
        // This leader is no longer a voter and steps down; the new leader (an online member of
        // the new voters, elected because its log is complete) carries out the rest.
        let leader = db
            .wait_until(Duration::from_secs(30), "another leader", |s| {
                s.leader_id.is_some() && s.leader_id != Some(s.id) && s.leader_address.is_some()
            })
            .await?;
        let address = leader
            .leader_address
            .ok_or_else(|| Error::internal("The new leader has no address"))?;
        let c = crate::peer::member_client(d, &address)?;
        let path = format!(
            "/1.0/cluster/members/{name}{}",
            if force { "?force=1" } else { "" }
        );
        drop(one_at_a_time);
        c.request("DELETE", &path, None, None)
            .await
            .map_err(|e| match e.status() {
                Some(s) if (400..500).contains(&s) => Error::bad_request(api_message(&e)),
                _ => Error::internal(api_message(&e)),
            })?;
        return Ok(());
    }
    if !force && m.state != tables::MemberState::Pending {
        let c = crate::peer::member_client(d, &m.address)?;
        c.request("POST", "/internal/cluster/left", None, None)
            .await
            .map_err(|e| {
                Error::bad_request(format!(
                    "Failed to tell {name:?} it was removed (use --force to remove an unreachable member): {}",
                    api_message(&e)
                ))
            })?;
    }
    let status = db.status();
    if status.voters.contains_key(&m.id) || status.learners.contains_key(&m.id) {
        db.remove_node(m.id).await?;
    }
    db.propose(Command::RemoveMember { id: m.id }).await??;
    tracing::info!(member = %name, id = m.id, address = %m.address, force, "Member removed");
    crate::heartbeat::rebalance_locked(d).await;
    Ok(())
}

/// On a removed member: drops the cluster certificate, its side of the cluster's pools and the
/// cluster database, and starts over as a standalone server (raft node 1).
///
/// The order makes every crash point recoverable: the pool sides go first (the member is out
/// of the cluster already), then the database is renamed to `global.removed` (the durable
/// decision, fsynced), then the node id and certificates go, then a fresh database opens. A
/// start that finds `global.removed` finishes the steps after it ([`recover_at_start`]).
pub async fn become_standalone<H: Host + ?Sized>(d: &H) -> Result<()> {
    let sides = d.own_sides().await;
    d.db().shutdown().await?;
    d.undo_member_sides(&sides).await;
    let database = d.dir().join("database");
    let global = database.join("global");
    let removed = database.join(REMOVED);
    let io = |e: std::io::Error| Error::internal(format!("Failed to reset the database: {e}"));
    if removed.exists() {
        std::fs::remove_dir_all(&removed).map_err(io)?;
    }
    std::fs::rename(&global, &removed).map_err(io)?;
    std::fs::create_dir_all(&global).map_err(io)?;
    sync_dir(&database).map_err(io)?;
    crate::failpoint("standalone-after-rename").await?;
    d.update_local(&[(NODE_ID_KEY, None)])?;
    for f in ["cluster.crt", "cluster.key"] {
        let _ = std::fs::remove_file(d.dir().join(f));
    }
    sync_dir(d.dir()).map_err(io)?;
    d.set_cluster_cert(None)?;
    let db = d.open_db(1).await?;
    db.initialize(String::new()).await?;
    db.wait_for_leader(Duration::from_secs(30)).await?;
    d.replace_db(db);
    let _ = std::fs::remove_dir_all(&removed);
    d.set_location("none");
    tracing::info!("Removed from the cluster: this server is standalone again");
    Ok(())
}

/// Where a removed member's cluster database waits to be deleted.
const REMOVED: &str = "global.removed";

/// At start: finishes a [`become_standalone`] that a crash interrupted after the database was
/// set aside, so the server starts standalone (raft node 1, no cluster certificate).
pub fn recover_at_start(
    dir: &std::path::Path,
    local: &mut rusqlite::Connection,
    joining: bool,
) -> std::io::Result<()> {
    let database = dir.join("database");
    let removed = database.join(REMOVED);
    if joining || !removed.exists() {
        return Ok(());
    }
    tracing::warn!("Finishing a removal from the cluster that a restart interrupted");
    rxd_db::local::update_config(local, [(NODE_ID_KEY, None)]).map_err(std::io::Error::other)?;
    for f in ["cluster.crt", "cluster.key"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let global = database.join("global");
    if !global.exists() {
        std::fs::create_dir_all(&global)?;
    }
    sync_dir(dir)?;
    std::fs::remove_dir_all(&removed)?;
    sync_dir(&database)
}
