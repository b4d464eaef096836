//! `/1.0`: the server's configuration and environment.

use rxd_api::{Resources, Server, ServerPut};

use crate::{Client, Result};

impl Client {
    /// `GET /1.0` with its ETag.
    pub async fn server(&self) -> Result<(Server, String)> {
        self.get_with_etag("/1.0").await
    }

    /// `GET /1.0?target=<member>`: another member's view, forwarded by this one.
    pub async fn server_on(&self, target: &str) -> Result<(Server, String)> {
        self.get_with_etag(&format!("/1.0{}", crate::target_query(Some(target))))
            .await
    }

    /// `GET /1.0/resources[?target=]`: the hardware of the member answering, or of the target.
    pub async fn server_resources(&self, target: Option<&str>) -> Result<Resources> {
        self.get(&format!("/1.0/resources{}", crate::target_query(target)))
            .await
    }

    /// `PUT /1.0`: replaces the whole configuration. Hidden keys sent back as `true` keep their
    /// value.
    pub async fn update_server(&self, put: &ServerPut, etag: Option<&str>) -> Result<()> {
        self.send("PUT", "/1.0", put, etag).await.map(|_| ())
    }

    /// `PATCH /1.0`: merges `put.config` into the configuration.
    pub async fn patch_server(&self, put: &ServerPut, etag: Option<&str>) -> Result<()> {
        self.send("PATCH", "/1.0", put, etag).await.map(|_| ())
    }
}
