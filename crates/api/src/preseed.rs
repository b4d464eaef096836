use serde::{Deserialize, Serialize};

use crate::{ClusterMemberConfigKey, Config, ProfilesPost, StoragePoolsPost};

/// The `cluster` section of a preseed: `ClusterPut` plus the fields only `init` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct InitClusterPreseed {
    /// The member name.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub server_name: String,
    /// Bootstrap or join.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub enabled: bool,
    /// Values for member-specific keys when joining.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub member_config: Vec<ClusterMemberConfigKey>,
    /// An existing member's address, for a join by trust password.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub cluster_address: String,
    /// The cluster certificate (PEM), for a join by trust password.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub cluster_certificate: String,
    /// This server's address, for a join.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub server_address: String,
    /// The trust password.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub cluster_password: String,
    /// A file holding the cluster certificate.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub cluster_certificate_path: String,
    /// A join token.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub cluster_token: String,
}

/// A network in a preseed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct InitNetwork {
    /// Configuration.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub config: Config,
    /// Free text.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub description: String,
    /// Network name.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub name: String,
    /// Network type, such as `bridge`.
    #[serde(rename = "type", default, deserialize_with = "crate::nullable")]
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
    #[serde(default, deserialize_with = "crate::nullable")]
    pub config: Config,
    /// Free text.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub description: String,
    /// Project name.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub name: String,
}

/// `lxd init --preseed` input, and what `--dump` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct InitPreseed {
    /// Server configuration keys; values may be strings, numbers or booleans.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub config: serde_json::Map<String, serde_json::Value>,
    /// Networks.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub networks: Vec<InitNetwork>,
    /// Storage pools.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub storage_pools: Vec<StoragePoolsPost>,
    /// Profiles.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub profiles: Vec<ProfilesPost>,
    /// Projects.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub projects: Vec<InitProject>,
    /// Clustering.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub cluster: Option<InitClusterPreseed>,
}

impl InitPreseed {
    /// Whether the preseed asks for nothing at all.
    pub fn is_empty(&self) -> bool {
        self == &InitPreseed::default()
    }

    /// Parses a preseed, refusing unknown keys and wrong types with their line and column;
    /// blank text is the empty preseed.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(InitPreseed::default());
        }
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }

    /// The preseed as YAML, in `lxd init`'s layout.
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).expect("preseeds always serialise")
    }
}
