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
//!  a request sent on to a member ─> Relayed::wait_for(address): the member's events are
//!     relayed before it acts, so a client waiting here on the events sees its operation end
//! ```

use std::collections::{HashMap, HashSet};
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

/// Which members' events are relayed now, for the requests sent on to them.
pub struct Relayed {
    /// The addresses whose event streams are open.
    open: tokio::sync::watch::Sender<HashSet<String>>,
    /// Wakes the relay to read the member rows now rather than at its next tick.
    refresh: tokio::sync::Notify,
}

impl Default for Relayed {
    fn default() -> Self {
        Relayed {
            open: tokio::sync::watch::Sender::new(HashSet::new()),
            refresh: tokio::sync::Notify::new(),
        }
    }
}

impl Relayed {
    /// Waits, at most `limit`, until the events of the member at `address` are relayed here;
    /// whether they are. Its stream is open once the member has subscribed it to its bus, so
    /// every event it makes from then on reaches this member's listeners.
    pub async fn wait_for(&self, address: &str, limit: Duration) -> bool {
        let mut open = self.open.subscribe();
        if open.borrow().contains(address) {
            return true;
        }
        // A member that has just joined is not followed before the next reading of the rows.
        self.refresh.notify_one();
        tokio::time::timeout(limit, open.wait_for(|o| o.contains(address)))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    fn set(&self, address: &str, open: bool) {
        self.open.send_if_modified(|o| {
            if open {
                o.insert(address.to_string())
            } else {
                o.remove(address)
            }
        });
    }
}

/// The listeners by member id, with the address each listens to. Dropping it aborts them all.
struct Listeners {
    running: HashMap<u64, (String, JoinHandle<()>)>,
    relayed: Arc<Relayed>,
}

impl Listeners {
    fn stop(&mut self, id: u64) {
        if let Some((address, task)) = self.running.remove(&id) {
            tracing::info!("Stopped relaying the events of member at {address}");
            task.abort();
            self.relayed.set(&address, false);
        }
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        let ids: Vec<u64> = self.running.keys().copied().collect();
        for id in ids {
            self.stop(id);
        }
    }
}

/// Starts the relay; aborting the returned task stops it and every listener.
pub fn spawn(d: &Arc<Daemon>) -> JoinHandle<()> {
    let weak = Arc::downgrade(d);
    let relayed = d.relayed.clone();
    tokio::spawn(async move {
        let mut listeners = Listeners {
            running: HashMap::new(),
            relayed: relayed.clone(),
        };
        let mut tick = tokio::time::interval(REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = relayed.refresh.notified() => {}
            }
            let Some(d) = weak.upgrade() else { return };
            let wanted = members_to_follow(&d).await;
            drop(d);
            let Some(wanted) = wanted else { continue };
            let gone: Vec<u64> = listeners
                .running
                .iter()
                .filter(|(id, (address, _))| wanted.get(id) != Some(address))
                .map(|(id, _)| *id)
                .collect();
            for id in gone {
                listeners.stop(id);
            }
            for (id, address) in wanted {
                if let std::collections::hash_map::Entry::Vacant(e) = listeners.running.entry(id) {
                    let task = tokio::spawn(listen(weak.clone(), relayed.clone(), address.clone()));
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
async fn listen(daemon: Weak<Daemon>, relayed: Arc<Relayed>, address: String) {
    let mut backoff = BACKOFF_FIRST;
    loop {
        // A test holds the connection here to show what a member not yet followed does.
        let _ = rxd_cluster::failpoint("events-relay-before-connect").await;
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
            relayed.set(&address, true);
            backoff = BACKOFF_FIRST;
            while let Some(Ok(event)) = stream.next().await {
                events.relay(event);
            }
            relayed.set(&address, false);
            tracing::info!("Lost the events of member at {address}");
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}
