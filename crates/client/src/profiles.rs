//! `/1.0/profiles` and `/1.0/projects`.

use rxd_api::{Profile, ProfilePost, ProfilePut, ProfilesPost, Project, ProjectState};

use crate::{encode, Client, Result};

impl Client {
    /// `GET /1.0/profiles?recursion=1`.
    pub async fn profiles(&self) -> Result<Vec<Profile>> {
        self.get("/1.0/profiles?recursion=1").await
    }

    /// `GET /1.0/profiles/{name}` with its ETag.
    pub async fn profile(&self, name: &str) -> Result<(Profile, String)> {
        self.get_with_etag(&format!("/1.0/profiles/{}", encode(name)))
            .await
    }

    /// `POST /1.0/profiles`.
    pub async fn create_profile(&self, post: &ProfilesPost) -> Result<()> {
        self.send("POST", "/1.0/profiles", post, None)
            .await
            .map(|_| ())
    }

    /// `PUT /1.0/profiles/{name}`.
    pub async fn update_profile(
        &self,
        name: &str,
        put: &ProfilePut,
        etag: Option<&str>,
    ) -> Result<()> {
        let path = format!("/1.0/profiles/{}", encode(name));
        self.send("PUT", &path, put, etag).await.map(|_| ())
    }

    /// `POST /1.0/profiles/{name}`: rename.
    pub async fn rename_profile(&self, name: &str, new_name: &str) -> Result<()> {
        let path = format!("/1.0/profiles/{}", encode(name));
        let body = ProfilePost {
            name: new_name.to_string(),
        };
        self.send("POST", &path, &body, None).await.map(|_| ())
    }

    /// `DELETE /1.0/profiles/{name}`.
    pub async fn delete_profile(&self, name: &str) -> Result<()> {
        let path = format!("/1.0/profiles/{}", encode(name));
        self.request("DELETE", &path, None, None).await.map(|_| ())
    }

    /// `GET /1.0/projects?recursion=1`.
    pub async fn projects(&self) -> Result<Vec<Project>> {
        self.get("/1.0/projects?recursion=1").await
    }

    /// `GET /1.0/projects/{name}/state`: limits and usage of the project's resources.
    pub async fn project_state(&self, name: &str) -> Result<ProjectState> {
        self.get(&format!("/1.0/projects/{}/state", encode(name)))
            .await
    }
}
