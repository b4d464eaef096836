//! What a run records: every operation a worker invoked, when, and how it ended.
//!
//! A worker writes one [`Op`] per operation once it completes (or gives up); `history.jsonl`
//! holds them in invocation order. Times are nanoseconds since the run started, on one
//! monotonic clock shared by all workers.
//!
//! How a result is classed is the suite's error contract: an answer in 2xx is [`Outcome::Ok`];
//! a refused connection or a 4xx is [`Outcome::Fail`] (the write did not apply); anything else
//! (a timeout, a reset, a 5xx) is [`Outcome::Unknown`]: the write may or may not have applied,
//! so a checker lets it take effect at any time after its invocation, or never.

use serde::{Deserialize, Serialize};

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Acknowledged: a 2xx answer.
    Ok,
    /// Definitely not applied: a refused connection, a 4xx (a 412 for a failed `If-Match`).
    Fail,
    /// Indeterminate: a timeout, a reset, a 5xx.
    Unknown,
}

/// One operation of one worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op<F> {
    /// Position in the history (invocation order); checkers name operations by it.
    pub id: usize,
    /// The logical client. A worker takes a new process after an unknown result, so one
    /// process never has two operations in flight.
    pub process: u64,
    /// The member the request went to (index of the member slot).
    pub member: usize,
    /// When the request was sent.
    pub invoke_ns: u64,
    /// When the answer came back; `None` for [`Outcome::Unknown`] (it may take effect at any
    /// time after `invoke_ns`).
    pub complete_ns: Option<u64>,
    /// How it ended.
    pub outcome: Outcome,
    /// What was asked and, for an `Ok` read, what was seen.
    pub f: F,
    /// The error text for `Fail` and `Unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl<F> Op<F> {
    /// Whether this operation completed before `other` was invoked (real-time order).
    pub fn precedes<G>(&self, other: &Op<G>) -> bool {
        self.complete_ns.is_some_and(|c| c < other.invoke_ns)
    }
}

/// The sets workload: unique profile names are created; the profile list is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum SetOp {
    /// `POST /1.0/profiles` with a name no other operation uses.
    Add {
        /// The profile name.
        name: String,
    },
    /// `GET /1.0/profiles`; `seen` is the list returned (only for `Ok`), duplicates kept.
    Read {
        /// The names in the answer, in answer order (only names the workload made).
        #[serde(default)]
        seen: Option<Vec<String>>,
        /// A read taken after every fault healed, one per member.
        #[serde(default)]
        last: bool,
    },
}

/// The register workload: one profile per key, value in `user.v`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum RegisterOp {
    /// `GET`: the value seen (`None`: the key has no value yet), only for `Ok`.
    Read {
        /// The key (register) number.
        key: u32,
        /// The value read.
        #[serde(default)]
        value: Option<i64>,
    },
    /// `PUT` of a value no other write uses.
    Write {
        /// The key (register) number.
        key: u32,
        /// The value written.
        value: i64,
    },
    /// `GET` then `PUT` with `If-Match`: succeeds only if nothing changed since the `GET`,
    /// which saw `expected` (`None`: no value). A 412 is `Fail`. Values are unique, so an
    /// unchanged ETag means the register still held `expected`.
    Cas {
        /// The key (register) number.
        key: u32,
        /// The value the `GET` saw.
        expected: Option<i64>,
        /// The value written.
        new: i64,
    },
}

impl RegisterOp {
    /// The register this operation touches.
    pub fn key(&self) -> u32 {
        match self {
            RegisterOp::Read { key, .. }
            | RegisterOp::Write { key, .. }
            | RegisterOp::Cas { key, .. } => *key,
        }
    }
}

/// One step of an append transaction. Keys name `<profile>/<config key>`, such as `l-3/user.b`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "m", rename_all = "snake_case")]
pub enum Micro {
    /// The list the transaction read for `key` (`None` until the read completed: an
    /// operation that did not end `Ok` has no reads).
    Read {
        /// The list key.
        key: String,
        /// The integers seen, in order; empty for a missing key.
        #[serde(default)]
        value: Option<Vec<i64>>,
    },
    /// Appends `value` (unique across the run) to `key`'s list.
    Append {
        /// The list key.
        key: String,
        /// The integer appended.
        value: i64,
    },
}

/// The append workload: a transaction on lists, read whole and written with `If-Match`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppendTxn {
    /// The steps, reads before appends on the same key.
    pub micros: Vec<Micro>,
    /// A read taken after every fault healed.
    #[serde(default)]
    pub last: bool,
}

/// The bank workload: `user.acct.0..N` of profile `bank`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum BankOp {
    /// A read of every balance (only for `Ok`).
    Read {
        /// Balances by account number.
        #[serde(default)]
        balances: Option<Vec<i64>>,
    },
    /// A transfer by CAS (`GET`, then `PUT` with `If-Match`).
    Transfer {
        /// Debited account.
        from: u32,
        /// Credited account.
        to: u32,
        /// Amount moved.
        amount: i64,
    },
}
