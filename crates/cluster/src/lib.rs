//! Membership decisions: join and accept, join tokens, heartbeats, liveness and role
//! rebalancing, as pure functions with a thin async shell.
//!
//! Empty for now: the one-member bootstrap lives in the daemon's `/1.0/cluster` handler, and the
//! join work (issue 3) moves membership logic here.
