//! Configuration keys are data: one table says each key's scope, default, validator and whether
//! it is hidden. Handlers never interpret a key on their own.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::LazyLock;

use regex::Regex;

/// The smallest `cluster.offline_threshold` accepted: LXD's 11, unless lowered.
static OFFLINE_THRESHOLD_MIN: AtomicI64 = AtomicI64::new(11);

fn offline_threshold_min() -> i64 {
    OFFLINE_THRESHOLD_MIN.load(Ordering::Relaxed)
}

/// Lowers the smallest accepted `cluster.offline_threshold`: only the daemon's fault-injection
/// build does, told so by the fault suite (`RXD_RAFT_TUNING`).
pub fn lower_offline_threshold_min(seconds: i64) {
    OFFLINE_THRESHOLD_MIN.store(seconds, Ordering::Relaxed);
}

/// Where a key is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Replicated to every member.
    Cluster,
    /// This member's local database.
    Member,
}

/// One configuration key.
pub struct Key {
    /// The key's name.
    pub name: &'static str,
    /// Where it lives.
    pub scope: Scope,
    /// Its default, shown nowhere but used when unset.
    pub default: &'static str,
    /// Read back as `true`, never as its value.
    pub hidden: bool,
    validate: fn(&str) -> Result<(), String>,
}

/// The longest `cluster.offline_threshold`, in seconds: one year.
pub const MAX_OFFLINE_THRESHOLD: i64 = 365 * 86_400;

/// The longest expiry a token may have, in seconds: 100 years.
pub const MAX_EXPIRY: i64 = 100 * 365 * 86_400;

/// Every server configuration key rxd knows.
pub const KEYS: &[Key] = &[
    Key {
        name: "core.https_address",
        scope: Scope::Member,
        default: "",
        hidden: false,
        validate: validate_listen_address,
    },
    Key {
        name: "cluster.https_address",
        scope: Scope::Member,
        default: "",
        hidden: false,
        validate: validate_cluster_address,
    },
    Key {
        name: "core.trust_password",
        scope: Scope::Cluster,
        default: "",
        hidden: true,
        validate: |_| Ok(()),
    },
    Key {
        name: "cluster.join_token_expiry",
        scope: Scope::Cluster,
        default: "3H",
        hidden: false,
        validate: validate_expiry,
    },
    Key {
        name: "core.remote_token_expiry",
        scope: Scope::Cluster,
        default: "",
        hidden: false,
        validate: |v| {
            if v.is_empty() {
                Ok(())
            } else {
                validate_expiry(v)
            }
        },
    },
    Key {
        name: "cluster.max_voters",
        scope: Scope::Cluster,
        default: "3",
        hidden: false,
        validate: |v| match v.parse::<i64>() {
            Ok(n) if n >= 3 && n % 2 == 1 => Ok(()),
            _ => Err("Value must be an odd number equal to or higher than 3".into()),
        },
    },
    Key {
        name: "cluster.max_standby",
        scope: Scope::Cluster,
        default: "2",
        hidden: false,
        validate: |v| match v.parse::<i64>() {
            Ok(n) if (0..=5).contains(&n) => Ok(()),
            _ => Err("Value must be between 0 and 5".into()),
        },
    },
    Key {
        name: "cluster.offline_threshold",
        scope: Scope::Cluster,
        default: "20",
        hidden: false,
        // 11 and up, as LXD; lower in a fault-injection build told so (`RXD_RAFT_TUNING`).
        // At most a year, so that the heartbeat's arithmetic on it cannot overflow.
        validate: |v| match v.parse::<i64>() {
            Ok(n) if n > MAX_OFFLINE_THRESHOLD => Err(format!(
                "Value must be at most {MAX_OFFLINE_THRESHOLD} (one year)"
            )),
            Ok(n) if n >= offline_threshold_min() => Ok(()),
            Ok(_) => Err(format!(
                "Value must be greater than '{}'",
                offline_threshold_min() - 1
            )),
            Err(_) => Err(format!("Invalid value for an integer {v:?}")),
        },
    },
    Key {
        name: "cluster.images_minimal_replica",
        scope: Scope::Cluster,
        default: "3",
        hidden: false,
        validate: |v| match v.parse::<i64>() {
            Ok(n) if n >= 1 || n == -1 => Ok(()),
            _ => Err("Value must be equal to or higher than 1, or -1 for all members".into()),
        },
    },
    Key {
        name: "images.auto_update_interval",
        scope: Scope::Cluster,
        default: "6",
        hidden: false,
        validate: |v| match v.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(()),
            _ => Err(format!("Invalid value for an integer {v:?}")),
        },
    },
];

/// Looks a key up.
pub fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Checks a value for `name`; an empty value always means "unset".
pub fn validate(name: &str, value: &str) -> Result<(), String> {
    let k = key(name).ok_or_else(|| format!("Unknown configuration key: {name}"))?;
    if value.is_empty() {
        return Ok(());
    }
    (k.validate)(value).map_err(|e| format!("Invalid value for {name}: {e}"))
}

/// The value of a cluster key, or its default.
pub fn cluster_value<'a>(config: &'a BTreeMap<String, String>, name: &'static str) -> &'a str {
    config
        .get(name)
        .map(String::as_str)
        .unwrap_or_else(|| key(name).map(|k| k.default).unwrap_or(""))
}

/// Splits `[host][:port]` and adds LXD's default port 8443.
pub fn canonical_address(address: &str) -> String {
    let address = address.trim();
    if address.is_empty() {
        return String::new();
    }
    if address.parse::<SocketAddr>().is_ok() {
        return address.to_string();
    }
    if let Ok(ip) = address.parse::<IpAddr>() {
        return SocketAddr::new(ip, 8443).to_string();
    }
    if address.starts_with('[') && address.ends_with(']') {
        return format!("{address}:8443");
    }
    if address.starts_with(':') {
        return format!("[::]{address}");
    }
    if address
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        return address.to_string();
    }
    format!("{address}:8443")
}

fn validate_listen_address(v: &str) -> Result<(), String> {
    if v.trim() != v {
        return Err(format!(
            "Invalid address {v:?}: addresses must not start or end with whitespace"
        ));
    }
    let canonical = canonical_address(v);
    let (host, port) = canonical
        .rsplit_once(':')
        .ok_or_else(|| format!("Invalid address {v:?}"))?;
    port.parse::<u16>()
        .map_err(|_| format!("Invalid port in address {v:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    static HOSTNAME: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$")
            .expect("static regex")
    });
    if HOSTNAME.is_match(host) {
        Ok(())
    } else {
        Err(format!("Invalid address {v:?}"))
    }
}

fn validate_cluster_address(v: &str) -> Result<(), String> {
    validate_listen_address(v)?;
    if is_wildcard(v) {
        return Err(format!("Cannot use wildcard address {v:?}"));
    }
    Ok(())
}

/// Whether an address listens on every interface.
pub fn is_wildcard(address: &str) -> bool {
    let canonical = canonical_address(address);
    let host = canonical
        .rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or("");
    host.is_empty() || host == "0.0.0.0" || host == "::"
}

fn validate_expiry(v: &str) -> Result<(), String> {
    parse_expiry(v).map(|_| ())
}

/// Parses LXD's expiry expression (`3H`, `30M`, `1d`...) into seconds, at most
/// [`MAX_EXPIRY`].
pub fn parse_expiry(v: &str) -> Result<i64, String> {
    static EXPIRY: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^(\d+)(S|M|H|d|w|m|y)$").expect("static regex"));
    let caps = EXPIRY
        .captures(v.trim())
        .ok_or_else(|| format!("Invalid expiry expression {v:?}"))?;
    let unit = match &caps[2] {
        "S" => 1,
        "M" => 60,
        "H" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "m" => 30 * 86_400,
        _ => 365 * 86_400,
    };
    caps[1]
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|secs| *secs <= MAX_EXPIRY)
        .ok_or_else(|| format!("Invalid expiry expression {v:?}: an expiry is at most 100 years"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators_follow_lxd() {
        let cases: &[(&str, &str, bool)] = &[
            ("cluster.max_voters", "3", true),
            ("cluster.max_voters", "4", false),
            ("cluster.max_voters", "1", false),
            ("cluster.max_voters", "-3", false),
            ("cluster.max_standby", "5", true),
            ("cluster.max_standby", "6", false),
            ("cluster.max_standby", "-1", false),
            ("cluster.offline_threshold", "10", false),
            ("cluster.offline_threshold", "11", true),
            ("cluster.join_token_expiry", "5S", true),
            ("cluster.join_token_expiry", "3h", false),
            ("cluster.join_token_expiry", "-1H", false),
            ("cluster.join_token_expiry", "100y", true),
            ("cluster.join_token_expiry", "101y", false),
            ("cluster.join_token_expiry", "9223372036854775807S", false),
            ("cluster.join_token_expiry", "300000000y", false),
            (
                "cluster.join_token_expiry",
                "99999999999999999999999S",
                false,
            ),
            ("core.remote_token_expiry", "300000000y", false),
            ("cluster.offline_threshold", "31536000", true),
            ("cluster.offline_threshold", "31536001", false),
            ("cluster.offline_threshold", "9223372036854775807", false),
            ("core.https_address", "127.0.0.1:8443\n", false),
            ("core.https_address", " 127.0.0.1:8443", false),
            ("cluster.https_address", "127.0.0.1:8443\n", false),
            ("core.https_address", "127.0.0.1:8443", true),
            ("core.https_address", "127.0.0.1", true),
            ("core.https_address", ":8443", true),
            ("core.https_address", "[::1]:8443", true),
            ("core.https_address", "127.0.0.1:99999", false),
            ("core.https_address", "not an address", false),
            ("cluster.https_address", "0.0.0.0:8443", false),
            ("images.auto_update_interval", "0", true),
            ("images.auto_update_interval", "-2", false),
            ("no.such.key", "x", false),
        ];
        for (k, v, ok) in cases {
            assert_eq!(validate(k, v).is_ok(), *ok, "{k}={v}");
        }
    }

    #[test]
    fn addresses_get_default_port() {
        assert_eq!(canonical_address("127.0.0.2"), "127.0.0.2:8443");
        assert_eq!(canonical_address("127.0.0.2:9000"), "127.0.0.2:9000");
        assert_eq!(canonical_address("::1"), "[::1]:8443");
        assert_eq!(canonical_address(":8443"), "[::]:8443");
        assert!(is_wildcard(":8443"));
        assert!(!is_wildcard("127.0.0.1"));
    }

    #[test]
    fn expiry_units() {
        assert_eq!(parse_expiry("3H"), Ok(10800));
        assert_eq!(parse_expiry("5S"), Ok(5));
        assert_eq!(parse_expiry("1m"), Ok(2_592_000));
    }
}
