//! Issue 3: servers join by one-time token or trust password; refused joins change nothing.

use std::time::Duration;

use rxd_api::{ClusterMember, JoinToken};
use rxd_testkit::{join_preseed, join_token as token, ok, until, Member, Net};

fn join_by_token_output(m: &Member, address: &str, token: &str) -> std::process::Output {
    m.rxd_with_input(&["init", "--preseed"], &join_preseed(address, token, ""))
}

fn roles(list: &[ClusterMember]) -> Vec<(String, Vec<String>)> {
    list.iter()
        .map(|m| (m.server_name.clone(), m.put.roles.clone()))
        .collect()
}

#[tokio::test]
async fn three_members_form_by_token_and_agree() {
    let net = Net::lease();
    eprintln!("Forming a three-member cluster with join tokens");
    let members = Member::form(3, &net, &[]).await;
    let first = members[0].client().cluster_members().await.unwrap();
    assert_eq!(first.len(), 3);
    for m in &members {
        let list = m.client().cluster_members().await.unwrap();
        let names: Vec<&str> = list.iter().map(|m| m.server_name.as_str()).collect();
        assert_eq!(names, ["node1", "node2", "node3"]);
        assert!(list.iter().all(|m| m.status == "Online"), "{list:?}");
        let pools = m.client().storage_pools().await.unwrap();
        assert_eq!(pools.len(), 1);
        assert_eq!(pools[0].locations, ["node1", "node2", "node3"]);
        let (profile, _) = m.client().profile("default").await.unwrap();
        assert_eq!(profile.devices["root"]["pool"], "local");
        assert!(m.dir().join("storage-pools/local").is_dir());
    }
    eprintln!("Three members are three voters, the first leads");
    until(Duration::from_secs(30), "three voters", || async {
        let list = members[0].client().cluster_members().await.unwrap();
        list.iter()
            .all(|m| m.database && m.put.roles.contains(&"database".to_string()))
    })
    .await;
    let list = members[0].client().cluster_members().await.unwrap();
    assert_eq!(
        roles(&list)[0],
        (
            "node1".into(),
            vec!["database-leader".into(), "database".into()]
        )
    );
    eprintln!("Every member holds the cluster certificate");
    let cert = std::fs::read(members[0].dir().join("cluster.crt")).unwrap();
    for m in &members[1..] {
        assert_eq!(std::fs::read(m.dir().join("cluster.crt")).unwrap(), cert);
    }
    eprintln!("A write on a follower reaches every member");
    members[2]
        .client()
        .create_profile(&rxd_api::ProfilesPost {
            name: "from-node3".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    for m in &members {
        assert!(m.client().profile("from-node3").await.is_ok());
    }
}

#[tokio::test]
async fn five_members_have_three_voters_and_two_standbys() {
    let net = Net::lease();
    let members = Member::form(5, &net, &[]).await;
    until(
        Duration::from_secs(30),
        "3 voters and 2 stand-bys",
        || async {
            let list = members[4].client().cluster_members().await.unwrap();
            let voters = list
                .iter()
                .filter(|m| m.put.roles.contains(&"database".to_string()))
                .count();
            let standbys = list
                .iter()
                .filter(|m| m.put.roles.contains(&"database-standby".to_string()))
                .count();
            voters == 3 && standbys == 2 && list.iter().all(|m| m.database)
        },
    )
    .await;
}

#[tokio::test]
async fn second_member_is_a_standby() {
    let net = Net::lease();
    let members = Member::form(2, &net, &[]).await;
    let list = members[1].client().cluster_members().await.unwrap();
    assert_eq!(
        roles(&list),
        vec![
            (
                "node1".to_string(),
                vec!["database-leader".to_string(), "database".to_string()]
            ),
            ("node2".to_string(), vec!["database-standby".to_string()]),
        ]
    );
}

async fn snapshot(m: &Member) -> (Vec<ClusterMember>, Vec<String>) {
    let c = m.client();
    let members = c.cluster_members().await.unwrap();
    let certs = rxd_testkit::trusted_fingerprints(&c).await;
    (members, certs)
}

#[tokio::test]
async fn refused_joins_leave_the_cluster_unchanged() {
    let net = Net::lease();
    let leader = Member::start();
    leader.bootstrap(&net.addr(1), "node1", &[]);
    let before = snapshot(&leader).await;
    let joiner = Member::start();
    let addr = &net.addr(2);

    eprintln!("A used token is refused");
    let t = token(&leader, "node2").await;
    let other = Member::start();
    ok(&join_by_token_output(&other, &net.addr(3), &t));
    let with_node2 = snapshot(&leader).await;
    let out = join_by_token_output(&joiner, addr, &t);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("No matching cluster join operation found"),
        "{err}"
    );
    assert_eq!(snapshot(&leader).await, with_node2);

    eprintln!("A tampered token is refused before anything is sent");
    let t = token(&leader, "node4").await;
    let mut tok = JoinToken::decode(&t).unwrap();
    tok.secret = "0".repeat(64);
    let out = join_by_token_output(&joiner, addr, &tok.encode());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("No matching cluster join operation found"),
        "{err}"
    );
    tok = JoinToken::decode(&t).unwrap();
    tok.fingerprint = "ab".repeat(32);
    let out = join_by_token_output(&joiner, addr, &tok.encode());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Certificate fingerprint mismatch"), "{err}");
    let out = join_by_token_output(&joiner, addr, "not-a-token");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Invalid cluster join token"), "{err}");

    eprintln!("A revoked token is refused");
    let ops = leader.client().operations().await.unwrap();
    let running = &ops["running"];
    let id = running
        .iter()
        .find(|o| o.metadata.as_ref().unwrap()["serverName"] == "node4")
        .unwrap()
        .id
        .clone();
    leader.client().cancel_operation(&id).await.unwrap();
    let out = join_by_token_output(&joiner, addr, &t);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("No matching cluster join operation found"),
        "{err}"
    );

    eprintln!("A token for an existing member or an invalid name is refused at once");
    let err = leader
        .client()
        .create_join_token("node1")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409), "{err}");
    let err = leader
        .client()
        .create_join_token("bad name")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");

    eprintln!("A wrong trust password is refused");
    let cert = std::fs::read_to_string(leader.dir().join("cluster.crt")).unwrap();
    let seed = format!(
        "cluster:\n  enabled: true\n  server_name: node5\n  server_address: {addr}\n  cluster_address: {net}.1:8443\n  cluster_password: wrong\n  cluster_certificate: |\n{}\n  member_config:\n  - entity: storage-pool\n    name: local\n    key: source\n    value: \"\"\n",
        cert.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
    );
    let out = joiner.rxd_with_input(&["init", "--preseed"], &seed);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("not authorized"), "{err}");

    eprintln!("A certificate that is not the cluster's is refused");
    let wrong = std::fs::read_to_string(joiner.dir().join("server.crt")).unwrap();
    let seed_wrong = seed.replace(
        &cert
            .lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
        &wrong
            .lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let out = joiner.rxd_with_input(
        &["init", "--preseed"],
        &seed_wrong.replace("wrong\n", "sekret\n"),
    );
    assert!(!out.status.success());
    assert_eq!(snapshot(&leader).await, with_node2);

    eprintln!("The joiner is still a working standalone server");
    let (server, _) = joiner.client().server().await.unwrap();
    assert!(!server.environment.unwrap().server_clustered);
    assert!(!joiner.dir().join("cluster.crt").exists());
    let _ = before;
}

#[tokio::test]
async fn issue_10_password_join_without_member_config_for_a_dir_pool() {
    let net = Net::lease();
    let leader = Member::start();
    leader.bootstrap(&net.addr(1), "node1", &[]);
    let cert = std::fs::read_to_string(leader.dir().join("cluster.crt")).unwrap();
    let path = leader.dir().join("cluster-copy.crt");
    std::fs::write(&path, &cert).unwrap();
    let joiner = Member::start();
    let before = snapshot(&leader).await;
    eprintln!("A join failing after the trust step (the pool's directory exists) is undone");
    let taken = joiner.dir().join("storage-pools/local");
    std::fs::create_dir_all(&taken).unwrap();
    let seed = format!(
        "cluster:\n  enabled: true\n  server_name: node2\n  server_address: {net}.2:8443\n  cluster_address: {net}.1:8443\n  cluster_password: sekret\n  cluster_certificate_path: {}\n",
        path.display()
    );
    let out = joiner.rxd_with_input(&["init", "--preseed"], &seed);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(
        snapshot(&leader).await,
        before,
        "no trust entry is left behind"
    );
    eprintln!("Without member_config the password join succeeds: a dir pool needs no source");
    std::fs::remove_dir(&taken).unwrap();
    ok(&joiner.rxd_with_input(&["init", "--preseed"], &seed));
    let list = joiner.client().cluster_members().await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[1].server_name, "node2");
    assert!(taken.is_dir(), "the pool's default directory is made");
}

#[tokio::test]
async fn server_target_shows_that_members_view() {
    let net = Net::lease();
    let members = Member::form(2, &net, &[]).await;
    let (server, _) = members[0].client().server_on("node2").await.unwrap();
    let env = server.environment.unwrap();
    assert_eq!(env.server_name, "node2");
    assert_eq!(env.addresses, [net.addr(2)]);
    let err = members[0].client().server_on("nosuch").await.unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");
}

#[tokio::test]
async fn expired_tokens_are_refused_and_a_token_is_used_once_under_a_race() {
    let net = Net::lease();
    let leader = Member::start();
    leader.bootstrap(&net.addr(1), "node1", &[]);
    leader.set_config("cluster.join_token_expiry", "1S").await;
    let t = token(&leader, "late").await;
    let expires = JoinToken::decode(&t).unwrap().expires_at;
    eprintln!("Waiting until the token's expiry instant has passed");
    until(Duration::from_secs(10), "the token to expire", || {
        let expires = expires.clone();
        async move { rxd_api_now() > expires }
    })
    .await;
    let joiner = Member::start();
    let out = join_by_token_output(&joiner, &net.addr(2), &t);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Token has expired"), "{err}");
    assert_eq!(leader.client().cluster_members().await.unwrap().len(), 1);

    eprintln!("Two servers race with one token: exactly one joins");
    leader.set_config("cluster.join_token_expiry", "3H").await;
    let t = token(&leader, "racer").await;
    let (a, b) = (Member::start(), Member::start());
    let seed_a = join_preseed(&net.addr(3), &t, "");
    let seed_b = join_preseed(&net.addr(4), &t, "");
    let (out_a, out_b) = std::thread::scope(|s| {
        let ha = s.spawn(|| a.rxd_with_input(&["init", "--preseed"], &seed_a));
        let hb = s.spawn(|| b.rxd_with_input(&["init", "--preseed"], &seed_b));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    let wins = [&out_a, &out_b]
        .iter()
        .filter(|o| o.status.success())
        .count();
    assert_eq!(
        wins,
        1,
        "{}\n{}",
        String::from_utf8_lossy(&out_a.stderr),
        String::from_utf8_lossy(&out_b.stderr)
    );
    let loser = if out_a.status.success() {
        &out_b
    } else {
        &out_a
    };
    assert!(
        String::from_utf8_lossy(&loser.stderr).contains("No matching cluster join operation found")
    );
    assert_eq!(leader.client().cluster_members().await.unwrap().len(), 2);
}

fn rxd_api_now() -> String {
    // The same RFC 3339 UTC layout the daemon writes, so strings compare as instants.
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S.%NZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
