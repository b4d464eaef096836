//! Cluster formation (`rxd form` / `rxd join`): the parts that need no daemon, each pure or
//! close to it, so the daemon's formation endpoints and the front-ends only wire them up.
//!
//! - [`discovery`]: a formation window advertised and browsed with DNS-SD over mDNS
//!   (`_rxd._tcp.local.`) on one interface; nothing secret is advertised.
//! - [`trust`]: the passphrase (generated from the EFF short word list, or from a preseed)
//!   and SPAKE2 with key confirmation both ways, as a transport-agnostic state machine whose
//!   messages are serde structs.
//! - [`window`]: the window's phases, expiry, failure limit and per-source rate limits, with
//!   time passed in.
//! - [`planner`]: from the servers' facts and the operator's answers to a plan or a list of
//!   errors, and the `--dry-run` text.
//! - [`facts`]: what a server reports of its host: interfaces and their addresses, disks,
//!   which planned addresses it reaches.
//! - [`preseed`]: the formation preseed and its validation.
//! - [`wire`]: the bodies of the daemon's formation endpoints.
//! - [`joiner`]: the joiner's side of the exchange over HTTPS and its report of facts.
//!
//! It does not know the daemon, raft or the database: the daemon carries the trust messages
//! over its HTTPS endpoints, keeps the window and runs the plan; the joiner's side speaks to
//! them through `rxd-client`.

pub mod discovery;
pub mod facts;
pub mod joiner;
pub mod planner;
pub mod preseed;
pub mod trust;
pub mod window;
pub mod wire;
