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
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use rxd_form::planner::Facts;
use rxd_form::trust::{self, AwaitingConfirm, Challenge, Confirm, Hello, Own, Passphrase};
use rxd_form::window::{Phase, Settings, Window, WindowError};
use rxd_form::wire::{
    AdvertBody, Instruction, JoinerState, StepReport, WindowOpened, WindowPost, WindowState,
};

use crate::error::ApiError;

/// How long a joiner may go without asking for its instruction before the executor takes it
/// for gone (its machine died, say).
pub const SILENT_LIMIT: Duration = Duration::from_secs(45);

/// The window, when one is open (or was closed and not yet removed).
pub struct Formation {
    inner: Mutex<Option<Open>>,
    /// The cluster certificate a formation's bootstrap will use, made before the joiners
    /// are told its fingerprint.
    cluster_cert: Mutex<Option<rxd_tls::CertKey>>,
    /// Counts every change of an instruction, a report or the phase, for the joiners and the
    /// executor that wait on them.
    changed: tokio::sync::watch::Sender<u64>,
    /// How the last formation ended, from its journal, for joiners that ask after the window
    /// is gone (the daemon restarted).
    settled: Mutex<Option<Settled>>,
}

/// A formation that ended, as its journal says.
struct Settled {
    id: String,
    /// Certificate fingerprint → name.
    joiners: BTreeMap<String, String>,
    /// What every joiner is told now: done or aborted.
    end: Instruction,
    /// The joiners told so, by fingerprint.
    told: std::collections::BTreeSet<String>,
}

impl Default for Formation {
    fn default() -> Self {
        Formation {
            inner: Mutex::new(None),
            cluster_cert: Mutex::new(None),
            changed: tokio::sync::watch::Sender::new(0),
            settled: Mutex::new(None),
        }
    }
}

struct Open {
    window: Window,
    name: String,
    fingerprint: String,
    /// `core.https_address` before `rxd form` set it.
    listened_before: String,
    /// The initiator's half of each exchange between its hello and its confirmation.
    pending: HashMap<IpAddr, AwaitingConfirm>,
    facts: BTreeMap<String, Facts>,
    /// What each joiner is told to do next, by name (none: wait).
    instructions: BTreeMap<String, Instruction>,
    /// Each joiner's report of the step it was told to take, by name.
    reports: BTreeMap<String, StepReport>,
    /// The DNS-SD advertisement, while the window takes servers.
    advertiser: Option<rxd_form::discovery::Advertiser>,
    /// The operator aborted while the executor ran: it stops at its next step and puts every
    /// server back.
    cancelled: bool,
    /// When each joiner last asked for its instruction (or reported its facts), by name.
    heard: BTreeMap<String, Instant>,
}

impl Open {
    /// Stops advertising once the window no longer takes servers. The goodbye packets are
    /// sent off the caller's thread (it may take a second).
    fn retire(&mut self, now: Instant) {
        if !matches!(self.window.phase(now), Phase::Open | Phase::Collecting) {
            if let Some(advertiser) = self.advertiser.take() {
                std::thread::spawn(move || drop(advertiser));
            }
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(advertiser) = self.advertiser.take() {
            std::thread::spawn(move || drop(advertiser));
        }
    }
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
                    "A formation window is already open ({}, {phase}): abort it first with `rxd form --abort`",
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
        *self.settled.lock().unwrap_or_else(|e| e.into_inner()) = None;
        *slot = Some(Open {
            window,
            name: req.name,
            fingerprint: fingerprint.to_string(),
            listened_before: req.listened_before,
            pending: HashMap::new(),
            facts: BTreeMap::new(),
            instructions: BTreeMap::new(),
            reports: BTreeMap::new(),
            advertiser: None,
            cancelled: false,
            heard: BTreeMap::new(),
        });
        self.bump();
        Ok(opened)
    }

    /// Advertises the open window by DNS-SD on `interface` (the one holding this server's
    /// address), HTTPS on `port`, until it no longer takes servers.
    pub fn advertise(&self, interface: &str, port: u16) -> Result<(), String> {
        let mut slot = self.lock();
        let open = slot.as_mut().ok_or("No formation window is open")?;
        let advert =
            rxd_form::discovery::Advert::new(&open.name, open.window.id(), &open.fingerprint, port)
                .map_err(|e| e.to_string())?;
        let advertiser = rxd_form::discovery::Advertiser::start(&advert, interface)
            .map_err(|e| e.to_string())?;
        open.advertiser = Some(advertiser);
        Ok(())
    }

    /// The window as it is now.
    pub fn state(&self) -> Result<WindowState, ApiError> {
        let now = Instant::now();
        let mut slot = self.lock();
        let open = slot.as_mut().ok_or_else(no_window)?;
        open.retire(now);
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

    /// Aborts the window: its exchange paths close at once and its passphrase is wiped; it is
    /// kept, aborted, so its joiners learn the end. While the executor runs (planning,
    /// preparing, committing) it is asked to stop at its next step, and it aborts the window
    /// once every server is put back. A window already aborted or committed is removed.
    pub fn abort(&self) -> Result<(), ApiError> {
        {
            let mut slot = self.lock();
            let open = slot.as_mut().ok_or_else(no_window)?;
            match open.window.phase(Instant::now()) {
                Phase::Aborted | Phase::Committed => {
                    *slot = None;
                    return Ok(());
                }
                Phase::Planning | Phase::Preparing | Phase::Committing => {
                    open.cancelled = true;
                    drop(slot);
                    self.bump();
                    return Ok(());
                }
                Phase::Open | Phase::Collecting => {}
            }
        }
        self.fail_with(rxd_form::window::AbortReason::Operator);
        Ok(())
    }

    /// For the executor, between steps: `Err` with the reason once the operator aborted.
    pub fn go_on(&self) -> Result<(), String> {
        let cancelled = self.lock().as_ref().is_some_and(|open| open.cancelled);
        if cancelled {
            Err(rxd_form::window::AbortReason::Operator.to_string())
        } else {
            Ok(())
        }
    }

    /// Whether `/internal/form/<id>/<step>` may be reached: the exchange (`hello`, `confirm`,
    /// `facts`) while a window of that id is open (neither aborted nor committed); a joiner's
    /// `instruction` and `report` while the window is kept, so it learns how it ended.
    pub fn admits(&self, id: &str, step: &str) -> bool {
        let now = Instant::now();
        let asks_the_end = matches!(step, "instruction" | "report");
        let mut slot = self.lock();
        let live = slot.as_mut().is_some_and(|open| {
            open.window.id() == id
                && (asks_the_end
                    || !matches!(open.window.phase(now), Phase::Aborted | Phase::Committed))
        });
        drop(slot);
        live || (asks_the_end && self.settled_end(id, None).is_some())
    }

    /// Records how a formation ended (from its journal), for its joiners to ask after the
    /// window is gone.
    pub fn settle(&self, journal: &crate::formation_journal::Journal) {
        use crate::formation_journal::Stage;
        let end = match journal.stage {
            Stage::Committed => Instruction::Done,
            Stage::RolledBack => Instruction::Abort {
                reason: journal.reason.clone(),
            },
            Stage::Open | Stage::Preparing | Stage::Committing => return,
        };
        *self.settled.lock().unwrap_or_else(|e| e.into_inner()) = Some(Settled {
            id: journal.window.clone(),
            joiners: journal.joiners.clone(),
            end,
            told: Default::default(),
        });
        self.bump();
    }

    /// How the settled formation `id` ended, for its joiner with certificate `caller_fp` (any
    /// joiner with `None`); `None` when no such formation ended here.
    fn settled_end(&self, id: &str, caller_fp: Option<&str>) -> Option<Instruction> {
        let end = {
            let mut settled = self.settled.lock().unwrap_or_else(|e| e.into_inner());
            let s = settled.as_mut().filter(|s| s.id == id)?;
            match caller_fp {
                Some(fp) if !s.joiners.contains_key(fp) => return None,
                Some(fp) => {
                    s.told.insert(fp.to_string());
                }
                None => {}
            }
            s.end.clone()
        };
        self.bump();
        Some(end)
    }

    /// Waits, at most `limit`, until every joiner of the settled formation was told how it
    /// ended.
    pub async fn settled_told(&self, limit: Duration) {
        let mut seen = self.watch();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let all = {
                let settled = self.settled.lock().unwrap_or_else(|e| e.into_inner());
                settled
                    .as_ref()
                    .is_none_or(|s| s.joiners.keys().all(|fp| s.told.contains(fp)))
            };
            if all
                || tokio::time::timeout_at(deadline, seen.changed())
                    .await
                    .is_err()
            {
                return;
            }
        }
    }

    /// For the executor's journal: the confirmed joiners (certificate fingerprint → name) and
    /// the address this server listened on before `rxd form`.
    pub fn journal_seed(&self) -> (BTreeMap<String, String>, String) {
        self.lock()
            .as_ref()
            .map(|open| {
                let joiners = open
                    .window
                    .joiners()
                    .iter()
                    .map(|(name, a)| (a.fingerprint.clone(), name.clone()))
                    .collect();
                (joiners, open.listened_before.clone())
            })
            .unwrap_or_default()
    }

    /// The open window's advertisement, when a window takes servers.
    pub fn advert(&self) -> Option<AdvertBody> {
        let now = Instant::now();
        let mut slot = self.lock();
        let open = slot.as_mut()?;
        open.retire(now);
        if !matches!(open.window.phase(now), Phase::Open | Phase::Collecting) {
            return None;
        }
        Some(AdvertBody {
            name: open.name.clone(),
            version: rxd_form::discovery::PROTOCOL_VERSION.to_string(),
            id: open.window.id().to_string(),
            fingerprint: open.fingerprint.get(..16).unwrap_or_default().to_string(),
        })
    }

    /// Stages (or, with `None`, drops) the cluster certificate of the coming bootstrap.
    pub fn stage_cluster_cert(&self, cert: Option<rxd_tls::CertKey>) {
        *self.cluster_cert.lock().unwrap_or_else(|e| e.into_inner()) = cert;
    }

    /// The staged cluster certificate, if any.
    pub fn staged_cluster_cert(&self) -> Option<rxd_tls::CertKey> {
        self.cluster_cert
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Waits, at most `limit`, for the next change of an instruction, a report or the window.
    pub async fn changed(&self, seen: &mut tokio::sync::watch::Receiver<u64>, limit: Duration) {
        let _ = tokio::time::timeout(limit, seen.changed()).await;
    }

    /// How long until the open window expires (which changes its joiners' instruction
    /// without anyone acting); `None` when no window can expire.
    pub fn expires_in(&self) -> Option<Duration> {
        let now = Instant::now();
        let mut slot = self.lock();
        let open = slot.as_mut()?;
        matches!(open.window.phase(now), Phase::Open | Phase::Collecting)
            .then(|| open.window.expires_at().saturating_duration_since(now))
    }

    /// A receiver of the changes, for [`Formation::changed`].
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The name a confirmed joiner's certificate was pinned under; else 403 saying that only
    /// such a server may do `what`.
    fn joiner<'a>(open: &'a Open, caller_fp: &str, what: &str) -> Result<&'a str, ApiError> {
        open.window
            .joiners()
            .iter()
            .find(|(_, a)| a.fingerprint == caller_fp)
            .map(|(name, _)| name.as_str())
            .ok_or_else(|| {
                ApiError::forbidden_with(format!(
                    "Only a server confirmed in the formation window may {what}"
                ))
            })
    }

    /// What the joiner with certificate `caller_fp` is to do now: its instruction until it
    /// reports having taken it, then to wait for the next.
    pub fn instruction(&self, id: &str, caller_fp: &str) -> Result<Instruction, ApiError> {
        let now = Instant::now();
        let mut slot = self.lock();
        let open = match window_of(&mut slot, id) {
            Ok(open) => open,
            Err(e) => return self.settled_end(id, Some(caller_fp)).ok_or(e),
        };
        let phase = open.window.phase(now);
        let name = Self::joiner(open, caller_fp, "take part in it")?.to_string();
        open.heard.insert(name.clone(), now);
        Ok(match open.instructions.get(&name) {
            // Reported: nothing new until the next instruction.
            Some(_) if open.reports.contains_key(&name) => Instruction::Wait,
            Some(i) => i.clone(),
            None if phase == Phase::Aborted => Instruction::Abort {
                reason: open
                    .window
                    .abort_reason()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            },
            None if phase == Phase::Committed => Instruction::Done,
            None => Instruction::Wait,
        })
    }

    /// The joiner with certificate `caller_fp` reports the step it took.
    pub fn report(&self, id: &str, caller_fp: &str, report: StepReport) -> Result<(), ApiError> {
        {
            let mut slot = self.lock();
            let open = match window_of(&mut slot, id) {
                Ok(open) => open,
                // The formation ended while this joiner acted: its report changes nothing.
                Err(e) => return self.settled_end(id, Some(caller_fp)).map(|_| ()).ok_or(e),
            };
            let name = Self::joiner(open, caller_fp, "take part in it")?.to_string();
            let expected = match open.instructions.get(&name) {
                Some(Instruction::Prepare { .. }) => "prepare",
                Some(Instruction::Join { .. }) => "join",
                _ => "",
            };
            if report.step != expected {
                return Err(ApiError::bad_request(format!(
                    "{name:?} was not told to {:?}",
                    report.step
                )));
            }
            open.reports.insert(name, report);
        }
        self.bump();
        Ok(())
    }

    /// For the executor: the window's id and name and the facts of every confirmed joiner
    /// that reported them, with the window moved to Planning.
    pub fn begin_planning(&self) -> Result<(String, String, Vec<Facts>), ApiError> {
        let now = Instant::now();
        let mut slot = self.lock();
        let open = slot.as_mut().ok_or_else(no_window)?;
        let missing: Vec<String> = open
            .window
            .joiners()
            .keys()
            .filter(|n| !open.facts.contains_key(*n))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(ApiError::conflict(format!(
                "Still waiting for the facts of {}",
                missing.join(", ")
            )));
        }
        open.window.plan(now).map_err(refusal)?;
        open.retire(now);
        let out = (
            open.window.id().to_string(),
            open.name.clone(),
            open.facts.values().cloned().collect(),
        );
        drop(slot);
        self.bump();
        Ok(out)
    }

    /// For the executor: moves the window on (`step` is one of the window's transitions).
    pub fn advance(
        &self,
        step: fn(&mut Window, Instant) -> Result<(), WindowError>,
    ) -> Result<(), ApiError> {
        {
            let mut slot = self.lock();
            let open = slot.as_mut().ok_or_else(no_window)?;
            step(&mut open.window, Instant::now()).map_err(refusal)?;
        }
        self.bump();
        Ok(())
    }

    /// For the executor: aborts the window with `reason` and tells every joiner so.
    pub fn fail(&self, reason: &str) {
        self.fail_with(rxd_form::window::AbortReason::Failed(reason.to_string()));
    }

    fn fail_with(&self, reason: rxd_form::window::AbortReason) {
        {
            let mut slot = self.lock();
            let Some(open) = slot.as_mut() else { return };
            let said = reason.to_string();
            let _ = open.window.abort(reason, Instant::now());
            open.retire(Instant::now());
            let names: Vec<String> = open.window.joiners().keys().cloned().collect();
            for name in names {
                open.reports.remove(&name);
                open.instructions.insert(
                    name,
                    Instruction::Abort {
                        reason: said.clone(),
                    },
                );
            }
        }
        self.bump();
    }

    /// For the executor: tells `name` what to do next, and forgets its last report.
    pub fn instruct(&self, name: &str, instruction: Instruction) {
        {
            let mut slot = self.lock();
            let Some(open) = slot.as_mut() else { return };
            open.reports.remove(name);
            open.instructions.insert(name.to_string(), instruction);
        }
        self.bump();
    }

    /// For the executor: the reports received so far, by joiner.
    pub fn reports_now(&self) -> BTreeMap<String, StepReport> {
        self.lock()
            .as_ref()
            .map(|open| open.reports.clone())
            .unwrap_or_default()
    }

    /// For the executor: the reports of `names` once every one of them reported, waiting at
    /// most `limit`; `Err` names those that did not (while `doing` what), those that stopped
    /// asking for instructions for [`SILENT_LIMIT`] (a joiner asks at least every 30 s, also
    /// while it joins), or says the operator aborted.
    pub async fn reports_of(
        &self,
        names: &[String],
        limit: Duration,
        doing: &str,
    ) -> Result<BTreeMap<String, StepReport>, String> {
        let mut seen = self.watch();
        let deadline = tokio::time::Instant::now() + limit;
        let silent =
            |missing: &[String]| format!("No answer from {} while {doing}", missing.join(", "));
        loop {
            let missing: Vec<String> = {
                self.go_on()?;
                let slot = self.lock();
                let Some(open) = slot.as_ref() else {
                    return Err(silent(names));
                };
                let missing: Vec<String> = names
                    .iter()
                    .filter(|n| !open.reports.contains_key(*n))
                    .cloned()
                    .collect();
                let silent: Vec<&str> = missing
                    .iter()
                    .filter(|n| {
                        open.heard
                            .get(*n)
                            .is_some_and(|t| t.elapsed() >= SILENT_LIMIT)
                    })
                    .map(String::as_str)
                    .collect();
                if !silent.is_empty() {
                    return Err(format!(
                        "{} stopped answering while {doing}",
                        silent.join(", ")
                    ));
                }
                if missing.is_empty() {
                    return Ok(names
                        .iter()
                        .map(|n| (n.clone(), open.reports[n].clone()))
                        .collect());
                }
                missing
            };
            // Woken by a change, and every few seconds to look for silent joiners.
            let next = deadline.min(tokio::time::Instant::now() + Duration::from_secs(2));
            if tokio::time::timeout_at(next, seen.changed()).await.is_err()
                && tokio::time::Instant::now() >= deadline
            {
                return Err(silent(&missing));
            }
        }
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
        let name = Self::joiner(open, caller_fp, "report its facts")?.to_string();
        if facts.name != name {
            return Err(ApiError::bad_request(format!(
                "The facts are of {:?}, but this certificate was confirmed as {name:?}",
                facts.name
            )));
        }
        facts.fingerprint = caller_fp.to_string();
        facts.received_ms = chrono::Utc::now().timestamp_millis();
        open.heard.insert(name.clone(), Instant::now());
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
            ..Default::default()
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
        assert!(f.admits(&id, "hello") && !f.admits("0123456789abcdef", "hello"));
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
        assert!(!f.admits(&id, "hello"));
        assert!(
            f.admits(&id, "instruction"),
            "kept for its joiners to learn the end"
        );
        assert_eq!(f.state().unwrap().phase, "Aborted");
        assert!(matches!(
            f.instruction(&id, JOINER).unwrap(),
            Instruction::Abort { .. }
        ));
        f.abort().unwrap();
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
        assert!(!f.admits(&id, "hello"));
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

    #[tokio::test]
    async fn a_settled_formation_tells_its_joiners_how_it_ended_and_no_one_else() {
        let f = Formation::default();
        let journal = crate::formation_journal::Journal {
            window: "w1".into(),
            stage: crate::formation_journal::Stage::RolledBack,
            joiners: BTreeMap::from([(JOINER.to_string(), "node2".to_string())]),
            new_cluster: true,
            node_id: 1,
            listened_before: String::new(),
            cluster_address_before: String::new(),
            made: Default::default(),
            reason: "the initiator stopped during the formation".into(),
        };
        f.settle(&journal);
        assert!(f.admits("w1", "instruction"));
        assert!(f.admits("w1", "report"));
        assert!(!f.admits("w1", "hello"));
        assert!(!f.admits("w2", "instruction"));
        assert_eq!(
            f.instruction("w1", OTHER).unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        // Not told yet: the wait runs out.
        f.settled_told(Duration::from_millis(10)).await;
        assert_eq!(
            f.instruction("w1", JOINER).unwrap(),
            Instruction::Abort {
                reason: "the initiator stopped during the formation".into()
            }
        );
        tokio::time::timeout(
            Duration::from_secs(5),
            f.settled_told(Duration::from_secs(60)),
        )
        .await
        .expect("every joiner was told");
        // A new window forgets it.
        f.open(
            WindowPost {
                name: "node1".into(),
                ..Default::default()
            },
            SERVED,
        )
        .unwrap();
        assert!(!f.admits("w1", "instruction"));
    }
}
