//! Evacuating and restoring a member, as LXD 5.0.2 does (`POST /1.0/cluster/members/{name}/state`).
//!
//! ```text
//!  POST .../members/X/state on another member ─> sent on to X, which runs the task
//!  evacuate: task "Evacuating cluster member" ─> state Evacuated ─> workloads::evacuate
//!              ├─ pending or already evacuated: the state change is refused, the task fails
//!              ├─ each step: operation metadata {"evacuation_progress": "..."}
//!              ├─ a failure: state Created again, the operation fails with the cause
//!              └─ success: lifecycle `cluster-member-evacuated`
//!  restore:  task "Restoring cluster member"  ─> state Created ─> workloads::restore
//!              (the same, back to Evacuated on a failure; lifecycle `cluster-member-restored`)
//! ```
//!
//! The member's state changes through the log first, so no new workload is placed on it while
//! the old ones leave. What moves is decided in [`workloads`], the one place the instances add
//! their stops, moves and starts to; today a member holds nothing that moves.

use std::sync::Arc;

use rxd_api::{Operation, Requestor};
use rxd_db::tables::{Member, MemberState};
use rxd_db::Command;

use crate::operations::Operations;
use crate::Daemon;

/// Evacuate or restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Move the workloads off the member and keep new ones away.
    Evacuate,
    /// Let the member take workloads again and bring back the ones that left it.
    Restore,
}

impl Action {
    /// The operation's description, LXD's text.
    pub fn description(self) -> &'static str {
        match self {
            Action::Evacuate => "Evacuating cluster member",
            Action::Restore => "Restoring cluster member",
        }
    }

    /// The lifecycle action sent when it succeeded.
    pub fn lifecycle(self) -> &'static str {
        match self {
            Action::Evacuate => "cluster-member-evacuated",
            Action::Restore => "cluster-member-restored",
        }
    }

    /// The member state it leads to.
    pub fn target(self) -> MemberState {
        match self {
            Action::Evacuate => MemberState::Evacuated,
            Action::Restore => MemberState::Created,
        }
    }
}

/// The progress of one evacuation or restore, shown as LXD shows it: the operation's metadata
/// is `{"evacuation_progress": message}`, each message replacing the last.
pub struct Progress {
    ops: Operations,
    id: String,
}

impl Progress {
    /// Reports the step now being taken, e.g. `Stopping "c1" in project "default"`.
    pub fn report(&self, message: &str) {
        self.ops.set_metadata(
            &self.id,
            serde_json::json!({ "evacuation_progress": message }),
        );
    }
}

/// The seam where workloads move: what an evacuation or a restore of `member` does beyond the
/// member's state. The instances put their steps here, each announced through `progress`
/// (LXD's messages: `Stopping %q in project %q`, `Migrating %q in project %q to %q`,
/// `Starting %q in project %q`); an error fails the operation and puts the state back.
pub mod workloads {
    use super::Progress;
    use crate::Daemon;
    use rxd_db::tables::Member;

    /// Moves the workloads off `member`; `mode` is the evacuation mode asked for (empty for
    /// the default).
    pub async fn evacuate(
        _d: &Daemon,
        _member: &Member,
        _mode: &str,
        _progress: &Progress,
    ) -> Result<(), String> {
        // No workload runs on a member yet.
        Ok(())
    }

    /// Brings back to `member` the workloads an evacuation moved away, and starts its own.
    pub async fn restore(
        _d: &Daemon,
        _member: &Member,
        _progress: &Progress,
    ) -> Result<(), String> {
        Ok(())
    }
}

async fn set_state(d: &Daemon, command: Command) -> Result<(), String> {
    d.db()
        .propose(command)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Starts the task operation of `action` on `member`, this member; the operation's
/// `location` is the member, as LXD's. It fails, with LXD's sentence, for a member pending or
/// already in the state asked for.
pub fn start(
    d: &Arc<Daemon>,
    member: Member,
    action: Action,
    mode: String,
    requestor: Requestor,
) -> Operation {
    let (id_tx, id_rx) = tokio::sync::oneshot::channel::<String>();
    let work = d.clone();
    let name = member.name.clone();
    let op = d.ops.start(action.description(), None, &name, async move {
        let id = id_rx
            .await
            .map_err(|_| "The operation was not registered".to_string())?;
        let progress = Progress {
            ops: work.ops.clone(),
            id,
        };
        rxd_cluster::failpoint("evacuation-before-state")
            .await
            .map_err(|e| e.message)?;
        // LXD's check and change in one write: a member pending or already in the state is
        // refused with LXD's sentence, and of two requests that race only one changes it.
        set_state(
            &work,
            Command::ChangeMemberState {
                id: member.id,
                state: action.target(),
            },
        )
        .await?;
        let before = match action {
            Action::Evacuate => MemberState::Created,
            Action::Restore => MemberState::Evacuated,
        };
        let moved = match action {
            Action::Evacuate => workloads::evacuate(&work, &member, &mode, &progress).await,
            Action::Restore => workloads::restore(&work, &member, &progress).await,
        };
        if let Err(e) = moved {
            let undo = Command::SetMemberState {
                id: member.id,
                state: before,
            };
            if let Err(undo) = set_state(&work, undo).await {
                tracing::warn!("Failed to put member {:?} back: {undo}", member.name);
            }
            return Err(e);
        }
        work.events.lifecycle(
            action.lifecycle(),
            &format!("/1.0/cluster/members/{}", member.name),
            None,
            Some(requestor),
        );
        Ok(None)
    });
    // The work waits for its id; it is gone only if the runtime is stopping.
    let _ = id_tx.send(op.id.clone());
    op
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Events;

    #[tokio::test]
    async fn progress_shows_in_the_operation_and_its_events() {
        let events = Events::new("node1");
        let mut bus = events.subscribe();
        let ops = Operations::new(events);
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let op = ops.start("Evacuating cluster member", None, "node2", async move {
            let _ = go_rx.await;
            Ok(None)
        });
        let progress = Progress {
            ops: ops.clone(),
            id: op.id.clone(),
        };
        let step = "Stopping \"c1\" in project \"default\"";
        progress.report(step);
        let want = serde_json::json!({ "evacuation_progress": step });
        assert_eq!(ops.get(&op.id).unwrap().metadata, Some(want.clone()));
        let _ = go_tx.send(());
        let done = ops.wait(&op.id, None).await.unwrap();
        assert_eq!(done.status, "Success");
        assert_eq!(
            done.metadata,
            Some(want.clone()),
            "the last step stays shown"
        );
        let mut announced = false;
        while let Ok(e) = bus.try_recv() {
            announced |= e.event.kind == "operation" && e.event.metadata["metadata"] == want;
        }
        assert!(announced, "each step is an operation event");
    }
}
