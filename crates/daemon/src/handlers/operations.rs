//! `/1.0/operations`: the operations of every member, plus the join tokens every member can see.
//!
//! Each member keeps its own operations in memory (`operations.rs`); there is no replicated
//! index. A listing asks every other member for its own (User-Agent `lxd-cluster-notifier`, so
//! the member answers for itself only) and merges them; a request for one id that this member
//! does not own asks the other members which one has it and sends the read, cancel or wait on
//! to that member. Tokens live in the replicated database and are answered locally everywhere.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use rxd_api::Operation;
use rxd_db::tables::{self, Member, MemberState};
use rxd_db::Command;

use crate::access::{Caller, DEFAULT_PROJECT};
use crate::error::{ApiError, ApiResult};
use crate::events::relay::NOTIFIER_USER_AGENT;
use crate::handlers::cluster_members::token_operation;
use crate::handlers::events::from_member_notifier;
use crate::handlers::member_error;
use crate::handlers::{recursion, QueryMap};
use crate::response::{empty, sync};
use crate::Daemon;

/// How long a member may take to answer for its operations before a listing goes on without
/// them (a lookup by id treats it as not having the operation).
const MEMBER_ANSWER: Duration = Duration::from_secs(10);

/// Whether the caller may see `op`. Tokens carry their secret, so a restricted client never sees
/// them; other operations are in the `default` project.
fn visible(caller: &Caller, op: &Operation) -> bool {
    caller.is_admin() || (op.class != "token" && caller.may_use_project(DEFAULT_PROJECT))
}

/// The other members past their join, when this server is clustered.
async fn other_members(d: &Daemon) -> Vec<Member> {
    if d.cluster_cert().is_none() {
        return Vec::new();
    }
    let own = d.node_id();
    d.db()
        .read_local(tables::members)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.id != own && m.state != MemberState::Pending && !m.address.is_empty())
        .collect()
}

/// A client for `member` that asks for its own answer only.
fn notifier(d: &Daemon, member: &Member, timeout: Duration) -> ApiResult<rxd_client::Client> {
    Ok(crate::peer::member_client(d, &member.address)?
        .with_user_agent(NOTIFIER_USER_AGENT)
        .with_timeout(timeout))
}

/// The operations of another member, as it lists its own.
async fn operations_of(d: &Daemon, member: &Member) -> Result<Vec<Operation>, String> {
    let c = notifier(d, member, MEMBER_ANSWER).map_err(|e| e.message)?;
    let map: BTreeMap<String, Option<Vec<Operation>>> = c
        .get("/1.0/operations?recursion=1")
        .await
        .map_err(|e| e.to_string())?;
    Ok(map.into_values().flatten().flatten().collect())
}

async fn all(d: &Daemon, caller: &Caller, local_only: bool) -> ApiResult<Vec<Operation>> {
    let mut ops = d.ops.list();
    if !local_only {
        if caller.is_admin() {
            let tokens = d.db().read(tables::tokens).await?;
            ops.extend(tokens.iter().map(token_operation));
        }
        let members = other_members(d).await;
        let answers = futures_util::future::join_all(
            members
                .iter()
                .map(|m| async move { (m, operations_of(d, m).await) }),
        )
        .await;
        for (m, answer) in answers {
            match answer {
                Ok(theirs) => ops.extend(theirs),
                Err(e) => tracing::warn!(
                    "Listing operations without those of member {:?}: {e}",
                    m.name
                ),
            }
        }
    }
    ops.retain(|op| visible(caller, op));
    ops.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    Ok(ops)
}

/// `GET /1.0/operations`: keyed by lower-case status, every member's.
pub async fn operations_get(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    headers: HeaderMap,
    q: QueryMap,
) -> ApiResult<Response> {
    let local_only = from_member_notifier(&caller, &headers);
    let ops = all(&d, &caller, local_only).await?;
    if recursion(&q) {
        let mut by_status: BTreeMap<String, Vec<Operation>> = BTreeMap::new();
        for op in ops {
            by_status
                .entry(op.status.to_lowercase())
                .or_default()
                .push(op);
        }
        Ok(sync(by_status))
    } else {
        let mut by_status: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for op in ops {
            by_status
                .entry(op.status.to_lowercase())
                .or_default()
                .push(format!("/1.0/operations/{}", op.id));
        }
        Ok(sync(by_status))
    }
}

/// Where an operation lives.
enum Found {
    /// In this member's registry.
    Here(Operation),
    /// A token, in the replicated database.
    Token(Operation),
    /// In the registry of another member.
    On(Box<Member>, Operation),
}

impl Found {
    fn operation(&self) -> &Operation {
        match self {
            Found::Here(op) | Found::Token(op) | Found::On(_, op) => op,
        }
    }
}

/// The member among the others that owns `id`, asking them all at once.
async fn owner_of(d: &Daemon, id: &str) -> Option<(Member, Operation)> {
    let path = format!("/1.0/operations/{}", rxd_client::encode(id));
    let asks = other_members(d).await.into_iter().map(|m| {
        let path = path.clone();
        Box::pin(async move {
            let c = notifier(d, &m, MEMBER_ANSWER).ok()?;
            let op: Operation = c.get(&path).await.ok()?;
            Some((m, op))
        })
    });
    let mut pending: Vec<_> = asks.collect();
    while !pending.is_empty() {
        let (answer, _, rest) = futures_util::future::select_all(pending).await;
        if answer.is_some() {
            return answer;
        }
        pending = rest;
    }
    None
}

/// Finds `id` here, among the tokens, then (unless a member asks for this member's own) on the
/// other members. 404 when nobody has it or the caller may not see it.
async fn find(d: &Daemon, caller: &Caller, id: &str, local_only: bool) -> ApiResult<Found> {
    let not_found = || ApiError::not_found("Operation not found");
    let found = if let Some(op) = d.ops.get(id) {
        Found::Here(op)
    } else if local_only {
        return Err(not_found());
    } else {
        let key = id.to_string();
        match d.db().read(move |c| tables::token(c, &key)).await {
            Ok(t) => Found::Token(token_operation(&t)),
            Err(_) => match owner_of(d, id).await {
                Some((m, op)) => Found::On(Box::new(m), op),
                None => return Err(not_found()),
            },
        }
    };
    if visible(caller, found.operation()) {
        Ok(found)
    } else {
        Err(not_found())
    }
}

/// `GET /1.0/operations/{id}`.
pub async fn operation_get(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let local_only = from_member_notifier(&caller, &headers);
    let found = find(&d, &caller, &id, local_only).await?;
    Ok(sync(found.operation()))
}

/// `DELETE /1.0/operations/{id}`: cancels it, on the member that runs it; for a token, revokes
/// it everywhere.
pub async fn operation_delete(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let local_only = from_member_notifier(&caller, &headers);
    match find(&d, &caller, &id, local_only).await? {
        Found::Here(_) => {
            d.ops.cancel(&id).map_err(ApiError::bad_request)?;
        }
        Found::On(m, op) => {
            let path = format!("/1.0/operations/{}", rxd_client::encode(&op.id));
            notifier(&d, &m, MEMBER_ANSWER)?
                .request("DELETE", &path, None, None)
                .await
                .map_err(|e| member_error(&m, &e))?;
        }
        Found::Token(op) => {
            d.db()
                .propose(Command::DeleteToken { id: op.id.clone() })
                .await??;
            let mut cancelled = op;
            cancelled.status = "Cancelled".into();
            cancelled.status_code = 401;
            cancelled.updated_at = crate::now_rfc3339();
            d.events.send(
                "operation",
                serde_json::to_value(&cancelled).expect("operations serialise"),
                "default",
            );
        }
    }
    Ok(empty())
}

/// `GET /1.0/operations/{id}/wait?timeout=N`: returns when final or after N seconds, waiting on
/// the member that runs the operation.
pub async fn operation_wait(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: QueryMap,
) -> ApiResult<Response> {
    let local_only = from_member_notifier(&caller, &headers);
    let timeout = match q.get("timeout").map(|t| t.parse::<f64>()) {
        None => None,
        Some(Ok(t)) if t < 0.0 || !t.is_finite() => None,
        Some(Ok(t)) => Some(Duration::from_secs_f64(t.min(1e9))),
        Some(Err(_)) => return Err(ApiError::bad_request("Invalid timeout value")),
    };
    // Not found before any wait on what the caller may not see.
    match find(&d, &caller, &id, local_only).await? {
        Found::Here(_) => match d.ops.wait(&id, timeout).await {
            Some(op) => Ok(sync(op)),
            // Finished and forgotten meanwhile.
            None => Err(ApiError::not_found("Operation not found")),
        },
        // Tokens never finish by themselves.
        Found::Token(op) => Ok(sync(op)),
        Found::On(m, op) => {
            let mut path = format!("/1.0/operations/{}/wait", rxd_client::encode(&op.id));
            if let Some(t) = q.get("timeout") {
                path.push_str(&format!("?timeout={}", rxd_client::encode(t)));
            }
            // The member's answer comes when the wait ends there: give it that long and more.
            let limit = timeout.unwrap_or(Duration::from_secs(365 * 24 * 3600)) + MEMBER_ANSWER;
            let op: Operation = notifier(&d, &m, limit)?
                .get(&path)
                .await
                .map_err(|e| member_error(&m, &e))?;
            Ok(sync(op))
        }
    }
}
