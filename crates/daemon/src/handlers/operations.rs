//! `/1.0/operations`: this member's operations, plus the join tokens every member can see.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::Response;
use rxd_api::Operation;
use rxd_db::tables;
use rxd_db::Command;

use crate::access::{Caller, DEFAULT_PROJECT};
use crate::error::{ApiError, ApiResult};
use crate::handlers::cluster_members::token_operation;
use crate::handlers::{recursion, QueryMap};
use crate::response::{empty, sync};
use crate::Daemon;

/// Whether the caller may see `op`. Tokens carry their secret, so a restricted client never sees
/// them; other operations are in the `default` project.
fn visible(caller: &Caller, op: &Operation) -> bool {
    caller.is_admin() || (op.class != "token" && caller.may_use_project(DEFAULT_PROJECT))
}

async fn all(d: &Daemon, caller: &Caller) -> ApiResult<Vec<Operation>> {
    let mut ops = d.ops.list();
    if caller.is_admin() {
        let tokens = d.db().read(tables::tokens).await?;
        ops.extend(tokens.iter().map(token_operation));
    }
    ops.retain(|op| visible(caller, op));
    ops.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    Ok(ops)
}

/// `GET /1.0/operations`: keyed by lower-case status.
pub async fn operations_get(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    q: QueryMap,
) -> ApiResult<Response> {
    let ops = all(&d, &caller).await?;
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

async fn find(d: &Daemon, caller: &Caller, id: &str) -> ApiResult<Operation> {
    let not_found = || ApiError::not_found("Operation not found");
    let op = match d.ops.get(id) {
        Some(op) => op,
        None => {
            let id = id.to_string();
            let t = d
                .db()
                .read(move |c| tables::token(c, &id))
                .await
                .map_err(|_| not_found())?;
            token_operation(&t)
        }
    };
    if visible(caller, &op) {
        Ok(op)
    } else {
        Err(not_found())
    }
}

/// `GET /1.0/operations/{id}`.
pub async fn operation_get(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(sync(find(&d, &caller, &id).await?))
}

/// `DELETE /1.0/operations/{id}`: cancels it; for a token, revokes it everywhere.
pub async fn operation_delete(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    if d.ops.get(&id).is_some() {
        d.ops.cancel(&id).map_err(ApiError::bad_request)?;
        return Ok(empty());
    }
    let op = find(&d, &caller, &id).await?;
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
    Ok(empty())
}

/// `GET /1.0/operations/{id}/wait?timeout=N`: returns when final or after N seconds.
pub async fn operation_wait(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(id): Path<String>,
    q: QueryMap,
) -> ApiResult<Response> {
    if !caller.is_admin() {
        // Not found before any wait on what the caller may not see.
        find(&d, &caller, &id).await?;
    }
    let timeout = match q.get("timeout").map(|t| t.parse::<f64>()) {
        None => None,
        Some(Ok(t)) if t < 0.0 => None,
        Some(Ok(t)) => Some(Duration::from_secs_f64(t)),
        Some(Err(_)) => return Err(ApiError::bad_request("Invalid timeout value")),
    };
    if let Some(op) = d.ops.wait(&id, timeout).await {
        return Ok(sync(op));
    }
    // Tokens never finish by themselves.
    Ok(sync(find(&d, &caller, &id).await?))
}
