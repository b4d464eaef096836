//! Issue 2: the daemon, its API, bootstrap by `rxd init`, and bad input, through real processes.

use rxd_testkit::{fails, ok, Member, Net};

fn preseed(address: &str, name: &str) -> String {
    format!(
        "config:\n  core.https_address: {address}\n  core.trust_password: sekret\n\
storage_pools:\n- name: local\n  driver: dir\n\
profiles:\n- name: default\n  devices:\n    root:\n      path: /\n      pool: local\n      type: disk\n\
cluster:\n  server_name: {name}\n  enabled: true\n"
    )
}

#[tokio::test]
async fn bootstrap_by_preseed_makes_a_one_member_cluster() {
    let net = Net::lease();
    eprintln!("Bootstrapping a cluster with rxd init --preseed, as the guide's first step");
    let m = Member::start();
    ok(&m.rxd_with_input(&["init", "--preseed"], &preseed(&net.addr(1), "node1")));
    let c = m.client();
    let members = c.cluster_members().await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].server_name, "node1");
    assert_eq!(members[0].url, format!("https://{net}.1:8443"));
    assert_eq!(members[0].put.roles, vec!["database-leader", "database"]);
    assert_eq!(members[0].status, "Online");
    assert_eq!(members[0].message, "Fully operational");
    let (server, _) = c.server().await.unwrap();
    let env = server.environment.unwrap();
    assert!(env.server_clustered);
    assert_eq!(env.server_name, "node1");
    let cluster_crt = std::fs::read_to_string(m.dir().join("cluster.crt")).unwrap();
    assert_eq!(
        env.certificate_fingerprint,
        rxd_tls::fingerprint_pem(&cluster_crt).unwrap(),
        "a clustered member serves the cluster certificate"
    );
    let config = server.config.unwrap();
    assert_eq!(config["core.trust_password"], serde_json::json!(true));
    assert_eq!(config["cluster.https_address"], net.addr(1));

    // What each caller may reach is checked for every endpoint by tests/access_matrix.rs.
    eprintln!(
        "The HTTPS listener serves the cluster certificate and shows untrusted callers little"
    );
    let https = rxd_client::Client::https(&net.addr(1), &cluster_crt, None).unwrap();
    let (untrusted, _) = https.server().await.unwrap();
    assert_eq!(untrusted.auth, "untrusted");
    assert!(untrusted.environment.is_none());

    eprintln!("The cluster certificate's key never leaves the member unprotected");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(m.dir().join("cluster.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn a_restart_keeps_everything() {
    let net = Net::lease();
    let mut m = Member::start();
    ok(&m.rxd_with_input(&["init", "--preseed"], &preseed(&net.addr(2), "keeper")));
    let before = m.client().cluster_members().await.unwrap();
    let fp_before = std::fs::read_to_string(m.dir().join("server.crt")).unwrap();
    eprintln!("Restarting the daemon on the same directory");
    m.restart();
    let c = m.client();
    assert_eq!(c.cluster_members().await.unwrap(), before);
    assert_eq!(
        std::fs::read_to_string(m.dir().join("server.crt")).unwrap(),
        fp_before
    );
    let pools = c.storage_pools().await.unwrap();
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0].name, "local");
    let (profile, _) = c.profile("default").await.unwrap();
    assert_eq!(profile.devices["root"]["pool"], "local");
    let (server, _) = c.server().await.unwrap();
    assert_eq!(server.config.unwrap()["core.https_address"], net.addr(2));
}

#[tokio::test]
async fn bad_preseeds_are_refused_and_change_nothing() {
    let m = Member::start();
    eprintln!("Malformed YAML names its line");
    let err = fails(&m.rxd_with_input(&["init", "--preseed"], "config: [unclosed\n"));
    assert!(err.contains("line"), "{err}");
    eprintln!("An unknown key is refused");
    let err = fails(&m.rxd_with_input(&["init", "--preseed"], "config: {}\nbogus: 1\n"));
    assert!(err.contains("bogus"), "{err}");
    eprintln!("An invalid config value is refused and nothing of the preseed stays");
    let bad = "config:\n  cluster.max_voters: 4\nstorage_pools:\n- name: p1\n  driver: dir\n";
    // The config step fails first, so the pool is never made.
    let err = fails(&m.rxd_with_input(&["init", "--preseed"], bad));
    assert!(err.contains("odd number"), "{err}");
    let later = "storage_pools:\n- name: p2\n  driver: dir\nprofiles:\n- name: default\n  devices:\n    root:\n      path: /\n      pool: nosuchpool\n      type: disk\n";
    let err = fails(&m.rxd_with_input(&["init", "--preseed"], later));
    assert!(err.contains("nosuchpool"), "{err}");
    let c = m.client();
    assert!(
        c.storage_pools().await.unwrap().is_empty(),
        "the pool made before the failing step was rolled back"
    );
    assert!(!m.dir().join("storage-pools/p2").exists());
    eprintln!("An empty preseed does nothing");
    ok(&m.rxd_with_input(&["init", "--preseed"], ""));
    assert!(c.server().await.unwrap().0.config.unwrap().is_empty());
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let net = Net::lease();
    let m = Member::start();
    let c = m.client();
    let put = |cfg: serde_json::Value| serde_json::json!({ "config": cfg });
    for (cfg, needle) in [
        (
            serde_json::json!({"core.https_address": "not an address"}),
            "Invalid",
        ),
        (
            serde_json::json!({"cluster.offline_threshold": "-5"}),
            "greater than",
        ),
        (
            serde_json::json!({"cluster.max_standby": 9}),
            "between 0 and 5",
        ),
        (
            serde_json::json!({"no.such.key": "1"}),
            "Unknown configuration key",
        ),
    ] {
        let err = c
            .request("PUT", "/1.0", Some(put(cfg.clone())), None)
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(400), "{cfg}: {err}");
        assert!(err.to_string().contains(needle), "{cfg}: {err}");
    }
    assert!(c.server().await.unwrap().0.config.unwrap().is_empty());

    eprintln!("Bootstrapping without an address says why");
    let body = serde_json::json!({"server_name": "n1", "enabled": true});
    let err = c
        .request("PUT", "/1.0/cluster", Some(body.clone()), None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(err.to_string().contains("wildcard"), "{err}");

    eprintln!("A second bootstrap is refused");
    ok(&m.rxd_with_input(&["init", "--preseed"], &preseed(&net.addr(3), "first")));
    let err = c
        .request("PUT", "/1.0/cluster", Some(body), None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(err.to_string().contains("already clustered"), "{err}");

    eprintln!("A pool whose directory cannot be made is refused and leaves nothing");
    let pool = serde_json::json!({"name": "bad", "driver": "dir", "config": {"source": "/nonexistent/rxd/pool"}});
    let err = c
        .request("POST", "/1.0/storage-pools", Some(pool), None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(err.to_string().contains("doesn't exist"), "{err}");
    assert_eq!(c.storage_pools().await.unwrap().len(), 1);

    eprintln!("Unknown paths, wrong methods, bad JSON and huge bodies");
    assert_eq!(
        c.request("GET", "/1.0/nothing", None, None)
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    assert_eq!(
        c.request("DELETE", "/1.0", None, None)
            .await
            .unwrap_err()
            .status(),
        Some(405)
    );
    let err = c
        .request(
            "POST",
            "/1.0/profiles",
            Some(serde_json::json!({"name": 5})),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    let huge = serde_json::json!({"name": "big", "description": "x".repeat(11 * 1024 * 1024)});
    let err = c
        .request("POST", "/1.0/profiles", Some(huge), None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(413), "{err}");
    assert!(c.profile("big").await.is_err());
}

#[tokio::test]
async fn interactive_bootstrap_asks_lxds_questions() {
    let net = Net::lease();
    let m = Member::start();
    let backend = rxd_testkit::backend_answer(&m.client()).await;
    let answers =
        format!("yes\n{net}.4\nno\nnode1\nyes\npw123\npw123\nyes\n{backend}no\nno\nno\nno\nyes\n");
    let out = ok(&m.rxd_with_input(&["init"], &answers));
    for q in [
        "Would you like to use LXD clustering? (yes/no) [default=no]: ",
        "What IP address or DNS name should be used to reach this server? [default=",
        "Are you joining an existing cluster? (yes/no) [default=no]: ",
        "What member name should be used to identify this server in the cluster? [default=",
        "Setup password authentication on the cluster? (yes/no) [default=no]: ",
        "Trust password for new clients: ",
        "Again: ",
        "Do you want to configure a new local storage pool? (yes/no) [default=yes]: ",
        "Do you want to configure a new remote storage pool? (yes/no) [default=no]: ",
        "Would you like to connect to a MAAS server? (yes/no) [default=no]: ",
        "Would you like to configure LXD to use an existing bridge or host interface? (yes/no) [default=no]: ",
        "Would you like stale cached images to be updated automatically? (yes/no) [default=yes]: ",
        "Would you like a YAML \"lxd init\" preseed to be printed? (yes/no) [default=no]: ",
    ] {
        assert!(out.contains(q), "missing question {q:?} in:\n{out}");
    }
    assert!(
        out.contains("images.auto_update_interval: \"0\"")
            || out.contains("images.auto_update_interval: '0'"),
        "{out}"
    );
    let members = m.client().cluster_members().await.unwrap();
    assert_eq!(members[0].server_name, "node1");
    assert_eq!(members[0].url, format!("https://{net}.4:8443"));
}

#[tokio::test]
async fn dump_round_trips_through_preseed() {
    let m = Member::start();
    ok(&m.rxd_with_input(&["init", "--auto"], ""));
    let dumped = ok(&m.rxd(&["init", "--dump"]));
    assert!(dumped.contains("name: default"), "{dumped}");
    let other = Member::start();
    ok(&other.rxd_with_input(&["init", "--preseed"], &dumped));
    let dumped_again = ok(&other.rxd(&["init", "--dump"]));
    let strip = |s: &str| {
        s.replace(&m.dir().display().to_string(), "DIR")
            .replace(&other.dir().display().to_string(), "DIR")
    };
    assert_eq!(strip(&dumped), strip(&dumped_again));
}

#[tokio::test]
async fn operations_and_events_follow_the_bootstrap() {
    let net = Net::lease();
    use rxd_api::ClusterPut;
    let m = Member::start();
    let c = m.client();
    m.set_config("core.https_address", &net.addr(5)).await;
    let mut events = c.events(&["operation", "lifecycle"]).await.unwrap();
    let op = c
        .update_cluster(&ClusterPut {
            server_name: "evt".into(),
            enabled: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .expect("bootstrap answers with an operation");
    assert_eq!(op.description, "Creating bootstrap node");
    let done = c.wait_success(&op, None).await.unwrap();
    assert_eq!(done.status_code, 200);
    use events_wait::next_matching;
    let seen = next_matching(&mut events, |e| {
        e.kind == "lifecycle" && e.metadata["action"] == "cluster-enabled"
    })
    .await;
    assert_eq!(seen.metadata["source"], "/1.0/cluster/evt");
}

/// Reads events until one matches, bounded in time.
mod events_wait {
    use futures_util::StreamExt;

    pub async fn next_matching(
        events: &mut rxd_client::EventStream,
        want: impl Fn(&rxd_api::Event) -> bool,
    ) -> rxd_api::Event {
        let wait = async {
            loop {
                let e = events
                    .next()
                    .await
                    .expect("the stream stays open")
                    .expect("events decode");
                if want(&e) {
                    return e;
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), wait)
            .await
            .expect("the event arrives within 30 s")
    }
}

#[tokio::test]
async fn a_failed_bootstrap_is_rolled_back() {
    let net = Net::lease();
    let m = Member::start_with_env(&[("RXD_FAILPOINT", "bootstrap-after-certificate:error")]);
    let before = std::fs::read_to_string(m.dir().join("server.crt")).unwrap();
    let out = m.rxd_with_input(&["init", "--preseed"], &preseed(&net.addr(6), "node1"));
    let err = fails(&out);
    assert!(err.contains("Injected failure"), "{err}");
    assert!(!m.dir().join("cluster.crt").exists());
    assert!(!m.dir().join("cluster.key").exists());
    let c = m.client();
    let (server, _) = c.server().await.unwrap();
    let env = server.environment.unwrap();
    assert!(!env.server_clustered);
    assert_eq!(
        env.certificate_fingerprint,
        rxd_tls::fingerprint_pem(&before).unwrap(),
        "the server certificate is served again"
    );
    eprintln!("init undid its earlier steps: no pool, no profile device, no address");
    assert!(c.storage_pools().await.unwrap().is_empty());
    assert!(c.profile("default").await.unwrap().0.devices.is_empty());
    assert!(c.server().await.unwrap().0.config.unwrap().is_empty());
}
