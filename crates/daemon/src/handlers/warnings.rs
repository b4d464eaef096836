//! `/1.0/warnings`: listing, reading, acknowledging and deleting warnings.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use rxd_api::{Warning, WarningPut, WarningType};
use rxd_db::tables::{self, WarningStatus};
use rxd_db::Command;

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::handlers::{recursion, QueryMap};
use crate::response::{empty, sync, JsonBody};
use crate::Daemon;

fn to_api(w: tables::Warning) -> Warning {
    let kind = WarningType::from_code(w.type_code);
    Warning {
        uuid: w.uuid,
        location: w.member_name,
        project: w.project,
        warning_type: kind.map_or("Undefined warning", WarningType::name).into(),
        count: w.count,
        first_seen_at: w.first_seen,
        last_seen_at: w.last_seen,
        last_message: w.last_message,
        severity: kind.map_or("low", WarningType::severity).into(),
        status: w.status.name().into(),
        entity_url: w.entity_url,
    }
}

fn url(uuid: &str) -> String {
    format!("/1.0/warnings/{uuid}")
}

/// `GET /1.0/warnings[?project=]`.
pub async fn warnings_get(State(d): State<Arc<Daemon>>, q: QueryMap) -> ApiResult<Response> {
    let project = q.get("project").filter(|p| !p.is_empty()).cloned();
    let (warnings, projects) = d
        .db()
        .read(|c| Ok((tables::warnings(c)?, tables::projects(c)?)))
        .await?;
    if let Some(p) = &project {
        if !projects.iter().any(|known| &known.name == p) {
            return Err(ApiError::not_found(
                "Failed getting project: Project not found",
            ));
        }
    }
    let warnings = warnings
        .into_iter()
        .filter(|w| project.as_ref().is_none_or(|p| &w.project == p));
    if recursion(&q) {
        Ok(sync(warnings.map(to_api).collect::<Vec<_>>()))
    } else {
        Ok(sync(warnings.map(|w| url(&w.uuid)).collect::<Vec<_>>()))
    }
}

/// `GET /1.0/warnings/{id}`.
pub async fn warning_get(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let w = d.db().read(move |c| tables::warning(c, &id)).await?;
    Ok(sync(to_api(w)))
}

/// `PUT /1.0/warnings/{id}`: sets the status to `acknowledged` or `new`.
pub async fn warning_put(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(put): JsonBody<WarningPut>,
) -> ApiResult<Response> {
    let status = match WarningStatus::from_name(&put.status) {
        Some(s @ (WarningStatus::New | WarningStatus::Acknowledged)) => s,
        // LXD answers 403 here; it is the caller's mistake, not a matter of permission.
        Some(WarningStatus::Resolved) => {
            return Err(ApiError::bad_request(
                r#"Status may only be set to "acknowledged" or "new""#,
            ))
        }
        None => {
            return Err(ApiError::bad_request(format!(
                "Invalid warning status {:?}",
                put.status
            )))
        }
    };
    d.db()
        .propose(Command::SetWarningStatus {
            uuid: id.clone(),
            status,
            now: crate::warnings::now(),
        })
        .await??;
    let action = match status {
        WarningStatus::Acknowledged => "warning-acknowledged",
        _ => "warning-reset",
    };
    d.events
        .lifecycle(action, &url(&id), None, Some(caller.requestor()));
    Ok(empty())
}

/// `PATCH /1.0/warnings/{id}`: the same as `PUT`, as in LXD.
pub async fn warning_patch(
    state: State<Arc<Daemon>>,
    caller: Caller,
    id: Path<String>,
    body: JsonBody<WarningPut>,
) -> ApiResult<Response> {
    warning_put(state, caller, id, body).await
}

/// `DELETE /1.0/warnings/{id}`.
pub async fn warning_delete(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    d.db()
        .propose(Command::DeleteWarning { uuid: id.clone() })
        .await??;
    d.events
        .lifecycle("warning-deleted", &url(&id), None, Some(caller.requestor()));
    Ok(empty())
}
