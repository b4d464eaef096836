//! Joining an existing cluster, on the joining server. Everything that can be checked is checked
//! before anything is wiped, and a failure after the cluster accepted puts both sides back.
//!
//! ```text
//!  PUT /1.0/cluster {cluster_address,...}
//!   sync: certificate given, server_address given, not clustered, bind server_address
//!   op "Joining cluster":
//!     untrusted GET /1.0 (version) ─> POST /1.0/certificates (token or password)
//!     ─> own certificate name ─> this member's side of every pool and network
//!        (Host::prepare_member_sides, each recorded before it is made)
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

use base64::Engine;
use rxd_api::config_keys as config;
use rxd_api::{CertificatesPost, ClusterPut};
use rxd_client::Client;
use rxd_db::tables::{self, Config, MemberState};
use serde::{Deserialize, Serialize};

use crate::accept::{AbortResponse, AcceptRequest, AcceptResponse, JoinProgress};
use crate::host::{MemberSides, SidesJournal, NODE_ID_KEY};
use crate::peer::{api_message, MEMBER_CALL_TIMEOUT};
use crate::{fired, sync_dir, Error, Host, Result};

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
    /// Pool and network sides made here.
    #[serde(flatten)]
    sides: MemberSides,
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

fn save(dir: &Path, rec: &JoinRecord) -> Result<()> {
    let text = serde_json::to_vec(rec).expect("join records serialise");
    let path = record_path(dir);
    rxd_tls::write_atomic(&path, &text, 0o600)
        .and_then(|()| {
            sync_dir(&dir.join("database")).map_err(|source| rxd_tls::TlsError::Write {
                path: path.clone(),
                cause: source,
            })
        })
        .map_err(|e| Error::internal(format!("Failed to record the join's progress: {e}")))
}

/// The join record as the member-side step writes it.
struct Journal<'a> {
    dir: &'a Path,
    rec: &'a mut JoinRecord,
}

impl SidesJournal for Journal<'_> {
    fn sides(&mut self) -> &mut MemberSides {
        &mut self.rec.sides
    }
    fn save(&self) -> Result<()> {
        save(self.dir, self.rec)
    }
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

/// The `Failed ...: cause` error of a join step (a 400).
pub fn fail(context: &str, e: impl std::fmt::Display) -> Error {
    Error::bad_request(format!("{context}: {e}"))
}

/// [`fail`] with the other side's own sentence.
pub fn client_error(context: &str, e: rxd_client::ClientError) -> Error {
    fail(context, api_message(&e))
}

/// A join whose synchronous checks passed: what [`carry_out`] runs.
pub struct Started {
    put: ClusterPut,
    server_address: String,
    cluster_address: String,
    undo: JoinRecord,
}

/// How a join that did not fail ended.
pub enum Joined {
    /// It ran through: this server is a new member (the daemon announces it).
    Joined,
    /// It failed after the cluster had committed it, and this side finished it.
    Finished,
}

/// Starts a join: the synchronous checks, and the HTTPS address the cluster will reach this
/// server at. [`carry_out`] does the rest, in the daemon's operation.
pub async fn start<H: Host + ?Sized>(d: &H, put: ClusterPut) -> Result<Started> {
    if put.cluster_certificate.is_empty() {
        return Err(Error::bad_request(
            "No target cluster member certificate provided",
        ));
    }
    if put.server_address.is_empty() {
        return Err(Error::bad_request(
            "No server address provided for this member",
        ));
    }
    crate::bootstrap::validate_member_name(&put.server_name)?;
    let server_address = config::canonical_address(&put.server_address);
    let cluster_address = config::canonical_address(&put.cluster_address);
    if in_progress(d.dir()) {
        return Err(Error::bad_request(
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
        save(d.dir(), &undo)?;
        d.update_local(&[
            ("core.https_address", Some(server_address.as_str())),
            ("cluster.https_address", Some(server_address.as_str())),
        ])?;
    } else if core == server_address
        || (config::is_wildcard(&core)
            && core.rsplit(':').next() == server_address.rsplit(':').next())
    {
        undo.https = Some((core.clone(), local.clone()));
        save(d.dir(), &undo)?;
        d.update_local(&[("cluster.https_address", Some(server_address.as_str()))])?;
    } else {
        return Err(Error::bad_request(format!(
            "core.https_address {core:?} does not cover server_address {server_address:?}: set core.https_address to the server address or leave it empty"
        )));
    }
    Ok(Started {
        put,
        server_address,
        cluster_address,
        undo,
    })
}

/// Runs a started join to its end: joined, or both sides put back (the error says why), or,
/// when the cluster cannot be asked how it ended, left to [`resume`] (the error says so).
pub async fn carry_out<H: Host>(
    work: Arc<H>,
    started: Started,
) -> std::result::Result<Joined, String> {
    let Started {
        put,
        server_address,
        cluster_address,
        mut undo,
    } = started;
    let name = put.server_name.clone();
    match run(&*work, &put, &server_address, &cluster_address, &mut undo).await {
        Ok(()) => {
            work.set_location(&name);
            Ok(Joined::Joined)
        }
        Err(e) => {
            tracing::warn!("Join failed: {e}");
            match settle(&*work, undo).await {
                Settled::Member => {
                    work.set_location(&name);
                    Ok(Joined::Finished)
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
}

async fn run<H: Host + ?Sized>(
    d: &H,
    put: &ClusterPut,
    server_address: &str,
    cluster_address: &str,
    undo: &mut JoinRecord,
) -> Result<()> {
    let c = Client::https(
        cluster_address,
        &put.cluster_certificate,
        Some(d.server_cert()),
    )
    .map_err(|e| fail("Failed to setup cluster trust", e))?
    .with_timeout(MEMBER_CALL_TIMEOUT);
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
        return Err(Error::bad_request(format!(
            "The joining server version doesn't match (expected {} API extensions, this server has {})",
            remote.api_extensions.len(),
            ours.len()
        )));
    }
    let own_fp = d.server_cert().fingerprint();
    if !put.cluster_password.is_empty() {
        let der = d.server_cert().cert_der().to_vec();
        let post = CertificatesPost {
            name: put.server_name.clone(),
            cert_type: "server".into(),
            certificate: base64::engine::general_purpose::STANDARD.encode(der),
            password: put.cluster_password.clone(),
            ..Default::default()
        };
        undo.trust_added = true;
        save(d.dir(), undo)?;
        match c.add_certificate(&post).await {
            Ok(_) => {}
            Err(e) if e.status() == Some(409) => {
                undo.trust_added = false;
                save(d.dir(), undo)?;
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
        return Err(Error::bad_request(format!(
            "Existing server certificate with different name {:?} already in trust store",
            cert.put.name
        )));
    }
    // No member-specific value is required, as in LXD: every driver makes a pool without a
    // `source` (a directory or a loop file under the data directory) and every network key
    // of a member is optional.
    let prepared = {
        let mut journal = Journal {
            dir: d.dir(),
            rec: undo,
        };
        d.prepare_member_sides(
            &c,
            put.member_config.as_deref().unwrap_or_default(),
            &mut journal,
        )
        .await?
    };
    let req = AcceptRequest {
        name: put.server_name.clone(),
        address: server_address.to_string(),
        schema: rxd_db::cluster_schema_version(),
        api: rxd_api::API_EXTENSIONS.len(),
        architecture: d.architecture(),
        storage_pools: prepared.storage_pools,
        networks: prepared.networks,
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
    save(d.dir(), undo)?;
    crate::failpoint("join-after-accept").await?;

    let key = rxd_api::decode_base64(&accepted.private_key)
        .ok()
        .and_then(|k| String::from_utf8(k).ok())
        .ok_or_else(|| Error::internal("The leader sent an unreadable cluster key"))?;
    let cluster_cert = rxd_tls::CertKey::from_pem(put.cluster_certificate.clone(), key)
        .map_err(|e| fail("The cluster key does not match the cluster certificate", e))?;
    undo.cluster_cert_written = true;
    save(d.dir(), undo)?;
    crate::bootstrap::write_cluster_cert(d.dir(), &cluster_cert)?;
    d.set_pending_trust(accepted.member_fingerprints.clone());
    d.set_cluster_cert(Some(cluster_cert))?;

    undo.raft_swapped = Some(d.node_id());
    save(d.dir(), undo)?;
    swap_raft(d, accepted.id).await?;
    d.update_local(&[(NODE_ID_KEY, Some(accepted.id.to_string().as_str()))])?;
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

/// Finishes this side of a committed join: the old database goes and the record with it.
async fn commit<H: Host + ?Sized>(d: &H, rec: &mut JoinRecord) -> Result<()> {
    let io = |e: std::io::Error| Error::internal(format!("Failed to retire the old database: {e}"));
    rec.committed = true;
    save(d.dir(), rec)?;
    let discard = d.dir().join("database").join("global.discard");
    if pre_join_dir(d).exists() {
        std::fs::rename(pre_join_dir(d), &discard).map_err(io)?;
        sync_dir(&d.dir().join("database")).map_err(io)?;
    }
    crate::failpoint("join-after-rename").await?;
    clear(d.dir()).map_err(io)?;
    let _ = std::fs::remove_dir_all(discard);
    d.set_pending_trust(vec![]);
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
async fn settle<H: Host + ?Sized>(d: &H, mut rec: JoinRecord) -> Settled {
    let Some(id) = rec.accepted else {
        if rec.trust_added {
            if let Ok(c) = Client::https(
                &rec.cluster_address,
                &rec.cluster_certificate,
                Some(d.server_cert()),
            ) {
                let c = c.with_timeout(Duration::from_secs(10));
                let _ = c.delete_certificate(&d.server_cert().fingerprint()).await;
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
async fn ask_abort<H: Host + ?Sized>(
    d: &H,
    rec: &JoinRecord,
    id: u64,
) -> std::result::Result<bool, String> {
    let mut addresses = Vec::new();
    if let Some(leader) = d.db().status().leader_address {
        addresses.push(leader);
    }
    addresses.push(rec.cluster_address.clone());
    let body = serde_json::to_value(JoinProgress { id }).expect("serialises");
    let mut last = String::from("no address to ask");
    for address in addresses {
        let c = match Client::https(&address, &rec.cluster_certificate, Some(d.server_cert())) {
            Ok(c) => c.with_timeout(MEMBER_CALL_TIMEOUT),
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
/// member), and reports one that must ask the cluster. `undo_sides` removes this member's
/// sides of pools and networks the join had made ([`Host::undo_member_sides`], before there is
/// a host).
pub async fn recover_at_start(
    dir: &Path,
    local: &mut rusqlite::Connection,
    undo_sides: impl AsyncFnOnce(&MemberSides),
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
            remove_cluster_cert(dir);
            undo_sides(&rec.sides).await;
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

/// Removes the cluster certificate the join wrote.
fn remove_cluster_cert(dir: &Path) {
    for f in ["cluster.crt", "cluster.key"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
}

/// Undoes this server's side of a join left undecided with the cluster whose certificate has
/// fingerprint `cluster_fingerprint`, when that cluster is known to be gone for good (a
/// formation that made it was aborted and deleted it); true when there was such a join.
pub async fn abandon<H: Host + ?Sized>(d: &H, cluster_fingerprint: &str) -> bool {
    let Some(rec) = load(d.dir()) else {
        return false;
    };
    let theirs = rxd_tls::fingerprint_pem(&rec.cluster_certificate).unwrap_or_default();
    if rec.committed || theirs.is_empty() || theirs != cluster_fingerprint {
        return false;
    }
    undo_local(d, &rec).await;
    tracing::warn!(
        "The join of a cluster that is gone was undone: this server is standalone again"
    );
    true
}

/// On a daemon that restarted in the middle of a join: asks the cluster until it answers, then
/// finishes (a member) or undoes (standalone again) this side; it stops once the join is no
/// longer recorded ([`abandon`]ed).
pub async fn resume<H: Host>(d: Arc<H>) {
    let Some(mut rec) = load(d.dir()) else {
        return;
    };
    let Some(id) = rec.accepted else {
        return;
    };
    d.set_pending_trust(rec.member_fingerprints.clone());
    let mut wait = Duration::from_millis(200);
    while in_progress(d.dir()) {
        match ask_abort(&*d, &rec, id).await {
            // The members stay trusted (pending trust) until the replica has caught up far
            // enough to know them, and this member as created.
            Ok(true) => match async {
                wait_created(&*d, id).await?;
                commit(&*d, &mut rec).await
            }
            .await
            {
                Ok(()) => {
                    let location = crate::host::own_member(&*d)
                        .await
                        .map(|m| m.name)
                        .unwrap_or_else(|_| "none".into());
                    d.set_location(&location);
                    tracing::info!("The interrupted join is finished: this server is a member");
                    return;
                }
                Err(e) => tracing::error!("Failed to finish the join: {}", e.message),
            },
            Ok(false) => {
                undo_local(&*d, &rec).await;
                tracing::warn!("The interrupted join was undone: this server is standalone again");
                return;
            }
            Err(e) => tracing::warn!("Cannot ask the cluster how the join ended yet: {e}"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

fn global_dir<H: Host + ?Sized>(d: &H) -> PathBuf {
    d.dir().join("database").join("global")
}

fn pre_join_dir<H: Host + ?Sized>(d: &H) -> PathBuf {
    d.dir().join("database").join("global.pre-join")
}

/// Keeps the standalone database aside and opens an empty one as node `id`.
async fn swap_raft<H: Host + ?Sized>(d: &H, id: u64) -> Result<()> {
    let io = |e: std::io::Error| Error::internal(format!("Failed to replace the database: {e}"));
    d.db().shutdown().await?;
    let _ = std::fs::remove_dir_all(pre_join_dir(d));
    std::fs::rename(global_dir(d), pre_join_dir(d)).map_err(io)?;
    std::fs::create_dir_all(global_dir(d)).map_err(io)?;
    sync_dir(&d.dir().join("database")).map_err(io)?;
    let db = d.open_db(id).await?;
    d.replace_db(db);
    Ok(())
}

async fn wait_created<H: Host + ?Sized>(d: &H, id: u64) -> Result<()> {
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
            return Err(Error::internal(
                "The cluster database did not reach this member within 60 s",
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Puts this server back as it was before the join: its database, certificates, pool and
/// network sides and addresses. Each step can run again, so a crash in the middle is undone by
/// the next start.
async fn undo_local<H: Host + ?Sized>(d: &H, rec: &JoinRecord) {
    if let Some(old_id) = rec.raft_swapped {
        if pre_join_dir(d).exists() {
            let _ = d.db().shutdown().await;
            match restore_pre_join(d.dir()) {
                Ok(()) => match d.open_db(old_id).await {
                    Ok(db) => d.replace_db(db),
                    Err(e) => {
                        tracing::error!("Failed to reopen the database after a failed join: {e}")
                    }
                },
                Err(e) => tracing::error!("Failed to put the old database back: {e}"),
            }
        }
        let _ = d.update_local(&[(NODE_ID_KEY, None)]);
    }
    remove_cluster_cert(d.dir());
    d.undo_member_sides(&rec.sides).await;
    let _ = d.set_cluster_cert(None);
    d.set_pending_trust(vec![]);
    if let Some((old_core, _)) = &rec.https {
        let _ = d.set_https_address(old_core).await;
        let _ = d.update_local(&https_keys(rec));
    }
    if let Err(e) = clear(d.dir()) {
        tracing::error!("Failed to remove the join record: {e}");
    }
    d.set_location("none");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_keeps_its_keys_on_disk() {
        let mut rec = JoinRecord {
            cluster_address: "10.0.0.1:8443".into(),
            accepted: Some(4),
            ..Default::default()
        };
        rec.sides
            .pools_made
            .push(("local".into(), "dir".into(), Config::new()));
        rec.sides.networks_made.push("rxdbr0".into());
        let text = serde_json::to_value(&rec).unwrap();
        assert_eq!(
            text["pools_made"],
            serde_json::json!([["local", "dir", {}]])
        );
        assert_eq!(text["networks_made"], serde_json::json!(["rxdbr0"]));
        let back: JoinRecord = serde_json::from_value(text).unwrap();
        assert_eq!(back.sides, rec.sides);
        assert_eq!(back.accepted, Some(4));
    }
}
