//! Load for the scale tests: many profile writes from concurrent clients, bounded in count and
//! in time, and daemon commands with a time bound of their own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{bin, Member};

/// What a finished write load did.
#[derive(Debug, Clone, Copy)]
pub struct WriteLoad {
    /// Acknowledged writes.
    pub writes: usize,
    /// From the first request to the last answer.
    pub elapsed: Duration,
}

impl WriteLoad {
    /// Acknowledged writes per second.
    pub fn per_second(&self) -> f64 {
        self.writes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The name of the `i`th profile of a load: `{prefix}-{i:06}`.
pub fn profile_name(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i:06}")
}

/// Creates `count` profiles named [`profile_name`]`(prefix, 0..count)` through `POST
/// /1.0/profiles`, from `concurrency` tasks, task `k` sending through `clients[k %
/// clients.len()]`. Each profile has a description of about 80 bytes, as users write them, so
/// that the cluster database grows as it does in use (10,000 profiles: about 1.2 MiB). Each task takes the next name until none is left, so the load is bounded
/// in count; the test fails at the first refused write (naming it) or when the whole load has
/// not finished within `limit` (saying how far it got). Progress goes to stderr every 5 s.
pub async fn create_profiles(
    clients: &[rxd_client::Client],
    prefix: &str,
    count: usize,
    concurrency: usize,
    limit: Duration,
) -> WriteLoad {
    assert!(
        !clients.is_empty(),
        "a write load needs at least one client"
    );
    assert!(concurrency > 0, "a write load needs at least one task");
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..concurrency {
        let client = clients[k % clients.len()].clone();
        let (next, done, prefix) = (next.clone(), done.clone(), prefix.to_string());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok(());
                }
                let name = profile_name(&prefix, i);
                let post = rxd_api::ProfilesPost {
                    name: name.clone(),
                    description: format!(
                        "Profile {i} of {count}, written by one of {concurrency} concurrent clients"
                    ),
                    ..Default::default()
                };
                if let Err(e) = client.create_profile(&post).await {
                    return Err(format!(
                        "creating profile {name} through {} failed after {:.1} s: {e}",
                        client.endpoint(),
                        start.elapsed().as_secs_f64()
                    ));
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let progress = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.tick().await;
            loop {
                tick.tick().await;
                eprintln!(
                    "  {} of {count} profile writes after {:.0} s",
                    done.load(Ordering::Relaxed),
                    start.elapsed().as_secs_f64()
                );
            }
        })
    };
    let all = async {
        while let Some(joined) = tasks.join_next().await {
            joined.expect("a write task does not panic")?;
        }
        Ok::<(), String>(())
    };
    let outcome = tokio::time::timeout(limit, all).await;
    progress.abort();
    // Dropping the set aborts the tasks still sending, so nothing outlives the load.
    drop(tasks);
    let writes = done.load(Ordering::Relaxed);
    match outcome {
        Err(_) => panic!(
            "only {writes} of {count} profile writes were acknowledged within {} s \
             ({concurrency} clients)",
            limit.as_secs()
        ),
        Ok(Err(e)) => panic!("{e} ({writes} of {count} acknowledged before)"),
        Ok(Ok(())) => WriteLoad {
            writes,
            elapsed: start.elapsed(),
        },
    }
}

/// How many profiles `client`'s member lists (`GET /1.0/profiles`, names only), or why not
/// within `limit`.
pub async fn profile_count(client: &rxd_client::Client, limit: Duration) -> Result<usize, String> {
    match tokio::time::timeout(limit, client.get::<Vec<String>>("/1.0/profiles")).await {
        Ok(Ok(urls)) => Ok(urls.len()),
        Ok(Err(e)) => Err(format!("GET /1.0/profiles on {}: {e}", client.endpoint())),
        Err(_) => Err(format!(
            "GET /1.0/profiles on {} did not answer within {} s",
            client.endpoint(),
            limit.as_secs()
        )),
    }
}

/// An `rxd` command run with a time bound: its output, or `None` when it was killed at the
/// bound, and how long it ran.
pub struct Bounded {
    /// What the command printed and how it exited; `None` if it was still running at the bound.
    pub output: Option<std::process::Output>,
    /// Wall time from spawn to exit (or to the kill).
    pub elapsed: Duration,
}

impl Member {
    /// Runs `rxd ARGS` against this member with `stdin` as input, as [`Member::rxd_with_input`]
    /// does, but kills it (SIGKILL, by its own handle) if it has not exited within `limit`.
    pub async fn rxd_within(&self, args: &[&str], stdin: &str, limit: Duration) -> Bounded {
        use tokio::io::AsyncWriteExt;
        let mut cmd = tokio::process::Command::new(bin("rxd"));
        cmd.args(args)
            .env("RXD_DIR", self.dir())
            .env("LXD_DIR", self.dir())
            .env("RXC_CONF", self.dir().join("rxc-conf"))
            .env("HOME", self.dir())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let start = Instant::now();
        let mut child = cmd.spawn().expect("rxd starts");
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(stdin.as_bytes())
            .await
            .expect("stdin takes the input");
        drop(pipe);
        let output = tokio::time::timeout(limit, child.wait_with_output())
            .await
            .ok()
            .map(|r| r.expect("the command's output can be read"));
        Bounded {
            output,
            elapsed: start.elapsed(),
        }
    }

    /// Starts the daemon again on the same directory without waiting for it to answer, after
    /// [`Member::stop`], [`Member::kill`] or an exit of its own (a crash at a failpoint), so
    /// that a test can wait for what it needs (a catch-up, a crash) with a bound of its own.
    pub fn relaunch(&mut self) {
        if let Some(mut child) = self.child.take() {
            assert!(
                child.try_wait().ok().flatten().is_some(),
                "the daemon is still running"
            );
        }
        self.spawn_process();
    }

    /// Adds `key=value` to the environment of this member's next start ([`Member::start_again`],
    /// [`Member::launch_again`]), such as a failpoint; [`Member::clear_env`] forgets it.
    pub fn env_for_next_start(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }
}
