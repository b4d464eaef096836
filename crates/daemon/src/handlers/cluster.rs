//! `/1.0/cluster`: the cluster's view of this member, and bootstrapping or joining
//! (`rxd_cluster::bootstrap`, `rxd_cluster::join`), each in an operation.
//!
//! ```text
//!  PUT {enabled, server_name} ─checks─> 202 "Creating bootstrap node" ─> rxd_cluster::bootstrap
//!  PUT {cluster_address, ...} ─rxd_cluster::join::start─> 202 "Joining cluster"
//!                              ─> rxd_cluster::join::carry_out
//! ```

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use rxd_api::{Cluster, ClusterPut};

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::response::{operation, sync_etag, JsonBody};
use crate::Daemon;

pub use rxd_cluster::bootstrap::validate_member_name;

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
        member_config: crate::member_sides::member_config(&d).await?,
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
        return join(d, caller, put).await;
    }
    validate_member_name(&put.server_name)?;
    bootstrap(d, caller, put.server_name).await
}

async fn join(d: Arc<Daemon>, caller: Caller, put: ClusterPut) -> ApiResult<Response> {
    let name = put.server_name.clone();
    let started = rxd_cluster::join::start(&*d, put).await?;
    let work = d.clone();
    let op = d.ops.start(
        "Joining cluster",
        Some(serde_json::json!({"cluster": null})),
        "none",
        async move {
            match rxd_cluster::join::carry_out(work.clone(), started).await? {
                rxd_cluster::join::Joined::Joined => work.events.lifecycle(
                    "cluster-member-added",
                    &format!("/1.0/cluster/members/{name}"),
                    None,
                    Some(caller.requestor()),
                ),
                rxd_cluster::join::Joined::Finished => {}
            }
            Ok(None)
        },
    );
    Ok(operation(&op))
}

async fn bootstrap(d: Arc<Daemon>, caller: Caller, name: String) -> ApiResult<Response> {
    let address = rxd_cluster::bootstrap::address(&*d)?;
    let work = d.clone();
    let op = d.ops.start(
        "Creating bootstrap node",
        Some(serde_json::json!({"cluster": null})),
        "none",
        async move {
            rxd_cluster::bootstrap::run(&*work, &name, &address)
                .await
                .map_err(|e| e.message)?;
            work.events.lifecycle(
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
