//! A write with `If-Match` is a compare-and-set: of many concurrent writes holding the same
//! ETag exactly one applies, the others answer 412. LXD checks the ETag in the handler and
//! writes in a later transaction, so two such writes can both succeed and one is silently lost
//! (the fault suite's append and register workloads found it in rxd too); rxd checks the
//! precondition where the write applies, in the replicated state machine. Every object that
//! hands out an ETag is checked the same way by [`check_compare_and_set`].

use rxd_client::Client;
use rxd_testkit::{Member, Net};
use serde_json::{json, Value};

/// How a test writes a value (a number below 250) into an object with `PATCH` and reads it
/// back from a `GET`.
struct Field {
    body: Box<dyn Fn(&str) -> Value + Sync>,
    read: fn(&Value) -> String,
}

/// The key `user.v` of an object's `config`.
fn user_key() -> Field {
    Field {
        body: Box::new(|v| json!({"config": {"user.v": v}})),
        read: |m| {
            m["config"]["user.v"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        },
    }
}

async fn get(client: &Client, path: &str) -> (Value, String) {
    let r = client.request("GET", path, None, None).await.unwrap();
    let etag = r
        .etag
        .unwrap_or_else(|| panic!("GET {path} hands out an ETag"));
    (r.envelope.metadata, etag)
}

/// Checks that `If-Match` on `path` is a compare-and-set: a write without it applies, a stale
/// one is refused with 412 and changes nothing, and of 16 concurrent writes holding one ETag
/// exactly one applies while the others answer 412.
async fn check_compare_and_set(client: &Client, path: &str, field: Field) {
    let (_, stale) = get(client, path).await;
    client
        .request("PATCH", path, Some((field.body)("101")), None)
        .await
        .unwrap_or_else(|e| panic!("PATCH {path} without If-Match applies: {e}"));
    let (now, _) = get(client, path).await;
    assert_eq!((field.read)(&now), "101", "PATCH {path} applied");

    let e = client
        .request("PATCH", path, Some((field.body)("102")), Some(&stale))
        .await
        .expect_err("a stale ETag is refused");
    assert_eq!(
        e.status(),
        Some(412),
        "a stale ETag on {path} answers 412: {e}"
    );
    let (after, _) = get(client, path).await;
    assert_eq!(
        (field.read)(&after),
        "101",
        "a refused PATCH {path} changed nothing"
    );

    for round in 0..3 {
        let (_, etag) = get(client, path).await;
        let writes = (0..16).map(|i| {
            let etag = etag.clone();
            let value = (110 + round * 20 + i).to_string();
            let field = &field;
            async move {
                let body = (field.body)(&value);
                let r = client.request("PATCH", path, Some(body), Some(&etag)).await;
                (value, r)
            }
        });
        let results = futures_util::future::join_all(writes).await;
        let mut won = Vec::new();
        for (value, r) in results {
            match r {
                Ok(_) => won.push(value),
                Err(e) => assert_eq!(
                    e.status(),
                    Some(412),
                    "a losing PATCH {path} answers 412: {e}"
                ),
            }
        }
        assert_eq!(
            won.len(),
            1,
            "round {round}: PATCH {path} with one ETag applied as {won:?}"
        );
        let (now, _) = get(client, path).await;
        assert_eq!((field.read)(&now), won[0], "the winner's value is stored");
    }
}

/// A one-member cluster: it has a `dir` pool `local`, its `server` certificate in the trust
/// store, and its member row.
fn clustered() -> (Net, Member) {
    let net = Net::lease();
    let m = Member::start();
    m.bootstrap(&net.addr(1), "m1", &[]);
    (net, m)
}

#[tokio::test]
async fn concurrent_if_match_writes_apply_once() {
    let m = Member::start();
    let client = m.client();
    client
        .create_profile(&rxd_api::ProfilesPost {
            name: "cas".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    check_compare_and_set(&client, "/1.0/profiles/cas", user_key()).await;
}

#[tokio::test]
async fn storage_pool_if_match_is_compare_and_set() {
    let (_net, m) = clustered();
    check_compare_and_set(&m.client(), "/1.0/storage-pools/local", user_key()).await;
}

#[tokio::test]
async fn network_if_match_is_compare_and_set() {
    let (_net, m) = clustered();
    let client = m.client();
    // A network defined on a member and not created yet lives only in the database.
    client
        .request(
            "POST",
            "/1.0/networks?target=m1",
            Some(json!({"name": "cas0", "type": "bridge"})),
            None,
        )
        .await
        .unwrap();
    check_compare_and_set(&client, "/1.0/networks/cas0", user_key()).await;
}

#[tokio::test]
async fn certificate_if_match_is_compare_and_set() {
    let (_net, m) = clustered();
    let client = m.client();
    let list = client
        .request("GET", "/1.0/certificates", None, None)
        .await
        .unwrap();
    let path = list.envelope.metadata[0].as_str().unwrap().to_string();
    let description = Field {
        body: Box::new(|v| json!({"description": v})),
        read: |m| m["description"].as_str().unwrap_or_default().to_string(),
    };
    check_compare_and_set(&client, &path, description).await;
}

#[tokio::test]
async fn cluster_member_if_match_is_compare_and_set() {
    let (_net, m) = clustered();
    // A PATCH that leaves the roles out keeps them (it was refused: "The "database" role
    // cannot be dropped").
    check_compare_and_set(&m.client(), "/1.0/cluster/members/m1", user_key()).await;
    let (member, _) = m.client().cluster_member("m1").await.unwrap();
    assert!(
        member.put.roles.iter().any(|r| r == "database"),
        "{member:?}"
    );
}

#[tokio::test]
async fn server_config_if_match_is_compare_and_set() {
    let (_net, m) = clustered();
    let interval = Field {
        body: Box::new(|v| json!({"config": {"images.auto_update_interval": v}})),
        read: |m| {
            m["config"]["images.auto_update_interval"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        },
    };
    check_compare_and_set(&m.client(), "/1.0", interval).await;
}

#[tokio::test]
async fn member_local_config_if_match_is_compare_and_set() {
    // `core.https_address` lives in the member's own database, not in the replicated one.
    let net = Net::lease();
    let m = Member::start();
    let prefix = net.prefix();
    let address = Field {
        body: Box::new(
            move |v| json!({"config": {"core.https_address": format!("{prefix}.{v}:8443")}}),
        ),
        read: |m| {
            let address = m["config"]["core.https_address"]
                .as_str()
                .unwrap_or_default();
            let host = address.rsplit_once('.').map_or("", |(_, h)| h);
            host.trim_end_matches(":8443").to_string()
        },
    };
    check_compare_and_set(&m.client(), "/1.0", address).await;
}

#[tokio::test]
async fn concurrent_patches_of_different_keys_keep_both() {
    let m = Member::start();
    let client = m.client();
    client
        .create_profile(&rxd_api::ProfilesPost {
            name: "merge".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let patches = (0..16).map(|i| {
        let client = client.clone();
        async move {
            let body = serde_json::json!({"config": {format!("user.k{i}"): "x"}});
            client
                .request("PATCH", "/1.0/profiles/merge", Some(body), None)
                .await
        }
    });
    for r in futures_util::future::join_all(patches).await {
        r.expect("a PATCH without If-Match applies");
    }
    let (p, _) = client.profile("merge").await.unwrap();
    assert_eq!(
        p.config.len(),
        16,
        "every PATCH kept its key: {:?}",
        p.config
    );
}
