use serde::{Deserialize, Serialize};

use crate::Config;

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
    /// `broadcast`, `loopback`, ...
    #[serde(rename = "type")]
    pub state_type: String,
}
