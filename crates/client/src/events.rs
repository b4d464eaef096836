//! `/1.0/events`: the websocket every Go client waits on.
//!
//! ```text
//!   events(types) ──► GET /1.0/events?type=a,b  (Upgrade: websocket, HTTP/1.1 only)
//!                       │ 101
//!                       ▼
//!   EventStream ◄── text frame = one JSON Event   (pings are answered by the library)
//!               ◄── close / EOF = end of stream
//! ```
//!
//! Open the stream *before* sending a request that creates an operation, as `lxc` does, so
//! that its events cannot be missed.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::{Stream, StreamExt};
use rxd_api::Event;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;

use crate::transport::Transport;
use crate::{encode, Client, ClientError, Result};

/// The events of one `/1.0/events` websocket, in arrival order. Dropping it closes the socket.
pub struct EventStream {
    inner: Pin<Box<dyn Stream<Item = Result<Event>> + Send>>,
}

impl Stream for EventStream {
    type Item = Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventStream")
    }
}

fn events_path(types: &[&str], all_projects: bool) -> String {
    let mut query = Vec::new();
    if !types.is_empty() {
        let list: Vec<String> = types.iter().map(|t| encode(t)).collect();
        query.push(format!("type={}", list.join(",")));
    }
    if all_projects {
        query.push("all-projects=true".to_string());
    }
    if query.is_empty() {
        "/1.0/events".to_string()
    } else {
        format!("/1.0/events?{}", query.join("&"))
    }
}

impl Client {
    /// Opens `/1.0/events`, limited to `types` (`operation`, `lifecycle`, `logging`; empty
    /// means all). Returns once the websocket handshake is done.
    pub async fn events(&self, types: &[&str]) -> Result<EventStream> {
        self.open_events(&events_path(types, false)).await
    }

    /// Like [`Client::events`], for the events of every project (what members subscribe to).
    pub async fn events_all_projects(&self, types: &[&str]) -> Result<EventStream> {
        self.open_events(&events_path(types, true)).await
    }

    async fn open_events(&self, path: &str) -> Result<EventStream> {
        let endpoint = self.endpoint();
        let ws_err = |source| ClientError::WebSocket {
            endpoint: endpoint.clone(),
            cause: Box::new(source),
        };
        let connect_err = |source| ClientError::Connect {
            endpoint: endpoint.clone(),
            cause: source,
        };
        let request = |url: String| {
            use tokio_tungstenite::tungstenite::client::IntoClientRequest;
            let mut req = url.into_client_request().map_err(ws_err)?;
            req.headers_mut().insert(
                "User-Agent",
                self.user_agent
                    .parse()
                    .expect("user agents are plain ASCII"),
            );
            Ok::<_, ClientError>(req)
        };
        match &*self.transport {
            Transport::Unix { path: socket } => {
                let stream = tokio::net::UnixStream::connect(socket)
                    .await
                    .map_err(connect_err)?;
                let req = request(format!("ws://unix.socket{path}"))?;
                let (ws, _) = tokio_tungstenite::client_async(req, stream)
                    .await
                    .map_err(ws_err)?;
                Ok(into_events(ws, endpoint.clone()))
            }
            Transport::Https { address, tls, .. } => {
                let tcp = tokio::net::TcpStream::connect(address.as_str())
                    .await
                    .map_err(connect_err)?;
                // Websocket upgrades are HTTP/1.1; offering h2 would let the server pick it.
                let mut config = (**tls).clone();
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                let host = address
                    .rsplit_once(':')
                    .map(|(h, _)| h)
                    .unwrap_or(address)
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string();
                let name = rustls::pki_types::ServerName::try_from(host).map_err(|e| {
                    ClientError::InvalidAddress {
                        address: format!("{address} ({e})"),
                    }
                })?;
                let tls_stream = tokio_rustls::TlsConnector::from(Arc::new(config))
                    .connect(name, tcp)
                    .await
                    .map_err(connect_err)?;
                let req = request(format!("wss://{address}{path}"))?;
                let (ws, _) = tokio_tungstenite::client_async(req, tls_stream)
                    .await
                    .map_err(ws_err)?;
                Ok(into_events(ws, endpoint.clone()))
            }
        }
    }
}

fn into_events<S>(ws: tokio_tungstenite::WebSocketStream<S>, endpoint: String) -> EventStream
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let stream = futures_util::stream::unfold(Some(ws), move |state| {
        let endpoint = endpoint.clone();
        async move {
            let mut ws = state?;
            loop {
                let text = match ws.next().await? {
                    Ok(Message::Text(t)) => t.to_string(),
                    Ok(Message::Binary(b)) => String::from_utf8_lossy(&b).into_owned(),
                    Ok(Message::Close(_))
                    | Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed) => return None,
                    // Pings are answered by tungstenite itself on the next read.
                    Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                    Err(source) => {
                        let err = ClientError::WebSocket {
                            endpoint,
                            cause: Box::new(source),
                        };
                        return Some((Err(err), None));
                    }
                };
                let item =
                    serde_json::from_str::<Event>(&text).map_err(|source| ClientError::Event {
                        frame: text,
                        cause: source,
                    });
                return Some((item, Some(ws)));
            }
        }
    });
    EventStream {
        inner: Box::pin(stream),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_paths_carry_the_filters() {
        let cases: [(&[&str], bool, &str); 4] = [
            (&[], false, "/1.0/events"),
            (&["operation"], false, "/1.0/events?type=operation"),
            (
                &["operation", "lifecycle"],
                false,
                "/1.0/events?type=operation,lifecycle",
            ),
            (&[], true, "/1.0/events?all-projects=true"),
        ];
        for (types, all, want) in cases {
            assert_eq!(events_path(types, all), want);
        }
    }
}
