//! Issue 11 (Part B, 7): `?target=Y` on an endpoint with a member-specific view is carried out
//! by member Y, whichever member receives it, as LXD forwards it: the server configuration,
//! storage pools and networks (`GET`/`PUT`/`PATCH`), pool and network state, resources. The
//! typed client, rxc and Debian's real `lxc` all reach it; a bad target gets LXD's sentence.

use std::process::Output;

use rxd_api::StoragePoolPut;
use rxd_client::{Client, ClientError};
use rxd_testkit::netns::{cluster, NsMember};
use rxd_testkit::{ok, system_tool, Member, Net};
use serde_json::{json, Value};

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

fn fails(m: &Member, program: &str, args: &[&str]) -> String {
    let out = m.command(program, args, None);
    assert!(!out.status.success(), "{program} {args:?} succeeded");
    text(&out)
}

/// The member-specific `volatile.initial_source` of pool `local` as member `name` itself
/// shows it.
async fn initial_source(c: &Client, name: &str) -> Option<String> {
    let (p, _) = c.storage_pool("local", Some(name)).await.unwrap();
    p.config.get("volatile.initial_source").cloned()
}

fn api_error(e: ClientError) -> (u16, String) {
    match e {
        ClientError::Api { status, message } => (status, message),
        other => panic!("not an API error: {other}"),
    }
}

async fn refused(c: &Client, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    api_error(
        c.request(method, path, body, None)
            .await
            .err()
            .unwrap_or_else(|| panic!("{method} {path} succeeded")),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_11_a_pool_put_with_target_changes_that_members_keys() {
    let net = Net::lease();
    let m = Member::form(2, &net, &[]).await;
    let (a, b) = (&m[0], &m[1]);
    let (ca, cb) = (a.client(), b.client());
    let lxc = system_tool("lxc");
    let a_before = initial_source(&ca, "node1").await;

    eprintln!("GET ?target=node2 on node1 is node2's own view, with node2's ETag");
    let (theirs, etag) = ca.storage_pool("local", Some("node2")).await.unwrap();
    let (own, own_etag) = cb.storage_pool("local", Some("node2")).await.unwrap();
    assert_eq!(theirs, own);
    assert_eq!(etag, own_etag);
    assert!(
        theirs.config["source"].starts_with(&b.dir().display().to_string()),
        "{theirs:?}"
    );

    eprintln!("the typed client: PUT ?target=node2 with that ETag changes node2's keys only");
    let mut put = StoragePoolPut {
        config: theirs.config.clone(),
        description: theirs.description.clone(),
    };
    put.config
        .insert("volatile.initial_source".into(), "/srv/client".into());
    ca.update_storage_pool("local", &put, Some(&etag), Some("node2"))
        .await
        .unwrap();
    assert_eq!(
        initial_source(&cb, "node2").await.as_deref(),
        Some("/srv/client")
    );
    assert_eq!(initial_source(&ca, "node1").await, a_before);
    assert_eq!(initial_source(&cb, "node1").await, a_before);

    eprintln!("an ETag of node1's view is stale for node2's");
    let (_, etag1) = ca.storage_pool("local", Some("node1")).await.unwrap();
    let e = ca
        .update_storage_pool("local", &put, Some(&etag1), Some("node2"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(412), "{e}");

    eprintln!("a cluster-wide key cannot be changed with a target");
    let mut wrong = put.clone();
    wrong.config.insert("rsync.bwlimit".into(), "10MiB".into());
    let (status, message) = api_error(
        ca.update_storage_pool("local", &wrong, None, Some("node2"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (status, message.as_str()),
        (
            400,
            "Config key \"rsync.bwlimit\" may not be used as member-specific key"
        )
    );

    eprintln!("without a target a cluster changes cluster-wide keys only, as in LXD");
    let (global, global_etag) = ca.storage_pool("local", None).await.unwrap();
    let mut member_key = StoragePoolPut {
        config: global.config.clone(),
        description: global.description.clone(),
    };
    member_key
        .config
        .insert("volatile.initial_source".into(), "/srv/everyone".into());
    let (status, message) = api_error(
        ca.update_storage_pool("local", &member_key, Some(&global_etag), None)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (status, message.as_str()),
        (
            400,
            "Config key \"volatile.initial_source\" is cluster member specific"
        )
    );
    assert_eq!(initial_source(&ca, "node1").await, a_before);

    eprintln!("rxc storage set --target and the real lxc act on node2 as well");
    a.succeeds(
        "rxc",
        &[
            "storage",
            "set",
            "local",
            "volatile.initial_source=/srv/rxc",
            "--target",
            "node2",
        ],
        None,
    );
    assert_eq!(
        initial_source(&cb, "node2").await.as_deref(),
        Some("/srv/rxc")
    );
    a.succeeds(
        &lxc,
        &[
            "storage",
            "set",
            "local",
            "volatile.initial_source",
            "/srv/lxc",
            "--target",
            "node2",
        ],
        None,
    );
    assert_eq!(
        initial_source(&cb, "node2").await.as_deref(),
        Some("/srv/lxc")
    );
    let got = a.succeeds(
        &lxc,
        &[
            "storage",
            "get",
            "local",
            "volatile.initial_source",
            "--target",
            "node2",
        ],
        None,
    );
    assert_eq!(got, "/srv/lxc\n");
    let shown = a.succeeds(
        "rxc",
        &["storage", "show", "local", "--target", "node2"],
        None,
    );
    assert!(
        shown.contains("volatile.initial_source: /srv/lxc"),
        "{shown}"
    );

    eprintln!("a member key is unset with a target; the pool's source stays");
    a.succeeds(
        "rxc",
        &[
            "storage",
            "unset",
            "local",
            "volatile.initial_source",
            "--target",
            "node2",
        ],
        None,
    );
    assert_eq!(initial_source(&cb, "node2").await, None);
    let (after, _) = cb.storage_pool("local", Some("node2")).await.unwrap();
    assert_eq!(after.config.get("source"), theirs.config.get("source"));
    assert_eq!(initial_source(&ca, "node1").await, a_before);
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_11_server_config_with_target_is_that_members() {
    let net = Net::lease();
    let m = Member::form(2, &net, &[]).await;
    let (a, b) = (&m[0], &m[1]);
    let (ca, cb) = (a.client(), b.client());

    eprintln!("GET /1.0?target=node2 on node1 is node2's view with node2's ETag");
    let (theirs, etag) = ca.server_on("node2").await.unwrap();
    let (own, own_etag) = cb.server().await.unwrap();
    assert_eq!(theirs.config, own.config);
    assert_eq!(etag, own_etag);
    assert_eq!(
        theirs.config.unwrap()["core.https_address"],
        json!(net.addr(2))
    );

    eprintln!("PUT and PATCH /1.0?target=node2 check node2's ETag and change node2's keys");
    let body = json!({"config": own.config.clone().unwrap()});
    let raw = ca
        .request("PUT", "/1.0?target=node2", Some(body.clone()), Some(&etag))
        .await
        .unwrap();
    assert_eq!(raw.status, 200);
    let (_, etag1) = ca.server().await.unwrap();
    let e = ca
        .request("PUT", "/1.0?target=node2", Some(body), Some(&etag1))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(412), "{e}");
    let patch = json!({"config": {"core.https_address": net.addr(2)}});
    ca.request("PATCH", "/1.0?target=node2", Some(patch), Some(&etag))
        .await
        .unwrap();
    let (a_view, _) = ca.server().await.unwrap();
    assert_eq!(
        a_view.config.unwrap()["core.https_address"],
        json!(net.addr(1))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_11_bad_targets_get_clear_errors() {
    let net = Net::lease();
    let mut m = Member::form(2, &net, &[]).await;
    let ca = m[0].client();
    let lxc = system_tool("lxc");

    eprintln!("an unknown target: LXD's 404 on every forwarded endpoint");
    for (method, path) in [
        ("GET", "/1.0?target=node9"),
        ("GET", "/1.0/resources?target=node9"),
        ("GET", "/1.0/storage-pools/local?target=node9"),
        ("PUT", "/1.0/storage-pools/local?target=node9"),
        ("GET", "/1.0/storage-pools/local/resources?target=node9"),
        ("GET", "/1.0/networks/lo/state?target=node9"),
        ("PATCH", "/1.0?target=node9"),
    ] {
        let body = (method != "GET").then(|| json!({"config": {}}));
        assert_eq!(
            refused(&ca, method, path, body).await,
            (404, "Cluster member not found".to_string()),
            "{method} {path}"
        );
    }
    for program in ["rxc", lxc.as_str()] {
        let err = fails(
            &m[0],
            program,
            &["storage", "show", "local", "--target", "node9"],
        );
        // The real lxc greets a first run before the error.
        assert_eq!(
            err.lines().last(),
            Some("Error: Cluster member not found"),
            "{program}: {err}"
        );
    }

    eprintln!("a target that is down: an error naming it");
    m[1].kill();
    let (status, message) = refused(&ca, "GET", "/1.0/resources?target=node2", None).await;
    assert!(status == 502 || status == 503, "{status} {message}");
    assert!(message.contains("\"node2\""), "{message}");
    let err = fails(&m[0], "rxc", &["info", "--resources", "--target", "node2"]);
    assert!(err.contains("\"node2\""), "{err}");
    // This member still answers for itself.
    ca.request("GET", "/1.0/resources?target=node1", None, None)
        .await
        .unwrap();

    eprintln!("a target on a standalone server: LXD's 400; without one it works as before");
    let lone = Member::start();
    let c = lone.client();
    for (method, path) in [
        ("GET", "/1.0/resources?target=node2"),
        ("PUT", "/1.0?target=node2"),
    ] {
        let body = (method != "GET").then(|| json!({"config": {}}));
        let (status, message) = refused(&c, method, path, body).await;
        assert_eq!(
            (status, message.as_str()),
            (400, "This server is not clustered"),
            "{method} {path}"
        );
    }
    c.request("GET", "/1.0/resources", None, None)
        .await
        .unwrap();
    c.server().await.unwrap();
}

/// `GET /1.0/networks/{name}?target=` through `rxc query` on `m`.
fn network_on(m: &NsMember, name: &str, target: &str) -> Value {
    let url = format!("/1.0/networks/{name}?target={target}");
    serde_json::from_str(&ok(&m.rxc(&["query", "-X", "GET", &url]))).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_11_a_network_set_with_target_changes_that_members_keys() {
    // Members in network namespaces of their own: the bridges never touch the host.
    let (_hub, m) = cluster(2).await;
    ok(&m[0].rxc(&["network", "create", "rxdbr0", "--target", "node1"]));
    ok(&m[0].rxc(&["network", "create", "rxdbr0", "--target", "node2"]));
    ok(&m[0].rxc(&[
        "network",
        "create",
        "rxdbr0",
        "ipv4.address=10.79.1.1/24",
        "ipv6.address=none",
    ]));
    let key = "bridge.external_interfaces";
    for (end, peer) in [("ext8", "ext8p"), ("ext9", "ext9p")] {
        m[1].ns
            .ip(&["link", "add", end, "type", "veth", "peer", "name", peer]);
    }

    eprintln!("rxc network set --target node2 on node1 changes node2's keys only");
    ok(&m[0].rxc(&[
        "network",
        "set",
        "rxdbr0",
        &format!("{key}=ext9"),
        "--target",
        "node2",
    ]));
    assert_eq!(network_on(&m[1], "rxdbr0", "node2")["config"][key], "ext9");
    assert_eq!(
        network_on(&m[0], "rxdbr0", "node1")["config"][key],
        Value::Null
    );

    eprintln!("the real lxc does the same");
    let lxc = std::path::PathBuf::from(system_tool("lxc"));
    let args = ["network", "set", "rxdbr0", key, "ext8", "--target", "node2"];
    ok(&m[0].run_in(&lxc, &args, None));
    assert_eq!(network_on(&m[1], "rxdbr0", "node2")["config"][key], "ext8");
    assert_eq!(
        network_on(&m[0], "rxdbr0", "node1")["config"][key],
        Value::Null
    );
    let got = ok(&m[0].run_in(
        &lxc,
        &["network", "get", "rxdbr0", key, "--target", "node2"],
        None,
    ));
    assert_eq!(got.lines().last(), Some("ext8"));

    eprintln!("a cluster-wide key cannot be changed with a target, in LXD's words");
    let args = [
        "network",
        "set",
        "rxdbr0",
        "ipv4.nat=false",
        "--target",
        "node2",
    ];
    let err = rxd_testkit::fails(&m[0].rxc(&args));
    assert!(
        err.contains("Config key \"ipv4.nat\" may not be used as member-specific key"),
        "{err}"
    );
    assert_eq!(network_on(&m[1], "rxdbr0", "node2")["config"][key], "ext8");
}
