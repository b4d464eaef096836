//! `/1.0/cluster/groups`: cluster groups. The `default` group always exists and every member
//! joins it; a member always belongs to one group at least (checked where the write applies).
//! A group has LXD 5.0.2's fields only: no `used_by`, which a later LXD added.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use rxd_api::{ClusterGroup, ClusterGroupPost, ClusterGroupPut, ClusterGroupsPost};
use rxd_db::{tables, ApplyError, Command, Entity};
use serde::Deserialize;

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::handlers::{recursion, QueryMap};
use crate::response::{check_etag, created, empty, sync, sync_etag, CompareAndSet, JsonBody};
use crate::Daemon;

fn to_api(g: tables::ClusterGroup) -> ClusterGroup {
    ClusterGroup {
        put: ClusterGroupPut {
            description: g.description,
            members: g.members,
        },
        name: g.name,
    }
}

fn url(name: &str) -> String {
    format!("/1.0/cluster/groups/{name}")
}

/// LXD's rules for a group name.
pub fn validate_name(name: &str) -> ApiResult<()> {
    let refusal = if name.is_empty() {
        "Cluster group name cannot be empty"
    } else if name == "*" {
        "Reserved cluster group name"
    } else if name.contains('/') {
        "Cluster group names may not contain slashes"
    } else if name.contains(' ') {
        "Cluster group names may not contain spaces"
    } else if name.contains('_') {
        "Cluster group names may not contain underscores"
    } else if name.contains('\'') || name.contains('"') {
        "Cluster group names may not contain quotes"
    } else if name == "." || name == ".." || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "Invalid cluster group name {name:?}"
        )));
    } else {
        return Ok(());
    };
    Err(ApiError::bad_request(refusal))
}

async fn clustered(d: &Daemon) -> ApiResult<()> {
    if d.is_clustered().await? {
        Ok(())
    } else {
        Err(ApiError::bad_request("This server is not clustered"))
    }
}

/// Refuses member names that are not members, with a sentence rather than a bare 404.
async fn check_members(d: &Daemon, names: &[String]) -> ApiResult<()> {
    let members = d.db().read(tables::members).await?;
    for name in names {
        if !members.iter().any(|m| &m.name == name) {
            return Err(ApiError::bad_request(format!(
                "Cluster member {name:?} doesn't exist"
            )));
        }
    }
    Ok(())
}

fn refusal(e: ApplyError) -> ApiError {
    match e {
        ApplyError::Exists {
            entity: Entity::ClusterGroup,
            ..
        } => ApiError::conflict("This cluster group already exists"),
        ApplyError::InUse {
            entity: Entity::ClusterGroup,
            ..
        } => ApiError::bad_request("Only empty cluster groups can be removed"),
        ApplyError::NotFound {
            entity: Entity::Member,
            name,
        } => ApiError::bad_request(format!("Cluster member {name:?} doesn't exist")),
        other => other.into(),
    }
}

/// `GET /1.0/cluster/groups`.
pub async fn cluster_groups_get(State(d): State<Arc<Daemon>>, q: QueryMap) -> ApiResult<Response> {
    clustered(&d).await?;
    let groups = d.db().read(tables::cluster_groups).await?;
    if recursion(&q) {
        Ok(sync(groups.into_iter().map(to_api).collect::<Vec<_>>()))
    } else {
        Ok(sync(
            groups.iter().map(|g| url(&g.name)).collect::<Vec<_>>(),
        ))
    }
}

/// `POST /1.0/cluster/groups`.
pub async fn cluster_groups_post(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    JsonBody(post): JsonBody<ClusterGroupsPost>,
) -> ApiResult<Response> {
    clustered(&d).await?;
    validate_name(&post.name)?;
    check_members(&d, &post.put.members).await?;
    d.db()
        .propose(Command::CreateClusterGroup {
            name: post.name.clone(),
            description: post.put.description.clone(),
            members: post.put.members.clone(),
        })
        .await?
        .map_err(refusal)?;
    d.events.lifecycle(
        "cluster-group-created",
        &url(&post.name),
        None,
        Some(caller.requestor()),
    );
    Ok(created(&url(&post.name)))
}

/// `GET /1.0/cluster/groups/{name}`.
pub async fn cluster_group_get(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    clustered(&d).await?;
    let group = to_api(
        d.db()
            .read(move |c| tables::cluster_group(c, &name))
            .await?,
    );
    let etag = rxd_api::etag(&group.put);
    Ok(sync_etag(group, &etag))
}

/// A `PATCH` body: what it leaves out (or sends as `null`) stays as it is.
#[derive(Debug, Deserialize)]
pub struct ClusterGroupPatch {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    members: Option<Vec<String>>,
}

async fn update(
    d: &Daemon,
    caller: &Caller,
    name: &str,
    headers: &HeaderMap,
    patch: ClusterGroupPatch,
) -> ApiResult<Response> {
    clustered(d).await?;
    if let Some(members) = &patch.members {
        check_members(d, members).await?;
    }
    let mut cas = CompareAndSet::new(headers);
    loop {
        let row = {
            let name = name.to_string();
            d.db()
                .read(move |c| tables::cluster_group(c, &name))
                .await?
        };
        let current = to_api(row.clone());
        check_etag(headers, &rxd_api::etag(&current.put))?;
        let write = Command::UpdateClusterGroup {
            name: name.to_string(),
            description: patch.description.clone().unwrap_or(current.put.description),
            members: patch.members.clone().unwrap_or(current.put.members),
        }
        .only_if(rxd_db::Expected::ClusterGroup(row));
        let applied = match d.db().propose(write).await? {
            Err(e @ ApplyError::Changed { .. }) => Err(e),
            Err(e) => return Err(refusal(e)),
            ok => ok,
        };
        if cas.outcome(applied)?.is_some() {
            break;
        }
    }
    d.events.lifecycle(
        "cluster-group-updated",
        &url(name),
        None,
        Some(caller.requestor()),
    );
    Ok(empty())
}

/// `PUT /1.0/cluster/groups/{name}`.
pub async fn cluster_group_put(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    JsonBody(put): JsonBody<ClusterGroupPut>,
) -> ApiResult<Response> {
    let whole = ClusterGroupPatch {
        description: Some(put.description),
        members: Some(put.members),
    };
    update(&d, &caller, &name, &headers, whole).await
}

/// `PATCH /1.0/cluster/groups/{name}`.
pub async fn cluster_group_patch(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    JsonBody(patch): JsonBody<ClusterGroupPatch>,
) -> ApiResult<Response> {
    update(&d, &caller, &name, &headers, patch).await
}

/// `POST /1.0/cluster/groups/{name}`: rename.
pub async fn cluster_group_post(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(post): JsonBody<ClusterGroupPost>,
) -> ApiResult<Response> {
    if name == "default" {
        return Err(ApiError::forbidden_with(
            "The \"default\" group cannot be renamed",
        ));
    }
    clustered(&d).await?;
    validate_name(&post.name)?;
    d.db()
        .propose(Command::RenameClusterGroup {
            name: name.clone(),
            new_name: post.name.clone(),
        })
        .await?
        .map_err(|e| match e {
            ApplyError::Exists { .. } => {
                ApiError::conflict(format!("Name {:?} already in use", post.name))
            }
            other => refusal(other),
        })?;
    d.events.lifecycle(
        "cluster-group-renamed",
        &url(&post.name),
        Some(serde_json::json!({"old_name": name})),
        Some(caller.requestor()),
    );
    Ok(created(&url(&post.name)))
}

/// `DELETE /1.0/cluster/groups/{name}`.
pub async fn cluster_group_delete(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    if name == "default" {
        return Err(ApiError::forbidden_with(
            "The 'default' cluster group cannot be deleted",
        ));
    }
    clustered(&d).await?;
    d.db()
        .propose(Command::DeleteClusterGroup { name: name.clone() })
        .await?
        .map_err(refusal)?;
    d.events.lifecycle(
        "cluster-group-deleted",
        &url(&name),
        None,
        Some(caller.requestor()),
    );
    Ok(empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_follow_lxd() {
        for ok in ["default", "fast", "rack-1", "a.b", "ü"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("", "Cluster group name cannot be empty"),
            ("*", "Reserved cluster group name"),
            ("a/b", "Cluster group names may not contain slashes"),
            ("a b", "Cluster group names may not contain spaces"),
            ("a_b", "Cluster group names may not contain underscores"),
            ("a'b", "Cluster group names may not contain quotes"),
            ("..", "Invalid cluster group name \"..\""),
        ] {
            assert_eq!(validate_name(bad).unwrap_err().to_string(), why);
        }
    }
}
