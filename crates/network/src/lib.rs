//! Managed networks on this member: a Linux bridge made through netlink, its addresses, a
//! supervised dnsmasq for DHCP and DNS, and nftables rules for NAT.
//!
//! ```text
//!  validate name and keys ─> resolve `auto` (free subnet) ─> check routes
//!    ─> bridge ─> external interfaces ─> MTU ─> addresses ─> up ─> nftables ─> dnsmasq
//!    any failure: undo in reverse (dnsmasq, chains, bridge, $DIR/networks/<name>)
//! ```
//!
//! The database side (which members have the network, pending or created) belongs to
//! the daemon (`handlers/networks.rs`); this crate only changes the host, and can be tested
//! without a daemon.

pub mod bridge;
pub mod dnsmasq;
pub mod firewall;
pub mod leases;
pub mod state;
pub mod subnet;

use std::path::{Path, PathBuf};

use rxd_db::tables::Config;

use bridge::Netlink;
use subnet::Cidr;

/// Member-specific network keys (LXD's list, kept in `rxd-api`).
pub use rxd_api::NETWORK_MEMBER_KEYS as MEMBER_KEYS;

/// Why a network could not be made, changed or checked.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The name cannot be an interface name.
    #[error("Invalid network name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A type other than `bridge`.
    #[error("Network type {0:?} is not supported (only \"bridge\" is)")]
    UnsupportedType(String),
    /// A key the type does not know.
    #[error("Invalid option for network {network:?} option {key:?}")]
    UnknownKey {
        /// The network.
        network: String,
        /// The key.
        key: String,
    },
    /// A key with a bad value.
    #[error("Invalid value for network {network:?} option {key:?}: {reason}")]
    BadValue {
        /// The network.
        network: String,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// An interface of that name exists already on this member.
    #[error("Network interface {0:?} already exists")]
    InterfaceExists(String),
    /// An interface of that name exists, but rxd did not make it.
    #[error("Network interface {0:?} was not created by rxd")]
    NotOurs(String),
    /// An external interface that does not exist.
    #[error("External interface {0:?} does not exist")]
    NoSuchInterface(String),
    /// The subnet overlaps a route the member already has.
    #[error("Cannot use {key} {address}: it overlaps the existing route to {route}")]
    SubnetInUse {
        /// `ipv4.address` or `ipv6.address`.
        key: &'static str,
        /// The address asked for.
        address: String,
        /// The route it overlaps.
        route: String,
    },
    /// `auto` found nothing free.
    #[error("Failed to find a free {0} subnet")]
    NoFreeSubnet(&'static str),
    /// Netlink refused.
    #[error("Failed to {what}: {message}")]
    Netlink {
        /// What was being done.
        what: String,
        /// The kernel's answer.
        message: String,
    },
    /// nftables refused.
    #[error("Failed to set up the firewall: {0}")]
    Firewall(String),
    /// dnsmasq did not start.
    #[error("Failed to start dnsmasq: {0}")]
    Dnsmasq(String),
    /// A file under `$DIR/networks`.
    #[error("Failed to prepare {path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        message: String,
    },
}

/// Checks a bridge name as LXD does: an interface name of 2 to 15 characters from
/// `[-_a-zA-Z0-9.]`, not starting with a dash or dot, not `none`.
pub fn validate_name(name: &str) -> Result<(), NetworkError> {
    let bad = |reason| {
        Err(NetworkError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.len() < 2 {
        return bad("Network interface is too short (minimum 2 characters)");
    }
    if name.len() > 15 {
        return bad("Network interface is too long (maximum 15 characters)");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return bad("Network interface contains invalid characters");
    }
    if name.starts_with('-') || name.starts_with('.') {
        return bad("Network interface may not start with a dash or a dot");
    }
    if name == "none" {
        return bad("\"none\" is reserved");
    }
    Ok(())
}

/// Checks the type; empty means `bridge`.
pub fn validate_type(t: &str) -> Result<&'static str, NetworkError> {
    match t {
        "" | "bridge" => Ok("bridge"),
        other => Err(NetworkError::UnsupportedType(other.to_string())),
    }
}

fn is_bool(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "true" | "false" | "1" | "0" | "yes" | "no" | "on" | "off"
    )
}

fn truthy(v: Option<&String>) -> bool {
    v.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"))
}

/// Checks every key of a bridge's configuration (cluster-wide and member keys together).
pub fn validate_config(network: &str, config: &Config) -> Result<(), NetworkError> {
    for (key, value) in config {
        let bad = |reason: &str| {
            Err(NetworkError::BadValue {
                network: network.to_string(),
                key: key.clone(),
                reason: reason.to_string(),
            })
        };
        match key.as_str() {
            k if k.starts_with("user.") => {}
            "bridge.mode" => match value.as_str() {
                "" | "standard" => {}
                // LXD offers the fan overlay only on kernels that have it (Ubuntu's).
                "fan" if !Path::new("/proc/sys/net/fan").exists() => {
                    return bad("Fan overlay networks need a kernel with fan support (/proc/sys/net/fan is missing)")
                }
                "fan" => return bad("Fan overlay networks are not supported by this rxd yet"),
                _ => return bad("Must be \"standard\" or \"fan\""),
            },
            "ipv4.address" | "ipv6.address" => {
                let v4 = key == "ipv4.address";
                if value.is_empty() || value == "auto" || value == "none" {
                    continue;
                }
                let Some(c) = Cidr::parse(value) else {
                    return bad("Not a CIDR address, \"auto\" or \"none\"");
                };
                if c.addr().is_ipv4() != v4 {
                    return bad(if v4 {
                        "Not an IPv4 address"
                    } else {
                        "Not an IPv6 address"
                    });
                }
                if v4 && (c.prefix() < 8 || c.prefix() > 30) {
                    return bad("The prefix must be between 8 and 30");
                }
                if !v4 && (c.prefix() < 8 || c.prefix() > 126) {
                    return bad("The prefix must be between 8 and 126");
                }
                if c.addr() == c.network() || (v4 && c.addr() == c.last()) {
                    return bad("Not a usable host address");
                }
            }
            "ipv4.nat" | "ipv6.nat" | "ipv4.dhcp" | "ipv6.dhcp" | "ipv4.firewall"
            | "ipv6.firewall" => {
                if !is_bool(value) {
                    return bad("Invalid boolean");
                }
            }
            "bridge.mtu" => {
                if value
                    .parse::<u32>()
                    .map_or(true, |m| !(1280..=65535).contains(&m))
                {
                    return bad("Must be a number between 1280 and 65535");
                }
            }
            "bridge.driver" => {
                if value != "native" {
                    return bad("Only \"native\" is supported");
                }
            }
            "dns.domain" => {
                if value.is_empty()
                    || !value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                {
                    return bad("Not a valid domain name");
                }
            }
            "bridge.external_interfaces" => {
                for i in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                    if validate_name(i).is_err() && i.len() != 1 {
                        return bad("Not a list of interface names");
                    }
                }
            }
            _ => {
                return Err(NetworkError::UnknownKey {
                    network: network.to_string(),
                    key: key.clone(),
                })
            }
        }
    }
    Ok(())
}

/// LXD's defaults for a new bridge: a missing address is `auto`, and an `auto` address
/// gets NAT unless `*.nat` is given.
pub fn fill_defaults(config: &mut Config) {
    for fam in ["ipv4", "ipv6"] {
        let addr = config
            .entry(format!("{fam}.address"))
            .or_insert_with(|| "auto".into());
        if addr == "auto" {
            config
                .entry(format!("{fam}.nat"))
                .or_insert_with(|| "true".into());
        }
    }
}

fn ipv6_available() -> bool {
    Path::new("/proc/sys/net/ipv6").exists()
        && std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6")
            .map(|v| v.trim() == "0")
            .unwrap_or(false)
}

/// Replaces `auto` addresses with free subnets of this member, and refuses given subnets that
/// overlap a route (other than the bridge's own, when it exists).
pub async fn resolve_addresses(name: &str, config: &mut Config) -> Result<(), NetworkError> {
    let nl = Netlink::connect()?;
    let own = nl.link(name).await?.map(|l| l.index);
    let routes: Vec<(Cidr, u32)> = nl
        .routes()
        .await?
        .into_iter()
        .filter(|(_, oif)| Some(*oif) != own)
        .collect();
    let used: Vec<Cidr> = routes.iter().map(|(c, _)| *c).collect();
    for (key, v4) in [("ipv4.address", true), ("ipv6.address", false)] {
        let Some(value) = config.get(key).cloned() else {
            continue;
        };
        if value == "auto" {
            let picked = if v4 {
                subnet::pick_v4(&used, rand::random::<u32>)
                    .ok_or(NetworkError::NoFreeSubnet("IPv4"))?
            } else if ipv6_available() {
                subnet::pick_v6(&used, rand::random::<u32>)
                    .ok_or(NetworkError::NoFreeSubnet("IPv6"))?
            } else {
                config.insert(key.into(), "none".into());
                continue;
            };
            config.insert(key.into(), picked.to_string());
        } else if let Some(c) = Cidr::parse(&value) {
            if let Some((route, _)) = routes.iter().find(|(r, _)| r.overlaps(&c)) {
                return Err(NetworkError::SubnetInUse {
                    key: if v4 { "ipv4.address" } else { "ipv6.address" },
                    address: value.clone(),
                    route: route.to_string(),
                });
            }
        }
    }
    Ok(())
}

async fn check_routes(nl: &Netlink, config: &Config, own: Option<u32>) -> Result<(), NetworkError> {
    let routes = nl.routes().await?;
    for key in ["ipv4.address", "ipv6.address"] {
        let Some(c) = config.get(key).and_then(|v| Cidr::parse(v)) else {
            continue;
        };
        if let Some((route, _)) = routes
            .iter()
            .find(|(r, oif)| Some(*oif) != own && r.overlaps(&c))
        {
            return Err(NetworkError::SubnetInUse {
                key: if key == "ipv4.address" {
                    "ipv4.address"
                } else {
                    "ipv6.address"
                },
                address: c.to_string(),
                route: route.to_string(),
            });
        }
    }
    Ok(())
}

/// A network's directory: `$DIR/networks/<name>`.
pub fn net_dir(dir: &Path, name: &str) -> PathBuf {
    dir.join("networks").join(name)
}

/// The record of the bridge rxd made for a network: `$DIR/networks/<name>/bridge` holds its
/// interface index. rxd changes or removes only an interface it recorded.
fn record_path(dir: &Path, name: &str) -> PathBuf {
    net_dir(dir, name).join("bridge")
}

fn record(dir: &Path, name: &str, index: u32) -> Result<(), NetworkError> {
    let path = record_path(dir, name);
    std::fs::write(&path, index.to_string()).map_err(|e| NetworkError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn recorded(dir: &Path, name: &str) -> Option<u32> {
    std::fs::read_to_string(record_path(dir, name))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Records an existing bridge as this network's when the cluster database says this member
/// has the network but no record exists (made by an rxd that kept none).
pub async fn adopt(dir: &Path, name: &str) -> Result<(), NetworkError> {
    validate_name(name)?;
    if recorded(dir, name).is_some() {
        return Ok(());
    }
    let nl = Netlink::connect()?;
    if let Some(link) = nl.link(name).await?.filter(|l| l.kind == "bridge") {
        let nd = net_dir(dir, name);
        std::fs::create_dir_all(&nd).map_err(|e| NetworkError::Io {
            path: nd.display().to_string(),
            message: e.to_string(),
        })?;
        record(dir, name, link.index)?;
    }
    Ok(())
}

fn dnsmasq_args(name: &str, dir: &Path, config: &Config) -> Option<Vec<String>> {
    let v4 = config.get("ipv4.address").and_then(|v| Cidr::parse(v));
    let v6 = config.get("ipv6.address").and_then(|v| Cidr::parse(v));
    if v4.is_none() && v6.is_none() {
        return None;
    }
    let d = dir.display();
    let mut args: Vec<String> = [
        "--keep-in-foreground",
        "--strict-order",
        "--bind-interfaces",
        "--except-interface=lo",
        "--no-ping",
        "--dhcp-no-override",
        "--dhcp-authoritative",
        "--conf-file=/dev/null",
        "--user=nobody",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("--pid-file={d}/dnsmasq.pid"));
    args.push(format!("--dhcp-leasefile={d}/dnsmasq.leases"));
    args.push(format!("--interface={name}"));
    let domain = config.get("dns.domain").map_or("lxd", String::as_str);
    args.push(format!("--domain={domain}"));
    args.push(format!("--local=/{domain}/"));
    if let Some(c) = v4 {
        args.push(format!("--listen-address={}", c.addr()));
        if config.get("ipv4.dhcp").is_none_or(|v| truthy(Some(v))) {
            let first = c.nth(2);
            // A /31 or /32 (refused by the validator) has no range to hand out.
            let size = 1u128 << (32 - u32::from(c.prefix().min(32)));
            if let Some(last) = size.checked_sub(2).filter(|n| *n >= 2).map(|n| c.nth(n)) {
                if first != c.addr() {
                    args.push(format!("--dhcp-range={first},{last},1h"));
                }
            }
        }
    }
    if let Some(c) = v6 {
        args.push(format!("--listen-address={}", c.addr()));
        args.push("--enable-ra".into());
        args.push(format!(
            "--dhcp-range={},ra-stateless,ra-names,{}",
            c.network(),
            c.prefix()
        ));
    }
    Some(args)
}

fn firewall_rules(config: &Config) -> firewall::Rules {
    let mut rules = firewall::Rules::default();
    for fam in ["ipv4", "ipv6"] {
        if truthy(config.get(&format!("{fam}.nat"))) {
            if let Some(c) = config
                .get(&format!("{fam}.address"))
                .and_then(|v| Cidr::parse(v))
            {
                rules.nat.push(c);
            }
        }
    }
    rules
}

fn enable_forwarding(config: &Config) {
    // Forwarding is per network namespace; NAT is useless without it.
    if truthy(config.get("ipv4.nat")) {
        let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1");
    }
    if truthy(config.get("ipv6.nat")) && ipv6_available() {
        let _ = std::fs::write("/proc/sys/net/ipv6/conf/all/forwarding", "1");
    }
}

/// Brings this member's side of bridge `name` to `config`. With `fresh`, the interface must
/// not exist yet and everything made is undone on failure; without, the existing bridge is
/// reconfigured (an update, or a restart of rxd).
pub async fn setup(
    dir: &Path,
    name: &str,
    config: &Config,
    fresh: bool,
) -> Result<(), NetworkError> {
    validate_name(name)?;
    let nl = Netlink::connect()?;
    let existing = nl.link(name).await?;
    match &existing {
        Some(_) if fresh => return Err(NetworkError::InterfaceExists(name.to_string())),
        Some(link) if recorded(dir, name) != Some(link.index) => {
            return Err(NetworkError::NotOurs(name.to_string()))
        }
        _ => {}
    }
    let made = existing.is_none();
    // Every member checks its own routes: a subnet free on one member may be taken on another.
    check_routes(&nl, config, existing.as_ref().map(|l| l.index)).await?;
    let result = configure(dir, name, config, &nl, existing.map(|l| l.index)).await;
    if let Err(e) = result {
        if made {
            teardown(dir, name).await;
        }
        return Err(e);
    }
    Ok(())
}

async fn configure(
    dir: &Path,
    name: &str,
    config: &Config,
    nl: &Netlink,
    existing: Option<u32>,
) -> Result<(), NetworkError> {
    let nd = net_dir(dir, name);
    std::fs::create_dir_all(&nd).map_err(|e| NetworkError::Io {
        path: nd.display().to_string(),
        message: e.to_string(),
    })?;
    let index = match existing {
        Some(i) => i,
        None => {
            let index = nl.add_bridge(name).await?;
            record(dir, name, index)?;
            index
        }
    };
    if let Some(ext) = config.get("bridge.external_interfaces") {
        for port in ext.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let link = nl
                .link(port)
                .await?
                .ok_or_else(|| NetworkError::NoSuchInterface(port.to_string()))?;
            nl.set_controller(link.index, index).await?;
            nl.set_up(link.index).await?;
        }
    }
    if let Some(mtu) = config.get("bridge.mtu").and_then(|m| m.parse().ok()) {
        nl.set_mtu(index, mtu).await?;
    }
    nl.flush_addresses(index).await?;
    for key in ["ipv4.address", "ipv6.address"] {
        if let Some(c) = config.get(key).and_then(|v| Cidr::parse(v)) {
            nl.add_address(index, c).await?;
        }
    }
    nl.set_up(index).await?;
    enable_forwarding(config);
    firewall::apply(name, &firewall_rules(config))?;
    match dnsmasq_args(name, &nd, config) {
        Some(args) => dnsmasq::start(name, &nd, args).await?,
        None => dnsmasq::stop(name).await,
    }
    Ok(())
}

/// Removes this member's side of bridge `name`: dnsmasq, its chains, the bridge rxd recorded
/// making and its directory. Each step runs even when an earlier one failed.
pub async fn teardown(dir: &Path, name: &str) {
    if let Err(e) = validate_name(name) {
        tracing::warn!("Cannot remove a network: {e}");
        return;
    }
    if let Err(e) = stop(dir, name).await {
        tracing::warn!("Network {name}: {e}");
    }
    let _ = std::fs::remove_dir_all(net_dir(dir, name));
}

/// Takes this member's side of bridge `name` down and keeps its directory (dnsmasq's leases
/// with it): dnsmasq, its chains, and the bridge rxd recorded making. An interface rxd did not
/// make is left in place. Each step runs even when an earlier one failed; the first failure is
/// returned.
pub async fn stop(dir: &Path, name: &str) -> Result<(), NetworkError> {
    validate_name(name)?;
    dnsmasq::stop(name).await;
    let mut first = firewall::remove(name).err();
    let deleted = async {
        let nl = Netlink::connect()?;
        if let Some(link) = nl.link(name).await? {
            if link.kind != "bridge" || recorded(dir, name) != Some(link.index) {
                tracing::warn!(
                    "Network {name}: interface {name} was not created by rxd, left in place"
                );
            } else {
                nl.delete(link.index).await?;
            }
        }
        Ok::<(), NetworkError>(())
    }
    .await;
    if let Err(e) = deleted {
        first.get_or_insert(e);
    }
    first.map_or(Ok(()), Err)
}

/// Renames a stopped network's directory (a leftover of the new name is replaced, as LXD does).
pub fn move_dir(dir: &Path, from: &str, to: &str) -> Result<(), NetworkError> {
    validate_name(from)?;
    validate_name(to)?;
    let (old, new) = (net_dir(dir, from), net_dir(dir, to));
    let _ = std::fs::remove_dir_all(&new);
    if !old.exists() {
        return Ok(());
    }
    std::fs::rename(&old, &new).map_err(|e| NetworkError::Io {
        path: old.display().to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dhcp_ranges_never_underflow() {
        for (address, range) in [
            ("10.1.2.1/24", Some("--dhcp-range=10.1.2.2,10.1.2.254,1h")),
            ("10.1.2.1/30", Some("--dhcp-range=10.1.2.2,10.1.2.2,1h")),
            ("10.1.2.1/31", None),
            ("10.1.2.1/32", None),
        ] {
            let config = Config::from([("ipv4.address".into(), address.into())]);
            let args = dnsmasq_args("br0", Path::new("/nonexistent"), &config).unwrap();
            let got = args.iter().find(|a| a.starts_with("--dhcp-range"));
            assert_eq!(got.map(String::as_str), range, "{address}");
        }
    }

    #[test]
    fn names_are_checked_before_the_host_is_touched() {
        for name in ["../x", "a/b", "", "-x"] {
            assert!(validate_name(name).is_err(), "{name:?}");
        }
    }
}
