//! Issue 7: a token guess from an untrusted caller is checked against the stored tokens and
//! never becomes a write to the cluster database. Issue 10: wrong tokens count against their
//! source address as wrong trust passwords do, under the same back-off and the same 429.

use rxd_api::{CertificateAddToken, CertificatesPost, JoinToken};
use rxd_testkit::{join_preseed, join_token, ok, Member, Net};

/// The index of the last raft entry the member applied, as its state database records it.
fn last_applied(m: &Member) -> u64 {
    let conn = rusqlite::Connection::open(m.dir().join("database/global/state.db")).unwrap();
    let text: String = conn
        .query_row(
            "SELECT value FROM raft_meta WHERE key = 'last_applied'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let log_id: serde_json::Value = serde_json::from_str(&text).unwrap();
    log_id["index"].as_u64().unwrap()
}

/// An untrusted HTTPS client whose connections come from `source`.
fn client_from(source: &str, cluster_crt: &str) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = rxd_tls::pinned_client_config(cluster_crt, None).unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .local_address(source.parse::<std::net::IpAddr>().unwrap())
        .no_proxy()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Presents `token` to `POST /1.0/certificates`; answers the status and body.
async fn present(client: &reqwest::Client, address: &str, token: &str) -> (u16, String) {
    let post = CertificatesPost {
        trust_token: token.to_string(),
        ..Default::default()
    };
    let resp = client
        .post(format!("https://{address}/1.0/certificates"))
        .json(&post)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn token_guesses_are_refused_without_a_write() {
    let net = Net::lease();
    let leader = Member::start();
    leader.bootstrap(&net.addr(1), "node1", &[]);
    let real = join_token(&leader, "node2").await;
    let cluster_crt = std::fs::read_to_string(leader.dir().join("cluster.crt")).unwrap();
    let guesser = client_from(&net.ip(50), &cluster_crt);

    let before = last_applied(&leader);
    eprintln!(
        "phase: 20 well-formed tokens with wrong secrets: 5 refused, then the source blocked"
    );
    for i in 0..20 {
        let mut guess = JoinToken::decode(&real).unwrap();
        guess.secret = format!("{i:064x}");
        let (status, body) = present(&guesser, &net.addr(1), &guess.encode()).await;
        if i < 5 {
            assert_eq!(status, 403, "{body}");
            assert!(
                body.contains("No matching cluster join operation found"),
                "{body}"
            );
        } else {
            assert_eq!(status, 429, "guess {i}: {body}");
            let said = format!(
                "Too many wrong trust passwords or tokens from {}",
                net.ip(50)
            );
            assert!(body.contains(&said), "{body}");
        }
    }
    assert_eq!(
        last_applied(&leader),
        before,
        "token guesses were written to the cluster database"
    );
    eprintln!("phase: the blocked source is refused even with the real token");
    let (status, body) = present(&guesser, &net.addr(1), &real).await;
    assert_eq!(status, 429, "{body}");

    eprintln!("phase: the real token was not burned, and works from another source");
    let joiner = Member::start();
    ok(&joiner.rxd_with_input(
        &["init", "--preseed"],
        &join_preseed(&net.addr(2), &real, ""),
    ));
    let names: Vec<String> = leader
        .client()
        .cluster_members()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.server_name)
        .collect();
    assert_eq!(names, ["node1", "node2"]);
}

#[tokio::test]
async fn certificate_add_token_guesses_count_against_their_source() {
    let net = Net::lease();
    let m = Member::start();
    m.bootstrap(&net.addr(1), "node1", &[]);
    let cluster_crt = std::fs::read_to_string(m.dir().join("cluster.crt")).unwrap();
    let op = m
        .client()
        .create_certificate_token(&CertificatesPost {
            name: "laptop".into(),
            token: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let meta = op.metadata.unwrap();
    let real = CertificateAddToken {
        client_name: "laptop".into(),
        fingerprint: meta["fingerprint"].as_str().unwrap().into(),
        addresses: vec![net.addr(1)],
        secret: meta["secret"].as_str().unwrap().into(),
        expires_at: String::new(),
    };
    let guesser = client_from(&net.ip(50), &cluster_crt);

    eprintln!("phase: wrong certificate-add secrets from one source: 5 refused, then 429");
    for i in 0..8 {
        let guess = CertificateAddToken {
            secret: format!("{i:064x}"),
            ..real.clone()
        };
        let (status, body) = present(&guesser, &net.addr(1), &guess.encode()).await;
        let want = if i < 5 { 403 } else { 429 };
        assert_eq!(status, want, "guess {i}: {body}");
    }

    eprintln!("phase: wrong passwords and tokens share the count: the password is refused too");
    let resp = guesser
        .post(format!("https://{}/1.0/certificates", net.addr(1)))
        .json(&serde_json::json!({"type": "client", "password": "sekret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);

    eprintln!("phase: a client from another source presents the real token and is trusted");
    let cert = rxd_tls::generate_client("laptop", "host").unwrap();
    let trusted = rxd_client::Client::https(&net.addr(1), &cluster_crt, Some(&cert)).unwrap();
    trusted
        .add_certificate(&CertificatesPost {
            trust_token: real.encode(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(trusted.server().await.unwrap().0.auth, "trusted");
}
