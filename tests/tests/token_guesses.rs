//! Issue 7: a token guess from an untrusted caller is checked against the stored tokens and
//! never becomes a write to the cluster database.

use rxd_api::{CertificatesPost, JoinToken};
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

#[tokio::test]
async fn token_guesses_are_refused_without_a_write() {
    let net = Net::lease();
    let leader = Member::start();
    leader.bootstrap(&net.addr(1), "node1", &[]);
    let real = join_token(&leader, "node2").await;
    let cluster_crt = std::fs::read_to_string(leader.dir().join("cluster.crt")).unwrap();
    let untrusted = rxd_client::Client::https(&net.addr(1), &cluster_crt, None).unwrap();

    let before = last_applied(&leader);
    eprintln!("phase: 20 well-formed tokens with wrong secrets, each refused");
    for i in 0..20 {
        let mut guess = JoinToken::decode(&real).unwrap();
        guess.secret = format!("{i:064x}");
        let err = untrusted
            .add_certificate(&CertificatesPost {
                trust_token: guess.encode(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(403), "{err}");
        assert!(
            err.to_string()
                .contains("No matching cluster join operation found"),
            "{err}"
        );
    }
    assert_eq!(
        last_applied(&leader),
        before,
        "token guesses were written to the cluster database"
    );

    eprintln!("phase: the real token was not burned by the guesses");
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
