//! The network the members run on: one network namespace per member slot, each with a veth
//! into a bridge that lives in a hub namespace, so faults between members never touch the root
//! namespace. Partitions and loss are nftables rules in a member's namespace (table
//! `inet rxdfault`); slow links are a `tbf` queue on its interface. Without root there is no
//! network: members run on 127.0.0.0/8 and only process faults apply.

use std::process::Command;

use anyhow::{bail, Context, Result};

/// Every namespace this suite makes starts with this, followed by the run id.
pub const NS_PREFIX: &str = "rxdf-";

/// Runs a command and fails with its output when it exits non-zero.
pub fn sh(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `program args` inside namespace `ns`.
pub fn in_ns(ns: &str, program: &str, args: &[&str]) -> Result<String> {
    let mut all = vec!["netns", "exec", ns, program];
    all.extend_from_slice(args);
    sh("ip", &all)
}

/// Whether this process can make network namespaces (root, with `ip` and `nft`).
pub fn available() -> bool {
    nix::unistd::geteuid().is_root()
        && Command::new("nft")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        && Command::new("ip")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
}

/// Removes every namespace a previous run of the suite left, killing what still runs in it.
/// A namespace whose run belongs to another live process (a suite running beside this one)
/// is left alone: each run records its process in [`owners_dir`] when it makes its network.
pub fn sweep() -> Result<()> {
    let list = sh("ip", &["netns", "list"])?;
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(run) = run_of(name) else {
            continue;
        };
        if owned_by_another_live_process(run) {
            continue;
        }
        kill_inside(name);
        let _ = sh("ip", &["netns", "delete", name]);
        let _ = std::fs::remove_file(owners_dir().join(run));
    }
    Ok(())
}

/// Where each run records the process that made its namespaces (one file per run id).
fn owners_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("rxd-fault-netns")
}

/// The run id of one of this suite's namespaces (`rxdf-<run>-hub`, `rxdf-<run>-m<i>`).
fn run_of(ns: &str) -> Option<&str> {
    let rest = ns.strip_prefix(NS_PREFIX)?;
    let (run, slot) = rest.rsplit_once('-')?;
    let is_slot = slot == "hub"
        || slot
            .strip_prefix('m')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    is_slot.then_some(run)
}

fn owned_by_another_live_process(run: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(owners_dir().join(run)) else {
        return false;
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return false;
    };
    pid != std::process::id() as i32
        && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

fn kill_inside(ns: &str) {
    if let Ok(pids) = sh("ip", &["netns", "pids", ns]) {
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// The namespaces of one run.
pub struct Net {
    run: String,
    hub: String,
    slots: usize,
}

impl Net {
    /// Makes the hub namespace with its bridge and one namespace per slot, wired to it.
    pub fn create(run: &str, slots: usize) -> Result<Net> {
        let net = Net {
            run: run.to_string(),
            hub: format!("{NS_PREFIX}{run}-hub"),
            slots,
        };
        std::fs::create_dir_all(owners_dir())?;
        std::fs::write(owners_dir().join(run), std::process::id().to_string())?;
        sh("ip", &["netns", "add", &net.hub])?;
        in_ns(&net.hub, "ip", &["link", "set", "lo", "up"])?;
        in_ns(&net.hub, "ip", &["link", "add", "br0", "type", "bridge"])?;
        in_ns(&net.hub, "ip", &["link", "set", "br0", "up"])?;
        for i in 0..slots {
            let ns = net.ns(i);
            sh("ip", &["netns", "add", &ns])?;
            in_ns(&ns, "ip", &["link", "set", "lo", "up"])?;
            let outside = format!("s{i}");
            in_ns(
                &net.hub,
                "ip",
                &[
                    "link", "add", &outside, "type", "veth", "peer", "name", "eth0", "netns", &ns,
                ],
            )?;
            in_ns(&net.hub, "ip", &["link", "set", &outside, "master", "br0"])?;
            in_ns(&net.hub, "ip", &["link", "set", &outside, "up"])?;
            in_ns(
                &ns,
                "ip",
                &["addr", "add", &format!("{}/24", Net::ip(i)), "dev", "eth0"],
            )?;
            in_ns(&ns, "ip", &["link", "set", "eth0", "up"])?;
        }
        Ok(net)
    }

    /// The namespace of slot `i`.
    pub fn ns(&self, i: usize) -> String {
        format!("{NS_PREFIX}{}-m{i}", self.run)
    }

    /// The address of slot `i` inside its namespace (private to this run's namespaces).
    pub fn ip(i: usize) -> String {
        format!("10.231.0.{}", i + 1)
    }

    /// Drops traffic from `from` arriving at `at` (both slot indexes): a one-way cut.
    pub fn drop_from(&self, at: usize, from: usize) -> Result<()> {
        self.input_rule(at, &["ip", "saddr", &Net::ip(from), "drop"])
    }

    /// Drops a share of every packet slot `at` receives, `percent` in 1..100.
    pub fn lose(&self, at: usize, percent: u32) -> Result<()> {
        let percent = percent.to_string();
        self.input_rule(
            at,
            &[
                "iifname", "eth0", "numgen", "random", "mod", "100", "<", &percent, "drop",
            ],
        )
    }

    /// Appends `rule` to the input chain of slot `at`'s `inet rxdfault` table.
    fn input_rule(&self, at: usize, rule: &[&str]) -> Result<()> {
        self.ensure_table(at)?;
        let mut args = vec!["add", "rule", "inet", "rxdfault", "input"];
        args.extend_from_slice(rule);
        in_ns(&self.ns(at), "nft", &args)?;
        Ok(())
    }

    /// Slows slot `at`'s egress to `kbit` kbit/s with a token bucket.
    pub fn slow(&self, at: usize, kbit: u32) -> Result<()> {
        in_ns(
            &self.ns(at),
            "tc",
            &[
                "qdisc",
                "replace",
                "dev",
                "eth0",
                "root",
                "tbf",
                "rate",
                &format!("{kbit}kbit"),
                "burst",
                "32kbit",
                "latency",
                "400ms",
            ],
        )?;
        Ok(())
    }

    fn ensure_table(&self, at: usize) -> Result<()> {
        let ns = self.ns(at);
        in_ns(&ns, "nft", &["add", "table", "inet", "rxdfault"])?;
        in_ns(
            &ns,
            "nft",
            &[
                "add",
                "chain",
                "inet",
                "rxdfault",
                "input",
                "{ type filter hook input priority 0 ; }",
            ],
        )?;
        Ok(())
    }

    /// Removes every rule and queue from every slot.
    pub fn heal(&self) -> Result<()> {
        for i in 0..self.slots {
            let ns = self.ns(i);
            let _ = in_ns(&ns, "nft", &["delete", "table", "inet", "rxdfault"]);
            let _ = in_ns(&ns, "tc", &["qdisc", "del", "dev", "eth0", "root"]);
        }
        Ok(())
    }

    /// Deletes this run's namespaces, killing anything still inside.
    pub fn destroy(&self) {
        for i in 0..self.slots {
            kill_inside(&self.ns(i));
            let _ = sh("ip", &["netns", "delete", &self.ns(i)]);
        }
        kill_inside(&self.hub);
        let _ = sh("ip", &["netns", "delete", &self.hub]);
        let _ = std::fs::remove_file(owners_dir().join(&self.run));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_of_a_namespace_is_read_back_from_its_name() {
        let run = "ab12cd-sets-kill+pause-s7";
        assert_eq!(run_of(&format!("{NS_PREFIX}{run}-hub")), Some(run));
        assert_eq!(run_of(&format!("{NS_PREFIX}{run}-m12")), Some(run));
        assert_eq!(run_of(&format!("{NS_PREFIX}{run}-mx")), None);
        assert_eq!(run_of("other-ns"), None);
    }

    #[test]
    fn a_run_of_another_live_process_is_left_alone() {
        std::fs::create_dir_all(owners_dir()).unwrap();
        let mine = format!("own-{}", std::process::id());
        std::fs::write(owners_dir().join(&mine), std::process::id().to_string()).unwrap();
        assert!(
            !owned_by_another_live_process(&mine),
            "this process's own runs are swept"
        );
        // PID 1 is always alive and never this test.
        let other = format!("other-{}", std::process::id());
        std::fs::write(owners_dir().join(&other), "1").unwrap();
        assert!(owned_by_another_live_process(&other));
        assert!(!owned_by_another_live_process("no-such-run"));
        let _ = std::fs::remove_file(owners_dir().join(mine));
        let _ = std::fs::remove_file(owners_dir().join(other));
    }
}
