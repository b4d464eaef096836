//! Issue 9, finding 4: a member certificate reaches `/internal/*`, but what it names there is
//! checked as the public API checks it, and a path it names never leaves the data directory.

use rxd_testkit::{Member, Net};
use serde_json::json;

/// A client that presents `m`'s own member certificate (`server.crt`), as another member
/// would, to the member at `address`.
fn as_member(m: &Member, address: &str) -> rxd_client::Client {
    let read = |f: &str| std::fs::read_to_string(m.dir().join(f)).unwrap();
    let identity = rxd_tls::CertKey::from_pem(read("server.crt"), read("server.key")).unwrap();
    rxd_client::Client::https(address, &read("cluster.crt"), Some(&identity)).unwrap()
}

/// The status of a refused internal call, with its message.
async fn refused(c: &rxd_client::Client, path: &str, body: serde_json::Value) -> (u16, String) {
    let err = c
        .request("POST", path, Some(body), None)
        .await
        .expect_err("the call is refused");
    (err.status().unwrap_or(0), err.to_string())
}

#[tokio::test]
async fn internal_pool_calls_stay_inside_the_pools_directory() {
    let net = Net::lease();
    let members = Member::form(2, &net, &[]).await;
    let (node1, m) = (&members[0], &members[1]);
    // node1's member certificate, against node2.
    let c = as_member(node1, &net.addr(2));
    let victim = m.dir().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("data"), "keep me").unwrap();

    eprintln!("phase: a pool name climbing out of storage-pools/ deletes nothing");
    for name in ["../victim", "..", "a/../../victim"] {
        let (status, msg) = refused(
            &c,
            "/internal/storage-pools/delete",
            json!({"name": name, "driver": "dir", "config": {}}),
        )
        .await;
        assert_eq!(status, 400, "{name}: {msg}");
        assert!(msg.contains("Invalid storage pool name"), "{msg}");
    }
    assert_eq!(
        std::fs::read_to_string(victim.join("data")).unwrap(),
        "keep me"
    );

    eprintln!("phase: nor does it create anything outside storage-pools/");
    let (status, msg) = refused(
        &c,
        "/internal/storage-pools/create",
        json!({"name": "../made", "driver": "dir", "config": {}}),
    )
    .await;
    assert_eq!(status, 400, "{msg}");
    assert!(!m.dir().join("made").exists());

    eprintln!("phase: a pool the cluster has created is deleted only through the public API");
    let admin = node1.client();
    let live = rxd_api::StoragePoolsPost {
        name: "live".into(),
        driver: "dir".into(),
        ..Default::default()
    };
    for target in [Some("node1"), Some("node2"), None] {
        admin.create_storage_pool(&live, target).await.unwrap();
    }
    std::fs::write(m.dir().join("storage-pools/live/data"), "x").unwrap();
    let (status, msg) = refused(
        &c,
        "/internal/storage-pools/delete",
        json!({"name": "live", "driver": "dir", "config": {}}),
    )
    .await;
    assert_eq!(status, 409, "{msg}");
    assert!(m.dir().join("storage-pools/live/data").exists());
}
