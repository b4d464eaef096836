//! Evacuating and restoring a member gives what LXD 5.0.2 gives: a task operation with LXD's
//! description and the member as `location`, its Pending, Running and Success events, and the
//! `cluster-member-evacuated` / `cluster-member-restored` lifecycle events, through `rxc` and
//! the real `lxc`, watched on the events websocket.

use std::time::Duration;

use futures_util::StreamExt;
use rxd_client::EventStream;
use rxd_testkit::{fails, Member, Net};

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
    assert!(!life.location.is_empty(), "{life:?}");
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
    let mut events = a
        .client()
        .events(&["operation", "lifecycle"])
        .await
        .expect("events websocket");

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

    eprintln!("A second evacuation is refused with LXD's sentence, through lxc");
    let err = fails(&a.command(
        "/usr/bin/lxc",
        &["cluster", "evacuate", "node2", "--force"],
        None,
    ));
    assert!(err.contains("Cluster member is already evacuated"), "{err}");

    eprintln!("lxc cluster restore: the same, with the restore's description and event");
    a.succeeds(
        "/usr/bin/lxc",
        &["cluster", "restore", "node2", "--force"],
        None,
    );
    let seen = events_until(&mut events, "cluster-member-restored").await;
    check(
        &seen,
        "Restoring cluster member",
        "cluster-member-restored",
        "root",
    );
    let (m, _) = a.client().cluster_member("node2").await.unwrap();
    assert_eq!(m.status, "Online");
    let err = fails(&a.command("rxc", &["cluster", "restore", "node2", "--force"], None));
    assert!(err.contains("Cluster member is already restored"), "{err}");

    eprintln!("lxc cluster evacuate works the same on the member itself");
    let mut events = members[1]
        .client()
        .events(&["operation", "lifecycle"])
        .await
        .expect("events websocket");
    members[1].succeeds(
        "/usr/bin/lxc",
        &["cluster", "evacuate", "node2", "--force"],
        None,
    );
    let seen = events_until(&mut events, "cluster-member-evacuated").await;
    check(
        &seen,
        "Evacuating cluster member",
        "cluster-member-evacuated",
        "root",
    );
}
