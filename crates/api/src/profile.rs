use serde::{Deserialize, Serialize};

use crate::{Config, Devices};

/// The writable part of a profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
// Clients may send back a whole object; like LXD, only the writable part is read.
pub struct ProfilePut {
    /// Instance configuration.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub config: Config,
    /// Free text.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub description: String,
    /// Devices.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub devices: Devices,
}

/// `POST /1.0/profiles`, and an entry of a preseed's `profiles`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProfilesPost {
    /// Instance configuration.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub config: Config,
    /// Free text.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub description: String,
    /// Devices.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub devices: Devices,
    /// Profile name.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub name: String,
}

/// `POST /1.0/profiles/{name}`: rename.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfilePost {
    /// New name.
    pub name: String,
}

/// `GET /1.0/profiles/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Instance configuration.
    pub config: Config,
    /// Free text.
    pub description: String,
    /// Devices.
    pub devices: Devices,
    /// Profile name.
    pub name: String,
    /// URLs of the instances that use it.
    pub used_by: Vec<String>,
}

/// `GET /1.0/projects/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    /// Configuration (`features.*`).
    pub config: Config,
    /// Free text.
    pub description: String,
    /// Project name.
    pub name: String,
    /// URLs of what uses it.
    pub used_by: Vec<String>,
}
