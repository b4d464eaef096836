//! One module per endpoint group, named after its URL.

pub mod certificates;
pub mod cluster;
pub mod cluster_certificate;
pub mod cluster_groups;
pub mod cluster_members;
pub mod events;
pub mod formation;
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

/// How long a change sent on to a member waits for that member's events to be relayed here.
pub const RELAY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

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
    request_on_member(d, member, None, "GET", path, None, None).await
}

/// Sends a request to `member`, as LXD forwards `?target=`: the member's own refusal (a bad
/// key, a stale ETag) passes through as it is; a member that cannot be reached is a 502
/// naming it. With `for_caller`, the member is told whom it acts for (the requestor of its
/// lifecycle events).
///
/// A change is sent only once this member relays the member's events (waiting at most
/// [`RELAY_WAIT`], for a member that has just joined): `lxc` waits for an operation on the
/// events of the member it asked, and an operation that ended before them would never end
/// for it.
pub async fn request_on_member(
    d: &Daemon,
    member: &tables::Member,
    for_caller: Option<&crate::access::Caller>,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
    if_match: Option<&str>,
) -> ApiResult<rxd_client::RawResponse> {
    if method != "GET" && !d.relayed.wait_for(&member.address, RELAY_WAIT).await {
        tracing::warn!(
            "Sending a request on to member {:?} before its events are relayed here",
            member.name
        );
    }
    let mut c = crate::peer::member_client(d, &member.address)?;
    if let Some(caller) = for_caller {
        let r = caller.requestor();
        c = c.forwarding_for(&r.username, &r.protocol, &r.address);
    }
    c.request(method, path, body, if_match)
        .await
        .map_err(|e| member_error(member, &e))
}

/// A member's answer, passed on as it came: status, envelope, `ETag` and `Location`.
pub fn passed_on(raw: rxd_client::RawResponse) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    use axum::response::IntoResponse;

    let status = StatusCode::from_u16(raw.status).unwrap_or(StatusCode::OK);
    let mut r = (status, axum::Json(raw.envelope)).into_response();
    if let Some(v) = raw
        .etag
        .and_then(|e| HeaderValue::from_str(&format!("\"{e}\"")).ok())
    {
        r.headers_mut().insert(header::ETAG, v);
    }
    if let Some(v) = raw.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// A member's own error as it answered it (its status and sentence); a member that cannot be
/// reached is a 502 naming it.
pub fn member_error(member: &tables::Member, e: &rxd_client::ClientError) -> ApiError {
    let message = internal_cluster::api_message(e);
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
}

/// The member a request's `?target=` names, when it is another one; `None` without a target
/// or when it names this member. LXD's sentences: a target on a standalone server is a 400,
/// an unknown member a 404. A member the heartbeats say is offline is named at once rather
/// than waited for. The member list is this member's own copy: routing needs no quorum, so a
/// member answers for itself while others are down.
pub async fn target_member(d: &Daemon, target: &str) -> ApiResult<Option<tables::Member>> {
    let own = d.own_member().await?;
    if own.name == "none" {
        return Err(ApiError::bad_request("This server is not clustered"));
    }
    if own.name == target {
        return Ok(None);
    }
    let members = d.db().read_local(tables::members).await?;
    let member = members
        .into_iter()
        .find(|m| m.name == target)
        .ok_or_else(|| ApiError::not_found("Cluster member not found"))?;
    let threshold = rxd_cluster::heartbeat::threshold(d).await;
    if !rxd_cluster::heartbeat::answers_heartbeats(d, member.id, threshold) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "Cluster member {:?} is offline: {}",
                member.name,
                rxd_cluster::heartbeat::silence(d, member.id)
            ),
        ));
    }
    Ok(Some(member))
}
