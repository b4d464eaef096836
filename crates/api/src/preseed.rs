use serde::{Deserialize, Serialize};

use crate::{ClusterMemberConfigKey, Config, ProfilesPost, StoragePoolsPost};

/// The `cluster` section of a preseed: `ClusterPut` plus the fields only `init` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct InitClusterPreseed {
    /// The member name.
    #[serde(default)]
    pub server_name: String,
    /// Bootstrap or join.
    #[serde(default)]
    pub enabled: bool,
    /// Values for member-specific keys when joining.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub member_config: Vec<ClusterMemberConfigKey>,
    /// An existing member's address, for a join by trust password.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_address: String,
    /// The cluster certificate (PEM), for a join by trust password.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_certificate: String,
    /// A file holding the cluster certificate.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_certificate_path: String,
    /// This server's address, for a join.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server_address: String,
    /// The trust password.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_password: String,
    /// A join token.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_token: String,
}

/// A network in a preseed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct InitNetwork {
    /// Configuration.
    #[serde(default)]
    pub config: Config,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Network name.
    #[serde(default)]
    pub name: String,
    /// Network type, such as `bridge`.
    #[serde(rename = "type", default)]
    pub network_type: String,
    /// Project.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project: String,
}

/// A project in a preseed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct InitProject {
    /// Configuration.
    #[serde(default)]
    pub config: Config,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Project name.
    #[serde(default)]
    pub name: String,
}

/// `lxd init --preseed` input, and what `--dump` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct InitPreseed {
    /// Server configuration keys; values may be strings, numbers or booleans.
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
    /// Networks.
    #[serde(default)]
    pub networks: Vec<InitNetwork>,
    /// Storage pools.
    #[serde(default)]
    pub storage_pools: Vec<StoragePoolsPost>,
    /// Profiles.
    #[serde(default)]
    pub profiles: Vec<ProfilesPost>,
    /// Projects.
    #[serde(default)]
    pub projects: Vec<InitProject>,
    /// Clustering.
    #[serde(default)]
    pub cluster: Option<InitClusterPreseed>,
}

impl InitPreseed {
    /// Whether the preseed asks for nothing at all.
    pub fn is_empty(&self) -> bool {
        self == &InitPreseed::default()
    }
}
