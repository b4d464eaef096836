//! Issue 7, "Scale that must hold": the cluster database keeps working at sizes a user reaches
//! in normal use. A member joins a cluster that took 10,000 writes, profiles of several MiB
//! replicate, an oversized body changes nothing, and a follower that missed 10,000 writes
//! catches up by snapshot, also after a crash in the middle of the snapshot's install.
//!
//! Every step is bounded in time; a bound that passes fails the test with what was seen.

use std::future::Future;
use std::time::{Duration, Instant};

use rxd_testkit::{create_profiles, join_preseed, join_token, profile_count, Member, Net};

/// Concurrent clients of the write loads.
const CLIENTS: usize = 8;
/// Bound of a load of 10,000 writes from [`CLIENTS`] clients. It takes 80-100 s in a debug
/// build on 2 busy cores, and 200 s beside another such load.
const LOAD: Duration = Duration::from_secs(420);
/// One API call in a poll; a cluster that does not answer within it counts as not ready yet.
const CALL: Duration = Duration::from_secs(10);
/// The failpoint that ends a follower's process inside a snapshot install, before the
/// received snapshot replaces its state machine.
const INSTALL_CRASH: &str = "snapshot-install-before-restore:crash";

/// Awaits `fut`, failing the test with `what` if it takes longer than `limit`.
async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: no answer within {} s", limit.as_secs()),
    }
}

/// The cluster member list as `m` reports it, or `None` if it does not answer in time.
async fn members_of(m: &Member) -> Option<Vec<rxd_api::ClusterMember>> {
    match tokio::time::timeout(CALL, m.client().cluster_members()).await {
        Ok(Ok(list)) => Some(list),
        _ => None,
    }
}

/// Polls `probe` every 200 ms until it returns `Ok`, failing the test after `limit` with the
/// last thing it returned.
async fn poll<T, F, Fut>(limit: Duration, what: &str, probe: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    let mut last = "nothing yet".to_string();
    loop {
        match tokio::time::timeout(limit.saturating_sub(start.elapsed()), probe()).await {
            Ok(Ok(v)) => return v,
            Ok(Err(seen)) => last = seen,
            Err(_) => last = format!("{last}, then no answer"),
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {} s waiting for {what}; last seen: {last}",
            limit.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Forms `node1..node3` on `<net>.1..3:8443` and waits until all three are voters.
async fn three_voters(net: &Net) -> Vec<Member> {
    let members = Member::form(3, net, &[]).await;
    poll(Duration::from_secs(60), "three voters", || async {
        let list = members_of(&members[0]).await.ok_or("no member list")?;
        let voters = list
            .iter()
            .filter(|m| m.put.roles.iter().any(|r| r == "database"))
            .count();
        if voters == 3 {
            Ok(())
        } else {
            Err(format!("{voters} voters"))
        }
    })
    .await;
    members
}

/// The index in `members` (`node{i+1}`) of the member holding the `database-leader` role.
async fn leader_of(members: &[Member]) -> usize {
    poll(Duration::from_secs(60), "a database-leader", || async {
        for m in members {
            if let Some(list) = members_of(m).await {
                if let Some(l) = list
                    .iter()
                    .find(|x| x.put.roles.iter().any(|r| r == "database-leader"))
                {
                    let k: usize = l
                        .server_name
                        .strip_prefix("node")
                        .and_then(|n| n.parse().ok())
                        .expect("members are named nodeK");
                    return Ok(k - 1);
                }
            }
        }
        Err("no member names a leader".to_string())
    })
    .await
}

/// The last `n` lines of a log.
fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Waits until `m` lists `want` profiles, through its own API.
async fn until_profiles(m: &Member, name: &str, want: usize, limit: Duration) {
    poll(
        limit,
        &format!("{name} to list {want} profiles"),
        || async {
            match profile_count(&m.client(), CALL).await? {
                n if n == want => Ok(()),
                n => Err(format!("{n} profiles")),
            }
        },
    )
    .await
}

#[tokio::test]
async fn join_after_ten_thousand_writes() {
    const WRITES: usize = 10_000;
    let net = &Net::lease();
    let members = three_voters(net).await;

    eprintln!("{WRITES} profile writes from {CLIENTS} clients over the three members");
    let clients: Vec<_> = members.iter().map(Member::client).collect();
    let load = create_profiles(&clients, "p", WRITES, CLIENTS, LOAD).await;
    eprintln!(
        "  {} writes in {:.1} s ({:.0}/s)",
        load.writes,
        load.elapsed.as_secs_f64(),
        load.per_second()
    );

    let leader = leader_of(&members).await;
    for f in ["state.db", "snapshot.db"] {
        let path = members[leader].dir().join("database/global").join(f);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        eprintln!("  the leader's {f}: {:.2} MiB", size as f64 / 1048576.0);
    }

    eprintln!("A fourth member joins by token");
    let fourth = Member::start();
    let token = join_token(&members[0], "node4").await;
    let seed = join_preseed(&format!("{net}.4:8443"), &token, "");
    let join = fourth
        .rxd_within(&["init", "--preseed"], &seed, Duration::from_secs(30))
        .await;
    eprintln!("  node4's join took {} ms", join.elapsed.as_millis());
    let out = join.output.unwrap_or_else(|| {
        panic!(
            "node4's `rxd init --preseed` had not finished after {:.1} s (killed); node4's log \
             ends with:\n{}",
            join.elapsed.as_secs_f64(),
            tail(&fourth.log(), 8)
        )
    });
    assert!(
        out.status.success(),
        "node4's join failed after {:.1} s: {}",
        join.elapsed.as_secs_f64(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        join.elapsed <= Duration::from_secs(10),
        "node4's join took {:.1} s, more than 10 s",
        join.elapsed.as_secs_f64()
    );

    eprintln!("All four members are Online");
    let all: Vec<&Member> = members.iter().chain([&fourth]).collect();
    poll(Duration::from_secs(30), "four members Online", || async {
        let list = members_of(&fourth).await.ok_or("no member list")?;
        let states: Vec<String> = list
            .iter()
            .map(|m| format!("{} {}", m.server_name, m.status))
            .collect();
        if list.len() == 4 && list.iter().all(|m| m.status == "Online") {
            Ok(())
        } else {
            Err(states.join(", "))
        }
    })
    .await;
    for m in &all {
        let list = members_of(m).await.expect("every member answers");
        assert!(
            list.len() == 4 && list.iter().all(|x| x.status == "Online"),
            "{:?}",
            list.iter()
                .map(|x| (&x.server_name, &x.status))
                .collect::<Vec<_>>()
        );
    }

    eprintln!("node4 reads all {} profiles", WRITES + 1);
    let n = profile_count(&fourth.client(), Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n, WRITES + 1, "node4 lists {n} profiles");
}

/// `len` bytes of text that differ from one profile to the next (`seed`), so that a mix-up
/// between entries would show.
fn payload(len: usize, seed: u64) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ALPHABET[(x >> 33) as usize % ALPHABET.len()] as char
        })
        .collect()
}

fn with_data(name: &str, data: &str) -> rxd_api::ProfilesPost {
    rxd_api::ProfilesPost {
        name: name.to_string(),
        config: [("user.data".to_string(), data.to_string())].into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn big_profiles_replicate() {
    let net = Net::lease();
    const MIB: usize = 1024 * 1024;
    let members = three_voters(&net).await;
    let leader = leader_of(&members).await;
    let follower = (leader + 1) % members.len();
    eprintln!(
        "node{} leads; node{} is a follower",
        leader + 1,
        follower + 1
    );

    let mut written = Vec::new();
    for (who, at) in [("leader", leader), ("follower", follower)] {
        for (mib, seed) in [(3, 1), (9, 2)] {
            let name = format!("big-{mib}m-{who}");
            let data = payload(mib * MIB, seed + at as u64 * 10);
            let start = Instant::now();
            within(
                Duration::from_secs(60),
                &format!("creating {name} on the {who}"),
                members[at]
                    .client()
                    .create_profile(&with_data(&name, &data)),
            )
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "creating {name} ({mib} MiB) on the {who} failed after {:.1} s: {e}",
                    start.elapsed().as_secs_f64()
                )
            });
            eprintln!(
                "  {name} written on node{} in {} ms",
                at + 1,
                start.elapsed().as_millis()
            );
            written.push((name, data));
        }
    }

    eprintln!("Every member reads them back, byte for byte");
    for (i, m) in members.iter().enumerate() {
        for (name, data) in &written {
            let (p, _) = within(
                Duration::from_secs(60),
                &format!("reading {name} on node{}", i + 1),
                m.client().profile(name),
            )
            .await
            .unwrap_or_else(|e| panic!("reading {name} on node{}: {e}", i + 1));
            let got = p.config.get("user.data").map(String::as_str).unwrap_or("");
            assert!(
                got == data,
                "{name} on node{} has {} bytes of user.data, not the {} written",
                i + 1,
                got.len(),
                data.len()
            );
        }
    }

    eprintln!("A body over 10 MiB gets 413 on the leader and on a follower, and changes nothing");
    let before = profile_count(&members[leader].client(), CALL)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for (who, at) in [("leader", leader), ("follower", follower)] {
        let name = format!("too-big-{who}");
        let post = with_data(&name, &"x".repeat(10 * MIB + 1));
        let err = within(
            Duration::from_secs(60),
            &format!("sending {name} to the {who}"),
            members[at].client().create_profile(&post),
        )
        .await
        .expect_err("a body over 10 MiB is refused");
        assert_eq!(
            err.status(),
            Some(413),
            "an oversized body on the {who} answered: {err}"
        );
    }
    for (i, m) in members.iter().enumerate() {
        for who in ["leader", "follower"] {
            let name = format!("too-big-{who}");
            let got = within(CALL, "reading a refused profile", m.client().profile(&name)).await;
            assert!(
                got.as_ref().is_err_and(|e| e.is_not_found()),
                "node{} has {name} after a 413: {:?}",
                i + 1,
                got.map(|(p, _)| p.name)
            );
        }
        let n = profile_count(&m.client(), CALL)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n, before, "node{} lists {n} profiles, not {before}", i + 1);
    }
}

/// Writes a stopped follower misses. With the default snapshot policy (a snapshot every 1024
/// entries, 8192 entries kept after it) a follower behind by more than 9216 entries can only
/// catch up by a snapshot install; 20,000 leaves it more than twice that far behind.
const MISSED_WRITES: usize = 20_000;

/// Forms three voters on `net`, stops a follower gracefully and writes [`MISSED_WRITES`]
/// profiles through the two others; returns the members, the stopped follower's index and the
/// leader's.
async fn follower_misses_writes(net: &Net) -> (Vec<Member>, usize, usize) {
    const WRITES: usize = MISSED_WRITES;
    let mut members = three_voters(net).await;
    let leader = leader_of(&members).await;
    let follower = (leader + 1) % members.len();
    eprintln!("Stopping node{} (a follower)", follower + 1);
    members[follower].stop();

    eprintln!("{WRITES} profile writes from {CLIENTS} clients over the two others");
    let clients: Vec<_> = members
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != follower)
        .map(|(_, m)| m.client())
        .collect();
    let load = create_profiles(&clients, "p", WRITES, CLIENTS, LOAD).await;
    eprintln!(
        "  {} writes in {:.1} s ({:.0}/s)",
        load.writes,
        load.elapsed.as_secs_f64(),
        load.per_second()
    );
    let n = profile_count(&members[leader].client(), Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n, WRITES + 1, "the leader lists {n} profiles");
    (members, follower, leader)
}

#[tokio::test]
async fn stopped_follower_catches_up_by_snapshot() {
    let net = Net::lease();
    let (mut members, follower, _) = follower_misses_writes(&net).await;
    eprintln!("Starting node{} again", follower + 1);
    let start = Instant::now();
    members[follower].relaunch();
    until_profiles(
        &members[follower],
        &format!("node{}", follower + 1),
        MISSED_WRITES + 1,
        Duration::from_secs(60),
    )
    .await;
    eprintln!(
        "  node{} caught up {} ms after its start",
        follower + 1,
        start.elapsed().as_millis()
    );
    members[follower].wait_ready();
}

#[tokio::test]
async fn follower_killed_during_snapshot_install_recovers() {
    let net = Net::lease();
    let (mut members, follower, _) = follower_misses_writes(&net).await;
    let f = &mut members[follower];
    eprintln!(
        "Starting node{} again with RXD_FAILPOINT={INSTALL_CRASH}",
        follower + 1
    );
    f.env_for_next_start("RXD_FAILPOINT", INSTALL_CRASH);
    f.relaunch();
    let start = Instant::now();
    let limit = Duration::from_secs(60);
    while !f.has_exited() {
        assert!(
            start.elapsed() < limit,
            "node{} did not exit at the failpoint {INSTALL_CRASH} within {} s: \
             no snapshot install reached that step",
            follower + 1,
            limit.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "  node{} exited inside the install after {} ms",
        follower + 1,
        start.elapsed().as_millis()
    );

    eprintln!("Starting it again without the failpoint; it recovers and catches up");
    f.clear_env();
    let start = Instant::now();
    f.relaunch();
    let f = &members[follower];
    until_profiles(
        f,
        &format!("node{}", follower + 1),
        MISSED_WRITES + 1,
        Duration::from_secs(60),
    )
    .await;
    eprintln!(
        "  node{} caught up {} ms after its restart",
        follower + 1,
        start.elapsed().as_millis()
    );
    f.wait_ready();
}
