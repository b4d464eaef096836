//! Issue 10: what `rxd` says when something fails. Each cause once, outermost first; no Rust
//! debug text; no silent success; a second daemon on a directory says who holds it; clean logs.

use std::process::Command;

use rxd_testkit::{bootstrap_preseed, fails, run_bounded, Member, Net, COMMAND_LIMIT};

/// `text` says `part` exactly once.
fn once(text: &str, part: &str) {
    assert_eq!(text.matches(part).count(), 1, "{part:?} once in: {text}");
}

/// Runs `rxd ARGS` on a directory where no daemon runs.
fn rxd_without_daemon(dir: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut cmd = Command::new(rxd_testkit::bin("rxd"));
    cmd.args(args).env("RXD_DIR", dir);
    run_bounded(&mut cmd, Some(stdin), COMMAND_LIMIT)
}

#[test]
fn issue10_init_without_a_daemon_fails_once_in_words() {
    let net = Net::lease();
    let dir = tempfile::tempdir().unwrap();
    for seed in [
        "",
        "config: {}\n",
        &bootstrap_preseed(&net.addr(1), "n1", &[]),
    ] {
        eprintln!("A preseed {seed:?} with no daemon fails and names the socket once");
        let err = fails(&rxd_without_daemon(
            dir.path(),
            &["init", "--preseed"],
            seed,
        ));
        once(&err, "unix.socket");
        once(&err, "No such file or directory");
        assert!(err.starts_with("Error: "), "{err}");
    }
}

#[test]
fn issue10_refusals_are_said_once() {
    let net = Net::lease();
    let m = Member::start();
    eprintln!("An unknown key is named once");
    let err = fails(&m.rxd_with_input(&["init", "--preseed"], "config:\n  core.bogus: x\n"));
    once(&err, "core.bogus");

    eprintln!("Bootstrapping twice says once that the server is clustered");
    m.bootstrap(&net.addr(2), "n1", &[]);
    let err = fails(&m.rxd_with_input(
        &["init", "--preseed"],
        &bootstrap_preseed(&net.addr(2), "n1", &[]),
    ));
    once(&err, "already clustered");
}

#[tokio::test]
async fn issue10_wrong_cluster_certificate_is_said_in_words() {
    let net = Net::lease();
    let leader = Member::start();
    leader.bootstrap(&net.addr(3), "node1", &[]);
    let joiner = Member::start();
    let wrong = std::fs::read_to_string(joiner.dir().join("server.crt")).unwrap();
    let right = std::fs::read_to_string(leader.dir().join("cluster.crt")).unwrap();
    let fingerprint = |pem: &str| rxd_tls::CertInfo::from_pem(pem).unwrap().fingerprint;
    let seed = format!(
        "cluster:\n  enabled: true\n  server_name: node2\n  server_address: {net}.4:8443\n  cluster_address: {net}.3:8443\n  cluster_password: sekret\n  cluster_certificate: |\n{}\n",
        wrong.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
    );
    eprintln!("A join pinned to a certificate that is not the cluster's names both fingerprints");
    let err = fails(&joiner.rxd_with_input(&["init", "--preseed"], &seed));
    for debug in ["Other(", "OtherError", "PinMismatch", "{ expected"] {
        assert!(!err.contains(debug), "Rust debug text {debug:?} in: {err}");
    }
    once(&err, &fingerprint(&right));
    once(&err, &fingerprint(&wrong));
    for noise in ["error sending request", "client error (Connect)"] {
        assert!(!err.contains(noise), "{noise:?} in: {err}");
    }
}

#[test]
fn issue10_second_daemon_on_a_directory_names_the_first() {
    let m = Member::start();
    let pid = m.pid().unwrap();
    eprintln!("A second rxd on the same directory stops at once and names the running one");
    let mut cmd = Command::new(rxd_testkit::bin("rxd"));
    cmd.arg("--dir").arg(m.dir());
    let err = fails(&run_bounded(&mut cmd, None, COMMAND_LIMIT));
    assert!(err.contains("already running"), "{err}");
    assert!(err.contains(&format!("pid {pid}")), "{err}");
    assert!(!err.contains("Address already in use"), "{err}");
    eprintln!("The first still answers");
    m.wait_ready();
}

#[tokio::test]
async fn issue10_start_up_log_has_no_netlink_noise() {
    let net = Net::lease();
    let m = Member::start();
    m.bootstrap(&net.addr(5), "n1", &[]);
    eprintln!("Listing the host's interfaces reads every link over netlink, as a start does");
    m.client()
        .request("GET", "/1.0/networks?recursion=1", None, None)
        .await
        .unwrap();
    let log = m.log();
    assert!(!log.contains("netlink_packet"), "{log}");
    assert!(!log.contains("IFLA_INET6_CONF"), "{log}");
}

#[test]
fn issue10_messages_about_the_server_do_not_say_lxd() {
    let m = Member::start();
    eprintln!("rxc speaks of this server, not of LXD");
    let err = fails(&m.command("rxc", &["cluster", "list"], None));
    assert!(err.contains("This server isn't part of a cluster"), "{err}");
    assert!(!err.contains("LXD"), "{err}");
    let err = fails(&m.command("rxc", &["cluster", "enable", "n1"], None));
    assert!(
        err.contains("This server is not available on the network"),
        "{err}"
    );
}
