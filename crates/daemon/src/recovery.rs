//! `rxd cluster …`: low-level inspection and repair of the cluster database while the daemon is
//! stopped, as `lxd cluster` does it (`list-database`, `show`, `edit`,
//! `recover-from-quorum-loss`, `remove-raft-node`).
//!
//! Each command takes `rxd.lock` first, so it refuses to run beside a daemon and no daemon can
//! start while it writes. The raft files are changed only through `rxd_raft::offline`, which
//! appends a membership entry and never rewrites one.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use rxd_raft::offline::{self, RaftNode};
use serde::{Deserialize, Serialize};

use crate::start_error::StartError;

/// The port a cluster address without one gets, as LXD's.
const DEFAULT_PORT: u16 = 8443;

/// The subcommands of `rxd cluster`.
#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Print the addresses of the cluster members serving the database
    #[command(visible_alias = "ls")]
    ListDatabase,
    /// Show cluster configuration as YAML
    Show,
    /// Edit cluster configuration as YAML
    Edit,
    /// Recover a rxd instance whose cluster has lost quorum
    RecoverFromQuorumLoss {
        /// Don't require user confirmation
        #[arg(long, short)]
        quiet: bool,
    },
    /// Remove a raft node from the raft configuration
    RemoveRaftNode {
        /// The node's cluster address (port 8443 if none is given).
        address: String,
        /// Don't require user confirmation
        #[arg(long, short)]
        quiet: bool,
    },
}

/// One member of the raft configuration, as `lxd cluster show` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ClusterMember {
    id: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    role: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ClusterConfig {
    #[serde(default)]
    members: Vec<ClusterMember>,
}

const VOTER: &str = "voter";
const STAND_BY: &str = "stand-by";
const SPARE: &str = "spare";

/// Runs one `rxd cluster` subcommand on the data directory `dir`.
pub fn run(dir: &Path, command: ClusterCommand) -> anyhow::Result<()> {
    if !dir.join("database").is_dir() {
        bail!("No rxd database in {}", dir.display());
    }
    let _lock = match crate::lock_dir(dir) {
        Ok(lock) => lock,
        Err(StartError::AlreadyRunning { pid, .. }) => {
            bail!("The rxd daemon is running (pid {pid}), please stop it first.")
        }
        Err(e) => return Err(e.into()),
    };
    let global = dir.join("database").join("global");
    match command {
        ClusterCommand::ListDatabase => list_database(&global),
        ClusterCommand::Show => show(&global),
        ClusterCommand::Edit => edit(dir, &global),
        ClusterCommand::RecoverFromQuorumLoss { quiet } => {
            if !quiet {
                confirm(RECOVER_PROMPT, "Recover operation aborted")?;
            }
            recover(dir, &global)
        }
        ClusterCommand::RemoveRaftNode { address, quiet } => {
            let address = canonical(&address);
            if !quiet {
                confirm(REMOVE_PROMPT, "Remove raft node operation aborted")?;
            }
            remove_raft_node(dir, &global, &address)
        }
    }
}

const RECOVER_PROMPT: &str = r#"You should run this command only if you are *absolutely* certain that this is
the only database node left in your cluster AND that other database nodes will
never come back (i.e. their rxd daemon won't ever be started again).

This will make this rxd instance the only member of the cluster, and it won't
be possible to perform operations on former cluster members anymore.

However all information about former cluster members will be preserved in the
database, so you can possibly inspect it for further recovery.

You'll be able to permanently delete from the database all information about
former cluster members by running "rxc cluster remove <member-name> --force".

Do you want to proceed? (yes/no): "#;

const REMOVE_PROMPT: &str = r#"You should run this command only if you ended up in an
inconsistent state where a node has been uncleanly removed (i.e. it doesn't show
up in "rxc cluster list" but it's still in the raft configuration).

Do you want to proceed? (yes/no): "#;

/// Asks `prompt` on stdout and reads one line of stdin: only `yes` goes on.
fn confirm(prompt: &str, aborted: &str) -> anyhow::Result<()> {
    print!("{prompt}");
    std::io::stdout().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("Cannot read the answer")?;
    if line.trim_end_matches(['\n', '\r']).to_lowercase() != "yes" {
        bail!("{aborted}");
    }
    Ok(())
}

/// `host` gets the default port; an address with a port stays as it is.
fn canonical(address: &str) -> String {
    if address.parse::<std::net::SocketAddr>().is_ok() {
        return address.to_string();
    }
    if address.parse::<std::net::Ipv6Addr>().is_ok() {
        return format!("[{address}]:{DEFAULT_PORT}");
    }
    match address.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_ok() && !address.ends_with(']') => {
            address.to_string()
        }
        _ => format!("{address}:{DEFAULT_PORT}"),
    }
}

/// This member's raft node id and cluster address, from `local.db`.
fn own_identity(dir: &Path) -> anyhow::Result<(u64, String)> {
    let conn = rusqlite::Connection::open(dir.join("database").join("local.db"))
        .context("Failed to open local database")?;
    let config = rxd_db::local::config(&conn).context("Failed to open local database")?;
    let id = config
        .get(crate::NODE_ID_KEY)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let address = config
        .get("cluster.https_address")
        .cloned()
        .unwrap_or_default();
    Ok((id, address))
}

fn role(node: &RaftNode) -> &'static str {
    if node.voter {
        VOTER
    } else {
        STAND_BY
    }
}

fn current(global: &Path) -> anyhow::Result<(offline::RaftConfig, ClusterConfig)> {
    let raft = offline::read_config(global)?;
    let names = offline::member_names(global)?;
    let members = raft
        .nodes
        .iter()
        .map(|n| ClusterMember {
            id: n.id,
            name: names.get(&n.id).cloned().unwrap_or_default(),
            address: n.address.clone(),
            role: role(n).to_string(),
        })
        .collect();
    Ok((raft, ClusterConfig { members }))
}

fn to_yaml(config: &ClusterConfig) -> anyhow::Result<String> {
    serde_saphyr::to_string(config).context("Cannot write the configuration as YAML")
}

fn header(raft: &offline::RaftConfig) -> String {
    format!("# Latest raft log index: {}\n\n", raft.last_index)
}

fn show(global: &Path) -> anyhow::Result<()> {
    let (raft, config) = current(global)?;
    let yaml = to_yaml(&config)?;
    if config.members.is_empty() {
        print!("{yaml}");
    } else {
        print!("{}{yaml}", header(&raft));
    }
    Ok(())
}

fn list_database(global: &Path) -> anyhow::Result<()> {
    let raft = offline::read_config(global).context("Failed to get database nodes")?;
    let rows: Vec<String> = raft
        .nodes
        .iter()
        .filter(|n| n.voter)
        .map(|n| n.address.clone())
        .collect();
    print!("{}", table("ADDRESS", &rows));
    Ok(())
}

/// A one-column table as `lxc` draws it: the header centred, the cells left-aligned.
fn table(head: &str, rows: &[String]) -> String {
    let width = rows
        .iter()
        .map(|r| r.chars().count())
        .chain([head.len()])
        .max()
        .unwrap_or(0);
    let line = format!("+{}+\n", "-".repeat(width + 2));
    let left = (width - head.len()) / 2;
    let right = width - head.len() - left;
    let mut out = line.clone();
    out.push_str(&format!(
        "| {}{head}{} |\n",
        " ".repeat(left),
        " ".repeat(right)
    ));
    out.push_str(&line);
    for row in rows {
        out.push_str(&format!("| {row:<width$} |\n"));
    }
    if !rows.is_empty() {
        out.push_str(&line);
    }
    out
}

fn recover(dir: &Path, global: &Path) -> anyhow::Result<()> {
    let (own_id, address) = own_identity(dir)?;
    if address.is_empty() {
        bail!("This rxd instance is not clustered");
    }
    let raft = offline::read_config(global)?;
    if !raft.nodes.iter().any(|n| n.id == own_id) {
        bail!("This rxd instance has no database role");
    }
    offline::recover(global, own_id).context("Failed to recover database state")?;
    Ok(())
}

fn remove_raft_node(dir: &Path, global: &Path, address: &str) -> anyhow::Result<()> {
    let (own_id, _) = own_identity(dir)?;
    let raft = offline::read_config(global)?;
    let Some(gone) = raft.nodes.iter().find(|n| n.address == address) else {
        bail!("No raft node has address {address}");
    };
    if gone.id == own_id {
        bail!("The raft node at {address} is this member; remove another member's node");
    }
    let nodes: Vec<RaftNode> = raft
        .nodes
        .iter()
        .filter(|n| n.id != gone.id)
        .cloned()
        .collect();
    offline::reconfigure(global, own_id, &nodes)
        .with_context(|| format!("Failed to remove the raft node at {address}"))?;
    Ok(())
}

fn edit(dir: &Path, global: &Path) -> anyhow::Result<()> {
    let (own_id, own_address) = own_identity(dir)?;
    if own_address.is_empty() {
        bail!(
            "Can't edit cluster configuration as server isn't clustered (missing \
             \"cluster.https_address\" config)"
        );
    }
    let (raft, old) = current(global)?;
    let interactive = std::io::stdin().is_terminal();
    let mut content = if interactive {
        let mut text = to_yaml(&old)?;
        if !old.members.is_empty() {
            text = format!("{}{text}", header(&raft));
        }
        run_editor(&text)?
    } else {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("Cannot read the configuration from stdin")?;
        text
    };
    loop {
        match validated(&old, &content) {
            Ok(new) => return apply_edit(dir, global, own_id, &own_address, &old, &new),
            Err(e) if interactive => {
                eprintln!("Config validation error: {e}");
                println!("Press enter to open the editor again or ctrl+c to abort change");
                let mut byte = [0u8; 1];
                if std::io::stdin().read(&mut byte)? == 0 {
                    bail!("Config validation error: {e}");
                }
                content = run_editor(&content)?;
            }
            Err(e) => bail!("Config validation error: {e}"),
        }
    }
}

/// The edited configuration, checked against the current one as LXD checks it: the same
/// members in the same order with the same ids and names, known roles, enough voters.
fn validated(old: &ClusterConfig, content: &str) -> Result<ClusterConfig, String> {
    let new: ClusterConfig = if content.trim().is_empty() {
        ClusterConfig {
            members: Vec::new(),
        }
    } else {
        serde_saphyr::from_str(content).map_err(|e| e.without_snippet().to_string())?
    };
    for m in &new.members {
        if ![VOTER, STAND_BY, SPARE].contains(&m.role.as_str()) {
            return Err(format!("unknown raft role: {:?}", m.role));
        }
    }
    if old.members.len() > new.members.len() {
        return Err("Removing cluster members is not supported".into());
    }
    if old.members.len() < new.members.len() {
        return Err("Adding cluster members is not supported".into());
    }
    let mut voters = 0;
    let mut addresses = std::collections::BTreeSet::new();
    for (o, n) in old.members.iter().zip(&new.members) {
        if o.id != n.id {
            return Err("Changing cluster member ID is not supported".into());
        }
        if !o.name.is_empty() && !n.name.is_empty() && o.name != n.name {
            return Err("Changing cluster member name is not supported".into());
        }
        if o.role == SPARE && n.role == VOTER {
            return Err(format!(
                "A {SPARE:?} cluster member cannot become a {VOTER:?}"
            ));
        }
        if n.address.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "The address of cluster member {} must be IP:port, not {:?}",
                n.id, n.address
            ));
        }
        if !addresses.insert(n.address.clone()) {
            return Err(format!("Address {} is given twice", n.address));
        }
        if n.role == VOTER {
            voters += 1;
        }
    }
    if voters < 2 && new.members.len() > 2 {
        return Err(format!("Number of {VOTER:?} must be 2 or more"));
    } else if voters < 1 {
        return Err(format!("At least one member must be a {VOTER:?}"));
    }
    Ok(new)
}

fn apply_edit(
    dir: &Path,
    global: &Path,
    own_id: u64,
    own_address: &str,
    old: &ClusterConfig,
    new: &ClusterConfig,
) -> anyhow::Result<()> {
    let unchanged = old
        .members
        .iter()
        .zip(&new.members)
        .all(|(o, n)| o.address == n.address && o.role == n.role);
    if unchanged {
        return Ok(());
    }
    let nodes: Vec<RaftNode> = new
        .members
        .iter()
        .map(|m| RaftNode {
            id: m.id,
            address: m.address.clone(),
            voter: m.role == VOTER,
        })
        .collect();
    offline::reconfigure(global, own_id, &nodes)?;
    let moved: Vec<(u64, String)> = old
        .members
        .iter()
        .zip(&new.members)
        .filter(|(o, n)| o.address != n.address)
        .map(|(_, n)| (n.id, n.address.clone()))
        .collect();
    offline::set_member_addresses(global, &moved)?;
    if let Some((_, address)) = moved.iter().find(|(id, _)| *id == own_id) {
        let mut conn = rusqlite::Connection::open(dir.join("database").join("local.db"))
            .context("Failed to open local database")?;
        let core = rxd_db::local::config(&conn)?
            .get("core.https_address")
            .cloned();
        let mut changes = vec![("cluster.https_address", Some(address.as_str()))];
        if core.as_deref() == Some(own_address) {
            changes.push(("core.https_address", Some(address.as_str())));
        }
        rxd_db::local::update_config(&mut conn, changes)?;
    }
    Ok(())
}

/// `text` after the user saved it in `$VISUAL`/`$EDITOR` (else `vi`).
fn run_editor(text: &str) -> anyhow::Result<String> {
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    let path: PathBuf =
        std::env::temp_dir().join(format!("rxd_cluster_edit_{}.yaml", std::process::id()));
    std::fs::write(&path, text).with_context(|| format!("Cannot write {}", path.display()))?;
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&path)
        .status()
        .context("Cannot start the editor")?;
    let edited = std::fs::read_to_string(&path);
    let _ = std::fs::remove_file(&path);
    if !status.success() {
        bail!("The editor exited with an error");
    }
    edited.with_context(|| format!("Cannot read {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, address: &str, role: &str) -> ClusterMember {
        ClusterMember {
            id,
            name: format!("m{id}"),
            address: address.into(),
            role: role.into(),
        }
    }

    #[test]
    fn addresses_get_the_default_port() {
        assert_eq!(canonical("10.0.0.1"), "10.0.0.1:8443");
        assert_eq!(canonical("10.0.0.1:9000"), "10.0.0.1:9000");
        assert_eq!(canonical("::1"), "[::1]:8443");
        assert_eq!(canonical("[::1]:9000"), "[::1]:9000");
        assert_eq!(canonical("host"), "host:8443");
    }

    #[test]
    fn edits_are_checked_as_lxd_checks_them() {
        let old = ClusterConfig {
            members: vec![
                member(1, "10.0.0.1:8443", VOTER),
                member(2, "10.0.0.2:8443", VOTER),
                member(3, "10.0.0.3:8443", VOTER),
            ],
        };
        let text = to_yaml(&old).unwrap();
        assert_eq!(validated(&old, &text).unwrap(), old);
        let cases = [
            (
                text.replacen("id: 2", "id: 5", 1),
                "Changing cluster member ID",
            ),
            (
                text.replacen("name: m2", "name: x", 1),
                "Changing cluster member name",
            ),
            (
                text.replacen("role: voter", "role: boss", 1),
                "unknown raft role",
            ),
            (
                text.replace("role: voter", "role: stand-by"),
                "Number of \"voter\" must be 2 or more",
            ),
            (
                text.replacen("10.0.0.2:8443", "10.0.0.1:8443", 1),
                "given twice",
            ),
            (text.replacen("10.0.0.2:8443", "nowhere", 1), "IP:port"),
            ("members: [".to_string(), ""),
        ];
        for (text, expected) in cases {
            let e = validated(&old, &text).unwrap_err();
            assert!(e.contains(expected), "{e}");
        }
    }

    #[test]
    fn the_table_is_drawn_as_lxc_draws_it() {
        assert_eq!(
            table("ADDRESS", &["127.0.0.1:8443".to_string()]),
            "+----------------+\n\
             |    ADDRESS     |\n\
             +----------------+\n\
             | 127.0.0.1:8443 |\n\
             +----------------+\n"
        );
    }
}
