//! The rxd daemon: it owns the listeners, the endpoint table and its handlers, the operations
//! registry, the events bus, the configuration-key schema and the storage drivers, and wires
//! them to the replicated database.
//!
//! It does not know how raft stores or replicates (that is `rxd-raft`), nor how membership
//! works (that is `rxd-cluster`, which sees the daemon through `rxd_cluster::Host`,
//! implemented here).
//!
//! ```text
//!  start ─> data dir, server.crt ─> local.db ─> raft (one voter when standalone)
//!        ─> unix.socket ─> HTTPS if core.https_address ─> serve until shutdown
//! ```

pub mod access;
pub mod config;
pub mod error;
pub mod evacuation;
pub mod events;
mod fault_injection;
pub mod formation;
pub mod formation_journal;
pub mod formation_run;
mod handlers;
pub mod listeners;
mod member_objects;
mod member_sides;
pub mod metrics;
pub(crate) use rxd_api::names;
pub mod operations;
pub mod password;
/// Member-to-member HTTPS (`rxd_cluster::peer`).
pub use rxd_cluster::peer;
pub mod recovery;
pub mod resources;
pub mod response;
pub mod rotation;
pub mod router;
pub mod shutdown;
pub mod warnings;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rxd_db::tables::{self, Config};
use rxd_raft::ReplicatedDb;
use rxd_tls::CertKey;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use access::{Peer, Trust};
use error::{ApiError, ApiResult};
use events::Events;
use listeners::TlsConfig;
use operations::Operations;

/// The current time as RFC 3339 with nanoseconds, UTC, as LXD writes it.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Daemon options from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// The data directory.
    pub dir: PathBuf,
}

/// The running daemon's shared state.
pub struct Daemon {
    /// The data directory.
    pub dir: PathBuf,
    /// The host name, used as the standalone server name.
    pub hostname: String,
    local: Mutex<rusqlite::Connection>,
    db: std::sync::RwLock<ReplicatedDb>,
    transport: Arc<peer::PeerTransport>,
    /// Fingerprints of members' certificates trusted before this member's replica has them
    /// (while joining).
    pending_trust: std::sync::RwLock<std::collections::HashSet<String>>,
    /// Membership's state: liveness from heartbeats, the lock of membership changes.
    pub membership: rxd_cluster::Membership,
    /// This member's own certificate.
    pub server_cert: CertKey,
    cluster_cert: std::sync::RwLock<Option<CertKey>>,
    tls: TlsConfig,
    https: tokio::sync::Mutex<Option<(String, JoinHandle<()>)>>,
    router: std::sync::OnceLock<axum::Router>,
    /// The operations registry.
    pub ops: Operations,
    /// The events bus.
    pub events: Events,
    /// Whose events this member relays now.
    pub relayed: Arc<events::relay::Relayed>,
    /// Notified to stop the daemon.
    pub stop: Notify,
    /// Held by every `PUT`/`PATCH /1.0` on this member, so its member-local keys are compared
    /// and set as one step (the cluster-wide keys are compared where they apply).
    pub config_writes: tokio::sync::Mutex<()>,
    /// Wrong trust passwords per source address.
    pub passwords: password::PasswordGuard,
    /// The HTTPS listeners' bound on unauthenticated connections.
    gate: Arc<listeners::Gate>,
    /// A cluster certificate rotation's staged and replaced pairs.
    pub rotation: rotation::Rotation,
    /// This server's formation window, when one is open.
    pub formation: formation::Formation,
    /// Held while this member turns standalone after leaving a cluster, so two ways out
    /// (removal, a formation's undo) never run at once.
    pub leaving: tokio::sync::Mutex<()>,
    /// API requests answered, for metrics.
    pub api_stats: metrics::ApiStats,
    /// When this daemon started.
    pub started: std::time::Instant,
}

pub use rxd_cluster::host::NODE_ID_KEY;

impl Daemon {
    /// The replicated cluster database.
    pub fn db(&self) -> ReplicatedDb {
        self.db.read().expect("lock is never poisoned").clone()
    }

    /// Opens the replicated database of node `id` in `database/global`.
    pub async fn open_db(&self, id: u64) -> Result<ReplicatedDb, rxd_raft::RaftError> {
        ReplicatedDb::open(
            &self.dir.join("database").join("global"),
            id,
            self.transport.clone(),
            fault_injection::raft_settings(),
        )
        .await
    }

    /// Swaps in another replicated database (joining replaces the standalone one).
    pub fn replace_db(&self, db: ReplicatedDb) {
        *self.db.write().expect("lock is never poisoned") = db;
    }

    /// Trusts these member fingerprints until the replica knows them.
    pub fn set_pending_trust(&self, fps: impl IntoIterator<Item = String>) {
        *self.pending_trust.write().expect("lock is never poisoned") = fps.into_iter().collect();
    }

    /// The certificate the HTTPS listener serves: the cluster's once clustered.
    pub fn served_cert(&self) -> CertKey {
        self.cluster_cert
            .read()
            .expect("lock is never poisoned")
            .clone()
            .unwrap_or_else(|| self.server_cert.clone())
    }

    /// The cluster certificate, once clustered.
    pub fn cluster_cert(&self) -> Option<CertKey> {
        self.cluster_cert
            .read()
            .expect("lock is never poisoned")
            .clone()
    }

    /// The fingerprints a member-to-member call accepts from the other member: the cluster
    /// certificate this member serves, and while a rotation is under way the staged one and the
    /// one the last swap replaced (this member's own certificate before it is clustered).
    pub fn peer_pins(&self) -> Vec<String> {
        let mut pins = vec![self.served_cert().fingerprint()];
        for extra in [self.rotation.staged(), self.rotation.previous()]
            .into_iter()
            .flatten()
        {
            let fp = extra.fingerprint();
            if !pins.contains(&fp) {
                pins.push(fp);
            }
        }
        pins
    }

    /// Serves `cert` on HTTPS from the next connection on, and remembers it as the cluster's.
    pub fn set_cluster_cert(&self, cert: Option<CertKey>) -> ApiResult<()> {
        let served = cert.clone().unwrap_or_else(|| self.server_cert.clone());
        let config = rxd_tls::server_config(&served)
            .map_err(|e| ApiError::internal(format!("Failed to load certificate: {e}")))?;
        *self.tls.write().expect("lock is never poisoned") = config;
        *self.cluster_cert.write().expect("lock is never poisoned") = cert;
        Ok(())
    }

    /// This member's local configuration.
    pub fn local_config(&self) -> ApiResult<Config> {
        let conn = self.local.lock().expect("lock is never poisoned");
        Ok(rxd_db::local::config(&conn)?)
    }

    /// Changes local keys.
    pub fn update_local<'a>(
        &self,
        changes: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> ApiResult<()> {
        let mut conn = self.local.lock().expect("lock is never poisoned");
        Ok(rxd_db::local::update_config(&mut conn, changes)?)
    }

    /// This member's raft node id, which is also its member id.
    pub fn node_id(&self) -> u64 {
        self.db().status().id
    }

    /// This member's row, by raft node id.
    pub async fn own_member(&self) -> ApiResult<tables::Member> {
        Ok(rxd_cluster::host::own_member(self).await?)
    }

    /// Whether this server is part of a cluster.
    pub async fn is_clustered(&self) -> ApiResult<bool> {
        Ok(self.own_member().await?.name != "none")
    }

    /// The name to show: the member name when clustered, else the host name.
    pub async fn server_name(&self) -> ApiResult<String> {
        let m = self.own_member().await?;
        Ok(if m.name == "none" {
            self.hostname.clone()
        } else {
            m.name
        })
    }

    /// The name operations and events carry: the member name, or `none`.
    pub async fn location(&self) -> String {
        self.own_member()
            .await
            .map(|m| m.name)
            .unwrap_or_else(|_| "none".into())
    }

    /// Decides what a caller may do.
    pub async fn trust_of(&self, peer: &Peer) -> Trust {
        match peer {
            Peer::Unix => Trust::Trusted,
            Peer::Tls { cert_der: None, .. } => Trust::Untrusted,
            Peer::Tls {
                cert_der: Some(der),
                ..
            } => {
                let fp = rxd_tls::fingerprint_der(der);
                if fp == self.server_cert.fingerprint()
                    || self
                        .pending_trust
                        .read()
                        .expect("lock is never poisoned")
                        .contains(&fp)
                {
                    return Trust::Member;
                }
                match self
                    .db()
                    .read_local(move |c| tables::certificate(c, &fp))
                    .await
                {
                    Ok(cert) => crate::access::trust_of_certificate(&cert),
                    Err(_) => Trust::Untrusted,
                }
            }
        }
    }

    /// (Re)binds the HTTPS listener to `address`, or closes it for "". A failed bind leaves the
    /// previous listener in place.
    pub async fn set_https_address(&self, address: &str) -> ApiResult<()> {
        let mut current = self.https.lock().await;
        let address = config::canonical_address(address);
        if current.as_ref().map(|(a, _)| a.as_str()) == Some(address.as_str()) {
            return Ok(());
        }
        if address.is_empty() {
            if let Some((_, task)) = current.take() {
                task.abort();
                let _ = task.await;
            }
            return Ok(());
        }
        // Close the old listener first: the new address may be the same port on another form.
        // Waiting for the aborted task makes sure its socket is closed before binding again.
        let old = match current.take() {
            Some((old_address, task)) => {
                task.abort();
                let _ = task.await;
                Some(old_address)
            }
            None => None,
        };
        let router = self.router.get().expect("router is set at start").clone();
        match listeners::https(
            &address,
            self.tls.clone(),
            router.clone(),
            self.gate.clone(),
        )
        .await
        {
            Ok(task) => {
                tracing::info!("Listening on https://{address}");
                *current = Some((address, task));
                Ok(())
            }
            Err(e) => {
                if let Some(old_addr) = old {
                    if let Ok(task) =
                        listeners::https(&old_addr, self.tls.clone(), router, self.gate.clone())
                            .await
                    {
                        *current = Some((old_addr, task));
                    }
                }
                Err(ApiError::bad_request(format!(
                    "Cannot listen on network HTTPS socket {address:?}: {e}"
                )))
            }
        }
    }

    /// The HTTPS addresses currently listened on.
    pub async fn https_addresses(&self) -> Vec<String> {
        self.https
            .lock()
            .await
            .as_ref()
            .map(|(a, _)| vec![a.clone()])
            .unwrap_or_default()
    }
}

/// Whether a connection's peer may leave the listeners' gate: a member or a trusted client.
fn trust_check(daemon: std::sync::Weak<Daemon>) -> listeners::TrustCheck {
    Box::new(move |peer| {
        let daemon = daemon.clone();
        Box::pin(async move {
            match daemon.upgrade() {
                Some(d) => d.trust_of(&peer).await != Trust::Untrusted,
                None => false,
            }
        })
    })
}

/// Raises the soft limit on open files to the hard one, as Go programs (LXD) do at start, so
/// connections cannot run the daemon out of descriptors for its own files.
fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::warn!("Cannot raise the open files limit to {hard}: {e}");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("Cannot read the open files limit: {e}"),
    }
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

fn open_local(dir: &Path) -> start_error::Result<rusqlite::Connection> {
    let mut conn = rusqlite::Connection::open(dir.join("database").join("local.db"))?;
    rxd_db::migrate_local(&mut conn)?;
    Ok(conn)
}

/// Errors that stop the daemon from starting.
mod start_error {
    /// A start-up failure, with what was being done.
    #[derive(Debug, thiserror::Error)]
    pub enum StartError {
        /// A file or socket.
        #[error("{what}: {cause}")]
        Io {
            /// What was being done.
            what: String,
            /// The cause.
            cause: std::io::Error,
        },
        /// The local database.
        #[error("Local database: {0}")]
        Db(rxd_db::DbError),
        /// SQLite.
        #[error("Local database: {0}")]
        Sqlite(rusqlite::Error),
        /// Certificates.
        #[error("Certificate: {0}")]
        Tls(rxd_tls::TlsError),
        /// The replicated database.
        #[error("Cluster database: {0}")]
        Raft(rxd_raft::RaftError),
        /// A listener.
        #[error("{0}")]
        Api(String),
        /// Another daemon holds the data directory.
        #[error("rxd is already running on {} (pid {pid})", dir.display())]
        AlreadyRunning {
            /// The data directory.
            dir: std::path::PathBuf,
            /// The running daemon's pid, as it wrote it.
            pid: String,
        },
    }
    // Conversions by hand rather than `#[from]`, which would also expose the cause through
    // `source()`: each message says its cause once.
    macro_rules! from {
        ($($variant:ident($t:ty)),*) => {$(
            impl From<$t> for StartError {
                fn from(e: $t) -> Self {
                    StartError::$variant(e)
                }
            }
        )*};
    }
    from!(
        Db(rxd_db::DbError),
        Sqlite(rusqlite::Error),
        Tls(rxd_tls::TlsError),
        Raft(rxd_raft::RaftError)
    );
    /// Start-up result.
    pub type Result<T> = std::result::Result<T, StartError>;
}
pub use start_error::StartError;

fn io<T>(what: &str, r: std::io::Result<T>) -> Result<T, StartError> {
    r.map_err(|cause| StartError::Io {
        what: what.to_string(),
        cause,
    })
}

/// Takes the data directory for this process: an exclusive `flock` on `rxd.lock`, which holds
/// the pid. The kernel drops the lock when the process ends, however it ends.
fn lock_dir(dir: &std::path::Path) -> Result<nix::fcntl::Flock<std::fs::File>, StartError> {
    use std::io::{Read, Seek, Write};
    let path = dir.join("rxd.lock");
    let file = io(
        "Open the lock file",
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path),
    )?;
    let mut lock = match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
    {
        Ok(lock) => lock,
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(StartError::AlreadyRunning {
                dir: dir.to_path_buf(),
                pid: pid.trim().to_string(),
            });
        }
        Err((_, errno)) => {
            return Err(StartError::Io {
                what: format!("Lock {}", path.display()),
                cause: errno.into(),
            })
        }
    };
    io("Write the lock file", lock.set_len(0))?;
    io("Write the lock file", lock.rewind())?;
    io(
        "Write the lock file",
        writeln!(lock, "{}", std::process::id()),
    )?;
    Ok(lock)
}

/// Starts the daemon and serves until it is told to stop.
pub async fn run(opts: Options) -> Result<(), StartError> {
    let dir = opts.dir;
    // A panic anywhere (a handler, a background task) reaches the log, not only stderr.
    std::panic::set_hook(Box::new(|info| tracing::error!("Panic: {info}")));
    fault_injection::check_env().map_err(StartError::Api)?;
    raise_open_files_limit();
    // Tests start a daemon with this failpoint to learn that the binary has them.
    rxd_cluster::failpoint("daemon-start")
        .await
        .map_err(|e| StartError::Api(e.message))?;
    io(
        "Create data directory",
        std::fs::create_dir_all(dir.join("database").join("global")),
    )?;
    io(
        "Create logs directory",
        std::fs::create_dir_all(dir.join("logs")),
    )?;
    // Held until the daemon stops, and taken before anything is bound or opened.
    let _lock = lock_dir(&dir)?;
    io(
        "Create storage-pools directory",
        std::fs::create_dir_all(dir.join("storage-pools")),
    )?;
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o711)).map_err(
        |cause| StartError::Io {
            what: "Set data directory mode".into(),
            cause,
        },
    )?;
    let host = hostname();
    let server_cert =
        rxd_tls::load_or_generate(&dir.join("server.crt"), &dir.join("server.key"), &host)?;
    io(
        "Finish an interrupted cluster certificate swap",
        rotation::recover_at_start(&dir),
    )?;
    let mut local = open_local(&dir)?;
    let formation = io(
        "Recover an interrupted formation",
        formation_journal::recover_at_start(&dir, &mut local).await,
    )?;
    let cluster_cert = if dir.join("cluster.crt").exists() {
        Some(rxd_tls::load_or_generate(
            &dir.join("cluster.crt"),
            &dir.join("cluster.key"),
            &host,
        )?)
    } else {
        None
    };
    let interrupted = io(
        "Recover an interrupted join",
        rxd_cluster::join::recover_at_start(&dir, &mut local, async |sides| {
            member_sides::undo(&dir, sides).await
        })
        .await,
    )?;
    let joining = matches!(interrupted, rxd_cluster::join::Interrupted::Undecided);
    io(
        "Recover an interrupted removal",
        rxd_cluster::leave::recover_at_start(&dir, &mut local, joining),
    )?;
    let local_config = rxd_db::local::config(&local)?;
    let node_id: u64 = local_config
        .get(NODE_ID_KEY)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let tls: TlsConfig = Arc::new(std::sync::RwLock::new(rxd_tls::server_config(
        cluster_cert.as_ref().unwrap_or(&server_cert),
    )?));
    let transport = Arc::new(peer::PeerTransport::new(
        server_cert.clone(),
        cluster_cert.clone(),
    ));
    let db = ReplicatedDb::open(
        &dir.join("database").join("global"),
        node_id,
        transport.clone(),
        fault_injection::raft_settings(),
    )
    .await?;
    let mut standalone = !joining && !db.is_initialized().await;
    if joining {
        // The cluster decides how the interrupted join ends; until then this is its member.
    } else if standalone {
        // A single node still runs a one-voter raft group, so there is one write path.
        db.initialize(String::new()).await?;
    } else {
        let members = db.read_local(tables::members).await?;
        standalone = members.iter().any(|m| m.id == node_id && m.name == "none");
    }
    let cluster_cert = if standalone && cluster_cert.is_some() {
        // A crash between writing the cluster certificate and joining left it behind.
        for f in ["cluster.crt", "cluster.key"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        *tls.write().expect("lock is never poisoned") = rxd_tls::server_config(&server_cert)?;
        None
    } else {
        cluster_cert
    };
    if standalone {
        db.wait_for_leader(Duration::from_secs(30)).await?;
    }
    // A clustered member serves at once; requests needing a leader answer 503 until raft has
    // one, so a member can start while the rest of the cluster is still down.
    let events = Events::new("none");
    let daemon = Arc::new_cyclic(|this: &std::sync::Weak<Daemon>| Daemon {
        dir: dir.clone(),
        hostname: host,
        local: Mutex::new(local),
        db: std::sync::RwLock::new(db),
        transport: transport.clone(),
        pending_trust: Default::default(),
        membership: Default::default(),
        server_cert,
        cluster_cert: std::sync::RwLock::new(cluster_cert),
        tls,
        https: tokio::sync::Mutex::new(None),
        router: std::sync::OnceLock::new(),
        ops: Operations::new(events.clone()),
        events,
        relayed: Default::default(),
        stop: Notify::new(),
        config_writes: tokio::sync::Mutex::new(()),
        passwords: Default::default(),
        gate: listeners::Gate::new(trust_check(this.clone())),
        rotation: Default::default(),
        formation: Default::default(),
        leaving: Default::default(),
        api_stats: Default::default(),
        started: std::time::Instant::now(),
    });
    if let Some((journal, _)) = &formation {
        daemon.formation.settle(journal);
    }
    let pins = Arc::downgrade(&daemon);
    transport.attach(Box::new(move || pins.upgrade().map(|d| d.peer_pins())));
    rotation::resume(&daemon);
    let router =
        router::router(daemon.clone()).layer(axum::middleware::from_fn(listeners::catch_panic));
    let _ = daemon.router.set(router.clone());
    let location = daemon.location().await;
    daemon.events.set_location(&location);
    // A pool's filesystem (a btrfs loop file, a device) is mounted again after a restart, before
    // the daemon answers.
    let mounted = member_objects::restore::<handlers::storage_pools::Pools>(&daemon).await;
    warnings::pools_at_start(&daemon, mounted);
    if let Some(addr) = local_config.get("core.https_address") {
        daemon
            .set_https_address(addr)
            .await
            .map_err(|e| StartError::Api(e.message))?;
    }
    let (unix, activated) = io(
        "Listen on unix socket",
        listeners::unix(&dir.join("unix.socket"), router),
    )?;
    if let Some((journal, true)) = formation {
        tokio::spawn(formation_run::listen_as_before(daemon.clone(), journal));
    }
    rxd_cluster::heartbeat::spawn(daemon.clone());
    let relay = events::relay::spawn(&daemon);
    if joining {
        tokio::spawn(rxd_cluster::join::resume(daemon.clone()));
    }
    // Bridges and their dnsmasq come back after a restart.
    handlers::networks::restore(&daemon).await;
    // SIGTERM and SIGINT stop the daemon the same orderly way as `rxd shutdown`.
    let signal = |kind| io("Handle signals", tokio::signal::unix::signal(kind));
    let mut sigterm = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = signal(tokio::signal::unix::SignalKind::interrupt())?;
    tracing::info!("rxd is ready, data directory {}", dir.display());
    // Type=notify: systemd takes the daemon for started once its API answers.
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::warn!("Cannot tell systemd that rxd is ready: {e}");
    }
    tokio::select! {
        _ = daemon.stop.notified() => {}
        _ = sigterm.recv() => tracing::info!("Received SIGTERM"),
        _ = sigint.recv() => tracing::info!("Received SIGINT"),
    }
    tracing::info!("Shutting down");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    // While the listeners still serve: the new leader's election needs this member's vote.
    shutdown::hand_over_leadership(&daemon).await;
    // The listeners to other members' events end with the relay.
    relay.abort();
    let _ = relay.await;
    unix.abort();
    daemon.set_https_address("").await.ok();
    // dnsmasq processes are ours; bridges and their rules stay, as LXD leaves them.
    rxd_network::dnsmasq::stop_all().await;
    if let Ok(pools) = daemon.db().read_local(tables::storage_pools).await {
        rxd_storage::unmount_all(dir.clone(), pools, daemon.node_id()).await;
    }
    if !activated {
        let _ = std::fs::remove_file(dir.join("unix.socket"));
    }
    daemon.db().shutdown().await?;
    Ok(())
}

impl rxd_cluster::Host for Daemon {
    fn dir(&self) -> &Path {
        &self.dir
    }

    fn hostname(&self) -> &str {
        &self.hostname
    }

    fn db(&self) -> ReplicatedDb {
        Daemon::db(self)
    }

    async fn open_db(&self, id: u64) -> Result<ReplicatedDb, rxd_raft::RaftError> {
        Daemon::open_db(self, id).await
    }

    fn replace_db(&self, db: ReplicatedDb) {
        Daemon::replace_db(self, db)
    }

    fn server_cert(&self) -> &CertKey {
        &self.server_cert
    }

    fn cluster_cert(&self) -> Option<CertKey> {
        Daemon::cluster_cert(self)
    }

    fn set_cluster_cert(&self, cert: Option<CertKey>) -> rxd_cluster::Result<()> {
        Ok(Daemon::set_cluster_cert(self, cert)?)
    }

    fn staged_cluster_cert(&self) -> Option<CertKey> {
        self.formation.staged_cluster_cert()
    }

    fn peer_pins(&self) -> Vec<String> {
        Daemon::peer_pins(self)
    }

    fn set_pending_trust(&self, fingerprints: Vec<String>) {
        Daemon::set_pending_trust(self, fingerprints)
    }

    fn local_config(&self) -> rxd_cluster::Result<Config> {
        Ok(Daemon::local_config(self)?)
    }

    fn update_local(&self, changes: &[(&str, Option<&str>)]) -> rxd_cluster::Result<()> {
        Ok(Daemon::update_local(self, changes.iter().copied())?)
    }

    async fn set_https_address(&self, address: &str) -> rxd_cluster::Result<()> {
        Ok(Daemon::set_https_address(self, address).await?)
    }

    fn membership(&self) -> &rxd_cluster::Membership {
        &self.membership
    }

    async fn settings(&self) -> rxd_cluster::Settings {
        let config = self
            .db()
            .read_local(tables::config)
            .await
            .unwrap_or_default();
        let get = |k: &'static str, default: u64| {
            config::cluster_value(&config, k)
                .parse::<u64>()
                .unwrap_or(default)
        };
        rxd_cluster::Settings {
            offline_threshold: Duration::from_secs(get("cluster.offline_threshold", 20)),
            limits: rxd_cluster::RoleLimits {
                max_voters: get("cluster.max_voters", 3) as usize,
                max_standby: get("cluster.max_standby", 2) as usize,
            },
        }
    }

    fn architecture(&self) -> String {
        handlers::server::architectures()
            .into_iter()
            .next()
            .unwrap_or_default()
    }

    fn set_location(&self, name: &str) {
        self.events.set_location(name)
    }

    fn heartbeats_sent(self: Arc<Self>, members: &[tables::Member], threshold: Duration) {
        warnings::offline_members(&self, members, threshold)
    }

    async fn member_config(&self) -> rxd_cluster::Result<Vec<rxd_api::ClusterMemberConfigKey>> {
        Ok(member_sides::member_config(self).await?)
    }

    fn prepare_member_sides<'a>(
        &'a self,
        cluster: &'a rxd_client::Client,
        member_config: &'a [rxd_api::ClusterMemberConfigKey],
        journal: &'a mut dyn rxd_cluster::host::SidesJournal,
    ) -> impl std::future::Future<Output = rxd_cluster::Result<rxd_cluster::host::PreparedSides>>
           + Send
           + 'a {
        member_sides::prepare(&self.dir, cluster, member_config, journal)
    }

    async fn own_sides(&self) -> rxd_cluster::host::MemberSides {
        member_sides::own(self).await
    }

    async fn undo_member_sides(&self, sides: &rxd_cluster::host::MemberSides) {
        member_sides::undo(&self.dir, sides).await
    }
}
