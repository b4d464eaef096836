//! Leaving a cluster: removing a member (on the leader) and the removed member turning back
//! into a standalone server.
//!
//! ```text
//!  DELETE /1.0/cluster/members/X ─(forward)─> leader
//!    leader: X stops voting (a learner is promoted if X was the only other voter)
//!            ─> X leaves raft ─> X told to leave (unless force) ─> RemoveMember ─> rebalance
//!    X:      cluster.crt gone, its pool directories removed, a fresh one-voter database
//! ```

use std::collections::BTreeSet;
use std::time::Duration;

use rxd_db::tables;
use rxd_db::Command;

use crate::error::{ApiError, ApiResult};
use crate::{Daemon, NODE_ID_KEY};

/// On the leader: removes member `name` from the cluster.
pub async fn remove_member(d: &Daemon, name: &str, force: bool) -> ApiResult<()> {
    let _one_at_a_time = d.membership.lock().await;
    let db = d.db();
    let members = db.read(tables::members).await?;
    let m = members
        .iter()
        .find(|m| m.name == name)
        .cloned()
        .ok_or_else(|| ApiError::not_found("Cluster member not found"))?;
    if members.len() == 1 {
        return Err(ApiError::bad_request(
            "Member is the only member in the cluster",
        ));
    }
    let status = db.status();
    let voters: BTreeSet<u64> = status.voters.keys().copied().collect();
    if m.id == status.id {
        // The leader does not remove itself: it hands leadership to another voter, which then
        // carries out the removal.
        let heir = voters
            .iter()
            .copied()
            .find(|v| *v != m.id)
            .or_else(|| status.learners.keys().copied().find(|id| *id != m.id))
            .ok_or_else(|| ApiError::bad_request("No other member can take over the database"))?;
        if !voters.contains(&heir) {
            let mut with_heir = voters.clone();
            with_heir.insert(heir);
            db.change_voters(with_heir).await?;
        }
        let heir_member = members
            .iter()
            .find(|x| x.id == heir)
            .ok_or_else(|| ApiError::internal("The new leader has no member row"))?;
        // Leaving the voters makes this member step down once the change commits.
        let rest: BTreeSet<u64> = db
            .status()
            .voters
            .keys()
            .copied()
            .filter(|v| *v != m.id)
            .collect();
        db.change_voters(rest).await?;
        db.wait_until(Duration::from_secs(30), "another leader", |s| {
            s.leader_id.is_some() && s.leader_id != Some(s.id)
        })
        .await?;
        let c = crate::peer::member_client(d, &heir_member.address)?;
        let path = format!(
            "/1.0/cluster/members/{name}{}",
            if force { "?force=1" } else { "" }
        );
        drop(_one_at_a_time);
        c.request("DELETE", &path, None, None)
            .await
            .map_err(|e| ApiError::internal(crate::handlers::internal_cluster::api_message(&e)))?;
        return Ok(());
    }
    if voters.contains(&m.id) {
        let next: BTreeSet<u64> = voters.iter().copied().filter(|v| *v != m.id).collect();
        db.change_voters(next).await?;
        // The status below comes from raft's metrics, which trail the change a little.
        db.wait_until(
            Duration::from_secs(30),
            "the member to leave the voters",
            |s| !s.voters.contains_key(&m.id),
        )
        .await?;
    }
    if m.id != d.node_id() && !force {
        let c = crate::peer::member_client(d, &m.address)?;
        c.request("POST", "/internal/cluster/left", None, None)
            .await
            .map_err(|e| {
                ApiError::bad_request(format!(
                    "Failed to tell {name:?} it was removed (use --force to remove an unreachable member): {}",
                    crate::handlers::internal_cluster::api_message(&e)
                ))
            })?;
    }
    let status = db.status();
    if status.voters.contains_key(&m.id) || status.learners.contains_key(&m.id) {
        db.remove_node(m.id).await?;
    }
    db.propose(Command::RemoveMember { id: m.id }).await??;
    crate::heartbeat::rebalance_locked(d).await;
    Ok(())
}

/// On a removed member: drops the cluster certificate, its side of the cluster's pools and the
/// cluster database, and starts over as a standalone server (raft node 1).
pub async fn become_standalone(d: &Daemon) -> ApiResult<()> {
    let id = d.node_id();
    let pools = d
        .db()
        .read_local(tables::storage_pools)
        .await
        .unwrap_or_default();
    d.db().shutdown().await?;
    let global = d.dir.join("database").join("global");
    let io = |e: std::io::Error| ApiError::internal(format!("Failed to reset the database: {e}"));
    std::fs::remove_dir_all(&global).map_err(io)?;
    std::fs::create_dir_all(&global).map_err(io)?;
    let db = d.open_db(1).await?;
    db.initialize(String::new()).await?;
    db.wait_for_leader(Duration::from_secs(30)).await?;
    d.replace_db(db);
    d.update_local([(NODE_ID_KEY, None)])?;
    for f in ["cluster.crt", "cluster.key"] {
        let _ = std::fs::remove_file(d.dir.join(f));
    }
    d.set_cluster_cert(None)?;
    for pool in pools {
        if let Some(mine) = pool.members.iter().find(|m| m.member_id == id) {
            crate::storage::delete(&d.dir, &pool.name, &pool.driver, &mine.config);
        }
    }
    d.events.set_location("none");
    tracing::info!("Removed from the cluster: this server is standalone again");
    Ok(())
}
