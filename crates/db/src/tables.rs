//! Typed rows of the cluster database and the queries that read them. Every query takes a
//! connection (a transaction derefs to one), so callers choose the transaction boundary.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use crate::{DbError, Entity};

/// String-to-string configuration, as LXD keeps it.
pub type Config = BTreeMap<String, String>;
/// Devices by name, each a string map with a `type` key.
pub type Devices = BTreeMap<String, Config>;

fn json<T: for<'de> Deserialize<'de>>(row: &Row, idx: usize) -> Result<T, rusqlite::Error> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("string maps and lists always serialise")
}

/// Whether a member takes part normally, is evacuated, or is still joining.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberState {
    /// A full member.
    Created,
    /// Evacuated for maintenance.
    Evacuated,
    /// Accepted but not yet caught up.
    Pending,
}

impl MemberState {
    pub(crate) fn from_i64(v: i64) -> Self {
        match v {
            1 => MemberState::Evacuated,
            2 => MemberState::Pending,
            _ => MemberState::Created,
        }
    }

    pub(crate) fn as_i64(self) -> i64 {
        match self {
            MemberState::Created => 0,
            MemberState::Evacuated => 1,
            MemberState::Pending => 2,
        }
    }
}

/// A cluster member's row. A standalone server has one row, named `none`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Stable id; also the member's raft node id.
    pub id: u64,
    /// Member name.
    pub name: String,
    /// `cluster.https_address` of the member.
    pub address: String,
    /// Free text.
    pub description: String,
    /// Failure domain, `default` unless set.
    pub failure_domain: String,
    /// `scheduler.instance` and `user.*` keys.
    pub config: Config,
    /// Stored roles (`event-hub`, `ovn-chassis`); database roles are computed.
    pub roles: Vec<String>,
    /// Cluster groups.
    pub groups: Vec<String>,
    /// Architecture name, such as `x86_64`.
    pub architecture: String,
    /// Normal, evacuated or pending.
    pub state: MemberState,
}

/// A member's groups come from `cluster_group_members`, in the order it joined them.
const MEMBER_COLUMNS: &str = "id, name, address, description, failure_domain, config, roles, \
     (SELECT json_group_array(group_name ORDER BY rowid) FROM cluster_group_members \
      WHERE member_id = members.id), architecture, state";

fn member_from_row(row: &Row) -> Result<Member, rusqlite::Error> {
    Ok(Member {
        id: row.get::<_, i64>(0)? as u64,
        name: row.get(1)?,
        address: row.get(2)?,
        description: row.get(3)?,
        failure_domain: row.get(4)?,
        config: json(row, 5)?,
        roles: json(row, 6)?,
        groups: json(row, 7)?,
        architecture: row.get(8)?,
        state: MemberState::from_i64(row.get(9)?),
    })
}

/// All members, by id.
pub fn members(conn: &Connection) -> Result<Vec<Member>, DbError> {
    let mut stmt = conn.prepare(&format!("SELECT {MEMBER_COLUMNS} FROM members ORDER BY id"))?;
    let rows = stmt.query_map([], member_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One member by name.
pub fn member(conn: &Connection, name: &str) -> Result<Member, DbError> {
    conn.query_row(
        &format!("SELECT {MEMBER_COLUMNS} FROM members WHERE name = ?1"),
        [name],
        member_from_row,
    )
    .optional()?
    .ok_or_else(|| DbError::NotFound {
        entity: Entity::Member,
        name: name.to_string(),
    })
}

/// A trusted certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// SHA-256 of the DER, lower-case hex.
    pub fingerprint: String,
    /// `client` or `server`.
    pub cert_type: String,
    /// Name; for `server` certificates, the member name.
    pub name: String,
    /// PEM text.
    pub certificate: String,
    /// Whether it is limited to `projects`.
    pub restricted: bool,
    /// Projects a restricted certificate may use.
    pub projects: Vec<String>,
    /// Free text.
    pub description: String,
}

fn certificate_from_row(row: &Row) -> Result<Certificate, rusqlite::Error> {
    Ok(Certificate {
        fingerprint: row.get(0)?,
        cert_type: row.get(1)?,
        name: row.get(2)?,
        certificate: row.get(3)?,
        restricted: row.get(4)?,
        projects: json(row, 5)?,
        description: row.get(6)?,
    })
}

const CERT_COLUMNS: &str =
    "fingerprint, type, name, certificate, restricted, projects, description";

/// All trusted certificates, by fingerprint.
pub fn certificates(conn: &Connection) -> Result<Vec<Certificate>, DbError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {CERT_COLUMNS} FROM certificates ORDER BY fingerprint"
    ))?;
    let rows = stmt.query_map([], certificate_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One certificate by its full fingerprint.
pub fn certificate(conn: &Connection, fingerprint: &str) -> Result<Certificate, DbError> {
    conn.query_row(
        &format!("SELECT {CERT_COLUMNS} FROM certificates WHERE fingerprint = ?1"),
        [fingerprint],
        certificate_from_row,
    )
    .optional()?
    .ok_or_else(|| DbError::NotFound {
        entity: Entity::Certificate,
        name: fingerprint.to_string(),
    })
}

/// The kinds of object that have a side on each member, kept in tables of one shape: an
/// object row (`name`, `type`, `description`, cluster-wide `config`, `state`) and one row per
/// member (`object`, `member_id`, the member's `config`, its `state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ObjectKind {
    /// A storage pool; its type is the driver.
    StoragePool,
    /// A managed network; its type is the network type (`bridge`).
    Network,
}

impl ObjectKind {
    /// What errors call it.
    pub fn entity(self) -> Entity {
        match self {
            ObjectKind::StoragePool => Entity::StoragePool,
            ObjectKind::Network => Entity::Network,
        }
    }

    /// The table of its object rows.
    pub(crate) fn table(self) -> &'static str {
        match self {
            ObjectKind::StoragePool => "storage_pools",
            ObjectKind::Network => "networks",
        }
    }

    /// The table of its per-member rows.
    pub(crate) fn member_table(self) -> &'static str {
        match self {
            ObjectKind::StoragePool => "storage_pool_members",
            ObjectKind::Network => "network_members",
        }
    }
}

/// An object's side on one member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMember {
    /// The member's id.
    pub member_id: u64,
    /// The member's name.
    pub member_name: String,
    /// Member-specific keys (a pool's `source`, a network's `bridge.external_interfaces`, ...).
    pub config: Config,
    /// `Pending`, `Created` or `Errored`.
    pub state: String,
}

/// A storage pool's side on one member.
pub type PoolMember = ObjectMember;
/// A network's side on one member.
pub type NetworkMember = ObjectMember;

/// An object with a side on each member, with its per-member entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberObject {
    /// Which kind of object.
    pub kind: ObjectKind,
    /// Its name.
    pub name: String,
    /// A pool's driver, a network's type.
    pub object_type: String,
    /// Free text.
    pub description: String,
    /// Cluster-wide keys.
    pub config: Config,
    /// `Pending`, `Created` or `Errored`.
    pub state: String,
    /// Per-member entries, by member id.
    pub members: Vec<ObjectMember>,
}

impl MemberObject {
    /// The side of member `id`, if it has one.
    pub fn member(&self, id: u64) -> Option<&ObjectMember> {
        self.members.iter().find(|m| m.member_id == id)
    }
}

fn object_members(
    conn: &Connection,
    kind: ObjectKind,
    name: &str,
) -> Result<Vec<ObjectMember>, DbError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT o.member_id, m.name, o.config, o.state FROM {} o
         JOIN members m ON m.id = o.member_id WHERE o.object = ?1 ORDER BY m.id",
        kind.member_table()
    ))?;
    let rows = stmt.query_map([name], |row| {
        Ok(ObjectMember {
            member_id: row.get::<_, i64>(0)? as u64,
            member_name: row.get(1)?,
            config: json(row, 2)?,
            state: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// All objects of `kind`, by name.
pub fn member_objects(conn: &Connection, kind: ObjectKind) -> Result<Vec<MemberObject>, DbError> {
    let names: Vec<String> = {
        let mut stmt = conn.prepare(&format!("SELECT name FROM {} ORDER BY name", kind.table()))?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    names.iter().map(|n| member_object(conn, kind, n)).collect()
}

/// One object of `kind` by name.
pub fn member_object(
    conn: &Connection,
    kind: ObjectKind,
    name: &str,
) -> Result<MemberObject, DbError> {
    let object = conn
        .query_row(
            &format!(
                "SELECT name, type, description, config, state FROM {} WHERE name = ?1",
                kind.table()
            ),
            [name],
            |row| {
                Ok(MemberObject {
                    kind,
                    name: row.get(0)?,
                    object_type: row.get(1)?,
                    description: row.get(2)?,
                    config: json(row, 3)?,
                    state: row.get(4)?,
                    members: Vec::new(),
                })
            },
        )
        .optional()?
        .ok_or_else(|| DbError::NotFound {
            entity: kind.entity(),
            name: name.to_string(),
        })?;
    Ok(MemberObject {
        members: object_members(conn, kind, name)?,
        ..object
    })
}

/// A storage pool with its per-member entries: the [`MemberObject`] of kind
/// [`ObjectKind::StoragePool`] under the names pools had first (log entries carry it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoragePool {
    /// Pool name.
    pub name: String,
    /// Driver name (`dir`, ...).
    pub driver: String,
    /// Free text.
    pub description: String,
    /// Cluster-wide keys.
    pub config: Config,
    /// `Pending`, `Created` or `Errored`.
    pub state: String,
    /// Per-member entries.
    pub members: Vec<PoolMember>,
}

impl From<MemberObject> for StoragePool {
    fn from(o: MemberObject) -> Self {
        StoragePool {
            name: o.name,
            driver: o.object_type,
            description: o.description,
            config: o.config,
            state: o.state,
            members: o.members,
        }
    }
}

impl From<StoragePool> for MemberObject {
    fn from(p: StoragePool) -> Self {
        MemberObject {
            kind: ObjectKind::StoragePool,
            name: p.name,
            object_type: p.driver,
            description: p.description,
            config: p.config,
            state: p.state,
            members: p.members,
        }
    }
}

/// All storage pools, by name.
pub fn storage_pools(conn: &Connection) -> Result<Vec<StoragePool>, DbError> {
    let all = member_objects(conn, ObjectKind::StoragePool)?;
    Ok(all.into_iter().map(StoragePool::from).collect())
}

/// One storage pool by name.
pub fn storage_pool(conn: &Connection, name: &str) -> Result<StoragePool, DbError> {
    member_object(conn, ObjectKind::StoragePool, name).map(StoragePool::from)
}

/// A profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The project it belongs to.
    pub project: String,
    /// Profile name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Instance configuration keys.
    pub config: Config,
    /// Devices.
    pub devices: Devices,
}

fn profile_from_row(row: &Row) -> Result<Profile, rusqlite::Error> {
    Ok(Profile {
        project: row.get(0)?,
        name: row.get(1)?,
        description: row.get(2)?,
        config: json(row, 3)?,
        devices: json(row, 4)?,
    })
}

/// The profiles of a project, by name.
pub fn profiles(conn: &Connection, project: &str) -> Result<Vec<Profile>, DbError> {
    let mut stmt = conn.prepare(
        "SELECT project, name, description, config, devices FROM profiles WHERE project = ?1 ORDER BY name",
    )?;
    let rows = stmt.query_map([project], profile_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One profile.
pub fn profile(conn: &Connection, project: &str, name: &str) -> Result<Profile, DbError> {
    conn.query_row(
        "SELECT project, name, description, config, devices FROM profiles WHERE project = ?1 AND name = ?2",
        params![project, name],
        profile_from_row,
    )
    .optional()?
    .ok_or_else(|| DbError::NotFound {
        entity: Entity::Profile,
        name: name.to_string(),
    })
}

/// A project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// Project name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// `features.*` and other keys.
    pub config: Config,
}

/// All projects, by name.
pub fn projects(conn: &Connection) -> Result<Vec<Project>, DbError> {
    let mut stmt = conn.prepare("SELECT name, description, config FROM projects ORDER BY name")?;
    let rows = stmt.query_map([], |row| {
        Ok(Project {
            name: row.get(0)?,
            description: row.get(1)?,
            config: json(row, 2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The cluster-wide configuration keys that are set.
pub fn config(conn: &Connection) -> Result<Config, DbError> {
    let mut stmt = conn.prepare("SELECT key, value FROM config ORDER BY key")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The fingerprint of the cluster certificate committed by the last rotation, if any.
pub fn cluster_certificate(conn: &Connection) -> Result<Option<String>, DbError> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .query_row(
            "SELECT fingerprint FROM cluster_certificate WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .optional()?)
}

/// A join token (`kind` `join`) or a certificate-add token (`kind` `certificate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// The operation id that shows the token.
    pub id: String,
    /// `join` or `certificate`.
    pub kind: String,
    /// The server name (join) or client name (certificate) it was made for.
    pub name: String,
    /// 64 hex characters.
    pub secret: String,
    /// Fingerprint of the certificate the HTTPS listener served.
    pub fingerprint: String,
    /// Addresses to reach the cluster at.
    pub addresses: Vec<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub expires_at: String,
    /// The member that created it.
    pub location: String,
    /// For a certificate-add token: the projects the client will be restricted to, or `None`
    /// for an unrestricted client.
    #[serde(default)]
    pub restricted_projects: Option<Vec<String>>,
}

fn token_from_row(row: &Row) -> Result<Token, rusqlite::Error> {
    Ok(Token {
        id: row.get(0)?,
        kind: row.get(1)?,
        name: row.get(2)?,
        secret: row.get(3)?,
        fingerprint: row.get(4)?,
        addresses: json(row, 5)?,
        created_at: row.get(6)?,
        expires_at: row.get(7)?,
        location: row.get(8)?,
        restricted_projects: row
            .get::<_, Option<String>>(9)?
            .map(|p| serde_json::from_str(&p).unwrap_or_default()),
    })
}

const TOKEN_COLUMNS: &str =
    "id, kind, name, secret, fingerprint, addresses, created_at, expires_at, location, restricted_projects";

/// All live tokens, oldest first.
pub fn tokens(conn: &Connection) -> Result<Vec<Token>, DbError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_at, id"
    ))?;
    let rows = stmt.query_map([], token_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One token by operation id.
pub fn token(conn: &Connection, id: &str) -> Result<Token, DbError> {
    conn.query_row(
        &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ?1"),
        [id],
        token_from_row,
    )
    .optional()?
    .ok_or_else(|| DbError::NotFound {
        entity: Entity::Token,
        name: id.to_string(),
    })
}

/// The member name the join grant of `fingerprint` is for, if that certificate holds one.
pub fn join_grant(conn: &Connection, fingerprint: &str) -> Result<Option<String>, DbError> {
    Ok(conn
        .query_row(
            "SELECT name FROM join_grants WHERE fingerprint = ?1",
            [fingerprint],
            |r| r.get(0),
        )
        .optional()?)
}

/// The token of `kind` made for `name` whose secret is `secret`, expired or not. Every
/// candidate's secret is compared in full, so the time taken does not say how much of a guess
/// was right or which token matched.
pub fn matching_token(
    conn: &Connection,
    kind: &str,
    name: &str,
    secret: &str,
) -> Result<Option<Token>, DbError> {
    let mut found = None;
    for t in tokens(conn)? {
        if t.kind == kind
            && t.name == name
            && constant_time_eq(t.secret.as_bytes(), secret.as_bytes())
        {
            found = Some(t);
        }
    }
    Ok(found)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A managed network with its per-member entries: the [`MemberObject`] of kind
/// [`ObjectKind::Network`] under the names networks had first (log entries carry it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// Network name.
    pub name: String,
    /// Network type (`bridge`, ...).
    pub network_type: String,
    /// Free text.
    pub description: String,
    /// Cluster-wide keys.
    pub config: Config,
    /// `Pending`, `Created` or `Errored`.
    pub state: String,
    /// Per-member entries.
    pub members: Vec<NetworkMember>,
}

impl From<MemberObject> for Network {
    fn from(o: MemberObject) -> Self {
        Network {
            name: o.name,
            network_type: o.object_type,
            description: o.description,
            config: o.config,
            state: o.state,
            members: o.members,
        }
    }
}

impl From<Network> for MemberObject {
    fn from(n: Network) -> Self {
        MemberObject {
            kind: ObjectKind::Network,
            name: n.name,
            object_type: n.network_type,
            description: n.description,
            config: n.config,
            state: n.state,
            members: n.members,
        }
    }
}

/// All managed networks, by name.
pub fn networks(conn: &Connection) -> Result<Vec<Network>, DbError> {
    let all = member_objects(conn, ObjectKind::Network)?;
    Ok(all.into_iter().map(Network::from).collect())
}

/// One managed network by name.
pub fn network(conn: &Connection, name: &str) -> Result<Network, DbError> {
    member_object(conn, ObjectKind::Network, name).map(Network::from)
}

/// A warning's status, with LXD's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WarningStatus {
    /// Raised and not yet looked at.
    New,
    /// A user saw it; it stays so while it occurs again.
    Acknowledged,
    /// What caused it went away.
    Resolved,
}

impl WarningStatus {
    fn from_i64(v: i64) -> Self {
        match v {
            2 => WarningStatus::Acknowledged,
            3 => WarningStatus::Resolved,
            _ => WarningStatus::New,
        }
    }

    pub(crate) fn as_i64(self) -> i64 {
        match self {
            WarningStatus::New => 1,
            WarningStatus::Acknowledged => 2,
            WarningStatus::Resolved => 3,
        }
    }

    /// LXD's word for it.
    pub fn name(self) -> &'static str {
        match self {
            WarningStatus::New => "new",
            WarningStatus::Acknowledged => "acknowledged",
            WarningStatus::Resolved => "resolved",
        }
    }

    /// The status LXD calls `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            WarningStatus::New,
            WarningStatus::Acknowledged,
            WarningStatus::Resolved,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// A warning: one row per (member, project, type, entity), counting its occurrences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// UUID.
    pub uuid: String,
    /// The member it occurred on.
    pub member_id: u64,
    /// That member's name.
    pub member_name: String,
    /// The project it occurred in; empty for none.
    pub project: String,
    /// LXD's numeric type code.
    pub type_code: i64,
    /// The object it concerns; empty for none.
    pub entity_url: String,
    /// New, acknowledged or resolved.
    pub status: WarningStatus,
    /// RFC 3339, UTC.
    pub first_seen: String,
    /// RFC 3339, UTC.
    pub last_seen: String,
    /// RFC 3339, UTC: the last change of any kind.
    pub updated: String,
    /// The message of the last occurrence.
    pub last_message: String,
    /// How many times it occurred.
    pub count: u64,
}

const WARNING_COLUMNS: &str = "w.uuid, w.member_id, m.name, w.project, w.type_code, w.entity_url, \
     w.status, w.first_seen, w.last_seen, w.updated, w.last_message, w.count";

fn warning_from_row(row: &Row) -> Result<Warning, rusqlite::Error> {
    Ok(Warning {
        uuid: row.get(0)?,
        member_id: row.get::<_, i64>(1)? as u64,
        member_name: row.get(2)?,
        project: row.get(3)?,
        type_code: row.get(4)?,
        entity_url: row.get(5)?,
        status: WarningStatus::from_i64(row.get(6)?),
        first_seen: row.get(7)?,
        last_seen: row.get(8)?,
        updated: row.get(9)?,
        last_message: row.get(10)?,
        count: row.get::<_, i64>(11)? as u64,
    })
}

/// All warnings, oldest first.
pub fn warnings(conn: &Connection) -> Result<Vec<Warning>, DbError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {WARNING_COLUMNS} FROM warnings w JOIN members m ON m.id = w.member_id
         ORDER BY w.first_seen, w.uuid"
    ))?;
    let rows = stmt.query_map([], warning_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One warning by UUID.
pub fn warning(conn: &Connection, uuid: &str) -> Result<Warning, DbError> {
    conn.query_row(
        &format!(
            "SELECT {WARNING_COLUMNS} FROM warnings w JOIN members m ON m.id = w.member_id
             WHERE w.uuid = ?1"
        ),
        [uuid],
        warning_from_row,
    )
    .optional()?
    .ok_or_else(|| DbError::NotFound {
        entity: Entity::Warning,
        name: uuid.to_string(),
    })
}

/// A cluster group and the names of its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterGroup {
    /// Group name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Its members' names, by member id.
    pub members: Vec<String>,
}

fn group_members(conn: &Connection, name: &str) -> Result<Vec<String>, DbError> {
    let mut stmt = conn.prepare(
        "SELECT members.name FROM cluster_group_members JOIN members ON members.id = member_id
         WHERE group_name = ?1 ORDER BY members.id",
    )?;
    let rows = stmt.query_map([name], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// All cluster groups, by name.
pub fn cluster_groups(conn: &Connection) -> Result<Vec<ClusterGroup>, DbError> {
    let mut stmt = conn.prepare("SELECT name, description FROM cluster_groups ORDER BY name")?;
    let rows: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(name, description)| {
            Ok(ClusterGroup {
                members: group_members(conn, &name)?,
                name,
                description,
            })
        })
        .collect()
}

/// One cluster group by name.
pub fn cluster_group(conn: &Connection, name: &str) -> Result<ClusterGroup, DbError> {
    let description: String = conn
        .query_row(
            "SELECT description FROM cluster_groups WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| DbError::NotFound {
            entity: Entity::ClusterGroup,
            name: name.to_string(),
        })?;
    Ok(ClusterGroup {
        members: group_members(conn, name)?,
        name: name.to_string(),
        description,
    })
}
