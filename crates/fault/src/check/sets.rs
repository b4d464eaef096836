//! The sets checker: profiles with unique names are created, and the list is read.
//!
//! Rules, for `Ok` reads only (other reads carry no list):
//!
//! - `unexpected`: a name a read saw that no `Add` attempted, or whose every `Add` ended
//!   `Fail`, or that a read saw though it completed before the name's first `Add` was invoked
//!   (one anomaly and one `unexpected_writes` per distinct name).
//! - `duplicated`: a name twice in one read (one anomaly per read; `duplicated_writes` counts
//!   the distinct names seen twice).
//! - `stale-read`: a read that misses a name that must be there: one whose `Ok` add completed
//!   before the read was invoked, or that a read which completed before this one was invoked
//!   already saw (a name that came and went). One anomaly and one `stale_reads` per read.
//! - `lost`: an `Ok` add missing from any final (`last`) read (one per name, `lost_writes`).
//!   A final read that misses an acknowledged add reports it as `lost` only, not as stale.
//!
//! `Unknown` adds may or may not have applied: they are never lost, and once some read saw
//! the name every read invoked after that read completed must see it too.
//!
//! Cost: O(n log n) plus the total length of the lists read; a read is compared name by name
//! with what must be in it only when a count says something is missing.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde_json::json;

use super::{anomalies_by_kind, Anomaly, Counts, Report};
use crate::history::{Op, Outcome, SetOp};

/// How many operations an anomaly lists at most beside the ones it is about.
const MAX_LISTED: usize = 20;

/// What is known of one name.
struct Name<'a> {
    /// The name.
    text: &'a str,
    /// The `Add`s of this name (history indices), normally one.
    adds: Vec<usize>,
    /// The earliest completion of an `Ok` add, with that add's op id.
    acked: Option<(u64, usize)>,
    /// The earliest completion of an `Ok` read that saw it, with that read's op id.
    seen: Option<(u64, usize)>,
    /// The first reads that saw the name (history indices), at most [`MAX_LISTED`].
    readers: Vec<usize>,
    /// How many reads saw the name.
    times_read: usize,
    /// Whether some `Add` did not end `Fail`.
    attempted: bool,
}

impl<'a> Name<'a> {
    /// A name nothing is known of yet.
    fn new(text: &'a str) -> Self {
        Name {
            text,
            adds: Vec::new(),
            acked: None,
            seen: None,
            readers: Vec::new(),
            times_read: 0,
            attempted: false,
        }
    }

    /// From when (exclusive: reads invoked strictly after) every read must contain the name,
    /// and the operation that makes it so.
    fn must_since(&self) -> Option<(u64, usize)> {
        match (self.acked, self.seen) {
            (Some(a), Some(s)) => Some(a.min(s)),
            (a, s) => a.or(s),
        }
    }
}

/// Names, each numbered once.
#[derive(Default)]
struct Names<'a> {
    /// Number by name.
    index: HashMap<&'a str, usize>,
    /// What is known, by number.
    all: Vec<Name<'a>>,
}

impl<'a> Names<'a> {
    /// The number of `text`, new if need be.
    fn intern(&mut self, text: &'a str) -> usize {
        if let Some(&i) = self.index.get(text) {
            return i;
        }
        let i = self.all.len();
        self.index.insert(text, i);
        self.all.push(Name::new(text));
        i
    }
}

/// Checks a sets history; see the module documentation for the rules.
pub fn check(ops: &[Op<SetOp>]) -> Report {
    let started = Instant::now();
    let mut counts = Counts::default();
    let mut anomalies = Vec::new();
    let mut names = Names::default();
    let (mut adds, mut failed_adds, mut unknown_adds) = (0u64, 0u64, 0u64);

    for (i, op) in ops.iter().enumerate() {
        if let SetOp::Add { name } = &op.f {
            adds += 1;
            let k = names.intern(name);
            let n = &mut names.all[k];
            n.adds.push(i);
            match op.outcome {
                Outcome::Ok => {
                    counts.acknowledged_writes += 1;
                    n.attempted = true;
                    // An `Ok` add with no completion time is malformed: it still may not be
                    // lost, but no read is required to see it.
                    if let Some(c) = op.complete_ns {
                        if n.acked.is_none_or(|(t, _)| c < t) {
                            n.acked = Some((c, op.id));
                        }
                    }
                }
                Outcome::Unknown => {
                    unknown_adds += 1;
                    n.attempted = true;
                }
                Outcome::Fail => failed_adds += 1,
            }
        }
    }

    // The reads that have a list: (history index, distinct names seen by number).
    let mut reads: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut reads_without_list = 0u64;
    let mut duplicated = HashSet::new();
    // `stamp[name]` is the last read (position in `reads`, plus one) that saw the name.
    let mut stamp: Vec<usize> = Vec::new();
    // Successive reads mostly list the same names in the same order: each name is first
    // compared with the one after the previous match in the previous read (`prev`; `prev_at`
    // gives a name's position there), and looked up by hash only when that fails.
    let mut prev: Vec<usize> = Vec::new();
    let mut prev_at: Vec<usize> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let SetOp::Read { seen, .. } = &op.f else {
            continue;
        };
        if op.outcome != Outcome::Ok {
            continue;
        }
        let Some(seen) = seen else {
            reads_without_list += 1;
            continue;
        };
        let mark = reads.len() + 1;
        let mut set = Vec::with_capacity(seen.len());
        let mut dups: Vec<&str> = Vec::new();
        let mut order = Vec::with_capacity(seen.len());
        let mut cursor = 0;
        for s in seen {
            let k = match prev.get(cursor) {
                Some(&k) if names.all[k].text == s.as_str() => k,
                _ => {
                    let k = names.intern(s);
                    if let Some(&p) = prev_at.get(k) {
                        if prev.get(p) == Some(&k) {
                            cursor = p;
                        }
                    }
                    k
                }
            };
            cursor += 1;
            order.push(k);
            if stamp.len() <= k {
                stamp.resize(k + 1, 0);
            }
            if stamp[k] == mark {
                if !dups.contains(&s.as_str()) {
                    dups.push(s.as_str());
                }
                continue;
            }
            stamp[k] = mark;
            set.push(k);
            let n = &mut names.all[k];
            n.times_read += 1;
            if n.readers.len() < MAX_LISTED {
                n.readers.push(i);
            }
            if let Some(c) = op.complete_ns {
                if n.seen.is_none_or(|(t, _)| c < t) {
                    n.seen = Some((c, op.id));
                }
            }
        }
        if !dups.is_empty() {
            duplicated.extend(dups.iter().copied());
            anomalies.push(Anomaly::new(
                "duplicated",
                format!(
                    "read {} saw {} name(s) more than once: {}",
                    op.id,
                    dups.len(),
                    list(&dups)
                ),
                vec![op.id],
            ));
        }
        if prev_at.len() < names.all.len() {
            prev_at.resize(names.all.len(), usize::MAX);
        }
        for (p, &k) in order.iter().enumerate() {
            prev_at[k] = p;
        }
        prev = order;
        reads.push((i, set));
    }
    counts.duplicated_writes = duplicated.len() as u64;
    let all = &names.all;

    // Names in name order, for a stable report.
    let mut sorted: Vec<usize> = (0..all.len()).collect();
    sorted.sort_by_key(|&k| all[k].text);

    // Unexpected names: no add, only failed adds, or seen before the add was invoked.
    let mut unexpected = vec![false; all.len()];
    for &k in &sorted {
        let n = &all[k];
        if n.times_read == 0 {
            continue;
        }
        let first_invoke = n.adds.iter().map(|&a| ops[a].invoke_ns).min();
        let why = if n.adds.is_empty() {
            Some("that no add attempted".to_string())
        } else if !n.attempted {
            Some("whose add failed".to_string())
        } else {
            // A read that completed before the first add was invoked saw the future; name
            // such reads among the first ones listed.
            let early = n
                .seen
                .zip(first_invoke)
                .is_some_and(|((c, _), inv)| c < inv);
            let shown: Vec<usize> = n
                .readers
                .iter()
                .filter(|&&r| {
                    ops[r]
                        .complete_ns
                        .zip(first_invoke)
                        .is_some_and(|(c, inv)| c < inv)
                })
                .map(|&r| ops[r].id)
                .collect();
            early.then(|| format!("before its add was invoked (reads {shown:?}, …)"))
        };
        if let Some(why) = why {
            unexpected[k] = true;
            counts.unexpected_writes += 1;
            let mut ids: Vec<usize> = n.adds.iter().map(|&a| ops[a].id).collect();
            ids.extend(n.readers.iter().map(|&r| ops[r].id));
            anomalies.push(Anomaly::new(
                "unexpected",
                format!(
                    "name {:?} {why} was seen by {} read(s)",
                    n.text, n.times_read
                ),
                ids,
            ));
        }
    }

    // Lost: an `Ok` add missing from a final read.
    let last_reads: Vec<usize> = (0..reads.len())
        .filter(|&r| matches!(ops[reads[r].0].f, SetOp::Read { last: true, .. }))
        .collect();
    let mut lost = vec![false; all.len()];
    if !last_reads.is_empty() {
        // How many final reads saw each name.
        let mut in_last = vec![0usize; all.len()];
        for &r in &last_reads {
            for &k in &reads[r].1 {
                in_last[k] += 1;
            }
        }
        for &k in &sorted {
            let n = &all[k];
            if in_last[k] == last_reads.len() {
                continue;
            }
            let Some(&ok_add) = n.adds.iter().find(|&&a| ops[a].outcome == Outcome::Ok) else {
                continue;
            };
            let missing: Vec<usize> = last_reads
                .iter()
                .filter(|&&r| !reads[r].1.contains(&k))
                .map(|&r| ops[reads[r].0].id)
                .collect();
            lost[k] = true;
            counts.lost_writes += 1;
            let mut ids = vec![ops[ok_add].id];
            ids.extend(missing.iter().take(MAX_LISTED));
            anomalies.push(Anomaly::new(
                "lost",
                format!(
                    "name {:?} acknowledged by add {} is missing from {} of {} final read(s)",
                    n.text,
                    ops[ok_add].id,
                    missing.len(),
                    last_reads.len()
                ),
                ids,
            ));
        }
    }

    // Stale reads. `must` is every expected name with the time after which reads must see it,
    // sorted by that time; a read invoked at `t` must contain the prefix of names with time < t.
    let mut must: Vec<(u64, usize, usize)> = (0..all.len())
        .filter(|&k| !unexpected[k])
        .filter_map(|k| all[k].must_since().map(|(t, by)| (t, k, by)))
        .collect();
    must.sort_unstable();
    let mut must_at: Vec<Option<u64>> = vec![None; all.len()];
    for &(t, k, _) in &must {
        must_at[k] = Some(t);
    }
    for (i, set) in &reads {
        let read = &ops[*i];
        let due = must.partition_point(|&(t, _, _)| t < read.invoke_ns);
        let present = set
            .iter()
            .filter(|&&k| must_at[k].is_some_and(|t| t < read.invoke_ns))
            .count();
        if present >= due {
            continue;
        }
        let is_last = matches!(read.f, SetOp::Read { last: true, .. });
        let seen_here: HashSet<usize> = set.iter().copied().collect();
        let missing: Vec<&(u64, usize, usize)> = must[..due]
            .iter()
            .filter(|(_, k, _)| !seen_here.contains(k))
            .filter(|(_, k, _)| !(is_last && lost[*k]))
            .collect();
        if missing.is_empty() {
            continue;
        }
        counts.stale_reads += 1;
        let mut ids = vec![read.id];
        let mut by: Vec<usize> = missing.iter().map(|(_, _, by)| *by).collect();
        by.sort_unstable();
        by.dedup();
        ids.extend(by.iter().take(MAX_LISTED));
        let shown: Vec<&str> = missing.iter().map(|(_, k, _)| all[*k].text).collect();
        anomalies.push(Anomaly::new(
            "stale-read",
            format!(
                "read {} misses {} name(s) acknowledged or seen before it began: {}",
                read.id,
                missing.len(),
                list(&shown)
            ),
            ids,
        ));
    }

    let details = json!({
        "adds": adds,
        "failed_adds": failed_adds,
        "unknown_adds": unknown_adds,
        "reads": reads.len(),
        "final_reads": last_reads.len(),
        "reads_without_list": reads_without_list,
        "names_seen": all.iter().filter(|n| n.times_read > 0).count(),
        "anomalies_by_kind": anomalies_by_kind(&anomalies),
        "check_ms": started.elapsed().as_secs_f64() * 1000.0,
    });
    // Nothing read, nothing checked.
    Report::from_anomalies(anomalies, counts, details, reads.is_empty())
}

/// A short list of names for a message.
fn list(names: &[&str]) -> String {
    let mut s: Vec<String> = names.iter().take(10).map(|n| format!("{n:?}")).collect();
    if names.len() > 10 {
        s.push(format!("… ({} more)", names.len() - 10));
    }
    s.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Verdict;

    /// Builds histories op by op, ids in order.
    #[derive(Default)]
    struct H(Vec<Op<SetOp>>);

    impl H {
        fn push(&mut self, inv: u64, comp: Option<u64>, outcome: Outcome, f: SetOp) -> usize {
            let id = self.0.len();
            self.0.push(Op {
                id,
                process: id as u64,
                member: 0,
                invoke_ns: inv,
                complete_ns: comp,
                outcome,
                f,
                error: None,
            });
            id
        }
        fn add(&mut self, name: &str, inv: u64, comp: Option<u64>, outcome: Outcome) -> usize {
            self.push(inv, comp, outcome, SetOp::Add { name: name.into() })
        }
        fn read(&mut self, seen: &[&str], inv: u64, comp: u64, last: bool) -> usize {
            let seen = Some(seen.iter().map(|s| s.to_string()).collect());
            self.push(inv, Some(comp), Outcome::Ok, SetOp::Read { seen, last })
        }
    }

    fn kinds(r: &Report) -> Vec<&str> {
        r.anomalies.iter().map(|a| a.kind.as_str()).collect()
    }

    #[test]
    fn valid_history() {
        let mut h = H::default();
        h.add("a", 0, Some(10), Outcome::Ok);
        h.add("b", 5, None, Outcome::Unknown);
        h.add("c", 6, Some(8), Outcome::Fail);
        h.read(&[], 1, 9, false); // concurrent with the add of a
        h.read(&["a"], 11, 20, false);
        h.add("d", 12, Some(30), Outcome::Ok);
        h.read(&["a", "d"], 21, 25, false); // d concurrent: may be seen
        h.read(&["a", "d", "b"], 40, 50, true);
        let r = check(&h.0);
        assert_eq!(r.verdict, Verdict::Valid, "{r:?}");
        assert_eq!(r.counts.acknowledged_writes, 2);
    }

    #[test]
    fn lost_write() {
        let mut h = H::default();
        let a = h.add("a", 0, Some(10), Outcome::Ok);
        h.add("b", 0, Some(10), Outcome::Ok);
        let last = h.read(&["b"], 20, 30, true);
        let r = check(&h.0);
        assert_eq!(kinds(&r), vec!["lost"]);
        assert_eq!(r.anomalies[0].ops, vec![a, last]);
        assert_eq!(r.counts.lost_writes, 1);
        assert_eq!(r.counts.stale_reads, 0);
    }

    #[test]
    fn unknown_add_missing_from_final_read_is_fine() {
        let mut h = H::default();
        h.add("a", 0, None, Outcome::Unknown);
        h.read(&[], 20, 30, true);
        assert_eq!(check(&h.0).verdict, Verdict::Valid);
    }

    #[test]
    fn unexpected_names() {
        let mut h = H::default();
        let f = h.add("failed", 0, Some(5), Outcome::Fail);
        let r1 = h.read(&["failed", "never"], 10, 20, false);
        let a = h.add("future", 30, Some(40), Outcome::Ok);
        let r2 = h.read(&["future"], 0, 25, false);
        let r = check(&h.0);
        assert_eq!(kinds(&r), vec!["unexpected", "unexpected", "unexpected"]);
        assert_eq!(r.counts.unexpected_writes, 3);
        assert_eq!(r.anomalies[0].ops, vec![f, r1]);
        assert_eq!(r.anomalies[1].ops, vec![r1]);
        assert_eq!(r.anomalies[2].ops, vec![a, r2]);
    }

    #[test]
    fn duplicated_name() {
        let mut h = H::default();
        h.add("a", 0, Some(5), Outcome::Ok);
        let rd = h.read(&["a", "a"], 10, 20, false);
        let r = check(&h.0);
        assert_eq!(kinds(&r), vec!["duplicated"]);
        assert_eq!(r.anomalies[0].ops, vec![rd]);
        assert_eq!(r.counts.duplicated_writes, 1);
    }

    #[test]
    fn stale_read_after_acknowledged_add() {
        let mut h = H::default();
        let a = h.add("a", 0, Some(5), Outcome::Ok);
        let rd = h.read(&[], 6, 20, false);
        h.read(&["a"], 21, 30, true);
        let r = check(&h.0);
        assert_eq!(kinds(&r), vec!["stale-read"]);
        assert_eq!(r.anomalies[0].ops, vec![rd, a]);
        assert_eq!(r.counts.stale_reads, 1);
    }

    #[test]
    fn flicker_is_a_stale_read() {
        let mut h = H::default();
        h.add("a", 0, None, Outcome::Unknown);
        let r1 = h.read(&["a"], 1, 5, false);
        let r2 = h.read(&[], 6, 9, false);
        h.read(&["a"], 10, 12, false);
        let r = check(&h.0);
        assert_eq!(kinds(&r), vec!["stale-read"]);
        assert_eq!(r.anomalies[0].ops, vec![r2, r1]);
    }

    #[test]
    fn reads_in_any_order() {
        let mut h = H::default();
        for n in ["a", "b", "c", "d"] {
            h.add(n, 0, Some(5), Outcome::Ok);
        }
        h.read(&["a", "b", "c", "d"], 10, 20, false);
        h.read(&["d", "c", "b", "a"], 21, 30, false);
        let stale = h.read(&["b", "a", "d", "b"], 31, 40, false);
        h.read(&["c", "a", "b", "d"], 41, 50, true);
        let r = check(&h.0);
        assert_eq!(kinds(&r), vec!["stale-read", "duplicated"]);
        assert_eq!(r.anomalies[0].ops, vec![stale, 2]);
        assert_eq!(r.anomalies[1].ops, vec![stale]);
    }

    #[test]
    fn no_reads_is_unknown() {
        let mut h = H::default();
        h.add("a", 0, Some(5), Outcome::Ok);
        assert_eq!(check(&h.0).verdict, Verdict::Unknown);
    }

    #[test]
    fn perf_3000_adds_3000_reads() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut h = H::default();
        // Adds every 10 ns taking 5..25 ns; reads see every add completed before they began
        // and some of the concurrent ones.
        let mut added: Vec<(u64, u64, String)> = Vec::new();
        for i in 0..3000u64 {
            let inv = i * 10;
            let comp = inv + rng.random_range(5..25);
            added.push((inv, comp, format!("p{i}")));
        }
        let mut ops = Vec::new();
        for (inv, comp, name) in &added {
            ops.push((*inv, Some(*comp), SetOp::Add { name: name.clone() }));
        }
        for j in 0..3000u64 {
            let inv = j * 10 + 3;
            let comp = inv + 4;
            let seen = added
                .iter()
                .filter(|(ai, ac, _)| *ac < inv || *ai < inv.saturating_sub(30))
                .map(|(_, _, n)| n.clone())
                .collect();
            ops.push((
                inv,
                Some(comp),
                SetOp::Read {
                    seen: Some(seen),
                    last: false,
                },
            ));
        }
        ops.sort_by_key(|(inv, _, _)| *inv);
        for (inv, comp, f) in ops {
            h.push(inv, comp, Outcome::Ok, f);
        }
        let all: Vec<&str> = added.iter().map(|(_, _, n)| n.as_str()).collect();
        h.read(&all, 1_000_000, 1_000_010, true);
        let t = Instant::now();
        let r = check(&h.0);
        let took = t.elapsed();
        println!("sets: 3000 adds, 3001 reads checked in {took:?}");
        assert_eq!(r.verdict, Verdict::Valid, "{:?}", &r.anomalies[..1]);
        assert!(took.as_secs_f64() < 5.0);
    }
}
