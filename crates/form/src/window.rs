//! A formation window on the initiator: its phases, its expiry, its failure limit and its
//! per-source rate limits. Pure: every call takes the time (`now`), nothing reads a clock.
//!
//! ```text
//!  Open ──first joiner trusted──> Collecting ──plan──> Planning ──prepare──> Preparing
//!                                     ^                  │                     │ commit
//!                                     └─────reopen───────┘                     v
//!                                                                         Committing ──committed──> Committed
//!  any phase but Committed: abort (operator, expiry, 10 failures, a failed step) ──> Aborted
//! ```
//!
//! Trust exchanges run only while Open or Collecting, one at a time per source address; each
//! failed one counts, makes its source wait [`Settings::penalty`], and the
//! [`Settings::max_failures`]th closes the window naming the sources. The window expires
//! after [`Settings::expiry`] (30 min by default, [`MAX_EXPIRY`] at most) unless it is already
//! preparing. It holds the passphrase and wipes it when no more exchanges can happen:
//! from Preparing on, and when aborted.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::trust::Passphrase;

/// How long a window stays open unless told otherwise.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(30 * 60);
/// The longest a window may stay open.
pub const MAX_EXPIRY: Duration = Duration::from_secs(60 * 60);

/// A new random window id: 16 hexadecimal characters.
pub fn new_window_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 8];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Whether `id` has the form of a window id (16 lower-case hexadecimal characters).
pub fn is_window_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A window's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How long it stays open (at most [`MAX_EXPIRY`]).
    pub expiry: Duration,
    /// Failed exchanges that close it.
    pub max_failures: usize,
    /// How long a source waits after each of its failures.
    pub penalty: Duration,
    /// An exchange not finished within this counts as failed.
    pub exchange_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            expiry: DEFAULT_EXPIRY,
            max_failures: 10,
            penalty: Duration::from_secs(1),
            exchange_timeout: Duration::from_secs(30),
        }
    }
}

/// Where a window is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Advertised, no joiner trusted yet.
    Open,
    /// At least one joiner trusted; more may come.
    Collecting,
    /// The operator chose; the plan is being made and shown.
    Planning,
    /// Every member runs the join checks and prepares.
    Preparing,
    /// The new members are added; provisional until `FormationCommitted` is applied.
    Committing,
    /// Done.
    Committed,
    /// Stopped; every server is as it was.
    Aborted,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// Why a window was aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbortReason {
    /// Its time ran out.
    Expired,
    /// Too many failed exchanges, from these sources (with their counts).
    TooManyFailures(Vec<(IpAddr, usize)>),
    /// The operator stopped it.
    Operator,
    /// A step failed (its sentence).
    Failed(String),
}

impl std::fmt::Display for AbortReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AbortReason::Expired => f.write_str("the formation window expired"),
            AbortReason::TooManyFailures(sources) => {
                let total: usize = sources.iter().map(|(_, n)| n).sum();
                let named: Vec<String> = sources
                    .iter()
                    .map(|(ip, n)| format!("{ip} ({n})"))
                    .collect();
                write!(
                    f,
                    "{total} trust exchanges failed, from {}",
                    named.join(", ")
                )
            }
            AbortReason::Operator => f.write_str("the operator aborted the formation"),
            AbortReason::Failed(why) => f.write_str(why),
        }
    }
}

/// A refused call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// The asked expiry is over the maximum.
    #[error("The formation window can stay open at most {} minutes, not {} seconds", MAX_EXPIRY.as_secs() / 60, .0.as_secs())]
    ExpiryTooLong(Duration),
    /// A zero expiry.
    #[error("The formation window must stay open for some time")]
    ExpiryZero,
    /// The step does not follow from the current phase.
    #[error("Cannot go from {from} to {to} in the formation window")]
    Transition {
        /// Where the window is.
        from: Phase,
        /// Where it was asked to go.
        to: Phase,
    },
    /// Exchanges are over.
    #[error("The formation window takes no more servers (it is {phase})")]
    NotCollecting {
        /// Where the window is.
        phase: Phase,
    },
    /// The window was aborted.
    #[error("The formation window is closed: {0}")]
    Aborted(AbortReason),
    /// One exchange at a time per source.
    #[error("An exchange from {0} is already in progress")]
    Busy(IpAddr),
    /// The source failed recently.
    #[error("Too soon after a failed exchange from {address}: try again in {} ms", .wait.as_millis())]
    Penalised {
        /// The source address.
        address: IpAddr,
        /// How long it must still wait.
        wait: Duration,
    },
    /// Finishing an exchange that was never begun.
    #[error("No exchange from {0} is in progress")]
    NoExchange(IpAddr),
    /// A second server with a name already taken.
    #[error("A server named {0:?} has already joined the formation window")]
    DuplicateName(String),
}

/// A joiner the window trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// Its certificate fingerprint.
    pub fingerprint: String,
    /// The address its exchange came from.
    pub source: IpAddr,
}

/// One formation window.
#[derive(Debug)]
pub struct Window {
    id: String,
    phase: Phase,
    settings: Settings,
    expires_at: Instant,
    passphrase: Option<Passphrase>,
    in_flight: BTreeMap<IpAddr, Instant>,
    not_before: BTreeMap<IpAddr, Instant>,
    failures: Vec<IpAddr>,
    joiners: BTreeMap<String, Admitted>,
    abort: Option<AbortReason>,
}

impl Window {
    /// Opens a window with a new id, holding `passphrase` until it closes.
    pub fn open(
        passphrase: Passphrase,
        settings: Settings,
        now: Instant,
    ) -> Result<Window, WindowError> {
        if settings.expiry > MAX_EXPIRY {
            return Err(WindowError::ExpiryTooLong(settings.expiry));
        }
        if settings.expiry.is_zero() {
            return Err(WindowError::ExpiryZero);
        }
        Ok(Window {
            id: new_window_id(),
            phase: Phase::Open,
            settings,
            expires_at: now + settings.expiry,
            passphrase: Some(passphrase),
            in_flight: BTreeMap::new(),
            not_before: BTreeMap::new(),
            failures: Vec::new(),
            joiners: BTreeMap::new(),
            abort: None,
        })
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its phase at `now` (an expired window is aborted first).
    pub fn phase(&mut self, now: Instant) -> Phase {
        self.tick(now);
        self.phase
    }

    /// When it expires.
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// Why it was aborted, once it is.
    pub fn abort_reason(&self) -> Option<&AbortReason> {
        self.abort.as_ref()
    }

    /// Whether it still holds the passphrase.
    pub fn holds_passphrase(&self) -> bool {
        self.passphrase.is_some()
    }

    /// The joiners trusted so far, by name.
    pub fn joiners(&self) -> &BTreeMap<String, Admitted> {
        &self.joiners
    }

    /// Applies expiry and exchange timeouts at `now`.
    pub fn tick(&mut self, now: Instant) {
        if self.phase <= Phase::Planning && now >= self.expires_at {
            self.close(AbortReason::Expired);
            return;
        }
        let stale: Vec<IpAddr> = self
            .in_flight
            .iter()
            .filter(|(_, began)| now.duration_since(**began) >= self.settings.exchange_timeout)
            .map(|(ip, _)| *ip)
            .collect();
        for source in stale {
            // Its own error (the window closing) is what every later call reports.
            let _ = self.exchange_failed(source, now);
        }
    }

    /// Lets an exchange from `source` begin: the passphrase to run it with, or why not.
    pub fn begin_exchange(
        &mut self,
        source: IpAddr,
        now: Instant,
    ) -> Result<&Passphrase, WindowError> {
        self.tick(now);
        self.accepting()?;
        if self.in_flight.contains_key(&source) {
            return Err(WindowError::Busy(source));
        }
        if let Some(until) = self.not_before.get(&source) {
            if now < *until {
                return Err(WindowError::Penalised {
                    address: source,
                    wait: *until - now,
                });
            }
        }
        self.in_flight.insert(source, now);
        Ok(self
            .passphrase
            .as_ref()
            .expect("an accepting window holds its passphrase"))
    }

    /// Records a failed exchange from `source`; the error when it closed the window.
    pub fn exchange_failed(&mut self, source: IpAddr, now: Instant) -> Result<(), WindowError> {
        if self.in_flight.remove(&source).is_none() {
            return Err(WindowError::NoExchange(source));
        }
        self.failures.push(source);
        self.not_before.insert(source, now + self.settings.penalty);
        if self.failures.len() >= self.settings.max_failures {
            let mut counts: BTreeMap<IpAddr, usize> = BTreeMap::new();
            for ip in &self.failures {
                *counts.entry(*ip).or_default() += 1;
            }
            let reason = AbortReason::TooManyFailures(counts.into_iter().collect());
            self.close(reason.clone());
            return Err(WindowError::Aborted(reason));
        }
        Ok(())
    }

    /// Records a successful exchange: the joiner `name` is trusted. A name already taken is
    /// refused (and the exchange ends without counting as a failure: both passphrases were
    /// right).
    pub fn exchange_succeeded(
        &mut self,
        source: IpAddr,
        name: &str,
        fingerprint: &str,
        now: Instant,
    ) -> Result<(), WindowError> {
        self.tick(now);
        self.accepting()?;
        if self.in_flight.remove(&source).is_none() {
            return Err(WindowError::NoExchange(source));
        }
        if self.joiners.contains_key(name) {
            return Err(WindowError::DuplicateName(name.to_string()));
        }
        self.joiners.insert(
            name.to_string(),
            Admitted {
                fingerprint: fingerprint.to_string(),
                source,
            },
        );
        self.phase = Phase::Collecting;
        Ok(())
    }

    /// Collecting → Planning: the operator chose the servers.
    pub fn plan(&mut self, now: Instant) -> Result<(), WindowError> {
        self.step(now, &[Phase::Collecting], Phase::Planning)?;
        // Exchanges still running cannot finish any more.
        self.in_flight.clear();
        Ok(())
    }

    /// Planning → Collecting: wait for more servers.
    pub fn reopen(&mut self, now: Instant) -> Result<(), WindowError> {
        self.step(now, &[Phase::Planning], Phase::Collecting)
    }

    /// Planning → Preparing: the plan was approved. The passphrase is wiped.
    pub fn prepare(&mut self, now: Instant) -> Result<(), WindowError> {
        self.step(now, &[Phase::Planning], Phase::Preparing)?;
        self.passphrase = None;
        Ok(())
    }

    /// Preparing → Committing: every member prepared.
    pub fn commit(&mut self, now: Instant) -> Result<(), WindowError> {
        self.step(now, &[Phase::Preparing], Phase::Committing)
    }

    /// Committing → Committed: `FormationCommitted` is applied.
    pub fn committed(&mut self, now: Instant) -> Result<(), WindowError> {
        self.step(now, &[Phase::Committing], Phase::Committed)
    }

    /// Any phase but Committed → Aborted.
    pub fn abort(&mut self, reason: AbortReason, now: Instant) -> Result<(), WindowError> {
        self.tick(now);
        match self.phase {
            Phase::Committed => Err(WindowError::Transition {
                from: Phase::Committed,
                to: Phase::Aborted,
            }),
            // Aborting twice keeps the first reason.
            Phase::Aborted => Ok(()),
            _ => {
                self.close(reason);
                Ok(())
            }
        }
    }

    fn step(&mut self, now: Instant, from: &[Phase], to: Phase) -> Result<(), WindowError> {
        self.tick(now);
        if let (Phase::Aborted, Some(reason)) = (self.phase, &self.abort) {
            return Err(WindowError::Aborted(reason.clone()));
        }
        if !from.contains(&self.phase) {
            return Err(WindowError::Transition {
                from: self.phase,
                to,
            });
        }
        self.phase = to;
        Ok(())
    }

    fn accepting(&self) -> Result<(), WindowError> {
        match (self.phase, &self.abort) {
            (Phase::Open | Phase::Collecting, _) => Ok(()),
            (Phase::Aborted, Some(reason)) => Err(WindowError::Aborted(reason.clone())),
            (phase, _) => Err(WindowError::NotCollecting { phase }),
        }
    }

    fn close(&mut self, reason: AbortReason) {
        self.phase = Phase::Aborted;
        self.abort = Some(reason);
        self.passphrase = None;
        self.in_flight.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    fn pass() -> Passphrase {
        Passphrase::entered("acid acorn acre acts").unwrap()
    }

    fn window(t0: Instant) -> Window {
        Window::open(pass(), Settings::default(), t0).unwrap()
    }

    /// A window driven to `phase` at `t0`.
    fn at(phase: Phase, t0: Instant) -> Window {
        let mut w = window(t0);
        let steps: &[Phase] = &[
            Phase::Collecting,
            Phase::Planning,
            Phase::Preparing,
            Phase::Committing,
            Phase::Committed,
        ];
        if phase == Phase::Aborted {
            w.abort(AbortReason::Operator, t0).unwrap();
            return w;
        }
        for step in steps.iter().take_while(|s| **s <= phase) {
            match step {
                Phase::Collecting => {
                    w.begin_exchange(ip(2), t0).unwrap();
                    w.exchange_succeeded(ip(2), "node2", FP, t0).unwrap();
                }
                Phase::Planning => w.plan(t0).unwrap(),
                Phase::Preparing => w.prepare(t0).unwrap(),
                Phase::Committing => w.commit(t0).unwrap(),
                Phase::Committed => w.committed(t0).unwrap(),
                _ => unreachable!(),
            }
        }
        assert_eq!(w.phase(t0), phase);
        w
    }

    #[test]
    fn ids_are_random_hex() {
        let (a, b) = (new_window_id(), new_window_id());
        assert!(is_window_id(&a) && is_window_id(&b));
        assert_ne!(a, b);
        for bad in [
            "",
            "0123456789ABCDEF",
            "0123456789abcde",
            "0123456789abcdefg",
        ] {
            assert!(!is_window_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn transitions_follow_the_diagram() {
        use Phase::*;
        type Op = fn(&mut Window, Instant) -> Result<(), WindowError>;
        let ops: &[(&str, Op, Phase)] = &[
            ("plan", Window::plan, Planning),
            ("reopen", Window::reopen, Collecting),
            ("prepare", Window::prepare, Preparing),
            ("commit", Window::commit, Committing),
            ("committed", Window::committed, Committed),
            ("abort", |w, t| w.abort(AbortReason::Operator, t), Aborted),
        ];
        // (from, op) pairs that are allowed; every other pair is refused and changes nothing.
        let allowed: &[(Phase, &str)] = &[
            (Collecting, "plan"),
            (Planning, "reopen"),
            (Planning, "prepare"),
            (Preparing, "commit"),
            (Committing, "committed"),
            (Open, "abort"),
            (Collecting, "abort"),
            (Planning, "abort"),
            (Preparing, "abort"),
            (Committing, "abort"),
            // A second abort is harmless and keeps the first reason.
            (Aborted, "abort"),
        ];
        let t0 = Instant::now();
        for from in [
            Open, Collecting, Planning, Preparing, Committing, Committed, Aborted,
        ] {
            for (name, op, to) in ops {
                let mut w = at(from, t0);
                let got = op(&mut w, t0);
                if allowed.contains(&(from, name)) {
                    assert!(got.is_ok(), "{from} {name}: {got:?}");
                    assert_eq!(w.phase(t0), *to, "{from} {name}");
                } else {
                    assert!(got.is_err(), "{from} {name} was allowed");
                    assert_eq!(w.phase(t0), from, "{from} {name} changed the phase");
                }
            }
        }
    }

    #[test]
    fn the_first_trusted_joiner_starts_collecting_and_names_are_unique() {
        let t0 = Instant::now();
        let mut w = window(t0);
        assert_eq!(w.phase(t0), Phase::Open);
        assert!(matches!(
            w.plan(t0),
            Err(WindowError::Transition {
                from: Phase::Open,
                ..
            })
        ));
        w.begin_exchange(ip(2), t0).unwrap();
        w.exchange_succeeded(ip(2), "node2", FP, t0).unwrap();
        assert_eq!(w.phase(t0), Phase::Collecting);
        w.begin_exchange(ip(3), t0).unwrap();
        assert_eq!(
            w.exchange_succeeded(ip(3), "node2", FP, t0),
            Err(WindowError::DuplicateName("node2".into()))
        );
        assert_eq!(w.joiners().len(), 1);
        assert_eq!(w.joiners()["node2"].source, ip(2));
        // The refused duplicate released its source's slot and counted no failure.
        assert!(w.begin_exchange(ip(3), t0).is_ok());
    }

    #[test]
    fn expiry_defaults_to_30_minutes_and_is_at_most_60() {
        let t0 = Instant::now();
        assert_eq!(Settings::default().expiry, Duration::from_secs(1800));
        let long = Settings {
            expiry: Duration::from_secs(3601),
            ..Settings::default()
        };
        assert_eq!(
            Window::open(pass(), long, t0).unwrap_err(),
            WindowError::ExpiryTooLong(Duration::from_secs(3601))
        );
        let zero = Settings {
            expiry: Duration::ZERO,
            ..Settings::default()
        };
        assert_eq!(
            Window::open(pass(), zero, t0).unwrap_err(),
            WindowError::ExpiryZero
        );
        let max = Settings {
            expiry: MAX_EXPIRY,
            ..Settings::default()
        };
        assert!(Window::open(pass(), max, t0).is_ok());

        let mut w = window(t0);
        let just_before = t0 + DEFAULT_EXPIRY - Duration::from_millis(1);
        assert!(w.begin_exchange(ip(2), just_before).is_ok());
        let after = t0 + DEFAULT_EXPIRY;
        assert_eq!(
            w.begin_exchange(ip(3), after).unwrap_err(),
            WindowError::Aborted(AbortReason::Expired)
        );
        assert_eq!(w.phase(after), Phase::Aborted);
        assert!(!w.holds_passphrase(), "wiped at close");
    }

    #[test]
    fn a_preparing_window_does_not_expire() {
        let t0 = Instant::now();
        let mut w = at(Phase::Preparing, t0);
        let later = t0 + DEFAULT_EXPIRY * 2;
        assert_eq!(w.phase(later), Phase::Preparing);
        assert!(w.commit(later).is_ok());
        // But a window still planning does.
        let mut w = at(Phase::Planning, t0);
        assert_eq!(
            w.prepare(later),
            Err(WindowError::Aborted(AbortReason::Expired))
        );
    }

    #[test]
    fn one_exchange_at_a_time_per_source() {
        let t0 = Instant::now();
        let mut w = window(t0);
        w.begin_exchange(ip(2), t0).unwrap();
        assert_eq!(
            w.begin_exchange(ip(2), t0).unwrap_err(),
            WindowError::Busy(ip(2))
        );
        // Another source is not held up.
        assert!(w.begin_exchange(ip(3), t0).is_ok());
        w.exchange_succeeded(ip(2), "node2", FP, t0).unwrap();
        assert!(w.begin_exchange(ip(2), t0).is_ok());
        assert_eq!(
            w.exchange_failed(ip(9), t0),
            Err(WindowError::NoExchange(ip(9)))
        );
    }

    #[test]
    fn each_failure_costs_its_source_a_second() {
        let t0 = Instant::now();
        let mut w = window(t0);
        w.begin_exchange(ip(2), t0).unwrap();
        w.exchange_failed(ip(2), t0).unwrap();
        let soon = t0 + Duration::from_millis(400);
        assert_eq!(
            w.begin_exchange(ip(2), soon).unwrap_err(),
            WindowError::Penalised {
                address: ip(2),
                wait: Duration::from_millis(600)
            }
        );
        assert!(w.begin_exchange(ip(3), soon).is_ok(), "others are not");
        assert!(w.begin_exchange(ip(2), t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn ten_failures_close_the_window_naming_the_sources() {
        let t0 = Instant::now();
        let mut w = window(t0);
        let mut t = t0;
        for i in 0..9 {
            let source = if i < 6 { ip(5) } else { ip(6) };
            w.begin_exchange(source, t).unwrap();
            assert_eq!(w.exchange_failed(source, t), Ok(()), "failure {}", i + 1);
            t += Duration::from_secs(1);
        }
        w.begin_exchange(ip(7), t).unwrap();
        let reason = AbortReason::TooManyFailures(vec![(ip(5), 6), (ip(6), 3), (ip(7), 1)]);
        assert_eq!(
            w.exchange_failed(ip(7), t),
            Err(WindowError::Aborted(reason.clone()))
        );
        assert_eq!(w.phase(t), Phase::Aborted);
        assert!(!w.holds_passphrase());
        assert_eq!(
            WindowError::Aborted(reason).to_string(),
            "The formation window is closed: 10 trust exchanges failed, from 192.0.2.5 (6), \
             192.0.2.6 (3), 192.0.2.7 (1)"
        );
        // A right passphrase gets nowhere now.
        assert!(matches!(
            w.begin_exchange(ip(8), t),
            Err(WindowError::Aborted(_))
        ));
    }

    #[test]
    fn an_exchange_left_hanging_counts_as_failed() {
        let t0 = Instant::now();
        let mut w = window(t0);
        w.begin_exchange(ip(2), t0).unwrap();
        let later = t0 + Settings::default().exchange_timeout;
        w.tick(later);
        assert_eq!(
            w.exchange_succeeded(ip(2), "node2", FP, later),
            Err(WindowError::NoExchange(ip(2)))
        );
        assert!(matches!(
            w.begin_exchange(ip(2), later),
            Err(WindowError::Penalised { .. })
        ));
    }

    #[test]
    fn the_passphrase_is_wiped_once_no_exchange_can_happen() {
        let t0 = Instant::now();
        assert!(
            at(Phase::Planning, t0).holds_passphrase(),
            "reopen may follow"
        );
        assert!(!at(Phase::Preparing, t0).holds_passphrase());
        assert!(!at(Phase::Committed, t0).holds_passphrase());
        assert!(!at(Phase::Aborted, t0).holds_passphrase());
        let mut w = at(Phase::Planning, t0);
        assert_eq!(
            w.begin_exchange(ip(4), t0).unwrap_err(),
            WindowError::NotCollecting {
                phase: Phase::Planning
            }
        );
    }
}
