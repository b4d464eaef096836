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
//!     ─> cluster.crt/key ─> raft replaced (old kept aside) ─> joined (learner, caught up,
//!        Created on the leader: THE commit point) ─> own row Created locally
//!     ─> old database removed ─> cluster-member-added
//! ```
//!
//! Every step is first written to `database/join.json` (through a temp file, fsync and rename),
//! so a restart finds what the join did. The join has one commit point, the leader marking the
//! member `Created` under its membership lock. A restarted joiner that still has the old
//! database aside runs as the new member and asks the cluster (`abort`, answered under the same
//! lock): a `Pending` member is forgotten and the joiner puts itself back (database, pools,
//! networks, addresses, certificates); a `Created` one is kept and the joiner finishes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use base64::Engine;
use rxd_api::{CertificatesPost, ClusterPut};
use rxd_client::Client;
use rxd_db::tables::{self, Config, MemberState};
use serde::{Deserialize, Serialize};

use crate::access::Caller;
use crate::config;
use crate::error::{ApiError, ApiResult};
use crate::handlers::cluster::POOL_MEMBER_KEYS;
use crate::handlers::internal_cluster::{
    api_message, AbortResponse, AcceptRequest, AcceptResponse, JoinProgress,
};
use crate::response::operation;
use crate::{Daemon, NODE_ID_KEY};

/// What the join has done so far, and so what to put back if it fails; kept on disk.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct JoinRecord {
    /// The address the join was sent to.
    cluster_address: String,
    /// The cluster certificate, pinned.
    cluster_certificate: String,
    /// The HTTPS address and local keys before the join.
    https: Option<(String, Config)>,
    /// Our certificate was added to the cluster's trust store by this join.
    trust_added: bool,
    /// Pool sides made here: name, driver, member config.
    pools_made: Vec<(String, String, Config)>,
    /// Network sides made here.
    networks_made: Vec<String>,
    /// The member id the cluster gave us.
    accepted: Option<u64>,
    /// Fingerprints of the members, trusted until the replica knows them.
    member_fingerprints: Vec<String>,
    /// `cluster.crt`/`cluster.key` were (or are being) written.
    cluster_cert_written: bool,
    /// The standalone database is (or is being) kept aside; its raft node id.
    raft_swapped: Option<u64>,
    /// The cluster made us a member: a restart finishes the join.
    committed: bool,
}

const RECORD: &str = "join.json";

fn record_path(dir: &Path) -> PathBuf {
    dir.join("database").join(RECORD)
}

/// Flushes a directory, so that the renames and removals in it survive a power loss.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn save(dir: &Path, rec: &JoinRecord) -> ApiResult<()> {
    let text = serde_json::to_vec(rec).expect("join records serialise");
    let path = record_path(dir);
    rxd_tls::write_atomic(&path, &text, 0o600)
        .and_then(|()| {
            sync_dir(&dir.join("database")).map_err(|source| rxd_tls::TlsError::Write {
                path: path.clone(),
                cause: source,
            })
        })
        .map_err(|e| ApiError::internal(format!("Failed to record the join's progress: {e}")))
}

fn load(dir: &Path) -> Option<JoinRecord> {
    let text = std::fs::read(record_path(dir)).ok()?;
    match serde_json::from_slice(&text) {
        Ok(rec) => Some(rec),
        Err(e) => {
            tracing::warn!("Ignoring an unreadable join record: {e}");
            None
        }
    }
}

fn clear(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(record_path(dir)) {
        Ok(()) => sync_dir(&dir.join("database")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether a join is recorded as in progress (or being finished or undone).
pub fn in_progress(dir: &Path) -> bool {
    record_path(dir).exists()
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
    if in_progress(&d.dir) {
        return Err(ApiError::bad_request(
            "An earlier join is still being finished or undone; try again in a moment",
        ));
    }
    let local = d.local_config()?;
    let core = local
        .get("core.https_address")
        .map(|a| config::canonical_address(a))
        .unwrap_or_default();
    let mut undo = JoinRecord {
        cluster_address: cluster_address.clone(),
        cluster_certificate: put.cluster_certificate.clone(),
        ..Default::default()
    };
    if core.is_empty() {
        d.set_https_address(&server_address).await?;
        undo.https = Some((String::new(), local.clone()));
        save(&d.dir, &undo)?;
        d.update_local([
            ("core.https_address", Some(server_address.as_str())),
            ("cluster.https_address", Some(server_address.as_str())),
        ])?;
    } else if core == server_address
        || (config::is_wildcard(&core)
            && core.rsplit(':').next() == server_address.rsplit(':').next())
    {
        undo.https = Some((core.clone(), local.clone()));
        save(&d.dir, &undo)?;
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
                    tracing::warn!("Join failed: {e}");
                    match settle(&work, undo).await {
                        Settled::Member => {
                            work.events.set_location(&name);
                            Ok(None)
                        }
                        Settled::Undone => Err(format!("Failed to join cluster: {}", e.message)),
                        Settled::Unknown => {
                            tokio::spawn(resume(work.clone()));
                            Err(format!(
                            "Failed to join cluster: {}; the cluster cannot be reached to decide, so the join will be finished or undone once it answers",
                            e.message
                        ))
                        }
                    }
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
    undo: &mut JoinRecord,
) -> ApiResult<()> {
    let c = Client::https(
        cluster_address,
        &put.cluster_certificate,
        Some(&d.server_cert),
    )
    .map_err(|e| fail("Failed to setup cluster trust", e))?
    .with_timeout(crate::peer::MEMBER_CALL_TIMEOUT);
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
        undo.trust_added = true;
        save(&d.dir, undo)?;
        match c.add_certificate(&post).await {
            Ok(_) => {}
            Err(e) if e.status() == Some(409) => {
                undo.trust_added = false;
                save(&d.dir, undo)?;
            }
            Err(e) => {
                undo.trust_added = false;
                return Err(client_error(
                    "Failed to setup cluster trust: Failed to add server cert to cluster",
                    e,
                ));
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
    // No member-specific value is required, as in LXD: every driver makes a pool without a
    // `source` (a directory or a loop file under the data directory) and every network key
    // of a member is optional.
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
        // Recorded before it is made, with the values it is made from, so a crash in between
        // still removes it.
        undo.pools_made
            .push((pool.name.clone(), pool.driver.clone(), values.clone()));
        save(&d.dir, undo)?;
        let cfg = rxd_storage::create(&d.dir, &pool.name, &pool.driver, &pool.config, values)
            .map_err(|e| {
                undo.pools_made.pop();
                fail(
                    &format!("Failed to initialize storage pool {:?}", pool.name),
                    e,
                )
            })?;
        if let Some(last) = undo.pools_made.last_mut() {
            last.2 = cfg.clone();
        }
        save(&d.dir, undo)?;
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
        joiner_fingerprint: None,
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
    undo.member_fingerprints = accepted.member_fingerprints.clone();
    save(&d.dir, undo)?;
    crate::failpoint("join-after-accept").await?;

    let key = rxd_api::decode_base64(&accepted.private_key)
        .ok()
        .and_then(|k| String::from_utf8(k).ok())
        .ok_or_else(|| ApiError::internal("The leader sent an unreadable cluster key"))?;
    let cluster_cert = rxd_tls::CertKey::from_pem(put.cluster_certificate.clone(), key)
        .map_err(|e| fail("The cluster key does not match the cluster certificate", e))?;
    undo.cluster_cert_written = true;
    save(&d.dir, undo)?;
    crate::handlers::cluster::write_cluster_cert(d, &cluster_cert)?;
    d.set_pending_trust(accepted.member_fingerprints.clone());
    d.set_cluster_cert(Some(cluster_cert))?;

    undo.raft_swapped = Some(d.node_id());
    save(&d.dir, undo)?;
    swap_raft(d, accepted.id).await?;
    d.update_local([(NODE_ID_KEY, Some(accepted.id.to_string().as_str()))])?;
    crate::failpoint("join-after-swap").await?;

    if fired("join-before-catch-up") {
        // A test hook: the joiner dies while the leader is adding it as a learner.
        let c = c.clone();
        let id = accepted.id;
        tokio::spawn(async move {
            let body = serde_json::to_value(JoinProgress { id }).expect("serialises");
            let _ = c
                .request("POST", "/internal/cluster/joined", Some(body), None)
                .await;
        });
        let _ = d
            .db()
            .wait_until(Duration::from_secs(30), "this member in raft", move |s| {
                s.learners.contains_key(&id) || s.voters.contains_key(&id)
            })
            .await;
        crate::failpoint("join-before-catch-up").await?;
    }
    let progress = serde_json::to_value(JoinProgress { id: accepted.id }).expect("serialises");
    c.request("POST", "/internal/cluster/joined", Some(progress), None)
        .await
        .map_err(|e| client_error("Failed to join the cluster database", e))?;
    // The leader marked us Created: the join is committed. What follows only finishes this
    // side, and a restart from here on finishes it too.
    crate::failpoint("join-after-joined").await?;
    wait_created(d, accepted.id).await?;
    crate::failpoint("join-before-rename").await?;
    commit(d, undo).await
}

/// Whether the failpoint for `step` is set (always false without the `failpoints` feature).
fn fired(step: &str) -> bool {
    cfg!(feature = "failpoints")
        && std::env::var("RXD_FAILPOINT")
            .map(|v| v.split(',').any(|one| one.split(':').next() == Some(step)))
            .unwrap_or(false)
}

/// Finishes this side of a committed join: the old database goes and the record with it.
async fn commit(d: &Daemon, rec: &mut JoinRecord) -> ApiResult<()> {
    let io =
        |e: std::io::Error| ApiError::internal(format!("Failed to retire the old database: {e}"));
    rec.committed = true;
    save(&d.dir, rec)?;
    let discard = d.dir.join("database").join("global.discard");
    if pre_join_dir(d).exists() {
        std::fs::rename(pre_join_dir(d), &discard).map_err(io)?;
        sync_dir(&d.dir.join("database")).map_err(io)?;
    }
    crate::failpoint("join-after-rename").await?;
    clear(&d.dir).map_err(io)?;
    let _ = std::fs::remove_dir_all(discard);
    d.set_pending_trust([]);
    Ok(())
}

/// How a failed or interrupted join ended.
enum Settled {
    /// The cluster had committed it: this side finished, it is a member.
    Member,
    /// Both sides are back as they were.
    Undone,
    /// The cluster could not be asked; the decision waits (see [`resume`]).
    Unknown,
}

/// Settles a join that failed after it started: asks the cluster whether it committed, then
/// finishes or undoes this side.
async fn settle(d: &Daemon, mut rec: JoinRecord) -> Settled {
    let Some(id) = rec.accepted else {
        if rec.trust_added {
            if let Ok(c) = Client::https(
                &rec.cluster_address,
                &rec.cluster_certificate,
                Some(&d.server_cert),
            ) {
                let c = c.with_timeout(Duration::from_secs(10));
                let _ = c.delete_certificate(&d.server_cert.fingerprint()).await;
            }
        }
        undo_local(d, &rec).await;
        return Settled::Undone;
    };
    match ask_abort(d, &rec, id).await {
        // The members stay trusted (pending trust) until the replica knows them.
        Ok(true) => match async {
            wait_created(d, id).await?;
            commit(d, &mut rec).await
        }
        .await
        {
            Ok(()) => Settled::Member,
            Err(e) => {
                tracing::error!("Failed to finish a committed join: {}", e.message);
                Settled::Unknown
            }
        },
        Ok(false) => {
            undo_local(d, &rec).await;
            Settled::Undone
        }
        Err(e) if rec.raft_swapped.is_none() => {
            // Our database was never replaced: nothing here depends on the cluster's answer,
            // and the leader forgets a member left pending.
            tracing::warn!("Failed to withdraw from the cluster: {e}");
            undo_local(d, &rec).await;
            Settled::Undone
        }
        Err(e) => {
            tracing::warn!("Cannot ask the cluster how the join ended: {e}");
            Settled::Unknown
        }
    }
}

/// Asks the cluster to forget member `id` unless it is already a member; true when it is.
async fn ask_abort(d: &Daemon, rec: &JoinRecord, id: u64) -> Result<bool, String> {
    let mut addresses = Vec::new();
    if let Some(leader) = d.db().status().leader_address {
        addresses.push(leader);
    }
    addresses.push(rec.cluster_address.clone());
    let body = serde_json::to_value(JoinProgress { id }).expect("serialises");
    let mut last = String::from("no address to ask");
    for address in addresses {
        let c = match Client::https(&address, &rec.cluster_certificate, Some(&d.server_cert)) {
            Ok(c) => c.with_timeout(crate::peer::MEMBER_CALL_TIMEOUT),
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        match c
            .request("POST", "/internal/cluster/abort", Some(body.clone()), None)
            .await
        {
            Ok(raw) => {
                let answer: AbortResponse = raw.metadata().unwrap_or_default();
                return Ok(answer.member);
            }
            Err(e) => last = api_message(&e),
        }
    }
    Err(last)
}

/// What a restarting daemon finds of an interrupted join.
pub enum Interrupted {
    /// Nothing, or a join that was committed and is now finished.
    Nothing,
    /// The standalone database is still aside and the cluster has not said how the join ended:
    /// start as the member the cluster accepted and [`resume`].
    Undecided,
}

/// At start, before the database opens: finishes a committed join, undoes one that never
/// replaced the database (this server's own files and keys; the leader forgets the pending
/// member), and reports one that must ask the cluster.
pub async fn recover_at_start(
    dir: &Path,
    local: &mut rusqlite::Connection,
) -> std::io::Result<Interrupted> {
    let db = dir.join("database");
    let discard = db.join("global.discard");
    let pre = db.join("global.pre-join");
    let Some(rec) = load(dir) else {
        // No record: a join of an earlier version, or none. The old database, if aside, returns.
        if discard.exists() {
            std::fs::remove_dir_all(&discard)?;
        }
        if pre.exists() {
            restore_pre_join(dir)?;
            rxd_db::local::update_config(local, [(NODE_ID_KEY, None)])
                .map_err(std::io::Error::other)?;
        }
        return Ok(Interrupted::Nothing);
    };
    if rec.committed {
        if pre.exists() {
            std::fs::rename(&pre, &discard)?;
            sync_dir(&db)?;
        }
        clear(dir)?;
        if discard.exists() {
            std::fs::remove_dir_all(&discard)?;
        }
        tracing::info!("Finished a join that was committed before a restart");
        return Ok(Interrupted::Nothing);
    }
    match (pre.exists(), rec.accepted) {
        (true, Some(id)) => {
            rxd_db::local::update_config(local, [(NODE_ID_KEY, Some(id.to_string().as_str()))])
                .map_err(std::io::Error::other)?;
            std::fs::create_dir_all(db.join("global"))?;
            Ok(Interrupted::Undecided)
        }
        _ => {
            tracing::warn!("Undoing a join interrupted before the cluster database arrived");
            if pre.exists() {
                restore_pre_join(dir)?;
            }
            undo_files(dir, &rec).await;
            rxd_db::local::update_config(local, https_keys(&rec)).map_err(std::io::Error::other)?;
            rxd_db::local::update_config(local, [(NODE_ID_KEY, None)])
                .map_err(std::io::Error::other)?;
            // A member the cluster accepted stays pending there until the leader forgets it
            // (twice the offline threshold), or until this server joins again under the same
            // name and address, which replaces it.
            clear(dir)?;
            Ok(Interrupted::Nothing)
        }
    }
}

fn https_keys(rec: &JoinRecord) -> Vec<(&str, Option<&str>)> {
    match &rec.https {
        Some((_, old)) => vec![
            (
                "core.https_address",
                old.get("core.https_address").map(String::as_str),
            ),
            (
                "cluster.https_address",
                old.get("cluster.https_address").map(String::as_str),
            ),
        ],
        None => vec![],
    }
}

/// Puts the kept standalone database back in place.
fn restore_pre_join(dir: &Path) -> std::io::Result<()> {
    let db = dir.join("database");
    let global = db.join("global");
    if global.exists() {
        std::fs::remove_dir_all(&global)?;
    }
    std::fs::rename(db.join("global.pre-join"), &global)?;
    sync_dir(&db)
}

/// Removes what the join made on this host: the cluster certificate, pool and network sides.
async fn undo_files(dir: &Path, rec: &JoinRecord) {
    for f in ["cluster.crt", "cluster.key"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    for (name, driver, cfg) in &rec.pools_made {
        rxd_storage::delete(dir, name, driver, cfg);
    }
    for name in &rec.networks_made {
        rxd_network::teardown(dir, name).await;
    }
}

/// On a daemon that restarted in the middle of a join: asks the cluster until it answers, then
/// finishes (a member) or undoes (standalone again) this side.
pub async fn resume(d: Arc<Daemon>) {
    let Some(mut rec) = load(&d.dir) else {
        return;
    };
    let Some(id) = rec.accepted else {
        return;
    };
    d.set_pending_trust(rec.member_fingerprints.clone());
    let mut wait = Duration::from_millis(200);
    loop {
        match ask_abort(&d, &rec, id).await {
            // The members stay trusted (pending trust) until the replica has caught up far
            // enough to know them, and this member as created.
            Ok(true) => match async {
                wait_created(&d, id).await?;
                commit(&d, &mut rec).await
            }
            .await
            {
                Ok(()) => {
                    let location = d.location().await;
                    d.events.set_location(&location);
                    tracing::info!("The interrupted join is finished: this server is a member");
                    return;
                }
                Err(e) => tracing::error!("Failed to finish the join: {}", e.message),
            },
            Ok(false) => {
                undo_local(&d, &rec).await;
                tracing::warn!("The interrupted join was undone: this server is standalone again");
                return;
            }
            Err(e) => tracing::warn!("Cannot ask the cluster how the join ended yet: {e}"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

/// Brings up this member's side of every managed network the cluster has created, with the
/// member-specific values from `member_config`; returns those values by network.
async fn prepare_networks(
    d: &Daemon,
    c: &Client,
    put: &ClusterPut,
    undo: &mut JoinRecord,
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
            .filter(|k| rxd_network::MEMBER_KEYS.contains(&k.key.as_str()))
            .map(|k| (k.key.clone(), k.value.clone()))
            .collect();
        let mut all = net.config.clone();
        all.extend(mine.clone());
        undo.networks_made.push(net.name.clone());
        save(&d.dir, undo)?;
        if let Err(e) = rxd_network::setup(&d.dir, &net.name, &all, true).await {
            undo.networks_made.pop();
            rxd_network::teardown(&d.dir, &net.name).await;
            return Err(fail(
                &format!("Failed to initialize network {:?}", net.name),
                e,
            ));
        }
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
    sync_dir(&d.dir.join("database")).map_err(io)?;
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

/// Puts this server back as it was before the join: its database, certificates, pool and
/// network sides and addresses. Each step can run again, so a crash in the middle is undone by
/// the next start.
async fn undo_local(d: &Daemon, rec: &JoinRecord) {
    if let Some(old_id) = rec.raft_swapped {
        if pre_join_dir(d).exists() {
            let _ = d.db().shutdown().await;
            match restore_pre_join(&d.dir) {
                Ok(()) => match d.open_db(old_id).await {
                    Ok(db) => d.replace_db(db),
                    Err(e) => {
                        tracing::error!("Failed to reopen the database after a failed join: {e}")
                    }
                },
                Err(e) => tracing::error!("Failed to put the old database back: {e}"),
            }
        }
        let _ = d.update_local([(NODE_ID_KEY, None)]);
    }
    undo_files(&d.dir, rec).await;
    let _ = d.set_cluster_cert(None);
    d.set_pending_trust([]);
    if let Some((old_core, _)) = &rec.https {
        let _ = d.set_https_address(old_core).await;
        let _ = d.update_local(https_keys(rec));
    }
    if let Err(e) = clear(&d.dir) {
        tracing::error!("Failed to remove the join record: {e}");
    }
    d.events.set_location("none");
}
