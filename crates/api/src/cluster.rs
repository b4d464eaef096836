use serde::{Deserialize, Serialize};

use crate::Config;

/// A member-specific key a joining server must answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ClusterMemberConfigKey {
    /// `storage-pool` or `network`.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub entity: String,
    /// The pool or network name.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub name: String,
    /// The key.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub key: String,
    /// The value (always "" when listed by the server).
    #[serde(default, deserialize_with = "crate::nullable")]
    pub value: String,
    /// `"<key>" property for storage pool "<name>"`.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub description: String,
}

/// `GET /1.0/cluster`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    /// The member name, empty when not clustered.
    pub server_name: String,
    /// Whether clustering is enabled.
    pub enabled: bool,
    /// Member-specific keys of this member's pools and networks.
    pub member_config: Vec<ClusterMemberConfigKey>,
}

/// `PUT /1.0/cluster/certificate`: a new cluster certificate and its key, both PEM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ClusterCertificatePut {
    /// The certificate (PEM).
    #[serde(default, deserialize_with = "crate::nullable")]
    pub cluster_certificate: String,
    /// Its private key (PEM).
    #[serde(default, deserialize_with = "crate::nullable")]
    pub cluster_certificate_key: String,
}

/// `PUT /1.0/cluster`: bootstrap, join or disable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ClusterPut {
    /// The member name.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub server_name: String,
    /// Enable (bootstrap or join) or disable.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub enabled: bool,
    /// Values for member-specific keys.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub member_config: Option<Vec<ClusterMemberConfigKey>>,
    /// An existing member's address, for a join.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub cluster_address: String,
    /// The cluster certificate (PEM), for a join.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub cluster_certificate: String,
    /// This server's address, for a join.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub server_address: String,
    /// The trust password or the join token.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub cluster_password: String,
    /// The join token (LXD 5.21 sends it here too).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_token: String,
}

/// The writable part of a cluster member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ClusterMemberPut {
    /// Stored and computed roles.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub roles: Vec<String>,
    /// Failure domain.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub failure_domain: String,
    /// Free text.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub description: String,
    /// `scheduler.instance` and `user.*`.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub config: Config,
    /// Cluster groups.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub groups: Vec<String>,
}

/// `GET /1.0/cluster/members/{name}`. The writable fields come first, as LXD 5.0 writes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterMember {
    /// Writable part.
    #[serde(flatten)]
    pub put: ClusterMemberPut,
    /// Member name.
    pub server_name: String,
    /// `https://<cluster.https_address>`.
    pub url: String,
    /// Whether it is a voter or stand-by.
    pub database: bool,
    /// `Online`, `Offline`, `Evacuated` or `Blocked`.
    pub status: String,
    /// Human status.
    pub message: String,
    /// Architecture name.
    pub architecture: String,
}

/// `POST /1.0/cluster/members`: ask for a join token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterMembersPost {
    /// The name the new member will have.
    pub server_name: String,
}

/// The writable part of a cluster group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ClusterGroupPut {
    /// Free text.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub description: String,
    /// The names of its members.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub members: Vec<String>,
}

/// `GET /1.0/cluster/groups/{name}`, in LXD 5.0's field order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterGroup {
    /// Writable part.
    #[serde(flatten)]
    pub put: ClusterGroupPut,
    /// Group name.
    pub name: String,
}

/// `POST /1.0/cluster/groups`: a new group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ClusterGroupsPost {
    /// Writable part.
    #[serde(flatten)]
    pub put: ClusterGroupPut,
    /// Group name.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub name: String,
}

/// `POST /1.0/cluster/groups/{name}`: rename.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ClusterGroupPost {
    /// The new name.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub name: String,
}
