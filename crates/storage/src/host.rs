//! What the drivers ask of the host: its tools, its mounts, its filesystems and devices.

use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::StorageError;

/// Where a host tool is, looking in `PATH` and then the usual system directories (a daemon
/// started by a service manager may have a short `PATH`).
pub fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Runs a host tool; `what` names the step for the error ("Failed to format '/x'").
pub fn run(tool: &str, args: &[&std::ffi::OsStr], what: &str) -> Result<String, StorageError> {
    let refused = |output: String| StorageError::Command {
        what: what.to_string(),
        output,
    };
    let path = program(tool).ok_or_else(|| refused(format!("{tool} is not installed")))?;
    let out = Command::new(path)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| refused(format!("cannot run {tool}: {e}")))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let mut msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if msg.is_empty() {
        msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
    }
    Err(refused(msg.lines().collect::<Vec<_>>().join("; ")))
}

/// Whether a filesystem type is known to the running kernel.
pub fn kernel_has_filesystem(fs: &str) -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .map(|t| t.lines().any(|l| l.split_whitespace().last() == Some(fs)))
        .unwrap_or(false)
}

fn unescape_mount_path(field: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let mut out = Vec::new();
    let b = field.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let octal = std::str::from_utf8(&b[i + 1..i + 4]).ok();
            if let Some(v) = octal.and_then(|o| u8::from_str_radix(o, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `path` is a mount point.
pub fn is_mountpoint(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|m| Path::new(&unescape_mount_path(m)) == path)
    })
}

/// Whether `path` lies on a btrfs filesystem.
pub fn on_btrfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type() == nix::sys::statfs::BTRFS_SUPER_MAGIC)
        .unwrap_or(false)
}

/// The size of the filesystem holding `path`, in bytes.
pub fn filesystem_size(path: &Path) -> Option<u64> {
    let s = nix::sys::statfs::statfs(path).ok()?;
    // The block count and size are never negative on Linux.
    #[allow(clippy::unnecessary_cast)]
    Some((s.blocks() as u64).saturating_mul(s.block_size() as u64))
}

/// The space and inodes of the filesystem holding `path`, as LXD reports a pool's.
// The counts are never negative on Linux; their types differ by architecture.
#[allow(clippy::unnecessary_cast)]
pub fn usage(path: &Path) -> nix::Result<rxd_api::ResourcesStoragePool> {
    let s = nix::sys::statvfs::statvfs(path)?;
    let frag = s.fragment_size() as u64;
    let (blocks, free) = (s.blocks() as u64, s.blocks_free() as u64);
    let (files, files_free) = (s.files() as u64, s.files_free() as u64);
    Ok(rxd_api::ResourcesStoragePool {
        space: rxd_api::ResourcesStoragePoolUsage {
            used: blocks.saturating_sub(free).saturating_mul(frag),
            total: blocks.saturating_mul(frag),
        },
        inodes: rxd_api::ResourcesStoragePoolUsage {
            used: files.saturating_sub(files_free),
            total: files,
        },
    })
}

/// Whether `path` is a block device.
pub fn is_block_device(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.file_type().is_block_device())
        .unwrap_or(false)
}

/// Whether a block device is held: mounted, or part of another pool or device. The kernel
/// refuses an exclusive open of a device that is.
pub fn device_in_use(path: &Path) -> bool {
    let excl = nix::fcntl::OFlag::O_EXCL.bits();
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(excl)
        .open(path)
    {
        Ok(_) => false,
        Err(e) => e.raw_os_error() == Some(nix::errno::Errno::EBUSY as i32),
    }
}

/// The kind of data `blkid` recognises on a device (`ext4`, `btrfs`, `dos`, ...), if any.
pub fn device_signature(path: &Path) -> Option<String> {
    let tool = program("blkid")?;
    let out = Command::new(tool)
        .args(["-p", "-o", "export"])
        .arg(path)
        .output()
        .ok()?;
    // blkid answers 2 when it finds nothing.
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k).map(str::to_string))
    };
    field("TYPE=")
        .or_else(|| field("PTTYPE=").map(|t| format!("{t} partition table")))
        .or_else(|| Some("data".to_string()))
}

/// Makes a directory, refusing one that exists.
pub fn make_dir(path: &Path) -> Result<(), StorageError> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(StorageError::PathExists(path.to_path_buf()))
        }
        Err(source) => Err(StorageError::Io {
            action: "create",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Unmounts `path` if it is mounted; a busy mount is detached lazily so that the pool can go.
pub fn unmount(path: &Path) -> Result<(), StorageError> {
    if !is_mountpoint(path) {
        return Ok(());
    }
    let what = format!("Failed to unmount '{}'", path.display());
    if run("umount", &[path.as_os_str()], &what).is_ok() {
        return Ok(());
    }
    run("umount", &["-l".as_ref(), path.as_os_str()], &what).map(|_| ())
}

/// The loop devices (`/dev/loopN`) whose backing file is `file`.
fn loop_devices_of(file: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("loop/backing_file"))
                .is_ok_and(|b| Path::new(b.trim()) == file)
        })
        .map(|e| Path::new("/dev").join(e.file_name()))
        .collect()
}

/// Detaches every loop device backed by `file` and waits (at most 5 s) until the kernel has
/// let them go. The autoclear of `mount -o loop` runs after `umount` returns, so without this
/// a stopped daemon or a deleted pool could leave a device behind for a moment.
pub fn release_loop_devices(file: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let devices = loop_devices_of(file);
        if devices.is_empty() {
            return;
        }
        if std::time::Instant::now() >= deadline {
            tracing::warn!("Loop devices still hold {}: {devices:?}", file.display());
            return;
        }
        for d in &devices {
            // Fails harmlessly when the autoclear got there first.
            let _ = run("losetup", &["-d".as_ref(), d.as_os_str()], "detach");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Removes a file, quietly when it is gone already.
pub fn remove_file(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("Failed to remove {}: {e}", path.display());
        }
    }
}

/// Removes an empty directory, quietly when it is gone already.
pub fn remove_dir(path: &Path) {
    if let Err(e) = std::fs::remove_dir(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("Failed to remove {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape_mount_path("/a\\040b"), "/a b");
        assert_eq!(unescape_mount_path("/plain"), "/plain");
        assert_eq!(unescape_mount_path("/x\\134y"), "/x\\y");
    }
}
