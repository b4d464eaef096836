//! Joining an existing cluster, on the joining server. Everything that can be checked is checked
//! before anything is wiped, and a failure after the cluster accepted puts both sides back.
//!
//! ```text
//!  PUT /1.0/cluster {cluster_address,...}
//!   sync: certificate given, server_address given, not clustered, bind server_address
//!   op "Joining cluster":
//!     untrusted GET /1.0 (version) ─> POST /1.0/certificates (token or password)
//!     ─> own certificate name ─> member_config complete ─> prepare pool directories
//!     ─> accept on the leader (id, cluster key) ══ from here, failure = abort + undo ══
//!     ─> cluster.crt/key ─> raft replaced (old kept aside) ─> joined (learner, caught up)
//!     ─> own row Created locally ─> old database removed ─> cluster-member-added
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use base64::Engine;
use rxd_api::{CertificatesPost, ClusterPut};
use rxd_client::Client;
use rxd_db::tables::{self, Config, MemberState};

use crate::access::Caller;
use crate::config;
use crate::error::{ApiError, ApiResult};
use crate::handlers::cluster::POOL_MEMBER_KEYS;
use crate::handlers::internal_cluster::{api_message, AcceptRequest, AcceptResponse, JoinProgress};
use crate::response::operation;
use crate::{Daemon, NODE_ID_KEY};

/// What to put back if the join fails.
#[derive(Default)]
struct Undo {
    https: Option<(String, Config)>,
    trust_added: bool,
    pools_made: Vec<(String, String, Config)>,
    networks_made: Vec<String>,
    accepted: Option<u64>,
    cluster_cert_written: bool,
    raft_swapped: Option<u64>,
}

fn fail(context: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("{context}: {e}"))
}

fn client_error(context: &str, e: rxd_client::ClientError) -> ApiError {
    fail(context, api_message(&e))
}

/// Starts a join: the synchronous checks, then the operation.
pub async fn start(d: Arc<Daemon>, caller: Caller, put: ClusterPut) -> ApiResult<Response> {
    if put.cluster_certificate.is_empty() {
        return Err(ApiError::bad_request(
            "No target cluster member certificate provided",
        ));
    }
    if put.server_address.is_empty() {
        return Err(ApiError::bad_request(
            "No server address provided for this member",
        ));
    }
    crate::handlers::cluster::validate_member_name(&put.server_name)?;
    let server_address = config::canonical_address(&put.server_address);
    let cluster_address = config::canonical_address(&put.cluster_address);
    let local = d.local_config()?;
    let core = local
        .get("core.https_address")
        .map(|a| config::canonical_address(a))
        .unwrap_or_default();
    let mut undo = Undo::default();
    if core.is_empty() {
        d.set_https_address(&server_address).await?;
        undo.https = Some((String::new(), local.clone()));
        d.update_local([
            ("core.https_address", Some(server_address.as_str())),
            ("cluster.https_address", Some(server_address.as_str())),
        ])?;
    } else if core == server_address
        || (config::is_wildcard(&core)
            && core.rsplit(':').next() == server_address.rsplit(':').next())
    {
        undo.https = Some((core.clone(), local.clone()));
        d.update_local([("cluster.https_address", Some(server_address.as_str()))])?;
    } else {
        return Err(ApiError::bad_request(format!(
            "core.https_address {core:?} does not cover server_address {server_address:?}: set core.https_address to the server address or leave it empty"
        )));
    }
    let work = d.clone();
    let name = put.server_name.clone();
    let op = d.ops.start(
        "Joining cluster",
        Some(serde_json::json!({"cluster": null})),
        "none",
        async move {
            match run(&work, &put, &server_address, &cluster_address, &mut undo).await {
                Ok(()) => {
                    work.events.set_location(&name);
                    work.events.lifecycle(
                        "cluster-member-added",
                        &format!("/1.0/cluster/members/{name}"),
                        None,
                        Some(caller.requestor()),
                    );
                    Ok(None)
                }
                Err(e) => {
                    tracing::warn!("Join failed, putting everything back: {e}");
                    rollback(&work, &put, &cluster_address, undo).await;
                    Err(format!("Failed to join cluster: {}", e.message))
                }
            }
        },
    );
    Ok(operation(&op))
}

fn member_values(put: &ClusterPut, pool: &str) -> Config {
    put.member_config
        .iter()
        .flatten()
        .filter(|k| k.entity == "storage-pool" && k.name == pool)
        .filter(|k| POOL_MEMBER_KEYS.contains(&k.key.as_str()) && !k.value.is_empty())
        .map(|k| (k.key.clone(), k.value.clone()))
        .collect()
}

async fn run(
    d: &Daemon,
    put: &ClusterPut,
    server_address: &str,
    cluster_address: &str,
    undo: &mut Undo,
) -> ApiResult<()> {
    let c = Client::https(
        cluster_address,
        &put.cluster_certificate,
        Some(&d.server_cert),
    )
    .map_err(|e| fail("Failed to setup cluster trust", e))?;
    let (remote, _) = c.server().await.map_err(|e| {
        client_error(
            &format!("Failed to connect to target cluster node {cluster_address:?}"),
            e,
        )
    })?;
    let ours: Vec<String> = rxd_api::API_EXTENSIONS
        .iter()
        .map(|s| s.to_string())
        .collect();
    if remote.api_extensions != ours {
        return Err(ApiError::bad_request(format!(
            "The joining server version doesn't match (expected {} API extensions, this server has {})",
            remote.api_extensions.len(),
            ours.len()
        )));
    }
    let own_fp = d.server_cert.fingerprint();
    if !put.cluster_password.is_empty() {
        let der = d.server_cert.cert_der().to_vec();
        let post = CertificatesPost {
            name: put.server_name.clone(),
            cert_type: "server".into(),
            certificate: base64::engine::general_purpose::STANDARD.encode(der),
            password: put.cluster_password.clone(),
            ..Default::default()
        };
        match c.add_certificate(&post).await {
            Ok(_) => undo.trust_added = true,
            Err(e) if e.status() == Some(409) => {}
            Err(e) => {
                return Err(client_error(
                    "Failed to setup cluster trust: Failed to add server cert to cluster",
                    e,
                ))
            }
        }
    }
    let (cert, _) = c.certificate(&own_fp).await.map_err(|e| {
        client_error(
            "Failed to update cluster trust: Failed getting existing certificate",
            e,
        )
    })?;
    if cert.put.cert_type == "server" && cert.put.name != put.server_name {
        return Err(ApiError::bad_request(format!(
            "Existing server certificate with different name {:?} already in trust store",
            cert.put.name
        )));
    }
    let (cluster, _) = c
        .cluster()
        .await
        .map_err(|e| client_error("Failed to read the cluster's configuration", e))?;
    for key in &cluster.member_config {
        let given = put
            .member_config
            .iter()
            .flatten()
            .any(|k| k.entity == key.entity && k.name == key.name && k.key == key.key);
        if !given {
            return Err(ApiError::bad_request(format!(
                "Missing member configuration: {}",
                key.description
            )));
        }
    }
    let pools = c
        .storage_pools()
        .await
        .map_err(|e| client_error("Failed to read the cluster's storage pools", e))?;
    let mut prepared = std::collections::BTreeMap::new();
    for pool in pools.iter().filter(|p| p.status == "Created") {
        let values = member_values(put, &pool.name);
        let default_dir = d.dir.join("storage-pools").join(&pool.name);
        if default_dir.exists() {
            return Err(ApiError::bad_request(format!(
                "Failed to initialize storage pool {:?}: {} already exists",
                pool.name,
                default_dir.display()
            )));
        }
        let cfg = crate::storage::create(&d.dir, &pool.name, &pool.driver, &pool.config, values)
            .map_err(|e| {
                fail(
                    &format!("Failed to initialize storage pool {:?}", pool.name),
                    e,
                )
            })?;
        undo.pools_made
            .push((pool.name.clone(), pool.driver.clone(), cfg.clone()));
        prepared.insert(pool.name.clone(), cfg);
    }
    let prepared_networks = prepare_networks(d, &c, put, undo).await?;
    let req = AcceptRequest {
        name: put.server_name.clone(),
        address: server_address.to_string(),
        schema: rxd_db::cluster_schema_version(),
        api: rxd_api::API_EXTENSIONS.len(),
        architecture: crate::handlers::server::architectures()
            .into_iter()
            .next()
            .unwrap_or_default(),
        storage_pools: prepared,
        networks: prepared_networks,
    };
    let raw = c
        .request(
            "POST",
            "/internal/cluster/accept",
            Some(serde_json::to_value(&req).expect("internal bodies serialise")),
            None,
        )
        .await
        .map_err(|e| client_error("Failed request to add member", e))?;
    let accepted: AcceptResponse = raw
        .metadata()
        .map_err(|e| fail("Failed request to add member", e))?;
    undo.accepted = Some(accepted.id);
    crate::failpoint("join-after-accept")?;

    let key = base64::engine::general_purpose::STANDARD
        .decode(&accepted.private_key)
        .ok()
        .and_then(|k| String::from_utf8(k).ok())
        .ok_or_else(|| ApiError::internal("The leader sent an unreadable cluster key"))?;
    let cluster_cert = rxd_tls::CertKey::from_pem(put.cluster_certificate.clone(), key)
        .map_err(|e| fail("The cluster key does not match the cluster certificate", e))?;
    crate::handlers::cluster::write_cluster_cert(d, &cluster_cert)?;
    undo.cluster_cert_written = true;
    d.set_pending_trust(accepted.member_fingerprints.clone());
    d.set_cluster_cert(Some(cluster_cert))?;

    let old_id = d.node_id();
    swap_raft(d, accepted.id).await?;
    undo.raft_swapped = Some(old_id);
    d.update_local([(NODE_ID_KEY, Some(accepted.id.to_string().as_str()))])?;
    crate::failpoint("join-after-swap")?;

    let progress = serde_json::to_value(JoinProgress { id: accepted.id }).expect("serialises");
    c.request("POST", "/internal/cluster/joined", Some(progress), None)
        .await
        .map_err(|e| client_error("Failed to join the cluster database", e))?;
    wait_created(d, accepted.id).await?;
    // The rename is the commit point: after it, a restart keeps the join.
    let discard = d.dir.join("database").join("global.discard");
    std::fs::rename(pre_join_dir(d), &discard)
        .map_err(|e| ApiError::internal(format!("Failed to retire the old database: {e}")))?;
    let _ = std::fs::remove_dir_all(discard);
    d.set_pending_trust([]);
    Ok(())
}

/// Puts back a join that a crash interrupted: the standalone database kept aside returns, and
/// the cluster certificate goes. A finished join has no `global.pre-join` left.
pub fn recover_interrupted(dir: &std::path::Path) -> std::io::Result<bool> {
    let db = dir.join("database");
    let discard = db.join("global.discard");
    if discard.exists() {
        std::fs::remove_dir_all(&discard)?;
    }
    let pre = db.join("global.pre-join");
    if !pre.exists() {
        return Ok(false);
    }
    let global = db.join("global");
    if global.exists() {
        std::fs::remove_dir_all(&global)?;
    }
    std::fs::rename(&pre, &global)?;
    for f in ["cluster.crt", "cluster.key"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    Ok(true)
}

/// Brings up this member's side of every managed network the cluster has created, with the
/// member-specific values from `member_config`; returns those values by network.
async fn prepare_networks(
    d: &Daemon,
    c: &Client,
    put: &ClusterPut,
    undo: &mut Undo,
) -> ApiResult<std::collections::BTreeMap<String, Config>> {
    let raw = c
        .request("GET", "/1.0/networks?recursion=1", None, None)
        .await
        .map_err(|e| client_error("Failed to read the cluster's networks", e))?;
    let networks: Vec<rxd_api::Network> = raw
        .metadata()
        .map_err(|e| fail("Failed to read the cluster's networks", e))?;
    let mut prepared = std::collections::BTreeMap::new();
    for net in networks
        .iter()
        .filter(|n| n.managed && n.status == "Created")
    {
        let mine: Config = put
            .member_config
            .iter()
            .flatten()
            .filter(|k| k.entity == "network" && k.name == net.name && !k.value.is_empty())
            .filter(|k| crate::network::MEMBER_KEYS.contains(&k.key.as_str()))
            .map(|k| (k.key.clone(), k.value.clone()))
            .collect();
        let mut all = net.config.clone();
        all.extend(mine.clone());
        crate::network::setup(&d.dir, &net.name, &all, true)
            .await
            .map_err(|e| fail(&format!("Failed to initialize network {:?}", net.name), e))?;
        undo.networks_made.push(net.name.clone());
        prepared.insert(net.name.clone(), mine);
    }
    Ok(prepared)
}

fn global_dir(d: &Daemon) -> PathBuf {
    d.dir.join("database").join("global")
}

fn pre_join_dir(d: &Daemon) -> PathBuf {
    d.dir.join("database").join("global.pre-join")
}

/// Keeps the standalone database aside and opens an empty one as node `id`.
async fn swap_raft(d: &Daemon, id: u64) -> ApiResult<()> {
    let io = |e: std::io::Error| ApiError::internal(format!("Failed to replace the database: {e}"));
    d.db().shutdown().await?;
    let _ = std::fs::remove_dir_all(pre_join_dir(d));
    std::fs::rename(global_dir(d), pre_join_dir(d)).map_err(io)?;
    std::fs::create_dir_all(global_dir(d)).map_err(io)?;
    let db = d.open_db(id).await?;
    d.replace_db(db);
    Ok(())
}

async fn wait_created(d: &Daemon, id: u64) -> ApiResult<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let members = d.db().read_local(tables::members).await.unwrap_or_default();
        if members
            .iter()
            .any(|m| m.id == id && m.state == MemberState::Created)
        {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::internal(
                "The cluster database did not reach this member within 60 s",
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn rollback(d: &Daemon, put: &ClusterPut, cluster_address: &str, undo: Undo) {
    let c = Client::https(
        cluster_address,
        &put.cluster_certificate,
        Some(&d.server_cert),
    )
    .ok();
    if let (Some(id), Some(c)) = (undo.accepted, &c) {
        let body = serde_json::to_value(JoinProgress { id }).expect("serialises");
        if let Err(e) = c
            .request("POST", "/internal/cluster/abort", Some(body), None)
            .await
        {
            tracing::warn!("Failed to withdraw from the cluster: {e}");
        }
    } else if undo.trust_added {
        if let Some(c) = &c {
            let _ = c.delete_certificate(&d.server_cert.fingerprint()).await;
        }
    }
    if let Some(old_id) = undo.raft_swapped {
        let _ = d.db().shutdown().await;
        let _ = std::fs::remove_dir_all(global_dir(d));
        if std::fs::rename(pre_join_dir(d), global_dir(d)).is_ok() {
            match d.open_db(old_id).await {
                Ok(db) => d.replace_db(db),
                Err(e) => tracing::error!("Failed to reopen the database after a failed join: {e}"),
            }
        }
        let _ = d.update_local([(NODE_ID_KEY, Some(old_id.to_string().as_str()))]);
    }
    if undo.cluster_cert_written {
        let _ = std::fs::remove_file(d.dir.join("cluster.crt"));
        let _ = std::fs::remove_file(d.dir.join("cluster.key"));
    }
    let _ = d.set_cluster_cert(None);
    d.set_pending_trust([]);
    for (name, driver, cfg) in undo.pools_made {
        crate::storage::delete(&d.dir, &name, &driver, &cfg);
    }
    for name in undo.networks_made {
        crate::network::teardown(&d.dir, &name).await;
    }
    if let Some((old_core, old_local)) = undo.https {
        let _ = d.set_https_address(&old_core).await;
        let _ = d.update_local([
            (
                "core.https_address",
                old_local.get("core.https_address").map(String::as_str),
            ),
            (
                "cluster.https_address",
                old_local.get("cluster.https_address").map(String::as_str),
            ),
        ]);
    }
}
