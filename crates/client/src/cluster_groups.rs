//! `/1.0/cluster/groups`: cluster groups.

use rxd_api::{ClusterGroup, ClusterGroupPost, ClusterGroupPut, ClusterGroupsPost};

use crate::{encode, Client, Result};

fn path(name: &str) -> String {
    format!("/1.0/cluster/groups/{}", encode(name))
}

impl Client {
    /// `GET /1.0/cluster/groups`: the groups' URLs.
    pub async fn cluster_group_urls(&self) -> Result<Vec<String>> {
        self.get("/1.0/cluster/groups").await
    }

    /// `GET /1.0/cluster/groups?recursion=1`.
    pub async fn cluster_groups(&self) -> Result<Vec<ClusterGroup>> {
        self.get("/1.0/cluster/groups?recursion=1").await
    }

    /// `GET /1.0/cluster/groups/{name}` with its ETag.
    pub async fn cluster_group(&self, name: &str) -> Result<(ClusterGroup, String)> {
        self.get_with_etag(&path(name)).await
    }

    /// `POST /1.0/cluster/groups`.
    pub async fn create_cluster_group(&self, post: &ClusterGroupsPost) -> Result<()> {
        self.send("POST", "/1.0/cluster/groups", post, None)
            .await
            .map(|_| ())
    }

    /// `PUT /1.0/cluster/groups/{name}`.
    pub async fn update_cluster_group(
        &self,
        name: &str,
        put: &ClusterGroupPut,
        etag: Option<&str>,
    ) -> Result<()> {
        self.send("PUT", &path(name), put, etag).await.map(|_| ())
    }

    /// `PATCH /1.0/cluster/groups/{name}`: only the fields `patch` holds change.
    pub async fn patch_cluster_group(
        &self,
        name: &str,
        patch: &serde_json::Value,
        etag: Option<&str>,
    ) -> Result<()> {
        self.send("PATCH", &path(name), patch, etag)
            .await
            .map(|_| ())
    }

    /// `POST /1.0/cluster/groups/{name}`: rename.
    pub async fn rename_cluster_group(&self, name: &str, new_name: &str) -> Result<()> {
        let body = ClusterGroupPost {
            name: new_name.to_string(),
        };
        self.send("POST", &path(name), &body, None)
            .await
            .map(|_| ())
    }

    /// `DELETE /1.0/cluster/groups/{name}`.
    pub async fn delete_cluster_group(&self, name: &str) -> Result<()> {
        self.request("DELETE", &path(name), None, None)
            .await
            .map(|_| ())
    }
}
