//! An orderly stop hands leadership over: SIGTERM on the leader runs the same shutdown as
//! `rxd shutdown`, which makes an up-to-date voter the leader before the process exits; and
//! `POST /internal/raft/elect` (here on the trusted unix socket) makes a follower campaign.

use std::time::{Duration, Instant};

use rxd_testkit::{until, Member, Net};

/// Three members `<prefix>1..3` at `net.addr(1..=3)`, all voters.
async fn three(net: &Net, prefix: &str) -> Vec<Member> {
    let members: Vec<Member> = (0..3).map(|_| Member::start()).collect();
    members[0].bootstrap(&net.addr(1), &format!("{prefix}1"), &[]);
    for (i, m) in members.iter().enumerate().skip(1) {
        m.join(
            &members[0],
            &format!("{prefix}{}", i + 1),
            &net.addr(i as u8 + 1),
        )
        .await;
    }
    until(Duration::from_secs(60), "three voters", || async {
        match members[0].client().cluster_members().await {
            Ok(list) => {
                list.iter()
                    .filter(|m| m.put.roles.iter().any(|r| r == "database"))
                    .count()
                    == 3
            }
            Err(_) => false,
        }
    })
    .await;
    members
}

/// The leader's name as `m` sees it.
async fn leader_seen_by(m: &Member) -> Option<String> {
    let list = m.client().cluster_members().await.ok()?;
    list.into_iter()
        .find(|x| x.put.roles.iter().any(|r| r == "database-leader"))
        .map(|x| x.server_name)
}

async fn create_profile(m: &Member, name: &str) -> bool {
    m.client()
        .create_profile(&rxd_api::ProfilesPost {
            name: name.into(),
            ..Default::default()
        })
        .await
        .is_ok()
}

#[tokio::test]
async fn sigterm_on_the_leader_hands_leadership_over_before_it_exits() {
    let net = Net::lease();
    let mut members = three(&net, "node").await;
    let mut old = None;
    until(Duration::from_secs(30), "a leader", || async {
        leader_seen_by(&members[1]).await.is_some()
    })
    .await;
    let name = leader_seen_by(&members[1]).await.expect("a leader");
    for (i, _) in members.iter().enumerate() {
        if name == format!("node{}", i + 1) {
            old = Some(i);
        }
    }
    let old = old.expect("the leader is one of the three");
    let pid = members[old].pid().expect("the leader runs");

    eprintln!("SIGTERM to the leader {name} (pid {pid})");
    let sent = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    // Polled by hand: `until` takes a shared closure and `has_exited` needs the member.
    while !members[old].has_exited() {
        assert!(
            sent.elapsed() < Duration::from_secs(30),
            "the old leader did not exit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exited = sent.elapsed();
    let log = members[old].log();
    assert!(
        log.contains("Received SIGTERM") && log.contains("Handing cluster leadership over"),
        "the leader stopped without a handover:\n{log}"
    );
    assert!(
        log.contains("now leads the cluster"),
        "no new leader before the old one exited:\n{log}"
    );

    eprintln!("exited after {exited:?}; the survivors have a new leader and take writes");
    let survivors: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    until(Duration::from_secs(10), "a new leader", || async {
        leader_seen_by(&members[survivors[0]])
            .await
            .is_some_and(|l| l != name)
    })
    .await;
    let elected = sent.elapsed();
    // Without a handover the survivors wait out the leader lease and an election timeout
    // (4.5 to 6 s with the default timing) after the leader's last heartbeat.
    assert!(
        elected < Duration::from_secs(4),
        "the new leader took {elected:?} after SIGTERM"
    );
    assert!(create_profile(&members[survivors[1]], "after-handover").await);

    eprintln!("the stopped member starts again and rejoins");
    members[old].start_again();
    until(
        Duration::from_secs(45),
        "the old leader back online with the new profile",
        || async {
            let back = members[old]
                .client()
                .profile("after-handover")
                .await
                .is_ok();
            let all_online = match members[survivors[0]].client().cluster_members().await {
                Ok(list) => list.len() == 3 && list.iter().all(|m| m.status == "Online"),
                Err(_) => false,
            };
            back && all_online
        },
    )
    .await;
    assert!(create_profile(&members[old], "after-rejoin").await);
}

#[tokio::test]
async fn elect_on_a_follower_makes_it_the_leader() {
    let net = Net::lease();
    let members = three(&net, "elect").await;
    until(Duration::from_secs(30), "a leader", || async {
        leader_seen_by(&members[0]).await.is_some()
    })
    .await;
    let leader = leader_seen_by(&members[0]).await.expect("a leader");
    let (i, follower) = members
        .iter()
        .enumerate()
        .find(|(i, _)| format!("elect{}", i + 1) != leader)
        .expect("two followers");
    let name = format!("elect{}", i + 1);
    eprintln!("asking the follower {name} (leader now: {leader}) to campaign");
    let asked = Instant::now();
    while leader_seen_by(follower).await.as_deref() != Some(name.as_str()) {
        if asked.elapsed() > Duration::from_secs(30) {
            for m in &members {
                eprintln!("---- {}\n{}", m.dir().display(), m.log());
            }
            panic!("{name} did not become the leader");
        }
        // A campaign can lose to a voter's leader lease (a leader elected moments ago): ask
        // again once an election timeout has passed.
        follower
            .client()
            .request("POST", "/internal/raft/elect", None, None)
            .await
            .expect("a voter accepts the election request");
        let campaign = Instant::now();
        while campaign.elapsed() < Duration::from_secs(3)
            && leader_seen_by(follower).await.as_deref() != Some(name.as_str())
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(create_profile(&members[0], "after-elect").await);
    assert!(follower.client().profile("after-elect").await.is_ok());
}
