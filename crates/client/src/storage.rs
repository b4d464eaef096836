//! `/1.0/storage-pools`, with the `?target=` two-phase create of clusters.

use rxd_api::{ResourcesStoragePool, StoragePool, StoragePoolPut, StoragePoolsPost};

use crate::{encode, target_query, Client, Result};

impl Client {
    /// `GET /1.0/storage-pools?recursion=1`.
    pub async fn storage_pools(&self) -> Result<Vec<StoragePool>> {
        self.get("/1.0/storage-pools?recursion=1").await
    }

    /// `GET /1.0/storage-pools/{name}[?target=]` with its ETag; with a target the member's
    /// own keys and status are shown.
    pub async fn storage_pool(
        &self,
        name: &str,
        target: Option<&str>,
    ) -> Result<(StoragePool, String)> {
        let path = format!(
            "/1.0/storage-pools/{}{}",
            encode(name),
            target_query(target)
        );
        self.get_with_etag(&path).await
    }

    /// `GET /1.0/storage-pools/{name}/resources[?target=]`: the pool's space and inodes on
    /// the member answering, or on the target.
    pub async fn storage_pool_resources(
        &self,
        name: &str,
        target: Option<&str>,
    ) -> Result<ResourcesStoragePool> {
        let path = format!(
            "/1.0/storage-pools/{}/resources{}",
            encode(name),
            target_query(target)
        );
        self.get(&path).await
    }

    /// `POST /1.0/storage-pools[?target=]`. With a target this defines the pool on one member
    /// (pending); without, it creates it everywhere.
    pub async fn create_storage_pool(
        &self,
        post: &StoragePoolsPost,
        target: Option<&str>,
    ) -> Result<()> {
        let path = format!("/1.0/storage-pools{}", target_query(target));
        self.send("POST", &path, post, None).await.map(|_| ())
    }

    /// `PUT /1.0/storage-pools/{name}[?target=]`.
    pub async fn update_storage_pool(
        &self,
        name: &str,
        put: &StoragePoolPut,
        etag: Option<&str>,
        target: Option<&str>,
    ) -> Result<()> {
        let path = format!(
            "/1.0/storage-pools/{}{}",
            encode(name),
            target_query(target)
        );
        self.send("PUT", &path, put, etag).await.map(|_| ())
    }

    /// `DELETE /1.0/storage-pools/{name}`.
    pub async fn delete_storage_pool(&self, name: &str) -> Result<()> {
        let path = format!("/1.0/storage-pools/{}", encode(name));
        self.request("DELETE", &path, None, None).await.map(|_| ())
    }
}
