//! Issue 9, finding 8: trust-password guesses are throttled per source address, and a flood of
//! them neither starves the daemon's writes and heartbeats nor locks out other addresses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rxd_api::{CertificatesPost, ProfilesPost};
use rxd_testkit::{until, Member, Net};

const PASSWORD: &str = "the-trust-password";
const GUESSERS: usize = 8;
const FLOOD: Duration = Duration::from_secs(6);

/// An untrusted HTTPS client whose connections come from `source` (the right password comes
/// from 127.0.0.1).
fn guesser_client(cluster_crt: &str, source: &str) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = rxd_tls::pinned_client_config(cluster_crt, None).unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .local_address(source.parse::<IpAddr>().unwrap())
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Guesses until the flood ends; answers the count of each status and one body per status.
async fn guess(client: reqwest::Client, url: String, who: usize) -> HashMap<u16, (usize, String)> {
    let mut seen: HashMap<u16, (usize, String)> = HashMap::new();
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < FLOOD {
        i += 1;
        let resp = client
            .post(&url)
            .json(&serde_json::json!({"type": "client", "password": format!("guess-{who}-{i}")}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        let entry = seen.entry(status).or_insert((0, body));
        entry.0 += 1;
    }
    seen
}

#[tokio::test]
async fn password_guesses_are_throttled_per_source() {
    let net = Net::lease();
    let members = Member::form(3, &net, &[]).await;
    let leader = &members[0];
    leader.set_config("core.trust_password", PASSWORD).await;
    let cluster_crt = std::fs::read_to_string(leader.dir().join("cluster.crt")).unwrap();

    eprintln!("phase: {GUESSERS} guessers for {FLOOD:?} while a trusted client writes");
    let guessers: Vec<_> = (0..GUESSERS)
        .map(|who| {
            let url = format!("https://{}/1.0/certificates", net.addr(1));
            tokio::spawn(guess(guesser_client(&cluster_crt, &net.ip(50)), url, who))
        })
        .collect();
    let writer = leader.client();
    let start = Instant::now();
    let mut writes = 0;
    while start.elapsed() < FLOOD {
        writer
            .create_profile(&ProfilesPost {
                name: format!("during-guesses-{writes}"),
                ..Default::default()
            })
            .await
            .unwrap();
        writes += 1;
    }
    let mut seen: HashMap<u16, (usize, String)> = HashMap::new();
    for g in guessers {
        for (status, (n, body)) in g.await.unwrap() {
            seen.entry(status).or_insert((0, body)).0 += n;
        }
    }
    eprintln!("{writes} writes; answers to guesses: {seen:?}");
    let count = |s: u16| seen.get(&s).map(|(n, _)| *n).unwrap_or(0);
    let total: usize = seen.values().map(|(n, _)| n).sum();
    assert_eq!(
        count(403) + count(429),
        total,
        "guesses got other answers: {seen:?}"
    );
    assert!(
        count(403) <= 15,
        "{} guesses were checked against the password in {FLOOD:?}: {seen:?}",
        count(403)
    );
    let (_, throttled) = seen.get(&429).expect("no guess was throttled");
    assert!(
        throttled.contains("\"error_code\":429") && throttled.contains("trust password"),
        "{throttled}"
    );
    let log = leader.log();
    let guesser = net.ip(50);
    let warnings = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains(&guesser))
        .count();
    assert!(
        warnings >= 1 && warnings <= count(403),
        "{warnings} warnings naming {guesser} for {total} guesses:\n{log}"
    );

    eprintln!("phase: the right password from another address is still accepted");
    let cert = rxd_tls::generate_client("good", "test").unwrap();
    let good = rxd_client::Client::https(&net.addr(1), &cluster_crt, Some(&cert)).unwrap();
    good.add_certificate(&CertificatesPost {
        cert_type: "client".into(),
        name: "good".into(),
        password: PASSWORD.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(good.server().await.unwrap().0.auth, "trusted");

    eprintln!("phase: every member is still online");
    until(Duration::from_secs(30), "three members online", || async {
        let list = leader.client().cluster_members().await.unwrap();
        list.len() == 3 && list.iter().all(|m| m.status == "Online")
    })
    .await;
}
