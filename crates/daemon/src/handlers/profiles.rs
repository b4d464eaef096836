//! `/1.0/profiles`: cluster-wide profiles of the `default` project.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use rxd_api::{Devices, Profile, ProfilePost, ProfilePut, ProfilesPost};
use rxd_db::tables;
use rxd_db::Command;

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::handlers::{recursion, QueryMap};
use crate::response::{check_etag, created, empty, sync, sync_etag, CompareAndSet, JsonBody};
use crate::Daemon;

const PROJECT: &str = "default";

fn to_api(p: tables::Profile) -> Profile {
    Profile {
        config: p.config,
        description: p.description,
        devices: p.devices,
        name: p.name,
        used_by: Vec::new(),
    }
}

fn writable(p: &Profile) -> ProfilePut {
    ProfilePut {
        config: p.config.clone(),
        description: p.description.clone(),
        devices: p.devices.clone(),
    }
}

fn validate_name(name: &str) -> ApiResult<()> {
    crate::names::check("profile", name).map_err(ApiError::bad_request)
}

/// The instance keys a profile may set: LXD's, under their LXD 5.0 and current names.
/// `volatile.*` and `image.*` keys belong to instances only.
const PROFILE_KEYS: &[&str] = &[
    "agent.nic_config",
    "boot.autostart",
    "boot.autostart.delay",
    "boot.autostart.priority",
    "boot.debug_edk2",
    "boot.host_shutdown_timeout",
    "boot.mode",
    "boot.stop.priority",
    "cloud-init.network-config",
    "cloud-init.user-data",
    "cloud-init.vendor-data",
    "cluster.evacuate",
    "limits.cpu",
    "limits.cpu.allowance",
    "limits.cpu.nodes",
    "limits.cpu.pin_strategy",
    "limits.cpu.priority",
    "limits.disk.priority",
    "limits.hugepages.1GB",
    "limits.hugepages.1MB",
    "limits.hugepages.2MB",
    "limits.hugepages.64KB",
    "limits.max_bus_ports",
    "limits.memory",
    "limits.memory.enforce",
    "limits.memory.hugepages",
    "limits.memory.swap",
    "limits.memory.swap.priority",
    "limits.network.priority",
    "limits.processes",
    "linux.kernel_modules",
    "linux.kernel_modules.load",
    "migration.incremental.memory",
    "migration.incremental.memory.goal",
    "migration.incremental.memory.iterations",
    "migration.stateful",
    "nvidia.driver.capabilities",
    "nvidia.require.cuda",
    "nvidia.require.driver",
    "nvidia.runtime",
    "placement.group",
    "raw.apparmor",
    "raw.idmap",
    "raw.lxc",
    "raw.qemu",
    "raw.qemu.conf",
    "raw.seccomp",
    "security.agent.metrics",
    "security.delegate_bpf",
    "security.delegate_bpf.attach_types",
    "security.delegate_bpf.cmd_types",
    "security.delegate_bpf.map_types",
    "security.delegate_bpf.prog_types",
    "security.devlxd",
    "security.devlxd.images",
    "security.devlxd.management.volumes",
    "security.idmap.base",
    "security.idmap.isolated",
    "security.idmap.size",
    "security.nesting",
    "security.privileged",
    "security.protection.delete",
    "security.protection.shift",
    "security.protection.start",
    "security.secureboot",
    "security.sev",
    "security.sev.policy.es",
    "security.sev.session.data",
    "security.sev.session.dh",
    "security.syscalls.allow",
    "security.syscalls.blacklist",
    "security.syscalls.blacklist_compat",
    "security.syscalls.blacklist_default",
    "security.syscalls.deny",
    "security.syscalls.deny_compat",
    "security.syscalls.deny_default",
    "security.syscalls.intercept.bpf",
    "security.syscalls.intercept.bpf.devices",
    "security.syscalls.intercept.mknod",
    "security.syscalls.intercept.mount",
    "security.syscalls.intercept.mount.allowed",
    "security.syscalls.intercept.mount.fuse",
    "security.syscalls.intercept.mount.shift",
    "security.syscalls.intercept.sched_setscheduler",
    "security.syscalls.intercept.setxattr",
    "security.syscalls.intercept.sysinfo",
    "security.syscalls.whitelist",
    "snapshots.expiry",
    "snapshots.pattern",
    "snapshots.schedule",
    "snapshots.schedule.stopped",
    "ubuntu_pro.guest_attach",
];

/// Prefixes whose sub-keys are free-form (LXD's).
const PROFILE_KEY_PREFIXES: &[&str] = &[
    "user.",
    "environment.",
    "linux.sysctl.",
    "limits.kernel.",
    "cloud-init.ssh-keys.",
];

/// The longest config key.
const MAX_KEY_LEN: usize = 256;

/// Checks a profile's config keys as LXD does for keys that may apply to any instance type,
/// plus a length and alphabet for the free-form ones.
fn validate_config(config: &tables::Config) -> ApiResult<()> {
    for (key, value) in config {
        let refuse = |reason: String| Err(ApiError::bad_request(reason));
        if key.is_empty() {
            return refuse("Config keys must not be empty".into());
        }
        if key.len() > MAX_KEY_LEN {
            return refuse(format!(
                "Config keys must be at most {MAX_KEY_LEN} characters long (one has {})",
                key.len()
            ));
        }
        if !key.chars().all(|c| c.is_ascii_graphic()) {
            return refuse(format!(
                "Invalid config key {key:?}: keys can only contain printable ASCII characters without spaces"
            ));
        }
        if key.starts_with("volatile.") {
            return refuse("Volatile keys can only be set on instances".into());
        }
        if key.starts_with("image.") {
            return refuse("Image keys can only be set on instances".into());
        }
        if PROFILE_KEYS.contains(&key.as_str()) {
            continue;
        }
        match PROFILE_KEY_PREFIXES.iter().find(|p| key.starts_with(*p)) {
            Some(p) if key.len() == p.len() => return refuse(format!("{key:?} requires a subkey")),
            Some(&"environment.") if value.contains('\n') => {
                return refuse("Environment variables cannot contain line breaks".into())
            }
            Some(_) => {}
            None => return refuse(format!("Unknown configuration key: {key:?}")),
        }
    }
    Ok(())
}

/// Checks devices against what exists: every device has a type, disks name a real pool.
async fn validate_devices(d: &Daemon, devices: &Devices) -> ApiResult<()> {
    let (pools, networks) = d
        .db()
        .read(|c| Ok((tables::storage_pools(c)?, tables::networks(c)?)))
        .await?;
    for (name, dev) in devices {
        let Some(kind) = dev.get("type") else {
            return Err(ApiError::bad_request(format!(
                "Device validation failed for {name:?}: Missing device type"
            )));
        };
        match kind.as_str() {
            "disk" => {
                if !dev.contains_key("path") {
                    return Err(ApiError::bad_request(format!(
                        "Device validation failed for {name:?}: Disk entry is missing the required \"path\" property"
                    )));
                }
                if let Some(pool) = dev.get("pool") {
                    if !pools.iter().any(|p| &p.name == pool) {
                        return Err(ApiError::bad_request(format!(
                            "Device validation failed for {name:?}: Storage pool {pool:?} not found"
                        )));
                    }
                }
            }
            "nic" => {
                match (dev.get("network"), dev.get("nictype")) {
                    (Some(net), None) => {
                        if !networks.iter().any(|n| &n.name == net) {
                            return Err(ApiError::bad_request(format!(
                                "Device validation failed for {name:?}: Network {net:?} not found"
                            )));
                        }
                    }
                    (None, Some(nictype)) => {
                        let needs_parent =
                            ["bridged", "macvlan", "sriov", "physical", "ipvlan"].contains(&nictype.as_str());
                        if needs_parent && !dev.contains_key("parent") {
                            return Err(ApiError::bad_request(format!(
                                "Device validation failed for {name:?}: Missing \"parent\" for nictype {nictype:?}"
                            )));
                        }
                    }
                    (Some(_), Some(_)) => {
                        return Err(ApiError::bad_request(format!(
                            "Device validation failed for {name:?}: Cannot use \"nictype\" property in conjunction with \"network\" property"
                        )))
                    }
                    (None, None) => {
                        return Err(ApiError::bad_request(format!(
                            "Device validation failed for {name:?}: No \"network\" or \"nictype\" property"
                        )))
                    }
                }
            }
            "unix-char" | "unix-block" | "usb" | "gpu" | "infiniband" | "proxy"
            | "unix-hotplug" | "tpm" | "pci" | "none" => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "Device validation failed for {name:?}: Unsupported device type {other:?}"
                )))
            }
        }
    }
    Ok(())
}

/// `GET /1.0/profiles`.
pub async fn profiles_get(State(d): State<Arc<Daemon>>, q: QueryMap) -> ApiResult<Response> {
    let profiles = d.db().read(|c| tables::profiles(c, PROJECT)).await?;
    if recursion(&q) {
        Ok(sync(profiles.into_iter().map(to_api).collect::<Vec<_>>()))
    } else {
        Ok(sync(
            profiles
                .iter()
                .map(|p| format!("/1.0/profiles/{}", p.name))
                .collect::<Vec<_>>(),
        ))
    }
}

async fn load(d: &Daemon, name: &str) -> ApiResult<Profile> {
    Ok(to_api(load_row(d, name).await?))
}

/// The profile's row, read linearizably.
async fn load_row(d: &Daemon, name: &str) -> ApiResult<tables::Profile> {
    let name = name.to_string();
    Ok(d.db()
        .read(move |c| tables::profile(c, PROJECT, &name))
        .await?)
}

/// `GET /1.0/profiles/{name}`.
pub async fn profile_get(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let p = load(&d, &name).await?;
    let etag = rxd_api::etag(&writable(&p));
    Ok(sync_etag(p, &etag))
}

/// `POST /1.0/profiles`.
pub async fn profiles_post(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    JsonBody(post): JsonBody<ProfilesPost>,
) -> ApiResult<Response> {
    validate_name(&post.name)?;
    validate_config(&post.config)?;
    validate_devices(&d, &post.devices).await?;
    d.db()
        .propose(Command::CreateProfile(tables::Profile {
            project: PROJECT.into(),
            name: post.name.clone(),
            description: post.description,
            config: post.config,
            devices: post.devices,
        }))
        .await?
        .map_err(|e| match e {
            rxd_db::ApplyError::Exists { .. } => {
                ApiError::conflict(format!("Profile {:?} already exists", post.name))
            }
            other => other.into(),
        })?;
    let url = format!("/1.0/profiles/{}", post.name);
    d.events
        .lifecycle("profile-created", &url, None, Some(caller.requestor()));
    Ok(created(&url))
}

async fn update(
    d: &Daemon,
    caller: &Caller,
    name: &str,
    headers: &HeaderMap,
    put: ProfilePut,
    merge: bool,
) -> ApiResult<Response> {
    // Only the keys given are checked, so a key stored before it was refused does not block
    // every later change.
    validate_config(&put.config)?;
    let mut cas = CompareAndSet::new(headers);
    loop {
        let row = load_row(d, name).await?;
        let current = to_api(row.clone());
        check_etag(headers, &rxd_api::etag(&writable(&current)))?;
        let (config, devices, description) = if merge {
            let mut config = current.config;
            config.extend(put.config.clone());
            let mut devices = current.devices;
            devices.extend(put.devices.clone());
            let description = if put.description.is_empty() {
                current.description
            } else {
                put.description.clone()
            };
            (config, devices, description)
        } else {
            (
                put.config.clone(),
                put.devices.clone(),
                put.description.clone(),
            )
        };
        validate_devices(d, &devices).await?;
        let write = Command::UpdateProfile(tables::Profile {
            project: PROJECT.into(),
            name: name.to_string(),
            description,
            config,
            devices,
        })
        .only_if(rxd_db::Expected::Profile(row));
        if cas.outcome(d.db().propose(write).await?)?.is_some() {
            break;
        }
    }
    d.events.lifecycle(
        "profile-updated",
        &format!("/1.0/profiles/{name}"),
        None,
        Some(caller.requestor()),
    );
    Ok(empty())
}

/// `PUT /1.0/profiles/{name}`.
pub async fn profile_put(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    JsonBody(put): JsonBody<ProfilePut>,
) -> ApiResult<Response> {
    update(&d, &caller, &name, &headers, put, false).await
}

/// `PATCH /1.0/profiles/{name}`.
pub async fn profile_patch(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    JsonBody(put): JsonBody<ProfilePut>,
) -> ApiResult<Response> {
    update(&d, &caller, &name, &headers, put, true).await
}

/// `POST /1.0/profiles/{name}`: rename.
pub async fn profile_post(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(post): JsonBody<ProfilePost>,
) -> ApiResult<Response> {
    if name == "default" {
        return Err(ApiError::forbidden_with(
            "The \"default\" profile cannot be renamed",
        ));
    }
    validate_name(&post.name)?;
    d.db()
        .propose(Command::RenameProfile {
            project: PROJECT.into(),
            name: name.clone(),
            new_name: post.name.clone(),
        })
        .await?
        .map_err(|e| match e {
            rxd_db::ApplyError::Exists { .. } => {
                ApiError::conflict(format!("Name {:?} already in use", post.name))
            }
            other => other.into(),
        })?;
    let url = format!("/1.0/profiles/{}", post.name);
    d.events.lifecycle(
        "profile-renamed",
        &url,
        Some(serde_json::json!({"old_name": name})),
        Some(caller.requestor()),
    );
    Ok(created(&url))
}

/// `DELETE /1.0/profiles/{name}`.
pub async fn profile_delete(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    if name == "default" {
        return Err(ApiError::forbidden_with(
            "The \"default\" profile cannot be deleted",
        ));
    }
    d.db()
        .propose(Command::DeleteProfile {
            project: PROJECT.into(),
            name: name.clone(),
        })
        .await??;
    d.events.lifecycle(
        "profile-deleted",
        &format!("/1.0/profiles/{name}"),
        None,
        Some(caller.requestor()),
    );
    Ok(empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_keys_follow_lxd() {
        let long = format!("user.{}", "k".repeat(100_000));
        let cases: &[(&str, &str, bool)] = &[
            ("limits.cpu", "2", true),
            ("limits.memory", "1GiB", true),
            ("security.nesting", "true", true),
            ("security.privileged", "false", true),
            ("boot.autostart", "true", true),
            ("user.anything-at.all", "x", true),
            ("environment.HTTP_PROXY", "http://p", true),
            ("linux.sysctl.net.ipv4.ip_forward", "1", true),
            ("cloud-init.user-data", "#cloud-config", true),
            ("", "x", false),
            ("user.a\0b", "x", false),
            ("user.a b", "x", false),
            (&long, "x", false),
            ("user.", "x", false),
            ("volatile.uuid", "x", false),
            ("image.os", "x", false),
            ("bogus", "x", false),
            ("limits.bogus", "x", false),
            ("environment.X", "a\nb", false),
        ];
        for (key, value, ok) in cases {
            let config = tables::Config::from([(key.to_string(), value.to_string())]);
            assert_eq!(validate_config(&config).is_ok(), *ok, "{key:?}");
        }
    }
}
