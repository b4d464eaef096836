//! Managed bridges, standalone and across a cluster. Every rxd runs inside a network namespace
//! the test makes, so the host's own interfaces, routes and firewall are never touched; each
//! check looks inside that namespace (`ip -j addr`, `nft list ruleset`, dnsmasq's pid).

use std::time::Duration;

use rxd_testkit::netns::{alive, attach, cluster, hub_with, join, NsMember};
use rxd_testkit::{bootstrap_preseed, fails, ok, until, Net};

fn network(m: &NsMember, name: &str, target: Option<&str>) -> serde_json::Value {
    let mut args = vec!["query", "-X", "GET"];
    let url = match target {
        Some(t) => format!("/1.0/networks/{name}?target={t}"),
        None => format!("/1.0/networks/{name}"),
    };
    args.push(&url);
    serde_json::from_str(&ok(&m.rxc(&args))).unwrap()
}

#[tokio::test]
async fn standalone_bridge_with_dnsmasq_and_nat() {
    let m = NsMember::start();
    eprintln!("Host interfaces are unmanaged; the list leaves out loopback, as lxc does");
    let list = ok(&m.rxc(&["network", "list", "-f", "csv"]));
    assert_eq!(list, "");
    let all = ok(&m.rxc(&["network", "list", "-f", "json"]));
    assert!(all.contains(r#""name":"lo","type":"loopback""#), "{all}");

    eprintln!("Creating lxdbr0 makes the bridge, its addresses, NAT and dnsmasq in the namespace");
    let out = ok(&m.rxc(&[
        "network",
        "create",
        "lxdbr0",
        "ipv4.address=10.123.45.1/24",
        "ipv4.nat=true",
        "ipv6.address=auto",
    ]));
    assert_eq!(out, "Network lxdbr0 created\n");
    assert!(m.ns.links().contains(&"lxdbr0".to_string()));
    let addrs = m.ns.addrs("lxdbr0");
    assert!(addrs.contains(&"10.123.45.1/24".to_string()), "{addrs:?}");
    assert!(addrs.iter().any(|a| a.starts_with("fd42:")), "{addrs:?}");
    let rules = m.ns.nft();
    assert!(rules.contains("table inet rxd"), "{rules}");
    assert!(
        rules.contains("ip saddr 10.123.45.0/24 ip daddr != 10.123.45.0/24 masquerade"),
        "{rules}"
    );
    let pid = m.dnsmasq_pid("lxdbr0").expect("dnsmasq wrote its pid file");
    assert!(alive(pid));
    assert!(m.ns.pids().contains(&pid), "dnsmasq runs in the namespace");
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        cmdline.contains("--dhcp-range=10.123.45.2,10.123.45.254,1h"),
        "{cmdline}"
    );

    let n = network(&m, "lxdbr0", None);
    assert_eq!(n["managed"], true);
    assert_eq!(n["status"], "Created");
    assert_eq!(n["type"], "bridge");
    assert_eq!(n["config"]["ipv4.nat"], "true");
    let lo = network(&m, "lo", None);
    assert_eq!(lo["managed"], false);
    assert_eq!(lo["status"], "");
    assert!(lo["locations"].is_null());
    let info = ok(&m.rxc(&["network", "info", "lxdbr0"]));
    assert!(info.contains("inet\t10.123.45.1/24 (global)"), "{info}");
    let list = ok(&m.rxc(&["network", "list", "-f", "csv"]));
    assert!(
        list.contains("lxdbr0,bridge,YES,10.123.45.1/24,fd42:"),
        "{list}"
    );

    eprintln!("Bad input is refused with a clear error and leaves nothing behind");
    m.ns.ip(&["route", "add", "unreachable", "10.99.0.0/16"]);
    let links_before = m.ns.links();
    let rules_before = m.ns.nft();
    let cases: &[(&[&str], &str)] = &[
        (
            &["network", "create", "averyverylongname0"],
            "Network interface is too long (maximum 15 characters)",
        ),
        (
            &["network", "create", "br1", "ipv4.address=10.99.3.1/24"],
            "overlaps the existing route to 10.99.0.0/16",
        ),
        (
            &["network", "create", "br1", "ipv4.address=10.123.45.7/24"],
            "overlaps the existing route to 10.123.45.0/24",
        ),
        (
            &["network", "create", "br1", "ipv4.address=10.1.1.1"],
            "Not a CIDR address",
        ),
        (
            &["network", "create", "br1", "ipv4.nat=maybe"],
            "Invalid boolean",
        ),
        (
            &["network", "create", "br1", "foo=bar"],
            "Invalid option for network \"br1\" option \"foo\"",
        ),
        (
            &["network", "create", "lo"],
            "Network interface \"lo\" already exists",
        ),
        (
            &["network", "create", "lxdbr0"],
            "Network \"lxdbr0\" already exists",
        ),
        (
            &["network", "create", "br1", "--type", "ovn"],
            "Network type \"ovn\" is not supported",
        ),
        (
            &[
                "network",
                "create",
                "br1",
                "bridge.external_interfaces=nosuch0",
            ],
            "External interface \"nosuch0\" does not exist",
        ),
    ];
    for (args, want) in cases {
        let err = fails(&m.rxc(args));
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert_eq!(m.ns.links(), links_before);
    assert_eq!(m.ns.nft(), rules_before);
    assert!(!m.dir.join("networks").join("br1").exists());

    eprintln!("Changing keys reconfigures the bridge");
    ok(&m.rxc(&["network", "set", "lxdbr0", "ipv4.nat=false"]));
    let rules = m.ns.nft();
    assert!(!rules.contains("ip saddr 10.123.45.0/24"), "{rules}");
    ok(&m.rxc(&["network", "set", "lxdbr0", "ipv4.address", "10.123.46.1/24"]));
    assert!(m.ns.addrs("lxdbr0").contains(&"10.123.46.1/24".to_string()));
    assert!(!m.ns.addrs("lxdbr0").contains(&"10.123.45.1/24".to_string()));

    eprintln!("Deleting removes the bridge, its rules and dnsmasq");
    let pid = m.dnsmasq_pid("lxdbr0").unwrap();
    assert_eq!(
        ok(&m.rxc(&["network", "delete", "lxdbr0"])),
        "Network lxdbr0 deleted\n"
    );
    assert!(!m.ns.links().contains(&"lxdbr0".to_string()));
    assert!(!m.ns.nft().contains("rxd"));
    until(Duration::from_secs(10), "dnsmasq to exit", || async {
        !alive(pid)
    })
    .await;
    assert!(!m.dir.join("networks").join("lxdbr0").exists());
    let err = fails(&m.rxc(&["network", "show", "lxdbr0"]));
    assert!(err.contains("Network not found"), "{err}");
}

#[tokio::test]
async fn dnsmasq_stops_with_the_daemon() {
    let m = NsMember::start();
    ok(&m.rxc(&["network", "create", "rxdbr1", "ipv6.address=none"]));
    let pid = m.dnsmasq_pid("rxdbr1").unwrap();
    eprintln!("A clean shutdown stops dnsmasq");
    ok(&m.cmd("rxd", &["shutdown", "--timeout", "30"], None));
    m.wait_exit();
    assert!(!alive(pid));
}

#[tokio::test]
async fn a_joining_member_brings_up_the_clusters_networks() {
    let (hub, m) = cluster(2).await;
    ok(&m[0].rxc(&["network", "create", "lxdbr0", "--target", "node1"]));
    ok(&m[0].rxc(&["network", "create", "lxdbr0", "--target", "node2"]));
    ok(&m[0].rxc(&[
        "network",
        "create",
        "lxdbr0",
        "ipv4.address=10.77.1.1/24",
        "ipv6.address=none",
    ]));
    eprintln!("A third member joins and makes the bridge from its member_config");
    let third = NsMember::start();
    attach(&hub, &third, 2);
    join(&m[0], &third, 2, "").await;
    assert!(third.ns.links().contains(&"lxdbr0".to_string()));
    assert!(third
        .ns
        .addrs("lxdbr0")
        .contains(&"10.77.1.1/24".to_string()));
    assert!(third.dnsmasq_pid("lxdbr0").is_some());
    let n = network(&m[0], "lxdbr0", None);
    assert_eq!(
        n["locations"],
        serde_json::json!(["node1", "node2", "node3"])
    );
    eprintln!("Deleting it removes the bridge on the new member too");
    ok(&m[1].rxc(&["network", "delete", "lxdbr0"]));
    assert!(!third.ns.links().contains(&"lxdbr0".to_string()));
}

#[tokio::test]
async fn pending_then_created_on_every_member_and_rolled_back_on_failure() {
    let (_hub, m) = cluster(2).await;
    eprintln!("A cluster-wide create needs the per-member definitions first");
    let err = fails(&m[0].rxc(&["network", "create", "lxdbr0"]));
    assert!(err.contains("Network not pending on any node"), "{err}");
    let err = fails(&m[0].rxc(&[
        "network",
        "create",
        "lxdbr0",
        "ipv4.nat=true",
        "--target",
        "node1",
    ]));
    assert!(
        err.contains("may not be used as member-specific key"),
        "{err}"
    );
    assert_eq!(
        ok(&m[0].rxc(&["network", "create", "lxdbr0", "--target", "node1"])),
        "Network lxdbr0 pending on member node1\n"
    );
    let err = fails(&m[0].rxc(&["network", "create", "lxdbr0", "--target", "node1"]));
    assert!(
        err.contains("The network is already defined on member \"node1\""),
        "{err}"
    );
    let err = fails(&m[0].rxc(&["network", "create", "lxdbr0"]));
    assert!(err.contains("Network not defined on nodes: node2"), "{err}");
    ok(&m[1].rxc(&["network", "create", "lxdbr0", "--target", "node2"]));
    let n = network(&m[0], "lxdbr0", None);
    assert_eq!(n["status"], "Pending");
    assert_eq!(n["locations"], serde_json::json!(["node1", "node2"]));

    eprintln!("A member that refuses rolls the create back on every member");
    m[1].ns.ip(&["route", "add", "unreachable", "10.77.0.0/16"]);
    let err = fails(&m[0].rxc(&[
        "network",
        "create",
        "lxdbr0",
        "ipv4.address=10.77.1.1/24",
        "ipv6.address=none",
    ]));
    assert!(
        err.contains("Failed to notify peer 192.0.2.2:8443"),
        "{err}"
    );
    assert!(err.contains("overlaps the existing route"), "{err}");
    for member in &m {
        assert!(!member.ns.links().contains(&"lxdbr0".to_string()));
        assert!(!member.ns.nft().contains("rxd"));
    }
    assert_eq!(network(&m[1], "lxdbr0", None)["status"], "Pending");

    eprintln!("The retried create makes the bridge on every member");
    ok(&m[0].rxc(&[
        "network",
        "create",
        "lxdbr0",
        "ipv4.address=10.78.1.1/24",
        "ipv4.nat=true",
        "ipv6.address=none",
    ]));
    for member in &m {
        assert_eq!(member.ns.addrs("lxdbr0"), vec!["10.78.1.1/24".to_string()]);
        assert!(member.ns.nft().contains("masquerade"));
        assert!(alive(member.dnsmasq_pid("lxdbr0").unwrap()));
    }
    let n = network(&m[1], "lxdbr0", None);
    assert_eq!(n["status"], "Created");

    eprintln!("Deleting removes it everywhere");
    ok(&m[1].rxc(&["network", "delete", "lxdbr0"]));
    for member in &m {
        assert!(!member.ns.links().contains(&"lxdbr0".to_string()));
        assert!(!member.ns.nft().contains("rxd"));
    }
}

#[tokio::test]
async fn the_guides_preseeds_form_a_three_member_cluster() {
    let (_hub, m) = hub_with(3);
    eprintln!("The guide's bootstrap preseed, verbatim apart from the address");
    let bootstrap = "config:
  core.trust_password: sekret
  core.https_address: 192.0.2.1:8443
  images.auto_update_interval: 15
storage_pools:
- name: default
  driver: dir
networks:
- name: lxdbr0
  type: bridge
profiles:
- name: default
  devices:
    root:
      path: /
      pool: default
      type: disk
    eth0:
      name: eth0
      nictype: bridged
      parent: lxdbr0
      type: nic
cluster:
  server_name: node1
  enabled: true
";
    ok(&m[0].cmd("rxd", &["init", "--preseed"], Some(bootstrap)));
    assert!(m[0].ns.links().contains(&"lxdbr0".to_string()));
    let cert = std::fs::read_to_string(m[0].dir.join("cluster.crt")).unwrap();
    let indented: String = cert.lines().map(|l| format!("    {l}\n")).collect();
    for (i, member) in m.iter().enumerate().skip(1) {
        eprintln!("The guide's join preseed for node{}", i + 1);
        let join = format!(
            "cluster:
  server_name: node{n}
  enabled: true
  server_address: 192.0.2.{n}:8443
  cluster_address: 192.0.2.1:8443
  cluster_certificate: |
{indented}  cluster_password: sekret
  member_config:
  - entity: storage-pool
    name: default
    key: source
    value: \"\"
",
            n = i + 1
        );
        ok(&member.cmd("rxd", &["init", "--preseed"], Some(&join)));
        assert!(member.ns.links().contains(&"lxdbr0".to_string()));
        assert!(member.dnsmasq_pid("lxdbr0").is_some());
    }
    let list = ok(&m[2].rxc(&["cluster", "list", "--format", "csv"]));
    assert_eq!(
        list.lines().filter(|l| l.contains("ONLINE")).count(),
        3,
        "{list}"
    );
    let n = network(&m[1], "lxdbr0", None);
    assert_eq!(n["status"], "Created");
    assert_eq!(
        n["locations"],
        serde_json::json!(["node1", "node2", "node3"])
    );
    let profile = ok(&m[2].rxc(&["profile", "show", "default"]));
    assert!(profile.contains("parent: lxdbr0"), "{profile}");

    eprintln!("`rxd init --dump` of a member gives back the whole bootstrap preseed");
    let dumped = ok(&m[0].cmd("rxd", &["init", "--dump"], None));
    let dumped = rxd_api::InitPreseed::from_yaml(&dumped).unwrap();
    let mut want = rxd_api::InitPreseed::from_yaml(bootstrap).unwrap();
    // The password is hidden and so left out; the bootstrap sets the cluster address; values
    // are strings once stored.
    want.config.remove("core.trust_password");
    want.config
        .insert("cluster.https_address".into(), "192.0.2.1:8443".into());
    for v in want.config.values_mut() {
        if let serde_json::Value::Number(n) = v {
            *v = n.to_string().into();
        }
    }
    // What the daemon chose where the preseed left it to it: the bridge's subnets. (The pool's
    // `source` is a member's own key, which the cluster-wide view leaves out, as LXD's does.)
    let chosen = &dumped.networks[0].config;
    for key in ["ipv4.address", "ipv4.nat", "ipv6.address", "ipv6.nat"] {
        let value = chosen
            .get(key)
            .unwrap_or_else(|| panic!("no {key}: {chosen:?}"));
        want.networks[0].config.insert(key.into(), value.clone());
    }
    want.networks[0].project = "default".into();
    want.profiles[0].description = "Default LXD profile".into();
    // As LXD's, the dump lists the projects (rxd has only `default`).
    let projects = m[0].client().projects().await.unwrap();
    assert_eq!(projects.len(), 1, "{projects:?}");
    want.projects = vec![rxd_api::InitProject {
        config: projects[0].config.clone(),
        description: projects[0].description.clone(),
        name: "default".into(),
    }];
    // As LXD's, the dump has no cluster section: it describes the server, not how it joined.
    want.cluster = None;
    assert_eq!(dumped, want);

    eprintln!("The real lxc reads the network's keys on a member, as rxc does");
    let lxc = "/usr/bin/lxc";
    ok(&m[1].cmd(lxc, &["remote", "list"], None));
    let got = ok(&m[1].cmd(lxc, &["network", "get", "lxdbr0", "ipv4.nat"], None));
    assert_eq!(got, "true\n");
    let ours = ok(&m[1].rxc(&["network", "get", "lxdbr0", "ipv4.address"]));
    let theirs = ok(&m[1].cmd(lxc, &["network", "get", "lxdbr0", "ipv4.address"], None));
    assert_eq!(ours, theirs);
    assert!(ours.ends_with("/24\n"), "{ours}");
}

#[tokio::test]
async fn interactive_init_creates_a_bridge() {
    let m = NsMember::start();
    let backend = rxd_testkit::backend_answer(&m.client()).await;
    let answers = format!(
        "no\nyes\ndefault\n{backend}no\nyes\nrxdbr9\n10.88.0.1/24\nyes\nnone\nno\nyes\nno\n"
    );
    let out = ok(&m.cmd("rxd", &["init"], Some(&answers)));
    for q in [
        "Would you like to create a new local network bridge? (yes/no) [default=yes]: ",
        "What should the new bridge be called? [default=lxdbr0]: ",
        "What IPv4 address should be used? (CIDR subnet notation, “auto” or “none”) [default=auto]: ",
        "Would you like LXD to NAT IPv4 traffic on your bridge? [default=yes]: ",
        "What IPv6 address should be used? (CIDR subnet notation, “auto” or “none”) [default=auto]: ",
    ] {
        assert!(out.contains(q), "missing {q:?} in:\n{out}");
    }
    assert!(m.ns.addrs("rxdbr9").contains(&"10.88.0.1/24".to_string()));
    let profile = ok(&m.rxc(&["profile", "show", "default"]));
    assert!(profile.contains("network: rxdbr9"), "{profile}");
    eprintln!("The fan overlay is refused with the reason");
    let err = fails(&m.rxc(&["network", "create", "fan0", "bridge.mode=fan"]));
    assert!(err.contains("Fan overlay networks"), "{err}");
    assert!(!m.ns.links().contains(&"fan0".to_string()));
    eprintln!("A profile NIC naming a missing network is refused");
    let err = fails(&m.rxc(&[
        "profile",
        "device",
        "add",
        "default",
        "eth1",
        "nic",
        "network=nosuch",
    ]));
    assert!(err.contains("Network \"nosuch\" not found"), "{err}");
}

/// A raw call to `m`'s `/internal/*` endpoint with `m`'s own member certificate, from inside
/// its namespace: the status and the body.
fn as_member(m: &NsMember, net: &Net, path: &str, body: &serde_json::Value) -> (u16, String) {
    let file = |f: &str| m.dir.join(f).display().to_string();
    let url = format!("https://{net}.1:8443{path}");
    let out = m.ns.exec(
        "curl",
        &[
            "-sk",
            "--cert",
            &file("server.crt"),
            "--key",
            &file("server.key"),
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            &body.to_string(),
            "-w",
            "\n%{http_code}",
            &url,
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", ""));
    (status.parse().unwrap_or(0), body.to_string())
}

/// Issue 9, finding 4: a member certificate cannot make rxd remove or reconfigure an
/// interface rxd did not make, nor a network the cluster still has.
#[tokio::test]
async fn internal_calls_touch_only_bridges_rxd_made() {
    let net = Net::lease();
    let m = NsMember::start();
    ok(&m.cmd(
        "rxd",
        &["init", "--preseed"],
        Some(&bootstrap_preseed(&net.addr(1), "node1", &[])),
    ));
    m.ns.ip(&["link", "add", "hostbr0", "type", "bridge"]);

    eprintln!("phase: deleting a host bridge by name leaves it in place");
    let (status, body) = as_member(
        &m,
        &net,
        "/internal/networks/delete",
        &serde_json::json!({"name": "hostbr0", "config": {}}),
    );
    assert!(status < 500, "{status} {body}");
    assert!(m.ns.links().contains(&"hostbr0".to_string()), "{body}");

    eprintln!("phase: reconfiguring it is refused and changes nothing");
    let (status, body) = as_member(
        &m,
        &net,
        "/internal/networks/create",
        &serde_json::json!({"name": "hostbr0", "update": true,
            "config": {"ipv4.address": "10.66.1.1/24", "ipv6.address": "none"}}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("was not created by rxd"), "{body}");
    assert!(m.ns.addrs("hostbr0").is_empty());

    eprintln!("phase: names are checked as the public API checks them");
    for name in ["../x", "a/b", ""] {
        let (status, body) = as_member(
            &m,
            &net,
            "/internal/networks/delete",
            &serde_json::json!({"name": name, "config": {}}),
        );
        assert_eq!(status, 400, "{name}: {body}");
    }
    let (status, body) = as_member(
        &m,
        &net,
        "/internal/networks/create",
        &serde_json::json!({"name": "newbr0", "config": {"bogus.key": "1"}}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(!m.ns.links().contains(&"newbr0".to_string()));

    eprintln!("phase: a network the cluster has is deleted only through the public API");
    ok(&m.rxc(&[
        "network",
        "create",
        "rxdbr0",
        "ipv4.address=10.66.2.1/24",
        "ipv6.address=none",
    ]));
    let (status, body) = as_member(
        &m,
        &net,
        "/internal/networks/delete",
        &serde_json::json!({"name": "rxdbr0", "config": {}}),
    );
    assert_eq!(status, 409, "{body}");
    assert!(m.ns.links().contains(&"rxdbr0".to_string()));
    ok(&m.rxc(&["network", "delete", "rxdbr0"]));
    assert!(!m.ns.links().contains(&"rxdbr0".to_string()));
    assert!(m.ns.links().contains(&"hostbr0".to_string()));
}
