//! What one raft node has done since it opened, for `/1.0/metrics`: proposal latency, leader
//! changes and snapshots, counted as they happen; the indexes and the term are read from
//! openraft's metrics when asked.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, RaftMetrics};

/// The upper bounds, in seconds, of latency histograms' buckets (the last bucket,
/// `+Inf`, is implied).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram with fixed buckets, safe to record into from any task.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, then the `+Inf` one (not cumulative).
    counts: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
}

/// A histogram as read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramView {
    /// Cumulative counts: (upper bound in seconds, observations at or below it); the last
    /// bound is `f64::INFINITY`.
    pub buckets: Vec<(f64, u64)>,
    /// The sum of every observation, in seconds.
    pub sum: f64,
    /// How many observations.
    pub count: u64,
}

impl Histogram {
    /// An empty histogram with buckets up to each of `bounds` (seconds, ascending).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let at = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[at].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The histogram now, with cumulative buckets.
    pub fn view(&self) -> HistogramView {
        let mut total = 0;
        let mut buckets = Vec::with_capacity(self.counts.len());
        for (i, c) in self.counts.iter().enumerate() {
            total += c.load(Ordering::Relaxed);
            let bound = self.bounds.get(i).copied().unwrap_or(f64::INFINITY);
            buckets.push((bound, total));
        }
        HistogramView {
            buckets,
            sum: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            count: total,
        }
    }
}

/// Counters of one raft node.
#[derive(Debug)]
pub struct RaftStats {
    /// How long each proposal made through this node took, forwarded ones included.
    pub proposals: Histogram,
    /// Proposals that failed (not committed or outcome unknown).
    pub proposals_failed: AtomicU64,
    leader_changes: AtomicU64,
    snapshots: AtomicU64,
}

impl Default for RaftStats {
    fn default() -> Self {
        RaftStats {
            proposals: Histogram::new(LATENCY_BUCKETS),
            proposals_failed: AtomicU64::new(0),
            leader_changes: AtomicU64::new(0),
            snapshots: AtomicU64::new(0),
        }
    }
}

/// A raft node as `/1.0/metrics` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RaftStatsView {
    /// The current term.
    pub term: u64,
    /// The last index in this node's log.
    pub last_log_index: u64,
    /// The last index this node applied.
    pub applied_index: u64,
    /// The index a majority of voters hold, as the leader knows it; `None` off the leader.
    pub commit_index: Option<u64>,
    /// The index the latest snapshot covers.
    pub snapshot_index: u64,
    /// Times the known leader changed to another node since this node opened.
    pub leader_changes: u64,
    /// Snapshots built or installed since this node opened.
    pub snapshots: u64,
    /// Proposal latency.
    pub proposals: HistogramView,
    /// Proposals that failed.
    pub proposals_failed: u64,
}

impl RaftStats {
    /// Follows openraft's metrics until the node shuts down, counting leader changes and
    /// snapshots, and logging elections and a fatal stop.
    pub fn follow(
        self: &Arc<Self>,
        mut metrics: tokio::sync::watch::Receiver<RaftMetrics<u64, BasicNode>>,
    ) {
        let stats = self.clone();
        tokio::spawn(async move {
            let (mut leader, mut snapshot) = {
                let m = metrics.borrow_and_update();
                (m.current_leader, m.snapshot)
            };
            let mut stopped = false;
            while metrics.changed().await.is_ok() {
                let m = metrics.borrow_and_update();
                // The daemon hides openraft's own log of its core (it repeats every failed
                // call to a member that is down), so a fatal stop is said here, once.
                match (&m.running_state, stopped) {
                    (Err(openraft::error::Fatal::Stopped), _) | (_, true) | (Ok(()), _) => {}
                    (Err(fatal), false) => {
                        tracing::error!(node = m.id, "The cluster database stopped: {fatal}");
                        stopped = true;
                    }
                }
                if m.current_leader != leader {
                    if let Some(new) = m.current_leader {
                        stats.leader_changes.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(
                            term = m.current_term,
                            leader = new,
                            node = m.id,
                            "Raft leader elected"
                        );
                    }
                    leader = m.current_leader;
                }
                if m.snapshot != snapshot {
                    stats.snapshots.fetch_add(1, Ordering::Relaxed);
                    snapshot = m.snapshot;
                }
            }
        });
    }

    /// The counters with `m`'s indexes and term.
    pub fn view(&self, m: &RaftMetrics<u64, BasicNode>) -> RaftStatsView {
        RaftStatsView {
            term: m.current_term,
            last_log_index: m.last_log_index.unwrap_or(0),
            applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
            commit_index: commit_index(m),
            snapshot_index: m.snapshot.map(|l| l.index).unwrap_or(0),
            leader_changes: self.leader_changes.load(Ordering::Relaxed),
            snapshots: self.snapshots.load(Ordering::Relaxed),
            proposals: self.proposals.view(),
            proposals_failed: self.proposals_failed.load(Ordering::Relaxed),
        }
    }
}

/// On the leader: the highest index a majority of voters hold (the leader's own log counts).
fn commit_index(m: &RaftMetrics<u64, BasicNode>) -> Option<u64> {
    let replication = m.replication.as_ref()?;
    let membership = m.membership_config.membership();
    let mut held: Vec<u64> = membership
        .voter_ids()
        .map(|id| {
            if id == m.id {
                m.last_log_index.unwrap_or(0)
            } else {
                replication
                    .get(&id)
                    .and_then(|l| l.as_ref())
                    .map(|l| l.index)
                    .unwrap_or(0)
            }
        })
        .collect();
    if held.is_empty() {
        return None;
    }
    held.sort_unstable_by(|a, b| b.cmp(a));
    Some(held[held.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_each_observation_in_its_bucket_and_the_ones_above() {
        static BOUNDS: &[f64] = &[0.001, 0.01];
        let h = Histogram::new(BOUNDS);
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_secs(2));
        let v = h.view();
        assert_eq!(
            v.buckets,
            vec![(0.001, 2), (0.01, 3), (f64::INFINITY, 4)],
            "cumulative, the bound itself included"
        );
        assert_eq!(v.count, 4);
        assert!((v.sum - 2.0065).abs() < 1e-9, "{}", v.sum);
    }
}
