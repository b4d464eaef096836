//! The events bus: every operation change, lifecycle action and log line is broadcast to the
//! `/1.0/events` websockets that asked for its type. In a cluster, each member also relays the
//! events the other members produced (`relay.rs`): an event on the bus is either made here
//! (local) or relayed, and only local events are sent on to other members, so nothing loops or
//! arrives twice.

pub mod relay;

use rxd_api::{Event, EventLifecycle, Requestor};
use tokio::sync::broadcast;

/// One event on the bus, and whether another member produced it.
#[derive(Debug, Clone)]
pub struct Published {
    /// The event as clients see it; `location` names the member that produced it.
    pub event: Event,
    /// Relayed from another member (never sent on to members again).
    pub relayed: bool,
}

/// A cheap handle to the bus.
#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<Published>,
    location: std::sync::Arc<std::sync::RwLock<String>>,
}

impl Events {
    /// A bus whose events carry `location` until it changes.
    pub fn new(location: &str) -> Self {
        let (tx, _) = broadcast::channel(1024);
        Events {
            tx,
            location: std::sync::Arc::new(std::sync::RwLock::new(location.to_string())),
        }
    }

    /// The member name events are stamped with (`none` when standalone).
    pub fn set_location(&self, name: &str) {
        *self.location.write().expect("lock is never poisoned") = name.to_string();
    }

    fn location(&self) -> String {
        self.location
            .read()
            .expect("lock is never poisoned")
            .clone()
    }

    /// A new receiver of every later event.
    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.tx.subscribe()
    }

    /// Sends an event of `kind` with `metadata`, produced on this member.
    pub fn send(&self, kind: &str, metadata: serde_json::Value, project: &str) {
        let event = Event {
            kind: kind.to_string(),
            timestamp: crate::now_rfc3339(),
            metadata,
            location: self.location(),
            project: project.to_string(),
        };
        // No subscriber is not an error: events are fire and forget.
        let _ = self.tx.send(Published {
            event,
            relayed: false,
        });
    }

    /// Publishes an event another member produced, as it came.
    pub fn relay(&self, event: Event) {
        let _ = self.tx.send(Published {
            event,
            relayed: true,
        });
    }

    /// Sends a lifecycle event.
    pub fn lifecycle(
        &self,
        action: &str,
        source: &str,
        context: Option<serde_json::Value>,
        requestor: Option<Requestor>,
    ) {
        let meta = EventLifecycle {
            action: action.to_string(),
            source: source.to_string(),
            context,
            requestor,
        };
        self.send(
            "lifecycle",
            serde_json::to_value(meta).expect("lifecycle events serialise"),
            "default",
        );
    }
}
