//! An orderly stop (`rxd shutdown`, SIGTERM, SIGINT) hands leadership over first, as
//! `lxd shutdown` does, so the cluster does not wait for an election timeout.
//!
//! ```text
//!  leader with other voters ─> an up-to-date voter (matched index = our last log index)
//!     ─> POST /internal/raft/elect on it ─> wait (bounded) until another member leads ─> stop
//! ```
//!
//! openraft 0.9 has no leadership transfer. The chosen voter campaigns at once with our whole
//! log; we grant it our vote (a leader's own lease is not renewed by its heartbeats) and step
//! down, which with three voters is a majority. If no other member leads within the bound, the
//! member stops anyway and the usual election follows.

use std::time::Duration;

use crate::Daemon;

/// How long a stopping leader waits for a voter to catch up and for a new leader.
pub const HANDOVER_LIMIT: Duration = Duration::from_secs(5);

/// How long one campaign may take before the voter is asked again.
pub const ASK_AGAIN: Duration = Duration::from_millis(750);

/// The path a member (or the trusted unix socket) asks a voter to campaign at once.
pub const ELECT_PATH: &str = "/internal/raft/elect";

/// On the leader, with other voters: makes an up-to-date voter the leader before this member
/// stops. Does nothing elsewhere; gives up quietly after [`HANDOVER_LIMIT`].
///
/// A campaign can lose: a voter that heard from us within the leader lease (the election
/// timeout) refuses it, and so do we while our own lease runs, or when an entry was appended
/// after the voter was chosen. Each lost campaign still leaves a higher term behind (we step
/// down on seeing it), so the voter is asked again each [`ASK_AGAIN`] until another member
/// leads.
pub async fn hand_over_leadership(d: &Daemon) {
    let db = d.db();
    let status = db.status();
    let own = status.id;
    if status.leader_id != Some(own) || status.voters.len() < 2 || d.cluster_cert().is_none() {
        return;
    }
    let deadline = tokio::time::Instant::now() + HANDOVER_LIMIT;
    let new_leader = |s: &rxd_raft::RaftStatus| s.leader_id.is_some_and(|l| l != own);
    // Chosen while this member still leads: only a leader knows how far each voter got.
    let mut voters = Vec::new();
    while voters.is_empty() && tokio::time::Instant::now() < deadline {
        voters = db.up_to_date_voters();
        if voters.is_empty() {
            // Nobody has our last entry yet: the next append carries it.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // The most recently heard from first: the likeliest to be up and answering.
    voters.sort_by_key(|(id, _)| std::cmp::Reverse(d.membership.liveness.last(*id)));
    for (id, address) in voters.iter().cycle() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        if new_leader(&db.status()) {
            break;
        }
        tracing::info!("Handing cluster leadership over to member {id} at {address}");
        let asked = async {
            let client = crate::peer::member_client(d, address)
                .map_err(|e| e.message)?
                .with_timeout(Duration::from_secs(2));
            client
                .request("POST", ELECT_PATH, None, None)
                .await
                .map_err(|e| e.to_string())
        };
        match asked.await {
            Err(e) => tracing::warn!("Member {id} did not start an election: {e}"),
            Ok(_) => {
                let _ = db
                    .wait_until(left.min(ASK_AGAIN), "another cluster leader", new_leader)
                    .await;
            }
        }
    }
    let status = db.status();
    if new_leader(&status) {
        tracing::info!("Member {:?} now leads the cluster", status.leader_id);
    } else {
        tracing::warn!("Stopping without handing cluster leadership over");
    }
}
