//! rxd's databases: the SQLite schemas, their numbered migrations, typed queries, and the
//! replicated [`Command`] with its deterministic [`apply`].
//!
//! There are two databases. The *cluster* database is the raft state machine: every member holds
//! a replica and it changes only through [`apply`]. The *local* database (`database/local.db`)
//! holds what belongs to one member alone, such as its listen addresses.
//!
//! This crate knows nothing of HTTP or raft: the proposer computes ids, timestamps and secrets, so
//! that [`apply`] gives the same result on every replica.

mod command;
mod error;
pub mod local;
mod schema;
pub mod tables;

pub use command::{apply, Command, Expected, Response};
pub use error::{ApplyError, ApplyFailure, DbError, Entity};
pub use schema::{cluster_schema_version, migrate_cluster, migrate_local, CLUSTER_MIGRATIONS};
