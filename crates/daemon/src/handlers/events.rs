//! `/1.0/events`: the websocket. The server pings first, then sends one JSON text frame per
//! event of the requested types.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;

use crate::access::Caller;
use crate::handlers::QueryMap;
use crate::Daemon;

/// `GET /1.0/events?type=operation,logging,lifecycle`.
pub async fn events_get(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    q: QueryMap,
    ws: WebSocketUpgrade,
) -> Response {
    let types: Vec<String> = q
        .get("type")
        .map(|t| {
            t.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let rx = d.events.subscribe();
    ws.on_upgrade(move |socket| stream(socket, rx, types, caller))
}

/// Whether the caller may see `e`. A restricted client sees, in its projects, the operations that
/// are not tokens (a token carries its secret) and the lifecycle of profiles; no log lines.
fn visible(caller: &Caller, e: &rxd_api::Event) -> bool {
    if caller.is_admin() {
        return true;
    }
    caller.may_use_project(&e.project)
        && match e.kind.as_str() {
            "operation" => e.metadata["class"] != "token",
            "lifecycle" => e.metadata["source"]
                .as_str()
                .is_some_and(|s| s.starts_with("/1.0/profiles")),
            _ => false,
        }
}

async fn stream(
    mut socket: WebSocket,
    mut rx: tokio::sync::broadcast::Receiver<rxd_api::Event>,
    types: Vec<String>,
    caller: Caller,
) {
    if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            event = rx.recv() => match event {
                Ok(e) => {
                    if (!types.is_empty() && !types.contains(&e.kind)) || !visible(&caller, &e) {
                        continue;
                    }
                    let text = serde_json::to_string(&e).expect("events serialise");
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("An events listener fell behind and missed {n} events");
                }
                Err(_) => return,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
