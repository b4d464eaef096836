//! `/` and `/1.0`: the server, its environment and its configuration.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use rxd_api::{Server, ServerEnvironment, ServerPut, ServerStorageDriverInfo};
use rxd_db::tables::{self, Config};
use rxd_db::Command;
use serde_json::{Map, Value};

use crate::access::Caller;
use crate::config::{self, Scope};
use crate::error::{ApiError, ApiResult};
use crate::response::{check_etag, empty, sync, sync_etag, CompareAndSet, JsonBody};
use crate::Daemon;

/// `GET /`.
pub async fn root_get() -> Response {
    sync(["/1.0"])
}

/// The configuration as `GET /1.0` shows it: cluster keys (hidden ones as `true`) and this
/// member's local keys.
pub async fn rendered_config(d: &Daemon) -> ApiResult<Map<String, Value>> {
    let cluster = d.db().read(tables::config).await?;
    Ok(render(cluster, d.local_config()?))
}

/// The cluster-wide and member-local keys as `GET /1.0` shows them.
fn render(cluster: Config, local: Config) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in cluster.into_iter().chain(local) {
        let Some(key) = config::key(&k) else {
            continue;
        };
        let value = if key.hidden {
            Value::Bool(true)
        } else {
            Value::String(v)
        };
        out.insert(k, value);
    }
    out
}

fn uname() -> (String, String, String) {
    match nix::sys::utsname::uname() {
        Ok(u) => (
            u.sysname().to_string_lossy().into_owned(),
            u.release().to_string_lossy().into_owned(),
            u.machine().to_string_lossy().into_owned(),
        ),
        Err(_) => ("Linux".into(), String::new(), std::env::consts::ARCH.into()),
    }
}

fn os_release() -> (String, String) {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    (field("NAME"), field("VERSION_ID"))
}

/// The architectures this host runs, LXD's way (x86_64 also runs i686).
pub fn architectures() -> Vec<String> {
    let (_, _, machine) = uname();
    match machine.as_str() {
        "x86_64" => vec!["x86_64".into(), "i686".into()],
        "aarch64" => vec!["aarch64".into(), "armv7l".into()],
        other => vec![other.to_string()],
    }
}

async fn environment(d: &Daemon) -> ApiResult<ServerEnvironment> {
    let (kernel, kernel_version, kernel_architecture) = uname();
    let (os_name, os_version) = os_release();
    let cert = d.served_cert();
    let pools = d.db().read(tables::storage_pools).await?;
    let mut drivers: Vec<String> = pools.iter().map(|p| p.driver.clone()).collect();
    drivers.sort();
    drivers.dedup();
    Ok(ServerEnvironment {
        addresses: d.https_addresses().await,
        architectures: architectures(),
        certificate_fingerprint: cert.fingerprint(),
        certificate: cert.cert_pem,
        driver: "lxc".into(),
        driver_version: String::new(),
        firewall: "nftables".into(),
        kernel,
        kernel_architecture,
        kernel_features: Default::default(),
        kernel_version,
        lxc_features: Default::default(),
        os_name,
        os_version,
        project: "default".into(),
        server: "lxd".into(),
        server_clustered: d.is_clustered().await?,
        server_event_mode: "full-mesh".into(),
        server_name: d.server_name().await?,
        server_pid: std::process::id(),
        server_version: env!("CARGO_PKG_VERSION").into(),
        storage: drivers.join(" | "),
        storage_version: drivers.iter().map(|_| "1").collect::<Vec<_>>().join(" | "),
        storage_supported_drivers: rxd_storage::supported()
            .into_iter()
            .map(|name| ServerStorageDriverInfo {
                name: name.into(),
                version: "1".into(),
                remote: false,
            })
            .collect(),
    })
}

/// `GET /1.0` (another member's view with `?target=`, which the router hands to that member).
pub async fn server_get(State(d): State<Arc<Daemon>>, caller: Caller) -> ApiResult<Response> {
    let untrusted = Server {
        config: None,
        api_extensions: rxd_api::API_EXTENSIONS
            .iter()
            .map(|s| s.to_string())
            .collect(),
        api_status: "stable".into(),
        api_version: "1.0".into(),
        auth: "untrusted".into(),
        public: false,
        auth_methods: vec!["tls".into()],
        environment: None,
    };
    if !caller.is_trusted() {
        return Ok(sync(untrusted));
    }
    // As in LXD, only an unrestricted caller sees the server configuration.
    let config = if caller.is_admin() {
        rendered_config(&d).await?
    } else {
        Default::default()
    };
    let etag = rxd_api::etag(&ServerPut {
        config: config.clone(),
    });
    let server = Server {
        config: Some(config),
        auth: "trusted".into(),
        environment: Some(environment(&d).await?),
        ..untrusted
    };
    Ok(sync_etag(server, &etag))
}

/// `PUT /1.0`: replaces the whole configuration (another member's with `?target=`, which the
/// router hands to that member).
pub async fn server_put(
    State(d): State<Arc<Daemon>>,
    headers: HeaderMap,
    JsonBody(put): JsonBody<ServerPut>,
) -> ApiResult<Response> {
    update(&d, &headers, put, false).await
}

/// `PATCH /1.0`: merges into the configuration.
pub async fn server_patch(
    State(d): State<Arc<Daemon>>,
    headers: HeaderMap,
    JsonBody(put): JsonBody<ServerPut>,
) -> ApiResult<Response> {
    update(&d, &headers, put, true).await
}

/// A config value as a string: YAML may bring numbers and booleans.
fn value_string(key: &str, v: &Value) -> ApiResult<Option<String>> {
    Ok(match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => {
            return Err(ApiError::bad_request(format!(
                "Invalid value for {key}: expected a string"
            )))
        }
    })
}

async fn update(
    d: &Daemon,
    headers: &HeaderMap,
    put: ServerPut,
    merge: bool,
) -> ApiResult<Response> {
    // Member-local keys change only under this lock; the cluster-wide ones are a
    // compare-and-set with the configuration read here.
    let _writing = d.config_writes.lock().await;
    let mut cas = CompareAndSet::new(headers);
    while update_once(d, headers, &put, merge, &mut cas)
        .await?
        .is_none()
    {}
    Ok(empty())
}

/// One read-check-write of [`update`]; `None` when it lost a race and is computed again.
async fn update_once(
    d: &Daemon,
    headers: &HeaderMap,
    put: &ServerPut,
    merge: bool,
    cas: &mut CompareAndSet,
) -> ApiResult<Option<()>> {
    let cluster_now = d.db().read(tables::config).await?;
    let local_now = d.local_config()?;
    let current = render(cluster_now.clone(), local_now.clone());
    check_etag(
        headers,
        &rxd_api::etag(&ServerPut {
            config: current.clone(),
        }),
    )?;
    // The wanted state of every key the request touches; None = unset.
    let mut wanted: Vec<(String, Option<String>)> = Vec::new();
    for (k, v) in &put.config {
        let key = config::key(k)
            .ok_or_else(|| ApiError::bad_request(format!("Unknown configuration key: {k}")))?;
        if key.hidden && *v == Value::Bool(true) {
            // A hidden key read back as `true` and written back means "unchanged".
            continue;
        }
        let value = value_string(k, v)?.filter(|s| !s.is_empty());
        if let Some(value) = &value {
            config::validate(k, value).map_err(ApiError::bad_request)?;
        }
        wanted.push((k.clone(), value));
    }
    if !merge {
        for k in current.keys() {
            if !put.config.contains_key(k) {
                wanted.push((k.clone(), None));
            }
        }
    }
    let mut cluster_set = Config::new();
    let mut cluster_unset = Vec::new();
    let mut local_changes: Vec<(String, Option<String>)> = Vec::new();
    for (k, value) in wanted {
        let key = config::key(&k).expect("keys were checked above");
        match key.scope {
            Scope::Cluster => {
                let changed = cluster_now.get(&k) != value.as_ref() || key.hidden;
                if !changed {
                    continue;
                }
                match value {
                    Some(v) if k == "core.trust_password" => {
                        cluster_set.insert(k, crate::password::hash(&v).await?);
                    }
                    Some(v) => {
                        cluster_set.insert(k, v);
                    }
                    None if cluster_now.contains_key(&k) => cluster_unset.push(k),
                    None => {}
                }
            }
            Scope::Member => {
                if local_now.get(&k) != value.as_ref() {
                    local_changes.push((k, value));
                }
            }
        }
    }
    let clustered = d.is_clustered().await?;
    for (k, v) in &local_changes {
        if k == "cluster.https_address" && clustered {
            return Err(ApiError::bad_request(
                "Changing cluster.https_address is currently not supported",
            ));
        }
        if k == "core.https_address" {
            d.set_https_address(v.as_deref().unwrap_or("")).await?;
        }
    }
    // With `If-Match`, the cluster-wide keys must still be as read even when none changes.
    if !cluster_set.is_empty()
        || !cluster_unset.is_empty()
        || headers.contains_key(axum::http::header::IF_MATCH)
    {
        let write = Command::SetConfig {
            set: cluster_set,
            unset: cluster_unset,
        }
        .only_if(rxd_db::Expected::Config(cluster_now));
        let result = d.db().propose(write).await;
        let outcome = match result {
            Ok(applied) => cas.outcome(applied),
            Err(e) => Err(ApiError::from(e)),
        };
        if !matches!(outcome, Ok(Some(_))) {
            // Put the listener back as it was, so a refused request changes nothing.
            if local_changes.iter().any(|(k, _)| k == "core.https_address") {
                let old = local_now
                    .get("core.https_address")
                    .cloned()
                    .unwrap_or_default();
                d.set_https_address(&old).await.ok();
            }
            return outcome.map(|_| None);
        }
    }
    d.update_local(
        local_changes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref())),
    )?;
    Ok(Some(()))
}
