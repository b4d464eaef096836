//! Applying a preseed to the daemon in LXD's order, and undoing what was done when a later
//! step fails, so a failed `init` leaves the server as it found it.

use rxd_api::{ClusterPut, InitPreseed, ProfilePut, ProfilesPost, ServerPut, StoragePoolPut};
use rxd_client::Client;

use crate::InitError;

/// One step to undo.
enum Undo {
    Config(ServerPut),
    DeletePool(String),
    RestorePool(String, StoragePoolPut),
    DeleteProfile(String),
    RestoreProfile(String, ProfilePut),
    DeleteNetwork(String),
    RestoreNetwork(String, serde_json::Value),
}

async fn undo(client: &Client, steps: Vec<Undo>) {
    for step in steps.into_iter().rev() {
        let result = match &step {
            Undo::Config(put) => client.update_server(put, None).await,
            Undo::DeletePool(name) => client.delete_storage_pool(name).await,
            Undo::RestorePool(name, put) => client.update_storage_pool(name, put, None, None).await,
            Undo::DeleteProfile(name) => client.delete_profile(name).await,
            Undo::RestoreProfile(name, put) => client.update_profile(name, put, None).await,
            Undo::DeleteNetwork(name) => client
                .request("DELETE", &format!("/1.0/networks/{name}"), None, None)
                .await
                .map(|_| ()),
            Undo::RestoreNetwork(name, put) => client
                .request(
                    "PUT",
                    &format!("/1.0/networks/{name}"),
                    Some(put.clone()),
                    None,
                )
                .await
                .map(|_| ()),
        };
        if let Err(e) = result {
            eprintln!("Failed to revert a change made by init: {e}");
        }
    }
}

/// Applies `preseed` to the daemon behind `client`.
pub async fn apply(client: &Client, preseed: &InitPreseed) -> Result<(), InitError> {
    if preseed.is_empty() {
        return Ok(());
    }
    if let Some(c) = &preseed.cluster {
        if c.enabled && (!c.cluster_address.is_empty() || !c.cluster_token.is_empty()) {
            // Joining uses only the cluster section, as lxd init does.
            return crate::join::join(client, c).await;
        }
    }
    if preseed.projects.iter().any(|p| p.name != "default") {
        return Err(InitError::Invalid(
            "Projects other than \"default\" are not supported by this rxd yet".into(),
        ));
    }
    let mut done = Vec::new();
    match steps(client, preseed, &mut done).await {
        Ok(()) => Ok(()),
        Err(e) => {
            undo(client, done).await;
            Err(e)
        }
    }
}

async fn steps(client: &Client, p: &InitPreseed, done: &mut Vec<Undo>) -> Result<(), InitError> {
    // Server configuration: merged into the current one and written back with its ETag.
    if !p.config.is_empty() {
        let (server, etag) = client.server().await?;
        let old = server.config.unwrap_or_default();
        let mut config = old.clone();
        for (k, v) in &p.config {
            config.insert(k.clone(), v.clone());
        }
        if p.cluster.as_ref().is_some_and(|c| c.enabled)
            && !p.config.contains_key("cluster.https_address")
        {
            if let Some(addr) = p.config.get("core.https_address") {
                config.insert("cluster.https_address".into(), addr.clone());
            }
        }
        client
            .update_server(&ServerPut { config }, Some(&etag))
            .await?;
        done.push(Undo::Config(ServerPut { config: old }));
    }
    // Storage pools: new ones are created, existing ones updated.
    if !p.storage_pools.is_empty() {
        let existing = client.storage_pools().await?;
        for pool in &p.storage_pools {
            match existing.iter().find(|e| e.name == pool.name) {
                None => {
                    client.create_storage_pool(pool, None).await?;
                    done.push(Undo::DeletePool(pool.name.clone()));
                }
                Some(e) => {
                    if !pool.driver.is_empty() && pool.driver != e.driver {
                        return Err(InitError::Invalid(format!(
                            "Storage pool {:?} already exists with driver {:?}",
                            pool.name, e.driver
                        )));
                    }
                    let (current, etag) = client.storage_pool(&pool.name, None).await?;
                    let mut config = current.config.clone();
                    config.extend(pool.config.clone());
                    let put = StoragePoolPut {
                        config,
                        description: pool.description.clone(),
                    };
                    client
                        .update_storage_pool(&pool.name, &put, Some(&etag), None)
                        .await?;
                    done.push(Undo::RestorePool(
                        pool.name.clone(),
                        StoragePoolPut {
                            config: current.config,
                            description: current.description,
                        },
                    ));
                }
            }
        }
    }
    // Networks, before the profiles whose NICs use them.
    for net in &p.networks {
        apply_network(client, net, done).await?;
    }
    // Profiles.
    if !p.profiles.is_empty() {
        let existing = client.profiles().await?;
        for profile in &p.profiles {
            apply_profile(
                client,
                profile,
                existing.iter().any(|e| e.name == profile.name),
                done,
            )
            .await?;
        }
    }
    // Clustering last, once everything it advertises exists.
    if let Some(c) = &p.cluster {
        if c.enabled {
            let put = ClusterPut {
                server_name: c.server_name.clone(),
                enabled: true,
                ..Default::default()
            };
            let op = client.update_cluster(&put).await?;
            if let Some(op) = op {
                client.wait_success(&op, None).await?;
            }
        }
    }
    Ok(())
}

async fn apply_network(
    client: &Client,
    net: &rxd_api::InitNetwork,
    done: &mut Vec<Undo>,
) -> Result<(), InitError> {
    if !net.project.is_empty() && net.project != "default" {
        return Err(InitError::Invalid(format!(
            "Network {:?}: projects other than \"default\" are not supported by this rxd yet",
            net.name
        )));
    }
    let path = format!("/1.0/networks/{}", net.name);
    match client.get_with_etag::<rxd_api::Network>(&path).await {
        Err(e) if e.is_not_found() => {
            let post = serde_json::json!({
                "name": net.name,
                "type": net.network_type,
                "config": net.config,
                "description": net.description,
            });
            client
                .request("POST", "/1.0/networks", Some(post), None)
                .await?;
            done.push(Undo::DeleteNetwork(net.name.clone()));
        }
        Err(e) => return Err(e.into()),
        Ok((current, _)) if !current.managed => {
            return Err(InitError::Invalid(format!(
                "Network {:?} already exists as an interface of this host",
                net.name
            )));
        }
        Ok((current, etag)) => {
            let mut config = current.config.clone();
            config.extend(net.config.clone());
            let put = serde_json::json!({"config": config, "description": net.description});
            client.request("PUT", &path, Some(put), Some(&etag)).await?;
            done.push(Undo::RestoreNetwork(
                net.name.clone(),
                serde_json::json!({"config": current.config, "description": current.description}),
            ));
        }
    }
    Ok(())
}

async fn apply_profile(
    client: &Client,
    profile: &ProfilesPost,
    exists: bool,
    done: &mut Vec<Undo>,
) -> Result<(), InitError> {
    if !exists {
        client.create_profile(profile).await?;
        done.push(Undo::DeleteProfile(profile.name.clone()));
        return Ok(());
    }
    let (current, etag) = client.profile(&profile.name).await?;
    let mut config = current.config.clone();
    config.extend(profile.config.clone());
    let mut devices = current.devices.clone();
    devices.extend(profile.devices.clone());
    let put = ProfilePut {
        config,
        description: if profile.description.is_empty() {
            current.description.clone()
        } else {
            profile.description.clone()
        },
        devices,
    };
    client
        .update_profile(&profile.name, &put, Some(&etag))
        .await?;
    done.push(Undo::RestoreProfile(
        profile.name.clone(),
        ProfilePut {
            config: current.config,
            description: current.description,
            devices: current.devices,
        },
    ));
    Ok(())
}

/// The daemon's current configuration as a preseed that `--preseed` accepts again.
pub async fn dump(client: &Client) -> Result<InitPreseed, InitError> {
    let (server, _) = client.server().await?;
    let mut config = server.config.unwrap_or_default();
    // Hidden values cannot be read back; leaving them out keeps the dump re-appliable.
    config.retain(|_, v| *v != serde_json::Value::Bool(true));
    let storage_pools = client
        .storage_pools()
        .await?
        .into_iter()
        .map(|p| rxd_api::StoragePoolsPost {
            config: p.config,
            description: p.description,
            name: p.name,
            driver: p.driver,
        })
        .collect();
    let profiles = client
        .profiles()
        .await?
        .into_iter()
        .map(|p| ProfilesPost {
            config: p.config,
            description: p.description,
            devices: p.devices,
            name: p.name,
        })
        .collect();
    let networks: Vec<rxd_api::Network> = client.get("/1.0/networks?recursion=1").await?;
    let networks = networks
        .into_iter()
        .filter(|n| n.managed)
        .map(|n| rxd_api::InitNetwork {
            config: n.config,
            description: n.description,
            name: n.name,
            network_type: n.network_type,
            // As lxd's dump: the preseed names the project of each network.
            project: "default".into(),
        })
        .collect();
    let projects = client
        .projects()
        .await?
        .into_iter()
        .map(|p| rxd_api::InitProject {
            config: p.config,
            description: p.description,
            name: p.name,
        })
        .collect();
    Ok(InitPreseed {
        config,
        networks,
        storage_pools,
        profiles,
        projects,
        cluster: None,
    })
}
