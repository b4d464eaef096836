//! One module per endpoint group, named after its URL.

pub mod certificates;
pub mod cluster;
pub mod cluster_members;
pub mod events;
pub mod internal;
pub mod internal_cluster;
pub mod network_leases;
pub mod network_state;
pub mod networks;
pub mod operations;
pub mod profiles;
pub mod projects;
pub mod server;
pub mod storage_pools;

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::Response;
use rxd_db::tables;

use crate::error::{ApiError, ApiResult};
use crate::Daemon;

/// Query parameters, as a map.
pub type QueryMap = axum::extract::Query<HashMap<String, String>>;

/// Whether `?recursion=` asks for full objects.
pub fn recursion(q: &HashMap<String, String>) -> bool {
    q.get("recursion")
        .is_some_and(|v| v != "0" && !v.is_empty())
}

/// `?target=`, when given and not empty.
pub fn target(q: &HashMap<String, String>) -> Option<&str> {
    q.get("target")
        .map(String::as_str)
        .filter(|t| !t.is_empty())
}

/// The answer of `member` to `GET path`: its own errors pass through as they are, and a member
/// that cannot be reached is a 502 naming it.
pub async fn get_on_member(
    d: &Daemon,
    member: &tables::Member,
    path: &str,
) -> ApiResult<rxd_client::RawResponse> {
    let c = crate::peer::member_client(d, &member.address)?;
    c.request("GET", path, None, None).await.map_err(|e| {
        let message = internal_cluster::api_message(&e);
        match e.status().and_then(|s| StatusCode::from_u16(s).ok()) {
            Some(status) => ApiError::new(status, message),
            None => ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!(
                    "Failed to reach cluster member {:?}: {message}",
                    member.name
                ),
            ),
        }
    })
}

/// With `?target=` naming another member, that member's answer to `GET path`, as LXD forwards
/// `?target=`; `None` when the request is this member's to answer.
pub async fn forward_get(
    d: &Daemon,
    q: &HashMap<String, String>,
    path: &str,
) -> ApiResult<Option<Response>> {
    let Some(t) = target(q).map(str::to_string) else {
        return Ok(None);
    };
    if d.own_member().await?.name == t {
        return Ok(None);
    }
    let member = d.db().read(move |c| tables::member(c, &t)).await?;
    let raw = get_on_member(d, &member, path).await?;
    Ok(Some(crate::response::sync(raw.envelope.metadata)))
}
