//! `rxc storage list|show|create|edit|delete|info`, with `--target` for member-specific pools
//! and `show --resources` for a pool's space.

use std::collections::BTreeMap;

use rxd_api::{ResourcesStoragePool, StoragePool, StoragePoolPut, StoragePoolsPost};

use crate::args::StorageCmd;
use crate::output::{self, bytes_iec, Format};
use crate::{print, CliError, Ctx, Result};

/// The writable part of a pool as an edit may hold it, tolerating the read-only fields that
/// `storage show` prints.
#[derive(serde::Deserialize, Default)]
struct PoolEdit {
    #[serde(default)]
    config: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    description: String,
}

const EDIT_TEMPLATE: &str = "### This is a YAML representation of a storage pool.
### Any line starting with a '#' will be ignored.
###
### A storage pool consists of a set of configuration items.
###
### An example would look like:
### name: default
### driver: zfs
### used_by: []
### config:
###   size: \"61203283968\"
###   source: /home/chb/mnt/lxd_test/default.img
###   zfs.pool_name: default";

pub async fn run(ctx: &Ctx, cmd: StorageCmd) -> Result<()> {
    match cmd {
        StorageCmd::List { remote } => {
            let (client, _, _) = ctx.resolve_opt(&remote)?;
            let (server, _) = client.server().await?;
            let clustered = server.environment.is_some_and(|e| e.server_clustered);
            let pools = client.storage_pools().await?;
            print(&list_text(ctx.format, &pools, clustered)?)
        }
        StorageCmd::Show {
            pool,
            resources,
            target,
        } => {
            let (client, _, name) = ctx.resolve(&pool)?;
            if resources {
                let res = client
                    .storage_pool_resources(&name, target.as_deref())
                    .await?;
                return print(&crate::yaml::to_string(&res)?);
            }
            let (mut p, _) = client.storage_pool(&name, target.as_deref()).await?;
            if let Some(used) = p.used_by.as_mut() {
                used.sort();
            }
            print(&crate::yaml::to_string(&p)?)
        }
        StorageCmd::Create {
            pool,
            driver,
            config,
            target,
            description,
        } => {
            let (client, _, name) = ctx.resolve(&pool)?;
            let post = StoragePoolsPost {
                name: name.clone(),
                driver,
                description: description.unwrap_or_default(),
                config: crate::parse_key_values(&config)?.into_iter().collect(),
            };
            client.create_storage_pool(&post, target.as_deref()).await?;
            if !ctx.quiet {
                match target {
                    Some(member) => {
                        print(&format!("Storage pool {name} pending on member {member}\n"))?
                    }
                    None => print(&format!("Storage pool {name} created\n"))?,
                }
            }
            Ok(())
        }
        StorageCmd::Edit { pool, target } => {
            let (client, _, name) = ctx.resolve(&pool)?;
            let (current, etag) = client.storage_pool(&name, target.as_deref()).await?;
            let writable = StoragePoolPut {
                config: current.config,
                description: current.description,
            };
            let (client, name, target) = (&client, &name, target.as_deref());
            crate::edit::edit(
                EDIT_TEMPLATE,
                &writable,
                &etag,
                move |edited: PoolEdit, etag| async move {
                    let put = StoragePoolPut {
                        config: crate::edit::stringify_config(edited.config),
                        description: edited.description,
                    };
                    client
                        .update_storage_pool(name, &put, etag.as_deref(), target)
                        .await
                        .map_err(CliError::from)
                },
            )
            .await
        }
        StorageCmd::Delete { pool } => {
            let (client, _, name) = ctx.resolve(&pool)?;
            client.delete_storage_pool(&name).await?;
            if !ctx.quiet {
                print(&format!("Storage pool {name} deleted\n"))?;
            }
            Ok(())
        }
        StorageCmd::Set { pool, args, target } => {
            let pairs = key_values(&args)?;
            change(ctx, &pool, target.as_deref(), |config| {
                for (k, v) in pairs {
                    config.insert(k, v);
                }
                Ok(())
            })
            .await
        }
        StorageCmd::Unset { pool, key, target } => {
            change(ctx, &pool, target.as_deref(), |config| {
                if config.remove(&key).is_none() {
                    return Err(crate::CliError::BadArgument {
                        message: format!("The key {key:?} does not exist"),
                    });
                }
                Ok(())
            })
            .await
        }
        StorageCmd::Get { pool, key, target } => {
            let (client, _, name) = ctx.resolve(&pool)?;
            if name.is_empty() {
                return Err(crate::CliError::Missing { what: "pool name" });
            }
            let (p, _) = client.storage_pool(&name, target.as_deref()).await?;
            // As lxc, a key that is not set prints nothing.
            match p.config.get(&key) {
                Some(v) => print(&format!("{v}\n")),
                None => Ok(()),
            }
        }
        StorageCmd::Info { pool, target } => {
            let (client, _, name) = ctx.resolve(&pool)?;
            let (p, _) = client.storage_pool(&name, target.as_deref()).await?;
            let res = client
                .storage_pool_resources(&name, target.as_deref())
                .await?;
            print(&info_text(&p, &res))
        }
    }
}

/// `KEY VALUE` or `KEY=VALUE...`, as lxc takes them.
fn key_values(args: &[String]) -> Result<Vec<(String, String)>> {
    if args.len() == 2 && !args[0].contains('=') {
        return Ok(vec![(args[0].clone(), args[1].clone())]);
    }
    args.iter()
        .map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| crate::CliError::BadArgument {
                    message: format!("Invalid key=value configuration: {a}"),
                })
        })
        .collect()
}

/// Reads the pool, changes its configuration with `f`, and writes it back with its ETag.
async fn change(
    ctx: &Ctx,
    pool: &str,
    target: Option<&str>,
    f: impl FnOnce(&mut rxd_api::Config) -> Result<()>,
) -> Result<()> {
    let (client, _, name) = ctx.resolve(pool)?;
    let (current, etag) = client.storage_pool(&name, target).await?;
    let mut config = current.config;
    f(&mut config)?;
    let put = StoragePoolPut {
        config,
        description: current.description,
    };
    Ok(client
        .update_storage_pool(&name, &put, Some(&etag), target)
        .await?)
}

/// `storage info`: the pool, its space and what uses it, in lxc's layout.
pub fn info_text(p: &StoragePool, res: &ResourcesStoragePool) -> String {
    let mut out = format!(
        "info:\n  description: \"{}\"\n  driver: {}\n  name: {}\n  space used: {}\n  total space: {}\n",
        p.description,
        p.driver,
        p.name,
        bytes_iec(res.space.used, 2),
        bytes_iec(res.space.total, 2)
    );
    let users: Vec<&String> = p.used_by.iter().flatten().collect();
    if !users.is_empty() {
        out.push_str("used by:\n  profiles:\n");
        for u in users {
            out.push_str(&format!("  - {}\n", u.rsplit('/').next().unwrap_or(u)));
        }
    }
    out
}

/// `storage list` in every format; standalone servers get a SOURCE column.
pub fn list_text(format: Format, pools: &[StoragePool], clustered: bool) -> Result<String> {
    let mut rows: Vec<Vec<String>> = pools
        .iter()
        .map(|p| {
            let mut row = vec![p.name.clone(), p.driver.clone()];
            if !clustered {
                row.push(p.config.get("source").cloned().unwrap_or_default());
            }
            row.push(p.description.clone());
            row.push(p.used_by.as_ref().map_or(0, Vec::len).to_string());
            row.push(p.status.to_uppercase());
            row
        })
        .collect();
    output::sort_naturally(&mut rows);
    let mut header = vec!["NAME", "DRIVER"];
    if !clustered {
        header.push("SOURCE");
    }
    header.extend(["DESCRIPTION", "USED BY", "STATE"]);
    output::render(format, &header, &rows, pools)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOLS: &str = r#"[{"config":{},"description":"","name":"local","driver":"dir","used_by":["/1.0/profiles/default"],"status":"Created","locations":["node1"]}]"#;

    #[test]
    fn storage_list_matches_lxc() {
        let pools: Vec<StoragePool> = serde_json::from_str(POOLS).unwrap();
        // Printed by `lxc storage list [-f ...]` on a one-member cluster (LXD 5.0.2).
        assert_eq!(
            list_text(Format::Table, &pools, true).unwrap(),
            "\
+-------+--------+-------------+---------+---------+
| NAME  | DRIVER | DESCRIPTION | USED BY |  STATE  |
+-------+--------+-------------+---------+---------+
| local | dir    |             | 1       | CREATED |
+-------+--------+-------------+---------+---------+
"
        );
        assert_eq!(
            list_text(Format::Csv, &pools, true).unwrap(),
            "local,dir,,1,CREATED\n"
        );
        assert_eq!(
            list_text(Format::Json, &pools, true).unwrap(),
            format!("{POOLS}\n")
        );
        assert_eq!(
            list_text(Format::Yaml, &pools, true).unwrap(),
            "- config: {}\n  description: \"\"\n  name: local\n  driver: dir\n  used_by:\n  - /1.0/profiles/default\n  status: Created\n  locations:\n  - node1\n"
        );
    }

    #[test]
    fn storage_info_shows_space_as_lxc() {
        let pools: Vec<StoragePool> = serde_json::from_str(POOLS).unwrap();
        let res = ResourcesStoragePool {
            space: rxd_api::ResourcesStoragePoolUsage {
                used: 5 * 1024 * 1024 * 1024 + 1024 * 1024 * 1024 / 4,
                total: 100 * 1024 * 1024 * 1024,
            },
            ..Default::default()
        };
        assert_eq!(
            info_text(&pools[0], &res),
            "info:\n  description: \"\"\n  driver: dir\n  name: local\n  space used: 5.25GiB\n  total space: 100.00GiB\nused by:\n  profiles:\n  - default\n"
        );
    }

    #[test]
    fn standalone_list_has_a_source_column() {
        let mut pools: Vec<StoragePool> = serde_json::from_str(POOLS).unwrap();
        pools[0]
            .config
            .insert("source".into(), "/var/lib/rxd/storage-pools/local".into());
        let csv = list_text(Format::Csv, &pools, false).unwrap();
        assert_eq!(
            csv,
            "local,dir,/var/lib/rxd/storage-pools/local,,1,CREATED\n"
        );
        let table = list_text(Format::Table, &pools, false).unwrap();
        assert!(table.contains("| NAME  | DRIVER |              SOURCE              |"));
    }

    #[test]
    fn edits_tolerate_show_output() {
        let shown = "config:\n  size: 10\n  source: /x\ndescription: d\nname: local\ndriver: dir\nused_by: []\nstatus: Created\nlocations:\n- node1\n";
        let e: PoolEdit = crate::edit::parse(shown).unwrap();
        let config = crate::edit::stringify_config(e.config);
        assert_eq!(config["size"], "10");
        assert_eq!(config["source"], "/x");
        assert_eq!(e.description, "d");
    }
}
