//! The unix socket and the HTTPS listener. Each accepted connection is served by hyper with the
//! caller's [`Peer`] attached to every request, so the access middleware can decide trust.
//!
//! ```text
//!  unix.socket ──accept──┐
//!                        ├─> hyper (http1/h2, upgrades) ─> router (Peer in extensions)
//!  HTTPS ─accept─TLS 1.3─┘          peer certificate ──────────^
//! ```

use std::path::Path;
use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::FutureExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::access::Peer;
use crate::error::ApiError;

/// Middleware: a handler that panics answers a 500 envelope, and the panic is logged with the
/// request, instead of the connection closing without an answer.
pub async fn catch_panic(req: Request, next: Next) -> Response {
    let request = format!("{} {}", req.method(), req.uri().path());
    match std::panic::AssertUnwindSafe(next.run(req))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(payload) => {
            let why = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!("Request {request} panicked: {why}");
            ApiError::internal(format!("Cannot answer {request}: internal error")).into_response()
        }
    }
}

fn serve<S>(stream: S, router: Router, peer: Peer)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = router.map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(peer.clone());
        req.map(axum::body::Body::new)
    });
    let svc = TowerToHyperService::new(svc);
    tokio::spawn(async move {
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        if let Err(e) = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), svc)
            .await
        {
            tracing::debug!("Connection ended: {e}");
        }
    });
}

/// Listens on the unix socket at `path` (replacing a stale one) until the task is aborted.
pub fn unix(path: &Path, router: Router) -> std::io::Result<JoinHandle<()>> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o660))?;
    Ok(tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => serve(stream, router.clone(), Peer::Unix),
                Err(e) => tracing::warn!("Unix socket accept failed: {e}"),
            }
        }
    }))
}

/// The TLS configuration the HTTPS listener uses for new connections; swapped when the served
/// certificate changes (bootstrap, join, leave).
pub type TlsConfig = Arc<std::sync::RwLock<Arc<rustls::ServerConfig>>>;

/// Binds `address` now (so the caller learns of a bind failure) and serves HTTPS on it.
pub async fn https(
    address: &str,
    tls: TlsConfig,
    router: Router,
) -> std::io::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(address).await?;
    Ok(tokio::spawn(async move {
        loop {
            let (stream, remote) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("HTTPS accept failed: {e}");
                    continue;
                }
            };
            let config = tls.read().expect("lock is never poisoned").clone();
            let router = router.clone();
            tokio::spawn(async move {
                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                match acceptor.accept(stream).await {
                    Ok(tls_stream) => {
                        let cert_der = tls_stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .map(|c| c.as_ref().to_vec());
                        let peer = Peer::Tls {
                            address: remote.to_string(),
                            cert_der,
                        };
                        serve(tls_stream, router, peer);
                    }
                    Err(e) => tracing::debug!("TLS handshake with {remote} failed: {e}"),
                }
            });
        }
    }))
}
