//! `/1.0/resources`: this member's hardware, or another member's with `?target=`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use crate::error::{ApiError, ApiResult};
use crate::handlers::{get_on_target, QueryMap};
use crate::response::sync;
use crate::Daemon;

/// `GET /1.0/resources[?target=]`.
pub async fn resources_get(State(d): State<Arc<Daemon>>, q: QueryMap) -> ApiResult<Response> {
    if let Some(answer) = get_on_target(&d, &q, "/1.0/resources").await? {
        return Ok(sync(answer));
    }
    let res = tokio::task::spawn_blocking(crate::resources::read)
        .await
        .map_err(|e| ApiError::internal(format!("Failed to retrieve resources: {e}")))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(sync(res))
}
