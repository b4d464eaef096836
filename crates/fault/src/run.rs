//! One run: form a cluster, drive one workload while the nemesis works through its plan, heal,
//! check, and write everything under `<out>/<run-id>/`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::{json, Value};

use crate::check::{self, Anomaly, Counts, Report, Verdict};
use crate::cluster::{Cluster, Mode, ProcState};
use crate::history::{Op, Outcome};
use crate::nemesis::{self, Nemesis, Record};
use crate::workload::{self, Shared, Workload};

/// What one run does.
#[derive(Debug, Clone, Serialize)]
pub struct RunOptions {
    /// The workload.
    pub workload: Workload,
    /// The nemesis mix.
    pub nemesis: Vec<Nemesis>,
    /// Seed of every random choice.
    pub seed: u64,
    /// Members formed at the start (a spare slot is added for growth).
    pub members: usize,
    /// Seconds of faults.
    pub fault_secs: u64,
    /// Where run directories go.
    pub out: PathBuf,
    /// Loopback instead of namespaces (forced when namespaces are not available).
    pub loopback: bool,
    /// Third octet of the loopback addresses.
    pub loopback_net: u8,
    /// Deliberate bugs to switch on in the daemons (`RXD_FAULT_SWITCHES`).
    pub switches: Vec<String>,
    /// Keep the run directory even when the run passes.
    pub keep: bool,
    /// The `rxd` binary.
    pub rxd: PathBuf,
}

impl RunOptions {
    /// A quick-profile run (5 members, the quick fault window, namespaces when root) with its
    /// directory in `target/fault-runs` and the `rxd` built beside this executable, as the
    /// suite's tests make them.
    pub fn quick(workload: Workload, nemesis: Vec<Nemesis>, seed: u64) -> RunOptions {
        let exe = std::env::current_exe().unwrap_or_default();
        // target/debug/deps/<test> or target/debug/rxd-fault -> target
        let target = exe
            .ancestors()
            .find(|p| p.file_name().is_some_and(|n| n == "target"))
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("target"));
        RunOptions {
            workload,
            nemesis,
            seed,
            members: crate::profile::Profile::Quick.members(),
            fault_secs: crate::profile::Profile::Quick.fault_secs(),
            out: target.join("fault-runs"),
            loopback: false,
            loopback_net: 140,
            switches: Vec::new(),
            keep: false,
            rxd: default_rxd(),
        }
    }
}

/// The per-run summary that `results.json` holds and `run-all` adds up.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The run directory name.
    pub run_id: String,
    /// valid, invalid or unknown.
    pub verdict: Verdict,
    /// The workload.
    pub workload: Workload,
    /// The mix.
    pub nemesis: Vec<Nemesis>,
    /// The seed.
    pub seed: u64,
    /// Faults installed.
    pub faults_injected: u64,
    /// By type: installed, skipped, indeterminate.
    pub faults_by_type: BTreeMap<String, BTreeMap<String, u64>>,
    /// Operations that ended ok, failed, unknown.
    pub ops_ok: u64,
    /// Failed.
    pub ops_failed: u64,
    /// Unknown.
    pub ops_unknown: u64,
    /// The checker's counts.
    pub counts: Counts,
    /// Anomalies (history, convergence, liveness, logs).
    pub anomalies: Vec<Anomaly>,
    /// Why the run is not valid, if it is not.
    pub invalid_run: Vec<String>,
    /// Longest stretch without an acknowledged operation after a fault began, by type, s.
    pub max_unavailability_s: BTreeMap<String, f64>,
    /// Seconds from heal to every member healthy.
    pub convergence_s: f64,
    /// Acknowledged operations per second.
    pub op_rate: f64,
    /// The checker's own figures.
    pub checker: Value,
    /// Wall time of the whole run, s.
    pub elapsed_s: f64,
    /// Panics found in member logs.
    pub panics: u64,
}

/// Error lines a member may log under faults: peers that cannot be reached, requests that
/// time out, elections. Anything else at ERROR is reported.
const ALLOWED_ERRORS: &[&str] = &[
    "connect",
    "Connection refused",
    "timed out",
    "timeout",
    "unreachable",
    "No cluster leader",
    "not the cluster leader",
    "quorum",
    "heartbeat",
    "shutting down",
    "broken pipe",
    "reset by peer",
    "error sending request",
    "Network",
    "network",
];

/// Finds the `rxd` binary beside this executable (or one directory up, for test binaries).
pub fn default_rxd() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    for d in [
        dir.clone(),
        dir.parent().map(Path::to_path_buf).unwrap_or_default(),
    ] {
        if d.join("rxd").exists() {
            return d.join("rxd");
        }
    }
    dir.join("rxd")
}

fn short_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{:06x}",
        (nanos ^ u128::from(std::process::id())) & 0xff_ffff
    )
}

fn tuning() -> String {
    "heartbeat_ms=100,election_min_ms=400,election_max_ms=800,request_timeout_ms=4000,snapshot_after=100,keep=50,offline_threshold_min=2".into()
}

impl RunSummary {
    /// One line for a failed assertion: the verdict, why the run was not valid, and the first
    /// anomaly.
    pub fn explain(&self) -> String {
        format!(
            "run {} is {:?}: {:?} {:?}",
            self.run_id,
            self.verdict,
            self.invalid_run,
            self.anomalies.first()
        )
    }
}

/// [`run`], then prints the run's row of the table on stderr.
pub async fn run_and_print(opts: &RunOptions) -> Result<RunSummary> {
    let summary = run(opts).await?;
    eprintln!("{}", crate::profile::table(std::slice::from_ref(&summary)));
    Ok(summary)
}

/// Runs once and returns the summary (the run directory holds the rest).
pub async fn run(opts: &RunOptions) -> Result<RunSummary> {
    let limit = Duration::from_secs(3 * (opts.fault_secs + 120));
    let id = short_id();
    let mix: Vec<&str> = opts.nemesis.iter().map(|n| n.name()).collect();
    let run_id = format!(
        "{id}-{}-{}-s{}",
        serde_json::to_value(opts.workload)?.as_str().unwrap_or("w"),
        mix.join("+"),
        opts.seed
    );
    let dir = opts.out.join(&run_id);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot make {}", dir.display()))?;
    crate::cluster::sweep_leftovers();
    let mode = if opts.loopback || !crate::net::available() {
        Mode::Loopback {
            third: opts.loopback_net,
        }
    } else {
        Mode::Namespaces
    };
    write_json(
        &dir.join("test.json"),
        &json!({
            "options": opts,
            "mode": format!("{mode:?}"),
            "seed": opts.seed,
            "commit": commit(),
            "tuning": tuning(),
        }),
    )?;
    let mut env = vec![("RXD_RAFT_TUNING".to_string(), tuning())];
    if !opts.switches.is_empty() {
        env.push(("RXD_FAULT_SWITCHES".into(), opts.switches.join(",")));
    }
    let mut cluster = Cluster::new(&id, &dir, opts.members + 1, &mode, opts.rxd.clone(), env)?;
    let started = Instant::now();
    let outcome =
        tokio::time::timeout(limit, drive(opts, &mut cluster, &dir, &run_id, &mode)).await;
    cluster.kill_all();
    let mut summary = match outcome {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => failed_summary(opts, &run_id, format!("harness error: {e:#}")),
        Err(_) => failed_summary(
            opts,
            &run_id,
            format!("the watchdog stopped the run after {} s", limit.as_secs()),
        ),
    };
    summary.elapsed_s = started.elapsed().as_secs_f64();
    write_json(&dir.join("results.json"), &summary)?;
    write_repro(&dir, opts)?;
    if summary.verdict != Verdict::Valid {
        print_failure(&dir, &summary, &cluster);
    } else if !opts.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(summary)
}

fn failed_summary(opts: &RunOptions, run_id: &str, why: String) -> RunSummary {
    RunSummary {
        run_id: run_id.to_string(),
        verdict: Verdict::Unknown,
        workload: opts.workload,
        nemesis: opts.nemesis.clone(),
        seed: opts.seed,
        faults_injected: 0,
        faults_by_type: BTreeMap::new(),
        ops_ok: 0,
        ops_failed: 0,
        ops_unknown: 0,
        counts: Counts::default(),
        anomalies: Vec::new(),
        invalid_run: vec![why],
        max_unavailability_s: BTreeMap::new(),
        convergence_s: 0.0,
        op_rate: 0.0,
        checker: Value::Null,
        elapsed_s: 0.0,
        panics: 0,
    }
}

fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}

fn write_repro(dir: &Path, opts: &RunOptions) -> Result<()> {
    let mix: Vec<&str> = opts.nemesis.iter().map(|n| n.name()).collect();
    let wl = serde_json::to_value(opts.workload)?;
    let mut cmd = format!(
        "cargo build --workspace && cargo build -p rxd-daemon --features fault-injection --bins && target/debug/rxd-fault run --workload {} --nemesis {} --seed {} --members {} --fault-secs {}",
        wl.as_str().unwrap_or_default(),
        mix.join(","),
        opts.seed,
        opts.members,
        opts.fault_secs
    );
    for s in &opts.switches {
        cmd.push_str(&format!(" --switch {s}"));
    }
    if opts.loopback {
        cmd.push_str(" --loopback");
    }
    let path = dir.join("repro.sh");
    std::fs::write(
        &path,
        format!("#!/bin/sh\n# Repeats this run's choices (not its timing).\n{cmd}\n"),
    )?;
    Ok(())
}

async fn drive(
    opts: &RunOptions,
    cluster: &mut Cluster,
    dir: &Path,
    run_id: &str,
    mode: &Mode,
) -> Result<RunSummary> {
    let mut invalid = Vec::new();
    if *mode != Mode::Namespaces {
        for n in &opts.nemesis {
            if n.needs_network() {
                invalid.push(format!("{} needs network namespaces (root)", n.name()));
            }
        }
    }
    if opts.nemesis.contains(&Nemesis::DiskFull) {
        if *mode == Mode::Namespaces {
            cluster
                .small_disks(256)
                .context("data directories on tmpfs")?;
        } else {
            invalid.push("disk-full needs root (tmpfs data directories)".into());
        }
    }
    // Form the cluster.
    cluster.bootstrap(0).await.context(
        "bootstrap (rxd must be built with the fault-injection feature: cargo build --workspace && cargo build -p rxd-daemon --features fault-injection --bins)",
    )?;
    for i in 1..opts.members {
        cluster
            .join(i, 0)
            .await
            .with_context(|| format!("joining slot {i}"))?;
    }
    let voters = opts.members.min(3);
    let deadline = Instant::now() + Duration::from_secs(30);
    while nemesis::roles(cluster)
        .await
        .is_none_or(|r| r.voters.len() != voters)
    {
        if Instant::now() > deadline {
            bail!("the cluster did not reach {voters} voters within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let register_keys = (opts.fault_secs as u32 * 2).max(40);
    workload::prepare(
        &cluster.client(0, Duration::from_secs(30)),
        opts.workload,
        if opts.workload == Workload::Register {
            register_keys
        } else {
            0
        },
    )
    .await
    .context("preparing the workload")?;

    // Clients.
    let shared = Arc::new(Shared::new(
        cluster.views.clone(),
        Duration::from_secs(2),
        register_keys,
    ));
    let workers = cluster.slots.len() * 2;
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            tokio::spawn(workload::worker(
                shared.clone(),
                opts.workload,
                w,
                workers,
                opts.seed,
            ))
        })
        .collect();

    // Warm-up: the cluster must serve at a minimum rate before the first fault.
    let warmup = Duration::from_secs(3);
    tokio::time::sleep(warmup).await;
    let warm_ok = ok_count(&shared);
    let warm_rate = warm_ok as f64 / warmup.as_secs_f64();
    if warm_rate < 5.0 {
        invalid.push(format!(
            "only {warm_rate:.1} acknowledged operations per second before the first fault"
        ));
    }

    // Faults.
    let plan = nemesis::plan(
        &opts.nemesis,
        Duration::from_secs(opts.fault_secs),
        opts.seed,
    );
    write_json(&dir.join("plan.json"), &plan)?;
    let mut records: Vec<Record> = Vec::new();
    let mut nemesis_log = std::fs::File::create(dir.join("nemesis.jsonl"))?;
    let phase = Instant::now();
    for (i, p) in plan.iter().enumerate() {
        let at = Duration::from_millis(p.at_ms);
        if let Some(wait) = at.checked_sub(phase.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        let rec = nemesis::fire(cluster, p, i, shared.start).await;
        writeln!(nemesis_log, "{}", serde_json::to_string(&rec)?)?;
        records.push(rec);
    }
    if let Some(rest) = Duration::from_secs(opts.fault_secs).checked_sub(phase.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    shared.stop.store(true, Ordering::SeqCst);
    for h in handles {
        let _ = h.await;
    }

    // Heal everything and bring back the dead.
    let healed_at = Instant::now();
    if let Some(net) = &cluster.net {
        net.heal()?;
    }
    for i in 0..cluster.slots.len() {
        cluster.free_disk(i)?;
        cluster.reap(i);
        match cluster.slots[i].state {
            ProcState::Paused => {
                cluster.signal(i, nix::sys::signal::Signal::SIGCONT)?;
                cluster.slots[i].state = ProcState::Running;
            }
            ProcState::Down if cluster.slots[i].member => cluster.launch(i)?,
            _ => {}
        }
    }
    let mut anomalies: Vec<Anomaly> = Vec::new();
    let health = healthy(cluster, Duration::from_secs(20)).await;
    let convergence_s = healed_at.elapsed().as_secs_f64();
    if let Err(e) = &health {
        anomalies.push(anomaly(
            "liveness",
            format!("not healthy 20 s after healing: {e}"),
        ));
    }
    for i in cluster.members() {
        cluster.views[i].in_rotation.store(true, Ordering::SeqCst);
    }
    for i in cluster.members() {
        if let Err(e) = live(cluster, i).await {
            anomalies.push(anomaly("liveness", e.to_string()));
        }
    }
    for i in cluster.members() {
        if !workload::final_read(&shared, opts.workload, i, Duration::from_secs(10)).await {
            anomalies.push(anomaly(
                "liveness",
                format!(
                    "no final read succeeded on {} within 10 s",
                    cluster.slots[i].name
                ),
            ));
        }
    }
    let final_roles = nemesis::roles(cluster).await;
    anomalies.extend(roles_within_limits(cluster, final_roles.as_ref()));
    anomalies.extend(converge(cluster).await);
    let (panics, log_anomalies) = scan_logs(cluster);
    anomalies.extend(log_anomalies);
    for s in &cluster.slots {
        for e in &s.unexpected_exits {
            anomalies.push(anomaly("unexpected-exit", e.clone()));
        }
    }

    // Check the history.
    let recorded = std::mem::take(
        &mut *shared
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    let (report, stats) = check_history(opts, recorded, dir)?;
    anomalies.extend(report.anomalies.iter().cloned());

    // Faults: every requested type installed at least once.
    let mut by_type: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for r in &records {
        *by_type
            .entry(r.nemesis.name().to_string())
            .or_default()
            .entry(r.status.clone())
            .or_default() += 1;
    }
    for n in &opts.nemesis {
        let installed = by_type
            .get(n.name())
            .and_then(|m| m.get("installed"))
            .copied()
            .unwrap_or(0);
        if installed == 0 {
            invalid.push(format!("no {} fault was installed", n.name()));
        }
    }
    let faults_injected = records.iter().filter(|r| r.status == "installed").count() as u64;
    let verdict = if !anomalies.is_empty() || report.verdict == Verdict::Invalid {
        Verdict::Invalid
    } else if !invalid.is_empty() || report.verdict == Verdict::Unknown {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    Ok(RunSummary {
        run_id: run_id.to_string(),
        verdict,
        workload: opts.workload,
        nemesis: opts.nemesis.clone(),
        seed: opts.seed,
        faults_injected,
        faults_by_type: by_type,
        ops_ok: stats.ok,
        ops_failed: stats.failed,
        ops_unknown: stats.unknown,
        counts: report.counts.clone(),
        anomalies,
        invalid_run: invalid,
        max_unavailability_s: unavailability(&records, &stats.ok_times),
        convergence_s,
        op_rate: stats.ok as f64 / (opts.fault_secs as f64 + 3.0),
        checker: report.details.clone(),
        elapsed_s: 0.0,
        panics,
    })
}

fn anomaly(kind: &str, message: String) -> Anomaly {
    Anomaly {
        kind: kind.to_string(),
        message,
        ops: Vec::new(),
    }
}

fn ok_count(shared: &Shared) -> usize {
    let log = shared
        .log
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let ok = |o: Outcome| o == Outcome::Ok;
    log.sets.iter().filter(|o| ok(o.outcome)).count()
        + log.register.iter().filter(|o| ok(o.outcome)).count()
        + log.append.iter().filter(|o| ok(o.outcome)).count()
        + log.bank.iter().filter(|o| ok(o.outcome)).count()
}

/// Every member answers, sees every member online, and all list the same members (the slots
/// the harness counts as members).
async fn healthy(cluster: &mut Cluster, limit: Duration) -> Result<()> {
    let members = cluster.members();
    let mut expected: Vec<String> = members
        .iter()
        .map(|i| cluster.slots[*i].name.clone())
        .collect();
    expected.sort();
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    'again: while Instant::now() < deadline {
        for i in &members {
            let client = cluster.client(*i, Duration::from_secs(2));
            match client.cluster_members().await {
                Ok(list) => {
                    let mut names: Vec<String> =
                        list.iter().map(|m| m.server_name.clone()).collect();
                    names.sort();
                    if names != expected {
                        last = format!(
                            "{} lists members {names:?}, expected {expected:?}",
                            cluster.slots[*i].name
                        );
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue 'again;
                    }
                    if let Some(m) = list.iter().find(|m| m.status != "Online") {
                        last = format!(
                            "{} sees {} {}",
                            cluster.slots[*i].name, m.server_name, m.status
                        );
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue 'again;
                    }
                }
                Err(e) => {
                    last = format!("{}: {e}", cluster.slots[*i].name);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue 'again;
                }
            }
        }
        return Ok(());
    }
    bail!("{last}")
}

/// A write and a read on member `i` within 10 s.
async fn live(cluster: &Cluster, i: usize) -> Result<()> {
    let client = cluster.client(i, Duration::from_secs(5));
    let name = format!("live-{}-{}", i, cluster.slots[i].name);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = String::new();
    while Instant::now() < deadline {
        let post = rxd_api::ProfilesPost {
            name: name.clone(),
            ..Default::default()
        };
        match client.create_profile(&post).await {
            Ok(()) => {}
            Err(e) if e.status() == Some(409) => {}
            Err(e) => {
                last = e.to_string();
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        match client.profile(&name).await {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!(
        "{}: no write and read within 10 s after healing ({last})",
        cluster.slots[i].name
    )
}

fn roles_within_limits(cluster: &Cluster, roles: Option<&nemesis::Roles>) -> Vec<Anomaly> {
    let Some(r) = roles else {
        return vec![anomaly(
            "convergence",
            "no member reports a leader after healing".into(),
        )];
    };
    let mut out = Vec::new();
    let members = cluster.members().len();
    if r.voters.len() > 3 || r.standbys.len() > 2 {
        out.push(anomaly(
            "convergence",
            format!(
                "{} voters and {} stand-bys, over cluster.max_voters 3 / max_standby 2",
                r.voters.len(),
                r.standbys.len()
            ),
        ));
    }
    if r.voters.len() < members.min(3) {
        out.push(anomaly(
            "convergence",
            format!("{} voters among {members} members", r.voters.len()),
        ));
    }
    out
}

/// Waits until every member applied the same index (read live from each state database), then
/// freezes them all (SIGSTOP) and compares their replicated tables at that one index, each read
/// with its applied index in one read transaction; then lets them go and stops them gracefully.
/// (Tables compared after a stop would differ by whatever the cluster wrote between the first
/// stop and the last: an "offline member" warning the leader raises about the member stopped
/// first, or the first entry of a leader elected during the stops.)
async fn converge(cluster: &mut Cluster) -> Vec<Anomaly> {
    let members = cluster.members();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    loop {
        let applied: Vec<(String, Option<u64>)> = members
            .iter()
            .map(|i| {
                let s = &cluster.slots[*i];
                (s.name.clone(), applied_index(&state_db(&s.dir)).ok())
            })
            .collect();
        let same = applied
            .iter()
            .all(|(_, a)| a.is_some() && *a == applied[0].1);
        if same {
            match frozen_digests(cluster, &members) {
                Ok(Some(digests)) => {
                    out.extend(compare_digests(&digests));
                    break;
                }
                Ok(None) => {}
                Err(e) => {
                    out.push(anomaly("convergence", format!("{e:#}")));
                    break;
                }
            }
        }
        if Instant::now() > deadline {
            out.push(anomaly(
                "convergence",
                format!("applied indexes differ 10 s after the last write: {applied:?}"),
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for i in &members {
        cluster.stop(*i, Duration::from_secs(20)).await;
    }
    out
}

/// Each member's (name, digest) read while every member is frozen, or `None` when their
/// applied indexes were not all the same at that moment. Every member is resumed before this
/// returns.
fn frozen_digests(cluster: &mut Cluster, members: &[usize]) -> Result<Option<Vec<(String, u64)>>> {
    let mut frozen = Vec::new();
    let mut result = Ok(());
    for i in members {
        match cluster.signal(*i, nix::sys::signal::Signal::SIGSTOP) {
            Ok(()) => frozen.push(*i),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    let read = result.and_then(|()| {
        members
            .iter()
            .map(|i| {
                let s = &cluster.slots[*i];
                let (applied, d) = digest(&state_db(&s.dir))
                    .with_context(|| format!("cannot read {}'s database", s.name))?;
                Ok((s.name.clone(), applied, d))
            })
            .collect::<Result<Vec<_>>>()
    });
    for i in frozen {
        let _ = cluster.signal(i, nix::sys::signal::Signal::SIGCONT);
    }
    let read = read?;
    if read.iter().any(|(_, applied, _)| *applied != read[0].1) {
        return Ok(None);
    }
    Ok(Some(read.into_iter().map(|(n, _, d)| (n, d)).collect()))
}

fn compare_digests(digests: &[(String, u64)]) -> Vec<Anomaly> {
    let mut out = Vec::new();
    if let Some((first, d0)) = digests.first() {
        for (name, d) in &digests[1..] {
            if d != d0 {
                out.push(anomaly(
                    "convergence",
                    format!(
                        "{name}'s replicated tables differ from {first}'s ({d:016x} vs {d0:016x})"
                    ),
                ));
            }
        }
    }
    out
}

fn state_db(dir: &Path) -> PathBuf {
    dir.join("database/global/state.db")
}

fn applied_index(path: &Path) -> Result<u64> {
    applied_in(&rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?)
}

/// The index a state database records as applied.
fn applied_in(conn: &rusqlite::Connection) -> Result<u64> {
    let text: String = conn.query_row(
        "SELECT value FROM raft_meta WHERE key = 'last_applied'",
        [],
        |r| r.get(0),
    )?;
    let v: Value = serde_json::from_str(&text)?;
    v["index"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("no applied index in {text}"))
}

/// The applied index and a digest of every replicated table (all but the raft metadata), rows
/// sorted, read in one transaction.
fn digest(path: &Path) -> Result<(u64, u64)> {
    use std::hash::{Hash, Hasher};
    let mut conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let tx = conn.transaction()?;
    let conn = &*tx;
    let applied = applied_in(conn)?;
    let mut tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'raft_meta' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    tables.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for t in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\""))?;
        let cols = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                let mut s = String::new();
                for c in 0..cols {
                    let v: rusqlite::types::Value = r.get(c)?;
                    s.push_str(&format!("{v:?}\u{1f}"));
                }
                Ok(s)
            })?
            .collect::<Result<_, _>>()?;
        rows.sort();
        t.hash(&mut h);
        rows.hash(&mut h);
    }
    Ok((applied, h.finish()))
}

/// Panics and unexpected errors in the members' logs.
fn scan_logs(cluster: &Cluster) -> (u64, Vec<Anomaly>) {
    let mut panics = 0;
    let mut out = Vec::new();
    for s in &cluster.slots {
        let log = std::fs::read_to_string(s.dir.join("daemon.stderr")).unwrap_or_default();
        for line in log.lines() {
            if line.contains("panicked at") {
                panics += 1;
                out.push(anomaly("panic", format!("{}: {line}", s.name)));
            } else if line.contains(" ERROR ") && !ALLOWED_ERRORS.iter().any(|a| line.contains(a)) {
                out.push(anomaly("log-error", format!("{}: {line}", s.name)));
            }
        }
    }
    (panics, out)
}

struct Stats {
    ok: u64,
    failed: u64,
    unknown: u64,
    ok_times: Vec<u64>,
}

fn numbered<F: Serialize>(
    mut ops: Vec<Op<F>>,
    dir: &Path,
    stats: &mut Stats,
) -> Result<Vec<Op<F>>> {
    ops.sort_by_key(|o| o.invoke_ns);
    let mut file = std::io::BufWriter::new(std::fs::File::create(dir.join("history.jsonl"))?);
    for (i, o) in ops.iter_mut().enumerate() {
        o.id = i;
        match o.outcome {
            Outcome::Ok => {
                stats.ok += 1;
                if let Some(c) = o.complete_ns {
                    stats.ok_times.push(c);
                }
            }
            Outcome::Fail => stats.failed += 1,
            Outcome::Unknown => stats.unknown += 1,
        }
        writeln!(file, "{}", serde_json::to_string(o)?)?;
    }
    stats.ok_times.sort_unstable();
    Ok(ops)
}

fn check_history(
    opts: &RunOptions,
    recorded: workload::Recorded,
    dir: &Path,
) -> Result<(Report, Stats)> {
    let mut stats = Stats {
        ok: 0,
        failed: 0,
        unknown: 0,
        ok_times: Vec::new(),
    };
    let report = match opts.workload {
        Workload::Sets => check::sets::check(&numbered(recorded.sets, dir, &mut stats)?),
        Workload::Register => check::register::check(
            &numbered(recorded.register, dir, &mut stats)?,
            Duration::from_secs(30),
        ),
        Workload::Append => check::append::check(&numbered(recorded.append, dir, &mut stats)?),
        Workload::Bank => check::bank::check(
            &numbered(recorded.bank, dir, &mut stats)?,
            workload::BANK_ACCOUNTS,
            workload::BANK_START * workload::BANK_ACCOUNTS as i64,
        ),
    };
    Ok((report, stats))
}

/// For each fault type, the longest time without an acknowledged operation that began while
/// one of its faults was installed.
fn unavailability(records: &[Record], ok_times: &[u64]) -> BTreeMap<String, f64> {
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for r in records.iter().filter(|r| r.status == "installed") {
        let start = r.start_ms * 1_000_000;
        let end = r.end_ms * 1_000_000;
        let from = ok_times.partition_point(|t| *t < start);
        let mut prev = start;
        let mut worst = 0u64;
        for t in &ok_times[from..] {
            worst = worst.max(t - prev);
            prev = *t;
            if *t > end {
                break;
            }
        }
        let e = out.entry(r.nemesis.name().to_string()).or_default();
        *e = e.max(worst as f64 / 1e9);
    }
    out
}

fn print_failure(dir: &Path, summary: &RunSummary, cluster: &Cluster) {
    eprintln!("== fault run {} is {:?}", summary.run_id, summary.verdict);
    eprintln!("   kept in {}", dir.display());
    if let Ok(text) = serde_json::to_string_pretty(summary) {
        let short: String = text.lines().take(80).collect::<Vec<_>>().join("\n");
        eprintln!("{short}");
    }
    if let Some(first) = summary.anomalies.first() {
        eprintln!("== first anomaly: [{}] {}", first.kind, first.message);
        if let Ok(history) = std::fs::read_to_string(dir.join("history.jsonl")) {
            let lines: Vec<&str> = history.lines().collect();
            for id in first.ops.iter().take(20) {
                if let Some(l) = lines.get(*id) {
                    eprintln!("   {l}");
                }
            }
        }
    }
    for s in &cluster.slots {
        let log = std::fs::read_to_string(s.dir.join("daemon.stderr")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        eprintln!("== last 40 lines of {} ({})", s.name, s.dir.display());
        for l in &lines[lines.len().saturating_sub(40)..] {
            eprintln!("   {l}");
        }
    }
}
