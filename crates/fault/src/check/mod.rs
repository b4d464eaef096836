//! Checkers: each reads one workload's history and says whether it is valid, listing every
//! anomaly with the operations that show it.

use serde::Serialize;

/// The verdict of a checker or of a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// No anomaly, and the check finished.
    Valid,
    /// At least one anomaly.
    Invalid,
    /// The check could not decide (it ran out of time, or the run was not valid).
    Unknown,
}

/// One thing that must not happen, with the operations (history ids) that show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    /// A short kind: `lost`, `unexpected`, `duplicated`, `stale-read`, `nonlinearizable`,
    /// `G0`, `G1a`, `G1c`, `G-single`, `G2`, `incompatible-order`, `bank-total`, …
    pub kind: String,
    /// One sentence saying what was seen.
    pub message: String,
    /// The operations involved, by [`crate::history::Op::id`].
    pub ops: Vec<usize>,
}

/// Counts every checker fills in (the ones that do not apply stay 0).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Writes that ended `Ok`.
    pub acknowledged_writes: u64,
    /// Acknowledged writes missing from a read that began after they were acknowledged, or
    /// from the final reads.
    pub lost_writes: u64,
    /// Values seen that no operation wrote, or that only a `Fail` operation wrote.
    pub unexpected_writes: u64,
    /// Values seen twice in one read, or a write applied twice.
    pub duplicated_writes: u64,
    /// Reads that missed a write acknowledged before they began, or went back in time.
    pub stale_reads: u64,
}

/// What a checker found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Valid, invalid, or unknown (out of time).
    pub verdict: Verdict,
    /// Everything found, first anomaly first (by the smallest op id involved).
    pub anomalies: Vec<Anomaly>,
    /// The counts for the summary.
    pub counts: Counts,
    /// Checker-specific figures (keys checked, search time, anomalies by type, …).
    pub details: serde_json::Value,
}

pub mod append;
pub mod bank;
pub mod register;
pub mod sets;

impl Anomaly {
    /// An anomaly of `kind` shown by `ops`.
    pub fn new(kind: &str, message: impl Into<String>, ops: Vec<usize>) -> Self {
        Anomaly {
            kind: kind.to_string(),
            message: message.into(),
            ops,
        }
    }

    /// The smallest operation id involved (`usize::MAX` when none is): anomalies sort by it.
    pub fn first_op(&self) -> usize {
        self.ops.iter().copied().min().unwrap_or(usize::MAX)
    }
}

impl Report {
    /// A report from what a checker found: anomalies sorted by their smallest op id (then kind),
    /// verdict `Invalid` when there is one, else `Unknown` when `undecided`, else `Valid`.
    pub fn from_anomalies(
        mut anomalies: Vec<Anomaly>,
        counts: Counts,
        details: serde_json::Value,
        undecided: bool,
    ) -> Report {
        anomalies
            .sort_by(|a, b| (a.first_op(), &a.kind, &a.ops).cmp(&(b.first_op(), &b.kind, &b.ops)));
        let verdict = if !anomalies.is_empty() {
            Verdict::Invalid
        } else if undecided {
            Verdict::Unknown
        } else {
            Verdict::Valid
        };
        Report {
            verdict,
            anomalies,
            counts,
            details,
        }
    }
}

/// How many anomalies of each kind, as a JSON object (for a report's `details`).
pub fn anomalies_by_kind(anomalies: &[Anomaly]) -> serde_json::Value {
    let mut by_kind = std::collections::BTreeMap::<&str, u64>::new();
    for a in anomalies {
        *by_kind.entry(a.kind.as_str()).or_default() += 1;
    }
    serde_json::json!(by_kind)
}

/// One report for several checkers' reports: anomalies merged and re-sorted, counts added up,
/// verdict `Invalid` if any is, else `Unknown` if any is, else `Valid` (`Valid` for none);
/// `details` is the list of the parts' details.
pub fn merge(reports: impl IntoIterator<Item = Report>) -> Report {
    let mut anomalies = Vec::new();
    let mut counts = Counts::default();
    let mut details = Vec::new();
    let mut undecided = false;
    for r in reports {
        undecided |= r.verdict == Verdict::Unknown;
        anomalies.extend(r.anomalies);
        counts.acknowledged_writes += r.counts.acknowledged_writes;
        counts.lost_writes += r.counts.lost_writes;
        counts.unexpected_writes += r.counts.unexpected_writes;
        counts.duplicated_writes += r.counts.duplicated_writes;
        counts.stale_reads += r.counts.stale_reads;
        details.push(r.details);
    }
    Report::from_anomalies(
        anomalies,
        counts,
        serde_json::Value::Array(details),
        undecided,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_sorts_and_adds_up() {
        let a = Report::from_anomalies(
            vec![Anomaly::new("lost", "x", vec![7, 3])],
            Counts {
                lost_writes: 1,
                acknowledged_writes: 2,
                ..Counts::default()
            },
            serde_json::json!({}),
            false,
        );
        let b = Report::from_anomalies(
            vec![Anomaly::new("unexpected", "y", vec![1])],
            Counts {
                acknowledged_writes: 5,
                ..Counts::default()
            },
            serde_json::json!({}),
            true,
        );
        assert_eq!(b.verdict, Verdict::Invalid);
        let m = merge([a, b]);
        assert_eq!(m.verdict, Verdict::Invalid);
        assert_eq!(m.anomalies[0].kind, "unexpected");
        assert_eq!(m.counts.acknowledged_writes, 7);
        let u = Report::from_anomalies(vec![], Counts::default(), serde_json::json!({}), true);
        assert_eq!(merge([u]).verdict, Verdict::Unknown);
        assert_eq!(merge([]).verdict, Verdict::Valid);
    }
}
