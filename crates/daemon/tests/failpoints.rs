//! The binary these tests build carries the failpoints (the feature the crate's tests turn on),
//! and building this test makes cargo build `rxd` with them during `cargo nextest run
//! --workspace`, so the end-to-end tests in `tests/` can crash a member at an exact step.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_test_build_of_rxd_honours_failpoints() {
    let dir = tempfile::tempdir().expect("temp dirs can be made");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rxd"))
        .env("RXD_FAILPOINT", "daemon-start:crash")
        .arg("--dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rxd starts");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rxd ignored RXD_FAILPOINT=daemon-start:crash: built without `failpoints`");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(137), "the failpoint ends the process");
}
