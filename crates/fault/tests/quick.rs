//! The quick profile, one test per run, as CI runs it (serially: see `.config/nextest.toml`).
//! Each run forms a 5-member cluster (3 voters, 2 stand-bys, a spare slot) in network
//! namespaces (loopback 127.0.140.x without root), drives a workload for 55 s of faults and
//! fails on any anomaly or on a run that is not valid. The seed comes from `RXD_FAULT_SEED`
//! (default: random, printed) so CI covers new schedules while a failure names its seed.

use rxd_fault::check::Verdict;
use rxd_fault::nemesis::Nemesis;
use rxd_fault::profile::{quick_runs, Profile};
use rxd_fault::run::{run, RunOptions};
use rxd_fault::workload::Workload;

fn seed(position: u64) -> u64 {
    let base = std::env::var("RXD_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(rand::random::<u32>()));
    base + position
}

fn out_dir() -> std::path::PathBuf {
    // target/debug/deps/<test> -> target/fault-runs
    let exe = std::env::current_exe().expect("a test knows its path");
    exe.ancestors()
        .nth(3)
        .expect("tests live in target/<profile>/deps")
        .join("fault-runs")
}

async fn quick(position: usize) {
    let (workload, nemesis) = quick_runs()[position].clone();
    let opts = options(workload, nemesis, seed(position as u64));
    eprintln!(
        "seed {} (set RXD_FAULT_SEED={} to repeat)",
        opts.seed,
        opts.seed - position as u64
    );
    let summary = run(&opts).await.expect("the run completes");
    eprintln!(
        "{}",
        rxd_fault::profile::table(std::slice::from_ref(&summary))
    );
    assert_eq!(
        summary.verdict,
        Verdict::Valid,
        "run {} is {:?}: {:?} {:?}",
        summary.run_id,
        summary.verdict,
        summary.invalid_run,
        summary.anomalies.first()
    );
}

fn options(workload: Workload, nemesis: Vec<Nemesis>, seed: u64) -> RunOptions {
    RunOptions {
        workload,
        nemesis,
        seed,
        members: Profile::Quick.members(),
        fault_secs: Profile::Quick.fault_secs(),
        out: out_dir(),
        loopback: false,
        loopback_net: 140,
        switches: Vec::new(),
        keep: false,
        rxd: rxd_fault::run::default_rxd(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q1_sets_kill() {
    quick(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q2_sets_partition() {
    quick(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q3_register_pause_kill() {
    quick(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q4_register_partition() {
    quick(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q5_append_kill_partition() {
    quick(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q6_sets_membership_leader_transfer() {
    quick(5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q7_append_restart_all() {
    quick(6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q8_register_slow_links() {
    quick(7).await;
}
