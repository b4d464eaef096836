//! Member-to-member HTTPS: the caller presents its own `server.crt` and pins the cluster
//! certificate. The raft transport rides on it.

use std::sync::{Mutex, OnceLock};

use futures_util::future::BoxFuture;
use rxd_raft::{Transport, TransportError};
use rxd_tls::CertKey;
use tokio_util::bytes::Bytes;

use crate::{Error, Host};

/// Where the transport reads the pins from once the daemon runs: `None` once it stopped.
pub type PinSource = Box<dyn Fn() -> Option<Vec<String>> + Send + Sync>;

/// Sends internal requests to other members.
pub struct PeerTransport {
    server_cert: CertKey,
    pins: OnceLock<PinSource>,
    initial_cluster_cert: Option<CertKey>,
    client: Mutex<Option<(Vec<String>, reqwest::Client)>>,
}

impl PeerTransport {
    /// A transport presenting `server_cert`.
    pub fn new(server_cert: CertKey, cluster_cert: Option<CertKey>) -> Self {
        PeerTransport {
            server_cert,
            pins: OnceLock::new(),
            initial_cluster_cert: cluster_cert,
            client: Mutex::new(None),
        }
    }

    /// Lets the transport follow the cluster certificate: `pins` answers [`Host::peer_pins`].
    pub fn attach(&self, pins: PinSource) {
        let _ = self.pins.set(pins);
    }

    /// The fingerprints the other member may present: see [`Host::peer_pins`].
    fn pins(&self) -> Vec<String> {
        self.pins.get().and_then(|pins| pins()).unwrap_or_else(|| {
            vec![self
                .initial_cluster_cert
                .as_ref()
                .unwrap_or(&self.server_cert)
                .fingerprint()]
        })
    }

    fn client(&self) -> Result<reqwest::Client, TransportError> {
        let pins = self.pins();
        let mut cached = self.client.lock().expect("lock is never poisoned");
        if let Some((cached_pins, c)) = cached.as_ref() {
            if *cached_pins == pins {
                return Ok(c.clone());
            }
        }
        let config = rxd_tls::fingerprints_pinned_client_config(&pins, Some(&self.server_cert))
            .map_err(|e| TransportError::Connect(Box::new(e)))?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .tcp_nodelay(true)
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| TransportError::Connect(Box::new(e)))?;
        *cached = Some((pins, client.clone()));
        Ok(client)
    }
}

/// The reply body of a successful exchange, or the peer's status as an error.
async fn reply_of(resp: reqwest::Response) -> Result<Vec<u8>, TransportError> {
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(transport_error)?;
    if !status.is_success() {
        return Err(TransportError::Status {
            status: status.as_u16(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        });
    }
    Ok(bytes.to_vec())
}

impl Transport for PeerTransport {
    fn send_snapshot(
        &self,
        address: &str,
        head: Vec<u8>,
        data: std::fs::File,
        timeout: std::time::Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        use futures_util::StreamExt;

        let client = self.client();
        let url = format!("https://{address}{}", rxd_raft::PATH_SNAPSHOT);
        Box::pin(async move {
            let client = client?;
            // The head, then the file in 64 KiB pieces: memory stays flat whatever the size.
            let file = tokio_util::io::ReaderStream::with_capacity(
                tokio::fs::File::from_std(data),
                64 * 1024,
            );
            let body =
                futures_util::stream::once(
                    async move { Ok::<_, std::io::Error>(Bytes::from(head)) },
                )
                .chain(file);
            let resp = client
                .post(&url)
                .timeout(timeout)
                .body(reqwest::Body::wrap_stream(body))
                .send()
                .await
                .map_err(transport_error)?;
            reply_of(resp).await
        })
    }

    fn post(
        &self,
        address: &str,
        path: &'static str,
        body: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        let client = self.client();
        let url = format!("https://{address}{path}");
        Box::pin(async move {
            let client = client?;
            let resp = client
                .post(&url)
                .body(body)
                .send()
                .await
                .map_err(transport_error)?;
            reply_of(resp).await
        })
    }
}

/// What a failed exchange means for delivery: only a connection that was never established
/// (refused, unreachable, TLS handshake failed) certainly did not deliver the request; after a
/// reset or a timeout the peer may have acted on it.
fn transport_error(e: reqwest::Error) -> TransportError {
    if e.is_connect() {
        TransportError::Connect(Box::new(e))
    } else {
        TransportError::Exchange(Box::new(e))
    }
}

/// How long one member-to-member call may take: longer than the longest internal step (a new
/// learner catching up, 60 s), so only a member that stopped answering runs into it.
pub const MEMBER_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(90);

/// A client for another member: presents this member's `server.crt` and pins the cluster
/// certificates it may serve ([`Host::peer_pins`]); every request gives up after
/// [`MEMBER_CALL_TIMEOUT`].
pub fn member_client<H: Host + ?Sized>(h: &H, address: &str) -> crate::Result<rxd_client::Client> {
    if h.cluster_cert().is_none() {
        return Err(Error::bad_request("This server is not clustered"));
    }
    let config = rxd_tls::fingerprints_pinned_client_config(&h.peer_pins(), Some(h.server_cert()))
        .map_err(|e| Error::internal(e.to_string()))?;
    rxd_client::Client::https_with_config(address, config)
        .map(|c| c.with_timeout(MEMBER_CALL_TIMEOUT))
        .map_err(|e| Error::internal(e.to_string()))
}

/// The server's own sentence from a client error.
pub fn api_message(e: &rxd_client::ClientError) -> String {
    match e {
        rxd_client::ClientError::Api { message, .. } => message.clone(),
        other => other.to_string(),
    }
}
