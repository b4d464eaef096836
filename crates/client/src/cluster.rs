//! `/1.0/cluster` and `/1.0/cluster/members`: bootstrap, join, members and join tokens.

use rxd_api::{
    Cluster, ClusterCertificatePut, ClusterMember, ClusterMemberPut, ClusterMembersPost,
    ClusterPut, Operation,
};

use crate::{encode, Client, Result};

impl Client {
    /// `GET /1.0/cluster` with its ETag.
    pub async fn cluster(&self) -> Result<(Cluster, String)> {
        self.get_with_etag("/1.0/cluster").await
    }

    /// `PUT /1.0/cluster`: bootstrap, join or disable. Bootstrap and join answer with an
    /// operation; disabling answers synchronously, which gives `None`.
    pub async fn update_cluster(&self, put: &ClusterPut) -> Result<Option<Operation>> {
        let raw = self.send("PUT", "/1.0/cluster", put, None).await?;
        if raw.envelope.kind == rxd_api::ResponseType::Async {
            raw.operation().map(Some)
        } else {
            Ok(None)
        }
    }

    /// `PUT /1.0/cluster/certificate`: replaces the cluster certificate on every member.
    pub async fn update_cluster_certificate(&self, put: &ClusterCertificatePut) -> Result<()> {
        self.send("PUT", "/1.0/cluster/certificate", put, None)
            .await
            .map(|_| ())
    }

    /// `GET /1.0/cluster/members?recursion=1`.
    pub async fn cluster_members(&self) -> Result<Vec<ClusterMember>> {
        self.get("/1.0/cluster/members?recursion=1").await
    }

    /// `GET /1.0/cluster/members/{name}` with its ETag.
    pub async fn cluster_member(&self, name: &str) -> Result<(ClusterMember, String)> {
        self.get_with_etag(&format!("/1.0/cluster/members/{}", encode(name)))
            .await
    }

    /// `PUT /1.0/cluster/members/{name}`.
    pub async fn update_cluster_member(
        &self,
        name: &str,
        put: &ClusterMemberPut,
        etag: Option<&str>,
    ) -> Result<()> {
        let path = format!("/1.0/cluster/members/{}", encode(name));
        self.send("PUT", &path, put, etag).await.map(|_| ())
    }

    /// `POST /1.0/cluster/members/{name}`: rename.
    pub async fn rename_cluster_member(&self, name: &str, new_name: &str) -> Result<()> {
        let path = format!("/1.0/cluster/members/{}", encode(name));
        let body = ClusterMembersPost {
            server_name: new_name.to_string(),
        };
        self.send("POST", &path, &body, None).await.map(|_| ())
    }

    /// `DELETE /1.0/cluster/members/{name}[?force=1]`.
    pub async fn delete_cluster_member(&self, name: &str, force: bool) -> Result<()> {
        let mut path = format!("/1.0/cluster/members/{}", encode(name));
        if force {
            path.push_str("?force=1");
        }
        self.request("DELETE", &path, None, None).await.map(|_| ())
    }

    /// `POST /1.0/cluster/members`: a join token for `name`, as a Running `token` operation
    /// whose metadata carries `serverName`, `fingerprint`, `addresses`, `secret`, `expiresAt`.
    pub async fn create_join_token(&self, name: &str) -> Result<Operation> {
        let body = ClusterMembersPost {
            server_name: name.to_string(),
        };
        self.send_async("POST", "/1.0/cluster/members", &body).await
    }
}
