use serde::{Deserialize, Serialize};

/// The kinds of object the cluster database stores, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entity {
    /// A cluster member.
    Member,
    /// A trusted certificate.
    Certificate,
    /// A storage pool.
    StoragePool,
    /// A profile.
    Profile,
    /// A project.
    Project,
    /// A join or certificate-add token.
    Token,
    /// A managed network.
    Network,
    /// The cluster-wide configuration.
    Config,
    /// A warning.
    Warning,
    /// A cluster group.
    ClusterGroup,
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Entity::Member => "Cluster member",
            Entity::Certificate => "Certificate",
            Entity::StoragePool => "Storage pool",
            Entity::Profile => "Profile",
            Entity::Project => "Project",
            Entity::Token => "Token",
            Entity::Network => "Network",
            Entity::Config => "Server configuration",
            Entity::Warning => "Warning",
            Entity::ClusterGroup => "Cluster group",
        })
    }
}

fn changed(entity: &Entity, name: &str) -> String {
    if name.is_empty() {
        format!("{entity} changed since it was read")
    } else {
        format!("{entity} {name:?} changed since it was read")
    }
}

/// Why a replicated command was refused. It travels back to the proposer through the raft
/// response, so it is serialisable and carries facts rather than foreign error types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ApplyError {
    /// The object the command names does not exist.
    #[error("{entity} not found")]
    NotFound {
        /// What kind of object.
        entity: Entity,
        /// Its name.
        name: String,
    },
    /// An object with that name already exists.
    #[error("{entity} {name:?} already exists")]
    Exists {
        /// What kind of object.
        entity: Entity,
        /// Its name.
        name: String,
    },
    /// A cluster member with that address already exists.
    #[error("The cluster already has a member with address: {address}")]
    AddressTaken {
        /// The address.
        address: String,
    },
    /// No running join token matched the server name and secret.
    #[error("No matching cluster join operation found")]
    NoMatchingToken,
    /// The token matched but had expired. `apply` answers this as
    /// [`crate::Response::TokenExpired`] instead, so that the token's deletion is kept; a caller
    /// turns that answer into this error.
    #[error("Token has expired")]
    TokenExpired,
    /// The object is still used by others.
    #[error("{entity} {name:?} is currently in use")]
    InUse {
        /// What kind of object.
        entity: Entity,
        /// Its name.
        name: String,
    },
    /// A conditional write found the object changed since the writer read it.
    #[error("{}", changed(entity, name))]
    Changed {
        /// What kind of object.
        entity: Entity,
        /// Its name.
        name: String,
    },
    /// A targeted pool create for a pool that is already created.
    #[error("Storage pool is not in pending state")]
    NotPending {
        /// The pool.
        name: String,
    },
    /// A targeted pool create naming another driver than the pending pool has.
    #[error("Storage pool {name:?} is pending with driver {driver:?}")]
    DriverMismatch {
        /// The pool.
        name: String,
        /// Its driver.
        driver: String,
    },
    /// A second targeted create for the same member.
    #[error("The storage pool already defined on member {member:?}")]
    AlreadyDefined {
        /// The pool.
        name: String,
        /// The member.
        member: String,
    },
    /// A targeted network create for a network that is already created.
    #[error("Network is not in pending state")]
    NetworkNotPending {
        /// The network.
        name: String,
    },
    /// A targeted network create naming another type than the pending network has.
    #[error("Network {name:?} is pending with type {network_type:?}")]
    NetworkTypeMismatch {
        /// The network.
        name: String,
        /// Its type.
        network_type: String,
    },
    /// A second targeted network create for the same member.
    #[error("The network is already defined on member {member:?}")]
    NetworkAlreadyDefined {
        /// The network.
        name: String,
        /// The member.
        member: String,
    },
    /// A constraint of the schema refused the command (a foreign key naming a missing row, a
    /// duplicate key). Like every refusal it is the same on every replica, and the command's
    /// changes were rolled back.
    #[error("Database error: {message}")]
    Storage {
        /// SQLite's message.
        message: String,
    },
    /// A change of groups would leave a member in none.
    #[error("Cannot remove {member} from group as member needs to belong to at least one group")]
    LastGroup {
        /// The member.
        member: String,
    },
    /// An evacuation or restore of a member that is pending, or already in the state asked
    /// for (LXD's sentences).
    #[error("{}", member_state_refusal(*state))]
    MemberState {
        /// The member's state when the write applied.
        state: crate::tables::MemberState,
    },
}

fn member_state_refusal(state: crate::tables::MemberState) -> &'static str {
    match state {
        crate::tables::MemberState::Pending => {
            "Cannot evacuate or restore a pending cluster member"
        }
        crate::tables::MemberState::Evacuated => "Cluster member is already evacuated",
        crate::tables::MemberState::Created => "Cluster member is already restored",
    }
}

/// A failure of the local database while applying a command: an I/O error, a full disk, out of
/// memory, a corrupt row. It is not the command's fault and other replicas need not see it, so
/// it is never recorded as a refusal: the replica must stop and apply the command again later.
#[derive(Debug, thiserror::Error)]
#[error("Applying a replicated command failed: {0}")]
pub struct ApplyFailure(#[source] pub DbError);

/// Whether SQLite refused a statement for a constraint of the schema (deterministic), rather
/// than failing for a local reason.
pub(crate) fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation
    )
}

/// Errors of the typed queries.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite failed.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A JSON column did not decode.
    #[error("Corrupt JSON column: {0}")]
    Json(#[from] serde_json::Error),
    /// The object does not exist.
    #[error("{entity} not found")]
    NotFound {
        /// What kind of object.
        entity: Entity,
        /// Its name.
        name: String,
    },
    /// The database was written by a newer rxd.
    #[error("Database schema version {found} is newer than this rxd supports ({supported})")]
    SchemaTooNew {
        /// The version found on disk.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
}
