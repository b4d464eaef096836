//! `rxd init`: the interactive questions, `--auto` and `--preseed` all produce one
//! [`InitPreseed`], which is then applied to the local daemon through its API, as `lxd init`
//! does. `--dump` prints the current configuration as a preseed, and `--dry-run` checks a
//! preseed (or the answers) and prints what applying it would do, changing nothing.
//!
//! This crate is a client: it sees only the API types, the client and the TLS helpers, never
//! the daemon's internals.
//!
//! ```text
//!  questions ─┐
//!  --auto ────┼─> InitPreseed ─> apply: config ─> pools ─> profiles ─> cluster (bootstrap)
//!  --preseed ─┘     │                   └──────── undo in reverse on failure ───────┘
//!                   ├─ joining: the cluster section only ─> PUT /1.0/cluster (join)
//!                   └─ --dry-run: read-only checks ─> the plan, printed
//! ```

mod apply;
mod ask_join;
mod dry_run;
pub mod form;
mod interactive;
mod join;
mod prompt;

use std::io::{BufRead, Read, Write};
use std::path::Path;

pub use apply::apply;
pub use interactive::ask;
pub use prompt::Asker;
use rxd_api::InitPreseed;
use rxd_client::Client;

/// `rxd init` flags, as `lxd init` has them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct InitArgs {
    /// Read a YAML preseed from standard input.
    #[arg(long)]
    pub preseed: bool,
    /// Configure with defaults, without questions.
    #[arg(long)]
    pub auto: bool,
    /// Print the current configuration as a preseed.
    #[arg(long)]
    pub dump: bool,
    /// Address to listen on (with --auto).
    #[arg(long)]
    pub network_address: Option<String>,
    /// Port to listen on (with --auto).
    #[arg(long)]
    pub network_port: Option<u16>,
    /// Storage backend to use (with --auto).
    #[arg(long)]
    pub storage_backend: Option<String>,
    /// Trust password for new clients (with --auto and --network-address).
    #[arg(long)]
    pub trust_password: Option<String>,
    /// Check everything that can be checked without changing anything, then print what would
    /// be done (with --preseed, --auto or the questions).
    #[arg(long)]
    pub dry_run: bool,
}

/// Why `init` failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The flags contradict each other.
    #[error("{0}")]
    Usage(&'static str),
    /// The preseed is not valid YAML or has unknown keys.
    #[error("Failed to parse the preseed: {0}")]
    Preseed(String),
    /// Reading the answers failed.
    #[error("Failed to read input: {0}")]
    Input(std::io::Error),
    /// The user said no where going on would lose something.
    #[error("User aborted configuration")]
    Aborted,
    /// An answer cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// The formation this server took part in was aborted by its initiator.
    #[error("{0}")]
    FormationAborted(String),
    /// The daemon refused.
    #[error(transparent)]
    Api(#[from] rxd_client::ClientError),
}

// By hand rather than `#[from]`, which would also expose the cause through `source()` and have
// it printed twice.
impl From<std::io::Error> for InitError {
    fn from(e: std::io::Error) -> Self {
        InitError::Input(e)
    }
}

/// Parses a preseed, refusing unknown keys and wrong types with their line and column.
pub fn parse_preseed(text: &str) -> Result<InitPreseed, InitError> {
    InitPreseed::from_yaml(text).map_err(InitError::Preseed)
}

/// The preseed as YAML, in `lxd init`'s layout.
pub fn to_yaml(preseed: &InitPreseed) -> String {
    preseed.to_yaml()
}

/// Runs `rxd init` against the daemon in `dir`.
pub async fn run(dir: &Path, args: InitArgs) -> Result<(), InitError> {
    let modes = [args.preseed, args.auto, args.dump]
        .iter()
        .filter(|m| **m)
        .count();
    if modes > 1 {
        return Err(InitError::Usage(
            "Can't use --auto, --preseed and --dump together",
        ));
    }
    if !args.auto
        && (args.network_address.is_some()
            || args.network_port.is_some()
            || args.storage_backend.is_some()
            || args.trust_password.is_some())
    {
        return Err(InitError::Usage("Configuration flags require --auto"));
    }
    if args.dry_run && args.dump {
        return Err(InitError::Usage("Can't use --dry-run with --dump"));
    }
    let client = Client::unix(dir.join("unix.socket"));
    // As `lxd init`: no daemon is an error before anything is read, even for an empty preseed.
    client.server().await?;
    if args.dump {
        let preseed = apply::dump(&client).await?;
        print!("{}", to_yaml(&preseed));
        return Ok(());
    }
    let preseed = if args.preseed {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        parse_preseed(&text)?
    } else if args.auto {
        interactive::auto(&client, &args).await?
    } else {
        let stdin = std::io::stdin();
        let mut asker = Asker::new(stdin.lock(), std::io::stdout(), is_terminal());
        let (preseed, print) = ask(&client, &mut asker, dir, args.dry_run).await?;
        if print {
            let mut out = std::io::stdout();
            write!(out, "{}", to_yaml(&print_form(&preseed)))?;
            out.flush()?;
        }
        preseed
    };
    if args.dry_run {
        let plan = dry_run::plan(&client, &preseed).await?;
        let mut out = std::io::stdout();
        write!(out, "{plan}")?;
        out.flush()?;
        return Ok(());
    }
    apply(&client, &preseed).await
}

/// What the YAML question prints: the preseed with the trust password in clear, as LXD does.
fn print_form(p: &InitPreseed) -> InitPreseed {
    p.clone()
}

pub(crate) fn is_terminal() -> bool {
    nix::unistd::isatty(std::io::stdin()).unwrap_or(false)
}

/// Lets tests drive the questions with scripted answers.
pub fn scripted<R: BufRead, W: Write>(input: R, output: W) -> Asker<R, W> {
    Asker::new(input, output, false)
}
