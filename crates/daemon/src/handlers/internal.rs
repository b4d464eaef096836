//! `/internal`: readiness, shutdown, and the raft transport between members.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ApiResult};
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

/// `POST /internal/raft/elect`: this voter campaigns for leadership at once (a stopping leader
/// hands over this way; the fault suite calls it on the unix socket). A member that is not a
/// voter answers 400; on the leader it changes nothing.
pub async fn raft_elect_post(State(d): State<Arc<Daemon>>) -> ApiResult<Response> {
    let db = d.db();
    let status = db.status();
    if !status.voters.contains_key(&status.id) {
        return Err(ApiError::bad_request(
            "This member is not a database voter and cannot become leader",
        ));
    }
    db.trigger_election().await?;
    Ok(empty())
}

/// `POST /internal/raft/{kind}`: one raft RPC; the body and answer are raft's own. A snapshot
/// streams to disk as it arrives; any other body may hold up to
/// [`rxd_raft::MAX_INTERNAL_BODY`] bytes (the largest entry the public API can produce, in a
/// batch of one), and a larger one is answered 413, which the sender reads as "send less",
/// never as "unreachable".
pub async fn raft_post(
    State(d): State<Arc<Daemon>>,
    Path(kind): Path<String>,
    body: Body,
) -> Response {
    let path = format!("/internal/raft/{kind}");
    let reply = if path == rxd_raft::PATH_SNAPSHOT {
        let stream =
            futures_util::TryStreamExt::map_err(body.into_data_stream(), std::io::Error::other);
        d.db()
            .receive_snapshot(tokio_util::io::StreamReader::new(stream))
            .await
    } else {
        let limited = http_body_util::Limited::new(body, rxd_raft::MAX_INTERNAL_BODY);
        match http_body_util::BodyExt::collect(limited).await {
            Ok(collected) => d.db().handle_rpc(&path, &collected.to_bytes()).await,
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "Internal request body is larger than {} bytes",
                        rxd_raft::MAX_INTERNAL_BODY
                    ),
                )
                    .into_response();
            }
            Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        }
    };
    match reply {
        Ok(reply) => (StatusCode::OK, reply).into_response(),
        // The caller's mistake, not ours: an unknown call or a body that does not decode.
        Err(e @ rxd_raft::RaftError::UnknownRpc { .. }) => {
            (StatusCode::NOT_FOUND, e.to_string()).into_response()
        }
        Err(e @ rxd_raft::RaftError::BadMessage { .. }) => {
            (StatusCode::BAD_REQUEST, e.to_string()).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
