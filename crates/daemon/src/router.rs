//! The endpoint table: every path and method rxd serves, who may call it, and its handler.
//! Unknown paths get LXD's 404 and known paths with another method its 405. LXD endpoints rxd
//! does not have yet answer 501 with a sentence naming what is missing.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;

use crate::access::{allows, project_of, Access, Caller, Peer};
use crate::error::ApiError;
use crate::handlers::*;
use crate::Daemon;

type State = Arc<Daemon>;

/// (path, method, access). The handler is attached in [`router`] in the same order.
const ENDPOINTS: &[(&str, Method, Access)] = &[
    ("/", Method::GET, Access::Public),
    ("/1.0", Method::GET, Access::Public),
    ("/1.0", Method::PUT, Access::Admin),
    ("/1.0", Method::PATCH, Access::Admin),
    ("/1.0/metrics", Method::GET, Access::Metrics),
    ("/1.0/certificates", Method::GET, Access::Authenticated),
    ("/1.0/certificates", Method::POST, Access::Public),
    (
        "/1.0/certificates/{fingerprint}",
        Method::GET,
        Access::Authenticated,
    ),
    (
        "/1.0/certificates/{fingerprint}",
        Method::PUT,
        Access::Authenticated,
    ),
    (
        "/1.0/certificates/{fingerprint}",
        Method::PATCH,
        Access::Authenticated,
    ),
    (
        "/1.0/certificates/{fingerprint}",
        Method::DELETE,
        Access::Authenticated,
    ),
    ("/1.0/cluster", Method::GET, Access::Authenticated),
    ("/1.0/cluster", Method::PUT, Access::Admin),
    ("/1.0/cluster/groups", Method::GET, Access::Authenticated),
    ("/1.0/cluster/groups", Method::POST, Access::Admin),
    (
        "/1.0/cluster/groups/{name}",
        Method::GET,
        Access::Authenticated,
    ),
    ("/1.0/cluster/groups/{name}", Method::PUT, Access::Admin),
    ("/1.0/cluster/groups/{name}", Method::PATCH, Access::Admin),
    ("/1.0/cluster/groups/{name}", Method::POST, Access::Admin),
    ("/1.0/cluster/groups/{name}", Method::DELETE, Access::Admin),
    ("/1.0/cluster/certificate", Method::PUT, Access::Admin),
    ("/1.0/cluster/members", Method::GET, Access::Authenticated),
    ("/1.0/cluster/members", Method::POST, Access::Admin),
    (
        "/1.0/cluster/members/{name}",
        Method::GET,
        Access::Authenticated,
    ),
    ("/1.0/cluster/members/{name}", Method::PUT, Access::Admin),
    ("/1.0/cluster/members/{name}", Method::PATCH, Access::Admin),
    ("/1.0/cluster/members/{name}", Method::POST, Access::Admin),
    ("/1.0/cluster/members/{name}", Method::DELETE, Access::Admin),
    (
        "/1.0/cluster/members/{name}/state",
        Method::POST,
        Access::Admin,
    ),
    ("/1.0/events", Method::GET, Access::Authenticated),
    ("/1.0/networks", Method::GET, Access::Project),
    ("/1.0/networks", Method::POST, Access::Admin),
    ("/1.0/networks/{name}", Method::GET, Access::Project),
    ("/1.0/networks/{name}", Method::PUT, Access::Admin),
    ("/1.0/networks/{name}", Method::PATCH, Access::Admin),
    ("/1.0/networks/{name}", Method::DELETE, Access::Admin),
    ("/1.0/networks/{name}", Method::POST, Access::Admin),
    ("/1.0/networks/{name}/leases", Method::GET, Access::Project),
    ("/1.0/networks/{name}/state", Method::GET, Access::Project),
    ("/1.0/operations", Method::GET, Access::Authenticated),
    ("/1.0/operations/{id}", Method::GET, Access::Authenticated),
    ("/1.0/operations/{id}", Method::DELETE, Access::Admin),
    (
        "/1.0/operations/{id}/wait",
        Method::GET,
        Access::Authenticated,
    ),
    ("/1.0/profiles", Method::GET, Access::Project),
    ("/1.0/profiles", Method::POST, Access::Project),
    ("/1.0/profiles/{name}", Method::GET, Access::Project),
    ("/1.0/profiles/{name}", Method::PUT, Access::Project),
    ("/1.0/profiles/{name}", Method::PATCH, Access::Project),
    ("/1.0/profiles/{name}", Method::POST, Access::Project),
    ("/1.0/profiles/{name}", Method::DELETE, Access::Project),
    ("/1.0/projects", Method::GET, Access::Authenticated),
    ("/1.0/projects/{name}", Method::GET, Access::Authenticated),
    (
        "/1.0/projects/{name}/state",
        Method::GET,
        Access::Authenticated,
    ),
    ("/1.0/resources", Method::GET, Access::Authenticated),
    ("/1.0/storage-pools", Method::GET, Access::Authenticated),
    ("/1.0/storage-pools", Method::POST, Access::Admin),
    (
        "/1.0/storage-pools/{name}",
        Method::GET,
        Access::Authenticated,
    ),
    ("/1.0/storage-pools/{name}", Method::PUT, Access::Admin),
    ("/1.0/storage-pools/{name}", Method::PATCH, Access::Admin),
    ("/1.0/storage-pools/{name}", Method::DELETE, Access::Admin),
    (
        "/1.0/storage-pools/{name}/resources",
        Method::GET,
        Access::Authenticated,
    ),
    ("/1.0/warnings", Method::GET, Access::Admin),
    ("/1.0/warnings/{id}", Method::GET, Access::Admin),
    ("/1.0/warnings/{id}", Method::PUT, Access::Admin),
    ("/1.0/warnings/{id}", Method::PATCH, Access::Admin),
    ("/1.0/warnings/{id}", Method::DELETE, Access::Admin),
    ("/internal/ready", Method::GET, Access::Member),
    ("/internal/shutdown", Method::PUT, Access::Member),
    ("/internal/raft/elect", Method::POST, Access::Member),
    ("/internal/raft/{kind}", Method::POST, Access::Member),
    ("/internal/cluster/accept", Method::POST, Access::Member),
    ("/internal/cluster/joined", Method::POST, Access::Member),
    ("/internal/cluster/abort", Method::POST, Access::Member),
    ("/internal/heartbeat", Method::PUT, Access::Member),
    ("/internal/cluster/left", Method::POST, Access::Member),
    (
        "/internal/cluster/certificate/stage",
        Method::POST,
        Access::Member,
    ),
    (
        "/internal/cluster/certificate/unstage",
        Method::POST,
        Access::Member,
    ),
    (
        "/internal/cluster/certificate/commit",
        Method::POST,
        Access::Member,
    ),
    (
        "/internal/storage-pools/create",
        Method::POST,
        Access::Member,
    ),
    (
        "/internal/storage-pools/delete",
        Method::POST,
        Access::Member,
    ),
    ("/internal/networks/create", Method::POST, Access::Member),
    ("/internal/networks/delete", Method::POST, Access::Member),
    (
        "/internal/networks/{name}/leases",
        Method::GET,
        Access::Member,
    ),
    ("/internal/form", Method::GET, Access::Local),
    ("/internal/form", Method::POST, Access::Local),
    ("/internal/form", Method::DELETE, Access::Local),
    ("/internal/form/{id}/hello", Method::POST, Access::Formation),
    (
        "/internal/form/{id}/confirm",
        Method::POST,
        Access::Formation,
    ),
    ("/internal/form/{id}/facts", Method::POST, Access::Formation),
    (
        "/internal/form/{id}/instruction",
        Method::GET,
        Access::Formation,
    ),
    (
        "/internal/form/{id}/report",
        Method::POST,
        Access::Formation,
    ),
    ("/internal/form/advert", Method::GET, Access::Formation),
    ("/internal/form/facts", Method::GET, Access::Local),
    ("/internal/form/commit", Method::POST, Access::Local),
    ("/internal/form/undo", Method::POST, Access::Local),
];

/// The endpoints whose answer depends on the member answering: `?target=<member>` on them is
/// carried out by that member ([`forward_to_target`]), as LXD forwards them
/// (`ForwardedResponseIfTargetIsRemote`). Creating a pool or network with `?target=` is not
/// among them: any member records the definition.
const TARGETED: &[(&str, Method)] = &[
    ("/1.0", Method::GET),
    ("/1.0", Method::PUT),
    ("/1.0", Method::PATCH),
    ("/1.0/networks/{name}", Method::GET),
    ("/1.0/networks/{name}", Method::PUT),
    ("/1.0/networks/{name}", Method::PATCH),
    ("/1.0/networks/{name}/state", Method::GET),
    ("/1.0/resources", Method::GET),
    ("/1.0/storage-pools/{name}", Method::GET),
    ("/1.0/storage-pools/{name}", Method::PUT),
    ("/1.0/storage-pools/{name}", Method::PATCH),
    ("/1.0/storage-pools/{name}/resources", Method::GET),
];

/// Whether `?target=` on this route is carried out by the member it names.
pub fn forwards_target(method: &Method, path: &str) -> bool {
    TARGETED.iter().any(|(p, m)| *p == path && m == method)
}

const ALL: &[Method] = &[
    Method::GET,
    Method::PUT,
    Method::PATCH,
    Method::POST,
    Method::DELETE,
];

const PROJECTS: &str = "Projects other than \"default\" are not supported by rxd yet";

/// LXD's endpoints that rxd does not have yet: (path, methods, what is missing). They answer
/// 501, as LXD does for what it does not implement, to trusted callers only.
const UNSUPPORTED: &[(&str, &[Method], &str)] = &[
    ("/1.0/images", ALL, "Images are not supported by rxd yet"),
    (
        "/1.0/images/{*rest}",
        ALL,
        "Images are not supported by rxd yet",
    ),
    (
        "/1.0/instances",
        ALL,
        "Instances are not supported by rxd yet",
    ),
    (
        "/1.0/instances/{*rest}",
        ALL,
        "Instances are not supported by rxd yet",
    ),
    (
        "/1.0/containers",
        ALL,
        "Instances are not supported by rxd yet",
    ),
    (
        "/1.0/containers/{*rest}",
        ALL,
        "Instances are not supported by rxd yet",
    ),
    (
        "/1.0/virtual-machines",
        ALL,
        "Instances are not supported by rxd yet",
    ),
    (
        "/1.0/virtual-machines/{*rest}",
        ALL,
        "Instances are not supported by rxd yet",
    ),
    ("/1.0/projects", &[Method::POST], PROJECTS),
    (
        "/1.0/projects/{name}",
        &[Method::PUT, Method::PATCH, Method::POST, Method::DELETE],
        PROJECTS,
    ),
    (
        "/1.0/storage-pools/{name}/volumes",
        ALL,
        "Storage volumes are not supported by rxd yet",
    ),
    (
        "/1.0/storage-pools/{name}/volumes/{*rest}",
        ALL,
        "Storage volumes are not supported by rxd yet",
    ),
    (
        "/1.0/network-acls",
        ALL,
        "Network ACLs are not supported by rxd yet",
    ),
    (
        "/1.0/network-acls/{*rest}",
        ALL,
        "Network ACLs are not supported by rxd yet",
    ),
    (
        "/1.0/network-zones",
        ALL,
        "Network zones are not supported by rxd yet",
    ),
    (
        "/1.0/network-zones/{*rest}",
        ALL,
        "Network zones are not supported by rxd yet",
    ),
    (
        "/1.0/networks/{name}/forwards",
        ALL,
        "Network forwards are not supported by rxd yet",
    ),
    (
        "/1.0/networks/{name}/forwards/{*rest}",
        ALL,
        "Network forwards are not supported by rxd yet",
    ),
    (
        "/1.0/networks/{name}/peers",
        ALL,
        "Network peers are not supported by rxd yet",
    ),
    (
        "/1.0/networks/{name}/peers/{*rest}",
        ALL,
        "Network peers are not supported by rxd yet",
    ),
];

/// Every endpoint: its path pattern, method and access rule, the unsupported ones included.
pub fn endpoints() -> impl Iterator<Item = (&'static str, &'static Method, Access)> {
    let unsupported = UNSUPPORTED
        .iter()
        .flat_map(|(p, ms, _)| ms.iter().map(move |m| (*p, m, Access::Authenticated)));
    ENDPOINTS
        .iter()
        .map(|(p, m, a)| (*p, m, *a))
        .chain(unsupported)
}

/// The access rule of a matched route; routes missing from the table are members-only.
pub fn access_of(method: &Method, path: &str) -> Access {
    endpoints()
        .find(|(p, m, _)| *p == path && *m == method)
        .map(|(_, _, a)| a)
        .unwrap_or(Access::Member)
}

fn filter(m: &Method) -> MethodFilter {
    match *m {
        Method::GET => MethodFilter::GET,
        Method::PUT => MethodFilter::PUT,
        Method::PATCH => MethodFilter::PATCH,
        Method::POST => MethodFilter::POST,
        Method::DELETE => MethodFilter::DELETE,
        _ => MethodFilter::HEAD,
    }
}

fn handler_for(path: &str, method: &Method) -> MethodRouter<State> {
    let f = filter(method);
    match (path, method.as_str()) {
        ("/", "GET") => on(f, server::root_get),
        ("/1.0", "GET") => on(f, server::server_get),
        ("/1.0", "PUT") => on(f, server::server_put),
        ("/1.0", "PATCH") => on(f, server::server_patch),
        ("/1.0/metrics", "GET") => on(f, crate::metrics::metrics_get),
        ("/1.0/certificates", "GET") => on(f, certificates::certificates_get),
        ("/1.0/certificates", "POST") => on(f, certificates::certificates_post),
        ("/1.0/certificates/{fingerprint}", "GET") => on(f, certificates::certificate_get),
        ("/1.0/certificates/{fingerprint}", "PUT") => on(f, certificates::certificate_put),
        ("/1.0/certificates/{fingerprint}", "PATCH") => on(f, certificates::certificate_patch),
        ("/1.0/certificates/{fingerprint}", "DELETE") => on(f, certificates::certificate_delete),
        ("/1.0/cluster", "GET") => on(f, cluster::cluster_get),
        ("/1.0/cluster", "PUT") => on(f, cluster::cluster_put),
        ("/1.0/cluster/groups", "GET") => on(f, cluster_groups::cluster_groups_get),
        ("/1.0/cluster/groups", "POST") => on(f, cluster_groups::cluster_groups_post),
        ("/1.0/cluster/groups/{name}", "GET") => on(f, cluster_groups::cluster_group_get),
        ("/1.0/cluster/groups/{name}", "PUT") => on(f, cluster_groups::cluster_group_put),
        ("/1.0/cluster/groups/{name}", "PATCH") => on(f, cluster_groups::cluster_group_patch),
        ("/1.0/cluster/groups/{name}", "POST") => on(f, cluster_groups::cluster_group_post),
        ("/1.0/cluster/groups/{name}", "DELETE") => on(f, cluster_groups::cluster_group_delete),
        ("/1.0/cluster/certificate", "PUT") => on(f, cluster_certificate::cluster_certificate_put),
        ("/1.0/cluster/members", "GET") => on(f, cluster_members::cluster_members_get),
        ("/1.0/cluster/members", "POST") => on(f, cluster_members::cluster_members_post),
        ("/1.0/cluster/members/{name}", "GET") => on(f, cluster_members::cluster_member_get),
        ("/1.0/cluster/members/{name}", "PUT") => on(f, cluster_members::cluster_member_put),
        ("/1.0/cluster/members/{name}", "PATCH") => on(f, cluster_members::cluster_member_patch),
        ("/1.0/cluster/members/{name}", "POST") => on(f, cluster_members::cluster_member_post),
        ("/1.0/cluster/members/{name}", "DELETE") => on(f, cluster_members::cluster_member_delete),
        ("/1.0/cluster/members/{name}/state", "POST") => {
            on(f, cluster_members::cluster_member_state_post)
        }
        ("/1.0/events", "GET") => on(f, events::events_get),
        ("/1.0/networks", "GET") => on(f, networks::networks_get),
        ("/1.0/networks", "POST") => on(f, networks::networks_post),
        ("/1.0/networks/{name}", "GET") => on(f, networks::network_get),
        ("/1.0/networks/{name}", "PUT") => on(f, networks::network_put),
        ("/1.0/networks/{name}", "PATCH") => on(f, networks::network_patch),
        ("/1.0/networks/{name}", "DELETE") => on(f, networks::network_delete),
        ("/1.0/networks/{name}", "POST") => on(f, networks::network_post),
        ("/1.0/networks/{name}/leases", "GET") => on(f, network_leases::network_leases_get),
        ("/1.0/networks/{name}/state", "GET") => on(f, network_state::network_state_get),
        ("/1.0/operations", "GET") => on(f, operations::operations_get),
        ("/1.0/operations/{id}", "GET") => on(f, operations::operation_get),
        ("/1.0/operations/{id}", "DELETE") => on(f, operations::operation_delete),
        ("/1.0/operations/{id}/wait", "GET") => on(f, operations::operation_wait),
        ("/1.0/profiles", "GET") => on(f, profiles::profiles_get),
        ("/1.0/profiles", "POST") => on(f, profiles::profiles_post),
        ("/1.0/profiles/{name}", "GET") => on(f, profiles::profile_get),
        ("/1.0/profiles/{name}", "PUT") => on(f, profiles::profile_put),
        ("/1.0/profiles/{name}", "PATCH") => on(f, profiles::profile_patch),
        ("/1.0/profiles/{name}", "POST") => on(f, profiles::profile_post),
        ("/1.0/profiles/{name}", "DELETE") => on(f, profiles::profile_delete),
        ("/1.0/projects", "GET") => on(f, projects::projects_get),
        ("/1.0/projects/{name}", "GET") => on(f, projects::project_get),
        ("/1.0/projects/{name}/state", "GET") => on(f, projects::project_state_get),
        ("/1.0/resources", "GET") => on(f, resources::resources_get),
        ("/1.0/storage-pools", "GET") => on(f, storage_pools::storage_pools_get),
        ("/1.0/storage-pools", "POST") => on(f, storage_pools::storage_pools_post),
        ("/1.0/storage-pools/{name}", "GET") => on(f, storage_pools::storage_pool_get),
        ("/1.0/storage-pools/{name}", "PUT") => on(f, storage_pools::storage_pool_put),
        ("/1.0/storage-pools/{name}", "PATCH") => on(f, storage_pools::storage_pool_patch),
        ("/1.0/storage-pools/{name}", "DELETE") => on(f, storage_pools::storage_pool_delete),
        ("/1.0/storage-pools/{name}/resources", "GET") => {
            on(f, storage_pools::storage_pool_resources_get)
        }
        ("/1.0/warnings", "GET") => on(f, warnings::warnings_get),
        ("/1.0/warnings/{id}", "GET") => on(f, warnings::warning_get),
        ("/1.0/warnings/{id}", "PUT") => on(f, warnings::warning_put),
        ("/1.0/warnings/{id}", "PATCH") => on(f, warnings::warning_patch),
        ("/1.0/warnings/{id}", "DELETE") => on(f, warnings::warning_delete),
        ("/internal/ready", "GET") => on(f, internal::ready_get),
        ("/internal/shutdown", "PUT") => on(f, internal::shutdown_put),
        ("/internal/raft/elect", "POST") => on(f, internal::raft_elect_post),
        ("/internal/raft/{kind}", "POST") => on(f, internal::raft_post),
        ("/internal/cluster/accept", "POST") => on(f, internal_cluster::accept_post),
        ("/internal/cluster/joined", "POST") => on(f, internal_cluster::joined_post),
        ("/internal/cluster/abort", "POST") => on(f, internal_cluster::abort_post),
        ("/internal/heartbeat", "PUT") => on(f, internal_cluster::heartbeat_put),
        ("/internal/cluster/left", "POST") => on(f, internal_cluster::left_post),
        ("/internal/cluster/certificate/stage", "POST") => on(f, cluster_certificate::stage_post),
        ("/internal/cluster/certificate/unstage", "POST") => {
            on(f, cluster_certificate::unstage_post)
        }
        ("/internal/cluster/certificate/commit", "POST") => on(f, cluster_certificate::commit_post),
        ("/internal/storage-pools/create", "POST") => on(f, storage_pools::internal_pool_create),
        ("/internal/storage-pools/delete", "POST") => on(f, storage_pools::internal_pool_delete),
        ("/internal/networks/create", "POST") => on(f, networks::internal_network_create),
        ("/internal/networks/delete", "POST") => on(f, networks::internal_network_delete),
        ("/internal/networks/{name}/leases", "GET") => {
            on(f, network_leases::internal_network_leases_get)
        }
        ("/internal/form", "GET") => on(f, formation::form_get),
        ("/internal/form", "POST") => on(f, formation::form_post),
        ("/internal/form", "DELETE") => on(f, formation::form_delete),
        ("/internal/form/{id}/hello", "POST") => on(f, formation::hello_post),
        ("/internal/form/{id}/confirm", "POST") => on(f, formation::confirm_post),
        ("/internal/form/{id}/facts", "POST") => on(f, formation::facts_post),
        ("/internal/form/{id}/instruction", "GET") => on(f, formation::instruction_get),
        ("/internal/form/{id}/report", "POST") => on(f, formation::report_post),
        ("/internal/form/advert", "GET") => on(f, formation::advert_get),
        ("/internal/form/facts", "GET") => on(f, formation::own_facts_get),
        ("/internal/form/commit", "POST") => on(f, formation::commit_post),
        ("/internal/form/undo", "POST") => on(f, formation::undo_post),
        _ => unreachable!("every endpoint in ENDPOINTS has a handler: {path} {method}"),
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("not found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

/// Adds `h` to the routes of `path`, beside its other methods.
fn add(
    paths: &mut Vec<(&'static str, MethodRouter<State>)>,
    path: &'static str,
    h: MethodRouter<State>,
) {
    match paths.iter_mut().find(|(p, _)| *p == path) {
        Some((_, existing)) => *existing = std::mem::take(existing).merge(h),
        None => paths.push((path, h)),
    }
}

/// The whole API.
pub fn router(state: State) -> Router {
    let mut paths: Vec<(&'static str, MethodRouter<State>)> = Vec::new();
    for (path, method, _) in ENDPOINTS {
        add(&mut paths, path, handler_for(path, method));
    }
    for (path, methods, what) in UNSUPPORTED {
        for m in *methods {
            let h = on(filter(m), move || async move {
                ApiError::new(StatusCode::NOT_IMPLEMENTED, *what)
            });
            add(&mut paths, path, h);
        }
    }
    let mut router = Router::new();
    for (path, mr) in paths {
        router = router.route(path, mr.fallback(method_not_allowed));
    }
    // Each request is counted (the outer layer), then the access check runs, then a targeted
    // request is forwarded.
    router
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            forward_to_target,
        ))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), enforce))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::count,
        ))
        .fallback(not_found)
        .with_state(state)
}

/// Middleware: decides the caller's trust and enforces the route's access rule.
async fn enforce(
    axum::extract::State(d): axum::extract::State<State>,
    mut req: Request,
    next: Next,
) -> Response {
    // Every listener attaches the peer; a request without one is refused, never taken for local.
    let Some(peer) = req.extensions().get::<Peer>().cloned() else {
        return ApiError::forbidden().into_response();
    };
    let trust = d.trust_of(&peer).await;
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let access = access_of(req.method(), &path);
    let caller = Caller::new(peer, trust, req.headers());
    if !allows(access, &caller, &project_of(req.uri())) {
        return ApiError::forbidden().into_response();
    }
    // The formation paths exist for callers only while their window takes servers.
    if access == Access::Formation {
        let mut parts = req.uri().path().split('/').skip(3);
        let (id, step) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let open = if path == rxd_form::wire::ADVERT_PATH {
            d.formation.advert().is_some()
        } else {
            d.formation.admits(id, step)
        };
        if !open && matches!(step, "instruction" | "report") {
            // A joiner asking a window that is not here at all (the initiator restarted
            // before the formation was decided, or opened another): told so, to stop asking.
            return ApiError::not_found(format!(
                "Formation window {id} is not open on this server"
            ))
            .into_response();
        }
        if !open {
            return ApiError::forbidden().into_response();
        }
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// Middleware: a request with `?target=` on an endpoint whose answer depends on the member
/// ([`forwards_target`]) is carried out by that member, as LXD's
/// `ForwardedResponseIfTargetIsRemote` does: the same method, path and query (the target
/// answers for itself), body and `If-Match`; its status, body, `ETag` and `Location` come
/// back as they are. It runs after the access check, so the member that was asked decides
/// who may ask; on a public endpoint only a caller with full rights is forwarded, since the
/// target sees its member certificate.
pub async fn forward_to_target(
    axum::extract::State(d): axum::extract::State<std::sync::Arc<Daemon>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;

    let path = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    if !forwards_target(req.method(), &path) {
        return next.run(req).await;
    }
    let Some(wanted) =
        axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(req.uri())
            .ok()
            .and_then(|q| crate::handlers::target(&q).map(str::to_string))
    else {
        return next.run(req).await;
    };
    let full_rights = req
        .extensions()
        .get::<crate::access::Caller>()
        .is_some_and(crate::access::Caller::is_admin);
    if access_of(req.method(), &path) == crate::access::Access::Public && !full_rights {
        return next.run(req).await;
    }
    let member = match crate::handlers::target_member(&d, &wanted).await {
        Ok(Some(member)) => member,
        Ok(None) => return next.run(req).await,
        Err(e) => return e.into_response(),
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, crate::response::MAX_BODY).await else {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body is too large")
            .into_response();
    };
    let body = if bytes.is_empty() {
        None
    } else {
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(v) => Some(v),
            // Not JSON: this member's handler refuses it with the usual sentence.
            Err(_) => {
                let req = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
                return next.run(req).await;
            }
        }
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| parts.uri.path().to_string());
    let if_match = parts
        .headers
        .get(axum::http::header::IF_MATCH)
        .and_then(|v| v.to_str().ok());
    let caller = parts.extensions.get::<crate::access::Caller>();
    match crate::handlers::request_on_member(
        &d,
        &member,
        caller,
        parts.method.as_str(),
        &path_and_query,
        body,
        if_match,
    )
    .await
    {
        Ok(raw) => crate::handlers::passed_on(raw),
        Err(e) => e.into_response(),
    }
}
