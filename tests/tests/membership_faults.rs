//! Issue 7: membership changes that cannot freeze the cluster, and joins and removals that end
//! the same way on both sides after a crash at any step (failpoints land the crash exactly).

use std::process::Stdio;
use std::time::{Duration, Instant};

use rxd_api::ClusterMember;
use rxd_testkit::{bin, join_preseed, join_token, until, Member, Net};

const THRESHOLD: &str = "cluster.offline_threshold: 11";

/// Runs `rxc ARGS` against `m`; returns (success, stdout + stderr).
fn rxc(m: &Member, args: &[&str]) -> (bool, String) {
    let out = m.command("rxc", args, None);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn members_of(m: &Member) -> Vec<ClusterMember> {
    m.client().cluster_members().await.unwrap_or_default()
}

async fn status_of(m: &Member, name: &str) -> Option<String> {
    members_of(m)
        .await
        .into_iter()
        .find(|x| x.server_name == name)
        .map(|x| x.status)
}

async fn wait_offline(m: &Member, name: &str) {
    until(
        Duration::from_secs(60),
        &format!("{name} to show Offline"),
        || async { status_of(m, name).await.as_deref() == Some("Offline") },
    )
    .await;
}

/// A write that must finish within `limit` (a frozen cluster would hang it).
async fn write_within(m: &Member, name: &str, limit: Duration) {
    let c = m.client();
    let post = rxd_api::ProfilesPost {
        name: name.into(),
        ..Default::default()
    };
    tokio::time::timeout(limit, c.create_profile(&post))
        .await
        .unwrap_or_else(|_| panic!("writing profile {name} hung"))
        .unwrap_or_else(|e| panic!("writing profile {name} failed: {e}"));
    tokio::time::timeout(limit, c.profile(name))
        .await
        .unwrap_or_else(|_| panic!("reading profile {name} hung"))
        .unwrap_or_else(|e| panic!("reading profile {name} failed: {e}"));
}

async fn is_clustered(m: &Member) -> bool {
    let (server, _) = m.client().server().await.expect("the daemon answers");
    server
        .environment
        .expect("local clients see it")
        .server_clustered
}

async fn wait_standalone(m: &Member) {
    // While it resets, the member answers 503 for a moment.
    until(
        Duration::from_secs(30),
        "the member to be standalone",
        || async {
            match m.client().server().await {
                Ok((server, _)) => !server.environment.is_some_and(|e| e.server_clustered),
                Err(_) => false,
            }
        },
    )
    .await;
}

fn wait_exit(m: &mut Member) {
    let start = Instant::now();
    while !m.has_exited() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the member did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_rxd_the_tests_run_has_failpoints() {
    let dir = tempfile_dir();
    let mut child = std::process::Command::new(bin("rxd"))
        .env("RXD_FAILPOINT", "daemon-start:crash")
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rxd starts");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "target/debug/rxd ignores RXD_FAILPOINT: it was built without the `failpoints` \
                 feature (`cargo nextest run --workspace` builds it with them, or \
                 `cargo build -p rxd-daemon --features failpoints`)"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(status.code(), Some(137));
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rxd-fp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---- Defect 5: removal and liveness ----

/// The members `m` lists with the `database` (voter) role.
async fn voters(m: &Member) -> Vec<String> {
    members_of(m)
        .await
        .into_iter()
        .filter(|x| x.put.roles.contains(&"database".to_string()))
        .map(|x| x.server_name)
        .collect()
}

async fn until_three_voters(m: &Member) {
    until(Duration::from_secs(30), "three voters", || async {
        voters(m).await.len() == 3
    })
    .await;
}

#[tokio::test]
async fn removing_a_member_while_another_voter_is_down_keeps_the_cluster_working() {
    let net = Net::lease();
    let mut m = Member::form(3, &net, &[THRESHOLD]).await;
    until_three_voters(&m[0]).await;
    eprintln!("node2 dies; node3 is removed: voters {{1,2}} would need the dead node2");
    m[1].kill();
    wait_offline(&m[0], "node2").await;
    let start = Instant::now();
    let (ok, text) = rxc(&m[0], &["cluster", "remove", "node3"]);
    assert!(ok, "{text}");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "the removal took too long"
    );
    wait_standalone(&m[2]).await;
    write_within(&m[0], "after-removal", Duration::from_secs(10)).await;

    eprintln!("The dead node2 is refused without --force, removed with it");
    let (ok, text) = rxc(&m[0], &["cluster", "remove", "node2"]);
    assert!(!ok, "{text}");
    assert!(text.contains("offline"), "{text}");
    m[0].client()
        .delete_cluster_member("node2", true)
        .await
        .expect("a forced removal of the dead member");
    let names: Vec<String> = members_of(&m[0])
        .await
        .into_iter()
        .map(|x| x.server_name)
        .collect();
    assert_eq!(names, ["node1"]);
    write_within(&m[0], "alone", Duration::from_secs(10)).await;
}

#[tokio::test]
async fn a_removal_that_would_leave_most_voters_offline_is_refused() {
    let net = Net::lease();
    let mut m = Member::form(4, &net, &[THRESHOLD]).await;
    until_three_voters(&m[0]).await;
    assert_eq!(voters(&m[0]).await, ["node1", "node2", "node3"]);
    eprintln!("node4 (the stand-by) dies, then the voter node2");
    m[3].kill();
    wait_offline(&m[0], "node4").await;
    m[1].kill();
    wait_offline(&m[0], "node2").await;
    eprintln!("Removing node3 would leave voters {{1,2}} with only node1 alive: refused");
    for force in [false, true] {
        let start = Instant::now();
        let err = m[0]
            .client()
            .delete_cluster_member("node3", force)
            .await
            .expect_err("the removal is refused");
        assert!(start.elapsed() < Duration::from_secs(10));
        assert_eq!(err.status(), Some(400), "{err}");
        assert!(err.to_string().contains("majority"), "{err}");
    }
    eprintln!("Nothing changed and the cluster still works");
    assert_eq!(members_of(&m[0]).await.len(), 4);
    assert!(is_clustered(&m[2]).await);
    write_within(&m[2], "after-refusal", Duration::from_secs(10)).await;
}

#[tokio::test]
async fn removing_the_leader_hands_over_to_an_online_member() {
    let net = Net::lease();
    let mut m = Member::form(3, &net, &[THRESHOLD]).await;
    until_three_voters(&m[0]).await;
    eprintln!("node2 dies; the leader node1 is removed and must hand over to node3");
    m[1].kill();
    wait_offline(&m[0], "node2").await;
    let (ok, text) = rxc(&m[2], &["cluster", "remove", "node1"]);
    assert!(ok, "{text}");
    wait_standalone(&m[0]).await;
    write_within(&m[2], "new-leader", Duration::from_secs(10)).await;
    let list = members_of(&m[2]).await;
    assert!(
        list.iter()
            .any(|x| x.server_name == "node3"
                && x.put.roles.contains(&"database-leader".to_string())),
        "{list:?}"
    );
}

// ---- Defect 6: one commit point for a join ----

/// Joins `joiner` to `leader` as `name` at `address` with `failpoint` crashing the joiner,
/// restarts it, and returns whether it ended as a member; both sides must agree.
async fn crash_join_at(leader: &Member, joiner: &mut Member, name: &str, address: &str) -> bool {
    let t = join_token(leader, name).await;
    let out = joiner.rxd_with_input(&["init", "--preseed"], &join_preseed(address, &t, ""));
    assert!(!out.status.success(), "the join should have crashed");
    wait_exit(joiner);
    joiner.clear_env();
    joiner.launch_again();
    let start = Instant::now();
    while joiner.client().server().await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the restarted joiner does not answer\njoiner:\n{}\nleader:\n{}",
            joiner.log(),
            leader.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    settled(leader, joiner, name).await
}

/// Waits until the joiner and the cluster agree on how the join ended, and checks it.
async fn settled(leader: &Member, joiner: &Member, name: &str) -> bool {
    let start = Instant::now();
    let outcome = loop {
        if !joiner.dir().join("database/join.json").exists() {
            let clustered = is_clustered(joiner).await;
            let listed = members_of(leader)
                .await
                .into_iter()
                .find(|x| x.server_name == name)
                .map(|x| x.status);
            match (clustered, listed.as_deref()) {
                (true, Some("Online")) => break Some(true),
                (false, None) => break Some(false),
                _ => {}
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "both sides did not agree on the join:\n{}",
            joiner.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let member = outcome.expect("an outcome was seen");
    if member {
        eprintln!("{name} is a member on both sides");
        write_within(joiner, &format!("from-{name}"), Duration::from_secs(10)).await;
        assert!(leader
            .client()
            .profile(&format!("from-{name}"))
            .await
            .is_ok());
    } else {
        eprintln!("{name} is standalone and the cluster forgot it");
        assert!(!joiner.dir().join("cluster.crt").exists());
        assert!(!joiner.dir().join("storage-pools/local").exists());
        assert!(!joiner.dir().join("database/global.pre-join").exists());
    }
    member
}

async fn joiner_keeps_its_old_config(joiner: &Member) {
    let c = joiner.client();
    assert!(c.profile("mine").await.is_ok(), "its own profile is back");
    let (server, _) = c.server().await.unwrap();
    let config = server.config.unwrap_or_default();
    assert_eq!(
        config.get("core.https_address"),
        None,
        "core.https_address is undone"
    );
}

async fn fresh_joiner(failpoint: &str) -> Member {
    let joiner = Member::start_with_env(&[("RXD_FAILPOINT", failpoint)]);
    joiner
        .client()
        .create_profile(&rxd_api::ProfilesPost {
            name: "mine".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    joiner
}

async fn retry_join(leader: &Member, joiner: &Member, name: &str, address: &str) {
    let t = join_token(leader, name).await;
    rxd_testkit::ok(&joiner.rxd_with_input(&["init", "--preseed"], &join_preseed(address, &t, "")));
    until(
        Duration::from_secs(30),
        "the retried member online",
        || async { status_of(leader, name).await.as_deref() == Some("Online") },
    )
    .await;
    write_within(joiner, "after-retry", Duration::from_secs(10)).await;
}

#[tokio::test]
async fn joiner_crash_after_accept_is_undone_and_a_retry_succeeds() {
    let net = Net::lease();
    let leader = Member::start();
    leader.bootstrap(&net.addr(1), "node1", &[THRESHOLD]);
    let mut joiner = fresh_joiner("join-after-accept:crash").await;
    let t = join_token(&leader, "node2").await;
    let out = joiner.rxd_with_input(&["init", "--preseed"], &join_preseed(&net.addr(2), &t, ""));
    assert!(!out.status.success(), "the join should have crashed");
    wait_exit(&mut joiner);
    joiner.clear_env();
    joiner.start_again();
    eprintln!("Restarted standalone, with its pools, networks and address undone");
    assert!(!is_clustered(&joiner).await);
    assert!(!joiner.dir().join("storage-pools/local").exists());
    joiner_keeps_its_old_config(&joiner).await;
    eprintln!("The cluster still has it pending; a retry at once replaces that");
    assert_eq!(
        status_of(&leader, "node2").await.as_deref(),
        Some("Pending")
    );
    retry_join(&leader, &joiner, "node2", &net.addr(2)).await;
}

#[tokio::test]
async fn joiner_crash_after_the_swap_is_undone_and_a_retry_succeeds() {
    let net = Net::lease();
    let leader = Member::start();
    leader.bootstrap(&net.addr(1), "node1", &[THRESHOLD]);
    let mut joiner = fresh_joiner("join-after-swap:crash").await;
    let member = crash_join_at(&leader, &mut joiner, "node2", &net.addr(2)).await;
    assert!(!member, "the leader never made it a member");
    joiner_keeps_its_old_config(&joiner).await;
    retry_join(&leader, &joiner, "node2", &net.addr(2)).await;
}

#[tokio::test]
async fn joiner_crash_after_joined_finishes_the_join() {
    let net = Net::lease();
    let leader = Member::start();
    leader.bootstrap(&net.addr(1), "node1", &[THRESHOLD]);
    let mut joiner = fresh_joiner("join-after-joined:crash").await;
    let member = crash_join_at(&leader, &mut joiner, "node2", &net.addr(2)).await;
    assert!(member, "the leader committed the join");
}

#[tokio::test]
async fn joiner_crash_before_the_rename_finishes_the_join() {
    let net = Net::lease();
    let leader = Member::start();
    leader.bootstrap(&net.addr(1), "node1", &[THRESHOLD]);
    let mut joiner = fresh_joiner("join-before-rename:crash").await;
    let member = crash_join_at(&leader, &mut joiner, "node2", &net.addr(2)).await;
    assert!(member);
}

#[tokio::test]
async fn joiner_crash_after_the_rename_finishes_the_join() {
    let net = Net::lease();
    let leader = Member::start();
    leader.bootstrap(&net.addr(1), "node1", &[THRESHOLD]);
    let mut joiner = fresh_joiner("join-after-rename:crash").await;
    let member = crash_join_at(&leader, &mut joiner, "node2", &net.addr(2)).await;
    assert!(member);
}

#[tokio::test]
async fn joiner_crash_before_the_learner_catches_up_ends_the_same_on_both_sides() {
    let net = Net::lease();
    let leader = Member::start();
    leader.bootstrap(&net.addr(1), "node1", &[THRESHOLD]);
    let mut joiner = fresh_joiner("join-before-catch-up:crash").await;
    let member = crash_join_at(&leader, &mut joiner, "node2", &net.addr(2)).await;
    if !member {
        joiner_keeps_its_old_config(&joiner).await;
        retry_join(&leader, &joiner, "node2", &net.addr(2)).await;
    }
}

// ---- Defect 7: the reaper and a join that finishes late ----

#[tokio::test]
async fn a_join_that_finishes_after_the_pending_deadline_is_kept() {
    let net = Net::lease();
    // The leader holds `joined` for 45 s, well past twice the offline threshold (22 s) plus a
    // heartbeat round, so the reaper decides the member is stale while the join holds the lock.
    let leader = Member::start_with_env(&[("RXD_FAILPOINT", "joined-before-created:delay=45")]);
    leader.bootstrap(&net.addr(1), "node1", &[THRESHOLD]);
    let joiner = Member::start();
    joiner.join(&leader, "node2", &net.addr(2)).await;
    let start = Instant::now();
    while !leader.log().contains("finished joining meanwhile") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the reaper did not look at node2 again:\n{}",
            leader.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status_of(&leader, "node2").await.as_deref(), Some("Online"));
    assert!(is_clustered(&joiner).await);
    write_within(&joiner, "late-joiner", Duration::from_secs(10)).await;
}

// ---- Item 8: ids, and a removed member's reset ----

#[tokio::test]
async fn concurrent_joins_both_get_an_id_of_their_own() {
    let net = Net::lease();
    let leader = Member::start();
    leader.bootstrap(&net.addr(1), "node1", &[THRESHOLD]);
    let (a, b) = (Member::start(), Member::start());
    let (ta, tb) = (
        join_token(&leader, "node2").await,
        join_token(&leader, "node3").await,
    );
    let (sa, sb) = (
        join_preseed(&net.addr(2), &ta, ""),
        join_preseed(&net.addr(3), &tb, ""),
    );
    let (oa, ob) = std::thread::scope(|s| {
        let ja = s.spawn(|| a.rxd_with_input(&["init", "--preseed"], &sa));
        let jb = s.spawn(|| b.rxd_with_input(&["init", "--preseed"], &sb));
        (ja.join().unwrap(), jb.join().unwrap())
    });
    rxd_testkit::ok(&oa);
    rxd_testkit::ok(&ob);
    until(Duration::from_secs(30), "three members online", || async {
        let list = members_of(&leader).await;
        list.len() == 3 && list.iter().all(|m| m.status == "Online")
    })
    .await;
    write_within(&a, "from-a", Duration::from_secs(10)).await;
    write_within(&b, "from-b", Duration::from_secs(10)).await;
}

#[tokio::test]
async fn a_removed_member_that_crashes_while_resetting_starts_standalone() {
    let net = Net::lease();
    let leader = Member::start();
    leader.bootstrap(&net.addr(1), "node1", &[THRESHOLD]);
    let mut gone = Member::start_with_env(&[("RXD_FAILPOINT", "standalone-after-rename:crash")]);
    gone.join(&leader, "node2", &net.addr(2)).await;
    leader
        .client()
        .delete_cluster_member("node2", false)
        .await
        .unwrap();
    eprintln!("node2 dies after setting its database aside, before clearing its node id");
    wait_exit(&mut gone);
    gone.clear_env();
    gone.start_again();
    assert!(!is_clustered(&gone).await);
    assert!(!gone.dir().join("cluster.crt").exists());
    assert!(!gone.dir().join("database/global.removed").exists());
    write_within(&gone, "standalone-again", Duration::from_secs(10)).await;
    eprintln!("It can join again");
    gone.join(&leader, "node2", &net.addr(2)).await;
    until(Duration::from_secs(30), "node2 online again", || async {
        status_of(&leader, "node2").await.as_deref() == Some("Online")
    })
    .await;
}
