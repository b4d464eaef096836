//! Test support: starts real `rxd` processes, each in its own temporary data directory, and
//! stops them by PID when dropped. It owns nothing of the product; tests use it only as a
//! dev-dependency.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

mod load;
mod net;
pub mod netns;
pub use load::{create_profiles, profile_count, profile_name, Bounded, WriteLoad};
pub use net::Net;

/// Where cargo put the workspace's binaries (`target/debug`), found from the test executable.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("a test knows its own path");
    // target/debug/deps/<test> -> target/debug
    exe.parent()
        .and_then(Path::parent)
        .expect("test executables live in target/<profile>/deps")
        .to_path_buf()
}

/// The path of a workspace binary; the test fails with a clear message if it was not built.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` before the tests",
        path.display()
    );
    path
}

/// How long any one command a test runs may take before it is killed.
pub const COMMAND_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// One running `rxd` with its own data directory.
pub struct Member {
    dir: tempfile::TempDir,
    child: Option<Child>,
    env: Vec<(String, String)>,
}

impl Member {
    /// Starts `rxd` in a fresh directory and waits until it answers.
    pub fn start() -> Member {
        Member::start_with_env(&[])
    }

    /// Starts `rxd` with extra environment variables (such as a failpoint).
    pub fn start_with_env(env: &[(&str, &str)]) -> Member {
        let dir = tempfile::Builder::new()
            .prefix("rxd-test-")
            .tempdir()
            .expect("temp dirs can be made");
        let mut m = Member {
            dir,
            child: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        m.spawn();
        m
    }

    /// Whether the daemon process has exited (it crashed or was stopped).
    pub fn has_exited(&mut self) -> bool {
        match self.child.as_mut() {
            None => true,
            Some(c) => c.try_wait().map(|s| s.is_some()).unwrap_or(true),
        }
    }

    /// Forgets the extra environment for the next start.
    pub fn clear_env(&mut self) {
        self.env.clear();
    }

    fn spawn(&mut self) {
        self.spawn_process();
        self.wait_ready();
    }

    fn spawn_process(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.stderr"))
            .expect("the log file can be made");
        let child = Command::new(bin("rxd"))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--verbose")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("rxd starts");
        self.child = Some(child);
    }

    /// Waits until the daemon answers, failing the test after 30 s.
    pub fn wait_ready(&self) {
        let out = self.rxd(&["waitready", "--timeout", "30"]);
        assert!(
            out.status.success(),
            "rxd did not become ready: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the daemon printed on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.stderr")).unwrap_or_default()
    }

    /// A client on the member's unix socket.
    pub fn client(&self) -> rxd_client::Client {
        rxd_client::Client::unix(self.dir.path().join("unix.socket"))
    }

    /// Runs `rxd ARGS` against this member.
    pub fn rxd(&self, args: &[&str]) -> Output {
        self.command("rxd", args, None)
    }

    /// Runs `rxd ARGS` with `stdin` as standard input.
    pub fn rxd_with_input(&self, args: &[&str], stdin: &str) -> Output {
        self.command("rxd", args, Some(stdin))
    }

    /// Runs a workspace binary (`rxd`, `rxc`) or any program with `RXD_DIR` and `LXD_DIR`
    /// pointing at this member.
    pub fn command(&self, program: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.cmd(program);
        cmd.args(args);
        run_bounded(&mut cmd, stdin, COMMAND_LIMIT)
    }

    /// Runs [`Member::command`], asserts that it succeeded (naming its error and this
    /// member's log otherwise) and returns its standard output.
    pub fn succeeds(&self, program: &str, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.command(program, args, stdin);
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}\n{}\ndaemon log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout),
            log_tail(&self.log(), 60)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The command [`Member::command`] runs, before its arguments, for a caller that sets up
    /// its own stdio (a terminal, say) and bounds the run itself.
    pub fn cmd(&self, program: &str) -> Command {
        let path = if program == "rxd" || program == "rxc" {
            bin(program)
        } else {
            PathBuf::from(program)
        };
        let mut cmd = Command::new(path);
        cmd.env("RXD_DIR", self.dir.path())
            .env("LXD_DIR", self.dir.path())
            .env("RXC_CONF", self.dir.path().join("rxc-conf"))
            .env("HOME", self.dir.path());
        cmd
    }

    /// Stops the daemon cleanly and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let out = self.rxd(&["shutdown", "--timeout", "30"]);
            if !out.status.success() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }

    /// Kills the daemon at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the daemon again on the same directory after [`Member::kill`] or
    /// [`Member::stop`].
    pub fn start_again(&mut self) {
        if let Some(mut child) = self.child.take() {
            assert!(
                child.try_wait().ok().flatten().is_some(),
                "the daemon is still running"
            );
        }
        self.spawn();
    }

    /// Starts the daemon again without waiting for it to answer: a clustered member answers
    /// only once its cluster has a leader, so restarting a whole cluster starts every member
    /// first and waits afterwards.
    pub fn launch_again(&mut self) {
        if let Some(mut child) = self.child.take() {
            assert!(
                child.try_wait().ok().flatten().is_some(),
                "the daemon is still running"
            );
        }
        self.spawn_process();
    }

    /// Stops and starts the daemon on the same directory.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The daemon's PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The temp directory goes with the member; a failing test keeps the end of its log.
        if std::thread::panicking() {
            eprintln!(
                "--- last lines of the log of the member in {} ---\n{}",
                self.dir.path().display(),
                log_tail(&self.log(), 40)
            );
        }
    }
}

/// The last `n` lines of `text`.
pub fn log_tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs `cmd` with piped output, feeding it `stdin`, and kills it by its PID if it has not
/// finished within `limit`: external tools (`lxc`, `lxd`, python) never hang a test.
pub fn run_bounded(cmd: &mut Command, stdin: Option<&str>, limit: std::time::Duration) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the program starts");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input.as_bytes())
            .expect("stdin takes the input");
    }
    wait_bounded(child, &format!("{:?}", cmd.get_program()), limit)
}

/// Waits for `child` (started with piped output), `what`, and kills it by its PID if it has
/// not finished within `limit`.
pub fn wait_bounded(child: std::process::Child, what: &str, limit: std::time::Duration) -> Output {
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(limit).is_err() {
            // The child is ours and not reaped until `wait_with_output` returns, so its PID
            // still names it.
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            return true;
        }
        false
    });
    let out = child.wait_with_output().expect("the program finishes");
    let _ = done.send(());
    let killed = watchdog.join().expect("the watchdog does not panic");
    assert!(
        !killed,
        "{what} did not finish within {limit:?}; killed it\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The path of an installed system program (Debian's `lxc`, `lxd`); the test fails with what
/// installs it when it is missing.
pub fn system_tool(name: &str) -> String {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin"] {
        let p = format!("{dir}/{name}");
        if Path::new(&p).exists() {
            return p;
        }
    }
    panic!("{name} is not installed: .ci/run installs Debian's lxd and lxd-client");
}

/// Asserts that a command succeeded and returns its standard output.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts that a command failed and returns its standard error.
pub fn fails(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "command succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The bootstrap preseed most tests use: `address`, trust password `sekret`, a `dir` pool
/// `local`, the default profile's root disk on it, and `extra_config` lines (`key: value`).
pub fn bootstrap_preseed(address: &str, name: &str, extra_config: &[&str]) -> String {
    let extra: String = extra_config.iter().map(|l| format!("  {l}\n")).collect();
    format!(
        "config:\n  core.https_address: {address}\n  core.trust_password: sekret\n{extra}\
storage_pools:\n- name: local\n  driver: dir\n\
profiles:\n- name: default\n  devices:\n    root:\n      path: /\n      pool: local\n      type: disk\n\
cluster:\n  server_name: {name}\n  enabled: true\n"
    )
}

/// A join preseed by token, answering the `local` pool's `source` with `source`.
pub fn join_preseed(address: &str, token: &str, source: &str) -> String {
    format!(
        "cluster:\n  enabled: true\n  server_address: {address}\n  cluster_token: {token}\n  member_config:\n  - entity: storage-pool\n    name: local\n    key: source\n    value: \"{source}\"\n"
    )
}

/// Asks `leader` for a join token for `name` and builds the string users pass around, as
/// `lxc cluster add` does from the operation's metadata.
pub async fn join_token(leader: &Member, name: &str) -> String {
    join_token_via(&leader.client(), name).await
}

/// [`join_token`] through any client of a cluster member.
pub async fn join_token_via(client: &rxd_client::Client, name: &str) -> String {
    try_join_token_via(client, name)
        .await
        .expect("the leader hands out a token")
}

/// [`join_token_via`] that reports a failure instead of failing the test.
pub async fn try_join_token_via(
    client: &rxd_client::Client,
    name: &str,
) -> Result<String, rxd_client::ClientError> {
    let op = client.create_join_token(name).await?;
    let meta = op.metadata.unwrap_or_default();
    let field = |k: &str| meta[k].as_str().unwrap_or_default().to_string();
    Ok(rxd_api::JoinToken {
        server_name: field("serverName"),
        fingerprint: field("fingerprint"),
        addresses: serde_json::from_value(meta["addresses"].clone()).unwrap_or_default(),
        secret: field("secret"),
        expires_at: field("expiresAt"),
    }
    .encode())
}

/// The answer scripted `rxd init` runs give the storage-backend question, which the daemon
/// asks only when it has more than one local driver: `dir`, or nothing at all.
pub async fn backend_answer(client: &rxd_client::Client) -> &'static str {
    let (server, _) = client.server().await.expect("the daemon answers GET /1.0");
    let local = server
        .environment
        .expect("a local client sees the environment")
        .storage_supported_drivers
        .iter()
        .filter(|d| !d.remote)
        .count();
    if local > 1 {
        "dir\n"
    } else {
        ""
    }
}

/// The trust store's fingerprints, sorted, to compare a cluster before and after a change.
pub async fn trusted_fingerprints(client: &rxd_client::Client) -> Vec<String> {
    let mut fps: Vec<String> = client
        .certificates()
        .await
        .expect("the trust store can be listed")
        .into_iter()
        .map(|c| c.fingerprint)
        .collect();
    fps.sort();
    fps
}

/// Waits until `f` holds, polling every 100 ms, and fails the test after `limit`.
pub async fn until<F, Fut>(limit: std::time::Duration, what: &str, f: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while !f().await {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

impl Member {
    /// Sets one server configuration key through `PATCH /1.0`.
    pub async fn set_config(&self, key: &str, value: &str) {
        let put = rxd_api::ServerPut {
            config: serde_json::Map::from_iter([(key.to_string(), value.into())]),
        };
        self.client()
            .patch_server(&put, None)
            .await
            .unwrap_or_else(|e| panic!("setting {key} failed: {e}"));
    }

    /// Bootstraps this member with [`bootstrap_preseed`].
    pub fn bootstrap(&self, address: &str, name: &str, extra_config: &[&str]) {
        ok(&self.rxd_with_input(
            &["init", "--preseed"],
            &bootstrap_preseed(address, name, extra_config),
        ));
    }

    /// Joins this member to `leader`'s cluster as `name` at `address`, by token.
    pub async fn join(&self, leader: &Member, name: &str, address: &str) {
        let token = join_token(leader, name).await;
        ok(&self.rxd_with_input(&["init", "--preseed"], &join_preseed(address, &token, "")));
    }

    /// Starts `n` members and forms a cluster `node1..nodeN` on `net.addr(1..=N)`.
    pub async fn form(n: usize, net: &Net, extra_config: &[&str]) -> Vec<Member> {
        let members: Vec<Member> = (0..n).map(|_| Member::start()).collect();
        members[0].bootstrap(&net.addr(1), "node1", extra_config);
        for (i, m) in members.iter().enumerate().skip(1) {
            let host = u8::try_from(i + 1).expect("a block holds at most 254 members");
            m.join(&members[0], &format!("node{}", i + 1), &net.addr(host))
                .await;
        }
        members
    }
}
