//! `rxd form` and `rxd join` (issue 12): one formation preseed, the same on every server.
//!
//! ```text
//!  rxd form --preseed            (the initiator)
//!    listen on its address ─> open the window (passphrase from the file) ─> wait until every
//!    member named has joined the window and reported its facts ─> POST /internal/form/commit
//!    ─> wait for the operation "Forming cluster" (Ctrl-C: the daemon is asked to abort; it
//!    stops at its next step and puts every server back, and this waits for that)
//!  rxd join --name N --preseed   (every other server)
//!    find the window (initiator_address, else DNS-SD on the interface) ─> passphrase exchange
//!    ─> report facts ─> follow the initiator's instructions: prepare (listen, probe the
//!    others), join (the `rxd init` join with a one-time token), done | abort (undo prepare)
//! ```
//!
//! The questions of the interactive form come later; both commands need `--preseed` today.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use rxd_client::Client;
use rxd_form::joiner::{self, Me, Target};
use rxd_form::planner::{AddressSource, Facts};
use rxd_form::preseed::{FormPreseed, Preseed};
use rxd_form::trust::Passphrase;
use rxd_form::wire::{
    CommitPost, Instruction, StepReport, UndoPost, WindowOpened, WindowPost, WindowState,
    COMMIT_PATH, FACTS_PATH, UNDO_PATH, WINDOW_PATH,
};

use crate::InitError;

/// `rxd form`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct FormArgs {
    /// Read the formation preseed from standard input.
    #[arg(long)]
    pub preseed: bool,
    /// Plan and print what would be done, then close the window without changing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// This server's name (its host name unless given).
    #[arg(long)]
    pub name: Option<String>,
}

/// `rxd join`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct JoinArgs {
    /// Read the formation preseed from standard input.
    #[arg(long)]
    pub preseed: bool,
    /// This server's name (its host name unless given).
    #[arg(long)]
    pub name: Option<String>,
    /// The initiator's address (`ip` or `ip:port`), instead of discovering it.
    #[arg(long)]
    pub initiator_address: Option<String>,
    /// The interface to discover the initiator on, instead of the preseed's.
    #[arg(long)]
    pub interface: Option<String>,
}

/// How often the initiator looks at its window while joiners arrive (and a joiner at the
/// initiator's address while no window is open there).
const POLL: Duration = Duration::from_millis(200);
/// How long a joiner keeps probing another member's address that does not answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a joiner given the initiator's address waits for a window to open there.
const ADVERT_WAIT: Duration = Duration::from_secs(60);

fn read_preseed(given: bool) -> Result<(FormPreseed, Preseed), InitError> {
    if !given {
        return Err(InitError::Usage(
            "This version forms clusters from a preseed only: give --preseed and the formation preseed on standard input",
        ));
    }
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    let raw = FormPreseed::read(&text).map_err(|e| InitError::Preseed(e.0.join("; ")))?;
    let checked = raw
        .clone()
        .check()
        .map_err(|e| InitError::Preseed(e.0.join("; ")))?;
    Ok((raw, checked))
}

fn own_name(given: Option<String>) -> Result<String, InitError> {
    match given {
        Some(n) => Ok(n),
        None => nix::unistd::gethostname()
            .map_err(|e| InitError::Invalid(format!("Cannot read the host name: {e}")))
            .map(|h| h.to_string_lossy().into_owned()),
    }
}

fn passphrase_text(preseed: &Preseed) -> Result<String, InitError> {
    if preseed.passphrase_file.is_empty() {
        return Err(InitError::Invalid(
            "The preseed needs passphrase_file: the file holding the formation passphrase".into(),
        ));
    }
    std::fs::read_to_string(&preseed.passphrase_file)
        .map(|t| t.trim().to_string())
        .map_err(|e| {
            InitError::Invalid(format!(
                "Cannot read the passphrase file {}: {e}",
                preseed.passphrase_file
            ))
        })
}

/// This server's address for the formation: where the preseed says the members' addresses
/// are, on this host's interfaces, at `port`.
fn own_address(preseed: &Preseed, port: u16) -> Result<String, InitError> {
    let interfaces = rxd_form::facts::interfaces();
    rxd_form::planner::address_in(&interfaces, &preseed.addresses, port).ok_or_else(|| {
        InitError::Invalid(format!("This server has no address {}", preseed.addresses))
    })
}

async fn https_address(client: &Client) -> Result<String, InitError> {
    let (server, _) = client.server().await?;
    Ok(server
        .config
        .as_ref()
        .and_then(|c| c.get("core.https_address"))
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string())
}

async fn set_https_address(client: &Client, address: &str) -> Result<(), InitError> {
    let body = serde_json::json!({"config": {"core.https_address": address}});
    client.request("PATCH", "/1.0", Some(body), None).await?;
    Ok(())
}

/// `rxd form`.
pub async fn form(dir: &Path, args: FormArgs) -> Result<(), InitError> {
    let (raw, preseed) = read_preseed(args.preseed)?;
    let name = own_name(args.name)?;
    if preseed.initiator.name.as_deref().is_some_and(|n| n != name) {
        return Err(InitError::Invalid(format!(
            "The preseed names {:?} as the initiator, and this server is {name:?}",
            preseed.initiator.name.as_deref().unwrap_or_default()
        )));
    }
    let passphrase = passphrase_text(&preseed)?;
    let client = Client::unix(dir.join("unix.socket"));
    let before = https_address(&client).await?;
    if before.is_empty() {
        let port = preseed
            .initiator
            .address
            .map(|a| a.port())
            .unwrap_or(rxd_form::planner::DEFAULT_PORT);
        let address = match preseed.initiator.address {
            Some(a) => a.to_string(),
            None => own_address(&preseed, port)?,
        };
        set_https_address(&client, &address).await?;
    }
    let opened: WindowOpened = client
        .request(
            "POST",
            WINDOW_PATH,
            Some(
                serde_json::to_value(WindowPost {
                    name: name.clone(),
                    passphrase,
                    window: raw.window.clone(),
                    listened_before: before.clone(),
                })
                .expect("the request serialises"),
            ),
            None,
        )
        .await?
        .metadata()?;
    println!(
        "Formation window {} open for {} s; this server's certificate: {}",
        opened.id, opened.expires_in, opened.fingerprint
    );
    let work = collect_and_commit(&client, &raw, &preseed, &name, args.dry_run);
    tokio::pin!(work);
    let result = tokio::select! {
        result = &mut work => result,
        _ = tokio::signal::ctrl_c() => {
            // The daemon runs the formation: asked to abort, it stops at its next step and puts
            // every server back; this waits for that to end.
            eprintln!("Aborting the formation: every server is put back as it was");
            let _ = client.request("DELETE", WINDOW_PATH, None, None).await;
            work.await
        }
    };
    if result.is_err() || args.dry_run {
        // Nothing changed yet, or the executor already aborted it: close the window (kept,
        // aborted, for the joiners to learn the end), and listen where this server listened
        // before.
        let aborted = client
            .get::<WindowState>(WINDOW_PATH)
            .await
            .is_ok_and(|w| w.phase == "Aborted");
        if !aborted {
            let _ = client.request("DELETE", WINDOW_PATH, None, None).await;
        }
        if !is_clustered(&client).await && https_address(&client).await? != before {
            set_https_address(&client, &before).await?;
        }
    }
    result
}

async fn collect_and_commit(
    client: &Client,
    raw: &FormPreseed,
    preseed: &Preseed,
    name: &str,
    dry_run: bool,
) -> Result<(), InitError> {
    let wanted: Vec<&str> = preseed
        .members
        .iter()
        .map(|m| m.name.as_str())
        .filter(|n| *n != name)
        .collect();
    let mut shown = std::collections::BTreeSet::new();
    loop {
        let state: WindowState = client.get(WINDOW_PATH).await?;
        if state.phase == "Aborted" {
            return Err(InitError::Invalid(format!(
                "The formation window closed: {}",
                state.abort_reason.unwrap_or_default()
            )));
        }
        for j in state.joiners.iter().filter(|j| j.facts.is_some()) {
            if shown.insert(j.name.clone()) {
                println!(
                    "{} {} {}",
                    j.name,
                    j.address,
                    &j.fingerprint[..16.min(j.fingerprint.len())]
                );
            }
        }
        if wanted.iter().all(|w| shown.contains(*w)) {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let post = CommitPost {
        preseed: raw.clone(),
        dry_run,
    };
    let answer = client
        .request(
            "POST",
            COMMIT_PATH,
            Some(serde_json::to_value(post).expect("the request serialises")),
            None,
        )
        .await?;
    let meta = answer.envelope.metadata.clone();
    let plan = meta["plan"]
        .as_str()
        .or_else(|| meta["metadata"]["plan"].as_str())
        .unwrap_or_default();
    print!("{plan}");
    if dry_run {
        return Ok(());
    }
    let id = meta["id"].as_str().unwrap_or_default().to_string();
    let op = client.wait_operation(&id, None).await?;
    if op.status != "Success" {
        return Err(InitError::Invalid(format!(
            "The formation failed: {}",
            op.err
        )));
    }
    println!("The cluster is formed");
    Ok(())
}

/// `rxd join`.
pub async fn join(dir: &Path, args: JoinArgs) -> Result<(), InitError> {
    let (_, preseed) = read_preseed(args.preseed)?;
    let name = own_name(args.name)?;
    if !preseed.members.iter().any(|m| m.name == name) {
        return Err(InitError::Invalid(format!(
            "This server, {name:?}, is not among the preseed's members"
        )));
    }
    let passphrase = Passphrase::from_preseed(&passphrase_text(&preseed)?)
        .map_err(|e| InitError::Invalid(e.to_string()))?;
    let client = Client::unix(dir.join("unix.socket"));
    let target = find_window(&preseed, args.initiator_address, args.interface).await?;
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .map_err(|e| InitError::Invalid(format!("Cannot read {f}: {e}")))
    };
    let cert = rxd_tls::CertKey::from_pem(read("server.crt")?, read("server.key")?)
        .map_err(|e| InitError::Invalid(format!("Cannot read this server's certificate: {e}")))?;
    let me = Me {
        name: &name,
        cert: &cert,
        source: None,
    };
    let facts: Facts = client
        .get(&format!("{FACTS_PATH}?name={}", rxd_client::encode(&name)))
        .await?;
    let exchange_error = |e: joiner::ExchangeError| InitError::Invalid(e.to_string());
    let initiator = joiner::join_window(&target, &me, &passphrase, &facts)
        .await
        .map_err(exchange_error)?;
    println!(
        "Trusted {} ({}); this server's certificate: {}",
        target.initiator_name,
        initiator.peer_fingerprint,
        cert.fingerprint()
    );
    let pinned = joiner::pinned_client(&target, &me, &initiator).map_err(exchange_error)?;
    // A new cluster's certificate, once announced over the pinned connection, is accepted too.
    let repin = |cluster_fp: &str| {
        let both = [initiator.peer_fingerprint.clone(), cluster_fp.to_string()];
        joiner::pinned_to(&target, &me, &both).map_err(exchange_error)
    };
    follow(&client, pinned, &target.window_id, repin).await
}

/// Finds the window: at the address given, else by DNS-SD on the interface.
async fn find_window(
    preseed: &Preseed,
    address: Option<String>,
    interface: Option<String>,
) -> Result<Target, InitError> {
    let address = match address {
        Some(a) => Some(
            a.parse::<std::net::SocketAddr>()
                .or_else(|_| {
                    a.parse::<std::net::IpAddr>()
                        .map(|ip| std::net::SocketAddr::new(ip, rxd_form::planner::DEFAULT_PORT))
                })
                .map_err(|_| {
                    InitError::Invalid(format!(
                        "{a:?} is not an address (10.0.0.1 or 10.0.0.1:8443)"
                    ))
                })?,
        ),
        None => preseed.initiator.address,
    };
    if let Some(address) = address {
        let address = address.to_string();
        // The initiator may open its window after this command started: look for a while,
        // as discovery listens for a while.
        let deadline = tokio::time::Instant::now() + ADVERT_WAIT;
        let advert = loop {
            match joiner::advert(&address).await {
                Ok(advert) => break advert,
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(InitError::Invalid(format!(
                        "No formation window at {address} within {} s: {e}",
                        ADVERT_WAIT.as_secs()
                    )))
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        };
        if let Some(n) = &preseed.initiator.name {
            if *n != advert.name {
                return Err(InitError::Invalid(format!(
                    "The window at {address} is {:?}'s, not {n:?}'s",
                    advert.name
                )));
            }
        }
        return Ok(Target {
            address,
            window_id: advert.id,
            initiator_name: advert.name,
        });
    }
    let interface = match (interface, &preseed.addresses) {
        (Some(i), _) => i,
        (None, AddressSource::Interface(i)) => i.clone(),
        (None, AddressSource::Subnet(_)) => {
            return Err(InitError::Invalid(
                "Give the interface to discover the initiator on (--interface), or its address (--initiator-address)".into(),
            ))
        }
    };
    let initiator = preseed.initiator.name.clone();
    let seen = tokio::task::spawn_blocking(move || {
        rxd_form::discovery::browse(&interface, Default::default())
    })
    .await
    .map_err(|e| InitError::Invalid(e.to_string()))?
    .map_err(|e| InitError::Invalid(e.to_string()))?;
    let window = rxd_form::discovery::pick(&seen, initiator.as_deref())
        .map_err(|e| InitError::Invalid(e.to_string()))?;
    let ip = window.addresses.first().ok_or_else(|| {
        InitError::Invalid(format!("The window of {} has no address", window.name))
    })?;
    Ok(Target {
        address: std::net::SocketAddr::new(*ip, window.port).to_string(),
        window_id: window.id.clone(),
        initiator_name: window.name.clone(),
    })
}

/// How long requests for an instruction may fail in a row (the initiator restarting, say)
/// before this joiner gives up.
const LOST_LIMIT: Duration = Duration::from_secs(120);

/// Follows the initiator's instructions until the cluster is formed or the formation
/// aborted; an abort puts back the address this server listened on before.
async fn follow(
    local: &Client,
    initiator: Client,
    window_id: &str,
    repin: impl Fn(&str) -> Result<Client, InitError>,
) -> Result<(), InitError> {
    let before = https_address(local).await?;
    let mut announced = String::new();
    let outcome = steps(local, initiator, window_id, repin, &mut announced).await;
    if let Err(InitError::FormationAborted(_)) = &outcome {
        if !announced.is_empty() {
            // Joined, and the initiator could not take this server out (it stopped half-way,
            // say): leave the formation's cluster here. A no-op when taken out already.
            let body = UndoPost {
                cluster_fingerprint: announced,
            };
            local
                .request(
                    "POST",
                    UNDO_PATH,
                    Some(serde_json::to_value(body).expect("the request serialises")),
                    None,
                )
                .await?;
        }
    }
    if outcome.is_err()
        && until_standalone(local, LEAVE_WAIT).await
        && https_address(local).await? != before
    {
        // Not a member (never joined, or taken out again): listen where it did before.
        set_https_address(local, &before).await?;
    }
    outcome
}

/// How long a joiner taken out of the cluster again may take to be standalone.
const LEAVE_WAIT: Duration = Duration::from_secs(30);

/// Whether the server is standalone, waiting at most `limit` for one taken out of the
/// cluster to become so (it answers 503 while it resets its database).
async fn until_standalone(client: &Client, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Ok(c) = client.get::<serde_json::Value>("/1.0/cluster").await {
            if c["enabled"] == false {
                return true;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn is_clustered(client: &Client) -> bool {
    client
        .get::<serde_json::Value>("/1.0/cluster")
        .await
        .is_ok_and(|c| c["enabled"] == true)
}

async fn steps(
    local: &Client,
    mut initiator: Client,
    window_id: &str,
    repin: impl Fn(&str) -> Result<Client, InitError>,
    announced: &mut String,
) -> Result<(), InitError> {
    let mut heard = tokio::time::Instant::now();
    let mut joined = false;
    loop {
        let instruction = match joiner::next_instruction(&initiator, window_id).await {
            Ok(i) => {
                heard = tokio::time::Instant::now();
                i
            }
            Err(e) => {
                if heard.elapsed() >= LOST_LIMIT {
                    let here = if joined {
                        "this server joined its cluster, which may not have been formed: see `rxc cluster list`"
                    } else {
                        "nothing was changed here"
                    };
                    return Err(InitError::Invalid(format!(
                        "Lost the initiator for {} s: {e}; {here}",
                        LOST_LIMIT.as_secs()
                    )));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        match instruction {
            Instruction::Wait => {}
            Instruction::Prepare {
                address,
                probe,
                cluster_fingerprint,
            } => {
                println!("Preparing: listening on {address}");
                if !cluster_fingerprint.is_empty() {
                    initiator = repin(&cluster_fingerprint)?;
                    announced.clone_from(&cluster_fingerprint);
                }
                let mut report = StepReport {
                    step: "prepare".into(),
                    ..Default::default()
                };
                if https_address(local).await? != address {
                    if let Err(e) = set_https_address(local, &address).await {
                        report.error = e.to_string();
                    }
                }
                if report.error.is_empty() {
                    report.reaches = rxd_form::facts::probe(&probe, PROBE_TIMEOUT).await;
                }
                send_report(&initiator, window_id, &report).await?;
            }
            Instruction::Join { cluster } => {
                println!("Joining the cluster");
                joined = true;
                let preseed = rxd_api::InitPreseed {
                    cluster: Some(cluster),
                    ..Default::default()
                };
                let outcome = crate::apply(local, &preseed).await;
                let report = StepReport {
                    step: "join".into(),
                    error: outcome
                        .as_ref()
                        .err()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    reaches: vec![],
                };
                send_report(&initiator, window_id, &report).await?;
                outcome?;
            }
            Instruction::Done => {
                println!("This server is a member of the cluster");
                return Ok(());
            }
            Instruction::Abort { reason } => {
                return Err(InitError::FormationAborted(format!(
                    "The formation was aborted: {reason}"
                )));
            }
        }
    }
}

async fn send_report(
    initiator: &Client,
    window_id: &str,
    report: &StepReport,
) -> Result<(), InitError> {
    joiner::report(initiator, window_id, report)
        .await
        .map_err(|e| InitError::Invalid(format!("Cannot report to the initiator: {e}")))
}
