//! The test build of `rxd` (with the `fault-injection` feature) reads `RXD_RAFT_TUNING` and
//! `RXD_FAULT_SWITCHES`: a bad value stops it at start with a message, and the tuning lowers the
//! smallest accepted `cluster.offline_threshold` only when it is set.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn spawn(dir: &std::path::Path, env: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rxd"))
        .env_remove("RXD_RAFT_TUNING")
        .env_remove("RXD_FAULT_SWITCHES")
        .envs(env.iter().copied())
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rxd starts")
}

/// Waits for the daemon to stop by itself and returns its exit code and standard error.
fn refused(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("temp dirs can be made");
    let mut child = spawn(dir.path(), env);
    let start = Instant::now();
    loop {
        if child
            .try_wait()
            .expect("the child can be waited for")
            .is_some()
        {
            let out = child.wait_with_output().expect("output");
            return (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rxd started with {env:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_unknown_switch_or_tuning_key_stops_the_daemon_with_a_message() {
    let (code, stderr) = refused(&[("RXD_FAULT_SWITCHES", "stale-follower-reads,typo")]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("RXD_FAULT_SWITCHES: Unknown fault switch \"typo\""),
        "{stderr}"
    );
    let (code, stderr) = refused(&[("RXD_RAFT_TUNING", "heartbeat_ms=150,speed=9")]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("RXD_RAFT_TUNING: unknown key \"speed\""),
        "{stderr}"
    );
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn set_threshold(env: &[(&str, &str)], value: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("temp dirs can be made");
    let _daemon = Running(spawn(dir.path(), env));
    let client = rxd_client::Client::unix(dir.path().join("unix.socket"));
    let start = Instant::now();
    while client.server().await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "rxd never answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let put = rxd_api::ServerPut {
        config: serde_json::Map::from_iter([(
            "cluster.offline_threshold".to_string(),
            value.into(),
        )]),
    };
    client
        .patch_server(&put, None)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn the_offline_threshold_goes_below_11_only_when_tuned() {
    let tuned = [
        (
            "RXD_RAFT_TUNING",
            "heartbeat_ms=150,election_min_ms=600,election_max_ms=1200,offline_threshold_min=2",
        ),
        ("RXD_FAULT_SWITCHES", "reforward-new-id"),
    ];
    set_threshold(&tuned, "2").await.unwrap();
    let e = set_threshold(&tuned, "1").await.unwrap_err();
    assert!(e.contains("Value must be greater than '1'"), "{e}");
    let e = set_threshold(&[], "10").await.unwrap_err();
    assert!(e.contains("Value must be greater than '10'"), "{e}");
}
