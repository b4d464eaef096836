//! One module per endpoint group, named after its URL.

pub mod certificates;
pub mod cluster;
pub mod cluster_members;
pub mod events;
pub mod internal;
pub mod internal_cluster;
pub mod networks;
pub mod operations;
pub mod profiles;
pub mod projects;
pub mod resources;
pub mod server;
pub mod storage_pools;
pub mod warnings;

use std::collections::HashMap;

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

/// The metadata of a `GET path` answered by the member `?target=` names, as LXD forwards a
/// target; `None` without a target or when it names this member. The target's address is
/// read from this member's copy of the member list: routing a read needs no quorum, so a
/// member answers for itself while others are down.
pub async fn get_on_target(
    d: &crate::Daemon,
    q: &HashMap<String, String>,
    path: &str,
) -> crate::error::ApiResult<Option<serde_json::Value>> {
    use crate::error::ApiError;
    use axum::http::StatusCode;
    let Some(t) = target(q).map(str::to_string) else {
        return Ok(None);
    };
    if t == d.own_member().await?.name {
        return Ok(None);
    }
    let name = t.clone();
    let m = d
        .db()
        .read_local(move |c| rxd_db::tables::member(c, &name))
        .await?;
    let c = crate::peer::member_client(d, &m.address)?;
    let raw = c.request("GET", path, None, None).await.map_err(|e| {
        let message = internal_cluster::api_message(&e);
        match e.status() {
            // The member's own refusal is passed on as it is.
            Some(s) => ApiError::new(
                StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_GATEWAY),
                message,
            ),
            None => ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("Failed to reach cluster member {t:?}: {message}"),
            ),
        }
    })?;
    Ok(Some(raw.envelope.metadata))
}
