//! `rxd`: the daemon and its subcommands. This file only dispatches.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "rxd",
    version,
    about = "The rxd daemon: LXD-compatible clustering"
)]
struct Cli {
    /// Data directory.
    #[arg(long, env = "RXD_DIR", default_value = "/var/lib/rxd", global = true)]
    dir: PathBuf,
    /// Log informational messages.
    #[arg(long, short, global = true)]
    verbose: bool,
    /// Log debug messages.
    #[arg(long, short, global = true)]
    debug: bool,
    /// Rotate logs/rxd.log once it grows past this many bytes; the last five rotated files
    /// (rxd.log.1, the newest, to rxd.log.5) are kept.
    #[arg(long, default_value_t = 10 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(4096..))]
    log_max_size: u64,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Configure the daemon: bootstrap or join a cluster.
    Init(rxd_init::InitArgs),
    /// Open a formation window and form a cluster of the servers that join it.
    Form(rxd_init::form::FormArgs),
    /// Join the cluster another server is forming (`rxd form`).
    Join(rxd_init::form::JoinArgs),
    /// Wait until the daemon answers.
    Waitready {
        /// Seconds to wait (0: forever).
        #[arg(long, default_value_t = 0)]
        timeout: u64,
    },
    /// Ask the daemon to stop and wait until it has.
    Shutdown {
        /// Seconds to wait (0: forever).
        #[arg(long, default_value_t = 0)]
        timeout: u64,
    },
    /// Low-level cluster administration commands, with the daemon stopped.
    #[command(
        long_about = "Low level administration tools for inspecting and recovering rxd clusters."
    )]
    Cluster {
        #[command(subcommand)]
        command: rxd_daemon::recovery::ClusterCommand,
    },
    /// Write the manual pages (one per command) into a directory.
    Manpage {
        /// The directory.
        dir: PathBuf,
    },
}

/// Rotated log files kept beside `rxd.log`.
const LOGS_KEPT: usize = 5;

fn init_logging(cli: &Cli) -> anyhow::Result<()> {
    // netlink-packet-route warns on every link dump that a newer kernel's IFLA_INET6_CONF is
    // longer than it knows ("expecting 236, got 240"); it is the library's, not ours. openraft
    // logs each failed call to an unreachable member (every half second) and each read whose
    // confirmation missed it: a member down is said once, by the offline warning, instead.
    let level = if cli.debug {
        "debug,openraft=error,hyper=info,rustls=info,h2=info,reqwest=info,netlink_packet_route=error"
    } else if cli.verbose {
        "info,openraft=error,openraft::replication=off,openraft::core::raft_core=off,netlink_packet_route=error"
    } else {
        "warn,openraft=error,openraft::replication=off,openraft::core::raft_core=off,netlink_packet_route=error"
    };
    let filter = || EnvFilter::try_from_env("RXD_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    std::fs::create_dir_all(cli.dir.join("logs"))
        .with_context(|| format!("Cannot create {}", cli.dir.join("logs").display()))?;
    let file = file_rotate::FileRotate::new(
        cli.dir.join("logs").join("rxd.log"),
        file_rotate::suffix::AppendCount::new(LOGS_KEPT),
        file_rotate::ContentLimit::BytesSurpassed(
            usize::try_from(cli.log_max_size).unwrap_or(usize::MAX),
        ),
        file_rotate::compression::Compression::None,
        None,
    );
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter()),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .with_filter(filter()),
        )
        .init();
    Ok(())
}

use tracing_subscriber::Layer;

fn deadline(timeout: u64) -> Option<Instant> {
    (timeout > 0).then(|| Instant::now() + Duration::from_secs(timeout))
}

async fn answers(client: &rxd_client::Client) -> bool {
    client.server().await.is_ok()
}

async fn waitready(dir: PathBuf, timeout: u64) -> anyhow::Result<()> {
    let client = rxd_client::Client::unix(dir.join("unix.socket"));
    let until = deadline(timeout);
    loop {
        if answers(&client).await {
            return Ok(());
        }
        if until.is_some_and(|u| Instant::now() >= u) {
            bail!("Daemon still not running after {timeout}s timeout");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn shutdown(dir: PathBuf, timeout: u64) -> anyhow::Result<()> {
    let client = rxd_client::Client::unix(dir.join("unix.socket"));
    client
        .request("PUT", "/internal/shutdown", None, None)
        .await
        .context("The daemon is not running")?;
    let until = deadline(timeout);
    while dir.join("unix.socket").exists() && answers(&client).await {
        if until.is_some_and(|u| Instant::now() >= u) {
            bail!("Daemon still running after {timeout}s timeout");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    let result = match cli.command {
        None => match init_logging(&cli) {
            Ok(()) => rxd_daemon::run(rxd_daemon::Options { dir: cli.dir })
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e),
        },
        Some(Command::Init(args)) => rxd_init::run(&cli.dir, args)
            .await
            .map_err(anyhow::Error::from),
        Some(Command::Form(args)) => rxd_init::form::form(&cli.dir, args)
            .await
            .map_err(anyhow::Error::from),
        Some(Command::Join(args)) => rxd_init::form::join(&cli.dir, args)
            .await
            .map_err(anyhow::Error::from),
        Some(Command::Waitready { timeout }) => waitready(cli.dir, timeout).await,
        Some(Command::Shutdown { timeout }) => shutdown(cli.dir, timeout).await,
        Some(Command::Cluster { command }) => rxd_daemon::recovery::run(&cli.dir, command),
        Some(Command::Manpage { dir }) => {
            use clap::CommandFactory;
            clap_mangen::generate_to(Cli::command(), &dir)
                .with_context(|| format!("Cannot write manual pages to {}", dir.display()))
        }
    };
    if let Err(e) = result {
        eprintln!("Error: {}", in_words(&e));
        std::process::exit(1);
    }
}

/// The error and its causes, outermost first, each said once: a context added here says what
/// was being done, the cause below it says why, and a cause whose words an outer message
/// already carries is not repeated.
fn in_words(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}
