//! The events bus: every operation change, lifecycle action and log line is broadcast to the
//! `/1.0/events` websockets that asked for its type.

use rxd_api::{Event, EventLifecycle, Requestor};
use tokio::sync::broadcast;

/// A cheap handle to the bus.
#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<Event>,
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
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Sends an event of `kind` with `metadata`.
    pub fn send(&self, kind: &str, metadata: serde_json::Value, project: &str) {
        let event = Event {
            kind: kind.to_string(),
            timestamp: crate::now_rfc3339(),
            metadata,
            location: self.location(),
            project: project.to_string(),
        };
        // No subscriber is not an error: events are fire and forget.
        let _ = self.tx.send(event);
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
