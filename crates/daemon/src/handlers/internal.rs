//! `/internal`: readiness, shutdown, and the raft transport between members.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::response::empty;
use crate::Daemon;

/// `GET /internal/ready`: answers once the daemon serves requests.
pub async fn ready_get() -> Response {
    empty()
}

/// `PUT /internal/shutdown`: stops the daemon after answering.
pub async fn shutdown_put(State(d): State<Arc<Daemon>>) -> Response {
    d.stop.notify_one();
    empty()
}

/// `POST /internal/raft/{kind}`: one raft RPC; the body and answer are raft's own.
pub async fn raft_post(
    State(d): State<Arc<Daemon>>,
    Path(kind): Path<String>,
    body: Bytes,
) -> Response {
    let path = format!("/internal/raft/{kind}");
    match d.db().handle_rpc(&path, &body).await {
        Ok(reply) => (StatusCode::OK, reply).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
