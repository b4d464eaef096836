//! The formation preseed: one YAML file that runs unchanged on every server
//! (`rxd form --preseed` on the initiator, `rxd join --name NAME --preseed` on the others).
//!
//! ```yaml
//! initiator: node1          # or initiator_address: 10.0.0.1
//! interface: eth1           # or subnet: 10.0.0.0/24
//! passphrase_file: form.pass
//! window: 30m
//! members:
//! - {name: node1}
//! - {name: node2, fingerprint: 9f8e7d6c5b4a3f21}
//! - {name: node3, member_config: [{entity: storage-pool, name: local, key: size, value: 20GiB}]}
//! storage_pools: [{name: local, driver: btrfs}]
//! networks: [{name: rxdbr0, type: bridge}]
//! ```
//!
//! [`FormPreseed::parse`] reads and checks it, reporting every problem at once; the result
//! gives the planner its [`Answers`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rxd_api::{ClusterMemberConfigKey, InitNetwork, StoragePoolsPost};
use serde::{Deserialize, Serialize};

use crate::planner::{AddressSource, Answers, Approved, Cidr, Selection, DEFAULT_PORT};
use crate::window::{DEFAULT_EXPIRY, MAX_EXPIRY};

/// A member in the preseed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PreseedMember {
    /// Its name.
    pub name: String,
    /// The start of its certificate fingerprint (at least 16 hexadecimal characters), to
    /// approve only that certificate.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fingerprint: String,
    /// Its member-specific values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub member_config: Vec<ClusterMemberConfigKey>,
}

/// The preseed as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FormPreseed {
    /// The initiator's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub initiator: String,
    /// The initiator's address (`ip` or `ip:port`), when discovery cannot find it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub initiator_address: String,
    /// The interface holding each server's cluster address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface: String,
    /// The subnet holding each server's cluster address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    /// The file holding the passphrase.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub passphrase_file: String,
    /// How long the window stays open (`30m`, `1h`, `90s`; 30 minutes unless given).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub window: String,
    /// The servers to add, the initiator included.
    #[serde(default)]
    pub members: Vec<PreseedMember>,
    /// Storage pools for every member.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storage_pools: Vec<StoragePoolsPost>,
    /// Networks for every member.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<InitNetwork>,
}

/// How the joiners find the initiator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitiatorRef {
    /// Its name, when given (the window it advertises must be this server's).
    pub name: Option<String>,
    /// Its address, when given (no discovery).
    pub address: Option<SocketAddr>,
}

/// A checked preseed.
#[derive(Debug, Clone, PartialEq)]
pub struct Preseed {
    /// The initiator.
    pub initiator: InitiatorRef,
    /// Where cluster addresses are.
    pub addresses: AddressSource,
    /// The passphrase file's path, as written.
    pub passphrase_file: String,
    /// How long the window stays open.
    pub window: Duration,
    /// The servers, in the preseed's order.
    pub members: Vec<PreseedMember>,
    /// Storage pools.
    pub storage_pools: Vec<StoragePoolsPost>,
    /// Networks.
    pub networks: Vec<InitNetwork>,
}

/// Every problem of a preseed, one sentence each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid formation preseed: {}", .0.join("; "))]
pub struct PreseedErrors(pub Vec<String>);

impl FormPreseed {
    /// Reads and checks a preseed.
    pub fn parse(text: &str) -> Result<Preseed, PreseedErrors> {
        Self::read(text)?.check()
    }

    /// Reads the YAML, unchecked.
    pub fn read(text: &str) -> Result<FormPreseed, PreseedErrors> {
        serde_saphyr::from_str(text)
            .map_err(|e| PreseedErrors(vec![format!("cannot read the YAML: {e}")]))
    }

    /// Checks a preseed already read.
    pub fn check(self) -> Result<Preseed, PreseedErrors> {
        self.check_with(true)
    }

    /// Checks the answers a formation is planned with: all but the passphrase's file, which
    /// only `rxd form` and `rxd join` read (an interactive `rxd form` has none).
    pub fn check_answers(self) -> Result<Preseed, PreseedErrors> {
        self.check_with(false)
    }

    fn check_with(self, passphrase_file: bool) -> Result<Preseed, PreseedErrors> {
        let mut errors = Vec::new();

        if self.initiator.is_empty() && self.initiator_address.is_empty() {
            errors.push(
                "give the initiator's name (initiator) or its address (initiator_address)"
                    .to_string(),
            );
        }
        let name = (!self.initiator.is_empty()).then(|| self.initiator.clone());
        if let Some(n) = &name {
            if let Err(e) = rxd_api::names::check("cluster member", n) {
                errors.push(format!("initiator: {e}"));
            }
        }
        let address = if self.initiator_address.is_empty() {
            None
        } else {
            match parse_address(&self.initiator_address) {
                Ok(a) => Some(a),
                Err(e) => {
                    errors.push(e);
                    None
                }
            }
        };

        let addresses = match (self.interface.is_empty(), self.subnet.is_empty()) {
            (true, true) => {
                errors.push("give the interface (interface) or the subnet (subnet) of the cluster addresses".into());
                None
            }
            (false, false) => {
                errors.push("give interface or subnet, not both".into());
                None
            }
            (false, true) => Some(AddressSource::Interface(self.interface.clone())),
            (true, false) => match self.subnet.parse::<Cidr>() {
                Ok(net) => Some(AddressSource::Subnet(net)),
                Err(e) => {
                    errors.push(format!("subnet: {e}"));
                    None
                }
            },
        };

        if passphrase_file && self.passphrase_file.is_empty() {
            errors.push("give the file holding the passphrase (passphrase_file)".into());
        }

        let window = if self.window.is_empty() {
            Some(DEFAULT_EXPIRY)
        } else {
            match parse_duration(&self.window) {
                Ok(d) if d > MAX_EXPIRY => {
                    errors.push(format!(
                        "window: {} is longer than the most, {} minutes",
                        self.window,
                        MAX_EXPIRY.as_secs() / 60
                    ));
                    None
                }
                Ok(d) if d.is_zero() => {
                    errors.push("window: the window must stay open for some time".into());
                    None
                }
                Ok(d) => Some(d),
                Err(e) => {
                    errors.push(e);
                    None
                }
            }
        };

        if self.members.is_empty() {
            errors.push("members: name every server to add, the initiator included".into());
        }
        let mut names = BTreeSet::new();
        for m in &self.members {
            if let Err(e) = rxd_api::names::check("cluster member", &m.name) {
                errors.push(format!("members: {e}"));
            }
            if !names.insert(m.name.as_str()) {
                errors.push(format!("members: duplicate name {:?}", m.name));
            }
            let fp = &m.fingerprint;
            let hex = (16..=64).contains(&fp.len()) && fp.bytes().all(|b| b.is_ascii_hexdigit());
            if !fp.is_empty() && !hex {
                errors.push(format!(
                    "members: fingerprint {fp:?} of {:?} must be 16 to 64 hexadecimal characters",
                    m.name
                ));
            }
        }
        if let Some(n) = &name {
            if !self.members.is_empty() && !names.contains(n.as_str()) {
                errors.push(format!("members: the initiator {n:?} is not among them"));
            }
        }

        let mut pools = BTreeSet::new();
        for p in &self.storage_pools {
            if let Err(e) = rxd_api::names::check("storage pool", &p.name) {
                errors.push(format!("storage_pools: {e}"));
            }
            if !pools.insert(p.name.as_str()) {
                errors.push(format!("storage_pools: duplicate name {:?}", p.name));
            }
        }
        let mut networks = BTreeSet::new();
        for n in &self.networks {
            if n.name.is_empty() {
                errors.push("networks: a network has no name".into());
            }
            if !networks.insert(n.name.as_str()) {
                errors.push(format!("networks: duplicate name {:?}", n.name));
            }
        }
        for m in &self.members {
            for k in &m.member_config {
                let known = match k.entity.as_str() {
                    "storage-pool" => pools.contains(k.name.as_str()),
                    "network" => networks.contains(k.name.as_str()),
                    other => {
                        errors.push(format!(
                            "members: member_config of {:?} names entity {other:?} (storage-pool or network)",
                            m.name
                        ));
                        continue;
                    }
                };
                if !known {
                    errors.push(format!(
                        "members: member_config of {:?} names {} {:?}, which the preseed does not define",
                        m.name, k.entity, k.name
                    ));
                }
            }
        }

        match (addresses, window) {
            (Some(addresses), Some(window)) if errors.is_empty() => Ok(Preseed {
                initiator: InitiatorRef { name, address },
                addresses,
                passphrase_file: self.passphrase_file,
                window,
                members: self.members,
                storage_pools: self.storage_pools,
                networks: self.networks,
            }),
            _ => Err(PreseedErrors(errors)),
        }
    }
}

impl Preseed {
    /// The planner's answers: the members by name (and fingerprint), their values, the
    /// pools and networks.
    pub fn answers(&self) -> Answers {
        let port = self
            .initiator
            .address
            .map(|a| a.port())
            .unwrap_or(DEFAULT_PORT);
        Answers {
            servers: Selection::Named(
                self.members
                    .iter()
                    .map(|m| Approved {
                        name: m.name.clone(),
                        fingerprint: (!m.fingerprint.is_empty()).then(|| m.fingerprint.clone()),
                    })
                    .collect(),
            ),
            addresses: self.addresses.clone(),
            port,
            storage_pools: self.storage_pools.clone(),
            networks: self.networks.clone(),
            member_config: self
                .members
                .iter()
                .filter(|m| !m.member_config.is_empty())
                .map(|m| (m.name.clone(), m.member_config.clone()))
                .collect::<BTreeMap<_, _>>(),
        }
    }
}

/// `ip`, `ip:port` or `[ipv6]:port`; the port is 8443 unless given.
fn parse_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_PORT));
    }
    text.parse::<SocketAddr>().map_err(|_| {
        format!("initiator_address: {text:?} is not an address (10.0.0.1, 10.0.0.1:8443 or [fd00::1]:8443)")
    })
}

/// `90s`, `30m` or `1h` (a window's length, here and in the request opening one).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("window: {text:?} is not a duration (such as 90s, 30m or 1h)");
    let unit = text.chars().last().ok_or_else(bad)?;
    let n: u64 = text[..text.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| bad())?;
    let secs = match unit {
        's' => n,
        'm' => n.checked_mul(60).ok_or_else(bad)?,
        'h' => n.checked_mul(3600).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE_EXAMPLE: &str = "\
initiator: node1          # or initiator_address: 10.0.0.1
interface: eth1           # or subnet: 10.0.0.0/24
passphrase_file: form.pass
window: 30m
members:
- {name: node1}
- {name: node2, fingerprint: 9f8e7d6c5b4a3f21}
- {name: node3, member_config: [{entity: storage-pool, name: local, key: size, value: 20GiB}]}
storage_pools: [{name: local, driver: btrfs}]   # #4's sections, unchanged
networks: [{name: rxdbr0, type: bridge}]
";

    fn errors(text: &str) -> Vec<String> {
        FormPreseed::parse(text).expect_err("accepted").0
    }

    #[test]
    fn the_example_of_the_issue_parses() {
        let p = FormPreseed::parse(ISSUE_EXAMPLE).unwrap();
        assert_eq!(
            p.initiator,
            InitiatorRef {
                name: Some("node1".into()),
                address: None
            }
        );
        assert_eq!(p.addresses, AddressSource::Interface("eth1".into()));
        assert_eq!(p.passphrase_file, "form.pass");
        assert_eq!(p.window, Duration::from_secs(1800));
        assert_eq!(p.members.len(), 3);
        assert_eq!(p.members[1].fingerprint, "9f8e7d6c5b4a3f21");
        assert_eq!(p.storage_pools[0].driver, "btrfs");
        assert_eq!(p.networks[0].network_type, "bridge");

        let a = p.answers();
        assert_eq!(a.port, 8443);
        let Selection::Named(approved) = &a.servers else {
            panic!("a preseed names its servers")
        };
        assert_eq!(approved[1].fingerprint.as_deref(), Some("9f8e7d6c5b4a3f21"));
        assert_eq!(approved[0].fingerprint, None);
        assert_eq!(a.member_config["node3"][0].value, "20GiB");
        assert!(!a.member_config.contains_key("node1"));
    }

    #[test]
    fn addresses_subnets_and_windows() {
        let base = "passphrase_file: p\nmembers: [{name: node1}, {name: node2}]\n";
        let p = FormPreseed::parse(&format!(
            "{base}initiator_address: 10.0.0.1\nsubnet: 10.0.0.0/24\nwindow: 1h\n"
        ))
        .unwrap();
        assert_eq!(p.initiator.address, Some("10.0.0.1:8443".parse().unwrap()));
        assert_eq!(p.initiator.name, None);
        assert_eq!(
            p.addresses,
            AddressSource::Subnet("10.0.0.0/24".parse().unwrap())
        );
        assert_eq!(p.window, Duration::from_secs(3600));
        let p = FormPreseed::parse(&format!(
            "{base}initiator: node1\ninitiator_address: '[fd00::1]:9443'\ninterface: eth1\nwindow: 90s\n"
        ))
        .unwrap();
        assert_eq!(p.answers().port, 9443);
        assert_eq!(p.window, Duration::from_secs(90));
        assert_eq!(p.initiator.name.as_deref(), Some("node1"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let cases: &[(&str, &[&str])] = &[
            (
                "members: [{name: node1}]\n",
                &[
                    "give the initiator's name (initiator) or its address (initiator_address)",
                    "give the interface (interface) or the subnet (subnet) of the cluster addresses",
                    "give the file holding the passphrase (passphrase_file)",
                ],
            ),
            (
                "initiator: node1\ninterface: eth1\nsubnet: 10.0.0.0/24\npassphrase_file: p\nmembers: [{name: node1}]\n",
                &["give interface or subnet, not both"],
            ),
            (
                "initiator: node1\nsubnet: 10.0.0.0\npassphrase_file: p\nmembers: [{name: node1}]\n",
                &["subnet: Invalid subnet \"10.0.0.0\": expected an address and a prefix length, such as 10.0.0.0/24"],
            ),
            (
                "initiator_address: 10.0.0.300\ninterface: eth1\npassphrase_file: p\nmembers: [{name: node1}]\n",
                &["initiator_address: \"10.0.0.300\" is not an address (10.0.0.1, 10.0.0.1:8443 or [fd00::1]:8443)"],
            ),
            (
                "initiator: node1\ninterface: eth1\npassphrase_file: p\nwindow: 61m\nmembers: [{name: node1}]\n",
                &["window: 61m is longer than the most, 60 minutes"],
            ),
            (
                "initiator: node1\ninterface: eth1\npassphrase_file: p\nwindow: 2d\nmembers: [{name: node1}]\n",
                &["window: \"2d\" is not a duration (such as 90s, 30m or 1h)"],
            ),
            (
                "initiator: node1\ninterface: eth1\npassphrase_file: p\nwindow: 0m\nmembers: [{name: node1}]\n",
                &["window: the window must stay open for some time"],
            ),
            (
                "initiator: node1\ninterface: eth1\npassphrase_file: p\n",
                &["members: name every server to add, the initiator included"],
            ),
            (
                "initiator: node1\ninterface: eth1\npassphrase_file: p\nmembers: [{name: node1}, {name: node2}, {name: node2, fingerprint: 9f8e}]\n",
                &[
                    "members: duplicate name \"node2\"",
                    "members: fingerprint \"9f8e\" of \"node2\" must be 16 to 64 hexadecimal characters",
                ],
            ),
            (
                "initiator: node1\ninterface: eth1\npassphrase_file: p\nmembers: [{name: node2}]\n",
                &["members: the initiator \"node1\" is not among them"],
            ),
            (
                "initiator: node1\ninterface: eth1\npassphrase_file: p\nmembers: [{name: node1, member_config: [{entity: storage-pool, name: local, key: size, value: 1GiB}, {entity: image, name: x, key: y, value: z}]}]\n",
                &[
                    "members: member_config of \"node1\" names storage-pool \"local\", which the preseed does not define",
                    "members: member_config of \"node1\" names entity \"image\" (storage-pool or network)",
                ],
            ),
            (
                "initiator: node1\ninterface: eth1\npassphrase_file: p\nmembers: [{name: node1}]\nstorage_pools: [{name: a, driver: dir}, {name: a, driver: dir}]\n",
                &["storage_pools: duplicate name \"a\""],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(errors(text), *want, "{text}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_yaml_are_refused_with_their_place() {
        let e = errors("initiator: node1\npassphrase: hunter2hunter2\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("cannot read the YAML:"), "{e:?}");
        assert!(e[0].contains("passphrase"), "{e:?}");
        let e = errors("members: [{name: node1, role: voter}]\n");
        assert!(e[0].contains("role"), "{e:?}");
        let e = FormPreseed::parse("window: [\n").unwrap_err();
        assert!(e
            .to_string()
            .starts_with("Invalid formation preseed: cannot read the YAML:"));
    }

    #[test]
    fn it_round_trips() {
        let raw: FormPreseed = serde_saphyr::from_str(ISSUE_EXAMPLE).unwrap();
        let again: FormPreseed =
            serde_saphyr::from_str(&serde_saphyr::to_string(&raw).unwrap()).unwrap();
        assert_eq!(again, raw);
    }
}
