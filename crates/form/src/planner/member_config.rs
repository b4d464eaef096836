//! The checks of `member_config`: every value for a known pool or network, a member-specific
//! key, given once, a disk the server has and does not use; and the keys every member must
//! be given.

use std::collections::{BTreeMap, BTreeSet};

use rxd_api::{InitNetwork, StoragePoolsPost};

use super::{Answers, Facts, PlanError, PlannedMember, Role};

use rxd_api::{NETWORK_MEMBER_KEYS, POOL_MEMBER_KEYS};

/// Member-specific keys every member must be given: (entity, driver or type, key). A network
/// of these types sits on a parent interface of each member's own, as in LXD.
pub const REQUIRED_MEMBER_KEYS: &[(&str, &str, &str)] = &[
    ("network", "macvlan", "parent"),
    ("network", "sriov", "parent"),
    ("network", "physical", "parent"),
];

pub(super) fn check_member_config(
    members: &[PlannedMember],
    joiners: &[&Facts],
    answers: &Answers,
    errors: &mut Vec<PlanError>,
) {
    let mut fail = |text: String| errors.push(PlanError::MemberConfig(text));
    let pools: BTreeMap<&str, &StoragePoolsPost> = answers
        .storage_pools
        .iter()
        .map(|p| (p.name.as_str(), p))
        .collect();
    let networks: BTreeMap<&str, &InitNetwork> = answers
        .networks
        .iter()
        .map(|n| (n.name.as_str(), n))
        .collect();
    for p in &answers.storage_pools {
        for key in p.config.keys() {
            if POOL_MEMBER_KEYS.contains(&key.as_str()) {
                fail(format!("Config key {key:?} of storage pool {:?} is member-specific: give it for each server in member_config", p.name));
            }
        }
    }
    for n in &answers.networks {
        for key in n.config.keys() {
            if NETWORK_MEMBER_KEYS.contains(&key.as_str()) {
                fail(format!("Config key {key:?} of network {:?} is member-specific: give it for each server in member_config", n.name));
            }
        }
    }
    for (name, entries) in &answers.member_config {
        let Some(m) = members.iter().find(|m| &m.name == name) else {
            fail(format!(
                "member_config names server {name:?}, which is not a server to add"
            ));
            continue;
        };
        let disks = joiners
            .iter()
            .find(|f| &f.name == name)
            .map(|f| f.disks.as_slice())
            .unwrap_or_default();
        let mut keys = BTreeSet::new();
        for k in entries {
            let (known, member_keys) = match k.entity.as_str() {
                "storage-pool" => (pools.contains_key(k.name.as_str()), POOL_MEMBER_KEYS),
                "network" => (networks.contains_key(k.name.as_str()), NETWORK_MEMBER_KEYS),
                other => {
                    fail(format!("member_config of {name:?}: unknown entity {other:?} (storage-pool or network)"));
                    continue;
                }
            };
            if !known {
                fail(format!(
                    "member_config of {name:?}: no {} named {:?} is to be made",
                    k.entity, k.name
                ));
                continue;
            }
            if !member_keys.contains(&k.key.as_str()) {
                fail(format!(
                    "member_config of {name:?}: {:?} is not a member-specific key of a {}",
                    k.key, k.entity
                ));
                continue;
            }
            if !keys.insert((&k.entity, &k.name, &k.key)) {
                fail(format!(
                    "member_config of {name:?}: {} {:?} key {:?} is given twice",
                    k.entity, k.name, k.key
                ));
            }
            if k.entity == "storage-pool" && k.key == "source" && k.value.starts_with("/dev/") {
                match disks.iter().find(|d| d.path == k.value) {
                    None if m.role == Role::Joiner => fail(format!(
                        "member_config of {name:?}: server {name:?} has no disk {}",
                        k.value
                    )),
                    Some(d) if d.in_use => fail(format!(
                        "member_config of {name:?}: disk {} is in use",
                        k.value
                    )),
                    _ => {}
                }
            }
        }
    }
    // Keys every member must be given.
    for (entity, kind, key) in REQUIRED_MEMBER_KEYS {
        let needing: Vec<&str> = match *entity {
            "network" => answers
                .networks
                .iter()
                .filter(|n| n.network_type == *kind)
                .map(|n| n.name.as_str())
                .collect(),
            _ => answers
                .storage_pools
                .iter()
                .filter(|p| p.driver == *kind)
                .map(|p| p.name.as_str())
                .collect(),
        };
        for object in needing {
            for m in members.iter().filter(|m| m.role != Role::Existing) {
                let given = answers.member_config.get(&m.name).is_some_and(|ks| {
                    ks.iter().any(|k| {
                        k.entity == *entity
                            && k.name == object
                            && k.key == *key
                            && !k.value.is_empty()
                    })
                });
                if !given {
                    fail(format!(
                        "member_config of {:?} lacks {key:?} for {entity} {object:?} ({kind} needs one per server)",
                        m.name
                    ));
                }
            }
        }
    }
}
