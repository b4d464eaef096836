//! `/internal/form`: this server's formation window (root on the unix socket) and the joiners'
//! exchange on `/internal/form/{id}/{hello,confirm,facts}` (HTTPS, untrusted callers included,
//! while the window is open). Thin: `crate::formation` holds the window.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use rxd_form::planner::Facts;
use rxd_form::trust::{Confirm, Hello};
use rxd_form::wire::WindowPost;

use crate::access::{Caller, Peer};
use crate::error::{ApiError, ApiResult};
use crate::response::{empty, sync, JsonBody};
use crate::Daemon;

/// `POST /internal/form`: open a window.
pub async fn form_post(
    State(d): State<Arc<Daemon>>,
    JsonBody(req): JsonBody<WindowPost>,
) -> ApiResult<Response> {
    let fingerprint = d.served_cert().fingerprint();
    Ok(sync(d.formation.open(req, &fingerprint)?))
}

/// `GET /internal/form`: the window, its phase and joiners.
pub async fn form_get(State(d): State<Arc<Daemon>>) -> ApiResult<Response> {
    Ok(sync(d.formation.state()?))
}

/// `DELETE /internal/form`: abort the window.
pub async fn form_delete(State(d): State<Arc<Daemon>>) -> ApiResult<Response> {
    d.formation.abort()?;
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
