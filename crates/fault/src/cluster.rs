//! The members of one run: a fixed number of slots, each a data directory, an address and (in
//! namespace mode) a network namespace. A slot holds a running `rxd`, a killed or paused one, or
//! nothing (a spare). Processes are started and stopped by PID; nothing here outlives the run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::net::{self, Net};

/// Where Debian puts libfaketime.
const FAKETIME_LIBS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
];

/// Where members listen: namespaces of their own, or loopback addresses in the root namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// One network namespace per slot (needs root); every fault type applies.
    Namespaces,
    /// `127.0.<third>.<slot + 1>`; no network faults.
    Loopback {
        /// The third octet.
        third: u8,
    },
}

/// What a worker needs to reach a slot, shared with the nemesis.
pub struct SlotView {
    /// The slot's unix socket.
    pub socket: PathBuf,
    /// Whether workers send requests to this slot (a member not being removed).
    pub in_rotation: AtomicBool,
}

/// The state of one slot's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    /// No process (a spare slot, or a member removed and stopped).
    Empty,
    /// Running and not stopped.
    Running,
    /// SIGSTOPped.
    Paused,
    /// Killed or stopped by the nemesis; the slot is a member that must come back.
    Down,
}

/// One member slot.
pub struct Slot {
    /// Slot number.
    pub index: usize,
    /// The member's current server name (changes when a slot rejoins after a removal).
    pub name: String,
    generation: u32,
    /// Data directory.
    pub dir: PathBuf,
    /// Cluster address `ip:8443`.
    pub address: String,
    child: Option<Child>,
    /// What the process is doing.
    pub state: ProcState,
    /// Whether the slot is a cluster member (joined and not removed).
    pub member: bool,
    /// PIDs of every process this slot ever ran, for the final sweep.
    pub pids: Vec<u32>,
    /// Exits nobody asked for: (slot, status).
    pub unexpected_exits: Vec<String>,
    /// Whether the data directory is a tmpfs of ours.
    pub tmpfs: bool,
}

/// The slots of a run and how to start `rxd` in them.
pub struct Cluster {
    /// Slots, in order.
    pub slots: Vec<Slot>,
    /// What workers see.
    pub views: Arc<Vec<SlotView>>,
    /// Namespaces, in namespace mode.
    pub net: Option<Net>,
    rxd: PathBuf,
    env: Vec<(String, String)>,
    /// `cluster.offline_threshold` the run sets, seconds.
    pub offline_threshold: u32,
}

impl Cluster {
    /// Prepares `slots` slots under `run_dir` (nothing runs yet).
    pub fn new(
        run_id: &str,
        run_dir: &Path,
        slots: usize,
        mode: &Mode,
        rxd: PathBuf,
        env: Vec<(String, String)>,
    ) -> Result<Cluster> {
        let net = match mode {
            Mode::Namespaces => Some(Net::create(run_id, slots)?),
            Mode::Loopback { .. } => None,
        };
        let mut all = Vec::new();
        let mut views = Vec::new();
        for i in 0..slots {
            let dir = run_dir.join(format!("m{i}"));
            std::fs::create_dir_all(&dir)?;
            let ip = match mode {
                Mode::Namespaces => Net::ip(i),
                Mode::Loopback { third } => format!("127.0.{third}.{}", i + 1),
            };
            views.push(SlotView {
                socket: dir.join("unix.socket"),
                in_rotation: AtomicBool::new(false),
            });
            all.push(Slot {
                index: i,
                name: format!("m{i}"),
                generation: 0,
                dir,
                address: format!("{ip}:8443"),
                child: None,
                state: ProcState::Empty,
                member: false,
                pids: Vec::new(),
                unexpected_exits: Vec::new(),
                tmpfs: false,
            });
        }
        Ok(Cluster {
            slots: all,
            views: Arc::new(views),
            net,
            rxd,
            env,
            offline_threshold: 4,
        })
    }

    /// A client on slot `i`'s unix socket with the suite's request timeout.
    pub fn client(&self, i: usize, timeout: Duration) -> rxd_client::Client {
        rxd_client::Client::unix(&self.views[i].socket).with_timeout(timeout)
    }

    fn command(&self, i: usize, program: &Path) -> Command {
        let mut cmd = match &self.net {
            Some(net) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &net.ns(i)]).arg(program);
                c
            }
            None => Command::new(program),
        };
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RXD_DIR", &self.slots[i].dir)
            .env("LXD_DIR", &self.slots[i].dir)
            .env("HOME", &self.slots[i].dir);
        cmd
    }

    /// Starts `rxd` in slot `i` without waiting for it to answer.
    pub fn launch(&mut self, i: usize) -> Result<()> {
        self.launch_skewed(i, None)
    }

    /// [`Cluster::launch`], with the wall clock moved by `offset` (`faketime`, such as
    /// `+90s`); monotonic time is left alone.
    pub fn launch_skewed(&mut self, i: usize, offset: Option<&str>) -> Result<()> {
        self.reap(i);
        if self.slots[i].child.is_some() {
            bail!("slot {i} still runs a daemon");
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.slots[i].dir.join("daemon.stderr"))?;
        let mut cmd = self.command(i, &self.rxd.clone());
        if let Some(offset) = offset {
            // libfaketime preloaded into rxd itself (its `faketime` wrapper would stand
            // between the PID we signal and the daemon).
            let lib = FAKETIME_LIBS
                .iter()
                .find(|l| Path::new(l).exists())
                .ok_or_else(|| {
                    anyhow!("libfaketime is not installed (apt-get install faketime)")
                })?;
            cmd.env("LD_PRELOAD", lib)
                .env("FAKETIME", offset)
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        cmd.arg("--dir")
            .arg(&self.slots[i].dir)
            .arg("--verbose")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = cmd.spawn().context("rxd starts")?;
        let slot = &mut self.slots[i];
        slot.pids.push(child.id());
        slot.child = Some(child);
        slot.state = ProcState::Running;
        Ok(())
    }

    /// Waits until slot `i` answers on its socket (a member answers once it has a leader).
    pub async fn wait_ready(&self, i: usize, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        let client = self.client(i, Duration::from_secs(2));
        loop {
            if client.server().await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not answer within {} s",
                    self.slots[i].name,
                    limit.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `rxd ARGS` for slot `i` (inside its namespace) with `stdin`.
    pub fn rxd(&self, i: usize, args: &[&str], stdin: &str) -> Result<String> {
        use std::io::Write;
        let mut child = self
            .command(i, &self.rxd)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .ok_or_else(|| anyhow!("stdin is piped"))?
            .write_all(stdin.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "rxd {} on {} failed: {}",
                args.join(" "),
                self.slots[i].name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Bootstraps slot `i` as the first member.
    pub async fn bootstrap(&mut self, i: usize) -> Result<()> {
        self.launch(i)?;
        self.wait_ready(i, Duration::from_secs(30)).await?;
        let seed = format!(
            "config:\n  core.https_address: {}\n  cluster.offline_threshold: {}\ncluster:\n  server_name: {}\n  enabled: true\n",
            self.slots[i].address, self.offline_threshold, self.slots[i].name
        );
        self.rxd(i, &["init", "--preseed"], &seed)?;
        self.slots[i].member = true;
        self.views[i].in_rotation.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Starts a fresh daemon in spare slot `i` and joins it through member `via` by token.
    pub async fn join(&mut self, i: usize, via: usize) -> Result<()> {
        if self.slots[i].generation > 0 || self.slots[i].dir.join("database").exists() {
            // A slot used before starts over with an empty directory and a new name.
            self.stop(i, Duration::from_secs(10)).await;
            let dir = self.slots[i].dir.clone();
            let keep = dir.join("daemon.stderr");
            let log = std::fs::read(&keep).unwrap_or_default();
            std::fs::remove_dir_all(&dir).ok();
            std::fs::create_dir_all(&dir)?;
            std::fs::write(&keep, log)?;
        }
        let slot = &mut self.slots[i];
        slot.generation += 1;
        slot.name = if slot.generation == 1 {
            format!("m{i}")
        } else {
            format!("m{i}-{}", slot.generation)
        };
        let name = slot.name.clone();
        self.launch(i)?;
        self.wait_ready(i, Duration::from_secs(30)).await?;
        let client = self.client(via, Duration::from_secs(10));
        let token = rxd_testkit::try_join_token_via(&client, &name).await?;
        let seed = format!(
            "cluster:\n  enabled: true\n  server_address: {}\n  cluster_token: {token}\n",
            self.slots[i].address
        );
        self.rxd(i, &["init", "--preseed"], &seed)?;
        self.slots[i].member = true;
        self.views[i].in_rotation.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Puts every slot's data directory on a tmpfs of `mib` MiB (for disk-full faults).
    pub fn small_disks(&mut self, mib: u32) -> Result<()> {
        for s in &mut self.slots {
            crate::net::sh(
                "mount",
                &[
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={mib}m"),
                    "tmpfs",
                    &s.dir.to_string_lossy(),
                ],
            )?;
            s.tmpfs = true;
        }
        Ok(())
    }

    /// Fills slot `i`'s disk with a balloon file until the file system refuses more; returns
    /// its size.
    pub fn fill_disk(&mut self, i: usize) -> Result<u64> {
        use std::io::Write;
        if !self.slots[i].tmpfs {
            bail!("disk-full needs the data directories on tmpfs");
        }
        let path = self.slots[i].dir.join("balloon");
        let mut file = std::fs::File::create(&path)?;
        let chunk = vec![0u8; 1 << 20];
        let mut size = 0u64;
        // Whole chunks, then smaller ones, until nothing more fits.
        for piece in [1 << 20, 64 << 10, 4 << 10, 512] {
            while file.write_all(&chunk[..piece]).is_ok() {
                size += piece as u64;
            }
        }
        Ok(size)
    }

    /// Removes slot `i`'s balloon.
    pub fn free_disk(&mut self, i: usize) -> Result<()> {
        match std::fs::remove_file(self.slots[i].dir.join("balloon")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Sends `signal` to slot `i`'s process.
    pub fn signal(&mut self, i: usize, signal: Signal) -> Result<()> {
        let child = self.slots[i]
            .child
            .as_ref()
            .ok_or_else(|| anyhow!("{} has no process", self.slots[i].name))?;
        kill(Pid::from_raw(child.id() as i32), signal)?;
        Ok(())
    }

    /// SIGKILLs slot `i` and waits for the process to be gone.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.slots[i].child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGCONT);
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.slots[i].state != ProcState::Empty {
            self.slots[i].state = ProcState::Down;
        }
    }

    /// SIGTERMs slot `i` (an orderly shutdown) and waits up to `limit`, then SIGKILLs.
    pub async fn stop(&mut self, i: usize, limit: Duration) {
        if let Some(mut child) = self.slots[i].child.take() {
            let pid = Pid::from_raw(child.id() as i32);
            let _ = kill(pid, Signal::SIGCONT);
            let _ = kill(pid, Signal::SIGTERM);
            let deadline = Instant::now() + limit;
            loop {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        if self.slots[i].state != ProcState::Empty {
            self.slots[i].state = ProcState::Down;
        }
    }

    /// Notes a process that exited without being asked to.
    pub fn reap(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        if let Some(child) = slot.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                if slot.state == ProcState::Running || slot.state == ProcState::Paused {
                    slot.unexpected_exits
                        .push(format!("{} exited on its own: {status}", slot.name));
                }
                slot.child = None;
                slot.state = ProcState::Down;
            }
        }
    }

    /// Slots that are members.
    pub fn members(&self) -> Vec<usize> {
        self.slots
            .iter()
            .filter(|s| s.member)
            .map(|s| s.index)
            .collect()
    }

    /// Member slots whose process runs (not paused).
    pub fn running(&mut self) -> Vec<usize> {
        for i in 0..self.slots.len() {
            self.reap(i);
        }
        self.slots
            .iter()
            .filter(|s| s.member && s.state == ProcState::Running)
            .map(|s| s.index)
            .collect()
    }

    /// The slot of the member with this server name.
    pub fn slot_named(&self, name: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.member && s.name == name)
    }

    /// Every PID any slot ran, to kill at the end whatever happened.
    pub fn kill_all(&mut self) {
        for i in 0..self.slots.len() {
            self.kill(i);
            for pid in &self.slots[i].pids {
                let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
            }
        }
        if let Some(net) = &self.net {
            net.destroy();
        }
        for s in &mut self.slots {
            if s.tmpfs {
                // Keep what the member wrote beside the mount point, then unmount.
                let saved = s.dir.with_extension("saved");
                let _ = crate::net::sh(
                    "cp",
                    &["-a", &s.dir.to_string_lossy(), &saved.to_string_lossy()],
                );
                let _ = crate::net::sh("umount", &[&s.dir.to_string_lossy()]);
                s.tmpfs = false;
            }
        }
    }
}

/// Removes what earlier runs may have left: their namespaces and whatever ran in them.
pub fn sweep_leftovers() {
    if net::available() {
        let _ = net::sweep();
    }
}
