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
//!    others), join (the `rxd init` join with a one-time token, asking on every 10 s to show
//!    it is alive), done | abort (leave the formation's cluster if joined, listen and keep the
//!    cluster address as before: "nothing changed on this server")
//! ```
//!
//! Without `--preseed` both ask: `rxd form` the address, then (the window open, its generated
//! passphrase shown) lists the joiners until Enter and asks which to add, `rxd init`'s storage
//! and network questions and the data-loss question; `rxd join` the initiator's address (or
//! discovery), the passphrase, and LXD's data-loss question when the server holds data.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rxd_client::Client;
use rxd_form::discovery::Seen;
use rxd_form::joiner::{self, Me, Target};
use rxd_form::planner::{AddressSource, Facts};
use rxd_form::preseed::{FormPreseed, Preseed, PreseedMember};
use rxd_form::trust::Passphrase;
use rxd_form::wire::{
    CommitPost, Instruction, JoinerState, StepReport, UndoPost, WindowOpened, WindowPost,
    WindowState, COMMIT_PATH, FACTS_PATH, UNDO_PATH, WINDOW_PATH,
};

use crate::{Asker, InitError};

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
    /// The address (`ip` or `ip:port`) this server is reached at, instead of the preseed's or
    /// the question's.
    #[arg(long)]
    pub initiator_address: Option<String>,
    /// The interface holding each server's cluster address, instead of the preseed's.
    #[arg(long)]
    pub interface: Option<String>,
    /// Abort this server's formation window (one left open, say), and do nothing else.
    #[arg(long, conflicts_with_all = ["preseed", "dry_run"])]
    pub abort: bool,
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
    /// Find the window and show it and the local data joining would lose, then stop without
    /// taking part.
    #[arg(long)]
    pub dry_run: bool,
}

/// How often the initiator looks at its window while joiners arrive (and a joiner at the
/// initiator's address while no window is open there).
const POLL: Duration = Duration::from_millis(200);
/// How long a joiner keeps probing another member's address that does not answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a joiner given the initiator's address waits for a window to open there.
const ADVERT_WAIT: Duration = Duration::from_secs(60);

fn read_preseed() -> Result<(FormPreseed, Preseed), InitError> {
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

/// POSTs `body` to `path`.
async fn post_json(
    client: &Client,
    path: &str,
    body: &impl serde::Serialize,
) -> Result<rxd_client::RawResponse, rxd_client::ClientError> {
    let body = serde_json::to_value(body).expect("the request serialises");
    client.request("POST", path, Some(body), None).await
}

/// The server's address key `key` (`core.https_address`, `cluster.https_address`).
async fn address_of(client: &Client, key: &str) -> Result<String, InitError> {
    let (server, _) = client.server().await?;
    Ok(server
        .config
        .as_ref()
        .and_then(|c| c.get(key))
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string())
}

async fn set_address(client: &Client, key: &str, address: &str) -> Result<(), InitError> {
    let body = serde_json::json!({ "config": { key: address } });
    client.request("PATCH", "/1.0", Some(body), None).await?;
    Ok(())
}

async fn https_address(client: &Client) -> Result<String, InitError> {
    address_of(client, "core.https_address").await
}

async fn set_https_address(client: &Client, address: &str) -> Result<(), InitError> {
    set_address(client, "core.https_address", address).await
}

/// `rxd form`: from a preseed, or by asking.
pub async fn form(dir: &Path, args: FormArgs) -> Result<(), InitError> {
    let client = Client::unix(dir.join("unix.socket"));
    if args.abort {
        let state: WindowState = client.get(WINDOW_PATH).await?;
        client.request("DELETE", WINDOW_PATH, None, None).await?;
        println!("Formation window {} aborted", state.id);
        return Ok(());
    }
    let name = own_name(args.name.clone())?;
    let address = match &args.initiator_address {
        Some(a) => Some(parse_initiator(a)?),
        None => None,
    };
    if args.preseed {
        form_from_preseed(&client, &name, address, args.interface, args.dry_run).await
    } else {
        form_by_asking(dir, &client, &name, address, args.interface, args.dry_run).await
    }
}

async fn form_from_preseed(
    client: &Client,
    name: &str,
    address: Option<std::net::SocketAddr>,
    interface: Option<String>,
    dry_run: bool,
) -> Result<(), InitError> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    let mut raw = FormPreseed::read(&text).map_err(|e| InitError::Preseed(e.0.join("; ")))?;
    if let Some(a) = address {
        raw.initiator_address = a.to_string();
    }
    if let Some(i) = interface {
        raw.interface = i;
        raw.subnet.clear();
    }
    let preseed = raw
        .clone()
        .check()
        .map_err(|e| InitError::Preseed(e.0.join("; ")))?;
    if preseed.initiator.name.as_deref().is_some_and(|n| n != name) {
        return Err(InitError::Invalid(format!(
            "The preseed names {:?} as the initiator, and this server is {name:?}",
            preseed.initiator.name.as_deref().unwrap_or_default()
        )));
    }
    let passphrase = passphrase_text(&preseed)?;
    let port = preseed
        .initiator
        .address
        .map(|a| a.port())
        .unwrap_or(rxd_form::planner::DEFAULT_PORT);
    // Checked even when this server listens already: the members' addresses come from there.
    let own = own_address(&preseed, port)?;
    let listen = if address.is_some() || https_address(client).await?.is_empty() {
        Some(match preseed.initiator.address {
            Some(a) => a.to_string(),
            None => own,
        })
    } else {
        None
    };
    let (session, opened) = Session::open(client, name, listen, passphrase, &raw.window).await?;
    println!(
        "Formation window {} open for {} s; this server's certificate: {}",
        opened.id, opened.expires_in, opened.fingerprint
    );
    let result = async {
        collect(client, &preseed, name).await?;
        let plan = session.commit(&raw, dry_run, false).await?;
        print!("{plan}");
        Ok(())
    }
    .await;
    session.end(result, dry_run).await
}

/// The initiator's window from its opening to its end: the address this server listened on
/// before, put back after a failure, and Ctrl-C.
struct Session {
    client: Client,
    before: String,
    /// Set once the daemon runs the formation: Ctrl-C then asks it to stop, and this waits.
    running: Arc<AtomicBool>,
}

impl Session {
    /// Listens on `listen` (unless `None`), opens the window, and handles Ctrl-C from then on:
    /// the window is aborted; before the daemon runs the formation this command ends at once,
    /// listening where it did before; once it runs, the daemon stops at its next step and puts
    /// every server back, and this waits for that.
    async fn open(
        client: &Client,
        name: &str,
        listen: Option<String>,
        passphrase: String,
        window: &str,
    ) -> Result<(Session, WindowOpened), InitError> {
        let before = https_address(client).await?;
        if let Some(address) = listen.filter(|a| *a != before) {
            set_https_address(client, &address).await?;
        }
        let post = WindowPost {
            name: name.to_string(),
            passphrase,
            window: window.to_string(),
            listened_before: before.clone(),
        };
        let opened = post_json(client, WINDOW_PATH, &post)
            .await
            .and_then(|o| o.metadata::<WindowOpened>());
        let opened = match opened {
            Ok(o) => o,
            Err(e) => {
                listen_as_before(client, &before).await;
                return Err(e.into());
            }
        };
        let session = Session {
            client: client.clone(),
            before,
            running: Arc::new(AtomicBool::new(false)),
        };
        let (client, before, running) = (
            client.clone(),
            session.before.clone(),
            session.running.clone(),
        );
        tokio::spawn(async move {
            if stopped().await.is_err() {
                return;
            }
            eprintln!("Aborting the formation: every server is put back as it was");
            let _ = client.request("DELETE", WINDOW_PATH, None, None).await;
            if !running.load(Ordering::SeqCst) {
                listen_as_before(&client, &before).await;
                eprintln!("Error: The formation was aborted; nothing changed on this server");
                std::process::exit(1);
            }
        });
        Ok((session, opened))
    }

    /// Plans with `raw`'s answers and answers the plan's text; unless a dry run, the daemon
    /// then forms the cluster, and this prints the plan (unless `shown` already) and waits
    /// for it.
    async fn commit(
        &self,
        raw: &FormPreseed,
        dry_run: bool,
        shown: bool,
    ) -> Result<String, InitError> {
        let post = CommitPost {
            preseed: raw.clone(),
            dry_run,
        };
        self.running.store(!dry_run, Ordering::SeqCst);
        let answer = post_json(&self.client, COMMIT_PATH, &post).await?;
        let meta = answer.envelope.metadata.clone();
        let plan = meta["plan"]
            .as_str()
            .or_else(|| meta["metadata"]["plan"].as_str())
            .unwrap_or_default()
            .to_string();
        if dry_run {
            return Ok(plan);
        }
        if !shown {
            print!("{plan}");
        }
        let id = meta["id"].as_str().unwrap_or_default().to_string();
        let op = self.client.wait_operation(&id, None).await.map_err(|e| {
            if e.status().is_some() {
                return e.into();
            }
            InitError::Invalid(format!(
                "The daemon stopped while it formed the cluster ({e}): when it starts again it finishes or undoes the formation from its journal (see `rxc cluster list`)"
            ))
        })?;
        if op.status != "Success" {
            return Err(InitError::Invalid(format!(
                "The formation failed: {}",
                op.err
            )));
        }
        println!("The cluster is formed");
        Ok(String::new())
    }

    /// After `result`: on a failure, or when `closing` (a dry run), the window is closed
    /// (kept, aborted, for the joiners to learn the end) and this server listens where it did
    /// before, unless it is a member of a cluster now.
    async fn end(self, result: Result<(), InitError>, closing: bool) -> Result<(), InitError> {
        if result.is_err() || closing {
            let aborted = self
                .client
                .get::<WindowState>(WINDOW_PATH)
                .await
                .is_ok_and(|w| w.phase == "Aborted");
            if !aborted {
                let _ = self.client.request("DELETE", WINDOW_PATH, None, None).await;
            }
            listen_as_before(&self.client, &self.before).await;
        }
        result
    }
}

/// Waits for Ctrl-C, SIGTERM or SIGHUP (the terminal closed): each stops `rxd form` the same
/// orderly way.
async fn stopped() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
        _ = hup.recv() => Ok(()),
    }
}

/// Listens where this server did before, unless it is a member of a cluster now.
async fn listen_as_before(client: &Client, before: &str) {
    if !is_clustered(client).await && https_address(client).await.is_ok_and(|now| now != before) {
        if let Err(e) = set_https_address(client, before).await {
            eprintln!("Cannot listen on {before:?} again: {e}");
        }
    }
}

/// Waits until every member the preseed names has joined the window and reported its facts,
/// listing each as it does.
async fn collect(client: &Client, preseed: &Preseed, name: &str) -> Result<(), InitError> {
    let wanted: Vec<&str> = preseed
        .members
        .iter()
        .map(|m| m.name.as_str())
        .filter(|n| *n != name)
        .collect();
    let mut shown = std::collections::BTreeSet::new();
    loop {
        for j in joined(client).await? {
            if shown.insert(j.name.clone()) {
                println!("{}", joiner_row(&j));
            }
        }
        if wanted.iter().all(|w| shown.contains(*w)) {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The servers in the window that reported their facts; `Err` once the window closed.
async fn joined(client: &Client) -> Result<Vec<JoinerState>, InitError> {
    let state: WindowState = client.get(WINDOW_PATH).await?;
    if state.phase == "Aborted" {
        return Err(InitError::Invalid(format!(
            "The formation window closed: {}",
            state.abort_reason.unwrap_or_default()
        )));
    }
    Ok(state
        .joiners
        .into_iter()
        .filter(|j| j.facts.is_some())
        .collect())
}

/// A joiner's line: NAME ADDRESS FINGERPRINT (16 hex).
fn joiner_row(j: &JoinerState) -> String {
    format!(
        "{:<20} {:<40} {}",
        j.name,
        j.address,
        &j.fingerprint[..16.min(j.fingerprint.len())]
    )
}

/// `rxd form` without a preseed: the address question, a window with a generated
/// passphrase, the joiners listed as they come until Enter, which of them to add, the
/// storage and network questions once, the plan, and the data-loss question.
async fn form_by_asking(
    dir: &Path,
    client: &Client,
    name: &str,
    given: Option<std::net::SocketAddr>,
    interface: Option<String>,
    dry_run: bool,
) -> Result<(), InitError> {
    let stdin = std::io::stdin();
    let mut q = Asker::new(stdin.lock(), std::io::stdout(), crate::is_terminal());
    let socket = match given {
        Some(a) => a,
        None => {
            let default = crate::interactive::default_address();
            let answer = q.checked(
                &format!(
                    "What IP address or DNS name should be used to reach this server? [default={default}]: "
                ),
                &default,
                crate::interactive::check_cluster_address,
            )?;
            let address = crate::interactive::with_port(&answer, rxd_form::planner::DEFAULT_PORT);
            address.parse().map_err(|_| {
                InitError::Invalid(format!(
                    "{answer:?} is not an IP address: a formation needs this server's IP address"
                ))
            })?
        }
    };
    let address = socket.to_string();
    let interface = rxd_form::facts::interfaces()
        .into_iter()
        .find(|i| {
            i.addresses.iter().any(|c| c.addr == socket.ip())
                && interface.as_ref().is_none_or(|want| *want == i.name)
        })
        .ok_or_else(|| {
            InitError::Invalid(match &interface {
                Some(want) => format!("{} is not an address of {want}", socket.ip()),
                None => format!("{} is not an address of this server", socket.ip()),
            })
        })?;
    let (session, opened) =
        Session::open(client, name, Some(address.clone()), String::new(), "").await?;
    let join = if socket.port() == rxd_form::planner::DEFAULT_PORT {
        socket.ip().to_string()
    } else {
        socket.to_string()
    };
    println!(
        "Formation window {} is open for {} minutes.",
        opened.id,
        opened.expires_in / 60
    );
    println!("On each server to add, run: rxd join --initiator-address {join}");
    println!(
        "Passphrase: {}",
        opened.passphrase.as_deref().unwrap_or_default()
    );
    println!(
        "This server's certificate fingerprint: {}",
        opened.fingerprint
    );
    println!();
    let asked = Asked {
        dir,
        client,
        session: &session,
        name,
        interface: &interface.name,
    };
    let result = asked.rounds(&mut q, dry_run).await;
    session.end(result, dry_run).await
}

/// What the questions after the window's opening work with.
struct Asked<'a> {
    dir: &'a Path,
    client: &'a Client,
    session: &'a Session,
    name: &'a str,
    interface: &'a str,
}

impl Asked<'_> {
    async fn rounds<R: std::io::BufRead, W: std::io::Write>(
        &self,
        q: &mut Asker<R, W>,
        dry_run: bool,
    ) -> Result<(), InitError> {
        println!("Servers in the window (press Enter once every server to add is listed):");
        println!("{:<20} {:<40} FINGERPRINT", "NAME", "ADDRESS");
        // Listed as they come, while Enter is awaited.
        let listing = {
            let client = self.client.clone();
            tokio::spawn(async move {
                let mut shown = std::collections::BTreeSet::new();
                loop {
                    if let Ok(joiners) = joined(&client).await {
                        for j in joiners {
                            if shown.insert(j.name.clone()) {
                                println!("{}", joiner_row(&j));
                            }
                        }
                    }
                    tokio::time::sleep(POLL).await;
                }
            })
        };
        let entered = q.pause();
        listing.abort();
        entered?;
        let names: Vec<String> = joined(self.client)
            .await?
            .into_iter()
            .map(|j| j.name)
            .collect();
        if names.is_empty() {
            return Err(InitError::Invalid(
                "No server joined the window: run `rxd join` on the servers to add first".into(),
            ));
        }
        let answer = q.checked(
            "Servers to add (names or all) [default=all]: ",
            "all",
            |v| chosen(v, &names).map(|_| ()),
        )?;
        let mut members = vec![PreseedMember {
            name: self.name.to_string(),
            ..Default::default()
        }];
        members.extend(
            chosen(&answer, &names)
                .unwrap_or_default()
                .into_iter()
                .map(|n| PreseedMember {
                    name: n,
                    ..Default::default()
                }),
        );
        let drivers = crate::interactive::local_drivers(self.client).await?;
        let mut storage_pools = Vec::new();
        if q.bool(
            "Do you want to configure a new local storage pool? (yes/no) [default=yes]: ",
            true,
        )? {
            let host = crate::interactive::StorageHost::of(self.dir);
            storage_pools.push(crate::interactive::ask_pool(q, &drivers, "local", &host)?);
        }
        let mut networks = rxd_api::InitPreseed::default();
        crate::interactive::ask_new_bridge(q, &mut networks)?;
        let raw = FormPreseed {
            initiator: self.name.to_string(),
            interface: self.interface.to_string(),
            members,
            storage_pools,
            networks: networks.networks,
            ..Default::default()
        };
        let plan = self.session.commit(&raw, true, false).await?;
        print!("{plan}");
        if dry_run {
            return Ok(());
        }
        let question = format!(
            "Form a cluster of {} servers? {} (yes/no) [default=no]: ",
            raw.members.len(),
            data_lost(&plan)
        );
        if !q.bool(&question, false)? {
            return Err(InitError::Aborted);
        }
        self.session.commit(&raw, false, true).await?;
        Ok(())
    }
}

/// The servers an answer to "Servers to add" names among `names`: `all`, or names separated
/// by commas or spaces.
fn chosen(answer: &str, names: &[String]) -> Result<Vec<String>, String> {
    if answer.trim() == "all" {
        return Ok(names.to_vec());
    }
    let mut out: Vec<String> = Vec::new();
    for n in answer.split([',', ' ']).filter(|n| !n.is_empty()) {
        if !names.iter().any(|k| k == n) {
            return Err(format!(
                "{n:?} is not in the window (there: {})",
                names.join(", ")
            ));
        }
        if !out.iter().any(|k| k == n) {
            out.push(n.to_string());
        }
    }
    if out.is_empty() {
        return Err("Name at least one server, or all".into());
    }
    Ok(out)
}

/// The plan's data loss in a sentence: "Local data on node2, node3 is lost." or "No local
/// data is lost."
fn data_lost(plan: &str) -> String {
    let losing: Vec<&str> = plan
        .lines()
        .skip_while(|l| *l != "Data that is lost:")
        .skip(1)
        .filter_map(|l| l.strip_prefix("  ")?.split(':').next())
        .collect();
    if losing.is_empty() {
        "No local data is lost.".into()
    } else {
        format!("Local data on {} is lost.", losing.join(", "))
    }
}

/// `rxd join`: from a preseed, or by asking.
pub async fn join(dir: &Path, args: JoinArgs) -> Result<(), InitError> {
    let name = own_name(args.name.clone())?;
    let client = Client::unix(dir.join("unix.socket"));
    let facts: Facts = client
        .get(&format!("{FACTS_PATH}?name={}", rxd_client::encode(&name)))
        .await?;
    let given = match &args.initiator_address {
        Some(a) => Some(parse_initiator(a)?),
        None => None,
    };
    let found = async {
        if args.preseed {
            find_by_preseed(&name, given, args.interface).await
        } else {
            join_by_asking(&facts, given, args.interface, args.dry_run).await
        }
    };
    let (target, passphrase) = found.await.map_err(unchanged)?;
    if args.dry_run {
        println!(
            "Formation window {} of {} at {}",
            target.window_id, target.initiator_name, target.address
        );
        let lost = rxd_form::planner::data_lost(&facts, &[]);
        if lost.is_empty() {
            println!("No data is lost on {name} by joining");
        } else {
            println!("Joining loses on {name}: {}", lost.join("; "));
        }
        return Ok(());
    }
    join_window(dir, &client, &name, &facts, target, passphrase).await
}

/// A failure of `rxd join` that left this server as it was, saying so (not the operator's own
/// "no", which says it).
fn unchanged(e: InitError) -> InitError {
    match e {
        InitError::Aborted => InitError::Aborted,
        other => InitError::Invalid(format!("{other}; nothing changed on this server")),
    }
}

/// The window and passphrase of `rxd join --preseed`.
async fn find_by_preseed(
    name: &str,
    given: Option<std::net::SocketAddr>,
    interface: Option<String>,
) -> Result<(Target, Passphrase), InitError> {
    let (_, preseed) = read_preseed()?;
    if !preseed.members.iter().any(|m| m.name == name) {
        return Err(InitError::Invalid(format!(
            "This server, {name:?}, is not among the preseed's members"
        )));
    }
    let passphrase = Passphrase::from_preseed(&passphrase_text(&preseed)?)
        .map_err(|e| InitError::Invalid(e.to_string()))?;
    let interface = match (interface, &preseed.addresses) {
        (Some(i), _) => Some(i),
        (None, AddressSource::Interface(i)) => Some(i.clone()),
        (None, AddressSource::Subnet(_)) => None,
    };
    let target = find_window(
        preseed.initiator.name.as_deref(),
        given.or(preseed.initiator.address),
        interface,
    )
    .await?;
    Ok((target, passphrase))
}

/// `rxd join` without a preseed: the initiator's address (or discovery), the passphrase
/// (without echo on a terminal), and LXD's data-loss question when this server holds data.
async fn join_by_asking(
    facts: &Facts,
    given: Option<std::net::SocketAddr>,
    interface: Option<String>,
    dry_run: bool,
) -> Result<(Target, Passphrase), InitError> {
    let stdin = std::io::stdin();
    let mut q = Asker::new(stdin.lock(), std::io::stdout(), crate::is_terminal());
    let address = match given {
        Some(a) => Some(a),
        None => {
            let answer = q.checked(
                "What is the IP address of the server forming the cluster? (empty: look for it on the network): ",
                "",
                |v| match v {
                    "" => Ok(()),
                    v => parse_initiator(v).map(|_| ()).map_err(|e| e.to_string()),
                },
            )?;
            match answer.as_str() {
                "" => None,
                a => Some(parse_initiator(a)?),
            }
        }
    };
    let target = match address {
        Some(a) => find_window(None, Some(a), None).await?,
        None => {
            let interface = match interface {
                Some(i) => i,
                None => default_interface()?,
            };
            let seen = discover(interface.clone()).await?;
            let compatible: Vec<&Seen> = seen.iter().filter(|w| w.is_compatible()).collect();
            let window = if compatible.len() > 1 {
                // Several windows: the operator picks one, by its initiator and fingerprint.
                println!("Formation windows on {interface}:");
                for (i, w) in compatible.iter().enumerate() {
                    let at = w
                        .addresses
                        .first()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    println!(
                        "{}. {} at {at} (certificate {})",
                        i + 1,
                        w.name,
                        w.fingerprint
                    );
                }
                let count = compatible.len();
                let answer = q.checked(
                    &format!("Which window do you want to join? (1-{count}): "),
                    "",
                    |v| match v.parse::<usize>() {
                        Ok(n) if (1..=count).contains(&n) => Ok(()),
                        _ => Err(format!("Give a number from 1 to {count}")),
                    },
                )?;
                let n: usize = answer.parse().unwrap_or(1);
                compatible[n - 1]
            } else {
                rxd_form::discovery::pick(&seen, None)
                    .map_err(|e| InitError::Invalid(e.to_string()))?
            };
            target_of(window)?
        }
    };
    // A dry run shows the window and the data at stake, and asks nothing more.
    let typed = if dry_run {
        "dry run".to_string()
    } else {
        q.password("Passphrase: ")?
    };
    let passphrase = Passphrase::entered(&typed).map_err(|e| InitError::Invalid(e.to_string()))?;
    if !dry_run
        && !facts.local_data.is_empty()
        && !q.bool(
            "All existing data is lost when joining a cluster, continue? (yes/no) [default=no] ",
            false,
        )?
    {
        return Err(InitError::Aborted);
    }
    Ok((target, passphrase))
}

/// The interface holding this host's first address, where a window is looked for when none
/// is named.
fn default_interface() -> Result<String, InitError> {
    let default: std::net::IpAddr = crate::interactive::default_address()
        .parse()
        .map_err(|_| InitError::Invalid("This server has no address".into()))?;
    rxd_form::facts::interfaces()
        .into_iter()
        .find(|i| i.addresses.iter().any(|c| c.addr == default))
        .map(|i| i.name)
        .ok_or_else(|| {
            InitError::Invalid(
                "This server has no network address to look for a formation window from".into(),
            )
        })
}

/// An initiator's address as given: `ip` or `ip:port`.
fn parse_initiator(a: &str) -> Result<std::net::SocketAddr, InitError> {
    a.parse::<std::net::SocketAddr>()
        .or_else(|_| {
            a.parse::<std::net::IpAddr>()
                .map(|ip| std::net::SocketAddr::new(ip, rxd_form::planner::DEFAULT_PORT))
        })
        .map_err(|_| {
            InitError::Invalid(format!(
                "{a:?} is not an address (10.0.0.1 or 10.0.0.1:8443)"
            ))
        })
}

/// Joins the window at `target` with `passphrase`: the exchange, this server's facts, then
/// the initiator's instructions.
async fn join_window(
    dir: &Path,
    client: &Client,
    name: &str,
    facts: &Facts,
    target: Target,
    passphrase: Passphrase,
) -> Result<(), InitError> {
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .map_err(|e| InitError::Invalid(format!("Cannot read {f}: {e}")))
    };
    let cert = rxd_tls::CertKey::from_pem(read("server.crt")?, read("server.key")?)
        .map_err(|e| InitError::Invalid(format!("Cannot read this server's certificate: {e}")))?;
    let me = Me {
        name,
        cert: &cert,
        source: None,
    };
    let exchange_error = |e: joiner::ExchangeError| InitError::Invalid(e.to_string());
    let initiator = joiner::join_window(&target, &me, &passphrase, facts)
        .await
        .map_err(|e| unchanged(InitError::Invalid(e.to_string())))?;
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
    follow(client, pinned, &target.window_id, repin).await
}

/// Finds the window: at the address given, else by DNS-SD on the interface; when the window
/// must be `initiator`'s, one of another server is refused.
async fn find_window(
    initiator: Option<&str>,
    address: Option<std::net::SocketAddr>,
    interface: Option<String>,
) -> Result<Target, InitError> {
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
        if let Some(n) = initiator {
            if n != advert.name {
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
    let interface = interface.ok_or_else(|| {
        InitError::Invalid(
            "Give the interface to discover the initiator on (--interface), or its address (--initiator-address)".into(),
        )
    })?;
    let seen = discover(interface).await?;
    let window = rxd_form::discovery::pick(&seen, initiator)
        .map_err(|e| InitError::Invalid(e.to_string()))?;
    target_of(window)
}

/// Every window advertised on `interface`, by DNS-SD.
async fn discover(interface: String) -> Result<Vec<Seen>, InitError> {
    tokio::task::spawn_blocking(move || rxd_form::discovery::browse(&interface, Default::default()))
        .await
        .map_err(|e| InitError::Invalid(e.to_string()))?
        .map_err(|e| InitError::Invalid(e.to_string()))
}

/// Where to join the window `seen`.
fn target_of(window: &Seen) -> Result<Target, InitError> {
    let ip = window.addresses.first().ok_or_else(|| {
        InitError::Invalid(format!("The window of {} has no address", window.name))
    })?;
    Ok(Target {
        address: std::net::SocketAddr::new(*ip, window.port).to_string(),
        window_id: window.id.clone(),
        initiator_name: window.name.clone(),
    })
}

/// How often a joiner asks for its instruction while it joins, to show it is alive.
const KEEPALIVE: Duration = Duration::from_secs(10);

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
    // A join sets the cluster address too; both are put back if the formation fails.
    let keys = ["cluster.https_address", "core.https_address"];
    let mut before = Vec::new();
    for key in keys {
        before.push(address_of(local, key).await?);
    }
    let mut announced = String::new();
    let outcome = steps(local, initiator, window_id, repin, &mut announced).await;
    if let Err(InitError::FormationAborted(_)) = &outcome {
        if !announced.is_empty() {
            // Joined, and the initiator could not take this server out (it stopped half-way,
            // say): leave the formation's cluster here. A no-op when taken out already.
            let body = UndoPost {
                cluster_fingerprint: announced,
            };
            // Through this server's daemon restarting (it died while joining, say).
            let deadline = tokio::time::Instant::now() + LOST_LIMIT;
            loop {
                match post_json(local, UNDO_PATH, &body).await {
                    Ok(_) => break,
                    Err(e) if e.status().is_none() && tokio::time::Instant::now() < deadline => {
                        tokio::time::sleep(POLL).await
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    let Err(e) = outcome else {
        return Ok(());
    };
    if !until_standalone(local, LEAVE_WAIT).await {
        return Err(e);
    }
    // Not a member (never joined, or taken out again): listen where it did before.
    for (key, was) in keys.iter().zip(&before) {
        if address_of(local, key).await? != *was {
            set_address(local, key, was).await?;
        }
    }
    Err(unchanged(InitError::Invalid(e.to_string())))
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
            Err(e) if e.status() == Some(404) => return Err(window_gone(e, joined)),
            Err(e) => {
                if heard.elapsed() >= LOST_LIMIT {
                    return Err(InitError::Invalid(format!(
                        "Lost the initiator for {} s: {e}{}",
                        LOST_LIMIT.as_secs(),
                        if joined { UNDECIDED } else { "" }
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
                // A failure here (this server's daemon gone, say) is reported, so the
                // initiator aborts at once rather than wait for this server to fall silent.
                let listening = async {
                    if https_address(local).await? != address {
                        set_https_address(local, &address).await?;
                    }
                    Ok::<(), InitError>(())
                };
                if let Err(e) = listening.await {
                    report.error = e.to_string();
                }
                if report.error.is_empty() {
                    report.reaches = rxd_form::facts::probe(&probe, PROBE_TIMEOUT).await;
                }
                send_report(&initiator, window_id, &report, joined).await?;
            }
            Instruction::Join { cluster } => {
                println!("Joining the cluster");
                joined = true;
                let preseed = rxd_api::InitPreseed {
                    cluster: Some(cluster),
                    ..Default::default()
                };
                // Still asking while it joins, so the initiator knows it is alive.
                let keepalive = async {
                    loop {
                        tokio::time::sleep(KEEPALIVE).await;
                        let _ = joiner::next_instruction(&initiator, window_id).await;
                    }
                };
                let outcome = tokio::select! {
                    outcome = crate::apply(local, &preseed) => outcome,
                    _ = keepalive => unreachable!("the keepalive never ends"),
                };
                let report = StepReport {
                    step: "join".into(),
                    error: outcome
                        .as_ref()
                        .err()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    reaches: vec![],
                };
                send_report(&initiator, window_id, &report, joined).await?;
                // A failed join is the initiator's to decide: it aborts, and the abort takes
                // this server out of the cluster (below) once its daemon answers again.
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

/// Said by a joiner that joined and cannot learn whether the formation was decided.
const UNDECIDED: &str =
    "; this server joined its cluster, which may not have been formed: see `rxc cluster list`";

/// The window is not on the initiator at all (it restarted before the formation was decided,
/// or opened another): before this server joined, the formation was aborted; once it joined,
/// the formation may have been committed before that window went, so it is not undone.
fn window_gone(e: impl std::fmt::Display, joined: bool) -> InitError {
    let said =
        format!("the initiator no longer has its window (it was restarted or opened another): {e}");
    if joined {
        InitError::Invalid(format!("{said}{UNDECIDED}"))
    } else {
        InitError::FormationAborted(format!("The formation was aborted: {said}"))
    }
}

/// Reports a step to the initiator, as instructions are asked: through an initiator that
/// restarts (for up to [`LOST_LIMIT`]); see [`window_gone`] for a window that is not there.
async fn send_report(
    initiator: &Client,
    window_id: &str,
    report: &StepReport,
    joined: bool,
) -> Result<(), InitError> {
    let start = tokio::time::Instant::now();
    loop {
        match joiner::report(initiator, window_id, report).await {
            Ok(()) => return Ok(()),
            Err(e) if e.status() == Some(404) => return Err(window_gone(e, joined)),
            Err(e) if start.elapsed() >= LOST_LIMIT => {
                return Err(InitError::Invalid(format!(
                    "Cannot report to the initiator for {} s: {e}",
                    LOST_LIMIT.as_secs()
                )))
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}
