//! The questions of `lxd init`, in its order, with its defaults; and `--auto`.

use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::path::Path;

use rxd_api::{Config, InitClusterPreseed, InitPreseed, ProfilesPost, StoragePoolsPost};
use rxd_client::Client;

use crate::ask_join::{ask_join, JoinEnv, Network};
use crate::{Asker, InitArgs, InitError};

/// The first global address of this host, LXD's default answer for the cluster address.
fn default_address() -> String {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return "127.0.0.1".into();
    };
    for a in addrs {
        let Some(ip) = a
            .address
            .as_ref()
            .and_then(|s| s.as_sockaddr_in())
            .map(|s| s.ip())
        else {
            continue;
        };
        let ip = IpAddr::V4(ip);
        if !ip.is_loopback() && !ip.is_unspecified() {
            return ip.to_string();
        }
    }
    "127.0.0.1".into()
}

/// This host's name, the default member name.
pub(crate) fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// `address` with `port` added when it has none, as LXD canonicalises addresses.
pub(crate) fn with_port(address: &str, port: u16) -> String {
    if address.parse::<std::net::SocketAddr>().is_ok() {
        return address.to_string();
    }
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
        Ok(ip) => format!("{ip}:{port}"),
        Err(_)
            if address
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok()) =>
        {
            address.to_string()
        }
        Err(_) => format!("{address}:{port}"),
    }
}

fn check_cluster_address(address: &str) -> Result<(), String> {
    let host = address.trim();
    if host.is_empty() || host == "0.0.0.0" || host == "::" || host == "[::]" {
        return Err("Invalid IP address or DNS name".into());
    }
    let full = with_port(host, 8443);
    if let Ok(sa) = full.parse::<std::net::SocketAddr>() {
        // The address must be one this host can listen on.
        let probe = std::net::SocketAddr::new(sa.ip(), 0);
        std::net::TcpListener::bind(probe)
            .map_err(|e| format!("Can't bind address {full:?}: {e}"))?;
    }
    Ok(())
}

fn root_profile(pool: &str) -> ProfilesPost {
    let mut root = Config::new();
    root.insert("path".into(), "/".into());
    root.insert("pool".into(), pool.into());
    root.insert("type".into(), "disk".into());
    ProfilesPost {
        config: Config::new(),
        description: String::new(),
        devices: [("root".to_string(), root)].into_iter().collect(),
        name: "default".into(),
    }
}

fn nic_device(parent: &str) -> Config {
    let bridged = std::path::Path::new("/sys/class/net")
        .join(parent)
        .join("bridge")
        .exists();
    let mut nic = Config::new();
    nic.insert("name".into(), "eth0".into());
    nic.insert(
        "nictype".into(),
        if bridged { "bridged" } else { "macvlan" }.into(),
    );
    nic.insert("parent".into(), parent.into());
    nic.insert("type".into(), "nic".into());
    nic
}

async fn local_drivers(client: &Client) -> Result<Vec<String>, InitError> {
    let (server, _) = client.server().await?;
    Ok(server
        .environment
        .map(|e| {
            e.storage_supported_drivers
                .into_iter()
                .filter(|d| !d.remote)
                .map(|d| d.name)
                .collect()
        })
        .unwrap_or_else(|| vec!["dir".into()]))
}

const PRINT_QUESTION: &str =
    "Would you like a YAML \"lxd init\" preseed to be printed? (yes/no) [default=no]: ";

/// Asks `lxd init`'s questions for the daemon whose data directory is `dir`; returns the
/// preseed and whether to print it. Joining a cluster makes this process do the trust step
/// with the daemon's `server.crt`, unless `dry_run` (see `ask_join`).
pub async fn ask<R: BufRead, W: Write>(
    client: &Client,
    q: &mut Asker<R, W>,
    dir: &Path,
    dry_run: bool,
) -> Result<(InitPreseed, bool), InitError> {
    let env = Network {
        dir: dir.to_path_buf(),
    };
    ask_with(client, q, &env, dry_run).await
}

async fn ask_with<R: BufRead, W: Write, E: JoinEnv>(
    client: &Client,
    q: &mut Asker<R, W>,
    env: &E,
    dry_run: bool,
) -> Result<(InitPreseed, bool), InitError> {
    let mut p = InitPreseed::default();
    let drivers = local_drivers(client).await?;
    let clustering = q.bool(
        "Would you like to use LXD clustering? (yes/no) [default=no]: ",
        false,
    )?;
    if clustering {
        let address = q.checked(
            &format!(
                "What IP address or DNS name should be used to reach this server? [default={}]: ",
                default_address()
            ),
            &default_address(),
            check_cluster_address,
        )?;
        let address = with_port(&address, 8443);
        if q.bool(
            "Are you joining an existing cluster? (yes/no) [default=no]: ",
            false,
        )? {
            // Joining asks nothing else: the cluster's pools, profiles and config replace ours.
            p.cluster = Some(ask_join(q, env, &address, dry_run).await?);
            let print = q.bool(PRINT_QUESTION, false)?;
            return Ok((p, print));
        }
        let name = q.string(
            &format!(
                "What member name should be used to identify this server in the cluster? [default={}]: ",
                hostname()
            ),
            &hostname(),
        )?;
        p.config.insert("core.https_address".into(), address.into());
        if q.bool(
            "Setup password authentication on the cluster? (yes/no) [default=no]: ",
            false,
        )? {
            let pw = q.new_password("Trust password for new clients: ")?;
            p.config.insert("core.trust_password".into(), pw.into());
        }
        if q.bool(
            "Do you want to configure a new local storage pool? (yes/no) [default=yes]: ",
            true,
        )? {
            let driver = choose_driver(q, &drivers)?;
            p.storage_pools.push(StoragePoolsPost {
                name: "local".into(),
                driver,
                ..Default::default()
            });
            p.profiles.push(root_profile("local"));
        }
        if q.bool(
            "Do you want to configure a new remote storage pool? (yes/no) [default=no]: ",
            false,
        )? {
            return Err(InitError::Invalid(
                "No remote storage backend is available on this host".into(),
            ));
        }
        ask_maas(q)?;
        ask_existing_interface(q, &mut p)?;
        p.cluster = Some(InitClusterPreseed {
            server_name: name,
            enabled: true,
            ..Default::default()
        });
    } else {
        if q.bool(
            "Do you want to configure a new storage pool? (yes/no) [default=yes]: ",
            true,
        )? {
            let name = q.string(
                "Name of the new storage pool [default=default]: ",
                "default",
            )?;
            let driver = choose_driver(q, &drivers)?;
            p.storage_pools.push(StoragePoolsPost {
                name: name.clone(),
                driver,
                ..Default::default()
            });
            p.profiles.push(root_profile(&name));
        }
        ask_maas(q)?;
        ask_existing_interface(q, &mut p)?;
        if q.bool("Would you like the LXD server to be available over the network? (yes/no) [default=no]: ", false)? {
            let host = q.string("Address to bind LXD to (not including port) [default=all]: ", "all")?;
            let port = q.checked("Port to bind LXD to [default=8443]: ", "8443", |v| {
                v.parse::<u16>().map(|_| ()).map_err(|_| "Invalid port number".to_string())
            })?;
            let host = if host == "all" { "[::]".to_string() } else { host };
            let address = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            p.config.insert("core.https_address".into(), address.into());
            let pw = q.new_password("Trust password for new clients: ")?;
            p.config.insert("core.trust_password".into(), pw.into());
        }
    }
    if !q.bool(
        "Would you like stale cached images to be updated automatically? (yes/no) [default=yes]: ",
        true,
    )? {
        p.config
            .insert("images.auto_update_interval".into(), "0".into());
    }
    let print = q.bool(PRINT_QUESTION, false)?;
    Ok((p, print))
}

fn choose_driver<R: BufRead, W: Write>(
    q: &mut Asker<R, W>,
    drivers: &[String],
) -> Result<String, InitError> {
    match drivers {
        [] => Err(InitError::Invalid(
            "No storage backend is available on this host".into(),
        )),
        [only] => Ok(only.clone()),
        many => {
            let default = if many.iter().any(|d| d == "btrfs") {
                "btrfs"
            } else {
                &many[0]
            };
            q.checked(
                &format!(
                    "Name of the storage backend to use ({}) [default={default}]: ",
                    many.join(", ")
                ),
                default,
                |v| {
                    if many.iter().any(|d| d == v) {
                        Ok(())
                    } else {
                        Err(format!("Invalid input: {v}"))
                    }
                },
            )
        }
    }
}

fn ask_maas<R: BufRead, W: Write>(q: &mut Asker<R, W>) -> Result<(), InitError> {
    if q.bool(
        "Would you like to connect to a MAAS server? (yes/no) [default=no]: ",
        false,
    )? {
        return Err(InitError::Invalid("MAAS is not supported by rxd".into()));
    }
    Ok(())
}

fn ask_existing_interface<R: BufRead, W: Write>(
    q: &mut Asker<R, W>,
    p: &mut InitPreseed,
) -> Result<(), InitError> {
    if !q.bool(
        "Would you like to configure LXD to use an existing bridge or host interface? (yes/no) [default=no]: ",
        false,
    )? {
        return Ok(());
    }
    let name = q.checked("Name of the existing bridge or host interface: ", "", |v| {
        if !v.is_empty() && std::path::Path::new("/sys/class/net").join(v).exists() {
            Ok(())
        } else {
            Err("The requested interface doesn't exist. Please choose another one.".into())
        }
    })?;
    let dev = nic_device(&name);
    match p.profiles.iter_mut().find(|pr| pr.name == "default") {
        Some(profile) => {
            profile.devices.insert("eth0".into(), dev);
        }
        None => p.profiles.push(ProfilesPost {
            name: "default".into(),
            devices: [("eth0".to_string(), dev)].into_iter().collect(),
            ..Default::default()
        }),
    }
    Ok(())
}

/// `--auto`: a standalone server with a `default` pool, optionally listening on the network.
pub async fn auto(client: &Client, args: &InitArgs) -> Result<InitPreseed, InitError> {
    let drivers = local_drivers(client).await?;
    let backend = args.storage_backend.clone().unwrap_or_else(|| "dir".into());
    if !drivers.contains(&backend) {
        return Err(InitError::Invalid(format!(
            "The requested backend '{backend}' isn't available on your system (missing tools)"
        )));
    }
    if args.network_address.is_none()
        && (args.network_port.is_some() || args.trust_password.is_some())
    {
        return Err(InitError::Usage(
            "--network-port and --trust-password require --network-address",
        ));
    }
    let mut p = InitPreseed::default();
    if let Some(addr) = &args.network_address {
        let address = with_port(addr, args.network_port.unwrap_or(8443));
        p.config.insert("core.https_address".into(), address.into());
        if let Some(pw) = &args.trust_password {
            p.config
                .insert("core.trust_password".into(), pw.clone().into());
        }
    }
    let (pools, profile) = (
        client.storage_pools().await?,
        client.profile("default").await?.0,
    );
    if pools.is_empty() {
        p.storage_pools.push(StoragePoolsPost {
            name: "default".into(),
            driver: backend,
            ..Default::default()
        });
        if !profile.devices.contains_key("root") {
            p.profiles.push(root_profile("default"));
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_added_like_lxd() {
        assert_eq!(with_port("127.0.0.5", 8443), "127.0.0.5:8443");
        assert_eq!(with_port("127.0.0.5:9000", 8443), "127.0.0.5:9000");
        assert_eq!(with_port("::1", 8443), "[::1]:8443");
        assert_eq!(with_port("node.example", 8443), "node.example:8443");
    }

    #[test]
    fn wildcard_cluster_address_is_refused() {
        assert!(check_cluster_address("").is_err());
        assert!(check_cluster_address("0.0.0.0").is_err());
        assert!(check_cluster_address("127.0.0.1").is_ok());
    }
}
