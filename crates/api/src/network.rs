use serde::{Deserialize, Serialize};

use crate::Config;

/// Member-specific network keys (LXD's list).
pub const NETWORK_MEMBER_KEYS: &[&str] = &[
    "bgp.ipv4.nexthop",
    "bgp.ipv6.nexthop",
    "bridge.external_interfaces",
    "parent",
];

/// The writable part of a network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
// Clients may send back a whole object; like LXD, only the writable part is read.
pub struct NetworkPut {
    /// Configuration.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub config: Config,
    /// Free text.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub description: String,
}

/// `POST /1.0/networks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NetworksPost {
    /// Configuration.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub config: Config,
    /// Free text.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub description: String,
    /// Network name, also the interface name of a bridge.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub name: String,
    /// Network type, such as `bridge`; empty means `bridge`.
    #[serde(rename = "type", default, deserialize_with = "crate::nullable")]
    pub network_type: String,
}

/// `GET /1.0/networks/{name}`: a managed network or an unmanaged host interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// Configuration (empty for unmanaged interfaces).
    pub config: Config,
    /// Free text.
    pub description: String,
    /// Network name.
    pub name: String,
    /// `bridge`, `physical`, `loopback`, ...
    #[serde(rename = "type")]
    pub network_type: String,
    /// URLs of the objects that use it.
    pub used_by: Option<Vec<String>>,
    /// Whether rxd manages it.
    pub managed: bool,
    /// `Pending`, `Created`, `Errored`, `Unknown`, `Unavailable`; empty when unmanaged.
    pub status: String,
    /// Members that have an entry; `null` when unmanaged.
    pub locations: Option<Vec<String>>,
}

/// One address of a network interface, in `GET /1.0/networks/{name}/state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkStateAddress {
    /// `inet` or `inet6`.
    pub family: String,
    /// The address.
    pub address: String,
    /// The prefix length, as a string.
    pub netmask: String,
    /// `global`, `link` or `local`.
    pub scope: String,
}

/// Traffic counters of an interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NetworkStateCounters {
    /// Bytes received.
    pub bytes_received: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Packets received.
    pub packets_received: u64,
    /// Packets sent.
    pub packets_sent: u64,
}

/// `GET /1.0/networks/{name}/state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkState {
    /// The interface's addresses.
    pub addresses: Vec<NetworkStateAddress>,
    /// Traffic counters.
    pub counters: NetworkStateCounters,
    /// MAC address.
    pub hwaddr: String,
    /// MTU.
    pub mtu: u32,
    /// `up` or `down`.
    pub state: String,
    /// `broadcast`, `loopback`, `point-to-point` or `unknown`.
    #[serde(rename = "type")]
    pub state_type: String,
    /// A bond's details; `null` for other interfaces (API extension
    /// `network_state_bond_bridge`).
    pub bond: Option<NetworkStateBond>,
    /// A bridge's details; `null` for other interfaces (API extension
    /// `network_state_bond_bridge`).
    pub bridge: Option<NetworkStateBridge>,
    /// A VLAN's details; `null` for other interfaces (API extension `network_state_vlan`).
    pub vlan: Option<NetworkStateVlan>,
}

/// A bond interface's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NetworkStateBond {
    /// Bonding mode, such as `802.3ad`.
    pub mode: String,
    /// Transmit hash policy, such as `layer3+4`.
    pub transmit_policy: String,
    /// Delay on link up (ms).
    pub up_delay: u64,
    /// Delay on link down (ms).
    pub down_delay: u64,
    /// How often the link state is checked (ms).
    pub mii_frequency: u64,
    /// The bond's link state.
    pub mii_state: String,
    /// The bonded devices.
    pub lower_devices: Vec<String>,
}

/// A bridge interface's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NetworkStateBridge {
    /// Bridge id, such as `8000.0a0f7c6edbd9`.
    pub id: String,
    /// Whether STP is on.
    pub stp: bool,
    /// Delay on port join (in the kernel's unit, as LXD shows it).
    pub forward_delay: u64,
    /// Default VLAN id.
    pub vlan_default: u64,
    /// Whether VLAN filtering is on.
    pub vlan_filtering: bool,
    /// The bridge's ports.
    pub upper_devices: Vec<String>,
}

/// A VLAN interface's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NetworkStateVlan {
    /// The parent device.
    pub lower_device: String,
    /// VLAN id.
    pub vid: u64,
}

/// `POST /1.0/networks/{name}`: a rename.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NetworkPost {
    /// The new name.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub name: String,
}

/// One DHCP lease (or gateway address) of a network, in `GET /1.0/networks/{name}/leases`
/// (API extension `network_leases`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NetworkLease {
    /// Host name the client gave, `*` when none, or `<network>.gw` for the gateway.
    pub hostname: String,
    /// MAC address; empty for the gateway and for DHCPv6 leases.
    pub hwaddr: String,
    /// IP address.
    pub address: String,
    /// `dynamic`, `static` or `gateway`.
    #[serde(rename = "type")]
    pub lease_type: String,
    /// The member the lease was found on; empty for the gateway (API extension
    /// `network_leases_location`).
    #[serde(default)]
    pub location: String,
}
