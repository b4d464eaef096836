//! The leader's side of a join (`/internal/cluster/{accept,joined,abort}`): accepting a
//! joining member, making it a member (the join's one commit point), and forgetting one whose
//! join failed. Requests that must run on the leader are forwarded to it; each step answers
//! the metadata of its reply, which the daemon sends as it is.
//!
//! ```text
//!  joiner ─accept─> any member ─(forward)─> leader: checks, AddMember(Pending) ─> id, key
//!  joiner ─joined─> leader: add raft learner (caught up) ─> Created ─> rebalance
//!  joiner ─abort──> leader: remove raft node, member row and its certificate
//! ```

use std::collections::BTreeMap;

use base64::Engine;
use rxd_db::tables::{self, Config, MemberState};
use rxd_db::Command;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::peer::api_message;
use crate::{Error, Host, Result, Status};

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
async fn on_leader<H: Host + ?Sized, T: Serialize>(
    d: &H,
    path: &str,
    body: &T,
) -> Result<Option<Value>> {
    let body = serde_json::to_value(body).expect("internal bodies serialise");
    forward_to_leader(d, "POST", path, Some(body)).await
}

/// Sends the request to the raft leader and answers with its metadata; `None` when this
/// member is the leader and should handle the request itself.
pub async fn forward_to_leader<H: Host + ?Sized>(
    d: &H,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Option<Value>> {
    let status = d.db().status();
    if status.leader_id == Some(status.id) {
        return Ok(None);
    }
    let address = status
        .leader_address
        .ok_or_else(|| Error::unavailable("No leader"))?;
    let c = crate::peer::member_client(d, &address)?;
    let raw = c
        .request(method, path, body, None)
        .await
        .map_err(|e| match e.status() {
            Some(s) => Error::new(Status::Passed(s), api_message(&e)),
            None => Error::internal(format!("Failed to reach the leader {address}: {e}")),
        })?;
    Ok(Some(raw.envelope.metadata))
}

/// `POST /internal/cluster/accept` from a caller presenting `caller_fingerprint`.
/// Only the server that presented a join's secret may be accepted, once, under the name it
/// presented it for; anyone else learns nothing.
pub async fn accept<H: Host + ?Sized>(
    d: &H,
    caller_fingerprint: Option<String>,
    mut req: AcceptRequest,
) -> Result<Value> {
    let own = match caller_fingerprint {
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
            .ok_or_else(Error::forbidden)?,
    };
    req.joiner_fingerprint = Some(joiner.clone());
    if let Some(r) = on_leader(d, "/internal/cluster/accept", &req).await? {
        return Ok(r);
    }
    let grant = joiner.clone();
    let granted = d.db().read(move |c| tables::join_grant(c, &grant)).await?;
    if granted.as_deref() != Some(req.name.as_str()) {
        return Err(Error::forbidden());
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
        return Err(Error::bad_request(format!(
            "The cluster already has a member with address: {}",
            req.address
        )));
    }
    let api = rxd_api::API_EXTENSIONS.len();
    let schema = rxd_db::cluster_schema_version();
    if req.schema != schema || req.api != api {
        return Err(Error::bad_request(format!(
            "The joining server version doesn't match (expected {} with DB schema {schema} and API count {api})",
            env!("CARGO_PKG_VERSION")
        )));
    }
    for pool in pools.iter().filter(|p| p.state == "Created") {
        if !req.storage_pools.contains_key(&pool.name) {
            return Err(Error::bad_request(format!(
                "Missing storage pool {}",
                pool.name
            )));
        }
    }
    for net in networks.iter().filter(|n| n.state == "Created") {
        if !req.networks.contains_key(&net.name) {
            return Err(Error::bad_request(format!("Missing network {}", net.name)));
        }
    }
    d.db()
        .propose(Command::ConsumeJoinGrant {
            fingerprint: joiner,
            name: req.name.clone(),
        })
        .await?
        .map_err(|_| Error::forbidden())?;
    if let Some(stale) = members
        .iter()
        .find(|m| m.name == req.name && m.address == req.address && m.state == MemberState::Pending)
    {
        // The same server retrying after a join it never finished: forget the first attempt.
        tracing::info!(
            "{} is joining again; forgetting its unfinished join",
            req.name
        );
        forget_pending(d, stale.id).await?;
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
        return Err(Error::bad_request(format!(
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
        return Err(Error::internal(
            "The cluster database gave the member no id",
        ));
    };
    let key = d
        .cluster_cert()
        .ok_or_else(|| Error::internal("The leader has no cluster certificate"))?
        .key_pem;
    let mut member_fingerprints: Vec<String> = certs
        .into_iter()
        .filter(|c| c.cert_type == "server")
        .map(|c| c.fingerprint)
        .collect();
    member_fingerprints.push(d.server_cert().fingerprint());
    Ok(to_value(&AcceptResponse {
        id,
        private_key: base64::engine::general_purpose::STANDARD.encode(key),
        member_fingerprints,
    }))
}

fn to_value<T: Serialize>(reply: &T) -> Value {
    serde_json::to_value(reply).expect("internal bodies serialise")
}

/// `POST /internal/cluster/joined`: the joiner's raft is open; add it and make it a member.
/// Marking it `Created` is the join's one commit point; everything runs under the membership
/// lock, so an abort or the reaper sees the member either before it or after it.
pub async fn joined<H: Host + ?Sized>(d: &H, req: JoinProgress) -> Result<Value> {
    if let Some(r) = on_leader(d, "/internal/cluster/joined", &req).await? {
        return Ok(r);
    }
    let _one_at_a_time = d.membership().changes.lock().await;
    let members = d.db().read(tables::members).await?;
    let m = members
        .iter()
        .find(|m| m.id == req.id)
        .ok_or_else(|| Error::not_found("Cluster member not found: its join was abandoned"))?;
    if m.state != MemberState::Pending {
        // Already committed (the joiner asks again after a lost answer).
        return Ok(serde_json::json!({}));
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
    d.membership().liveness.seen_now(m.id);
    tracing::info!(member = %m.name, id = m.id, address = %m.address, "Member joined");
    crate::heartbeat::rebalance_locked(d).await;
    d.membership().heartbeat_now.notify_one();
    Ok(serde_json::json!({}))
}

/// `POST /internal/cluster/abort`: a join failed or was interrupted after acceptance. A member
/// still `Pending` is forgotten; a `Created` one is kept, and the answer says so.
pub async fn abort<H: Host + ?Sized>(d: &H, req: JoinProgress) -> Result<Value> {
    if let Some(r) = on_leader(d, "/internal/cluster/abort", &req).await? {
        return Ok(r);
    }
    let member = forget_pending(d, req.id).await?;
    Ok(to_value(&AbortResponse { member }))
}

/// On the leader: removes a member that never finished joining from raft and the database.
/// Decides under the membership lock from a fresh read: a member that is no longer `Pending`
/// finished its join meanwhile and is kept (the answer is then `true`).
pub async fn forget_pending<H: Host + ?Sized>(d: &H, id: u64) -> Result<bool> {
    let _one_at_a_time = d.membership().changes.lock().await;
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
