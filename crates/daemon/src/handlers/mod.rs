//! One module per endpoint group, named after its URL.

pub mod certificates;
pub mod cluster;
pub mod cluster_certificate;
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
pub mod resources;
pub mod server;
pub mod storage_pools;
pub mod warnings;

use std::collections::HashMap;

use axum::http::StatusCode;
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
    request_on_member(d, member, "GET", path, None, None).await
}

/// Sends a request to `member`, as LXD forwards `?target=`: the member's own refusal (a bad
/// key, a stale ETag) passes through as it is; a member that cannot be reached is a 502
/// naming it.
pub async fn request_on_member(
    d: &Daemon,
    member: &tables::Member,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
    if_match: Option<&str>,
) -> ApiResult<rxd_client::RawResponse> {
    let c = crate::peer::member_client(d, &member.address)?;
    c.request(method, path, body, if_match).await.map_err(|e| {
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

/// The metadata of a `GET path` answered by the member `?target=` names, as LXD forwards a
/// target; `None` without a target or when it names this member. The target's address is
/// read from this member's copy of the member list: routing a read needs no quorum, so a
/// member answers for itself while others are down.
pub async fn get_on_target(
    d: &Daemon,
    q: &HashMap<String, String>,
    path: &str,
) -> ApiResult<Option<serde_json::Value>> {
    let Some(t) = target(q).map(str::to_string) else {
        return Ok(None);
    };
    if d.own_member().await?.name == t {
        return Ok(None);
    }
    let member = d.db().read_local(move |c| tables::member(c, &t)).await?;
    let raw = get_on_member(d, &member, path).await?;
    Ok(Some(raw.envelope.metadata))
}
