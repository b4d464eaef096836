//! `dir`: a plain directory, `$DIR/storage-pools/<pool>` or an empty `source` linked there.

use std::path::PathBuf;

use rxd_db::tables::Config;

use super::{host, Driver, PoolPaths, StorageError};

/// The `dir` driver; it works on every host.
pub struct Dir;

impl Driver for Dir {
    fn name(&self) -> &'static str {
        "dir"
    }

    fn probe(&self) -> Result<(), String> {
        Ok(())
    }

    fn keys(&self) -> &'static [&'static str] {
        &[
            "source",
            "volatile.initial_source",
            "rsync.bwlimit",
            "rsync.compression",
        ]
    }

    fn create(
        &self,
        pool: PoolPaths<'_>,
        _cluster: &Config,
        mut config: Config,
    ) -> Result<Config, StorageError> {
        let default = pool.mount_path();
        match config.get("source").filter(|s| !s.is_empty()) {
            None => {
                std::fs::create_dir(&default).map_err(|source| StorageError::Io {
                    action: "create storage pool directory",
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
                        action: "read",
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
                    std::os::unix::fs::symlink(&src, &default).map_err(|source| {
                        StorageError::Io {
                            action: "link storage pool directory",
                            path: default.clone(),
                            source,
                        }
                    })?;
                }
            }
        }
        Ok(config)
    }

    /// Nothing to mount; the directory (or the `source` it links to) must still be there.
    fn mount(
        &self,
        pool: PoolPaths<'_>,
        _cluster: &Config,
        _member: &Config,
    ) -> Result<(), StorageError> {
        let path = pool.mount_path();
        if !path.is_dir() {
            return Err(StorageError::SourceMissing(path));
        }
        Ok(())
    }

    fn delete(&self, pool: PoolPaths<'_>, config: &Config) {
        let default = pool.mount_path();
        let given = config.get("source").map(PathBuf::from);
        if given.as_deref().is_some_and(|g| g != default) {
            // The link goes; the user's directory and its content stay.
            host::remove_file(&default);
        } else if let Err(e) = std::fs::remove_dir_all(&default) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("Failed to remove storage pool {}: {e}", pool.name);
            }
        }
    }
}
