/// The API extensions rxd implements, in LXD's order. Clients switch features on by these
/// names, so an extension is listed only once its behaviour is really there.
pub const API_EXTENSIONS: &[&str] = &[
    "storage",
    "etag",
    "patch",
    "certificate_update",
    "clustering",
    "clustering_join",
    "clustering_server_address",
    "clustering_roles",
    "clustering_join_token",
    "clustering_failure_domains",
    "clustering_config",
    "clustering_description",
    "projects",
    "operation_wait",
    "certificate_token",
    "event_lifecycle",
    "event_location",
    "event_lifecycle_requestor_address",
    "server_supported_storage_drivers",
    "profile_usedby",
];
