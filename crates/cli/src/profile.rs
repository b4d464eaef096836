//! `rxc profile list|show|create|edit|copy|rename|delete|device add|device remove`.

use std::collections::BTreeMap;

use rxd_api::{Profile, ProfilePut, ProfilesPost};

use crate::args::{DeviceCmd, ProfileCmd};
use crate::output::{self, Format};
use crate::{print, CliError, Ctx, Result};

/// The writable part of a profile as an edit may hold it.
#[derive(serde::Deserialize, Default)]
struct ProfileEdit {
    #[serde(default)]
    config: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    devices: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
}

const EDIT_TEMPLATE: &str = "### This is a YAML representation of the profile.
### Any line starting with a '# will be ignored.
###
### A profile consists of a set of configuration items followed by a set of
### devices.
###
### An example would look like:
### name: onenic
### config:
###   raw.lxc: lxc.aa_profile=unconfined
### devices:
###   eth0:
###     nictype: bridged
###     parent: lxdbr0
###     type: nic
###
### Note that the name is shown but cannot be changed";

fn writable(p: &Profile) -> ProfilePut {
    ProfilePut {
        config: p.config.clone(),
        description: p.description.clone(),
        devices: p.devices.clone(),
    }
}

pub async fn run(ctx: &Ctx, cmd: ProfileCmd) -> Result<()> {
    match cmd {
        ProfileCmd::List { remote } => {
            let (client, _, _) = ctx.resolve_opt(&remote)?;
            let profiles = client.profiles().await?;
            print(&list_text(ctx.format, &profiles)?)
        }
        ProfileCmd::Show { profile } => {
            let (client, _, name) = ctx.resolve(&profile)?;
            let (p, _) = client.profile(&name).await?;
            print(&crate::yaml::to_string(&p)?)
        }
        ProfileCmd::Create { profile } => {
            let (client, _, name) = ctx.resolve(&profile)?;
            let post = ProfilesPost {
                name: name.clone(),
                ..Default::default()
            };
            client.create_profile(&post).await?;
            if !ctx.quiet {
                print(&format!("Profile {name} created\n"))?;
            }
            Ok(())
        }
        ProfileCmd::Edit { profile } => {
            let (client, _, name) = ctx.resolve(&profile)?;
            let (current, etag) = client.profile(&name).await?;
            let (client, name) = (&client, &name);
            crate::edit::edit(
                EDIT_TEMPLATE,
                &current,
                &etag,
                move |e: ProfileEdit, etag| async move {
                    let put = ProfilePut {
                        config: crate::edit::stringify_config(e.config),
                        description: e.description,
                        devices: e
                            .devices
                            .into_iter()
                            .map(|(k, v)| (k, crate::edit::stringify_config(v)))
                            .collect(),
                    };
                    client
                        .update_profile(name, &put, etag.as_deref())
                        .await
                        .map_err(CliError::from)
                },
            )
            .await
        }
        ProfileCmd::Copy { source, target } => {
            let (src, _, src_name) = ctx.resolve(&source)?;
            let (dst, _, mut dst_name) = ctx.resolve(&target)?;
            if dst_name.is_empty() {
                dst_name = src_name.clone();
            }
            let (p, _) = src.profile(&src_name).await?;
            let post = ProfilesPost {
                name: dst_name,
                config: p.config,
                description: p.description,
                devices: p.devices,
            };
            Ok(dst.create_profile(&post).await?)
        }
        ProfileCmd::Rename { profile, new_name } => {
            let (client, _, name) = ctx.resolve(&profile)?;
            client.rename_profile(&name, &new_name).await?;
            if !ctx.quiet {
                print(&format!("Profile {name} renamed to {new_name}\n"))?;
            }
            Ok(())
        }
        ProfileCmd::Delete { profile } => {
            let (client, _, name) = ctx.resolve(&profile)?;
            client.delete_profile(&name).await?;
            if !ctx.quiet {
                print(&format!("Profile {name} deleted\n"))?;
            }
            Ok(())
        }
        ProfileCmd::Get { profile, key } => {
            let (client, _, name) = ctx.resolve_named(&profile, "profile name")?;
            let (p, _) = client.profile(&name).await?;
            print(&format!("{}\n", p.config.get(&key).map_or("", |v| v)))
        }
        ProfileCmd::Set { profile, args } => {
            let entries = crate::get_config(&args)?;
            update(ctx, &profile, |put| {
                put.config.extend(entries);
                Ok(())
            })
            .await
        }
        ProfileCmd::Unset { profile, key } => {
            // lxc sets the empty value, which LXD does not store.
            update(ctx, &profile, |put| {
                put.config.remove(&key);
                Ok(())
            })
            .await
        }
        ProfileCmd::Device(cmd) => device(ctx, cmd).await,
    }
}

/// Reads a profile, changes its writable part and puts it back under its ETag.
async fn update(
    ctx: &Ctx,
    profile: &str,
    change: impl FnOnce(&mut ProfilePut) -> Result<()>,
) -> Result<()> {
    let (client, _, name) = ctx.resolve_named(profile, "profile name")?;
    let (p, etag) = client.profile(&name).await?;
    let mut put = writable(&p);
    change(&mut put)?;
    Ok(client.update_profile(&name, &put, Some(&etag)).await?)
}

fn no_device() -> CliError {
    CliError::BadArgument {
        message: "Device doesn't exist".into(),
    }
}

async fn device(ctx: &Ctx, cmd: DeviceCmd) -> Result<()> {
    match cmd {
        DeviceCmd::Add {
            profile,
            device,
            device_type,
            config,
        } => {
            let (client, _, name) = ctx.resolve(&profile)?;
            let (p, etag) = client.profile(&name).await?;
            let mut put = writable(&p);
            if put.devices.contains_key(&device) {
                return Err(CliError::BadArgument {
                    message: "The device already exists".into(),
                });
            }
            let mut dev: BTreeMap<String, String> =
                crate::parse_key_values(&config)?.into_iter().collect();
            dev.insert("type".into(), device_type);
            put.devices.insert(device.clone(), dev);
            client.update_profile(&name, &put, Some(&etag)).await?;
            if !ctx.quiet {
                print(&format!("Device {device} added to {name}\n"))?;
            }
            Ok(())
        }
        DeviceCmd::Remove { profile, devices } => {
            let (client, _, name) = ctx.resolve(&profile)?;
            let (p, etag) = client.profile(&name).await?;
            let mut put = writable(&p);
            for d in &devices {
                if put.devices.remove(d).is_none() {
                    return Err(CliError::BadArgument {
                        message: "Device doesn't exist".into(),
                    });
                }
            }
            client.update_profile(&name, &put, Some(&etag)).await?;
            if !ctx.quiet {
                print(&format!(
                    "Device {} removed from {name}\n",
                    devices.join(", ")
                ))?;
            }
            Ok(())
        }
        DeviceCmd::Get {
            profile,
            device,
            key,
        } => {
            let (client, _, name) = ctx.resolve_named(&profile, "profile name")?;
            let (p, _) = client.profile(&name).await?;
            let dev = p.devices.get(&device).ok_or_else(no_device)?;
            print(&format!("{}\n", dev.get(&key).map_or("", |v| v)))
        }
        DeviceCmd::Set {
            profile,
            device,
            args,
        } => {
            let entries = crate::get_config(&args)?;
            update(ctx, &profile, |put| {
                put.devices
                    .get_mut(&device)
                    .ok_or_else(no_device)?
                    .extend(entries);
                Ok(())
            })
            .await
        }
        DeviceCmd::Unset {
            profile,
            device,
            key,
        } => {
            update(ctx, &profile, |put| {
                put.devices
                    .get_mut(&device)
                    .ok_or_else(no_device)?
                    .remove(&key);
                Ok(())
            })
            .await
        }
        DeviceCmd::List { profile } => {
            let (client, _, name) = ctx.resolve_named(&profile, "profile name")?;
            let (p, _) = client.profile(&name).await?;
            let names: Vec<&str> = p.devices.keys().map(String::as_str).collect();
            print(&format!("{}\n", names.join("\n")))
        }
        DeviceCmd::Show { profile } => {
            let (client, _, name) = ctx.resolve_named(&profile, "profile name")?;
            let (p, _) = client.profile(&name).await?;
            print(&crate::yaml::to_string(&p.devices)?)
        }
    }
}

/// `profile list` in every format.
pub fn list_text(format: Format, profiles: &[Profile]) -> Result<String> {
    let mut rows: Vec<Vec<String>> = profiles
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.description.clone(),
                p.used_by.len().to_string(),
            ]
        })
        .collect();
    output::sort_naturally(&mut rows);
    output::render(format, &["NAME", "DESCRIPTION", "USED BY"], &rows, profiles)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILES: &str = r#"[{"config":{},"description":"Default LXD profile","devices":{"root":{"path":"/","pool":"local","type":"disk"}},"name":"default","used_by":[]}]"#;

    #[test]
    fn profile_list_matches_lxc() {
        let profiles: Vec<Profile> = serde_json::from_str(PROFILES).unwrap();
        // Printed by `lxc profile list [-f ...]` (LXD 5.0.2).
        assert_eq!(
            list_text(Format::Table, &profiles).unwrap(),
            "\
+---------+---------------------+---------+
|  NAME   |     DESCRIPTION     | USED BY |
+---------+---------------------+---------+
| default | Default LXD profile | 0       |
+---------+---------------------+---------+
"
        );
        assert_eq!(
            list_text(Format::Compact, &profiles).unwrap(),
            "   NAME        DESCRIPTION      USED BY  \n  default  Default LXD profile  0        \n"
        );
        assert_eq!(
            list_text(Format::Csv, &profiles).unwrap(),
            "default,Default LXD profile,0\n"
        );
        assert_eq!(
            list_text(Format::Json, &profiles).unwrap(),
            format!("{PROFILES}\n")
        );
        assert_eq!(
            list_text(Format::Yaml, &profiles).unwrap(),
            "- config: {}\n  description: Default LXD profile\n  devices:\n    root:\n      path: /\n      pool: local\n      type: disk\n  name: default\n  used_by: []\n"
        );
    }
}
