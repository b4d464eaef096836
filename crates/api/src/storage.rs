use serde::{Deserialize, Serialize};

use crate::Config;

/// Member-specific storage pool keys (LXD's list).
pub const POOL_MEMBER_KEYS: &[&str] = &[
    "size",
    "source",
    "volatile.initial_source",
    "zfs.pool_name",
    "lvm.thinpool_name",
    "lvm.vg_name",
];

/// The writable part of a storage pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
// Clients may send back a whole object; like LXD, only the writable part is read.
pub struct StoragePoolPut {
    /// Configuration.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub config: Config,
    /// Free text.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub description: String,
}

/// `POST /1.0/storage-pools`, and an entry of a preseed's `storage_pools`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StoragePoolsPost {
    /// Configuration.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub config: Config,
    /// Free text.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub description: String,
    /// Pool name.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub name: String,
    /// Driver name.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub driver: String,
}

/// `GET /1.0/storage-pools/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoragePool {
    /// Configuration.
    pub config: Config,
    /// Free text.
    pub description: String,
    /// Pool name.
    pub name: String,
    /// Driver name.
    pub driver: String,
    /// URLs of the objects that use it.
    pub used_by: Option<Vec<String>>,
    /// `Pending`, `Created`, `Errored`, `Unknown` or `Unavailable`.
    pub status: String,
    /// Members that have an entry.
    pub locations: Vec<String>,
}

/// Used and total amounts of one resource of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ResourcesStoragePoolUsage {
    /// In use.
    #[serde(default)]
    pub used: u64,
    /// In all.
    #[serde(default)]
    pub total: u64,
}

/// `GET /1.0/storage-pools/{name}/resources`: a member's space and inodes in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ResourcesStoragePool {
    /// Bytes.
    #[serde(default)]
    pub space: ResourcesStoragePoolUsage,
    /// Inodes.
    #[serde(default)]
    pub inodes: ResourcesStoragePoolUsage,
}
