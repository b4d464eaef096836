//! Membership decisions, as pure functions: which members should be raft voters and stand-bys,
//! and whether a member is online. The async shells of this crate (heartbeats, joins, removals)
//! call them and carry out what they decide.
//!
//! This module knows nothing of raft, HTTP or the database: it sees member ids, liveness and
//! limits.
//!
//! ```text
//!  heartbeat round / join ─> plan_voters(members, voters, limits) ─> Some(new voters) ─> raft
//! ```

use std::collections::{BTreeMap, BTreeSet};
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Member id, also its raft node id.
    pub id: u64,
    /// Whether it answered heartbeats recently.
    pub online: bool,
    /// Whether it is a full member (not pending or evacuated).
    pub eligible: bool,
    /// Its failure domain (`default` unless set): members that can fail together.
    pub domain: String,
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
/// online member when there is one, and kept otherwise; voters beyond the wanted count are
/// demoted, offline ones first, never the leader.
///
/// Failure domains, as LXD spreads them: a member whose domain has no voter yet is promoted
/// before one whose domain has (lowest id first among equals), a voter is demoted from the
/// domain with the most voters first, and while one domain holds two voters and another domain
/// has an online eligible member but no voter, one voter of the crowded domain (never the
/// leader) hands its vote to that member.
pub fn plan_voters(
    members: &[Candidate],
    voters: &BTreeSet<u64>,
    leader: u64,
    limits: RoleLimits,
) -> Option<BTreeSet<u64>> {
    let next = plan(members, voters, leader, limits, true);
    (next != *voters).then_some(next)
}

/// The voters that members of each domain hold in `set`, counting online members only.
fn voters_per_domain<'a>(
    eligible: &[&'a Candidate],
    set: &BTreeSet<u64>,
) -> BTreeMap<&'a str, usize> {
    let mut per = BTreeMap::new();
    for m in eligible.iter().filter(|m| m.online && set.contains(&m.id)) {
        *per.entry(m.domain.as_str()).or_insert(0) += 1;
    }
    per
}

/// [`plan_voters`]' rule; without `spread` no voter that may stay is swapped for another
/// domain's member (a removal changes one voter only, the next rebalance spreads).
fn plan(
    members: &[Candidate],
    voters: &BTreeSet<u64>,
    leader: u64,
    limits: RoleLimits,
    spread: bool,
) -> BTreeSet<u64> {
    let eligible: Vec<&Candidate> = members.iter().filter(|m| m.eligible).collect();
    let find = |id: &u64| eligible.iter().find(|m| m.id == *id);
    let online = |id: &u64| find(id).is_some_and(|m| m.online);
    let want = wanted_voters(eligible.len(), limits);
    let mut next: BTreeSet<u64> = voters.iter().copied().filter(|v| online(v)).collect();
    next.insert(leader);
    while next.len() < want {
        let covered = voters_per_domain(&eligible, &next);
        let pick = eligible
            .iter()
            .filter(|m| m.online && !next.contains(&m.id))
            .min_by_key(|m| (covered.contains_key(m.domain.as_str()), m.id));
        match pick {
            Some(m) => next.insert(m.id),
            None => break,
        };
    }
    for v in voters {
        if next.len() >= want {
            break;
        }
        next.insert(*v);
    }
    while next.len() > want {
        let per = voters_per_domain(&eligible, &next);
        let crowd = |id: &u64| {
            find(id)
                .and_then(|m| per.get(m.domain.as_str()))
                .copied()
                .unwrap_or(0)
        };
        let drop = next
            .iter()
            .copied()
            .filter(|v| *v != leader)
            .max_by_key(|v| (!online(v), crowd(v), *v))
            .expect("more voters than wanted means one is not the leader");
        next.remove(&drop);
    }
    // Each swap gives a domain without a voter one, so this ends within the number of domains.
    if spread {
        loop {
            let per = voters_per_domain(&eligible, &next);
            let newcomer = eligible
                .iter()
                .filter(|m| m.online && !per.contains_key(m.domain.as_str()))
                .map(|m| m.id)
                .min();
            let crowded = eligible
                .iter()
                .filter(|m| m.online && m.id != leader && next.contains(&m.id))
                .filter(|m| per[m.domain.as_str()] > 1)
                .max_by_key(|m| (per[m.domain.as_str()], m.id))
                .map(|m| m.id);
            let (Some(newcomer), Some(crowded)) = (newcomer, crowded) else {
                break;
            };
            next.remove(&crowded);
            next.insert(newcomer);
        }
    }
    next
}

/// The stand-bys: online eligible non-voters, up to the limit; a member whose domain has no
/// stand-by yet comes before one whose domain has, then the lowest id.
pub fn standbys(
    members: &[Candidate],
    voters: &BTreeSet<u64>,
    limits: RoleLimits,
) -> BTreeSet<u64> {
    let mut chosen = BTreeSet::new();
    let mut domains = BTreeSet::new();
    while chosen.len() < limits.max_standby {
        let pick = members
            .iter()
            .filter(|m| m.online && m.eligible)
            .filter(|m| !voters.contains(&m.id) && !chosen.contains(&m.id))
            .min_by_key(|m| (domains.contains(m.domain.as_str()), m.id));
        let Some(m) = pick else { break };
        chosen.insert(m.id);
        domains.insert(m.domain.as_str());
    }
    chosen
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
        .cloned()
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
    let next = plan(&rest, &start, next_leader, limits, false);
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
                domain: "default".into(),
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

    /// Members 1.. online, in the given domains.
    fn spread(domains: &[&str]) -> Vec<Candidate> {
        domains
            .iter()
            .enumerate()
            .map(|(i, d)| Candidate {
                id: i as u64 + 1,
                online: true,
                eligible: true,
                domain: (*d).into(),
            })
            .collect()
    }

    /// Plans until nothing changes (bounded), as heartbeat rounds would.
    fn settle(m: &[Candidate], voters: &[u64], leader: u64) -> BTreeSet<u64> {
        let mut now = set(voters);
        for _ in 0..m.len() + 1 {
            match plan_voters(m, &now, leader, RoleLimits::default()) {
                Some(next) => now = next,
                None => return now,
            }
        }
        panic!("the plan does not settle: {now:?}");
    }

    #[test]
    fn voters_spread_over_domains() {
        let l = RoleLimits::default();
        // Five members in three domains: one voter per domain, the lowest id of each.
        let m = spread(&["a", "a", "b", "b", "c"]);
        assert_eq!(plan_voters(&m, &set(&[1]), 1, l), Some(set(&[1, 3, 5])));
        assert_eq!(plan_voters(&m, &set(&[1, 3, 5]), 1, l), None);
        // Two voters in one domain while c has nobody voting: one hands over in one step.
        assert_eq!(
            plan_voters(&m, &set(&[1, 2, 3]), 1, l),
            Some(set(&[1, 3, 5]))
        );
        // Never the leader: 2 leads, so 1 hands over.
        assert_eq!(
            plan_voters(&m, &set(&[1, 2, 3]), 2, l),
            Some(set(&[2, 3, 5]))
        );
        // Two domains for three voters: two share one, whichever; nothing moves.
        let two = spread(&["a", "a", "b", "b"]);
        assert_eq!(plan_voters(&two, &set(&[1]), 1, l), Some(set(&[1, 2, 3])));
        assert_eq!(plan_voters(&two, &set(&[1, 3, 4]), 1, l), None);
        // Too many voters: demoted from the most crowded domain first.
        let five = spread(&["a", "b", "b", "c", "c"]);
        let m3 = RoleLimits {
            max_voters: 3,
            max_standby: 2,
        };
        assert_eq!(
            plan_voters(&five, &set(&[1, 2, 3, 4, 5]), 1, m3),
            Some(set(&[1, 2, 4]))
        );
    }

    #[test]
    fn one_domain_keeps_the_lowest_ids() {
        let l = RoleLimits::default();
        let m = spread(&["default"; 5]);
        assert_eq!(plan_voters(&m, &set(&[1]), 1, l), Some(set(&[1, 2, 3])));
        assert_eq!(plan_voters(&m, &set(&[1, 4, 5]), 1, l), None);
        assert_eq!(standbys(&m, &set(&[1, 2, 3]), l), set(&[4, 5]));
    }

    #[test]
    fn voters_follow_domain_changes() {
        let mut m = spread(&["default"; 5]);
        assert_eq!(settle(&m, &[1, 2, 3], 1), set(&[1, 2, 3]));
        // Member 4 moves to rack x: it takes the vote of the highest voter in `default`.
        m[3].domain = "x".into();
        assert_eq!(settle(&m, &[1, 2, 3], 1), set(&[1, 2, 4]));
        // Member 5 moves to rack y: three domains, three voters, one each.
        m[4].domain = "y".into();
        assert_eq!(settle(&m, &[1, 2, 4], 1), set(&[1, 4, 5]));
        // Back to one domain: nothing to spread, and nobody is moved for it.
        for c in &mut m {
            c.domain = "default".into();
        }
        assert_eq!(settle(&m, &[1, 4, 5], 1), set(&[1, 4, 5]));
    }

    #[test]
    fn offline_members_and_domains() {
        let l = RoleLimits::default();
        // The voter of domain c is offline and c has nobody else: the replacement comes from
        // a domain that already votes, and the domains are spread as far as online members go.
        let mut m = spread(&["a", "b", "c", "a"]);
        m[2].online = false;
        assert_eq!(
            plan_voters(&m, &set(&[1, 2, 3]), 1, l),
            Some(set(&[1, 2, 4]))
        );
        // An offline member never gets a vote for its domain.
        let mut m = spread(&["a", "a", "b", "c"]);
        m[3].online = false;
        assert_eq!(plan_voters(&m, &set(&[1, 2, 3]), 1, l), None);
        // It comes back: it takes the vote of the crowded domain.
        m[3].online = true;
        assert_eq!(
            plan_voters(&m, &set(&[1, 2, 3]), 1, l),
            Some(set(&[1, 3, 4]))
        );
        // An offline voter is replaced from the domain without a voter first.
        let mut m = spread(&["a", "b", "c", "b", "c"]);
        m[2].online = false;
        assert_eq!(
            plan_voters(&m, &set(&[1, 2, 3]), 1, l),
            Some(set(&[1, 2, 5]))
        );
    }

    #[test]
    fn standbys_spread_over_domains() {
        let l = RoleLimits::default();
        let m = spread(&["a", "a", "b", "a", "c", "b"]);
        // Voters 1, 3, 5; left are 2 (a), 4 (a), 6 (b): one stand-by per domain.
        assert_eq!(standbys(&m, &set(&[1, 3, 5]), l), set(&[2, 6]));
        // Offline members are never stand-bys.
        let mut m = m;
        m[5].online = false;
        assert_eq!(standbys(&m, &set(&[1, 3, 5]), l), set(&[2, 4]));
    }

    #[test]
    fn removal_replaces_from_the_domain_without_a_voter() {
        let m = spread(&["a", "b", "c", "a", "c"]);
        let r = plan_removal(&m, &set(&[1, 2, 3]), 1, 3, RoleLimits::default()).unwrap();
        assert_eq!(r.voters, set(&[1, 2, 5]));
        assert_eq!(r.promoted, set(&[5]));
        // A removal changes one voter only, even when the others share a domain.
        let m = spread(&["a", "a", "b", "c", "d"]);
        let r = plan_removal(&m, &set(&[1, 2, 3]), 1, 3, RoleLimits::default()).unwrap();
        assert_eq!(r.voters, set(&[1, 2, 4]));
    }

    #[test]
    fn offline_after_threshold() {
        let t = Duration::from_secs(20);
        assert!(!is_offline(Duration::from_secs(20), t));
        assert!(is_offline(Duration::from_secs(21), t));
    }
}
