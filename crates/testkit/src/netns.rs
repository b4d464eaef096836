//! Members in network namespaces, for tests that change interfaces, routes and the firewall:
//! every `rxd` runs inside a namespace the test makes, so the host's own are never touched.
//! Needs root and `ip netns`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::{bin, bootstrap_preseed, join_preseed, join_token_via, ok};

/// A name no other test process uses: `prefix`, then the pid and clock in hex.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}{:x}{:x}",
        std::process::id() % 0xfff,
        nanos % 0xfffff
    )
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"))
}

fn must(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace owned by the test; on drop every process in it is killed by PID and
/// the namespace is deleted, also when the test failed.
pub struct Netns {
    /// The namespace's name, as `ip netns` knows it.
    pub name: String,
}

impl Netns {
    /// Makes a namespace with its loopback up.
    pub fn create() -> Netns {
        let name = unique("rxdtest-");
        must("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Runs `program args` inside the namespace.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", &self.name, program];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Runs `ip args` inside the namespace and returns its output; the test fails if it fails.
    pub fn ip(&self, args: &[&str]) -> String {
        let out = self.exec("ip", args);
        assert!(
            out.status.success(),
            "ip {args:?} in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The namespace's nftables ruleset.
    pub fn nft(&self) -> String {
        String::from_utf8_lossy(&self.exec("nft", &["list", "ruleset"]).stdout).into_owned()
    }

    /// Interface names in the namespace.
    pub fn links(&self) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&self.ip(&["-j", "link"])).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|l| l["ifname"].as_str().unwrap().to_string())
            .collect()
    }

    /// The addresses of `dev`, as `addr/prefix`.
    pub fn addrs(&self, dev: &str) -> Vec<String> {
        let v: serde_json::Value =
            serde_json::from_str(&self.ip(&["-j", "addr", "show", "dev", dev])).unwrap();
        v[0]["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["scope"] == "global")
            .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
            .collect()
    }

    /// The processes running in the namespace.
    pub fn pids(&self) -> Vec<i32> {
        String::from_utf8_lossy(&run("ip", &["netns", "pids", &self.name]).stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for pid in self.pids() {
            let _ = run("kill", &["-9", &pid.to_string()]);
        }
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}

/// One rxd running inside its own namespace, with its own data directory.
pub struct NsMember {
    child: std::sync::Mutex<Option<Child>>,
    /// Its data directory.
    pub dir: PathBuf,
    /// Its namespace; dropped after the daemon, whose processes die with the namespace's.
    pub ns: Netns,
}

impl NsMember {
    /// Starts `rxd` in a new namespace and waits until it is ready.
    pub fn start() -> NsMember {
        NsMember::start_with_env(&[])
    }

    /// [`NsMember::start`] with `env` set for the daemon (a failpoint, say).
    pub fn start_with_env(env: &[(&str, &str)]) -> NsMember {
        let ns = Netns::create();
        let dir = std::env::temp_dir().join(unique("rxd-net-"));
        std::fs::create_dir_all(&dir).unwrap();
        let m = NsMember {
            child: Default::default(),
            dir,
            ns,
        };
        m.spawn(env);
        m
    }

    /// Starts the daemon in the member's namespace and directory, its standard error added to
    /// the log.
    fn launch(&self, env: &[(&str, &str)]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("daemon.stderr"))
            .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns.name])
            .arg(bin("rxd"))
            .arg("--dir")
            .arg(&self.dir)
            .arg("--verbose")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("rxd starts");
        *self.child.lock().unwrap() = Some(child);
    }

    /// [`NsMember::launch`], then waits until the daemon is ready.
    fn spawn(&self, env: &[(&str, &str)]) {
        self.launch(env);
        let out = self.cmd("rxd", &["waitready", "--timeout", "30"], None);
        assert!(
            out.status.success(),
            "rxd did not become ready: {}",
            self.log()
        );
    }

    /// Waits for the daemon to exit (after `rxd shutdown`).
    pub fn wait_exit(&self) {
        let child = self.child.lock().unwrap().take();
        if let Some(mut c) = child {
            let _ = c.wait();
        }
    }

    /// SIGKILLs the daemon (as the fault suite's kill nemesis does) and reaps it.
    pub fn kill(&self) {
        if let Some(c) = self.child.lock().unwrap().as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the daemon again once it has exited (a failpoint ended it, say), without the
    /// failpoints it had, and waits until it is ready.
    pub fn restart(&self) {
        self.wait_exit();
        self.spawn(&[]);
    }

    /// Starts the daemon again once it has exited, as a supervisor would, without waiting
    /// for it to be ready (a member of a cluster it cannot reach is not).
    pub fn start_again(&self) {
        self.wait_exit();
        self.launch(&[]);
    }

    /// The daemon's standard error so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.stderr")).unwrap_or_default()
    }

    /// Runs `rxd` or `rxc` inside the namespace against this member.
    pub fn cmd(&self, program: &str, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_in(&bin(program), args, stdin)
    }

    /// Runs the program at `path` inside the namespace, with this member as `RXD_DIR` and
    /// `LXD_DIR` and its data directory as `HOME` (so `lxc` keeps its configuration there).
    pub fn run_in(&self, path: &Path, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns.name])
            .arg(path)
            .args(args)
            .env("RXD_DIR", &self.dir)
            .env("LXD_DIR", &self.dir)
            .env("RXC_CONF", self.dir.join("rxc-conf"))
            .env("HOME", &self.dir)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Runs `rxd` or `rxc` inside the namespace against this member, killed by its PID after
    /// `limit`.
    pub fn bounded(
        &self,
        program: &str,
        args: &[&str],
        stdin: Option<&str>,
        limit: std::time::Duration,
    ) -> Output {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns.name])
            .arg(bin(program))
            .args(args)
            .env("RXD_DIR", &self.dir)
            .env("LXD_DIR", &self.dir)
            .env("RXC_CONF", self.dir.join("rxc-conf"))
            .env("HOME", &self.dir);
        crate::run_bounded(&mut cmd, stdin, limit)
    }

    /// Runs `rxc args` against this member.
    pub fn rxc(&self, args: &[&str]) -> Output {
        self.cmd("rxc", args, None)
    }

    /// A client on this member's unix socket.
    pub fn client(&self) -> rxd_client::Client {
        rxd_client::Client::unix(self.dir.join("unix.socket"))
    }

    /// The pid in network `net`'s dnsmasq pid file.
    pub fn dnsmasq_pid(&self, net: &str) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("networks").join(net).join("dnsmasq.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for NsMember {
    fn drop(&mut self) {
        let child = self
            .child
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut c) = child {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether process `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// Connects member `i` (0-based) to the hub bridge as 192.0.2.<i+1>.
pub fn attach(hub: &Netns, m: &NsMember, i: usize) {
    attach_to(hub, "hub0", m, i, &format!("192.0.2.{}/24", i + 1));
}

/// Connects member `i` (0-based) to the hub's bridge `bridge` as `cidr` on its `eth0`.
fn attach_to(hub: &Netns, bridge: &str, m: &NsMember, i: usize, cidr: &str) {
    let port = format!("vh{i}");
    hub.ip(&[
        "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &m.ns.name,
    ]);
    hub.ip(&["link", "set", &port, "master", bridge, "up"]);
    m.ns.ip(&["addr", "add", cidr, "dev", "eth0"]);
    m.ns.ip(&["link", "set", "eth0", "up"]);
}

/// Two members on two subnets with a router between them, as on a LAN of routed segments:
/// the first on 192.0.2.0/24 (hub0, router 192.0.2.254), the second on 198.51.100.0/24 (hub1,
/// router 198.51.100.254), each routing the other subnet through the hub, which forwards
/// unicast and, as routers do, no multicast DNS.
pub fn routed_pair() -> (Netns, Vec<NsMember>) {
    let hub = Netns::create();
    let sides = [
        (
            "hub0",
            "192.0.2.254/24",
            "192.0.2.1/24",
            "198.51.100.0/24",
            "192.0.2.254",
        ),
        (
            "hub1",
            "198.51.100.254/24",
            "198.51.100.2/24",
            "192.0.2.0/24",
            "198.51.100.254",
        ),
    ];
    let out = hub.exec("sysctl", &["-qw", "net.ipv4.ip_forward=1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let members: Vec<NsMember> = sides.iter().map(|_| NsMember::start()).collect();
    for (i, (bridge, router, own, other, via)) in sides.iter().enumerate() {
        hub.ip(&["link", "add", bridge, "type", "bridge"]);
        hub.ip(&["addr", "add", router, "dev", bridge]);
        hub.ip(&["link", "set", bridge, "up"]);
        attach_to(&hub, bridge, &members[i], i, own);
        members[i].ns.ip(&["route", "add", other, "via", via]);
    }
    (hub, members)
}

/// Joins member `i` (0-based) to the cluster `leader` leads, by token, as `node<i+1>`.
pub async fn join(leader: &NsMember, m: &NsMember, i: usize, member_config: &str) {
    let token = join_token_via(&leader.client(), &format!("node{}", i + 1)).await;
    let address = format!("192.0.2.{}:8443", i + 1);
    let seed = format!("{}{member_config}", join_preseed(&address, &token, ""));
    ok(&m.cmd("rxd", &["init", "--preseed"], Some(&seed)));
}

/// A cluster of `n` members, each in its own namespace, joined by a bridge in a hub namespace
/// on 192.0.2.0/24.
pub async fn cluster(n: usize) -> (Netns, Vec<NsMember>) {
    let (hub, members) = hub_with(n);
    ok(&members[0].cmd(
        "rxd",
        &["init", "--preseed"],
        Some(&bootstrap_preseed("192.0.2.1:8443", "node1", &[])),
    ));
    for (i, m) in members.iter().enumerate().skip(1) {
        join(&members[0], m, i, "").await;
    }
    (hub, members)
}

/// A hub bridge in its own namespace and `n` members attached to it, not yet clustered.
pub fn hub_with(n: usize) -> (Netns, Vec<NsMember>) {
    hub_with_env(n, &[])
}

/// [`hub_with`], member `i` (0-based) started with the variables `(i, name, value)` name.
pub fn hub_with_env(n: usize, env: &[(usize, &str, &str)]) -> (Netns, Vec<NsMember>) {
    let hub = Netns::create();
    hub.ip(&["link", "add", "hub0", "type", "bridge"]);
    hub.ip(&["link", "set", "hub0", "up"]);
    let members: Vec<NsMember> = (0..n)
        .map(|i| {
            let own: Vec<(&str, &str)> = env
                .iter()
                .filter(|(at, _, _)| *at == i)
                .map(|(_, k, v)| (*k, *v))
                .collect();
            NsMember::start_with_env(&own)
        })
        .collect();
    for (i, m) in members.iter().enumerate() {
        attach(&hub, m, i);
    }
    (hub, members)
}
