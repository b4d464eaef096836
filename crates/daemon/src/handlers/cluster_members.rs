//! `/1.0/cluster/members`: the member list, one member, and join tokens.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use rxd_api::{ClusterMember, ClusterMemberPut, ClusterMembersPost, Operation};
use rxd_cluster::heartbeat;
use rxd_db::tables::{self, Member, Token};
use rxd_db::Command;

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::handlers::{recursion, QueryMap};
use crate::response::{operation, sync, sync_etag, JsonBody};
use crate::Daemon;

fn member_to_api(
    m: Member,
    d: &Daemon,
    threshold: std::time::Duration,
    standbys: &std::collections::BTreeSet<u64>,
) -> ClusterMember {
    let status = d.db().status();
    let mut roles = m.roles.clone();
    let voter = status.voters.contains_key(&m.id);
    let standby = !voter && standbys.contains(&m.id);
    if status.leader_id == Some(m.id) {
        roles.push("database-leader".into());
    }
    if voter {
        roles.push("database".into());
    }
    if standby {
        roles.push("database-standby".into());
    }
    let (status_text, message) = heartbeat::status_of(d, &m, threshold);
    ClusterMember {
        put: ClusterMemberPut {
            roles,
            failure_domain: m.failure_domain,
            description: m.description,
            config: m.config,
            groups: m.groups,
        },
        url: format!("https://{}", m.address),
        database: voter || standby,
        status: status_text,
        message,
        architecture: m.architecture,
        server_name: m.name,
    }
}

/// Every member as the API shows it.
pub async fn members_api(d: &Daemon) -> ApiResult<Vec<ClusterMember>> {
    let members = d.db().read(tables::members).await?;
    Ok(view(d, members).await)
}

/// Every member as this member's replica has it, without asking the leader (empty on a
/// standalone server): for metrics, which must answer while the cluster has no leader.
pub async fn local_view(d: &Daemon) -> ApiResult<Vec<ClusterMember>> {
    if !d.is_clustered().await? {
        return Ok(Vec::new());
    }
    let members = d.db().read_local(tables::members).await?;
    Ok(view(d, members).await)
}

/// The members' rows as the API shows them.
async fn view(d: &Daemon, members: Vec<tables::Member>) -> Vec<ClusterMember> {
    let t = heartbeat::threshold(d).await;
    let standbys = heartbeat::standbys(d, &members, t).await;
    members
        .into_iter()
        .map(|m| member_to_api(m, d, t, &standbys))
        .collect()
}

/// `GET /1.0/cluster/members`.
pub async fn cluster_members_get(State(d): State<Arc<Daemon>>, q: QueryMap) -> ApiResult<Response> {
    if !d.is_clustered().await? {
        // LXD answers 500; asking a standalone server for members is a client mistake.
        return Err(ApiError::bad_request("Server is not clustered"));
    }
    if recursion(&q) {
        Ok(sync(members_api(&d).await?))
    } else {
        let members = d.db().read(tables::members).await?;
        let urls: Vec<String> = members
            .iter()
            .map(|m| format!("/1.0/cluster/members/{}", m.name))
            .collect();
        Ok(sync(urls))
    }
}

/// `GET /1.0/cluster/members/{name}`.
pub async fn cluster_member_get(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let member = members_api(&d)
        .await?
        .into_iter()
        .find(|m| m.server_name == name)
        .ok_or_else(|| ApiError::not_found("Cluster member not found"))?;
    let etag = rxd_api::etag(&member.put);
    Ok(sync_etag(member, &etag))
}

/// The operation that shows a stored token.
pub fn token_operation(t: &Token) -> Operation {
    let metadata = if t.kind == "join" {
        serde_json::json!({
            "addresses": t.addresses,
            "expiresAt": t.expires_at,
            "fingerprint": t.fingerprint,
            "secret": t.secret,
            "serverName": t.name,
        })
    } else {
        serde_json::json!({
            "addresses": t.addresses,
            "expiresAt": t.expires_at,
            "fingerprint": t.fingerprint,
            "secret": t.secret,
            "request": {"name": t.name, "type": "client"},
        })
    };
    Operation {
        id: t.id.clone(),
        class: "token".into(),
        description: "Executing operation".into(),
        created_at: t.created_at.clone(),
        updated_at: t.created_at.clone(),
        status: "Running".into(),
        status_code: 103,
        resources: Some(serde_json::json!({"cluster": null})),
        metadata: Some(metadata),
        may_cancel: true,
        err: String::new(),
        location: t.location.clone(),
    }
}

/// `POST /1.0/cluster/members`: a join token for a new member.
pub async fn cluster_members_post(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    JsonBody(post): JsonBody<ClusterMembersPost>,
) -> ApiResult<Response> {
    if !d.is_clustered().await? {
        return Err(ApiError::bad_request("This server is not clustered"));
    }
    let token = rxd_cluster::tokens::issue_join(&*d, &post.server_name, d.location().await).await?;
    let op = token_operation(&token);
    d.events.send(
        "operation",
        serde_json::to_value(&op).expect("operations serialise"),
        "default",
    );
    d.events.lifecycle(
        "cluster-token-created",
        "/1.0/cluster/members",
        None,
        Some(caller.requestor()),
    );
    Ok(operation(&op))
}

const SETTABLE_ROLES: &[&str] = &["event-hub", "ovn-chassis"];
const COMPUTED_ROLES: &[&str] = &["database", "database-leader", "database-standby"];

async fn update(
    d: &Daemon,
    caller: &Caller,
    name: &str,
    headers: &axum::http::HeaderMap,
    put: ClusterMemberPut,
    merge: bool,
) -> ApiResult<Response> {
    let mut cas = crate::response::CompareAndSet::new(headers);
    while update_once(d, name, headers, &put, merge, &mut cas)
        .await?
        .is_none()
    {}
    d.events.lifecycle(
        "cluster-member-updated",
        &format!("/1.0/cluster/members/{name}"),
        None,
        Some(caller.requestor()),
    );
    Ok(crate::response::empty())
}

/// One read-check-write of [`update`]; `None` when it lost a race and is computed again.
async fn update_once(
    d: &Daemon,
    name: &str,
    headers: &axum::http::HeaderMap,
    put: &ClusterMemberPut,
    merge: bool,
    cas: &mut crate::response::CompareAndSet,
) -> ApiResult<Option<rxd_db::Response>> {
    let members = d.db().read(tables::members).await?;
    let row = members
        .iter()
        .find(|m| m.name == name)
        .cloned()
        .ok_or_else(|| ApiError::not_found("Cluster member not found"))?;
    let current = view(d, members)
        .await
        .into_iter()
        .find(|m| m.server_name == name)
        .expect("the row just found is shown");
    crate::response::check_etag(headers, &rxd_api::etag(&current.put))?;
    // A PATCH that leaves the roles out keeps them, as LXD's does.
    let asked = if merge && put.roles.is_empty() {
        &current.put.roles
    } else {
        &put.roles
    };
    let is_db = current.put.roles.iter().any(|r| r == "database");
    let asks_db = asked.iter().any(|r| r == "database");
    if is_db && !asks_db {
        return Err(ApiError::bad_request(
            "The \"database\" role cannot be dropped at this time",
        ));
    }
    if !is_db && asks_db {
        return Err(ApiError::bad_request(
            "The \"database\" role cannot be added at this time",
        ));
    }
    let mut roles = Vec::new();
    for r in asked {
        if COMPUTED_ROLES.contains(&r.as_str()) {
            continue;
        }
        if !SETTABLE_ROLES.contains(&r.as_str()) {
            return Err(ApiError::bad_request(format!("Invalid cluster role {r:?}")));
        }
        if !roles.contains(r) {
            roles.push(r.clone());
        }
    }
    for key in put.config.keys() {
        if key != "scheduler.instance" && !key.starts_with("user.") {
            return Err(ApiError::bad_request(format!(
                "Invalid cluster configuration key {key:?}"
            )));
        }
    }
    if let Some(v) = put.config.get("scheduler.instance") {
        if !["", "all", "group", "manual"].contains(&v.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Invalid value for scheduler.instance: {v:?} (all, group or manual)"
            )));
        }
    }
    let mut config = if merge {
        current.put.config.clone()
    } else {
        Default::default()
    };
    config.extend(put.config.clone());
    // An empty value unsets the key, as in LXD: `lxc cluster unset` sends one.
    config.retain(|_, v| !v.is_empty());
    let groups = if merge && put.groups.is_empty() {
        current.put.groups.clone()
    } else {
        put.groups.clone()
    };
    if groups.is_empty() {
        return Err(ApiError::bad_request(
            "Cluster members need to belong to at least one group",
        ));
    }
    let known = d.db().read(tables::cluster_groups).await?;
    for group in &groups {
        if !known.iter().any(|g| &g.name == group) {
            return Err(ApiError::bad_request(format!(
                "Cluster group {group:?} doesn't exist"
            )));
        }
    }
    let failure_domain = if put.failure_domain.is_empty() {
        if merge {
            current.put.failure_domain.clone()
        } else {
            return Err(ApiError::bad_request(
                "Update failure domain: Failure domain name can't be empty",
            ));
        }
    } else {
        put.failure_domain.clone()
    };
    let description = if merge && put.description.is_empty() {
        current.put.description.clone()
    } else {
        put.description.clone()
    };
    let write = Command::UpdateMember {
        id: row.id,
        description,
        failure_domain,
        config,
        roles,
        groups,
    }
    .only_if(rxd_db::Expected::Member(row));
    match d.db().propose(write).await? {
        // A group deleted meanwhile.
        Err(rxd_db::ApplyError::NotFound {
            entity: rxd_db::Entity::ClusterGroup,
            name,
        }) => Err(ApiError::bad_request(format!(
            "Cluster group {name:?} doesn't exist"
        ))),
        applied => cas.outcome(applied),
    }
}

/// `PUT /1.0/cluster/members/{name}`.
pub async fn cluster_member_put(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    JsonBody(put): JsonBody<ClusterMemberPut>,
) -> ApiResult<Response> {
    update(&d, &caller, &name, &headers, put, false).await
}

/// `PATCH /1.0/cluster/members/{name}`.
pub async fn cluster_member_patch(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    JsonBody(put): JsonBody<ClusterMemberPut>,
) -> ApiResult<Response> {
    update(&d, &caller, &name, &headers, put, true).await
}

/// `POST /1.0/cluster/members/{name}`: rename.
pub async fn cluster_member_post(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(post): JsonBody<ClusterMembersPost>,
) -> ApiResult<Response> {
    // LXD accepts any new name, even ""; rxd holds renames to the rules for new members.
    crate::handlers::cluster::validate_member_name(&post.server_name)?;
    let id = {
        let name = name.clone();
        d.db().read(move |c| tables::member(c, &name)).await?.id
    };
    d.db()
        .propose(Command::RenameMember {
            id,
            new_name: post.server_name.clone(),
        })
        .await?
        .map_err(|e| match e {
            rxd_db::ApplyError::Exists { name, .. } => ApiError::conflict(format!(
                "A cluster member already exists with name {name:?}"
            )),
            other => other.into(),
        })?;
    if id == d.node_id() {
        d.events.set_location(&post.server_name);
    }
    d.events.lifecycle(
        "cluster-member-renamed",
        &format!("/1.0/cluster/members/{}", post.server_name),
        Some(serde_json::json!({"old_name": name})),
        Some(caller.requestor()),
    );
    Ok(crate::response::empty())
}

/// `POST /1.0/cluster/members/{name}/state` body.
#[derive(Debug, serde::Deserialize)]
pub struct ClusterMemberStatePost {
    /// `evacuate` or `restore`.
    pub action: String,
    /// Evacuation mode, handed to the workloads (empty for the default).
    #[serde(default)]
    pub mode: String,
}

/// `POST /1.0/cluster/members/{name}/state`: evacuate or restore, carried out by the member
/// named (sent on to it as LXD's `clusterNodeStatePost` does) as a task operation
/// (`crate::evacuation`).
pub async fn cluster_member_state_post(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(name): Path<String>,
    uri: axum::http::Uri,
    JsonBody(post): JsonBody<ClusterMemberStatePost>,
) -> ApiResult<Response> {
    use crate::evacuation::Action;
    if let Some(member) = crate::handlers::target_member(&d, &name).await? {
        let path = uri.path();
        let body = serde_json::json!({ "action": post.action, "mode": post.mode });
        let raw = crate::handlers::request_on_member(
            &d,
            &member,
            Some(&caller),
            "POST",
            path,
            Some(body),
            None,
        )
        .await?;
        return Ok(crate::handlers::passed_on(raw));
    }
    let action = match post.action.as_str() {
        "evacuate" => Action::Evacuate,
        "restore" => Action::Restore,
        other => return Err(ApiError::bad_request(format!("Unknown action {other:?}"))),
    };
    // Whether it is pending or already in that state is decided where the change applies.
    let m = d.own_member().await?;
    let op = crate::evacuation::start(&d, m, action, post.mode, caller.requestor());
    Ok(operation(&op))
}

/// `DELETE /1.0/cluster/members/{name}[?force=1]`: runs on the leader.
pub async fn cluster_member_delete(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(name): Path<String>,
    q: QueryMap,
) -> ApiResult<Response> {
    let force = q.get("force").is_some_and(|v| v == "1" || v == "true");
    let path = format!(
        "/1.0/cluster/members/{name}{}",
        if force { "?force=1" } else { "" }
    );
    if let Some(r) = rxd_cluster::accept::forward_to_leader(&*d, "DELETE", &path, None).await? {
        return Ok(crate::response::sync(r));
    }
    rxd_cluster::leave::remove_member(&*d, &name, force).await?;
    d.events.lifecycle(
        "cluster-member-removed",
        &format!("/1.0/cluster/members/{name}"),
        None,
        Some(caller.requestor()),
    );
    Ok(crate::response::empty())
}
