//! `/1.0/networks`: managed bridges, cluster-wide with each member's side made on that member,
//! and the member's unmanaged interfaces (`managed: false`). The protocol of objects with a
//! side on each member is `member_objects`; this module plugs the `network` crate into it and
//! keeps what only networks have: unmanaged interfaces and the standalone rename (leases and
//! state have modules of their own).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use rxd_api::{Network, NetworkPost, NetworkPut, NetworksPost};
use rxd_db::tables::{self, Config, MemberObject, ObjectKind};
use rxd_db::Command;

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::handlers::{recursion, target, QueryMap};
use crate::member_objects::{self as objects, MemberKind, ObjectPost, Side};
use crate::response::{created, sync, sync_etag, JsonBody};
use crate::Daemon;
use rxd_network::{bridge::Netlink, NetworkError, MEMBER_KEYS};

impl From<NetworkError> for ApiError {
    fn from(e: NetworkError) -> Self {
        match e {
            NetworkError::Netlink { .. }
            | NetworkError::Firewall(_)
            | NetworkError::Dnsmasq(_)
            | NetworkError::Io { .. } => ApiError::internal(e.to_string()),
            _ => ApiError::bad_request(e.to_string()),
        }
    }
}

/// Managed networks as objects with a side on each member.
pub struct Networks;

impl MemberKind for Networks {
    const KIND: ObjectKind = ObjectKind::Network;
    const NOUN: &'static str = "Network";
    const LOWER: &'static str = "network";
    const SHORT: &'static str = "Network";
    const TYPE_WORD: &'static str = "type";
    const URL: &'static str = "/1.0/networks";
    const INTERNAL: &'static str = "/internal/networks";
    const EVENT: &'static str = "network";
    // Every member with the network applies new keys to its bridge.
    const RECONFIGURES: bool = true;
    type Api = Network;

    fn member_keys() -> &'static [&'static str] {
        MEMBER_KEYS
    }

    fn validate_name(name: &str) -> ApiResult<()> {
        Ok(rxd_network::validate_name(name)?)
    }

    fn validate_post(post: &mut ObjectPost) -> ApiResult<()> {
        if post.name.is_empty() {
            return Err(ApiError::bad_request("No name provided"));
        }
        rxd_network::validate_name(&post.name)?;
        post.object_type = rxd_network::validate_type(&post.object_type)?.to_string();
        Self::validate_config(&post.name, &post.object_type, &post.config)
    }

    fn validate_config(name: &str, _network_type: &str, config: &Config) -> ApiResult<()> {
        Ok(rxd_network::validate_config(name, config)?)
    }

    fn validate_side(side: &Side) -> ApiResult<()> {
        Self::validate_config(&side.name, &side.object_type, &side.all_config())
    }

    /// `auto` addresses are resolved once, by the member that handles the request, so that
    /// every member gets the same subnet; a create also fills in LXD's defaults.
    async fn prepare(name: &str, config: &mut Config, new: bool) -> ApiResult<()> {
        if new {
            rxd_network::fill_defaults(config);
        }
        Ok(rxd_network::resolve_addresses(name, config).await?)
    }

    async fn create_side(d: &Daemon, side: &Side) -> ApiResult<Config> {
        rxd_network::setup(&d.dir, &side.name, &side.all_config(), !side.update).await?;
        Ok(side.config.clone())
    }

    /// Only a bridge rxd recorded making is removed.
    async fn delete_side(d: &Daemon, side: &Side) {
        rxd_network::teardown(&d.dir, &side.name).await;
    }

    /// Bridges and their dnsmasq come back after a restart.
    async fn restore_sides(
        d: &Daemon,
        objects: Vec<MemberObject>,
    ) -> Vec<(String, Option<String>)> {
        let id = d.node_id();
        let mut outcomes = Vec::new();
        for net in objects {
            let Some(mine) = net.member(id) else {
                continue;
            };
            let mut all = net.config.clone();
            all.extend(mine.config.clone());
            // The database says the bridge is this member's, so one made before rxd kept
            // records is recorded now.
            if let Err(e) = rxd_network::adopt(&d.dir, &net.name).await {
                tracing::warn!("Failed to record network {}: {e}", net.name);
            }
            let failure = match rxd_network::setup(&d.dir, &net.name, &all, false).await {
                Ok(()) => None,
                Err(e) => {
                    tracing::warn!("Failed to restore network {}: {e}", net.name);
                    Some(format!("Failed to restore network {:?}: {e}", net.name))
                }
            };
            outcomes.push((net.name, failure));
        }
        outcomes
    }

    fn used_by(network: &str, profiles: &[tables::Profile]) -> Vec<String> {
        profiles
            .iter()
            .filter(|p| {
                p.devices.values().any(|dev| {
                    dev.get("type").map(String::as_str) == Some("nic")
                        && (dev.get("network").map(String::as_str) == Some(network)
                            || dev.get("parent").map(String::as_str) == Some(network))
                })
            })
            .map(|p| format!("/1.0/profiles/{}", p.name))
            .collect()
    }

    fn to_api(
        n: MemberObject,
        config: Config,
        locations: Vec<String>,
        used_by: Vec<String>,
    ) -> Network {
        Network {
            used_by: Some(used_by),
            locations: Some(locations),
            config,
            description: n.description,
            network_type: n.object_type,
            managed: true,
            status: n.state,
            name: n.name,
        }
    }
}

fn unmanaged(link: &rxd_network::bridge::Link, clustered: bool) -> Network {
    Network {
        config: Config::new(),
        description: String::new(),
        name: link.name.clone(),
        network_type: link.lxd_type().to_string(),
        used_by: Some(Vec::new()),
        managed: false,
        status: String::new(),
        // A clustered LXD answers an empty list for an interface it does not manage.
        locations: clustered.then(Vec::new),
    }
}

async fn host_links() -> ApiResult<Vec<rxd_network::bridge::Link>> {
    Ok(Netlink::connect()?.links().await?)
}

/// `GET /1.0/networks`.
pub async fn networks_get(State(d): State<Arc<Daemon>>, q: QueryMap) -> ApiResult<Response> {
    let (nets, profiles) = objects::all::<Networks>(&d).await?;
    let mut links = host_links().await?;
    links.retain(|l| !nets.iter().any(|n| n.name == l.name));
    links.sort_by(|a, b| a.name.cmp(&b.name));
    if !recursion(&q) {
        let mut urls: Vec<String> = nets
            .iter()
            .map(|n| n.name.clone())
            .chain(links.iter().map(|l| l.name.clone()))
            .map(|n| format!("/1.0/networks/{n}"))
            .collect();
        urls.sort();
        return Ok(sync(urls));
    }
    let (member, clustered) = objects::view(&d, target(&q)).await?;
    let mut out: Vec<Network> = nets
        .into_iter()
        .map(|n| objects::to_api::<Networks>(n, member, clustered, &profiles))
        .chain(links.iter().map(|l| unmanaged(l, clustered)))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(sync(out))
}

/// `GET /1.0/networks/{name}`.
pub async fn network_get(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
    q: QueryMap,
) -> ApiResult<Response> {
    let (net, profiles) = objects::find::<Networks>(&d, &name).await?;
    let net = match net {
        Some(n) => {
            let (member, clustered) = objects::view(&d, target(&q)).await?;
            objects::to_api::<Networks>(n, member, clustered, &profiles)
        }
        None => {
            let link = Netlink::connect()?
                .link(&name)
                .await?
                .ok_or_else(|| ApiError::not_found("Network not found"))?;
            unmanaged(&link, d.is_clustered().await?)
        }
    };
    let etag = objects::etag(&net.config, &net.description);
    Ok(sync_etag(net, &etag))
}

/// `POST /1.0/networks`: on a standalone server or a one-member cluster the bridge is made at
/// once; in a larger cluster it is first defined on each member with `?target=`, then created
/// everywhere by a request without target.
pub async fn networks_post(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    q: QueryMap,
    JsonBody(post): JsonBody<NetworksPost>,
) -> ApiResult<Response> {
    let post = ObjectPost {
        name: post.name,
        object_type: post.network_type,
        description: post.description,
        config: post.config,
    };
    objects::post::<Networks>(&d, &caller, target(&q), post).await
}

/// `PUT /1.0/networks/{name}`.
pub async fn network_put(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    q: QueryMap,
    JsonBody(put): JsonBody<NetworkPut>,
) -> ApiResult<Response> {
    let put = (put.config, put.description);
    objects::update::<Networks>(&d, &name, &headers, put, target(&q).is_some(), false).await
}

/// `PATCH /1.0/networks/{name}`.
pub async fn network_patch(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    q: QueryMap,
    JsonBody(put): JsonBody<NetworkPut>,
) -> ApiResult<Response> {
    let put = (put.config, put.description);
    objects::update::<Networks>(&d, &name, &headers, put, target(&q).is_some(), true).await
}

/// `DELETE /1.0/networks/{name}`.
pub async fn network_delete(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    objects::delete::<Networks>(&d, &caller, &name).await
}

/// `POST /internal/networks/create`: makes (or reconfigures) this member's side of a network,
/// checked as the public API checks it.
pub async fn internal_network_create(
    State(d): State<Arc<Daemon>>,
    JsonBody(side): JsonBody<Side>,
) -> ApiResult<Response> {
    objects::internal_create::<Networks>(&d, side).await
}

/// `POST /internal/networks/delete`: removes this member's side of a network that is no
/// longer created in the cluster (deleted, or pending after a failed creation). Only a
/// bridge rxd recorded making is removed.
pub async fn internal_network_delete(
    State(d): State<Arc<Daemon>>,
    JsonBody(side): JsonBody<Side>,
) -> ApiResult<Response> {
    objects::internal_delete::<Networks>(&d, side).await
}

/// Brings up this member's side of every created network (daemon start).
pub async fn restore(d: &Daemon) {
    objects::restore::<Networks>(d).await;
}

/// `POST /1.0/networks/{name}`: a rename, in LXD's order of checks. As in LXD, only a
/// standalone server renames: the bridge goes down, its directory (dnsmasq's leases with it)
/// moves, the database entry is renamed, and a bridge of the new name comes up.
pub async fn network_post(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(post): JsonBody<NetworkPost>,
) -> ApiResult<Response> {
    if d.is_clustered().await? {
        return Err(ApiError::bad_request(
            "Renaming clustered network not supported",
        ));
    }
    let (net, profiles) = objects::find::<Networks>(&d, &name).await?;
    let net =
        net.ok_or_else(|| ApiError::not_found("Failed loading network: Network not found"))?;
    if net.state != "Created" {
        return Err(ApiError::bad_request(
            "Cannot rename network when not in created state",
        ));
    }
    let new_name = post.name;
    if new_name.is_empty() {
        return Err(ApiError::bad_request("New network name not provided"));
    }
    rxd_network::validate_name(&new_name)?;
    if !Networks::used_by(&name, &profiles).is_empty() {
        return Err(ApiError::bad_request("Network is currently in use"));
    }
    if objects::find::<Networks>(&d, &new_name).await?.0.is_some() {
        return Err(ApiError::conflict(format!(
            "Network {new_name:?} already exists"
        )));
    }
    if Netlink::connect()?.link(&new_name).await?.is_some() {
        return Err(NetworkError::InterfaceExists(new_name).into());
    }
    let mut config = net.config.clone();
    if let Some(mine) = net.member(d.node_id()) {
        config.extend(mine.config.clone());
    }
    rxd_network::stop(&d.dir, &name).await?;
    rxd_network::move_dir(&d.dir, &name, &new_name)?;
    let renamed = d
        .db()
        .propose(Command::RenameNetwork {
            name: name.clone(),
            new_name: new_name.clone(),
        })
        .await;
    let refused = match renamed {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(ApiError::from(e)),
        Err(e) => Some(ApiError::from(e)),
    };
    if let Some(e) = refused {
        // The old bridge comes back as it was.
        if let Err(undo) = rxd_network::move_dir(&d.dir, &new_name, &name) {
            tracing::warn!("Network {name}: {undo}");
        }
        if let Err(undo) = rxd_network::setup(&d.dir, &name, &config, true).await {
            tracing::warn!("Network {name}: {undo}");
        }
        return Err(e);
    }
    rxd_network::setup(&d.dir, &new_name, &config, true).await?;
    let url = format!("/1.0/networks/{new_name}");
    d.events.lifecycle(
        "network-renamed",
        &url,
        Some(serde_json::json!({ "old_name": name })),
        Some(caller.requestor()),
    );
    Ok(created(&url))
}
