//! The list-append checker, in the manner of Elle: transactions read whole lists and append
//! unique integers to them, so every read names the writes it saw and their order.
//!
//! Checks:
//!
//! - `incompatible-order`: every list read of a key must be a prefix of the longest one read.
//! - `duplicated`: a value twice in one list.
//! - `unexpected`: a value read that no transaction appended to that key; `G1a`: a value read
//!   whose transaction ended `Fail` (an aborted write was seen). Both count as unexpected
//!   writes.
//! - `lost`: an append of an `Ok` transaction missing from a final (`last`) read of its key.
//! - Cycles in the dependency graph over `Ok` transactions and the `Unknown` ones whose
//!   appends were seen: `ww` (successive elements of the longest list), `wr` (the writer of a
//!   read's last element → the reader), `rw` (a reader → the writer of the element after the
//!   read's last, or of the first for an empty read) and real time (`rt`: one transaction
//!   completed before the other was invoked; an `Unknown` one never completes). One cycle is
//!   reported per strongly connected component, the least severe that explains it: only `ww`
//!   → `G0`; `ww` and `wr` → `G1c`; exactly one `rw` → `G-single`; more → `G2`; with a
//!   suffix `-realtime` when only a cycle through an `rt` edge exists (a stale read, counted
//!   in `stale_reads`).
//!
//! `Unknown` transactions have no reads; their appends may or may not have happened, so they
//! are never lost, and take part in the graph only when some read saw one of their appends.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use serde_json::json;

use super::{anomalies_by_kind, Anomaly, Counts, Report};
use crate::history::{AppendTxn, Micro, Op, Outcome};

/// How many reads an anomaly lists at most.
const MAX_LISTED: usize = 20;

/// How many `rw` edges of one component are tried for a `G-single` cycle by a search of its
/// own, once the cheap test (both ends in one component of the other edges) found none.
const MAX_SINGLE_RW_SEARCHES: usize = 500;

/// A dependency between two transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Dep {
    /// Write-write: the source's append is just before the target's in the list.
    Ww,
    /// Write-read: the target read the source's append last.
    Wr,
    /// Read-write: the target appended the element after the source's read ended.
    Rw,
    /// Real time: the source completed before the target was invoked.
    Rt,
}

impl Dep {
    /// Its name in messages.
    fn name(self) -> &'static str {
        match self {
            Dep::Ww => "ww",
            Dep::Wr => "wr",
            Dep::Rw => "rw",
            Dep::Rt => "rt",
        }
    }
}

/// An edge: target node, kind, and key (index into the key names; unused for `rt`).
type Edge = (usize, Dep, usize);

/// A step of a path or cycle: source node, kind, key, target node.
type Step = (usize, Dep, usize, usize);

/// One `Ok` read of a key.
struct Read<'a> {
    /// History index of the transaction.
    txn: usize,
    /// The list seen.
    list: &'a [i64],
    /// Whether it is a prefix of the key's longest list.
    prefix: bool,
}

/// What is known of one key.
#[derive(Default)]
struct Key<'a> {
    /// The `Ok` reads.
    reads: Vec<Read<'a>>,
    /// The longest list read (the first one of that length).
    longest: Option<usize>,
    /// Writers by value: history indices of the transactions that appended it to this key.
    writers: HashMap<i64, Vec<usize>>,
}

impl Key<'_> {
    /// The longest list read, empty when none.
    fn longest(&self) -> &[i64] {
        self.longest.map_or(&[], |r| self.reads[r].list)
    }
}

/// Keys, each numbered once.
#[derive(Default)]
struct Keys<'a> {
    /// Number by name.
    index: HashMap<&'a str, usize>,
    /// Names by number.
    names: Vec<&'a str>,
    /// What is known, by number.
    all: Vec<Key<'a>>,
}

impl<'a> Keys<'a> {
    /// The number of `name`, new if need be.
    fn intern(&mut self, name: &'a str) -> usize {
        if let Some(&k) = self.index.get(name) {
            return k;
        }
        let k = self.all.len();
        self.index.insert(name, k);
        self.names.push(name);
        self.all.push(Key::default());
        k
    }
}

/// Checks a list-append history; see the module documentation.
pub fn check(ops: &[Op<AppendTxn>]) -> Report {
    let started = Instant::now();
    let mut counts = Counts::default();
    let mut anomalies = Vec::new();
    let mut keys = Keys::default();
    let (mut ok_txns, mut failed_txns, mut unknown_txns) = (0u64, 0u64, 0u64);

    for (i, op) in ops.iter().enumerate() {
        match op.outcome {
            Outcome::Ok => ok_txns += 1,
            Outcome::Fail => failed_txns += 1,
            Outcome::Unknown => unknown_txns += 1,
        }
        for m in &op.f.micros {
            match m {
                Micro::Append { key, value } => {
                    let k = keys.intern(key);
                    keys.all[k].writers.entry(*value).or_default().push(i);
                    if op.outcome == Outcome::Ok {
                        counts.acknowledged_writes += 1;
                    }
                }
                Micro::Read {
                    key,
                    value: Some(list),
                } if op.outcome == Outcome::Ok => {
                    let k = keys.intern(key);
                    keys.all[k].reads.push(Read {
                        txn: i,
                        list,
                        prefix: true,
                    });
                }
                Micro::Read { .. } => {}
            }
        }
    }

    // (a) Every list read must be a prefix of the longest.
    for (k, key) in keys.all.iter_mut().enumerate() {
        key.longest =
            (0..key.reads.len()).max_by_key(|&r| (key.reads[r].list.len(), usize::MAX - r));
        let Some(l) = key.longest else { continue };
        let longest = key.reads[l].list;
        let mut bad = Vec::new();
        for r in &mut key.reads {
            r.prefix = longest.starts_with(r.list);
            if !r.prefix {
                bad.push(r.txn);
            }
        }
        if !bad.is_empty() {
            let mut ids = vec![ops[key.reads[l].txn].id];
            ids.extend(bad.iter().take(MAX_LISTED).map(|&t| ops[t].id));
            let example = key
                .reads
                .iter()
                .find(|r| !r.prefix)
                .map_or(&[][..], |r| r.list);
            anomalies.push(Anomaly::new(
                "incompatible-order",
                format!(
                    "key {}: {} read(s) saw a list that is not a prefix of the longest one \
                     (op {}: {}), such as {}",
                    keys.names[k],
                    bad.len(),
                    ops[key.reads[l].txn].id,
                    show_list(longest),
                    show_list(example)
                ),
                ids,
            ));
        }
    }

    // (b) Duplicates: a prefix read has one exactly when it reaches past the first duplicate
    // of the longest list; other reads are looked at one by one.
    for (k, key) in keys.all.iter().enumerate() {
        let longest = key.longest();
        let mut seen = HashSet::with_capacity(longest.len());
        let first_dup = longest.iter().position(|v| !seen.insert(*v));
        let mut values: Vec<i64> = Vec::new();
        let mut readers: Vec<usize> = Vec::new();
        if let Some(p) = first_dup {
            let mut once = HashSet::new();
            for v in longest {
                if !once.insert(*v) && !values.contains(v) {
                    values.push(*v);
                }
            }
            readers.extend(
                key.reads
                    .iter()
                    .filter(|r| r.prefix && r.list.len() > p)
                    .map(|r| r.txn),
            );
        }
        for r in key.reads.iter().filter(|r| !r.prefix) {
            let mut once = HashSet::new();
            let mut dup = false;
            for v in r.list {
                if !once.insert(*v) {
                    dup = true;
                    if !values.contains(v) {
                        values.push(*v);
                    }
                }
            }
            if dup {
                readers.push(r.txn);
            }
        }
        if !values.is_empty() {
            counts.duplicated_writes += values.len() as u64;
            readers.sort_unstable();
            anomalies.push(Anomaly::new(
                "duplicated",
                format!(
                    "key {}: value(s) {values:?} appear more than once in the lists of {} read(s)",
                    keys.names[k],
                    readers.len()
                ),
                readers
                    .iter()
                    .take(MAX_LISTED)
                    .map(|&t| ops[t].id)
                    .collect(),
            ));
        }
    }

    // (c) Values read that no transaction appended, or only a failed one.
    // `observed[k]`: the values of key k some read saw.
    let mut observed: Vec<HashSet<i64>> = Vec::with_capacity(keys.all.len());
    for (k, key) in keys.all.iter().enumerate() {
        let mut seen: HashSet<i64> = key.longest().iter().copied().collect();
        for r in key.reads.iter().filter(|r| !r.prefix) {
            seen.extend(r.list.iter().copied());
        }
        let mut sorted: Vec<i64> = seen.iter().copied().collect();
        sorted.sort_unstable();
        for v in sorted {
            let writers = key.writers.get(&v).map_or(&[][..], Vec::as_slice);
            if writers.iter().any(|&w| ops[w].outcome != Outcome::Fail) {
                continue;
            }
            counts.unexpected_writes += 1;
            let readers: Vec<usize> = key
                .reads
                .iter()
                .filter(|r| r.list.contains(&v))
                .map(|r| r.txn)
                .collect();
            let mut ids: Vec<usize> = writers.iter().map(|&w| ops[w].id).collect();
            ids.extend(readers.iter().take(MAX_LISTED).map(|&t| ops[t].id));
            let (kind, why) = if writers.is_empty() {
                ("unexpected", "that no transaction appended".to_string())
            } else {
                (
                    "G1a",
                    "appended only by failed (aborted) transaction(s)".to_string(),
                )
            };
            anomalies.push(Anomaly::new(
                kind,
                format!(
                    "key {}: value {v} {why} was read by {} transaction(s)",
                    keys.names[k],
                    readers.len()
                ),
                ids,
            ));
        }
        observed.push(seen);
    }

    // (d) Lost: an `Ok` append missing from a final read of its key.
    for (k, key) in keys.all.iter().enumerate() {
        let finals: Vec<(usize, HashSet<i64>)> = key
            .reads
            .iter()
            .filter(|r| ops[r.txn].f.last)
            .map(|r| (r.txn, r.list.iter().copied().collect()))
            .collect();
        if finals.is_empty() {
            continue;
        }
        let mut appended: Vec<(usize, i64)> = key
            .writers
            .iter()
            .flat_map(|(v, ws)| ws.iter().map(move |&w| (w, *v)))
            .filter(|&(w, _)| ops[w].outcome == Outcome::Ok)
            .collect();
        appended.sort_unstable();
        for (w, v) in appended {
            let missing: Vec<usize> = finals
                .iter()
                .filter(|(_, set)| !set.contains(&v))
                .map(|(t, _)| ops[*t].id)
                .collect();
            if missing.is_empty() {
                continue;
            }
            counts.lost_writes += 1;
            let mut ids = vec![ops[w].id];
            ids.extend(missing.iter().take(MAX_LISTED));
            anomalies.push(Anomaly::new(
                "lost",
                format!(
                    "key {}: value {v} appended by acknowledged op {} is missing from {} of {} \
                     final read(s)",
                    keys.names[k],
                    ops[w].id,
                    missing.len(),
                    finals.len()
                ),
                ids,
            ));
        }
    }

    // (e) The dependency graph.
    let mut node_of: Vec<Option<usize>> = vec![None; ops.len()];
    let mut txn_of: Vec<usize> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let member = match op.outcome {
            Outcome::Ok => true,
            Outcome::Fail => false,
            Outcome::Unknown => op.f.micros.iter().any(|m| match m {
                Micro::Append { key, value } => keys
                    .index
                    .get(key.as_str())
                    .is_some_and(|&k| observed[k].contains(value)),
                Micro::Read { .. } => false,
            }),
        };
        if member {
            node_of[i] = Some(txn_of.len());
            txn_of.push(i);
        }
    }
    let n = txn_of.len();
    let mut adj: Vec<Vec<Edge>> = vec![Vec::new(); n];
    let mut edge_counts = [0u64; 4];
    let mut add = |adj: &mut Vec<Vec<Edge>>, a: usize, b: usize, d: Dep, k: usize| {
        if a != b {
            adj[a].push((b, d, k));
            edge_counts[d as usize] += 1;
        }
    };
    for (k, key) in keys.all.iter().enumerate() {
        // The writer of a value, if it is a node (not a failed transaction).
        let writer =
            |v: i64| -> Option<usize> { key.writers.get(&v)?.iter().find_map(|&w| node_of[w]) };
        // The version order: the longest list without repeats (a duplicate is reported
        // above; its second copy adds no order). `distinct[m]`: how many versions the
        // first `m` elements hold.
        let longest = key.longest();
        let mut once = HashSet::with_capacity(longest.len());
        let mut order = Vec::with_capacity(longest.len());
        let mut distinct = Vec::with_capacity(longest.len() + 1);
        distinct.push(0);
        for &v in longest {
            if once.insert(v) {
                order.push(v);
            }
            distinct.push(order.len());
        }
        for pair in order.windows(2) {
            if let (Some(a), Some(b)) = (writer(pair[0]), writer(pair[1])) {
                add(&mut adj, a, b, Dep::Ww, k);
            }
        }
        for r in &key.reads {
            let Some(reader) = node_of[r.txn] else {
                continue;
            };
            if let Some(w) = r.list.last().and_then(|&v| writer(v)) {
                add(&mut adj, w, reader, Dep::Wr, k);
            }
            if r.prefix {
                let next = distinct.get(r.list.len()).and_then(|&d| order.get(d));
                if let Some(w) = next.and_then(|&v| writer(v)) {
                    add(&mut adj, reader, w, Dep::Rw, k);
                }
            }
        }
    }
    // Real time, reduced: when a transaction is invoked it follows the current frontier
    // (completed transactions no completed transaction follows); when one completes it
    // replaces its predecessors in the frontier. Every real-time pair stays connected by a path.
    let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * n);
    for (v, &i) in txn_of.iter().enumerate() {
        events.push((ops[i].invoke_ns, 0, v));
        if ops[i].outcome == Outcome::Ok {
            if let Some(c) = ops[i].complete_ns {
                events.push((c, 1, v));
            }
        }
    }
    events.sort_unstable();
    let mut frontier: Vec<usize> = Vec::new();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (_, kind, v) in events {
        if kind == 0 {
            preds[v] = frontier.clone();
            for &p in &frontier {
                add(&mut adj, p, v, Dep::Rt, 0);
            }
        } else {
            frontier.retain(|p| !preds[v].contains(p));
            frontier.push(v);
        }
    }

    let all_deps = |_: Dep| true;
    let in_graph = vec![true; n];
    let components = sccs(&adj, &all_deps, &in_graph);
    let largest = components.iter().map(Vec::len).max().unwrap_or(0);
    for comp in &components {
        let Some((kind, mut cycle)) = explain(&adj, comp) else {
            continue;
        };
        // Start the cycle at its earliest operation.
        if let Some(start) = (0..cycle.len()).min_by_key(|&e| ops[txn_of[cycle[e].0]].id) {
            cycle.rotate_left(start);
        }
        if kind.ends_with("-realtime") {
            counts.stale_reads += 1;
        }
        let mut steps = Vec::new();
        for &(from, dep, k, _) in &cycle {
            steps.push(format!("op {}", ops[txn_of[from]].id));
            steps.push(match dep {
                Dep::Rt => "-rt->".to_string(),
                _ => format!("-{} {}->", dep.name(), keys.names[k]),
            });
        }
        if let Some(&(first, _, _, _)) = cycle.first() {
            steps.push(format!("op {}", ops[txn_of[first]].id));
        }
        anomalies.push(Anomaly::new(
            &kind,
            format!(
                "cycle of {} transaction(s) in a component of {}: {}",
                cycle.len(),
                comp.len(),
                steps.join(" ")
            ),
            cycle
                .iter()
                .map(|&(from, _, _, _)| ops[txn_of[from]].id)
                .collect(),
        ));
    }

    let details = json!({
        "txns": ops.len(),
        "ok_txns": ok_txns,
        "failed_txns": failed_txns,
        "unknown_txns": unknown_txns,
        "keys": keys.all.len(),
        "graph_nodes": n,
        "edges": {
            "ww": edge_counts[Dep::Ww as usize],
            "wr": edge_counts[Dep::Wr as usize],
            "rw": edge_counts[Dep::Rw as usize],
            "rt": edge_counts[Dep::Rt as usize],
        },
        "cyclic_components": components.len(),
        "largest_component": largest,
        "anomalies_by_kind": anomalies_by_kind(&anomalies),
        "check_ms": started.elapsed().as_secs_f64() * 1000.0,
    });
    Report::from_anomalies(anomalies, counts, details, false)
}

/// A list for a message, shortened when long.
fn show_list(list: &[i64]) -> String {
    if list.len() <= 12 {
        return format!("{list:?}");
    }
    let head: Vec<String> = list[..5].iter().map(i64::to_string).collect();
    let tail: Vec<String> = list[list.len() - 5..].iter().map(i64::to_string).collect();
    format!(
        "[{}, … ({} more), {}]",
        head.join(", "),
        list.len() - 10,
        tail.join(", ")
    )
}

/// The strongly connected components with more than one node (Tarjan, iteratively) of the
/// nodes `scope` keeps, over the edges `allowed` keeps.
fn sccs(adj: &[Vec<Edge>], allowed: &dyn Fn(Dep) -> bool, scope: &[bool]) -> Vec<Vec<usize>> {
    let n = adj.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    let mut next = 0;
    // (node, position in its edge list)
    let mut work: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if !scope[root] || index[root] != usize::MAX {
            continue;
        }
        work.push((root, 0));
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut pos)) = work.last_mut() {
            if let Some(&(w, dep, _)) = adj[v].get(*pos) {
                *pos += 1;
                if !scope[w] || !allowed(dep) {
                    continue;
                }
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort_unstable();
                    out.push(comp);
                }
            }
        }
    }
    out
}

/// A shortest path (breadth first) from `from` to `to` over allowed edges inside `scope`, as
/// edges (source, kind, key, target); a cycle when `from == to`.
fn path(
    adj: &[Vec<Edge>],
    from: usize,
    to: usize,
    allowed: &dyn Fn(Dep) -> bool,
    scope: &[bool],
) -> Option<Vec<Step>> {
    let mut parent: HashMap<usize, (usize, Dep, usize)> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    let mut visited = HashSet::from([from]);
    while let Some(v) = queue.pop_front() {
        for &(w, dep, k) in &adj[v] {
            if !scope[w] || !allowed(dep) {
                continue;
            }
            if w == to {
                let mut edges = vec![(v, dep, k, w)];
                let mut at = v;
                while at != from {
                    let &(p, d, pk) = parent.get(&at)?;
                    edges.push((p, d, pk, at));
                    at = p;
                }
                edges.reverse();
                return Some(edges);
            }
            if visited.insert(w) {
                parent.insert(w, (v, dep, k));
                queue.push_back(w);
            }
        }
    }
    None
}

/// A cycle of `comp` (a strongly connected component of the whole graph) and its kind,
/// trying the least severe kinds first, and cycles without real-time edges first.
fn explain(adj: &[Vec<Edge>], comp: &[usize]) -> Option<(String, Vec<Step>)> {
    let mut scope = vec![false; adj.len()];
    for &v in comp {
        scope[v] = true;
    }
    for realtime in [false, true] {
        let suffix = if realtime { "-realtime" } else { "" };
        let rt = move |d: Dep| realtime && d == Dep::Rt;
        // G0, then G1c: a cycle within a sub-component of the allowed edges.
        let g0 = move |d: Dep| d == Dep::Ww || rt(d);
        let g1 = move |d: Dep| d == Dep::Ww || d == Dep::Wr || rt(d);
        for (name, allowed) in [("G0", &g0 as &dyn Fn(Dep) -> bool), ("G1c", &g1)] {
            if let Some(sub) = sccs(adj, allowed, &scope).first() {
                let mut in_sub = vec![false; adj.len()];
                for &v in sub {
                    in_sub[v] = true;
                }
                if let Some(cycle) = path(adj, sub[0], sub[0], allowed, &in_sub) {
                    return Some((format!("{}{suffix}", name), cycle));
                }
            }
        }
        // G-single: one rw edge a → b, and a path b ⇝ a without rw.
        let subs = sccs(adj, &g1, &scope);
        let mut sub_of = vec![usize::MAX; adj.len()];
        for (s, sub) in subs.iter().enumerate() {
            for &v in sub {
                sub_of[v] = s;
            }
        }
        let rws: Vec<(usize, usize, usize)> = comp
            .iter()
            .flat_map(|&a| {
                adj[a]
                    .iter()
                    .filter(|&&(b, d, _)| d == Dep::Rw && scope[b])
                    .map(move |&(b, _, k)| (a, b, k))
            })
            .collect();
        // Cheap first: both ends in one component of the other edges; else searches of
        // their own, up to a limit.
        let candidates = rws
            .iter()
            .filter(|(a, b, _)| sub_of[*a] != usize::MAX && sub_of[*a] == sub_of[*b])
            .take(1)
            .chain(rws.iter().take(MAX_SINGLE_RW_SEARCHES));
        for &(a, b, k) in candidates {
            if let Some(back) = path(adj, b, a, &g1, &scope) {
                let mut cycle = vec![(a, Dep::Rw, k, b)];
                cycle.extend(back);
                return Some((format!("G-single{suffix}"), cycle));
            }
        }
        // G2: any cycle with rw edges.
        let g2 = move |d: Dep| d != Dep::Rt || rt(d);
        if let Some(sub) = sccs(adj, &g2, &scope).first() {
            let mut in_sub = vec![false; adj.len()];
            for &v in sub {
                in_sub[v] = true;
            }
            if let Some(cycle) = path(adj, sub[0], sub[0], &g2, &in_sub) {
                let rw = cycle.iter().filter(|e| e.1 == Dep::Rw).count();
                let name = if rw == 1 { "G-single" } else { "G2" };
                return Some((format!("{name}{suffix}"), cycle));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Verdict;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Builds histories txn by txn, ids in order.
    #[derive(Default)]
    struct H(Vec<Op<AppendTxn>>);

    /// A read micro.
    fn r(key: &str, list: &[i64]) -> Micro {
        Micro::Read {
            key: key.into(),
            value: Some(list.to_vec()),
        }
    }

    /// An append micro.
    fn a(key: &str, value: i64) -> Micro {
        Micro::Append {
            key: key.into(),
            value,
        }
    }

    impl H {
        fn txn(&mut self, inv: u64, comp: u64, outcome: Outcome, micros: Vec<Micro>) -> usize {
            self.push(inv, comp, outcome, micros, false)
        }
        fn push(
            &mut self,
            inv: u64,
            comp: u64,
            outcome: Outcome,
            micros: Vec<Micro>,
            last: bool,
        ) -> usize {
            let id = self.0.len();
            let micros = if outcome == Outcome::Ok {
                micros
            } else {
                micros
                    .into_iter()
                    .map(|m| match m {
                        Micro::Read { key, .. } => Micro::Read { key, value: None },
                        m => m,
                    })
                    .collect()
            };
            self.0.push(Op {
                id,
                process: id as u64,
                member: 0,
                invoke_ns: inv,
                complete_ns: (outcome != Outcome::Unknown).then_some(comp),
                outcome,
                f: AppendTxn { micros, last },
                error: None,
            });
            id
        }
    }

    fn kinds(r: &Report) -> Vec<&str> {
        r.anomalies.iter().map(|a| a.kind.as_str()).collect()
    }

    #[test]
    fn valid_serial_history() {
        let mut h = H::default();
        h.txn(0, 10, Outcome::Ok, vec![r("x", &[]), a("x", 1), a("y", 2)]);
        h.txn(20, 30, Outcome::Ok, vec![r("x", &[1]), a("x", 3)]);
        h.txn(25, 35, Outcome::Fail, vec![r("y", &[]), a("y", 4)]);
        h.txn(40, 50, Outcome::Unknown, vec![a("y", 5)]);
        h.txn(60, 70, Outcome::Unknown, vec![a("x", 6)]);
        h.txn(80, 90, Outcome::Ok, vec![r("y", &[2, 5]), r("x", &[1, 3])]);
        h.push(
            100,
            110,
            Outcome::Ok,
            vec![r("x", &[1, 3]), r("y", &[2, 5])],
            true,
        );
        let rep = check(&h.0);
        assert_eq!(rep.verdict, Verdict::Valid, "{:?}", rep.anomalies);
        assert_eq!(rep.counts.acknowledged_writes, 3);
    }

    #[test]
    fn incompatible_order() {
        let mut h = H::default();
        h.txn(0, 100, Outcome::Ok, vec![a("x", 1)]);
        h.txn(0, 100, Outcome::Ok, vec![a("x", 2)]);
        let long = h.txn(0, 100, Outcome::Ok, vec![r("x", &[1, 2])]);
        let odd = h.txn(0, 100, Outcome::Ok, vec![r("x", &[2])]);
        let rep = check(&h.0);
        assert_eq!(kinds(&rep), vec!["incompatible-order"]);
        assert_eq!(rep.anomalies[0].ops, vec![long, odd]);
    }

    #[test]
    fn duplicated_value() {
        let mut h = H::default();
        h.txn(0, 100, Outcome::Ok, vec![a("x", 1)]);
        let rd = h.txn(0, 100, Outcome::Ok, vec![r("x", &[1, 1])]);
        h.txn(0, 100, Outcome::Ok, vec![r("x", &[1])]);
        let rep = check(&h.0);
        assert_eq!(kinds(&rep), vec!["duplicated"]);
        assert_eq!(rep.anomalies[0].ops, vec![rd]);
        assert_eq!(rep.counts.duplicated_writes, 1);
    }

    #[test]
    fn unexpected_and_aborted_reads() {
        let mut h = H::default();
        let f = h.txn(0, 10, Outcome::Fail, vec![a("x", 1)]);
        let rd = h.txn(20, 30, Outcome::Ok, vec![r("x", &[1]), r("y", &[9])]);
        let rep = check(&h.0);
        assert_eq!(kinds(&rep), vec!["G1a", "unexpected"]);
        assert_eq!(rep.anomalies[0].ops, vec![f, rd]);
        assert_eq!(rep.anomalies[1].ops, vec![rd]);
        assert_eq!(rep.counts.unexpected_writes, 2);
    }

    #[test]
    fn lost_append() {
        let mut h = H::default();
        let w = h.txn(0, 100, Outcome::Ok, vec![a("x", 1)]);
        h.txn(0, 100, Outcome::Unknown, vec![a("x", 2)]);
        let last = h.push(50, 150, Outcome::Ok, vec![r("x", &[])], true);
        let rep = check(&h.0);
        assert_eq!(kinds(&rep), vec!["lost"]);
        assert_eq!(rep.anomalies[0].ops, vec![w, last]);
        assert_eq!(rep.counts.lost_writes, 1);
        // Read after the append completed: lost, and a stale read too.
        let mut h = H::default();
        h.txn(0, 10, Outcome::Ok, vec![a("x", 1)]);
        h.txn(0, 100, Outcome::Ok, vec![r("x", &[1])]);
        h.push(50, 150, Outcome::Ok, vec![r("x", &[])], true);
        let rep = check(&h.0);
        assert_eq!(kinds(&rep), vec!["G-single-realtime", "lost"]);
        assert_eq!(rep.counts.stale_reads, 1);
    }

    #[test]
    fn g0_write_cycle() {
        let mut h = H::default();
        let t1 = h.txn(0, 100, Outcome::Ok, vec![a("x", 1), a("y", 1)]);
        let t2 = h.txn(0, 100, Outcome::Ok, vec![a("x", 2), a("y", 2)]);
        h.txn(0, 100, Outcome::Ok, vec![r("x", &[1, 2])]);
        h.txn(0, 100, Outcome::Ok, vec![r("y", &[2, 1])]);
        let rep = check(&h.0);
        assert_eq!(kinds(&rep), vec!["G0"]);
        assert_eq!(rep.anomalies[0].ops, vec![t1, t2]);
    }

    #[test]
    fn g1c_circular_information_flow() {
        let mut h = H::default();
        let t1 = h.txn(0, 100, Outcome::Ok, vec![a("x", 1), r("y", &[2])]);
        let t2 = h.txn(0, 100, Outcome::Ok, vec![a("y", 2), r("x", &[1])]);
        let rep = check(&h.0);
        assert_eq!(kinds(&rep), vec!["G1c"]);
        assert_eq!(rep.anomalies[0].ops, vec![t1, t2]);
    }

    #[test]
    fn g_single_read_skew() {
        let mut h = H::default();
        let t1 = h.txn(0, 100, Outcome::Ok, vec![r("x", &[]), r("y", &[2])]);
        let t2 = h.txn(0, 100, Outcome::Ok, vec![a("x", 1), a("y", 2)]);
        h.txn(0, 100, Outcome::Ok, vec![r("x", &[1])]);
        let rep = check(&h.0);
        assert_eq!(kinds(&rep), vec!["G-single"]);
        assert_eq!(rep.anomalies[0].ops, vec![t1, t2]);
        assert_eq!(rep.counts.stale_reads, 0);
    }

    #[test]
    fn g2_write_skew() {
        let mut h = H::default();
        h.txn(0, 100, Outcome::Ok, vec![r("x", &[]), a("y", 1)]);
        h.txn(0, 100, Outcome::Ok, vec![r("y", &[]), a("x", 2)]);
        h.txn(200, 300, Outcome::Ok, vec![r("x", &[2]), r("y", &[1])]);
        let rep = check(&h.0);
        assert_eq!(kinds(&rep), vec!["G2"]);
    }

    #[test]
    fn stale_read_is_g_single_realtime() {
        let mut h = H::default();
        let w = h.txn(0, 10, Outcome::Ok, vec![a("x", 1)]);
        let rd = h.txn(20, 30, Outcome::Ok, vec![r("x", &[])]);
        h.txn(40, 50, Outcome::Ok, vec![r("x", &[1])]);
        let rep = check(&h.0);
        assert_eq!(kinds(&rep), vec!["G-single-realtime"]);
        assert_eq!(rep.anomalies[0].ops, vec![w, rd]);
        assert_eq!(rep.counts.stale_reads, 1);
    }

    #[test]
    fn unknown_append_seen_before_its_invocation() {
        let mut h = H::default();
        h.txn(0, 5, Outcome::Ok, vec![r("x", &[1])]);
        h.txn(10, 0, Outcome::Unknown, vec![a("x", 1)]);
        let rep = check(&h.0);
        assert_eq!(kinds(&rep), vec!["G1c-realtime"]);
        // Seen after it: fine.
        let mut h = H::default();
        h.txn(10, 0, Outcome::Unknown, vec![a("x", 1)]);
        h.txn(20, 25, Outcome::Ok, vec![r("x", &[1])]);
        assert_eq!(check(&h.0).verdict, Verdict::Valid);
    }

    /// A strictly serializable history: `procs` clients, transactions of three micros over
    /// `nkeys` keys, each taking effect at once at a random instant of its interval.
    fn simulated(rng: &mut StdRng, procs: usize, n: usize, nkeys: usize) -> Vec<Op<AppendTxn>> {
        let mut clock = vec![0u64; procs];
        let mut plan = Vec::new();
        for i in 0..n {
            let p = i % procs;
            let inv = clock[p] + rng.random_range(0..20);
            let comp = inv + rng.random_range(5..200);
            clock[p] = comp;
            plan.push((inv, comp, rng.random_range(inv..=comp)));
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| plan[i].2);
        let mut lists: Vec<Vec<i64>> = vec![Vec::new(); nkeys];
        let mut txns: Vec<Option<Op<AppendTxn>>> = vec![None; n];
        let mut next = 0;
        for i in order {
            let mut micros = Vec::new();
            let mut ks: Vec<usize> = Vec::new();
            while ks.len() < 3 {
                let k = rng.random_range(0..nkeys);
                if !ks.contains(&k) {
                    ks.push(k);
                }
            }
            for k in ks {
                let key = format!("l-{k}/user.v");
                if rng.random_bool(0.5) {
                    micros.push(Micro::Read {
                        key,
                        value: Some(lists[k].clone()),
                    });
                } else {
                    next += 1;
                    lists[k].push(next);
                    micros.push(Micro::Append { key, value: next });
                }
            }
            txns[i] = Some(Op {
                id: i,
                process: (i % procs) as u64,
                member: i % procs / 2,
                invoke_ns: plan[i].0,
                complete_ns: Some(plan[i].1),
                outcome: Outcome::Ok,
                f: AppendTxn {
                    micros,
                    last: false,
                },
                error: None,
            });
        }
        let mut ops: Vec<Op<AppendTxn>> = txns.into_iter().flatten().collect();
        ops.sort_by_key(|o| o.invoke_ns);
        for (id, o) in ops.iter_mut().enumerate() {
            o.id = id;
        }
        ops
    }

    #[test]
    fn perf_3000_txns() {
        let mut rng = StdRng::seed_from_u64(5);
        let h = simulated(&mut rng, 10, 3000, 30);
        let t = Instant::now();
        let rep = check(&h);
        let took = t.elapsed();
        println!(
            "append: 3000 txns of 3 micros over 30 keys checked in {took:?}: {}",
            rep.details
        );
        assert_eq!(rep.verdict, Verdict::Valid, "{:?}", rep.anomalies);
        assert!(took.as_secs_f64() < 5.0);
        // The same history with one read made stale is caught.
        let mut bad = h.clone();
        let victim = bad
            .iter_mut()
            .skip(1500)
            .find_map(|o| {
                o.f.micros.iter_mut().find_map(|m| match m {
                    Micro::Read { value: Some(l), .. } if l.len() > 3 => Some(l),
                    _ => None,
                })
            })
            .map(|l| l.truncate(l.len() - 3));
        assert!(victim.is_some());
        let t = Instant::now();
        let rep = check(&bad);
        println!(
            "append: with one stale read, checked in {:?}: {:?}",
            t.elapsed(),
            kinds(&rep)
        );
        assert_eq!(rep.verdict, Verdict::Invalid);
    }

    #[test]
    fn perf_3000_txns_many_stale_reads() {
        let mut rng = StdRng::seed_from_u64(6);
        let mut h = simulated(&mut rng, 10, 3000, 30);
        // One read in ten misses its last two elements.
        let mut stale = 0;
        for o in &mut h {
            for m in &mut o.f.micros {
                if let Micro::Read { value: Some(l), .. } = m {
                    if l.len() > 2 && rng.random_bool(0.1) {
                        l.truncate(l.len() - 2);
                        stale += 1;
                    }
                }
            }
        }
        let t = Instant::now();
        let rep = check(&h);
        let took = t.elapsed();
        println!(
            "append: 3000 txns, {stale} stale reads, checked in {took:?}: {}",
            rep.details
        );
        assert_eq!(rep.verdict, Verdict::Invalid);
        assert!(took.as_secs_f64() < 5.0);
    }
}
