//! `rxc` beside `lxc` (issue 10, sections 2.3, 2.6 and 3): the commands `lxc` has and `rxc`
//! lacked, driven through `rxc` against real rxd members and compared with Debian's real `lxc`
//! on the same daemon.

use std::process::Output;

use rxd_testkit::{fails, ok, Member, Net};

const LXC: &str = "/usr/bin/lxc";

fn rxc(m: &Member, args: &[&str]) -> Output {
    m.command("rxc", args, None)
}

fn rxc_in(m: &Member, args: &[&str], stdin: &str) -> Output {
    m.command("rxc", args, Some(stdin))
}

/// Lets `lxc` write its configuration, so its first-run greeting is not compared.
fn lxc_first_run(m: &Member) {
    ok(&m.command(LXC, &["remote", "list"], None));
}

/// Runs the same arguments through `rxc` and `lxc` and asserts the same exit status, stdout
/// and stderr; returns rxc's output.
fn same_as_lxc(m: &Member, args: &[&str]) -> Output {
    let ours = rxc(m, args);
    let theirs = m.command(LXC, args, None);
    let text = |o: &Output| {
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert_eq!(text(&ours), text(&theirs), "rxc and lxc differ on {args:?}");
    ours
}

#[tokio::test]
async fn issue_10_cluster_member_commands() {
    let net = Net::lease();
    let members = Member::form(2, &net, &[]).await;
    let a = &members[0];
    lxc_first_run(a);

    eprintln!("cluster set/get/unset: KEY VALUE and KEY=VALUE, the missing key named as lxc does");
    ok(&rxc(a, &["cluster", "set", "node2", "user.rack", "r1"]));
    ok(&rxc(
        a,
        &["cluster", "set", "node2", "user.row=3", "user.room=b"],
    ));
    let got = ok(&same_as_lxc(a, &["cluster", "get", "node2", "user.rack"]));
    assert_eq!(got, "r1\n");
    let err = fails(&same_as_lxc(a, &["cluster", "get", "node2", "user.none"]));
    assert_eq!(
        err,
        "Error: The key \"user.none\" does not exist on cluster member \"node2\"\n"
    );
    ok(&rxc(a, &["cluster", "unset", "node2", "user.rack"]));
    let show = ok(&rxc(a, &["cluster", "show", "node2"]));
    assert!(
        !show.contains("user.rack") && show.contains("user.row"),
        "{show}"
    );
    let err = fails(&rxc(a, &["cluster", "set", "node2", "user.a", "b", "c"]));
    assert!(
        err.contains("Invalid key=value configuration: user.a"),
        "{err}"
    );

    eprintln!("cluster edit reads the YAML from stdin");
    let edit = "roles: []\nfailure_domain: default\ndescription: second member\nconfig:\n  user.rack: r9\ngroups:\n- default\n";
    ok(&rxc_in(a, &["cluster", "edit", "node2"], edit));
    let show = ok(&rxc(a, &["cluster", "show", "node2"]));
    assert!(show.contains("description: second member"), "{show}");
    assert!(
        show.contains("user.rack: r9") && !show.contains("user.row"),
        "{show}"
    );

    eprintln!("cluster role add/remove");
    ok(&rxc(a, &["cluster", "role", "add", "node2", "event-hub"]));
    let show = ok(&rxc(a, &["cluster", "show", "node2"]));
    assert!(show.contains("- event-hub"), "{show}");
    let err = fails(&same_as_lxc(
        a,
        &["cluster", "role", "add", "node2", "event-hub"],
    ));
    assert_eq!(
        err,
        "Error: Member \"node2\" already has role \"event-hub\"\n"
    );
    ok(&rxc(
        a,
        &["cluster", "role", "remove", "node2", "event-hub"],
    ));
    let err = fails(&same_as_lxc(
        a,
        &["cluster", "role", "remove", "node2", "event-hub"],
    ));
    assert_eq!(
        err,
        "Error: Member \"node2\" does not have role \"event-hub\"\n"
    );

    eprintln!("cluster evacuate/restore: a refused prompt does nothing, --force does it");
    ok(&rxc_in(a, &["cluster", "evacuate", "node2"], "no\n"));
    let list = ok(&rxc(a, &["cluster", "list", "-f", "csv"]));
    assert!(!list.contains("EVACUATED"), "{list}");
    ok(&rxc(a, &["cluster", "evacuate", "node2", "--force"]));
    let list = ok(&rxc(a, &["cluster", "list", "-f", "csv"]));
    assert!(list.contains("EVACUATED"), "{list}");
    ok(&rxc_in(a, &["cluster", "restore", "node2"], "yes\n"));
    let list = ok(&rxc(a, &["cluster", "list", "-f", "csv"]));
    assert!(!list.contains("EVACUATED"), "{list}");

    eprintln!("config show/get/set with --target read and write that member's keys");
    let get = |target: &str| {
        ok(&rxc(
            a,
            &["config", "get", "core.https_address", "--target", target],
        ))
    };
    assert_eq!(get("node2"), format!("{net}.2:8443\n"));
    assert_eq!(get("node1"), format!("{net}.1:8443\n"));
    let show = ok(&same_as_lxc(a, &["config", "show", "--target", "node2"]));
    assert!(
        show.contains(&format!("core.https_address: {net}.2:8443")),
        "{show}"
    );
    eprintln!("lxc and rxc set a member key on the --target member, not on the one asked");
    ok(&a.command(
        LXC,
        &[
            "config",
            "set",
            "core.https_address",
            &net.addr(2),
            "--target",
            "node2",
        ],
        None,
    ));
    assert_eq!(get("node1"), format!("{net}.1:8443\n"));
    ok(&rxc(
        a,
        &[
            "config",
            "set",
            "core.https_address",
            &net.addr(2),
            "--target",
            "node2",
        ],
    ));
    assert_eq!(get("node2"), format!("{net}.2:8443\n"));

    eprintln!("config edit from stdin; config unset of an unknown key fails as with lxc");
    let edit = ok(&rxc(a, &["config", "show"]))
        .replace("config:", "config:\n  images.auto_update_interval: \"9\"");
    ok(&rxc_in(a, &["config", "edit"], &edit));
    assert_eq!(
        ok(&rxc(a, &["config", "get", "images.auto_update_interval"])),
        "9\n"
    );
    ok(&rxc(a, &["config", "unset", "images.auto_update_interval"]));
    assert_eq!(
        ok(&rxc(a, &["config", "get", "images.auto_update_interval"])),
        "\n"
    );
    let err = fails(&rxc(a, &["config", "unset", "foo.bar"]));
    assert!(err.contains("foo.bar"), "{err}");
    let lxc_err = fails(&a.command(LXC, &["config", "unset", "foo.bar"], None));
    assert!(lxc_err.contains("foo.bar"), "{lxc_err}");
}

#[tokio::test]
async fn issue_10_trust_profile_and_flags() {
    let net = Net::lease();
    let m = Member::start();
    m.bootstrap(&net.addr(1), "node1", &[]);
    lxc_first_run(&m);

    eprintln!("trust add of a missing file is an error, not a client name");
    let err = fails(&rxc(&m, &["config", "trust", "add", "/nonexistent.crt"]));
    assert_eq!(
        err,
        "Error: open /nonexistent.crt: no such file or directory\n"
    );
    let err = fails(&m.command(LXC, &["config", "trust", "add", "/nonexistent.crt"], None));
    assert!(
        err.contains("open /nonexistent.crt: no such file or directory"),
        "{err}"
    );
    let tokens = ok(&rxc(&m, &["config", "trust", "list-tokens", "-f", "csv"]));
    assert_eq!(tokens, "");

    eprintln!("trust list-tokens, revoke-token and show");
    ok(&rxc(&m, &["config", "trust", "add", "laptop"]));
    let tokens = ok(&same_as_lxc(
        &m,
        &["config", "trust", "list-tokens", "-f", "csv"],
    ));
    assert!(tokens.starts_with("laptop,"), "{tokens}");
    let out = ok(&rxc(&m, &["config", "trust", "revoke-token", "laptop"]));
    assert_eq!(out, "Certificate add token for laptop deleted\n");
    let err = fails(&rxc(&m, &["config", "trust", "revoke-token", "laptop"]));
    assert_eq!(
        err,
        "Error: No certificate add token for member laptop on remote: local\n"
    );
    let fingerprint = rxd_testkit::trusted_fingerprints(&m.client()).await[0].clone();
    let show = ok(&same_as_lxc(&m, &["config", "trust", "show", &fingerprint]));
    assert!(show.contains("type: server"), "{show}");

    eprintln!("profile get/set/unset");
    ok(&rxc(&m, &["profile", "create", "p1"]));
    ok(&rxc(&m, &["profile", "set", "p1", "user.a", "1"]));
    ok(&rxc(&m, &["profile", "set", "p1", "user.b=2", "user.c=3"]));
    assert_eq!(
        ok(&same_as_lxc(&m, &["profile", "get", "p1", "user.b"])),
        "2\n"
    );
    ok(&rxc(&m, &["profile", "unset", "p1", "user.a"]));
    assert_eq!(
        ok(&same_as_lxc(&m, &["profile", "get", "p1", "user.a"])),
        "\n"
    );

    eprintln!("profile device list/show/get/set/unset");
    ok(&rxc(
        &m,
        &[
            "profile",
            "device",
            "add",
            "p1",
            "root",
            "disk",
            "path=/",
            "pool=local",
        ],
    ));
    ok(&rxc(
        &m,
        &[
            "profile",
            "device",
            "add",
            "p1",
            "data",
            "disk",
            "path=/data",
            "source=/srv",
        ],
    ));
    ok(&same_as_lxc(&m, &["profile", "device", "show", "p1"]));
    let list = ok(&rxc(&m, &["profile", "device", "list", "p1"]));
    assert_eq!(list, "data\nroot\n");
    ok(&rxc(
        &m,
        &["profile", "device", "set", "p1", "data", "readonly", "true"],
    ));
    let got = ok(&same_as_lxc(
        &m,
        &["profile", "device", "get", "p1", "data", "readonly"],
    ));
    assert_eq!(got, "true\n");
    ok(&rxc(
        &m,
        &["profile", "device", "unset", "p1", "data", "readonly"],
    ));
    let show = ok(&rxc(&m, &["profile", "device", "show", "p1"]));
    assert!(!show.contains("readonly"), "{show}");
    let err = fails(&same_as_lxc(
        &m,
        &["profile", "device", "get", "p1", "nope", "path"],
    ));
    assert_eq!(err, "Error: Device doesn't exist\n");
    let out = ok(&rxc(
        &m,
        &["profile", "device", "remove", "p1", "data", "root"],
    ));
    assert_eq!(out, "Device data, root removed from p1\n");

    eprintln!("--format is refused where it means nothing");
    let err = fails(&rxc(&m, &["cluster", "show", "node1", "--format", "csv"]));
    assert_eq!(err, "Error: unknown flag: --format\n");
    let err = fails(&m.command(LXC, &["cluster", "show", "node1", "--format", "csv"], None));
    assert!(err.contains("unknown flag: --format"), "{err}");
    ok(&rxc(&m, &["profile", "list", "--format", "csv"]));
}

#[tokio::test]
async fn issue_10_storage_network_remote_and_global_flags() {
    let net = Net::lease();
    let m = Member::start();
    m.bootstrap(&net.addr(2), "node1", &[]);
    lxc_first_run(&m);

    eprintln!("storage get and network get print a set key, nothing for an unset one");
    ok(&rxc(&m, &["storage", "set", "local", "user.rack", "r1"]));
    let got = ok(&same_as_lxc(&m, &["storage", "get", "local", "user.rack"]));
    assert_eq!(got, "r1\n");
    assert_eq!(
        ok(&same_as_lxc(&m, &["storage", "get", "local", "nope"])),
        ""
    );
    ok(&rxc(
        &m,
        &[
            "network",
            "create",
            "rxcbr0",
            "ipv4.address=none",
            "ipv6.address=none",
        ],
    ));
    let got = ok(&same_as_lxc(
        &m,
        &["network", "get", "rxcbr0", "ipv4.address"],
    ));
    assert_eq!(got, "none\n");
    ok(&rxc(&m, &["network", "delete", "rxcbr0"]));

    eprintln!("remote rename and set-url");
    ok(&rxc(
        &m,
        &["remote", "add", "here", "unix:///nonexistent/unix.socket"],
    ));
    ok(&rxc(&m, &["remote", "switch", "here"]));
    ok(&rxc(&m, &["remote", "rename", "here", "there"]));
    assert_eq!(ok(&rxc(&m, &["remote", "get-default"])), "there\n");
    let sock = format!("unix://{}", m.dir().join("unix.socket").display());
    ok(&rxc(&m, &["remote", "set-url", "there", &sock]));
    let list = ok(&rxc(&m, &["remote", "list", "-f", "csv"]));
    assert!(list.contains(&format!("there (current),{sock}")), "{list}");
    ok(&rxc(&m, &["cluster", "list", "-f", "csv"]));
    ok(&rxc(&m, &["remote", "switch", "local"]));
    let err = fails(&rxc(&m, &["remote", "rename", "local", "x"]));
    assert_eq!(
        err,
        "Error: Remote local is static and cannot be modified\n"
    );
    let err = fails(&rxc(&m, &["remote", "rename", "nope", "x"]));
    assert_eq!(err, "Error: Remote nope doesn't exist\n");
    let err = fails(&rxc(&m, &["remote", "rename", "there", "local"]));
    assert_eq!(err, "Error: Remote local already exists\n");

    eprintln!("--debug says which daemon is used; --project accepts default, refuses others");
    let out = rxc(&m, &["--debug", "profile", "list", "-f", "csv"]);
    let debug = String::from_utf8_lossy(&out.stderr);
    assert!(
        debug.contains("Connecting to a local rxd over a Unix socket"),
        "{debug}"
    );
    ok(&rxc(&m, &["-v", "profile", "list"]));
    ok(&rxc(&m, &["profile", "list", "--project", "default"]));
    let err = fails(&rxc(&m, &["profile", "list", "--project", "nope"]));
    assert_eq!(err, "Error: Project not found\n");

    eprintln!("bash completion offers member, pool, network, profile and remote names");
    let script = m.dir().join("rxc.bash");
    std::fs::write(&script, ok(&rxc(&m, &["completion", "bash"]))).unwrap();
    let complete = |words: &str, cword: usize| {
        let probe = format!(
            "PATH={}:$PATH; source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; _rxc_names; echo \"${{COMPREPLY[*]}}\"",
            rxd_testkit::bin_dir().display(),
            script.display()
        );
        ok(&m.command("bash", &["-c", &probe], None))
    };
    assert_eq!(complete("rxc cluster show ''", 3), "node1\n");
    assert_eq!(complete("rxc storage get l", 3), "local\n");
    assert_eq!(complete("rxc profile device list ''", 4), "default\n");
    assert_eq!(complete("rxc remote switch t", 3), "there\n");
    assert_eq!(complete("rxc profile create ''", 3), "\n");
}

#[test]
fn issue_10_manual_pages_come_from_the_help() {
    let m = Member::start();
    for program in ["rxc", "rxd"] {
        let dir = m.dir().join(format!("man-{program}"));
        std::fs::create_dir_all(&dir).unwrap();
        ok(&m.command(program, &["manpage", dir.to_str().unwrap()], None));
        let top = std::fs::read_to_string(dir.join(format!("{program}.1"))).unwrap();
        assert!(top.starts_with(".ie \\n(.g .ds Aq"), "{top}");
        assert!(top.contains(&format!(".TH {program} 1")), "{top}");
    }
    let page = std::fs::read_to_string(m.dir().join("man-rxc/rxc-cluster-get.1")).unwrap();
    assert!(
        page.contains("Get values for cluster member configuration keys"),
        "{page}"
    );
    let page = std::fs::read_to_string(m.dir().join("man-rxd/rxd-init.1")).unwrap();
    assert!(page.contains("rxd\\-init"), "{page}");
}
