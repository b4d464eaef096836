//! Issue 13: the Debian package. `scripts/build-deb.sh` packs the debug build the tests run
//! (the release package is the same script over `target/release`); the package is unpacked
//! into a throwaway root with `dpkg -x`, every file is checked with its mode and owner, the
//! units with `systemd-analyze verify`, and the unpacked `rxd` is started as systemd would:
//! `Type=notify` (READY=1 once the API answers, STOPPING=1 on `rxd shutdown`) and socket
//! activation of its unix socket (`systemd-socket-activate`, as `rxd.socket`).

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long any one command of this test may take.
const LIMIT: Duration = Duration::from_secs(120);

fn run(cmd: &mut Command) -> String {
    let out = rxd_testkit::run_bounded(cmd, None, LIMIT);
    rxd_testkit::ok(&out)
}

/// Builds the package into `out` and answers its path.
fn build(out: &Path) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-deb.sh");
    let bin = rxd_testkit::bin_dir();
    let printed = run(Command::new("bash").arg(script).args([
        "--binaries",
        &bin.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--uncompressed",
    ]));
    PathBuf::from(printed.trim())
}

/// A process this test started, killed by PID when dropped.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The messages a daemon sends to `NOTIFY_SOCKET`, received on `socket` within `limit`.
fn notified(socket: &UnixDatagram, want: &str, limit: Duration) -> String {
    socket.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no {want} from rxd within {limit:?}: {e}"));
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// The unpacked `rxc` reads the server from the daemon on `dir`; then `rxd shutdown` stops it.
fn answers_then_stops(rxd: &Path, rxc: &Path, dir: &Path) {
    let server = run(Command::new(rxc)
        .env("RXD_DIR", dir)
        .args(["query", "/1.0"]));
    assert!(server.contains("\"api_status\""), "{server}");
    run(Command::new(rxd)
        .env("RXD_DIR", dir)
        .args(["shutdown", "--timeout", "60"]));
}

#[test]
fn the_package_holds_every_file_and_its_daemon_starts_as_systemd_starts_it() {
    let work = tempfile::tempdir().unwrap();
    let deb = build(&work.path().join("debian"));
    let name = deb.file_name().unwrap().to_string_lossy().into_owned();
    let arch = run(Command::new("dpkg").arg("--print-architecture"));
    assert_eq!(name, format!("rxd_0.1.0_{}.deb", arch.trim()));

    eprintln!("the control fields");
    let info = run(Command::new("dpkg-deb").arg("--info").arg(&deb));
    for field in [
        "Package: rxd",
        "Version: 0.1.0",
        "Depends: libc6 (>= 2.34), dnsmasq-base, nftables, iproute2, adduser",
        "Recommends: btrfs-progs",
    ] {
        assert!(info.contains(field), "{field} in:\n{info}");
    }
    for script in ["postinst", "prerm", "postrm"] {
        assert!(info.contains(script), "{script} in:\n{info}");
    }

    eprintln!("every file, its mode and owner");
    let listing = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    let files: BTreeMap<String, (String, String)> = listing
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let path = f[5].trim_start_matches('.').to_string();
            (path, (f[0].to_string(), f[1].to_string()))
        })
        .collect();
    let mut expected = vec![
        ("/usr/bin/rxd", "-rwxr-xr-x"),
        ("/usr/bin/rxc", "-rwxr-xr-x"),
        ("/lib/systemd/system/rxd.service", "-rw-r--r--"),
        ("/lib/systemd/system/rxd.socket", "-rw-r--r--"),
        ("/usr/share/bash-completion/completions/rxc", "-rw-r--r--"),
        ("/usr/share/man/man1/rxd.1.gz", "-rw-r--r--"),
        ("/usr/share/man/man1/rxd-init.1.gz", "-rw-r--r--"),
        ("/usr/share/man/man1/rxd-form.1.gz", "-rw-r--r--"),
        ("/usr/share/man/man1/rxc.1.gz", "-rw-r--r--"),
        ("/usr/share/man/man1/rxc-cluster.1.gz", "-rw-r--r--"),
        ("/usr/share/doc/rxd/README.md", "-rw-r--r--"),
        ("/var/lib/rxd/", "drwx--x--x"),
    ];
    expected.sort();
    for (path, mode) in &expected {
        let got = files
            .get(*path)
            .unwrap_or_else(|| panic!("{path} in:\n{listing}"));
        assert_eq!(got, &(mode.to_string(), "root/root".to_string()), "{path}");
    }
    for (path, (mode, owner)) in &files {
        assert_eq!(owner, "root/root", "{path}");
        let known = path.ends_with('/')
            || path.starts_with("/usr/share/man/man1/")
            || expected.iter().any(|(p, _)| p == path);
        assert!(
            known,
            "{path} ({mode}) is not a file the package should hold"
        );
    }

    eprintln!("unpacked into a throwaway root; the units verified");
    let root = work.path().join("root");
    run(Command::new("dpkg").arg("-x").arg(&deb).arg(&root));
    let units = root.join("lib/systemd/system");
    let verify = rxd_testkit::run_bounded(
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(units.join("rxd.socket"))
            .arg(units.join("rxd.service")),
        None,
        LIMIT,
    );
    let said = String::from_utf8_lossy(&verify.stderr).into_owned();
    // The units are verified against this host, where the package is not installed: its
    // binaries and manual pages are in the throwaway root instead (checked above).
    let complaints: Vec<&str> = said
        .lines()
        .filter(|l| {
            !l.contains("Command 'man ")
                && !l.contains("Command /usr/bin/rxd is not executable")
                && !l.trim().is_empty()
        })
        .collect();
    assert!(complaints.is_empty(), "systemd-analyze verify:\n{said}");
    let service = std::fs::read_to_string(units.join("rxd.service")).unwrap();
    for line in [
        "Type=notify",
        "ExecStart=/usr/bin/rxd",
        "ExecStop=/usr/bin/rxd shutdown",
        "Restart=on-failure",
        "LimitNOFILE=",
    ] {
        assert!(service.contains(line), "{line} in rxd.service");
    }
    let control = work.path().join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    for script in ["postinst", "prerm", "postrm"] {
        run(Command::new("sh").arg("-n").arg(control.join(script)));
    }
    // It starts no cluster by itself, nor the daemon: only its socket.
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    for line in postinst
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
    {
        for never in [
            "rxd init",
            "rxd form",
            "rxd join",
            "/usr/bin/rxd",
            "start rxd.service",
        ] {
            assert!(!line.contains(never), "postinst: {line}");
        }
    }
    assert!(postinst.contains("systemctl start rxd.socket"));

    eprintln!("the unpacked rxd under Type=notify: READY once it answers, STOPPING on shutdown");
    let rxd = root.join("usr/bin/rxd");
    let rxc = root.join("usr/bin/rxc");
    let dir = work.path().join("data");
    let notify_path = work.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let _daemon = Started(
        Command::new(&rxd)
            .env("RXD_DIR", &dir)
            .env("NOTIFY_SOCKET", &notify_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert_eq!(notified(&notify, "READY=1", LIMIT).trim(), "READY=1");
    // Ready means answering: no waiting.
    answers_then_stops(&rxd, &rxc, &dir);
    assert_eq!(notified(&notify, "STOPPING=1", LIMIT).trim(), "STOPPING=1");
    assert!(
        !dir.join("unix.socket").exists(),
        "its own socket is removed"
    );

    eprintln!("socket activation: the first client starts rxd on the socket systemd holds");
    let socket = dir.join("unix.socket");
    let _activator = Started(
        Command::new("systemd-socket-activate")
            .arg("--listen")
            .arg(&socket)
            .arg("-E")
            .arg(format!("RXD_DIR={}", dir.display()))
            .arg(&rxd)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let listening = std::time::Instant::now();
    while !socket.exists() {
        assert!(
            listening.elapsed() < LIMIT,
            "systemd-socket-activate never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    answers_then_stops(&rxd, &rxc, &dir);
    assert!(
        socket.exists(),
        "systemd's socket stays for the next activation"
    );
}
