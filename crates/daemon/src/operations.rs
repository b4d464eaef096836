//! Each member's operations registry.
//!
//! ```text
//!  create ──> Pending ──> Running ──> Success | Failure | Cancelled ──(5 s)──> forgotten
//!               │            │                     │
//!               └────────────┴── event on the bus ─┘
//! ```
//!
//! Token operations are not kept here: tokens live in the replicated database so that every
//! member can list, revoke and consume them; the handlers merge them into listings.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rxd_api::{Operation, OperationStatus};
use tokio::sync::watch;

use crate::events::Events;

struct Entry {
    op: watch::Sender<Operation>,
    cancel: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The registry.
#[derive(Clone)]
pub struct Operations {
    inner: Arc<Mutex<HashMap<String, Entry>>>,
    events: Events,
}

/// How long finished operations stay visible.
const KEEP_FINISHED: Duration = Duration::from_secs(5);

impl Operations {
    /// An empty registry that reports to `events`.
    pub fn new(events: Events) -> Self {
        Operations {
            inner: Arc::new(Mutex::new(HashMap::new())),
            events,
        }
    }

    /// Starts a task operation running `work`, reporting Pending, Running and the outcome.
    pub fn start<F>(
        &self,
        description: &str,
        resources: Option<serde_json::Value>,
        location: &str,
        work: F,
    ) -> Operation
    where
        F: Future<Output = Result<Option<serde_json::Value>, String>> + Send + 'static,
    {
        let now = crate::now_rfc3339();
        let op = Operation {
            id: uuid::Uuid::new_v4().to_string(),
            class: "task".into(),
            description: description.into(),
            created_at: now.clone(),
            updated_at: now,
            status: OperationStatus::Pending.text().into(),
            status_code: OperationStatus::Pending.code(),
            resources,
            metadata: None,
            may_cancel: false,
            err: String::new(),
            location: location.into(),
        };
        let (tx, _) = watch::channel(op.clone());
        self.inner.lock().expect("lock is never poisoned").insert(
            op.id.clone(),
            Entry {
                op: tx,
                cancel: None,
            },
        );
        self.emit(&op);
        let running = self.update(&op.id, |o| o.set_status(OperationStatus::Running));
        let this = self.clone();
        let id = op.id.clone();
        tokio::spawn(async move {
            let result = work.await;
            this.update(&id, |o| match result {
                Ok(meta) => {
                    if meta.is_some() {
                        o.metadata = meta;
                    }
                    o.set_status(OperationStatus::Success)
                }
                Err(e) => {
                    o.err = e;
                    o.set_status(OperationStatus::Failure)
                }
            });
            this.forget_later(id);
        });
        running.unwrap_or(op)
    }

    fn forget_later(&self, id: String) {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            tokio::time::sleep(KEEP_FINISHED).await;
            inner.lock().expect("lock is never poisoned").remove(&id);
        });
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Operation)) -> Option<Operation> {
        let snapshot = {
            let map = self.inner.lock().expect("lock is never poisoned");
            let entry = map.get(id)?;
            entry.op.send_modify(|o| {
                f(o);
                o.updated_at = crate::now_rfc3339();
            });
            let snapshot = entry.op.borrow().clone();
            snapshot
        };
        self.emit(&snapshot);
        Some(snapshot)
    }

    fn emit(&self, op: &Operation) {
        self.events.send(
            "operation",
            serde_json::to_value(op).expect("operations serialise"),
            "default",
        );
    }

    /// The operation, if this member knows it.
    pub fn get(&self, id: &str) -> Option<Operation> {
        let map = self.inner.lock().expect("lock is never poisoned");
        map.get(id).map(|e| e.op.borrow().clone())
    }

    /// Every operation this member knows.
    pub fn list(&self) -> Vec<Operation> {
        let map = self.inner.lock().expect("lock is never poisoned");
        map.values().map(|e| e.op.borrow().clone()).collect()
    }

    /// Waits until the operation is final or `timeout` passes; `None` if unknown.
    pub async fn wait(&self, id: &str, timeout: Option<Duration>) -> Option<Operation> {
        let mut rx = {
            let map = self.inner.lock().expect("lock is never poisoned");
            map.get(id)?.op.subscribe()
        };
        let until_final = async {
            loop {
                if rx.borrow().status_code >= 200 {
                    break;
                }
                if rx.changed().await.is_err() {
                    break;
                }
            }
        };
        match timeout {
            Some(t) => {
                let _ = tokio::time::timeout(t, until_final).await;
            }
            None => until_final.await,
        }
        let op = rx.borrow().clone();
        Some(op)
    }

    /// Cancels a cancellable operation. `Err` names why it cannot be cancelled.
    pub fn cancel(&self, id: &str) -> Result<(), &'static str> {
        let cancel = {
            let mut map = self.inner.lock().expect("lock is never poisoned");
            let entry = map.get_mut(id).ok_or("Operation not found")?;
            if !entry.op.borrow().may_cancel {
                return Err("This operation can't be cancelled");
            }
            entry.cancel.take()
        };
        if let Some(c) = cancel {
            let _ = c.send(());
        }
        self.update(id, |o| o.set_status(OperationStatus::Cancelled));
        self.forget_later(id.to_string());
        Ok(())
    }
}

trait SetStatus {
    fn set_status(&mut self, s: OperationStatus);
}

impl SetStatus for Operation {
    fn set_status(&mut self, s: OperationStatus) {
        self.status = s.text().into();
        self.status_code = s.code();
    }
}

/// Sets an operation's status fields.
pub fn with_status(mut op: Operation, s: OperationStatus) -> Operation {
    op.set_status(s);
    op
}

impl Operations {
    /// Replaces a running operation's metadata (a progress message), announced on the bus as
    /// every other change; an operation already forgotten is left alone.
    pub fn set_metadata(&self, id: &str, metadata: serde_json::Value) {
        self.update(id, |o| o.metadata = Some(metadata));
    }
}
