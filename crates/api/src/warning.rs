//! Warnings (API extension `warnings`): what a member found wrong, kept until resolved or
//! deleted.

use serde::{Deserialize, Serialize};

/// `api.Warning`, its fields in LXD 5.0's order (the status of the embedded `WarningPut`
/// first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// `new`, `acknowledged` or `resolved`.
    pub status: String,
    /// UUID.
    pub uuid: String,
    /// The cluster member it occurred on (`none` on a standalone server).
    pub location: String,
    /// The project it occurred in; empty when it concerns no project.
    pub project: String,
    /// LXD's name of its type, such as "Offline cluster member".
    #[serde(rename = "type")]
    pub warning_type: String,
    /// How many times it occurred.
    pub count: u64,
    /// RFC 3339 with nanoseconds.
    pub first_seen_at: String,
    /// RFC 3339 with nanoseconds.
    pub last_seen_at: String,
    /// The message of its last occurrence.
    pub last_message: String,
    /// `low`, `moderate` or `high`.
    pub severity: String,
    /// The object it concerns, such as `/1.0/cluster/members/node2`; empty for none.
    pub entity_url: String,
}

/// `api.WarningPut`: the status a user may set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarningPut {
    /// `acknowledged` or `new`.
    #[serde(default)]
    pub status: String,
}

/// The warning types rxd raises, with LXD's codes, names and severities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningType {
    /// The leader's heartbeats do not reach a member.
    OfflineClusterMember,
    /// A storage pool this member has cannot be used (not mounted, driver missing).
    StoragePoolUnavailable,
}

impl WarningType {
    const ALL: [WarningType; 2] = [
        WarningType::OfflineClusterMember,
        WarningType::StoragePoolUnavailable,
    ];

    /// LXD's numeric code, as its database stores it.
    pub fn code(self) -> i64 {
        match self {
            WarningType::OfflineClusterMember => 21,
            WarningType::StoragePoolUnavailable => 24,
        }
    }

    /// The type with LXD's `code`, if rxd knows it.
    pub fn from_code(code: i64) -> Option<WarningType> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// LXD's name.
    pub fn name(self) -> &'static str {
        match self {
            WarningType::OfflineClusterMember => "Offline cluster member",
            WarningType::StoragePoolUnavailable => "Storage pool unavailable",
        }
    }

    /// LXD's severity.
    pub fn severity(self) -> &'static str {
        match self {
            WarningType::OfflineClusterMember => "low",
            WarningType::StoragePoolUnavailable => "high",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_through_lxd_codes() {
        for t in WarningType::ALL {
            assert_eq!(WarningType::from_code(t.code()), Some(t));
        }
        assert_eq!(WarningType::from_code(0), None);
    }
}
