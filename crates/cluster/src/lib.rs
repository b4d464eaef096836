//! Membership of an rxd cluster: bootstrap, the joiner's side of a join and the leader's
//! (accept, joined, abort), join tokens, removal and the removed member's return to a
//! standalone server, heartbeats and liveness, role rebalancing, the reaper of unfinished
//! joins, and the member-to-member HTTPS client. Its decisions are pure functions ([`decide`]); the rest is a
//! thin async shell that carries them out.
//!
//! It does not know the daemon: it sees it through [`host::Host`] (the replicated database,
//! the data directory, the certificates, the local keys, the HTTPS listener's address, the
//! events' location and this member's side of pools and networks). HTTP handlers, access rules
//! and operations stay in the daemon, which turns [`Error`] into its API error unchanged.
//!
//! ```text
//!  daemon handler ─> rxd_cluster::{bootstrap, join, accept, leave, heartbeat} ─> Host
//!                         │                    │
//!                         └─> decide (pure)    └─> peer (member-to-member HTTPS) ─> raft
//! ```

pub mod accept;
pub mod bootstrap;
pub mod decide;
mod error;
pub mod heartbeat;
pub mod host;
pub mod join;
pub mod leave;
pub mod peer;
pub mod tokens;

pub use decide::*;
pub use error::{Error, Result, Status};
pub use host::{Host, Membership, Settings};

/// A test hook, compiled in only with the `failpoints` feature (the daemon's own feature of that
/// name turns it on; the release binary has none): `RXD_FAILPOINT=<step>:crash` ends the
/// process at that step of a join, removal or bootstrap, `<step>:error` fails the step,
/// `<step>:panic` panics in it, and `<step>:delay=<seconds>` holds it, so tests can check that
/// every crash point leaves both sides usable.
#[cfg(feature = "failpoints")]
pub async fn failpoint(step: &str) -> Result<()> {
    let Ok(spec) = std::env::var("RXD_FAILPOINT") else {
        return Ok(());
    };
    for one in spec.split(',') {
        match one.split_once(':') {
            Some((s, "crash")) if s == step => {
                tracing::error!("Failpoint {step}: exiting");
                std::process::exit(137)
            }
            Some((s, "error")) if s == step => {
                return Err(Error::internal(format!("Injected failure at {step}")));
            }
            Some((s, "panic")) if s == step => panic!("Failpoint {step}: panicking"),
            Some((s, action)) if s == step => {
                if let Some(secs) = action
                    .strip_prefix("delay=")
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    tracing::warn!("Failpoint {step}: holding for {secs} s");
                    tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Without the `failpoints` feature every step runs straight through.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub async fn failpoint(_step: &str) -> Result<()> {
    Ok(())
}

/// Whether the failpoint for `step` is set (always false without the `failpoints` feature).
pub fn fired(step: &str) -> bool {
    cfg!(feature = "failpoints")
        && std::env::var("RXD_FAILPOINT")
            .map(|v| v.split(',').any(|one| one.split(':').next() == Some(step)))
            .unwrap_or(false)
}

/// Flushes a directory, so that the renames and removals in it survive a power loss.
pub fn sync_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
