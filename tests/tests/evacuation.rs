//! Evacuating and restoring a member gives what LXD 5.0.2 gives: a task operation with LXD's
//! description and the member as `location`, its Pending, Running and Success events, and the
//! `cluster-member-evacuated` / `cluster-member-restored` lifecycle events, through `rxc` and
//! the real `lxc`, watched on the events websocket. A request sent to another member is carried
//! out by the member named (its operation, its events, the caller kept as requestor), and
//! evacuations that race change the state once: the others fail with LXD's sentence.

use std::time::Duration;

use futures_util::StreamExt;
use rxd_client::EventStream;
use rxd_testkit::{fails, Member, Net};

const LXC: &str = "/usr/bin/lxc";

/// The events up to and including the lifecycle event `action`, bounded in count and time.
async fn events_until(events: &mut EventStream, action: &str) -> Vec<rxd_api::Event> {
    let mut seen = Vec::new();
    for _ in 0..200 {
        let e = tokio::time::timeout(Duration::from_secs(30), events.next())
            .await
            .unwrap_or_else(|_| panic!("no {action} event within 30 s; saw {seen:#?}"))
            .expect("the websocket stays open")
            .expect("events decode");
        let done = e.kind == "lifecycle" && e.metadata["action"] == action;
        seen.push(e);
        if done {
            return seen;
        }
    }
    panic!("no {action} event among 200: {seen:#?}");
}

/// Waits until `events` (opened on another member) relays the events of `from`: creates probe
/// profiles on `from` until the lifecycle event of one arrives, bounded in count and time.
async fn until_relayed(events: &mut EventStream, from: &Member) {
    for i in 0..30 {
        let probe = format!("probe-{i}");
        from.succeeds("rxc", &["profile", "create", &probe], None);
        let wanted = format!("/1.0/profiles/{probe}");
        let limit = tokio::time::Instant::now() + Duration::from_secs(1);
        while let Ok(Some(e)) = tokio::time::timeout_at(limit, events.next()).await {
            if e.expect("events decode").metadata["source"] == wanted.as_str() {
                return;
            }
        }
    }
    panic!("the events of the other member were never relayed");
}

/// Checks the operation events of one evacuation or restore and its lifecycle event.
fn check(seen: &[rxd_api::Event], description: &str, action: &str, username: &str) {
    let ops: Vec<&serde_json::Value> = seen
        .iter()
        .filter(|e| e.kind == "operation" && e.metadata["description"] == description)
        .map(|e| &e.metadata)
        .collect();
    let statuses: Vec<&str> = ops
        .iter()
        .map(|o| o["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(statuses[..2], ["Pending", "Running"], "{seen:#?}");
    for e in seen
        .iter()
        .filter(|e| e.kind == "operation" && e.metadata["description"] == description)
    {
        assert_eq!(e.location, "node2", "the member itself runs it: {e:?}");
    }
    for o in &ops {
        assert_eq!(o["class"], "task", "{o}");
        assert_eq!(o["location"], "node2", "the operation is the member's: {o}");
        assert_eq!(o["resources"], serde_json::Value::Null, "{o}");
        assert_eq!(o["may_cancel"], false, "{o}");
    }
    let life = seen.last().expect("the lifecycle event ends the list");
    assert_eq!(life.metadata["action"], action, "{life:?}");
    assert_eq!(
        life.metadata["source"], "/1.0/cluster/members/node2",
        "{life:?}"
    );
    assert_eq!(life.metadata["requestor"]["username"], username, "{life:?}");
    assert_eq!(life.location, "node2", "{life:?}");
    assert!(
        life.metadata.get("context").is_none_or(|c| c.is_null()),
        "LXD sends no context: {life:?}"
    );
}

#[tokio::test]
async fn evacuate_and_restore_report_operations_and_lifecycle_events() {
    let net = Net::lease();
    let members = Member::form(2, &net, &[]).await;
    let a = &members[0];
    // lxc's first run prints a greeting; have it out of the way.
    a.succeeds(LXC, &["remote", "list"], None);
    let mut events = a
        .client()
        .events(&["operation", "lifecycle"])
        .await
        .expect("events websocket");
    until_relayed(&mut events, &members[1]).await;

    eprintln!(
        "rxc cluster evacuate: a task operation located on the member, then the lifecycle event"
    );
    a.succeeds("rxc", &["cluster", "evacuate", "node2", "--force"], None);
    let seen = events_until(&mut events, "cluster-member-evacuated").await;
    check(
        &seen,
        "Evacuating cluster member",
        "cluster-member-evacuated",
        "root",
    );
    let (m, _) = a.client().cluster_member("node2").await.unwrap();
    assert_eq!(m.status, "Evacuated");
    assert_eq!(m.message, "Unavailable due to maintenance");

    eprintln!("The operation ends in Success, after its lifecycle event, as in LXD");
    let success = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let e = events.next().await.expect("open").expect("decodes");
            if e.kind == "operation" && e.metadata["status"] == "Success" {
                return e;
            }
        }
    })
    .await
    .expect("the operation succeeds within 30 s");
    assert_eq!(success.metadata["description"], "Evacuating cluster member");

    eprintln!("A second evacuation fails with LXD's sentence, through lxc and rxc alike");
    for program in [LXC, "rxc"] {
        let err = fails(&a.command(program, &["cluster", "evacuate", "node2", "--force"], None));
        assert_eq!(
            err, "Error: Cluster member is already evacuated\n",
            "{program}"
        );
    }

    eprintln!("lxc cluster restore: the same, with the restore's description and event");
    a.succeeds(LXC, &["cluster", "restore", "node2", "--force"], None);
    let seen = events_until(&mut events, "cluster-member-restored").await;
    check(
        &seen,
        "Restoring cluster member",
        "cluster-member-restored",
        "root",
    );
    let (m, _) = a.client().cluster_member("node2").await.unwrap();
    assert_eq!(m.status, "Online");
    for program in [LXC, "rxc"] {
        let err = fails(&a.command(program, &["cluster", "restore", "node2", "--force"], None));
        assert_eq!(
            err, "Error: Cluster member is already restored\n",
            "{program}"
        );
    }

    eprintln!("lxc cluster evacuate works the same on the member itself");
    let mut events = members[1]
        .client()
        .events(&["operation", "lifecycle"])
        .await
        .expect("events websocket");
    members[1].succeeds(LXC, &["cluster", "evacuate", "node2", "--force"], None);
    let seen = events_until(&mut events, "cluster-member-evacuated").await;
    check(
        &seen,
        "Evacuating cluster member",
        "cluster-member-evacuated",
        "root",
    );
}

/// Runs `cluster <action> node2 --force` through each (member, program) at the same time.
fn at_once(runs: [(&Member, &str); 2], action: &str) -> Vec<std::process::Output> {
    std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .into_iter()
            .map(|(m, program)| {
                s.spawn(move || m.command(program, &["cluster", action, "node2", "--force"], None))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn evacuations_that_race_change_the_state_once() {
    let net = Net::lease();
    let a = Member::start();
    a.bootstrap(&net.addr(1), "node1", &[]);
    // node2 holds each evacuation for a second before it changes the state, so two requests
    // are both under way before either has changed it.
    let b = Member::start_with_env(&[("RXD_FAILPOINT", "evacuation-before-state:delay=1")]);
    b.join(&a, "node2", &net.addr(2)).await;
    a.succeeds(LXC, &["remote", "list"], None);
    let mut events = a
        .client()
        .events(&["lifecycle"])
        .await
        .expect("events websocket");
    until_relayed(&mut events, &b).await;

    eprintln!("lxc on node1 and rxc on node2 evacuate node2 at once: one wins");
    let outs = at_once([(&a, LXC), (&b, "rxc")], "evacuate");
    let won = outs.iter().filter(|o| o.status.success()).count();
    let errs: Vec<String> = outs
        .iter()
        .filter(|o| !o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .collect();
    assert_eq!(won, 1, "{errs:?}");
    assert_eq!(errs, ["Error: Cluster member is already evacuated\n"]);
    let (m, _) = a.client().cluster_member("node2").await.unwrap();
    assert_eq!(m.status, "Evacuated");

    eprintln!("two restores through the API race alike; the loser's operation names the cause");
    let post = |c: rxd_client::Client| async move {
        let raw = c
            .request(
                "POST",
                "/1.0/cluster/members/node2/state",
                Some(serde_json::json!({"action": "restore", "mode": ""})),
                None,
            )
            .await
            .expect("202");
        assert_eq!(raw.status, 202);
        raw.operation().expect("an operation")
    };
    let (x, y) = tokio::join!(post(a.client()), post(b.client()));
    let mut outcomes = Vec::new();
    for op in [x, y] {
        assert_eq!(op.location, "node2", "{op:?}");
        let done = a
            .client()
            .wait_operation(&op.id, Some(Duration::from_secs(30)))
            .await
            .unwrap();
        outcomes.push((done.status, done.err));
    }
    outcomes.sort();
    assert_eq!(
        outcomes,
        [
            (
                "Failure".to_string(),
                "Cluster member is already restored".to_string()
            ),
            ("Success".to_string(), String::new()),
        ]
    );
    let (m, _) = a.client().cluster_member("node2").await.unwrap();
    assert_eq!(m.status, "Online");

    eprintln!("one lifecycle event for each change that happened");
    let seen = events_until(&mut events, "cluster-member-evacuated").await;
    assert!(seen
        .iter()
        .all(|e| e.metadata["action"] != "cluster-member-restored"));
    let seen = events_until(&mut events, "cluster-member-restored").await;
    let extra = seen
        .iter()
        .filter(|e| e.metadata["action"] == "cluster-member-evacuated")
        .count();
    assert_eq!(extra, 0, "a second evacuated event: {seen:#?}");
}

/// `lxc` waits for an operation on the events of the member it asked. An evacuation of a
/// member that has just joined, sent through a member that does not yet follow its events
/// (held here for 2 s before it connects), still ends for `lxc`: the request is sent on only
/// once the named member's events are relayed. Asking again, through any member and with
/// `lxc` or `rxc`, fails with LXD's sentence and never hangs.
#[tokio::test]
async fn an_evacuation_sent_on_right_after_a_join_ends_for_lxc() {
    let net = Net::lease();
    let a = Member::start_with_env(&[("RXD_FAILPOINT", "events-relay-before-connect:delay=2")]);
    a.bootstrap(&net.addr(1), "node1", &[]);
    let b = Member::start();
    b.join(&a, "node2", &net.addr(2)).await;
    let c = Member::start();
    c.join(&a, "node3", &net.addr(3)).await;
    let bounded = |m: &Member, program: &str, args: &[&str]| {
        let mut cmd = m.cmd(program);
        cmd.args(args);
        rxd_testkit::run_bounded(&mut cmd, None, Duration::from_secs(30))
    };
    rxd_testkit::ok(&bounded(
        &a,
        LXC,
        &["cluster", "evacuate", "node3", "--force"],
    ));
    for m in [&a, &b, &c] {
        for program in [LXC, "rxc"] {
            let err = fails(&bounded(
                m,
                program,
                &["cluster", "evacuate", "node3", "--force"],
            ));
            assert!(
                err.contains("Cluster member is already evacuated"),
                "{program}: {err}"
            );
        }
    }
    rxd_testkit::ok(&bounded(
        &b,
        LXC,
        &["cluster", "restore", "node3", "--force"],
    ));
    let list = rxd_testkit::ok(&bounded(&c, LXC, &["cluster", "list", "--format", "csv"]));
    assert!(!list.contains("EVACUATED"), "{list}");
}
