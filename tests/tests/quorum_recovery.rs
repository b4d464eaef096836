//! Issue 11, Part B 4: quorum-loss recovery on the daemon binary, as `lxd cluster` does it.
//! Three voters, two lost for good; the survivor, stopped, becomes the only voter with
//! everything it held, serves writes again and takes two fresh members.

use std::time::Duration;

use rxd_testkit::{fails, ok, until, Member, Net};

fn profile(name: &str) -> rxd_api::ProfilesPost {
    rxd_api::ProfilesPost {
        name: name.into(),
        ..Default::default()
    }
}

async fn voters(m: &Member) -> usize {
    match m.client().cluster_members().await {
        Ok(list) => list
            .iter()
            .filter(|m| m.put.roles.contains(&"database".to_string()))
            .count(),
        Err(_) => 0,
    }
}

#[tokio::test]
async fn a_survivor_recovers_from_quorum_loss_and_takes_new_members() {
    let net = Net::lease();
    let mut members = Member::form(3, &net, &[]).await;
    until(Duration::from_secs(60), "three voters", || async {
        voters(&members[0]).await == 3
    })
    .await;
    let names: Vec<String> = (0..5).map(|i| format!("before-{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        members[i % 3]
            .client()
            .create_profile(&profile(name))
            .await
            .unwrap();
    }

    eprintln!("Two voters are lost for good: killed, their directories discarded");
    for mut gone in members.drain(1..) {
        gone.kill();
    }
    let mut survivor = members.pop().expect("one member is left");
    let write = tokio::time::timeout(
        Duration::from_secs(60),
        survivor.client().create_profile(&profile("without-quorum")),
    )
    .await;
    assert!(
        !matches!(write, Ok(Ok(()))),
        "a write without quorum must not succeed"
    );

    eprintln!("While the daemon runs, the recovery commands refuse");
    let refused = fails(&survivor.rxd(&["cluster", "recover-from-quorum-loss", "--quiet"]));
    assert!(refused.contains("please stop it first"), "{refused}");
    survivor.stop();

    let shown = ok(&survivor.rxd(&["cluster", "show"]));
    assert!(shown.starts_with("# Latest raft log index: "), "{shown}");
    for i in 1..=3 {
        assert!(shown.contains(&format!("name: node{i}")), "{shown}");
        assert!(shown.contains(&net.addr(i)), "{shown}");
    }
    assert_eq!(shown.matches("role: voter").count(), 3, "{shown}");
    let listed = ok(&survivor.rxd(&["cluster", "list-database"]));
    // The column is as wide as the longest address, as in LXD's table.
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with('|') && l.trim_matches(|c| c == '|' || c == ' ') == "ADDRESS"),
        "{listed}"
    );
    for i in 1..=3 {
        assert!(listed.contains(&format!("| {} |", net.addr(i))), "{listed}");
    }

    eprintln!("Answering anything but yes changes nothing");
    let out = survivor.rxd_with_input(&["cluster", "recover-from-quorum-loss"], "no\n");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Do you want to proceed? (yes/no): "));
    assert!(fails(&out).contains("Recover operation aborted"));
    assert_eq!(ok(&survivor.rxd(&["cluster", "show"])), shown);

    ok(&survivor.rxd(&["cluster", "recover-from-quorum-loss", "--quiet"]));
    let recovered = ok(&survivor.rxd(&["cluster", "show"]));
    assert!(recovered.contains("name: node1"), "{recovered}");
    assert!(!recovered.contains("name: node2"), "{recovered}");
    assert!(!recovered.contains("name: node3"), "{recovered}");
    assert_eq!(recovered.matches("role: voter").count(), 1, "{recovered}");

    eprintln!("Started again: every profile written before is there, and writes work");
    survivor.start_again();
    for name in &names {
        assert!(survivor.client().profile(name).await.is_ok(), "{name}");
    }
    survivor
        .client()
        .create_profile(&profile("after-recovery"))
        .await
        .unwrap();

    eprintln!("Two fresh members join with tokens and see everything");
    let fresh: Vec<Member> = (0..2).map(|_| Member::start()).collect();
    for (i, m) in fresh.iter().enumerate() {
        let host = u8::try_from(i + 4).unwrap();
        m.join(&survivor, &format!("node{host}"), &net.addr(host))
            .await;
    }
    for m in &fresh {
        for name in names.iter().chain([&"after-recovery".to_string()]) {
            assert!(m.client().profile(name).await.is_ok(), "{name}");
        }
    }
    until(Duration::from_secs(60), "three voters again", || async {
        voters(&survivor).await == 3
    })
    .await;
    eprintln!("The lost members are still listed, and are removed with --force");
    for lost in ["node2", "node3"] {
        survivor
            .client()
            .delete_cluster_member(lost, true)
            .await
            .unwrap();
    }
    let left = survivor.client().cluster_members().await.unwrap();
    let mut left: Vec<String> = left.into_iter().map(|m| m.server_name).collect();
    left.sort();
    assert_eq!(left, ["node1", "node4", "node5"]);
    fresh[1]
        .client()
        .create_profile(&profile("after-join"))
        .await
        .unwrap();
    assert!(fresh[0].client().profile("after-join").await.is_ok());

    eprintln!("Stopped again: remove-raft-node and edit, offline");
    survivor.stop();
    let before = ok(&survivor.rxd(&["cluster", "show"]));
    assert!(before.contains(&net.addr(5)), "{before}");
    let out = survivor.rxd_with_input(&["cluster", "remove-raft-node", &net.addr(5)], "no\n");
    assert!(fails(&out).contains("Remove raft node operation aborted"));
    assert_eq!(ok(&survivor.rxd(&["cluster", "show"])), before);
    let unknown = fails(&survivor.rxd(&["cluster", "remove-raft-node", "--quiet", &net.ip(9)]));
    assert!(
        unknown.contains(&format!("No raft node has address {}", net.addr(9))),
        "{unknown}"
    );

    for (bad, expected) in [
        ("members: [", "Config validation error: "),
        (
            &*before.replace("role: voter", "role: stand-by"),
            "Config validation error: Number of \"voter\" must be 2 or more",
        ),
        (
            &*before.replacen("name: node4", "name: renamed", 1),
            "Config validation error: Changing cluster member name is not supported",
        ),
    ] {
        let out = survivor.rxd_with_input(&["cluster", "edit"], bad);
        let error = fails(&out);
        assert!(error.contains(expected), "{error}");
        assert_eq!(ok(&survivor.rxd(&["cluster", "show"])), before);
    }

    ok(&survivor.rxd(&["cluster", "remove-raft-node", "--quiet", &net.addr(5)]));
    let after = ok(&survivor.rxd(&["cluster", "show"]));
    assert!(!after.contains(&net.addr(5)), "{after}");
    assert!(after.contains(&net.addr(4)), "{after}");
}
