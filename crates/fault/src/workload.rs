//! Workloads: client workers that send LXD API requests to the members and record every
//! operation. Two workers per member slot; a worker sends only while its slot is in rotation.
//! Writes are never retried; after an unknown result a worker takes a new process id.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rxd_api::{ProfilePut, ProfilesPost};
use rxd_client::{Client, ClientError};
use serde::{Deserialize, Serialize};

use crate::cluster::SlotView;
use crate::history::{AppendTxn, BankOp, Micro, Op, Outcome, RegisterOp, SetOp};

/// The workloads the suite knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Unique profile creates and list reads.
    Sets,
    /// Per-key read, write and compare-and-set.
    Register,
    /// List-append transactions with `If-Match`.
    Append,
    /// Transfers between accounts by compare-and-set; the total never changes.
    Bank,
}

/// Accounts in the bank workload and what each starts with.
pub const BANK_ACCOUNTS: usize = 8;
/// Starting balance of each account.
pub const BANK_START: i64 = 100;
/// Profiles the append workload spreads its lists over.
pub const APPEND_PROFILES: u32 = 6;
const APPEND_KEYS: [&str; 3] = ["user.a", "user.b", "user.c"];
/// A register key retires after this many operations …
const REGISTER_OPS_PER_KEY: u32 = 300;
/// … or this many unknown writes.
const REGISTER_UNKNOWN_PER_KEY: u32 = 10;
/// Keys in use at once.
const REGISTER_ACTIVE: usize = 2;

/// How an answer is classed (the suite's error contract, see [`crate::history`]).
pub fn classify(e: &ClientError) -> Outcome {
    match e {
        ClientError::Connect { .. } => Outcome::Fail,
        ClientError::Api { status, .. } if (400..500).contains(status) => Outcome::Fail,
        _ => Outcome::Unknown,
    }
}

/// Everything the workers of one run share.
pub struct Shared {
    /// When the run started; all times are relative to it.
    pub start: Instant,
    /// The member slots.
    pub views: Arc<Vec<SlotView>>,
    /// The request timeout.
    pub timeout: Duration,
    /// Set when workers must stop.
    pub stop: AtomicBool,
    next_value: AtomicI64,
    registers: Mutex<RegisterKeys>,
    /// The recorded operations, per workload.
    pub log: Mutex<Recorded>,
}

/// Operations recorded so far (only the run's workload fills its list).
#[derive(Default)]
pub struct Recorded {
    /// Sets.
    pub sets: Vec<Op<SetOp>>,
    /// Register.
    pub register: Vec<Op<RegisterOp>>,
    /// Append.
    pub append: Vec<Op<AppendTxn>>,
    /// Bank.
    pub bank: Vec<Op<BankOp>>,
}

struct RegisterKeys {
    active: Vec<u32>,
    next: u32,
    limit: u32,
    ops: BTreeMap<u32, u32>,
    unknown: BTreeMap<u32, u32>,
}

impl Shared {
    /// Workers' shared state; `register_keys` is how many register profiles exist.
    pub fn new(views: Arc<Vec<SlotView>>, timeout: Duration, register_keys: u32) -> Shared {
        Shared {
            start: Instant::now(),
            views,
            timeout,
            stop: AtomicBool::new(false),
            next_value: AtomicI64::new(1),
            registers: Mutex::new(RegisterKeys {
                active: (0..REGISTER_ACTIVE as u32).collect(),
                next: REGISTER_ACTIVE as u32,
                limit: register_keys,
                ops: BTreeMap::new(),
                unknown: BTreeMap::new(),
            }),
            log: Mutex::new(Recorded::default()),
        }
    }

    /// Nanoseconds since the run started.
    pub fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn value(&self) -> i64 {
        self.next_value.fetch_add(1, Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn register_key(&self, rng: &mut StdRng) -> Option<u32> {
        let keys = self
            .registers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if keys.active.is_empty() {
            return None;
        }
        Some(keys.active[rng.random_range(0..keys.active.len())])
    }

    fn register_done(&self, key: u32, outcome: Outcome, write: bool) {
        let mut keys = self
            .registers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ops = {
            let n = keys.ops.entry(key).or_default();
            *n += 1;
            *n
        };
        let unknown = {
            let n = keys.unknown.entry(key).or_default();
            if write && outcome == Outcome::Unknown {
                *n += 1;
            }
            *n
        };
        if ops >= REGISTER_OPS_PER_KEY || unknown >= REGISTER_UNKNOWN_PER_KEY {
            if let Some(pos) = keys.active.iter().position(|k| *k == key) {
                keys.active.remove(pos);
                if keys.next < keys.limit {
                    let next = keys.next;
                    keys.active.push(next);
                    keys.next += 1;
                }
            }
        }
    }
}

/// The profile name of register `k`.
pub fn register_profile(k: u32) -> String {
    format!("r-{k}")
}

/// The profile name of append list group `k`.
pub fn append_profile(k: u32) -> String {
    format!("l-{k}")
}

/// Creates what a workload needs before faults start (register and list profiles, the bank).
pub async fn prepare(
    client: &Client,
    workload: Workload,
    register_keys: u32,
) -> anyhow::Result<()> {
    let create = |name: String, config: rxd_api::Config| ProfilesPost {
        name,
        config,
        ..Default::default()
    };
    match workload {
        Workload::Sets => {}
        Workload::Register => {
            for k in 0..register_keys {
                client
                    .create_profile(&create(register_profile(k), Default::default()))
                    .await?;
            }
        }
        Workload::Append => {
            for k in 0..APPEND_PROFILES {
                client
                    .create_profile(&create(append_profile(k), Default::default()))
                    .await?;
            }
        }
        Workload::Bank => {
            let config = (0..BANK_ACCOUNTS)
                .map(|a| (format!("user.acct.{a}"), BANK_START.to_string()))
                .collect();
            client
                .create_profile(&create("bank".into(), config))
                .await?;
        }
    }
    Ok(())
}

/// One client worker: slot `worker / 2`, its own RNG.
pub async fn worker(
    shared: Arc<Shared>,
    workload: Workload,
    worker: usize,
    workers: usize,
    seed: u64,
) {
    let slot = worker / 2;
    let mut rng =
        StdRng::seed_from_u64(seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(worker as u64 + 1)));
    let mut process = worker as u64;
    let mut n = 0u64;
    let client = Client::unix(&shared.views[slot].socket).with_timeout(shared.timeout);
    while !shared.stop.load(Ordering::SeqCst) {
        if !shared.views[slot].in_rotation.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        n += 1;
        let outcome = match workload {
            Workload::Sets => sets_op(&shared, &client, &mut rng, slot, process, worker, n).await,
            Workload::Register => register_op(&shared, &client, &mut rng, slot, process).await,
            Workload::Append => append_op(&shared, &client, &mut rng, slot, process, false).await,
            Workload::Bank => bank_op(&shared, &client, &mut rng, slot, process).await,
        };
        let pause = match outcome {
            Some(Outcome::Unknown) => {
                process += workers as u64;
                // A member whose raft stopped answers 5xx at once; do not spin on it either.
                50
            }
            // A refused connection: the member is down or starting; do not spin on it.
            Some(Outcome::Fail) => 100,
            _ => rng.random_range(0..15),
        };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

fn op<F>(
    shared: &Shared,
    slot: usize,
    process: u64,
    invoke: u64,
    f: F,
    res: Result<(), ClientError>,
) -> Op<F> {
    let (outcome, error) = match &res {
        Ok(()) => (Outcome::Ok, None),
        Err(e) => (classify(e), Some(e.to_string())),
    };
    Op {
        id: 0,
        process,
        member: slot,
        invoke_ns: invoke,
        complete_ns: (outcome != Outcome::Unknown).then(|| shared.now()),
        outcome,
        f,
        error,
    }
}

/// A compare-and-set whose `GET` failed: nothing was written, so the whole operation failed,
/// whatever the `GET`'s error was.
fn read_failed<F>(
    shared: &Shared,
    slot: usize,
    process: u64,
    invoke: u64,
    f: F,
    e: ClientError,
) -> Op<F> {
    let mut o = op(shared, slot, process, invoke, f, Err(e));
    o.outcome = Outcome::Fail;
    o.complete_ns = Some(shared.now());
    o
}

async fn sets_op(
    shared: &Shared,
    client: &Client,
    rng: &mut StdRng,
    slot: usize,
    process: u64,
    worker: usize,
    n: u64,
) -> Option<Outcome> {
    let invoke = shared.now();
    let recorded = if rng.random_bool(0.7) {
        let name = format!("s{worker}-{n}");
        let res = client
            .create_profile(&ProfilesPost {
                name: name.clone(),
                ..Default::default()
            })
            .await;
        op(shared, slot, process, invoke, SetOp::Add { name }, res)
    } else {
        let res = read_set(client).await;
        let (seen, res) = split(res);
        op(
            shared,
            slot,
            process,
            invoke,
            SetOp::Read { seen, last: false },
            res,
        )
    };
    let outcome = recorded.outcome;
    shared.lock().sets.push(recorded);
    Some(outcome)
}

async fn read_set(client: &Client) -> Result<Vec<String>, ClientError> {
    let urls: Vec<String> = client.get("/1.0/profiles").await?;
    Ok(urls
        .iter()
        .filter_map(|u| u.rsplit('/').next())
        .filter(|n| n.starts_with('s'))
        .map(str::to_string)
        .collect())
}

fn split<T>(res: Result<T, ClientError>) -> (Option<T>, Result<(), ClientError>) {
    match res {
        Ok(v) => (Some(v), Ok(())),
        Err(e) => (None, Err(e)),
    }
}

fn parse_value(config: &rxd_api::Config, key: &str) -> Option<i64> {
    config.get(key).and_then(|v| v.parse().ok())
}

async fn register_op(
    shared: &Shared,
    client: &Client,
    rng: &mut StdRng,
    slot: usize,
    process: u64,
) -> Option<Outcome> {
    let Some(key) = shared.register_key(rng) else {
        tokio::time::sleep(Duration::from_millis(100)).await;
        return None;
    };
    let name = register_profile(key);
    let invoke = shared.now();
    let roll: f64 = rng.random();
    let put = |value: i64| ProfilePut {
        config: [("user.v".to_string(), value.to_string())].into(),
        ..Default::default()
    };
    let (recorded, write) = if roll < 0.4 {
        let res = client.profile(&name).await;
        let (value, res) = split(res.map(|(p, _)| parse_value(&p.config, "user.v")));
        (
            op(
                shared,
                slot,
                process,
                invoke,
                RegisterOp::Read {
                    key,
                    value: value.flatten(),
                },
                res,
            ),
            false,
        )
    } else if roll < 0.7 {
        let value = shared.value();
        let res = client.update_profile(&name, &put(value), None).await;
        (
            op(
                shared,
                slot,
                process,
                invoke,
                RegisterOp::Write { key, value },
                res,
            ),
            true,
        )
    } else {
        let new = shared.value();
        match client.profile(&name).await {
            Ok((profile, etag)) => {
                let expected = parse_value(&profile.config, "user.v");
                let res = client.update_profile(&name, &put(new), Some(&etag)).await;
                (
                    op(
                        shared,
                        slot,
                        process,
                        invoke,
                        RegisterOp::Cas { key, expected, new },
                        res,
                    ),
                    true,
                )
            }
            Err(e) => (
                read_failed(
                    shared,
                    slot,
                    process,
                    invoke,
                    RegisterOp::Cas {
                        key,
                        expected: None,
                        new,
                    },
                    e,
                ),
                false,
            ),
        }
    };
    let outcome = recorded.outcome;
    shared.register_done(key, outcome, write);
    shared.lock().register.push(recorded);
    Some(outcome)
}

fn parse_list(config: &rxd_api::Config, key: &str) -> Vec<i64> {
    config
        .get(key)
        .map(|v| {
            v.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// One append transaction, or a read; `last` marks a final read of everything.
async fn append_op(
    shared: &Shared,
    client: &Client,
    rng: &mut StdRng,
    slot: usize,
    process: u64,
    last: bool,
) -> Option<Outcome> {
    let invoke = shared.now();
    let recorded = if last || rng.random_bool(0.1) {
        // A read of every list, in one request.
        let res = client.profiles().await;
        let (profiles, res) = split(res);
        let mut micros = Vec::new();
        for k in 0..APPEND_PROFILES {
            let name = append_profile(k);
            for key in APPEND_KEYS {
                let value = profiles.as_ref().map(|all| {
                    all.iter()
                        .find(|p| p.name == name)
                        .map(|p| parse_list(&p.config, key))
                        .unwrap_or_default()
                });
                micros.push(Micro::Read {
                    key: format!("{name}/{key}"),
                    value,
                });
            }
        }
        op(
            shared,
            slot,
            process,
            invoke,
            AppendTxn { micros, last },
            res,
        )
    } else {
        let name = append_profile(rng.random_range(0..APPEND_PROFILES));
        let reads_only = rng.random_bool(0.2);
        let count = rng.random_range(1..=3);
        let mut chosen: Vec<&str> = APPEND_KEYS.to_vec();
        while chosen.len() > count {
            chosen.remove(rng.random_range(0..chosen.len()));
        }
        let appends: Vec<(String, i64)> = if reads_only {
            Vec::new()
        } else {
            chosen
                .iter()
                .map(|k| (k.to_string(), shared.value()))
                .collect()
        };
        let got = client.profile(&name).await;
        let mut micros = Vec::new();
        let res = match got {
            Err(e) => Err(e),
            Ok((profile, etag)) => {
                for key in APPEND_KEYS {
                    micros.push(Micro::Read {
                        key: format!("{name}/{key}"),
                        value: Some(parse_list(&profile.config, key)),
                    });
                }
                if appends.is_empty() {
                    Ok(())
                } else {
                    let mut config = profile.config.clone();
                    for (key, v) in &appends {
                        let mut list = parse_list(&config, key);
                        list.push(*v);
                        let text: Vec<String> = list.iter().map(i64::to_string).collect();
                        config.insert(key.clone(), text.join(" "));
                    }
                    let put = ProfilePut {
                        config,
                        description: profile.description.clone(),
                        devices: profile.devices.clone(),
                    };
                    client.update_profile(&name, &put, Some(&etag)).await
                }
            }
        };
        for (key, value) in &appends {
            micros.push(Micro::Append {
                key: format!("{name}/{key}"),
                value: *value,
            });
        }
        let mut o = op(
            shared,
            slot,
            process,
            invoke,
            AppendTxn { micros, last },
            res,
        );
        if o.outcome != Outcome::Ok {
            // Reads of a transaction that did not commit are not observations.
            for m in &mut o.f.micros {
                if let Micro::Read { value, .. } = m {
                    *value = None;
                }
            }
        }
        o
    };
    let outcome = recorded.outcome;
    shared.lock().append.push(recorded);
    Some(outcome)
}

fn balances(config: &rxd_api::Config) -> Vec<i64> {
    (0..BANK_ACCOUNTS)
        .map(|a| parse_value(config, &format!("user.acct.{a}")).unwrap_or(i64::MIN))
        .collect()
}

async fn bank_op(
    shared: &Shared,
    client: &Client,
    rng: &mut StdRng,
    slot: usize,
    process: u64,
) -> Option<Outcome> {
    let invoke = shared.now();
    let recorded = if rng.random_bool(0.4) {
        let res = client.profile("bank").await;
        let (balances, res) = split(res.map(|(p, _)| balances(&p.config)));
        op(
            shared,
            slot,
            process,
            invoke,
            BankOp::Read { balances },
            res,
        )
    } else {
        let from = rng.random_range(0..BANK_ACCOUNTS as u32);
        let to = (from + rng.random_range(1..BANK_ACCOUNTS as u32)) % BANK_ACCOUNTS as u32;
        let wanted = rng.random_range(1..=5);
        match client.profile("bank").await {
            Err(e) => read_failed(
                shared,
                slot,
                process,
                invoke,
                BankOp::Transfer {
                    from,
                    to,
                    amount: 0,
                },
                e,
            ),
            Ok((profile, etag)) => {
                let mut b = balances(&profile.config);
                let amount = wanted.min(b[from as usize].max(0));
                b[from as usize] -= amount;
                b[to as usize] += amount;
                let mut config = profile.config.clone();
                for (a, v) in b.iter().enumerate() {
                    config.insert(format!("user.acct.{a}"), v.to_string());
                }
                let put = ProfilePut {
                    config,
                    description: profile.description.clone(),
                    devices: profile.devices.clone(),
                };
                let res = client.update_profile("bank", &put, Some(&etag)).await;
                op(
                    shared,
                    slot,
                    process,
                    invoke,
                    BankOp::Transfer { from, to, amount },
                    res,
                )
            }
        }
    };
    let outcome = recorded.outcome;
    shared.lock().bank.push(recorded);
    Some(outcome)
}

/// A read on slot `slot` after every fault healed, recorded with `last`; tried for up to
/// `limit` until it succeeds. Returns whether one succeeded.
pub async fn final_read(shared: &Shared, workload: Workload, slot: usize, limit: Duration) -> bool {
    let client = Client::unix(&shared.views[slot].socket).with_timeout(shared.timeout);
    let deadline = Instant::now() + limit;
    let process = 1_000_000 + slot as u64;
    while Instant::now() < deadline {
        let invoke = shared.now();
        let ok = match workload {
            Workload::Sets => match read_set(&client).await {
                Ok(seen) => {
                    let o = op(
                        shared,
                        slot,
                        process,
                        invoke,
                        SetOp::Read {
                            seen: Some(seen),
                            last: true,
                        },
                        Ok(()),
                    );
                    shared.lock().sets.push(o);
                    true
                }
                Err(_) => false,
            },
            Workload::Append => {
                let mut rng = StdRng::seed_from_u64(0);
                let before = shared.lock().append.len();
                let outcome = append_op(shared, &client, &mut rng, slot, process, true).await;
                if outcome != Some(Outcome::Ok) {
                    shared.lock().append.truncate(before);
                }
                outcome == Some(Outcome::Ok)
            }
            Workload::Register => client.server().await.is_ok(),
            Workload::Bank => match client.profile("bank").await {
                Ok((p, _)) => {
                    let o = op(
                        shared,
                        slot,
                        process,
                        invoke,
                        BankOp::Read {
                            balances: Some(balances(&p.config)),
                        },
                        Ok(()),
                    );
                    shared.lock().bank.push(o);
                    true
                }
                Err(_) => false,
            },
        };
        if ok {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}
