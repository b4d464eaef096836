//! Issue 13: `logs/rxd.log` is rotated by size (`--log-max-size`, five rotated files kept),
//! membership events carry structured fields, and a member going offline or coming back is one
//! line in the leader's log, not one per heartbeat round.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rxd_testkit::{Member, Net};

/// A daemon this test started itself, killed by PID when dropped.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn log_files(dir: &Path) -> Vec<(String, u64)> {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir.join("logs"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_is_rotated_by_size_and_keeps_five_files() {
    let dir = tempfile::tempdir().unwrap();
    let _daemon = Started(
        Command::new(rxd_testkit::bin("rxd"))
            .arg("--dir")
            .arg(dir.path())
            .args(["--debug", "--log-max-size", "4096"])
            .env("RXD_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = rxd_client::Client::unix(dir.path().join("unix.socket"));
    rxd_testkit::until(Duration::from_secs(30), "rxd to answer", || async {
        client.server().await.is_ok()
    })
    .await;
    // Requests until six rotations have happened (bounded: the loop fails after 2,000).
    let mut requests = 0;
    while !dir.path().join("logs/rxd.log.5").exists() || requests < 50 {
        assert!(
            requests < 2000,
            "no rotation after {requests} requests: {:?}",
            log_files(dir.path())
        );
        client.server().await.unwrap();
        requests += 1;
    }
    for _ in 0..50 {
        client.server().await.unwrap();
    }
    let files = log_files(dir.path());
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "rxd.log",
            "rxd.log.1",
            "rxd.log.2",
            "rxd.log.3",
            "rxd.log.4",
            "rxd.log.5"
        ],
        "five rotated files kept, no more"
    );
    for (name, size) in &files {
        // Cut once a write takes it past the bound: at most one log line over it.
        assert!(*size < 4096 + 4096, "{name} is {size} bytes");
    }
    let error = Command::new(rxd_testkit::bin("rxd"))
        .args(["--log-max-size", "10"])
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!error.status.success());
    assert!(
        String::from_utf8_lossy(&error.stderr).contains("--log-max-size"),
        "{}",
        String::from_utf8_lossy(&error.stderr)
    );
}

/// The member's `logs/rxd.log` (written without colours, unlike its stderr).
fn log_of(m: &Member) -> String {
    std::fs::read_to_string(m.dir().join("logs/rxd.log")).unwrap_or_default()
}

/// The lines of `log` that contain every one of `parts`.
fn lines_with(log: &str, parts: &[&str]) -> usize {
    log.lines()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .count()
}

/// Waits until the leader has sent `rounds` more heartbeat rounds than `after`.
async fn rounds(leader: &Member, after: f64, more: f64) -> f64 {
    let read = || async {
        let text = leader.client().get_text("/1.0/metrics").await.unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("rxd_heartbeat_rounds_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    rxd_testkit::until(Duration::from_secs(120), "heartbeat rounds", || async {
        read().await >= after + more
    })
    .await;
    read().await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_offline_and_back_is_one_line_each_and_joins_have_fields() {
    let net = Net::lease();
    let mut members = Member::form(3, &net, &["cluster.offline_threshold: \"11\""]).await;
    let log = log_of(&members[0]);
    for name in ["node2", "node3"] {
        assert_eq!(
            lines_with(
                &log,
                &["Member joined", &format!("member={name}"), "address="]
            ),
            1,
            "{log}"
        );
    }
    assert!(
        lines_with(&log, &["Raft leader elected", "term=", "leader="]) >= 1,
        "{log}"
    );

    let node3 = "entity=/1.0/cluster/members/node3";
    let raised = "Warning: Offline cluster member";
    members[2].stop();
    rxd_testkit::until(
        Duration::from_secs(60),
        "node3's warning in the log",
        || async { lines_with(&log_of(&members[0]), &[raised, node3]) == 1 },
    )
    .await;
    // Several rounds later, still the one line, and nothing else about node3: no stream of
    // raft's failed calls to it.
    let before = log_of(&members[0]).len();
    let now = rounds(&members[0], 0.0, 0.0).await;
    rounds(&members[0], now, 4.0).await;
    let log = log_of(&members[0]);
    assert_eq!(lines_with(&log, &[raised, node3]), 1, "{log}");
    let address = net.addr(3);
    let since: Vec<&str> = log[before..]
        .lines()
        .filter(|l| l.contains(&address))
        .collect();
    assert!(
        since.is_empty(),
        "while node3 was down:\n{}",
        since.join("\n")
    );

    members[2].start_again();
    rxd_testkit::until(Duration::from_secs(60), "node3 back in the log", || async {
        lines_with(&log_of(&members[0]), &["Warning resolved", node3]) == 1
    })
    .await;
    let now = rounds(&members[0], 0.0, 0.0).await;
    rounds(&members[0], now, 4.0).await;
    let log = log_of(&members[0]);
    assert_eq!(lines_with(&log, &["Warning resolved", node3]), 1, "{log}");
    assert_eq!(lines_with(&log, &[raised, node3]), 1, "{log}");
}
