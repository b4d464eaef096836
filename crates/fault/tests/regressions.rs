//! Runs that once found an anomaly, with the seed that found it (see
//! `rxd_fault::profile::regressions`). Each must now be valid.

use rxd_fault::check::Verdict;
use rxd_fault::profile::regressions;
use rxd_fault::run::{run_and_print, RunOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_match_checked_outside_apply() {
    let r = regressions()
        .into_iter()
        .find(|r| r.name == "if_match_checked_outside_apply")
        .expect("the scenario is listed");
    let net = rxd_testkit::Net::lease();
    let opts = RunOptions {
        fault_secs: r.fault_secs,
        loopback_net: net.third(),
        ..RunOptions::quick(r.workload, r.nemesis, r.seed)
    };
    let summary = run_and_print(&opts).await.expect("the run completes");
    assert_eq!(summary.verdict, Verdict::Valid, "{}", summary.explain());
}
