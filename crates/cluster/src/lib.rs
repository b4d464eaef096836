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

/// What removing a member changes in the voter set, decided in one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The voters after the removal: the member is out and its replacement (if any) in, in the
    /// same membership change, so there is never a window with one voter too few.
    pub voters: BTreeSet<u64>,
    /// The members that become voters in this step (each must be caught up first).
    pub promoted: BTreeSet<u64>,
    /// When the leader itself is removed: the online member expected to lead next.
    pub heir: Option<u64>,
}

/// Why a removal is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemovalRefusal {
    /// The member is the only one.
    #[error("Member is the only member in the cluster")]
    LastMember,
    /// A majority of today's voters is offline: no membership change can commit.
    #[error(
        "Cannot remove the member: only {online} of the {total} database voters are online, so the cluster cannot agree on a change; bring members back online first"
    )]
    NoQuorumNow {
        /// Online voters.
        online: usize,
        /// All voters.
        total: usize,
    },
    /// After the removal a majority of the voters would be offline, and the cluster would stop.
    #[error(
        "Cannot remove the member: a majority of the remaining database voters would be offline ({online} of {total} online); bring members back online first"
    )]
    NoQuorumAfter {
        /// Online voters after the removal.
        online: usize,
        /// Voters after the removal.
        total: usize,
    },
    /// The leader is removed and no other online member can take over.
    #[error("Cannot remove the leader: no other online member can take over the database")]
    NoHeir,
}

fn majority_online(set: &BTreeSet<u64>, online: impl Fn(&u64) -> bool) -> (usize, bool) {
    let up = set.iter().filter(|id| online(id)).count();
    (up, up * 2 > set.len())
}

/// Plans the removal of member `removed` from a group with `voters` led by `leader`, as one
/// voter change: the member leaves the voters and, when it voted, an online member takes its
/// place in the same change (by the rule of [`plan_voters`]). `members` are the raft members
/// (voters and learners), the removed one included.
///
/// The change is refused when it could not commit or would stop the cluster: a joint change
/// needs a majority of today's voters and of tomorrow's, so both must be online. When the
/// leader is removed the heir is an online voter, or else an online member promoted in the
/// same step; raft then elects among the new voters, and only an online, caught-up one can win.
pub fn plan_removal(
    members: &[Candidate],
    voters: &BTreeSet<u64>,
    leader: u64,
    removed: u64,
    limits: RoleLimits,
) -> Result<Removal, RemovalRefusal> {
    if members.iter().filter(|m| m.id != removed).count() == 0 {
        return Err(RemovalRefusal::LastMember);
    }
    let online = |id: &u64| members.iter().any(|m| m.id == *id && m.online);
    let rest: Vec<Candidate> = members
        .iter()
        .filter(|m| m.id != removed)
        .copied()
        .collect();
    let remaining: BTreeSet<u64> = voters.iter().copied().filter(|v| *v != removed).collect();
    let heir = if removed == leader {
        let pick = remaining
            .iter()
            .copied()
            .find(|v| online(v))
            .or_else(|| rest.iter().find(|m| m.online && m.eligible).map(|m| m.id))
            .ok_or(RemovalRefusal::NoHeir)?;
        Some(pick)
    } else {
        None
    };
    let next_leader = heir.unwrap_or(leader);
    let mut start = remaining.clone();
    start.insert(next_leader);
    let next = plan_voters(&rest, &start, next_leader, limits).unwrap_or(start);
    if voters.contains(&removed) || next != *voters {
        let (up, ok) = majority_online(voters, online);
        if !ok {
            return Err(RemovalRefusal::NoQuorumNow {
                online: up,
                total: voters.len(),
            });
        }
    }
    let (up, ok) = majority_online(&next, online);
    if !ok {
        return Err(RemovalRefusal::NoQuorumAfter {
            online: up,
            total: next.len(),
        });
    }
    Ok(Removal {
        promoted: next.difference(voters).copied().collect(),
        voters: next,
        heir,
    })
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

    fn remove(
        online: &[bool],
        voters: &[u64],
        leader: u64,
        removed: u64,
    ) -> Result<Removal, RemovalRefusal> {
        plan_removal(
            &members(online),
            &set(voters),
            leader,
            removed,
            RoleLimits::default(),
        )
    }

    #[test]
    fn removal_with_a_voter_down_keeps_an_online_majority() {
        // Voters {1,2,3}, 2 down, remove 3: {1,2} would need the dead 2; {1} does not.
        let r = remove(&[true, false, true], &[1, 2, 3], 1, 3).unwrap();
        assert_eq!(r.voters, set(&[1]));
        assert_eq!(r.heir, None);
        // Removing the dead one (with force) works the same way.
        let r = remove(&[true, false, true], &[1, 2, 3], 1, 2).unwrap();
        assert_eq!(r.voters, set(&[1]));
    }

    #[test]
    fn removed_voter_is_replaced_in_the_same_step() {
        let r = remove(&[true, true, true, true], &[1, 2, 3], 1, 3).unwrap();
        assert_eq!(r.voters, set(&[1, 2, 4]));
        assert_eq!(r.promoted, set(&[4]));
        // A removed learner leaves the voters alone.
        let r = remove(&[true, true, true, true], &[1, 2, 3], 1, 4).unwrap();
        assert_eq!(r.voters, set(&[1, 2, 3]));
        assert!(r.promoted.is_empty());
    }

    #[test]
    fn removal_refused_when_the_remaining_voters_would_be_mostly_offline() {
        // Voters {1,2,3}; 2 and 4 are down; nobody online can replace 3.
        let e = remove(&[true, false, true, false], &[1, 2, 3], 1, 3).unwrap_err();
        assert_eq!(
            e,
            RemovalRefusal::NoQuorumAfter {
                online: 1,
                total: 2
            }
        );
        assert!(e.to_string().contains("majority"), "{e}");
    }

    #[test]
    fn removal_refused_when_the_voters_have_no_majority_today() {
        let e = remove(&[true, false, false], &[1, 2, 3], 1, 3).unwrap_err();
        assert_eq!(
            e,
            RemovalRefusal::NoQuorumNow {
                online: 1,
                total: 3
            }
        );
    }

    #[test]
    fn leader_hands_over_to_an_online_heir() {
        // The first other voter, 2, is down: the heir is 3.
        let r = remove(&[true, false, true], &[1, 2, 3], 1, 1).unwrap();
        assert_eq!(r.heir, Some(3));
        assert_eq!(r.voters, set(&[3]));
        // Two members, one voter: the other member is promoted as it takes over.
        let r = remove(&[true, true], &[1], 1, 1).unwrap();
        assert_eq!(r.heir, Some(2));
        assert_eq!(r.voters, set(&[2]));
        assert_eq!(r.promoted, set(&[2]));
        // Nobody else online.
        let e = remove(&[true, false], &[1], 1, 1).unwrap_err();
        assert_eq!(e, RemovalRefusal::NoHeir);
        assert_eq!(
            remove(&[true], &[1], 1, 1).unwrap_err(),
            RemovalRefusal::LastMember
        );
    }

    #[test]
    fn offline_after_threshold() {
        let t = Duration::from_secs(20);
        assert!(!is_offline(Duration::from_secs(20), t));
        assert!(is_offline(Duration::from_secs(21), t));
    }
}
