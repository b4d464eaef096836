//! `rxd init --dry-run`: every check that changes nothing, then what would be done.
//!
//! Only reads are sent: `GET`s to the local daemon, and for a join the certificate fetch from
//! the cluster members (the same one `lxd init` makes before anything else). No `PUT` or
//! `POST`, no trust step, so a join token is not spent.
//!
//! ```text
//!  preseed ─┬─ join:      token decoded, addresses reached, fingerprint matched
//!           │             (or the given certificate read and matched against the member)
//!           │             ─> local daemon not clustered ─> server_address bindable
//!           │             ─> plan: cluster, fingerprint, name, the local data that is lost
//!           └─ bootstrap: not clustered, addresses bindable, drivers known, root pools exist
//!                         ─> plan: config keys, pools, profiles, member name
//! ```

use std::fmt::Write as _;

use rxd_api::{ClusterMemberConfigKey, InitClusterPreseed, InitPreseed, JoinToken};
use rxd_client::Client;

use crate::interactive::with_port;
use crate::InitError;

/// Server keys kept in the member's node-local database, which survive a join.
const NODE_LOCAL_KEYS: &[&str] = &[
    "core.https_address",
    "cluster.https_address",
    "core.debug_address",
    "core.bgp_address",
    "core.dns_address",
    "core.metrics_address",
    "core.storage_buckets_address",
    "core.syslog_socket",
    "maas.machine",
    "storage.backups_volume",
    "storage.images_volume",
];

/// Keys whose values are secrets and are never printed.
const SECRET_KEYS: &[&str] = &["core.trust_password"];

/// How the joining server proves itself to the cluster.
#[derive(Debug, PartialEq)]
enum TrustBy {
    /// A join token, which the trust step would spend.
    Token { expires_at: String },
    /// The cluster's trust password.
    Password,
    /// Nothing: the server's certificate must already be trusted.
    AlreadyTrusted,
}

/// How the joining server would listen on its address.
#[derive(Debug, PartialEq)]
enum Listen {
    /// It already listens there (`core.https_address`).
    Existing,
    /// It would bind the address and set `core.https_address` to it.
    Bind,
}

/// What a join would lose on this server: the cluster's database replaces the local one.
#[derive(Debug, Default, PartialEq)]
struct LocalData {
    /// Storage pools as (name, driver).
    pools: Vec<(String, String)>,
    /// Profiles other than `default`.
    profiles: Vec<String>,
    /// Non-default server configuration as (key, printable value).
    config: Vec<(String, String)>,
}

/// A join as it would happen.
#[derive(Debug, PartialEq)]
struct JoinPlan {
    cluster_address: String,
    fingerprint: String,
    member_name: String,
    server_address: String,
    listen: Listen,
    trust: TrustBy,
    member_config: Vec<ClusterMemberConfigKey>,
    ignored_sections: bool,
    lost: LocalData,
}

/// What happens to one storage pool or profile.
#[derive(Debug, PartialEq)]
enum Step {
    Create(String),
    Update(String),
}

/// A bootstrap (or a standalone configuration) as it would happen.
#[derive(Debug, Default, PartialEq)]
struct BootstrapPlan {
    config: Vec<(String, String)>,
    pools: Vec<Step>,
    profiles: Vec<Step>,
    /// The member name and the cluster address, when clustering is enabled.
    member: Option<(String, String)>,
}

fn invalid(s: impl Into<String>) -> InitError {
    InitError::Invalid(s.into())
}

fn printable(key: &str, v: &serde_json::Value) -> String {
    if SECRET_KEYS.contains(&key) {
        return "(hidden)".into();
    }
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn is_wildcard(address: &str) -> bool {
    let host = match address.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => h,
        _ => address,
    };
    matches!(host, "" | "0.0.0.0" | "::" | "[::]")
}

fn port(address: &str) -> Option<&str> {
    address.rsplit_once(':').map(|(_, p)| p)
}

/// Test-binds `address` and lets it go at once, as the daemon will bind it.
fn check_bind(address: &str) -> Result<(), InitError> {
    std::net::TcpListener::bind(address).map(drop).map_err(|e| {
        invalid(format!(
            "Cannot listen on network HTTPS socket {address:?}: {e}"
        ))
    })
}

/// Checks what can be checked without changing anything and describes what `apply` would do.
pub(crate) async fn plan(client: &Client, preseed: &InitPreseed) -> Result<String, InitError> {
    if let Some(c) = &preseed.cluster {
        if c.enabled && (!c.cluster_address.is_empty() || !c.cluster_token.is_empty()) {
            let plan = plan_join(client, preseed, c).await?;
            return Ok(render_join(&plan));
        }
    }
    let plan = plan_bootstrap(client, preseed).await?;
    Ok(render_bootstrap(&plan))
}

async fn plan_join(
    client: &Client,
    preseed: &InitPreseed,
    c: &InitClusterPreseed,
) -> Result<JoinPlan, InitError> {
    let (cluster_address, pem, member_name, trust) = if !c.cluster_token.is_empty() {
        let token = JoinToken::decode(&c.cluster_token)
            .map_err(|e| invalid(format!("Invalid cluster join token: {e}")))?;
        let (address, pem) = crate::join::resolve_token(&token).await?;
        let expires_at = token.expires_at.clone();
        (
            address,
            pem,
            token.server_name,
            TrustBy::Token { expires_at },
        )
    } else {
        let pem = crate::join::cluster_certificate(c)?;
        let address = with_port(&c.cluster_address, 8443);
        let served = crate::join::fetch_certificate(&address).await?;
        if rxd_tls::fingerprint_pem(&served).ok() != rxd_tls::fingerprint_pem(&pem).ok() {
            return Err(invalid(format!(
                "Certificate fingerprint mismatch between cluster_certificate and cluster member {address:?}"
            )));
        }
        if c.server_name.is_empty() {
            return Err(invalid("ServerName is required when enabling clustering"));
        }
        let trust = if c.cluster_password.is_empty() {
            TrustBy::AlreadyTrusted
        } else {
            TrustBy::Password
        };
        (address, pem, c.server_name.clone(), trust)
    };
    let fingerprint = rxd_tls::fingerprint_pem(&pem)
        .map_err(|e| invalid(format!("Invalid cluster certificate: {e}")))?;
    if c.server_address.is_empty() {
        return Err(invalid("No server address provided for this member"));
    }
    let server_address = with_port(&c.server_address, 8443);
    let (cluster, _) = client.cluster().await?;
    if cluster.enabled {
        return Err(invalid("This server is already clustered"));
    }
    let (server, _) = client.server().await?;
    let config = server.config.unwrap_or_default();
    let core = config
        .get("core.https_address")
        .and_then(|v| v.as_str())
        .map(|a| with_port(a, 8443))
        .unwrap_or_default();
    let listen = if core.is_empty() {
        check_bind(&server_address)?;
        Listen::Bind
    } else if core == server_address || (is_wildcard(&core) && port(&core) == port(&server_address))
    {
        Listen::Existing
    } else {
        return Err(invalid(format!(
            "core.https_address {core:?} does not cover server_address {server_address:?}: set core.https_address to the server address or leave it empty"
        )));
    };
    let lost = LocalData {
        pools: client
            .storage_pools()
            .await?
            .into_iter()
            .map(|p| (p.name, p.driver))
            .collect(),
        profiles: client
            .profiles()
            .await?
            .into_iter()
            .map(|p| p.name)
            .filter(|n| n != "default")
            .collect(),
        config: config
            .iter()
            .filter(|(k, _)| !NODE_LOCAL_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), printable(k, v)))
            .collect(),
    };
    Ok(JoinPlan {
        cluster_address,
        fingerprint,
        member_name,
        server_address,
        listen,
        trust,
        member_config: c.member_config.clone(),
        ignored_sections: !preseed.config.is_empty()
            || !preseed.storage_pools.is_empty()
            || !preseed.profiles.is_empty()
            || !preseed.networks.is_empty()
            || !preseed.projects.is_empty(),
        lost,
    })
}

async fn plan_bootstrap(client: &Client, p: &InitPreseed) -> Result<BootstrapPlan, InitError> {
    if !p.networks.is_empty() {
        return Err(invalid(
            "Managed networks are not supported by this rxd yet",
        ));
    }
    if p.projects.iter().any(|p| p.name != "default") {
        return Err(invalid(
            "Projects other than \"default\" are not supported by this rxd yet",
        ));
    }
    let mut plan = BootstrapPlan::default();
    let (server, _) = client.server().await?;
    let current = server.config.unwrap_or_default();
    let current_str = |k: &str| {
        current
            .get(k)
            .and_then(|v| v.as_str())
            .map(|a| with_port(a, 8443))
            .unwrap_or_default()
    };
    let wanted_str = |k: &str| p.config.get(k).and_then(|v| v.as_str()).map(str::to_string);
    if let Some(core) = wanted_str("core.https_address") {
        let core = with_port(&core, 8443);
        if core != current_str("core.https_address") {
            check_bind(&core)?;
        }
    }
    for (k, v) in &p.config {
        plan.config.push((k.clone(), printable(k, v)));
    }
    let clustering = p.cluster.as_ref().filter(|c| c.enabled);
    if let Some(c) = clustering {
        if c.server_name.is_empty() {
            return Err(invalid("ServerName is required when enabling clustering"));
        }
        if c.server_name.starts_with('@') {
            return Err(invalid("ServerName may not start with \"@\""));
        }
        let (cluster, _) = client.cluster().await?;
        if cluster.enabled {
            return Err(invalid("This server is already clustered"));
        }
        // apply copies core.https_address into cluster.https_address when clustering, and
        // the daemon falls back to core.https_address when cluster.https_address is empty.
        let copied = match wanted_str("cluster.https_address") {
            Some(a) => Some(a),
            None => wanted_str("core.https_address").inspect(|core| {
                plan.config.push((
                    "cluster.https_address".into(),
                    format!("{core} (copied from core.https_address)"),
                ));
            }),
        };
        let address = [
            copied.unwrap_or_default(),
            current_str("cluster.https_address"),
            current_str("core.https_address"),
        ]
        .into_iter()
        .find(|a| !a.is_empty())
        .map(|a| with_port(&a, 8443))
        .unwrap_or_default();
        if address.is_empty() || is_wildcard(&address) {
            return Err(invalid(format!(
                "Cannot use wildcard core.https_address {address:?} for cluster.https_address. Please specify a new cluster.https_address or core.https_address"
            )));
        }
        plan.member = Some((c.server_name.clone(), address));
    }
    let drivers: Vec<String> = server
        .environment
        .map(|e| {
            e.storage_supported_drivers
                .into_iter()
                .map(|d| d.name)
                .collect()
        })
        .unwrap_or_default();
    let existing_pools = client.storage_pools().await?;
    for pool in &p.storage_pools {
        match existing_pools.iter().find(|e| e.name == pool.name) {
            Some(e) => {
                if !pool.driver.is_empty() && pool.driver != e.driver {
                    return Err(invalid(format!(
                        "Storage pool {:?} already exists with driver {:?}",
                        pool.name, e.driver
                    )));
                }
                plan.pools.push(Step::Update(pool.name.clone()));
            }
            None => {
                if !drivers.is_empty() && !drivers.contains(&pool.driver) {
                    return Err(invalid(format!(
                        "Storage pool {:?}: driver {:?} is not supported by this server ({})",
                        pool.name,
                        pool.driver,
                        drivers.join(", ")
                    )));
                }
                plan.pools.push(Step::Create(format!(
                    "{} (driver {})",
                    pool.name, pool.driver
                )));
            }
        }
    }
    let existing_profiles = client.profiles().await?;
    for profile in &p.profiles {
        for (dev, d) in &profile.devices {
            if d.get("type").map(String::as_str) != Some("disk") {
                continue;
            }
            if let Some(pool) = d.get("pool") {
                let known = existing_pools.iter().any(|e| &e.name == pool)
                    || p.storage_pools.iter().any(|e| &e.name == pool);
                if !known {
                    return Err(invalid(format!(
                        "Profile {:?} device {dev:?} uses storage pool {pool:?}, which does not exist",
                        profile.name
                    )));
                }
            }
        }
        let devices = if profile.devices.is_empty() {
            String::new()
        } else {
            let names: Vec<&str> = profile.devices.keys().map(String::as_str).collect();
            format!(" (devices: {})", names.join(", "))
        };
        let step = format!("{}{devices}", profile.name);
        if existing_profiles.iter().any(|e| e.name == profile.name) {
            plan.profiles.push(Step::Update(step));
        } else {
            plan.profiles.push(Step::Create(step));
        }
    }
    Ok(plan)
}

const FOOTER: &str = "Dry run: nothing was changed\n";

fn render_join(p: &JoinPlan) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Would join the cluster at {}", p.cluster_address);
    let _ = writeln!(s, "  Cluster fingerprint: {}", p.fingerprint);
    let _ = writeln!(s, "  Member name: {}", p.member_name);
    let listen = match p.listen {
        Listen::Existing => "already listening there",
        Listen::Bind => "core.https_address and cluster.https_address would be set to it",
    };
    let _ = writeln!(s, "  Server address: {} ({listen})", p.server_address);
    let trust = match &p.trust {
        TrustBy::Token { expires_at } => {
            format!("join token, expires at {expires_at}, not spent by this dry run")
        }
        TrustBy::Password => "cluster trust password".into(),
        TrustBy::AlreadyTrusted => {
            "none given: this server's certificate must already be trusted by the cluster".into()
        }
    };
    let _ = writeln!(s, "  Trust: {trust}");
    if p.member_config.is_empty() {
        let _ = writeln!(s, "  Member configuration: none given");
    } else {
        let _ = writeln!(s, "  Member configuration:");
        for k in &p.member_config {
            let _ = writeln!(
                s,
                "    {:?} for {} {:?}: {:?}",
                k.key, k.entity, k.name, k.value
            );
        }
    }
    let _ = writeln!(
        s,
        "  Whether the member configuration covers every key the cluster needs is only known once this server is trusted; the join checks it"
    );
    if p.ignored_sections {
        let _ = writeln!(
            s,
            "  The preseed's other sections are ignored when joining, as lxd init does"
        );
    }
    let lost = &p.lost;
    if lost.pools.is_empty() && lost.profiles.is_empty() && lost.config.is_empty() {
        let _ = writeln!(s, "Local data that would be lost: none");
    } else {
        let _ = writeln!(s, "Local data that would be lost:");
        for (name, driver) in &lost.pools {
            let _ = writeln!(s, "  Storage pool {name:?} (driver {driver})");
        }
        for name in &lost.profiles {
            let _ = writeln!(s, "  Profile {name:?}");
        }
        for (k, v) in &lost.config {
            let _ = writeln!(s, "  Configuration {k}: {v}");
        }
    }
    s.push_str(FOOTER);
    s
}

fn render_bootstrap(p: &BootstrapPlan) -> String {
    let mut s = String::new();
    if p.config.is_empty() && p.pools.is_empty() && p.profiles.is_empty() && p.member.is_none() {
        s.push_str("Nothing to do\n");
    }
    if !p.config.is_empty() {
        let _ = writeln!(s, "Would set server configuration:");
        for (k, v) in &p.config {
            let _ = writeln!(s, "  {k}: {v}");
        }
    }
    for step in &p.pools {
        let _ = match step {
            Step::Create(what) => writeln!(s, "Would create storage pool {what}"),
            Step::Update(what) => writeln!(s, "Would update storage pool {what}"),
        };
    }
    for step in &p.profiles {
        let _ = match step {
            Step::Create(what) => writeln!(s, "Would create profile {what}"),
            Step::Update(what) => writeln!(s, "Would update profile {what}"),
        };
    }
    if let Some((name, address)) = &p.member {
        let _ = writeln!(
            s,
            "Would enable clustering with member name {name:?} at {address}"
        );
    }
    s.push_str(FOOTER);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_plan_names_the_cluster_and_the_local_data_lost() {
        let plan = JoinPlan {
            cluster_address: "127.0.20.1:8443".into(),
            fingerprint: "ab12".into(),
            member_name: "node2".into(),
            server_address: "127.0.20.2:8443".into(),
            listen: Listen::Bind,
            trust: TrustBy::Token {
                expires_at: "2099-01-01T00:00:00Z".into(),
            },
            member_config: vec![ClusterMemberConfigKey {
                entity: "storage-pool".into(),
                name: "local".into(),
                key: "source".into(),
                ..Default::default()
            }],
            ignored_sections: false,
            lost: LocalData {
                pools: vec![("other".into(), "dir".into())],
                profiles: vec!["extra".into()],
                config: vec![("images.auto_update_interval".into(), "0".into())],
            },
        };
        assert_eq!(
            render_join(&plan),
            "Would join the cluster at 127.0.20.1:8443
  Cluster fingerprint: ab12
  Member name: node2
  Server address: 127.0.20.2:8443 (core.https_address and cluster.https_address would be set to it)
  Trust: join token, expires at 2099-01-01T00:00:00Z, not spent by this dry run
  Member configuration:
    \"source\" for storage-pool \"local\": \"\"
  Whether the member configuration covers every key the cluster needs is only known once this server is trusted; the join checks it
Local data that would be lost:
  Storage pool \"other\" (driver dir)
  Profile \"extra\"
  Configuration images.auto_update_interval: 0
Dry run: nothing was changed
"
        );
    }

    #[test]
    fn a_bootstrap_plan_lists_keys_pools_profiles_and_the_member() {
        let plan = BootstrapPlan {
            config: vec![
                ("core.https_address".into(), "127.0.20.5:8443".into()),
                ("core.trust_password".into(), "(hidden)".into()),
            ],
            pools: vec![Step::Create("local (driver dir)".into())],
            profiles: vec![Step::Update("default (devices: root)".into())],
            member: Some(("node1".into(), "127.0.20.5:8443".into())),
        };
        assert_eq!(
            render_bootstrap(&plan),
            "Would set server configuration:
  core.https_address: 127.0.20.5:8443
  core.trust_password: (hidden)
Would create storage pool local (driver dir)
Would update profile default (devices: root)
Would enable clustering with member name \"node1\" at 127.0.20.5:8443
Dry run: nothing was changed
"
        );
        assert_eq!(
            render_bootstrap(&BootstrapPlan::default()),
            "Nothing to do\nDry run: nothing was changed\n"
        );
    }

    #[test]
    fn secrets_are_never_printed() {
        let cases = [
            (
                "core.trust_password",
                serde_json::json!("sekret"),
                "(hidden)",
            ),
            ("core.trust_password", serde_json::json!(true), "(hidden)"),
            ("images.auto_update_interval", serde_json::json!(0), "0"),
            (
                "core.https_address",
                serde_json::json!("127.0.0.1:8443"),
                "127.0.0.1:8443",
            ),
        ];
        for (k, v, want) in cases {
            assert_eq!(printable(k, &v), want, "{k}");
        }
    }

    #[test]
    fn wildcards_are_recognised() {
        for (a, want) in [
            ("0.0.0.0:8443", true),
            ("[::]:8443", true),
            (":8443", true),
            ("127.0.0.1:8443", false),
            ("node.example:8443", false),
        ] {
            assert_eq!(is_wildcard(a), want, "{a}");
        }
    }
}
