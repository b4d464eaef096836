//! Issue 12: the formation window and the passphrase exchange over HTTPS, with real rxd
//! processes. A joiner with the passphrase is confirmed and reports its facts; a wrong
//! passphrase or a TLS relay fails on both sides and trusts nothing; ten failures close the
//! window naming their sources; the window opens nothing of the LXD API; once aborted, its
//! paths are closed.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rxd_client::Client;
use rxd_form::joiner::{self, Me, Target};
use rxd_form::planner::{Facts, Interface, LocalData};
use rxd_form::trust::Passphrase;
use rxd_form::wire::{WindowOpened, WindowState, WINDOW_PATH};
use rxd_testkit::{Member, Net};
use serde_json::json;

const PASSPHRASE: &str = "correct horse battery staple";

/// A standalone initiator listening on `net.addr(1)` with a window open as `node1`.
async fn initiator(net: &Net) -> (Member, WindowOpened) {
    let m = Member::start();
    m.set_config("core.https_address", &net.addr(1)).await;
    let opened: WindowOpened = m
        .client()
        .request(
            "POST",
            WINDOW_PATH,
            Some(json!({"name": "node1", "passphrase": PASSPHRASE, "window": "5m"})),
            None,
        )
        .await
        .unwrap()
        .metadata()
        .unwrap();
    (m, opened)
}

fn cert_of(m: &Member) -> rxd_tls::CertKey {
    let read = |f: &str| std::fs::read_to_string(m.dir().join(f)).unwrap();
    rxd_tls::CertKey::from_pem(read("server.crt"), read("server.key")).unwrap()
}

fn target(address: &str, opened: &WindowOpened) -> Target {
    Target {
        address: address.to_string(),
        window_id: opened.id.clone(),
        initiator_name: "node1".into(),
    }
}

fn facts(name: &str) -> Facts {
    Facts {
        name: name.into(),
        fingerprint: String::new(),
        version: "5.0.2".into(),
        api_extensions: vec!["clustering".into()],
        local_data: LocalData::default(),
        clock_ms: 1_700_000_000_000,
        received_ms: 0,
        interfaces: vec![Interface {
            name: "lo".into(),
            addresses: vec!["127.0.0.1/8".parse().unwrap()],
        }],
        disks: vec![],
        reaches: vec![],
    }
}

async fn state(m: &Member) -> WindowState {
    m.client().get(WINDOW_PATH).await.unwrap()
}

/// The status of `method path` over HTTPS to `address` with `cert` (if any) as the client
/// certificate.
async fn status(
    address: &str,
    served: &str,
    cert: Option<&rxd_tls::CertKey>,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, String) {
    let c = Client::https(address, served, cert)
        .unwrap()
        .with_timeout(Duration::from_secs(20));
    match c.request(method, path, body, None).await {
        Ok(_) => (200, String::new()),
        Err(e) => (
            e.status()
                .unwrap_or_else(|| panic!("{method} {path}: no HTTP answer: {e}")),
            e.to_string(),
        ),
    }
}

#[tokio::test]
async fn a_joiner_with_the_passphrase_is_confirmed_and_reports_its_facts() {
    let net = Net::lease();
    let (init, opened) = initiator(&net).await;
    let served = std::fs::read_to_string(init.dir().join("server.crt")).unwrap();
    assert_eq!(opened.fingerprint, cert_of(&init).fingerprint());
    assert!(
        opened.passphrase.is_none(),
        "a given passphrase is not echoed"
    );
    let s = state(&init).await;
    assert_eq!((s.phase.as_str(), s.joiners.len()), ("Open", 0));

    eprintln!("phase: an untrusted caller reaches no LXD API while the window is open");
    let stranger = rxd_tls::generate_client("stranger", "host").unwrap();
    for cert in [None, Some(&stranger)] {
        let (code, _) = status(&net.addr(1), &served, cert, "GET", "/1.0/cluster", None).await;
        assert_eq!(code, 403);
    }

    eprintln!("phase: node2 runs the exchange and reports its facts");
    let node2 = Member::start();
    let cert = cert_of(&node2);
    let me = Me {
        name: "node2",
        cert: &cert,
        source: None,
    };
    let passphrase = Passphrase::entered(PASSPHRASE).unwrap();
    let trusted = joiner::join_window(
        &target(&net.addr(1), &opened),
        &me,
        &passphrase,
        &facts("node2"),
    )
    .await
    .unwrap();
    assert_eq!(trusted.peer_name, "node1");
    assert_eq!(trusted.peer_fingerprint, opened.fingerprint);

    let s = state(&init).await;
    assert_eq!(s.phase, "Collecting");
    assert_eq!(s.joiners.len(), 1);
    let j = &s.joiners[0];
    assert_eq!(
        (j.name.as_str(), j.fingerprint.as_str()),
        ("node2", &*cert.fingerprint())
    );
    let reported = j.facts.as_ref().expect("the facts are listed");
    assert_eq!(reported.version, "5.0.2");
    assert_eq!(reported.fingerprint, cert.fingerprint());
    assert!(reported.received_ms > 0);

    eprintln!("phase: confirmed in the window is not trusted by the LXD API");
    let (code, _) = status(
        &net.addr(1),
        &served,
        Some(&cert),
        "GET",
        "/1.0/cluster",
        None,
    )
    .await;
    assert_eq!(code, 403);

    eprintln!("phase: facts from another certificate are refused");
    let (code, message) = status(
        &net.addr(1),
        &served,
        Some(&stranger),
        "POST",
        &rxd_form::wire::facts_path(&opened.id),
        Some(serde_json::to_value(facts("node2")).unwrap()),
    )
    .await;
    assert_eq!(code, 403, "{message}");

    eprintln!("phase: another window id is closed");
    let (code, _) = status(
        &net.addr(1),
        &served,
        Some(&stranger),
        "POST",
        "/internal/form/0123456789abcdef/hello",
        Some(json!({})),
    )
    .await;
    assert_eq!(code, 403);

    eprintln!("phase: after DELETE the window is aborted and its exchange paths are closed");
    init.client()
        .request("DELETE", WINDOW_PATH, None, None)
        .await
        .unwrap();
    let s = state(&init).await;
    assert_eq!(s.phase, "Aborted");
    assert_eq!(
        s.abort_reason.as_deref(),
        Some("the operator aborted the formation")
    );
    for path in ["hello", "confirm", "facts"] {
        let (code, _) = status(
            &net.addr(1),
            &served,
            Some(&cert),
            "POST",
            &format!("/internal/form/{}/{path}", opened.id),
            Some(json!({})),
        )
        .await;
        assert_eq!(code, 403, "{path}");
    }
    let e = joiner::exchange(&target(&net.addr(1), &opened), &me, &passphrase)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
    eprintln!("phase: the confirmed joiner learns the end; a second DELETE removes the window");
    let pinned = joiner::pinned_client(&target(&net.addr(1), &opened), &me, &trusted).unwrap();
    let told = joiner::next_instruction(&pinned, &opened.id).await.unwrap();
    assert!(
        matches!(told, rxd_form::wire::Instruction::Abort { .. }),
        "{told:?}"
    );
    init.client()
        .request("DELETE", WINDOW_PATH, None, None)
        .await
        .unwrap();
    let e = init
        .client()
        .get::<WindowState>(WINDOW_PATH)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");
}

#[tokio::test]
async fn a_wrong_passphrase_fails_on_both_sides_and_trusts_nothing() {
    let net = Net::lease();
    let (init, opened) = initiator(&net).await;
    let served = std::fs::read_to_string(init.dir().join("server.crt")).unwrap();
    let node2 = Member::start();
    let cert = cert_of(&node2);
    let me = Me {
        name: "node2",
        cert: &cert,
        source: None,
    };
    let wrong = Passphrase::entered("correct horse battery stapler").unwrap();
    let target = target(&net.addr(1), &opened);
    let e = joiner::join_window(&target, &me, &wrong, &facts("node2"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Cannot confirm"), "{e}");

    let s = state(&init).await;
    assert_eq!(s.phase, "Open", "nothing was trusted");
    assert!(s.joiners.is_empty());
    let (code, _) = status(
        &net.addr(1),
        &served,
        Some(&cert),
        "GET",
        "/1.0/cluster",
        None,
    )
    .await;
    assert_eq!(code, 403, "the joiner's certificate is not trusted");
    let (code, message) = status(
        &net.addr(1),
        &served,
        Some(&cert),
        "POST",
        &rxd_form::wire::facts_path(&opened.id),
        Some(serde_json::to_value(facts("node2")).unwrap()),
    )
    .await;
    assert_eq!(code, 403, "{message}");
    assert!(rxd_testkit::trusted_fingerprints(&init.client())
        .await
        .iter()
        .all(|fp| *fp != cert.fingerprint()));

    eprintln!("phase: the failure cost its source a second, then the right passphrase works");
    let right = Passphrase::entered(PASSPHRASE).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let trusted = loop {
        match joiner::exchange(&target, &me, &right).await {
            Ok(t) => break t,
            Err(e) if e.status() == Some(429) && std::time::Instant::now() < deadline => {
                assert!(e.to_string().contains("Too soon"), "{e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(trusted.peer_fingerprint, opened.fingerprint);
}

/// A relay between joiner and initiator: it ends the joiner's TLS with a certificate of its
/// own and makes a connection of its own to the initiator, presenting that same certificate.
async fn relay(listen: &str, upstream: String) -> tokio::task::JoinHandle<()> {
    let relay_cert = rxd_tls::generate("relay").unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(
        rxd_tls::server_config_alpn(&relay_cert, &[b"http/1.1"]).unwrap(),
    );
    let (client_config, _) = rxd_tls::capture_client_config(Some(&relay_cert)).unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
    let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, connector, upstream) =
                (acceptor.clone(), connector.clone(), upstream.clone());
            tokio::spawn(async move {
                let Ok(mut down) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(up_tcp) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let name = rustls::pki_types::ServerName::try_from("rxd").unwrap();
                let Ok(mut up) = connector.connect(name, up_tcp).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
            });
        }
    })
}

#[tokio::test]
async fn a_relay_fails_on_both_sides() {
    let net = Net::lease();
    let (init, opened) = initiator(&net).await;
    let relay_task = relay(&net.addr(9), net.addr(1)).await;
    let node2 = Member::start();
    let cert = cert_of(&node2);
    let me = Me {
        name: "node2",
        cert: &cert,
        source: None,
    };
    let right = Passphrase::entered(PASSPHRASE).unwrap();
    let e = joiner::join_window(&target(&net.addr(9), &opened), &me, &right, &facts("node2"))
        .await
        .unwrap_err();
    relay_task.abort();
    assert!(e.to_string().contains("Cannot confirm"), "{e}");
    let s = state(&init).await;
    assert_eq!(s.phase, "Open");
    assert!(
        s.joiners.is_empty(),
        "the relay's certificate was not pinned"
    );
}

#[tokio::test]
async fn ten_failures_close_the_window_naming_the_sources() {
    let net = Net::lease();
    let (init, opened) = initiator(&net).await;
    let node2 = Member::start();
    let cert = cert_of(&node2);
    let wrong = Passphrase::entered("not the passphrase at all").unwrap();
    let target = target(&net.addr(1), &opened);
    let sources: Vec<IpAddr> = (20..30).map(|h| net.ip(h).parse().unwrap()).collect();
    let mut last = None;
    for source in &sources {
        let me = Me {
            name: "node2",
            cert: &cert,
            source: Some(*source),
        };
        let e = joiner::exchange(&target, &me, &wrong).await.unwrap_err();
        last = Some(e);
    }
    let last = last.unwrap().to_string();
    let s = state(&init).await;
    assert_eq!(s.phase, "Aborted");
    let reason = s.abort_reason.expect("the reason is shown");
    for source in &sources {
        assert!(reason.contains(&format!("{source} (1)")), "{reason}");
        assert!(last.contains(&source.to_string()), "{last}");
    }
    assert!(reason.starts_with("10 trust exchanges failed"), "{reason}");

    eprintln!("phase: the right passphrase gets nowhere now");
    let me = Me {
        name: "node2",
        cert: &cert,
        source: Some(net.ip(31).parse().unwrap()),
    };
    let right = Passphrase::entered(PASSPHRASE).unwrap();
    let e = joiner::exchange(&target, &me, &right).await.unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
    assert!(state(&init).await.joiners.is_empty());
}

/// The formation preseed of `n` servers in a hub on 192.0.2.0/24 (eth0), node1 initiating,
/// with a `dir` pool on every member.
fn form_preseed(n: usize, pass_file: &std::path::Path) -> String {
    format!(
        "initiator_address: 192.0.2.1\n{}",
        discovered_preseed(n, pass_file)
    )
}

/// [`form_preseed`] without the initiator's address: joiners find its window by DNS-SD on
/// eth0.
fn discovered_preseed(n: usize, pass_file: &std::path::Path) -> String {
    let members: String = (1..=n).map(|i| format!("- name: node{i}\n")).collect();
    format!(
        "initiator: node1\ninterface: eth0\npassphrase_file: {}\nwindow: 5m\nmembers:\n{members}storage_pools:\n- name: local\n  driver: dir\n",
        pass_file.display()
    )
}

/// Runs `rxd form` on the first of `members` and `rxd join` on the others at once, each with
/// `preseed`, bounded; each run's output, or `None` for a run killed at the limit.
fn form_all(
    members: &[rxd_testkit::netns::NsMember],
    preseed: &str,
) -> Vec<Option<std::process::Output>> {
    form_all_with(members, preseed, &[])
}

/// [`form_all`], with `more` flags for `rxd form`.
fn form_all_with(
    members: &[rxd_testkit::netns::NsMember],
    preseed: &str,
    more: &[&str],
) -> Vec<Option<std::process::Output>> {
    let servers: Vec<(&rxd_testkit::netns::NsMember, usize)> = members
        .iter()
        .enumerate()
        .map(|(i, m)| (m, i + 1))
        .collect();
    form_these(&servers, preseed, more)
}

/// Runs `rxd form` on the first of `servers` and `rxd join` on the others at once, each
/// server named `node<N>` by its number, with `preseed`, bounded; each run's output, or
/// `None` for a run killed at the limit.
fn form_these(
    servers: &[(&rxd_testkit::netns::NsMember, usize)],
    preseed: &str,
    more: &[&str],
) -> Vec<Option<std::process::Output>> {
    form_within(servers, preseed, more, Duration::from_secs(120))
}

/// [`form_these`], each run bounded by `limit`.
fn form_within(
    servers: &[(&rxd_testkit::netns::NsMember, usize)],
    preseed: &str,
    more: &[&str],
    limit: Duration,
) -> Vec<Option<std::process::Output>> {
    std::thread::scope(|s| {
        let runs: Vec<_> = servers
            .iter()
            .enumerate()
            .map(|(i, (m, n))| {
                s.spawn(move || {
                    let name = format!("node{n}");
                    let command = if i == 0 { "form" } else { "join" };
                    let mut args = vec![command, "--name", &name, "--preseed"];
                    if i == 0 {
                        args.extend_from_slice(more);
                    }
                    m.bounded("rxd", &args, Some(preseed), limit)
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().ok()).collect()
    })
}

/// The runs of [`form_all`], each of which must have ended within its limit.
fn ended(runs: Vec<Option<std::process::Output>>) -> Vec<std::process::Output> {
    runs.into_iter()
        .map(|r| r.expect("each server ends within its limit"))
        .collect()
}

/// Asserts that every run of [`form_all`] succeeded, showing all of them otherwise, and
/// that the servers then form one cluster of ONLINE members at their eth0 addresses, with
/// the preseed's pool on each.
fn assert_formed(members: &[rxd_testkit::netns::NsMember], runs: &[Option<std::process::Output>]) {
    let said: Vec<String> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| match r {
            Some(out) => format!(
                "node{} ({}): {}\n{}",
                i + 1,
                out.status,
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            ),
            None => format!("node{}: killed at its time limit", i + 1),
        })
        .collect();
    assert!(
        runs.iter()
            .all(|r| r.as_ref().is_some_and(|o| o.status.success())),
        "{}",
        said.join("\n")
    );
    let stdout = |i: usize| String::from_utf8_lossy(&runs[i].as_ref().unwrap().stdout).into_owned();
    let n = members.len();
    let formed = stdout(0);
    assert!(
        formed.contains(&format!("A new cluster of {n} servers, formed by node1")),
        "{formed}"
    );
    assert!(formed.contains("The cluster is formed"), "{formed}");
    for i in 1..n {
        let said = stdout(i);
        assert!(
            said.contains("This server is a member of the cluster"),
            "{said}"
        );
    }
    assert_cluster(members);
}

/// Asserts that `members` form one cluster of ONLINE members at their eth0 addresses, with a
/// `local` pool of the `dir` driver on each.
fn assert_cluster(members: &[rxd_testkit::netns::NsMember]) {
    let n = members.len();
    for m in members {
        let list = rxd_testkit::ok(&m.rxc(&["cluster", "list", "--format", "csv"]));
        for i in 1..=n {
            assert!(
                list.contains(&format!("node{i},https://192.0.2.{i}:8443")),
                "{list}"
            );
        }
        assert_eq!(list.matches("ONLINE").count(), n, "{list}");
        let pools = rxd_testkit::ok(&m.rxc(&["storage", "list", "--format", "csv"]));
        assert!(pools.contains("local,dir"), "{pools}");
        let profile = rxd_testkit::ok(&m.rxc(&["profile", "show", "default"]));
        assert!(profile.contains("pool: local"), "{profile}");
    }
}

/// Three servers, each in its own network namespace, form a cluster from one preseed run on
/// all of them at once: `rxd form` on node1, `rxd join` on the others, each returning once
/// the cluster is formed; the members then list each other ONLINE at their eth0 addresses,
/// with the preseed's pool created on each.
#[tokio::test]
async fn three_servers_form_a_cluster_from_one_preseed() {
    let (_hub, members) = rxd_testkit::netns::hub_with(3);
    let pass_file = members[0].dir.join("form.pass");
    std::fs::write(&pass_file, PASSPHRASE).unwrap();
    let runs = form_all(&members, &form_preseed(3, &pass_file));
    assert_formed(&members, &runs);
    // The real `lxc` sees the cluster as LXD's would be.
    let lxc = std::path::Path::new("/usr/bin/lxc");
    assert!(
        lxc.exists(),
        "lxc is not installed: .ci/run installs Debian's lxd-client"
    );
    let listed =
        rxd_testkit::ok(&members[1].run_in(lxc, &["cluster", "list", "--format", "csv"], None));
    for i in 1..=3 {
        assert!(
            listed.contains(&format!("node{i},https://192.0.2.{i}:8443,")),
            "{listed}"
        );
    }
    assert_eq!(listed.matches("ONLINE").count(), 3, "{listed}");
}

/// A server that reports another version than the initiator's is refused: the plan names it
/// and both versions, and every server is left as it was.
#[tokio::test]
async fn a_server_of_another_version_is_refused() {
    let (_hub, members) = rxd_testkit::netns::hub_with_env(3, &[(2, "RXD_FORM_VERSION", "0.0.1")]);
    let pass_file = members[0].dir.join("form.pass");
    std::fs::write(&pass_file, PASSPHRASE).unwrap();
    let runs = ended(form_all(&members, &form_preseed(3, &pass_file)));
    let initiator = rxd_testkit::fails(&runs[0]);
    assert!(
        initiator.contains(&format!(
            "Server \"node3\" runs version 0.0.1, the initiator {}",
            env!("CARGO_PKG_VERSION")
        )),
        "{initiator}"
    );
    for out in &runs[1..] {
        let err = rxd_testkit::fails(out);
        assert!(err.contains("The formation was aborted"), "{err}");
    }
    assert_as_before(&members).await;
}

/// A window whose members do not all come before it expires closes: `rxd form` says it
/// expired, the joiner that came is told so, and both are left as they were.
#[tokio::test]
async fn a_window_that_expires_changes_nothing() {
    let (_hub, members) = rxd_testkit::netns::hub_with(3);
    let pass_file = members[0].dir.join("form.pass");
    std::fs::write(&pass_file, PASSPHRASE).unwrap();
    // node3 is named but never runs `rxd join`.
    let preseed = form_preseed(3, &pass_file).replace("window: 5m", "window: 4s");
    let servers = [(&members[0], 1), (&members[1], 2)];
    let runs = ended(form_these(&servers, &preseed, &[]));
    let initiator = rxd_testkit::fails(&runs[0]);
    assert!(
        initiator.contains("The formation window closed: the formation window expired"),
        "{initiator}"
    );
    let joiner = rxd_testkit::fails(&runs[1]);
    assert!(
        joiner.contains("The formation was aborted: the formation window expired"),
        "{joiner}"
    );
    assert_as_before(&members[..2]).await;
}

/// Two formations at once on one network: node1 with node2, node3 with node4. node4 finds
/// both windows by DNS-SD and takes the one of the initiator its preseed names; node2, asked,
/// is shown both windows with their fingerprints and picks node1's; two clusters of two result.
#[tokio::test]
async fn two_windows_at_once_form_two_clusters() {
    let (_hub, members) = rxd_testkit::netns::hub_with(4);
    let pass_file = members[0].dir.join("form.pass");
    std::fs::write(&pass_file, PASSPHRASE).unwrap();
    let preseed = |a: usize, b: usize| {
        format!(
            "initiator: node{a}\ninterface: eth0\npassphrase_file: {}\nwindow: 5m\nmembers:\n- name: node{a}\n- name: node{b}\n",
            pass_file.display()
        )
    };
    let (first, second) = (preseed(1, 2), preseed(3, 4));
    let (one, two, asked) = std::thread::scope(|s| {
        let one = s.spawn(|| form_these(&[(&members[0], 1)], &first, &[]));
        let two = s.spawn(|| form_these(&[(&members[2], 3), (&members[3], 4)], &second, &[]));
        // node2 asks, once both windows are open (on a thread of its own: the test's own
        // thread drives the runtime).
        let asked = s.spawn(|| {
            for m in [&members[0], &members[2]] {
                window_until(m, "a window to be open", |_| true);
            }
            let mut join = Prompted::start(
                &members[1],
                &["join", "--name", "node2", "--interface", "eth0"],
            );
            join.answer(
                "What is the IP address of the server forming the cluster?",
                "",
            );
            join.wait_for(&["Formation windows on eth0:"]);
            let (n, _) = join.wait_for(&["1. node1 at ", "1. node3 at "]);
            join.wait_for(&[if n == 0 {
                "2. node3 at "
            } else {
                "2. node1 at "
            }]);
            join.answer(
                "Which window do you want to join? (1-2): ",
                if n == 0 { "1" } else { "2" },
            );
            join.answer("Passphrase: ", PASSPHRASE);
            join.end()
        });
        (
            one.join().unwrap(),
            two.join().unwrap(),
            asked.join().unwrap(),
        )
    });
    let (ok, said) = asked;
    assert!(ok, "{said}");
    assert!(
        said.contains("This server is a member of the cluster"),
        "{said}"
    );
    for (i, r) in one.iter().chain(&two).enumerate() {
        let out = r.as_ref().expect("each server ends within its limit");
        assert!(
            out.status.success(),
            "run {i}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (m, mine, other) in [(&members[0], [1, 2], [3, 4]), (&members[3], [3, 4], [1, 2])] {
        let list = rxd_testkit::ok(&m.rxc(&["cluster", "list", "--format", "csv"]));
        for i in mine {
            assert!(list.contains(&format!("node{i},")), "{list}");
        }
        for i in other {
            assert!(!list.contains(&format!("node{i},")), "{list}");
        }
        assert_eq!(list.matches("ONLINE").count(), 2, "{list}");
    }
}

/// `rxd join --dry-run` shows the window it found and the data joining would lose, taking no
/// part; `rxd form` on a server whose window is already open says so and listens where it did
/// before.
#[tokio::test]
async fn a_joiners_dry_run_shows_the_window_and_a_second_window_is_refused() {
    let (_hub, members) = rxd_testkit::netns::hub_with(3);
    let node1 = members[0].client();
    node1
        .request(
            "PATCH",
            "/1.0",
            Some(json!({"config": {"core.https_address": "192.0.2.1:8443"}})),
            None,
        )
        .await
        .unwrap();
    let open = |c: &Client, name: &str| {
        let body = json!({"name": name, "passphrase": PASSPHRASE});
        let c = c.clone();
        async move {
            c.request("POST", WINDOW_PATH, Some(body), None)
                .await
                .unwrap()
                .metadata::<WindowOpened>()
                .unwrap()
        }
    };
    let opened = open(&node1, "node1").await;
    rxd_testkit::ok(&members[1].rxc(&["profile", "create", "mine"]));
    let shown = rxd_testkit::ok(&members[1].cmd(
        "rxd",
        &[
            "join",
            "--name",
            "node2",
            "--dry-run",
            "--initiator-address",
            "192.0.2.1",
        ],
        None,
    ));
    assert!(
        shown.contains(&format!(
            "Formation window {} of node1 at 192.0.2.1:8443",
            opened.id
        )),
        "{shown}"
    );
    assert!(
        shown.contains("Joining loses on node2: profiles mine"),
        "{shown}"
    );
    let state: WindowState = node1.get(WINDOW_PATH).await.unwrap();
    assert!(state.joiners.is_empty(), "{state:?}");

    // node3 listens nowhere and has a window open already.
    open(&members[2].client(), "node3").await;
    let pass_file = members[2].dir.join("form.pass");
    std::fs::write(&pass_file, PASSPHRASE).unwrap();
    let preseed = format!(
        "initiator: node3\ninterface: eth0\npassphrase_file: {}\nmembers:\n- name: node3\n- name: node1\n",
        pass_file.display()
    );
    let form = ["form", "--name", "node3", "--preseed"];
    let err = rxd_testkit::fails(&members[2].cmd("rxd", &form, Some(&preseed)));
    assert!(
        err.contains("A formation window is already open") && err.contains("rxd form --abort"),
        "{err}"
    );
    assert_as_before(&members[2..]).await;
    let aborted = rxd_testkit::ok(&members[2].cmd("rxd", &["form", "--abort"], None));
    assert!(aborted.contains("aborted"), "{aborted}");

    // SIGTERM, as Ctrl-C, on a `rxd form` waiting for its joiners closes its window and puts
    // its address back.
    let mut waiting = std::process::Command::new("ip")
        .args(["netns", "exec", &members[2].ns.name])
        .arg(rxd_testkit::bin("rxd"))
        .args(form)
        .env("RXD_DIR", &members[2].dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = waiting.stdin.take().unwrap();
        stdin.write_all(preseed.as_bytes()).unwrap();
    }
    let node3 = members[2].client();
    rxd_testkit::until(
        Duration::from_secs(30),
        "node3's window to open",
        || async {
            node3
                .get::<WindowState>(WINDOW_PATH)
                .await
                .is_ok_and(|w| w.phase == "Open")
        },
    )
    .await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(waiting.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = rxd_testkit::wait_bounded(waiting, "rxd form", Duration::from_secs(30));
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    let ok = out.status.success();
    assert!(!ok, "{said}");
    assert!(
        said.contains("Aborting the formation") && said.contains("nothing changed on this server"),
        "{said}"
    );
    assert_as_before(&members[2..]).await;
    let state: WindowState = members[2].client().get(WINDOW_PATH).await.unwrap();
    assert_eq!(state.phase, "Aborted");
}

/// A joiner whose firewall drops multicast DNS sees no window: after 60 s of silence it says
/// so, naming the interface and UDP 5353 and the way out; given the initiator's address it
/// joins.
#[tokio::test]
async fn without_multicast_a_joiner_says_why_and_joins_by_address() {
    let (_hub, members) = rxd_testkit::netns::hub_with(2);
    let nft = |args: &[&str]| {
        let out = members[1].ns.exec("nft", args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    nft(&["add", "table", "inet", "nomdns"]);
    for (chain, hook) in [("in", "input"), ("out", "output")] {
        let spec = format!("{{ type filter hook {hook} priority 0 ; }}");
        nft(&["add", "chain", "inet", "nomdns", chain, &spec]);
        for port in ["dport", "sport"] {
            nft(&[
                "add", "rule", "inet", "nomdns", chain, "udp", port, "5353", "drop",
            ]);
        }
    }
    let (form, by_address) = unheard_then_by_address(&members);
    assert_formed(&members, &[Some(form), Some(by_address)]);
}

/// `rxd join --name node2 --preseed` on `m` with `more` flags, bounded by `limit`.
fn join_as_node2(
    m: &rxd_testkit::netns::NsMember,
    preseed: &str,
    more: &[&str],
    limit: Duration,
) -> std::process::Output {
    let mut args = vec!["join", "--name", "node2", "--preseed"];
    args.extend_from_slice(more);
    m.bounded("rxd", &args, Some(preseed), limit)
}

/// node1 runs `rxd form` with a preseed that has joiners discover its window; node2 runs
/// `rxd join`, which hears no window (multicast DNS does not reach it) and says why after 60 s
/// (checked here), then again with `--initiator-address`: the outputs of `rxd form` and of
/// that second `rxd join`.
fn unheard_then_by_address(
    members: &[rxd_testkit::netns::NsMember],
) -> (std::process::Output, std::process::Output) {
    let pass_file = members[0].dir.join("form.pass");
    std::fs::write(&pass_file, PASSPHRASE).unwrap();
    let preseed = discovered_preseed(2, &pass_file);
    let limit = Duration::from_secs(150);
    let (form, silent, by_address) = std::thread::scope(|s| {
        let form = s.spawn(|| {
            members[0].bounded(
                "rxd",
                &["form", "--name", "node1", "--preseed"],
                Some(&preseed),
                limit,
            )
        });
        let join = |more: &[&str]| join_as_node2(&members[1], &preseed, more, limit);
        let silent = join(&[]);
        let by_address = join(&["--initiator-address", "192.0.2.1"]);
        (form.join().unwrap(), silent, by_address)
    });
    says(
        &rxd_testkit::fails(&silent),
        &[
            "No formation window was seen on interface eth0 within 60 s",
            "UDP port 5353",
            "--initiator-address",
            "nothing changed on this server",
        ],
    );
    (form, by_address)
}

/// On routed subnets (a router between the initiator's segment and the joiner's, forwarding
/// no multicast DNS) a joiner hears no window: after 60 s it names its interface, UDP 5353
/// and `--initiator-address`; given the address, it joins across the router, each member at
/// its own subnet's address.
#[tokio::test]
async fn on_routed_subnets_a_joiner_says_why_and_joins_by_address() {
    let (_hub, members) = rxd_testkit::netns::routed_pair();
    let (form, by_address) = unheard_then_by_address(&members);
    for (i, out) in [form, by_address].iter().enumerate() {
        assert!(
            out.status.success(),
            "node{}: {}",
            i + 1,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for m in &members {
        let list = rxd_testkit::ok(&m.rxc(&["cluster", "list", "--format", "csv"]));
        says(
            &list,
            &[
                "node1,https://192.0.2.1:8443",
                "node2,https://198.51.100.2:8443",
            ],
        );
        assert_eq!(list.matches("ONLINE").count(), 2, "{list}");
    }
}

/// Five servers form a cluster at once, from one preseed.
#[tokio::test]
async fn five_servers_form_a_cluster_from_one_preseed() {
    let (_hub, members) = rxd_testkit::netns::hub_with(5);
    let pass_file = members[0].dir.join("form.pass");
    std::fs::write(&pass_file, PASSPHRASE).unwrap();
    let runs = form_all(&members, &form_preseed(5, &pass_file));
    assert_formed(&members, &runs);
}

/// A cluster of three grows to five with `rxd form` on one of its members and `rxd join` on
/// the two new servers: the plan keeps the members where they are, the new ones join with the
/// cluster's pool, and all five list each other ONLINE.
#[tokio::test]
async fn a_cluster_of_three_grows_to_five() {
    let (_hub, members) = rxd_testkit::netns::hub_with(5);
    let pass_file = members[0].dir.join("form.pass");
    std::fs::write(&pass_file, PASSPHRASE).unwrap();
    let runs = form_all(&members[..3], &form_preseed(3, &pass_file));
    assert_formed(&members[..3], &runs);
    let grow = format!(
        "initiator: node1\ninitiator_address: 192.0.2.1\ninterface: eth0\npassphrase_file: {}\nmembers:\n- name: node1\n- name: node4\n- name: node5\n",
        pass_file.display()
    );
    let servers = [(&members[0], 1), (&members[3], 4), (&members[4], 5)];
    let runs = ended(form_these(&servers, &grow, &[]));
    let plan = rxd_testkit::ok(&runs[0]);
    assert!(
        plan.contains("The cluster of node1 grows by 2 to 5 servers"),
        "{plan}"
    );
    assert!(plan.contains("The cluster is formed"), "{plan}");
    for out in &runs[1..] {
        let said = rxd_testkit::ok(out);
        assert!(
            said.contains("This server is a member of the cluster"),
            "{said}"
        );
    }
    assert_cluster(&members);
}

/// A server that joins the window but is not among the preseed's members is told so and
/// changes nothing; the others form their cluster without it.
#[tokio::test]
async fn a_server_not_chosen_is_told_so_and_left_alone() {
    let (_hub, members) = rxd_testkit::netns::hub_with(3);
    let pass_file = members[0].dir.join("form.pass");
    std::fs::write(&pass_file, PASSPHRASE).unwrap();
    // The preseed names node1 and node2; node3 runs `rxd join` with a copy naming it too.
    let two = form_preseed(2, &pass_file);
    let with_three = two.replace("- name: node2\n", "- name: node2\n- name: node3\n");
    let limit = Duration::from_secs(120);
    let run = |i: usize, command: &str, preseed: &str| {
        let name = format!("node{}", i + 1);
        members[i].bounded(
            "rxd",
            &[command, "--name", &name, "--preseed"],
            Some(preseed),
            limit,
        )
    };
    let runs = std::thread::scope(|s| {
        let form = s.spawn(|| run(0, "form", &two));
        let extra = s.spawn(|| run(2, "join", &with_three));
        // node2 joins once node3 is in the window, so that node3 is there when the plan is
        // made.
        let joined = s.spawn(|| {
            window_until(&members[0], "node3 reported its facts to the window", |w| {
                w.joiners
                    .iter()
                    .any(|j| j.name == "node3" && j.facts.is_some())
            });
            run(1, "join", &two)
        });
        let joined = joined.join().unwrap();
        [
            Some(form.join().unwrap()),
            Some(joined),
            Some(extra.join().unwrap()),
        ]
    });
    assert_formed(&members[..2], &runs[..2]);
    let err = rxd_testkit::fails(runs[2].as_ref().unwrap());
    assert!(
        err.contains("node3 is not among the servers chosen for the cluster"),
        "{err}"
    );
    assert_as_before(&members[2..]).await;
}

/// A command whose questions are answered as they are asked, its output read as it comes.
struct Prompted {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    out: Arc<std::sync::Mutex<String>>,
    seen: usize,
}

impl Prompted {
    fn start(m: &rxd_testkit::netns::NsMember, args: &[&str]) -> Prompted {
        use std::io::Read;
        let mut child = std::process::Command::new("ip")
            .args(["netns", "exec", &m.ns.name])
            .arg(rxd_testkit::bin("rxd"))
            .args(args)
            .env("RXD_DIR", &m.dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = Arc::new(std::sync::Mutex::new(String::new()));
        for mut stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = out.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    out.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        Prompted {
            child,
            stdin,
            out,
            seen: 0,
        }
    }

    /// Waits (at most 60 s) until the output after the last text waited for holds one of
    /// `texts`; answers which, and the output up to the end of the line it is on.
    fn wait_for(&mut self, texts: &[&str]) -> (usize, String) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            {
                let out = self.out.lock().unwrap();
                let rest = &out[self.seen..];
                if let Some((i, at)) = texts
                    .iter()
                    .enumerate()
                    .filter_map(|(i, t)| rest.find(t).map(|at| (i, at + t.len())))
                    .min_by_key(|(_, at)| *at)
                {
                    let line_end = rest[at..].find('\n').map_or(rest.len(), |e| at + e);
                    let line = rest[at..line_end].to_string();
                    self.seen += at;
                    return (i, line);
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "none of {texts:?} in: {}",
                self.out.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for `prompt`, then answers `line`.
    fn answer(&mut self, prompt: &str, line: &str) {
        use std::io::Write;
        self.wait_for(&[prompt]);
        writeln!(self.stdin, "{line}").unwrap();
    }

    /// Waits (at most 120 s) for the command to end; answers its success and all it said.
    fn end(mut self) -> (bool, String) {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() >= deadline {
                let _ = self.child.kill();
                break self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // The readers finish once the pipes close.
        std::thread::sleep(Duration::from_millis(100));
        let said = self.out.lock().unwrap().clone();
        (status.success(), said)
    }
}

/// `rxd form` and `rxd join` without a preseed, their questions answered through pipes as
/// they are asked: the initiator's address, the passphrase it shows typed on each joiner,
/// the joiners listed as they come until Enter, all of them added, a `dir` pool, no bridge,
/// and yes to forming a cluster of 3 servers with no local data lost.
#[tokio::test]
async fn the_questions_of_rxd_form_and_rxd_join_form_a_cluster() {
    let (_hub, members) = rxd_testkit::netns::hub_with(3);
    let mut form = Prompted::start(&members[0], &["form", "--name", "node1"]);
    form.answer(
        "What IP address or DNS name should be used to reach this server?",
        "192.0.2.1",
    );
    form.wait_for(&["rxd join --initiator-address 192.0.2.1\n"]);
    let (_, passphrase) = form.wait_for(&["Passphrase: "]);
    assert_eq!(passphrase.split(' ').count(), 4, "{passphrase}");
    let typed = format!("192.0.2.1\n{passphrase}\n");
    let joins = std::thread::scope(|s| {
        let joins: Vec<_> = (2..=3)
            .map(|i| {
                let (m, typed) = (&members[i - 1], &typed);
                s.spawn(move || {
                    let name = format!("node{i}");
                    m.bounded(
                        "rxd",
                        &["join", "--name", &name],
                        Some(typed),
                        Duration::from_secs(120),
                    )
                })
            })
            .collect();
        // Listed as they report their facts, in either order.
        let (first, _) = form.wait_for(&["\nnode2 ", "\nnode3 "]);
        form.wait_for(&[if first == 0 { "\nnode3 " } else { "\nnode2 " }]);
        form.answer("", "");
        form.answer("Servers to add (names or all) [default=all]: ", "all");
        form.answer(
            "Do you want to configure a new local storage pool? (yes/no) [default=yes]: ",
            "yes",
        );
        let bridge = "Would you like to create a new local network bridge?";
        if form
            .wait_for(&["Name of the storage backend to use", bridge])
            .0
            == 0
        {
            form.answer("", "dir");
        }
        form.answer(bridge, "no");
        form.answer(
            "Form a cluster of 3 servers? No local data is lost. (yes/no) [default=no]: ",
            "yes",
        );
        joins
            .into_iter()
            .map(|j| j.join().unwrap())
            .collect::<Vec<_>>()
    });
    let (ok, said) = form.end();
    assert!(ok, "{said}");
    assert!(said.contains("The cluster is formed"), "{said}");
    assert_eq!(
        said.matches("A new cluster of 3 servers, formed by node1")
            .count(),
        1,
        "the plan is shown once: {said}"
    );
    for out in &joins {
        let said = rxd_testkit::ok(out);
        assert!(said.contains("Trusted node1 ("), "{said}");
        assert!(
            said.contains("This server is a member of the cluster"),
            "{said}"
        );
    }
    assert_cluster(&members);
}

/// Without the initiator's address the joiners find its window by DNS-SD on eth0, the
/// interface holding its address, where the window is advertised while it takes servers;
/// once the cluster is formed it is no longer advertised.
#[tokio::test]
async fn joiners_discover_the_window_on_the_interface() {
    let (_hub, members) = rxd_testkit::netns::hub_with(3);
    let pass_file = members[0].dir.join("form.pass");
    std::fs::write(&pass_file, PASSPHRASE).unwrap();
    let runs = form_all(&members, &discovered_preseed(3, &pass_file));
    assert_formed(&members, &runs);
    // Browsed from node2's namespace (on a thread there, with the mDNS daemon's threads).
    let ns = std::fs::File::open(format!("/run/netns/{}", members[1].ns.name)).unwrap();
    let browsed = std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let quick = rxd_form::discovery::BrowseSettings {
            listen: Duration::from_secs(1),
            silence: Duration::from_secs(3),
        };
        rxd_form::discovery::browse("eth0", quick)
    })
    .join()
    .unwrap();
    assert!(browsed.is_err(), "still advertised: {browsed:?}");
}

/// Every server is as before a formation: standalone, listening on no network address.
async fn assert_as_before(members: &[rxd_testkit::netns::NsMember]) {
    for m in members {
        let (server, _) = m.client().server().await.unwrap();
        let config = server.config.unwrap_or_default();
        assert_eq!(config.get("core.https_address"), None, "{config:?}");
        let cluster: serde_json::Value = m.client().get("/1.0/cluster").await.unwrap();
        assert_eq!(cluster["enabled"], false);
    }
}

/// `rxd form --dry-run` prints the plan and the data that would be lost, changes nothing,
/// and closes the window: the joiners are told the formation was aborted and say so.
#[tokio::test]
async fn a_dry_run_prints_the_plan_and_changes_nothing() {
    let (_hub, members) = rxd_testkit::netns::hub_with(3);
    // node3 has a profile of its own, which joining would discard.
    rxd_testkit::ok(&members[2].rxc(&["profile", "create", "mine"]));
    let pass_file = members[0].dir.join("form.pass");
    std::fs::write(&pass_file, PASSPHRASE).unwrap();
    let runs = ended(form_all_with(
        &members,
        &form_preseed(3, &pass_file),
        &["--dry-run"],
    ));
    let plan = rxd_testkit::ok(&runs[0]);
    assert!(
        plan.contains("A new cluster of 3 servers, formed by node1"),
        "{plan}"
    );
    assert!(plan.contains("node3  192.0.2.3:8443"), "{plan}");
    assert!(
        plan.contains("mine"),
        "node3's profile is named as lost: {plan}"
    );
    for out in &runs[1..] {
        let err = rxd_testkit::fails(out);
        assert!(
            err.contains("The formation was aborted: the operator aborted the formation; nothing changed on this server"),
            "{err}"
        );
    }
    assert_as_before(&members).await;
    rxd_testkit::ok(&members[2].rxc(&["profile", "show", "mine"]));
}

/// Three servers in a formation that fails: node1 holds a profile `kept` first, server `at`
/// runs with `failpoint`, and `during` runs while they form. Every command must fail; then
/// every server must be standalone, listening where it did before and holding what it held
/// (all but the last, when `during` killed it). Answers what each command said.
async fn a_failed_formation(
    at: usize,
    failpoint: &str,
    during: impl Fn(&[rxd_testkit::netns::NsMember]) -> Killed + Sync,
) -> Vec<String> {
    let (_hub, members) = rxd_testkit::netns::hub_with_env(3, &[(at, "RXD_FAILPOINT", failpoint)]);
    rxd_testkit::ok(&members[0].rxc(&["profile", "create", "kept"]));
    let before = holdings(&members);
    let pass_file = members[0].dir.join("form.pass");
    std::fs::write(&pass_file, PASSPHRASE).unwrap();
    let preseed = form_preseed(3, &pass_file);
    let (runs, killed) = std::thread::scope(|s| {
        let runs = s.spawn(|| form_all(&members, &preseed));
        let killed = during(&members);
        (runs.join().unwrap(), killed)
    });
    let alive = match killed {
        Killed::None => members.len(),
        Killed::Last => members.len() - 1,
    };
    let said: Vec<String> = runs
        .iter()
        .map(|r| rxd_testkit::fails(r.as_ref().expect("each server ends within its limit")))
        .collect();
    // An initiator put back at start listens where the formation had it listen until its
    // joiners have learnt the end.
    let node1 = members[0].client();
    rxd_testkit::until(
        Duration::from_secs(30),
        "node1 to listen where it did before",
        || async {
            node1.server().await.is_ok_and(|(s, _)| {
                s.config
                    .unwrap_or_default()
                    .get("core.https_address")
                    .is_none()
            })
        },
    )
    .await;
    assert_as_before(&members[..alive]).await;
    assert_kept(&members[0]);
    assert_eq!(holdings(&members[..alive]), before[..alive]);
    said
}

/// Whether the scenario of [`a_failed_formation`] killed a server for good.
enum Killed {
    None,
    /// The last server.
    Last,
}

/// Waits (at most 60 s, from a thread that drives no runtime) until `m` has a window for
/// which `ok` holds.
fn window_until(m: &rxd_testkit::netns::NsMember, what: &str, ok: impl Fn(&WindowState) -> bool) {
    let c = m.client();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(rxd_testkit::until(
        Duration::from_secs(60),
        what,
        || async {
            c.get::<WindowState>(WINDOW_PATH)
                .await
                .is_ok_and(|w| ok(&w))
        },
    ));
}

/// Waits (at most 60 s, off the runtime's thread) until `m`'s daemon logged `line`.
fn logged(m: &rxd_testkit::netns::NsMember, line: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !m.log().contains(line) {
        assert!(
            std::time::Instant::now() < deadline,
            "never logged {line:?}: {}",
            m.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts that `said` holds each of `parts`.
fn says(said: &str, parts: &[&str]) {
    for part in parts {
        assert!(said.contains(part), "{part:?} not in: {said}");
    }
}

/// A join that fails after another succeeded puts every server back as it was: node3's join
/// fails after the leader accepted it (a failpoint); node2, which joined, is taken out and is
/// standalone again; node1, which had bootstrapped the cluster, is standalone again with what
/// it held before (its profile, no pool); all listen where they did before, and every server
/// says why.
#[tokio::test]
async fn a_failed_join_puts_every_server_back_as_it_was() {
    let said = a_failed_formation(2, "join-after-accept:error", |_| Killed::None).await;
    says(
        &said[0],
        &[
            "node3: ",
            "node2 was taken out of the cluster again",
            "this server is standalone again, as before",
        ],
    );
    for s in &said[1..] {
        says(s, &["nothing changed on this server"]);
    }
}

/// node1 holds its profile `kept`, no pool and no cluster certificate, as before the
/// formation.
fn assert_kept(m: &rxd_testkit::netns::NsMember) {
    rxd_testkit::ok(&m.rxc(&["profile", "show", "kept"]));
    let profile = rxd_testkit::ok(&m.rxc(&["profile", "show", "default"]));
    assert!(!profile.contains("pool:"), "{profile}");
    let pools = rxd_testkit::ok(&m.rxc(&["storage", "list", "--format", "csv"]));
    assert_eq!(pools.trim(), "", "{pools}");
    assert!(!m.dir.join("cluster.crt").exists());
    assert!(!m.dir.join("storage-pools").join("local").exists());
}

/// What each server holds, as its own client shows it: server configuration, profiles (the
/// default one in full), pools and networks; equal before and after a formation that failed.
fn holdings(members: &[rxd_testkit::netns::NsMember]) -> Vec<String> {
    members
        .iter()
        .map(|m| {
            [
                &["config", "show"][..],
                &["profile", "list", "--format", "csv"],
                &["profile", "show", "default"],
                &["storage", "list", "--format", "csv"],
                &["network", "list", "--format", "csv"],
            ]
            .iter()
            .map(|args| rxd_testkit::ok(&m.rxc(args)))
            .collect::<Vec<_>>()
            .join("\n")
        })
        .collect()
}

/// A joiner that dies while it joins (its daemon and `rxd join` killed while the daemon holds
/// in its join) stops asking for instructions: the initiator takes it for gone after 45 s
/// instead of waiting out the join limit, and puts every other server back.
#[tokio::test]
async fn a_joiner_that_dies_while_joining_is_given_up() {
    let said = a_failed_formation(2, "join-after-accept:delay=300", |members| {
        logged(&members[2], "Failpoint join-after-accept: holding");
        for pid in members[2].ns.pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        Killed::Last
    })
    .await;
    says(
        &said[0],
        &[
            "node3 stopped answering while joining",
            "this server is standalone again, as before",
        ],
    );
    says(&said[1], &["nothing changed on this server"]);
}

/// The initiator's last step fails after every joiner joined (a failpoint), while it runs:
/// both joiners are taken out again and node1 is put back, every server holding what it held.
#[tokio::test]
async fn a_failure_after_the_joins_puts_every_server_back() {
    let said = a_failed_formation(0, "form-before-decision:error", |_| Killed::None).await;
    says(
        &said[0],
        &[
            "Injected failure at form-before-decision",
            "node2 was taken out of the cluster again",
            "node3 was taken out of the cluster again",
            "this server is standalone again, as before",
        ],
    );
}

/// The initiator dies at `step` (a crash failpoint) and is started again: it puts itself back
/// as it was from its journal, and the joiners, asking it how the formation ended, are told
/// it was aborted, leave the cluster if they joined it, and listen where they did before.
async fn a_killed_initiator_at(step: &str) {
    let said = a_failed_formation(0, &format!("{step}:crash"), |members| {
        // The daemon ends at the failpoint; it is started again without it.
        members[0].restart();
        let log = members[0].log();
        assert!(log.contains(&format!("Failpoint {step}: exiting")), "{log}");
        Killed::None
    })
    .await;
    for s in &said[1..] {
        says(
            s,
            &["The formation was aborted: the initiator stopped during the formation"],
        );
    }
}

/// Killed right after it bootstrapped the cluster, before any joiner joined.
#[tokio::test]
async fn an_initiator_killed_after_its_bootstrap_leaves_every_server_as_it_was() {
    a_killed_initiator_at("form-after-bootstrap").await;
}

/// Killed after every joiner joined, before the formation was decided.
#[tokio::test]
async fn an_initiator_killed_after_the_joins_leaves_every_server_as_it_was() {
    a_killed_initiator_at("form-before-decision").await;
}

/// Ctrl-C on `rxd form` while the cluster is being made aborts the formation in the daemon,
/// which puts every server back: node1 is held right after its bootstrap (a failpoint) when
/// the operator presses Ctrl-C; `rxd form` says it aborts, waits, and fails with the reason;
/// the joiners are told the operator aborted; every server is as before.
#[tokio::test]
async fn ctrl_c_on_rxd_form_puts_every_server_back() {
    let said = a_failed_formation(0, "form-after-bootstrap:delay=3", |members| {
        logged(&members[0], "Failpoint form-after-bootstrap: holding");
        // `rxd form`, found among node1's namespace's processes by its arguments.
        let form = members[0]
            .ns
            .pids()
            .into_iter()
            .find(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == b"form"))
            })
            .expect("rxd form runs");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(form),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
        Killed::None
    })
    .await;
    says(
        &said[0],
        &[
            "Aborting the formation",
            "The formation failed: the operator aborted the formation",
            "this server is standalone again, as before",
        ],
    );
    for s in &said[1..] {
        says(
            s,
            &["The formation was aborted: the operator aborted the formation"],
        );
    }
}

/// A formation that cannot go ahead changes nothing: node2 cannot reach node3's planned
/// address (its own firewall drops it), so the plan made after probing fails, every server
/// says why, and each is left as it was: standalone, listening where it did before.
#[tokio::test]
async fn a_formation_that_cannot_go_ahead_leaves_every_server_as_it_was() {
    let (_hub, members) = rxd_testkit::netns::hub_with(3);
    members[1].ns.exec("nft", &["add", "table", "inet", "cut"]);
    members[1].ns.exec(
        "nft",
        &[
            "add",
            "chain",
            "inet",
            "cut",
            "out",
            "{ type filter hook output priority 0 ; }",
        ],
    );
    let drop = members[1].ns.exec(
        "nft",
        &[
            "add",
            "rule",
            "inet",
            "cut",
            "out",
            "ip",
            "daddr",
            "192.0.2.3",
            "tcp",
            "dport",
            "8443",
            "drop",
        ],
    );
    assert!(
        drop.status.success(),
        "{}",
        String::from_utf8_lossy(&drop.stderr)
    );
    let pass_file = members[0].dir.join("form.pass");
    std::fs::write(&pass_file, PASSPHRASE).unwrap();
    let runs = form_all(&members, &form_preseed(3, &pass_file));
    let outputs = ended(runs);
    for out in &outputs {
        let err = rxd_testkit::fails(out);
        assert!(
            err.contains("Server \"node2\" cannot reach \"node3\" at 192.0.2.3:8443"),
            "{err}"
        );
    }
    assert_as_before(&members).await;
}

/// A rogue on the LAN advertises a window of the same initiator name, with the real
/// window's fingerprint copied, and relays TLS to the real initiator from its own address.
/// Answering discovery earns it nothing: a joiner named by preseed refuses to choose between
/// the two windows; a joiner sent to the rogue's address fails to confirm the passphrase,
/// trusts nothing and changes nothing; the initiator never pins the relay's certificate; the
/// joiner sent to the real address then forms the cluster.
#[test]
fn a_rogue_advertiser_and_its_relay_earn_nothing() {
    let (_hub, members) = rxd_testkit::netns::hub_with(3);
    let pass_file = members[0].dir.join("form.pass");
    std::fs::write(&pass_file, PASSPHRASE).unwrap();
    let preseed = discovered_preseed(2, &pass_file);
    let limit = Duration::from_secs(120);
    let node2_before = holdings(&members[1..2]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let node2_trusted = rt.block_on(rxd_testkit::trusted_fingerprints(&members[1].client()));
    let rogue_ns = std::fs::File::open(format!("/run/netns/{}", members[2].ns.name)).unwrap();
    let (stop_rogue, stopped) = tokio::sync::oneshot::channel::<()>();
    let (form, by_name, by_rogue, by_address) = std::thread::scope(|s| {
        let form = s.spawn(|| {
            members[0].bounded(
                "rxd",
                &["form", "--name", "node1", "--preseed"],
                Some(&preseed),
                limit,
            )
        });
        window_until(&members[0], "node1's window to open", |w| w.phase == "Open");
        let real = rt
            .block_on(members[0].client().get::<WindowState>(WINDOW_PATH))
            .unwrap();
        let (up, upped) = std::sync::mpsc::channel();
        let rogue = s.spawn(move || {
            nix::sched::setns(&rogue_ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let relaying = relay("192.0.2.3:8443", "192.0.2.1:8443".into()).await;
                let advert = rxd_form::discovery::Advert::new(
                    "node1",
                    "0123456789abcdef",
                    &real.fingerprint,
                    8443,
                )
                .unwrap();
                let advertiser = rxd_form::discovery::Advertiser::start(&advert, "eth0").unwrap();
                up.send(()).unwrap();
                let _ = stopped.await;
                relaying.abort();
                drop(advertiser);
            });
        });
        upped.recv().unwrap();
        let join = |more: &[&str]| join_as_node2(&members[1], &preseed, more, limit);
        let by_name = join(&[]);
        let by_rogue = join(&["--initiator-address", "192.0.2.3"]);
        assert_eq!(holdings(&members[1..2]), node2_before);
        assert_eq!(
            rt.block_on(rxd_testkit::trusted_fingerprints(&members[1].client())),
            node2_trusted
        );
        let window = rt
            .block_on(members[0].client().get::<WindowState>(WINDOW_PATH))
            .unwrap();
        assert!(window.joiners.is_empty(), "{window:?}");
        assert_eq!(window.phase, "Open", "{window:?}");
        stop_rogue.send(()).unwrap();
        rogue.join().unwrap();
        let by_address = join(&["--initiator-address", "192.0.2.1"]);
        (form.join().unwrap(), by_name, by_rogue, by_address)
    });
    says(
        &rxd_testkit::fails(&by_name),
        &[
            "Several formation windows claim the name \"node1\"",
            "window 0123456789abcdef at 192.0.2.3",
            "--initiator-address",
            "nothing changed on this server",
        ],
    );
    says(
        &rxd_testkit::fails(&by_rogue),
        &["Cannot confirm", "nothing changed on this server"],
    );
    assert_formed(&members[..2], &[Some(form), Some(by_address)]);
}

/// Where the kill nemesis strikes a formation of three servers: which server's daemon, once
/// node1's window has reached which phase, how long after, and how long it stays down (1–4 s,
/// as in the fault suite).
#[derive(Debug)]
struct Strike {
    server: usize,
    phase: &'static str,
    after: Duration,
    down: Duration,
}

/// A window's phases in their order; a phase not seen (too short to poll) counts as passed
/// once a later one is.
const PHASES: [&str; 7] = [
    "Open",
    "Collecting",
    "Planning",
    "Preparing",
    "Committing",
    "Committed",
    "Aborted",
];

impl Strike {
    /// A strike on `server` once the window reaches `phase`, its timing drawn from `seed`.
    fn drawn(server: usize, phase: &'static str, seed: u64) -> Strike {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        Strike {
            server,
            phase,
            after: Duration::from_millis(rng.random_range(0..300)),
            down: Duration::from_millis(rng.random_range(1000..4000)),
        }
    }
}

/// One formation of node1, node2 and node3 under the kill nemesis' `strike` (`grow`: node1 and node2 are a cluster already and node3 joins it). Whatever the
/// strike, the servers end formed, one cluster of three ONLINE members with every command
/// but the struck server's saying so, or each as it was, standalone and holding what it held
/// (for growth: the cluster of two as it was, node3 standalone) with every command failing:
/// never a partial cluster.
fn under_the_kill_nemesis(strike: Strike, grow: bool) {
    eprintln!("{strike:?}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (_hub, members) = rxd_testkit::netns::hub_with(3);
    if grow {
        rxd_testkit::ok(&members[0].cmd(
            "rxd",
            &["init", "--preseed"],
            Some(&rxd_testkit::bootstrap_preseed(
                "192.0.2.1:8443",
                "node1",
                &[],
            )),
        ));
        rt.block_on(rxd_testkit::netns::join(&members[0], &members[1], 1, ""));
    } else {
        rxd_testkit::ok(&members[0].rxc(&["profile", "create", "kept"]));
    }
    let before = holdings(&members);
    let pass_file = members[0].dir.join("form.pass");
    std::fs::write(&pass_file, PASSPHRASE).unwrap();
    let preseed = if grow {
        format!(
            "initiator: node1\ninitiator_address: 192.0.2.1\ninterface: eth0\npassphrase_file: {}\nmembers:\n- name: node1\n- name: node3\n",
            pass_file.display()
        )
    } else {
        form_preseed(3, &pass_file)
    };
    let servers: Vec<(&rxd_testkit::netns::NsMember, usize)> = if grow {
        vec![(&members[0], 1), (&members[2], 3)]
    } else {
        members.iter().zip(1..).collect()
    };
    let runs = std::thread::scope(|s| {
        let runs = s.spawn(|| form_within(&servers, &preseed, &[], Duration::from_secs(240)));
        let at = PHASES.iter().position(|p| *p == strike.phase).unwrap();
        let node1 = members[0].client();
        let opened = std::sync::atomic::AtomicBool::new(false);
        rt.block_on(rxd_testkit::until(
            Duration::from_secs(60),
            &format!("node1's window to reach {}", strike.phase),
            || async {
                match node1.get::<WindowState>(WINDOW_PATH).await {
                    Ok(w) => {
                        opened.store(true, std::sync::atomic::Ordering::SeqCst);
                        let phase = PHASES.iter().position(|p| *p == w.phase);
                        assert!(phase.is_some(), "a phase of its own: {w:?}");
                        phase >= Some(at)
                    }
                    // Gone once it was open: the formation ended.
                    Err(e) => {
                        e.status() == Some(404) && opened.load(std::sync::atomic::Ordering::SeqCst)
                    }
                }
            },
        ));
        // The strike's schedule, drawn from the seed: not a wait for a condition.
        std::thread::sleep(strike.after);
        members[strike.server].kill();
        std::thread::sleep(strike.down);
        members[strike.server].start_again();
        runs.join().unwrap()
    });
    let said: Vec<String> = runs
        .iter()
        .map(|r| {
            let out = r.as_ref().expect("each command ends within its limit");
            format!(
                "{}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .collect();
    let members_of = |m: &rxd_testkit::netns::NsMember| {
        let c = m.client();
        async move {
            c.get::<Vec<serde_json::Value>>("/1.0/cluster/members?recursion=1")
                .await
                .map(|list| list.iter().filter(|m| m["status"] == "Online").count())
                .unwrap_or(0)
        }
    };
    let formed = runs[0].as_ref().is_some_and(|o| o.status.success())
        || rt.block_on(async { members_of(&members[2]).await > 0 });
    eprintln!(
        "{}:\n{}",
        if formed { "formed" } else { "not formed" },
        said.join("\n")
    );
    if formed {
        rt.block_on(rxd_testkit::until(
            Duration::from_secs(90),
            "three ONLINE members on each server",
            || async {
                for m in &members {
                    if members_of(m).await != 3 {
                        return false;
                    }
                }
                true
            },
        ));
        for (run, (_, n)) in runs.iter().zip(&servers) {
            let out = run.as_ref().unwrap();
            assert!(
                out.status.success() || *n == strike.server + 1,
                "formed, yet node{n} failed: {}",
                said.join("\n")
            );
        }
        assert_cluster(&members);
    } else {
        for out in runs.iter().flatten() {
            assert!(!out.status.success(), "{}", said.join("\n"));
        }
        let standalone = if grow { &members[2..] } else { &members[..] };
        rt.block_on(rxd_testkit::until(
            Duration::from_secs(200),
            "every server to listen where it did before",
            || async {
                for m in standalone {
                    let listens = m.client().server().await.is_ok_and(|(s, _)| {
                        s.config
                            .unwrap_or_default()
                            .get("core.https_address")
                            .is_none()
                    });
                    if !listens {
                        return false;
                    }
                }
                true
            },
        ));
        rt.block_on(assert_as_before(standalone));
        if grow {
            for m in &members[..2] {
                assert_eq!(rt.block_on(members_of(m)), 2, "{}", said.join("\n"));
            }
        }
        assert_eq!(holdings(&members), before, "{}", said.join("\n"));
    }
}

macro_rules! under_the_kill_nemesis {
    ($($name:ident: $server:expr, $phase:expr, $seed:expr, $grow:expr;)*) => {$(
        /// A formation under the kill nemesis (see [`under_the_kill_nemesis`]).
        #[test]
        fn $name() {
            under_the_kill_nemesis(Strike::drawn($server, $phase, $seed), $grow);
        }
    )*};
}

// Each server that takes part, struck in each step of the executor; the timing within the
// step drawn from the seed.
under_the_kill_nemesis! {
    the_initiator_killed_while_preparing: 0, "Preparing", 2, false;
    a_joiner_killed_while_preparing: 2, "Preparing", 4, false;
    a_joiner_killed_while_committing: 1, "Committing", 5, false;
    a_member_killed_while_its_cluster_grows: 1, "Committing", 7, true;
    a_new_member_killed_while_its_cluster_grows: 2, "Committing", 8, true;
}

// Known defects, to fix next (each seen failing in full runs or with the kill tests run side by
// side, passing alone): once the restarted initiator has put itself back, a joiner that was still
// inside a step (its join, or a report) finds it refusing connections at the formation's address
// for 120 s and gives up joined, keeping the formation's cluster and address:
//   the_initiator_killed_while_collecting: 0, "Collecting", 1, false;
//   the_initiator_killed_while_committing: 0, "Committing", 3, false;
// and, growing a cluster, the new member still lists the cluster's members when its `rxd join`
// has ended after the initiator's restart aborted the formation:
//   the_growing_initiator_killed_while_committing: 0, "Committing", 6, true;
