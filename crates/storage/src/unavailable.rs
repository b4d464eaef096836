//! `zfs` and `lvm`: recognised, so that a request for them is refused with the reason this
//! host cannot serve them, and never listed in `storage_supported_drivers`.

use rxd_db::tables::Config;

use super::{host, Driver, PoolPaths, StorageError};

/// The first thing this host lacks for a driver rxd does not implement yet.
fn lacking(checks: &[(bool, &str)], driver: &str) -> Result<(), String> {
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, reason)) => Err((*reason).to_string()),
        None => Err(format!(
            "this rxd does not implement the {driver} driver yet"
        )),
    }
}

/// The refusal `create` gives; the registry refuses these drivers before it is reached.
fn refuse(driver: &dyn Driver) -> StorageError {
    StorageError::Unavailable {
        driver: driver.name().to_string(),
        reason: driver.probe().err().unwrap_or_default(),
    }
}

/// ZFS: needs the kernel module and the `zfs`/`zpool` tools.
pub struct Zfs;

impl Driver for Zfs {
    fn name(&self) -> &'static str {
        "zfs"
    }

    fn probe(&self) -> Result<(), String> {
        lacking(
            &[
                (
                    std::path::Path::new("/sys/module/zfs").exists(),
                    "the zfs kernel module is not loaded (/sys/module/zfs is missing)",
                ),
                (
                    host::program("zpool").is_some() && host::program("zfs").is_some(),
                    "the ZFS tools (zpool, zfs) are not installed",
                ),
            ],
            "zfs",
        )
    }

    fn keys(&self) -> &'static [&'static str] {
        &["size", "source", "zfs.pool_name", "zfs.clone_copy"]
    }

    fn create(&self, _: PoolPaths<'_>, _: &Config, _: Config) -> Result<Config, StorageError> {
        Err(refuse(self))
    }

    fn delete(&self, _: PoolPaths<'_>, _: &Config) {}
}

/// LVM: needs the kernel's device-mapper and the LVM tools.
pub struct Lvm;

impl Driver for Lvm {
    fn name(&self) -> &'static str {
        "lvm"
    }

    fn probe(&self) -> Result<(), String> {
        lacking(
            &[
                (
                    std::path::Path::new("/dev/mapper/control").exists(),
                    "the kernel's device-mapper is not available (/dev/mapper/control is missing)",
                ),
                (
                    host::program("lvm").is_some(),
                    "the LVM tools (lvm2) are not installed",
                ),
            ],
            "lvm",
        )
    }

    fn keys(&self) -> &'static [&'static str] {
        &["size", "source", "lvm.vg_name", "lvm.thinpool_name"]
    }

    fn create(&self, _: PoolPaths<'_>, _: &Config, _: Config) -> Result<Config, StorageError> {
        Err(refuse(self))
    }

    fn delete(&self, _: PoolPaths<'_>, _: &Config) {}
}
