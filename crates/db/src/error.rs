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
        })
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
    /// The token matched but had expired; it is consumed all the same.
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
    /// SQLite failed while applying; the command's changes were rolled back.
    #[error("Database error: {message}")]
    Storage {
        /// SQLite's message.
        message: String,
    },
}

impl From<DbError> for ApplyError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound { entity, name } => ApplyError::NotFound { entity, name },
            other => ApplyError::Storage {
                message: other.to_string(),
            },
        }
    }
}

impl From<rusqlite::Error> for ApplyError {
    fn from(e: rusqlite::Error) -> Self {
        ApplyError::from(DbError::from(e))
    }
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
