//! Storage drivers. Each works on this member's side of a pool: making its directory, loop
//! file or filesystem ready, mounting it again when the daemon starts, and removing it.
//!
//! ```text
//!   probe (once, first use) ──> registry: dir, btrfs, zfs, lvm, each working or with a reason
//!   validate(driver, config) ──> known driver? usable here? keys and values
//!   create(cluster keys, member keys) ──> driver makes its side ──> member keys to store
//!   start: mount_all ──> every pool this member has ──> driver.mount
//!   delete / shutdown ──> driver.delete / driver.unmount
//! ```
//!
//! Only `dir` and `btrfs` are implemented; `zfs` and `lvm` are recognised so that a user who
//! asks for them learns why this host cannot serve them.

mod btrfs;
mod dir;
mod host;
mod unavailable;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rxd_db::tables::{self, Config};

/// Parses a pool `size` (LXD's byte sizes, [`rxd_api::parse_size`]).
pub fn parse_size(value: &str) -> Result<u64, StorageError> {
    rxd_api::parse_size(value).map_err(|reason| StorageError::InvalidSize {
        value: value.to_string(),
        reason,
    })
}

/// Why a driver refused.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The driver is not one rxd knows.
    #[error("Unknown storage driver {0:?}")]
    UnknownDriver(String),
    /// The driver is known but cannot work on this host.
    #[error("Storage driver {driver:?} cannot be used on this host: {reason}")]
    Unavailable {
        /// The driver.
        driver: String,
        /// What this host lacks.
        reason: String,
    },
    /// A config key the driver does not take.
    #[error("Invalid storage pool configuration key {key:?} for driver {driver:?}")]
    UnknownKey {
        /// The driver.
        driver: String,
        /// The key.
        key: String,
    },
    /// A `size` that cannot be parsed.
    #[error("Invalid size {value:?}: {reason}")]
    InvalidSize {
        /// What was given.
        value: String,
        /// Why it is not a size.
        reason: String,
    },
    /// The pool's name cannot be a file name under the data directory.
    #[error("{0}")]
    InvalidName(String),
    /// A `source` that is not an absolute path.
    #[error("Source path '{0}' isn't absolute")]
    SourceNotAbsolute(PathBuf),
    /// The source path is missing.
    #[error("Source path '{0}' doesn't exist")]
    SourceMissing(PathBuf),
    /// The source path holds data.
    #[error("Source path '{0}' isn't empty")]
    SourceNotEmpty(PathBuf),
    /// The source block device holds a filesystem or other signature.
    #[error("Source path '{path}' isn't empty: it holds a {kind} signature")]
    SourceHoldsData {
        /// The device.
        path: PathBuf,
        /// What `blkid` found on it.
        kind: String,
    },
    /// The source is mounted or held by someone else (another pool, a filesystem).
    #[error("Source path '{0}' is in use")]
    SourceInUse(PathBuf),
    /// The source is a directory on a filesystem the driver cannot use.
    #[error("Source path '{0}' is not on a btrfs filesystem")]
    SourceNotBtrfs(PathBuf),
    /// The source is neither a directory nor a block device.
    #[error("Source path '{0}' is neither a directory nor a block device")]
    SourceNotUsable(PathBuf),
    /// Something the pool needs already exists, left by someone else.
    #[error("Storage pool path '{0}' already exists")]
    PathExists(PathBuf),
    /// The filesystem refused.
    #[error("Failed to {action} '{path}': {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A host tool refused; `output` is what it printed.
    #[error("{what}: {output}")]
    Command {
        /// What was being done, naming the thing.
        what: String,
        /// The tool's message.
        output: String,
    },
}

/// Where a pool lives on this member. It is made only from a name that is one plain file
/// name, so every path it gives is a direct child of a directory under the data directory.
/// (New names follow the stricter rule of `names`; this one also admits pools named before
/// that rule, so that they can still be mounted and removed.)
#[derive(Debug, Clone, Copy)]
pub struct PoolPaths<'a> {
    dir: &'a Path,
    name: &'a str,
}

impl<'a> PoolPaths<'a> {
    /// The paths of pool `name` under the data directory `dir`, or why the name cannot be one.
    pub fn new(dir: &'a Path, name: &'a str) -> Result<PoolPaths<'a>, StorageError> {
        if name.is_empty() || name.starts_with('.') || name.contains(['/', '\0']) {
            return Err(StorageError::InvalidName(format!(
                "Invalid storage pool name {name:?}: it must be a file name under the data directory"
            )));
        }
        Ok(PoolPaths { dir, name })
    }

    /// `$DIR/storage-pools/<pool>`: where the pool is reached (and mounted).
    pub fn mount_path(&self) -> PathBuf {
        self.dir.join("storage-pools").join(self.name)
    }

    /// `$DIR/disks/<pool>.img`: LXD's loop file for a pool without a `source`.
    pub fn loop_path(&self) -> PathBuf {
        self.dir.join("disks").join(format!("{}.img", self.name))
    }
}

/// One storage driver. `create` and `delete` are the member's own side of a pool; the
/// cluster-wide record is the caller's.
pub trait Driver: Send + Sync {
    /// The name in the API (`dir`, `btrfs`, ...).
    fn name(&self) -> &'static str;
    /// Checked once: `Err(reason)` when this host cannot run the driver.
    fn probe(&self) -> Result<(), String>;
    /// Keys the driver takes, besides `user.*`.
    fn keys(&self) -> &'static [&'static str];
    /// Checks the values of the keys; the key names were checked already.
    fn validate_values(&self, _config: &Config) -> Result<(), StorageError> {
        Ok(())
    }
    /// Makes this member's side and returns the member keys to store. `Err` leaves nothing
    /// behind.
    fn create(
        &self,
        pool: PoolPaths<'_>,
        cluster: &Config,
        member: Config,
    ) -> Result<Config, StorageError>;
    /// Mounts the pool again when the daemon starts; nothing to do when it is mounted.
    fn mount(
        &self,
        _pool: PoolPaths<'_>,
        _cluster: &Config,
        _member: &Config,
    ) -> Result<(), StorageError> {
        Ok(())
    }
    /// Unmounts the pool when the daemon stops.
    fn unmount(&self, _pool: PoolPaths<'_>, _member: &Config) -> Result<(), StorageError> {
        Ok(())
    }
    /// Removes this member's side: what the driver made, never the content of a user's
    /// device or directory.
    fn delete(&self, pool: PoolPaths<'_>, member: &Config);
}

struct Registered {
    driver: Box<dyn Driver>,
    unavailable: Option<String>,
}

/// Every driver rxd knows, probed once.
fn registry() -> &'static [Registered] {
    static REGISTRY: OnceLock<Vec<Registered>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let drivers: Vec<Box<dyn Driver>> = vec![
            Box::new(dir::Dir),
            Box::new(btrfs::Btrfs),
            Box::new(unavailable::Zfs),
            Box::new(unavailable::Lvm),
        ];
        drivers
            .into_iter()
            .map(|driver| {
                let unavailable = driver.probe().err();
                if let Some(reason) = &unavailable {
                    tracing::info!(
                        "Storage driver {} is not available: {reason}",
                        driver.name()
                    );
                }
                Registered {
                    driver,
                    unavailable,
                }
            })
            .collect()
    })
}

/// Probes the drivers now, so that the first request does not pay for it.
pub fn probe() {
    registry();
}

/// Drivers that work on this host, in LXD's order of preference for `lxd init`'s list.
pub fn supported() -> Vec<&'static str> {
    registry()
        .iter()
        .filter(|r| r.unavailable.is_none())
        .map(|r| r.driver.name())
        .collect()
}

fn driver(name: &str) -> Result<&'static dyn Driver, StorageError> {
    let r = registry()
        .iter()
        .find(|r| r.driver.name() == name)
        .ok_or_else(|| StorageError::UnknownDriver(name.to_string()))?;
    match &r.unavailable {
        Some(reason) => Err(StorageError::Unavailable {
            driver: name.to_string(),
            reason: reason.clone(),
        }),
        None => Ok(r.driver.as_ref()),
    }
}

/// Checks a pool's configuration (cluster and member keys, or either) before anything is made.
pub fn validate(driver_name: &str, config: &Config) -> Result<(), StorageError> {
    let d = driver(driver_name)?;
    for key in config.keys() {
        if !d.keys().contains(&key.as_str()) && !key.starts_with("user.") {
            return Err(StorageError::UnknownKey {
                driver: driver_name.to_string(),
                key: key.clone(),
            });
        }
    }
    d.validate_values(config)
}

/// Makes this member's side of a pool from its cluster keys and this member's keys, and
/// returns the member keys to store (`source` set, `size` filled in where the driver has
/// one). `Ok` means it exists and is ours to remove with [`delete`]; `Err` leaves nothing.
pub fn create(
    dir: &Path,
    name: &str,
    driver_name: &str,
    cluster: &Config,
    member: Config,
) -> Result<Config, StorageError> {
    let paths = PoolPaths::new(dir, name)?;
    let mut all = cluster.clone();
    all.extend(member.clone());
    validate(driver_name, &all)?;
    if let Some(source) = member.get("source").filter(|s| !s.is_empty()) {
        if !Path::new(source).is_absolute() {
            return Err(StorageError::SourceNotAbsolute(source.into()));
        }
    }
    driver(driver_name)?.create(paths, cluster, member)
}

/// The space and inodes of pool `name` on this member, or why they cannot be read.
pub fn usage(dir: &Path, name: &str) -> Result<rxd_api::ResourcesStoragePool, StorageError> {
    let path = PoolPaths::new(dir, name)?.mount_path();
    host::usage(&path).map_err(|e| StorageError::Io {
        action: "read the usage of",
        path,
        source: e.into(),
    })
}

/// Removes this member's side of a pool, logging what it cannot remove.
pub fn delete(dir: &Path, name: &str, driver_name: &str, member: &Config) {
    match PoolPaths::new(dir, name).and_then(|p| Ok((p, driver(driver_name)?))) {
        Ok((paths, d)) => d.delete(paths, member),
        Err(e) => tracing::warn!("Cannot remove storage pool {name:?}: {e}"),
    }
}

/// Mounts every pool this member has, as the daemon starts, and answers each pool's name with
/// why it could not be mounted (`None` when it was). A pool that cannot be mounted is logged
/// and left for the user; the daemon still starts.
pub async fn mount_all(
    dir: PathBuf,
    pools: Vec<tables::StoragePool>,
    member_id: u64,
) -> Vec<(String, Option<String>)> {
    let result = tokio::task::spawn_blocking(move || {
        probe();
        let mut outcomes = Vec::new();
        for pool in &pools {
            let Some(mine) = pool
                .members
                .iter()
                .find(|m| m.member_id == member_id && m.state == "Created")
            else {
                continue;
            };
            let mounted = PoolPaths::new(&dir, &pool.name)
                .and_then(|paths| driver(&pool.driver)?.mount(paths, &pool.config, &mine.config));
            let failure = mounted.err().map(|e| {
                let message = format!("Failed to mount storage pool {:?}: {e}", pool.name);
                tracing::error!("{message}");
                message
            });
            outcomes.push((pool.name.clone(), failure));
        }
        outcomes
    })
    .await;
    result.unwrap_or_else(|e| {
        tracing::error!("Mounting storage pools failed: {e}");
        Vec::new()
    })
}

/// Unmounts every pool this member has, as the daemon stops.
pub async fn unmount_all(dir: PathBuf, pools: Vec<tables::StoragePool>, member_id: u64) {
    let result = tokio::task::spawn_blocking(move || {
        for pool in &pools {
            let Some(mine) = pool.members.iter().find(|m| m.member_id == member_id) else {
                continue;
            };
            let unmounted = PoolPaths::new(&dir, &pool.name)
                .and_then(|paths| driver(&pool.driver)?.unmount(paths, &mine.config));
            if let Err(e) = unmounted {
                tracing::warn!("Failed to unmount storage pool {}: {e}", pool.name);
            }
        }
    })
    .await;
    if let Err(e) = result {
        tracing::error!("Unmounting storage pools failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_pool_makes_and_removes_its_directory() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("storage-pools")).unwrap();
        let cfg = create(tmp.path(), "p", "dir", &Config::new(), Config::new()).unwrap();
        let path = tmp.path().join("storage-pools/p");
        assert!(path.is_dir());
        assert_eq!(cfg["source"], path.display().to_string());
        delete(tmp.path(), "p", "dir", &cfg);
        assert!(!path.exists());
    }

    #[test]
    fn bad_sources_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("storage-pools")).unwrap();
        let none = Config::new();
        let missing = Config::from([("source".into(), "/nonexistent/x".into())]);
        assert!(matches!(
            create(tmp.path(), "p", "dir", &none, missing),
            Err(StorageError::SourceMissing(_))
        ));
        let full = tmp.path().join("full");
        std::fs::create_dir(&full).unwrap();
        std::fs::write(full.join("f"), "x").unwrap();
        let cfg = Config::from([("source".into(), full.display().to_string())]);
        assert!(matches!(
            create(tmp.path(), "p", "dir", &none, cfg),
            Err(StorageError::SourceNotEmpty(_))
        ));
        assert!(matches!(
            create(tmp.path(), "p", "nosuch", &none, Config::new()),
            Err(StorageError::UnknownDriver(_))
        ));
        let relative = Config::from([("source".into(), "relative/dir".into())]);
        assert!(matches!(
            create(tmp.path(), "p", "dir", &none, relative),
            Err(StorageError::SourceNotAbsolute(_))
        ));
        let bad = Config::from([("bogus".into(), "1".into())]);
        assert!(matches!(
            create(tmp.path(), "p", "dir", &none, bad),
            Err(StorageError::UnknownKey { .. })
        ));
        assert!(!tmp.path().join("storage-pools/p").exists());
    }

    #[test]
    fn names_outside_the_pools_directory_touch_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir_all(data.join("storage-pools")).unwrap();
        let victim = data.join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join("f"), "x").unwrap();
        for name in ["../victim", "..", ".", "a/../../victim", ""] {
            assert!(matches!(
                create(&data, name, "dir", &Config::new(), Config::new()),
                Err(StorageError::InvalidName(_))
            ));
            delete(&data, name, "dir", &Config::new());
        }
        assert!(victim.join("f").exists());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn zfs_and_lvm_are_recognised_and_say_why_they_cannot_run() {
        for name in ["zfs", "lvm"] {
            match validate(name, &Config::new()) {
                // This host has what the driver needs: only the missing implementation stops it.
                Err(StorageError::Unavailable { reason, .. }) => assert!(!reason.is_empty()),
                other => panic!("{name}: {other:?}"),
            }
            assert!(!supported().contains(&name));
        }
        assert!(supported().contains(&"dir"));
    }

    #[test]
    fn btrfs_sizes_are_checked_before_anything_is_made() {
        if !supported().contains(&"btrfs") {
            return;
        }
        let bad = Config::from([("size".into(), "abc".into())]);
        let err = validate("btrfs", &bad).unwrap_err();
        assert!(err.to_string().starts_with("Invalid size \"abc\""), "{err}");
        let good = Config::from([
            ("size".into(), "5GiB".into()),
            ("btrfs.mount_options".into(), "noatime".into()),
        ]);
        validate("btrfs", &good).unwrap();
    }
}
