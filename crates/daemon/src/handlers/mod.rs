//! One module per endpoint group, named after its URL.

pub mod certificates;
pub mod cluster;
pub mod cluster_members;
pub mod events;
pub mod internal;
pub mod internal_cluster;
pub mod networks;
pub mod operations;
pub mod profiles;
pub mod projects;
pub mod server;
pub mod storage_pools;
pub mod warnings;

use std::collections::HashMap;

/// Query parameters, as a map.
pub type QueryMap = axum::extract::Query<HashMap<String, String>>;

/// Whether `?recursion=` asks for full objects.
pub fn recursion(q: &HashMap<String, String>) -> bool {
    q.get("recursion")
        .is_some_and(|v| v != "0" && !v.is_empty())
}

/// `?target=`, when given and not empty.
pub fn target(q: &HashMap<String, String>) -> Option<&str> {
    q.get("target")
        .map(String::as_str)
        .filter(|t| !t.is_empty())
}
