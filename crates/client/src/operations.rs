//! `/1.0/operations`: listing, reading, cancelling and waiting.

use std::collections::BTreeMap;
use std::time::Duration;

use rxd_api::Operation;

use crate::{encode, Client, Result};

impl Client {
    /// `GET /1.0/operations?recursion=1`: operations keyed by lower-case status
    /// (`running`, `success`, ...). In a cluster the answering member merges every member's.
    pub async fn operations(&self) -> Result<BTreeMap<String, Vec<Operation>>> {
        // LXD answers `null` for a status group with nothing in it on some paths.
        let map: BTreeMap<String, Option<Vec<Operation>>> =
            self.get("/1.0/operations?recursion=1").await?;
        Ok(map
            .into_iter()
            .map(|(status, ops)| (status, ops.unwrap_or_default()))
            .collect())
    }

    /// `GET /1.0/operations/{id}`.
    pub async fn operation(&self, id: &str) -> Result<Operation> {
        self.get(&format!("/1.0/operations/{}", encode(id))).await
    }

    /// `DELETE /1.0/operations/{id}`: cancels it (and revokes a join token).
    pub async fn cancel_operation(&self, id: &str) -> Result<()> {
        let path = format!("/1.0/operations/{}", encode(id));
        self.request("DELETE", &path, None, None).await.map(|_| ())
    }

    /// `GET /1.0/operations/{id}/wait[?timeout=N]`: blocks until the operation is final or
    /// `timeout` (rounded up to whole seconds) passes, then returns it as it is; without a
    /// timeout it waits as long as the operation runs.
    pub async fn wait_operation(&self, id: &str, timeout: Option<Duration>) -> Result<Operation> {
        let mut path = format!("/1.0/operations/{}/wait", encode(id));
        if let Some(t) = timeout {
            let secs = t.as_secs() + u64::from(t.subsec_nanos() > 0);
            path.push_str(&format!("?timeout={secs}"));
        }
        self.get(&path).await
    }
}
