//! `lxc cluster` member commands (set, role, rename, evacuate, restore) against rxd, through
//! Debian's real `lxc`.

use rxd_testkit::{Member, Net};

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

#[tokio::test]
async fn member_commands_work_through_lxc() {
    let net = Net::lease();
    let mut members = Member::form(2, &net, &[]).await;
    let b = members.pop().expect("two members");
    let a = members.pop().expect("two members");
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
    assert!(
        list.contains(&format!("second,https://{net}.2:8443")),
        "{list}"
    );
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
        list.contains(&format!("second,https://{net}.2:8443")) && !list.contains("EVACUATED"),
        "{list}"
    );
    drop(b);
}

#[tokio::test]
async fn members_are_removed_down_to_the_last_one() {
    let net = Net::lease();
    let a = Member::start();
    let seed = &format!("config:\n  core.https_address: {net}.1:8443\nstorage_pools:\n- name: local\n  driver: dir\ncluster:\n  server_name: node1\n  enabled: true\n");
    let out = a.rxd_with_input(&["init", "--preseed"], seed);
    assert!(out.status.success());
    let b = Member::start();
    b.join(&a, "node2", &net.addr(2)).await;
    let c = Member::start();
    c.join(&a, "node3", &net.addr(3)).await;

    eprintln!("Removing a follower: it becomes standalone, the others forget it");
    let out = ok(&a, &["cluster", "remove", "node3"]);
    assert!(out.contains("Member node3 removed"), "{out}");
    let names = |m: &Member| {
        let list = ok(m, &["cluster", "list", "--format", "csv"]);
        list.lines()
            .filter_map(|l| l.split(',').next().map(str::to_string))
            .filter(|n| n.starts_with("node"))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&b), ["node1", "node2"]);
    let start = std::time::Instant::now();
    loop {
        let (server, _) = c.client().server().await.unwrap();
        if !server.environment.unwrap().server_clustered {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "node3 stays clustered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!c.dir().join("cluster.crt").exists());
    assert!(!c.dir().join("storage-pools/local").exists());
    let certs = a.client().certificates().await.unwrap();
    assert!(
        certs.iter().all(|c| c.put.name != "node3"),
        "its certificate is no longer trusted"
    );

    eprintln!("Removing the leader hands the database over");
    ok(&b, &["cluster", "remove", "node1"]);
    assert_eq!(names(&b), ["node2"]);
    let err = fails(&b, &["cluster", "remove", "node2"]);
    assert!(err.contains("only member"), "{err}");
    b.client()
        .create_profile(&rxd_api::ProfilesPost {
            name: "still-works".into(),
            ..Default::default()
        })
        .await
        .unwrap();
}
