//! `GET /1.0/networks/{name}/state`: an interface of this member (managed or not) as the kernel
//! shows it; with `?target=` the router hands the request to that member.

use axum::extract::Path;
use axum::response::Response;

use crate::error::{ApiError, ApiResult};
use crate::response::sync;

/// `GET /1.0/networks/{name}/state[?target=]`.
pub async fn network_state_get(Path(name): Path<String>) -> ApiResult<Response> {
    let state = rxd_network::state::read(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Network interface {name:?} not found")))?;
    Ok(sync(state))
}
