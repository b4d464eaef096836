//! `/internal/cluster/*` and `/internal/heartbeat`: thin handlers over `rxd_cluster`'s leader
//! side of a join (`accept`), the removed member's return to standalone (`leave`) and
//! liveness (`heartbeat`).

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use rxd_cluster::accept::{AcceptRequest, JoinProgress};
use rxd_cluster::heartbeat::Heartbeat;

use crate::access::Caller;
use crate::error::ApiResult;
use crate::response::{empty, sync, JsonBody};
use crate::Daemon;

pub use rxd_cluster::peer::api_message;

/// `POST /internal/cluster/accept`.
pub async fn accept_post(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    JsonBody(req): JsonBody<AcceptRequest>,
) -> ApiResult<Response> {
    Ok(sync(
        rxd_cluster::accept::accept(&*d, caller.fingerprint(), req).await?,
    ))
}

/// `POST /internal/cluster/joined`.
pub async fn joined_post(
    State(d): State<Arc<Daemon>>,
    JsonBody(req): JsonBody<JoinProgress>,
) -> ApiResult<Response> {
    Ok(sync(rxd_cluster::accept::joined(&*d, req).await?))
}

/// `POST /internal/cluster/abort`.
pub async fn abort_post(
    State(d): State<Arc<Daemon>>,
    JsonBody(req): JsonBody<JoinProgress>,
) -> ApiResult<Response> {
    Ok(sync(rxd_cluster::accept::abort(&*d, req).await?))
}

/// `PUT /internal/heartbeat`: the leader's liveness view.
pub async fn heartbeat_put(
    State(d): State<Arc<Daemon>>,
    JsonBody(hb): JsonBody<Heartbeat>,
) -> ApiResult<Response> {
    rxd_cluster::heartbeat::receive(&*d, hb);
    Ok(empty())
}

/// `POST /internal/cluster/left`: this member was removed from the cluster; it answers, then
/// becomes a standalone server again.
pub async fn left_post(State(d): State<Arc<Daemon>>) -> ApiResult<Response> {
    let work = d.clone();
    tokio::spawn(async move {
        // One way out at a time (a formation's undo may ask too).
        let _one = work.leaving.lock().await;
        if !work.is_clustered().await.unwrap_or(true) {
            return;
        }
        if let Err(e) = rxd_cluster::leave::become_standalone(&*work).await {
            tracing::error!("Failed to become standalone after removal: {}", e.message);
        }
    });
    Ok(empty())
}
