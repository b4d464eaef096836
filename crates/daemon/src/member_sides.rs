//! This member's side of the cluster's storage pools and networks, as membership sees it
//! (`rxd_cluster::Host`): the member-specific keys `GET /1.0/cluster` offers a joiner, a
//! joiner making its side of every created pool and network, and the undo of sides a failed
//! join or a removal leaves.
//!
//! ```text
//!  join: for each Created pool ─> record ─> rxd_storage::create  (member keys of member_config)
//!        for each Created managed network ─> record ─> rxd_network::setup
//!  undo: rxd_storage::delete, rxd_network::teardown of what was recorded
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use rxd_api::ClusterMemberConfigKey;
use rxd_client::Client;
use rxd_cluster::host::{MemberSides, PreparedSides, SidesJournal};
use rxd_cluster::join::{client_error, fail};
use rxd_db::tables::{self, Config};

use crate::error::ApiResult;
use crate::handlers::networks::Networks;
use crate::handlers::storage_pools::Pools;
use crate::member_objects::{self, MemberKind};
use crate::Daemon;

/// The member-specific keys this member holds for its pools and networks.
pub async fn member_config(d: &Daemon) -> ApiResult<Vec<ClusterMemberConfigKey>> {
    let mut out = member_objects::member_config::<Pools>(d).await?;
    out.extend(member_objects::member_config::<Networks>(d).await?);
    Ok(out)
}

/// The values `member_config` gives this member's side of object `name` of kind `K`.
fn member_values<K: MemberKind>(member_config: &[ClusterMemberConfigKey], name: &str) -> Config {
    member_config
        .iter()
        .filter(|k| k.entity == K::EVENT && k.name == name && !k.value.is_empty())
        .filter(|k| K::member_keys().contains(&k.key.as_str()))
        .map(|k| (k.key.clone(), k.value.clone()))
        .collect()
}

/// On a joiner: makes this member's side of every pool and managed network the cluster has
/// created, each recorded in `journal` before it is made.
pub async fn prepare(
    dir: &Path,
    c: &Client,
    member_config: &[ClusterMemberConfigKey],
    journal: &mut dyn SidesJournal,
) -> rxd_cluster::Result<PreparedSides> {
    let pools = c
        .storage_pools()
        .await
        .map_err(|e| client_error("Failed to read the cluster's storage pools", e))?;
    let mut prepared = BTreeMap::new();
    for pool in pools.iter().filter(|p| p.status == "Created") {
        let values = member_values::<Pools>(member_config, &pool.name);
        let default_dir = dir.join("storage-pools").join(&pool.name);
        if default_dir.exists() {
            return Err(rxd_cluster::Error::bad_request(format!(
                "Failed to initialize storage pool {:?}: {} already exists",
                pool.name,
                default_dir.display()
            )));
        }
        // Recorded before it is made, with the values it is made from, so a crash in between
        // still removes it.
        journal
            .sides()
            .pools_made
            .push((pool.name.clone(), pool.driver.clone(), values.clone()));
        journal.save()?;
        let cfg = rxd_storage::create(dir, &pool.name, &pool.driver, &pool.config, values)
            .map_err(|e| {
                journal.sides().pools_made.pop();
                fail(
                    &format!("Failed to initialize storage pool {:?}", pool.name),
                    e,
                )
            })?;
        if let Some(last) = journal.sides().pools_made.last_mut() {
            last.2 = cfg.clone();
        }
        journal.save()?;
        prepared.insert(pool.name.clone(), cfg);
    }
    let networks = prepare_networks(dir, c, member_config, journal).await?;
    Ok(PreparedSides {
        storage_pools: prepared,
        networks,
    })
}

/// Brings up this member's side of every managed network the cluster has created, with the
/// member-specific values from `member_config`; returns those values by network.
async fn prepare_networks(
    dir: &Path,
    c: &Client,
    member_config: &[ClusterMemberConfigKey],
    journal: &mut dyn SidesJournal,
) -> rxd_cluster::Result<BTreeMap<String, Config>> {
    let raw = c
        .request("GET", "/1.0/networks?recursion=1", None, None)
        .await
        .map_err(|e| client_error("Failed to read the cluster's networks", e))?;
    let networks: Vec<rxd_api::Network> = raw
        .metadata()
        .map_err(|e| fail("Failed to read the cluster's networks", e))?;
    let mut prepared = BTreeMap::new();
    for net in networks
        .iter()
        .filter(|n| n.managed && n.status == "Created")
    {
        let mine = member_values::<Networks>(member_config, &net.name);
        let mut all = net.config.clone();
        all.extend(mine.clone());
        journal.sides().networks_made.push(net.name.clone());
        journal.save()?;
        if let Err(e) = rxd_network::setup(dir, &net.name, &all, true).await {
            journal.sides().networks_made.pop();
            rxd_network::teardown(dir, &net.name).await;
            return Err(fail(
                &format!("Failed to initialize network {:?}", net.name),
                e,
            ));
        }
        prepared.insert(net.name.clone(), mine);
    }
    Ok(prepared)
}

/// The sides of the cluster's pools this member holds.
pub async fn own(d: &Daemon) -> MemberSides {
    let id = d.node_id();
    let pools = d
        .db()
        .read_local(tables::storage_pools)
        .await
        .unwrap_or_default();
    MemberSides {
        pools_made: pools
            .into_iter()
            .filter_map(|pool| {
                let mine = pool.members.into_iter().find(|m| m.member_id == id)?;
                Some((pool.name, pool.driver, mine.config))
            })
            .collect(),
        networks_made: vec![],
    }
}

/// Removes the sides in `sides` from this host.
pub async fn undo(dir: &Path, sides: &MemberSides) {
    for (name, driver, cfg) in &sides.pools_made {
        rxd_storage::delete(dir, name, driver, cfg);
    }
    for name in &sides.networks_made {
        rxd_network::teardown(dir, name).await;
    }
}
