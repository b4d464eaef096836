//! Events of the other members, relayed to this member's bus (LXD's full-mesh event mode).
//!
//! ```text
//!  every second: the member rows (local replica) ─> one listener per other member
//!     listener: wss://member/1.0/events?all-projects=true  (server.crt, User-Agent
//!               lxd-cluster-notifier: the member answers with its own events only)
//!        └─> each frame ─> Events::relay (kept as it came, with its `location`)
//!        └─> stream ends or fails ─> again after 250 ms, doubling up to 5 s
//!  a member gone from the rows, or a new address ─> its listener is aborted
//!  the relay stopped (daemon shutdown) ─> every listener is aborted with it
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use rxd_db::tables::{self, MemberState};
use tokio::task::JoinHandle;

use crate::Daemon;

/// The User-Agent of member-to-member requests that want this member's own answer only: its
/// own events, its own operations (as LXD's cluster notifications).
pub const NOTIFIER_USER_AGENT: &str = "lxd-cluster-notifier";

/// How often the member list is read again.
const REFRESH: Duration = Duration::from_secs(1);
/// The first wait before reconnecting to a member, doubled after each failure.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
/// The longest wait before reconnecting.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The listeners by member id, with the address each listens to. Dropping it aborts them all.
#[derive(Default)]
struct Listeners(HashMap<u64, (String, JoinHandle<()>)>);

impl Listeners {
    fn stop(&mut self, id: u64) {
        if let Some((address, task)) = self.0.remove(&id) {
            tracing::info!("Stopped relaying the events of member at {address}");
            task.abort();
        }
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        for (_, (_, task)) in self.0.drain() {
            task.abort();
        }
    }
}

/// Starts the relay; aborting the returned task stops it and every listener.
pub fn spawn(d: &Arc<Daemon>) -> JoinHandle<()> {
    let weak = Arc::downgrade(d);
    tokio::spawn(async move {
        let mut listeners = Listeners::default();
        let mut tick = tokio::time::interval(REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(d) = weak.upgrade() else { return };
            let wanted = members_to_follow(&d).await;
            drop(d);
            let Some(wanted) = wanted else { continue };
            let gone: Vec<u64> = listeners
                .0
                .iter()
                .filter(|(id, (address, _))| wanted.get(id) != Some(address))
                .map(|(id, _)| *id)
                .collect();
            for id in gone {
                listeners.stop(id);
            }
            for (id, address) in wanted {
                if let std::collections::hash_map::Entry::Vacant(e) = listeners.0.entry(id) {
                    let task = tokio::spawn(listen(weak.clone(), address.clone()));
                    e.insert((address, task));
                }
            }
        }
    })
}

/// The other members (id → address) whose events this member relays: every member past its
/// join, while this server is clustered. `None` when the rows cannot be read now (keep what
/// runs).
async fn members_to_follow(d: &Daemon) -> Option<HashMap<u64, String>> {
    if d.cluster_cert().is_none() {
        return Some(HashMap::new());
    }
    let members = d.db().read_local(tables::members).await.ok()?;
    let own = d.node_id();
    if !members.iter().any(|m| m.id == own && m.name != "none") {
        return Some(HashMap::new());
    }
    Some(
        members
            .into_iter()
            .filter(|m| m.id != own && m.state != MemberState::Pending && !m.address.is_empty())
            .map(|m| (m.id, m.address))
            .collect(),
    )
}

/// Follows one member's events until aborted, reconnecting with a bounded backoff.
async fn listen(daemon: Weak<Daemon>, address: String) {
    let mut backoff = BACKOFF_FIRST;
    loop {
        let connected = {
            let Some(d) = daemon.upgrade() else { return };
            let events = d.events.clone();
            let client = crate::peer::member_client(&*d, &address)
                .map(|c| c.with_user_agent(NOTIFIER_USER_AGENT));
            drop(d);
            match client {
                Ok(client) => match client.events_all_projects(&[]).await {
                    Ok(stream) => Some((stream, events)),
                    Err(e) => {
                        tracing::debug!("Cannot follow the events of member at {address}: {e}");
                        None
                    }
                },
                Err(e) => {
                    tracing::debug!("Cannot follow the events of member at {address}: {e}");
                    None
                }
            }
        };
        if let Some((mut stream, events)) = connected {
            tracing::info!("Relaying the events of member at {address}");
            backoff = BACKOFF_FIRST;
            while let Some(Ok(event)) = stream.next().await {
                events.relay(event);
            }
            tracing::info!("Lost the events of member at {address}");
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}
