//! `/1.0/cluster`: the cluster's view of this member, and bootstrapping.
//!
//! ```text
//!  PUT {enabled, server_name} ─checks─> 202 "Creating bootstrap node"
//!      └─ operation: cluster.crt ─> raft node address ─> Bootstrap command
//!                    ─> serve cluster.crt ─> lifecycle cluster-enabled
//!         any failure: cluster.crt removed, server.crt served again
//! ```

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use rxd_api::{Cluster, ClusterMemberConfigKey, ClusterPut};
use rxd_db::tables::{self, Certificate};
use rxd_db::Command;

use crate::access::Caller;
use crate::config;
use crate::error::{ApiError, ApiResult};
use crate::response::{operation, sync_etag, JsonBody};
use crate::Daemon;

/// Member-specific storage pool keys (LXD's list).
pub const POOL_MEMBER_KEYS: &[&str] = &[
    "size",
    "source",
    "volatile.initial_source",
    "zfs.pool_name",
    "lvm.thinpool_name",
    "lvm.vg_name",
];

/// The member-specific keys this member holds for its pools.
pub async fn member_config(d: &Daemon) -> ApiResult<Vec<ClusterMemberConfigKey>> {
    let id = d.node_id();
    let pools = d.db().read(tables::storage_pools).await?;
    let mut out = Vec::new();
    for pool in pools {
        let Some(mine) = pool.members.iter().find(|m| m.member_id == id) else {
            continue;
        };
        for key in mine.config.keys() {
            if key.starts_with("volatile.") || !POOL_MEMBER_KEYS.contains(&key.as_str()) {
                continue;
            }
            out.push(ClusterMemberConfigKey {
                entity: "storage-pool".into(),
                name: pool.name.clone(),
                key: key.clone(),
                value: String::new(),
                description: format!("\"{key}\" property for storage pool \"{}\"", pool.name),
            });
        }
    }
    out.extend(crate::handlers::networks::member_config(d).await?);
    Ok(out)
}

/// `GET /1.0/cluster`.
pub async fn cluster_get(State(d): State<Arc<Daemon>>) -> ApiResult<Response> {
    let clustered = d.is_clustered().await?;
    let cluster = Cluster {
        server_name: if clustered {
            d.server_name().await?
        } else {
            String::new()
        },
        enabled: clustered,
        member_config: member_config(&d).await?,
    };
    let etag = rxd_api::etag(&cluster);
    Ok(sync_etag(cluster, &etag))
}

/// `PUT /1.0/cluster`: bootstrap, join or disable.
pub async fn cluster_put(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    JsonBody(put): JsonBody<ClusterPut>,
) -> ApiResult<Response> {
    if put.enabled && put.server_name.is_empty() {
        return Err(ApiError::bad_request(
            "ServerName is required when enabling clustering",
        ));
    }
    if !put.enabled && !put.server_name.is_empty() {
        return Err(ApiError::bad_request(
            "ServerName must be empty when disabling clustering",
        ));
    }
    if put.server_name.starts_with('@') {
        return Err(ApiError::bad_request("ServerName may not start with \"@\""));
    }
    if !put.enabled {
        return Err(ApiError::bad_request(
            "Disabling clustering is not supported: remove the member with \"rxc cluster remove\" instead",
        ));
    }
    if d.is_clustered().await? {
        return Err(ApiError::bad_request("This server is already clustered"));
    }
    if !put.cluster_address.is_empty() {
        return crate::join::start(d, caller, put).await;
    }
    validate_member_name(&put.server_name)?;
    bootstrap(d, caller, put.server_name).await
}

/// Refuses names LXD could not use as a member name, and names a client would normalise
/// away as a path (`.`, `..`).
pub fn validate_member_name(name: &str) -> ApiResult<()> {
    if name == "none" {
        return Err(ApiError::bad_request(
            "Invalid cluster member name \"none\": it is reserved",
        ));
    }
    crate::names::check("cluster member", name).map_err(ApiError::bad_request)
}

async fn bootstrap(d: Arc<Daemon>, caller: Caller, name: String) -> ApiResult<Response> {
    let local = d.local_config()?;
    let mut address = local
        .get("cluster.https_address")
        .cloned()
        .unwrap_or_default();
    if address.is_empty() {
        let core = local.get("core.https_address").cloned().unwrap_or_default();
        if core.is_empty() || config::is_wildcard(&core) {
            // LXD answers 500 here; it is the user's mistake, so rxd says 400.
            return Err(ApiError::bad_request(format!(
                "Cannot use wildcard core.https_address {core:?} for cluster.https_address. Please specify a new cluster.https_address or core.https_address"
            )));
        }
        address = config::canonical_address(&core);
    }
    let work_d = d.clone();
    let op = d.ops.start(
        "Creating bootstrap node",
        Some(serde_json::json!({"cluster": null})),
        "none",
        async move {
            run_bootstrap(&work_d, &name, &address)
                .await
                .map_err(|e| e.message)?;
            work_d.events.set_location(&name);
            work_d.events.lifecycle(
                "cluster-enabled",
                &format!("/1.0/cluster/{name}"),
                None,
                Some(caller.requestor()),
            );
            Ok(None)
        },
    );
    Ok(operation(&op))
}

async fn run_bootstrap(d: &Daemon, name: &str, address: &str) -> ApiResult<()> {
    let cluster_cert = rxd_tls::generate(&d.hostname)
        .map_err(|e| ApiError::internal(format!("Failed to generate cluster certificate: {e}")))?;
    let undo = |d: &Daemon| {
        let _ = std::fs::remove_file(d.dir.join("cluster.crt"));
        let _ = std::fs::remove_file(d.dir.join("cluster.key"));
        let _ = d.set_cluster_cert(None);
    };
    let result = async {
        write_cluster_cert(d, &cluster_cert)?;
        crate::failpoint("bootstrap-after-certificate").await?;
        d.db()
            .set_node_address(d.node_id(), address.to_string())
            .await?;
        let cert = Certificate {
            fingerprint: d.server_cert.fingerprint(),
            cert_type: "server".into(),
            name: name.to_string(),
            certificate: d.server_cert.cert_pem.clone(),
            restricted: false,
            projects: vec![],
            description: String::new(),
        };
        d.db()
            .propose(Command::Bootstrap {
                name: name.to_string(),
                address: address.to_string(),
                architecture: crate::handlers::server::architectures()
                    .into_iter()
                    .next()
                    .unwrap_or_default(),
                certificate: cert,
            })
            .await??;
        d.update_local([("cluster.https_address", Some(address))])?;
        d.set_cluster_cert(Some(cluster_cert.clone()))
    }
    .await;
    if let Err(e) = &result {
        tracing::warn!("Bootstrap failed, rolling back: {e}");
        undo(d);
    }
    result
}

/// Writes `cluster.crt` and `cluster.key` atomically.
pub fn write_cluster_cert(d: &Daemon, cert: &rxd_tls::CertKey) -> ApiResult<()> {
    let write = |name: &str, text: &str, mode: u32| {
        rxd_tls::write_atomic(&d.dir.join(name), text.as_bytes(), mode)
            .map_err(|e| ApiError::internal(format!("Failed to write {name}: {e}")))
    };
    write("cluster.crt", &cert.cert_pem, 0o644)?;
    write("cluster.key", &cert.key_pem, 0o600)
}
