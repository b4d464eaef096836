//! `/1.0/events`: the websocket. The server pings first, then sends one JSON text frame per
//! event of the requested types. A member following this one (User-Agent
//! `lxd-cluster-notifier`, a member certificate) gets only the events made here; everyone else
//! gets this member's and those it relays from the others.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use crate::access::{Caller, DEFAULT_PROJECT};
use crate::error::{ApiError, ApiResult};
use crate::events::Published;
use crate::handlers::QueryMap;
use crate::Daemon;

/// The event types a client may ask for.
const EVENT_TYPES: [&str; 3] = ["logging", "operation", "lifecycle"];

/// What one websocket receives.
struct Filter {
    types: Vec<String>,
    /// `None` for every project.
    project: Option<String>,
    /// A member following this one: only events made here.
    local_only: bool,
    caller: Caller,
}

impl Filter {
    fn wants(&self, p: &Published) -> bool {
        let e = &p.event;
        if self.local_only && p.relayed {
            return false;
        }
        if !self.types.is_empty() && !self.types.contains(&e.kind) {
            return false;
        }
        // An event of no project (such as a log line) goes to every listener, as in LXD.
        if let Some(project) = &self.project {
            if !e.project.is_empty() && e.project != *project {
                return false;
            }
        }
        visible(&self.caller, e)
    }
}

/// Whether a request comes from another member asking for this member's own answer only.
pub fn from_member_notifier(caller: &Caller, headers: &HeaderMap) -> bool {
    caller.trust == crate::access::Trust::Member
        && headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            == Some(crate::events::relay::NOTIFIER_USER_AGENT)
}

/// `GET /1.0/events?type=operation,logging,lifecycle&project=P|all-projects=true`.
pub async fn events_get(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    headers: HeaderMap,
    q: QueryMap,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let types: Vec<String> = q
        .get("type")
        .map(|t| {
            t.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if let Some(bad) = types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
        return Err(ApiError::bad_request(format!(
            "'{bad}' isn't a supported event type"
        )));
    }
    let all_projects = matches!(
        q.get("all-projects").map(String::as_str),
        Some("true" | "1")
    );
    let project = q.get("project").filter(|p| !p.is_empty()).cloned();
    if all_projects && project.is_some() {
        return Err(ApiError::bad_request(
            "Cannot specify a project when requesting all projects",
        ));
    }
    let filter = Filter {
        types,
        project: if all_projects {
            None
        } else {
            Some(project.unwrap_or_else(|| DEFAULT_PROJECT.to_string()))
        },
        local_only: from_member_notifier(&caller, &headers),
        caller,
    };
    let rx = d.events.subscribe();
    Ok(ws.on_upgrade(move |socket| stream(socket, rx, filter)))
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
    mut rx: tokio::sync::broadcast::Receiver<Published>,
    filter: Filter,
) {
    if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            event = rx.recv() => match event {
                Ok(p) => {
                    if !filter.wants(&p) {
                        continue;
                    }
                    let text = serde_json::to_string(&p.event).expect("events serialise");
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
