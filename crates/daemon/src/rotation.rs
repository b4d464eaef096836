//! Rotation of the cluster certificate, in two phases with one replicated commit point.
//!
//! ```text
//!  coordinator (PUT /1.0/cluster/certificate)
//!   1 stage ──> every member: check the pair, write cluster.{crt,key}.new   any failure:
//!                                                                           unstage everywhere
//!   2 SetClusterCertificate{fingerprint} through raft  ── the commit point
//!   3 commit ─> every member (best effort): swap once its replica holds the fingerprint
//!  a member that misses 3 swaps from its own follow loop (or at its next start)
//! ```
//!
//! A swap renames `cluster.crt.new` then `cluster.key.new` over the served pair and hot-swaps
//! the listener's configuration; a start that finds only `cluster.key.new` finishes it. While a
//! pair is staged, and after a swap, member-to-member calls accept the served, the staged and
//! the replaced certificate (`Daemon::peer_pins`), so raft and forwarding keep working while the
//! members swap one after the other.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rxd_db::tables;
use rxd_tls::CertKey;

use crate::error::{ApiError, ApiResult};
use crate::Daemon;

const STAGED_CERT: &str = "cluster.crt.new";
const STAGED_KEY: &str = "cluster.key.new";

/// How often a member with a staged pair looks for the commit point in its replica.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);
/// How long it looks; a later start looks again.
const FOLLOW_FOR: Duration = Duration::from_secs(15 * 60);

/// The rotation state of one member.
#[derive(Default)]
pub struct Rotation {
    staged: Mutex<Option<CertKey>>,
    previous: Mutex<Option<CertKey>>,
    /// One rotation at a time on this member.
    pub coordinating: tokio::sync::Mutex<()>,
}

impl Rotation {
    /// The staged pair, if any.
    pub fn staged(&self) -> Option<CertKey> {
        self.staged
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The certificate the last swap replaced, if any.
    pub fn previous(&self) -> Option<CertKey> {
        self.previous
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_staged(&self, pair: Option<CertKey>) {
        *self.staged.lock().unwrap_or_else(PoisonError::into_inner) = pair;
    }
}

/// Checks a certificate and key given by a user: both PEM, and belonging together.
pub fn parse_pair(cert_pem: &str, key_pem: &str) -> ApiResult<CertKey> {
    if cert_pem.trim().is_empty() || key_pem.trim().is_empty() {
        return Err(ApiError::bad_request(
            "Both cluster_certificate and cluster_certificate_key are required",
        ));
    }
    CertKey::from_pem(cert_pem, key_pem).map_err(|e| match e {
        rxd_tls::TlsError::KeyMismatch { .. } => ApiError::bad_request(
            "The cluster certificate key does not match the cluster certificate",
        ),
        e => ApiError::bad_request(format!(
            "The cluster certificate and key must be a PEM certificate and its PEM private key: {e}"
        )),
    })
}

/// Phase 1 on this member: writes the pair beside the served one and remembers it.
pub fn stage(d: &std::sync::Arc<Daemon>, pair: CertKey) -> ApiResult<()> {
    let write = |name: &str, text: &str, mode: u32| {
        rxd_tls::write_atomic(&d.dir.join(name), text.as_bytes(), mode)
            .map_err(|e| ApiError::internal(format!("Failed to write {name}: {e}")))
    };
    write(STAGED_CERT, &pair.cert_pem, rxd_tls::CERT_MODE)?;
    write(STAGED_KEY, &pair.key_pem, rxd_tls::KEY_MODE)?;
    let fingerprint = pair.fingerprint();
    d.rotation.set_staged(Some(pair));
    spawn_follow(d, fingerprint);
    Ok(())
}

/// Forgets a staged pair with `fingerprint` (a rotation that failed before its commit point).
pub fn unstage(d: &Daemon, fingerprint: &str) {
    let mut staged = d
        .rotation
        .staged
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if staged.as_ref().map(CertKey::fingerprint).as_deref() == Some(fingerprint) {
        for f in [STAGED_CERT, STAGED_KEY] {
            let _ = std::fs::remove_file(d.dir.join(f));
        }
        *staged = None;
    }
}

/// Swaps to the staged pair if the replica holds its fingerprint as committed (a linearizable
/// read when `linearizable`, else this replica's). Returns whether this member now serves the
/// committed certificate.
pub async fn follow(d: &Daemon, linearizable: bool) -> ApiResult<bool> {
    let committed = if linearizable {
        d.db().read(tables::cluster_certificate).await?
    } else {
        d.db().read_local(tables::cluster_certificate).await?
    };
    let Some(committed) = committed else {
        return Ok(false);
    };
    if d.cluster_cert().map(|c| c.fingerprint()).as_deref() == Some(committed.as_str()) {
        // Rotated to the certificate already served: nothing to swap, the staged copy goes.
        unstage(d, &committed);
        return Ok(true);
    }
    match d.rotation.staged() {
        Some(pair) if pair.fingerprint() == committed => {
            swap(d, pair)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

fn swap(d: &Daemon, pair: CertKey) -> ApiResult<()> {
    let rename = |from: &str, to: &str| {
        std::fs::rename(d.dir.join(from), d.dir.join(to))
            .map_err(|e| ApiError::internal(format!("Failed to rename {from} to {to}: {e}")))
    };
    // The certificate first: a start that finds only the key staged finishes the swap.
    rename(STAGED_CERT, "cluster.crt")?;
    rename(STAGED_KEY, "cluster.key")?;
    sync_dir(&d.dir);
    let old = d.cluster_cert();
    d.set_cluster_cert(Some(pair.clone()))?;
    *d.rotation
        .previous
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = old;
    d.rotation.set_staged(None);
    tracing::info!("Now serving cluster certificate {}", pair.fingerprint());
    Ok(())
}

fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Before the cluster certificate is loaded: finishes a swap a crash interrupted between its
/// two renames.
pub fn recover_at_start(dir: &Path) -> std::io::Result<()> {
    if !dir.join(STAGED_CERT).exists() && dir.join(STAGED_KEY).exists() {
        std::fs::rename(dir.join(STAGED_KEY), dir.join("cluster.key"))?;
        sync_dir(dir);
    }
    Ok(())
}

/// After the start: picks up a pair staged before a stop and follows the commit point.
pub fn resume(d: &std::sync::Arc<Daemon>) {
    let (cert, key) = (d.dir.join(STAGED_CERT), d.dir.join(STAGED_KEY));
    let (Ok(cert), Ok(key)) = (std::fs::read_to_string(cert), std::fs::read_to_string(key)) else {
        return;
    };
    match CertKey::from_pem(cert, key) {
        Ok(pair) => {
            let fingerprint = pair.fingerprint();
            d.rotation.set_staged(Some(pair));
            spawn_follow(d, fingerprint);
        }
        Err(e) => {
            tracing::warn!("Dropping a staged cluster certificate that does not load: {e}");
            for f in [STAGED_CERT, STAGED_KEY] {
                let _ = std::fs::remove_file(d.dir.join(f));
            }
        }
    }
}

/// Looks for the commit point of the pair staged with `fingerprint` until it is swapped in,
/// replaced or dropped, or [`FOLLOW_FOR`] has passed.
fn spawn_follow(d: &std::sync::Arc<Daemon>, fingerprint: String) {
    let weak = std::sync::Arc::downgrade(d);
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + FOLLOW_FOR;
        while tokio::time::Instant::now() < deadline {
            let Some(d) = weak.upgrade() else { return };
            if d.rotation.staged().map(|p| p.fingerprint()).as_deref() != Some(&fingerprint) {
                return;
            }
            match follow(&d, false).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => tracing::debug!("Cannot follow the cluster certificate: {}", e.message),
            }
            drop(d);
            tokio::time::sleep(FOLLOW_EVERY).await;
        }
    });
}
