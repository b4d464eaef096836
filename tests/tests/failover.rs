//! Issue 3: leader failover, Offline detection from heartbeats, and a restarted member rejoining.

use std::time::Duration;

use rxd_testkit::{join_token as token, ok, until, Member, Net};

#[tokio::test]
async fn leader_failover_and_offline_member() {
    let net = Net::lease();
    eprintln!("Forming three members, offline threshold 11 s");
    let mut members: Vec<Member> = (0..3).map(|_| Member::start()).collect();
    let seed = format!(
        "config:\n  core.https_address: {net}.1:8443\n  cluster.offline_threshold: 11\n\
storage_pools:\n- name: local\n  driver: dir\ncluster:\n  server_name: node1\n  enabled: true\n"
    );
    ok(&members[0].rxd_with_input(&["init", "--preseed"], &seed));
    for i in 1..3 {
        let t = token(&members[0], &format!("node{}", i + 1)).await;
        let join = format!(
            "cluster:\n  enabled: true\n  server_address: {net}.{}:8443\n  cluster_token: {t}\n  member_config:\n  - entity: storage-pool\n    name: local\n    key: source\n    value: \"\"\n",
            i + 1
        );
        ok(&members[i].rxd_with_input(&["init", "--preseed"], &join));
    }
    until(Duration::from_secs(30), "three voters", || async {
        let list = members[1].client().cluster_members().await.unwrap();
        list.iter()
            .filter(|m| m.put.roles.contains(&"database".to_string()))
            .count()
            == 3
    })
    .await;

    eprintln!("Killing the leader; the others elect a new one and keep accepting writes");
    members[0].kill();
    let survivors = &members[1..];
    until(
        Duration::from_secs(40),
        "a new leader among the survivors",
        || async {
            match survivors[0].client().cluster_members().await {
                Ok(list) => list.iter().any(|m| {
                    m.server_name != "node1" && m.put.roles.contains(&"database-leader".to_string())
                }),
                Err(_) => false,
            }
        },
    )
    .await;
    survivors[1]
        .client()
        .create_profile(&rxd_api::ProfilesPost {
            name: "after-failover".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(survivors[0]
        .client()
        .profile("after-failover")
        .await
        .is_ok());

    eprintln!("The killed member shows OFFLINE once the threshold passes");
    until(Duration::from_secs(45), "node1 offline", || async {
        let list = survivors[0].client().cluster_members().await.unwrap();
        list.iter().any(|m| {
            m.server_name == "node1"
                && m.status == "Offline"
                && m.message.starts_with("No heartbeat for")
        })
    })
    .await;

    eprintln!("Restarted, it catches up and is online again");
    members[0].start_again();
    until(
        Duration::from_secs(45),
        "node1 back online with the new profile",
        || async {
            let back = members[0].client().profile("after-failover").await.is_ok();
            let list = members[1].client().cluster_members().await.unwrap();
            back && list.iter().all(|m| m.status == "Online")
        },
    )
    .await;
}

#[tokio::test]
async fn a_whole_cluster_restart_keeps_the_database() {
    let net = Net::lease();
    let mut members = Member::form(3, &net, &[]).await;
    members[1]
        .client()
        .create_profile(&rxd_api::ProfilesPost {
            name: "durable".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    eprintln!("Stopping every member, then starting them all again");
    for m in members.iter_mut() {
        m.stop();
    }
    for m in members.iter_mut() {
        m.launch_again();
    }
    for m in &members {
        m.wait_ready();
        until(
            Duration::from_secs(60),
            "the cluster to answer again",
            || async {
                match m.client().cluster_members().await {
                    Ok(list) => list.len() == 3 && list.iter().all(|x| x.status == "Online"),
                    Err(_) => false,
                }
            },
        )
        .await;
        assert!(m.client().profile("durable").await.is_ok());
    }
}
