//! Finding a formation window on the LAN: DNS-SD over mDNS (RFC 6762/6763), service
//! `_rxd._tcp.local.`, so `avahi-browse -r _rxd._tcp` shows it too, over IPv4 and IPv6.
//!
//! ```text
//! initiator: Advertiser::start(advert, interface)   joiner: browse(interface, settings)
//!   instance "<name>-<id>._rxd._tcp.local." ── mDNS (UDP 5353) ──> every window seen, other
//!   TXT v=<protocol> id=<window id> fp=<16 hex>                   versions included, or the
//!   only on `interface`                                          silence error
//! ```
//!
//! The TXT record holds nothing secret: the protocol version, the window's random id and
//! the first 16 hexadecimal characters of the initiator's certificate fingerprint (for the
//! operator to compare; trust comes from the passphrase, never from answering discovery).
//! The instance name carries the window id after the initiator's name, so two windows that
//! claim one name (a rogue copying it) are two instances, both listed, and a joiner told to
//! join that name refuses to choose; with one instance name mDNS would merge their records.
//! Both sides use only the interface they are given, so a window is not shown on networks
//! it was not meant for. [`pick`] chooses among the windows seen.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};

use crate::window::is_window_id;

/// The DNS-SD service type.
pub const SERVICE_TYPE: &str = "_rxd._tcp.local.";

/// The formation protocol this build speaks (TXT `v`).
pub const PROTOCOL_VERSION: &str = "1";

/// The mDNS port, named in the silence error.
pub const MDNS_PORT: u16 = 5353;

/// Why discovery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// The mDNS responder or browser could not start.
    #[error("Cannot use multicast DNS on {interface}: {reason}")]
    Mdns {
        /// The interface.
        interface: String,
        /// The library's reason.
        reason: String,
    },
    /// An advertisement that breaks the format.
    #[error("Invalid formation window advertisement: {0}")]
    BadAdvert(String),
    /// Nothing was heard.
    #[error("No formation window was seen on interface {interface} within {} s: check that multicast DNS (UDP port {MDNS_PORT}) passes on {interface}, or give the initiator's address with --initiator-address", .waited.as_secs())]
    Silence {
        /// The interface browsed.
        interface: String,
        /// How long.
        waited: Duration,
    },
    /// Several windows and no initiator named.
    #[error("Several formation windows are open ({}): name the initiator", .0.join(", "))]
    Several(Vec<String>),
    /// Several windows claim the initiator's name: all but one are not its.
    #[error("Several formation windows claim the name {name:?} ({}): all but one are not its; give the address of the window rxd form opened with --initiator-address", .windows.join(", "))]
    SameName {
        /// The name.
        name: String,
        /// Each window's id and addresses.
        windows: Vec<String>,
    },
    /// The named initiator's window was not seen.
    #[error("No formation window of {name:?} was seen (seen: {})", if .seen.is_empty() { "none".to_string() } else { .seen.join(", ") })]
    NotSeen {
        /// The initiator named.
        name: String,
        /// The windows seen, by initiator.
        seen: Vec<String>,
    },
}

/// What an open window advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// The initiator's name (the DNS-SD instance name).
    pub name: String,
    /// The protocol version, [`PROTOCOL_VERSION`] for this build.
    pub version: String,
    /// The window id.
    pub id: String,
    /// The first 16 hexadecimal characters of the initiator's certificate fingerprint.
    pub fingerprint: String,
    /// The initiator's HTTPS port.
    pub port: u16,
}

impl Advert {
    /// This build's advertisement of window `id` of initiator `name`, whose certificate has
    /// fingerprint `fingerprint` (the whole of it or its start, at least 16 characters).
    pub fn new(
        name: &str,
        id: &str,
        fingerprint: &str,
        port: u16,
    ) -> Result<Advert, DiscoveryError> {
        let advert = Advert {
            name: name.to_string(),
            version: PROTOCOL_VERSION.to_string(),
            id: id.to_string(),
            fingerprint: fingerprint
                .get(..16)
                .unwrap_or(fingerprint)
                .to_ascii_lowercase(),
            port,
        };
        advert.check()?;
        Ok(advert)
    }

    fn check(&self) -> Result<(), DiscoveryError> {
        if let Err(e) = rxd_api::names::check("cluster member", &self.name) {
            return Err(DiscoveryError::BadAdvert(e));
        }
        if !is_window_id(&self.id) {
            return Err(DiscoveryError::BadAdvert(format!(
                "window id {:?} is not 16 hexadecimal characters",
                self.id
            )));
        }
        if !is_short_fingerprint(&self.fingerprint) {
            return Err(DiscoveryError::BadAdvert(format!(
                "fingerprint {:?} is not 16 hexadecimal characters",
                self.fingerprint
            )));
        }
        if self.version.is_empty() || self.version.len() > 16 {
            return Err(DiscoveryError::BadAdvert(format!(
                "version {:?} is not 1 to 16 characters",
                self.version
            )));
        }
        Ok(())
    }
}

fn is_short_fingerprint(fp: &str) -> bool {
    fp.len() == 16 && fp.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A window advertised on one interface until dropped (or [`Advertiser::stop`]ped).
pub struct Advertiser {
    daemon: ServiceDaemon,
    fullname: String,
}

impl Advertiser {
    /// Advertises `advert` on `interface` only, with that interface's addresses.
    pub fn start(advert: &Advert, interface: &str) -> Result<Advertiser, DiscoveryError> {
        advert.check()?;
        let failed = |e: mdns_sd::Error| DiscoveryError::Mdns {
            interface: interface.to_string(),
            reason: e.to_string(),
        };
        let daemon = daemon_on(interface)?;
        let host = format!("{}-{}.local.", advert.name, advert.id);
        let txt = [
            ("v", advert.version.as_str()),
            ("id", advert.id.as_str()),
            ("fp", advert.fingerprint.as_str()),
        ];
        let instance = format!("{}-{}", advert.name, advert.id);
        let mut info = ServiceInfo::new(SERVICE_TYPE, &instance, &host, (), advert.port, &txt[..])
            .map_err(failed)?
            .enable_addr_auto();
        info.set_interfaces(vec![IfKind::Name(interface.to_string())]);
        let fullname = info.get_fullname().to_string();
        daemon.register(info).map_err(failed)?;
        Ok(Advertiser { daemon, fullname })
    }

    /// Stops advertising (a goodbye packet tells browsers the window is gone).
    pub fn stop(self) {}
}

impl Drop for Advertiser {
    fn drop(&mut self) {
        // Best effort: the goodbye is sent before the daemon stops; a browser that misses it
        // forgets the window when its record expires.
        if let Ok(done) = self.daemon.unregister(&self.fullname) {
            let _ = done.recv_timeout(Duration::from_secs(1));
        }
        if let Ok(done) = self.daemon.shutdown() {
            let _ = done.recv_timeout(Duration::from_secs(1));
        }
    }
}

/// An mDNS daemon that uses `interface` only.
fn daemon_on(interface: &str) -> Result<ServiceDaemon, DiscoveryError> {
    let failed = |e: mdns_sd::Error| DiscoveryError::Mdns {
        interface: interface.to_string(),
        reason: e.to_string(),
    };
    let daemon = ServiceDaemon::new().map_err(failed)?;
    // Selections apply in order, the last match winning, before any service or browse.
    daemon.disable_interface(IfKind::All).map_err(failed)?;
    daemon
        .enable_interface(IfKind::Name(interface.to_string()))
        .map_err(failed)?;
    Ok(daemon)
}

/// A window seen while browsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The initiator's name (the instance name).
    pub name: String,
    /// Its TXT `v`.
    pub version: String,
    /// Its TXT `id`.
    pub id: String,
    /// Its TXT `fp`.
    pub fingerprint: String,
    /// The initiator's addresses.
    pub addresses: Vec<IpAddr>,
    /// Its HTTPS port.
    pub port: u16,
}

impl Seen {
    /// Whether this build can join it: same protocol, well-formed id and fingerprint.
    pub fn is_compatible(&self) -> bool {
        self.version == PROTOCOL_VERSION
            && is_window_id(&self.id)
            && is_short_fingerprint(&self.fingerprint)
    }
}

/// How long to browse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrowseSettings {
    /// How long to keep listening after the first window is seen, for the others.
    pub listen: Duration,
    /// How long to wait for a first window before giving up.
    pub silence: Duration,
}

impl Default for BrowseSettings {
    fn default() -> Self {
        BrowseSettings {
            listen: Duration::from_secs(2),
            silence: Duration::from_secs(60),
        }
    }
}

/// Browses `interface` and lists every window seen (other versions included), by name; an
/// error if none is seen within `settings.silence`.
pub fn browse(interface: &str, settings: BrowseSettings) -> Result<Vec<Seen>, DiscoveryError> {
    let daemon = daemon_on(interface)?;
    let events = daemon
        .browse(SERVICE_TYPE)
        .map_err(|e| DiscoveryError::Mdns {
            interface: interface.to_string(),
            reason: e.to_string(),
        })?;
    let start = Instant::now();
    let mut first_seen: Option<Instant> = None;
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let result = loop {
        let now = Instant::now();
        let end = match first_seen {
            Some(t) => t + settings.listen,
            None => start + settings.silence,
        };
        if now >= end {
            break if seen.is_empty() {
                Err(DiscoveryError::Silence {
                    interface: interface.to_string(),
                    waited: settings.silence,
                })
            } else {
                Ok(seen.into_values().collect())
            };
        }
        match events.recv_timeout(end - now) {
            Ok(ServiceEvent::ServiceResolved(s)) => {
                let txt = |key: &str| s.get_property_val_str(key).unwrap_or("").to_string();
                let mut addresses: Vec<IpAddr> =
                    s.get_addresses().iter().map(|a| a.to_ip_addr()).collect();
                addresses.sort();
                let id = txt("id");
                let name = initiator_name(&instance_name(&s.fullname), &id);
                seen.insert(
                    s.fullname.clone(),
                    Seen {
                        name,
                        version: txt("v"),
                        id,
                        fingerprint: txt("fp"),
                        addresses,
                        port: s.get_port(),
                    },
                );
                first_seen.get_or_insert(Instant::now());
            }
            Ok(ServiceEvent::ServiceRemoved(_, fullname)) => {
                seen.remove(&fullname);
            }
            Ok(_) => {}
            // A timeout ends the wait at the top of the loop; a closed channel means the
            // daemon stopped, which the same check reports.
            Err(mdns_sd::RecvTimeoutError::Disconnected) => {
                break Err(DiscoveryError::Mdns {
                    interface: interface.to_string(),
                    reason: "the multicast DNS daemon stopped".into(),
                })
            }
            Err(_) => {}
        }
    };
    if let Ok(done) = daemon.shutdown() {
        let _ = done.recv_timeout(Duration::from_secs(1));
    }
    result
}

/// `node1._rxd._tcp.local.` → `node1` (DNS-SD escapes a dot in the instance as `\.`).
fn instance_name(fullname: &str) -> String {
    let instance = fullname
        .strip_suffix(SERVICE_TYPE)
        .unwrap_or(fullname)
        .trim_end_matches('.');
    instance.replace("\\.", ".").replace("\\\\", "\\")
}

/// The initiator's name in instance `<name>-<id>` of window `id` (the whole instance when it
/// does not end so).
fn initiator_name(instance: &str, id: &str) -> String {
    match instance.strip_suffix(id).and_then(|n| n.strip_suffix('-')) {
        Some(name) if !id.is_empty() && !name.is_empty() => name.to_string(),
        _ => instance.to_string(),
    }
}

/// Chooses the window to join among those seen: the one of `initiator` when named, else the
/// only compatible one. Several without a name is an error listing them (the interactive
/// front-end asks instead).
pub fn pick<'a>(seen: &'a [Seen], initiator: Option<&str>) -> Result<&'a Seen, DiscoveryError> {
    let compatible: Vec<&Seen> = seen.iter().filter(|s| s.is_compatible()).collect();
    let names = || {
        compatible
            .iter()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>()
    };
    match initiator {
        Some(name) => {
            let found: Vec<&&Seen> = compatible.iter().filter(|s| s.name == name).collect();
            match found.as_slice() {
                [one] => Ok(one),
                [] => Err(DiscoveryError::NotSeen {
                    name: name.to_string(),
                    seen: names(),
                }),
                many => Err(DiscoveryError::SameName {
                    name: name.to_string(),
                    windows: many
                        .iter()
                        .map(|s| {
                            let at: Vec<String> =
                                s.addresses.iter().map(ToString::to_string).collect();
                            format!("window {} at {}", s.id, at.join(" "))
                        })
                        .collect(),
                }),
            }
        }
        None => match compatible.as_slice() {
            [one] => Ok(one),
            [] => Err(DiscoveryError::NotSeen {
                name: String::new(),
                seen: Vec::new(),
            }),
            _ => Err(DiscoveryError::Several(names())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(name: &str, version: &str, id: &str) -> Seen {
        Seen {
            name: name.into(),
            version: version.into(),
            id: id.into(),
            fingerprint: "9f8e7d6c5b4a3f21".into(),
            addresses: vec![],
            port: 8443,
        }
    }

    #[test]
    fn adverts_carry_nothing_but_the_version_id_and_a_short_fingerprint() {
        let fp = "9F8E7D6C5B4A3F21".to_string() + &"0".repeat(48);
        let a = Advert::new("node1", "0123456789abcdef", &fp, 8443).unwrap();
        assert_eq!(a.fingerprint, "9f8e7d6c5b4a3f21");
        assert_eq!(a.version, PROTOCOL_VERSION);
        for (name, id, fp) in [
            ("node1", "0123", "9f8e7d6c5b4a3f21"),
            ("node1", "0123456789abcdef", "9f8e"),
            ("node1", "0123456789abcdef", "zz8e7d6c5b4a3f21"),
            ("../x", "0123456789abcdef", "9f8e7d6c5b4a3f21"),
        ] {
            assert!(
                matches!(
                    Advert::new(name, id, fp, 8443),
                    Err(DiscoveryError::BadAdvert(_))
                ),
                "{name} {id} {fp}"
            );
        }
    }

    #[test]
    fn instance_names_are_unescaped() {
        assert_eq!(instance_name("node1._rxd._tcp.local."), "node1");
        assert_eq!(instance_name("a\\.b._rxd._tcp.local."), "a.b");
        assert_eq!(
            initiator_name("node-1-0123456789abcdef", "0123456789abcdef"),
            "node-1"
        );
        assert_eq!(
            initiator_name("node1-0123456789abcdef", "fedcba9876543210"),
            "node1-0123456789abcdef"
        );
        assert_eq!(
            initiator_name("-0123456789abcdef", "0123456789abcdef"),
            "-0123456789abcdef"
        );
        assert_eq!(initiator_name("node1", ""), "node1");
    }

    #[test]
    fn picking_a_window() {
        let windows = vec![
            seen("node1", "1", "0123456789abcdef"),
            seen("node4", "1", "fedcba9876543210"),
            seen("node9", "2", "1111111111111111"),
        ];
        assert_eq!(pick(&windows, Some("node4")).unwrap().name, "node4");
        assert_eq!(
            pick(&windows, None).unwrap_err().to_string(),
            "Several formation windows are open (node1, node4): name the initiator"
        );
        // Another version is listed but not joined.
        assert_eq!(
            pick(&windows, Some("node9")).unwrap_err().to_string(),
            "No formation window of \"node9\" was seen (seen: node1, node4)"
        );
        assert_eq!(pick(&windows[1..], None).unwrap().name, "node4");
        // A rogue claiming node1's name: neither is chosen.
        let mut rogue = seen("node1", "1", "1234123412341234");
        rogue.addresses = vec!["192.0.2.3".parse().unwrap()];
        let both = [windows[0].clone(), rogue];
        assert_eq!(
            pick(&both, Some("node1")).unwrap_err().to_string(),
            "Several formation windows claim the name \"node1\" (window 0123456789abcdef at , \
             window 1234123412341234 at 192.0.2.3): all but one are not its; give the address \
             of the window rxd form opened with --initiator-address"
        );
    }

    #[test]
    fn the_silence_error_names_the_interface_the_port_and_the_way_out() {
        assert_eq!(
            BrowseSettings::default(),
            BrowseSettings {
                listen: Duration::from_secs(2),
                silence: Duration::from_secs(60)
            }
        );
        let e = DiscoveryError::Silence {
            interface: "eth1".into(),
            waited: Duration::from_secs(60),
        };
        assert_eq!(
            e.to_string(),
            "No formation window was seen on interface eth1 within 60 s: check that multicast \
             DNS (UDP port 5353) passes on eth1, or give the initiator's address with \
             --initiator-address"
        );
    }
}
