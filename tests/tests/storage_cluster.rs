//! Storage pools across a cluster: defined per member with `?target=`, then created everywhere,
//! with LXD's errors and nothing left half-created.

use rxd_api::StoragePoolsPost;
use rxd_testkit::{Member, Net};

fn pool(name: &str, config: &[(&str, &str)]) -> StoragePoolsPost {
    StoragePoolsPost {
        name: name.into(),
        driver: "dir".into(),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn pending_then_created_on_every_member() {
    let net = Net::lease();
    let m = Member::form(3, &net, &[]).await;
    let c = m[1].client();
    eprintln!("A cluster-wide create needs the per-member definitions first");
    let err = c
        .create_storage_pool(&pool("p2", &[]), None)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("Pool not pending on any node"),
        "{err}"
    );
    c.create_storage_pool(&pool("p2", &[]), Some("node1"))
        .await
        .unwrap();
    c.create_storage_pool(&pool("p2", &[]), Some("node2"))
        .await
        .unwrap();
    let err = c
        .create_storage_pool(&pool("p2", &[]), Some("node2"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("already defined on member \"node2\""),
        "{err}"
    );
    let err = c
        .create_storage_pool(&pool("p2", &[("rsync.bwlimit", "1")]), Some("node3"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("may not be used as member-specific key"),
        "{err}"
    );
    let err = c
        .create_storage_pool(&pool("p2", &[]), Some("nosuch"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    let (p, _) = c.storage_pool("p2", None).await.unwrap();
    assert_eq!(p.status, "Pending");
    assert_eq!(p.locations, ["node1", "node2"]);
    let err = c
        .create_storage_pool(&pool("p2", &[]), None)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("Pool not defined on nodes: node3"),
        "{err}"
    );
    c.create_storage_pool(&pool("p2", &[]), Some("node3"))
        .await
        .unwrap();
    let err = c
        .create_storage_pool(&pool("p2", &[("source", "/tmp")]), None)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("is cluster member specific"),
        "{err}"
    );

    eprintln!("The final create makes the pool on every member");
    c.create_storage_pool(&pool("p2", &[]), None).await.unwrap();
    for member in &m {
        let (p, _) = member.client().storage_pool("p2", None).await.unwrap();
        assert_eq!(p.status, "Created");
        assert!(
            !p.config.contains_key("source"),
            "member keys are hidden globally"
        );
        assert!(member.dir().join("storage-pools/p2").is_dir());
    }
    let (p, _) = c.storage_pool("p2", Some("node3")).await.unwrap();
    assert_eq!(
        p.config["source"],
        m[2].dir().join("storage-pools/p2").display().to_string()
    );
    let err = c
        .create_storage_pool(&pool("p2", &[]), Some("node1"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not in pending state"), "{err}");

    eprintln!("Deleting removes it everywhere");
    c.delete_storage_pool("p2").await.unwrap();
    for member in &m {
        assert!(!member.dir().join("storage-pools/p2").exists());
        assert!(member.client().storage_pool("p2", None).await.is_err());
    }
}

#[tokio::test]
async fn a_failing_member_leaves_nothing_behind() {
    let net = Net::lease();
    let m = Member::form(3, &net, &[]).await;
    let c = m[0].client();
    c.create_storage_pool(&pool("p3", &[]), Some("node1"))
        .await
        .unwrap();
    c.create_storage_pool(&pool("p3", &[("source", "/nonexistent/p3")]), Some("node2"))
        .await
        .unwrap();
    c.create_storage_pool(&pool("p3", &[]), Some("node3"))
        .await
        .unwrap();
    let err = c
        .create_storage_pool(&pool("p3", &[]), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("doesn't exist"), "{err}");
    for member in &m {
        assert!(!member.dir().join("storage-pools/p3").exists());
    }
    let (p, _) = c.storage_pool("p3", None).await.unwrap();
    assert_eq!(p.status, "Pending", "the pool can be fixed and retried");
}

#[tokio::test]
async fn rxc_storage_set_unset_and_info() {
    let net = Net::lease();
    let m = Member::start();
    m.bootstrap(&net.addr(1), "node1", &[]);
    let rxc = |args: &[&str]| m.command("rxc", args, None);
    rxd_testkit::ok(&rxc(&["storage", "set", "local", "user.rack", "r1"]));
    let show = rxd_testkit::ok(&rxc(&["storage", "show", "local"]));
    assert!(show.contains("user.rack: r1"), "{show}");
    rxd_testkit::ok(&rxc(&["storage", "unset", "local", "user.rack"]));
    let show = rxd_testkit::ok(&rxc(&["storage", "show", "local"]));
    assert!(!show.contains("user.rack"), "{show}");
    let err = rxd_testkit::fails(&rxc(&["storage", "unset", "local", "user.rack"]));
    assert!(err.contains("does not exist"), "{err}");
    let err = rxd_testkit::fails(&rxc(&["storage", "set", "local", "bogus.key=1"]));
    assert!(err.contains("bogus.key"), "{err}");
    let info = rxd_testkit::ok(&rxc(&["storage", "info", "local"]));
    assert!(
        info.contains("driver: dir") && info.contains("- default"),
        "{info}"
    );
}
