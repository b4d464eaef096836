//! The suite's self-test against the daemon: a build with the `fault-injection` feature has
//! three deliberate bugs, and the quick profile's runs must find each one. A run here is a
//! quick-profile run (same workload and nemesis) with the bug switched on and a seed whose plan
//! kills the leader at least four times; it must end `invalid` with the anomaly the bug causes.

use rxd_fault::check::Verdict;
use rxd_fault::nemesis::{plan, Nemesis};
use rxd_fault::run::{run_and_print, RunOptions};
use rxd_fault::workload::Workload;

const FAULT_SECS: u64 = 30;

/// The first seed from `from` whose plan hits the leader at least `n` times.
fn seed_hitting_leader(mix: &[Nemesis], n: usize, from: u64) -> u64 {
    (from..)
        .find(|s| {
            plan(mix, std::time::Duration::from_secs(FAULT_SECS), *s)
                .iter()
                .filter(|p| p.variant == "leader")
                .count()
                >= n
        })
        .expect("some seed hits the leader")
}

async fn caught(switch: &str, workload: Workload, nemesis: Vec<Nemesis>, kinds: &[&str]) {
    let seed = seed_hitting_leader(&nemesis, 4, 1);
    let net = rxd_testkit::Net::lease();
    let opts = RunOptions {
        fault_secs: FAULT_SECS,
        loopback_net: net.third(),
        switches: vec![switch.to_string()],
        ..RunOptions::quick(workload, nemesis, seed)
    };
    let summary = run_and_print(&opts).await.expect("the run completes");
    assert_eq!(
        summary.verdict,
        Verdict::Invalid,
        "{switch} was not caught: {:?}",
        summary.invalid_run
    );
    assert!(
        summary
            .anomalies
            .iter()
            .any(|a| kinds.contains(&a.kind.as_str())),
        "{switch} was caught, but not as {kinds:?}: {:?}",
        summary.anomalies.first()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_follower_reads_are_caught() {
    caught(
        "stale-follower-reads",
        Workload::Sets,
        vec![Nemesis::Kill],
        &["stale-read"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledging_before_commit_is_caught() {
    caught(
        "ack-before-commit",
        Workload::Sets,
        vec![Nemesis::Kill],
        &["lost"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_with_a_new_request_id_is_caught() {
    caught(
        "reforward-new-id",
        Workload::Sets,
        vec![Nemesis::Kill],
        &["unexpected"],
    )
    .await;
}
