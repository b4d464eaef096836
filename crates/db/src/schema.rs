//! Numbered migrations. A database records how many it has applied in `PRAGMA user_version`;
//! opening runs the rest in one transaction. Migrations are never edited once released: a change
//! is a new step at the end.

use rusqlite::Connection;

use crate::DbError;

/// The cluster database's migrations, in order. Step `i` brings the schema to version `i + 1`.
pub const CLUSTER_MIGRATIONS: &[&str] = &[
    // 1: the foundation.
    r#"
CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE members (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    address TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    failure_domain TEXT NOT NULL DEFAULT 'default',
    config TEXT NOT NULL DEFAULT '{}',
    roles TEXT NOT NULL DEFAULT '[]',
    groups TEXT NOT NULL DEFAULT '["default"]',
    architecture TEXT NOT NULL DEFAULT '',
    state INTEGER NOT NULL DEFAULT 0,
    heartbeat TEXT NOT NULL DEFAULT ''
);
INSERT INTO members (id, name, address) VALUES (1, 'none', '0.0.0.0');
CREATE TABLE certificates (
    fingerprint TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    name TEXT NOT NULL,
    certificate TEXT NOT NULL,
    restricted INTEGER NOT NULL DEFAULT 0,
    projects TEXT NOT NULL DEFAULT '[]',
    description TEXT NOT NULL DEFAULT ''
);
CREATE TABLE storage_pools (
    name TEXT PRIMARY KEY,
    driver TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    config TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL
);
CREATE TABLE storage_pool_members (
    pool TEXT NOT NULL REFERENCES storage_pools(name) ON DELETE CASCADE ON UPDATE CASCADE,
    member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    config TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL,
    PRIMARY KEY (pool, member_id)
);
CREATE TABLE projects (name TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '', config TEXT NOT NULL DEFAULT '{}');
INSERT INTO projects (name, description, config) VALUES ('default', 'Default LXD project',
    '{"features.images":"true","features.networks":"true","features.profiles":"true","features.storage.volumes":"true"}');
CREATE TABLE profiles (
    project TEXT NOT NULL REFERENCES projects(name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    config TEXT NOT NULL DEFAULT '{}',
    devices TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (project, name)
);
INSERT INTO profiles (project, name, description) VALUES ('default', 'default', 'Default LXD profile');
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    secret TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    addresses TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    location TEXT NOT NULL
);
"#,
    // 2: managed networks, with each member's side.
    r#"
CREATE TABLE networks (
    name TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    config TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL
);
CREATE TABLE network_members (
    network TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE ON UPDATE CASCADE,
    member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    config TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL,
    PRIMARY KEY (network, member_id)
);
"#,
    // 3: the highest member id ever given, so that a removed member's id (its raft node id
    // too) is never given again.
    r#"
CREATE TABLE member_ids (high INTEGER NOT NULL);
"#,
    // 4: joins in progress: the server certificate that presented a join's secret may be
    // accepted as a member once. A certificate-add token records the restriction it grants.
    r#"
CREATE TABLE join_grants (fingerprint TEXT PRIMARY KEY, name TEXT NOT NULL);
ALTER TABLE tokens ADD COLUMN restricted_projects TEXT;
"#,
    // 5: warnings, one row per (member, project, type, entity), LXD's status and type codes.
    r#"
CREATE TABLE warnings (
    uuid TEXT PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    project TEXT NOT NULL,
    type_code INTEGER NOT NULL,
    entity_url TEXT NOT NULL,
    status INTEGER NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    updated TEXT NOT NULL,
    last_message TEXT NOT NULL,
    count INTEGER NOT NULL,
    UNIQUE (member_id, project, type_code, entity_url)
);
"#,
    // 6: cluster groups and their members. A member's groups move here from the JSON column
    // of `members`: every group a member named becomes a group, and every member stays in the
    // groups it had (`default` for all of them unless changed).
    r#"
CREATE TABLE cluster_groups (name TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '');
CREATE TABLE cluster_group_members (
    group_name TEXT NOT NULL REFERENCES cluster_groups(name) ON DELETE CASCADE ON UPDATE CASCADE,
    member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    PRIMARY KEY (group_name, member_id)
);
INSERT INTO cluster_groups (name, description) VALUES ('default', 'Default cluster group');
INSERT OR IGNORE INTO cluster_groups (name)
    SELECT DISTINCT g.value FROM members, json_each(members.groups) AS g;
INSERT OR IGNORE INTO cluster_group_members (group_name, member_id)
    SELECT g.value, members.id FROM members, json_each(members.groups) AS g ORDER BY members.id, g.key;
ALTER TABLE members DROP COLUMN groups;
"#,
    // 7: the fingerprint of the cluster certificate every member serves, once rotated.
    r#"
CREATE TABLE cluster_certificate (id INTEGER PRIMARY KEY CHECK (id = 1), fingerprint TEXT NOT NULL);
"#,
    // 8: objects with a side on each member share one table shape, so one code path reads
    // and writes them all: the object row's `type` (a pool's driver) and the member row's
    // `object` (its pool or network).
    r#"
ALTER TABLE storage_pools RENAME COLUMN driver TO type;
ALTER TABLE storage_pool_members RENAME COLUMN pool TO object;
ALTER TABLE network_members RENAME COLUMN network TO object;
"#,
];

/// The node-local database's migrations.
const LOCAL_MIGRATIONS: &[&str] = &[
    // 1: member-local settings and the raft members this node knows of.
    r#"
CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"#,
];

/// The schema version a fully migrated cluster database has.
pub fn cluster_schema_version() -> i64 {
    CLUSTER_MIGRATIONS.len() as i64
}

fn migrate(conn: &mut Connection, steps: &[&str]) -> Result<(), DbError> {
    conn.pragma_update(None, "foreign_keys", true)?;
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let supported = steps.len() as i64;
    if current > supported {
        return Err(DbError::SchemaTooNew {
            found: current,
            supported,
        });
    }
    let tx = conn.transaction()?;
    for step in &steps[current as usize..] {
        tx.execute_batch(step)?;
    }
    tx.pragma_update(None, "user_version", supported)?;
    tx.commit()?;
    Ok(())
}

/// Brings a cluster database up to the current schema.
pub fn migrate_cluster(conn: &mut Connection) -> Result<(), DbError> {
    migrate(conn, CLUSTER_MIGRATIONS)
}

/// Brings a node-local database up to the current schema.
pub fn migrate_local(conn: &mut Connection) -> Result<(), DbError> {
    migrate(conn, LOCAL_MIGRATIONS)
}
