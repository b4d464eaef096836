//! Debian's real `lxd init` and `lxc` drive rxd unchanged, with `LXD_DIR` pointing at an rxd
//! data directory. These tools are installed by `.ci/run`; a missing tool fails the test.

use rxd_testkit::{system_tool, Member, Net};

#[test]
fn real_lxd_init_and_lxc_drive_rxd() {
    let net = Net::lease();
    let (lxd, lxc) = (system_tool("lxd"), system_tool("lxc"));
    let m = Member::start();
    eprintln!("Debian's lxd init bootstraps rxd from a preseed");
    let seed = &format!("config:\n  core.https_address: {net}.1:8443\n  core.trust_password: sekret\n\
storage_pools:\n- name: local\n  driver: dir\n\
profiles:\n- name: default\n  devices:\n    root:\n      path: /\n      pool: local\n      type: disk\n\
cluster:\n  server_name: node1\n  enabled: true\n");
    m.succeeds(&lxd, &["init", "--preseed"], Some(seed));

    eprintln!("lxc cluster list shows the member as LXD would");
    let list = m.succeeds(&lxc, &["cluster", "list"], None);
    assert!(
        list.contains(&format!(
            "| node1 | https://{net}.1:8443 | database-leader |"
        )),
        "{list}"
    );
    assert!(list.contains("| ONLINE |"), "{list}");
    let csv = m.succeeds(&lxc, &["cluster", "list", "--format", "csv"], None);
    assert!(
        csv.starts_with(&format!("node1,https://{net}.1:8443,")),
        "{csv}"
    );

    eprintln!("lxc config show hides the trust password");
    let config = m.succeeds(&lxc, &["config", "show"], None);
    assert!(config.contains("core.trust_password: true"), "{config}");
    assert!(
        config.contains(&format!("core.https_address: {net}.1:8443")),
        "{config}"
    );

    eprintln!("lxc profile create, show and delete");
    m.succeeds(&lxc, &["profile", "create", "extra"], None);
    let show = m.succeeds(&lxc, &["profile", "show", "extra"], None);
    assert!(show.contains("name: extra"), "{show}");
    m.succeeds(&lxc, &["profile", "delete", "extra"], None);
    let list = m.succeeds(&lxc, &["profile", "list", "--format", "csv"], None);
    assert!(!list.contains("extra"), "{list}");

    eprintln!("lxc storage create and list");
    m.succeeds(&lxc, &["storage", "create", "pool2", "dir"], None);
    let pools = m.succeeds(&lxc, &["storage", "list", "--format", "csv"], None);
    assert!(pools.contains("pool2,dir"), "{pools}");
    assert!(m.dir().join("storage-pools/pool2").is_dir());

    eprintln!("lxc query /1.0");
    let q = m.succeeds(&lxc, &["query", "/1.0"], None);
    let v: serde_json::Value = serde_json::from_str(&q).unwrap();
    assert_eq!(v["environment"]["server_name"], "node1");
    assert_eq!(v["environment"]["server_clustered"], true);
}
