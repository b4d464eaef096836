//! Warnings rxd raises itself. Each is one row per (member, type, entity) in the cluster
//! database: an occurrence is proposed only when that row is missing or resolved, so a
//! condition that lasts counts once, and one that comes back after being resolved counts again.
//!
//! ```text
//!  leader, after each heartbeat round ─> a member offline, no open warning ─> RaiseWarning
//!                                     └─> a member online, an open warning ─> ResolveWarnings
//!  start ─> mount this member's pools ─> failed: RaiseWarning, mounted: ResolveWarnings
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rxd_api::WarningType;
use rxd_db::tables::{self, Member, MemberState, WarningStatus};
use rxd_db::Command;

use crate::error::ApiError;
use crate::Daemon;

/// One condition a warning reports: on a member, of a type, about an entity; `problem` is the
/// message while it holds and `None` once it went away.
pub struct Condition {
    /// The member it is on.
    pub member_id: u64,
    /// Its type.
    pub kind: WarningType,
    /// The object it concerns.
    pub entity_url: String,
    /// What is wrong, or `None` when nothing is.
    pub problem: Option<String>,
}

/// Brings the warnings of `conditions` in line with them: raises those that hold without an
/// open (new or acknowledged) warning, resolves open ones whose condition went away.
pub async fn reconcile(d: &Daemon, conditions: Vec<Condition>) -> Result<(), ApiError> {
    let db = d.db();
    let open: Vec<(u64, i64, String)> = db
        .read(|c| {
            Ok(tables::warnings(c)?
                .into_iter()
                .filter(|w| w.status != WarningStatus::Resolved && w.project.is_empty())
                .map(|w| (w.member_id, w.type_code, w.entity_url))
                .collect())
        })
        .await?;
    for cond in conditions {
        let key = (cond.member_id, cond.kind.code(), cond.entity_url.clone());
        let cmd = match (cond.problem, open.contains(&key)) {
            (Some(message), false) => {
                tracing::warn!(entity = %cond.entity_url, "Warning: {}: {message}", cond.kind.name());
                Command::RaiseWarning {
                    uuid: uuid::Uuid::new_v4().to_string(),
                    member_id: cond.member_id,
                    project: String::new(),
                    type_code: cond.kind.code(),
                    entity_url: cond.entity_url,
                    message,
                    now: now(),
                }
            }
            (None, true) => {
                tracing::info!(
                    entity = %cond.entity_url,
                    "Warning resolved: {}",
                    cond.kind.name()
                );
                Command::ResolveWarnings {
                    member_id: cond.member_id,
                    type_code: cond.kind.code(),
                    entity_url: cond.entity_url,
                    now: now(),
                }
            }
            _ => continue,
        };
        db.propose(cmd).await??;
    }
    Ok(())
}

/// Now, as Go prints a `time.Time` (RFC 3339, nanoseconds without trailing zeros), so that
/// clients that read the time and print it again print the same text.
pub fn now() -> String {
    go_time(&crate::now_rfc3339())
}

fn go_time(rfc3339_nanos: &str) -> String {
    let Some((seconds, fraction)) = rfc3339_nanos
        .strip_suffix('Z')
        .and_then(|s| s.split_once('.'))
    else {
        return rfc3339_nanos.to_string();
    };
    match fraction.trim_end_matches('0') {
        "" => format!("{seconds}Z"),
        digits => format!("{seconds}.{digits}Z"),
    }
}

/// The URL of a cluster member.
fn member_url(name: &str) -> String {
    format!("/1.0/cluster/members/{name}")
}

/// On the leader, after a heartbeat round: one warning per member that does not answer,
/// resolved when it answers again. It runs aside, one at a time, so that a slow proposal (a
/// quorum being lost) never holds up heartbeats.
pub fn offline_members(d: &Arc<Daemon>, members: &[Member], threshold: Duration) {
    static RUNNING: AtomicBool = AtomicBool::new(false);
    let conditions: Vec<Condition> = members
        .iter()
        .filter(|m| m.id != d.node_id() && m.state != MemberState::Pending)
        .map(|m| Condition {
            member_id: m.id,
            kind: WarningType::OfflineClusterMember,
            entity_url: member_url(&m.name),
            problem: (!rxd_cluster::heartbeat::answers_heartbeats(&**d, m.id, threshold))
                .then(|| rxd_cluster::heartbeat::silence(&**d, m.id)),
        })
        .collect();
    if RUNNING.swap(true, Ordering::AcqRel) {
        return;
    }
    let d = d.clone();
    tokio::spawn(async move {
        if let Err(e) = reconcile(&d, conditions).await {
            tracing::debug!("Cannot update offline member warnings: {}", e.message);
        }
        RUNNING.store(false, Ordering::Release);
    });
}

/// At start, once the cluster answers: a warning for each of this member's pools that could
/// not be mounted, and the earlier ones resolved for those that were. Retried for five minutes
/// while there is no leader.
pub fn pools_at_start(d: &Arc<Daemon>, mounted: Vec<(String, Option<String>)>) {
    let d = d.clone();
    tokio::spawn(async move {
        let conditions = || {
            mounted
                .iter()
                .map(|(pool, failure)| Condition {
                    member_id: d.node_id(),
                    kind: WarningType::StoragePoolUnavailable,
                    entity_url: format!("/1.0/storage-pools/{pool}"),
                    problem: failure.clone(),
                })
                .collect::<Vec<_>>()
        };
        for _ in 0..150 {
            match reconcile(&d, conditions()).await {
                Ok(()) => return,
                Err(e) => tracing::debug!("Storage pool warnings wait: {}", e.message),
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        tracing::warn!("Gave up recording storage pool warnings: the cluster did not answer");
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_drop_trailing_zeros_as_go_does() {
        let cases = [
            (
                "2026-11-28T01:02:03.123456789Z",
                "2026-11-28T01:02:03.123456789Z",
            ),
            ("2026-11-28T01:02:03.120000000Z", "2026-11-28T01:02:03.12Z"),
            ("2026-11-28T01:02:03.000000000Z", "2026-11-28T01:02:03Z"),
        ];
        for (nanos, go) in cases {
            assert_eq!(super::go_time(nanos), go);
        }
    }
}
