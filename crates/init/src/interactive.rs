//! The questions of `lxd init`, in its order, with its defaults; and `--auto`.

use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::path::Path;

use rxd_api::{Config, InitClusterPreseed, InitPreseed, ProfilesPost, StoragePoolsPost};
use rxd_client::Client;

use crate::ask_join::{ask_join, JoinEnv, Network};
use crate::{Asker, InitArgs, InitError};

/// The first global address of this host, LXD's default answer for the cluster address.
pub(crate) fn default_address() -> String {
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

pub(crate) fn check_cluster_address(address: &str) -> Result<(), String> {
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

pub(crate) async fn local_drivers(client: &Client) -> Result<Vec<String>, InitError> {
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
    ask_with(client, q, &env, &StorageHost::of(dir), dry_run).await
}

async fn ask_with<R: BufRead, W: Write, E: JoinEnv>(
    client: &Client,
    q: &mut Asker<R, W>,
    env: &E,
    storage_host: &StorageHost,
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
            p.storage_pools
                .push(ask_pool(q, &drivers, "local", storage_host)?);
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
            p.storage_pools
                .push(ask_pool(q, &drivers, &name, storage_host)?);
            p.profiles.push(root_profile(&name));
        }
        ask_maas(q)?;
        if !ask_new_bridge(q, &mut p)? {
            ask_existing_interface(q, &mut p)?;
        }
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

/// What the storage questions need to know about the daemon's host: `rxd init` runs beside
/// the daemon, so it looks at the data directory itself, as `lxd init` does.
pub(crate) struct StorageHost {
    /// The data directory, named in the btrfs-subvolume question.
    dir: std::path::PathBuf,
    /// Whether the data directory lies on btrfs.
    on_btrfs: bool,
    /// LXD 5.0's default loop size: a fifth of the data directory's filesystem, 5 to 30 GiB.
    default_gib: u64,
}

impl StorageHost {
    pub(crate) fn of(dir: &Path) -> StorageHost {
        let stat = nix::sys::statfs::statfs(dir).ok();
        let on_btrfs = stat
            .as_ref()
            .is_some_and(|s| s.filesystem_type() == nix::sys::statfs::BTRFS_SUPER_MAGIC);
        // The block count and size are never negative on Linux.
        #[allow(clippy::unnecessary_cast)]
        let bytes = stat
            .map(|s| (s.blocks() as u64).saturating_mul(s.block_size() as u64))
            .unwrap_or(0);
        StorageHost {
            dir: dir.to_path_buf(),
            on_btrfs,
            default_gib: (bytes / (1 << 30) / 5).clamp(5, 30),
        }
    }
}

fn is_block_device(path: &str) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path)
        .map(|m| m.file_type().is_block_device())
        .unwrap_or(false)
}

/// The questions for one pool after its name, in `lxd init`'s order: the backend (only when
/// there is a choice), then the driver's own questions.
pub(crate) fn ask_pool<R: BufRead, W: Write>(
    q: &mut Asker<R, W>,
    drivers: &[String],
    name: &str,
    host: &StorageHost,
) -> Result<StoragePoolsPost, InitError> {
    let has = |d: &str| drivers.iter().any(|x| x == d);
    let driver = match drivers {
        [] => {
            return Err(InitError::Invalid(
                "No storage backend is available on this host".into(),
            ))
        }
        [only] => only.clone(),
        many => {
            let default = if host.on_btrfs && has("btrfs") {
                "btrfs"
            } else if has("zfs") {
                "zfs"
            } else if has("btrfs") {
                "btrfs"
            } else {
                "dir"
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
                        Err("Invalid input, try again.\n".to_string())
                    }
                },
            )?
        }
    };
    let mut pool = StoragePoolsPost {
        name: name.into(),
        driver: driver.clone(),
        ..Default::default()
    };
    if driver == "dir" {
        return Ok(pool);
    }
    let pool_path = host.dir.join("storage-pools").join(name);
    if driver == "btrfs"
        && host.on_btrfs
        && q.bool(
            &format!(
                "Would you like to create a new btrfs subvolume under {}? (yes/no) [default=yes]: ",
                host.dir.display()
            ),
            true,
        )?
    {
        pool.config
            .insert("source".into(), pool_path.display().to_string());
        return Ok(pool);
    }
    let upper = driver.to_uppercase();
    if q.bool(
        &format!("Create a new {upper} pool? (yes/no) [default=yes]: "),
        true,
    )? {
        if q.bool(
            "Would you like to use an existing empty block device (e.g. a disk or partition)? (yes/no) [default=no]: ",
            false,
        )? {
            let device = q.checked("Path to the existing block device: ", "", |p| {
                if is_block_device(p) {
                    Ok(())
                } else {
                    Err(format!("Invalid input: {p:?} is not a block device\n"))
                }
            })?;
            pool.config.insert("source".into(), device);
        } else {
            let default = format!("{}GiB", host.default_gib);
            let mut size = q.checked(
                &format!(
                    "Size in GiB of the new loop device (1GiB minimum) [default={default}]: "
                ),
                &default,
                |v| {
                    let number = v.split("GiB").next().unwrap_or_default();
                    match number.parse::<i64>() {
                        Ok(n) if n >= 1 => Ok(()),
                        Ok(_) => Err("Invalid input: Minimum size is 1GiB\n".to_string()),
                        Err(_) => Err(format!(
                            "Invalid input: strconv.ParseInt: parsing {number:?}: invalid syntax\n"
                        )),
                    }
                },
            )?;
            if !size.ends_with("GiB") {
                size.push_str("GiB");
            }
            pool.config.insert("size".into(), size);
        }
    } else {
        let source = q.string(
            &format!("Name of the existing {upper} pool or dataset: "),
            "",
        )?;
        pool.config.insert("source".into(), source);
    }
    Ok(pool)
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

/// Puts `dev` into the default profile as `eth0`.
fn set_default_nic(p: &mut InitPreseed, dev: Config) {
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
}

fn check_bridge_address(v: &str, family: u8) -> Result<(), String> {
    if v == "auto" || v == "none" {
        return Ok(());
    }
    let (ip, prefix) = v
        .split_once('/')
        .ok_or_else(|| format!("Invalid address {v:?}: use CIDR notation, \"auto\" or \"none\""))?;
    let ok = match (family, ip.parse::<IpAddr>(), prefix.parse::<u8>()) {
        (4, Ok(IpAddr::V4(_)), Ok(n)) => n <= 32,
        (6, Ok(IpAddr::V6(_)), Ok(n)) => n <= 128,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("Invalid IPv{family} address {v:?}"))
    }
}

/// LXD's questions for a new managed bridge; `false` when the user wants none.
pub(crate) fn ask_new_bridge<R: BufRead, W: Write>(
    q: &mut Asker<R, W>,
    p: &mut InitPreseed,
) -> Result<bool, InitError> {
    if !q.bool(
        "Would you like to create a new local network bridge? (yes/no) [default=yes]: ",
        true,
    )? {
        return Ok(false);
    }
    let name = q.checked("What should the new bridge be called? [default=lxdbr0]: ", "lxdbr0", |v| {
        if v.is_empty() || v.len() > 15 || !v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(format!("Invalid network name {v:?}"));
        }
        if std::path::Path::new("/sys/class/net").join(v).exists() {
            return Err(format!("The requested network bridge \"{v}\" already exists. Please choose another name."));
        }
        Ok(())
    })?;
    let mut config = Config::new();
    for family in [4u8, 6] {
        let v = q.checked(
            &format!("What IPv{family} address should be used? (CIDR subnet notation, “auto” or “none”) [default=auto]: "),
            "auto",
            |v| check_bridge_address(v, family),
        )?;
        if v != "auto" && v != "none" {
            let nat = q.bool(
                &format!(
                    "Would you like LXD to NAT IPv{family} traffic on your bridge? [default=yes]: "
                ),
                true,
            )?;
            config.insert(format!("ipv{family}.nat"), nat.to_string());
        }
        config.insert(format!("ipv{family}.address"), v);
    }
    p.networks.push(rxd_api::InitNetwork {
        config,
        description: String::new(),
        name: name.clone(),
        network_type: "bridge".into(),
        project: String::new(),
    });
    let mut nic = Config::new();
    nic.insert("name".into(), "eth0".into());
    nic.insert("network".into(), name);
    nic.insert("type".into(), "nic".into());
    set_default_nic(p, nic);
    Ok(true)
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
    set_default_nic(p, nic_device(&name));
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

    fn pool_answers(
        drivers: &[&str],
        on_btrfs: bool,
        input: &str,
    ) -> (Result<StoragePoolsPost, InitError>, String) {
        let drivers: Vec<String> = drivers.iter().map(|d| d.to_string()).collect();
        let host = StorageHost {
            dir: "/var/lib/rxd".into(),
            on_btrfs,
            default_gib: 7,
        };
        let mut out = Vec::new();
        let mut q = crate::scripted(std::io::Cursor::new(input.to_string()), &mut out);
        let pool = ask_pool(&mut q, &drivers, "local", &host);
        (pool, String::from_utf8(out).unwrap())
    }

    #[test]
    fn storage_questions_follow_lxd() {
        // Drivers offered, data directory on btrfs, answers, driver, config, prompts shown.
        type Case<'a> = (
            &'a [&'a str],
            bool,
            &'a str,
            &'a str,
            &'a [(&'a str, &'a str)],
            &'a str,
        );
        let cases: &[Case] = &[
            // One backend: no question at all.
            (&["dir"], false, "", "dir", &[], ""),
            (
                &["dir", "btrfs"],
                false,
                "\n\n\n\n",
                "btrfs",
                &[("size", "7GiB")],
                "Name of the storage backend to use (dir, btrfs) [default=btrfs]: \
Create a new BTRFS pool? (yes/no) [default=yes]: \
Would you like to use an existing empty block device (e.g. a disk or partition)? (yes/no) [default=no]: \
Size in GiB of the new loop device (1GiB minimum) [default=7GiB]: ",
            ),
            (
                &["dir", "btrfs"],
                false,
                "btrfs\nyes\nno\nabc\n0\n12\n",
                "btrfs",
                &[("size", "12GiB")],
                "Name of the storage backend to use (dir, btrfs) [default=btrfs]: \
Create a new BTRFS pool? (yes/no) [default=yes]: \
Would you like to use an existing empty block device (e.g. a disk or partition)? (yes/no) [default=no]: \
Size in GiB of the new loop device (1GiB minimum) [default=7GiB]: \
Invalid input: strconv.ParseInt: parsing \"abc\": invalid syntax\n\n\
Size in GiB of the new loop device (1GiB minimum) [default=7GiB]: \
Invalid input: Minimum size is 1GiB\n\n\
Size in GiB of the new loop device (1GiB minimum) [default=7GiB]: ",
            ),
            (
                &["dir", "btrfs"],
                false,
                "dir\n",
                "dir",
                &[],
                "Name of the storage backend to use (dir, btrfs) [default=btrfs]: ",
            ),
            (
                &["dir", "btrfs"],
                true,
                "\n\n",
                "btrfs",
                &[("source", "/var/lib/rxd/storage-pools/local")],
                "Name of the storage backend to use (dir, btrfs) [default=btrfs]: \
Would you like to create a new btrfs subvolume under /var/lib/rxd? (yes/no) [default=yes]: ",
            ),
            (
                &["dir", "btrfs"],
                false,
                "btrfs\nno\n/mnt/pool\n",
                "btrfs",
                &[("source", "/mnt/pool")],
                "Name of the storage backend to use (dir, btrfs) [default=btrfs]: \
Create a new BTRFS pool? (yes/no) [default=yes]: \
Name of the existing BTRFS pool or dataset: ",
            ),
        ];
        for (drivers, on_btrfs, input, driver, config, prompts) in cases {
            let (pool, out) = pool_answers(drivers, *on_btrfs, input);
            let pool = pool.unwrap();
            assert_eq!(pool.driver, *driver, "{input:?}");
            let want: Config = config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(pool.config, want, "{input:?}");
            assert_eq!(out, *prompts, "{input:?}");
        }
    }

    #[test]
    fn a_block_device_must_be_one() {
        let (pool, out) = pool_answers(
            &["btrfs", "dir"],
            false,
            "\nyes\nyes\n/etc/hostname\n/dev/loop0\n",
        );
        if !is_block_device("/dev/loop0") {
            return;
        }
        assert!(
            out.contains("Invalid input: \"/etc/hostname\" is not a block device"),
            "{out}"
        );
        assert_eq!(pool.unwrap().config["source"], "/dev/loop0");
    }

    #[test]
    fn wildcard_cluster_address_is_refused() {
        assert!(check_cluster_address("").is_err());
        assert!(check_cluster_address("0.0.0.0").is_err());
        assert!(check_cluster_address("127.0.0.1").is_ok());
    }
}
