//! `GET /1.0/metrics` (LXD's `metrics` extension): this member's series in Prometheus' text
//! format 0.0.4, as LXD serves them. For trusted clients with full rights, members and
//! certificates of type `metrics`.
//!
//! rxd runs no instances yet, so LXD's instance series are absent; what it shows instead is
//! what LXD does not: the cluster database (raft term, indexes, leader changes, proposal
//! latency, snapshots), heartbeats, members by status and role, API requests by endpoint and
//! code, operations, and the process. Each scrape reads them afresh; every member is scraped
//! on its own, as with LXD.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rxd_raft::stats::{Histogram, HistogramView, LATENCY_BUCKETS};

use crate::error::ApiResult;
use crate::Daemon;

/// The content type of Prometheus' text format.
pub const CONTENT: &str = "text/plain; version=0.0.4";

/// API requests answered by this member: counts by method, endpoint and status code, and
/// latency by method and endpoint.
#[derive(Default)]
pub struct ApiStats {
    endpoints: Mutex<BTreeMap<(String, String), EndpointStats>>,
}

struct EndpointStats {
    codes: BTreeMap<u16, u64>,
    latency: Histogram,
}

impl ApiStats {
    fn record(&self, method: &str, endpoint: &str, code: u16, took: Duration) {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        let e = endpoints
            .entry((method.to_string(), endpoint.to_string()))
            .or_insert_with(|| EndpointStats {
                codes: BTreeMap::new(),
                latency: Histogram::new(LATENCY_BUCKETS),
            });
        *e.codes.entry(code).or_default() += 1;
        e.latency.observe(took);
    }

    /// (method, endpoint, code counts, latency) for each endpoint called so far.
    fn view(&self) -> Vec<(String, String, BTreeMap<u16, u64>, HistogramView)> {
        let endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        endpoints
            .iter()
            .map(|((m, p), e)| (m.clone(), p.clone(), e.codes.clone(), e.latency.view()))
            .collect()
    }
}

/// Middleware: counts every request to a known endpoint (refused ones included), under the
/// endpoint's pattern, never its concrete path, so names do not become series.
pub async fn count(State(d): State<std::sync::Arc<Daemon>>, req: Request, next: Next) -> Response {
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    d.api_stats.record(
        &method,
        &endpoint,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// `GET /1.0/metrics`.
pub async fn metrics_get(State(d): State<std::sync::Arc<Daemon>>) -> ApiResult<Response> {
    let text = render(&d).await?;
    Ok(([(CONTENT_TYPE, CONTENT)], text).into_response())
}

/// Prometheus' text format, written one family at a time.
#[derive(Default)]
pub struct Text(String);

impl Text {
    /// Starts a family: its `HELP` and `TYPE` lines.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    /// One sample of the family started last (or of its `_bucket`, `_sum`, `_count`).
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.0, "{k}=\"{v}\"");
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {}", number(value));
    }

    /// A family of one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// The samples of a histogram with `labels`, under a family started already.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramView) {
        for (bound, count) in &h.buckets {
            let le = number(*bound);
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&format!("{name}_bucket"), &with_le, *count as f64);
        }
        self.sample(&format!("{name}_sum"), labels, h.sum);
        self.sample(&format!("{name}_count"), labels, h.count as f64);
    }

    /// The text.
    pub fn finish(self) -> String {
        self.0
    }
}

/// A sample value as Prometheus writes it.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

async fn render(d: &Daemon) -> ApiResult<String> {
    let mut t = Text::default();
    t.single(
        "lxd_uptime_seconds",
        "gauge",
        "The daemon uptime in seconds.",
        d.started.elapsed().as_secs_f64(),
    );
    database(d, &mut t);
    members(d, &mut t).await?;
    api(d, &mut t);
    operations(d, &mut t);
    process(&mut t);
    Ok(t.finish())
}

fn database(d: &Daemon, t: &mut Text) {
    let db = d.db();
    let s = db.stats();
    let status = db.status();
    t.single(
        "rxd_raft_term",
        "gauge",
        "The current raft term.",
        s.term as f64,
    );
    t.family(
        "rxd_raft_role",
        "gauge",
        "This member's raft role: 1 for the role it has now.",
    );
    for role in ["leader", "follower", "candidate", "learner", "shutdown"] {
        let now = format!("{:?}", status.role).to_lowercase() == role;
        t.sample("rxd_raft_role", &[("role", role)], f64::from(u8::from(now)));
    }
    t.single(
        "rxd_raft_last_log_index",
        "gauge",
        "The last index in this member's raft log.",
        s.last_log_index as f64,
    );
    if let Some(commit) = s.commit_index {
        t.single(
            "rxd_raft_commit_index",
            "gauge",
            "The index a majority of voters hold (on the leader only).",
            commit as f64,
        );
    }
    t.single(
        "rxd_raft_applied_index",
        "gauge",
        "The last index this member applied to its replica.",
        s.applied_index as f64,
    );
    t.single(
        "rxd_raft_snapshot_index",
        "gauge",
        "The index this member's latest snapshot covers.",
        s.snapshot_index as f64,
    );
    t.single(
        "rxd_raft_leader_changes_total",
        "counter",
        "Times this member saw the leader change since the database opened.",
        s.leader_changes as f64,
    );
    t.single(
        "rxd_raft_snapshots_total",
        "counter",
        "Snapshots this member built or installed since the database opened.",
        s.snapshots as f64,
    );
    let snapshot = d.dir.join("database").join("global").join("snapshot.db");
    t.single(
        "rxd_raft_snapshot_size_bytes",
        "gauge",
        "The size of this member's latest snapshot.",
        std::fs::metadata(snapshot).map(|m| m.len()).unwrap_or(0) as f64,
    );
    t.family(
        "rxd_raft_proposal_duration_seconds",
        "histogram",
        "How long the cluster database writes made through this member took to commit.",
    );
    t.histogram("rxd_raft_proposal_duration_seconds", &[], &s.proposals);
    t.single(
        "rxd_raft_proposals_failed_total",
        "counter",
        "Cluster database writes made through this member that did not commit.",
        s.proposals_failed as f64,
    );
    let (rounds, last) = d.membership.rounds.view();
    t.single(
        "rxd_heartbeat_rounds_total",
        "counter",
        "Heartbeat rounds this member sent as the leader.",
        rounds as f64,
    );
    t.single(
        "rxd_heartbeat_round_duration_seconds",
        "gauge",
        "How long the last heartbeat round took, from the first send to the last answer.",
        last.as_secs_f64(),
    );
}

/// Members by status and by role, as this member's replica and liveness view have them.
async fn members(d: &Daemon, t: &mut Text) -> ApiResult<()> {
    let members = crate::handlers::cluster_members::local_view(d).await?;
    let mut by_status: BTreeMap<String, u64> = ["Online", "Offline", "Evacuated"]
        .iter()
        .map(|s| (s.to_string(), 0))
        .collect();
    let mut by_role: BTreeMap<String, u64> = ["database", "database-leader", "database-standby"]
        .iter()
        .map(|s| (s.to_string(), 0))
        .collect();
    for m in &members {
        *by_status.entry(m.status.clone()).or_default() += 1;
        for r in &m.put.roles {
            *by_role.entry(r.clone()).or_default() += 1;
        }
    }
    t.family(
        "rxd_cluster_members",
        "gauge",
        "Cluster members by status (none on a standalone server).",
    );
    for (status, n) in &by_status {
        t.sample("rxd_cluster_members", &[("status", status)], *n as f64);
    }
    t.family(
        "rxd_cluster_member_roles",
        "gauge",
        "Cluster members holding each role.",
    );
    for (role, n) in &by_role {
        t.sample("rxd_cluster_member_roles", &[("role", role)], *n as f64);
    }
    Ok(())
}

fn api(d: &Daemon, t: &mut Text) {
    let endpoints = d.api_stats.view();
    t.family(
        "rxd_api_requests_total",
        "counter",
        "API requests this member answered, by method, endpoint and status code.",
    );
    for (method, endpoint, codes, _) in &endpoints {
        for (code, n) in codes {
            let code = code.to_string();
            t.sample(
                "rxd_api_requests_total",
                &[("method", method), ("endpoint", endpoint), ("code", &code)],
                *n as f64,
            );
        }
    }
    t.family(
        "rxd_api_request_duration_seconds",
        "histogram",
        "How long this member took to answer API requests, by method and endpoint.",
    );
    for (method, endpoint, _, latency) in &endpoints {
        t.histogram(
            "rxd_api_request_duration_seconds",
            &[("method", method), ("endpoint", endpoint)],
            latency,
        );
    }
}

fn operations(d: &Daemon, t: &mut Text) {
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for op in d.ops.list() {
        *counts
            .entry((op.class.clone(), op.status.clone()))
            .or_default() += 1;
    }
    t.family(
        "lxd_operations_total",
        "gauge",
        "Operations this member holds, by class and status.",
    );
    for ((class, status), n) in &counts {
        t.sample(
            "lxd_operations_total",
            &[("class", class), ("status", status)],
            *n as f64,
        );
    }
}

/// The process series Prometheus' client libraries export under these names.
fn process(t: &mut Text) {
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|t| *t > 0)
        .unwrap_or(100) as f64;
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // The fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let field = |n: usize| fields.get(n).and_then(|v| v.parse::<f64>().ok());
        // utime and stime are fields 14 and 15 of stat(5): 11 and 12 after the name.
        if let (Some(user), Some(system)) = (field(11), field(12)) {
            t.single(
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
                (user + system) / ticks,
            );
        }
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        };
        if let Some(rss) = kib("VmRSS:") {
            t.single(
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                rss * 1024.0,
            );
        }
        if let Some(virt) = kib("VmSize:") {
            t.single(
                "process_virtual_memory_bytes",
                "gauge",
                "Virtual memory size in bytes.",
                virt * 1024.0,
            );
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        t.single(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            fds.count() as f64,
        );
    }
    if let Ok(limits) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        t.single(
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            limits.0 as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_written_as_prometheus_reads_them() {
        let mut t = Text::default();
        t.family("x_total", "counter", "A help text\\with a backslash.");
        t.sample("x_total", &[("path", "/a\"b\\c\nd")], 3.0);
        t.sample("x_total", &[], 0.5);
        let h = Histogram::new(&[0.1]);
        h.observe(Duration::from_millis(50));
        t.family("y_seconds", "histogram", "Latency.");
        t.histogram("y_seconds", &[("m", "GET")], &h.view());
        assert_eq!(
            t.finish(),
            "# HELP x_total A help text\\\\with a backslash.\n\
             # TYPE x_total counter\n\
             x_total{path=\"/a\\\"b\\\\c\\nd\"} 3\n\
             x_total 0.5\n\
             # HELP y_seconds Latency.\n\
             # TYPE y_seconds histogram\n\
             y_seconds_bucket{m=\"GET\",le=\"0.1\"} 1\n\
             y_seconds_bucket{m=\"GET\",le=\"+Inf\"} 1\n\
             y_seconds_sum{m=\"GET\"} 0.05\n\
             y_seconds_count{m=\"GET\"} 1\n"
        );
    }
}
