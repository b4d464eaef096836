//! The interactive questions for joining an existing cluster, in LXD 5.0.2's words and order.
//!
//! Unlike a preseed join, the interactive join does the trust step itself: once the user has
//! agreed to lose the local data, this process adds the server's own `server.crt` to the
//! cluster's trust store (spending the token or checking the password), then reads the
//! cluster's `member_config` as a trusted client to ask for each member-specific value. The
//! resulting preseed carries an empty `cluster_password`, so the daemon skips the trust step.
//!
//! ```text
//!  token? ──yes/[token]──> resolve the token's addresses (fingerprint must match)
//!     └─no──> member name ─> member address ─> fingerprint shown, confirmed ─> password
//!  ─> "All existing data is lost…" ─no─> User aborted configuration (nothing changed)
//!  ─> trust step + GET /1.0/cluster ─> "Choose <description>: " per key ─> preseed
//!     (--dry-run stops before the trust step: no token is spent, no certificate added)
//! ```

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

use rxd_api::{CertificatesPost, ClusterMemberConfigKey, InitClusterPreseed, JoinToken};
use rxd_client::Client;

use crate::interactive::{hostname, with_port};
use crate::{Asker, InitError};

/// What the trust step needs: whom to call, how to recognise them, and what to prove.
pub(crate) struct Trust<'a> {
    /// The member name this server's certificate is added under.
    pub name: &'a str,
    /// `host:port` of the cluster member to call.
    pub address: &'a str,
    /// The cluster certificate (PEM) that member must present.
    pub certificate: &'a str,
    /// The join token or the trust password.
    pub secret: &'a str,
}

/// The outside world of the join questions, so tests can script it.
pub(crate) trait JoinEnv {
    /// The certificate (PEM) served at `address`, not trusted yet.
    async fn certificate(&self, address: &str) -> Result<String, InitError>;
    /// The first of the token's addresses that serves the token's certificate, with that
    /// certificate.
    async fn resolve_token(&self, token: &JoinToken) -> Result<(String, String), InitError>;
    /// Adds this server's certificate to the cluster's trust store and returns the cluster's
    /// member-specific keys.
    async fn trust(&self, trust: &Trust<'_>) -> Result<Vec<ClusterMemberConfigKey>, InitError>;
}

/// The real network, with this server's certificate from its data directory.
pub(crate) struct Network {
    /// The daemon's data directory, holding `server.crt` and `server.key`.
    pub dir: PathBuf,
}

/// How long the trust step may take before `init` gives up.
const TRUST_TIMEOUT: Duration = Duration::from_secs(60);

/// The base64 DER of a PEM certificate: its body without the armour lines.
fn pem_body(pem: &str) -> String {
    pem.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect()
}

impl JoinEnv for Network {
    async fn certificate(&self, address: &str) -> Result<String, InitError> {
        crate::join::fetch_certificate(address).await
    }

    async fn resolve_token(&self, token: &JoinToken) -> Result<(String, String), InitError> {
        crate::join::resolve_token(token).await
    }

    async fn trust(&self, t: &Trust<'_>) -> Result<Vec<ClusterMemberConfigKey>, InitError> {
        let cert = rxd_tls::load_or_generate(
            &self.dir.join("server.crt"),
            &self.dir.join("server.key"),
            &hostname(),
        )
        .map_err(|e| InitError::Invalid(format!("Failed to load the server certificate: {e}")))?;
        let c = Client::https(t.address, t.certificate, Some(&cert))?;
        let post = CertificatesPost {
            name: t.name.to_string(),
            cert_type: "server".into(),
            certificate: pem_body(&cert.cert_pem),
            password: t.secret.to_string(),
            ..Default::default()
        };
        let work = async {
            match c.add_certificate(&post).await {
                Ok(_) => {}
                // Already trusted, for example after an earlier attempt.
                Err(e) if e.status() == Some(409) => {}
                Err(e) => {
                    return Err(InitError::Invalid(format!(
                        "Failed to setup trust relationship with cluster: {e}"
                    )))
                }
            }
            let (cluster, _) = c.cluster().await.map_err(|e| {
                InitError::Invalid(format!("Failed to retrieve cluster information: {e}"))
            })?;
            Ok(cluster.member_config)
        };
        tokio::time::timeout(TRUST_TIMEOUT, work)
            .await
            .map_err(|_| {
                InitError::Invalid(format!(
                    "Failed to setup trust relationship with cluster: timed out talking to {}",
                    t.address
                ))
            })?
    }
}

fn is_yes(s: &str) -> bool {
    matches!(s.to_lowercase().as_str(), "yes" | "y")
}

fn is_no(s: &str) -> bool {
    matches!(s.to_lowercase().as_str(), "no" | "n")
}

/// The answer to "Do you have a join token?": a pasted token, `yes`, or `no`.
fn check_token_answer(answer: &str) -> Result<(), String> {
    if is_yes(answer) || is_no(answer) || JoinToken::decode(answer).is_ok() {
        Ok(())
    } else {
        Err("Not yes/no, or invalid join token".into())
    }
}

/// Asks the join questions after "Are you joining an existing cluster?" was answered yes.
/// `server_address` is the address asked first, with its port. With `dry_run` nothing is sent
/// that changes anything: the trust step and the `Choose …` questions are skipped, and the
/// returned section still holds the token or password for the plan's checks.
pub(crate) async fn ask_join<R: BufRead, W: Write, E: JoinEnv>(
    q: &mut Asker<R, W>,
    env: &E,
    server_address: &str,
    dry_run: bool,
) -> Result<InitClusterPreseed, InitError> {
    let answer = q.checked(
        "Do you have a join token? (yes/no/[token]) [default=no]: ",
        "no",
        check_token_answer,
    )?;
    let token_text = if is_no(&answer) {
        None
    } else if is_yes(&answer) {
        Some(q.checked("Please provide join token: ", "", |v| {
            JoinToken::decode(v)
                .map(|_| ())
                .map_err(|e| format!("Invalid join token: {e}"))
        })?)
    } else {
        Some(answer)
    };
    let mut c = InitClusterPreseed {
        enabled: true,
        server_address: server_address.to_string(),
        ..Default::default()
    };
    let secret = match token_text {
        Some(text) => {
            let token = JoinToken::decode(&text).expect("the answer was checked as a token");
            let (address, pem) = env.resolve_token(&token).await?;
            c.server_name = token.server_name.clone();
            c.cluster_address = with_port(&address, 8443);
            c.cluster_certificate = pem;
            if dry_run {
                c.cluster_token = text.clone();
            }
            text
        }
        None => {
            let host = hostname();
            c.server_name = q.string(
                &format!(
                    "What member name should be used to identify this server in the cluster? [default={host}]: "
                ),
                &host,
            )?;
            let (address, pem) = ask_member(q, env).await?;
            c.cluster_address = address;
            c.cluster_certificate = pem;
            let password = q.password("Cluster trust password: ")?;
            if dry_run {
                c.cluster_password = password.clone();
            }
            password
        }
    };
    if !q.bool(
        "All existing data is lost when joining a cluster, continue? (yes/no) [default=no] ",
        false,
    )? {
        return Err(InitError::Aborted);
    }
    if dry_run {
        writeln!(
            q.output(),
            "Dry run: skipping the trust step with the cluster and the member configuration questions that follow it"
        )?;
        return Ok(c);
    }
    let keys = env
        .trust(&Trust {
            name: &c.server_name,
            address: &c.cluster_address,
            certificate: &c.cluster_certificate,
            secret: &secret,
        })
        .await?;
    for mut key in keys {
        key.value = q.string(&format!("Choose {}: ", key.description), "")?;
        c.member_config.push(key);
    }
    Ok(c)
}

/// Asks for an existing member until one answers, shows its certificate's fingerprint and has
/// the user confirm it. Returns the member's address (with port) and certificate.
async fn ask_member<R: BufRead, W: Write, E: JoinEnv>(
    q: &mut Asker<R, W>,
    env: &E,
) -> Result<(String, String), InitError> {
    loop {
        let answer = q.checked(
            "IP address or FQDN of an existing cluster member (may include port): ",
            "",
            |v| {
                if v.is_empty() {
                    Err("Invalid input, try again.".into())
                } else {
                    Ok(())
                }
            },
        )?;
        let address = with_port(&answer, 8443);
        let pem = match env.certificate(&address).await {
            Ok(pem) => pem,
            Err(e) => {
                writeln!(
                    q.output(),
                    "Error connecting to existing cluster member: {e}"
                )?;
                continue;
            }
        };
        let fp = rxd_tls::fingerprint_pem(&pem).map_err(|e| {
            InitError::Invalid(format!("Invalid certificate from {address:?}: {e}"))
        })?;
        writeln!(q.output(), "Cluster fingerprint: {fp}")?;
        writeln!(
            q.output(),
            "You can validate this fingerprint by running \"lxc info\" locally on an existing cluster member."
        )?;
        let confirm = q.checked(
            "Is this the correct fingerprint? (yes/no/[fingerprint]) [default=no]: ",
            "no",
            |v| {
                if is_yes(v) || is_no(v) || v == fp {
                    Ok(())
                } else {
                    Err("Not yes/no, or invalid fingerprint".into())
                }
            },
        )?;
        if is_no(&confirm) {
            return Err(InitError::Aborted);
        }
        return Ok((address, pem));
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::io::Cursor;

    use super::*;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

    /// A cluster that answers from memory and records the trust steps it was asked for.
    struct FakeCluster {
        cert_pem: String,
        keys: Vec<ClusterMemberConfigKey>,
        trusted: RefCell<Vec<(String, String, String)>>,
        unreachable: Vec<String>,
    }

    impl FakeCluster {
        fn new() -> Self {
            let cert = rxd_tls::generate("cluster").unwrap();
            FakeCluster {
                cert_pem: cert.cert_pem.clone(),
                keys: vec![ClusterMemberConfigKey {
                    entity: "storage-pool".into(),
                    name: "local".into(),
                    key: "source".into(),
                    value: String::new(),
                    description: "\"source\" property for storage pool \"local\"".into(),
                }],
                trusted: RefCell::new(vec![]),
                unreachable: vec![],
            }
        }

        fn fingerprint(&self) -> String {
            rxd_tls::fingerprint_pem(&self.cert_pem).unwrap()
        }

        fn token(&self) -> String {
            JoinToken {
                server_name: "node2".into(),
                fingerprint: self.fingerprint(),
                addresses: vec!["127.0.20.1:8443".into()],
                secret: "ab".repeat(32),
                expires_at: "2099-01-01T00:00:00.000000000Z".into(),
            }
            .encode()
        }
    }

    impl JoinEnv for FakeCluster {
        async fn certificate(&self, address: &str) -> Result<String, InitError> {
            if self.unreachable.iter().any(|a| a == address) {
                return Err(InitError::Invalid(format!("{address} refused")));
            }
            Ok(self.cert_pem.clone())
        }

        async fn resolve_token(&self, token: &JoinToken) -> Result<(String, String), InitError> {
            assert_eq!(token.fingerprint, self.fingerprint());
            Ok((token.addresses[0].clone(), self.cert_pem.clone()))
        }

        async fn trust(&self, t: &Trust<'_>) -> Result<Vec<ClusterMemberConfigKey>, InitError> {
            self.trusted.borrow_mut().push((
                t.name.to_string(),
                t.address.to_string(),
                t.secret.to_string(),
            ));
            Ok(self.keys.clone())
        }
    }

    /// Runs the join questions on `answers` (one per line); returns the result and the output.
    fn run(
        env: &FakeCluster,
        answers: &[&str],
        dry_run: bool,
    ) -> (Result<InitClusterPreseed, InitError>, String) {
        let input = answers.iter().map(|a| format!("{a}\n")).collect::<String>();
        let mut out = Vec::new();
        let result = {
            let mut q = crate::scripted(Cursor::new(input), &mut out);
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(ask_join(&mut q, env, "127.0.20.2:8443", dry_run))
        };
        (result, String::from_utf8(out).unwrap())
    }

    #[test]
    fn a_pasted_token_joins_with_the_token_name_and_spends_it_in_the_trust_step() {
        let env = FakeCluster::new();
        let token = env.token();
        let (c, out) = run(&env, &[&token, "yes", "/srv/local"], false);
        let c = c.unwrap();
        assert_eq!(
            out,
            "Do you have a join token? (yes/no/[token]) [default=no]: \
All existing data is lost when joining a cluster, continue? (yes/no) [default=no] \
Choose \"source\" property for storage pool \"local\": "
        );
        assert_eq!(c.server_name, "node2");
        assert!(c.enabled);
        assert_eq!(c.cluster_address, "127.0.20.1:8443");
        assert_eq!(c.cluster_certificate, env.cert_pem);
        assert_eq!(c.server_address, "127.0.20.2:8443");
        assert_eq!(c.cluster_password, "", "the trust step is already done");
        assert_eq!(c.cluster_token, "");
        assert_eq!(c.member_config.len(), 1);
        assert_eq!(c.member_config[0].value, "/srv/local");
        assert_eq!(
            c.member_config[0].description,
            "\"source\" property for storage pool \"local\""
        );
        assert_eq!(
            *env.trusted.borrow(),
            [("node2".into(), "127.0.20.1:8443".into(), token)]
        );
    }

    #[test]
    fn yes_asks_for_the_token_and_bad_tokens_are_asked_again() {
        let env = FakeCluster::new();
        let token = env.token();
        let (c, out) = run(
            &env,
            &["maybe", "yes", "not-a-token", &token, "y", ""],
            false,
        );
        let c = c.unwrap();
        assert!(out.contains("Not yes/no, or invalid join token\n"), "{out}");
        assert!(out.contains("Please provide join token: "), "{out}");
        assert!(out.contains("Invalid join token: "), "{out}");
        assert_eq!(out.matches("Please provide join token: ").count(), 2);
        assert_eq!(c.member_config[0].value, "", "an empty answer is allowed");
    }

    #[test]
    fn no_to_losing_data_aborts_before_the_trust_step() {
        let env = FakeCluster::new();
        let (c, _) = run(&env, &[&env.token(), "no"], false);
        assert!(matches!(c, Err(InitError::Aborted)));
        assert_eq!(c.unwrap_err().to_string(), "User aborted configuration");
        assert!(env.trusted.borrow().is_empty());
    }

    #[test]
    fn a_password_join_shows_the_fingerprint_and_uses_the_password() {
        let env = FakeCluster::new();
        let (c, out) = run(
            &env,
            &["no", "node3", "127.0.20.1", "yes", "sekret", "yes", ""],
            false,
        );
        let c = c.unwrap();
        let fp = env.fingerprint();
        assert!(out.starts_with(
            "Do you have a join token? (yes/no/[token]) [default=no]: \
What member name should be used to identify this server in the cluster? [default="
        ));
        assert!(out.contains(&format!(
            "IP address or FQDN of an existing cluster member (may include port): \
Cluster fingerprint: {fp}\n\
You can validate this fingerprint by running \"lxc info\" locally on an existing cluster member.\n\
Is this the correct fingerprint? (yes/no/[fingerprint]) [default=no]: \
Cluster trust password: \
All existing data is lost when joining a cluster, continue? (yes/no) [default=no] \
Choose \"source\" property for storage pool \"local\": "
        )));
        assert_eq!(c.server_name, "node3");
        assert_eq!(c.cluster_address, "127.0.20.1:8443");
        assert_eq!(c.cluster_password, "");
        assert_eq!(
            *env.trusted.borrow(),
            [("node3".into(), "127.0.20.1:8443".into(), "sekret".into())]
        );
    }

    #[test]
    fn a_pasted_fingerprint_must_match() {
        let env = FakeCluster::new();
        let fp = env.fingerprint();
        let (c, out) = run(
            &env,
            &["", "", "127.0.20.1:9443", "0123", &fp, "pw", "yes", ""],
            false,
        );
        let c = c.unwrap();
        assert!(
            out.contains("Not yes/no, or invalid fingerprint\n"),
            "{out}"
        );
        assert_eq!(c.server_name, hostname(), "the default member name");
        assert_eq!(c.cluster_address, "127.0.20.1:9443");
    }

    #[test]
    fn no_to_the_fingerprint_aborts() {
        let env = FakeCluster::new();
        let (c, _) = run(&env, &["no", "node3", "127.0.20.1", "no"], false);
        assert_eq!(c.unwrap_err().to_string(), "User aborted configuration");
        assert!(env.trusted.borrow().is_empty());
    }

    #[test]
    fn an_unreachable_member_is_asked_again() {
        let mut env = FakeCluster::new();
        env.unreachable = vec!["127.0.20.9:8443".into()];
        let (c, out) = run(
            &env,
            &["no", "n3", "127.0.20.9", "127.0.20.1", "y", "pw", "y", ""],
            false,
        );
        c.unwrap();
        assert!(
            out.contains("Error connecting to existing cluster member: 127.0.20.9:8443 refused"),
            "{out}"
        );
    }

    #[test]
    fn a_dry_run_keeps_the_secret_and_skips_the_trust_step() {
        let env = FakeCluster::new();
        let token = env.token();
        let (c, out) = run(&env, &["yes", &token, "yes"], true);
        let c = c.unwrap();
        assert!(env.trusted.borrow().is_empty());
        assert!(!out.contains("Choose"), "{out}");
        assert!(out.contains("Dry run: skipping the trust step"), "{out}");
        assert_eq!(c.cluster_token, token);
        assert_eq!(c.server_name, "node2");
        let (c, _) = run(&env, &["no", "n3", "127.0.20.1", "yes", "pw", "yes"], true);
        let c = c.unwrap();
        assert_eq!(c.cluster_password, "pw");
        assert!(env.trusted.borrow().is_empty());
    }

    #[test]
    fn the_certificate_body_is_its_base64_der() {
        assert_eq!(pem_body(CERT), "AAAA");
        let cert = rxd_tls::generate("x").unwrap();
        let rewrapped = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            pem_body(&cert.cert_pem)
        );
        assert_eq!(rxd_tls::pem_to_der(&rewrapped).unwrap(), cert.cert_der());
    }
}
