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
    let threshold = crate::heartbeat::threshold(d).await;
    if !crate::heartbeat::answers_heartbeats(d, member.id, threshold) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "Cluster member {:?} is offline: {}",
                member.name,
                crate::heartbeat::silence(d, member.id)
            ),
        ));
    }
    Ok(Some(member))
}

/// Middleware: a request with `?target=` on an endpoint whose answer depends on the member
/// ([`crate::router::forwards_target`]) is carried out by that member, as LXD's
/// `ForwardedResponseIfTargetIsRemote` does: the same method, path and query (the target
/// answers for itself), body and `If-Match`; its status, body, `ETag` and `Location` come
/// back as they are. It runs after the access check, so the member that was asked decides
/// who may ask; on a public endpoint only a caller with full rights is forwarded, since the
/// target sees its member certificate.
pub async fn forward_to_target(
    axum::extract::State(d): axum::extract::State<std::sync::Arc<Daemon>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;

    let path = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    if !crate::router::forwards_target(req.method(), &path) {
        return next.run(req).await;
    }
    let Some(wanted) = axum::extract::Query::<HashMap<String, String>>::try_from_uri(req.uri())
        .ok()
        .and_then(|q| target(&q).map(str::to_string))
    else {
        return next.run(req).await;
    };
    let full_rights = req
        .extensions()
        .get::<crate::access::Caller>()
        .is_some_and(crate::access::Caller::is_admin);
    if crate::router::access_of(req.method(), &path) == crate::access::Access::Public
        && !full_rights
    {
        return next.run(req).await;
    }
    let member = match target_member(&d, &wanted).await {
        Ok(Some(member)) => member,
        Ok(None) => return next.run(req).await,
        Err(e) => return e.into_response(),
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, crate::response::MAX_BODY).await else {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body is too large")
            .into_response();
    };
    let body = if bytes.is_empty() {
        None
    } else {
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(v) => Some(v),
            // Not JSON: this member's handler refuses it with the usual sentence.
            Err(_) => {
                let req = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
                return next.run(req).await;
            }
        }
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| parts.uri.path().to_string());
    let if_match = parts
        .headers
        .get(axum::http::header::IF_MATCH)
        .and_then(|v| v.to_str().ok());
    match request_on_member(
        &d,
        &member,
        parts.method.as_str(),
        &path_and_query,
        body,
        if_match,
    )
    .await
    {
        Ok(raw) => answer_of(raw),
        Err(e) => e.into_response(),
    }
}

/// A member's answer, passed on as it came: status, envelope, `ETag` and `Location`.
fn answer_of(raw: rxd_client::RawResponse) -> axum::response::Response {
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
