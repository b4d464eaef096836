//! Membership decisions, as pure functions: which members should be raft voters and stand-bys,
//! and whether a member is online. The daemon's thin async shell (heartbeats, joins) calls them
//! and carries out what they decide.
//!
//! It knows nothing of raft, HTTP or the database: it sees member ids, liveness and limits.
//!
//! ```text
//!  heartbeat round / join ─> plan_roles(members, voters, limits) ─> Some(new voters) ─> raft
//! ```

use std::collections::BTreeSet;
use std::time::Duration;

/// The limits of `cluster.max_voters` and `cluster.max_standby`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleLimits {
    /// At most this many voters (odd, at least 3).
    pub max_voters: usize,
    /// At most this many stand-bys.
    pub max_standby: usize,
}

impl Default for RoleLimits {
    fn default() -> Self {
        RoleLimits {
            max_voters: 3,
            max_standby: 2,
        }
    }
}

/// One member as the planner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Member id, also its raft node id.
    pub id: u64,
    /// Whether it answered heartbeats recently.
    pub online: bool,
    /// Whether it is a full member (not pending or evacuated).
    pub eligible: bool,
}

/// How many voters a cluster of `online` eligible members should have: one until there are
/// three (two voters would stop at the first failure), then as many as allowed, kept odd.
pub fn wanted_voters(online: usize, limits: RoleLimits) -> usize {
    if online < 3 {
        return 1;
    }
    let n = online.min(limits.max_voters);
    if n.is_multiple_of(2) {
        n - 1
    } else {
        n
    }
}

/// The voter set the cluster should move to, or `None` when the current one is right.
///
/// The wanted count follows the number of full members, online or not, so one member going
/// offline does not shrink the voter set. Online voters stay; an offline voter is replaced by an
/// online member (lowest id first) when there is one, and kept otherwise; voters beyond the
/// wanted count are demoted, offline ones first, never the leader.
pub fn plan_voters(
    members: &[Candidate],
    voters: &BTreeSet<u64>,
    leader: u64,
    limits: RoleLimits,
) -> Option<BTreeSet<u64>> {
    let eligible: Vec<&Candidate> = members.iter().filter(|m| m.eligible).collect();
    let online = |id: &u64| eligible.iter().any(|m| m.id == *id && m.online);
    let want = wanted_voters(eligible.len(), limits);
    let mut next: BTreeSet<u64> = voters.iter().copied().filter(|v| online(v)).collect();
    next.insert(leader);
    for m in eligible.iter().filter(|m| m.online) {
        if next.len() >= want {
            break;
        }
        next.insert(m.id);
    }
    for v in voters {
        if next.len() >= want {
            break;
        }
        next.insert(*v);
    }
    while next.len() > want {
        let drop = next
            .iter()
            .rev()
            .copied()
            .filter(|v| *v != leader)
            .min_by_key(|v| online(v))
            .expect("more voters than wanted means one is not the leader");
        next.remove(&drop);
    }
    (next != *voters).then_some(next)
}

/// The stand-bys: online eligible non-voters, lowest id first, up to the limit.
pub fn standbys(
    members: &[Candidate],
    voters: &BTreeSet<u64>,
    limits: RoleLimits,
) -> BTreeSet<u64> {
    members
        .iter()
        .filter(|m| m.online && m.eligible && !voters.contains(&m.id))
        .map(|m| m.id)
        .take(limits.max_standby)
        .collect()
}

/// Whether a member last heard from `since_heartbeat` ago is offline.
pub fn is_offline(since_heartbeat: Duration, threshold: Duration) -> bool {
    since_heartbeat > threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(online: &[bool]) -> Vec<Candidate> {
        online
            .iter()
            .enumerate()
            .map(|(i, o)| Candidate {
                id: i as u64 + 1,
                online: *o,
                eligible: true,
            })
            .collect()
    }

    fn set(ids: &[u64]) -> BTreeSet<u64> {
        ids.iter().copied().collect()
    }

    #[test]
    fn voter_counts_follow_lxd() {
        let l = RoleLimits::default();
        let cases = [(1, 1), (2, 1), (3, 3), (4, 3), (5, 3), (8, 3)];
        for (online, want) in cases {
            assert_eq!(wanted_voters(online, l), want, "{online} online");
        }
        let five = RoleLimits {
            max_voters: 5,
            max_standby: 2,
        };
        assert_eq!(wanted_voters(4, five), 3);
        assert_eq!(wanted_voters(6, five), 5);
    }

    #[test]
    fn second_member_is_standby_third_makes_three_voters() {
        let l = RoleLimits::default();
        let two = members(&[true, true]);
        assert_eq!(plan_voters(&two, &set(&[1]), 1, l), None);
        assert_eq!(standbys(&two, &set(&[1]), l), set(&[2]));
        let three = members(&[true, true, true]);
        assert_eq!(plan_voters(&three, &set(&[1]), 1, l), Some(set(&[1, 2, 3])));
        let five = members(&[true; 5]);
        assert_eq!(plan_voters(&five, &set(&[1, 2, 3]), 1, l), None);
        assert_eq!(standbys(&five, &set(&[1, 2, 3]), l), set(&[4, 5]));
        let six = members(&[true; 6]);
        assert_eq!(
            standbys(&six, &set(&[1, 2, 3]), l),
            set(&[4, 5]),
            "the sixth is a spare"
        );
    }

    #[test]
    fn offline_voter_is_replaced_by_an_online_member() {
        let l = RoleLimits::default();
        let m = members(&[true, false, true, true]);
        assert_eq!(
            plan_voters(&m, &set(&[1, 2, 3]), 1, l),
            Some(set(&[1, 3, 4]))
        );
    }

    #[test]
    fn offline_voter_stays_when_nobody_can_replace_it() {
        let l = RoleLimits::default();
        let m = members(&[true, false, true]);
        assert_eq!(plan_voters(&m, &set(&[1, 2, 3]), 1, l), None);
    }

    #[test]
    fn leader_is_never_demoted() {
        let l = RoleLimits::default();
        let m = members(&[true, true, true, true]);
        assert_eq!(
            plan_voters(&m, &set(&[1, 2, 3, 4]), 4, l),
            Some(set(&[1, 2, 4]))
        );
    }

    #[test]
    fn pending_members_do_not_vote() {
        let l = RoleLimits::default();
        let mut m = members(&[true, true, true]);
        m[2].eligible = false;
        assert_eq!(plan_voters(&m, &set(&[1]), 1, l), None);
    }

    #[test]
    fn offline_after_threshold() {
        let t = Duration::from_secs(20);
        assert!(!is_offline(Duration::from_secs(20), t));
        assert!(is_offline(Duration::from_secs(21), t));
    }
}
