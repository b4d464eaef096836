//! The two ways to reach a daemon: HTTP/1.1 over its unix socket, and HTTPS.
//!
//! ```text
//!   Client::request ──► Transport::send ──┬─ Unix:  UnixStream ─► hyper http1 (Host: unix.socket)
//!                                         └─ Https: reqwest with the pinned rustls config
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use crate::{ClientError, Result};

/// What came back, before the envelope is decoded.
pub(crate) struct HttpReply {
    pub status: u16,
    pub etag: Option<String>,
    pub location: Option<String>,
    pub body: Bytes,
}

/// One outgoing request.
pub(crate) struct HttpRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub body: Option<Vec<u8>>,
    pub if_match: Option<&'a str>,
    pub user_agent: &'a str,
    /// Further headers, such as the requestor a member forwards for.
    pub headers: &'a [(&'static str, String)],
}

pub(crate) enum Transport {
    Unix {
        path: PathBuf,
    },
    Https {
        /// `host:port`, as shown to users.
        address: String,
        /// `https://host:port`.
        base: String,
        http: reqwest::Client,
        /// Kept for the events websocket, which does its own TLS handshake.
        tls: Arc<rustls::ClientConfig>,
    },
}

impl Transport {
    /// The socket path or `host:port`, for messages.
    pub fn endpoint(&self) -> String {
        match self {
            Transport::Unix { path } => path.display().to_string(),
            Transport::Https { address, .. } => address.clone(),
        }
    }

    pub async fn send(&self, req: HttpRequest<'_>) -> Result<HttpReply> {
        match self {
            Transport::Unix { path } => send_unix(path, req).await,
            Transport::Https { base, http, .. } => {
                send_https(&self.endpoint(), base, http, req).await
            }
        }
    }
}

fn if_match_value(etag: &str) -> String {
    if etag.starts_with('"') {
        etag.to_string()
    } else {
        format!("\"{etag}\"")
    }
}

/// Strips the quotes LXD puts around its ETag values.
fn unquote(value: &str) -> String {
    value.trim().trim_matches('"').to_string()
}

async fn send_unix(socket: &PathBuf, req: HttpRequest<'_>) -> Result<HttpReply> {
    let endpoint = socket.display().to_string();
    let transport_err = |e: &(dyn std::error::Error + 'static)| ClientError::Transport {
        endpoint: endpoint.clone(),
        method: req.method.to_string(),
        path: req.path.to_string(),
        cause: error_chain(e),
    };
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|cause| ClientError::Connect {
            endpoint: endpoint.clone(),
            cause,
        })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| transport_err(&e))?;
    // The connection task ends when the response body has been read and `sender` is dropped.
    tokio::spawn(async move {
        let _ = conn.await;
    });

    let mut builder = hyper::Request::builder()
        .method(req.method)
        .uri(req.path)
        .header(hyper::header::HOST, "unix.socket")
        .header(hyper::header::USER_AGENT, req.user_agent);
    for (name, value) in req.headers {
        builder = builder.header(*name, value);
    }
    if req.body.is_some() {
        builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
    }
    if let Some(etag) = req.if_match.filter(|e| !e.is_empty()) {
        builder = builder.header(hyper::header::IF_MATCH, if_match_value(etag));
    }
    let request = builder
        .body(Full::new(Bytes::from(req.body.clone().unwrap_or_default())))
        .map_err(|e| transport_err(&e))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| transport_err(&e))?;
    let status = response.status().as_u16();
    let header = |name: hyper::header::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let etag = header(hyper::header::ETAG).map(|v| unquote(&v));
    let location = header(hyper::header::LOCATION);
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| transport_err(&e))?
        .to_bytes();
    Ok(HttpReply {
        status,
        etag,
        location,
        body,
    })
}

async fn send_https(
    endpoint: &str,
    base: &str,
    http: &reqwest::Client,
    req: HttpRequest<'_>,
) -> Result<HttpReply> {
    let transport_err = |e: reqwest::Error| {
        if e.is_connect() {
            ClientError::Connect {
                endpoint: endpoint.to_string(),
                cause: std::io::Error::other(connect_cause(&e)),
            }
        } else {
            ClientError::Transport {
                endpoint: endpoint.to_string(),
                method: req.method.to_string(),
                path: req.path.to_string(),
                cause: error_chain(&e),
            }
        }
    };
    let method =
        reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| ClientError::Transport {
            endpoint: endpoint.to_string(),
            method: req.method.to_string(),
            path: req.path.to_string(),
            cause: e.to_string(),
        })?;
    let mut builder = http
        .request(method, format!("{base}{}", req.path))
        .header(reqwest::header::USER_AGENT, req.user_agent);
    for (name, value) in req.headers {
        builder = builder.header(*name, value);
    }
    if let Some(body) = req.body.clone() {
        builder = builder
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
    }
    if let Some(etag) = req.if_match.filter(|e| !e.is_empty()) {
        builder = builder.header(reqwest::header::IF_MATCH, if_match_value(etag));
    }
    let response = builder.send().await.map_err(transport_err)?;
    let status = response.status().as_u16();
    let header = |name: reqwest::header::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let etag = header(reqwest::header::ETAG).map(|v| unquote(&v));
    let location = header(reqwest::header::LOCATION);
    let body = response.bytes().await.map_err(transport_err)?;
    Ok(HttpReply {
        status,
        etag,
        location,
        body,
    })
}

/// reqwest's top-level message hides the cause ("error sending request"); users need the TLS or
/// socket reason underneath, so the whole chain goes into one sentence, each cause once.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = in_words(e);
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = in_words(s);
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

/// Why a connection failed, without reqwest's and hyper's wrappers ("error sending request
/// for url (..)", "client error (Connect)"): the endpoint is named already, the reason is below.
fn connect_cause(e: &reqwest::Error) -> String {
    let mut cur = std::error::Error::source(e);
    while let Some(s) = cur {
        match s.source() {
            Some(next) if s.to_string().starts_with("client error") => cur = Some(next),
            _ => return error_chain(s),
        }
    }
    error_chain(e)
}

/// One error's own message. rustls prints its certificate errors with Rust's debug text
/// (`invalid peer certificate: Other(OtherError(..))`); those are said in words instead.
fn in_words(e: &(dyn std::error::Error + 'static)) -> String {
    match rustls_error(e) {
        Some(r) => rustls_in_words(r),
        None => e.to_string(),
    }
}

/// The rustls error `e` is, or wraps as an I/O error (as tokio-rustls and hyper hand it on).
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(r) = e.downcast_ref::<rustls::Error>() {
        return Some(r);
    }
    let inner = e.downcast_ref::<std::io::Error>()?.get_ref()?;
    rustls_error(inner)
}

fn rustls_in_words(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            // Our pinning verifiers put an `rxd_tls::TlsError` here, which says it in words.
            C::Other(other) => other.0.to_string(),
            C::BadEncoding => "the server's certificate cannot be decoded".into(),
            C::Expired => "the server's certificate has expired".into(),
            C::NotValidYet => "the server's certificate is not valid yet".into(),
            C::Revoked => "the server's certificate is revoked".into(),
            C::BadSignature => "the server's certificate has an invalid signature".into(),
            C::UnknownIssuer => "the server's certificate has an unknown issuer".into(),
            C::NotValidForName => "the server's certificate is not valid for its name".into(),
            _ => "the server's certificate was refused".into(),
        },
        rustls::Error::AlertReceived(alert) => {
            format!(
                "the server ended the TLS handshake (alert {})",
                u8::from(*alert)
            )
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_quoted_once() {
        for (given, sent) in [("abc", "\"abc\""), ("\"abc\"", "\"abc\"")] {
            assert_eq!(if_match_value(given), sent);
        }
        assert_eq!(unquote("\"abc\""), "abc");
        assert_eq!(unquote("abc"), "abc");
    }
}
