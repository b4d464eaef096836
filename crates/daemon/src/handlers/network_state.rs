//! `GET /1.0/networks/{name}/state`: an interface of this member (managed or not) as the kernel
//! shows it, or of the member `?target=` names, which answers for itself.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;

use crate::error::{ApiError, ApiResult};
use crate::handlers::{get_on_target, QueryMap};
use crate::response::sync;
use crate::Daemon;

/// `GET /1.0/networks/{name}/state[?target=]`.
pub async fn network_state_get(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
    q: QueryMap,
) -> ApiResult<Response> {
    let path = format!("/1.0/networks/{}/state", rxd_client::encode(&name));
    if let Some(answer) = get_on_target(&d, &q, &path).await? {
        return Ok(sync(answer));
    }
    let state = rxd_network::state::read(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Network interface {name:?} not found")))?;
    Ok(sync(state))
}
