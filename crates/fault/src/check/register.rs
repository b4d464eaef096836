//! The register checker: linearizability of one register per key.
//!
//! The model: every key starts with no value (`None`); a `Read` must return the current value;
//! a `Write` sets it; a `Cas { expected, new }` sets it to `new` only when it holds `expected`.
//!
//! Which operations take part:
//!
//! - `Ok` reads, writes and CASes must be linearized between their invocation and completion.
//! - `Fail` writes and CASes (a refused connection, a 4xx, a 412) had no effect: dropped.
//! - `Unknown` writes and CASes may take effect at any time after their invocation, or never:
//!   they have no return event, so nothing ever forces them into the order, and the search
//!   succeeds once every `Ok` operation is linearized.
//! - `Fail` and `Unknown` reads carry no value: dropped.
//!
//! Each key is checked on its own with the WGL algorithm (Wing & Gong, with Lowe's
//! memoisation, as in porcupine): a doubly linked list of call and return events in time
//! order, a stack of linearized calls to backtrack, and a cache of (linearized set, value)
//! pairs already explored. A key that runs out of its time budget is `Unknown`.
//!
//! Anomalies: `nonlinearizable` per key that has no valid order (listing the operations of
//! the longest linearized prefix found, in that order, then the operation that could not be
//! placed; `stale_reads` counts these keys), and `unexpected` per value read that no
//! operation on that key wrote, or that only a `Fail` operation wrote (`unexpected_writes`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{anomalies_by_kind, Anomaly, Counts, Report};
use crate::history::{Op, Outcome, RegisterOp};

/// What one operation does to the register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Saw this value.
    Read(Option<i64>),
    /// Set this value.
    Write(i64),
    /// Set `.1` if the value was `.0`.
    Cas(Option<i64>, i64),
}

impl Kind {
    /// The value after this operation on `state`, or `None` if it cannot apply there.
    fn step(self, state: Option<i64>) -> Option<Option<i64>> {
        match self {
            Kind::Read(v) => (v == state).then_some(state),
            Kind::Write(v) => Some(Some(v)),
            Kind::Cas(expected, new) => (state == expected).then_some(Some(new)),
        }
    }

    /// A short description for a message.
    fn describe(self) -> String {
        match self {
            Kind::Read(v) => format!("read {}", show(v)),
            Kind::Write(v) => format!("write {v}"),
            Kind::Cas(e, n) => format!("cas {}→{n}", show(e)),
        }
    }
}

/// A value for a message.
fn show(v: Option<i64>) -> String {
    v.map_or_else(|| "nil".to_string(), |v| v.to_string())
}

/// One operation that takes part in the search.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The history id.
    id: usize,
    /// Invocation time.
    invoke: u64,
    /// Completion time; `None` for an `Unknown` operation, which need not be linearized.
    complete: Option<u64>,
    /// What it does.
    kind: Kind,
}

/// The key and the search entry of an operation, or `None` if it takes no part.
fn entry(op: &Op<RegisterOp>) -> Option<(u32, Entry)> {
    let kind = match (&op.f, op.outcome) {
        (_, Outcome::Fail) | (RegisterOp::Read { .. }, Outcome::Unknown) => return None,
        (RegisterOp::Read { value, .. }, _) => Kind::Read(*value),
        (RegisterOp::Write { value, .. }, _) => Kind::Write(*value),
        (RegisterOp::Cas { expected, new, .. }, _) => Kind::Cas(*expected, *new),
    };
    let complete = match op.outcome {
        // An `Ok` operation without a completion time is malformed: it must still be
        // linearized, at any time after its invocation.
        Outcome::Ok => Some(op.complete_ns.unwrap_or(u64::MAX)),
        _ => None,
    };
    Some((
        op.f.key(),
        Entry {
            id: op.id,
            invoke: op.invoke_ns,
            complete,
            kind,
        },
    ))
}

/// How the search of one key ended.
#[derive(Debug)]
enum Search {
    /// An order was found.
    Linearizable,
    /// No order exists: the longest prefix linearized (entry indices, in order), the value
    /// after it, and the entry whose completion could not be passed.
    Nonlinearizable {
        prefix: Vec<usize>,
        state: Option<i64>,
        blocked: Option<usize>,
    },
    /// The budget ran out.
    TimedOut,
}

/// No link.
const NIL: usize = usize::MAX;

/// The event list of the WGL search: node 0 is the head; node `1 + 2j` is the call of entry
/// `j` and `2 + 2j` its return (unused for entries with no return).
struct Events {
    prev: Vec<usize>,
    next: Vec<usize>,
}

impl Events {
    /// The list of `entries`' events in time order (calls before returns at the same time).
    fn new(entries: &[Entry]) -> Events {
        let mut order: Vec<(u64, u8, usize)> = Vec::with_capacity(entries.len() * 2);
        for (j, e) in entries.iter().enumerate() {
            order.push((e.invoke, 0, 1 + 2 * j));
            if let Some(c) = e.complete {
                order.push((c, 1, 2 + 2 * j));
            }
        }
        order.sort_unstable();
        let n = 1 + 2 * entries.len();
        let mut ev = Events {
            prev: vec![NIL; n],
            next: vec![NIL; n],
        };
        let mut last = 0;
        for &(_, _, node) in &order {
            ev.next[last] = node;
            ev.prev[node] = last;
            last = node;
        }
        ev
    }

    /// Takes `node` out of the list (it keeps its own links).
    fn unlink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    /// Puts `node` back where it was.
    fn relink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = node;
        if n != NIL {
            self.prev[n] = node;
        }
    }
}

/// Whether node `node` is a call.
fn is_call(node: usize) -> bool {
    !node.is_multiple_of(2)
}

/// The entry of a node.
fn entry_of(node: usize) -> usize {
    (node - 1) / 2
}

/// The WGL search of one key's entries (sorted by invocation).
fn search(entries: &[Entry], budget: Duration, stats: &mut KeyStats) -> Search {
    let started = Instant::now();
    let mut ev = Events::new(entries);
    let words = entries.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, Option<i64>)> = HashSet::new();
    // Linearized calls with the value before each.
    let mut stack: Vec<(usize, Option<i64>)> = Vec::new();
    let mut state: Option<i64> = None;
    let mut ok_left = entries.iter().filter(|e| e.complete.is_some()).count();
    let mut best: Option<(Vec<usize>, Option<i64>, Option<usize>)> = None;
    let mut node = ev.next[0];
    let mut steps: u64 = 0;
    loop {
        if ok_left == 0 {
            stats.steps = steps;
            stats.cache = cache.len();
            return Search::Linearizable;
        }
        if steps.is_multiple_of(512) && started.elapsed() >= budget {
            stats.steps = steps;
            stats.cache = cache.len();
            return Search::TimedOut;
        }
        steps += 1;
        if node != NIL && is_call(node) {
            let j = entry_of(node);
            if let Some(after) = entries[j].kind.step(state) {
                linearized[j / 64] |= 1 << (j % 64);
                if cache.insert((linearized.clone(), after)) {
                    stack.push((node, state));
                    state = after;
                    if entries[j].complete.is_some() {
                        ok_left -= 1;
                    }
                    ev.unlink(node);
                    if entries[j].complete.is_some() {
                        ev.unlink(node + 1);
                    }
                    node = ev.next[0];
                    continue;
                }
                linearized[j / 64] &= !(1 << (j % 64));
            }
            node = ev.next[node];
            continue;
        }
        // A return (or the end): its call must have been linearized before; backtrack.
        if best.as_ref().is_none_or(|(p, _, _)| stack.len() > p.len()) {
            let prefix = stack.iter().map(|&(n, _)| entry_of(n)).collect();
            let blocked = (node != NIL).then(|| entry_of(node));
            best = Some((prefix, state, blocked));
        }
        let Some((call, before)) = stack.pop() else {
            stats.steps = steps;
            stats.cache = cache.len();
            let (prefix, state, blocked) = best.unwrap_or((Vec::new(), None, None));
            return Search::Nonlinearizable {
                prefix,
                state,
                blocked,
            };
        };
        let j = entry_of(call);
        state = before;
        linearized[j / 64] &= !(1 << (j % 64));
        if entries[j].complete.is_some() {
            ok_left += 1;
            ev.relink(call + 1);
        }
        ev.relink(call);
        node = ev.next[call];
    }
}

/// Figures of one key's search.
#[derive(Debug, Default)]
struct KeyStats {
    /// Loop iterations.
    steps: u64,
    /// Cache entries at the end.
    cache: usize,
}

/// Checks a register history: linearizability per key within `budget_per_key` each.
///
/// Verdict: `Invalid` if any key is not linearizable or a value read was never written;
/// else `Unknown` if some key ran out of budget; else `Valid`.
pub fn check(ops: &[Op<RegisterOp>], budget_per_key: Duration) -> Report {
    let started = Instant::now();
    let mut counts = Counts::default();
    let mut anomalies = Vec::new();
    let mut by_key: BTreeMap<u32, Vec<Entry>> = BTreeMap::new();
    // Values each key's non-`Fail` and `Fail` writes produced.
    let mut written: HashMap<u32, HashSet<i64>> = HashMap::new();
    let mut failed: HashMap<(u32, i64), Vec<usize>> = HashMap::new();
    for op in ops {
        let (key, new) = match op.f {
            RegisterOp::Write { key, value } => (key, value),
            RegisterOp::Cas { key, new, .. } => (key, new),
            RegisterOp::Read { .. } => continue,
        };
        match op.outcome {
            Outcome::Ok => {
                counts.acknowledged_writes += 1;
                written.entry(key).or_default().insert(new);
            }
            Outcome::Unknown => {
                written.entry(key).or_default().insert(new);
            }
            Outcome::Fail => failed.entry((key, new)).or_default().push(op.id),
        }
    }
    // Values seen (by an `Ok` read, or by the `GET` of an `Ok` CAS) that no one wrote.
    let mut unexpected: BTreeMap<(u32, i64), Vec<usize>> = BTreeMap::new();
    for op in ops {
        if op.outcome != Outcome::Ok {
            continue;
        }
        let (key, Some(v)) = (match op.f {
            RegisterOp::Read { key, value } => (key, value),
            RegisterOp::Cas { key, expected, .. } => (key, expected),
            RegisterOp::Write { .. } => continue,
        }) else {
            continue;
        };
        if !written.get(&key).is_some_and(|w| w.contains(&v)) {
            unexpected.entry((key, v)).or_default().push(op.id);
        }
    }
    for ((key, v), readers) in unexpected {
        counts.unexpected_writes += 1;
        let writers = failed.get(&(key, v)).cloned().unwrap_or_default();
        let why = if writers.is_empty() {
            "that no operation wrote".to_string()
        } else {
            format!("that only failed operation(s) {writers:?} wrote")
        };
        let mut ids = writers;
        ids.extend(readers.iter().take(20));
        anomalies.push(Anomaly::new(
            "unexpected",
            format!(
                "key {key}: value {v} {why} was seen by {} operation(s)",
                readers.len()
            ),
            ids,
        ));
    }

    for op in ops {
        if let Some((key, e)) = entry(op) {
            by_key.entry(key).or_default().push(e);
        }
    }
    let (mut valid_keys, mut invalid_keys) = (0u64, 0u64);
    let mut unknown_keys = Vec::new();
    let mut slowest = (0.0f64, None::<u32>);
    let mut max_cache = 0usize;
    let mut total_steps = 0u64;
    for (key, entries) in &mut by_key {
        entries.sort_by_key(|e| (e.invoke, e.id));
        let t = Instant::now();
        let mut stats = KeyStats::default();
        let outcome = search(entries, budget_per_key, &mut stats);
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if ms >= slowest.0 {
            slowest = (ms, Some(*key));
        }
        max_cache = max_cache.max(stats.cache);
        total_steps += stats.steps;
        match outcome {
            Search::Linearizable => valid_keys += 1,
            Search::TimedOut => unknown_keys.push(*key),
            Search::Nonlinearizable {
                prefix,
                state,
                blocked,
            } => {
                invalid_keys += 1;
                counts.stale_reads += 1;
                let tail: Vec<String> = prefix
                    .iter()
                    .rev()
                    .take(5)
                    .rev()
                    .map(|&j| format!("{} ({})", entries[j].id, entries[j].kind.describe()))
                    .collect();
                let mut ids: Vec<usize> = prefix.iter().map(|&j| entries[j].id).collect();
                let stuck = match blocked {
                    Some(j) => {
                        ids.push(entries[j].id);
                        format!(
                            "op {} ({}) cannot take effect before it completed",
                            entries[j].id,
                            entries[j].kind.describe()
                        )
                    }
                    None => "no operation can follow".to_string(),
                };
                let last = if tail.is_empty() {
                    "none".to_string()
                } else {
                    tail.join(", ")
                };
                anomalies.push(Anomaly::new(
                    "nonlinearizable",
                    format!(
                        "key {key}: no order of its {} operations is linearizable; the longest \
                         attempt placed {} operation(s) (last: {last}), leaving the value {}, \
                         then {stuck}",
                        entries.len(),
                        prefix.len(),
                        show(state),
                    ),
                    ids,
                ));
            }
        }
    }
    let details = json!({
        "keys": by_key.len(),
        "ops_searched": by_key.values().map(Vec::len).sum::<usize>(),
        "valid_keys": valid_keys,
        "invalid_keys": invalid_keys,
        "unknown_keys": unknown_keys,
        "budget_per_key_ms": budget_per_key.as_secs_f64() * 1000.0,
        "slowest_key": slowest.1,
        "slowest_key_ms": slowest.0,
        "search_steps": total_steps,
        "max_cache_entries": max_cache,
        "anomalies_by_kind": anomalies_by_kind(&anomalies),
        "check_ms": started.elapsed().as_secs_f64() * 1000.0,
    });
    Report::from_anomalies(anomalies, counts, details, !unknown_keys.is_empty())
}

/// Whether the history is linearizable, by exhaustive search: every order of its operations
/// that respects real time, each `Unknown` write or CAS placed anywhere after its invocation
/// or left out. States already explored (operations done, values of all keys) are not
/// explored twice, which changes nothing but the time. For cross-checking [`check`] on small
/// histories (≤ 12 operations); a history with more than 64 operations taking part is
/// refused (`false`).
pub fn brute_force(ops: &[Op<RegisterOp>]) -> bool {
    let entries: Vec<(u32, Entry)> = ops.iter().filter_map(entry).collect();
    if entries.len() > 64 {
        return false;
    }
    let mut dead = HashSet::new();
    explore(&entries, 0, &mut BTreeMap::new(), &mut dead)
}

/// Depth-first: can the entries not in `done` all be placed (or, if unknown, left out)?
fn explore(
    entries: &[(u32, Entry)],
    done: u64,
    state: &mut BTreeMap<u32, i64>,
    dead: &mut HashSet<(u64, Vec<(u32, i64)>)>,
) -> bool {
    let all = if entries.len() == 64 {
        u64::MAX
    } else {
        (1u64 << entries.len()) - 1
    };
    if done == all {
        return true;
    }
    let memo = (
        done,
        state.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(),
    );
    if dead.contains(&memo) {
        return false;
    }
    for (x, (key, e)) in entries.iter().enumerate() {
        if done & (1 << x) != 0 {
            continue;
        }
        // Every operation not yet done that completed before `e` began must go first.
        let blocked = entries
            .iter()
            .enumerate()
            .any(|(y, (_, f))| done & (1 << y) == 0 && f.complete.is_some_and(|c| c < e.invoke));
        if blocked {
            continue;
        }
        if e.complete.is_none() && explore(entries, done | (1 << x), state, dead) {
            return true;
        }
        let before = state.get(key).copied();
        if let Some(after) = e.kind.step(before) {
            match after {
                Some(v) => state.insert(*key, v),
                None => state.remove(key),
            };
            let ok = explore(entries, done | (1 << x), state, dead);
            match before {
                Some(v) => state.insert(*key, v),
                None => state.remove(key),
            };
            if ok {
                return true;
            }
        }
    }
    dead.insert(memo);
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Verdict;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const BUDGET: Duration = Duration::from_secs(5);

    /// Builds histories op by op, ids in order.
    #[derive(Default)]
    struct H(Vec<Op<RegisterOp>>);

    impl H {
        fn push(&mut self, inv: u64, comp: Option<u64>, outcome: Outcome, f: RegisterOp) -> usize {
            let id = self.0.len();
            self.0.push(Op {
                id,
                process: id as u64,
                member: 0,
                invoke_ns: inv,
                complete_ns: if outcome == Outcome::Unknown {
                    None
                } else {
                    comp
                },
                outcome,
                f,
                error: None,
            });
            id
        }
        fn read(&mut self, v: Option<i64>, inv: u64, comp: u64) -> usize {
            self.push(
                inv,
                Some(comp),
                Outcome::Ok,
                RegisterOp::Read { key: 0, value: v },
            )
        }
        fn write(&mut self, v: i64, inv: u64, comp: u64, o: Outcome) -> usize {
            self.push(inv, Some(comp), o, RegisterOp::Write { key: 0, value: v })
        }
        fn cas(&mut self, e: Option<i64>, n: i64, inv: u64, comp: u64, o: Outcome) -> usize {
            self.push(
                inv,
                Some(comp),
                o,
                RegisterOp::Cas {
                    key: 0,
                    expected: e,
                    new: n,
                },
            )
        }
    }

    fn kinds(r: &Report) -> Vec<&str> {
        r.anomalies.iter().map(|a| a.kind.as_str()).collect()
    }

    #[test]
    fn stale_read_after_acknowledged_write() {
        let mut h = H::default();
        let w = h.write(1, 0, 10, Outcome::Ok);
        let r = h.read(None, 20, 30);
        let rep = check(&h.0, BUDGET);
        assert_eq!(kinds(&rep), vec!["nonlinearizable"]);
        assert_eq!(rep.anomalies[0].ops, vec![w, r]);
        assert_eq!(rep.counts.stale_reads, 1);
        assert_eq!(rep.counts.acknowledged_writes, 1);
        assert!(!brute_force(&h.0));
    }

    #[test]
    fn lost_write() {
        let mut h = H::default();
        h.write(1, 0, 10, Outcome::Ok);
        h.write(2, 20, 30, Outcome::Ok);
        h.read(Some(1), 40, 50);
        let rep = check(&h.0, BUDGET);
        assert_eq!(kinds(&rep), vec!["nonlinearizable"]);
        assert_eq!(rep.verdict, Verdict::Invalid);
    }

    #[test]
    fn failed_cas_value_shows_up() {
        let mut h = H::default();
        let c = h.cas(None, 5, 0, 10, Outcome::Fail);
        let r = h.read(Some(5), 20, 30);
        let rep = check(&h.0, BUDGET);
        assert_eq!(kinds(&rep), vec!["unexpected", "nonlinearizable"]);
        assert_eq!(rep.anomalies[0].ops, vec![c, r]);
        assert_eq!(rep.counts.unexpected_writes, 1);
    }

    #[test]
    fn value_nobody_wrote() {
        let mut h = H::default();
        let r = h.read(Some(9), 20, 30);
        let rep = check(&h.0, BUDGET);
        assert_eq!(kinds(&rep), vec!["nonlinearizable", "unexpected"]);
        assert_eq!(rep.anomalies[1].ops, vec![r]);
    }

    #[test]
    fn concurrent_linearizable_ops_pass() {
        let mut h = H::default();
        h.write(1, 0, 100, Outcome::Ok);
        h.read(Some(1), 10, 20);
        h.read(None, 5, 15);
        h.cas(Some(1), 2, 12, 40, Outcome::Ok);
        h.cas(Some(1), 3, 13, 41, Outcome::Fail);
        h.read(Some(2), 30, 200);
        h.write(4, 150, 160, Outcome::Ok);
        h.read(Some(4), 170, 180);
        let rep = check(&h.0, BUDGET);
        assert_eq!(rep.verdict, Verdict::Valid, "{:?}", rep.anomalies);
        assert_eq!(rep.counts.acknowledged_writes, 3);
        assert!(brute_force(&h.0));
    }

    #[test]
    fn unknown_write_seen_later_or_never() {
        let mut h = H::default();
        h.write(7, 10, 0, Outcome::Unknown);
        h.read(None, 20, 30);
        h.read(Some(7), 50, 60);
        h.read(Some(7), 70, 80);
        h.write(8, 90, 0, Outcome::Unknown);
        h.read(Some(7), 100, 110);
        h.cas(Some(7), 9, 120, 0, Outcome::Unknown);
        h.read(Some(7), 130, 140);
        let rep = check(&h.0, BUDGET);
        assert_eq!(rep.verdict, Verdict::Valid, "{:?}", rep.anomalies);
        assert!(brute_force(&h.0));
    }

    #[test]
    fn unknown_write_seen_before_its_invocation() {
        let mut h = H::default();
        h.read(Some(7), 0, 5);
        h.write(7, 10, 0, Outcome::Unknown);
        let rep = check(&h.0, BUDGET);
        assert_eq!(kinds(&rep), vec!["nonlinearizable"]);
        assert!(!brute_force(&h.0));
    }

    #[test]
    fn keys_are_checked_apart() {
        let mut h = H::default();
        h.push(
            0,
            Some(10),
            Outcome::Ok,
            RegisterOp::Write { key: 1, value: 1 },
        );
        h.push(
            20,
            Some(30),
            Outcome::Ok,
            RegisterOp::Read {
                key: 2,
                value: None,
            },
        );
        let bad = h.push(
            40,
            Some(50),
            Outcome::Ok,
            RegisterOp::Read {
                key: 1,
                value: None,
            },
        );
        let rep = check(&h.0, BUDGET);
        assert_eq!(kinds(&rep), vec!["nonlinearizable"]);
        assert_eq!(rep.anomalies[0].ops, vec![0, bad]);
        assert_eq!(rep.details["valid_keys"], 1);
    }

    #[test]
    fn out_of_budget_is_unknown() {
        let mut h = H::default();
        h.write(1, 0, 10, Outcome::Ok);
        h.read(Some(1), 20, 30);
        assert_eq!(check(&h.0, Duration::ZERO).verdict, Verdict::Unknown);
    }

    /// A random history of at most 12 operations on key 0.
    fn random_history(rng: &mut StdRng) -> Vec<Op<RegisterOp>> {
        let n = rng.random_range(1..=12);
        let mut h = H::default();
        let value = |rng: &mut StdRng| -> Option<i64> {
            if rng.random_bool(0.2) {
                None
            } else {
                Some(rng.random_range(1..=3))
            }
        };
        for _ in 0..n {
            let inv = rng.random_range(0..100);
            let comp = inv + rng.random_range(0..30);
            let outcome = match rng.random_range(0..100) {
                0..70 => Outcome::Ok,
                70..80 => Outcome::Fail,
                _ => Outcome::Unknown,
            };
            let f = match rng.random_range(0..100) {
                0..45 => RegisterOp::Read {
                    key: 0,
                    value: value(rng),
                },
                45..80 => RegisterOp::Write {
                    key: 0,
                    value: rng.random_range(1..=3),
                },
                _ => RegisterOp::Cas {
                    key: 0,
                    expected: value(rng),
                    new: rng.random_range(1..=3),
                },
            };
            h.push(inv, Some(comp), outcome, f);
        }
        h.0
    }

    /// A small simulated (so linearizable) history, then perhaps one random change: a value
    /// read, an outcome, or a time.
    fn near_miss(rng: &mut StdRng) -> Vec<Op<RegisterOp>> {
        let n = rng.random_range(1..=12);
        let procs = rng.random_range(1..=4);
        let unknown = rng.random_range(0..=2);
        let mut h = simulated(rng, procs, n, unknown);
        if rng.random_bool(0.6) {
            let i = rng.random_range(0..h.len());
            let op = &mut h[i];
            match rng.random_range(0..3) {
                0 => match &mut op.f {
                    RegisterOp::Read { value, .. } => {
                        *value = value.map_or(Some(2), |v| Some(v - 1))
                    }
                    RegisterOp::Write { value, .. } | RegisterOp::Cas { new: value, .. } => {
                        *value -= 1
                    }
                },
                1 => {
                    op.outcome = match op.outcome {
                        Outcome::Ok => Outcome::Fail,
                        _ => Outcome::Ok,
                    };
                    if op.complete_ns.is_none() {
                        op.complete_ns = Some(op.invoke_ns + 100);
                    }
                }
                _ => {
                    let d = rng.random_range(0..300);
                    op.invoke_ns += d;
                    op.complete_ns = op.complete_ns.map(|c| c + d);
                }
            }
        }
        h
    }

    #[test]
    fn agrees_with_brute_force() {
        let mut rng = StdRng::seed_from_u64(20240611);
        let (mut valid, mut invalid) = (0, 0);
        let runs = 4000;
        for i in 0..runs {
            let h = if i % 2 == 0 {
                random_history(&mut rng)
            } else {
                near_miss(&mut rng)
            };
            let rep = check(&h, BUDGET);
            let brute = brute_force(&h);
            assert_ne!(rep.verdict, Verdict::Unknown);
            assert_eq!(
                rep.verdict == Verdict::Valid,
                brute,
                "disagree on {h:#?}\n{:?}",
                rep.anomalies
            );
            if brute {
                valid += 1;
            } else {
                invalid += 1;
            }
        }
        println!("register: {runs} random histories, {valid} valid, {invalid} invalid");
        assert!(valid * 5 > runs && invalid * 5 > runs);
    }

    /// A linearizable history: a real register, `procs` sequential clients with random
    /// latencies, each operation taking effect at a random instant of its interval.
    fn simulated(rng: &mut StdRng, procs: u64, n: usize, unknown: usize) -> Vec<Op<RegisterOp>> {
        // (process, invoke, complete, effect time, kind 0 read / 1 write / 2 cas)
        let mut plan = Vec::new();
        let mut clock = vec![0u64; procs as usize];
        for i in 0..n {
            let p = i % procs as usize;
            let inv = clock[p] + rng.random_range(0..50);
            let comp = inv + rng.random_range(10..400);
            let at = rng.random_range(inv..=comp);
            clock[p] = comp;
            plan.push((p as u64, inv, comp, at, rng.random_range(0..3u8)));
        }
        // Which writes or CASes end unknown.
        let mut unknown_ids = HashSet::new();
        let unknown = unknown.min(plan.iter().filter(|p| p.4 != 0).count());
        while unknown_ids.len() < unknown {
            let i = rng.random_range(0..n);
            if plan[i].4 != 0 {
                unknown_ids.insert(i);
            }
        }
        let mut by_effect: Vec<usize> = (0..n).collect();
        by_effect.sort_by_key(|&i| plan[i].3);
        let mut ops: Vec<Option<Op<RegisterOp>>> = vec![None; n];
        let mut state: Option<i64> = None;
        let mut seen: Vec<i64> = Vec::new();
        let mut next = 1;
        for i in by_effect {
            let (p, inv, comp, _, kind) = plan[i];
            let unknown = unknown_ids.contains(&i);
            let applies = !unknown || rng.random_bool(0.5);
            let (f, ok) = match kind {
                0 => (
                    RegisterOp::Read {
                        key: 0,
                        value: state,
                    },
                    true,
                ),
                1 => {
                    next += 1;
                    if applies {
                        state = Some(next);
                        seen.push(next);
                    }
                    (
                        RegisterOp::Write {
                            key: 0,
                            value: next,
                        },
                        true,
                    )
                }
                _ => {
                    next += 1;
                    let expected = if rng.random_bool(0.6) || seen.is_empty() {
                        state
                    } else {
                        Some(seen[rng.random_range(0..seen.len())])
                    };
                    let ok = expected == state;
                    if ok && applies {
                        state = Some(next);
                        seen.push(next);
                    }
                    (
                        RegisterOp::Cas {
                            key: 0,
                            expected,
                            new: next,
                        },
                        ok,
                    )
                }
            };
            let outcome = if unknown {
                Outcome::Unknown
            } else if ok {
                Outcome::Ok
            } else {
                Outcome::Fail
            };
            ops[i] = Some(Op {
                id: 0,
                process: p,
                member: p as usize / 2,
                invoke_ns: inv,
                complete_ns: (!unknown).then_some(comp),
                outcome,
                f,
                error: None,
            });
        }
        let mut ops: Vec<Op<RegisterOp>> = ops.into_iter().flatten().collect();
        ops.sort_by_key(|o| o.invoke_ns);
        for (id, o) in ops.iter_mut().enumerate() {
            o.id = id;
        }
        ops
    }

    #[test]
    fn perf_300_ops_10_concurrent_10_unknown() {
        let mut rng = StdRng::seed_from_u64(99);
        let mut worst = Duration::ZERO;
        for _ in 0..5 {
            let h = simulated(&mut rng, 10, 300, 10);
            let t = Instant::now();
            let rep = check(&h, BUDGET);
            let took = t.elapsed();
            worst = worst.max(took);
            assert_eq!(rep.verdict, Verdict::Valid, "{:?}", rep.anomalies);
        }
        println!("register: 300 ops, 10 processes, 10 unknown: worst of 5 keys {worst:?}");
        assert!(worst < Duration::from_secs(2));
    }
}
