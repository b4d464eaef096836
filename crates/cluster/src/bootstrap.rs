//! Bootstrapping: a standalone server becomes the first member of a new cluster.
//!
//! ```text
//!  PUT /1.0/cluster {enabled, server_name} ─> address (cluster.https_address, else a
//!  non-wildcard core.https_address)
//!    └─ the daemon's operation: cluster.crt ─> raft node address ─> Bootstrap command
//!                               ─> serve cluster.crt ─> location = the member's name
//!       any failure: cluster.crt removed, server.crt served again
//! ```

use std::path::Path;

use rxd_api::config_keys as config;
use rxd_db::tables::Certificate;
use rxd_db::Command;

use crate::{Error, Host, Result};

/// Refuses names LXD could not use as a member name, and names a client would normalise
/// away as a path (`.`, `..`).
pub fn validate_member_name(name: &str) -> Result<()> {
    if name == "none" {
        return Err(Error::bad_request(
            "Invalid cluster member name \"none\": it is reserved",
        ));
    }
    rxd_api::names::check("cluster member", name).map_err(Error::bad_request)
}

/// The address the new cluster's first member is reached at: `cluster.https_address`, else
/// a `core.https_address` that is not a wildcard.
pub fn address<H: Host + ?Sized>(d: &H) -> Result<String> {
    let local = d.local_config()?;
    let address = local
        .get("cluster.https_address")
        .cloned()
        .unwrap_or_default();
    if !address.is_empty() {
        return Ok(address);
    }
    let core = local.get("core.https_address").cloned().unwrap_or_default();
    if core.is_empty() || config::is_wildcard(&core) {
        // LXD answers 500 here; it is the user's mistake, so rxd says 400.
        return Err(Error::bad_request(format!(
            "Cannot use wildcard core.https_address {core:?} for cluster.https_address. Please specify a new cluster.https_address or core.https_address"
        )));
    }
    Ok(config::canonical_address(&core))
}

/// Makes this server the first member `name` of a new cluster reached at `address`; a failure
/// leaves it standalone, serving its own certificate.
pub async fn run<H: Host + ?Sized>(d: &H, name: &str, address: &str) -> Result<()> {
    let cluster_cert = match d.staged_cluster_cert() {
        Some(cert) => cert,
        None => rxd_tls::generate(d.hostname())
            .map_err(|e| Error::internal(format!("Failed to generate cluster certificate: {e}")))?,
    };
    let undo = |d: &H| {
        let _ = std::fs::remove_file(d.dir().join("cluster.crt"));
        let _ = std::fs::remove_file(d.dir().join("cluster.key"));
        let _ = d.set_cluster_cert(None);
    };
    let result = async {
        write_cluster_cert(d.dir(), &cluster_cert)?;
        crate::failpoint("bootstrap-after-certificate").await?;
        d.db()
            .set_node_address(d.node_id(), address.to_string())
            .await?;
        let cert = Certificate {
            fingerprint: d.server_cert().fingerprint(),
            cert_type: "server".into(),
            name: name.to_string(),
            certificate: d.server_cert().cert_pem.clone(),
            restricted: false,
            projects: vec![],
            description: String::new(),
        };
        d.db()
            .propose(Command::Bootstrap {
                name: name.to_string(),
                address: address.to_string(),
                architecture: d.architecture(),
                certificate: cert,
            })
            .await??;
        d.update_local(&[("cluster.https_address", Some(address))])?;
        d.set_cluster_cert(Some(cluster_cert.clone()))
    }
    .await;
    match &result {
        Ok(()) => d.set_location(name),
        Err(e) => {
            tracing::warn!("Bootstrap failed, rolling back: {e}");
            undo(d);
        }
    }
    result
}

/// Writes `cluster.crt` and `cluster.key` into `dir` atomically.
pub fn write_cluster_cert(dir: &Path, cert: &rxd_tls::CertKey) -> Result<()> {
    let write = |name: &str, text: &str, mode: u32| {
        rxd_tls::write_atomic(&dir.join(name), text.as_bytes(), mode)
            .map_err(|e| Error::internal(format!("Failed to write {name}: {e}")))
    };
    write("cluster.crt", &cert.cert_pem, 0o644)?;
    write("cluster.key", &cert.key_pem, 0o600)
}
