//! `/1.0/events`: the websocket. The server pings first, then sends one JSON text frame per
//! event of the requested types.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;

use crate::handlers::QueryMap;
use crate::Daemon;

/// `GET /1.0/events?type=operation,logging,lifecycle`.
pub async fn events_get(
    State(d): State<Arc<Daemon>>,
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
    ws.on_upgrade(move |socket| stream(socket, rx, types))
}

async fn stream(
    mut socket: WebSocket,
    mut rx: tokio::sync::broadcast::Receiver<rxd_api::Event>,
    types: Vec<String>,
) {
    if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            event = rx.recv() => match event {
                Ok(e) => {
                    if !types.is_empty() && !types.contains(&e.kind) {
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
