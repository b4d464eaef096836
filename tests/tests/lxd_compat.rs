//! Debian's real `lxd init` and `lxc` drive rxd unchanged, with `LXD_DIR` pointing at an rxd
//! data directory. These tools are installed by `.ci/run`; a missing tool fails the test.

use rxd_testkit::{Member, Net};

fn lxc_ok(m: &Member, program: &str, args: &[&str], stdin: Option<&str>) -> String {
    let out = m.command(program, args, stdin);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}\n{}\ndaemon log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout),
        m.log()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tool(name: &str) -> String {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin"] {
        let p = format!("{dir}/{name}");
        if std::path::Path::new(&p).exists() {
            return p;
        }
    }
    panic!("{name} is not installed: .ci/run installs Debian's lxd and lxd-client");
}

#[test]
fn real_lxd_init_and_lxc_drive_rxd() {
    let net = Net::lease();
    let (lxd, lxc) = (tool("lxd"), tool("lxc"));
    let m = Member::start();
    eprintln!("Debian's lxd init bootstraps rxd from a preseed");
    let seed = &format!("config:\n  core.https_address: {net}.1:8443\n  core.trust_password: sekret\n\
storage_pools:\n- name: local\n  driver: dir\n\
profiles:\n- name: default\n  devices:\n    root:\n      path: /\n      pool: local\n      type: disk\n\
cluster:\n  server_name: node1\n  enabled: true\n");
    lxc_ok(&m, &lxd, &["init", "--preseed"], Some(seed));

    eprintln!("lxc cluster list shows the member as LXD would");
    let list = lxc_ok(&m, &lxc, &["cluster", "list"], None);
    assert!(
        list.contains(&format!(
            "| node1 | https://{net}.1:8443 | database-leader |"
        )),
        "{list}"
    );
    assert!(list.contains("| ONLINE |"), "{list}");
    let csv = lxc_ok(&m, &lxc, &["cluster", "list", "--format", "csv"], None);
    assert!(
        csv.starts_with(&format!("node1,https://{net}.1:8443,")),
        "{csv}"
    );

    eprintln!("lxc config show hides the trust password");
    let config = lxc_ok(&m, &lxc, &["config", "show"], None);
    assert!(config.contains("core.trust_password: true"), "{config}");
    assert!(
        config.contains(&format!("core.https_address: {net}.1:8443")),
        "{config}"
    );

    eprintln!("lxc profile create, show and delete");
    lxc_ok(&m, &lxc, &["profile", "create", "extra"], None);
    let show = lxc_ok(&m, &lxc, &["profile", "show", "extra"], None);
    assert!(show.contains("name: extra"), "{show}");
    lxc_ok(&m, &lxc, &["profile", "delete", "extra"], None);
    let list = lxc_ok(&m, &lxc, &["profile", "list", "--format", "csv"], None);
    assert!(!list.contains("extra"), "{list}");

    eprintln!("lxc storage create and list");
    lxc_ok(&m, &lxc, &["storage", "create", "pool2", "dir"], None);
    let pools = lxc_ok(&m, &lxc, &["storage", "list", "--format", "csv"], None);
    assert!(pools.contains("pool2,dir"), "{pools}");
    assert!(m.dir().join("storage-pools/pool2").is_dir());

    eprintln!("lxc query /1.0");
    let q = lxc_ok(&m, &lxc, &["query", "/1.0"], None);
    let v: serde_json::Value = serde_json::from_str(&q).unwrap();
    assert_eq!(v["environment"]["server_name"], "node1");
    assert_eq!(v["environment"]["server_clustered"], true);
}
