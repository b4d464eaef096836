//! `/1.0/resources`: this member's hardware (another member's with `?target=`, which the
//! router hands to that member).

use axum::response::Response;

use crate::error::{ApiError, ApiResult};
use crate::response::sync;

/// `GET /1.0/resources[?target=]`.
pub async fn resources_get() -> ApiResult<Response> {
    let res = tokio::task::spawn_blocking(crate::resources::read)
        .await
        .map_err(|e| ApiError::internal(format!("Failed to retrieve resources: {e}")))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(sync(res))
}
