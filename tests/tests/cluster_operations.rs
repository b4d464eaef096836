//! `/1.0/operations` across a cluster: any member lists the operations of every member with their
//! `location`, and reads, waits on and cancels an operation of another member by asking the
//! member that runs it; a join token made on one member is listed and revoked from another,
//! through the client and through Debian's real `lxc`.

use std::time::Duration;

use rxd_testkit::{ok, Member, Net};

const LXC: &str = "/usr/bin/lxc";

fn ids(map: &std::collections::BTreeMap<String, Vec<rxd_api::Operation>>) -> Vec<String> {
    map.values().flatten().map(|o| o.id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_of_one_member_is_listed_read_and_waited_on_from_another() {
    let net = Net::lease();
    let m = Member::form(3, &net, &[]).await;
    // An evacuation runs as a task operation on the member that was asked: node3.
    let raw = m[2]
        .client()
        .request(
            "POST",
            "/1.0/cluster/members/node3/state",
            Some(serde_json::json!({"action": "evacuate"})),
            None,
        )
        .await
        .expect("evacuation starts");
    let op = raw.operation().expect("an operation");
    assert_eq!(op.location, "node3");

    let c1 = m[0].client();
    let waited = c1
        .wait_operation(&op.id, Some(Duration::from_secs(30)))
        .await
        .expect("node1 waits on node3's operation");
    assert_eq!(waited.id, op.id);
    assert_eq!(waited.status, "Success", "{waited:?}");
    assert_eq!(waited.location, "node3");
    let read = c1.operation(&op.id).await.expect("node1 reads it");
    assert_eq!(read.location, "node3");
    let listed = c1.operations().await.expect("node1 lists");
    let mine: Vec<_> = listed
        .get("success")
        .into_iter()
        .flatten()
        .filter(|o| o.id == op.id)
        .collect();
    assert_eq!(mine.len(), 1, "listed once, under success: {listed:?}");
    assert_eq!(mine[0].location, "node3");
    let plain: std::collections::BTreeMap<String, Vec<String>> =
        c1.get("/1.0/operations").await.expect("recursion 0");
    assert!(
        plain
            .get("success")
            .is_some_and(|v| v.contains(&format!("/1.0/operations/{}", op.id))),
        "{plain:?}"
    );
    // The member that runs it decides: a task cannot be cancelled.
    let refused = c1
        .cancel_operation(&op.id)
        .await
        .expect_err("a task cannot be cancelled");
    assert_eq!(refused.status(), Some(400), "{refused}");
    assert!(
        refused.to_string().contains("can't be cancelled"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_operation_is_404_on_every_path_of_a_cluster() {
    let net = Net::lease();
    let m = Member::form(2, &net, &[]).await;
    let c = m[0].client();
    let id = "9d0b3d1e-1f2a-4b7c-8e9f-0a1b2c3d4e5f";
    let e = c.operation(id).await.expect_err("unknown");
    assert_eq!(e.status(), Some(404), "{e}");
    let e = c.cancel_operation(id).await.expect_err("unknown");
    assert_eq!(e.status(), Some(404), "{e}");
    let e = c
        .wait_operation(id, Some(Duration::from_secs(1)))
        .await
        .expect_err("unknown");
    assert_eq!(e.status(), Some(404), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_made_on_one_member_is_listed_and_revoked_from_another() {
    let net = Net::lease();
    let m = Member::form(2, &net, &[]).await;
    let token = m[0]
        .client()
        .create_join_token("node9")
        .await
        .expect("token");
    let on2 = m[1].client().operations().await.expect("node2 lists");
    let listed: Vec<_> = on2
        .values()
        .flatten()
        .filter(|o| o.id == token.id)
        .collect();
    assert_eq!(listed.len(), 1, "{on2:?}");
    assert_eq!(listed[0].location, "node1");
    assert!(ids(&on2).contains(&token.id));

    // lxc's first run prints a greeting; have it done first.
    m[1].command(LXC, &["list"], None);
    let tokens = ok(&m[1].command(LXC, &["cluster", "list-tokens"], None));
    assert!(tokens.contains("node9"), "{tokens}");
    ok(&m[1].command(LXC, &["cluster", "revoke-token", "node9"], None));
    let on1 = m[0].client().operations().await.expect("node1 lists");
    assert!(
        !ids(&on1).contains(&token.id),
        "revoked everywhere: {on1:?}"
    );
    let tokens = ok(&m[0].command(LXC, &["cluster", "list-tokens"], None));
    assert!(!tokens.contains("node9"), "{tokens}");
}
