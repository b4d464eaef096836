//! The formation plan: a pure function from what every server reported (its [`Facts`]) and
//! what the operator answered ([`Answers`]) to a [`Plan`], or to every reason there cannot be
//! one. It checks that names and addresses are unique, versions and API extensions equal,
//! `member_config` complete and consistent, every member reaches every other, and clocks agree;
//! [`Plan::dry_run_text`] is what `--dry-run` prints, the data that would be lost included.
//!
//! ```text
//! facts (initiator, joiners) + existing members + answers ──plan()──> Plan ──> executor
//!                                                                 └─> Vec<PlanError>
//! ```

mod cidr;
mod dry_run;
mod member_config;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use rxd_api::{ClusterMemberConfigKey, InitNetwork, StoragePoolsPost};
use serde::{Deserialize, Serialize};

pub use cidr::Cidr;
use member_config::check_member_config;
pub use member_config::REQUIRED_MEMBER_KEYS;

/// The port a member listens on unless the answers say otherwise.
pub const DEFAULT_PORT: u16 = 8443;

/// The most two clocks may differ by default.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(5);

/// One of a server's network interfaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Its name.
    pub name: String,
    /// Its addresses with their prefix lengths.
    pub addresses: Vec<Cidr>,
}

/// One of a server's disks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    /// Its device path, such as `/dev/sdb`.
    pub path: String,
    /// Its size.
    pub size_bytes: u64,
    /// Whether it holds partitions or a file system (that a pool on it would erase).
    pub holds_data: bool,
    /// Whether it is mounted or otherwise in use (no pool may take it).
    pub in_use: bool,
}

/// What a server holds that joining a cluster throws away.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LocalData {
    /// Instance names.
    pub instances: Vec<String>,
    /// Image fingerprints.
    pub images: Vec<String>,
    /// Storage pool names.
    pub storage_pools: Vec<String>,
    /// Managed network names.
    pub networks: Vec<String>,
    /// Profiles other than `default`.
    pub profiles: Vec<String>,
}

impl LocalData {
    /// Whether the server is clean.
    pub fn is_empty(&self) -> bool {
        self == &LocalData::default()
    }
}

/// What a server reported about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// Its name.
    pub name: String,
    /// Its certificate fingerprint (hexadecimal SHA-256).
    pub fingerprint: String,
    /// Its rxd version.
    pub version: String,
    /// Its API extensions.
    pub api_extensions: Vec<String>,
    /// What it holds.
    pub local_data: LocalData,
    /// Its clock when it reported, in milliseconds since the epoch.
    pub clock_ms: i64,
    /// The initiator's clock when the report arrived, in milliseconds since the epoch.
    pub received_ms: i64,
    /// Its interfaces and their addresses.
    pub interfaces: Vec<Interface>,
    /// Its disks.
    pub disks: Vec<Disk>,
    /// The addresses (`ip:port`) of the other servers it could connect to.
    pub reaches: Vec<String>,
}

/// A member of the cluster being grown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    /// Its name.
    pub name: String,
    /// Its cluster address.
    pub address: String,
}

/// A server the operator approved, by name and optionally by fingerprint (its first
/// characters, at least 16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    /// Its name.
    pub name: String,
    /// The start of its certificate fingerprint, if given.
    pub fingerprint: Option<String>,
}

/// Which joiners to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every server that joined the window.
    All,
    /// These.
    Named(Vec<Approved>),
}

/// Where the members' cluster addresses are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressSource {
    /// On the interface of this name on each server.
    Interface(String),
    /// In this subnet.
    Subnet(Cidr),
}

impl std::fmt::Display for AddressSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddressSource::Interface(name) => write!(f, "on interface {name}"),
            AddressSource::Subnet(net) => write!(f, "in subnet {net}"),
        }
    }
}

/// What the operator answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Answers {
    /// The servers to add.
    pub servers: Selection,
    /// Where their addresses are.
    pub addresses: AddressSource,
    /// The port every member listens on.
    pub port: u16,
    /// Storage pools to make on every member (#4's section).
    pub storage_pools: Vec<StoragePoolsPost>,
    /// Networks to make on every member (#4's section).
    pub networks: Vec<InitNetwork>,
    /// Member-specific values, by member name.
    pub member_config: BTreeMap<String, Vec<ClusterMemberConfigKey>>,
}

/// The planner's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most a server's clock may differ from the initiator's.
    pub max_clock_skew: Duration,
    /// Whether every server must have reported reaching every other member: off for the
    /// first plan, which gives the addresses the servers then probe.
    pub reachability: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
            reachability: true,
        }
    }
}

/// A reason there is no plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Nothing to add.
    #[error("No server to add: no server joined the formation window")]
    NoServers,
    /// An approved name that did not join.
    #[error("Server {0:?} did not join the formation window")]
    NotJoined(String),
    /// An approved fingerprint that does not match.
    #[error("Server {name:?} has certificate fingerprint {got}, which does not start with the approved {expected}")]
    Fingerprint {
        /// The server.
        name: String,
        /// The approved start.
        expected: String,
        /// Its real fingerprint.
        got: String,
    },
    /// Two servers with one name.
    #[error("Server name {0:?} is used more than once")]
    DuplicateName(String),
    /// Two servers with one address.
    #[error("Address {address} is used by more than one server: {}", .names.join(", "))]
    DuplicateAddress {
        /// The address.
        address: String,
        /// Who has it.
        names: Vec<String>,
    },
    /// A server without an address where the answers put them.
    #[error("Server {name:?} has no address {place}")]
    NoAddress {
        /// The server.
        name: String,
        /// Where it was looked for.
        place: AddressSource,
    },
    /// Another version than the initiator's.
    #[error("Server {name:?} runs version {version}, the initiator {expected}")]
    Version {
        /// The server.
        name: String,
        /// Its version.
        version: String,
        /// The initiator's.
        expected: String,
    },
    /// Other API extensions than the initiator's.
    #[error("Server {name:?} has other API extensions than the initiator (missing: {}; extra: {})", list(.missing), list(.extra))]
    Extensions {
        /// The server.
        name: String,
        /// The initiator's that it lacks.
        missing: Vec<String>,
        /// Its own that the initiator lacks.
        extra: Vec<String>,
    },
    /// A member_config problem (its sentence).
    #[error("{0}")]
    MemberConfig(String),
    /// A pair of members that cannot talk.
    #[error("Server {from:?} cannot reach {to:?} at {address}")]
    Unreachable {
        /// Who tried.
        from: String,
        /// Whom.
        to: String,
        /// At which address.
        address: String,
    },
    /// A clock too far off.
    #[error(
        "The clock of server {name:?} is {skew_ms} ms off the initiator's, more than {max_ms} ms"
    )]
    ClockSkew {
        /// The server.
        name: String,
        /// How far off (absolute).
        skew_ms: u64,
        /// The most allowed.
        max_ms: u64,
    },
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// A member's part in the formation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It runs the formation (and keeps its data).
    Initiator,
    /// Already a member of the cluster being grown.
    Existing,
    /// It joins (and loses its local data).
    Joiner,
}

/// One member in the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedMember {
    /// Its name.
    pub name: String,
    /// Its cluster address (`ip:port`).
    pub address: String,
    /// Its certificate fingerprint (empty for an existing member, whose is trusted already).
    pub fingerprint: String,
    /// Its part.
    pub role: Role,
    /// Its member-specific values.
    pub member_config: Vec<ClusterMemberConfigKey>,
    /// What it loses, as phrases ("instances c1, c2").
    pub data_lost: Vec<String>,
}

/// What the formation will do.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Whether a new cluster is made (else the initiator's grows).
    pub new_cluster: bool,
    /// Every member after the formation: the initiator first, then existing members, then
    /// joiners, each group by name.
    pub members: Vec<PlannedMember>,
    /// Storage pools made on every member.
    pub storage_pools: Vec<StoragePoolsPost>,
    /// Networks made on every member.
    pub networks: Vec<InitNetwork>,
}

/// Makes the plan, or lists every reason there is none.
pub fn plan(
    initiator: &Facts,
    existing: &[Existing],
    joiners: &[Facts],
    answers: &Answers,
    limits: &Limits,
) -> Result<Plan, Vec<PlanError>> {
    let mut errors = Vec::new();
    let selected = select(initiator, joiners, &answers.servers, &mut errors);
    if selected.is_empty() && errors.is_empty() {
        errors.push(PlanError::NoServers);
    }

    // Names: the initiator, the existing members and the joiners, each once.
    let mut seen = BTreeSet::new();
    let names = std::iter::once(initiator.name.as_str())
        .chain(
            existing
                .iter()
                .map(|e| e.name.as_str())
                .filter(|n| *n != initiator.name),
        )
        .chain(selected.iter().map(|f| f.name.as_str()));
    for name in names {
        if !seen.insert(name) {
            errors.push(PlanError::DuplicateName(name.to_string()));
        }
    }

    // Addresses: an existing member keeps its own; others take theirs from the answers.
    let own_existing = existing.iter().find(|e| e.name == initiator.name);
    let mut members = Vec::new();
    let initiator_address = match own_existing {
        Some(e) => Some(e.address.clone()),
        None => address_of(initiator, answers, &mut errors),
    };
    if let Some(address) = initiator_address {
        members.push(member(initiator, address, Role::Initiator, answers));
    }
    let mut others: Vec<&Existing> = existing
        .iter()
        .filter(|e| e.name != initiator.name)
        .collect();
    others.sort_by(|a, b| a.name.cmp(&b.name));
    for e in others {
        members.push(PlannedMember {
            name: e.name.clone(),
            address: e.address.clone(),
            fingerprint: String::new(),
            role: Role::Existing,
            member_config: Vec::new(),
            data_lost: Vec::new(),
        });
    }
    let mut sorted: Vec<&Facts> = selected.clone();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for f in &sorted {
        if let Some(address) = address_of(f, answers, &mut errors) {
            let mut m = member(f, address, Role::Joiner, answers);
            m.data_lost = data_lost(f, &m.member_config);
            members.push(m);
        }
    }
    let mut by_address: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for m in &members {
        by_address
            .entry(m.address.as_str())
            .or_default()
            .push(m.name.clone());
    }
    for (address, names) in by_address {
        if names.len() > 1 {
            errors.push(PlanError::DuplicateAddress {
                address: address.to_string(),
                names,
            });
        }
    }

    // Versions and extensions: the initiator's.
    for f in &sorted {
        if f.version != initiator.version {
            errors.push(PlanError::Version {
                name: f.name.clone(),
                version: f.version.clone(),
                expected: initiator.version.clone(),
            });
        }
        let theirs: BTreeSet<&String> = f.api_extensions.iter().collect();
        let ours: BTreeSet<&String> = initiator.api_extensions.iter().collect();
        if theirs != ours {
            errors.push(PlanError::Extensions {
                name: f.name.clone(),
                missing: ours.difference(&theirs).map(|s| s.to_string()).collect(),
                extra: theirs.difference(&ours).map(|s| s.to_string()).collect(),
            });
        }
    }

    // Clocks.
    let max_ms = limits.max_clock_skew.as_millis() as u64;
    for f in std::iter::once(initiator).chain(sorted.iter().copied()) {
        let skew_ms = f.clock_ms.abs_diff(f.received_ms);
        if skew_ms > max_ms {
            errors.push(PlanError::ClockSkew {
                name: f.name.clone(),
                skew_ms,
                max_ms,
            });
        }
    }

    check_member_config(&members, &sorted, answers, &mut errors);

    // Reachability: every server that reported facts reaches every other member.
    let reporters: Vec<&Facts> = std::iter::once(initiator)
        .chain(sorted.iter().copied())
        .collect();
    for from in reporters.iter().filter(|_| limits.reachability) {
        let reached: BTreeSet<&str> = from.reaches.iter().map(String::as_str).collect();
        for to in members.iter().filter(|m| m.name != from.name) {
            if !reached.contains(to.address.as_str()) {
                errors.push(PlanError::Unreachable {
                    from: from.name.clone(),
                    to: to.name.clone(),
                    address: to.address.clone(),
                });
            }
        }
    }

    if errors.is_empty() {
        Ok(Plan {
            new_cluster: existing.is_empty(),
            members,
            storage_pools: answers.storage_pools.clone(),
            networks: answers.networks.clone(),
        })
    } else {
        Err(errors)
    }
}

/// The joiners the answers select, approved names and fingerprints checked.
fn select<'a>(
    initiator: &Facts,
    joiners: &'a [Facts],
    selection: &Selection,
    errors: &mut Vec<PlanError>,
) -> Vec<&'a Facts> {
    match selection {
        Selection::All => joiners.iter().collect(),
        Selection::Named(approved) => {
            let mut out = Vec::new();
            for a in approved {
                let found: Option<&Facts> = if a.name == initiator.name {
                    None
                } else {
                    joiners.iter().find(|f| f.name == a.name)
                };
                let fingerprint_of = if a.name == initiator.name {
                    Some(initiator)
                } else {
                    found
                };
                let Some(f) = fingerprint_of else {
                    errors.push(PlanError::NotJoined(a.name.clone()));
                    continue;
                };
                if let Some(expected) = &a.fingerprint {
                    if !f
                        .fingerprint
                        .to_ascii_lowercase()
                        .starts_with(&expected.to_ascii_lowercase())
                    {
                        errors.push(PlanError::Fingerprint {
                            name: a.name.clone(),
                            expected: expected.clone(),
                            got: f.fingerprint.clone(),
                        });
                        continue;
                    }
                }
                if let Some(f) = found {
                    out.push(f);
                }
            }
            out
        }
    }
}

/// The server's address where the answers say, as `ip:port`.
fn address_of(f: &Facts, answers: &Answers, errors: &mut Vec<PlanError>) -> Option<String> {
    let found = address_in(&f.interfaces, &answers.addresses, answers.port);
    if found.is_none() {
        errors.push(PlanError::NoAddress {
            name: f.name.clone(),
            place: answers.addresses.clone(),
        });
    }
    found
}

/// The address among `interfaces` at `place`, as `ip:port`: IPv4 first, then IPv6, each in
/// the order listed; never loopback, unspecified or IPv6 link-local. The planner gives each
/// server this address; `rxd form` listens on its own before the plan.
pub fn address_in(interfaces: &[Interface], place: &AddressSource, port: u16) -> Option<String> {
    let candidates: Vec<IpAddr> = match place {
        AddressSource::Interface(name) => interfaces
            .iter()
            .filter(|i| &i.name == name)
            .flat_map(|i| i.addresses.iter().map(|c| c.addr))
            .filter(|ip| usable(*ip))
            .collect(),
        AddressSource::Subnet(net) => interfaces
            .iter()
            .flat_map(|i| i.addresses.iter().map(|c| c.addr))
            .filter(|ip| net.contains(*ip) && usable(*ip))
            .collect(),
    };
    let chosen = candidates
        .iter()
        .find(|ip| ip.is_ipv4())
        .or_else(|| candidates.first());
    match chosen {
        Some(IpAddr::V4(ip)) => Some(format!("{ip}:{port}")),
        Some(IpAddr::V6(ip)) => Some(format!("[{ip}]:{port}")),
        None => None,
    }
}

/// Loopback and IPv6 link-local addresses cannot be another server's way in.
fn usable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_unspecified(),
        IpAddr::V6(v6) => {
            !v6.is_loopback() && !v6.is_unspecified() && (v6.segments()[0] & 0xffc0) != 0xfe80
        }
    }
}

fn member(f: &Facts, address: String, role: Role, answers: &Answers) -> PlannedMember {
    PlannedMember {
        name: f.name.clone(),
        address,
        fingerprint: f.fingerprint.clone(),
        role,
        member_config: answers
            .member_config
            .get(&f.name)
            .cloned()
            .unwrap_or_default(),
        data_lost: Vec::new(),
    }
}

/// What a server whose facts are `f` loses by joining, with its `member_config`, in words.
pub fn data_lost(f: &Facts, member_config: &[ClusterMemberConfigKey]) -> Vec<String> {
    let d = &f.local_data;
    let mut out = Vec::new();
    for (what, items) in [
        ("instances", &d.instances),
        ("images", &d.images),
        ("storage pools", &d.storage_pools),
        ("networks", &d.networks),
        ("profiles", &d.profiles),
    ] {
        if !items.is_empty() {
            out.push(format!("{what} {}", items.join(", ")));
        }
    }
    for k in member_config {
        if k.entity == "storage-pool" && k.key == "source" {
            if let Some(disk) = f.disks.iter().find(|d| d.path == k.value && d.holds_data) {
                out.push(format!(
                    "everything on disk {} (storage pool {})",
                    disk.path, k.name
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn facts(name: &str, n: u8) -> Facts {
        Facts {
            name: name.into(),
            fingerprint: format!("{n:02x}").repeat(32),
            version: "0.1.0".into(),
            api_extensions: vec!["clustering".into(), "storage".into()],
            local_data: LocalData::default(),
            clock_ms: 1_000_000,
            received_ms: 1_000_000,
            interfaces: vec![
                Interface {
                    name: "lo".into(),
                    addresses: vec![cidr("127.0.0.1/8")],
                },
                Interface {
                    name: "eth1".into(),
                    addresses: vec![
                        cidr(&format!("fe80::{n}/64")),
                        cidr(&format!("10.0.0.{n}/24")),
                    ],
                },
            ],
            disks: vec![Disk {
                path: "/dev/sdb".into(),
                size_bytes: 20 << 30,
                holds_data: false,
                in_use: false,
            }],
            reaches: (1..=9).map(|i| format!("10.0.0.{i}:8443")).collect(),
        }
    }

    fn answers() -> Answers {
        Answers {
            servers: Selection::All,
            addresses: AddressSource::Interface("eth1".into()),
            port: DEFAULT_PORT,
            storage_pools: vec![StoragePoolsPost {
                name: "local".into(),
                driver: "btrfs".into(),
                ..Default::default()
            }],
            networks: vec![InitNetwork {
                name: "rxdbr0".into(),
                network_type: "bridge".into(),
                ..Default::default()
            }],
            member_config: BTreeMap::new(),
        }
    }

    fn key(entity: &str, name: &str, key: &str, value: &str) -> ClusterMemberConfigKey {
        ClusterMemberConfigKey {
            entity: entity.into(),
            name: name.into(),
            key: key.into(),
            value: value.into(),
            ..Default::default()
        }
    }

    fn three() -> (Facts, Vec<Facts>) {
        (
            facts("node1", 1),
            vec![facts("node3", 3), facts("node2", 2)],
        )
    }

    fn errors(r: Result<Plan, Vec<PlanError>>) -> Vec<String> {
        r.expect_err("a plan was made")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn three_clean_servers_make_a_plan() {
        let (initiator, joiners) = three();
        let plan = plan(&initiator, &[], &joiners, &answers(), &Limits::default()).unwrap();
        let got: Vec<(&str, &str, Role)> = plan
            .members
            .iter()
            .map(|m| (m.name.as_str(), m.address.as_str(), m.role))
            .collect();
        assert_eq!(
            got,
            vec![
                ("node1", "10.0.0.1:8443", Role::Initiator),
                ("node2", "10.0.0.2:8443", Role::Joiner),
                ("node3", "10.0.0.3:8443", Role::Joiner),
            ]
        );
        assert!(plan.new_cluster);
        assert_eq!(
            plan.dry_run_text(),
            "A new cluster of 3 servers, formed by node1\n\
             \n\
             NAME   ADDRESS        FINGERPRINT       ROLE\n\
             node1  10.0.0.1:8443  0101010101010101  initiator\n\
             node2  10.0.0.2:8443  0202020202020202  joins\n\
             node3  10.0.0.3:8443  0303030303030303  joins\n\
             \n\
             Storage pools: local (btrfs)\n\
             Networks: rxdbr0 (bridge)\n\
             \n\
             No data is lost\n"
        );
    }

    #[test]
    fn the_dry_run_names_the_data_that_is_lost() {
        let (initiator, mut joiners) = three();
        joiners[0].local_data.instances = vec!["c1".into(), "c2".into()];
        joiners[0].local_data.storage_pools = vec!["default".into()];
        joiners[1].disks[0].holds_data = true;
        // The initiator keeps what it has.
        let mut initiator = initiator;
        initiator.local_data.instances = vec!["web".into()];
        let mut a = answers();
        a.member_config.insert(
            "node2".into(),
            vec![key("storage-pool", "local", "source", "/dev/sdb")],
        );
        a.member_config.insert(
            "node3".into(),
            vec![key("storage-pool", "local", "size", "20GiB")],
        );
        let plan = plan(&initiator, &[], &joiners, &a, &Limits::default()).unwrap();
        let text = plan.dry_run_text();
        assert!(
            text.ends_with(
                "Member configuration:\n\
                 \x20 node2: storage-pool local source=/dev/sdb\n\
                 \x20 node3: storage-pool local size=20GiB\n\
                 \n\
                 Data that is lost:\n\
                 \x20 node2: everything on disk /dev/sdb (storage pool local)\n\
                 \x20 node3: instances c1, c2; storage pools default\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn names_and_addresses_are_unique() {
        let (initiator, mut joiners) = three();
        joiners[0].name = "node2".into();
        assert_eq!(
            errors(plan(
                &initiator,
                &[],
                &joiners,
                &answers(),
                &Limits::default()
            )),
            vec!["Server name \"node2\" is used more than once"]
        );
        // Same address, different names.
        let (initiator, mut joiners) = three();
        joiners[0].interfaces[1].addresses = vec![cidr("10.0.0.2/24")];
        assert_eq!(
            errors(plan(
                &initiator,
                &[],
                &joiners,
                &answers(),
                &Limits::default()
            )),
            vec!["Address 10.0.0.2:8443 is used by more than one server: node2, node3"]
        );
        // A grown cluster's members count too.
        let (initiator, joiners) = three();
        let existing = vec![
            Existing {
                name: "node1".into(),
                address: "10.0.0.1:8443".into(),
            },
            Existing {
                name: "node3".into(),
                address: "10.0.0.9:8443".into(),
            },
        ];
        assert_eq!(
            errors(plan(
                &initiator,
                &existing,
                &joiners,
                &answers(),
                &Limits::default()
            )),
            vec!["Server name \"node3\" is used more than once"]
        );
    }

    #[test]
    fn growing_keeps_the_members_addresses() {
        let (initiator, joiners) = three();
        let existing = vec![
            Existing {
                name: "node1".into(),
                address: "10.0.0.1:8443".into(),
            },
            Existing {
                name: "node0".into(),
                address: "10.0.0.9:8443".into(),
            },
        ];
        let plan = plan(
            &initiator,
            &existing,
            &joiners,
            &answers(),
            &Limits::default(),
        )
        .unwrap();
        assert!(!plan.new_cluster);
        let roles: Vec<(&str, Role)> = plan
            .members
            .iter()
            .map(|m| (m.name.as_str(), m.role))
            .collect();
        assert_eq!(
            roles,
            vec![
                ("node1", Role::Initiator),
                ("node0", Role::Existing),
                ("node2", Role::Joiner),
                ("node3", Role::Joiner),
            ]
        );
        assert!(plan
            .dry_run_text()
            .starts_with("The cluster of node1 grows by 2 to 4 servers\n"));
    }

    #[test]
    fn versions_and_extensions_must_equal_the_initiators() {
        let (initiator, mut joiners) = three();
        joiners[0].version = "0.2.0".into();
        joiners[1].api_extensions = vec!["clustering".into(), "events".into()];
        assert_eq!(
            errors(plan(&initiator, &[], &joiners, &answers(), &Limits::default())),
            vec![
                "Server \"node2\" has other API extensions than the initiator (missing: storage; extra: events)",
                "Server \"node3\" runs version 0.2.0, the initiator 0.1.0",
            ]
        );
    }

    #[test]
    fn addresses_come_from_the_interface_or_the_subnet() {
        let (initiator, mut joiners) = three();
        let mut a = answers();
        a.addresses = AddressSource::Subnet(cidr("10.0.0.0/24"));
        a.port = 9443;
        let p = plan(&initiator, &[], &joiners, &a, &Limits::default());
        // Nobody reaches port 9443 in these facts.
        assert!(errors(p.clone()).iter().all(|e| e.contains("cannot reach")));
        for f in joiners.iter_mut() {
            f.reaches = (1..=3).map(|i| format!("10.0.0.{i}:9443")).collect();
        }
        let mut initiator = initiator;
        initiator.reaches = (1..=3).map(|i| format!("10.0.0.{i}:9443")).collect();
        let p = plan(&initiator, &[], &joiners, &a, &Limits::default()).unwrap();
        assert_eq!(p.members[2].address, "10.0.0.3:9443");

        // IPv6 only: bracketed, link-local skipped.
        joiners[1].interfaces[1].addresses = vec![cidr("fe80::2/64"), cidr("fd00::2/64")];
        let a = answers();
        let e = errors(plan(&initiator, &[], &joiners, &a, &Limits::default()));
        assert!(
            e.contains(&"Server \"node1\" cannot reach \"node2\" at [fd00::2]:8443".to_string()),
            "{e:?}"
        );

        let (initiator, mut joiners) = three();
        joiners[0].interfaces.retain(|i| i.name != "eth1");
        assert_eq!(
            errors(plan(
                &initiator,
                &[],
                &joiners,
                &answers(),
                &Limits::default()
            )),
            vec!["Server \"node3\" has no address on interface eth1"]
        );
        let mut a = answers();
        a.addresses = AddressSource::Subnet(cidr("192.0.2.0/24"));
        assert_eq!(
            errors(plan(&initiator, &[], &joiners, &a, &Limits::default())).len(),
            3,
            "nobody has an address there"
        );
    }

    #[test]
    fn every_member_must_reach_every_other() {
        let (mut initiator, mut joiners) = three();
        joiners[0].reaches.retain(|a| a != "10.0.0.2:8443");
        initiator.reaches.retain(|a| a != "10.0.0.3:8443");
        assert_eq!(
            errors(plan(
                &initiator,
                &[],
                &joiners,
                &answers(),
                &Limits::default()
            )),
            vec![
                "Server \"node1\" cannot reach \"node3\" at 10.0.0.3:8443",
                "Server \"node3\" cannot reach \"node2\" at 10.0.0.2:8443",
            ]
        );
        // The first plan, before anyone probed, gives the addresses to probe.
        let first = Limits {
            reachability: false,
            ..Limits::default()
        };
        let plan = plan(&initiator, &[], &joiners, &answers(), &first).unwrap();
        assert_eq!(plan.members[2].address, "10.0.0.3:8443");
    }

    #[test]
    fn clocks_must_agree() {
        let (initiator, mut joiners) = three();
        joiners[0].clock_ms += 5_000;
        joiners[1].clock_ms -= 5_001;
        assert_eq!(
            errors(plan(
                &initiator,
                &[],
                &joiners,
                &answers(),
                &Limits::default()
            )),
            vec!["The clock of server \"node2\" is 5001 ms off the initiator's, more than 5000 ms"]
        );
    }

    #[test]
    fn approval_by_name_and_fingerprint() {
        let (initiator, joiners) = three();
        let mut a = answers();
        a.servers = Selection::Named(vec![
            Approved {
                name: "node1".into(),
                fingerprint: None,
            },
            Approved {
                name: "node2".into(),
                fingerprint: Some("0202020202020202".into()),
            },
        ]);
        let p = plan(&initiator, &[], &joiners, &a, &Limits::default()).unwrap();
        assert_eq!(p.members.len(), 2, "node3 joined but was not approved");
        a.servers = Selection::Named(vec![
            Approved {
                name: "node2".into(),
                fingerprint: Some("0303030303030303".into()),
            },
            Approved {
                name: "node4".into(),
                fingerprint: None,
            },
        ]);
        assert_eq!(
            errors(plan(&initiator, &[], &joiners, &a, &Limits::default())),
            vec![
                format!(
                    "Server \"node2\" has certificate fingerprint {}, which does not start with the approved 0303030303030303",
                    "02".repeat(32)
                ),
                "Server \"node4\" did not join the formation window".into(),
            ]
        );
        assert_eq!(
            errors(plan(&initiator, &[], &[], &answers(), &Limits::default())),
            vec!["No server to add: no server joined the formation window"]
        );
    }

    #[test]
    fn member_config_must_be_complete_and_consistent() {
        let (initiator, mut joiners) = three();
        joiners[0].disks[0].in_use = true;
        let mut a = answers();
        a.networks.push(InitNetwork {
            name: "uplink".into(),
            network_type: "macvlan".into(),
            ..Default::default()
        });
        a.storage_pools[0]
            .config
            .insert("source".into(), "/dev/sdb".into());
        a.member_config.insert(
            "node2".into(),
            vec![
                key("network", "uplink", "parent", "eth2"),
                key("storage-pool", "local", "size", "1GiB"),
                key("storage-pool", "local", "size", "2GiB"),
                key("storage-pool", "other", "size", "1GiB"),
                key("storage-pool", "local", "btrfs.mount_options", "x"),
                key("profile", "default", "x", "y"),
                key("storage-pool", "local", "source", "/dev/sdz"),
            ],
        );
        a.member_config.insert(
            "node3".into(),
            vec![key("storage-pool", "local", "source", "/dev/sdb")],
        );
        a.member_config.insert("node9".into(), vec![]);
        let e = errors(plan(&initiator, &[], &joiners, &a, &Limits::default()));
        assert_eq!(
            e,
            vec![
                "Config key \"source\" of storage pool \"local\" is member-specific: give it for each server in member_config",
                "member_config of \"node2\": storage-pool \"local\" key \"size\" is given twice",
                "member_config of \"node2\": no storage-pool named \"other\" is to be made",
                "member_config of \"node2\": \"btrfs.mount_options\" is not a member-specific key of a storage-pool",
                "member_config of \"node2\": unknown entity \"profile\" (storage-pool or network)",
                "member_config of \"node2\": server \"node2\" has no disk /dev/sdz",
                "member_config of \"node3\": disk /dev/sdb is in use",
                "member_config names server \"node9\", which is not a server to add",
                "member_config of \"node1\" lacks \"parent\" for network \"uplink\" (macvlan needs one per server)",
                "member_config of \"node3\" lacks \"parent\" for network \"uplink\" (macvlan needs one per server)",
            ]
        );
    }
}
