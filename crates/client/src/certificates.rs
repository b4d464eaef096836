//! `/1.0/certificates`: the trust store.

use rxd_api::{Certificate, CertificatePut, CertificatesPost, ResponseType};

use crate::{encode, Client, RawResponse, Result};

impl Client {
    /// `GET /1.0/certificates?recursion=1`.
    pub async fn certificates(&self) -> Result<Vec<Certificate>> {
        self.get("/1.0/certificates?recursion=1").await
    }

    /// `GET /1.0/certificates/{fingerprint}` with its ETag.
    pub async fn certificate(&self, fingerprint: &str) -> Result<(Certificate, String)> {
        self.get_with_etag(&format!("/1.0/certificates/{}", encode(fingerprint)))
            .await
    }

    /// `POST /1.0/certificates`. Adding a certificate answers sync (201); asking for a
    /// certificate-add token (`token: true`) answers with an operation, so the raw reply is
    /// returned for the caller to read either way.
    pub async fn add_certificate(&self, post: &CertificatesPost) -> Result<RawResponse> {
        self.send("POST", "/1.0/certificates", post, None).await
    }

    /// `POST /1.0/certificates` with `token: true`: the Running operation that carries the
    /// certificate-add token.
    pub async fn create_certificate_token(
        &self,
        post: &CertificatesPost,
    ) -> Result<rxd_api::Operation> {
        let raw = self.add_certificate(post).await?;
        if raw.envelope.kind != ResponseType::Async {
            return Err(crate::ClientError::UnexpectedResponse {
                path: raw.path.clone(),
                expected: ResponseType::Async,
                got: raw.envelope.kind,
            });
        }
        raw.operation()
    }

    /// `PUT /1.0/certificates/{fingerprint}`.
    pub async fn update_certificate(
        &self,
        fingerprint: &str,
        put: &CertificatePut,
        etag: Option<&str>,
    ) -> Result<()> {
        let path = format!("/1.0/certificates/{}", encode(fingerprint));
        self.send("PUT", &path, put, etag).await.map(|_| ())
    }

    /// `PATCH /1.0/certificates/{fingerprint}`: empty name and type keep the current ones.
    pub async fn patch_certificate(
        &self,
        fingerprint: &str,
        put: &CertificatePut,
        etag: Option<&str>,
    ) -> Result<()> {
        let path = format!("/1.0/certificates/{}", encode(fingerprint));
        self.send("PATCH", &path, put, etag).await.map(|_| ())
    }

    /// `DELETE /1.0/certificates/{fingerprint}`.
    pub async fn delete_certificate(&self, fingerprint: &str) -> Result<()> {
        let path = format!("/1.0/certificates/{}", encode(fingerprint));
        self.request("DELETE", &path, None, None).await.map(|_| ())
    }
}
