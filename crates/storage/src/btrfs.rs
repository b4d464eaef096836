//! `btrfs`, with LXD's three kinds of `source`, always reached at `$DIR/storage-pools/<pool>`:
//!
//! ```text
//!   source empty (or the loop path) ─> sparse $DIR/disks/<pool>.img of `size`
//!                                      (default: 20% of the data directory's filesystem,
//!                                      5GiB to 30GiB) ─> mkfs.btrfs ─> mount -o loop
//!   source = a block device          ─> must be unused and blank ─> mkfs.btrfs ─> mount
//!   source = a path on btrfs         ─> empty directory, or a new subvolume ─> bind mount
//! ```
//!
//! Every step of a creation is undone, in reverse, when a later one fails.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use rxd_db::tables::Config;

use super::{host, parse_size, Driver, PoolPaths, StorageError};

/// LXD's default for `btrfs.mount_options`.
const DEFAULT_MOUNT_OPTIONS: &str = "user_subvol_rm_allowed";

/// The `btrfs` driver.
pub struct Btrfs;

fn mount_options(cluster: &Config) -> &str {
    cluster
        .get("btrfs.mount_options")
        .map(String::as_str)
        .filter(|o| !o.is_empty())
        .unwrap_or(DEFAULT_MOUNT_OPTIONS)
}

/// LXD 5.0's default loop file size: a fifth of the data directory's filesystem, at least
/// 5GiB and at most 30GiB.
fn default_size(dir: &Path) -> String {
    let gib = host::filesystem_size(dir).unwrap_or(0) / (1 << 30) / 5;
    format!("{}GiB", gib.clamp(5, 30))
}

/// Steps to take back, newest first, unless the creation is committed.
#[derive(Default)]
struct Undo(Vec<Step>);

enum Step {
    RemoveDir(PathBuf),
    RemoveFile(PathBuf),
    Unmount(PathBuf),
    Wipe(PathBuf),
    DeleteSubvolume(PathBuf),
}

impl Undo {
    fn push(&mut self, step: Step) {
        self.0.push(step);
    }

    fn commit(mut self) {
        self.0.clear();
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        while let Some(step) = self.0.pop() {
            let result = match &step {
                Step::RemoveDir(p) => {
                    host::remove_dir(p);
                    Ok(())
                }
                Step::RemoveFile(p) => {
                    host::remove_file(p);
                    Ok(())
                }
                Step::Unmount(p) => host::unmount(p),
                Step::Wipe(dev) => host::run(
                    "wipefs",
                    &["-a".as_ref(), dev.as_os_str()],
                    &format!("Failed to wipe '{}'", dev.display()),
                )
                .map(|_| ()),
                Step::DeleteSubvolume(p) => host::run(
                    "btrfs",
                    &["subvolume".as_ref(), "delete".as_ref(), p.as_os_str()],
                    &format!("Failed to delete subvolume '{}'", p.display()),
                )
                .map(|_| ()),
            };
            if let Err(e) = result {
                tracing::warn!("Cannot undo a failed storage pool creation: {e}");
            }
        }
    }
}

fn mkfs(pool: PoolPaths<'_>, target: &Path) -> Result<(), StorageError> {
    host::run(
        "mkfs.btrfs",
        &[
            "-q".as_ref(),
            "-L".as_ref(),
            OsStr::new(pool.name),
            target.as_os_str(),
        ],
        &format!("Failed to format '{}' as btrfs", target.display()),
    )
    .map(|_| ())
}

fn mount(source: &Path, target: &Path, options: &str, loop_file: bool) -> Result<(), StorageError> {
    let options = if loop_file {
        format!("loop,{options}")
    } else {
        options.to_string()
    };
    host::run(
        "mount",
        &[
            "-t".as_ref(),
            "btrfs".as_ref(),
            "-o".as_ref(),
            options.as_ref(),
            source.as_os_str(),
            target.as_os_str(),
        ],
        &format!(
            "Failed to mount '{}' on '{}'",
            source.display(),
            target.display()
        ),
    )
    .map(|_| ())
}

fn bind_mount(source: &Path, target: &Path) -> Result<(), StorageError> {
    host::run(
        "mount",
        &["--bind".as_ref(), source.as_os_str(), target.as_os_str()],
        &format!(
            "Failed to mount '{}' on '{}'",
            source.display(),
            target.display()
        ),
    )
    .map(|_| ())
}

fn is_empty_dir(path: &Path) -> Result<bool, StorageError> {
    Ok(std::fs::read_dir(path)
        .map_err(|source| StorageError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?
        .next()
        .is_none())
}

/// A loop file of `size` under the data directory; returns the size it was made with.
fn create_loop(
    pool: PoolPaths<'_>,
    size: Option<&str>,
    options: &str,
) -> Result<String, StorageError> {
    let size = size
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| default_size(pool.dir));
    let bytes = parse_size(&size)?;
    let file = pool.loop_path();
    let mnt = pool.mount_path();
    let disks = pool.dir.join("disks");
    std::fs::create_dir_all(&disks).map_err(|source| StorageError::Io {
        action: "create",
        path: disks.clone(),
        source,
    })?;
    let mut undo = Undo::default();
    host::make_dir(&mnt)?;
    undo.push(Step::RemoveDir(mnt.clone()));
    let io = |action, source| StorageError::Io {
        action,
        path: file.clone(),
        source,
    };
    let f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(StorageError::PathExists(file));
        }
        Err(e) => return Err(io("create loop file", e)),
    };
    undo.push(Step::RemoveFile(file.clone()));
    f.set_len(bytes).map_err(|e| io("size loop file", e))?;
    drop(f);
    mkfs(pool, &file)?;
    mount(&file, &mnt, options, true)?;
    undo.commit();
    Ok(size)
}

/// An unused, blank block device; returns the `source` to store (its UUID when udev made the
/// `/dev/disk/by-uuid` link, as LXD does, else the device path).
fn create_on_device(
    pool: PoolPaths<'_>,
    device: &Path,
    options: &str,
) -> Result<String, StorageError> {
    if host::device_in_use(device) {
        return Err(StorageError::SourceInUse(device.to_path_buf()));
    }
    if let Some(kind) = host::device_signature(device) {
        return Err(StorageError::SourceHoldsData {
            path: device.to_path_buf(),
            kind,
        });
    }
    let mnt = pool.mount_path();
    let mut undo = Undo::default();
    host::make_dir(&mnt)?;
    undo.push(Step::RemoveDir(mnt.clone()));
    mkfs(pool, device)?;
    // The device was blank, so wiping what we wrote puts it back as it was.
    undo.push(Step::Wipe(device.to_path_buf()));
    mount(device, &mnt, options, false)?;
    undo.commit();
    let uuid = host::run(
        "blkid",
        &[
            "-p".as_ref(),
            "-s".as_ref(),
            "UUID".as_ref(),
            "-o".as_ref(),
            "value".as_ref(),
            device.as_os_str(),
        ],
        "Failed to read the filesystem UUID",
    )
    .map(|u| u.trim().to_string())
    .unwrap_or_default();
    if !uuid.is_empty() && Path::new("/dev/disk/by-uuid").join(&uuid).exists() {
        return Ok(uuid);
    }
    Ok(device.display().to_string())
}

/// An existing btrfs path: an empty directory or subvolume, or a new subvolume whose parent
/// is on btrfs.
fn create_on_path(pool: PoolPaths<'_>, path: &Path) -> Result<(), StorageError> {
    let mnt = pool.mount_path();
    let mut undo = Undo::default();
    if path.exists() {
        if !path.is_dir() {
            return Err(StorageError::SourceNotUsable(path.to_path_buf()));
        }
        if !host::on_btrfs(path) {
            return Err(StorageError::SourceNotBtrfs(path.to_path_buf()));
        }
        if !is_empty_dir(path)? {
            return Err(StorageError::SourceNotEmpty(path.to_path_buf()));
        }
    } else {
        let parent = path.parent().filter(|p| p.is_dir());
        match parent {
            Some(p) if host::on_btrfs(p) => {}
            _ => return Err(StorageError::SourceMissing(path.to_path_buf())),
        }
        host::run(
            "btrfs",
            &["subvolume".as_ref(), "create".as_ref(), path.as_os_str()],
            &format!("Failed to create subvolume '{}'", path.display()),
        )?;
        undo.push(Step::DeleteSubvolume(path.to_path_buf()));
    }
    if path != mnt {
        host::make_dir(&mnt)?;
        undo.push(Step::RemoveDir(mnt.clone()));
        bind_mount(path, &mnt)?;
        undo.push(Step::Unmount(mnt));
    }
    undo.commit();
    Ok(())
}

impl Driver for Btrfs {
    fn name(&self) -> &'static str {
        "btrfs"
    }

    fn probe(&self) -> Result<(), String> {
        if host::program("btrfs").is_none() || host::program("mkfs.btrfs").is_none() {
            return Err("the btrfs tools (btrfs-progs) are not installed".into());
        }
        if !host::kernel_has_filesystem("btrfs") {
            return Err(
                "the kernel has no btrfs support (btrfs is not in /proc/filesystems)".into(),
            );
        }
        Ok(())
    }

    fn keys(&self) -> &'static [&'static str] {
        &[
            "size",
            "source",
            "volatile.initial_source",
            "btrfs.mount_options",
            "rsync.bwlimit",
            "rsync.compression",
            "volume.size",
        ]
    }

    fn validate_values(&self, config: &Config) -> Result<(), StorageError> {
        for key in ["size", "volume.size"] {
            if let Some(v) = config.get(key).filter(|v| !v.is_empty()) {
                parse_size(v)?;
            }
        }
        Ok(())
    }

    fn create(
        &self,
        pool: PoolPaths<'_>,
        cluster: &Config,
        member: Config,
    ) -> Result<Config, StorageError> {
        let options = mount_options(cluster);
        let mut out = member.clone();
        let loop_path = pool.loop_path();
        let source = member.get("source").filter(|s| !s.is_empty());
        match source {
            Some(s) if Path::new(s) != loop_path => {
                out.insert("volatile.initial_source".into(), s.clone());
                // A device or path has its own size.
                out.remove("size");
                let path = PathBuf::from(s);
                if host::is_block_device(&path) {
                    let stored = create_on_device(pool, &path, options)?;
                    out.insert("source".into(), stored);
                } else {
                    create_on_path(pool, &path)?;
                }
            }
            _ => {
                let size = create_loop(pool, member.get("size").map(String::as_str), options)?;
                out.insert("source".into(), loop_path.display().to_string());
                out.insert("size".into(), size);
            }
        }
        Ok(out)
    }

    fn mount(
        &self,
        pool: PoolPaths<'_>,
        cluster: &Config,
        member: &Config,
    ) -> Result<(), StorageError> {
        let mnt = pool.mount_path();
        let source = member.get("source").cloned().unwrap_or_default();
        if host::is_mountpoint(&mnt) || Path::new(&source) == mnt {
            return Ok(());
        }
        std::fs::create_dir_all(&mnt).map_err(|e| StorageError::Io {
            action: "create",
            path: mnt.clone(),
            source: e,
        })?;
        let options = mount_options(cluster);
        let path = PathBuf::from(&source);
        if path == pool.loop_path() {
            if !path.is_file() {
                return Err(StorageError::SourceMissing(path));
            }
            mount(&path, &mnt, options, true)
        } else if path.is_absolute() && host::is_block_device(&path) {
            mount(&path, &mnt, options, false)
        } else if path.is_absolute() {
            if !path.is_dir() {
                return Err(StorageError::SourceMissing(path));
            }
            bind_mount(&path, &mnt)
        } else {
            mount(
                &Path::new("/dev/disk/by-uuid").join(&source),
                &mnt,
                options,
                false,
            )
        }
    }

    fn unmount(&self, pool: PoolPaths<'_>, member: &Config) -> Result<(), StorageError> {
        let mnt = pool.mount_path();
        if member.get("source").map(Path::new) == Some(mnt.as_path()) {
            return Ok(());
        }
        host::unmount(&mnt)?;
        if member.get("source").map(Path::new) == Some(pool.loop_path().as_path()) {
            host::release_loop_devices(&pool.loop_path());
        }
        Ok(())
    }

    fn delete(&self, pool: PoolPaths<'_>, member: &Config) {
        let mnt = pool.mount_path();
        let source = member.get("source").map(PathBuf::from);
        if source.as_deref() == Some(mnt.as_path()) {
            // A subvolume in place of the mount path, made for this pool.
            if let Err(e) = host::run(
                "btrfs",
                &["subvolume".as_ref(), "delete".as_ref(), mnt.as_os_str()],
                &format!("Failed to delete subvolume '{}'", mnt.display()),
            ) {
                tracing::warn!("{e}");
            }
            return;
        }
        if let Err(e) = host::unmount(&mnt) {
            tracing::warn!("Cannot remove storage pool {}: {e}", pool.name);
            return;
        }
        host::remove_dir(&mnt);
        // The loop file is ours; a user's device or directory keeps its content.
        let loop_path = pool.loop_path();
        if source.as_deref() == Some(loop_path.as_path()) {
            host::release_loop_devices(&loop_path);
            host::remove_file(&loop_path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_lxd() {
        assert_eq!(mount_options(&Config::new()), "user_subvol_rm_allowed");
        let custom = Config::from([("btrfs.mount_options".into(), "noatime".into())]);
        assert_eq!(mount_options(&custom), "noatime");
        let size = default_size(Path::new("/"));
        let gib: u64 = size.trim_end_matches("GiB").parse().unwrap();
        assert!((5..=30).contains(&gib), "{size}");
    }
}
