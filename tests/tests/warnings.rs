//! Warnings (`/1.0/warnings`, API extension `warnings`) raised by rxd itself, read and changed
//! through Debian's real `lxc` and through `rxc` on a real cluster: a member that stops
//! answering heartbeats, and a storage pool a member cannot mount at start.

use std::time::Duration;

use rxd_api::Warning;
use rxd_testkit::{fails, ok, until, Member, Net};

/// The lowest offline threshold rxd accepts, so that a stopped member shows soon.
const THRESHOLD: &str = "cluster.offline_threshold: 11";

/// Runs Debian's `lxc` against `m` (its unix socket, and its home for lxc's remotes).
fn lxc(m: &Member, args: &[&str]) -> std::process::Output {
    m.command("lxc", args, None)
}

fn rxc(m: &Member, args: &[&str]) -> std::process::Output {
    m.command("rxc", args, None)
}

/// The warnings of `kind` about `entity`, as `m` lists them.
async fn about(m: &Member, kind: &str, entity: &str) -> Vec<Warning> {
    m.client()
        .warnings()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|w| w.warning_type == kind && w.entity_url == entity)
        .collect()
}

async fn one_about(m: &Member, kind: &str, entity: &str) -> Option<Warning> {
    let mut found = about(m, kind, entity).await;
    assert!(
        found.len() <= 1,
        "one row per member, type and entity: {found:?}"
    );
    found.pop()
}

/// Waits until `m` lists the one warning of `kind` about `entity` and `test` holds for it.
async fn wait_for(
    m: &Member,
    kind: &str,
    entity: &str,
    what: &str,
    test: impl Fn(&Warning) -> bool,
) -> Warning {
    until(Duration::from_secs(90), what, || async {
        one_about(m, kind, entity).await.is_some_and(|w| test(&w))
    })
    .await;
    one_about(m, kind, entity)
        .await
        .expect("it was just listed")
}

const OFFLINE: &str = "Offline cluster member";

#[tokio::test(flavor = "multi_thread")]
async fn an_offline_member_raises_a_warning_lxc_lists_acknowledges_and_deletes() {
    let net = Net::lease();
    let mut m = Member::form(3, &net, &[THRESHOLD]).await;
    let entity = "/1.0/cluster/members/node3";

    eprintln!("lxc reaches node2 over HTTPS as a trusted client, by the trust password");
    ok(&lxc(
        &m[1],
        &[
            "remote",
            "add",
            "c",
            &format!("https://{}", net.addr(2)),
            "--password",
            "sekret",
            "--accept-certificate",
        ],
    ));
    assert!(about(&m[0], OFFLINE, entity).await.is_empty());

    eprintln!("node3 stops: the leader raises one warning for it");
    m[2].stop();
    let w = wait_for(&m[0], OFFLINE, entity, "the offline warning", |w| {
        w.status == "new"
    })
    .await;
    assert_eq!(
        (
            w.location.as_str(),
            w.project.as_str(),
            w.severity.as_str(),
            w.count
        ),
        ("node3", "", "low", 1)
    );
    assert!(w.last_message.contains("No heartbeat"), "{w:?}");

    eprintln!("lxc and rxc print the same table and csv");
    for format in ["table", "csv"] {
        let by_lxc = ok(&lxc(&m[1], &["warning", "list", "c:", "--format", format]));
        let by_rxc = ok(&rxc(&m[1], &["warning", "list", "--format", format]));
        assert_eq!(by_lxc, by_rxc, "{format}");
        assert!(by_lxc.contains(&w.uuid), "{by_lxc}");
    }
    let csv = ok(&lxc(&m[1], &["warning", "list", "c:", "--format", "csv"]));
    assert!(
        csv.starts_with(&format!("{},{OFFLINE},NEW,LOW,1,,node3,", w.uuid)),
        "{csv}"
    );
    let show = ok(&lxc(&m[1], &["warning", "show", &format!("c:{}", w.uuid)]));
    assert!(show.contains(&format!("entity_url: {entity}")), "{show}");
    // yaml.v2 also wraps long plain strings at 80 columns (a continuation line indented by
    // two spaces: nothing else is indented here), which rxc does not.
    let by_rxc = ok(&rxc(&m[1], &["warning", "show", &w.uuid]));
    assert_eq!(
        show.replace("\n  ", " "),
        by_rxc,
        "rxc shows it as lxc does"
    );
    assert!(by_rxc.starts_with("status: new\nuuid: "), "{by_rxc}");

    eprintln!("a status that cannot be set is a 400 in words; an unknown UUID a 404");
    let c = m[1].client();
    for (status, message) in [
        ("bogus", "Invalid warning status \"bogus\""),
        (
            "resolved",
            "Status may only be set to \"acknowledged\" or \"new\"",
        ),
    ] {
        let e = c
            .request(
                "PUT",
                &format!("/1.0/warnings/{}", w.uuid),
                Some(serde_json::json!({ "status": status })),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(400), "{status}: {e}");
        assert!(e.to_string().contains(message), "{e}");
    }
    let unknown = "00000000-0000-0000-0000-000000000000";
    let e = c.warning(unknown).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert!(e.to_string().contains("Warning not found"), "{e}");
    let err = fails(&lxc(&m[1], &["warning", "ack", &format!("c:{unknown}")]));
    assert!(err.contains("Warning not found"), "{err}");

    eprintln!("lxc acknowledges it on node2; node1 sees it acknowledged");
    ok(&lxc(&m[1], &["warning", "ack", &format!("c:{}", w.uuid)]));
    let acked = one_about(&m[0], OFFLINE, entity).await.unwrap();
    assert_eq!(acked.status, "acknowledged");
    let listed = ok(&lxc(&m[0], &["warning", "list", "--format", "csv"]));
    assert!(!listed.contains(&w.uuid), "hidden without --all: {listed}");
    let all = ok(&rxc(
        &m[0],
        &["warning", "list", "--all", "--format", "csv"],
    ));
    assert!(all.contains(",ACKNOWLEDGED,"), "{all}");

    eprintln!("node3 comes back: the warning is resolved");
    m[2].start_again();
    wait_for(&m[0], OFFLINE, entity, "the warning resolved", |w| {
        w.status == "resolved"
    })
    .await;

    eprintln!("node3 stops again: the same warning counts a second occurrence");
    m[2].stop();
    let again = wait_for(&m[1], OFFLINE, entity, "the second occurrence", |w| {
        w.count == 2
    })
    .await;
    assert_eq!(
        (again.uuid.as_str(), again.status.as_str()),
        (w.uuid.as_str(), "new")
    );
    m[2].start_again();

    eprintln!("lxc deletes it");
    ok(&lxc(
        &m[1],
        &["warning", "delete", &format!("c:{}", w.uuid)],
    ));
    let e = m[0].client().warning(&w.uuid).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    let err = fails(&lxc(&m[0], &["warning", "show", &w.uuid]));
    assert!(err.contains("Warning not found"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pool_a_member_cannot_mount_at_start_raises_a_warning_until_it_can() {
    let net = Net::lease();
    let mut m = Member::form(2, &net, &[]).await;
    let entity = "/1.0/storage-pools/local";
    let kind = "Storage pool unavailable";
    let pool_dir = m[1].dir().join("storage-pools").join("local");
    assert!(pool_dir.is_dir());

    eprintln!("node2's pool directory goes while it is stopped: the start raises a warning");
    m[1].stop();
    std::fs::remove_dir(&pool_dir).unwrap();
    m[1].start_again();
    let w = wait_for(&m[0], kind, entity, "the pool warning", |w| {
        w.status == "new"
    })
    .await;
    assert_eq!(
        (w.location.as_str(), w.severity.as_str(), w.count),
        ("node2", "high", 1)
    );
    assert!(w.last_message.contains("local"), "{w:?}");
    let csv = ok(&lxc(&m[0], &["warning", "list", "--format", "csv"]));
    assert!(
        csv.contains(&format!("{},{kind},NEW,HIGH,1,,node2,", w.uuid)),
        "{csv}"
    );

    eprintln!("the directory is back: the next start resolves the warning");
    std::fs::create_dir(&pool_dir).unwrap();
    m[1].restart();
    let resolved = wait_for(&m[0], kind, entity, "the pool warning resolved", |w| {
        w.status == "resolved"
    })
    .await;
    assert_eq!((resolved.uuid, resolved.count), (w.uuid, 1));
}
