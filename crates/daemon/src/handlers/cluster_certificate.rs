//! `PUT /1.0/cluster/certificate` and its member side, `/internal/cluster/certificate/*`: the
//! coordinator of a rotation (see `crate::rotation` for the two phases).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use rxd_api::ClusterCertificatePut;
use rxd_db::{tables, Command};
use serde::{Deserialize, Serialize};

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::response::{empty, JsonBody};
use crate::rotation;
use crate::Daemon;

/// The body of `/internal/cluster/certificate/{unstage,commit}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RotationStep {
    /// Fingerprint of the certificate being rotated in.
    pub fingerprint: String,
}

/// `PUT /1.0/cluster/certificate`: stages the pair on every member, commits it through raft,
/// then tells every member to swap.
pub async fn cluster_certificate_put(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    JsonBody(put): JsonBody<ClusterCertificatePut>,
) -> ApiResult<Response> {
    let pair = rotation::parse_pair(&put.cluster_certificate, &put.cluster_certificate_key)?;
    if !d.is_clustered().await? {
        return Err(ApiError::bad_request("This server is not clustered"));
    }
    let _one_rotation = d.rotation.coordinating.lock().await;
    // No member joins through this one meanwhile; it would miss the staged pair.
    let _membership = d.membership.changes.lock().await;
    let fingerprint = pair.fingerprint();
    let own = d.node_id();
    let members = d.db().read(tables::members).await?;
    let others: Vec<tables::Member> = members.into_iter().filter(|m| m.id != own).collect();

    // Phase 1: every member stages the pair, or none keeps it.
    rotation::stage(&d, pair.clone())?;
    let body = serde_json::to_value(&put).expect("the pair serialises");
    let staged = futures_util::future::join_all(others.iter().map(|m| {
        let (d, body) = (d.clone(), body.clone());
        async move {
            call(&d, &m.address, "/internal/cluster/certificate/stage", body)
                .await
                .map_err(|e| format!("member {:?} ({}): {e}", m.name, m.address))
        }
    }))
    .await;
    let failed: Vec<String> = staged.into_iter().filter_map(Result::err).collect();
    if !failed.is_empty() {
        let step = serde_json::to_value(RotationStep {
            fingerprint: fingerprint.clone(),
        })
        .expect("the step serialises");
        futures_util::future::join_all(others.iter().map(|m| {
            call(
                &d,
                &m.address,
                "/internal/cluster/certificate/unstage",
                step.clone(),
            )
        }))
        .await;
        rotation::unstage(&d, &fingerprint);
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "Failed to stage the new cluster certificate on {}; every member keeps the current one",
                failed.join(", ")
            ),
        ));
    }

    // Phase 2: the commit point. Past it every member swaps, now or when it next runs.
    rxd_cluster::failpoint("cluster-certificate-before-commit").await?;
    d.db()
        .propose(Command::SetClusterCertificate {
            fingerprint: fingerprint.clone(),
        })
        .await??;
    rxd_cluster::failpoint("cluster-certificate-after-commit").await?;
    rotation::follow(&d, true).await?;
    let step = serde_json::to_value(RotationStep {
        fingerprint: fingerprint.clone(),
    })
    .expect("the step serialises");
    let swapped = futures_util::future::join_all(others.iter().map(|m| {
        let (d, step) = (d.clone(), step.clone());
        async move {
            if let Err(e) = call(&d, &m.address, "/internal/cluster/certificate/commit", step).await
            {
                tracing::warn!(
                    "Member {} swaps to the new cluster certificate on its own: {e}",
                    m.name
                );
            }
        }
    }));
    swapped.await;
    d.events.lifecycle(
        "cluster-certificate-updated",
        "/1.0/cluster/certificate",
        None,
        Some(caller.requestor()),
    );
    Ok(empty())
}

/// One internal call to another member, pinning the cluster certificates it may serve.
async fn call(
    d: &Daemon,
    address: &str,
    path: &str,
    body: serde_json::Value,
) -> Result<(), String> {
    let client = crate::peer::member_client(d, address).map_err(|e| e.message)?;
    client
        .request("POST", path, Some(body), None)
        .await
        .map(|_| ())
        .map_err(|e| crate::handlers::internal_cluster::api_message(&e))
}

/// `POST /internal/cluster/certificate/stage`: phase 1 on this member.
pub async fn stage_post(
    State(d): State<Arc<Daemon>>,
    JsonBody(put): JsonBody<ClusterCertificatePut>,
) -> ApiResult<Response> {
    let pair = rotation::parse_pair(&put.cluster_certificate, &put.cluster_certificate_key)?;
    rxd_cluster::failpoint("cluster-certificate-stage").await?;
    rotation::stage(&d, pair)?;
    Ok(empty())
}

/// `POST /internal/cluster/certificate/unstage`: a rotation failed before its commit point.
pub async fn unstage_post(
    State(d): State<Arc<Daemon>>,
    JsonBody(step): JsonBody<RotationStep>,
) -> ApiResult<Response> {
    rotation::unstage(&d, &step.fingerprint);
    Ok(empty())
}

/// `POST /internal/cluster/certificate/commit`: swap once the commit point is applied here.
pub async fn commit_post(
    State(d): State<Arc<Daemon>>,
    JsonBody(step): JsonBody<RotationStep>,
) -> ApiResult<Response> {
    if rotation::follow(&d, true).await? {
        Ok(empty())
    } else {
        Err(ApiError::conflict(format!(
            "The cluster certificate {} is not both staged and committed on this member",
            step.fingerprint
        )))
    }
}
