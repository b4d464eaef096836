//! `/internal/form`: this server's formation window (root on the unix socket) and the joiners'
//! exchange on `/internal/form/{id}/{hello,confirm,facts}` (HTTPS, untrusted callers included,
//! while the window is open). Thin: `crate::formation` holds the window.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::Response;
use rxd_form::planner::Facts;
use rxd_form::trust::{Confirm, Hello};
use rxd_form::wire::{CommitPost, Instruction, StepReport, UndoPost, WindowPost};

use crate::access::{Caller, Peer};
use crate::error::{ApiError, ApiResult};
use crate::handlers::QueryMap;
use crate::response::{empty, sync, JsonBody};
use crate::Daemon;

/// `POST /internal/form`: open a window.
pub async fn form_post(
    State(d): State<Arc<Daemon>>,
    JsonBody(req): JsonBody<WindowPost>,
) -> ApiResult<Response> {
    let fingerprint = d.served_cert().fingerprint();
    let listened_before = req.listened_before.clone();
    let opened = d.formation.open(req, &fingerprint)?;
    // The record of the last formation is of no more use to its joiners.
    crate::formation_journal::forget(&d.dir);
    // From here on a restart of this daemon aborts the window and puts back where it listens.
    let cluster_address_before = d
        .local_config()?
        .get("cluster.https_address")
        .cloned()
        .unwrap_or_default();
    let journal = crate::formation_journal::Journal {
        window: opened.id.clone(),
        stage: crate::formation_journal::Stage::Open,
        joiners: Default::default(),
        new_cluster: false,
        node_id: d.node_id(),
        listened_before,
        cluster_address_before,
        made: Default::default(),
        reason: String::new(),
    };
    if let Err(e) = crate::formation_journal::write(&d.dir, &journal) {
        let _ = d.formation.abort();
        return Err(ApiError::internal(format!(
            "Cannot write the formation journal: {e}"
        )));
    }
    // Advertised on the interface holding this server's HTTPS address; with none (a wildcard
    // address, say) joiners are given the initiator's address instead.
    match advertising_interface(&d).await {
        Some((interface, port)) => {
            if let Err(e) = d.formation.advertise(&interface, port) {
                tracing::warn!("Formation window {}: not advertised on {interface}: {e}", opened.id);
            }
        }
        None => tracing::info!(
            "Formation window {}: not advertised, this server listens on no one interface's address",
            opened.id
        ),
    }
    Ok(sync(opened))
}

/// The interface holding the address this server listens on, and the port.
async fn advertising_interface(d: &Daemon) -> Option<(String, u16)> {
    let address = d.https_addresses().await.into_iter().next()?;
    let socket: std::net::SocketAddr = address.parse().ok()?;
    let interface = rxd_form::facts::interfaces()
        .into_iter()
        .find(|i| i.addresses.iter().any(|c| c.addr == socket.ip()))?;
    Some((interface.name, socket.port()))
}

/// `GET /internal/form`: the window, its phase and joiners.
pub async fn form_get(State(d): State<Arc<Daemon>>) -> ApiResult<Response> {
    Ok(sync(d.formation.state()?))
}

/// `DELETE /internal/form`: abort the window.
pub async fn form_delete(State(d): State<Arc<Daemon>>) -> ApiResult<Response> {
    d.formation.abort()?;
    crate::formation_journal::close_open(&d.dir, "the formation was aborted");
    Ok(empty())
}

/// `POST /internal/form/{id}/hello`.
pub async fn hello_post(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    caller: Caller,
    JsonBody(hello): JsonBody<Hello>,
) -> ApiResult<Response> {
    let (source, fingerprint) = joiner_of(&caller)?;
    Ok(sync(d.formation.hello(
        &id,
        source,
        &fingerprint,
        &hello,
    )?))
}

/// `POST /internal/form/{id}/confirm`.
pub async fn confirm_post(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    caller: Caller,
    JsonBody(confirm): JsonBody<Confirm>,
) -> ApiResult<Response> {
    let (source, _) = joiner_of(&caller)?;
    d.formation.confirm(&id, source, &confirm)?;
    let (joiners, _) = d.formation.journal_seed();
    if let Err(e) = crate::formation_journal::confirmed(&d.dir, &id, joiners) {
        tracing::warn!("Cannot record the confirmed joiners in the formation journal: {e}");
    }
    Ok(empty())
}

/// `POST /internal/form/{id}/facts`.
pub async fn facts_post(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    caller: Caller,
    JsonBody(facts): JsonBody<Facts>,
) -> ApiResult<Response> {
    let (_, fingerprint) = joiner_of(&caller)?;
    d.formation.facts(&id, &fingerprint, facts)?;
    Ok(empty())
}

/// The source address and the certificate fingerprint of a joiner's TLS connection.
fn joiner_of(caller: &Caller) -> Result<(IpAddr, String), ApiError> {
    let Peer::Tls { address, .. } = &caller.peer else {
        return Err(ApiError::bad_request(
            "The formation exchange runs over HTTPS only",
        ));
    };
    let source = address
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip().to_canonical())
        .map_err(|_| ApiError::internal(format!("Unreadable peer address {address:?}")))?;
    let fingerprint = caller.fingerprint().ok_or_else(|| {
        ApiError::bad_request(
            "The formation exchange needs the server's certificate as the client certificate",
        )
    })?;
    Ok((source, fingerprint))
}

/// `GET /internal/form/advert`: the open window's advertisement (anyone, over HTTPS, while
/// it takes servers), for a joiner given the initiator's address instead of discovering it.
pub async fn advert_get(State(d): State<Arc<Daemon>>) -> ApiResult<Response> {
    let advert = d
        .formation
        .advert()
        .ok_or_else(|| ApiError::not_found("No formation window is open"))?;
    Ok(sync(advert))
}

/// `GET /internal/form/facts?name=NAME`: this server's facts under that name (root, unix
/// socket), what `rxd join` reports.
pub async fn own_facts_get(State(d): State<Arc<Daemon>>, q: QueryMap) -> ApiResult<Response> {
    let name = q
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("Give the server's name (?name=)"))?;
    rxd_api::names::check("cluster member", name).map_err(ApiError::bad_request)?;
    Ok(sync(crate::formation_run::own_facts(&d, name).await?))
}

/// `POST /internal/form/commit`: plan with the operator's answers, then (unless a dry run)
/// form the cluster in an operation. The plan's text is in the answer either way.
pub async fn commit_post(
    State(d): State<Arc<Daemon>>,
    JsonBody(post): JsonBody<CommitPost>,
) -> ApiResult<Response> {
    let started = crate::formation_run::commit(&d, post).await?;
    Ok(match started.operation {
        Some(mut op) => {
            op.metadata = Some(serde_json::json!({ "plan": started.plan_text }));
            crate::response::operation(&op)
        }
        None => sync(serde_json::json!({ "plan": started.plan_text })),
    })
}

/// `GET /internal/form/{id}/instruction[?wait=N]`: what the confirmed joiner is to do next;
/// with `wait`, held up to N seconds (at most 30) while the answer is to wait.
pub async fn instruction_get(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    caller: Caller,
    q: QueryMap,
) -> ApiResult<Response> {
    let (_, fingerprint) = joiner_of(&caller)?;
    let wait = q
        .get("wait")
        .and_then(|w| w.parse::<u64>().ok())
        .unwrap_or(0)
        .min(30);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let mut seen = d.formation.watch();
    loop {
        let instruction = d.formation.instruction(&id, &fingerprint)?;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if instruction != Instruction::Wait || left.is_zero() {
            return Ok(sync(instruction));
        }
        // An expiry changes the answer too, with no change to wake on.
        let expiry = d
            .formation
            .expires_in()
            .map_or(left, |e| e + Duration::from_millis(10));
        d.formation.changed(&mut seen, left.min(expiry)).await;
    }
}

/// `POST /internal/form/{id}/report`: the confirmed joiner's outcome of its step.
pub async fn report_post(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    caller: Caller,
    JsonBody(report): JsonBody<StepReport>,
) -> ApiResult<Response> {
    let (_, fingerprint) = joiner_of(&caller)?;
    d.formation.report(&id, &fingerprint, report)?;
    Ok(empty())
}

/// `POST /internal/form/undo` (root, unix socket, on a joiner): the formation this server
/// joined was aborted, and the initiator may not have taken it out (it stopped half-way):
/// leave the cluster whose certificate is `cluster_fingerprint`, turning standalone again.
/// Nothing to do when this server is standalone (taken out already); refused when it is a
/// member of another cluster.
pub async fn undo_post(
    State(d): State<Arc<Daemon>>,
    JsonBody(req): JsonBody<UndoPost>,
) -> ApiResult<Response> {
    let _one = d.leaving.lock().await;
    // A join the formation's cluster never decided (its initiator died in it): that cluster
    // is gone, so no one is left to ask; this server's side is undone here.
    if rxd_cluster::join::abandon(&*d, &req.cluster_fingerprint).await {
        return Ok(empty());
    }
    if !d.is_clustered().await? {
        return Ok(empty());
    }
    let served = d.served_cert().fingerprint();
    if req.cluster_fingerprint.is_empty() || served != req.cluster_fingerprint {
        return Err(ApiError::bad_request(format!(
            "This server is a member of another cluster (certificate {served}), not the formation's"
        )));
    }
    tracing::warn!("The formation was aborted: leaving the cluster it joined");
    rxd_cluster::leave::become_standalone(&*d).await?;
    Ok(empty())
}
