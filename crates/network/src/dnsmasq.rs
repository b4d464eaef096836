//! One supervised dnsmasq per bridge, for DHCP and DNS.
//!
//! ```text
//!  start ─> kill a stale one (pid file) ─> spawn ─> pid file written? ──yes──> supervise
//!                                                   └─ exited: its log is the error
//!  supervise: exits unexpectedly ─> restart (at most 5 times in a row)
//!  stop: SIGTERM ─> wait (5 s) ─> SIGKILL
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::NetworkError;

struct Running {
    pid: Arc<AtomicU32>,
    stopping: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

fn running() -> &'static Mutex<BTreeMap<String, Running>> {
    static RUNNING: OnceLock<Mutex<BTreeMap<String, Running>>> = OnceLock::new();
    RUNNING.get_or_init(Default::default)
}

/// The pid file of a network's dnsmasq.
pub fn pid_file(net_dir: &Path) -> PathBuf {
    net_dir.join("dnsmasq.pid")
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Kills a dnsmasq a previous rxd left running on this pid file.
fn kill_stale(net_dir: &Path) {
    let pf = pid_file(net_dir);
    if let Some(pid) = read_pid(&pf) {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let ours = String::from_utf8_lossy(&cmdline).contains(&*pf.to_string_lossy());
        if ours {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    let _ = std::fs::remove_file(pf);
}

async fn spawn_once(
    net_dir: &Path,
    args: &[String],
) -> Result<tokio::process::Child, NetworkError> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(net_dir.join("dnsmasq.log"))
        .map_err(|e| NetworkError::Dnsmasq(format!("Cannot open its log: {e}")))?;
    let mut child = tokio::process::Command::new("dnsmasq")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| NetworkError::Dnsmasq(format!("Cannot start dnsmasq: {e}")))?;
    let pf = pid_file(net_dir);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| NetworkError::Dnsmasq(e.to_string()))?
        {
            let log = std::fs::read_to_string(net_dir.join("dnsmasq.log")).unwrap_or_default();
            let last = log.lines().last().unwrap_or("").trim().to_string();
            return Err(NetworkError::Dnsmasq(format!(
                "dnsmasq exited ({status}): {last}"
            )));
        }
        if read_pid(&pf).is_some() {
            return Ok(child);
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = child.kill().await;
            return Err(NetworkError::Dnsmasq(
                "dnsmasq did not write its pid file within 10 s".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts (or restarts) the dnsmasq of network `name` with `args`, and supervises it.
pub async fn start(name: &str, net_dir: &Path, args: Vec<String>) -> Result<(), NetworkError> {
    stop(name).await;
    kill_stale(net_dir);
    let child = spawn_once(net_dir, &args).await?;
    let pid = Arc::new(AtomicU32::new(child.id().unwrap_or(0)));
    let stopping = Arc::new(AtomicBool::new(false));
    let task = {
        let (pid, stopping, dir, name) = (
            pid.clone(),
            stopping.clone(),
            net_dir.to_path_buf(),
            name.to_string(),
        );
        tokio::spawn(async move {
            let mut child = child;
            let mut restarts = 0;
            loop {
                let status = child.wait().await;
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                restarts += 1;
                tracing::warn!("dnsmasq of network {name} exited ({status:?}), restarting");
                if restarts > 5 {
                    tracing::error!("dnsmasq of network {name} keeps exiting: giving up");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                let _ = std::fs::remove_file(pid_file(&dir));
                match spawn_once(&dir, &args).await {
                    Ok(c) => {
                        pid.store(c.id().unwrap_or(0), Ordering::SeqCst);
                        child = c;
                    }
                    Err(e) => {
                        tracing::error!("dnsmasq of network {name}: {e}");
                        return;
                    }
                }
            }
        })
    };
    running().lock().expect("lock is never poisoned").insert(
        name.to_string(),
        Running {
            pid,
            stopping,
            task,
        },
    );
    Ok(())
}

/// The PID of a network's dnsmasq, while rxd supervises it.
pub fn pid(name: &str) -> Option<u32> {
    running()
        .lock()
        .expect("lock is never poisoned")
        .get(name)
        .map(|r| r.pid.load(Ordering::SeqCst))
}

/// Stops a network's dnsmasq, if it runs.
pub async fn stop(name: &str) {
    let entry = running()
        .lock()
        .expect("lock is never poisoned")
        .remove(name);
    let Some(r) = entry else {
        return;
    };
    r.stopping.store(true, Ordering::SeqCst);
    let pid = r.pid.load(Ordering::SeqCst) as i32;
    if pid > 0 {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let mut task = r.task;
    if tokio::time::timeout(Duration::from_secs(5), &mut task)
        .await
        .is_err()
    {
        if pid > 0 {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
}

/// Stops every dnsmasq rxd started (daemon shutdown).
pub async fn stop_all() {
    let names: Vec<String> = running()
        .lock()
        .expect("lock is never poisoned")
        .keys()
        .cloned()
        .collect();
    for name in names {
        stop(&name).await;
    }
}
