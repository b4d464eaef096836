//! `lxc cluster` member commands (set, role, rename, evacuate, restore) against rxd, through
//! Debian's real `lxc`.

use rxd_api::JoinToken;
use rxd_testkit::Member;

fn run(m: &Member, args: &[&str]) -> std::process::Output {
    m.command("/usr/bin/lxc", args, None)
}

fn ok(m: &Member, args: &[&str]) -> String {
    let out = run(m, args);
    assert!(
        out.status.success(),
        "lxc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(m: &Member, args: &[&str]) -> String {
    let out = run(m, args);
    assert!(!out.status.success(), "lxc {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn two_members() -> (Member, Member) {
    let a = Member::start();
    let seed = "config:\n  core.https_address: 127.0.18.1:8443\nstorage_pools:\n- name: local\n  driver: dir\ncluster:\n  server_name: node1\n  enabled: true\n";
    let out = a.rxd_with_input(&["init", "--preseed"], seed);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let op = a.client().create_join_token("node2").await.unwrap();
    let meta = op.metadata.unwrap();
    let token = JoinToken {
        server_name: "node2".into(),
        fingerprint: meta["fingerprint"].as_str().unwrap().into(),
        addresses: serde_json::from_value(meta["addresses"].clone()).unwrap(),
        secret: meta["secret"].as_str().unwrap().into(),
        expires_at: meta["expiresAt"].as_str().unwrap().into(),
    }
    .encode();
    let b = Member::start();
    let join = format!("cluster:\n  enabled: true\n  server_address: 127.0.18.2:8443\n  cluster_token: {token}\n  member_config:\n  - entity: storage-pool\n    name: local\n    key: source\n    value: \"\"\n");
    let out = b.rxd_with_input(&["init", "--preseed"], &join);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (a, b)
}

#[tokio::test]
async fn member_commands_work_through_lxc() {
    let (a, b) = two_members().await;
    eprintln!("lxc cluster set and role add");
    ok(&a, &["cluster", "set", "node2", "user.rack", "r1"]);
    ok(&a, &["cluster", "role", "add", "node2", "event-hub"]);
    let show = ok(&b, &["cluster", "show", "node2"]);
    assert!(show.contains("user.rack: r1"), "{show}");
    assert!(show.contains("- event-hub"), "{show}");
    let err = fails(&a, &["cluster", "role", "add", "node2", "bogus"]);
    assert!(err.contains("Invalid cluster role"), "{err}");
    let err = fails(&a, &["cluster", "set", "node2", "bogus.key", "x"]);
    assert!(err.contains("Invalid cluster configuration key"), "{err}");

    eprintln!("lxc cluster rename");
    ok(&a, &["cluster", "rename", "node2", "second"]);
    let list = ok(&b, &["cluster", "list", "--format", "csv"]);
    assert!(list.contains("second,https://127.0.18.2:8443"), "{list}");
    let err = fails(&a, &["cluster", "rename", "second", "node1"]);
    assert!(err.contains("already exists"), "{err}");

    eprintln!("lxc cluster evacuate and restore");
    ok(&a, &["cluster", "evacuate", "second", "--force"]);
    let list = ok(&a, &["cluster", "list", "--format", "csv"]);
    assert!(
        list.contains("EVACUATED,Unavailable due to maintenance"),
        "{list}"
    );
    let err = fails(&a, &["cluster", "evacuate", "second", "--force"]);
    assert!(err.contains("already evacuated"), "{err}");
    ok(&a, &["cluster", "restore", "second", "--force"]);
    let list = ok(&a, &["cluster", "list", "--format", "csv"]);
    assert!(
        list.contains("second,https://127.0.18.2:8443") && !list.contains("EVACUATED"),
        "{list}"
    );
    drop(b);
}
