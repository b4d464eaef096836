//! Trust-password and token checks that an untrusted caller cannot turn into a denial of
//! service or a search.
//!
//! scrypt costs tens of milliseconds of CPU by design, so it runs on a blocking thread, one
//! evaluation at a time in the whole process: async workers (raft, heartbeats, every other
//! request) never wait behind it, and guesses use at most one core. A source address that keeps
//! guessing wrong, passwords and join or certificate-add tokens alike, is refused, before any
//! database read or scrypt, for a time that doubles with each further failure; the refusal is
//! logged once per period, not per guess.
//!
//! ```text
//!  password ─> source blocked? ──yes──> 429, nothing evaluated
//!                  │ no
//!                  v
//!        wait for the one scrypt slot ─> blocked meanwhile? ──yes──> 429
//!                  │ no
//!                  v
//!        scrypt on a blocking thread ─> right: forget the source's failures
//!                                    └> wrong: count it; from the 5th on, block (and warn)
//!
//!  token ─> source blocked? ──yes──> 429, nothing read
//!                  │ no
//!                  v
//!           stored token? ─> yes: forget the source's failures
//!                         └> no: count it, as a wrong password
//! ```

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tokio::sync::Semaphore;

use crate::access::Peer;
use crate::config;
use crate::error::{ApiError, ApiResult};

/// Wrong passwords or tokens a source may send before it is blocked.
const FREE_FAILURES: u32 = 5;
/// The first block; each further failure doubles it.
const FIRST_BLOCK: Duration = Duration::from_secs(1);
/// The longest block.
const LONGEST_BLOCK: Duration = Duration::from_secs(300);
/// A source's failures are forgotten this long after its last one.
const FORGET_AFTER: Duration = Duration::from_secs(900);
/// Sources tracked at once; beyond it new sources go untracked (the scrypt slot still bounds
/// the work they cause).
const MAX_SOURCES: usize = 10_000;

/// The process's one scrypt slot.
static SCRYPT: Semaphore = Semaphore::const_new(1);

/// Runs `f` (scrypt work) on a blocking thread once the scrypt slot is free.
async fn in_scrypt_slot<T: Send + 'static>(
    permit: tokio::sync::SemaphorePermit<'static>,
    f: impl FnOnce() -> T + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f()
    })
    .await
    .map_err(|e| ApiError::internal(format!("Password hashing failed: {e}")))
}

async fn scrypt_slot() -> tokio::sync::SemaphorePermit<'static> {
    SCRYPT
        .acquire()
        .await
        .expect("the scrypt slot is never closed")
}

/// Hashes a new trust password, in the scrypt slot.
pub async fn hash(password: &str) -> ApiResult<String> {
    let password = password.to_owned();
    in_scrypt_slot(scrypt_slot().await, move || {
        config::hash_password(&password)
    })
    .await
}

/// How long a source is blocked after its `failures`-th wrong password (zero: not blocked).
fn block_after(failures: u32) -> Duration {
    if failures < FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (failures - FREE_FAILURES).min(16);
    (FIRST_BLOCK * 2u32.pow(doublings)).min(LONGEST_BLOCK)
}

#[derive(Debug)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Instant,
}

/// Wrong trust passwords and tokens per source address.
#[derive(Debug, Default)]
pub struct PasswordGuard {
    sources: Mutex<HashMap<IpAddr, Failures>>,
}

/// A password or token attempt from a source that is not blocked; [`Attempt::check`] decides
/// a password, [`Attempt::record`] the outcome of a token.
pub struct Attempt<'a> {
    guard: &'a PasswordGuard,
    source: Option<IpAddr>,
}

impl PasswordGuard {
    /// Starts an attempt from `peer`, refused at once while its address is blocked.
    pub fn admit(&self, peer: &Peer) -> ApiResult<Attempt<'_>> {
        let source = match peer {
            Peer::Tls { address, .. } => address.parse::<SocketAddr>().ok().map(|a| a.ip()),
            Peer::Unix => None,
        };
        self.refuse_if_blocked(source)?;
        Ok(Attempt {
            guard: self,
            source,
        })
    }

    fn refuse_if_blocked(&self, source: Option<IpAddr>) -> ApiResult<()> {
        let Some(ip) = source else { return Ok(()) };
        let sources = self.sources.lock().expect("lock is never poisoned");
        let now = Instant::now();
        match sources.get(&ip) {
            Some(f) if f.blocked_until > now => {
                let secs = (f.blocked_until - now).as_secs() + 1;
                Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "Too many wrong trust passwords or tokens from {ip}, try again in {secs} s"
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    fn record(&self, source: Option<IpAddr>, right: bool) {
        let Some(ip) = source else { return };
        let mut sources = self.sources.lock().expect("lock is never poisoned");
        if right {
            sources.remove(&ip);
            return;
        }
        let now = Instant::now();
        if sources.len() >= MAX_SOURCES && !sources.contains_key(&ip) {
            sources.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
            if sources.len() >= MAX_SOURCES {
                return;
            }
        }
        let f = sources.entry(ip).or_insert(Failures {
            count: 0,
            last: now,
            blocked_until: now,
        });
        if now.duration_since(f.last) >= FORGET_AFTER {
            f.count = 0;
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
        let block = block_after(f.count);
        if !block.is_zero() {
            f.blocked_until = now + block;
            tracing::warn!(
                "{} wrong trust passwords or tokens from {ip}: refusing its attempts for {} s",
                f.count,
                block.as_secs()
            );
        }
    }
}

impl Attempt<'_> {
    /// Counts a token presented by this source: a `right` one forgets its failures, a wrong
    /// one counts as a wrong password does.
    pub fn record(self, right: bool) {
        self.guard.record(self.source, right);
    }

    /// Checks `password` against the `stored` hash (none: no password is set, so it is
    /// wrong); a wrong one is 403 `not authorized`, as in LXD.
    pub async fn check(self, stored: Option<&String>, password: &str) -> ApiResult<()> {
        let permit = scrypt_slot().await;
        // Wrong guesses that held the slot meanwhile may have blocked this source.
        self.guard.refuse_if_blocked(self.source)?;
        let right = match stored {
            Some(hash) => {
                let (hash, password) = (hash.clone(), password.to_owned());
                in_scrypt_slot(permit, move || config::check_password(&hash, &password)).await?
            }
            None => false,
        };
        self.guard.record(self.source, right);
        if right {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_double_from_the_fifth_failure() {
        let cases = [
            (1, 0),
            (4, 0),
            (5, 1),
            (6, 2),
            (7, 4),
            (13, 256),
            (14, 300),
            (99, 300),
        ];
        for (failures, secs) in cases {
            assert_eq!(
                block_after(failures),
                Duration::from_secs(secs),
                "{failures}"
            );
        }
    }

    #[test]
    fn a_blocked_source_is_refused_and_others_are_not() {
        let guard = PasswordGuard::default();
        let peer = |a: &str| Peer::Tls {
            address: a.into(),
            cert_der: None,
        };
        let ip = Some("192.0.2.1".parse().unwrap());
        for _ in 0..FREE_FAILURES {
            assert!(guard.admit(&peer("192.0.2.1:5000")).is_ok());
            guard.record(ip, false);
        }
        let refused = guard.admit(&peer("192.0.2.1:5001")).err().unwrap();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(guard.admit(&peer("192.0.2.2:5000")).is_ok());
        guard.record(ip, true);
        assert!(guard.admit(&peer("192.0.2.1:5002")).is_ok());
        for _ in 0..FREE_FAILURES {
            guard.admit(&peer("192.0.2.1:5003")).unwrap().record(false);
        }
        let refused = guard.admit(&peer("192.0.2.1:5004")).err().unwrap();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    }
}
