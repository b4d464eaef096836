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
