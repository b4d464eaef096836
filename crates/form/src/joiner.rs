//! The joiner's side of the trust exchange over HTTPS, and its report of facts:
//!
//! ```text
//! joiner (its server.crt as client certificate)            initiator's window <id>
//!   TLS, any server certificate, recorded ──GET /──────────> (the certificate it serves)
//!   Hello (view: the recorded fingerprint) ──POST hello───> Challenge
//!   checks the initiator's MAC            ──POST confirm─> checks the joiner's MAC, pins it
//!   pinned to the recorded certificate    ──POST facts───> only from the pinned certificate
//! ```
//!
//! Each side puts in its transcript the certificate its own TLS connection showed, so a relay
//! (TLS ended and made again in between) fails confirmation on both sides and nothing is
//! trusted. A joiner whose check of the initiator fails still sends a (wrong) confirmation, so
//! the window counts the failure at once instead of after its exchange timeout.

use std::net::IpAddr;
use std::time::Duration;

use rxd_client::{Client, ClientError};
use rxd_tls::CertKey;

use crate::planner::Facts;
use crate::trust::{Challenge, Confirm, Joiner, Passphrase, TrustError, Trusted, View};
use crate::wire;

/// How long one request of the exchange may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The window a joiner addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The initiator's HTTPS address (`host:port`).
    pub address: String,
    /// The window id.
    pub window_id: String,
    /// The initiator's name.
    pub initiator_name: String,
}

/// The joiner: its name and the certificate it presents (its `server.crt`), and the local
/// address its connections come from, when one is chosen.
pub struct Me<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its certificate.
    pub cert: &'a CertKey,
    /// The local address to connect from.
    pub source: Option<IpAddr>,
}

/// Why the exchange or the report failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The exchange itself failed on this side (the passphrases differ, or a relay).
    #[error("{0}")]
    Trust(#[from] TrustError),
    /// The initiator refused (its sentence).
    #[error("The initiator refused: {message}")]
    Refused {
        /// Its HTTP status.
        status: u16,
        /// Its sentence.
        message: String,
    },
    /// The initiator could not be reached or answered nonsense.
    #[error("{0}")]
    Client(ClientError),
    /// The initiator served another certificate during the exchange.
    #[error("The initiator's certificate changed during the exchange, from {first} to {then}")]
    CertificateChanged {
        /// The one the exchange began with.
        first: String,
        /// The one served later.
        then: String,
    },
}

impl From<ClientError> for ExchangeError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Api { status, message } => ExchangeError::Refused { status, message },
            other => ExchangeError::Client(other),
        }
    }
}

impl ExchangeError {
    /// The initiator's HTTP status, when it refused.
    pub fn status(&self) -> Option<u16> {
        match self {
            ExchangeError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Runs the trust exchange with `target`'s window: the initiator, authenticated.
pub async fn exchange(
    target: &Target,
    me: &Me<'_>,
    passphrase: &Passphrase,
) -> Result<Trusted, ExchangeError> {
    let (config, captured) = rxd_tls::capture_client_config(Some(me.cert))
        .map_err(|e| ExchangeError::Client(tls_error(&target.address, e)))?;
    let client = Client::https_with_config_from(&target.address, config, me.source)?
        .with_timeout(REQUEST_TIMEOUT);
    // Any public answer shows the certificate; the exchange then runs on that connection.
    client.request("GET", "/", None, None).await?;
    let seen = captured.fingerprint().ok_or_else(|| {
        ExchangeError::Client(ClientError::Transport {
            endpoint: target.address.clone(),
            method: "GET".into(),
            path: "/".into(),
            cause: "no server certificate was shown".into(),
        })
    })?;
    let view = View::new(
        &target.window_id,
        me.name,
        &target.initiator_name,
        &me.cert.fingerprint(),
        &seen,
    )?;
    let (joiner, hello) = Joiner::start(passphrase, view);
    let challenge: Challenge = post(&client, &wire::hello_path(&target.window_id), &hello)
        .await?
        .metadata()?;
    let now = captured.fingerprint().unwrap_or_default();
    if now != seen {
        return Err(ExchangeError::CertificateChanged {
            first: seen,
            then: now,
        });
    }
    let confirm_path = wire::confirm_path(&target.window_id);
    match joiner.finish(&challenge) {
        Ok((confirm, trusted)) => {
            post(&client, &confirm_path, &confirm).await?;
            Ok(trusted)
        }
        Err(e) => {
            // Tell the window at once, so it counts the failure now; its answer may add that
            // this failure closed it.
            let wrong = Confirm {
                confirm: String::new(),
            };
            match post(&client, &confirm_path, &wrong).await {
                Err(ClientError::Api { status, message }) => {
                    Err(ExchangeError::Refused { status, message })
                }
                _ => Err(e.into()),
            }
        }
    }
}

/// Reports `facts` to the window of an initiator this joiner trusts, pinned to its
/// certificate.
pub async fn report_facts(
    target: &Target,
    me: &Me<'_>,
    initiator: &Trusted,
    facts: &Facts,
) -> Result<(), ExchangeError> {
    let client = pinned_client(target, me, initiator)?;
    post(&client, &wire::facts_path(&target.window_id), facts).await?;
    Ok(())
}

/// A client of the initiator pinned to the certificate confirmed in the exchange, presenting
/// this joiner's.
pub fn pinned_client(
    target: &Target,
    me: &Me<'_>,
    initiator: &Trusted,
) -> Result<Client, ExchangeError> {
    pinned_to(
        target,
        me,
        std::slice::from_ref(&initiator.peer_fingerprint),
    )
}

/// A client of the initiator accepting any of `fingerprints` (the one confirmed, and the
/// cluster certificate it announced over a connection pinned to it), presenting this
/// joiner's certificate.
pub fn pinned_to(
    target: &Target,
    me: &Me<'_>,
    fingerprints: &[String],
) -> Result<Client, ExchangeError> {
    let config = rxd_tls::fingerprints_pinned_client_config(fingerprints, Some(me.cert))
        .map_err(|e| ExchangeError::Client(tls_error(&target.address, e)))?;
    Ok(
        Client::https_with_config_from(&target.address, config, me.source)?
            .with_timeout(REQUEST_TIMEOUT + Duration::from_secs(INSTRUCTION_WAIT)),
    )
}

/// How long the initiator holds a request for the next instruction while there is none.
pub const INSTRUCTION_WAIT: u64 = 25;

/// The initiator's next instruction for this joiner (held while it is to wait).
pub async fn next_instruction(
    client: &Client,
    window_id: &str,
) -> Result<wire::Instruction, ExchangeError> {
    let path = format!(
        "{}?wait={INSTRUCTION_WAIT}",
        wire::instruction_path(window_id)
    );
    Ok(client.get(&path).await?)
}

/// Reports the outcome of the step this joiner was told to take.
pub async fn report(
    client: &Client,
    window_id: &str,
    report: &wire::StepReport,
) -> Result<(), ExchangeError> {
    post(client, &wire::report_path(window_id), report).await?;
    Ok(())
}

/// The window open on the initiator at `address` (`host:port`), read over HTTPS before any
/// trust (nothing in it is secret; the exchange then checks the certificate).
pub async fn advert(address: &str) -> Result<wire::AdvertBody, ExchangeError> {
    let (config, _) = rxd_tls::capture_client_config(None)
        .map_err(|e| ExchangeError::Client(tls_error(address, e)))?;
    let client =
        Client::https_with_config_from(address, config, None)?.with_timeout(REQUEST_TIMEOUT);
    Ok(client.get(wire::ADVERT_PATH).await?)
}

/// The exchange, then the report: the initiator, trusted and told this server's facts.
pub async fn join_window(
    target: &Target,
    me: &Me<'_>,
    passphrase: &Passphrase,
    facts: &Facts,
) -> Result<Trusted, ExchangeError> {
    let initiator = exchange(target, me, passphrase).await?;
    report_facts(target, me, &initiator, facts).await?;
    Ok(initiator)
}

async fn post<T: serde::Serialize>(
    client: &Client,
    path: &str,
    body: &T,
) -> Result<rxd_client::RawResponse, ClientError> {
    let body = serde_json::to_value(body).expect("the exchange's messages always serialise");
    client.request("POST", path, Some(body), None).await
}

fn tls_error(endpoint: &str, e: rxd_tls::TlsError) -> ClientError {
    ClientError::Tls {
        endpoint: endpoint.to_string(),
        cause: Box::new(e),
    }
}
