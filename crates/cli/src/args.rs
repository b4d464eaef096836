//! The command line, as clap derive types. Names, flags and argument shapes follow `lxc`.

use clap::{Args, Parser, Subcommand};

use crate::output::Format;

/// rxc: the command-line client of rxd (and LXD).
#[derive(Debug, Parser)]
#[command(name = "rxc", version, about = "Command line client for rxd")]
pub struct Cli {
    /// Output format (only for commands that list, and `monitor`).
    #[arg(short = 'f', long, global = true, value_enum)]
    pub format: Option<Format>,
    /// Force using the local unix socket.
    #[arg(long, global = true)]
    pub force_local: bool,
    /// Do not show progress information.
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
    /// Show all debug messages.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Show all information messages.
    #[arg(short = 'v', long, global = true)]
    pub verbose: bool,
    /// Override the source project (rxd serves the `default` project).
    #[arg(long, global = true)]
    pub project: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level nouns.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage cluster members.
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// Manage server configuration and the trust store.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Manage storage pools.
    #[command(subcommand)]
    Storage(StorageCmd),
    /// Manage profiles.
    #[command(subcommand)]
    Profile(ProfileCmd),
    /// Manage projects.
    #[command(subcommand)]
    Project(crate::project::ProjectCmd),
    /// Show instance or server information.
    Info {
        /// `[<remote>:][<instance>]`
        what: Option<String>,
        /// Show the resources available to the server.
        #[arg(long)]
        resources: bool,
        /// Cluster member name.
        #[arg(long)]
        target: Option<String>,
    },
    /// Manage and attach instances to networks.
    #[command(subcommand)]
    Network(crate::network::NetworkCmd),
    /// Send a raw query to the daemon.
    Query(QueryArgs),
    /// List, show and delete background operations.
    #[command(subcommand)]
    Operation(OperationCmd),
    /// Manage warnings.
    #[command(subcommand)]
    Warning(crate::warning::WarningCmd),
    /// Monitor a local or remote server.
    Monitor(MonitorArgs),
    /// Manage the list of remote servers.
    #[command(subcommand)]
    Remote(RemoteCmd),
    /// Show local and remote versions.
    Version {
        /// `[<remote>:]`
        remote: Option<String>,
    },
    /// Print a shell completion script.
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the names shell completion offers: `member`, `pool`, `network`, `profile` or
    /// `remote`, one a line.
    #[command(name = "__complete", hide = true)]
    Complete {
        /// What to name.
        kind: String,
    },
    /// Write the manual pages (one per command) into a directory.
    Manpage {
        /// The directory.
        dir: std::path::PathBuf,
    },
}

impl Command {
    /// Whether this command prints something `--format` chooses the shape of; lxc knows the
    /// flag only on those.
    pub fn takes_format(&self) -> bool {
        use crate::network::NetworkCmd;
        matches!(
            self,
            Command::Cluster(
                ClusterCmd::List { .. }
                    | ClusterCmd::ListTokens { .. }
                    | ClusterCmd::Group(crate::cluster_group::GroupCmd::List { .. })
            ) | Command::Config(ConfigCmd::Trust(
                TrustCmd::List { .. } | TrustCmd::ListTokens { .. }
            )) | Command::Storage(StorageCmd::List { .. })
                | Command::Profile(ProfileCmd::List { .. })
                | Command::Project(crate::project::ProjectCmd::Info { .. })
                | Command::Network(NetworkCmd::List { .. } | NetworkCmd::ListLeases { .. })
                | Command::Operation(OperationCmd::List { .. })
                | Command::Warning(crate::warning::WarningCmd::List { .. })
                | Command::Monitor(_)
                | Command::Remote(RemoteCmd::List)
        )
    }
}

/// `rxc cluster ...`
#[derive(Debug, Subcommand)]
pub enum ClusterCmd {
    /// List all the cluster members.
    #[command(visible_alias = "ls")]
    List {
        /// `[<remote>:]`
        remote: Option<String>,
    },
    /// Show details of a cluster member.
    Show {
        /// `[<remote>:]<member>`
        member: String,
    },
    /// Request a join token for adding a cluster member.
    Add {
        /// `[[<remote>:]<name>]`
        member: Option<String>,
        /// Cluster member name (alternative to passing it as an argument).
        #[arg(long = "name")]
        name: Option<String>,
    },
    /// List all active cluster member join tokens.
    ListTokens {
        /// `[<remote>:]`
        remote: Option<String>,
    },
    /// Revoke cluster member join token.
    RevokeToken {
        /// `[<remote>:]<member>`
        member: String,
    },
    /// Enable clustering on a single non-clustered server.
    Enable {
        /// `[<remote>:] <name>`
        #[arg(num_args = 1..=2, required = true)]
        args: Vec<String>,
    },
    /// Remove a member from the cluster.
    #[command(visible_alias = "rm")]
    Remove {
        /// `[<remote>:]<member>`
        member: String,
        /// Force removing a member, even if degraded.
        #[arg(long)]
        force: bool,
        /// Do not require user confirmation for using --force.
        #[arg(long)]
        yes: bool,
    },
    /// Rename a cluster member.
    #[command(visible_alias = "mv")]
    Rename {
        /// `[<remote>:]<member>`
        member: String,
        /// The new name.
        new_name: String,
    },
    /// Get values for cluster member configuration keys.
    Get {
        /// `[<remote>:]<member>`
        member: String,
        /// The key.
        key: String,
    },
    /// Set a cluster member's configuration keys.
    Set {
        /// `[<remote>:]<member>`
        member: String,
        /// `<key> <value>` or `<key>=<value>...`
        #[arg(required = true)]
        args: Vec<String>,
    },
    /// Unset a cluster member's configuration keys.
    Unset {
        /// `[<remote>:]<member>`
        member: String,
        /// The key.
        key: String,
    },
    /// Edit cluster member configurations as YAML.
    Edit {
        /// `[<remote>:]<cluster member>`
        member: String,
    },
    /// Evacuate cluster member.
    Evacuate {
        /// `[<remote>:]<member>`
        member: String,
        /// Force evacuation without user confirmation.
        #[arg(long)]
        force: bool,
    },
    /// Restore cluster member.
    Restore {
        /// `[<remote>:]<member>`
        member: String,
        /// Force restoration without user confirmation.
        #[arg(long)]
        force: bool,
    },
    /// Update cluster certificate with PEM certificate and key read from input files.
    UpdateCertificate {
        /// `[<remote>:] <cert.crt> <cert.key>`
        #[arg(num_args = 2..=3, required = true)]
        args: Vec<String>,
    },
    /// Manage cluster roles.
    #[command(subcommand)]
    Role(RoleCmd),
    /// Manage cluster groups.
    #[command(subcommand)]
    Group(crate::cluster_group::GroupCmd),
}

/// `rxc cluster role ...`
#[derive(Debug, Subcommand)]
pub enum RoleCmd {
    /// Add roles to a cluster member.
    Add {
        /// `[<remote>:]<member>`
        member: String,
        /// `<role[,role...]>`
        roles: String,
    },
    /// Remove roles from a cluster member.
    #[command(visible_alias = "rm")]
    Remove {
        /// `[<remote>:]<member>`
        member: String,
        /// `<role[,role...]>`
        roles: String,
    },
}

/// `rxc config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Show the server configuration.
    Show {
        /// `[<remote>:]`
        remote: Option<String>,
        /// Cluster member name.
        #[arg(long)]
        target: Option<String>,
    },
    /// Edit the server configuration as YAML.
    Edit {
        /// `[<remote>:]`
        remote: Option<String>,
        /// Cluster member name.
        #[arg(long)]
        target: Option<String>,
    },
    /// Get a server configuration key.
    Get {
        /// `[<remote>:] <key>`
        #[arg(num_args = 1..=2, required = true)]
        args: Vec<String>,
        /// Cluster member name.
        #[arg(long)]
        target: Option<String>,
    },
    /// Set server configuration keys (`KEY VALUE` or `KEY=VALUE...`).
    Set {
        /// `[<remote>:] <key> <value>` or `[<remote>:] <key>=<value>...`
        #[arg(num_args = 1.., required = true)]
        args: Vec<String>,
        /// Cluster member name.
        #[arg(long)]
        target: Option<String>,
    },
    /// Unset a server configuration key.
    Unset {
        /// `[<remote>:] <key>`
        #[arg(num_args = 1..=2, required = true)]
        args: Vec<String>,
        /// Cluster member name.
        #[arg(long)]
        target: Option<String>,
    },
    /// Manage trusted clients.
    #[command(subcommand)]
    Trust(TrustCmd),
}

/// `rxc config trust ...`
#[derive(Debug, Subcommand)]
pub enum TrustCmd {
    /// Add a certificate file, or create a certificate-add token for a client name.
    Add {
        /// `[<remote>:]<name>` or a certificate file.
        name: Option<String>,
        /// Name of the client (alternative to the argument).
        #[arg(long = "name")]
        flag_name: Option<String>,
        /// Restrict the client to the projects given with --projects.
        #[arg(long)]
        restricted: bool,
        /// Comma-separated projects a restricted client may use.
        #[arg(long, value_delimiter = ',')]
        projects: Vec<String>,
        /// Type of certificate: client, or metrics (reads /1.0/metrics only).
        #[arg(long = "type", default_value = "client")]
        cert_type: String,
    },
    /// List trusted clients.
    #[command(visible_alias = "ls")]
    List {
        /// `[<remote>:]`
        remote: Option<String>,
    },
    /// Remove a trusted client.
    #[command(visible_alias = "rm")]
    Remove {
        /// `[<remote>:]<fingerprint>`
        fingerprint: String,
    },
    /// Show trust configurations.
    Show {
        /// `[<remote>:]<fingerprint>`
        fingerprint: String,
    },
    /// Edit trust configurations as YAML.
    Edit {
        /// `[<remote>:]<fingerprint>`
        fingerprint: String,
    },
    /// List all active certificate add tokens.
    ListTokens {
        /// `[<remote>:]`
        remote: Option<String>,
    },
    /// Revoke certificate add token.
    RevokeToken {
        /// `[<remote>:] <name>`
        #[arg(num_args = 1..=2, required = true)]
        args: Vec<String>,
    },
}

/// `rxc storage ...`
#[derive(Debug, Subcommand)]
pub enum StorageCmd {
    /// List available storage pools.
    #[command(visible_alias = "ls")]
    List {
        /// `[<remote>:]`
        remote: Option<String>,
    },
    /// Show storage pool configurations and resources.
    Show {
        /// `[<remote>:]<pool>`
        pool: String,
        /// Show the resources available to the storage pool.
        #[arg(long)]
        resources: bool,
        /// Cluster member name.
        #[arg(long)]
        target: Option<String>,
    },
    /// Create storage pools.
    Create {
        /// `[<remote>:]<pool>`
        pool: String,
        /// Driver.
        driver: String,
        /// `key=value` configuration.
        config: Vec<String>,
        /// Cluster member name.
        #[arg(long)]
        target: Option<String>,
        /// Pool description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Edit storage pool configurations as YAML.
    Edit {
        /// `[<remote>:]<pool>`
        pool: String,
        /// Cluster member name.
        #[arg(long)]
        target: Option<String>,
    },
    /// Delete storage pools.
    #[command(visible_alias = "rm")]
    Delete {
        /// `[<remote>:]<pool>`
        pool: String,
    },
    /// Set storage pool configuration keys (`KEY VALUE` or `KEY=VALUE...`).
    Set {
        /// `[<remote>:]<pool>`
        pool: String,
        /// `KEY VALUE` or `KEY=VALUE...`
        #[arg(required = true)]
        args: Vec<String>,
        /// Cluster member name.
        #[arg(long)]
        target: Option<String>,
    },
    /// Get values for storage pool configuration keys.
    Get {
        /// `[<remote>:]<pool>`
        pool: String,
        /// The key.
        key: String,
        /// Cluster member name.
        #[arg(long)]
        target: Option<String>,
    },
    /// Unset a storage pool configuration key.
    Unset {
        /// `[<remote>:]<pool>`
        pool: String,
        /// The key.
        key: String,
        /// Cluster member name.
        #[arg(long)]
        target: Option<String>,
    },
    /// Show a storage pool's information and what uses it.
    Info {
        /// `[<remote>:]<pool>`
        pool: String,
        /// Cluster member name.
        #[arg(long)]
        target: Option<String>,
    },
}

/// `rxc profile ...`
#[derive(Debug, Subcommand)]
pub enum ProfileCmd {
    /// List profiles.
    #[command(visible_alias = "ls")]
    List {
        /// `[<remote>:]`
        remote: Option<String>,
    },
    /// Show profile configurations.
    Show {
        /// `[<remote>:]<profile>`
        profile: String,
    },
    /// Create profiles.
    Create {
        /// `[<remote>:]<profile>`
        profile: String,
    },
    /// Edit profile configurations as YAML.
    Edit {
        /// `[<remote>:]<profile>`
        profile: String,
    },
    /// Copy profiles.
    #[command(visible_alias = "cp")]
    Copy {
        /// `[<remote>:]<profile>`
        source: String,
        /// `[<remote>:]<profile>`
        target: String,
    },
    /// Rename profiles.
    #[command(visible_alias = "mv")]
    Rename {
        /// `[<remote>:]<profile>`
        profile: String,
        /// The new name.
        new_name: String,
    },
    /// Delete profiles.
    #[command(visible_alias = "rm")]
    Delete {
        /// `[<remote>:]<profile>`
        profile: String,
    },
    /// Get values for profile configuration keys.
    Get {
        /// `[<remote>:]<profile>`
        profile: String,
        /// The key.
        key: String,
    },
    /// Set profile configuration keys.
    Set {
        /// `[<remote>:]<profile>`
        profile: String,
        /// `<key> <value>` or `<key>=<value>...`
        #[arg(required = true)]
        args: Vec<String>,
    },
    /// Unset profile configuration keys.
    Unset {
        /// `[<remote>:]<profile>`
        profile: String,
        /// The key.
        key: String,
    },
    /// Manage devices.
    #[command(subcommand)]
    Device(DeviceCmd),
}

/// `rxc profile device ...`
#[derive(Debug, Subcommand)]
pub enum DeviceCmd {
    /// Add a device to a profile.
    Add {
        /// `[<remote>:]<profile>`
        profile: String,
        /// Device name.
        device: String,
        /// Device type.
        device_type: String,
        /// `key=value` configuration.
        config: Vec<String>,
    },
    /// Remove devices from a profile.
    #[command(visible_alias = "rm")]
    Remove {
        /// `[<remote>:]<profile>`
        profile: String,
        /// Device names.
        #[arg(required = true)]
        devices: Vec<String>,
    },
    /// Get values for device configuration keys.
    Get {
        /// `[<remote>:]<profile>`
        profile: String,
        /// Device name.
        device: String,
        /// The key.
        key: String,
    },
    /// Set device configuration keys.
    Set {
        /// `[<remote>:]<profile>`
        profile: String,
        /// Device name.
        device: String,
        /// `<key> <value>` or `<key>=<value>...`
        #[arg(required = true)]
        args: Vec<String>,
    },
    /// Unset device configuration keys.
    Unset {
        /// `[<remote>:]<profile>`
        profile: String,
        /// Device name.
        device: String,
        /// The key.
        key: String,
    },
    /// List profile devices.
    #[command(visible_alias = "ls")]
    List {
        /// `[<remote>:]<profile>`
        profile: String,
    },
    /// Show full device configuration.
    Show {
        /// `[<remote>:]<profile>`
        profile: String,
    },
}

/// `rxc query ...`
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// `[<remote>:]<API path>`
    pub path: String,
    /// Action (defaults to GET).
    #[arg(short = 'X', long = "request", default_value = "GET")]
    pub method: String,
    /// Input data.
    #[arg(short = 'd', long)]
    pub data: Option<String>,
    /// Wait for the operation to complete.
    #[arg(long)]
    pub wait: bool,
    /// Print the raw response.
    #[arg(long)]
    pub raw: bool,
}

/// `rxc operation ...`
#[derive(Debug, Subcommand)]
pub enum OperationCmd {
    /// List background operations.
    #[command(visible_alias = "ls")]
    List {
        /// `[<remote>:]`
        remote: Option<String>,
    },
    /// Show details on a background operation.
    Show {
        /// `[<remote>:]<operation>`
        operation: String,
    },
    /// Delete a background operation (will attempt to cancel).
    #[command(visible_alias = "rm", visible_alias = "cancel")]
    Delete {
        /// `[<remote>:]<operation>`
        operation: String,
    },
}

/// `rxc monitor ...`
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// `[<remote>:]`
    pub remote: Option<String>,
    /// Event type to listen for.
    #[arg(long = "type")]
    pub types: Vec<String>,
}

/// `rxc remote ...`
#[derive(Debug, Subcommand)]
pub enum RemoteCmd {
    /// Add new remote servers.
    Add {
        /// Remote name.
        name: String,
        /// `https://host[:port]`, `host[:port]`, `unix://path` or a certificate-add token.
        address: String,
        /// Accept certificate.
        #[arg(long)]
        accept_certificate: bool,
        /// Remote admin password.
        #[arg(long, conflicts_with = "token")]
        password: Option<String>,
        /// Remote trust token.
        #[arg(long)]
        token: Option<String>,
    },
    /// List the available remotes.
    #[command(visible_alias = "ls")]
    List,
    /// Remove remotes.
    #[command(visible_alias = "rm")]
    Remove {
        /// Remote name.
        name: String,
    },
    /// Rename remotes.
    #[command(visible_alias = "mv")]
    Rename {
        /// Remote name.
        name: String,
        /// The new name.
        new_name: String,
    },
    /// Set the URL for the remote.
    SetUrl {
        /// Remote name.
        name: String,
        /// The new URL.
        url: String,
    },
    /// Switch the default remote.
    Switch {
        /// Remote name.
        name: String,
    },
    /// Show the default remote.
    GetDefault,
}
