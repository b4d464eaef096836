//! Liveness and role rebalancing. The raft leader sends every member a heartbeat each
//! `cluster.offline_threshold / 2`; a member not heard from for longer than the threshold shows
//! `Offline`. After each round the leader moves the voter set toward what
//! [`crate::plan_voters`] wants, given each member's failure domain (so a domain changed
//! with `PUT /1.0/cluster/members/{name}` spreads the voters at the next round).
//!
//! ```text
//!  leader: every threshold/2 ─> PUT /internal/heartbeat to each member (2 s timeout)
//!            │                     └─> member replaces its liveness view with the leader's
//!            ├─> plan_voters ─> change_voters (promote, replace offline voters, spread domains)
//!            ├─> the pending reaper: a member left Pending for twice the threshold is forgotten
//!            └─> Host::heartbeats_sent (the daemon's offline-member warnings)
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rxd_db::tables::{self, Member, MemberState};
use serde::{Deserialize, Serialize};

use crate::{Candidate, Host, RoleLimits};

/// When each member was last heard from, as this member knows it.
pub struct Liveness {
    started: DateTime<Utc>,
    seen: Mutex<HashMap<u64, DateTime<Utc>>>,
    pending_since: Mutex<HashMap<u64, std::time::Instant>>,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            started: Utc::now(),
            seen: Mutex::new(HashMap::new()),
            pending_since: Mutex::new(HashMap::new()),
        }
    }
}

impl Liveness {
    /// Records that member `id` answered now.
    pub fn seen_now(&self, id: u64) {
        self.seen
            .lock()
            .expect("lock is never poisoned")
            .insert(id, Utc::now());
    }

    /// Takes the leader's view.
    pub fn replace(&self, view: BTreeMap<u64, DateTime<Utc>>) {
        let mut seen = self.seen.lock().expect("lock is never poisoned");
        for (id, at) in view {
            let e = seen.entry(id).or_insert(at);
            if at > *e {
                *e = at;
            }
        }
    }

    /// The current view.
    pub fn view(&self) -> BTreeMap<u64, DateTime<Utc>> {
        self.seen
            .lock()
            .expect("lock is never poisoned")
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect()
    }

    /// When `id` was last heard from; members never heard from count from our own start.
    pub fn last(&self, id: u64) -> DateTime<Utc> {
        self.seen
            .lock()
            .expect("lock is never poisoned")
            .get(&id)
            .copied()
            .unwrap_or(self.started)
    }
}

/// The heartbeat body.
#[derive(Debug, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The sender (the leader).
    pub leader: u64,
    /// When the leader last heard from each member.
    pub members: BTreeMap<u64, DateTime<Utc>>,
}

/// The configured offline threshold.
pub async fn threshold<H: Host + ?Sized>(d: &H) -> Duration {
    d.settings().await.offline_threshold
}

/// A member's status and message, LXD's way.
pub fn status_of<H: Host + ?Sized>(d: &H, m: &Member, threshold: Duration) -> (String, String) {
    match m.state {
        MemberState::Evacuated => {
            return ("Evacuated".into(), "Unavailable due to maintenance".into())
        }
        MemberState::Pending => return ("Pending".into(), "Joining the cluster".into()),
        MemberState::Created => {}
    }
    if m.id == d.node_id() {
        return ("Online".into(), "Fully operational".into());
    }
    if !answers_heartbeats(d, m.id, threshold) {
        ("Offline".into(), silence(d, m.id))
    } else {
        ("Online".into(), "Fully operational".into())
    }
}

/// LXD's message for a member not heard from: for how long, and since when.
pub fn silence<H: Host + ?Sized>(d: &H, id: u64) -> String {
    let last = d.membership().liveness.last(id);
    let since = (Utc::now() - last).to_std().unwrap_or_default();
    format!(
        "No heartbeat for {:?} ({})",
        since,
        last.format("%Y-%m-%d %H:%M:%S%.9f +0000 UTC")
    )
}

/// Whether a member counts as online.
pub fn is_online<H: Host + ?Sized>(d: &H, m: &Member, threshold: Duration) -> bool {
    status_of(d, m, threshold).0 == "Online"
}

/// The role limits from the cluster configuration.
pub async fn limits<H: Host + ?Sized>(d: &H) -> RoleLimits {
    d.settings().await.limits
}

/// The stand-by member ids, by the same rule the leader uses.
pub async fn standbys<H: Host + ?Sized>(
    d: &H,
    members: &[Member],
    threshold: Duration,
) -> BTreeSet<u64> {
    let voters: BTreeSet<u64> = d.db().status().voters.keys().copied().collect();
    crate::standbys(&candidates(d, members, threshold), &voters, limits(d).await)
}

/// The members as the planner sees them, from this member's liveness view.
pub fn candidates<H: Host + ?Sized>(
    d: &H,
    members: &[Member],
    threshold: Duration,
) -> Vec<Candidate> {
    members
        .iter()
        .map(|m| Candidate {
            id: m.id,
            // Evacuation moves workloads, not the database: an evacuated member still votes.
            online: m.id == d.node_id() || answers_heartbeats(d, m.id, threshold),
            eligible: m.state != MemberState::Pending,
            domain: m.failure_domain.clone(),
        })
        .collect()
}

/// Whether member `id` answered heartbeats within `threshold`.
pub fn answers_heartbeats<H: Host + ?Sized>(d: &H, id: u64, threshold: Duration) -> bool {
    let since = (Utc::now() - d.membership().liveness.last(id))
        .to_std()
        .unwrap_or_default();
    !crate::is_offline(since, threshold)
}

/// On the leader: moves the voter set toward the plan.
pub async fn rebalance<H: Host + ?Sized>(d: &H) {
    let _one_at_a_time = d.membership().changes.lock().await;
    rebalance_locked(d).await
}

/// [`rebalance`] for a caller that already holds the membership lock.
pub async fn rebalance_locked<H: Host + ?Sized>(d: &H) {
    let db = d.db();
    let status = db.status();
    if status.leader_id != Some(status.id) {
        return;
    }
    let Ok(members) = db.read_local(tables::members).await else {
        return;
    };
    let t = threshold(d).await;
    let voters: BTreeSet<u64> = status.voters.keys().copied().collect();
    let learners: BTreeSet<u64> = status.learners.keys().copied().collect();
    let mut cands = candidates(d, &members, t);
    // Only raft members can vote: a member still catching up is not yet a learner.
    cands.retain(|c| voters.contains(&c.id) || learners.contains(&c.id));
    if let Some(next) = crate::plan_voters(&cands, &voters, status.id, limits(d).await) {
        tracing::info!("Rebalancing raft voters from {voters:?} to {next:?}");
        if let Err(e) = db.change_voters(next).await {
            tracing::warn!("Rebalancing failed: {e}");
        }
    }
}

/// On the leader: forgets members that were accepted but never finished joining (their joiner
/// crashed or lost the cluster), once they have been pending for twice the offline threshold.
async fn reap_pending<H: Host>(d: &Arc<H>, members: &[Member], threshold: Duration) {
    let pending: Vec<u64> = members
        .iter()
        .filter(|m| m.state == MemberState::Pending)
        .map(|m| m.id)
        .collect();
    let expired: Vec<u64> = {
        let mut since = d
            .membership()
            .liveness
            .pending_since
            .lock()
            .expect("lock is never poisoned");
        since.retain(|id, _| pending.contains(id));
        let now = std::time::Instant::now();
        for id in &pending {
            since.entry(*id).or_insert(now);
        }
        let expired: Vec<u64> = since
            .iter()
            .filter(|(_, t)| now.duration_since(**t) > threshold * 2)
            .map(|(id, _)| *id)
            .collect();
        // Counted again from now if it is still pending next round.
        for id in &expired {
            since.remove(id);
        }
        expired
    };
    for id in expired {
        tracing::warn!("Member {id} never finished joining; removing it");
        // The decision above came from an earlier snapshot, and the join may hold the
        // membership lock right now: `forget_pending` looks again under the lock, so a join
        // that finished meanwhile is kept. It runs aside, so heartbeats go on meanwhile.
        let d = d.clone();
        tokio::spawn(async move {
            match crate::accept::forget_pending(&*d, id).await {
                Ok(true) => tracing::info!("Member {id} finished joining meanwhile; keeping it"),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!("Failed to remove the unfinished member {id}: {}", e.message)
                }
            }
        });
    }
}

async fn round<H: Host>(d: &Arc<H>) {
    let db = d.db();
    let status = db.status();
    if status.leader_id != Some(status.id) {
        return;
    }
    d.membership().liveness.seen_now(status.id);
    let Ok(members) = db.read_local(tables::members).await else {
        return;
    };
    let Some(cluster_cert) = d.cluster_cert() else {
        return;
    };
    let body = Heartbeat {
        leader: status.id,
        members: d.membership().liveness.view(),
    };
    let body = serde_json::to_value(&body).expect("heartbeats serialise");
    let sends = members.iter().filter(|m| m.id != status.id).map(|m| {
        let body = body.clone();
        let cert = cluster_cert.clone();
        let d = d.clone();
        let (id, address) = (m.id, m.address.clone());
        async move {
            let ok = async {
                let c = rxd_client::Client::https(&address, &cert.cert_pem, Some(d.server_cert()))
                    .ok()?;
                tokio::time::timeout(
                    Duration::from_secs(2),
                    c.request("PUT", "/internal/heartbeat", Some(body), None),
                )
                .await
                .ok()?
                .ok()
            }
            .await
            .is_some();
            if ok {
                d.membership().liveness.seen_now(id);
            }
        }
    });
    let started = std::time::Instant::now();
    futures_util::future::join_all(sends).await;
    let took = started.elapsed();
    d.membership().rounds.record(took);
    tracing::debug!(
        members = members.len(),
        took_ms = took.as_millis() as u64,
        "Heartbeat round"
    );
    let t = threshold(&**d).await;
    d.clone().heartbeats_sent(&members, t);
    reap_pending(d, &members, t).await;
    // A join or removal in progress rebalances when it ends; heartbeats do not wait for it.
    if let Ok(_one_at_a_time) = d.membership().changes.try_lock() {
        rebalance_locked(&**d).await;
    }
}

/// Starts the heartbeat task.
pub fn spawn<H: Host>(d: Arc<H>) {
    tokio::spawn(async move {
        loop {
            let t = threshold(&*d).await;
            if crate::host::is_clustered(&*d).await.unwrap_or(false) {
                round(&d).await;
            }
            tokio::select! {
                _ = tokio::time::sleep(t / 2) => {}
                _ = d.membership().heartbeat_now.notified() => {}
            }
        }
    });
}

/// On a member, `PUT /internal/heartbeat`: takes the leader's liveness view.
pub fn receive<H: Host + ?Sized>(d: &H, hb: Heartbeat) {
    let liveness = &d.membership().liveness;
    liveness.replace(hb.members);
    liveness.seen_now(hb.leader);
    liveness.seen_now(d.node_id());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leaders_view_only_moves_times_forward() {
        let live = Liveness::default();
        let early = Utc::now() - chrono::TimeDelta::seconds(60);
        let late = Utc::now() + chrono::TimeDelta::seconds(60);
        live.replace(BTreeMap::from([(2, late), (3, early)]));
        assert_eq!(live.last(2), late);
        assert_eq!(live.last(3), early);
        // An older report of member 2 keeps the newer time; a newer one of 3 replaces it.
        live.replace(BTreeMap::from([(2, early), (3, late)]));
        assert_eq!(live.last(2), late);
        assert_eq!(live.last(3), late);
        assert_eq!(live.view().len(), 2);
    }

    #[test]
    fn members_never_heard_from_count_from_the_start() {
        let live = Liveness::default();
        assert_eq!(live.last(7), live.started);
        live.seen_now(7);
        assert!(live.last(7) >= live.started);
    }
}
