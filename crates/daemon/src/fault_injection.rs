//! The fault suite's hooks, compiled in only with the `fault-injection` feature (never in a
//! release build), and inert unless their environment variables are set:
//!
//! - `RXD_RAFT_TUNING="heartbeat_ms=150,election_min_ms=600,election_max_ms=1200,
//!   request_timeout_ms=4000,snapshot_after=100,keep=50,offline_threshold_min=2"` (any subset)
//!   overrides the raft timing and compaction settings and lowers the smallest accepted
//!   `cluster.offline_threshold`;
//! - `RXD_FAULT_SWITCHES=name[,name]` turns on deliberate bugs ([`rxd_raft::FaultSwitch`]);
//! - `RXD_FORM_VERSION=V` is the version this server reports in a formation.
//!
//! An unknown key, a bad value or an unknown switch stops the daemon at start with a message.
//! Without the feature, [`raft_settings`] is `RaftSettings::default()` and the smallest
//! `cluster.offline_threshold` is LXD's 11.

use rxd_raft::RaftSettings;

/// The smallest `cluster.offline_threshold` LXD accepts.
#[cfg(feature = "fault-injection")]
const LXD_OFFLINE_THRESHOLD_MIN: i64 = 11;

#[cfg(feature = "fault-injection")]
mod enabled {
    use std::sync::OnceLock;
    use std::time::Duration;

    use rxd_raft::{FaultSwitch, RaftSettings};

    /// The environment variable with raft timing overrides.
    pub const TUNING_VAR: &str = "RXD_RAFT_TUNING";
    /// The environment variable naming the deliberate bugs to switch on.
    pub const SWITCHES_VAR: &str = "RXD_FAULT_SWITCHES";

    /// What the environment asked for.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Injection {
        pub raft: RaftSettings,
        pub offline_threshold_min: i64,
    }

    impl Default for Injection {
        fn default() -> Self {
            Injection {
                raft: RaftSettings::default(),
                offline_threshold_min: super::LXD_OFFLINE_THRESHOLD_MIN,
            }
        }
    }

    /// Parses the two variables' values (`None`: not set).
    pub fn parse(tuning: Option<&str>, switches: Option<&str>) -> Result<Injection, String> {
        let mut out = Injection::default();
        for item in tuning
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
        {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("{TUNING_VAR}: {item:?} is not key=value"))?;
            let (key, value) = (key.trim(), value.trim());
            let number = value
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    format!("{TUNING_VAR}: {key}={value:?} is not a positive integer")
                })?;
            let ms = Duration::from_millis(number);
            match key {
                "heartbeat_ms" => out.raft.heartbeat_interval = ms,
                "election_min_ms" => out.raft.election_timeout_min = ms,
                "election_max_ms" => out.raft.election_timeout_max = ms,
                "request_timeout_ms" => out.raft.request_timeout = ms,
                "snapshot_after" => out.raft.snapshot_after_entries = number,
                "keep" => out.raft.entries_kept_after_snapshot = number,
                "offline_threshold_min" => {
                    out.offline_threshold_min = i64::try_from(number).map_err(|_| {
                        format!("{TUNING_VAR}: offline_threshold_min={value} is too large")
                    })?
                }
                _ => {
                    return Err(format!(
                        "{TUNING_VAR}: unknown key {key:?} (known: heartbeat_ms, \
                         election_min_ms, election_max_ms, request_timeout_ms, snapshot_after, \
                         keep, offline_threshold_min)"
                    ))
                }
            }
        }
        out.raft.check().map_err(|e| format!("{TUNING_VAR}: {e}"))?;
        out.raft.faults = FaultSwitch::parse_list(switches.unwrap_or_default())
            .map_err(|e| format!("{SWITCHES_VAR}: {e}"))?;
        Ok(out)
    }

    fn from_env() -> Result<Injection, String> {
        let var = |name: &str| match std::env::var(name) {
            Ok(v) => Ok(Some(v)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(e) => Err(format!("{name}: {e}")),
        };
        parse(var(TUNING_VAR)?.as_deref(), var(SWITCHES_VAR)?.as_deref())
    }

    static INJECTION: OnceLock<Result<Injection, String>> = OnceLock::new();

    pub fn get() -> &'static Result<Injection, String> {
        INJECTION.get_or_init(from_env)
    }
}

/// Refuses a bad `RXD_RAFT_TUNING` or `RXD_FAULT_SWITCHES` (called once at start); logs what
/// is in force.
#[cfg(feature = "fault-injection")]
pub(crate) fn check_env() -> Result<(), String> {
    let injection = enabled::get().as_ref().map_err(Clone::clone)?;
    if injection != &enabled::Injection::default() {
        tracing::warn!("Fault injection in force: {injection:?}");
    }
    rxd_api::config_keys::lower_offline_threshold_min(injection.offline_threshold_min);
    Ok(())
}

/// Without the `fault-injection` feature there is nothing to check.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn check_env() -> Result<(), String> {
    Ok(())
}

/// The raft settings the daemon runs with: the defaults, overridden by `RXD_RAFT_TUNING` and
/// `RXD_FAULT_SWITCHES` in a build with the `fault-injection` feature.
#[cfg(feature = "fault-injection")]
pub(crate) fn raft_settings() -> RaftSettings {
    enabled::get()
        .as_ref()
        .map(|i| i.raft.clone())
        .unwrap_or_default()
}

/// The raft settings the daemon runs with: the defaults.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn raft_settings() -> RaftSettings {
    RaftSettings::default()
}

/// The version a formation reports for this server: the build's, or with the
/// `fault-injection` feature the one in `RXD_FORM_VERSION`, so a test can show a formation
/// refusing servers of different versions.
pub(crate) fn form_version() -> String {
    #[cfg(feature = "fault-injection")]
    if let Ok(v) = std::env::var("RXD_FORM_VERSION") {
        return v;
    }
    env!("CARGO_PKG_VERSION").to_string()
}

#[cfg(all(test, feature = "fault-injection"))]
mod tests {
    use std::time::Duration;

    use rxd_raft::{FaultSwitch, RaftSettings};

    use super::enabled::{parse, Injection};

    #[test]
    fn nothing_set_changes_nothing() {
        assert_eq!(parse(None, None).unwrap(), Injection::default());
        assert_eq!(parse(Some(""), Some("")).unwrap(), Injection::default());
        assert_eq!(Injection::default().raft, RaftSettings::default());
        assert_eq!(Injection::default().offline_threshold_min, 11);
    }

    #[test]
    fn tuning_overrides_each_setting() {
        let i = parse(
            Some(
                "heartbeat_ms=150,election_min_ms=600,election_max_ms=1200,\
                 request_timeout_ms=4000,snapshot_after=100,keep=50,offline_threshold_min=2",
            ),
            None,
        )
        .unwrap();
        assert_eq!(i.raft.heartbeat_interval, Duration::from_millis(150));
        assert_eq!(i.raft.election_timeout_min, Duration::from_millis(600));
        assert_eq!(i.raft.election_timeout_max, Duration::from_millis(1200));
        assert_eq!(i.raft.request_timeout, Duration::from_millis(4000));
        assert_eq!(i.raft.snapshot_after_entries, 100);
        assert_eq!(i.raft.entries_kept_after_snapshot, 50);
        assert_eq!(i.offline_threshold_min, 2);
        assert!(i.raft.faults.is_empty());
        // A subset leaves the rest at the defaults.
        let i = parse(Some("keep=7"), None).unwrap();
        assert_eq!(
            i.raft,
            RaftSettings {
                entries_kept_after_snapshot: 7,
                ..RaftSettings::default()
            }
        );
    }

    #[test]
    fn bad_tuning_is_refused_with_a_message() {
        for (bad, says) in [
            ("heartbeat=150", "unknown key \"heartbeat\""),
            ("heartbeat_ms", "is not key=value"),
            ("heartbeat_ms=fast", "not a positive integer"),
            ("keep=0", "not a positive integer"),
            ("heartbeat_ms=2000", "Invalid raft settings"),
        ] {
            let e = parse(Some(bad), None).unwrap_err();
            assert!(
                e.starts_with("RXD_RAFT_TUNING: ") && e.contains(says),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn each_switch_is_parsed_and_unknown_ones_are_refused() {
        for (name, switch) in [
            ("stale-follower-reads", FaultSwitch::StaleFollowerReads),
            ("ack-before-commit", FaultSwitch::AckBeforeCommit),
            ("reforward-new-id", FaultSwitch::ReforwardNewId),
        ] {
            let i = parse(None, Some(name)).unwrap();
            assert_eq!(i.raft.faults, [switch].into(), "{name}");
            assert_eq!(i.offline_threshold_min, 11);
        }
        let all = parse(
            None,
            Some("stale-follower-reads,ack-before-commit,reforward-new-id"),
        )
        .unwrap();
        assert_eq!(all.raft.faults.len(), 3);
        let e = parse(None, Some("ack-before-commit,typo")).unwrap_err();
        assert!(
            e.starts_with("RXD_FAULT_SWITCHES: ") && e.contains("\"typo\""),
            "{e}"
        );
    }
}
