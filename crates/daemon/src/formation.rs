//! This server's formation window (issue 12): at most one at a time, opened, shown and aborted
//! by root on the unix socket, reached by joiners on HTTPS at `/internal/form/<id>/…` only.
//! The phases, expiry, failure limit and per-source rate limits are `rxd_form::window`'s; the
//! trust exchange is `rxd_form::trust`'s, fed with the certificate each request's TLS
//! connection showed. Between a joiner's hello and its confirmation the initiator's half of
//! the exchange waits here, by source address; a confirmed joiner's certificate is pinned in
//! the window and only that certificate may then report its facts.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use axum::http::StatusCode;
use rxd_form::planner::Facts;
use rxd_form::trust::{self, AwaitingConfirm, Challenge, Confirm, Hello, Own, Passphrase};
use rxd_form::window::{Phase, Settings, Window, WindowError};
use rxd_form::wire::{JoinerState, WindowOpened, WindowPost, WindowState};

use crate::error::ApiError;

/// The window, when one is open (or was closed and not yet removed).
#[derive(Default)]
pub struct Formation {
    inner: Mutex<Option<Open>>,
}

struct Open {
    window: Window,
    name: String,
    fingerprint: String,
    /// The initiator's half of each exchange between its hello and its confirmation.
    pending: HashMap<IpAddr, AwaitingConfirm>,
    facts: BTreeMap<String, Facts>,
}

impl Formation {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Open>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a window for this server, serving `fingerprint`; refused while another one is
    /// still taking servers.
    pub fn open(&self, mut req: WindowPost, fingerprint: &str) -> Result<WindowOpened, ApiError> {
        let given = std::mem::take(&mut req.passphrase);
        let generated = given.trim().is_empty();
        let passphrase = if generated {
            Passphrase::generate()
        } else {
            Passphrase::from_preseed(&given).map_err(|e| ApiError::bad_request(e.to_string()))?
        };
        rxd_api::names::check("cluster member", &req.name).map_err(ApiError::bad_request)?;
        let expiry = if req.window.is_empty() {
            rxd_form::window::DEFAULT_EXPIRY
        } else {
            rxd_form::preseed::parse_duration(&req.window).map_err(ApiError::bad_request)?
        };
        let shown = generated.then(|| passphrase.reveal().to_string());
        let now = Instant::now();
        let mut slot = self.lock();
        if let Some(open) = slot.as_mut() {
            let phase = open.window.phase(now);
            if phase != Phase::Aborted && phase != Phase::Committed {
                return Err(ApiError::conflict(format!(
                    "A formation window is already open ({}, {phase}): abort it first",
                    open.window.id()
                )));
            }
        }
        let settings = Settings {
            expiry,
            ..Settings::default()
        };
        let window = Window::open(passphrase, settings, now)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let opened = WindowOpened {
            id: window.id().to_string(),
            fingerprint: fingerprint.to_string(),
            passphrase: shown,
            expires_in: expiry.as_secs(),
        };
        *slot = Some(Open {
            window,
            name: req.name,
            fingerprint: fingerprint.to_string(),
            pending: HashMap::new(),
            facts: BTreeMap::new(),
        });
        Ok(opened)
    }

    /// The window as it is now.
    pub fn state(&self) -> Result<WindowState, ApiError> {
        let now = Instant::now();
        let mut slot = self.lock();
        let open = slot.as_mut().ok_or_else(no_window)?;
        let phase = open.window.phase(now);
        let closed = matches!(phase, Phase::Aborted | Phase::Committed);
        Ok(WindowState {
            id: open.window.id().to_string(),
            name: open.name.clone(),
            fingerprint: open.fingerprint.clone(),
            phase: phase.to_string(),
            expires_in: if closed {
                0
            } else {
                open.window
                    .expires_at()
                    .saturating_duration_since(now)
                    .as_secs()
            },
            abort_reason: open.window.abort_reason().map(ToString::to_string),
            joiners: open
                .window
                .joiners()
                .iter()
                .map(|(name, admitted)| JoinerState {
                    name: name.clone(),
                    fingerprint: admitted.fingerprint.clone(),
                    address: admitted.source.to_string(),
                    facts: open.facts.get(name).cloned(),
                })
                .collect(),
        })
    }

    /// Aborts and removes the window: its paths are closed at once.
    pub fn abort(&self) -> Result<(), ApiError> {
        let mut slot = self.lock();
        let mut open = slot.take().ok_or_else(no_window)?;
        // Removing it drops the passphrase (wiped); the abort records why for nobody else.
        let _ = open
            .window
            .abort(rxd_form::window::AbortReason::Operator, Instant::now());
        Ok(())
    }

    /// Whether `/internal/form/<id>/…` may be reached: a window of that id is open (neither
    /// aborted nor committed).
    pub fn admits(&self, id: &str) -> bool {
        let now = Instant::now();
        let mut slot = self.lock();
        slot.as_mut().is_some_and(|open| {
            open.window.id() == id
                && !matches!(open.window.phase(now), Phase::Aborted | Phase::Committed)
        })
    }

    /// A joiner's hello from `source`, whose TLS connection showed `joiner_fp`.
    pub fn hello(
        &self,
        id: &str,
        source: IpAddr,
        joiner_fp: &str,
        hello: &Hello,
    ) -> Result<Challenge, ApiError> {
        let now = Instant::now();
        let mut slot = self.lock();
        let open = window_of(&mut slot, id)?;
        if hello.joiner_name == open.name {
            return Err(ApiError::conflict(format!(
                "{:?} is the name of the initiator: each server needs a name of its own",
                open.name
            )));
        }
        let own = Own::new(open.window.id(), &open.name, &open.fingerprint)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let passphrase = open.window.begin_exchange(source, now).map_err(refusal)?;
        match trust::respond(passphrase, &own, joiner_fp, hello) {
            Ok((waiting, challenge)) => {
                open.pending.insert(source, waiting);
                Ok(challenge)
            }
            Err(e) => {
                let closed = open.window.exchange_failed(source, now);
                Err(failed(e.to_string(), closed))
            }
        }
    }

    /// A joiner's confirmation from `source`: on success its certificate is pinned.
    pub fn confirm(&self, id: &str, source: IpAddr, confirm: &Confirm) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut slot = self.lock();
        let open = window_of(&mut slot, id)?;
        let Some(waiting) = open.pending.remove(&source) else {
            return Err(ApiError::bad_request(format!(
                "No trust exchange from {source} is waiting for a confirmation"
            )));
        };
        match waiting.finish(confirm) {
            Ok(trusted) => {
                open.window
                    .exchange_succeeded(source, &trusted.peer_name, &trusted.peer_fingerprint, now)
                    .map_err(refusal)?;
                tracing::info!(
                    "Formation window {id}: {} ({source}) confirmed with certificate {}",
                    trusted.peer_name,
                    trusted.peer_fingerprint
                );
                Ok(())
            }
            Err(e) => {
                let closed = open.window.exchange_failed(source, now);
                tracing::warn!("Formation window {id}: the exchange from {source} failed: {e}");
                Err(failed(e.to_string(), closed))
            }
        }
    }

    /// A confirmed joiner's facts, from the certificate pinned at its confirmation.
    pub fn facts(&self, id: &str, caller_fp: &str, mut facts: Facts) -> Result<(), ApiError> {
        let mut slot = self.lock();
        let open = window_of(&mut slot, id)?;
        let Some((name, _)) = open
            .window
            .joiners()
            .iter()
            .find(|(_, a)| a.fingerprint == caller_fp)
        else {
            return Err(ApiError::forbidden_with(
                "Only a server confirmed in the formation window may report its facts",
            ));
        };
        let name = name.clone();
        if facts.name != name {
            return Err(ApiError::bad_request(format!(
                "The facts are of {:?}, but this certificate was confirmed as {name:?}",
                facts.name
            )));
        }
        facts.fingerprint = caller_fp.to_string();
        facts.received_ms = chrono::Utc::now().timestamp_millis();
        open.facts.insert(name, facts);
        Ok(())
    }
}

fn no_window() -> ApiError {
    ApiError::not_found("No formation window is open")
}

fn window_of<'a>(slot: &'a mut Option<Open>, id: &str) -> Result<&'a mut Open, ApiError> {
    match slot.as_mut() {
        Some(open) if open.window.id() == id => Ok(open),
        _ => Err(no_window()),
    }
}

/// A window's refusal of a step, with its status.
fn refusal(e: WindowError) -> ApiError {
    let status = match &e {
        WindowError::Busy(_) | WindowError::Penalised { .. } => StatusCode::TOO_MANY_REQUESTS,
        WindowError::Aborted(_) => StatusCode::FORBIDDEN,
        WindowError::DuplicateName(_) | WindowError::NotCollecting { .. } => StatusCode::CONFLICT,
        WindowError::NoExchange(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e.to_string())
}

/// A failed exchange: its reason, and the window's closing when this failure closed it.
fn failed(reason: String, closed: Result<(), WindowError>) -> ApiError {
    match closed {
        Ok(()) => ApiError::forbidden_with(reason),
        Err(e) => ApiError::forbidden_with(format!("{reason}. {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rxd_form::trust::{Joiner, View};

    const PASS: &str = "correct horse battery staple";
    const SERVED: &str = "2222222222222222222222222222222222222222222222222222222222222222";
    const JOINER: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const OTHER: &str = "3333333333333333333333333333333333333333333333333333333333333333";

    fn opened() -> (Formation, String) {
        let f = Formation::default();
        let req = WindowPost {
            name: "node1".into(),
            passphrase: PASS.into(),
            window: "5m".into(),
        };
        let id = f.open(req, SERVED).unwrap().id;
        (f, id)
    }

    fn facts(name: &str) -> Facts {
        Facts {
            name: name.into(),
            fingerprint: String::new(),
            version: "1".into(),
            api_extensions: vec![],
            local_data: Default::default(),
            clock_ms: 1,
            received_ms: 0,
            interfaces: vec![],
            disks: vec![],
            reaches: vec![],
        }
    }

    /// One exchange from `source` as node2, which saw `served` and typed `pass`.
    fn exchange(
        f: &Formation,
        id: &str,
        source: IpAddr,
        pass: &str,
        served: &str,
    ) -> Result<(), ApiError> {
        let view = View::new(id, "node2", "node1", JOINER, served).unwrap();
        let (joiner, hello) = Joiner::start(&Passphrase::entered(pass).unwrap(), view);
        let challenge = f.hello(id, source, JOINER, &hello)?;
        let confirm = match joiner.finish(&challenge) {
            Ok((confirm, _)) => confirm,
            Err(_) => Confirm {
                confirm: String::new(),
            },
        };
        f.confirm(id, source, &confirm)
    }

    #[test]
    fn a_confirmed_joiner_is_pinned_and_only_it_reports_facts() {
        let (f, id) = opened();
        let ip: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(f.admits(&id) && !f.admits("0123456789abcdef"));
        let view = View::new(&id, "node1", "node1", JOINER, SERVED).unwrap();
        let (_, hello) = Joiner::start(&Passphrase::entered(PASS).unwrap(), view);
        let e = f.hello(&id, ip, JOINER, &hello).unwrap_err();
        assert_eq!(e.status, StatusCode::CONFLICT, "the initiator's own name");
        exchange(&f, &id, ip, PASS, SERVED).unwrap();
        let e = f.facts(&id, OTHER, facts("node2")).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        let e = f.facts(&id, JOINER, facts("node3")).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        f.facts(&id, JOINER, facts("node2")).unwrap();
        let s = f.state().unwrap();
        assert_eq!(s.phase, "Collecting");
        assert_eq!(s.joiners[0].fingerprint, JOINER);
        assert_eq!(s.joiners[0].facts.as_ref().unwrap().fingerprint, JOINER);
        // One window at a time.
        let again = f.open(
            WindowPost {
                name: "node1".into(),
                ..Default::default()
            },
            SERVED,
        );
        assert_eq!(again.unwrap_err().status, StatusCode::CONFLICT);
        f.abort().unwrap();
        assert!(!f.admits(&id));
        assert_eq!(f.state().unwrap_err().status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn failures_are_refused_counted_and_close_the_window() {
        let (f, id) = opened();
        let ip: IpAddr = "192.0.2.2".parse().unwrap();
        let e = exchange(&f, &id, ip, "another passphrase", SERVED).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN, "{}", e.message);
        let e = exchange(&f, &id, ip, PASS, SERVED).unwrap_err();
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS, "{}", e.message);
        // A relay: the joiner saw another certificate than the one served.
        let relayed: IpAddr = "192.0.2.3".parse().unwrap();
        let e = exchange(&f, &id, relayed, PASS, OTHER).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        for last in 4..12 {
            let ip = IpAddr::from([192, 0, 2, last]);
            let e = exchange(&f, &id, ip, "another passphrase", SERVED).unwrap_err();
            if last == 11 {
                assert!(
                    e.message.contains("10 trust exchanges failed"),
                    "{}",
                    e.message
                );
            }
        }
        let s = f.state().unwrap();
        assert_eq!(s.phase, "Aborted");
        assert!(s.joiners.is_empty());
        assert!(!f.admits(&id));
        // A generated passphrase is answered once.
        f.abort().unwrap();
        let opened = f
            .open(
                WindowPost {
                    name: "node1".into(),
                    ..Default::default()
                },
                SERVED,
            )
            .unwrap();
        assert_eq!(opened.passphrase.unwrap().split(' ').count(), 4);
        // A short one is refused with a sentence.
        f.abort().unwrap();
        let short = WindowPost {
            name: "node1".into(),
            passphrase: "short".into(),
            ..Default::default()
        };
        assert_eq!(
            f.open(short, SERVED).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
}
