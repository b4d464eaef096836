//! One interface of this member as `GET /1.0/networks/{name}/state` shows it, read the way LXD
//! reads it: the link, its addresses and counters through netlink; bond, bridge and VLAN
//! details from sysfs and `/proc/net/vlan/config`.

use std::path::Path;

use rxd_api::{
    NetworkState, NetworkStateAddress, NetworkStateBond, NetworkStateBridge, NetworkStateCounters,
    NetworkStateVlan,
};

use super::bridge::Netlink;
use super::NetworkError;

/// The state of interface `name`, or `None` when this member has no such interface.
pub async fn read(name: &str) -> Result<Option<NetworkState>, NetworkError> {
    let nl = Netlink::connect()?;
    let Some(link) = nl.link(name).await? else {
        return Ok(None);
    };
    let addresses = nl
        .addresses()
        .await?
        .into_iter()
        .filter(|a| a.index == link.index)
        .map(|a| {
            let ip = a.cidr.addr();
            NetworkStateAddress {
                family: if ip.is_ipv4() { "inet" } else { "inet6" }.into(),
                address: ip.to_string(),
                netmask: a.cidr.prefix().to_string(),
                scope: scope(&ip.to_string()).into(),
            }
        })
        .collect();
    let (rx_b, tx_b, rx_p, tx_p) = link.counters;
    let sys = Path::new("/sys/class/net").join(name);
    Ok(Some(NetworkState {
        addresses,
        counters: NetworkStateCounters {
            bytes_received: rx_b,
            bytes_sent: tx_b,
            packets_received: rx_p,
            packets_sent: tx_p,
        },
        hwaddr: link.hwaddr.clone(),
        mtu: link.mtu,
        state: if link.up { "up" } else { "down" }.into(),
        state_type: link.link_type.into(),
        bond: bond(&sys.join("bonding")),
        bridge: bridge(&sys),
        vlan: vlan(
            name,
            &std::fs::read_to_string("/proc/net/vlan/config").unwrap_or_default(),
        ),
    }))
}

/// LXD's scope of an address, from its text: loopback is `local`, link-local is `link`.
fn scope(address: &str) -> &'static str {
    if address.starts_with("127") || address == "::1" {
        "local"
    } else if address.starts_with("169.254") || address.starts_with("fe80:") {
        "link"
    } else {
        "global"
    }
}

fn text(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn number(path: &Path) -> u64 {
    text(path).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The first word of a sysfs value such as `802.3ad 4`.
fn first_word(path: &Path) -> String {
    text(path)
        .and_then(|s| s.split(' ').next().map(str::to_string))
        .unwrap_or_default()
}

fn bond(dir: &Path) -> Option<NetworkStateBond> {
    if !dir.is_dir() {
        return None;
    }
    Some(NetworkStateBond {
        mode: first_word(&dir.join("mode")),
        transmit_policy: first_word(&dir.join("xmit_hash_policy")),
        up_delay: number(&dir.join("updelay")),
        down_delay: number(&dir.join("downdelay")),
        mii_frequency: number(&dir.join("miimon")),
        mii_state: text(&dir.join("mii_status")).unwrap_or_default(),
        lower_devices: text(&dir.join("slaves"))
            .map(|s| s.split(' ').map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

fn bridge(sys: &Path) -> Option<NetworkStateBridge> {
    let dir = sys.join("bridge");
    if !dir.is_dir() {
        return None;
    }
    let mut upper_devices: Vec<String> = std::fs::read_dir(sys.join("brif"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    upper_devices.sort();
    Some(NetworkStateBridge {
        id: text(&dir.join("bridge_id")).unwrap_or_default(),
        stp: number(&dir.join("stp_state")) == 1,
        forward_delay: number(&dir.join("forward_delay")),
        vlan_default: number(&dir.join("default_pvid")),
        vlan_filtering: number(&dir.join("vlan_filtering")) == 1,
        upper_devices,
    })
}

/// `name`'s entry in `/proc/net/vlan/config` (`name | vid | parent` lines).
fn vlan(name: &str, config: &str) -> Option<NetworkStateVlan> {
    config.lines().find_map(|line| {
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        match fields[..] {
            [n, vid, lower] if n == name => Some(NetworkStateVlan {
                lower_device: lower.to_string(),
                vid: vid.parse().ok()?,
            }),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_follow_lxd() {
        for (address, want) in [
            ("127.0.0.1", "local"),
            ("::1", "local"),
            ("169.254.3.4", "link"),
            ("fe80::1", "link"),
            ("10.1.2.3", "global"),
            ("fd42::1", "global"),
        ] {
            assert_eq!(scope(address), want, "{address}");
        }
    }

    #[test]
    fn vlans_are_read_from_procfs() {
        let config = "VLAN Dev name    | VLAN ID\nName-Type: VLAN_NAME_TYPE_RAW_PLUS_VID_NO_PAD\neth0.100       | 100  | eth0\n";
        assert_eq!(
            vlan("eth0.100", config),
            Some(NetworkStateVlan {
                lower_device: "eth0".into(),
                vid: 100
            })
        );
        assert_eq!(vlan("eth0", config), None);
    }
}
