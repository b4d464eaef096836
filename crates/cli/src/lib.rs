//! rxc, the command-line client of rxd: a drop-in for the `lxc` subcommands that manage
//! clusters, server configuration, trust, storage pools, profiles, operations, events and
//! remotes, shows the server's resources and a project's usage, printing what `lxc` prints for the same data.
//!
//! This crate owns argument parsing, the client's own state (`$RXC_CONF`: `config.yml` with the
//! remotes, `client.crt`/`client.key`, `servercerts/`), output formats and prompts. It reaches
//! daemons only through `rxd_client` and knows nothing of how they store or decide anything.
//!
//! ```text
//!   argv ─► clap (args.rs) ─► Ctx (remote.rs: which daemon, which certs)
//!                                 │
//!      one module per noun ◄──────┘  cluster, config, storage, profile, project, info,
//!                                    query, operation, monitor, remote
//!           │
//!           ▼
//!   output.rs / yaml.rs ─► stdout          errors ─► "Error: <message>" on stderr, exit 1
//! ```

mod args;
mod cluster;
mod cluster_group;
mod config;
mod edit;
mod info;
mod monitor;
mod network;
mod operation;
mod output;
mod profile;
mod project;
mod query;
mod remote;
mod storage;
mod warning;
mod yaml;

use std::io::Write;
use std::path::PathBuf;

use clap::{CommandFactory, Parser};
use rxd_client::ClientError;

pub use args::Cli;
pub use output::Format;
pub use remote::Ctx;

/// Everything rxc can fail with; printed as `Error: <message>`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A daemon call failed; its message is shown verbatim.
    #[error("{0}")]
    Client(#[from] ClientError),
    /// `REMOTE:` names a remote that is not configured.
    #[error("The remote \"{name}\" doesn't exist")]
    UnknownRemote {
        /// The remote name.
        name: String,
    },
    /// `remote add` with a name already taken.
    #[error("Remote {name} exists as <{addr}>")]
    RemoteExists {
        /// The remote name.
        name: String,
        /// Its address.
        addr: String,
    },
    /// `remote remove/switch` of a missing remote.
    #[error("Remote {name} doesn't exist")]
    NoSuchRemote {
        /// The remote name.
        name: String,
    },
    /// Changing the built-in `local` remote.
    #[error("Remote {name} is static and cannot be modified")]
    StaticRemote {
        /// The remote name.
        name: String,
    },
    /// Removing the default remote.
    #[error("Can't remove the default remote")]
    RemoveDefault,
    /// A command that needs a clustered server.
    #[error("This server isn't part of a cluster")]
    NotClustered,
    /// A required name was left out (`Missing cluster member name`, ...).
    #[error("Missing {what}")]
    Missing {
        /// What is missing, such as "cluster member name".
        what: &'static str,
    },
    /// An argument that does not have the expected shape.
    #[error("{message}")]
    BadArgument {
        /// lxc's sentence for it.
        message: String,
    },
    /// A file of the client's own state could not be read or written.
    #[error("Failed to access {path:?}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// stdin/stdout/the editor failed.
    #[error("{context}: {source}")]
    Terminal {
        /// What was being done.
        context: &'static str,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// YAML that does not parse, or cannot be produced.
    #[error("{message}")]
    Yaml {
        /// The parser's message.
        message: String,
    },
    /// JSON that does not parse, or cannot be produced.
    #[error("{source}")]
    Json {
        /// The parser's message.
        #[source]
        source: serde_json::Error,
    },
    /// Certificates of the client or a remote.
    #[error("{0}")]
    Tls(#[from] rxd_tls::TlsError),
    /// A token operation whose metadata is not a token.
    #[error("Failed converting token operation to {what}: {reason}")]
    Token {
        /// "join token" or "certificate add token".
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The user refused a prompt.
    #[error("{message}")]
    Aborted {
        /// lxc's sentence for it.
        message: &'static str,
    },
}

/// Results of this crate.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// Writes command output to stdout.
pub(crate) fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        // A reader that went away (`rxc ... | head`) is not an error of the command.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|source| CliError::Terminal {
            context: "Cannot write to stdout",
            source,
        }),
    }
}

/// Reads one line from stdin without its line ending (prompts take piped answers).
pub(crate) fn read_line() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|source| CliError::Terminal {
            context: "Cannot read from stdin",
            source,
        })?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Parses `KEY=VALUE` arguments, as lxc's `getConfig` does.
pub(crate) fn parse_key_values(args: &[String]) -> Result<Vec<(String, String)>> {
    args.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(CliError::BadArgument {
                message: format!("Bad key=value pair: {a}"),
            }),
        })
        .collect()
}

/// The `KEY VALUE` or `KEY=VALUE...` arguments of a `set` command, as lxc's `getConfig`
/// reads them.
pub(crate) fn get_config(args: &[String]) -> Result<Vec<(String, String)>> {
    match args {
        [key, value] if !key.contains('=') => Ok(vec![(key.clone(), value.clone())]),
        _ => args
            .iter()
            .map(|a| match a.split_once('=') {
                Some((k, v)) => Ok((k.to_string(), v.to_string())),
                None => Err(CliError::BadArgument {
                    message: format!("Invalid key=value configuration: {a}"),
                }),
            })
            .collect(),
    }
}

/// Asks a yes/no question; an empty answer is `default`.
pub(crate) fn ask_bool(question: &str, default: bool) -> Result<bool> {
    loop {
        print(question)?;
        match read_line()?.to_lowercase().as_str() {
            "" => return Ok(default),
            "yes" | "y" => return Ok(true),
            "no" | "n" => return Ok(false),
            _ => print("Invalid input, try again.\n\n")?,
        }
    }
}

/// Runs one command line; returns the process exit code.
pub async fn run(cli: Cli) -> Result<()> {
    if let args::Command::Completion { shell } = cli.command {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "rxc", &mut out);
        let mut script = String::from_utf8_lossy(&out).into_owned();
        if shell == clap_complete::Shell::Bash {
            script.push_str(BASH_NAMES);
        }
        return print(&script);
    }
    if let args::Command::Manpage { dir } = &cli.command {
        return clap_mangen::generate_to(Cli::command(), dir).map_err(|source| CliError::Io {
            path: dir.clone(),
            source,
        });
    }
    if cli.format.is_some() && !cli.command.takes_format() {
        // cobra's words for a flag the command does not have.
        return Err(CliError::BadArgument {
            message: "unknown flag: --format".into(),
        });
    }
    let mut ctx = Ctx::load(cli.format.unwrap_or_default(), cli.quiet, cli.force_local)?;
    ctx.debug = cli.debug || cli.verbose;
    if let Some(project) = cli.project.as_deref() {
        ensure_project(&ctx, project).await?;
    }
    match cli.command {
        args::Command::Cluster(cmd) => cluster::run(&ctx, cmd).await,
        args::Command::Config(cmd) => config::run(&ctx, cmd).await,
        args::Command::Storage(cmd) => storage::run(&ctx, cmd).await,
        args::Command::Profile(cmd) => profile::run(&ctx, cmd).await,
        args::Command::Project(cmd) => project::run(&ctx, cmd).await,
        args::Command::Info {
            what,
            resources,
            target,
        } => info::run(&ctx, what, resources, target).await,
        args::Command::Network(cmd) => network::run(&ctx, cmd).await,
        args::Command::Query(a) => query::run(&ctx, a).await,
        args::Command::Operation(cmd) => operation::run(&ctx, cmd).await,
        args::Command::Warning(cmd) => warning::run(&ctx, cmd).await,
        args::Command::Monitor(a) => monitor::run(&ctx, a).await,
        args::Command::Remote(cmd) => remote::run(&mut ctx, cmd).await,
        args::Command::Version { remote } => version(&ctx, remote).await,
        args::Command::Complete { kind } => complete_names(&ctx, &kind).await,
        args::Command::Completion { .. } | args::Command::Manpage { .. } => {
            unreachable!("handled above")
        }
    }
}

/// Bash completion of the names a command takes, as Debian's lxc completion does: the first
/// argument after a verb of `cluster`, `storage`, `network`, `profile` (and `profile device`,
/// `cluster role`) and `remote` is completed from `rxc __complete KIND`; everything else from
/// the flags and subcommands above.
const BASH_NAMES: &str = r#"
_rxc_names() {
    local cur="${COMP_WORDS[COMP_CWORD]}" kind="" pos=3
    case "${COMP_WORDS[1]}" in
        cluster) kind=member ;;
        storage) kind=pool ;;
        network) kind=network ;;
        profile) kind=profile ;;
        remote) kind=remote ;;
    esac
    case "${COMP_WORDS[1]} ${COMP_WORDS[2]}" in
        "profile device"|"cluster role") pos=4 ;;
        *" list"|*" ls"|*" add"|*" create"|*" list-tokens"|*" get-default"|*" enable") kind="" ;;
    esac
    if [[ -n "$kind" && "$cur" != -* && $COMP_CWORD -eq $pos ]]; then
        COMPREPLY=( $(compgen -W "$(rxc __complete "$kind" 2>/dev/null)" -- "$cur") )
        return 0
    fi
    _rxc "$@"
}
complete -F _rxc_names -o bashdefault -o default rxc
"#;

/// `rxc __complete KIND`: names for shell completion; a daemon that does not answer gives none.
async fn complete_names(ctx: &Ctx, kind: &str) -> Result<()> {
    let mut names: Vec<String> = if kind == "remote" {
        std::iter::once(remote::LOCAL.to_string())
            .chain(ctx.conf.remotes.keys().cloned())
            .collect()
    } else {
        let client = ctx.client(ctx.default_remote())?;
        let listed = match kind {
            "member" => client
                .cluster_members()
                .await
                .map(|v| v.into_iter().map(|m| m.server_name).collect()),
            "pool" => client
                .storage_pools()
                .await
                .map(|v| v.into_iter().map(|p| p.name).collect()),
            "network" => client
                .get::<Vec<rxd_api::Network>>("/1.0/networks?recursion=1")
                .await
                .map(|v| v.into_iter().map(|n| n.name).collect()),
            "profile" => client
                .profiles()
                .await
                .map(|v| v.into_iter().map(|p| p.name).collect()),
            other => {
                return Err(CliError::BadArgument {
                    message: format!("Unknown kind of name: {other}"),
                })
            }
        };
        listed.unwrap_or_default()
    };
    names.sort();
    names.dedup();
    print(&names.iter().map(|n| format!("{n}\n")).collect::<String>())
}

/// `--project`: the server must have that project, and rxc acts in `default` only, so any
/// other one is refused rather than ignored.
async fn ensure_project(ctx: &Ctx, project: &str) -> Result<()> {
    let client = ctx.client(ctx.default_remote())?;
    if !client.projects().await?.iter().any(|p| p.name == project) {
        return Err(CliError::BadArgument {
            message: "Project not found".into(),
        });
    }
    if project != "default" {
        return Err(CliError::BadArgument {
            message: format!("rxc does not support projects other than \"default\" yet: {project}"),
        });
    }
    Ok(())
}

async fn version(ctx: &Ctx, remote: Option<String>) -> Result<()> {
    let (client, _, _) = ctx.resolve(remote.as_deref().unwrap_or(""))?;
    let server = match client.server().await {
        Ok((s, _)) => s
            .environment
            .map(|e| e.server_version)
            .unwrap_or_else(|| "unreachable".into()),
        Err(_) => "unreachable".into(),
    };
    print(&format!(
        "Client version: {}\nServer version: {}\n",
        env!("CARGO_PKG_VERSION"),
        server
    ))
}

/// The `rxc` binary: parse, run, print `Error: ...` and exit 1 on failure.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_split_on_the_first_equals() {
        let args = vec!["a=b".to_string(), "c=d=e".to_string(), "f=".to_string()];
        assert_eq!(
            parse_key_values(&args).unwrap(),
            vec![
                ("a".into(), "b".into()),
                ("c".into(), "d=e".into()),
                ("f".into(), String::new())
            ]
        );
        let err = parse_key_values(&["nokey".to_string()]).unwrap_err();
        assert_eq!(err.to_string(), "Bad key=value pair: nokey");
    }

    #[test]
    fn command_line_parses() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["rxc", "cluster", "list", "-f", "csv"]).unwrap();
        assert_eq!(cli.format, Some(Format::Csv));
        let cli = Cli::try_parse_from(["rxc", "--format", "json", "storage", "ls", "r:"]).unwrap();
        assert_eq!(cli.format, Some(Format::Json));
    }
}
