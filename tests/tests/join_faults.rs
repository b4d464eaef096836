//! Issue 3: a join that fails at any step leaves both the cluster and the joiner as they were.

use std::time::{Duration, Instant};

use rxd_api::ClusterMember;
use rxd_testkit::{join_preseed as join_seed, join_token as token, until, Member, Net};

/// The parts of the cluster a failed join must not change: members and trust store.
async fn cluster_state(m: &Member) -> (Vec<(String, String)>, Vec<String>) {
    let c = m.client();
    let members: Vec<ClusterMember> = c.cluster_members().await.unwrap();
    let certs = rxd_testkit::trusted_fingerprints(&c).await;
    (
        members
            .into_iter()
            .map(|m| (m.server_name, m.url))
            .collect(),
        certs,
    )
}

/// The joiner's own data, which a failed join must keep.
async fn joiner_state(m: &Member) -> (bool, Vec<String>, Vec<String>) {
    let c = m.client();
    let (server, _) = c.server().await.unwrap();
    let profiles = c
        .profiles()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    let pools = c
        .storage_pools()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    (
        server.environment.unwrap().server_clustered,
        profiles,
        pools,
    )
}

async fn joiner_with_own_data(m: &Member) {
    let c = m.client();
    c.create_profile(&rxd_api::ProfilesPost {
        name: "mine".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    c.create_storage_pool(
        &rxd_api::StoragePoolsPost {
            name: "own".into(),
            driver: "dir".into(),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn invalid_source_is_refused_before_anything_changes() {
    let net = Net::lease();
    let leader = Member::start();
    leader.bootstrap(&net.addr(1), "node1", &["cluster.offline_threshold: 11"]);
    let before = cluster_state(&leader).await;
    let joiner = Member::start();
    joiner_with_own_data(&joiner).await;
    let mine = joiner_state(&joiner).await;
    let t = token(&leader, "node2").await;
    let out = joiner.rxd_with_input(
        &["init", "--preseed"],
        &join_seed(&net.addr(2), &t, "/nonexistent/rxd-source"),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("doesn't exist"), "{err}");
    assert_eq!(cluster_state(&leader).await, before);
    assert_eq!(joiner_state(&joiner).await, mine);
}

#[tokio::test]
async fn failure_after_accept_is_undone_on_both_sides() {
    let net = Net::lease();
    let leader = Member::start();
    leader.bootstrap(&net.addr(1), "node1", &["cluster.offline_threshold: 11"]);
    let before = cluster_state(&leader).await;
    let joiner = Member::start_with_env(&[("RXD_FAILPOINT", "join-after-accept:error")]);
    joiner_with_own_data(&joiner).await;
    let mine = joiner_state(&joiner).await;
    let t = token(&leader, "node2").await;
    let out = joiner.rxd_with_input(&["init", "--preseed"], &join_seed(&net.addr(2), &t, ""));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Injected failure"), "{err}");
    assert_eq!(
        cluster_state(&leader).await,
        before,
        "no member row, no trust entry"
    );
    assert_eq!(
        joiner_state(&joiner).await,
        mine,
        "the joiner keeps its data"
    );
    assert!(!joiner.dir().join("cluster.crt").exists());
}

#[tokio::test]
async fn joiner_crash_after_the_database_swap_is_rolled_back_on_both_sides() {
    let net = Net::lease();
    let leader = Member::start();
    leader.bootstrap(&net.addr(1), "node1", &["cluster.offline_threshold: 11"]);
    let before = cluster_state(&leader).await;
    let mut joiner = Member::start_with_env(&[("RXD_FAILPOINT", "join-after-swap:crash")]);
    joiner_with_own_data(&joiner).await;
    let mine = joiner_state(&joiner).await;
    let t = token(&leader, "node2").await;
    eprintln!("The joiner dies in the middle of the join");
    let out = joiner.rxd_with_input(&["init", "--preseed"], &join_seed(&net.addr(2), &t, ""));
    assert!(!out.status.success());
    let start = Instant::now();
    while !joiner.has_exited() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the joiner did not exit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("Restarted, the joiner is the standalone server it was");
    joiner.clear_env();
    joiner.start_again();
    assert_eq!(joiner_state(&joiner).await, mine);
    assert!(!joiner.dir().join("cluster.crt").exists());
    eprintln!("The leader forgets the unfinished member");
    until(
        Duration::from_secs(60),
        "the pending member to be removed",
        || async { cluster_state(&leader).await == before },
    )
    .await;
}
