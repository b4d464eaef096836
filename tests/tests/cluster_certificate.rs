//! Issue 11 (Part B, point 3): `PUT /1.0/cluster/certificate` through `rxc cluster
//! update-certificate` and the real `lxc cluster update-certificate`. Every member serves the
//! new certificate once the command succeeded (checked in each member's own TLS handshake),
//! members keep talking to each other, joins with new tokens work, a restarted member comes back
//! on it, and a client pinned to the old one is told both fingerprints. A rotation that cannot
//! reach every member leaves every member on the old certificate; bad input is a 400 sentence.

use std::time::Duration;

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
