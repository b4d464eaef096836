//! Links, addresses and routes through netlink, in the network namespace rxd runs in.

use std::net::IpAddr;

use futures_util::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressScope};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlag, LinkInfo};
use netlink_packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, IpVersion};

use super::subnet::Cidr;
use super::NetworkError;

/// One host interface.
#[derive(Debug, Clone)]
pub struct Link {
    /// Kernel index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// `bridge`, `veth`, ... or empty for a plain device.
    pub kind: String,
    /// Whether it is the loopback device.
    pub loopback: bool,
    /// LXD's link type from the flags: `loopback`, `point-to-point`, `broadcast` or `unknown`.
    pub link_type: &'static str,
    /// Administratively up.
    pub up: bool,
    /// MTU.
    pub mtu: u32,
    /// MAC address, `aa:bb:...`.
    pub hwaddr: String,
    /// (rx bytes, tx bytes, rx packets, tx packets).
    pub counters: (u64, u64, u64, u64),
}

impl Link {
    /// LXD's name for an unmanaged interface's type.
    pub fn lxd_type(&self) -> &'static str {
        if self.loopback {
            return "loopback";
        }
        match self.kind.as_str() {
            "bridge" => "bridge",
            "bond" => "bond",
            "vlan" => "vlan",
            "" => "physical",
            _ => "unknown",
        }
    }
}

/// One address on an interface.
#[derive(Debug, Clone)]
pub struct Address {
    /// Interface index.
    pub index: u32,
    /// Address and prefix.
    pub cidr: Cidr,
    /// `global`, `link`, `local`.
    pub scope: &'static str,
}

/// A connection to the kernel's routing netlink.
pub struct Netlink {
    handle: Handle,
}

fn nl(what: &str) -> impl FnOnce(rtnetlink::Error) -> NetworkError + '_ {
    move |e| NetworkError::Netlink {
        what: what.to_string(),
        message: e.to_string(),
    }
}

impl Netlink {
    /// Opens a netlink socket; its connection task runs on the current runtime.
    pub fn connect() -> Result<Netlink, NetworkError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| NetworkError::Netlink {
            what: "open a netlink socket".into(),
            message: e.to_string(),
        })?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// Every interface.
    pub async fn links(&self) -> Result<Vec<Link>, NetworkError> {
        let msgs: Vec<_> = self
            .handle
            .clone()
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(nl("list interfaces"))?;
        Ok(msgs
            .into_iter()
            .map(|m| {
                let flag = |f: LinkFlag| m.header.flags.contains(&f);
                let link_type = if flag(LinkFlag::Loopback) {
                    "loopback"
                } else if flag(LinkFlag::Pointopoint) {
                    "point-to-point"
                } else if flag(LinkFlag::Broadcast) {
                    "broadcast"
                } else {
                    "unknown"
                };
                let mut link = Link {
                    index: m.header.index,
                    name: String::new(),
                    kind: String::new(),
                    loopback: m.header.flags.contains(&LinkFlag::Loopback),
                    link_type,
                    up: m.header.flags.contains(&LinkFlag::Up),
                    mtu: 0,
                    hwaddr: String::new(),
                    counters: (0, 0, 0, 0),
                };
                for a in m.attributes {
                    match a {
                        LinkAttribute::IfName(n) => link.name = n,
                        LinkAttribute::Mtu(v) => link.mtu = v,
                        LinkAttribute::Address(mac) => {
                            link.hwaddr = mac
                                .iter()
                                .map(|b| format!("{b:02x}"))
                                .collect::<Vec<_>>()
                                .join(":")
                        }
                        LinkAttribute::Stats64(s) => {
                            link.counters = (s.rx_bytes, s.tx_bytes, s.rx_packets, s.tx_packets)
                        }
                        LinkAttribute::LinkInfo(infos) => {
                            for i in infos {
                                if let LinkInfo::Kind(k) = i {
                                    link.kind = match k {
                                        InfoKind::Bridge => "bridge".into(),
                                        InfoKind::Veth => "veth".into(),
                                        InfoKind::Bond => "bond".into(),
                                        InfoKind::Vlan => "vlan".into(),
                                        InfoKind::Dummy => "dummy".into(),
                                        other => format!("{other:?}").to_lowercase(),
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
                link
            })
            .collect())
    }

    /// The interface called `name`, if any.
    pub async fn link(&self, name: &str) -> Result<Option<Link>, NetworkError> {
        Ok(self.links().await?.into_iter().find(|l| l.name == name))
    }

    /// Every address, on every interface.
    pub async fn addresses(&self) -> Result<Vec<Address>, NetworkError> {
        let msgs: Vec<_> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(nl("list addresses"))?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| {
                let addr = m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })?;
                Some(Address {
                    index: m.header.index,
                    cidr: Cidr::new(addr, m.header.prefix_len)?,
                    scope: match m.header.scope {
                        AddressScope::Universe => "global",
                        AddressScope::Link => "link",
                        AddressScope::Host => "local",
                        _ => "global",
                    },
                })
            })
            .collect())
    }

    /// The destinations of every route (default routes, link-local and multicast excluded),
    /// with the interface index they leave by (0 when none).
    pub async fn routes(&self) -> Result<Vec<(Cidr, u32)>, NetworkError> {
        let mut out = Vec::new();
        for version in [IpVersion::V4, IpVersion::V6] {
            let msgs: Vec<_> = self
                .handle
                .route()
                .get(version)
                .execute()
                .try_collect()
                .await
                .map_err(nl("list routes"))?;
            for m in msgs {
                let prefix = m.header.destination_prefix_length;
                if prefix == 0 {
                    continue;
                }
                let mut dst = None;
                let mut oif = 0;
                for a in &m.attributes {
                    match a {
                        RouteAttribute::Destination(RouteAddress::Inet(v4)) => {
                            dst = Some(IpAddr::V4(*v4))
                        }
                        RouteAttribute::Destination(RouteAddress::Inet6(v6)) => {
                            dst = Some(IpAddr::V6(*v6))
                        }
                        RouteAttribute::Oif(i) => oif = *i,
                        _ => {}
                    }
                }
                let Some(cidr) = dst.and_then(|d| Cidr::new(d, prefix)) else {
                    continue;
                };
                if let IpAddr::V6(v6) = cidr.addr() {
                    let first = v6.segments()[0];
                    if first & 0xffc0 == 0xfe80 || first & 0xff00 == 0xff00 {
                        continue;
                    }
                }
                out.push((cidr, oif));
            }
        }
        Ok(out)
    }

    /// Makes a bridge and returns its index.
    pub async fn add_bridge(&self, name: &str) -> Result<u32, NetworkError> {
        self.handle
            .link()
            .add()
            .bridge(name.to_string())
            .execute()
            .await
            .map_err(nl("create the bridge"))?;
        self.link(name)
            .await?
            .map(|l| l.index)
            .ok_or_else(|| NetworkError::Netlink {
                what: "create the bridge".into(),
                message: format!("{name} vanished after it was made"),
            })
    }

    /// Adds an address to an interface (replacing the same one).
    pub async fn add_address(&self, index: u32, cidr: Cidr) -> Result<(), NetworkError> {
        self.handle
            .address()
            .add(index, cidr.addr(), cidr.prefix())
            .replace()
            .execute()
            .await
            .map_err(nl("add an address"))
    }

    /// Removes every global address of an interface.
    pub async fn flush_addresses(&self, index: u32) -> Result<(), NetworkError> {
        let msgs: Vec<_> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(nl("list addresses"))?;
        for m in msgs {
            if m.header.scope != AddressScope::Universe {
                continue;
            }
            self.handle
                .address()
                .del(m)
                .execute()
                .await
                .map_err(nl("remove an address"))?;
        }
        Ok(())
    }

    /// Sets an interface up.
    pub async fn set_up(&self, index: u32) -> Result<(), NetworkError> {
        self.handle
            .link()
            .set(index)
            .up()
            .execute()
            .await
            .map_err(nl("set the interface up"))
    }

    /// Sets an interface's MTU.
    pub async fn set_mtu(&self, index: u32, mtu: u32) -> Result<(), NetworkError> {
        self.handle
            .link()
            .set(index)
            .mtu(mtu)
            .execute()
            .await
            .map_err(nl("set the MTU"))
    }

    /// Makes `port` a port of the bridge `bridge`.
    pub async fn set_controller(&self, port: u32, bridge: u32) -> Result<(), NetworkError> {
        self.handle
            .link()
            .set(port)
            .controller(bridge)
            .execute()
            .await
            .map_err(nl("attach an external interface"))
    }

    /// Deletes an interface.
    pub async fn delete(&self, index: u32) -> Result<(), NetworkError> {
        self.handle
            .clone()
            .link()
            .del(index)
            .execute()
            .await
            .map_err(nl("delete the interface"))
    }
}
