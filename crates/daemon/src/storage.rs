//! Storage drivers. Each works on this member's side of a pool: making its directory or
//! device ready, and removing it again.

use std::path::{Path, PathBuf};

use rxd_db::tables::Config;

/// Why a driver refused.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The driver is not known.
    #[error("Storage driver {0:?} is not supported on this host")]
    Unsupported(String),
    /// A config key the driver does not take.
    #[error("Invalid storage pool configuration key {key:?} for driver {driver:?}")]
    UnknownKey {
        /// The driver.
        driver: String,
        /// The key.
        key: String,
    },
    /// The source path is missing.
    #[error("Source path '{0}' doesn't exist")]
    SourceMissing(PathBuf),
    /// The source path holds data.
    #[error("Source path '{0}' isn't empty")]
    SourceNotEmpty(PathBuf),
    /// The filesystem refused.
    #[error("Failed to create storage pool directory '{path}': {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Drivers that work on this host.
pub fn supported() -> Vec<&'static str> {
    vec!["dir"]
}

const DIR_KEYS: &[&str] = &[
    "source",
    "volatile.initial_source",
    "rsync.bwlimit",
    "rsync.compression",
];

/// Checks a pool's configuration before anything is made.
pub fn validate(driver: &str, config: &Config) -> Result<(), StorageError> {
    if !supported().contains(&driver) {
        return Err(StorageError::Unsupported(driver.to_string()));
    }
    for key in config.keys() {
        if !DIR_KEYS.contains(&key.as_str()) && !key.starts_with("user.") {
            return Err(StorageError::UnknownKey {
                driver: driver.to_string(),
                key: key.clone(),
            });
        }
    }
    Ok(())
}

/// Makes this member's side of a `dir` pool and returns its member config with `source` set.
/// `Ok` means the directory exists and is ours to remove with [`delete`].
pub fn create(
    dir: &Path,
    name: &str,
    driver: &str,
    mut config: Config,
) -> Result<Config, StorageError> {
    validate(driver, &config)?;
    let default = dir.join("storage-pools").join(name);
    match config.get("source").filter(|s| !s.is_empty()) {
        None => {
            std::fs::create_dir(&default).map_err(|source| StorageError::Io {
                path: default.clone(),
                source,
            })?;
            config.insert("source".into(), default.display().to_string());
        }
        Some(src) => {
            let src = PathBuf::from(src);
            if !src.is_dir() {
                return Err(StorageError::SourceMissing(src));
            }
            let empty = std::fs::read_dir(&src)
                .map_err(|source| StorageError::Io {
                    path: src.clone(),
                    source,
                })?
                .next()
                .is_none();
            if !empty {
                return Err(StorageError::SourceNotEmpty(src));
            }
            // The pool is reached through the usual path, as LXD does with a symlink.
            if default != src {
                std::os::unix::fs::symlink(&src, &default).map_err(|source| StorageError::Io {
                    path: default.clone(),
                    source,
                })?;
            }
        }
    }
    Ok(config)
}

/// Removes this member's side of a pool: the default directory, or the link to a given source
/// (whose content is the user's and stays).
pub fn delete(dir: &Path, name: &str, config: &Config) {
    let default = dir.join("storage-pools").join(name);
    let given = config.get("source").map(PathBuf::from);
    let result = if given.as_deref().is_some_and(|g| g != default) {
        std::fs::remove_file(&default)
    } else {
        std::fs::remove_dir_all(&default)
    };
    if let Err(e) = result {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("Failed to remove storage pool {name}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_pool_makes_and_removes_its_directory() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("storage-pools")).unwrap();
        let cfg = create(tmp.path(), "p", "dir", Config::new()).unwrap();
        let path = tmp.path().join("storage-pools/p");
        assert!(path.is_dir());
        assert_eq!(cfg["source"], path.display().to_string());
        delete(tmp.path(), "p", &cfg);
        assert!(!path.exists());
    }

    #[test]
    fn bad_sources_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("storage-pools")).unwrap();
        let missing = Config::from([("source".into(), "/nonexistent/x".into())]);
        assert!(matches!(
            create(tmp.path(), "p", "dir", missing),
            Err(StorageError::SourceMissing(_))
        ));
        let full = tmp.path().join("full");
        std::fs::create_dir(&full).unwrap();
        std::fs::write(full.join("f"), "x").unwrap();
        let cfg = Config::from([("source".into(), full.display().to_string())]);
        assert!(matches!(
            create(tmp.path(), "p", "dir", cfg),
            Err(StorageError::SourceNotEmpty(_))
        ));
        assert!(matches!(
            create(tmp.path(), "p", "zfs", Config::new()),
            Err(StorageError::Unsupported(_))
        ));
        let bad = Config::from([("bogus".into(), "1".into())]);
        assert!(matches!(
            create(tmp.path(), "p", "dir", bad),
            Err(StorageError::UnknownKey { .. })
        ));
    }
}
