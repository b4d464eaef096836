//! `/1.0/storage-pools`: cluster-wide pools with this member's side made by its driver.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use rxd_api::{StoragePool, StoragePoolPut, StoragePoolsPost};
use rxd_db::tables::{self, Config};
use rxd_db::Command;

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::handlers::cluster::POOL_MEMBER_KEYS;
use crate::handlers::{recursion, target, QueryMap};
use crate::response::{check_etag, created, empty, sync, sync_etag, CompareAndSet, JsonBody};
use crate::Daemon;

fn used_by(pool: &str, profiles: &[tables::Profile]) -> Vec<String> {
    profiles
        .iter()
        .filter(|p| {
            p.devices.values().any(|dev| {
                dev.get("type").map(String::as_str) == Some("disk")
                    && dev.get("pool").map(String::as_str) == Some(pool)
            })
        })
        .map(|p| format!("/1.0/profiles/{}", p.name))
        .collect()
}

/// The API view of a pool: cluster keys plus, when `member` is given, that member's keys.
fn to_api(
    p: tables::StoragePool,
    member: Option<u64>,
    clustered: bool,
    profiles: &[tables::Profile],
) -> StoragePool {
    let mut config = p.config.clone();
    if let Some(id) = member {
        if let Some(m) = p.members.iter().find(|m| m.member_id == id) {
            config.extend(m.config.clone());
        }
    }
    StoragePool {
        used_by: Some(used_by(&p.name, profiles)),
        locations: if clustered {
            p.members.iter().map(|m| m.member_name.clone()).collect()
        } else {
            vec!["none".into()]
        },
        config,
        description: p.description,
        driver: p.driver,
        status: p.state,
        name: p.name,
    }
}

async fn member_for_view(d: &Daemon, target: Option<&str>) -> ApiResult<(Option<u64>, bool)> {
    let clustered = d.is_clustered().await?;
    match target {
        Some(t) => {
            let t = t.to_string();
            let m = d.db().read(move |c| tables::member(c, &t)).await?;
            Ok((Some(m.id), clustered))
        }
        // A standalone server shows its own keys; a cluster hides member-specific ones.
        None if !clustered => Ok((Some(d.node_id()), false)),
        None => Ok((None, true)),
    }
}

/// `GET /1.0/storage-pools`.
pub async fn storage_pools_get(State(d): State<Arc<Daemon>>, q: QueryMap) -> ApiResult<Response> {
    let (pools, profiles) = d
        .db()
        .read(|c| Ok((tables::storage_pools(c)?, tables::profiles(c, "default")?)))
        .await?;
    if !recursion(&q) {
        return Ok(sync(
            pools
                .iter()
                .map(|p| format!("/1.0/storage-pools/{}", p.name))
                .collect::<Vec<_>>(),
        ));
    }
    let (member, clustered) = member_for_view(&d, target(&q)).await?;
    Ok(sync(
        pools
            .into_iter()
            .map(|p| to_api(p, member, clustered, &profiles))
            .collect::<Vec<_>>(),
    ))
}

async fn load(d: &Daemon, name: &str) -> ApiResult<(tables::StoragePool, Vec<tables::Profile>)> {
    let name = name.to_string();
    Ok(d.db()
        .read(move |c| {
            Ok((
                tables::storage_pool(c, &name)?,
                tables::profiles(c, "default")?,
            ))
        })
        .await?)
}

fn writable(p: &StoragePool) -> StoragePoolPut {
    StoragePoolPut {
        config: p.config.clone(),
        description: p.description.clone(),
    }
}

/// `GET /1.0/storage-pools/{name}`.
pub async fn storage_pool_get(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
    q: QueryMap,
) -> ApiResult<Response> {
    let (pool, profiles) = load(&d, &name).await?;
    let (member, clustered) = member_for_view(&d, target(&q)).await?;
    let pool = to_api(pool, member, clustered, &profiles);
    let etag = rxd_api::etag(&writable(&pool));
    Ok(sync_etag(pool, &etag))
}

/// `GET /1.0/storage-pools/{name}/resources[?target=]`: the pool's space and inodes on this
/// member (the router hands a request for another member to it).
pub async fn storage_pool_resources_get(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let pool = load(&d, &name).await?.0;
    let usage = rxd_storage::usage(&d.dir, &pool.name).map_err(|e| {
        ApiError::internal(format!(
            "Failed getting storage pool resources of {:?}: {e}",
            pool.name
        ))
    })?;
    Ok(sync(usage))
}

fn validate_name(name: &str) -> ApiResult<()> {
    crate::names::check("storage pool", name).map_err(ApiError::bad_request)
}

/// `POST /1.0/storage-pools`: on a standalone server or a one-member cluster the pool is made
/// at once; in a larger cluster it is first defined on each member with `?target=`, then
/// created everywhere by a request without target.
pub async fn storage_pools_post(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    q: QueryMap,
    JsonBody(post): JsonBody<StoragePoolsPost>,
) -> ApiResult<Response> {
    validate_name(&post.name)?;
    if post.driver.is_empty() {
        return Err(ApiError::bad_request("No driver provided"));
    }
    rxd_storage::validate(&post.driver, &post.config)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let members = d.db().read(tables::members).await?;
    if let Some(t) = target(&q) {
        return define_on_member(&d, &post, t, &members).await;
    }
    let url = format!("/1.0/storage-pools/{}", post.name);
    if members.len() > 1 {
        create_everywhere(&d, &post, &members).await?;
    } else {
        create_here(&d, &post).await?;
    }
    d.events
        .lifecycle("storage-pool-created", &url, None, Some(caller.requestor()));
    Ok(created(&url))
}

async fn define_on_member(
    d: &Daemon,
    post: &StoragePoolsPost,
    target: &str,
    members: &[tables::Member],
) -> ApiResult<Response> {
    if !d.is_clustered().await? {
        return Err(ApiError::bad_request("This server is not clustered"));
    }
    let member = members
        .iter()
        .find(|m| m.name == target)
        .ok_or_else(|| ApiError::not_found("Cluster member not found"))?;
    for key in post.config.keys() {
        if !POOL_MEMBER_KEYS.contains(&key.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Config key {key:?} may not be used as member-specific key"
            )));
        }
    }
    d.db()
        .propose(Command::DefinePoolMember {
            name: post.name.clone(),
            driver: post.driver.clone(),
            member_id: member.id,
            config: post.config.clone(),
        })
        .await??;
    Ok(created(&format!("/1.0/storage-pools/{}", post.name)))
}

async fn create_here(d: &Daemon, post: &StoragePoolsPost) -> ApiResult<()> {
    let exists = {
        let name = post.name.clone();
        d.db()
            .read(move |c| Ok(tables::storage_pool(c, &name).is_ok()))
            .await?
    };
    if exists {
        return Err(ApiError::conflict(format!(
            "Storage pool {:?} already exists",
            post.name
        )));
    }
    let (member_config, cluster_config): (Config, Config) = post
        .config
        .clone()
        .into_iter()
        .partition(|(k, _)| POOL_MEMBER_KEYS.contains(&k.as_str()));
    let local = LocalPool {
        name: post.name.clone(),
        driver: post.driver.clone(),
        config: member_config,
        cluster_config: cluster_config.clone(),
    };
    let member_config = create_local(d, &local).await?;
    let result = d
        .db()
        .propose(Command::CreateStoragePool {
            name: post.name.clone(),
            driver: post.driver.clone(),
            description: post.description.clone(),
            config: cluster_config,
            member_id: d.node_id(),
            member_config: member_config.clone(),
            state: "Created".into(),
        })
        .await;
    let refused = match result {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(ApiError::from(e)),
        Err(e) => Some(ApiError::from(e)),
    };
    if let Some(e) = refused {
        // Nothing is left behind when the database refuses.
        rxd_storage::delete(&d.dir, &post.name, &post.driver, &member_config);
        return Err(e);
    }
    Ok(())
}

/// A member's side of a pool, made or removed on that member.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct LocalPool {
    /// Pool name.
    pub name: String,
    /// Driver.
    pub driver: String,
    /// The member's keys.
    pub config: Config,
    /// The pool's cluster-wide keys, which drivers read (`btrfs.mount_options`).
    #[serde(default)]
    pub cluster_config: Config,
}

/// Makes this member's side of a pool off the async threads (formatting and mounting take a
/// while) and returns the member keys to store.
async fn create_local(d: &Daemon, pool: &LocalPool) -> ApiResult<Config> {
    let dir = d.dir.clone();
    let (name, driver) = (pool.name.clone(), pool.driver.clone());
    let (cluster, member) = (pool.cluster_config.clone(), pool.config.clone());
    tokio::task::spawn_blocking(move || rxd_storage::create(&dir, &name, &driver, &cluster, member))
        .await
        .map_err(|e| ApiError::internal(format!("Storage pool creation failed: {e}")))?
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

async fn on_member(
    d: &Daemon,
    member: &tables::Member,
    action: &str,
    pool: &LocalPool,
) -> ApiResult<Config> {
    if member.id == d.node_id() {
        return if action == "create" {
            create_local(d, pool).await
        } else {
            rxd_storage::delete(&d.dir, &pool.name, &pool.driver, &pool.config);
            Ok(pool.config.clone())
        };
    }
    let c = crate::peer::member_client(d, &member.address)?;
    let raw = c
        .request(
            "POST",
            &format!("/internal/storage-pools/{action}"),
            Some(serde_json::to_value(pool).expect("pools serialise")),
            None,
        )
        .await
        .map_err(|e| {
            ApiError::bad_request(format!(
                "Failed to notify peer {}: {}",
                member.address,
                crate::handlers::internal_cluster::api_message(&e)
            ))
        })?;
    raw.metadata()
        .map_err(|e| ApiError::internal(format!("Bad answer from {}: {e}", member.address)))
}

async fn create_everywhere(
    d: &Daemon,
    post: &StoragePoolsPost,
    members: &[tables::Member],
) -> ApiResult<()> {
    let name = post.name.clone();
    let pool = d
        .db()
        .read(move |c| Ok(tables::storage_pool(c, &name).ok()))
        .await?
        .ok_or_else(|| {
            ApiError::bad_request("Pool not pending on any node (use --target <node> first)")
        })?;
    if pool.state == "Created" {
        return Err(ApiError::conflict(format!(
            "Storage pool {:?} already exists",
            post.name
        )));
    }
    if pool.driver != post.driver {
        return Err(ApiError::bad_request(format!(
            "Storage pool {:?} is pending with driver {:?}",
            post.name, pool.driver
        )));
    }
    let missing: Vec<&str> = members
        .iter()
        .filter(|m| !pool.members.iter().any(|pm| pm.member_id == m.id))
        .map(|m| m.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Pool not defined on nodes: {}",
            missing.join(", ")
        )));
    }
    if let Some(key) = post
        .config
        .keys()
        .find(|k| POOL_MEMBER_KEYS.contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "Config key {key:?} is cluster member specific"
        )));
    }
    let mut made: Vec<(&tables::Member, LocalPool)> = Vec::new();
    let mut finished = std::collections::BTreeMap::new();
    let mut failure = None;
    for pm in &pool.members {
        let member = members
            .iter()
            .find(|m| m.id == pm.member_id)
            .expect("every entry belongs to a member");
        let local = LocalPool {
            name: post.name.clone(),
            driver: post.driver.clone(),
            config: pm.config.clone(),
            cluster_config: post.config.clone(),
        };
        match on_member(d, member, "create", &local).await {
            Ok(cfg) => {
                finished.insert(member.id, (cfg.clone(), "Created".to_string()));
                made.push((
                    member,
                    LocalPool {
                        config: cfg,
                        ..local
                    },
                ));
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if failure.is_none() {
        let result = d
            .db()
            .propose(Command::FinishStoragePool {
                name: post.name.clone(),
                description: post.description.clone(),
                config: post.config.clone(),
                state: "Created".into(),
                members: finished,
            })
            .await;
        failure = match result {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.into()),
            Err(e) => Some(e.into()),
        };
    }
    if let Some(e) = failure {
        // Members that made their side remove it again; the pool stays pending for a retry.
        for (member, local) in made {
            let _ = on_member(d, member, "delete", &local).await;
        }
        return Err(e);
    }
    Ok(())
}

/// A `PUT`/`PATCH` of a pool, on this member. `targeted`: the request named this member with
/// `?target=` (another member's is handed to it by the router), so it changes this member's
/// keys and checks the ETag of this member's full view.
async fn update(
    d: &Daemon,
    name: &str,
    headers: &HeaderMap,
    put: StoragePoolPut,
    targeted: bool,
    merge: bool,
) -> ApiResult<Response> {
    let id = d.node_id();
    let clustered = d.is_clustered().await?;
    let mut cas = CompareAndSet::new(headers);
    loop {
        let (pool, profiles) = load(d, name).await?;
        let current = to_api(pool.clone(), Some(id), clustered, &profiles);
        // The ETag is the one the matching GET handed out: without a target, a cluster hides
        // member keys there.
        let shown = to_api(
            pool.clone(),
            (!clustered || targeted).then_some(id),
            clustered,
            &profiles,
        );
        check_etag(headers, &rxd_api::etag(&writable(&shown)))?;
        if clustered && targeted {
            // With a target only member keys change; the others may come back as they are.
            if let Some(key) = put.config.iter().find_map(|(k, v)| {
                (!POOL_MEMBER_KEYS.contains(&k.as_str()) && current.config.get(k) != Some(v))
                    .then_some(k)
            }) {
                return Err(ApiError::bad_request(format!(
                    "Config key {key:?} may not be used as member-specific key"
                )));
            }
        }
        let mut wanted = if merge {
            current.config.clone()
        } else {
            Config::new()
        };
        wanted.extend(put.config.clone());
        rxd_storage::validate(&pool.driver, &wanted)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let (member_config, mut cluster_config): (Config, Config) = wanted
            .into_iter()
            .partition(|(k, _)| POOL_MEMBER_KEYS.contains(&k.as_str()));
        if clustered && targeted {
            cluster_config = pool.config.clone();
        }
        let mine = pool
            .members
            .iter()
            .find(|m| m.member_id == id)
            .map(|m| m.config.clone())
            .unwrap_or_default();
        // A pool's source is fixed once it is created.
        for key in ["source", "size"] {
            let given = member_config.get(key);
            if given.is_some() && given != mine.get(key) {
                return Err(ApiError::bad_request(format!(
                    "Pool {key} cannot be changed when not in pending state"
                )));
            }
        }
        let mut keep = mine;
        keep.extend(member_config);
        let description = if merge && put.description.is_empty() {
            pool.description.clone()
        } else {
            put.description.clone()
        };
        let write = Command::UpdateStoragePool {
            name: name.to_string(),
            description,
            config: cluster_config,
            member_id: id,
            member_config: keep,
        }
        .only_if(rxd_db::Expected::StoragePool(pool));
        if cas.outcome(d.db().propose(write).await?)?.is_some() {
            break;
        }
    }
    Ok(empty())
}

/// `PUT /1.0/storage-pools/{name}[?target=]`.
pub async fn storage_pool_put(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    q: QueryMap,
    JsonBody(put): JsonBody<StoragePoolPut>,
) -> ApiResult<Response> {
    update(&d, &name, &headers, put, target(&q).is_some(), false).await
}

/// `PATCH /1.0/storage-pools/{name}[?target=]`.
pub async fn storage_pool_patch(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    q: QueryMap,
    JsonBody(put): JsonBody<StoragePoolPut>,
) -> ApiResult<Response> {
    update(&d, &name, &headers, put, target(&q).is_some(), true).await
}

/// `DELETE /1.0/storage-pools/{name}`.
pub async fn storage_pool_delete(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let (pool, profiles) = load(&d, &name).await?;
    let users = used_by(&name, &profiles);
    if !users.is_empty() {
        return Err(ApiError::bad_request(format!(
            "The storage pool is currently in use by: {}",
            users.join(", ")
        )));
    }
    d.db()
        .propose(Command::DeleteStoragePool { name: name.clone() })
        .await??;
    // Each member removes its own side; one that cannot be reached keeps an orphaned
    // directory, which the log names.
    let members = d.db().read_local(tables::members).await?;
    for pm in &pool.members {
        let local = LocalPool {
            name: name.clone(),
            driver: pool.driver.clone(),
            config: pm.config.clone(),
            cluster_config: pool.config.clone(),
        };
        if let Some(member) = members.iter().find(|m| m.id == pm.member_id) {
            if let Err(e) = on_member(&d, member, "delete", &local).await {
                tracing::warn!(
                    "Failed to remove pool {name} on {}: {}",
                    member.name,
                    e.message
                );
            }
        }
    }
    d.events.lifecycle(
        "storage-pool-deleted",
        &format!("/1.0/storage-pools/{name}"),
        None,
        Some(caller.requestor()),
    );
    Ok(empty())
}

/// `POST /internal/storage-pools/create`: makes this member's side of a pool.
pub async fn internal_pool_create(
    State(d): State<Arc<Daemon>>,
    JsonBody(pool): JsonBody<LocalPool>,
) -> ApiResult<Response> {
    validate_name(&pool.name)?;
    let cfg = create_local(&d, &pool).await?;
    Ok(sync(cfg))
}

/// `POST /internal/storage-pools/delete`: removes this member's side of a pool that is no
/// longer created in the cluster (deleted, or pending after a failed creation).
pub async fn internal_pool_delete(
    State(d): State<Arc<Daemon>>,
    JsonBody(pool): JsonBody<LocalPool>,
) -> ApiResult<Response> {
    validate_name(&pool.name)?;
    let name = pool.name.clone();
    let created = d
        .db()
        .read(move |c| Ok(tables::storage_pool(c, &name).ok()))
        .await?
        .is_some_and(|p| p.state == "Created");
    if created {
        return Err(ApiError::conflict(format!(
            "Storage pool {:?} is created in the cluster; delete it through /1.0/storage-pools",
            pool.name
        )));
    }
    rxd_storage::delete(&d.dir, &pool.name, &pool.driver, &pool.config);
    Ok(sync(pool.config))
}
