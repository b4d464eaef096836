//! The one way anything talks to an rxd (or LXD) daemon: `rxc`, `rxd init`, member-to-member
//! calls and tests all go through [`Client`].
//!
//! This crate owns the transports (HTTP/1.1 over the unix socket with `Host: unix.socket`, and
//! HTTPS pinned to one server certificate), the decoding of LXD's response envelope into
//! [`RawResponse`] or [`ClientError::Api`], one typed call per REST endpoint (one module per
//! resource), operation waits and the `/1.0/events` websocket.
//!
//! It deliberately knows nothing of how a daemon stores or decides anything, of command-line
//! output, or of where certificates live on disk: callers hand it a socket path, or an address
//! with the PEM of the certificate to pin and an optional client certificate.
#![deny(missing_docs)]

mod certificates;
mod cluster;
mod cluster_groups;
mod error;
mod events;
mod networks;
mod operations;
mod profiles;
mod server;
mod storage;
mod transport;
mod warnings;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rxd_api::{Operation, Response, ResponseType};
use serde::de::DeserializeOwned;

pub use error::{ClientError, Result};
pub use events::EventStream;
pub use rxd_tls::CertKey;

use transport::{HttpRequest, Transport};

/// The User-Agent sent unless [`Client::with_user_agent`] says otherwise.
pub const DEFAULT_USER_AGENT: &str = concat!("rxd ", env!("CARGO_PKG_VERSION"));

/// A handle on one daemon. Cheap to clone; every request opens its own connection on the unix
/// socket and shares a connection pool over HTTPS.
#[derive(Clone)]
pub struct Client {
    transport: Arc<Transport>,
    user_agent: String,
    timeout: Option<Duration>,
    headers: Arc<[(&'static str, String)]>,
}

/// The headers with which a member forwarding a request names the original caller, as LXD's
/// members do (`X-LXD-forwarded-*`); the receiving member believes them only from a member.
pub const FORWARDED_USERNAME: &str = "X-LXD-forwarded-username";
/// See [`FORWARDED_USERNAME`].
pub const FORWARDED_PROTOCOL: &str = "X-LXD-forwarded-protocol";
/// See [`FORWARDED_USERNAME`].
pub const FORWARDED_ADDRESS: &str = "X-LXD-forwarded-address";

/// A decoded reply: the HTTP facts plus the envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct RawResponse {
    /// HTTP status (200, 201, 202, ...).
    pub status: u16,
    /// The `ETag` header without its quotes.
    pub etag: Option<String>,
    /// The `Location` header (set on 201 and 202).
    pub location: Option<String>,
    /// The LXD envelope.
    pub envelope: Response,
    /// The request path, for messages.
    pub path: String,
}

impl RawResponse {
    /// Decodes `metadata` as `T`.
    pub fn metadata<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.envelope.metadata.clone()).map_err(|source| {
            ClientError::Metadata {
                path: self.path.clone(),
                expected: std::any::type_name::<T>(),
                cause: source,
            }
        })
    }

    /// The operation an async response created.
    pub fn operation(&self) -> Result<Operation> {
        if self.envelope.kind != ResponseType::Async {
            return Err(ClientError::UnexpectedResponse {
                path: self.path.clone(),
                expected: ResponseType::Async,
                got: self.envelope.kind,
            });
        }
        self.metadata()
    }
}

/// Percent-encodes one path segment or query value, so that names with spaces or slashes
/// cannot change the URL's shape.
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `?target=<member>` or nothing.
pub(crate) fn target_query(target: Option<&str>) -> String {
    match target {
        Some(t) if !t.is_empty() => format!("?target={}", encode(t)),
        _ => String::new(),
    }
}

impl Client {
    /// A client for the daemon listening on the unix socket at `path`. Nothing is connected
    /// until the first request.
    pub fn unix(path: impl Into<PathBuf>) -> Client {
        Client {
            transport: Arc::new(Transport::Unix { path: path.into() }),
            user_agent: DEFAULT_USER_AGENT.to_string(),
            timeout: None,
            headers: Arc::new([]),
        }
    }

    /// A client for the daemon at `address` (`host`, `host:port` or `https://host:port`; the
    /// port defaults to 8443) that accepts exactly the server certificate `server_cert_pem` and
    /// presents `client_cert` when given.
    pub fn https(
        address: &str,
        server_cert_pem: &str,
        client_cert: Option<&CertKey>,
    ) -> Result<Client> {
        let config = rxd_tls::pinned_client_config(server_cert_pem, client_cert).map_err(|e| {
            ClientError::Tls {
                endpoint: address.to_string(),
                cause: Box::new(e),
            }
        })?;
        Client::https_with_config(address, config)
    }

    /// A client for the daemon at `address` with a ready TLS configuration, such as the
    /// capturing one used to learn a server's certificate before trusting it.
    pub fn https_with_config(address: &str, config: rustls::ClientConfig) -> Result<Client> {
        Client::https_with_config_from(address, config, None)
    }

    /// Like [`Client::https_with_config`], with the connections made from `source` when given
    /// (the address of one interface, so the server sees which one asks).
    pub fn https_with_config_from(
        address: &str,
        config: rustls::ClientConfig,
        source: Option<std::net::IpAddr>,
    ) -> Result<Client> {
        // reqwest panics at build time without a process-wide provider; installing twice is
        // harmless and the second call's error only says one is already there.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let address = normalise_address(address)?;
        let tls = Arc::new(config.clone());
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .local_address(source)
            .tcp_nodelay(true)
            .no_proxy()
            .build()
            .map_err(|e| ClientError::Tls {
                endpoint: address.clone(),
                cause: Box::new(e),
            })?;
        Ok(Client {
            transport: Arc::new(Transport::Https {
                base: format!("https://{address}"),
                address,
                http,
                tls,
            }),
            user_agent: DEFAULT_USER_AGENT.to_string(),
            timeout: None,
            headers: Arc::new([]),
        })
    }

    /// The same client naming, on every request, the caller it forwards for (a member passing
    /// a request on to another member: [`FORWARDED_USERNAME`] and its siblings).
    pub fn forwarding_for(mut self, username: &str, protocol: &str, address: &str) -> Client {
        self.headers = Arc::new([
            (FORWARDED_USERNAME, username.to_string()),
            (FORWARDED_PROTOCOL, protocol.to_string()),
            (FORWARDED_ADDRESS, address.to_string()),
        ]);
        self
    }

    /// The same client sending `user_agent` (members use `lxd-cluster-notifier` for
    /// notifications).
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Client {
        self.user_agent = user_agent.into();
        self
    }

    /// The same client giving up on any one request after `timeout` (members calling each
    /// other use one, so a member that stopped answering cannot hold a caller forever).
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = Some(timeout);
        self
    }

    /// The socket path or `host:port` this client talks to.
    pub fn endpoint(&self) -> String {
        self.transport.endpoint()
    }

    /// Whether this client uses the unix socket.
    pub fn is_unix(&self) -> bool {
        matches!(*self.transport, Transport::Unix { .. })
    }

    /// Sends one request and decodes the envelope. A non-2xx status or an error envelope
    /// becomes [`ClientError::Api`] carrying the daemon's `error` text verbatim.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        if_match: Option<&str>,
    ) -> Result<RawResponse> {
        let reply = self.exchange(method, path, body, if_match).await?;
        decode_reply(method, path, reply)
    }

    /// `GET path` of an endpoint that answers plain text rather than an envelope
    /// (`/1.0/metrics`); an error still comes as [`ClientError::Api`].
    pub async fn get_text(&self, path: &str) -> Result<String> {
        let reply = self.exchange("GET", path, None, None).await?;
        if (200..300).contains(&reply.status) {
            return Ok(String::from_utf8_lossy(&reply.body).into_owned());
        }
        decode_reply("GET", path, reply).map(|_| String::new())
    }

    /// Sends one request within the client's time limit.
    async fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        if_match: Option<&str>,
    ) -> Result<transport::HttpReply> {
        let body = body.map(|b| serde_json::to_vec(&b).expect("JSON values always serialise"));
        let send = self.transport.send(HttpRequest {
            method,
            path,
            body,
            if_match,
            user_agent: &self.user_agent,
            headers: &self.headers,
        });
        let reply =
            match self.timeout {
                None => send.await?,
                Some(limit) => tokio::time::timeout(limit, send).await.map_err(|_| {
                    ClientError::Timeout {
                        endpoint: self.endpoint(),
                        method: method.to_string(),
                        path: path.to_string(),
                        seconds: limit.as_secs(),
                    }
                })??,
            };
        Ok(reply)
    }

    /// Sends `body` (any serialisable type) and decodes the envelope.
    pub(crate) async fn send<B: serde::Serialize>(
        &self,
        method: &str,
        path: &str,
        body: &B,
        if_match: Option<&str>,
    ) -> Result<RawResponse> {
        let value = serde_json::to_value(body).expect("wire types always serialise");
        self.request(method, path, Some(value), if_match).await
    }

    /// `GET path` and decode `metadata` as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.request("GET", path, None, None).await?.metadata()
    }

    /// `GET path`, decoding `metadata` as `T`, with the ETag (empty when none was sent).
    pub async fn get_with_etag<T: DeserializeOwned>(&self, path: &str) -> Result<(T, String)> {
        let raw = self.request("GET", path, None, None).await?;
        Ok((raw.metadata()?, raw.etag.clone().unwrap_or_default()))
    }

    /// Sends a request that must answer with an operation.
    pub(crate) async fn send_async<B: serde::Serialize>(
        &self,
        method: &str,
        path: &str,
        body: &B,
    ) -> Result<Operation> {
        self.send(method, path, body, None).await?.operation()
    }

    /// Waits for `op` to finish through `/1.0/operations/{id}/wait` and turns a failed or
    /// cancelled operation into [`ClientError::Api`] carrying its `err` text.
    pub async fn wait_success(
        &self,
        op: &Operation,
        timeout: Option<Duration>,
    ) -> Result<Operation> {
        let done = self.wait_operation(&op.id, timeout).await?;
        if done.status_code >= 400 {
            let message = if done.err.is_empty() {
                done.status.clone()
            } else {
                done.err.clone()
            };
            return Err(ClientError::Api {
                status: done.status_code,
                message,
            });
        }
        Ok(done)
    }
}

/// Accepts `host`, `host:port`, `[v6]:port` and `https://...`, and returns `host:port`.
fn normalise_address(address: &str) -> Result<String> {
    let bare = address
        .trim()
        .trim_start_matches("https://")
        .trim_end_matches('/');
    if bare.is_empty() || bare.contains('/') || bare.contains("://") {
        return Err(ClientError::InvalidAddress {
            address: address.to_string(),
        });
    }
    let has_port = if let Some(rest) = bare.strip_prefix('[') {
        match rest.split_once(']') {
            Some((_, after)) => after.starts_with(':'),
            None => {
                return Err(ClientError::InvalidAddress {
                    address: address.to_string(),
                })
            }
        }
    } else {
        match bare.matches(':').count() {
            0 => false,
            1 => true,
            // A bare IPv6 address without brackets has no port.
            _ => return Ok(format!("[{bare}]:8443")),
        }
    };
    Ok(if has_port {
        bare.to_string()
    } else {
        format!("{bare}:8443")
    })
}

fn decode_reply(method: &str, path: &str, reply: transport::HttpReply) -> Result<RawResponse> {
    let success = (200..300).contains(&reply.status);
    let envelope: Response = match serde_json::from_slice(&reply.body) {
        Ok(envelope) => envelope,
        Err(source) if success => {
            return Err(ClientError::Envelope {
                method: method.to_string(),
                path: path.to_string(),
                status: reply.status,
                cause: source,
            })
        }
        // A non-envelope error body (a proxy, a plain-text internal endpoint) still says
        // something worth showing.
        Err(_) => {
            return Err(ClientError::Api {
                status: reply.status,
                message: String::from_utf8_lossy(&reply.body).trim().to_string(),
            })
        }
    };
    if !success || envelope.kind == ResponseType::Error {
        let status = if envelope.error_code != 0 {
            envelope.error_code
        } else {
            reply.status
        };
        return Err(ClientError::Api {
            status,
            message: envelope.error,
        });
    }
    Ok(RawResponse {
        status: reply.status,
        etag: reply.etag,
        location: reply.location,
        envelope,
        path: path.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_get_the_default_port() {
        let cases = [
            ("127.0.0.1", "127.0.0.1:8443"),
            ("127.0.0.1:9443", "127.0.0.1:9443"),
            ("https://127.0.0.1:8443/", "127.0.0.1:8443"),
            ("https://127.0.0.1", "127.0.0.1:8443"),
            ("::1", "[::1]:8443"),
            ("[::1]", "[::1]:8443"),
            ("[::1]:9000", "[::1]:9000"),
            ("localhost", "localhost:8443"),
        ];
        for (given, want) in cases {
            assert_eq!(normalise_address(given).unwrap(), want, "{given}");
        }
        for bad in ["", "http://x/y", "a/b"] {
            assert!(normalise_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn segments_are_percent_encoded() {
        let cases = [
            ("node1", "node1"),
            ("a b", "a%20b"),
            ("a/b", "a%2Fb"),
            ("x.y_z-~", "x.y_z-~"),
        ];
        for (given, want) in cases {
            assert_eq!(encode(given), want);
        }
        assert_eq!(target_query(Some("node2")), "?target=node2");
        assert_eq!(target_query(Some("")), "");
        assert_eq!(target_query(None), "");
    }

    fn reply(status: u16, body: &str) -> transport::HttpReply {
        transport::HttpReply {
            status,
            etag: Some("e1".into()),
            location: None,
            body: hyper::body::Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn envelopes_decode_into_results() {
        let ok = decode_reply(
            "GET",
            "/1.0",
            reply(
                200,
                r#"{"type":"sync","status":"Success","status_code":200,"operation":"","error_code":0,"error":"","metadata":{"a":1}}"#,
            ),
        )
        .unwrap();
        assert_eq!(ok.etag.as_deref(), Some("e1"));
        assert_eq!(ok.envelope.metadata["a"], 1);

        let err = decode_reply(
            "GET",
            "/1.0/cluster/members/x",
            reply(
                404,
                r#"{"type":"error","status":"","status_code":0,"operation":"","error_code":404,"error":"Cluster member not found","metadata":null}"#,
            ),
        )
        .unwrap_err();
        assert!(err.is_not_found());
        assert_eq!(err.to_string(), "Cluster member not found");

        let plain = decode_reply(
            "PUT",
            "/internal/database",
            reply(403, "invalid client certificate\n"),
        )
        .unwrap_err();
        assert_eq!(plain.status(), Some(403));
        assert_eq!(plain.to_string(), "invalid client certificate");

        let garbage = decode_reply("GET", "/1.0", reply(200, "<html>")).unwrap_err();
        assert!(matches!(garbage, ClientError::Envelope { status: 200, .. }));
    }
}
