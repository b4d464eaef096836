//! The unix socket and the HTTPS listener. Each accepted connection is served by hyper with the
//! caller's [`Peer`] attached to every request, so the access middleware can decide trust.
//!
//! On HTTPS a connection is *unauthenticated* from its accept until its TLS handshake shows a
//! trusted certificate (a member's or a trusted client's); one without such a certificate stays
//! unauthenticated while it lives. Unauthenticated connections are bounded, in total and per
//! source address: a new one is always accepted, and the oldest over the bound is closed, so a
//! flood cannot keep a member's or a trusted client's fresh connection out. They also get short
//! timeouts; trusted ones only an idle timeout longer than clients keep idle connections.
//!
//! ```text
//!  unix.socket ──accept──────────────────────────┐
//!                                                ├─> hyper (http1/h2, upgrades) ─> router
//!  HTTPS ─accept─> Gate (unauthenticated, bounded)│         (Peer in extensions)
//!           └─TLS 1.3 within 10 s─> trusted? ─yes─┤ left the gate, idle 120 s
//!                                            no ─┘ stays in the gate, header and idle 10 s
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::access::Peer;
use crate::error::ApiError;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an unauthenticated connection has to send a request header, and may stay idle.
const UNTRUSTED_IDLE: Duration = Duration::from_secs(10);
/// How long a trusted connection may stay idle: longer than clients keep an idle connection in
/// their pools (90 s in Go and reqwest), so the client is the one that closes it.
const TRUSTED_IDLE: Duration = Duration::from_secs(120);
/// Unauthenticated connections at once; beyond it the oldest is closed.
const MAX_UNAUTHENTICATED: usize = 512;
/// Unauthenticated connections from one address at once; beyond it its oldest is closed.
const MAX_UNAUTHENTICATED_PER_ADDRESS: usize = 64;
/// The pause after a failed accept (out of file descriptors), so the loop does not spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

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

/// Decides whether a connection's peer is trusted (a member or a trusted client).
pub type TrustCheck = Box<dyn Fn(Peer) -> BoxFuture<'static, bool> + Send + Sync>;

/// The HTTPS listeners' bound on unauthenticated connections, kept across rebinds.
pub struct Gate {
    trusted: TrustCheck,
    waiting: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    next: u64,
    /// By admission order, so the first is the oldest.
    connections: BTreeMap<u64, (IpAddr, CancellationToken)>,
    per_address: HashMap<IpAddr, usize>,
}

impl Waiting {
    fn remove(&mut self, id: u64) {
        if let Some((ip, close)) = self.connections.remove(&id) {
            close.cancel();
            if let Some(n) = self.per_address.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.per_address.remove(&ip);
                }
            }
        }
    }

    fn oldest(&self, from: Option<IpAddr>) -> Option<u64> {
        self.connections
            .iter()
            .find(|(_, (ip, _))| from.is_none_or(|f| *ip == f))
            .map(|(id, _)| *id)
    }
}

/// An unauthenticated connection's place in the gate; cancelled when it is closed to make room.
struct Ticket {
    gate: Arc<Gate>,
    id: u64,
    close: CancellationToken,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.gate
            .waiting
            .lock()
            .expect("lock is never poisoned")
            .remove(self.id);
    }
}

impl Gate {
    /// A gate that asks `trusted` about each connection once its handshake is done.
    pub fn new(trusted: TrustCheck) -> Arc<Gate> {
        Arc::new(Gate {
            trusted,
            waiting: Mutex::new(Waiting::default()),
        })
    }

    /// Admits a new connection from `ip`, closing the oldest ones over the bounds.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Ticket {
        let mut waiting = self.waiting.lock().expect("lock is never poisoned");
        if waiting.per_address.get(&ip).copied().unwrap_or(0) >= MAX_UNAUTHENTICATED_PER_ADDRESS {
            if let Some(id) = waiting.oldest(Some(ip)) {
                waiting.remove(id);
            }
        }
        if waiting.connections.len() >= MAX_UNAUTHENTICATED {
            if let Some(id) = waiting.oldest(None) {
                waiting.remove(id);
            }
        }
        let id = waiting.next;
        waiting.next += 1;
        let close = CancellationToken::new();
        waiting.connections.insert(id, (ip, close.clone()));
        *waiting.per_address.entry(ip).or_default() += 1;
        Ticket {
            gate: self.clone(),
            id,
            close,
        }
    }
}

/// A connection's timeouts: none on the unix socket.
#[derive(Clone, Copy)]
struct Timeouts {
    /// Closes an idle connection, and (HTTP/1) one whose request header is not complete.
    idle: Option<Duration>,
}

/// Requests in flight on a connection, and when the last one ended.
struct Activity {
    in_flight: AtomicUsize,
    last: Mutex<Instant>,
}

struct InFlight(Arc<Activity>);

impl Activity {
    fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// Returns once no request has been in flight for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let since = *self.last.lock().expect("lock is never poisoned");
            let deadline = since + limit;
            if self.in_flight.load(Ordering::SeqCst) == 0 && deadline <= Instant::now() {
                return;
            }
            tokio::time::sleep_until(deadline.max(Instant::now() + limit / 10)).await;
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.last.lock().expect("lock is never poisoned") = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves one connection until it ends, goes idle, or `close` (its ticket) is cancelled.
async fn serve<S>(
    stream: S,
    router: Router,
    peer: Peer,
    timeouts: Timeouts,
    close: Option<CancellationToken>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity {
        in_flight: AtomicUsize::new(0),
        last: Mutex::new(Instant::now()),
    });
    let requests = activity.clone();
    let svc = router
        .map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(peer.clone());
            req.map(axum::body::Body::new)
        })
        .map_future(move |response| {
            let in_flight = requests.start();
            async move {
                let response = response.await;
                drop(in_flight);
                response
            }
        });
    let svc = TowerToHyperService::new(svc);
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if let Some(idle) = timeouts.idle {
        // hyper runs this timer from the end of one response to the end of the next header.
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(idle);
    }
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    let close = close.unwrap_or_default();
    let idle = async {
        match timeouts.idle {
            Some(limit) => activity.idle_for(limit).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(idle);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!("Connection ended: {e}");
                }
                return;
            }
            // Lets a request being served finish, then closes.
            _ = &mut idle, if !shutting_down => {
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = close.cancelled() => {
                tracing::debug!("Closing an unauthenticated connection to make room");
                return;
            }
        }
    }
}

/// The unix socket systemd passed to this process (socket activation by `rxd.socket`), if any;
/// a descriptor that is not a listening unix stream socket is refused.
fn activated_unix() -> std::io::Result<Option<UnixListener>> {
    let Some(listener) = listenfd::ListenFd::from_env().take_unix_listener(0)? else {
        return Ok(None);
    };
    listener.set_nonblocking(true)?;
    Ok(Some(UnixListener::from_std(listener)?))
}

/// Listens on the unix socket systemd passed, or else on the one at `path` (replacing a stale
/// one), until the task is aborted. Answers whether systemd's socket is used (then it is
/// systemd's to remove, not this daemon's).
pub fn unix(path: &Path, router: Router) -> std::io::Result<(JoinHandle<()>, bool)> {
    let (listener, activated) = match activated_unix()? {
        Some(listener) => (listener, true),
        None => {
            if path.exists() {
                std::fs::remove_file(path)?;
            }
            let listener = UnixListener::bind(path)?;
            std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o660))?;
            (listener, false)
        }
    };
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let router = router.clone();
                    tokio::spawn(serve(
                        stream,
                        router,
                        Peer::Unix,
                        Timeouts { idle: None },
                        None,
                    ));
                }
                Err(e) => {
                    tracing::warn!("Unix socket accept failed: {e}");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            }
        }
    });
    Ok((task, activated))
}

/// The TLS configuration the HTTPS listener uses for new connections; swapped when the served
/// certificate changes (bootstrap, join, leave).
pub type TlsConfig = Arc<std::sync::RwLock<Arc<rustls::ServerConfig>>>;

/// Binds `address` now (so the caller learns of a bind failure) and serves HTTPS on it.
pub async fn https(
    address: &str,
    tls: TlsConfig,
    router: Router,
    gate: Arc<Gate>,
) -> std::io::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(address).await?;
    Ok(tokio::spawn(async move {
        loop {
            let (stream, remote) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("HTTPS accept failed: {e}");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            };
            // Without it a TLS handshake's small writes wait for delayed ACKs (Nagle): ~40 ms
            // on some new connections.
            if let Err(e) = stream.set_nodelay(true) {
                tracing::warn!("Cannot set TCP_NODELAY for {remote}: {e}");
            }
            let ticket = gate.admit(remote.ip());
            let config = tls.read().expect("lock is never poisoned").clone();
            let router = router.clone();
            let gate = gate.clone();
            tokio::spawn(async move {
                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                let tls_stream = tokio::select! {
                    done = handshake => match done {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!("TLS handshake with {remote} failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake with {remote} timed out");
                            return;
                        }
                    },
                    _ = ticket.close.cancelled() => return,
                };
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
                if (gate.trusted)(peer.clone()).await {
                    drop(ticket);
                    let timeouts = Timeouts {
                        idle: Some(TRUSTED_IDLE),
                    };
                    serve(tls_stream, router, peer, timeouts, None).await;
                } else {
                    let timeouts = Timeouts {
                        idle: Some(UNTRUSTED_IDLE),
                    };
                    let close = ticket.close.clone();
                    serve(tls_stream, router, peer, timeouts, Some(close)).await;
                    drop(ticket);
                }
            });
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Arc<Gate> {
        Gate::new(Box::new(|_| Box::pin(async { false })))
    }

    fn ip(i: usize) -> IpAddr {
        IpAddr::from([192, 0, (i / 256) as u8, (i % 256) as u8])
    }

    fn waiting(gate: &Gate) -> usize {
        gate.waiting.lock().unwrap().connections.len()
    }

    #[test]
    fn one_address_over_its_bound_loses_its_oldest_connection() {
        let gate = gate();
        let other = gate.admit(ip(1));
        let mine: Vec<Ticket> = (0..MAX_UNAUTHENTICATED_PER_ADDRESS)
            .map(|_| gate.admit(ip(2)))
            .collect();
        let newest = gate.admit(ip(2));
        assert!(mine[0].close.is_cancelled());
        assert!(mine[1..].iter().all(|t| !t.close.is_cancelled()));
        assert!(!newest.close.is_cancelled() && !other.close.is_cancelled());
        assert_eq!(waiting(&gate), MAX_UNAUTHENTICATED_PER_ADDRESS + 1);
    }

    #[test]
    fn the_oldest_connection_goes_when_the_gate_is_full_and_tickets_leave_on_drop() {
        let gate = gate();
        let all: Vec<Ticket> = (0..MAX_UNAUTHENTICATED)
            .map(|i| gate.admit(ip(i)))
            .collect();
        let newest = gate.admit(ip(MAX_UNAUTHENTICATED));
        assert!(all[0].close.is_cancelled());
        assert!(all[1..].iter().all(|t| !t.close.is_cancelled()));
        assert!(!newest.close.is_cancelled());
        assert_eq!(waiting(&gate), MAX_UNAUTHENTICATED);
        drop(all);
        assert_eq!(waiting(&gate), 1);
        drop(newest);
        assert_eq!(waiting(&gate), 0);
        assert!(gate.waiting.lock().unwrap().per_address.is_empty());
    }
}
