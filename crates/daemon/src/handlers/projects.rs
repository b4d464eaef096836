//! `/1.0/projects`: the `default` project.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use rxd_api::Project;
use rxd_db::tables;

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::handlers::{recursion, QueryMap};
use crate::response::{sync, sync_etag};
use crate::Daemon;

fn to_api(p: tables::Project, profiles: &[tables::Profile]) -> Project {
    let mut used_by: Vec<String> = profiles
        .iter()
        .filter(|pr| pr.project == p.name)
        .map(|pr| format!("/1.0/profiles/{}", pr.name))
        .collect();
    used_by.sort();
    Project {
        config: p.config,
        description: p.description,
        name: p.name,
        used_by,
    }
}

/// `GET /1.0/projects`.
pub async fn projects_get(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    q: QueryMap,
) -> ApiResult<Response> {
    crate::failpoint("projects-get").await?;
    let (mut projects, profiles) = d
        .db()
        .read(|c| Ok((tables::projects(c)?, tables::profiles(c, "default")?)))
        .await?;
    projects.retain(|p| caller.may_use_project(&p.name));
    if recursion(&q) {
        Ok(sync(
            projects
                .into_iter()
                .map(|p| to_api(p, &profiles))
                .collect::<Vec<_>>(),
        ))
    } else {
        Ok(sync(
            projects
                .iter()
                .map(|p| format!("/1.0/projects/{}", p.name))
                .collect::<Vec<_>>(),
        ))
    }
}

/// `GET /1.0/projects/{name}`.
pub async fn project_get(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    if !caller.may_use_project(&name) {
        return Err(ApiError::forbidden());
    }
    let (projects, profiles) = d
        .db()
        .read(|c| Ok((tables::projects(c)?, tables::profiles(c, "default")?)))
        .await?;
    let p = projects
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| ApiError::not_found("Project not found"))?;
    let project = to_api(p, &profiles);
    let etag = rxd_api::etag(&serde_json::json!({
        "config": project.config, "description": project.description
    }));
    Ok(sync_etag(project, &etag))
}
