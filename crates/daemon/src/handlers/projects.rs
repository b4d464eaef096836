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
    rxd_cluster::failpoint("projects-get").await?;
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

/// The limit a project's `limits.*` key sets, -1 when unset (LXD's rule); sizes for `disk`
/// and `memory`, counts for the rest.
fn project_limit(config: &rxd_api::Config, resource: &str) -> i64 {
    let Some(value) = config.get(&format!("limits.{resource}")) else {
        return -1;
    };
    let parsed = if matches!(resource, "disk" | "memory") {
        rxd_api::parse_size(value)
            .ok()
            .and_then(|n| i64::try_from(n).ok())
    } else {
        value.parse().ok()
    };
    parsed.unwrap_or(-1)
}

/// `GET /1.0/projects/{name}/state`: LXD's eight resources with their limits and usage. rxd
/// has no instances, so only `networks` can be in use: the created managed networks.
pub async fn project_state_get(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    if !caller.may_use_project(&name) {
        return Err(ApiError::forbidden());
    }
    let (projects, networks) = d
        .db()
        .read(|c| Ok((tables::projects(c)?, tables::networks(c)?)))
        .await?;
    let project = projects
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| ApiError::not_found("Fetch project database object: Project not found"))?;
    // Every network rxd manages is in the default project.
    let created = if project.name == "default" {
        networks.iter().filter(|n| n.state == "Created").count() as i64
    } else {
        0
    };
    let resources = [
        "containers",
        "cpu",
        "disk",
        "instances",
        "memory",
        "networks",
        "processes",
        "virtual-machines",
    ]
    .into_iter()
    .map(|r| {
        let usage = if r == "networks" { created } else { 0 };
        let state = rxd_api::ProjectStateResource {
            limit: project_limit(&project.config, r),
            usage,
        };
        (r.to_string(), state)
    })
    .collect();
    Ok(sync(rxd_api::ProjectState { resources }))
}
