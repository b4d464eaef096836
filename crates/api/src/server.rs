use serde::{Deserialize, Serialize};

/// A storage driver the server supports. The keys are capitalised because LXD's struct has no
/// JSON tags, and interactive `lxd init` reads `Remote` to split local from remote backends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerStorageDriverInfo {
    /// Driver name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Driver version.
    #[serde(rename = "Version")]
    pub version: String,
    /// Whether it is shared storage.
    #[serde(rename = "Remote")]
    pub remote: bool,
}

/// What a trusted caller learns about the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ServerEnvironment {
    /// HTTPS listen addresses.
    pub addresses: Vec<String>,
    /// Supported architectures.
    pub architectures: Vec<String>,
    /// PEM of the certificate served on HTTPS.
    pub certificate: String,
    /// Its fingerprint.
    pub certificate_fingerprint: String,
    /// Instance driver.
    pub driver: String,
    /// Instance driver version.
    pub driver_version: String,
    /// Firewall backend.
    pub firewall: String,
    /// Kernel name.
    pub kernel: String,
    /// Kernel architecture.
    pub kernel_architecture: String,
    /// Kernel features.
    pub kernel_features: std::collections::BTreeMap<String, String>,
    /// Kernel version.
    pub kernel_version: String,
    /// Container runtime features.
    pub lxc_features: std::collections::BTreeMap<String, String>,
    /// OS name.
    pub os_name: String,
    /// OS version.
    pub os_version: String,
    /// Current project.
    pub project: String,
    /// Always `lxd`, which the clients expect.
    pub server: String,
    /// Whether the server is clustered.
    pub server_clustered: bool,
    /// `full-mesh`, `hub-server` or `hub-client`.
    pub server_event_mode: String,
    /// Member name when clustered, host name otherwise.
    pub server_name: String,
    /// Daemon PID.
    pub server_pid: u32,
    /// Daemon version.
    pub server_version: String,
    /// Storage drivers in use.
    pub storage: String,
    /// Their versions.
    pub storage_version: String,
    /// Storage drivers this host supports.
    pub storage_supported_drivers: Vec<ServerStorageDriverInfo>,
}

/// `GET /1.0`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Server {
    /// Configuration; hidden keys read back as `true`. Absent for untrusted callers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Map<String, serde_json::Value>>,
    /// Implemented API extensions.
    pub api_extensions: Vec<String>,
    /// `stable`.
    pub api_status: String,
    /// `1.0`.
    pub api_version: String,
    /// `trusted` or `untrusted`.
    pub auth: String,
    /// Whether the server is public.
    pub public: bool,
    /// `["tls"]`.
    pub auth_methods: Vec<String>,
    /// Host facts, for trusted callers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<ServerEnvironment>,
}

/// `PUT /1.0` and `PATCH /1.0`. Values may arrive as non-strings (numbers from YAML); hidden
/// keys sent back as `true` mean "unchanged".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ServerPut {
    /// The full (PUT) or partial (PATCH) configuration.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub config: serde_json::Map<String, serde_json::Value>,
}
