//! Objects with a side on each member: storage pools and networks, and later storage volumes
//! and instances. LXD's API gives them one protocol and this module is its one
//! implementation; a kind plugs in through [`MemberKind`] (its names, its member-specific
//! keys, its checks, and how its side is made and removed on a member), and its handler module
//! keeps only the route glue and what is truly its own.
//!
//! ```text
//!  POST ?target=m ─> DefineMemberObject (m's side, Pending)
//!  POST (cluster) ─> defined on every member? ─> K::prepare ─> each member: create_side
//!        (here, or POST /internal/<kind>/create) ─> FinishMemberObject (Created everywhere)
//!        any failure: the sides made are removed again, the object stays Pending
//!  POST (standalone, one member) ─> create_side here ─> CreateMemberObject (Created)
//!  PUT/PATCH [?target=this member] ─> If-Match against the view ─> cluster | member keys
//!        ─> UpdateMemberObject if unchanged since read ─> K::RECONFIGURES: sides made again
//!  DELETE ─> DeleteMemberObject ─> each member: delete_side (/internal/<kind>/delete)
//!  start ─> restore ─> K::restore_sides with the created objects that have a side here
//! ```

use std::collections::BTreeMap;
use std::future::Future;

use axum::http::HeaderMap;
use axum::response::Response;
use rxd_db::tables::{self, Config, MemberObject, ObjectKind};
use rxd_db::{Command, Expected};
use serde::{Deserialize, Serialize};

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::response::{check_etag, created, empty, sync, CompareAndSet};
use crate::Daemon;

/// A kind of object with a side on each member.
pub trait MemberKind: Send + Sync + 'static {
    /// Its tables.
    const KIND: ObjectKind;
    /// Its name at the start of a sentence: `Storage pool`.
    const NOUN: &'static str;
    /// Its name inside a sentence: `storage pool`.
    const LOWER: &'static str;
    /// Its short name in LXD's sentences about definitions: `Pool`.
    const SHORT: &'static str;
    /// What its type is called: `driver`.
    const TYPE_WORD: &'static str;
    /// Its public URL: `/1.0/storage-pools`.
    const URL: &'static str;
    /// Its member-to-member URL: `/internal/storage-pools`.
    const INTERNAL: &'static str;
    /// Its lifecycle events' prefix and its entity in `GET /1.0/cluster`: `storage-pool`.
    const EVENT: &'static str;
    /// Member keys fixed once the side is made (a pool's `source`): a change is refused, and
    /// a write that leaves them out keeps them.
    const FIXED_KEYS: &'static [&'static str] = &[];
    /// Whether a change of keys is carried out on the members' sides (a bridge's addresses).
    const RECONFIGURES: bool = false;
    /// What the API answers for it.
    type Api: Serialize + Send;

    /// Its member-specific keys.
    fn member_keys() -> &'static [&'static str];
    /// Checks a name given on the public or the internal API.
    fn validate_name(name: &str) -> ApiResult<()>;
    /// Checks a create request (its name first), normalising what LXD normalises.
    fn validate_post(post: &mut ObjectPost) -> ApiResult<()>;
    /// Checks a full configuration (cluster and member keys).
    fn validate_config(name: &str, object_type: &str, config: &Config) -> ApiResult<()>;
    /// Checks a side another member asks this one to make, beyond its name.
    fn validate_side(_side: &Side) -> ApiResult<()> {
        Ok(())
    }
    /// Fills in what is decided once for every member before sides are made or changed
    /// (`new`: a create): a network's defaults and its `auto` subnets.
    fn prepare(
        _name: &str,
        _config: &mut Config,
        _new: bool,
    ) -> impl Future<Output = ApiResult<()>> + Send {
        async { Ok(()) }
    }
    /// Makes (or, with `side.update`, changes) this member's side, and answers the member
    /// keys to store. An error leaves nothing behind.
    fn create_side(d: &Daemon, side: &Side) -> impl Future<Output = ApiResult<Config>> + Send;
    /// Removes this member's side, logging what it cannot remove.
    fn delete_side(d: &Daemon, side: &Side) -> impl Future<Output = ()> + Send;
    /// Brings back this member's sides of created objects as the daemon starts, and answers
    /// each object's name with why its side could not be brought back (`None` when it was).
    fn restore_sides(
        d: &Daemon,
        objects: Vec<MemberObject>,
    ) -> impl Future<Output = Vec<(String, Option<String>)>> + Send;
    /// The profiles that use the object, as URLs.
    fn used_by(name: &str, profiles: &[tables::Profile]) -> Vec<String>;
    /// The API's view of it.
    fn to_api(
        object: MemberObject,
        config: Config,
        locations: Vec<String>,
        used_by: Vec<String>,
    ) -> Self::Api;
}

/// A create request, whatever the kind.
#[derive(Debug, Clone, Default)]
pub struct ObjectPost {
    /// The object's name.
    pub name: String,
    /// A pool's driver, a network's type.
    pub object_type: String,
    /// Free text.
    pub description: String,
    /// Cluster and member keys as given.
    pub config: Config,
}

/// A member's side of an object, made, changed or removed on that member (the body of
/// `/internal/<kind>/{create,delete}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Side {
    /// The object's name.
    pub name: String,
    /// A pool's driver (a network's side needs none).
    #[serde(default, rename = "driver")]
    pub object_type: String,
    /// The member's keys.
    pub config: Config,
    /// The object's cluster-wide keys, which drivers read (`btrfs.mount_options`).
    #[serde(default)]
    pub cluster_config: Config,
    /// Whether the side exists already and is changed rather than made.
    #[serde(default)]
    pub update: bool,
}

impl Side {
    /// Cluster and member keys together, the member's winning.
    pub fn all_config(&self) -> Config {
        let mut all = self.cluster_config.clone();
        all.extend(self.config.clone());
        all
    }
}

/// What an ETag covers: the writable fields of a pool or network, in their wire order.
#[derive(Serialize)]
struct Writable<'a> {
    config: &'a Config,
    description: &'a str,
}

/// The ETag of a view with `config` and `description`, as the matching GET hands it out.
pub fn etag(config: &Config, description: &str) -> String {
    rxd_api::etag(&Writable {
        config,
        description,
    })
}

fn is_member_key<K: MemberKind>(key: &str) -> bool {
    K::member_keys().contains(&key)
}

/// Splits keys into (member, cluster).
fn split<K: MemberKind>(config: Config) -> (Config, Config) {
    config.into_iter().partition(|(k, _)| is_member_key::<K>(k))
}

/// Which member's keys a view shows, and whether this server is clustered: the member a
/// `?target=` names; without one a standalone server shows its own keys and a cluster hides
/// member-specific ones.
pub async fn view(d: &Daemon, target: Option<&str>) -> ApiResult<(Option<u64>, bool)> {
    let clustered = d.is_clustered().await?;
    match target {
        Some(t) => {
            let t = t.to_string();
            let m = d.db().read(move |c| tables::member(c, &t)).await?;
            Ok((Some(m.id), clustered))
        }
        None if !clustered => Ok((Some(d.node_id()), false)),
        None => Ok((None, true)),
    }
}

/// Cluster keys plus, when `member` is given, that member's keys.
fn view_config(object: &MemberObject, member: Option<u64>) -> Config {
    let mut config = object.config.clone();
    if let Some(side) = member.and_then(|id| object.member(id)) {
        config.extend(side.config.clone());
    }
    config
}

/// The API view of an object: cluster keys plus, when `member` is given, that member's keys.
pub fn to_api<K: MemberKind>(
    object: MemberObject,
    member: Option<u64>,
    clustered: bool,
    profiles: &[tables::Profile],
) -> K::Api {
    let config = view_config(&object, member);
    let locations = if clustered {
        object
            .members
            .iter()
            .map(|m| m.member_name.clone())
            .collect()
    } else {
        vec!["none".into()]
    };
    let used_by = K::used_by(&object.name, profiles);
    K::to_api(object, config, locations, used_by)
}

/// Every object of the kind, with the default project's profiles (for `used_by`).
pub async fn all<K: MemberKind>(
    d: &Daemon,
) -> ApiResult<(Vec<MemberObject>, Vec<tables::Profile>)> {
    Ok(d.db()
        .read(|c| {
            Ok((
                tables::member_objects(c, K::KIND)?,
                tables::profiles(c, "default")?,
            ))
        })
        .await?)
}

/// The object `name`, if there is one, with the default project's profiles.
pub async fn find<K: MemberKind>(
    d: &Daemon,
    name: &str,
) -> ApiResult<(Option<MemberObject>, Vec<tables::Profile>)> {
    let name = name.to_string();
    Ok(d.db()
        .read(move |c| {
            Ok((
                tables::member_object(c, K::KIND, &name).ok(),
                tables::profiles(c, "default")?,
            ))
        })
        .await?)
}

/// The object `name` with the default project's profiles; a 404 in LXD's words without it.
pub async fn load<K: MemberKind>(
    d: &Daemon,
    name: &str,
) -> ApiResult<(MemberObject, Vec<tables::Profile>)> {
    match find::<K>(d, name).await? {
        (Some(object), profiles) => Ok((object, profiles)),
        (None, _) => Err(ApiError::not_found(format!("{} not found", K::NOUN))),
    }
}

/// A write through raft; a refusal or a failure is the request's error.
async fn propose(d: &Daemon, command: Command) -> ApiResult<()> {
    d.db().propose(command).await??;
    Ok(())
}

/// `POST <url>`: `?target=` defines one member's side; without it the object is made at once
/// on a standalone server or a one-member cluster, and on every member of a larger cluster
/// once each has its definition.
pub async fn post<K: MemberKind>(
    d: &Daemon,
    caller: &Caller,
    target: Option<&str>,
    mut post: ObjectPost,
) -> ApiResult<Response> {
    K::validate_post(&mut post)?;
    let members = d.db().read(tables::members).await?;
    let url = format!("{}/{}", K::URL, post.name);
    if let Some(t) = target {
        define::<K>(d, &post, t, &members).await?;
        return Ok(created(&url));
    }
    if members.len() > 1 {
        create_everywhere::<K>(d, &post, &members).await?;
    } else {
        create_here::<K>(d, &post).await?;
    }
    d.events.lifecycle(
        &format!("{}-created", K::EVENT),
        &url,
        None,
        Some(caller.requestor()),
    );
    Ok(created(&url))
}

async fn define<K: MemberKind>(
    d: &Daemon,
    post: &ObjectPost,
    target: &str,
    members: &[tables::Member],
) -> ApiResult<()> {
    if !d.is_clustered().await? {
        return Err(ApiError::bad_request("This server is not clustered"));
    }
    let member = members
        .iter()
        .find(|m| m.name == target)
        .ok_or_else(|| ApiError::not_found("Cluster member not found"))?;
    if let Some(key) = post.config.keys().find(|k| !is_member_key::<K>(k)) {
        return Err(ApiError::bad_request(format!(
            "Config key {key:?} may not be used as member-specific key"
        )));
    }
    propose(
        d,
        Command::DefineMemberObject {
            kind: K::KIND,
            name: post.name.clone(),
            object_type: post.object_type.clone(),
            member_id: member.id,
            config: post.config.clone(),
        },
    )
    .await
}

fn exists<K: MemberKind>(name: &str) -> ApiError {
    ApiError::conflict(format!("{} {name:?} already exists", K::NOUN))
}

async fn create_here<K: MemberKind>(d: &Daemon, post: &ObjectPost) -> ApiResult<()> {
    if find::<K>(d, &post.name).await?.0.is_some() {
        return Err(exists::<K>(&post.name));
    }
    let mut config = post.config.clone();
    K::prepare(&post.name, &mut config, true).await?;
    let (member_config, cluster_config) = split::<K>(config);
    let mut side = Side {
        name: post.name.clone(),
        object_type: post.object_type.clone(),
        config: member_config,
        cluster_config: cluster_config.clone(),
        update: false,
    };
    side.config = K::create_side(d, &side).await?;
    let written = propose(
        d,
        Command::CreateMemberObject {
            kind: K::KIND,
            name: post.name.clone(),
            object_type: post.object_type.clone(),
            description: post.description.clone(),
            config: cluster_config,
            member_id: d.node_id(),
            member_config: side.config.clone(),
            state: "Created".into(),
        },
    )
    .await;
    if written.is_err() {
        // Nothing is left behind when the database refuses.
        K::delete_side(d, &side).await;
    }
    written
}

fn peer_message(e: &rxd_client::ClientError) -> String {
    match e {
        rxd_client::ClientError::Api { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Makes (`create`) or removes (`delete`) `member`'s side: here, or through its internal API.
/// Answers the member keys to store.
async fn on_member<K: MemberKind>(
    d: &Daemon,
    member: &tables::Member,
    action: &str,
    side: &Side,
) -> ApiResult<Config> {
    if member.id == d.node_id() {
        return if action == "create" {
            K::create_side(d, side).await
        } else {
            K::delete_side(d, side).await;
            Ok(side.config.clone())
        };
    }
    let c = crate::peer::member_client(d, &member.address)?;
    let raw = c
        .request(
            "POST",
            &format!("{}/{action}", K::INTERNAL),
            Some(serde_json::to_value(side).expect("string maps serialise")),
            None,
        )
        .await
        .map_err(|e| {
            ApiError::bad_request(format!(
                "Failed to notify peer {}: {}",
                member.address,
                peer_message(&e)
            ))
        })?;
    raw.metadata()
        .map_err(|e| ApiError::internal(format!("Bad answer from {}: {e}", member.address)))
}

async fn create_everywhere<K: MemberKind>(
    d: &Daemon,
    post: &ObjectPost,
    members: &[tables::Member],
) -> ApiResult<()> {
    let object = find::<K>(d, &post.name).await?.0.ok_or_else(|| {
        ApiError::bad_request(format!(
            "{} not pending on any node (use --target <node> first)",
            K::SHORT
        ))
    })?;
    if object.state == "Created" {
        return Err(exists::<K>(&post.name));
    }
    if object.object_type != post.object_type {
        return Err(ApiError::bad_request(format!(
            "{} {:?} is pending with {} {:?}",
            K::NOUN,
            post.name,
            K::TYPE_WORD,
            object.object_type
        )));
    }
    let missing: Vec<&str> = members
        .iter()
        .filter(|m| object.member(m.id).is_none())
        .map(|m| m.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{} not defined on nodes: {}",
            K::SHORT,
            missing.join(", ")
        )));
    }
    if let Some(key) = post.config.keys().find(|k| is_member_key::<K>(k)) {
        return Err(ApiError::bad_request(format!(
            "Config key {key:?} is cluster member specific"
        )));
    }
    let mut config = post.config.clone();
    // Decided once, here, so that every member gets the same (a network's `auto` subnet).
    K::prepare(&post.name, &mut config, true).await?;
    let mut made: Vec<(&tables::Member, Side)> = Vec::new();
    let mut finished = BTreeMap::new();
    let mut failure = None;
    for entry in &object.members {
        let member = members
            .iter()
            .find(|m| m.id == entry.member_id)
            .expect("every entry belongs to a member");
        let mut side = Side {
            name: post.name.clone(),
            object_type: post.object_type.clone(),
            config: entry.config.clone(),
            cluster_config: config.clone(),
            update: false,
        };
        match on_member::<K>(d, member, "create", &side).await {
            Ok(stored) => {
                finished.insert(member.id, (stored.clone(), "Created".to_string()));
                side.config = stored;
                made.push((member, side));
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if failure.is_none() {
        let written = propose(
            d,
            Command::FinishMemberObject {
                kind: K::KIND,
                name: post.name.clone(),
                description: post.description.clone(),
                config,
                state: "Created".into(),
                members: finished,
            },
        )
        .await;
        failure = written.err();
    }
    if let Some(e) = failure {
        // Members that made their side remove it again; the object stays pending for a retry.
        for (member, side) in made {
            let _ = on_member::<K>(d, member, "delete", &side).await;
        }
        return Err(e);
    }
    Ok(())
}

/// A `PUT` (`merge` false) or `PATCH` of an object on this member. `targeted`: the request
/// named this member with `?target=` (another member's is handed to it by the router), so
/// only this member's keys change, checked against this member's view's ETag; without a
/// target a cluster changes cluster-wide keys only.
pub async fn update<K: MemberKind>(
    d: &Daemon,
    name: &str,
    headers: &HeaderMap,
    put: (Config, String),
    targeted: bool,
    merge: bool,
) -> ApiResult<Response> {
    let (put_config, put_description) = put;
    let id = d.node_id();
    let clustered = d.is_clustered().await?;
    let shown_member = (!clustered || targeted).then_some(id);
    let mut cas = CompareAndSet::new(headers);
    let object = loop {
        let (object, _) = load::<K>(d, name).await?;
        let shown = view_config(&object, shown_member);
        check_etag(headers, &etag(&shown, &object.description))?;
        let mut wanted = if merge { shown.clone() } else { Config::new() };
        wanted.extend(put_config.clone());
        if clustered && targeted {
            // With a target only member keys change; the others may come back as they are.
            if let Some(key) = wanted
                .iter()
                .find_map(|(k, v)| (!is_member_key::<K>(k) && shown.get(k) != Some(v)).then_some(k))
            {
                return Err(ApiError::bad_request(format!(
                    "Config key {key:?} may not be used as member-specific key"
                )));
            }
        }
        K::validate_config(name, &object.object_type, &wanted)?;
        let (given, cluster_given) = split::<K>(wanted);
        let mine = object
            .member(id)
            .map(|m| m.config.clone())
            .unwrap_or_default();
        let (mut cluster_config, mut member_config) = match (clustered, targeted) {
            (true, false) => {
                if let Some(key) = given.keys().next() {
                    return Err(ApiError::bad_request(format!(
                        "Config key {key:?} is cluster member specific"
                    )));
                }
                (cluster_given, mine.clone())
            }
            (true, true) => (object.config.clone(), given.clone()),
            (false, _) => (cluster_given, given.clone()),
        };
        for key in K::FIXED_KEYS {
            match (given.get(*key), mine.get(*key)) {
                (Some(new), old) if Some(new) != old => {
                    return Err(ApiError::bad_request(format!(
                        "{} {key} cannot be changed when not in pending state",
                        K::SHORT
                    )));
                }
                (None, Some(old)) => {
                    member_config.insert(key.to_string(), old.clone());
                }
                _ => {}
            }
        }
        K::prepare(name, &mut cluster_config, false).await?;
        let description = if merge && put_description.is_empty() {
            object.description.clone()
        } else {
            put_description.clone()
        };
        let write = Command::UpdateMemberObject {
            kind: K::KIND,
            name: name.to_string(),
            description,
            config: cluster_config,
            member_id: id,
            member_config,
        }
        .only_if(Expected::MemberObject(object.clone()));
        if cas.outcome(d.db().propose(write).await?)?.is_some() {
            break object;
        }
    };
    if K::RECONFIGURES && object.state == "Created" {
        // Every member with a side (only this one's with a target) carries out the new keys.
        let (object, _) = load::<K>(d, name).await?;
        let members = d.db().read(tables::members).await?;
        for entry in &object.members {
            if targeted && entry.member_id != id {
                continue;
            }
            let Some(member) = members.iter().find(|m| m.id == entry.member_id) else {
                continue;
            };
            let side = Side {
                name: name.to_string(),
                object_type: object.object_type.clone(),
                config: entry.config.clone(),
                cluster_config: object.config.clone(),
                update: true,
            };
            on_member::<K>(d, member, "create", &side).await?;
        }
    }
    Ok(empty())
}

/// `DELETE <url>/{name}`: refused while a profile uses it; each member removes its side.
pub async fn delete<K: MemberKind>(d: &Daemon, caller: &Caller, name: &str) -> ApiResult<Response> {
    let (object, profiles) = load::<K>(d, name).await?;
    let users = K::used_by(name, &profiles);
    if !users.is_empty() {
        return Err(ApiError::bad_request(format!(
            "The {} is currently in use by: {}",
            K::LOWER,
            users.join(", ")
        )));
    }
    propose(
        d,
        Command::DeleteMemberObject {
            kind: K::KIND,
            name: name.to_string(),
        },
    )
    .await?;
    // Each member removes its own side; one that cannot be reached keeps an orphaned side,
    // which the log names.
    let members = d.db().read_local(tables::members).await?;
    for entry in &object.members {
        let side = Side {
            name: name.to_string(),
            object_type: object.object_type.clone(),
            config: entry.config.clone(),
            cluster_config: object.config.clone(),
            update: false,
        };
        if let Some(member) = members.iter().find(|m| m.id == entry.member_id) {
            if let Err(e) = on_member::<K>(d, member, "delete", &side).await {
                tracing::warn!(
                    "Failed to remove {} {name} on {}: {}",
                    K::LOWER,
                    member.name,
                    e.message
                );
            }
        }
    }
    d.events.lifecycle(
        &format!("{}-deleted", K::EVENT),
        &format!("{}/{name}", K::URL),
        None,
        Some(caller.requestor()),
    );
    Ok(empty())
}

/// `POST <internal>/create`: makes (or changes) this member's side, checked as the public API
/// checks it; answers the member keys to store.
pub async fn internal_create<K: MemberKind>(d: &Daemon, side: Side) -> ApiResult<Response> {
    K::validate_name(&side.name)?;
    K::validate_side(&side)?;
    let stored = K::create_side(d, &side).await?;
    Ok(sync(stored))
}

/// `POST <internal>/delete`: removes this member's side of an object that is no longer
/// created in the cluster (deleted, or pending after a failed creation).
pub async fn internal_delete<K: MemberKind>(d: &Daemon, side: Side) -> ApiResult<Response> {
    K::validate_name(&side.name)?;
    if find::<K>(d, &side.name)
        .await?
        .0
        .is_some_and(|o| o.state == "Created")
    {
        return Err(ApiError::conflict(format!(
            "{} {:?} is created in the cluster; delete it through {}",
            K::NOUN,
            side.name,
            K::URL
        )));
    }
    K::delete_side(d, &side).await;
    Ok(sync(side.config))
}

/// Brings back this member's sides of every created object of the kind (daemon start), and
/// answers each object's name with why its side could not be brought back.
pub async fn restore<K: MemberKind>(d: &Daemon) -> Vec<(String, Option<String>)> {
    let id = d.node_id();
    let objects = match d
        .db()
        .read_local(move |c| tables::member_objects(c, K::KIND))
        .await
    {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!("Cannot read {}s to restore them: {e}", K::LOWER);
            return Vec::new();
        }
    };
    let mine = objects
        .into_iter()
        .filter(|o| o.state == "Created" && o.member(id).is_some())
        .collect();
    K::restore_sides(d, mine).await
}

/// The member-specific keys this member holds, as `GET /1.0/cluster` lists them.
pub async fn member_config<K: MemberKind>(
    d: &Daemon,
) -> ApiResult<Vec<rxd_api::ClusterMemberConfigKey>> {
    let id = d.node_id();
    let (objects, _) = all::<K>(d).await?;
    let mut out = Vec::new();
    for object in objects {
        let Some(mine) = object.member(id) else {
            continue;
        };
        for key in mine.config.keys() {
            if key.starts_with("volatile.") || !is_member_key::<K>(key) {
                continue;
            }
            out.push(rxd_api::ClusterMemberConfigKey {
                entity: K::EVENT.into(),
                name: object.name.clone(),
                key: key.clone(),
                value: String::new(),
                description: format!("\"{key}\" property for {} \"{}\"", K::LOWER, object.name),
            });
        }
    }
    Ok(out)
}
