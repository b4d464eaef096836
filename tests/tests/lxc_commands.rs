//! Issue 10 (sections 3 and 5.2): the commands `rxc` gained, driven through the real `lxc`
//! (Debian's lxd-client) and `rxc` side by side against rxd members, the trust store's
//! `DELETE`/`PUT`/`PATCH` through both clients and the typed client, `rxc remote add` over
//! HTTPS, and the editor sessions of `edit`. (`rxd init --dump` of a cluster member is checked
//! in networks.rs, where members have namespaces for their bridges.)

use std::os::fd::AsFd;
use std::process::{Command, Output, Stdio};

use rxd_api::CertificatePut;
use rxd_testkit::{fails, ok, Member, Net};

const LXC: &str = "/usr/bin/lxc";

fn rxc(m: &Member, args: &[&str]) -> Output {
    m.command("rxc", args, None)
}

fn rxc_in(m: &Member, args: &[&str], stdin: &str) -> Output {
    m.command("rxc", args, Some(stdin))
}

fn lxc(m: &Member, args: &[&str]) -> Output {
    m.command(LXC, args, None)
}

fn lxc_in(m: &Member, args: &[&str], stdin: &str) -> Output {
    m.command(LXC, args, Some(stdin))
}

/// A standalone member, bootstrapped as a one-member cluster on `net`'s first address, with
/// `lxc`'s first run done so its greeting is not compared.
fn standalone(net: &Net) -> Member {
    let m = Member::start();
    m.bootstrap(&net.addr(1), "node1", &[]);
    ok(&lxc(&m, &["remote", "list"]));
    m
}

/// (success, stdout, stderr) of a run, to compare two clients.
fn text(o: &Output) -> (bool, String, String) {
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Runs the same arguments (and stdin) through `rxc` and `lxc` and asserts the same exit
/// status, stdout and stderr; returns rxc's output.
fn same_as_lxc(m: &Member, args: &[&str], stdin: Option<&str>) -> Output {
    let ours = m.command("rxc", args, stdin);
    let theirs = m.command(LXC, args, stdin);
    assert_eq!(text(&ours), text(&theirs), "rxc and lxc differ on {args:?}");
    ours
}

/// The trust store entry named `name`: (fingerprint, type).
async fn trust_entry(m: &Member, name: &str) -> Option<(String, String)> {
    m.client()
        .certificates()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.put.name == name)
        .map(|c| (c.fingerprint, c.put.cert_type))
}

/// Writes a new client certificate to `<member dir>/<dir>/<file>` and returns its path.
fn certificate_file(m: &Member, dir: &str, file: &str) -> String {
    let cert = rxd_tls::generate_client("client", "host").unwrap();
    let dir = m.dir().join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(file);
    std::fs::write(&path, &cert.cert_pem).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test]
async fn trust_entries_through_rxc_lxc_and_the_client() {
    let net = Net::lease();
    let m = standalone(&net);

    eprintln!("trust add FILE names the entry after the file's base name, as lxc does");
    for file in ["client.crt", "laptop.pem.crt", "noext"] {
        let path = certificate_file(&m, "certs", file);
        ok(&rxc(&m, &["config", "trust", "add", &path]));
        let (fp, kind) = trust_entry(&m, file)
            .await
            .unwrap_or_else(|| panic!("rxc named {path} other than {file}"));
        assert_eq!(kind, "client");
        ok(&rxc(&m, &["config", "trust", "remove", &fp]));
        assert_eq!(trust_entry(&m, file).await, None, "rxc removed {fp}");
        ok(&lxc(&m, &["config", "trust", "add", &path]));
        let (again, _) = trust_entry(&m, file)
            .await
            .unwrap_or_else(|| panic!("lxc named {path} other than {file}"));
        assert_eq!(again, fp);
        ok(&lxc(&m, &["config", "trust", "remove", &fp]));
        assert_eq!(trust_entry(&m, file).await, None, "lxc removed {fp}");
    }

    eprintln!("trust remove and edit of an unknown fingerprint: 404, worded as lxc words it");
    let unknown = "0123456789abcdef";
    let err = fails(&same_as_lxc(
        &m,
        &["config", "trust", "remove", unknown],
        None,
    ));
    assert_eq!(err, "Error: Certificate not found\n");
    let err = fails(&same_as_lxc(
        &m,
        &["config", "trust", "edit", unknown],
        Some("name: x\ntype: client\n"),
    ));
    assert_eq!(err, "Error: Certificate not found\n");

    eprintln!("trust edit (PUT) through rxc and lxc; a bad type is refused by both");
    let path = certificate_file(&m, "certs", "desk.crt");
    ok(&rxc(&m, &["config", "trust", "add", &path]));
    let (fp, _) = trust_entry(&m, "desk.crt").await.unwrap();
    let shown = ok(&same_as_lxc(&m, &["config", "trust", "show", &fp], None));
    let edited = shown.replace("name: desk.crt", "name: desk-by-rxc");
    ok(&rxc_in(&m, &["config", "trust", "edit", &fp], &edited));
    assert!(trust_entry(&m, "desk-by-rxc").await.is_some());
    let edited = shown.replace("name: desk.crt", "name: desk-by-lxc");
    ok(&lxc_in(&m, &["config", "trust", "edit", &fp], &edited));
    assert!(trust_entry(&m, "desk-by-lxc").await.is_some());
    let bad = edited.replace("type: client", "type: bogus");
    let ours = fails(&rxc_in(&m, &["config", "trust", "edit", &fp], &bad));
    let theirs = fails(&lxc_in(&m, &["config", "trust", "edit", &fp], &bad));
    assert_eq!(ours, theirs);
    assert!(ours.contains("certificate type"), "{ours}");
    assert_eq!(trust_entry(&m, "desk-by-lxc").await.unwrap().1, "client");

    eprintln!("the typed client: PUT, PATCH and DELETE, and their 404 and 400");
    let c = m.client();
    let (cert, etag) = c.certificate(&fp).await.unwrap();
    let mut put = cert.put.clone();
    put.name = "desk-put".into();
    put.description = "by the client".into();
    c.update_certificate(&fp, &put, Some(&etag)).await.unwrap();
    let (cert, _) = c.certificate(&fp).await.unwrap();
    assert_eq!(
        (cert.put.name.as_str(), cert.put.description.as_str()),
        ("desk-put", "by the client")
    );
    let patch = CertificatePut {
        name: "desk-patch".into(),
        ..Default::default()
    };
    c.patch_certificate(&fp, &patch, None).await.unwrap();
    let (cert, _) = c.certificate(&fp).await.unwrap();
    assert_eq!(cert.put.name, "desk-patch");
    assert_eq!(cert.put.cert_type, "client", "PATCH keeps the type");
    for bad_type in [
        CertificatePut {
            cert_type: "bogus".into(),
            ..cert.put.clone()
        },
        CertificatePut {
            name: "x".into(),
            cert_type: "bogus".into(),
            ..Default::default()
        },
    ] {
        let err = c
            .update_certificate(&fp, &bad_type, None)
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(400), "PUT: {err}");
        let err = c.patch_certificate(&fp, &bad_type, None).await.unwrap_err();
        assert_eq!(err.status(), Some(400), "PATCH: {err}");
    }
    let err = c
        .update_certificate(unknown, &cert.put, None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");
    let err = c
        .patch_certificate(unknown, &patch, None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");
    let err = c.delete_certificate(unknown).await.unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");
    c.delete_certificate(&fp).await.unwrap();
    let err = c.delete_certificate(&fp).await.unwrap_err();
    assert_eq!(err.status(), Some(404), "deleted twice: {err}");
    let err = c.certificate(&fp).await.unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");

    eprintln!("lxc config trust list, list-tokens and revoke-token");
    ok(&lxc(&m, &["config", "trust", "add", "--name", "phone"]));
    let tokens = ok(&same_as_lxc(
        &m,
        &["config", "trust", "list-tokens", "-f", "csv"],
        None,
    ));
    assert!(tokens.starts_with("phone,"), "{tokens}");
    let out = ok(&lxc(&m, &["config", "trust", "revoke-token", "phone"]));
    assert_eq!(out, "Certificate add token for phone deleted\n");
    let tokens = ok(&same_as_lxc(
        &m,
        &["config", "trust", "list-tokens", "-f", "csv"],
        None,
    ));
    assert_eq!(tokens, "");
    let err = fails(&same_as_lxc(
        &m,
        &["config", "trust", "revoke-token", "phone"],
        None,
    ));
    assert_eq!(
        err,
        "Error: No certificate add token for member phone on remote: local\n"
    );
    let list = ok(&same_as_lxc(
        &m,
        &["config", "trust", "list", "-f", "csv"],
        None,
    ));
    assert!(list.starts_with("server,node1,"), "{list}");
}

/// Runs `program args` on `m` with a terminal as stdin, `editor` as `$EDITOR` and `keys` typed
/// in advance; stdout and stderr are captured. coreutils `timeout` bounds the run.
fn on_terminal(m: &Member, program: &str, args: &[&str], editor: &str, keys: &str) -> Output {
    let pty = nix::pty::openpty(None, None).unwrap();
    nix::unistd::write(pty.master.as_fd(), keys.as_bytes()).unwrap();
    let program = if program == "rxc" {
        rxd_testkit::bin("rxc").display().to_string()
    } else {
        program.to_string()
    };
    let mut all = vec!["--foreground", "--kill-after=5", "60", program.as_str()];
    all.extend_from_slice(args);
    let out = m
        .cmd("timeout")
        .args(&all)
        .env("EDITOR", editor)
        .env_remove("VISUAL")
        .stdin(Stdio::from(pty.slave))
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(124), "{program} {args:?} hung");
    drop(pty.master);
    out
}

/// An editor script that writes `edits` in turn, one per time it is opened (the last one again
/// if opened more often), and counts its runs in `<dir>/<name>.runs`.
fn scripted_editor(m: &Member, name: &str, edits: &[&str]) -> String {
    let dir = m.dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for (i, edit) in edits.iter().enumerate() {
        std::fs::write(dir.join(format!("{i}.yaml")), edit).unwrap();
    }
    let script = dir.join("editor.sh");
    let last = edits.len() - 1;
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nset -e\nd={d}\nn=$(cat $d/runs 2>/dev/null || echo 0)\ni=$n\n[ $i -le {last} ] || i={last}\ncp $d/$i.yaml \"$1\"\necho $((n + 1)) > $d/runs\n",
            d = dir.display()
        ),
    )
    .unwrap();
    ok(&Command::new("chmod")
        .args(["+x", script.to_str().unwrap()])
        .output()
        .unwrap());
    script.display().to_string()
}

fn editor_runs(m: &Member, name: &str) -> String {
    std::fs::read_to_string(m.dir().join(name).join("runs")).unwrap_or_default()
}

const REOPEN: &str = "Press enter to open the editor again or ctrl+c to abort change\n";

/// `program ARGS` on a terminal whose editor (`name`) writes `first`, then, after the prompt
/// and enter, `good`: asserts that it succeeded with the prompt once and two editor runs, and
/// returns its standard error.
fn reopened_once(
    m: &Member,
    program: &str,
    args: &[&str],
    name: &str,
    first: &str,
    good: &str,
) -> String {
    let editor = scripted_editor(m, name, &[first, good]);
    let out = on_terminal(m, program, args, &editor, ENTER_THEN_EOF);
    let (success, stdout, stderr) = text(&out);
    assert!(success, "{program} {args:?}: {stderr}");
    assert_eq!(stdout, REOPEN, "{program} {args:?}");
    assert_eq!(editor_runs(m, name), "2\n", "{program} {args:?}");
    stderr
}

/// Enter, then the end of input: a session that needs one more prompt than planned ends
/// instead of waiting.
const ENTER_THEN_EOF: &str = "\n\x04";

#[tokio::test]
async fn a_bad_edit_reopens_the_editor_as_in_lxc() {
    let net = Net::lease();
    let m = standalone(&net);
    ok(&rxc(&m, &["profile", "create", "p1"]));
    let bad_yaml = "config:\n  user.a: [\n";
    let refused = "config:\n  nonsense.key: \"1\"\n";
    for program in ["rxc", LXC] {
        eprintln!("{program}: YAML that does not parse, then a good edit, with enter between");
        let name = format!("{}-yaml", program.replace('/', "_"));
        let good = format!("description: by {name}\nconfig:\n  user.a: \"1\"\n");
        let stderr = reopened_once(
            &m,
            program,
            &["profile", "edit", "p1"],
            &name,
            bad_yaml,
            &good,
        );
        assert!(
            stderr.starts_with("Config parsing error: yaml: line ") && stderr.ends_with('\n'),
            "{program}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{program}: {stderr}");
        let shown = ok(&rxc(&m, &["profile", "show", "p1"]));
        assert!(
            shown.contains(&format!("description: by {name}")),
            "{shown}"
        );

        eprintln!("{program}: an edit the server refuses, then a good one");
        let name = format!("{}-refused", program.replace('/', "_"));
        let good = format!("description: by {name}\n");
        let stderr = reopened_once(
            &m,
            program,
            &["profile", "edit", "p1"],
            &name,
            refused,
            &good,
        );
        assert!(
            stderr.starts_with("Config parsing error: ") && stderr.contains("nonsense.key"),
            "{program}: {stderr}"
        );
        let shown = ok(&rxc(&m, &["profile", "show", "p1"]));
        assert!(
            shown.contains(&format!("description: by {name}")),
            "{shown}"
        );

        eprintln!("{program}: the end of input at the prompt abandons the change");
        let name = format!("{}-eof", program.replace('/', "_"));
        let editor = scripted_editor(&m, &name, &[bad_yaml]);
        let out = on_terminal(&m, program, &["profile", "edit", "p1"], &editor, "\x04");
        let (success, stdout, stderr) = text(&out);
        assert!(!success, "{program}: {stdout}");
        assert_eq!(stdout, REOPEN, "{program}");
        assert!(stderr.ends_with("Error: EOF\n"), "{program}: {stderr}");
        assert_eq!(editor_runs(&m, &name), "1\n");
    }

    eprintln!("the other edit commands reopen the editor too");
    let fp = rxd_testkit::trusted_fingerprints(&m.client()).await[0].clone();
    let edited = |show: &[&str]| {
        let current = ok(&rxc(&m, show));
        let good = current.replace("description: \"\"", "description: edited");
        assert_ne!(good, current, "{current}");
        good
    };
    let config = ok(&rxc(&m, &["config", "show"]))
        .replace("config:", "config:\n  images.auto_update_interval: \"7\"");
    for (what, args, good) in [
        (
            "cluster",
            vec!["cluster", "edit", "node1"],
            edited(&["cluster", "show", "node1"]),
        ),
        ("config", vec!["config", "edit"], config),
        (
            "trust",
            vec!["config", "trust", "edit", fp.as_str()],
            ok(&rxc(&m, &["config", "trust", "show", &fp])) + "description: edited\n",
        ),
        (
            "storage",
            vec!["storage", "edit", "local"],
            edited(&["storage", "show", "local"]),
        ),
    ] {
        reopened_once(&m, "rxc", &args, what, bad_yaml, &good);
    }
    let got = ok(&rxc(&m, &["config", "get", "images.auto_update_interval"]));
    assert_eq!(got, "7\n");
}

#[tokio::test]
async fn a_yaml_error_is_printed_once() {
    let net = Net::lease();
    let m = standalone(&net);
    ok(&rxc(&m, &["profile", "create", "p1"]));
    eprintln!("piped YAML that does not parse: one `Error: yaml: line N` prefix, as lxc");
    for bad in ["config:\n  user.a: [\n", "config: x: y\n", "devices: 3\n"] {
        let ours = fails(&rxc_in(&m, &["profile", "edit", "p1"], bad));
        let theirs = fails(&lxc_in(&m, &["profile", "edit", "p1"], bad));
        assert!(theirs.starts_with("Error: yaml: "), "lxc: {theirs}");
        assert!(ours.starts_with("Error: yaml: line "), "{ours}");
        assert!(!ours.to_lowercase()[7..].contains("error"), "{ours}");
        assert_eq!(ours.lines().count(), 1, "{ours}");
    }
}

/// `rxc ARGS` on `m` with its own client configuration in `conf` (a fresh client, with no
/// remotes and no certificate yet), fed `stdin`.
fn rxc_as(m: &Member, conf: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = m.cmd("rxc");
    cmd.args(args).env("RXC_CONF", conf);
    rxd_testkit::run_bounded(&mut cmd, stdin, std::time::Duration::from_secs(120))
}

/// The member names `cluster list REMOTE: -f json` prints.
fn listed_members(json: &str) -> Vec<String> {
    let list: Vec<serde_json::Value> = serde_json::from_str(json).unwrap();
    list.iter()
        .map(|m| m["server_name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn remote_add_over_https_then_the_cluster_is_listed() {
    let net = Net::lease();
    let members = Member::form(2, &net, &[]).await;
    let a = &members[0];
    let url = format!("https://{}", net.addr(2));
    let token = |name: &str| {
        let out = ok(&rxc(a, &["config", "trust", "add", name, "--quiet"]));
        out.trim().to_string()
    };

    eprintln!("a certificate-add token in place of the address");
    let conf = tempfile::tempdir().unwrap();
    let out = ok(&rxc_as(
        a,
        conf.path(),
        &["remote", "add", "c1", &token("c1")],
        None,
    ));
    assert_eq!(out, "Client certificate now trusted by server: c1\n");
    let list = ok(&rxc_as(
        a,
        conf.path(),
        &["cluster", "list", "c1:", "-f", "json"],
        None,
    ));
    assert_eq!(listed_members(&list), ["node1", "node2"], "{list}");

    eprintln!("a token given at the password prompt, to an https:// address");
    let conf = tempfile::tempdir().unwrap();
    let answer = format!("{}\n", token("c2"));
    let out = ok(&rxc_as(
        a,
        conf.path(),
        &["remote", "add", "c2", &url, "--accept-certificate"],
        Some(&answer),
    ));
    assert!(
        out.starts_with("Admin password (or token) for c2: "),
        "{out}"
    );
    let list = ok(&rxc_as(
        a,
        conf.path(),
        &["cluster", "list", "c2:", "-f", "json"],
        None,
    ));
    assert_eq!(listed_members(&list), ["node1", "node2"], "{list}");

    eprintln!("the trust password (core.trust_password)");
    let conf = tempfile::tempdir().unwrap();
    ok(&rxc_as(
        a,
        conf.path(),
        &[
            "remote",
            "add",
            "c3",
            &url,
            "--accept-certificate",
            "--password",
            "sekret",
        ],
        None,
    ));
    let list = ok(&rxc_as(
        a,
        conf.path(),
        &["cluster", "list", "c3:", "-f", "json"],
        None,
    ));
    assert_eq!(listed_members(&list), ["node1", "node2"], "{list}");

    eprintln!("a wrong password and a used token are refused, and nothing is saved");
    let conf = tempfile::tempdir().unwrap();
    let err = fails(&rxc_as(
        a,
        conf.path(),
        &[
            "remote",
            "add",
            "c4",
            &url,
            "--accept-certificate",
            "--password",
            "wrong",
        ],
        None,
    ));
    assert!(err.ends_with("\nError: not authorized\n"), "{err}");
    let list = ok(&rxc_as(
        a,
        conf.path(),
        &["remote", "list", "-f", "csv"],
        None,
    ));
    assert!(!list.contains("c4"), "{list}");
}

#[tokio::test]
async fn section_3_commands_through_the_real_lxc_on_a_cluster() {
    let net = Net::lease();
    let members = Member::form(2, &net, &[]).await;
    let a = &members[0];
    ok(&lxc(a, &["remote", "list"]));

    eprintln!("lxc cluster set/get/unset");
    ok(&lxc(a, &["cluster", "set", "node2", "user.rack", "r1"]));
    let got = ok(&same_as_lxc(
        a,
        &["cluster", "get", "node2", "user.rack"],
        None,
    ));
    assert_eq!(got, "r1\n");
    ok(&lxc(a, &["cluster", "unset", "node2", "user.rack"]));
    let err = fails(&same_as_lxc(
        a,
        &["cluster", "get", "node2", "user.rack"],
        None,
    ));
    assert_eq!(
        err,
        "Error: The key \"user.rack\" does not exist on cluster member \"node2\"\n"
    );

    eprintln!("lxc cluster edit from stdin");
    let shown = ok(&same_as_lxc(a, &["cluster", "show", "node2"], None));
    let edited = shown.replace("description: \"\"", "description: edited by lxc");
    assert_ne!(edited, shown);
    ok(&lxc_in(a, &["cluster", "edit", "node2"], &edited));
    let shown = ok(&rxc(a, &["cluster", "show", "node2"]));
    assert!(shown.contains("description: edited by lxc"), "{shown}");

    eprintln!("lxc cluster role add/remove");
    ok(&lxc(a, &["cluster", "role", "add", "node2", "event-hub"]));
    assert!(ok(&rxc(a, &["cluster", "show", "node2"])).contains("- event-hub"));
    let err = fails(&same_as_lxc(
        a,
        &["cluster", "role", "add", "node2", "event-hub"],
        None,
    ));
    assert_eq!(
        err,
        "Error: Member \"node2\" already has role \"event-hub\"\n"
    );
    ok(&lxc(
        a,
        &["cluster", "role", "remove", "node2", "event-hub"],
    ));
    assert!(!ok(&rxc(a, &["cluster", "show", "node2"])).contains("event-hub"));

    eprintln!("lxc cluster evacuate/restore");
    ok(&lxc(a, &["cluster", "evacuate", "node2", "--force"]));
    let list = ok(&rxc(a, &["cluster", "list", "-f", "csv"]));
    assert!(list.contains("EVACUATED"), "{list}");
    ok(&lxc(a, &["cluster", "restore", "node2", "--force"]));
    let list = ok(&rxc(a, &["cluster", "list", "-f", "csv"]));
    assert!(!list.contains("EVACUATED"), "{list}");

    eprintln!("lxc config show/get/set/unset with --target act on that member");
    let addr2 = format!("{}\n", net.addr(2));
    let get2 = ["config", "get", "core.https_address", "--target", "node2"];
    assert_eq!(ok(&same_as_lxc(a, &get2, None)), addr2);
    let show = ok(&same_as_lxc(
        a,
        &["config", "show", "--target", "node2"],
        None,
    ));
    assert!(show.contains(&net.addr(2)), "{show}");
    let set2 = [
        "config",
        "set",
        "core.https_address",
        &net.addr(2),
        "--target",
        "node2",
    ];
    ok(&lxc(a, &set2));
    assert_eq!(ok(&same_as_lxc(a, &get2, None)), addr2);
    let get1 = ["config", "get", "core.https_address", "--target", "node1"];
    assert_eq!(ok(&rxc(a, &get1)), format!("{}\n", net.addr(1)));
    // Unsetting core.https_address would close node2's only listener, as it closes LXD 5.0's
    // (its cluster listener is closed while the network one covers it); the member key that
    // stays reachable to unset is refused by both alike.
    let unset = [
        "config",
        "unset",
        "cluster.https_address",
        "--target",
        "node2",
    ];
    let err = fails(&same_as_lxc(a, &unset, None));
    assert_eq!(
        err,
        "Error: Changing cluster.https_address is currently not supported\n"
    );

    eprintln!("lxc config edit from stdin");
    let edited = ok(&lxc(a, &["config", "show"]))
        .replace("config:", "config:\n  images.auto_update_interval: \"9\"");
    ok(&lxc_in(a, &["config", "edit"], &edited));
    let got = ok(&same_as_lxc(
        a,
        &["config", "get", "images.auto_update_interval"],
        None,
    ));
    assert_eq!(got, "9\n");

    eprintln!("lxc storage get");
    ok(&lxc(a, &["storage", "set", "local", "user.rack", "r1"]));
    let got = ok(&same_as_lxc(
        a,
        &["storage", "get", "local", "user.rack"],
        None,
    ));
    assert_eq!(got, "r1\n");

    eprintln!("lxc profile get/set/unset and profile device add/get/set/unset/list/show/remove");
    ok(&lxc(a, &["profile", "create", "p1"]));
    ok(&lxc(a, &["profile", "set", "p1", "user.a", "1"]));
    ok(&lxc(a, &["profile", "set", "p1", "user.b=2"]));
    assert_eq!(
        ok(&same_as_lxc(a, &["profile", "get", "p1", "user.b"], None)),
        "2\n"
    );
    ok(&lxc(a, &["profile", "unset", "p1", "user.a"]));
    assert_eq!(
        ok(&same_as_lxc(a, &["profile", "get", "p1", "user.a"], None)),
        "\n"
    );
    let add = [
        "profile",
        "device",
        "add",
        "p1",
        "data",
        "disk",
        "path=/data",
        "source=/srv",
    ];
    let out = ok(&lxc(a, &add));
    assert_eq!(out, "Device data added to p1\n");
    ok(&lxc(
        a,
        &["profile", "device", "set", "p1", "data", "readonly", "true"],
    ));
    let got = ok(&same_as_lxc(
        a,
        &["profile", "device", "get", "p1", "data", "readonly"],
        None,
    ));
    assert_eq!(got, "true\n");
    // lxc 5.0 unsets a device key by setting it empty, and LXD keeps the empty value.
    ok(&lxc(
        a,
        &["profile", "device", "unset", "p1", "data", "readonly"],
    ));
    let got = ok(&same_as_lxc(
        a,
        &["profile", "device", "get", "p1", "data", "readonly"],
        None,
    ));
    assert_eq!(got, "\n");
    let list = ok(&same_as_lxc(a, &["profile", "device", "list", "p1"], None));
    assert_eq!(list, "data\n");
    let show = ok(&same_as_lxc(a, &["profile", "device", "show", "p1"], None));
    assert!(show.contains("path: /data"), "{show}");
    let out = ok(&lxc(a, &["profile", "device", "remove", "p1", "data"]));
    assert_eq!(out, "Device data removed from p1\n");
    let list = ok(&same_as_lxc(a, &["profile", "device", "list", "p1"], None));
    assert_eq!(list, "\n");

    eprintln!("lxc remote add (trust password), rename and set-url");
    let url1 = format!("https://{}", net.addr(1));
    ok(&lxc(
        a,
        &[
            "remote",
            "add",
            "r1",
            &url1,
            "--accept-certificate",
            "--password",
            "sekret",
        ],
    ));
    ok(&lxc(a, &["remote", "rename", "r1", "r2"]));
    let url2 = format!("https://{}", net.addr(2));
    ok(&lxc(a, &["remote", "set-url", "r2", &url2]));
    let list = ok(&lxc(a, &["remote", "list", "-f", "csv"]));
    assert!(list.contains(&format!("r2,{url2},")), "{list}");
    let list = ok(&lxc(a, &["cluster", "list", "r2:", "-f", "json"]));
    assert_eq!(listed_members(&list), ["node1", "node2"], "{list}");
}
