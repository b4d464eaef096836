//! `/internal/cluster/*` and `/internal/heartbeat`: accepting a joining member on the leader,
//! and liveness. Requests that must run on the leader are forwarded to it.
//!
//! ```text
//!  joiner ─accept─> any member ─(forward)─> leader: checks, AddMember(Pending) ─> id, key
//!  joiner ─joined─> leader: add raft learner (caught up) ─> Created ─> rebalance
//!  joiner ─abort──> leader: remove raft node, member row and its certificate
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use base64::Engine;
use rxd_db::tables::{self, Config, MemberState};
use rxd_db::Command;
use serde::{Deserialize, Serialize};

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::heartbeat::Heartbeat;
use crate::response::{empty, sync, JsonBody};
use crate::Daemon;

/// What a joiner tells the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcceptRequest {
    /// Its member name.
    pub name: String,
    /// Its cluster address.
    pub address: String,
    /// Its cluster schema version.
    pub schema: i64,
    /// How many API extensions it implements.
    pub api: usize,
    /// Its architecture.
    pub architecture: String,
    /// Its member-specific keys for every pool it prepared.
    pub storage_pools: BTreeMap<String, Config>,
    /// Its member-specific keys for every managed network it brought up.
    #[serde(default)]
    pub networks: BTreeMap<String, Config>,
    /// Set by a member that forwards the request: the certificate of the joiner that called it.
    #[serde(default)]
    pub joiner_fingerprint: Option<String>,
}

/// What the leader answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcceptResponse {
    /// The joiner's member and raft node id.
    pub id: u64,
    /// The cluster key, base64 of its PEM.
    pub private_key: String,
    /// Fingerprints of every member's certificate, trusted before the replica catches up.
    pub member_fingerprints: Vec<String>,
}

/// A joiner reporting progress or giving up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinProgress {
    /// The joiner's member id.
    pub id: u64,
}

/// The leader's answer to an abort: the join's one commit point is the leader marking the
/// member `Created`, so an abort either comes before it (the member is forgotten) or after it
/// (the member stays, and the joiner must finish its side).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AbortResponse {
    /// The member is a full member and was kept.
    #[serde(default)]
    pub member: bool,
}

/// Runs `path` on the leader: here when this member leads, else forwarded.
async fn on_leader<T: Serialize>(d: &Daemon, path: &str, body: &T) -> ApiResult<Option<Response>> {
    let body = serde_json::to_value(body).expect("internal bodies serialise");
    forward_to_leader(d, "POST", path, Some(body)).await
}

/// Sends the request to the raft leader and answers with its metadata; `None` when this
/// member is the leader and should handle the request itself.
pub async fn forward_to_leader(
    d: &Daemon,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> ApiResult<Option<Response>> {
    let status = d.db().status();
    if status.leader_id == Some(status.id) {
        return Ok(None);
    }
    let address = status
        .leader_address
        .ok_or_else(|| ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "No leader"))?;
    let c = crate::peer::member_client(d, &address)?;
    let raw = c
        .request(method, path, body, None)
        .await
        .map_err(|e| match e.status() {
            Some(s) => ApiError::new(
                axum::http::StatusCode::from_u16(s).unwrap_or(axum::http::StatusCode::BAD_GATEWAY),
                api_message(&e),
            ),
            None => ApiError::internal(format!("Failed to reach the leader {address}: {e}")),
        })?;
    Ok(Some(sync(raw.envelope.metadata)))
}

/// The server's own sentence from a client error.
pub fn api_message(e: &rxd_client::ClientError) -> String {
    match e {
        rxd_client::ClientError::Api { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// `POST /internal/cluster/accept`.
/// Only the server that presented a join's secret may be accepted, once, under the name it
/// presented it for; anyone else learns nothing.
pub async fn accept_post(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    JsonBody(mut req): JsonBody<AcceptRequest>,
) -> ApiResult<Response> {
    let own = match caller.fingerprint() {
        Some(fp) => {
            let grant = fp.clone();
            d.db()
                .read(move |c| tables::join_grant(c, &grant))
                .await?
                .map(|name| (fp, name))
        }
        None => None,
    };
    // A member forwarding the request names the joiner; a joiner names itself by its certificate.
    let joiner = match own {
        Some((fp, _)) => fp,
        None => req
            .joiner_fingerprint
            .clone()
            .ok_or_else(ApiError::forbidden)?,
    };
    req.joiner_fingerprint = Some(joiner.clone());
    if let Some(r) = on_leader(&d, "/internal/cluster/accept", &req).await? {
        return Ok(r);
    }
    let grant = joiner.clone();
    let granted = d.db().read(move |c| tables::join_grant(c, &grant)).await?;
    if granted.as_deref() != Some(req.name.as_str()) {
        return Err(ApiError::forbidden());
    }
    let (members, pools, certs, networks) = d
        .db()
        .read(|c| {
            Ok((
                tables::members(c)?,
                tables::storage_pools(c)?,
                tables::certificates(c)?,
                tables::networks(c)?,
            ))
        })
        .await?;
    if members
        .iter()
        .any(|m| m.address == req.address && m.name != req.name)
    {
        return Err(ApiError::bad_request(format!(
            "The cluster already has a member with address: {}",
            req.address
        )));
    }
    let api = rxd_api::API_EXTENSIONS.len();
    let schema = rxd_db::cluster_schema_version();
    if req.schema != schema || req.api != api {
        return Err(ApiError::bad_request(format!(
            "The joining server version doesn't match (expected {} with DB schema {schema} and API count {api})",
            env!("CARGO_PKG_VERSION")
        )));
    }
    for pool in pools.iter().filter(|p| p.state == "Created") {
        if !req.storage_pools.contains_key(&pool.name) {
            return Err(ApiError::bad_request(format!(
                "Missing storage pool {}",
                pool.name
            )));
        }
    }
    for net in networks.iter().filter(|n| n.state == "Created") {
        if !req.networks.contains_key(&net.name) {
            return Err(ApiError::bad_request(format!(
                "Missing network {}",
                net.name
            )));
        }
    }
    d.db()
        .propose(Command::ConsumeJoinGrant {
            fingerprint: joiner,
            name: req.name.clone(),
        })
        .await?
        .map_err(|_| ApiError::forbidden())?;
    if let Some(stale) = members
        .iter()
        .find(|m| m.name == req.name && m.address == req.address && m.state == MemberState::Pending)
    {
        // The same server retrying after a join it never finished: forget the first attempt.
        tracing::info!(
            "{} is joining again; forgetting its unfinished join",
            req.name
        );
        forget_pending(&d, stale.id).await?;
        // Forgetting a member drops its certificate, which this new attempt was trusted by.
        if let Some(cert) = certs
            .iter()
            .find(|c| c.cert_type == "server" && c.name == req.name)
        {
            d.db()
                .propose(Command::AddCertificate(cert.clone()))
                .await??;
        }
    } else if members.iter().any(|m| m.name == req.name) {
        return Err(ApiError::bad_request(format!(
            "The cluster already has a member with name: {}",
            req.name
        )));
    }
    // `apply` chooses the id, so concurrent accepts cannot collide and ids are never reused.
    let added = d
        .db()
        .propose(Command::AddMember {
            id: 0,
            name: req.name.clone(),
            address: req.address.clone(),
            architecture: req.architecture.clone(),
            state: MemberState::Pending,
            pools: req.storage_pools.clone(),
            networks: req.networks.clone(),
        })
        .await??;
    let rxd_db::Response::Member(id) = added else {
        return Err(ApiError::internal(
            "The cluster database gave the member no id",
        ));
    };
    let key = d
        .cluster_cert()
        .ok_or_else(|| ApiError::internal("The leader has no cluster certificate"))?
        .key_pem;
    let mut member_fingerprints: Vec<String> = certs
        .into_iter()
        .filter(|c| c.cert_type == "server")
        .map(|c| c.fingerprint)
        .collect();
    member_fingerprints.push(d.server_cert.fingerprint());
    Ok(sync(AcceptResponse {
        id,
        private_key: base64::engine::general_purpose::STANDARD.encode(key),
        member_fingerprints,
    }))
}

/// `POST /internal/cluster/joined`: the joiner's raft is open; add it and make it a member.
/// Marking it `Created` is the join's one commit point; everything runs under the membership
/// lock, so an abort or the reaper sees the member either before it or after it.
pub async fn joined_post(
    State(d): State<Arc<Daemon>>,
    JsonBody(req): JsonBody<JoinProgress>,
) -> ApiResult<Response> {
    if let Some(r) = on_leader(&d, "/internal/cluster/joined", &req).await? {
        return Ok(r);
    }
    let _one_at_a_time = d.membership.lock().await;
    let members = d.db().read(tables::members).await?;
    let m = members
        .iter()
        .find(|m| m.id == req.id)
        .ok_or_else(|| ApiError::not_found("Cluster member not found: its join was abandoned"))?;
    if m.state != MemberState::Pending {
        // Already committed (the joiner asks again after a lost answer).
        return Ok(empty());
    }
    crate::failpoint("joined-before-catch-up").await?;
    d.db().add_learner(m.id, m.address.clone()).await?;
    // Rebalancing reads raft's metrics, which trail the change: let them show the learner.
    let id = m.id;
    d.db()
        .wait_until(
            std::time::Duration::from_secs(30),
            "the new learner in the metrics",
            move |s| s.learners.contains_key(&id) || s.voters.contains_key(&id),
        )
        .await?;
    crate::failpoint("joined-before-created").await?;
    d.db()
        .propose(Command::SetMemberState {
            id: m.id,
            state: MemberState::Created,
        })
        .await??;
    d.liveness.seen_now(m.id);
    crate::heartbeat::rebalance_locked(&d).await;
    d.heartbeat_now.notify_one();
    Ok(empty())
}

/// `POST /internal/cluster/abort`: a join failed or was interrupted after acceptance. A member
/// still `Pending` is forgotten; a `Created` one is kept, and the answer says so.
pub async fn abort_post(
    State(d): State<Arc<Daemon>>,
    JsonBody(req): JsonBody<JoinProgress>,
) -> ApiResult<Response> {
    if let Some(r) = on_leader(&d, "/internal/cluster/abort", &req).await? {
        return Ok(r);
    }
    let member = forget_pending(&d, req.id).await?;
    Ok(sync(AbortResponse { member }))
}

/// On the leader: removes a member that never finished joining from raft and the database.
/// Decides under the membership lock from a fresh read: a member that is no longer `Pending`
/// finished its join meanwhile and is kept (the answer is then `true`).
pub async fn forget_pending(d: &Daemon, id: u64) -> ApiResult<bool> {
    let _one_at_a_time = d.membership.lock().await;
    let db = d.db();
    let members = db.read(tables::members).await?;
    if let Some(m) = members.iter().find(|m| m.id == id) {
        if m.state != MemberState::Pending {
            return Ok(true);
        }
    }
    let status = db.status();
    if status.voters.contains_key(&id) || status.learners.contains_key(&id) {
        db.remove_node(id).await?;
    }
    match db.propose(Command::RemoveMember { id }).await? {
        Ok(_) | Err(rxd_db::ApplyError::NotFound { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// `PUT /internal/heartbeat`: the leader's liveness view.
pub async fn heartbeat_put(
    State(d): State<Arc<Daemon>>,
    JsonBody(hb): JsonBody<Heartbeat>,
) -> ApiResult<Response> {
    d.liveness.replace(hb.members);
    d.liveness.seen_now(hb.leader);
    d.liveness.seen_now(d.node_id());
    Ok(empty())
}

/// `POST /internal/cluster/left`: this member was removed from the cluster; it answers, then
/// becomes a standalone server again.
pub async fn left_post(State(d): State<Arc<Daemon>>) -> ApiResult<Response> {
    let work = d.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::leave::become_standalone(&work).await {
            tracing::error!("Failed to become standalone after removal: {}", e.message);
        }
    });
    Ok(empty())
}
