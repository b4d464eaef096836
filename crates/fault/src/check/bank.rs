//! The bank checker: transfers move money between accounts by CAS, so every read of all the
//! balances must see the same total and no account below zero.
//!
//! Each `Ok` read must list `accounts` balances summing to `total` (else `bank-total`: a
//! transfer was half applied, applied twice, or lost) with none negative (else
//! `bank-negative`: a debit was applied without its check). `Fail` and `Unknown` reads carry
//! no balances and are skipped; transfers themselves are only counted (`Ok` ones as
//! acknowledged writes), whatever their outcome, since any of them may show in a read.

use std::time::Instant;

use serde_json::json;

use super::{anomalies_by_kind, Anomaly, Counts, Report};
use crate::history::{BankOp, Op, Outcome};

/// Checks a bank history of `accounts` accounts holding `total` between them.
///
/// Verdict: `Invalid` on any anomaly; else `Unknown` when no read had balances; else `Valid`.
pub fn check(ops: &[Op<BankOp>], accounts: usize, total: i64) -> Report {
    let started = Instant::now();
    let mut counts = Counts::default();
    let mut anomalies = Vec::new();
    let (mut reads, mut reads_without_balances, mut transfers) = (0u64, 0u64, 0u64);
    let mut totals_seen = std::collections::BTreeMap::<String, u64>::new();
    for op in ops {
        match &op.f {
            BankOp::Transfer { .. } => {
                transfers += 1;
                if op.outcome == Outcome::Ok {
                    counts.acknowledged_writes += 1;
                }
            }
            BankOp::Read { balances } if op.outcome == Outcome::Ok => {
                let Some(balances) = balances else {
                    reads_without_balances += 1;
                    continue;
                };
                reads += 1;
                // Summed wide: a corrupt balance must not overflow the check.
                let sum: i128 = balances.iter().map(|&b| i128::from(b)).sum();
                *totals_seen.entry(sum.to_string()).or_default() += 1;
                if balances.len() != accounts {
                    anomalies.push(Anomaly::new(
                        "bank-total",
                        format!(
                            "read {} saw {} balances, not {accounts}: {balances:?}",
                            op.id,
                            balances.len()
                        ),
                        vec![op.id],
                    ));
                } else if sum != i128::from(total) {
                    anomalies.push(Anomaly::new(
                        "bank-total",
                        format!(
                            "read {} saw a total of {sum}, not {total}: {balances:?}",
                            op.id
                        ),
                        vec![op.id],
                    ));
                }
                let negative: Vec<usize> =
                    (0..balances.len()).filter(|&a| balances[a] < 0).collect();
                if !negative.is_empty() {
                    anomalies.push(Anomaly::new(
                        "bank-negative",
                        format!(
                            "read {} saw negative balance(s) in account(s) {negative:?}: \
                             {balances:?}",
                            op.id
                        ),
                        vec![op.id],
                    ));
                }
            }
            BankOp::Read { .. } => {}
        }
    }
    let details = json!({
        "accounts": accounts,
        "total": total,
        "reads": reads,
        "reads_without_balances": reads_without_balances,
        "transfers": transfers,
        "totals_seen": totals_seen,
        "anomalies_by_kind": anomalies_by_kind(&anomalies),
        "check_ms": started.elapsed().as_secs_f64() * 1000.0,
    });
    Report::from_anomalies(anomalies, counts, details, reads == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Verdict;

    /// Builds histories op by op, ids in order.
    #[derive(Default)]
    struct H(Vec<Op<BankOp>>);

    impl H {
        fn push(&mut self, outcome: Outcome, f: BankOp) -> usize {
            let id = self.0.len();
            let t = id as u64 * 10;
            self.0.push(Op {
                id,
                process: 0,
                member: 0,
                invoke_ns: t,
                complete_ns: (outcome != Outcome::Unknown).then_some(t + 5),
                outcome,
                f,
                error: None,
            });
            id
        }
        fn read(&mut self, balances: &[i64]) -> usize {
            self.push(
                Outcome::Ok,
                BankOp::Read {
                    balances: Some(balances.to_vec()),
                },
            )
        }
        fn transfer(&mut self, outcome: Outcome) -> usize {
            self.push(
                outcome,
                BankOp::Transfer {
                    from: 0,
                    to: 1,
                    amount: 5,
                },
            )
        }
    }

    fn kinds(r: &Report) -> Vec<&str> {
        r.anomalies.iter().map(|a| a.kind.as_str()).collect()
    }

    #[test]
    fn valid_history() {
        let mut h = H::default();
        h.read(&[10, 10, 10]);
        h.transfer(Outcome::Ok);
        h.transfer(Outcome::Fail);
        h.transfer(Outcome::Unknown);
        h.read(&[5, 15, 10]);
        h.push(Outcome::Unknown, BankOp::Read { balances: None });
        h.read(&[0, 20, 10]);
        let r = check(&h.0, 3, 30);
        assert_eq!(r.verdict, Verdict::Valid, "{:?}", r.anomalies);
        assert_eq!(r.counts.acknowledged_writes, 1);
    }

    #[test]
    fn wrong_total() {
        let mut h = H::default();
        h.read(&[10, 10, 10]);
        let bad = h.read(&[10, 15, 10]);
        let r = check(&h.0, 3, 30);
        assert_eq!(kinds(&r), vec!["bank-total"]);
        assert_eq!(r.anomalies[0].ops, vec![bad]);
    }

    #[test]
    fn wrong_number_of_accounts() {
        let mut h = H::default();
        let bad = h.read(&[20, 10]);
        let r = check(&h.0, 3, 30);
        assert_eq!(kinds(&r), vec!["bank-total"]);
        assert_eq!(r.anomalies[0].ops, vec![bad]);
    }

    #[test]
    fn negative_balance() {
        let mut h = H::default();
        let bad = h.read(&[-5, 25, 10]);
        let both = h.read(&[-5, 25, 11]);
        let r = check(&h.0, 3, 30);
        assert_eq!(
            kinds(&r),
            vec!["bank-negative", "bank-negative", "bank-total"]
        );
        assert_eq!(r.anomalies[0].ops, vec![bad]);
        assert_eq!(r.anomalies[2].ops, vec![both]);
    }

    #[test]
    fn no_reads_is_unknown() {
        let mut h = H::default();
        h.transfer(Outcome::Ok);
        assert_eq!(check(&h.0, 3, 30).verdict, Verdict::Unknown);
    }
}
