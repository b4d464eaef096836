//! `/1.0/networks`: managed bridges, cluster-wide with each member's side made on that member,
//! and the member's unmanaged interfaces (`managed: false`).
//!
//! ```text
//!  POST ?target=m ─> DefineNetworkMember (Pending)
//!  POST (cluster) ─> all members defined? ─> resolve auto ─> each member: /internal/networks/create
//!       ─> FinishNetwork (Created)      any failure: made sides removed, stays Pending
//!  POST (standalone / one member) ─> make here ─> CreateNetwork (Created)
//!  DELETE ─> DeleteNetwork ─> each member: /internal/networks/delete
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use rxd_api::{Network, NetworkPost, NetworkPut, NetworksPost};
use rxd_db::tables::{self, Config};
use rxd_db::Command;

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::handlers::{recursion, target, QueryMap};
use crate::response::{check_etag, created, empty, sync, sync_etag, CompareAndSet, JsonBody};
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

/// The API view of a managed network: cluster keys plus, when `member` is given, that
/// member's keys.
fn to_api(
    n: tables::Network,
    member: Option<u64>,
    clustered: bool,
    profiles: &[tables::Profile],
) -> Network {
    let mut config = n.config.clone();
    if let Some(id) = member {
        if let Some(m) = n.members.iter().find(|m| m.member_id == id) {
            config.extend(m.config.clone());
        }
    }
    Network {
        used_by: Some(used_by(&n.name, profiles)),
        locations: Some(if clustered {
            n.members.iter().map(|m| m.member_name.clone()).collect()
        } else {
            vec!["none".into()]
        }),
        config,
        description: n.description,
        network_type: n.network_type,
        managed: true,
        status: n.state,
        name: n.name,
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

async fn host_links() -> ApiResult<Vec<rxd_network::bridge::Link>> {
    Ok(Netlink::connect()?.links().await?)
}

/// `GET /1.0/networks`.
pub async fn networks_get(State(d): State<Arc<Daemon>>, q: QueryMap) -> ApiResult<Response> {
    let (nets, profiles) = d
        .db()
        .read(|c| Ok((tables::networks(c)?, tables::profiles(c, "default")?)))
        .await?;
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
    let (member, clustered) = member_for_view(&d, target(&q)).await?;
    let mut out: Vec<Network> = nets
        .into_iter()
        .map(|n| to_api(n, member, clustered, &profiles))
        .chain(links.iter().map(|l| unmanaged(l, clustered)))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(sync(out))
}

async fn load(
    d: &Daemon,
    name: &str,
) -> ApiResult<(Option<tables::Network>, Vec<tables::Profile>)> {
    let name = name.to_string();
    Ok(d.db()
        .read(move |c| {
            Ok((
                tables::network(c, &name).ok(),
                tables::profiles(c, "default")?,
            ))
        })
        .await?)
}

fn writable(n: &Network) -> NetworkPut {
    NetworkPut {
        config: n.config.clone(),
        description: n.description.clone(),
    }
}

/// `GET /1.0/networks/{name}`.
pub async fn network_get(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
    q: QueryMap,
) -> ApiResult<Response> {
    let (net, profiles) = load(&d, &name).await?;
    let net = match net {
        Some(n) => {
            let (member, clustered) = member_for_view(&d, target(&q)).await?;
            to_api(n, member, clustered, &profiles)
        }
        None => {
            let link = Netlink::connect()?
                .link(&name)
                .await?
                .ok_or_else(|| ApiError::not_found("Network not found"))?;
            unmanaged(&link, d.is_clustered().await?)
        }
    };
    let etag = rxd_api::etag(&writable(&net));
    Ok(sync_etag(net, &etag))
}

/// `POST /1.0/networks`: on a standalone server or a one-member cluster the bridge is made at
/// once; in a larger cluster it is first defined on each member with `?target=`, then created
/// everywhere by a request without target.
pub async fn networks_post(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    q: QueryMap,
    JsonBody(mut post): JsonBody<NetworksPost>,
) -> ApiResult<Response> {
    if post.name.is_empty() {
        return Err(ApiError::bad_request("No name provided"));
    }
    rxd_network::validate_name(&post.name)?;
    post.network_type = rxd_network::validate_type(&post.network_type)?.to_string();
    rxd_network::validate_config(&post.name, &post.config)?;
    let members = d.db().read(tables::members).await?;
    if let Some(t) = target(&q) {
        return define_on_member(&d, &post, t, &members).await;
    }
    let url = format!("/1.0/networks/{}", post.name);
    if members.len() > 1 {
        create_everywhere(&d, &post, &members).await?;
    } else {
        create_here(&d, &post).await?;
    }
    d.events
        .lifecycle("network-created", &url, None, Some(caller.requestor()));
    Ok(created(&url))
}

async fn define_on_member(
    d: &Daemon,
    post: &NetworksPost,
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
        if !MEMBER_KEYS.contains(&key.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Config key {key:?} may not be used as member-specific key"
            )));
        }
    }
    d.db()
        .propose(Command::DefineNetworkMember {
            name: post.name.clone(),
            network_type: post.network_type.clone(),
            member_id: member.id,
            config: post.config.clone(),
        })
        .await??;
    Ok(created(&format!("/1.0/networks/{}", post.name)))
}

async fn exists(d: &Daemon, name: &str) -> ApiResult<Option<tables::Network>> {
    let name = name.to_string();
    Ok(d.db()
        .read(move |c| Ok(tables::network(c, &name).ok()))
        .await?)
}

fn split(config: Config) -> (Config, Config) {
    config
        .into_iter()
        .partition(|(k, _)| MEMBER_KEYS.contains(&k.as_str()))
}

async fn create_here(d: &Daemon, post: &NetworksPost) -> ApiResult<()> {
    if exists(d, &post.name).await?.is_some() {
        return Err(ApiError::conflict(format!(
            "Network {:?} already exists",
            post.name
        )));
    }
    let mut config = post.config.clone();
    rxd_network::fill_defaults(&mut config);
    rxd_network::resolve_addresses(&post.name, &mut config).await?;
    rxd_network::setup(&d.dir, &post.name, &config, true).await?;
    let (member_config, cluster_config) = split(config);
    let result = d
        .db()
        .propose(Command::CreateNetwork {
            name: post.name.clone(),
            network_type: post.network_type.clone(),
            description: post.description.clone(),
            config: cluster_config,
            member_id: d.node_id(),
            member_config,
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
        rxd_network::teardown(&d.dir, &post.name).await;
        return Err(e);
    }
    Ok(())
}

/// A member's side of a network, made, reconfigured or removed on that member.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct LocalNetwork {
    /// Network name.
    pub name: String,
    /// Cluster-wide and member keys together.
    pub config: Config,
    /// Whether the bridge exists already (an update) rather than being new.
    #[serde(default)]
    pub update: bool,
}

async fn local_action(d: &Daemon, action: &str, net: &LocalNetwork) -> ApiResult<()> {
    if action == "create" {
        rxd_network::setup(&d.dir, &net.name, &net.config, !net.update).await?;
    } else {
        rxd_network::teardown(&d.dir, &net.name).await;
    }
    Ok(())
}

async fn on_member(
    d: &Daemon,
    member: &tables::Member,
    action: &str,
    net: &LocalNetwork,
) -> ApiResult<()> {
    if member.id == d.node_id() {
        return local_action(d, action, net).await;
    }
    let c = crate::peer::member_client(d, &member.address)?;
    c.request(
        "POST",
        &format!("/internal/networks/{action}"),
        Some(serde_json::to_value(net).expect("networks serialise")),
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
    Ok(())
}

async fn create_everywhere(
    d: &Daemon,
    post: &NetworksPost,
    members: &[tables::Member],
) -> ApiResult<()> {
    let net = exists(d, &post.name).await?.ok_or_else(|| {
        ApiError::bad_request("Network not pending on any node (use --target <node> first)")
    })?;
    if net.state == "Created" {
        return Err(ApiError::conflict(format!(
            "Network {:?} already exists",
            post.name
        )));
    }
    if net.network_type != post.network_type {
        return Err(ApiError::bad_request(format!(
            "Network {:?} is pending with type {:?}",
            post.name, net.network_type
        )));
    }
    let missing: Vec<&str> = members
        .iter()
        .filter(|m| !net.members.iter().any(|nm| nm.member_id == m.id))
        .map(|m| m.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Network not defined on nodes: {}",
            missing.join(", ")
        )));
    }
    if let Some(key) = post
        .config
        .keys()
        .find(|k| MEMBER_KEYS.contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "Config key {key:?} is cluster member specific"
        )));
    }
    let mut config = post.config.clone();
    rxd_network::fill_defaults(&mut config);
    // `auto` is resolved once, here, so that every member gets the same subnet.
    rxd_network::resolve_addresses(&post.name, &mut config).await?;
    let mut made: Vec<(&tables::Member, LocalNetwork)> = Vec::new();
    let mut finished = BTreeMap::new();
    let mut failure = None;
    for nm in &net.members {
        let member = members
            .iter()
            .find(|m| m.id == nm.member_id)
            .expect("every entry belongs to a member");
        let mut all = config.clone();
        all.extend(nm.config.clone());
        let local = LocalNetwork {
            name: post.name.clone(),
            config: all,
            update: false,
        };
        match on_member(d, member, "create", &local).await {
            Ok(()) => {
                finished.insert(member.id, (nm.config.clone(), "Created".to_string()));
                made.push((member, local));
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
            .propose(Command::FinishNetwork {
                name: post.name.clone(),
                description: post.description.clone(),
                config: config.clone(),
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
        // Members that made their side remove it again; the network stays pending for a retry.
        for (member, local) in made {
            let _ = on_member(d, member, "delete", &local).await;
        }
        return Err(e);
    }
    Ok(())
}

async fn update(
    d: &Daemon,
    name: &str,
    headers: &HeaderMap,
    put: NetworkPut,
    target_member: Option<&str>,
    merge: bool,
) -> ApiResult<Response> {
    let clustered = d.is_clustered().await?;
    let (view, _) = member_for_view(d, target_member).await?;
    let member_id = view.unwrap_or_else(|| d.node_id());
    let mut cas = CompareAndSet::new(headers);
    let net = loop {
        let (net, profiles) = load(d, name).await?;
        let net = net.ok_or_else(|| ApiError::not_found("Network not found"))?;
        let current = to_api(net.clone(), view, clustered, &profiles);
        check_etag(headers, &rxd_api::etag(&writable(&current)))?;
        let mut wanted = if merge {
            current.config.clone()
        } else {
            Config::new()
        };
        wanted.extend(put.config.clone());
        rxd_network::validate_config(name, &wanted)?;
        let (member_config, cluster_config) = split(wanted);
        if clustered && target_member.is_none() {
            if let Some(key) = member_config.keys().next() {
                return Err(ApiError::bad_request(format!(
                    "Config key {key:?} is cluster member specific"
                )));
            }
        }
        if clustered && target_member.is_some() && cluster_config != net.config {
            return Err(ApiError::bad_request(
                "Only member-specific keys may be changed with --target",
            ));
        }
        let mine = net
            .members
            .iter()
            .find(|m| m.member_id == member_id)
            .map(|m| m.config.clone())
            .unwrap_or_default();
        let keep = if clustered && target_member.is_none() {
            mine
        } else {
            member_config
        };
        let mut cluster_config = cluster_config;
        rxd_network::resolve_addresses(name, &mut cluster_config).await?;
        let description = if merge && put.description.is_empty() {
            net.description.clone()
        } else {
            put.description.clone()
        };
        let write = Command::UpdateNetwork {
            name: name.to_string(),
            description,
            config: cluster_config,
            member_id,
            member_config: keep,
        }
        .only_if(rxd_db::Expected::Network(net.clone()));
        if cas.outcome(d.db().propose(write).await?)?.is_some() {
            break net;
        }
    };
    if net.state == "Created" {
        // Every member with the network applies the new configuration to its bridge.
        let (net, _) = load(d, name).await?;
        let net = net.ok_or_else(|| ApiError::not_found("Network not found"))?;
        let members = d.db().read(tables::members).await?;
        for nm in &net.members {
            if target_member.is_some() && nm.member_id != member_id {
                continue;
            }
            let Some(member) = members.iter().find(|m| m.id == nm.member_id) else {
                continue;
            };
            let mut all = net.config.clone();
            all.extend(nm.config.clone());
            let local = LocalNetwork {
                name: name.to_string(),
                config: all,
                update: true,
            };
            on_member(d, member, "create", &local).await?;
        }
    }
    Ok(empty())
}

/// `PUT /1.0/networks/{name}`.
pub async fn network_put(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    q: QueryMap,
    JsonBody(put): JsonBody<NetworkPut>,
) -> ApiResult<Response> {
    update(&d, &name, &headers, put, target(&q), false).await
}

/// `PATCH /1.0/networks/{name}`.
pub async fn network_patch(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    q: QueryMap,
    JsonBody(put): JsonBody<NetworkPut>,
) -> ApiResult<Response> {
    update(&d, &name, &headers, put, target(&q), true).await
}

/// `DELETE /1.0/networks/{name}`.
pub async fn network_delete(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let (net, profiles) = load(&d, &name).await?;
    let net = net.ok_or_else(|| ApiError::not_found("Network not found"))?;
    let users = used_by(&name, &profiles);
    if !users.is_empty() {
        return Err(ApiError::bad_request(format!(
            "The network is currently in use by: {}",
            users.join(", ")
        )));
    }
    d.db()
        .propose(Command::DeleteNetwork { name: name.clone() })
        .await??;
    // Each member removes its own side; one that cannot be reached keeps an orphaned bridge,
    // which the log names.
    if net.state != "Pending" {
        let members = d.db().read_local(tables::members).await?;
        for nm in &net.members {
            let local = LocalNetwork {
                name: name.clone(),
                config: nm.config.clone(),
                update: false,
            };
            if let Some(member) = members.iter().find(|m| m.id == nm.member_id) {
                if let Err(e) = on_member(&d, member, "delete", &local).await {
                    tracing::warn!(
                        "Failed to remove network {name} on {}: {}",
                        member.name,
                        e.message
                    );
                }
            }
        }
    }
    d.events.lifecycle(
        "network-deleted",
        &format!("/1.0/networks/{name}"),
        None,
        Some(caller.requestor()),
    );
    Ok(empty())
}

/// `POST /internal/networks/create`: makes (or reconfigures) this member's side of a network,
/// checked as the public API checks it.
pub async fn internal_network_create(
    State(d): State<Arc<Daemon>>,
    JsonBody(net): JsonBody<LocalNetwork>,
) -> ApiResult<Response> {
    rxd_network::validate_name(&net.name)?;
    rxd_network::validate_config(&net.name, &net.config)?;
    local_action(&d, "create", &net).await?;
    Ok(empty())
}

/// `POST /internal/networks/delete`: removes this member's side of a network that is no
/// longer created in the cluster (deleted, or pending after a failed creation). Only a
/// bridge rxd recorded making is removed.
pub async fn internal_network_delete(
    State(d): State<Arc<Daemon>>,
    JsonBody(net): JsonBody<LocalNetwork>,
) -> ApiResult<Response> {
    rxd_network::validate_name(&net.name)?;
    if exists(&d, &net.name)
        .await?
        .is_some_and(|n| n.state == "Created")
    {
        return Err(ApiError::conflict(format!(
            "Network {:?} is created in the cluster; delete it through /1.0/networks",
            net.name
        )));
    }
    local_action(&d, "delete", &net).await?;
    Ok(empty())
}

/// Brings up this member's side of every created network (daemon start).
pub async fn restore(d: &Daemon) {
    let id = d.node_id();
    let nets = match d.db().read_local(tables::networks).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!("Cannot read networks to restore them: {e}");
            return;
        }
    };
    for net in nets.into_iter().filter(|n| n.state == "Created") {
        let Some(mine) = net.members.iter().find(|m| m.member_id == id) else {
            continue;
        };
        let mut all = net.config.clone();
        all.extend(mine.config.clone());
        // The database says the bridge is this member's, so one made before rxd kept records
        // is recorded now.
        if let Err(e) = rxd_network::adopt(&d.dir, &net.name).await {
            tracing::warn!("Failed to record network {}: {e}", net.name);
        }
        if let Err(e) = rxd_network::setup(&d.dir, &net.name, &all, false).await {
            tracing::warn!("Failed to restore network {}: {e}", net.name);
        }
    }
}

/// The member-specific keys this member holds for its networks, as `GET /1.0/cluster` lists
/// them.
pub async fn member_config(d: &Daemon) -> ApiResult<Vec<rxd_api::ClusterMemberConfigKey>> {
    let id = d.node_id();
    let nets = d.db().read(tables::networks).await?;
    let mut out = Vec::new();
    for net in nets {
        let Some(mine) = net.members.iter().find(|m| m.member_id == id) else {
            continue;
        };
        for key in mine.config.keys() {
            if key.starts_with("volatile.") || !MEMBER_KEYS.contains(&key.as_str()) {
                continue;
            }
            out.push(rxd_api::ClusterMemberConfigKey {
                entity: "network".into(),
                name: net.name.clone(),
                key: key.clone(),
                value: String::new(),
                description: format!("\"{key}\" property for network \"{}\"", net.name),
            });
        }
    }
    Ok(out)
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
    let (net, profiles) = load(&d, &name).await?;
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
    if !used_by(&name, &profiles).is_empty() {
        return Err(ApiError::bad_request("Network is currently in use"));
    }
    if exists(&d, &new_name).await?.is_some() {
        return Err(ApiError::conflict(format!(
            "Network {new_name:?} already exists"
        )));
    }
    if Netlink::connect()?.link(&new_name).await?.is_some() {
        return Err(NetworkError::InterfaceExists(new_name).into());
    }
    let mut config = net.config.clone();
    if let Some(mine) = net.members.iter().find(|m| m.member_id == d.node_id()) {
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
