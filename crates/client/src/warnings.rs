//! `/1.0/warnings` (API extension `warnings`).

use rxd_api::{Warning, WarningPut};

use crate::{encode, Client, Result};

impl Client {
    /// `GET /1.0/warnings?recursion=1`.
    pub async fn warnings(&self) -> Result<Vec<Warning>> {
        self.get("/1.0/warnings?recursion=1").await
    }

    /// `GET /1.0/warnings/{uuid}`.
    pub async fn warning(&self, uuid: &str) -> Result<Warning> {
        self.get(&format!("/1.0/warnings/{}", encode(uuid))).await
    }

    /// `PUT /1.0/warnings/{uuid}`: sets its status (`acknowledged` or `new`).
    pub async fn update_warning(&self, uuid: &str, put: &WarningPut) -> Result<()> {
        let path = format!("/1.0/warnings/{}", encode(uuid));
        self.send("PUT", &path, put, None).await.map(|_| ())
    }

    /// `DELETE /1.0/warnings/{uuid}`.
    pub async fn delete_warning(&self, uuid: &str) -> Result<()> {
        let path = format!("/1.0/warnings/{}", encode(uuid));
        self.request("DELETE", &path, None, None).await.map(|_| ())
    }
}
