//! The replicated write path.
//!
//! ```text
//!  handler ──builds──> Command ──raft log──> apply(tx, cmd) on every replica
//!                                              │
//!                                              └─> Response | ApplyError (same on all)
//! ```
//!
//! A command carries every value that is not a pure function of the database (ids, timestamps,
//! secrets), so that replaying the log gives byte-identical replicas.

use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use crate::error::is_constraint;
use crate::tables::{
    self, to_json, Certificate, Config, Devices, Member, MemberObject, MemberState, Network,
    ObjectKind, Profile, StoragePool, Token, WarningStatus,
};
use crate::{ApplyError, ApplyFailure, DbError, Entity};

/// One replicated write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Sets and unsets cluster-wide configuration keys.
    SetConfig {
        /// Keys to set.
        set: Config,
        /// Keys to remove.
        unset: Vec<String>,
    },
    /// Turns the standalone row into the first member of a new cluster and trusts its
    /// certificate.
    Bootstrap {
        /// The member's name.
        name: String,
        /// Its `cluster.https_address`.
        address: String,
        /// Its architecture.
        architecture: String,
        /// Its `server.crt`, as a `server` certificate.
        certificate: Certificate,
    },
    /// Adds a joining member, with its side of every storage pool.
    AddMember {
        /// Its id, also its raft node id; `0` lets `apply` choose one above every id the
        /// cluster ever gave (answered as [`Response::Member`]), so ids are never reused and
        /// concurrent joins cannot collide.
        id: u64,
        /// Member name.
        name: String,
        /// Its `cluster.https_address`.
        address: String,
        /// Its architecture.
        architecture: String,
        /// `Pending` until it has caught up, then `Created`.
        state: MemberState,
        /// Its member-specific keys for each pool, by pool name.
        pools: std::collections::BTreeMap<String, Config>,
        /// Its member-specific keys for each managed network, by network name.
        #[serde(default)]
        networks: std::collections::BTreeMap<String, Config>,
    },
    /// Changes a member's state (pending, created, evacuated).
    SetMemberState {
        /// Member id.
        id: u64,
        /// New state.
        state: MemberState,
    },
    /// Replaces a member's writable fields.
    UpdateMember {
        /// Member id.
        id: u64,
        /// Free text.
        description: String,
        /// Failure domain.
        failure_domain: String,
        /// `scheduler.instance` and `user.*`.
        config: Config,
        /// Stored roles.
        roles: Vec<String>,
        /// Cluster groups.
        groups: Vec<String>,
    },
    /// Renames a member, and its `server` certificate with it.
    RenameMember {
        /// Member id.
        id: u64,
        /// New name.
        new_name: String,
    },
    /// Removes a member, its pool entries and its `server` certificate.
    RemoveMember {
        /// Member id.
        id: u64,
    },
    /// Adds a trusted certificate.
    AddCertificate(Certificate),
    /// A server presented a join's secret (a join token or the trust password): trusts its
    /// `server` certificate (kept as it is when already trusted) and lets that certificate be
    /// accepted as the member `name` once.
    GrantJoin(Certificate),
    /// Uses up the join grant of `fingerprint` for the member `name`; refused with
    /// `NoMatchingToken` when there is none.
    ConsumeJoinGrant {
        /// The joiner's certificate fingerprint.
        fingerprint: String,
        /// The member name it joins as.
        name: String,
    },
    /// Removes a trusted certificate.
    DeleteCertificate {
        /// Full fingerprint.
        fingerprint: String,
    },
    /// Replaces a certificate's writable fields.
    UpdateCertificate {
        /// Full fingerprint.
        fingerprint: String,
        /// New name.
        name: String,
        /// New type.
        cert_type: String,
        /// New restriction.
        restricted: bool,
        /// New projects.
        projects: Vec<String>,
        /// New description.
        description: String,
    },
    /// Creates a storage pool with an entry for one member. Kept for log entries written before
    /// [`Command::CreateMemberObject`]; it applies as that command does.
    CreateStoragePool {
        /// Pool name.
        name: String,
        /// Driver.
        driver: String,
        /// Free text.
        description: String,
        /// Cluster-wide keys.
        config: Config,
        /// The member that holds it.
        member_id: u64,
        /// That member's keys.
        member_config: Config,
        /// Global and member state (`Created`, `Pending`).
        state: String,
    },
    /// Defines a pool on one member ahead of the cluster-wide create (`?target=`): the pool is
    /// made `Pending` if it does not exist yet. Kept for log entries written before
    /// [`Command::DefineMemberObject`]; it applies as that command does.
    DefinePoolMember {
        /// Pool name.
        name: String,
        /// Driver.
        driver: String,
        /// The member.
        member_id: u64,
        /// Its member-specific keys.
        config: Config,
    },
    /// Records the outcome of a cluster-wide create: cluster keys, global state, and each
    /// member's keys and state. Kept for log entries written before
    /// [`Command::FinishMemberObject`]; it applies as that command does.
    FinishStoragePool {
        /// Pool name.
        name: String,
        /// Free text.
        description: String,
        /// Cluster-wide keys.
        config: Config,
        /// Global state.
        state: String,
        /// Per member: keys and state.
        members: std::collections::BTreeMap<u64, (Config, String)>,
    },
    /// Replaces a pool's description and cluster-wide keys, and one member's keys. Kept for log
    /// entries written before [`Command::UpdateMemberObject`]; it applies as that command does.
    UpdateStoragePool {
        /// Pool name.
        name: String,
        /// Free text.
        description: String,
        /// Cluster-wide keys.
        config: Config,
        /// The member whose keys change.
        member_id: u64,
        /// That member's keys.
        member_config: Config,
    },
    /// Deletes a storage pool everywhere. Kept for log entries written before
    /// [`Command::DeleteMemberObject`]; it applies as that command does.
    DeleteStoragePool {
        /// Pool name.
        name: String,
    },
    /// Creates a profile.
    CreateProfile(Profile),
    /// Replaces a profile's writable fields.
    UpdateProfile(Profile),
    /// Replaces a profile's writable fields only if the profile is still `expected`. Written
    /// before [`Command::If`] served every object; kept so that such log entries still apply.
    UpdateProfileIf {
        /// The new profile.
        profile: Profile,
        /// The profile as the writer read it.
        expected: Profile,
    },
    /// Applies `then` only if the object is still `expected` (what the writer read and checked
    /// its `If-Match` against, or merged into): a compare-and-set decided where the write
    /// applies, so two writers holding the same state cannot both win. Refused with
    /// [`ApplyError::Changed`] otherwise.
    If {
        /// The object as the writer read it.
        expected: Expected,
        /// The write.
        then: Box<Command>,
    },
    /// Renames a profile.
    RenameProfile {
        /// Project.
        project: String,
        /// Current name.
        name: String,
        /// New name.
        new_name: String,
    },
    /// Deletes a profile.
    DeleteProfile {
        /// Project.
        project: String,
        /// Name.
        name: String,
    },
    /// Stores a new token.
    AddToken(Token),
    /// Removes a token (revoked or cancelled).
    DeleteToken {
        /// Operation id.
        id: String,
    },
    /// Consumes the token of `kind` for `name` whose secret matches, checking expiry against
    /// `now` after consuming it, as LXD does.
    ConsumeToken {
        /// `join` or `certificate`.
        kind: String,
        /// The name the token was made for.
        name: String,
        /// The secret offered.
        secret: String,
        /// The proposer's clock, RFC 3339.
        now: String,
    },
    /// Creates a network with an entry for one member (a standalone create). Kept for log entries
    /// written before [`Command::CreateMemberObject`]; it applies as that command does.
    CreateNetwork {
        /// Network name.
        name: String,
        /// Type (`bridge`).
        network_type: String,
        /// Free text.
        description: String,
        /// Cluster-wide keys.
        config: Config,
        /// The member that holds it.
        member_id: u64,
        /// That member's keys.
        member_config: Config,
        /// Global and member state (`Created`, `Pending`).
        state: String,
    },
    /// Defines a network on one member ahead of the cluster-wide create (`?target=`): the
    /// network is made `Pending` if it does not exist yet. Kept for log entries written before
    /// [`Command::DefineMemberObject`]; it applies as that command does.
    DefineNetworkMember {
        /// Network name.
        name: String,
        /// Type.
        network_type: String,
        /// The member.
        member_id: u64,
        /// Its member-specific keys.
        config: Config,
    },
    /// Records the outcome of a cluster-wide network create: cluster keys, global state, and
    /// each member's keys and state. Kept for log entries written before
    /// [`Command::FinishMemberObject`]; it applies as that command does.
    FinishNetwork {
        /// Network name.
        name: String,
        /// Free text.
        description: String,
        /// Cluster-wide keys.
        config: Config,
        /// Global state.
        state: String,
        /// Per member: keys and state.
        members: std::collections::BTreeMap<u64, (Config, String)>,
    },
    /// Replaces a network's description and cluster-wide keys, and one member's keys. Kept for log
    /// entries written before [`Command::UpdateMemberObject`]; it applies as that command does.
    UpdateNetwork {
        /// Network name.
        name: String,
        /// Free text.
        description: String,
        /// Cluster-wide keys.
        config: Config,
        /// The member whose keys change.
        member_id: u64,
        /// That member's keys.
        member_config: Config,
    },
    /// Adds a joined member's side of created networks, by network name. Kept for log
    /// entries: a join adds a member's sides with [`Command::AddMember`].
    AddNetworkMembers {
        /// The member.
        member_id: u64,
        /// Its member-specific keys for each network.
        networks: std::collections::BTreeMap<String, Config>,
    },
    /// Deletes a network everywhere. Kept for log entries written before
    /// [`Command::DeleteMemberObject`]; it applies as that command does.
    DeleteNetwork {
        /// Network name.
        name: String,
    },
    /// Records an occurrence of a warning on a member: a new row `uuid` counted once, or, when
    /// the member already has one of this type for this project and entity, one more occurrence
    /// of that row (a resolved one becomes new again; an acknowledged one stays acknowledged).
    RaiseWarning {
        /// The new row's UUID, used only when there is no row yet.
        uuid: String,
        /// The member it occurred on.
        member_id: u64,
        /// The project; empty for none.
        project: String,
        /// LXD's type code.
        type_code: i64,
        /// The object it concerns; empty for none.
        entity_url: String,
        /// What happened.
        message: String,
        /// The proposer's clock, RFC 3339.
        now: String,
    },
    /// Resolves a member's warnings of a type about an entity, those not resolved yet.
    ResolveWarnings {
        /// The member.
        member_id: u64,
        /// LXD's type code.
        type_code: i64,
        /// The object.
        entity_url: String,
        /// The proposer's clock, RFC 3339.
        now: String,
    },
    /// Sets a warning's status (a user acknowledging it, or marking it new again).
    SetWarningStatus {
        /// Its UUID.
        uuid: String,
        /// The new status.
        status: WarningStatus,
        /// The proposer's clock, RFC 3339.
        now: String,
    },
    /// Deletes a warning.
    DeleteWarning {
        /// Its UUID.
        uuid: String,
    },
    /// Renames a network, with every member's entry.
    RenameNetwork {
        /// Current name.
        name: String,
        /// New name.
        new_name: String,
    },
    /// Creates a cluster group holding the named members.
    CreateClusterGroup {
        /// Group name.
        name: String,
        /// Free text.
        description: String,
        /// Member names.
        members: Vec<String>,
    },
    /// Replaces a cluster group's description and members; refused with
    /// [`ApplyError::LastGroup`] when a member would be left in no group.
    UpdateClusterGroup {
        /// Group name.
        name: String,
        /// Free text.
        description: String,
        /// Member names.
        members: Vec<String>,
    },
    /// Renames a cluster group; its members follow.
    RenameClusterGroup {
        /// Current name.
        name: String,
        /// New name.
        new_name: String,
    },
    /// Deletes a cluster group that has no members.
    DeleteClusterGroup {
        /// Group name.
        name: String,
    },
    /// The commit point of a cluster certificate rotation: every member has staged the pair
    /// with this fingerprint, and from this entry on each one serves it.
    SetClusterCertificate {
        /// Fingerprint of the new cluster certificate.
        fingerprint: String,
    },
    /// Defines an object's side on one member ahead of the cluster-wide create (`?target=`):
    /// the object is made `Pending` if it does not exist yet. Refused when it is created
    /// already, has another type, or has that member's side already.
    DefineMemberObject {
        /// Which kind of object.
        kind: ObjectKind,
        /// Its name.
        name: String,
        /// A pool's driver, a network's type.
        object_type: String,
        /// The member.
        member_id: u64,
        /// Its member-specific keys.
        config: Config,
    },
    /// Creates an object with its side on one member (a standalone server, a one-member
    /// cluster).
    CreateMemberObject {
        /// Which kind of object.
        kind: ObjectKind,
        /// Its name.
        name: String,
        /// A pool's driver, a network's type.
        object_type: String,
        /// Free text.
        description: String,
        /// Cluster-wide keys.
        config: Config,
        /// The member that holds it.
        member_id: u64,
        /// That member's keys.
        member_config: Config,
        /// Global and member state (`Created`, `Pending`).
        state: String,
    },
    /// Records the outcome of a cluster-wide create: cluster keys, global state, and each
    /// member's keys and state.
    FinishMemberObject {
        /// Which kind of object.
        kind: ObjectKind,
        /// Its name.
        name: String,
        /// Free text.
        description: String,
        /// Cluster-wide keys.
        config: Config,
        /// Global state.
        state: String,
        /// Per member: keys and state.
        members: std::collections::BTreeMap<u64, (Config, String)>,
    },
    /// Replaces an object's description and cluster-wide keys, and one member's keys.
    UpdateMemberObject {
        /// Which kind of object.
        kind: ObjectKind,
        /// Its name.
        name: String,
        /// Free text.
        description: String,
        /// Cluster-wide keys.
        config: Config,
        /// The member whose keys change.
        member_id: u64,
        /// That member's keys.
        member_config: Config,
    },
    /// Deletes an object everywhere, with every member's entry; a storage pool that a
    /// profile's disk uses is refused.
    DeleteMemberObject {
        /// Which kind of object.
        kind: ObjectKind,
        /// Its name.
        name: String,
    },
    /// Evacuates or restores a member: sets its state unless it is pending or already in that
    /// state ([`ApplyError::MemberState`]). Decided where the write applies, so of two requests
    /// that race one changes the state and the other is refused.
    ChangeMemberState {
        /// Member id.
        id: u64,
        /// `Evacuated` or `Created`.
        state: MemberState,
    },
}

impl Command {
    /// This write as a compare-and-set: it applies only while the object is still `expected`.
    pub fn only_if(self, expected: Expected) -> Command {
        Command::If {
            expected,
            then: Box::new(self),
        }
    }
}

/// The precondition of [`Command::If`]: an object as a writer read it, compared whole with
/// the stored one (read by the same query).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expected {
    /// A profile.
    Profile(Profile),
    /// A storage pool with its member entries. Kept for log entries written before
    /// [`Expected::MemberObject`].
    StoragePool(StoragePool),
    /// A network with its member entries. Kept for log entries written before
    /// [`Expected::MemberObject`].
    Network(Network),
    /// A trusted certificate.
    Certificate(Certificate),
    /// A cluster member's row.
    Member(Member),
    /// The cluster-wide configuration.
    Config(Config),
    /// A cluster group with its members.
    ClusterGroup(tables::ClusterGroup),
    /// An object with a side on each member, with its member entries.
    MemberObject(MemberObject),
}

/// Refuses with [`ApplyError::Changed`] unless the stored object is still `expected`.
fn check_unchanged(tx: &Transaction, expected: &Expected) -> Result<(), Stop> {
    let (entity, name, same) = match expected {
        Expected::Profile(p) => (
            Entity::Profile,
            &p.name,
            tables::profile(tx, &p.project, &p.name)? == *p,
        ),
        Expected::StoragePool(p) => (
            Entity::StoragePool,
            &p.name,
            tables::storage_pool(tx, &p.name)? == *p,
        ),
        Expected::Network(n) => (
            Entity::Network,
            &n.name,
            tables::network(tx, &n.name)? == *n,
        ),
        Expected::MemberObject(o) => (
            o.kind.entity(),
            &o.name,
            tables::member_object(tx, o.kind, &o.name)? == *o,
        ),
        Expected::Certificate(c) => (
            Entity::Certificate,
            &c.name,
            tables::certificate(tx, &c.fingerprint)? == *c,
        ),
        Expected::Member(m) => (Entity::Member, &m.name, tables::member(tx, &m.name)? == *m),
        Expected::Config(c) => (Entity::Config, &String::new(), tables::config(tx)? == *c),
        Expected::ClusterGroup(g) => (
            Entity::ClusterGroup,
            &g.name,
            tables::cluster_group(tx, &g.name)? == *g,
        ),
    };
    if same {
        Ok(())
    } else {
        refuse(ApplyError::Changed {
            entity,
            name: name.clone(),
        })
    }
}

/// What a successful command returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Nothing to report.
    Done,
    /// The token that was consumed.
    Token(Box<Token>),
    /// The token matched but had expired. It was consumed all the same (deleted), which is why
    /// this is an answer and not a refusal: a refusal's changes are rolled back.
    TokenExpired,
    /// The id given to the member just added.
    Member(u64),
}

/// Why [`apply_command`] stopped: the command's own refusal, or a failure of the local database.
enum Stop {
    Refused(ApplyError),
    Failed(DbError),
}

impl From<ApplyError> for Stop {
    fn from(e: ApplyError) -> Self {
        Stop::Refused(e)
    }
}

impl From<rusqlite::Error> for Stop {
    fn from(e: rusqlite::Error) -> Self {
        if is_constraint(&e) {
            Stop::Refused(ApplyError::Storage {
                message: e.to_string(),
            })
        } else {
            Stop::Failed(DbError::Sqlite(e))
        }
    }
}

impl From<DbError> for Stop {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Sqlite(e) => e.into(),
            // A typed lookup that found nothing: a check on the data, the same everywhere.
            DbError::NotFound { entity, name } => {
                Stop::Refused(ApplyError::NotFound { entity, name })
            }
            other => Stop::Failed(other),
        }
    }
}

/// Applies one command inside `tx`.
///
/// The inner result is the command's answer or its refusal. A refusal comes only from the
/// command's own checks and from constraints of the schema, so it is the same on every replica;
/// the caller rolls the command's changes back and still counts the log index as applied.
///
/// The outer error is a failure of this replica's database (I/O, full disk, out of memory, a
/// corrupt row): the command was not applied, and the caller must not count it as applied.
pub fn apply(
    tx: &Transaction,
    cmd: &Command,
) -> Result<Result<Response, ApplyError>, ApplyFailure> {
    match apply_command(tx, cmd) {
        Ok(response) => Ok(Ok(response)),
        Err(Stop::Refused(refusal)) => Ok(Err(refusal)),
        Err(Stop::Failed(failure)) => Err(ApplyFailure(failure)),
    }
}

fn refuse<T>(refusal: ApplyError) -> Result<T, Stop> {
    Err(Stop::Refused(refusal))
}

fn apply_command(tx: &Transaction, cmd: &Command) -> Result<Response, Stop> {
    match cmd {
        Command::SetConfig { set, unset } => {
            for key in unset {
                tx.execute("DELETE FROM config WHERE key = ?1", [key])?;
            }
            for (key, value) in set {
                tx.execute(
                    "INSERT INTO config (key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    params![key, value],
                )?;
            }
        }
        Command::Bootstrap {
            name,
            address,
            architecture,
            certificate,
        } => {
            tx.execute(
                "UPDATE members SET name = ?1, address = ?2, architecture = ?3 WHERE id = 1",
                params![name, address, architecture],
            )?;
            tx.execute(
                "INSERT OR IGNORE INTO cluster_group_members (group_name, member_id)
                 VALUES ('default', 1)",
                [],
            )?;
            insert_certificate(tx, certificate)?;
        }
        Command::AddMember {
            id,
            name,
            address,
            architecture,
            state,
            pools,
            networks,
        } => {
            if exists(tx, "SELECT 1 FROM members WHERE name = ?1", name)? {
                return refuse(ApplyError::Exists {
                    entity: Entity::Member,
                    name: name.clone(),
                });
            }
            if exists(tx, "SELECT 1 FROM members WHERE address = ?1", address)? {
                return refuse(ApplyError::AddressTaken {
                    address: address.clone(),
                });
            }
            let id = &allocate_member_id(tx, *id)?;
            tx.execute(
                "INSERT INTO members (id, name, address, architecture, state) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![*id as i64, name, address, architecture, state.as_i64()],
            )?;
            // A new member joins the `default` group, as in LXD.
            tx.execute(
                "INSERT INTO cluster_group_members (group_name, member_id) VALUES ('default', ?1)",
                [*id as i64],
            )?;
            for (pool, config) in pools {
                add_side(tx, ObjectKind::StoragePool, pool, *id, config, false)?;
            }
            for (network, config) in networks {
                add_side(tx, ObjectKind::Network, network, *id, config, false)?;
            }
            return Ok(Response::Member(*id));
        }
        Command::SetMemberState { id, state } => {
            expect_changed(
                tx.execute(
                    "UPDATE members SET state = ?2 WHERE id = ?1",
                    params![*id as i64, state.as_i64()],
                )?,
                Entity::Member,
                &id.to_string(),
            )?;
        }
        Command::UpdateMember {
            id,
            description,
            failure_domain,
            config,
            roles,
            groups,
        } => {
            expect_changed(
                tx.execute(
                    "UPDATE members SET description = ?2, failure_domain = ?3, config = ?4,
                     roles = ?5 WHERE id = ?1",
                    params![
                        *id as i64,
                        description,
                        failure_domain,
                        to_json(config),
                        to_json(roles),
                    ],
                )?,
                Entity::Member,
                &id.to_string(),
            )?;
            set_member_groups(tx, *id as i64, groups)?;
        }
        Command::RenameMember { id, new_name } => {
            if exists(tx, "SELECT 1 FROM members WHERE name = ?1", new_name)? {
                return refuse(ApplyError::Exists {
                    entity: Entity::Member,
                    name: new_name.clone(),
                });
            }
            let old: String = tx
                .query_row(
                    "SELECT name FROM members WHERE id = ?1",
                    [*id as i64],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or_else(|| ApplyError::NotFound {
                    entity: Entity::Member,
                    name: id.to_string(),
                })?;
            tx.execute(
                "UPDATE members SET name = ?2 WHERE id = ?1",
                params![*id as i64, new_name],
            )?;
            tx.execute(
                "UPDATE certificates SET name = ?2 WHERE type = 'server' AND name = ?1",
                params![old, new_name],
            )?;
        }
        Command::RemoveMember { id } => {
            let name: Option<String> = tx
                .query_row(
                    "SELECT name FROM members WHERE id = ?1",
                    [*id as i64],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(name) = name else {
                return refuse(ApplyError::NotFound {
                    entity: Entity::Member,
                    name: id.to_string(),
                });
            };
            // LXD leaves the removed member's certificate trusted; rxd does not.
            tx.execute(
                "DELETE FROM join_grants WHERE fingerprint IN
                   (SELECT fingerprint FROM certificates WHERE type = 'server' AND name = ?1)",
                [&name],
            )?;
            tx.execute(
                "DELETE FROM certificates WHERE type = 'server' AND name = ?1",
                [&name],
            )?;
            tx.execute("DELETE FROM members WHERE id = ?1", [*id as i64])?;
        }
        Command::AddCertificate(cert) => insert_certificate(tx, cert)?,
        Command::GrantJoin(cert) => {
            tx.execute(
                "INSERT OR REPLACE INTO join_grants (fingerprint, name) VALUES (?1, ?2)",
                params![cert.fingerprint, cert.name],
            )?;
            if !exists(
                tx,
                "SELECT 1 FROM certificates WHERE fingerprint = ?1",
                &cert.fingerprint,
            )? {
                insert_certificate(tx, cert)?;
            }
        }
        Command::ConsumeJoinGrant { fingerprint, name } => {
            let used = tx.execute(
                "DELETE FROM join_grants WHERE fingerprint = ?1 AND name = ?2",
                params![fingerprint, name],
            )?;
            if used == 0 {
                return refuse(ApplyError::NoMatchingToken);
            }
        }
        Command::DeleteCertificate { fingerprint } => {
            tx.execute(
                "DELETE FROM join_grants WHERE fingerprint = ?1",
                [fingerprint],
            )?;
            expect_changed(
                tx.execute(
                    "DELETE FROM certificates WHERE fingerprint = ?1",
                    [fingerprint],
                )?,
                Entity::Certificate,
                fingerprint,
            )?;
        }
        Command::UpdateCertificate {
            fingerprint,
            name,
            cert_type,
            restricted,
            projects,
            description,
        } => {
            expect_changed(
                tx.execute(
                    "UPDATE certificates SET name = ?2, type = ?3, restricted = ?4, projects = ?5,
                     description = ?6 WHERE fingerprint = ?1",
                    params![
                        fingerprint,
                        name,
                        cert_type,
                        restricted,
                        to_json(projects),
                        description
                    ],
                )?,
                Entity::Certificate,
                fingerprint,
            )?;
        }
        // Kept for log entries written before one command served every kind of object.
        Command::CreateStoragePool {
            name,
            driver,
            description,
            config,
            member_id,
            member_config,
            state,
        } => create_object(
            tx,
            ObjectKind::StoragePool,
            name,
            driver,
            description,
            config,
            *member_id,
            member_config,
            state,
        )?,
        Command::DefinePoolMember {
            name,
            driver,
            member_id,
            config,
        } => define_side(
            tx,
            ObjectKind::StoragePool,
            name,
            driver,
            *member_id,
            config,
        )?,
        Command::FinishStoragePool {
            name,
            description,
            config,
            state,
            members,
        } => finish_object(
            tx,
            ObjectKind::StoragePool,
            name,
            description,
            config,
            state,
            members,
        )?,
        Command::UpdateStoragePool {
            name,
            description,
            config,
            member_id,
            member_config,
        } => update_object(
            tx,
            ObjectKind::StoragePool,
            name,
            description,
            config,
            *member_id,
            member_config,
        )?,
        Command::DeleteStoragePool { name } => delete_object(tx, ObjectKind::StoragePool, name)?,
        Command::CreateProfile(p) => {
            if profile_exists(tx, &p.project, &p.name)? {
                return refuse(ApplyError::Exists {
                    entity: Entity::Profile,
                    name: p.name.clone(),
                });
            }
            if !exists(tx, "SELECT 1 FROM projects WHERE name = ?1", &p.project)? {
                return refuse(ApplyError::NotFound {
                    entity: Entity::Project,
                    name: p.project.clone(),
                });
            }
            write_profile(tx, p, "INSERT INTO profiles (project, name, description, config, devices) VALUES (?1, ?2, ?3, ?4, ?5)")?;
        }
        Command::UpdateProfile(p) => {
            let n = write_profile(
                tx,
                p,
                "UPDATE profiles SET description = ?3, config = ?4, devices = ?5 WHERE project = ?1 AND name = ?2",
            )?;
            expect_changed(n, Entity::Profile, &p.name)?;
        }
        Command::UpdateProfileIf { profile, expected } => {
            check_unchanged(tx, &Expected::Profile(expected.clone()))?;
            return apply_command(tx, &Command::UpdateProfile(profile.clone()));
        }
        Command::If { expected, then } => {
            check_unchanged(tx, expected)?;
            return apply_command(tx, then);
        }
        Command::RenameProfile {
            project,
            name,
            new_name,
        } => {
            if profile_exists(tx, project, new_name)? {
                return refuse(ApplyError::Exists {
                    entity: Entity::Profile,
                    name: new_name.clone(),
                });
            }
            expect_changed(
                tx.execute(
                    "UPDATE profiles SET name = ?3 WHERE project = ?1 AND name = ?2",
                    params![project, name, new_name],
                )?,
                Entity::Profile,
                name,
            )?;
        }
        Command::DeleteProfile { project, name } => {
            expect_changed(
                tx.execute(
                    "DELETE FROM profiles WHERE project = ?1 AND name = ?2",
                    params![project, name],
                )?,
                Entity::Profile,
                name,
            )?;
        }
        Command::AddToken(t) => {
            tx.execute(
                "INSERT INTO tokens (id, kind, name, secret, fingerprint, addresses, created_at, expires_at, location, restricted_projects)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    t.id,
                    t.kind,
                    t.name,
                    t.secret,
                    t.fingerprint,
                    to_json(&t.addresses),
                    t.created_at,
                    t.expires_at,
                    t.location,
                    t.restricted_projects.as_ref().map(to_json)
                ],
            )?;
        }
        Command::DeleteToken { id } => {
            expect_changed(
                tx.execute("DELETE FROM tokens WHERE id = ?1", [id])?,
                Entity::Token,
                id,
            )?;
        }
        Command::ConsumeToken {
            kind,
            name,
            secret,
            now,
        } => return consume_token(tx, kind, name, secret, now),
        // Kept for log entries written before one command served every kind of object.
        Command::CreateNetwork {
            name,
            network_type,
            description,
            config,
            member_id,
            member_config,
            state,
        } => create_object(
            tx,
            ObjectKind::Network,
            name,
            network_type,
            description,
            config,
            *member_id,
            member_config,
            state,
        )?,
        Command::DefineNetworkMember {
            name,
            network_type,
            member_id,
            config,
        } => define_side(
            tx,
            ObjectKind::Network,
            name,
            network_type,
            *member_id,
            config,
        )?,
        Command::FinishNetwork {
            name,
            description,
            config,
            state,
            members,
        } => finish_object(
            tx,
            ObjectKind::Network,
            name,
            description,
            config,
            state,
            members,
        )?,
        Command::UpdateNetwork {
            name,
            description,
            config,
            member_id,
            member_config,
        } => update_object(
            tx,
            ObjectKind::Network,
            name,
            description,
            config,
            *member_id,
            member_config,
        )?,
        // Kept for log entries: joins now add a member's sides with `AddMember`.
        Command::AddNetworkMembers {
            member_id,
            networks,
        } => {
            for (net, config) in networks {
                add_side(tx, ObjectKind::Network, net, *member_id, config, true)?;
            }
        }
        Command::DeleteNetwork { name } => delete_object(tx, ObjectKind::Network, name)?,
        Command::RaiseWarning {
            uuid,
            member_id,
            project,
            type_code,
            entity_url,
            message,
            now,
        } => {
            let counted = tx.execute(
                "UPDATE warnings SET count = count + 1, last_seen = ?5, updated = ?5,
                     last_message = ?6, status = CASE status WHEN ?7 THEN ?8 ELSE status END
                 WHERE member_id = ?1 AND project = ?2 AND type_code = ?3 AND entity_url = ?4",
                params![
                    *member_id as i64,
                    project,
                    type_code,
                    entity_url,
                    now,
                    message,
                    WarningStatus::Resolved.as_i64(),
                    WarningStatus::New.as_i64()
                ],
            )?;
            if counted == 0 {
                tx.execute(
                    "INSERT INTO warnings (uuid, member_id, project, type_code, entity_url, status,
                         first_seen, last_seen, updated, last_message, count)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?7, ?8, 1)",
                    params![
                        uuid,
                        *member_id as i64,
                        project,
                        type_code,
                        entity_url,
                        WarningStatus::New.as_i64(),
                        now,
                        message
                    ],
                )?;
            }
        }
        Command::ResolveWarnings {
            member_id,
            type_code,
            entity_url,
            now,
        } => {
            tx.execute(
                "UPDATE warnings SET status = ?4, updated = ?5
                 WHERE member_id = ?1 AND type_code = ?2 AND entity_url = ?3 AND status != ?4",
                params![
                    *member_id as i64,
                    type_code,
                    entity_url,
                    WarningStatus::Resolved.as_i64(),
                    now
                ],
            )?;
        }
        Command::SetWarningStatus { uuid, status, now } => {
            expect_changed(
                tx.execute(
                    "UPDATE warnings SET status = ?2, updated = ?3 WHERE uuid = ?1",
                    params![uuid, status.as_i64(), now],
                )?,
                Entity::Warning,
                uuid,
            )?;
        }
        Command::DeleteWarning { uuid } => {
            expect_changed(
                tx.execute("DELETE FROM warnings WHERE uuid = ?1", [uuid])?,
                Entity::Warning,
                uuid,
            )?;
        }
        Command::RenameNetwork { name, new_name } => {
            rename_object(tx, ObjectKind::Network, name, new_name)?
        }
        Command::CreateClusterGroup {
            name,
            description,
            members,
        } => {
            if exists(tx, "SELECT 1 FROM cluster_groups WHERE name = ?1", name)? {
                return refuse(ApplyError::Exists {
                    entity: Entity::ClusterGroup,
                    name: name.clone(),
                });
            }
            tx.execute(
                "INSERT INTO cluster_groups (name, description) VALUES (?1, ?2)",
                params![name, description],
            )?;
            set_group_members(tx, name, members)?;
        }
        Command::UpdateClusterGroup {
            name,
            description,
            members,
        } => {
            expect_changed(
                tx.execute(
                    "UPDATE cluster_groups SET description = ?2 WHERE name = ?1",
                    params![name, description],
                )?,
                Entity::ClusterGroup,
                name,
            )?;
            set_group_members(tx, name, members)?;
        }
        Command::RenameClusterGroup { name, new_name } => {
            if exists(tx, "SELECT 1 FROM cluster_groups WHERE name = ?1", new_name)? {
                return refuse(ApplyError::Exists {
                    entity: Entity::ClusterGroup,
                    name: new_name.clone(),
                });
            }
            // Memberships follow through the foreign key's ON UPDATE CASCADE.
            expect_changed(
                tx.execute(
                    "UPDATE cluster_groups SET name = ?2 WHERE name = ?1",
                    params![name, new_name],
                )?,
                Entity::ClusterGroup,
                name,
            )?;
        }
        Command::DeleteClusterGroup { name } => {
            if exists(
                tx,
                "SELECT 1 FROM cluster_group_members WHERE group_name = ?1",
                name,
            )? {
                return refuse(ApplyError::InUse {
                    entity: Entity::ClusterGroup,
                    name: name.clone(),
                });
            }
            expect_changed(
                tx.execute("DELETE FROM cluster_groups WHERE name = ?1", [name])?,
                Entity::ClusterGroup,
                name,
            )?;
        }
        Command::SetClusterCertificate { fingerprint } => {
            tx.execute(
                "INSERT INTO cluster_certificate (id, fingerprint) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint",
                [fingerprint],
            )?;
        }
        Command::DefineMemberObject {
            kind,
            name,
            object_type,
            member_id,
            config,
        } => define_side(tx, *kind, name, object_type, *member_id, config)?,
        Command::CreateMemberObject {
            kind,
            name,
            object_type,
            description,
            config,
            member_id,
            member_config,
            state,
        } => create_object(
            tx,
            *kind,
            name,
            object_type,
            description,
            config,
            *member_id,
            member_config,
            state,
        )?,
        Command::FinishMemberObject {
            kind,
            name,
            description,
            config,
            state,
            members,
        } => finish_object(tx, *kind, name, description, config, state, members)?,
        Command::UpdateMemberObject {
            kind,
            name,
            description,
            config,
            member_id,
            member_config,
        } => update_object(
            tx,
            *kind,
            name,
            description,
            config,
            *member_id,
            member_config,
        )?,
        Command::DeleteMemberObject { kind, name } => delete_object(tx, *kind, name)?,
        Command::ChangeMemberState { id, state } => {
            let now = tx
                .query_row(
                    "SELECT state FROM members WHERE id = ?1",
                    [*id as i64],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?
                .map(MemberState::from_i64);
            match now {
                None => {
                    return refuse(ApplyError::NotFound {
                        entity: Entity::Member,
                        name: id.to_string(),
                    })
                }
                Some(now) if now == MemberState::Pending || now == *state => {
                    return refuse(ApplyError::MemberState { state: now })
                }
                Some(_) => {
                    tx.execute(
                        "UPDATE members SET state = ?2 WHERE id = ?1",
                        params![*id as i64, state.as_i64()],
                    )?;
                }
            }
        }
    }
    Ok(Response::Done)
}

// Objects with a side on each member: one code path for every kind, over tables of one shape.

/// The refusals of a `?target=` definition, in each kind's words.
fn not_pending(kind: ObjectKind, name: &str) -> ApplyError {
    let name = name.to_string();
    match kind {
        ObjectKind::StoragePool => ApplyError::NotPending { name },
        ObjectKind::Network => ApplyError::NetworkNotPending { name },
    }
}

fn type_mismatch(kind: ObjectKind, name: &str, pending: String) -> ApplyError {
    let name = name.to_string();
    match kind {
        ObjectKind::StoragePool => ApplyError::DriverMismatch {
            name,
            driver: pending,
        },
        ObjectKind::Network => ApplyError::NetworkTypeMismatch {
            name,
            network_type: pending,
        },
    }
}

fn already_defined(kind: ObjectKind, name: &str, member: String) -> ApplyError {
    let name = name.to_string();
    match kind {
        ObjectKind::StoragePool => ApplyError::AlreadyDefined { name, member },
        ObjectKind::Network => ApplyError::NetworkAlreadyDefined { name, member },
    }
}

fn object_exists(tx: &Transaction, kind: ObjectKind, name: &str) -> Result<bool, Stop> {
    exists(
        tx,
        &format!("SELECT 1 FROM {} WHERE name = ?1", kind.table()),
        name,
    )
}

/// Adds member `member_id`'s side of object `name`.
fn insert_side(
    tx: &Transaction,
    kind: ObjectKind,
    name: &str,
    member_id: u64,
    config: &Config,
    state: &str,
) -> Result<(), Stop> {
    tx.execute(
        &format!(
            "INSERT INTO {} (object, member_id, config, state) VALUES (?1, ?2, ?3, ?4)",
            kind.member_table()
        ),
        params![name, member_id as i64, to_json(config), state],
    )?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn create_object(
    tx: &Transaction,
    kind: ObjectKind,
    name: &str,
    object_type: &str,
    description: &str,
    config: &Config,
    member_id: u64,
    member_config: &Config,
    state: &str,
) -> Result<(), Stop> {
    if object_exists(tx, kind, name)? {
        return refuse(ApplyError::Exists {
            entity: kind.entity(),
            name: name.to_string(),
        });
    }
    tx.execute(
        &format!(
            "INSERT INTO {} (name, type, description, config, state) VALUES (?1, ?2, ?3, ?4, ?5)",
            kind.table()
        ),
        params![name, object_type, description, to_json(config), state],
    )?;
    insert_side(tx, kind, name, member_id, member_config, state)
}

fn define_side(
    tx: &Transaction,
    kind: ObjectKind,
    name: &str,
    object_type: &str,
    member_id: u64,
    config: &Config,
) -> Result<(), Stop> {
    match tables::member_object(tx, kind, name) {
        Ok(object) => {
            if object.state != "Pending" {
                return refuse(not_pending(kind, name));
            }
            if object.object_type != object_type {
                return refuse(type_mismatch(kind, name, object.object_type));
            }
            if let Some(m) = object.member(member_id) {
                return refuse(already_defined(kind, name, m.member_name.clone()));
            }
        }
        Err(DbError::NotFound { .. }) => {
            tx.execute(
                &format!(
                    "INSERT INTO {} (name, type, state) VALUES (?1, ?2, 'Pending')",
                    kind.table()
                ),
                params![name, object_type],
            )?;
        }
        Err(e) => return Err(e.into()),
    }
    insert_side(tx, kind, name, member_id, config, "Pending")
}

fn finish_object(
    tx: &Transaction,
    kind: ObjectKind,
    name: &str,
    description: &str,
    config: &Config,
    state: &str,
    members: &std::collections::BTreeMap<u64, (Config, String)>,
) -> Result<(), Stop> {
    expect_changed(
        tx.execute(
            &format!(
                "UPDATE {} SET description = ?2, config = ?3, state = ?4 WHERE name = ?1",
                kind.table()
            ),
            params![name, description, to_json(config), state],
        )?,
        kind.entity(),
        name,
    )?;
    for (id, (cfg, st)) in members {
        tx.execute(
            &format!(
                "UPDATE {} SET config = ?3, state = ?4 WHERE object = ?1 AND member_id = ?2",
                kind.member_table()
            ),
            params![name, *id as i64, to_json(cfg), st],
        )?;
    }
    Ok(())
}

fn update_object(
    tx: &Transaction,
    kind: ObjectKind,
    name: &str,
    description: &str,
    config: &Config,
    member_id: u64,
    member_config: &Config,
) -> Result<(), Stop> {
    expect_changed(
        tx.execute(
            &format!(
                "UPDATE {} SET description = ?2, config = ?3 WHERE name = ?1",
                kind.table()
            ),
            params![name, description, to_json(config)],
        )?,
        kind.entity(),
        name,
    )?;
    tx.execute(
        &format!(
            "UPDATE {} SET config = ?3 WHERE object = ?1 AND member_id = ?2",
            kind.member_table()
        ),
        params![name, member_id as i64, to_json(member_config)],
    )?;
    Ok(())
}

fn delete_object(tx: &Transaction, kind: ObjectKind, name: &str) -> Result<(), Stop> {
    if kind == ObjectKind::StoragePool {
        let used: i64 = tx.query_row(
            "SELECT count(*) FROM profiles WHERE EXISTS (
                SELECT 1 FROM json_each(profiles.devices) d
                WHERE json_extract(d.value, '$.type') = 'disk'
                  AND json_extract(d.value, '$.pool') = ?1)",
            [name],
            |r| r.get(0),
        )?;
        if used > 0 {
            return refuse(ApplyError::InUse {
                entity: kind.entity(),
                name: name.to_string(),
            });
        }
    }
    // Member entries go with it through the foreign key's ON DELETE CASCADE.
    expect_changed(
        tx.execute(
            &format!("DELETE FROM {} WHERE name = ?1", kind.table()),
            [name],
        )?,
        kind.entity(),
        name,
    )
}

fn rename_object(
    tx: &Transaction,
    kind: ObjectKind,
    name: &str,
    new_name: &str,
) -> Result<(), Stop> {
    if object_exists(tx, kind, new_name)? {
        return refuse(ApplyError::Exists {
            entity: kind.entity(),
            name: new_name.to_string(),
        });
    }
    // Member entries follow through the foreign key's ON UPDATE CASCADE.
    expect_changed(
        tx.execute(
            &format!("UPDATE {} SET name = ?2 WHERE name = ?1", kind.table()),
            params![name, new_name],
        )?,
        kind.entity(),
        name,
    )
}

/// Adds member `member_id`'s side of a created object (a join). `replace`: a side it has
/// already takes the new keys instead of refusing, and a missing object is refused by name
/// rather than by the foreign key.
fn add_side(
    tx: &Transaction,
    kind: ObjectKind,
    name: &str,
    member_id: u64,
    config: &Config,
    replace: bool,
) -> Result<(), Stop> {
    if !replace {
        return insert_side(tx, kind, name, member_id, config, "Created");
    }
    if !object_exists(tx, kind, name)? {
        return refuse(ApplyError::NotFound {
            entity: kind.entity(),
            name: name.to_string(),
        });
    }
    tx.execute(
        &format!(
            "INSERT INTO {} (object, member_id, config, state) VALUES (?1, ?2, ?3, 'Created')
             ON CONFLICT(object, member_id) DO UPDATE SET config = excluded.config,
             state = 'Created'",
            kind.member_table()
        ),
        params![name, member_id as i64, to_json(config)],
    )?;
    Ok(())
}

/// Makes `groups` the member's groups: every one must exist and there must be at least one.
/// Groups it keeps keep their place; new ones follow in the given order.
fn set_member_groups(tx: &Transaction, member_id: i64, groups: &[String]) -> Result<(), Stop> {
    let name: String = tx
        .query_row("SELECT name FROM members WHERE id = ?1", [member_id], |r| {
            r.get(0)
        })
        .optional()?
        .ok_or_else(|| ApplyError::NotFound {
            entity: Entity::Member,
            name: member_id.to_string(),
        })?;
    if groups.is_empty() {
        return refuse(ApplyError::LastGroup { member: name });
    }
    for group in groups {
        if !exists(tx, "SELECT 1 FROM cluster_groups WHERE name = ?1", group)? {
            return refuse(ApplyError::NotFound {
                entity: Entity::ClusterGroup,
                name: group.clone(),
            });
        }
    }
    let current: Vec<String> = {
        let mut stmt =
            tx.prepare("SELECT group_name FROM cluster_group_members WHERE member_id = ?1")?;
        let rows = stmt.query_map([member_id], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    for group in current.iter().filter(|g| !groups.contains(g)) {
        tx.execute(
            "DELETE FROM cluster_group_members WHERE group_name = ?1 AND member_id = ?2",
            params![group, member_id],
        )?;
    }
    for group in groups {
        tx.execute(
            "INSERT OR IGNORE INTO cluster_group_members (group_name, member_id) VALUES (?1, ?2)",
            params![group, member_id],
        )?;
    }
    Ok(())
}

/// Makes `members` the group's members: every one must exist, and a member leaving the group
/// must stay in another.
fn set_group_members(tx: &Transaction, group: &str, members: &[String]) -> Result<(), Stop> {
    let mut wanted = Vec::new();
    for name in members {
        let id: i64 = tx
            .query_row("SELECT id FROM members WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| ApplyError::NotFound {
                entity: Entity::Member,
                name: name.clone(),
            })?;
        wanted.push(id);
    }
    let current: Vec<(i64, String)> = {
        let mut stmt = tx.prepare(
            "SELECT members.id, members.name FROM cluster_group_members
             JOIN members ON members.id = member_id WHERE group_name = ?1 ORDER BY members.id",
        )?;
        let rows = stmt.query_map([group], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (id, name) in current.iter().filter(|(id, _)| !wanted.contains(id)) {
        let groups: i64 = tx.query_row(
            "SELECT count(*) FROM cluster_group_members WHERE member_id = ?1",
            [id],
            |r| r.get(0),
        )?;
        if groups <= 1 {
            return refuse(ApplyError::LastGroup {
                member: name.clone(),
            });
        }
        tx.execute(
            "DELETE FROM cluster_group_members WHERE group_name = ?1 AND member_id = ?2",
            params![group, id],
        )?;
    }
    for id in wanted {
        tx.execute(
            "INSERT OR IGNORE INTO cluster_group_members (group_name, member_id) VALUES (?1, ?2)",
            params![group, id],
        )?;
    }
    Ok(())
}

fn consume_token(
    tx: &Transaction,
    kind: &str,
    name: &str,
    secret: &str,
    now: &str,
) -> Result<Response, Stop> {
    let found = tables::matching_token(tx, kind, name, secret)?;
    let token = found.ok_or(ApplyError::NoMatchingToken)?;
    tx.execute("DELETE FROM tokens WHERE id = ?1", [&token.id])?;
    // RFC 3339 UTC strings with the same layout order as the instants they name.
    if token.expires_at.as_str() <= now {
        return Ok(Response::TokenExpired);
    }
    Ok(Response::Token(Box::new(token)))
}

fn insert_certificate(tx: &Transaction, c: &Certificate) -> Result<(), Stop> {
    if exists(
        tx,
        "SELECT 1 FROM certificates WHERE fingerprint = ?1",
        &c.fingerprint,
    )? {
        return refuse(ApplyError::Exists {
            entity: Entity::Certificate,
            name: c.fingerprint.clone(),
        });
    }
    tx.execute(
        "INSERT INTO certificates (fingerprint, type, name, certificate, restricted, projects, description)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            c.fingerprint,
            c.cert_type,
            c.name,
            c.certificate,
            c.restricted,
            to_json(&c.projects),
            c.description
        ],
    )?;
    Ok(())
}

fn write_profile(tx: &Transaction, p: &Profile, sql: &str) -> Result<usize, Stop> {
    let devices: &Devices = &p.devices;
    Ok(tx.execute(
        sql,
        params![
            p.project,
            p.name,
            p.description,
            to_json(&p.config),
            to_json(devices)
        ],
    )?)
}

/// The id of a member being added: `asked`, or when it is 0 one above the highest id ever
/// given. The highest is kept in `member_ids`, so a removed member's id (also its raft node id)
/// never comes back.
fn allocate_member_id(tx: &Transaction, asked: u64) -> Result<u64, Stop> {
    let high: i64 = tx.query_row(
        "SELECT MAX(COALESCE((SELECT MAX(high) FROM member_ids), 0),
                    COALESCE((SELECT MAX(id) FROM members), 0))",
        [],
        |r| r.get(0),
    )?;
    let id = if asked == 0 { high as u64 + 1 } else { asked };
    tx.execute("DELETE FROM member_ids", [])?;
    tx.execute(
        "INSERT INTO member_ids (high) VALUES (?1)",
        [high.max(id as i64)],
    )?;
    Ok(id)
}

fn exists(tx: &Transaction, sql: &str, key: &str) -> Result<bool, Stop> {
    let mut stmt = tx.prepare(sql)?;
    Ok(stmt.exists([key])?)
}

fn profile_exists(tx: &Transaction, project: &str, name: &str) -> Result<bool, Stop> {
    let mut stmt = tx.prepare("SELECT 1 FROM profiles WHERE project = ?1 AND name = ?2")?;
    Ok(stmt.exists([project, name])?)
}

fn expect_changed(n: usize, entity: Entity, name: &str) -> Result<(), Stop> {
    if n == 0 {
        return refuse(ApplyError::NotFound {
            entity,
            name: name.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate_cluster;
    use rusqlite::Connection;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        migrate_cluster(&mut c).unwrap();
        c
    }

    fn run(c: &mut Connection, cmd: &Command) -> Result<Response, ApplyError> {
        let tx = c.transaction().unwrap();
        let r = apply(&tx, cmd).expect("the database does not fail");
        if r.is_ok() {
            tx.commit().unwrap();
        }
        r
    }

    /// Applies `cmd` expecting a failure of the database rather than an answer or a refusal.
    fn fails(c: &mut Connection, cmd: &Command) -> ApplyFailure {
        let tx = c.transaction().unwrap();
        match apply(&tx, cmd) {
            Err(failure) => failure,
            Ok(outcome) => panic!("{cmd:?} answered {outcome:?} instead of failing"),
        }
    }

    fn add_member(name: &str) -> Command {
        Command::AddMember {
            id: 0,
            name: name.into(),
            address: format!("{name}:8443"),
            architecture: "x86_64".into(),
            state: MemberState::Pending,
            pools: Default::default(),
            networks: Default::default(),
        }
    }

    #[test]
    fn member_ids_are_chosen_by_apply_and_never_reused() {
        let mut c = db();
        let id = |r: Result<Response, ApplyError>| match r.unwrap() {
            Response::Member(id) => id,
            other => panic!("{other:?}"),
        };
        let a = id(run(&mut c, &add_member("a")));
        let b = id(run(&mut c, &add_member("b")));
        assert_eq!(b, a + 1);
        run(&mut c, &Command::RemoveMember { id: b }).unwrap();
        let third = id(run(&mut c, &add_member("c")));
        assert_eq!(third, b + 1, "the removed id is not given again");
    }

    #[test]
    fn an_evacuation_changes_the_state_once() {
        let mut c = db();
        let Response::Member(id) = run(&mut c, &add_member("b")).unwrap() else {
            panic!("no id")
        };
        let change = |state| Command::ChangeMemberState { id, state };
        let refused = |state| Err(ApplyError::MemberState { state });
        assert_eq!(
            run(&mut c, &change(MemberState::Evacuated)),
            refused(MemberState::Pending)
        );
        run(
            &mut c,
            &Command::SetMemberState {
                id,
                state: MemberState::Created,
            },
        )
        .unwrap();
        assert_eq!(
            run(&mut c, &change(MemberState::Created)),
            refused(MemberState::Created)
        );
        run(&mut c, &change(MemberState::Evacuated)).unwrap();
        assert_eq!(
            tables::member(&c, "b").unwrap().state,
            MemberState::Evacuated
        );
        let again = run(&mut c, &change(MemberState::Evacuated));
        assert_eq!(again, refused(MemberState::Evacuated));
        assert_eq!(
            again.unwrap_err().to_string(),
            "Cluster member is already evacuated"
        );
        run(&mut c, &change(MemberState::Created)).unwrap();
        assert!(matches!(
            run(
                &mut c,
                &Command::ChangeMemberState {
                    id: id + 7,
                    state: MemberState::Created
                }
            ),
            Err(ApplyError::NotFound { .. })
        ));
    }

    fn token(id: &str, secret: &str, expires_at: &str) -> Token {
        Token {
            id: id.into(),
            kind: "join".into(),
            name: "node2".into(),
            secret: secret.into(),
            fingerprint: "ff".into(),
            addresses: vec!["127.0.0.1:8443".into()],
            created_at: "2026-01-01T00:00:00Z".into(),
            expires_at: expires_at.into(),
            location: "node1".into(),
            restricted_projects: None,
        }
    }

    #[test]
    fn fresh_schema_has_default_project_and_profile() {
        let c = db();
        assert_eq!(tables::projects(&c).unwrap()[0].name, "default");
        let p = tables::profile(&c, "default", "default").unwrap();
        assert_eq!(p.description, "Default LXD profile");
        assert_eq!(tables::members(&c).unwrap()[0].name, "none");
    }

    #[test]
    fn config_set_and_unset() {
        let mut c = db();
        let set = Config::from([("a".to_string(), "1".to_string())]);
        run(&mut c, &Command::SetConfig { set, unset: vec![] }).unwrap();
        assert_eq!(tables::config(&c).unwrap()["a"], "1");
        run(
            &mut c,
            &Command::SetConfig {
                set: Config::new(),
                unset: vec!["a".into()],
            },
        )
        .unwrap();
        assert!(tables::config(&c).unwrap().is_empty());
    }

    #[test]
    fn token_is_consumed_once() {
        let mut c = db();
        run(
            &mut c,
            &Command::AddToken(token("t1", "s3cr3t", "2030-01-01T00:00:00Z")),
        )
        .unwrap();
        let consume = |secret: &str| Command::ConsumeToken {
            kind: "join".into(),
            name: "node2".into(),
            secret: secret.into(),
            now: "2026-06-01T00:00:00Z".into(),
        };
        assert_eq!(
            run(&mut c, &consume("wrong")),
            Err(ApplyError::NoMatchingToken)
        );
        assert!(matches!(
            run(&mut c, &consume("s3cr3t")),
            Ok(Response::Token(_))
        ));
        assert_eq!(
            run(&mut c, &consume("s3cr3t")),
            Err(ApplyError::NoMatchingToken)
        );
    }

    #[test]
    fn a_join_grant_is_used_once_and_goes_with_its_certificate() {
        let mut c = db();
        let cert = Certificate {
            fingerprint: "f1".into(),
            cert_type: "server".into(),
            name: "node2".into(),
            certificate: "pem".into(),
            restricted: false,
            projects: vec![],
            description: String::new(),
        };
        let consume = |name: &str| Command::ConsumeJoinGrant {
            fingerprint: "f1".into(),
            name: name.into(),
        };
        run(&mut c, &Command::GrantJoin(cert.clone())).unwrap();
        assert_eq!(tables::certificate(&c, "f1").unwrap(), cert);
        assert_eq!(
            run(&mut c, &consume("node3")),
            Err(ApplyError::NoMatchingToken)
        );
        run(&mut c, &consume("node2")).unwrap();
        assert_eq!(
            run(&mut c, &consume("node2")),
            Err(ApplyError::NoMatchingToken)
        );
        eprintln!("a second grant for a certificate already trusted keeps it as it is");
        run(&mut c, &Command::GrantJoin(cert.clone())).unwrap();
        assert_eq!(
            tables::join_grant(&c, "f1").unwrap().as_deref(),
            Some("node2")
        );
        run(
            &mut c,
            &Command::DeleteCertificate {
                fingerprint: "f1".into(),
            },
        )
        .unwrap();
        assert_eq!(tables::join_grant(&c, "f1").unwrap(), None);
    }

    #[test]
    fn expired_token_is_reported_and_deleted() {
        let mut c = db();
        run(
            &mut c,
            &Command::AddToken(token("t1", "s", "2026-01-01T00:00:01Z")),
        )
        .unwrap();
        let r = run(
            &mut c,
            &Command::ConsumeToken {
                kind: "join".into(),
                name: "node2".into(),
                secret: "s".into(),
                now: "2026-06-01T00:00:00Z".into(),
            },
        );
        assert_eq!(r, Ok(Response::TokenExpired));
        assert!(tables::tokens(&c).unwrap().is_empty());
    }

    #[test]
    fn missing_objects_are_refusals_but_database_failures_are_not() {
        let mut c = db();
        let rename = |id: u64| Command::RenameMember {
            id,
            new_name: "renamed".into(),
        };
        assert_eq!(
            run(&mut c, &rename(9)),
            Err(ApplyError::NotFound {
                entity: Entity::Member,
                name: "9".into()
            })
        );
        assert_eq!(
            run(&mut c, &Command::RemoveMember { id: 9 }),
            Err(ApplyError::NotFound {
                entity: Entity::Member,
                name: "9".into()
            })
        );

        // A write that fails for a reason of this replica alone (here: writes are switched
        // off) is a failure, not a refusal.
        c.pragma_update(None, "query_only", true).unwrap();
        fails(&mut c, &rename(1));
        fails(&mut c, &Command::RemoveMember { id: 1 });
        fails(
            &mut c,
            &Command::DefinePoolMember {
                name: "local".into(),
                driver: "dir".into(),
                member_id: 1,
                config: Config::new(),
            },
        );
        c.pragma_update(None, "query_only", false).unwrap();

        // A lookup that fails is a failure too, not "not found".
        c.execute_batch("ALTER TABLE members RENAME TO members_elsewhere")
            .unwrap();
        fails(&mut c, &Command::RemoveMember { id: 1 });
        fails(&mut c, &rename(1));
        c.execute_batch("ALTER TABLE members_elsewhere RENAME TO members")
            .unwrap();
        c.execute_batch("ALTER TABLE storage_pools RENAME TO pools_elsewhere")
            .unwrap();
        fails(
            &mut c,
            &Command::DefinePoolMember {
                name: "local".into(),
                driver: "dir".into(),
                member_id: 1,
                config: Config::new(),
            },
        );
        c.execute_batch("ALTER TABLE pools_elsewhere RENAME TO storage_pools")
            .unwrap();
        let mut web = tables::profile(&c, "default", "default").unwrap();
        web.name = "web".into();
        c.execute_batch("ALTER TABLE profiles RENAME TO profiles_elsewhere")
            .unwrap();
        fails(&mut c, &Command::CreateProfile(web));
    }

    #[test]
    fn constraint_violations_are_refusals() {
        let mut c = db();
        let r = run(
            &mut c,
            &Command::AddMember {
                id: 2,
                name: "node2".into(),
                address: "127.0.0.2:8443".into(),
                architecture: "x86_64".into(),
                state: MemberState::Pending,
                pools: [("missing".to_string(), Config::new())].into(),
                networks: Default::default(),
            },
        );
        assert!(matches!(r, Err(ApplyError::Storage { .. })), "{r:?}");
        assert_eq!(tables::members(&c).unwrap().len(), 1);
    }

    #[test]
    fn pool_used_by_profile_cannot_be_deleted() {
        let mut c = db();
        run(
            &mut c,
            &Command::CreateStoragePool {
                name: "local".into(),
                driver: "dir".into(),
                description: String::new(),
                config: Config::new(),
                member_id: 1,
                member_config: Config::new(),
                state: "Created".into(),
            },
        )
        .unwrap();
        let mut p = tables::profile(&c, "default", "default").unwrap();
        p.devices.insert(
            "root".into(),
            Config::from([
                ("type".into(), "disk".into()),
                ("pool".into(), "local".into()),
                ("path".into(), "/".into()),
            ]),
        );
        run(&mut c, &Command::UpdateProfile(p)).unwrap();
        let r = run(
            &mut c,
            &Command::DeleteStoragePool {
                name: "local".into(),
            },
        );
        assert!(matches!(r, Err(ApplyError::InUse { .. })));
    }

    #[test]
    fn if_applies_only_while_the_object_is_as_read() {
        let mut c = db();
        let read = tables::config(&c).unwrap();
        let set = |v: &str| Command::SetConfig {
            set: Config::from([("user.k".into(), v.into())]),
            unset: Vec::new(),
        };
        let guarded = |v: &str| Command::If {
            expected: Expected::Config(read.clone()),
            then: Box::new(set(v)),
        };
        run(&mut c, &guarded("first")).unwrap();
        assert!(matches!(
            run(&mut c, &guarded("second")),
            Err(ApplyError::Changed {
                entity: Entity::Config,
                ..
            })
        ));
        assert_eq!(tables::config(&c).unwrap()["user.k"], "first");
        let mut gone = tables::profile(&c, "default", "default").unwrap();
        gone.name = "gone".into();
        let r = run(
            &mut c,
            &Command::If {
                expected: Expected::Profile(gone.clone()),
                then: Box::new(Command::UpdateProfile(gone)),
            },
        );
        assert!(matches!(r, Err(ApplyError::NotFound { .. })));
    }

    #[test]
    fn network_pending_then_finished() {
        let mut c = db();
        let define = |member_id: u64| Command::DefineNetworkMember {
            name: "lxdbr0".into(),
            network_type: "bridge".into(),
            member_id,
            config: Config::new(),
        };
        run(&mut c, &define(1)).unwrap();
        assert!(matches!(
            run(&mut c, &define(1)),
            Err(ApplyError::NetworkAlreadyDefined { .. })
        ));
        let net = tables::network(&c, "lxdbr0").unwrap();
        assert_eq!(net.state, "Pending");
        assert_eq!(net.members.len(), 1);
        run(
            &mut c,
            &Command::FinishNetwork {
                name: "lxdbr0".into(),
                description: "d".into(),
                config: Config::from([("ipv4.address".into(), "10.1.2.1/24".into())]),
                state: "Created".into(),
                members: [(1, (Config::new(), "Created".to_string()))].into(),
            },
        )
        .unwrap();
        let net = tables::network(&c, "lxdbr0").unwrap();
        assert_eq!(net.state, "Created");
        assert_eq!(net.members[0].state, "Created");
        assert!(matches!(
            run(&mut c, &define(1)),
            Err(ApplyError::NetworkNotPending { .. })
        ));
        run(
            &mut c,
            &Command::DeleteNetwork {
                name: "lxdbr0".into(),
            },
        )
        .unwrap();
        assert!(tables::networks(&c).unwrap().is_empty());
    }

    #[test]
    fn network_rename_carries_member_entries_and_refuses_a_taken_name() {
        let mut c = db();
        let create = |name: &str| Command::CreateNetwork {
            name: name.into(),
            network_type: "bridge".into(),
            description: String::new(),
            config: Config::new(),
            member_id: 1,
            member_config: Config::from([("bridge.external_interfaces".into(), "eth1".into())]),
            state: "Created".into(),
        };
        run(&mut c, &create("br0")).unwrap();
        run(&mut c, &create("br1")).unwrap();
        let rename = |from: &str, to: &str| Command::RenameNetwork {
            name: from.into(),
            new_name: to.into(),
        };
        assert!(matches!(
            run(&mut c, &rename("br0", "br1")),
            Err(ApplyError::Exists { .. })
        ));
        assert!(matches!(
            run(&mut c, &rename("nosuch", "br2")),
            Err(ApplyError::NotFound { .. })
        ));
        run(&mut c, &rename("br0", "br2")).unwrap();
        assert!(tables::network(&c, "br0").is_err());
        let net = tables::network(&c, "br2").unwrap();
        assert_eq!(net.members.len(), 1);
        assert_eq!(net.members[0].config["bridge.external_interfaces"], "eth1");
    }

    #[test]
    fn migration_two_upgrades_a_version_one_database() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(crate::CLUSTER_MIGRATIONS[0]).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        migrate_cluster(&mut c).unwrap();
        assert!(tables::networks(&c).unwrap().is_empty());
        assert_eq!(tables::members(&c).unwrap()[0].name, "none");
    }

    fn raise(uuid: &str, member_id: u64, now: &str) -> Command {
        Command::RaiseWarning {
            uuid: uuid.into(),
            member_id,
            project: String::new(),
            type_code: 21,
            entity_url: "/1.0/cluster/members/b".into(),
            message: format!("seen at {now}"),
            now: now.into(),
        }
    }

    #[test]
    fn a_warning_that_occurs_again_is_counted_on_its_row() {
        let mut c = db();
        run(&mut c, &add_member("b")).unwrap();
        run(&mut c, &raise("w1", 1, "2026-01-01T00:00:00Z")).unwrap();
        eprintln!("the same member, type and entity: one row, counted twice");
        run(&mut c, &raise("w2", 1, "2026-01-01T00:00:05Z")).unwrap();
        let all = tables::warnings(&c).unwrap();
        assert_eq!(all.len(), 1, "{all:?}");
        let w = &all[0];
        assert_eq!((w.uuid.as_str(), w.count), ("w1", 2));
        assert_eq!(w.first_seen, "2026-01-01T00:00:00Z");
        assert_eq!(w.last_seen, "2026-01-01T00:00:05Z");
        assert_eq!(w.last_message, "seen at 2026-01-01T00:00:05Z");
        assert_eq!(
            (w.member_name.as_str(), w.status),
            ("none", WarningStatus::New)
        );

        eprintln!("another member: a row of its own");
        run(&mut c, &raise("w3", 2, "2026-01-01T00:00:06Z")).unwrap();
        assert_eq!(tables::warnings(&c).unwrap().len(), 2);

        eprintln!("acknowledged stays acknowledged when it occurs again");
        let set = |status| Command::SetWarningStatus {
            uuid: "w1".into(),
            status,
            now: "2026-01-01T00:00:07Z".into(),
        };
        run(&mut c, &set(WarningStatus::Acknowledged)).unwrap();
        run(&mut c, &raise("w4", 1, "2026-01-01T00:00:08Z")).unwrap();
        let w = tables::warning(&c, "w1").unwrap();
        assert_eq!((w.status, w.count), (WarningStatus::Acknowledged, 3));

        eprintln!("resolved, then occurring again: new, counted on the same row");
        let resolve = Command::ResolveWarnings {
            member_id: 1,
            type_code: 21,
            entity_url: "/1.0/cluster/members/b".into(),
            now: "2026-01-01T00:00:09Z".into(),
        };
        run(&mut c, &resolve).unwrap();
        assert_eq!(
            tables::warning(&c, "w1").unwrap().status,
            WarningStatus::Resolved
        );
        assert_eq!(
            tables::warning(&c, "w3").unwrap().status,
            WarningStatus::New,
            "only that member's"
        );
        run(&mut c, &raise("w5", 1, "2026-01-01T00:00:10Z")).unwrap();
        let w = tables::warning(&c, "w1").unwrap();
        assert_eq!((w.status, w.count), (WarningStatus::New, 4));

        eprintln!("unknown UUIDs are not found; a removed member's warnings go with it");
        let missing = ApplyError::NotFound {
            entity: Entity::Warning,
            name: "nope".into(),
        };
        assert_eq!(
            run(
                &mut c,
                &Command::DeleteWarning {
                    uuid: "nope".into()
                }
            ),
            Err(missing.clone())
        );
        assert_eq!(
            run(
                &mut c,
                &Command::SetWarningStatus {
                    uuid: "nope".into(),
                    status: WarningStatus::New,
                    now: String::new(),
                }
            ),
            Err(missing)
        );
        assert_eq!(missing_warning_text(), "Warning not found");
        run(&mut c, &Command::RemoveMember { id: 2 }).unwrap();
        assert!(tables::warning(&c, "w3").is_err());
        run(&mut c, &Command::DeleteWarning { uuid: "w1".into() }).unwrap();
        assert!(tables::warnings(&c).unwrap().is_empty());
    }

    #[test]
    fn the_cluster_certificate_fingerprint_is_replaced_by_each_rotation() {
        let mut c = db();
        assert_eq!(tables::cluster_certificate(&c).unwrap(), None);
        for fp in ["aa", "bb"] {
            let set = Command::SetClusterCertificate {
                fingerprint: fp.into(),
            };
            run(&mut c, &set).unwrap();
            assert_eq!(
                tables::cluster_certificate(&c).unwrap().as_deref(),
                Some(fp)
            );
        }
    }

    fn missing_warning_text() -> String {
        ApplyError::NotFound {
            entity: Entity::Warning,
            name: "x".into(),
        }
        .to_string()
    }

    #[test]
    fn migration_five_upgrades_a_version_four_database() {
        let mut c = Connection::open_in_memory().unwrap();
        for step in &crate::CLUSTER_MIGRATIONS[..4] {
            c.execute_batch(step).unwrap();
        }
        c.pragma_update(None, "user_version", 4).unwrap();
        migrate_cluster(&mut c).unwrap();
        assert!(tables::warnings(&c).unwrap().is_empty());
    }

    #[test]
    fn migration_six_moves_member_groups_into_their_tables() {
        let mut c = Connection::open_in_memory().unwrap();
        for step in &crate::CLUSTER_MIGRATIONS[..5] {
            c.execute_batch(step).unwrap();
        }
        c.execute_batch(
            r#"INSERT INTO members (id, name, address, groups) VALUES (2, 'b', 'b:8443', '["default","fast"]');
               INSERT INTO members (id, name, address, groups) VALUES (3, 'c', 'c:8443', '["fast"]');"#,
        )
        .unwrap();
        c.pragma_update(None, "user_version", 5).unwrap();
        migrate_cluster(&mut c).unwrap();
        let groups = tables::cluster_groups(&c).unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].name, "default");
        assert_eq!(groups[0].description, "Default cluster group");
        assert_eq!(groups[0].members, ["none", "b"]);
        assert_eq!(groups[1].name, "fast");
        assert_eq!(groups[1].members, ["b", "c"]);
        let members = tables::members(&c).unwrap();
        assert_eq!(members[1].groups, ["default", "fast"]);
        assert_eq!(members[2].groups, ["fast"]);
    }

    fn group(name: &str, members: &[&str]) -> Command {
        Command::CreateClusterGroup {
            name: name.into(),
            description: String::new(),
            members: members.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn cluster_groups_keep_every_member_in_one_at_least() {
        let mut c = db();
        let b = match run(&mut c, &add_member("b")).unwrap() {
            Response::Member(id) => id,
            other => panic!("{other:?}"),
        };
        assert_eq!(tables::member(&c, "b").unwrap().groups, ["default"]);
        run(&mut c, &group("fast", &["b"])).unwrap();
        assert!(matches!(
            run(&mut c, &group("fast", &[])),
            Err(ApplyError::Exists { .. })
        ));
        assert!(matches!(
            run(&mut c, &group("slow", &["nosuch"])),
            Err(ApplyError::NotFound {
                entity: Entity::Member,
                ..
            })
        ));
        assert_eq!(tables::member(&c, "b").unwrap().groups, ["default", "fast"]);
        // Out of `default`: still in `fast`.
        run(
            &mut c,
            &Command::UpdateClusterGroup {
                name: "default".into(),
                description: "d".into(),
                members: vec!["none".into()],
            },
        )
        .unwrap();
        assert_eq!(tables::member(&c, "b").unwrap().groups, ["fast"]);
        // Out of `fast` too: refused.
        let last = run(
            &mut c,
            &Command::UpdateClusterGroup {
                name: "fast".into(),
                description: String::new(),
                members: vec![],
            },
        );
        assert_eq!(last, Err(ApplyError::LastGroup { member: "b".into() }),);
        assert!(matches!(
            run(
                &mut c,
                &Command::DeleteClusterGroup {
                    name: "fast".into()
                }
            ),
            Err(ApplyError::InUse { .. })
        ));
        let update = |groups: &[&str]| Command::UpdateMember {
            id: b,
            description: String::new(),
            failure_domain: "default".into(),
            config: Default::default(),
            roles: vec![],
            groups: groups.iter().map(|g| g.to_string()).collect(),
        };
        assert!(matches!(
            run(&mut c, &update(&["nosuch"])),
            Err(ApplyError::NotFound {
                entity: Entity::ClusterGroup,
                ..
            })
        ));
        assert!(matches!(
            run(&mut c, &update(&[])),
            Err(ApplyError::LastGroup { .. })
        ));
        run(&mut c, &update(&["fast", "default"])).unwrap();
        assert_eq!(tables::member(&c, "b").unwrap().groups, ["fast", "default"]);
        run(
            &mut c,
            &Command::RenameClusterGroup {
                name: "fast".into(),
                new_name: "quick".into(),
            },
        )
        .unwrap();
        assert_eq!(
            tables::member(&c, "b").unwrap().groups,
            ["quick", "default"]
        );
        assert_eq!(tables::cluster_group(&c, "quick").unwrap().members, ["b"]);
        run(&mut c, &update(&["default"])).unwrap();
        run(
            &mut c,
            &Command::DeleteClusterGroup {
                name: "quick".into(),
            },
        )
        .unwrap();
        assert!(tables::cluster_group(&c, "quick").is_err());
        // A removed member leaves its groups.
        run(&mut c, &Command::RemoveMember { id: b }).unwrap();
        assert_eq!(
            tables::cluster_group(&c, "default").unwrap().members,
            ["none"]
        );
    }

    #[test]
    fn every_kind_of_member_object_follows_one_protocol() {
        for kind in [ObjectKind::StoragePool, ObjectKind::Network] {
            let mut c = db();
            run(&mut c, &add_member("node2")).unwrap();
            let define = |member_id: u64, object_type: &str| Command::DefineMemberObject {
                kind,
                name: "o1".into(),
                object_type: object_type.into(),
                member_id,
                config: Config::from([("source".into(), format!("/s{member_id}"))]),
            };
            run(&mut c, &define(1, "t")).unwrap();
            let again = run(&mut c, &define(1, "t")).unwrap_err();
            let other = run(&mut c, &define(2, "u")).unwrap_err();
            match kind {
                ObjectKind::StoragePool => {
                    assert_eq!(
                        again.to_string(),
                        "The storage pool already defined on member \"none\""
                    );
                    assert_eq!(
                        other.to_string(),
                        "Storage pool \"o1\" is pending with driver \"t\""
                    );
                }
                ObjectKind::Network => {
                    assert_eq!(
                        again.to_string(),
                        "The network is already defined on member \"none\""
                    );
                    assert_eq!(
                        other.to_string(),
                        "Network \"o1\" is pending with type \"t\""
                    );
                }
            }
            run(&mut c, &define(2, "t")).unwrap();
            let o = tables::member_object(&c, kind, "o1").unwrap();
            assert_eq!((o.state.as_str(), o.members.len()), ("Pending", 2));
            assert_eq!(o.member(2).unwrap().config["source"], "/s2");

            let finish = Command::FinishMemberObject {
                kind,
                name: "o1".into(),
                description: "d".into(),
                config: Config::from([("k".into(), "v".into())]),
                state: "Created".into(),
                members: [
                    (1, (Config::new(), "Created".to_string())),
                    (2, (Config::new(), "Created".to_string())),
                ]
                .into(),
            };
            run(&mut c, &finish).unwrap();
            let o = tables::member_object(&c, kind, "o1").unwrap();
            assert_eq!((o.state.as_str(), o.description.as_str()), ("Created", "d"));
            assert!(o.members.iter().all(|m| m.state == "Created"));
            let refused = run(&mut c, &define(1, "t")).unwrap_err();
            assert!(refused.to_string().ends_with("is not in pending state"));

            let update = Command::UpdateMemberObject {
                kind,
                name: "o1".into(),
                description: "e".into(),
                config: Config::new(),
                member_id: 2,
                member_config: Config::from([("m".into(), "2".into())]),
            }
            .only_if(Expected::MemberObject(o.clone()));
            run(&mut c, &update).unwrap();
            assert!(matches!(
                run(&mut c, &update),
                Err(ApplyError::Changed { .. })
            ));
            let o = tables::member_object(&c, kind, "o1").unwrap();
            assert_eq!(o.member(2).unwrap().config["m"], "2");
            assert!(o.member(1).unwrap().config.is_empty());

            let delete = Command::DeleteMemberObject {
                kind,
                name: "o1".into(),
            };
            run(&mut c, &delete).unwrap();
            assert!(tables::member_objects(&c, kind).unwrap().is_empty());
            assert!(matches!(
                run(&mut c, &delete),
                Err(ApplyError::NotFound { .. })
            ));
            let n: i64 = c
                .query_row(
                    &format!("SELECT count(*) FROM {}", kind.member_table()),
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(n, 0, "member entries go with the object");
        }
    }

    #[test]
    fn the_first_commands_of_pools_and_networks_still_apply_as_the_generic_ones() {
        let old = [
            Command::DefinePoolMember {
                name: "p".into(),
                driver: "dir".into(),
                member_id: 1,
                config: Config::new(),
            },
            Command::FinishStoragePool {
                name: "p".into(),
                description: "d".into(),
                config: Config::new(),
                state: "Created".into(),
                members: [(1, (Config::new(), "Created".to_string()))].into(),
            },
            Command::UpdateStoragePool {
                name: "p".into(),
                description: "e".into(),
                config: Config::from([("k".into(), "v".into())]),
                member_id: 1,
                member_config: Config::from([("source".into(), "/x".into())]),
            },
            Command::CreateNetwork {
                name: "n".into(),
                network_type: "bridge".into(),
                description: String::new(),
                config: Config::new(),
                member_id: 1,
                member_config: Config::new(),
                state: "Created".into(),
            },
            Command::UpdateNetwork {
                name: "n".into(),
                description: "e".into(),
                config: Config::from([("k".into(), "v".into())]),
                member_id: 1,
                member_config: Config::from([("parent".into(), "eth0".into())]),
            },
        ];
        let new = [
            Command::DefineMemberObject {
                kind: ObjectKind::StoragePool,
                name: "p".into(),
                object_type: "dir".into(),
                member_id: 1,
                config: Config::new(),
            },
            Command::FinishMemberObject {
                kind: ObjectKind::StoragePool,
                name: "p".into(),
                description: "d".into(),
                config: Config::new(),
                state: "Created".into(),
                members: [(1, (Config::new(), "Created".to_string()))].into(),
            },
            Command::UpdateMemberObject {
                kind: ObjectKind::StoragePool,
                name: "p".into(),
                description: "e".into(),
                config: Config::from([("k".into(), "v".into())]),
                member_id: 1,
                member_config: Config::from([("source".into(), "/x".into())]),
            },
            Command::CreateMemberObject {
                kind: ObjectKind::Network,
                name: "n".into(),
                object_type: "bridge".into(),
                description: String::new(),
                config: Config::new(),
                member_id: 1,
                member_config: Config::new(),
                state: "Created".into(),
            },
            Command::UpdateMemberObject {
                kind: ObjectKind::Network,
                name: "n".into(),
                description: "e".into(),
                config: Config::from([("k".into(), "v".into())]),
                member_id: 1,
                member_config: Config::from([("parent".into(), "eth0".into())]),
            },
        ];
        let (mut a, mut b) = (db(), db());
        for cmd in &old {
            // An entry as the log holds it, decoded again.
            let text = serde_json::to_string(cmd).unwrap();
            run(&mut a, &serde_json::from_str(&text).unwrap()).unwrap();
        }
        for cmd in &new {
            run(&mut b, cmd).unwrap();
        }
        assert_eq!(
            tables::storage_pools(&a).unwrap(),
            tables::storage_pools(&b).unwrap()
        );
        assert_eq!(tables::networks(&a).unwrap(), tables::networks(&b).unwrap());
        assert_eq!(tables::storage_pool(&a, "p").unwrap().config["k"], "v");
        for cmd in [
            Command::DeleteStoragePool { name: "p".into() },
            Command::DeleteNetwork { name: "n".into() },
        ] {
            run(&mut a, &cmd).unwrap();
        }
        assert!(tables::storage_pools(&a).unwrap().is_empty());
        assert!(tables::networks(&a).unwrap().is_empty());
    }

    #[test]
    fn migration_eight_keeps_pools_and_networks_made_by_the_old_schema() {
        let mut c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "foreign_keys", true).unwrap();
        for step in &crate::CLUSTER_MIGRATIONS[..7] {
            c.execute_batch(step).unwrap();
        }
        c.pragma_update(None, "user_version", 7).unwrap();
        c.execute_batch(
            r#"
INSERT INTO members (id, name, address) VALUES (2, 'node2', '10.0.0.2:8443');
INSERT INTO storage_pools (name, driver, description, config, state)
    VALUES ('local', 'dir', 'pool', '{"rsync.bwlimit":"1"}', 'Created');
INSERT INTO storage_pool_members (pool, member_id, config, state)
    VALUES ('local', 1, '{"source":"/a"}', 'Created'), ('local', 2, '{"source":"/b"}', 'Created');
INSERT INTO storage_pools (name, driver, state) VALUES ('later', 'btrfs', 'Pending');
INSERT INTO storage_pool_members (pool, member_id, config, state)
    VALUES ('later', 2, '{"size":"1GiB"}', 'Pending');
INSERT INTO networks (name, type, description, config, state)
    VALUES ('lxdbr0', 'bridge', 'net', '{"ipv4.address":"10.1.2.1/24"}', 'Created');
INSERT INTO network_members (network, member_id, config, state)
    VALUES ('lxdbr0', 1, '{}', 'Created'), ('lxdbr0', 2, '{"parent":"eth1"}', 'Created');
"#,
        )
        .unwrap();
        migrate_cluster(&mut c).unwrap();

        let pool = tables::storage_pool(&c, "local").unwrap();
        assert_eq!(
            (pool.driver.as_str(), pool.description.as_str()),
            ("dir", "pool")
        );
        assert_eq!(pool.config["rsync.bwlimit"], "1");
        let sides: Vec<_> = pool
            .members
            .iter()
            .map(|m| (m.member_name.as_str(), m.config["source"].as_str()))
            .collect();
        assert_eq!(sides, [("none", "/a"), ("node2", "/b")]);
        let later = tables::storage_pool(&c, "later").unwrap();
        assert_eq!(
            (later.driver.as_str(), later.state.as_str()),
            ("btrfs", "Pending")
        );
        assert_eq!(later.members[0].config["size"], "1GiB");
        let net = tables::network(&c, "lxdbr0").unwrap();
        assert_eq!(net.network_type, "bridge");
        assert_eq!(net.members[1].config["parent"], "eth1");

        eprintln!("the migrated rows take the generic commands");
        run(
            &mut c,
            &Command::DefineMemberObject {
                kind: ObjectKind::StoragePool,
                name: "later".into(),
                object_type: "btrfs".into(),
                member_id: 1,
                config: Config::new(),
            },
        )
        .unwrap();
        assert_eq!(tables::storage_pool(&c, "later").unwrap().members.len(), 2);
        run(
            &mut c,
            &Command::DeleteMemberObject {
                kind: ObjectKind::Network,
                name: "lxdbr0".into(),
            },
        )
        .unwrap();
        assert!(tables::networks(&c).unwrap().is_empty());
        let left: i64 = c
            .query_row("SELECT count(*) FROM network_members", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn migrations_replay_to_same_schema() {
        let c = db();
        let v: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, crate::cluster_schema_version());
    }
}
