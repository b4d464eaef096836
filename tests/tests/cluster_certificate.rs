//! Issue 11 (Part B, point 3): `PUT /1.0/cluster/certificate` through `rxc cluster
//! update-certificate` and the real `lxc cluster update-certificate`. Every member serves the
//! new certificate once the command succeeded (checked in each member's own TLS handshake),
//! members keep talking to each other, joins with new tokens work, a restarted member comes back
//! on it, and a client pinned to the old one is told both fingerprints. A rotation that cannot
//! reach every member leaves every member on the old certificate; bad input is a 400 sentence.
//! A coordinator that dies between staging and the commit point leaves every member on the old
//! certificate (and a new rotation works); one that dies just after it leaves every member on
//! the new one once it is back.

use std::time::{Duration, Instant};

use rxd_api::ClusterCertificatePut;
use rxd_client::Client;
use rxd_testkit::{fails, ok, until, Member, Net};

const LXC: &str = "/usr/bin/lxc";

/// The fingerprint of the certificate `address` presents in its TLS handshake.
async fn served_fingerprint(address: &str) -> Option<String> {
    let (config, captured) = rxd_tls::capture_client_config(None).unwrap();
    let client = Client::https_with_config(address, config).unwrap();
    client.server().await.ok()?;
    captured.fingerprint()
}

/// Each member's handshake fingerprint, in member order.
async fn served(net: &Net, n: u8) -> Vec<Option<String>> {
    let mut fps = Vec::new();
    for host in 1..=n {
        fps.push(served_fingerprint(&net.addr(host)).await);
    }
    fps
}

/// A new pair written to `<member dir>/<name>.crt` and `.key`: (pair, cert path, key path).
fn new_pair(m: &Member, name: &str) -> (rxd_tls::CertKey, String, String) {
    let pair = rxd_tls::generate(name).unwrap();
    let crt = m.dir().join(format!("{name}.crt"));
    let key = m.dir().join(format!("{name}.key"));
    std::fs::write(&crt, &pair.cert_pem).unwrap();
    std::fs::write(&key, &pair.key_pem).unwrap();
    (
        pair,
        crt.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    )
}

fn cluster_pem(m: &Member) -> String {
    std::fs::read_to_string(m.dir().join("cluster.crt")).unwrap()
}

#[tokio::test]
async fn rotation_reaches_every_member_through_rxc_and_lxc() {
    let net = Net::lease();
    let mut members = Member::form(3, &net, &[]).await;
    let old_pem = cluster_pem(&members[0]);
    let old = rxd_tls::fingerprint_pem(&old_pem).unwrap();
    assert_eq!(served(&net, 3).await, vec![Some(old.clone()); 3]);

    eprintln!("an rxc remote pinned to the current certificate, over HTTPS");
    let url = format!("https://{}", net.addr(1));
    let token = ok(&members[0].command(
        "rxc",
        &["config", "trust", "add", "pinned", "--quiet"],
        None,
    ));
    ok(&members[0].command("rxc", &["remote", "add", "pinned", token.trim()], None));
    let listed = ok(&members[0].command("rxc", &["cluster", "list", "pinned:", "-f", "csv"], None));
    assert_eq!(listed.lines().count(), 3, "{listed}");

    eprintln!("rxc cluster update-certificate on node1");
    let (first, crt, key) = new_pair(&members[0], "first");
    let out = ok(&members[0].command("rxc", &["cluster", "update-certificate", &crt, &key], None));
    assert_eq!(
        out,
        "Successfully updated cluster certificates for remote local\n"
    );
    // No waiting: success means every member already serves it.
    assert_eq!(served(&net, 3).await, vec![Some(first.fingerprint()); 3]);
    for m in &members {
        assert_eq!(cluster_pem(m), first.cert_pem);
        assert!(!m.dir().join("cluster.crt.new").exists());
    }

    eprintln!("members still talk to each other: writes through every member");
    for (i, m) in members.iter().enumerate() {
        ok(&m.command("rxc", &["profile", "create", &format!("p{i}")], None));
    }

    eprintln!("the remote pinned to the old certificate names both fingerprints");
    let err = fails(&members[0].command("rxc", &["cluster", "list", "pinned:"], None));
    assert!(
        err.contains(&old) && err.contains(&first.fingerprint()),
        "{err}"
    );
    eprintln!("and so does the typed client");
    let pinned = Client::https(&url, &old_pem, None).unwrap();
    let err = pinned.server().await.unwrap_err().to_string();
    assert!(
        err.contains(&old) && err.contains(&first.fingerprint()),
        "{err}"
    );

    eprintln!("a join with a new token pins the new certificate");
    let fourth = Member::start();
    fourth.join(&members[0], "node4", &net.addr(4)).await;
    assert_eq!(cluster_pem(&fourth), first.cert_pem);
    members.push(fourth);
    assert_eq!(served(&net, 4).await, vec![Some(first.fingerprint()); 4]);

    eprintln!("the real lxc cluster update-certificate on node2");
    ok(&members[1].command(LXC, &["remote", "list"], None));
    let (second, crt, key) = new_pair(&members[1], "second");
    let out = ok(&members[1].command(LXC, &["cluster", "update-certificate", &crt, &key], None));
    assert_eq!(
        out,
        "Successfully updated cluster certificates for remote local\n"
    );
    assert_eq!(served(&net, 4).await, vec![Some(second.fingerprint()); 4]);
    ok(&members[3].command("rxc", &["profile", "create", "after-lxc"], None));

    eprintln!("a restarted member comes back on the new certificate and rejoins the work");
    members[2].restart();
    assert_eq!(
        served_fingerprint(&net.addr(3)).await,
        Some(second.fingerprint())
    );
    ok(&members[2].command("rxc", &["profile", "create", "after-restart"], None));
    let c = members[0].client();
    until(Duration::from_secs(30), "every member online", || {
        let c = c.clone();
        async move {
            c.cluster_members()
                .await
                .is_ok_and(|ms| ms.iter().all(|m| m.status == "Online"))
        }
    })
    .await;
}

#[tokio::test]
async fn a_failed_rotation_leaves_every_member_on_the_old_certificate() {
    let net = Net::lease();
    let mut members = Member::form(3, &net, &[]).await;
    let old = rxd_tls::fingerprint_pem(&cluster_pem(&members[0])).unwrap();

    eprintln!("bad input is a 400 sentence, and changes nothing");
    let c = members[0].client();
    let (pair, _, _) = new_pair(&members[0], "next");
    let other = rxd_tls::generate("other").unwrap();
    let cases = [
        (
            "not pem",
            pair.key_pem.as_str(),
            "must be a PEM certificate and its PEM private key",
        ),
        (
            pair.cert_pem.as_str(),
            other.key_pem.as_str(),
            "The cluster certificate key does not match the cluster certificate",
        ),
        (
            "",
            "",
            "Both cluster_certificate and cluster_certificate_key are required",
        ),
    ];
    for (cert, key, want) in cases {
        let put = ClusterCertificatePut {
            cluster_certificate: cert.into(),
            cluster_certificate_key: key.into(),
        };
        match c.update_cluster_certificate(&put).await {
            Err(rxd_client::ClientError::Api { status, message }) => {
                assert_eq!(status, 400, "{message}");
                assert!(message.contains(want), "{message}");
            }
            other => panic!("expected a 400, got {other:?}"),
        }
    }
    assert_eq!(served(&net, 3).await, vec![Some(old.clone()); 3]);

    eprintln!("a member that cannot stage the pair: nobody swaps");
    members[2].stop();
    let (_, crt, key) = new_pair(&members[0], "next2");
    let err =
        fails(&members[0].command("rxc", &["cluster", "update-certificate", &crt, &key], None));
    assert!(
        err.contains("node3") && err.contains("every member keeps the current one"),
        "{err}"
    );
    assert_eq!(
        served(&net, 2).await,
        vec![Some(old.clone()), Some(old.clone())]
    );
    for m in &members[..2] {
        assert!(!m.dir().join("cluster.crt.new").exists());
    }
    members[2].start_again();
    assert_eq!(served(&net, 3).await, vec![Some(old.clone()); 3]);
    ok(&members[2].command("rxc", &["profile", "create", "still-old"], None));

    eprintln!("a standalone server is not clustered");
    let alone = Member::start();
    let put = ClusterCertificatePut {
        cluster_certificate: pair.cert_pem.clone(),
        cluster_certificate_key: pair.key_pem.clone(),
    };
    match alone.client().update_cluster_certificate(&put).await {
        Err(rxd_client::ClientError::Api { status, message }) => {
            assert_eq!(
                (status, message.as_str()),
                (400, "This server is not clustered")
            );
        }
        other => panic!("expected a 400, got {other:?}"),
    }
}

/// Forms node1 and node2, then node3 started with `failpoint`: it coordinates the rotation.
async fn cluster_with_failing_coordinator(net: &Net, failpoint: &str) -> Vec<Member> {
    let mut members = Member::form(2, net, &[]).await;
    let third = Member::start_with_env(&[("RXD_FAILPOINT", failpoint)]);
    third.join(&members[0], "node3", &net.addr(3)).await;
    members.push(third);
    members
}

/// Runs `rxc cluster update-certificate` on `m`, which the failpoint makes die in the middle;
/// waits until its process is gone, then starts it again without the failpoint.
async fn rotation_dies_on(m: &mut Member, crt: &str, key: &str) {
    fails(&m.command("rxc", &["cluster", "update-certificate", crt, key], None));
    let start = Instant::now();
    while !m.has_exited() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the coordinator did not die"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        m.log().contains("Failpoint cluster-certificate-"),
        "{}",
        m.log()
    );
    m.clear_env();
    m.start_again();
}

/// Waits until every member (each asked for its own row) says all three are online.
async fn all_online(members: &[Member]) {
    for m in members {
        let c = m.client();
        until(Duration::from_secs(30), "every member online", || {
            let c = c.clone();
            async move {
                c.cluster_members()
                    .await
                    .is_ok_and(|ms| ms.len() == 3 && ms.iter().all(|m| m.status == "Online"))
            }
        })
        .await;
    }
}

#[tokio::test]
async fn a_crash_before_the_commit_point_keeps_the_old_certificate_everywhere() {
    let net = Net::lease();
    let mut members =
        cluster_with_failing_coordinator(&net, "cluster-certificate-before-commit:crash").await;
    let old_pem = cluster_pem(&members[0]);
    let old = rxd_tls::fingerprint_pem(&old_pem).unwrap();

    eprintln!("node3 stages the pair on every member, then dies before the commit point");
    let (_, crt, key) = new_pair(&members[2], "never");
    rotation_dies_on(&mut members[2], &crt, &key).await;
    all_online(&members).await;
    eprintln!("every member serves the one old certificate, in its handshake and on disk");
    assert_eq!(served(&net, 3).await, vec![Some(old.clone()); 3]);
    for m in &members {
        assert_eq!(cluster_pem(m), old_pem);
    }
    ok(&members[2].command("rxc", &["profile", "create", "after-crash"], None));

    eprintln!("a new rotation, from another member, reaches every member");
    let (next, crt, key) = new_pair(&members[0], "next");
    ok(&members[0].command("rxc", &["cluster", "update-certificate", &crt, &key], None));
    assert_eq!(served(&net, 3).await, vec![Some(next.fingerprint()); 3]);
    for m in &members {
        assert_eq!(cluster_pem(m), next.cert_pem);
        assert!(!m.dir().join("cluster.crt.new").exists());
    }
    for (i, m) in members.iter().enumerate() {
        ok(&m.command("rxc", &["profile", "create", &format!("p{i}")], None));
    }
}

#[tokio::test]
async fn a_crash_after_the_commit_point_brings_every_member_to_the_new_certificate() {
    let net = Net::lease();
    let mut members =
        cluster_with_failing_coordinator(&net, "cluster-certificate-after-commit:crash").await;
    let old = rxd_tls::fingerprint_pem(&cluster_pem(&members[0])).unwrap();

    eprintln!("node3 stages the pair everywhere, commits it, then dies before it swaps");
    let (next, crt, key) = new_pair(&members[2], "next");
    rotation_dies_on(&mut members[2], &crt, &key).await;
    eprintln!("after its restart every member serves the new certificate");
    until(
        Duration::from_secs(30),
        "every member on the new certificate",
        || {
            let net = &net;
            let want = next.fingerprint();
            async move { served(net, 3).await == vec![Some(want); 3] }
        },
    )
    .await;
    for m in &members {
        assert_eq!(cluster_pem(m), next.cert_pem);
        assert!(!m.dir().join("cluster.crt.new").exists());
    }
    assert!(served_fingerprint(&net.addr(3)).await != Some(old));
    all_online(&members).await;
    for (i, m) in members.iter().enumerate() {
        ok(&m.command("rxc", &["profile", "create", &format!("p{i}")], None));
    }
}
