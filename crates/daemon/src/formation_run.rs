//! The formation's executor, in the initiator's daemon (issue 12), after the window has
//! collected its joiners' facts:
//!
//! ```text
//!  POST /internal/form/commit {preseed answers, dry_run}
//!   plan (addresses, names, versions, member_config, clocks)  ── errors: 400, window open
//!   dry_run: the plan's text, window open
//!   operation "Forming cluster":
//!    Preparing:  each joiner: Prepare {its address, the others'} ─> listens there, probes
//!                the initiator probes too; plan again, reachability included
//!    Committing: a new cluster: this server bootstraps with the pools and networks (the
//!                `rxd init` path); each joiner: Join {a one-time token, its values} ─> joins
//!                (the `rxd init` join path), reports
//!    Committed:  each joiner: Done
//!   any failure: the window aborts, each joiner is told Abort (it undoes its Prepare)
//! ```
//!
//! The joiners act on their own daemons; the executor hands them instructions through the
//! window (`GET /internal/form/<id>/instruction`, from their pinned certificates) and waits
//! for their reports.

use std::sync::Arc;
use std::time::Duration;

use rxd_db::tables;
use rxd_form::planner::{self, Existing, Facts, LocalData, Plan, Role};
use rxd_form::wire::{CommitPost, Instruction};

use crate::error::{ApiError, ApiResult};
use crate::formation_journal::{self, Journal, Stage};
use crate::Daemon;
use rxd_cluster::host::MemberSides;

/// How long joiners have to prepare (listen and probe).
const PREPARE_LIMIT: Duration = Duration::from_secs(60);
/// How long joiners have to join.
const JOIN_LIMIT: Duration = Duration::from_secs(300);
/// How long a server keeps probing an address that does not answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// This server's facts under `name`: its version and extensions, clock, interfaces, disks
/// and local data.
pub async fn own_facts(d: &Daemon, name: &str) -> ApiResult<Facts> {
    let (pools, networks, profiles) = d
        .db()
        .read_local(|c| {
            Ok((
                tables::storage_pools(c)?,
                tables::networks(c)?,
                tables::profiles(c, "default")?,
            ))
        })
        .await?;
    let now = chrono::Utc::now().timestamp_millis();
    Ok(Facts {
        name: name.to_string(),
        fingerprint: d.server_cert.fingerprint(),
        version: crate::fault_injection::form_version(),
        api_extensions: rxd_api::API_EXTENSIONS
            .iter()
            .map(|e| e.to_string())
            .collect(),
        local_data: LocalData {
            instances: vec![],
            images: vec![],
            storage_pools: pools.into_iter().map(|p| p.name).collect(),
            networks: networks.into_iter().map(|n| n.name).collect(),
            profiles: profiles
                .into_iter()
                .map(|p| p.name)
                .filter(|n| n != "default")
                .collect(),
        },
        clock_ms: now,
        received_ms: now,
        interfaces: rxd_form::facts::interfaces(),
        disks: rxd_form::facts::disks(),
        reaches: vec![],
    })
}

/// The answer to a commit: the plan's text, and the operation when it runs.
pub struct Started {
    /// What the plan does, as `--dry-run` prints it.
    pub plan_text: String,
    /// The operation, unless a dry run.
    pub operation: Option<rxd_api::Operation>,
}

/// Plans, then (unless a dry run) starts the operation that forms the cluster.
pub async fn commit(d: &Arc<Daemon>, post: CommitPost) -> ApiResult<Started> {
    let preseed = post
        .preseed
        .check_answers()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let answers = preseed.answers();
    let (window, name, joiners) = d.formation.begin_planning()?;
    let mut initiator = own_facts(d, &name).await?;
    let existing = existing_members(d).await?;
    let first = planner::Limits {
        reachability: false,
        ..planner::Limits::default()
    };
    let plan = match planner::plan(&initiator, &existing, &joiners, &answers, &first) {
        Ok(plan) => plan,
        Err(errors) => {
            // Back to collecting: the operator may fix the answers or wait for more servers.
            let _ = d.formation.advance(rxd_form::window::Window::reopen);
            return Err(ApiError::bad_request(in_words(&errors)));
        }
    };
    let plan_text = plan.dry_run_text();
    if post.dry_run {
        let _ = d.formation.advance(rxd_form::window::Window::reopen);
        return Ok(Started {
            plan_text,
            operation: None,
        });
    }
    d.formation.advance(rxd_form::window::Window::prepare)?;
    let work = d.clone();
    let op = d.ops.start("Forming cluster", None, &name, async move {
        let outcome = execute(
            &work,
            &window,
            &mut initiator,
            joiners,
            &existing,
            &answers,
            plan,
        )
        .await;
        work.formation.stage_cluster_cert(None);
        match outcome {
            Ok(()) => Ok(None),
            Err(reason) => {
                tracing::warn!("Formation failed: {reason}");
                work.formation.fail(&reason);
                Err(reason)
            }
        }
    });
    Ok(Started {
        plan_text,
        operation: Some(op),
    })
}

async fn existing_members(d: &Daemon) -> ApiResult<Vec<Existing>> {
    if !d.is_clustered().await? {
        return Ok(vec![]);
    }
    let members = d.db().read(tables::members).await?;
    Ok(members
        .into_iter()
        .map(|m| Existing {
            name: m.name,
            address: m.address,
        })
        .collect())
}

fn in_words(errors: &[planner::PlanError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!("The formation cannot go ahead: {}", lines.join("; "))
}

async fn execute(
    d: &Arc<Daemon>,
    window: &str,
    initiator: &mut Facts,
    mut joiners: Vec<Facts>,
    existing: &[Existing],
    answers: &planner::Answers,
    plan: Plan,
) -> Result<(), String> {
    let joining: Vec<&planner::PlannedMember> = plan
        .members
        .iter()
        .filter(|m| m.role == Role::Joiner)
        .collect();
    let names: Vec<String> = joining.iter().map(|m| m.name.clone()).collect();
    let me = own_member(&plan)?;
    // A server that joined the window but was not chosen is told so at once.
    for f in joiners.iter().filter(|f| !names.contains(&f.name)) {
        d.formation.instruct(
            &f.name,
            Instruction::Abort {
                reason: format!("{} is not among the servers chosen for the cluster", f.name),
            },
        );
    }

    // From here on a restart of this daemon aborts the formation and puts back where it
    // listens, as the journal says.
    let mut journal = journal_of(d, window, initiator, &plan)?;
    write_journal(d, &journal)?;
    let prepared = async {
        prepare(
            d,
            &joining,
            initiator,
            &mut joiners,
            existing,
            answers,
            &plan,
        )
        .await?;
        // Committing: a new cluster first, then every joiner at once; the journal puts this
        // server back as it was if any of it fails, even across a restart.
        d.formation.go_on()?;
        d.formation
            .advance(rxd_form::window::Window::commit)
            .map_err(|e| e.message)?;
        begin_commit(d, &mut journal).await
    }
    .await;
    if let Err(reason) = prepared {
        journal.stage = Stage::RolledBack;
        journal.reason.clone_from(&reason);
        if let Err(e) = write_journal(d, &journal) {
            tracing::warn!("{e}");
        }
        return Err(reason);
    }
    let committed = commit_steps(d, &me.name, &plan, &joining, &mut journal).await;
    if let Err(reason) = committed {
        let reason = take_back(d, &names, reason).await;
        return Err(put_back(d, &mut journal, reason).await);
    }
    // The decision: from here on the cluster stands, whatever happens to this daemon.
    journal.stage = Stage::Committed;
    write_journal(d, &journal)?;
    if let Err(e) = formation_journal::drop_copy(&d.dir) {
        tracing::warn!("Cannot remove the database copy of the formation: {e}");
    }
    for name in &names {
        d.formation.instruct(name, Instruction::Done);
    }
    d.formation
        .advance(rxd_form::window::Window::committed)
        .map_err(|e| e.message)?;
    tracing::info!("Formation committed: {} members", plan.members.len());
    Ok(())
}

/// This server's place in `plan`.
fn own_member(plan: &Plan) -> Result<&planner::PlannedMember, String> {
    plan.members
        .iter()
        .find(|m| m.role == Role::Initiator)
        .ok_or_else(|| "The plan has no initiator".to_string())
}

/// Preparing: every server listens on its address and probes the others'; then the plan is
/// made again, reachability included.
async fn prepare(
    d: &Arc<Daemon>,
    joining: &[&planner::PlannedMember],
    initiator: &mut Facts,
    joiners: &mut [Facts],
    existing: &[Existing],
    answers: &planner::Answers,
    plan: &Plan,
) -> Result<(), String> {
    let names: Vec<String> = joining.iter().map(|m| m.name.clone()).collect();
    let me = own_member(plan)?;
    let others = |name: &str| -> Vec<String> {
        plan.members
            .iter()
            .filter(|m| m.name != name)
            .map(|m| m.address.clone())
            .collect()
    };
    // A new cluster's certificate is made now, so the joiners, still pinned to the
    // certificate they confirmed, learn the one the initiator serves once it bootstraps.
    let cluster_fingerprint = if plan.new_cluster {
        let cert = rxd_tls::generate(&d.hostname)
            .map_err(|e| format!("Failed to generate cluster certificate: {e}"))?;
        let fingerprint = cert.fingerprint();
        d.formation.stage_cluster_cert(Some(cert));
        fingerprint
    } else {
        String::new()
    };
    for m in joining {
        d.formation.instruct(
            &m.name,
            Instruction::Prepare {
                address: m.address.clone(),
                probe: others(&m.name),
                cluster_fingerprint: cluster_fingerprint.clone(),
            },
        );
    }
    listen_on(d, &me.address).await?;
    let reports = d
        .formation
        .reports_of(&names, PREPARE_LIMIT, "preparing")
        .await?;
    // Every joiner listens now.
    initiator.reaches = rxd_form::facts::probe(&others(&me.name), PROBE_TIMEOUT).await;
    failures(&reports)?;
    for f in joiners.iter_mut() {
        if let Some(r) = reports.get(&f.name) {
            f.reaches = r.reaches.clone();
        }
    }
    planner::plan(
        initiator,
        existing,
        joiners,
        answers,
        &planner::Limits::default(),
    )
    .map_err(|errors| in_words(&errors))?;
    Ok(())
}

/// The steps that change the servers: this one bootstraps a new cluster, then each joiner is
/// given a one-time token and joins.
async fn commit_steps(
    d: &Arc<Daemon>,
    name: &str,
    plan: &Plan,
    joining: &[&planner::PlannedMember],
    journal: &mut Journal,
) -> Result<(), String> {
    let names: Vec<String> = joining.iter().map(|m| m.name.clone()).collect();
    if plan.new_cluster {
        bootstrap(d, name, plan).await?;
        // The sides the bootstrap made, with the member config they were made with.
        let before = &journal.made;
        let made = crate::member_sides::own(d).await;
        journal.made = MemberSides {
            pools_made: made
                .pools_made
                .into_iter()
                .filter(|(p, _, _)| before.pools_made.iter().any(|(b, _, _)| b == p))
                .collect(),
            networks_made: before.networks_made.clone(),
        };
        write_journal(d, journal)?;
        failpoint("form-after-bootstrap").await?;
        d.formation.go_on()?;
    }
    // Every token first: nobody is told to join unless all can be.
    let location = d.location().await;
    let mut joins = Vec::new();
    for m in joining {
        let token = rxd_cluster::tokens::issue_join(&**d, &m.name, location.clone())
            .await
            .map_err(|e| e.to_string())?;
        let token = rxd_api::JoinToken {
            server_name: token.name,
            fingerprint: token.fingerprint,
            addresses: token.addresses,
            secret: token.secret,
            expires_at: token.expires_at,
        }
        .encode();
        let cluster = rxd_api::InitClusterPreseed {
            enabled: true,
            server_address: m.address.clone(),
            cluster_token: token,
            member_config: m.member_config.clone(),
            ..Default::default()
        };
        joins.push((m.name.clone(), Instruction::Join { cluster }));
    }
    for (name, join) in joins {
        d.formation.instruct(&name, join);
    }
    let reports = d
        .formation
        .reports_of(&names, JOIN_LIMIT, "joining")
        .await?;
    failures(&reports)?;
    failpoint("form-before-decision").await?;
    d.formation.go_on()
}

async fn failpoint(step: &str) -> Result<(), String> {
    rxd_cluster::failpoint(step).await.map_err(|e| e.message)
}

fn write_journal(d: &Daemon, journal: &Journal) -> Result<(), String> {
    formation_journal::write(&d.dir, journal)
        .map_err(|e| format!("Cannot write the formation journal: {e}"))
}

/// The journal of the formation `window` as it starts preparing: how to put this server
/// back as it was.
fn journal_of(d: &Daemon, window: &str, initiator: &Facts, plan: &Plan) -> Result<Journal, String> {
    let (joiners, listened_before) = d.formation.journal_seed();
    let local = d.local_config().map_err(|e| e.message)?;
    let before = &initiator.local_data;
    Ok(Journal {
        window: window.to_string(),
        stage: Stage::Preparing,
        joiners,
        new_cluster: plan.new_cluster,
        node_id: d.node_id(),
        listened_before,
        cluster_address_before: local
            .get("cluster.https_address")
            .cloned()
            .unwrap_or_default(),
        made: MemberSides {
            pools_made: plan
                .storage_pools
                .iter()
                .filter(|p| !before.storage_pools.contains(&p.name))
                .map(|p| (p.name.clone(), p.driver.clone(), Default::default()))
                .collect(),
            networks_made: plan
                .networks
                .iter()
                .filter(|n| !before.networks.contains(&n.name))
                .map(|n| n.name.clone())
                .collect(),
        },
        reason: String::new(),
    })
}

/// Before the first change: copies this server's database (a new cluster's initiator), and
/// records in the journal that it is committing.
async fn begin_commit(d: &Daemon, journal: &mut Journal) -> Result<(), String> {
    if journal.new_cluster {
        // Copied closed, then opened again: a standalone server's database is small.
        let db = d.db();
        db.shutdown().await.map_err(|e| e.to_string())?;
        let dir = d.dir.clone();
        let copied = tokio::task::spawn_blocking(move || formation_journal::copy_database(&dir))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        reopen(d, journal.node_id).await?;
        copied.map_err(|e| format!("Cannot copy the database before the formation: {e}"))?;
    }
    journal.stage = Stage::Committing;
    write_journal(d, journal)
}

/// Opens this server's database again, as raft node `id`.
async fn reopen(d: &Daemon, id: u64) -> Result<(), String> {
    let db = d
        .open_db(id)
        .await
        .map_err(|e| format!("Cannot open the database again: {e}"))?;
    db.wait_for_leader(Duration::from_secs(30))
        .await
        .map_err(|e| format!("The database did not come back: {e}"))?;
    d.replace_db(db);
    Ok(())
}

/// After a failure: puts this server back as it was (a new cluster's initiator: its
/// database, certificate, cluster address and the sides the formation made), and records
/// the end in the journal. Answers the reason, with what could not be put back.
async fn put_back(d: &Daemon, journal: &mut Journal, reason: String) -> String {
    let mut said = reason;
    if journal.new_cluster {
        let undone = async {
            d.db().shutdown().await.map_err(|e| e.to_string())?;
            crate::member_sides::undo(&d.dir, &journal.made).await;
            {
                let mut local = d.local.lock().expect("lock is never poisoned");
                // `rxd form` puts its listening address back itself, through the API.
                formation_journal::put_back_files(&d.dir, &mut local, journal, false)
                    .map_err(|e| e.to_string())?;
            }
            d.set_cluster_cert(None).map_err(|e| e.message)?;
            reopen(d, journal.node_id).await?;
            rxd_cluster::Host::set_location(d, "none");
            Ok::<(), String>(())
        }
        .await;
        match undone {
            Ok(()) => said.push_str("; this server is standalone again, as before"),
            Err(e) => said.push_str(&format!("; this server could not be put back: {e}")),
        }
    }
    journal.stage = Stage::RolledBack;
    journal.reason.clone_from(&said);
    if let Err(e) = write_journal(d, journal) {
        tracing::warn!("{e}");
    }
    said
}

/// After a failed join: takes the joiners that did join out of the cluster again (each turns
/// back into a standalone server), and says what happened.
async fn take_back(d: &Arc<Daemon>, names: &[String], reason: String) -> String {
    let members = match d.db().read(tables::members).await {
        Ok(m) => m,
        Err(e) => return format!("{reason}; the members that joined could not be listed: {e}"),
    };
    let joined: Vec<&String> = names
        .iter()
        .filter(|n| {
            members
                .iter()
                .any(|m| &m.name == *n && m.state != tables::MemberState::Pending)
        })
        .collect();
    if joined.is_empty() {
        return reason;
    }
    let mut said = Vec::new();
    for name in joined {
        match rxd_cluster::leave::remove_member(&**d, name, false).await {
            Ok(()) => said.push(format!("{name} was taken out of the cluster again")),
            Err(e) => said.push(format!("{name} could not be taken out of the cluster: {e}")),
        }
    }
    format!("{reason}; {}", said.join("; "))
}

/// The joiners' failures, in words, if any.
fn failures(
    reports: &std::collections::BTreeMap<String, rxd_form::wire::StepReport>,
) -> Result<(), String> {
    let failed: Vec<String> = reports
        .iter()
        .filter(|(_, r)| !r.error.is_empty())
        .map(|(name, r)| format!("{name}: {}", r.error))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

/// Makes this server listen on `address`, its planned cluster address, unless it does.
async fn listen_on(d: &Daemon, address: &str) -> Result<(), String> {
    let client = rxd_client::Client::unix(d.dir.join("unix.socket"));
    let (server, _) = client.server().await.map_err(|e| e.to_string())?;
    let now = server
        .config
        .as_ref()
        .and_then(|c| c.get("core.https_address"))
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    if now == address {
        return Ok(());
    }
    let body = serde_json::json!({"config": {"core.https_address": address}});
    client
        .request("PATCH", "/1.0", Some(body), None)
        .await
        .map_err(|e| format!("Cannot listen on {address}: {e}"))?;
    Ok(())
}

/// Bootstraps this server as `name` with the plan's pools and networks, as `rxd init` does;
/// the default profile gets a root disk on the first pool and a NIC on the first network,
/// unless it has them.
async fn bootstrap(d: &Daemon, name: &str, plan: &Plan) -> Result<(), String> {
    let client = rxd_client::Client::unix(d.dir.join("unix.socket"));
    let (default, _) = client
        .profile("default")
        .await
        .map_err(|e| format!("Cannot read the default profile: {e}"))?;
    let mut devices = rxd_api::Devices::new();
    if let Some(pool) = plan.storage_pools.first() {
        if !default.devices.contains_key("root") {
            let root = [
                ("path", "/"),
                ("pool", pool.name.as_str()),
                ("type", "disk"),
            ];
            devices.insert("root".into(), config_of(&root));
        }
    }
    if let Some(network) = plan.networks.first() {
        if !default.devices.contains_key("eth0") {
            let nic = [
                ("name", "eth0"),
                ("network", network.name.as_str()),
                ("type", "nic"),
            ];
            devices.insert("eth0".into(), config_of(&nic));
        }
    }
    let profiles = if devices.is_empty() {
        vec![]
    } else {
        vec![rxd_api::ProfilesPost {
            name: "default".into(),
            devices,
            ..Default::default()
        }]
    };
    let preseed = rxd_api::InitPreseed {
        storage_pools: plan.storage_pools.clone(),
        networks: plan.networks.clone(),
        profiles,
        cluster: Some(rxd_api::InitClusterPreseed {
            server_name: name.to_string(),
            enabled: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    rxd_init::apply(&client, &preseed)
        .await
        .map_err(|e| format!("Cannot make the cluster: {e}"))
}

/// How long a server put back at start keeps listening for the joiners of its formation.
const TELL_LIMIT: Duration = Duration::from_secs(180);

/// After a formation put back at start (the initiator had stopped during it): once every
/// joiner has learnt the end (or after [`TELL_LIMIT`]), listen where this server did before
/// `rxd form`, unless someone moved it meanwhile.
pub async fn listen_as_before(d: Arc<Daemon>, journal: Journal) {
    let during = d
        .local_config()
        .ok()
        .and_then(|c| c.get("core.https_address").cloned())
        .unwrap_or_default();
    d.formation.settled_told(TELL_LIMIT).await;
    let now = d
        .local_config()
        .ok()
        .and_then(|c| c.get("core.https_address").cloned())
        .unwrap_or_default();
    let before = journal.listened_before;
    if now != during || now == before {
        return;
    }
    let _one = d.config_writes.lock().await;
    let undone = async {
        d.set_https_address(&before).await?;
        d.update_local([(
            "core.https_address",
            (!before.is_empty()).then_some(before.as_str()),
        )])
    }
    .await;
    match undone {
        Ok(()) => tracing::info!(
            "Formation {} put back: listening on {before:?} again",
            journal.window
        ),
        Err(e) => tracing::warn!("Cannot listen on {before:?} again: {}", e.message),
    }
}

fn config_of(pairs: &[(&str, &str)]) -> rxd_api::Config {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
