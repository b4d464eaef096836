//! Deliberate bugs for the fault suite, only with the `fault-injection` feature (never in a
//! release build). Each switch breaks one guarantee the suite checks, so that a run with it on
//! must report a violation; with no switch on (the default) nothing changes.

use std::collections::BTreeSet;

/// One deliberate bug, named as `RXD_FAULT_SWITCHES` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultSwitch {
    /// `stale-follower-reads`: [`crate::ReplicatedDb::read`] on a member that is not the leader
    /// skips the read index and answers from its local replica, however far behind it is.
    StaleFollowerReads,
    /// `ack-before-commit`: [`crate::ReplicatedDb::propose`] of a profile command answers
    /// `Ok(Ok(Response::Done))` at once and makes one attempt to commit it in a task of its own
    /// (no resend, dropped when no leader is known or the forward fails), so an acknowledged
    /// write is lost when the leader dies or is cut off before it replicates.
    AckBeforeCommit,
    /// `reforward-new-id`: every attempt of a proposal after the first (after a transport error,
    /// or a leader that stepped down with the entry in its log) carries a new request id, as
    /// before proposals were idempotent, so a lost reply makes the command apply twice. So that
    /// the bug shows whatever the timing of the faults, the leader also loses the reply to every
    /// fourth forwarded proposal it committed ([`lose_this_reply`]), as a reset just after the
    /// commit would.
    ReforwardNewId,
}

/// Whether to lose the reply to this committed forwarded proposal: every fourth one.
#[cfg(feature = "fault-injection")]
pub(crate) fn lose_this_reply() -> bool {
    static COMMITTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    COMMITTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 4 == 3
}

impl FaultSwitch {
    /// Every switch.
    pub const ALL: [FaultSwitch; 3] = [
        FaultSwitch::StaleFollowerReads,
        FaultSwitch::AckBeforeCommit,
        FaultSwitch::ReforwardNewId,
    ];

    /// The switch's name in `RXD_FAULT_SWITCHES`.
    pub fn name(self) -> &'static str {
        match self {
            FaultSwitch::StaleFollowerReads => "stale-follower-reads",
            FaultSwitch::AckBeforeCommit => "ack-before-commit",
            FaultSwitch::ReforwardNewId => "reforward-new-id",
        }
    }

    /// Parses a comma-separated list of switch names (blanks around names and empty items are
    /// ignored); an unknown name is an error that lists the known ones.
    pub fn parse_list(list: &str) -> Result<BTreeSet<FaultSwitch>, String> {
        let mut on = BTreeSet::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let switch = FaultSwitch::ALL
                .into_iter()
                .find(|s| s.name() == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = FaultSwitch::ALL.iter().map(|s| s.name()).collect();
                    format!(
                        "Unknown fault switch {name:?} (known: {})",
                        known.join(", ")
                    )
                })?;
            on.insert(switch);
        }
        Ok(on)
    }
}

/// Whether the command is one `ack-before-commit` acknowledges early: the profile commands
/// the fault suite's workloads write. Membership, tokens, certificates, pools and networks
/// keep the normal path, so a cluster can still be formed and changed with the switch on.
pub(crate) fn acked_early(command: &rxd_db::Command) -> bool {
    use rxd_db::Command::*;
    matches!(
        command,
        CreateProfile(_) | UpdateProfile(_) | RenameProfile { .. } | DeleteProfile { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_switch_parses_by_name_and_unknown_names_are_refused() {
        for s in FaultSwitch::ALL {
            assert_eq!(
                FaultSwitch::parse_list(s.name()).unwrap(),
                BTreeSet::from([s])
            );
        }
        assert_eq!(
            FaultSwitch::parse_list(" stale-follower-reads, reforward-new-id ,").unwrap(),
            BTreeSet::from([FaultSwitch::StaleFollowerReads, FaultSwitch::ReforwardNewId])
        );
        assert!(FaultSwitch::parse_list("").unwrap().is_empty());
        let e = FaultSwitch::parse_list("ack-before-commit,stale-reads").unwrap_err();
        assert!(
            e.contains("\"stale-reads\"") && e.contains("ack-before-commit"),
            "{e}"
        );
    }
}
