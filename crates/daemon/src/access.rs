//! Who is calling, and what they may do. The unix socket is trusted; on HTTPS the peer's
//! certificate fingerprint decides: a trusted client, a cluster member (its `server.crt` is in
//! the trust store as type `server`), or untrusted.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::Daemon;

/// How a connection reached us; attached to every request by the listener.
#[derive(Debug, Clone)]
pub enum Peer {
    /// The unix socket.
    Unix,
    /// HTTPS from `address`, with the client certificate's DER if one was presented.
    Tls {
        /// Remote socket address.
        address: String,
        /// The client certificate, DER.
        cert_der: Option<Vec<u8>>,
    },
}

/// What the caller turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Local root, or a client whose certificate is trusted.
    Trusted,
    /// Another member of this cluster.
    Member,
    /// Anyone else.
    Untrusted,
}

/// The caller of a request: the connection and the trust decided for it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// How it connected.
    pub peer: Peer,
    /// What it may do.
    pub trust: Trust,
}

impl Caller {
    /// Whether it may use the public API.
    pub fn is_trusted(&self) -> bool {
        matches!(self.trust, Trust::Trusted | Trust::Member)
    }

    /// The fingerprint of the client certificate, for an HTTPS caller that presented one.
    pub fn fingerprint(&self) -> Option<String> {
        match &self.peer {
            Peer::Tls {
                cert_der: Some(der),
                ..
            } => Some(rxd_tls::fingerprint_der(der)),
            _ => None,
        }
    }

    /// The requestor block of lifecycle events.
    pub fn requestor(&self) -> rxd_api::Requestor {
        match &self.peer {
            Peer::Unix => rxd_api::Requestor {
                username: "root".into(),
                protocol: "unix".into(),
                address: "@".into(),
            },
            Peer::Tls { address, .. } => rxd_api::Requestor {
                username: self.fingerprint().unwrap_or_default(),
                protocol: if self.trust == Trust::Member {
                    "cluster".into()
                } else {
                    "tls".into()
                },
                address: address.clone(),
            },
        }
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::internal("Request reached a handler without a caller"))
    }
}

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, even untrusted HTTPS callers.
    Public,
    /// Trusted clients and members.
    Trusted,
    /// Other members only (the internal API), or local root.
    Member,
}

/// Middleware: decides the caller's trust and enforces the route's access rule.
pub async fn enforce(State(d): State<Arc<Daemon>>, mut req: Request, next: Next) -> Response {
    // Every listener attaches the peer; a request without one is refused, never taken for local.
    let Some(peer) = req.extensions().get::<Peer>().cloned() else {
        return ApiError::forbidden().into_response();
    };
    let trust = d.trust_of(&peer).await;
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let access = crate::router::access_of(req.method(), &path);
    let allowed = match access {
        Access::Public => true,
        Access::Trusted => trust != Trust::Untrusted,
        Access::Member => trust == Trust::Member || matches!(peer, Peer::Unix),
    };
    if !allowed {
        return ApiError::forbidden().into_response();
    }
    req.extensions_mut().insert(Caller { peer, trust });
    next.run(req).await
}
