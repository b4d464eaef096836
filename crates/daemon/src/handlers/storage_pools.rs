//! `/1.0/storage-pools`: cluster-wide pools with this member's side made by its driver. The
//! protocol of objects with a side on each member is `member_objects`; this module plugs the
//! `storage` crate into it and keeps what only pools have (their resources).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use rxd_api::{StoragePool, StoragePoolPut, StoragePoolsPost};
use rxd_db::tables::{self, Config, MemberObject, ObjectKind};

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::handlers::{recursion, target, QueryMap};
use crate::member_objects::{self as objects, MemberKind, ObjectPost, Side};
use crate::response::{sync, sync_etag, JsonBody};
use crate::Daemon;
use rxd_api::POOL_MEMBER_KEYS;

/// Storage pools as objects with a side on each member.
pub struct Pools;

impl MemberKind for Pools {
    const KIND: ObjectKind = ObjectKind::StoragePool;
    const NOUN: &'static str = "Storage pool";
    const LOWER: &'static str = "storage pool";
    const SHORT: &'static str = "Pool";
    const TYPE_WORD: &'static str = "driver";
    const URL: &'static str = "/1.0/storage-pools";
    const INTERNAL: &'static str = "/internal/storage-pools";
    const EVENT: &'static str = "storage-pool";
    // A pool's source is fixed once it is created.
    const FIXED_KEYS: &'static [&'static str] = &["source", "size"];
    type Api = StoragePool;

    fn member_keys() -> &'static [&'static str] {
        POOL_MEMBER_KEYS
    }

    fn validate_name(name: &str) -> ApiResult<()> {
        crate::names::check("storage pool", name).map_err(ApiError::bad_request)
    }

    fn validate_post(post: &mut ObjectPost) -> ApiResult<()> {
        Self::validate_name(&post.name)?;
        if post.object_type.is_empty() {
            return Err(ApiError::bad_request("No driver provided"));
        }
        Self::validate_config(&post.name, &post.object_type, &post.config)
    }

    fn validate_config(_name: &str, driver: &str, config: &Config) -> ApiResult<()> {
        rxd_storage::validate(driver, config).map_err(|e| ApiError::bad_request(e.to_string()))
    }

    /// Formatting and mounting take a while: off the async threads.
    async fn create_side(d: &Daemon, side: &Side) -> ApiResult<Config> {
        let dir = d.dir.clone();
        let (name, driver) = (side.name.clone(), side.object_type.clone());
        let (cluster, member) = (side.cluster_config.clone(), side.config.clone());
        tokio::task::spawn_blocking(move || {
            rxd_storage::create(&dir, &name, &driver, &cluster, member)
        })
        .await
        .map_err(|e| ApiError::internal(format!("Storage pool creation failed: {e}")))?
        .map_err(|e| ApiError::bad_request(e.to_string()))
    }

    async fn delete_side(d: &Daemon, side: &Side) {
        rxd_storage::delete(&d.dir, &side.name, &side.object_type, &side.config);
    }

    /// A pool's filesystem (a btrfs loop file, a device) is mounted again.
    async fn restore_sides(
        d: &Daemon,
        objects: Vec<MemberObject>,
    ) -> Vec<(String, Option<String>)> {
        let pools = objects.into_iter().map(tables::StoragePool::from).collect();
        rxd_storage::mount_all(d.dir.clone(), pools, d.node_id()).await
    }

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

    fn to_api(
        p: MemberObject,
        config: Config,
        locations: Vec<String>,
        used_by: Vec<String>,
    ) -> StoragePool {
        StoragePool {
            used_by: Some(used_by),
            locations,
            config,
            description: p.description,
            driver: p.object_type,
            status: p.state,
            name: p.name,
        }
    }
}

/// `GET /1.0/storage-pools`.
pub async fn storage_pools_get(State(d): State<Arc<Daemon>>, q: QueryMap) -> ApiResult<Response> {
    let (pools, profiles) = objects::all::<Pools>(&d).await?;
    if !recursion(&q) {
        return Ok(sync(
            pools
                .iter()
                .map(|p| format!("/1.0/storage-pools/{}", p.name))
                .collect::<Vec<_>>(),
        ));
    }
    let (member, clustered) = objects::view(&d, target(&q)).await?;
    Ok(sync(
        pools
            .into_iter()
            .map(|p| objects::to_api::<Pools>(p, member, clustered, &profiles))
            .collect::<Vec<_>>(),
    ))
}

/// `GET /1.0/storage-pools/{name}`.
pub async fn storage_pool_get(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
    q: QueryMap,
) -> ApiResult<Response> {
    let (pool, profiles) = objects::load::<Pools>(&d, &name).await?;
    let (member, clustered) = objects::view(&d, target(&q)).await?;
    let pool = objects::to_api::<Pools>(pool, member, clustered, &profiles);
    let etag = objects::etag(&pool.config, &pool.description);
    Ok(sync_etag(pool, &etag))
}

/// `GET /1.0/storage-pools/{name}/resources[?target=]`: the pool's space and inodes on this
/// member (the router hands a request for another member to it).
pub async fn storage_pool_resources_get(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let pool = objects::load::<Pools>(&d, &name).await?.0;
    let usage = rxd_storage::usage(&d.dir, &pool.name).map_err(|e| {
        ApiError::internal(format!(
            "Failed getting storage pool resources of {:?}: {e}",
            pool.name
        ))
    })?;
    Ok(sync(usage))
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
    let post = ObjectPost {
        name: post.name,
        object_type: post.driver,
        description: post.description,
        config: post.config,
    };
    objects::post::<Pools>(&d, &caller, target(&q), post).await
}

/// `PUT /1.0/storage-pools/{name}[?target=]`.
pub async fn storage_pool_put(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    q: QueryMap,
    JsonBody(put): JsonBody<StoragePoolPut>,
) -> ApiResult<Response> {
    let put = (put.config, put.description);
    objects::update::<Pools>(&d, &name, &headers, put, target(&q).is_some(), false).await
}

/// `PATCH /1.0/storage-pools/{name}[?target=]`.
pub async fn storage_pool_patch(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    q: QueryMap,
    JsonBody(put): JsonBody<StoragePoolPut>,
) -> ApiResult<Response> {
    let put = (put.config, put.description);
    objects::update::<Pools>(&d, &name, &headers, put, target(&q).is_some(), true).await
}

/// `DELETE /1.0/storage-pools/{name}`.
pub async fn storage_pool_delete(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    objects::delete::<Pools>(&d, &caller, &name).await
}

/// `POST /internal/storage-pools/create`: makes this member's side of a pool.
pub async fn internal_pool_create(
    State(d): State<Arc<Daemon>>,
    JsonBody(side): JsonBody<Side>,
) -> ApiResult<Response> {
    objects::internal_create::<Pools>(&d, side).await
}

/// `POST /internal/storage-pools/delete`: removes this member's side of a pool that is no
/// longer created in the cluster (deleted, or pending after a failed creation).
pub async fn internal_pool_delete(
    State(d): State<Arc<Daemon>>,
    JsonBody(side): JsonBody<Side>,
) -> ApiResult<Response> {
    objects::internal_delete::<Pools>(&d, side).await
}
