use rxd_api::ResponseType;

/// Everything that can go wrong between a caller and a daemon.
///
/// Each message already says its cause in words, so no variant exposes `source()`: a printer
/// that walks the chain prints every cause once.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket or TCP address could not be reached.
    #[error("Cannot connect to {endpoint}: {cause}")]
    Connect {
        /// The unix socket path or the HTTPS address.
        endpoint: String,
        /// What the operating system said.
        cause: std::io::Error,
    },
    /// The connection broke while a request was in flight.
    #[error("{method} {path} on {endpoint} failed: {cause}")]
    Transport {
        /// The unix socket path or the HTTPS address.
        endpoint: String,
        /// The HTTP method.
        method: String,
        /// The request path with its query.
        path: String,
        /// The HTTP library's error, with its causes, in words.
        cause: String,
    },
    /// The daemon answered with an error envelope; `message` is its `error` text, verbatim.
    #[error("{message}")]
    Api {
        /// The HTTP status (the envelope's `error_code` when it has one).
        status: u16,
        /// The daemon's sentence.
        message: String,
    },
    /// The body was not an LXD response envelope.
    #[error("Cannot decode the response to {method} {path} (HTTP {status}): {cause}")]
    Envelope {
        /// The HTTP method.
        method: String,
        /// The request path with its query.
        path: String,
        /// The HTTP status.
        status: u16,
        /// Why the body did not parse.
        cause: serde_json::Error,
    },
    /// The envelope's `metadata` did not have the expected shape.
    #[error("Cannot decode the metadata of {path} as {expected}: {cause}")]
    Metadata {
        /// The request path with its query.
        path: String,
        /// The Rust type that was expected.
        expected: &'static str,
        /// Why it did not parse.
        cause: serde_json::Error,
    },
    /// The daemon answered sync where async was expected, or the other way round.
    #[error("Unexpected {got:?} response to {path}, expected {expected:?}")]
    UnexpectedResponse {
        /// The request path with its query.
        path: String,
        /// What the call needs.
        expected: ResponseType,
        /// What came back.
        got: ResponseType,
    },
    /// An HTTPS address that cannot be turned into a URL.
    #[error("Invalid address {address:?}")]
    InvalidAddress {
        /// The address as given.
        address: String,
    },
    /// The TLS configuration could not be built.
    #[error("Cannot set up TLS for {endpoint}: {cause}")]
    Tls {
        /// The HTTPS address.
        endpoint: String,
        /// The TLS crate's error.
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The events websocket could not be opened or broke.
    #[error("Events websocket on {endpoint}: {cause}")]
    WebSocket {
        /// The unix socket path or the HTTPS address.
        endpoint: String,
        /// The websocket library's error.
        cause: Box<tokio_tungstenite::tungstenite::Error>,
    },
    /// The daemon did not answer within the client's timeout.
    #[error("{method} {path} on {endpoint} got no answer within {seconds} s")]
    Timeout {
        /// The unix socket path or the HTTPS address.
        endpoint: String,
        /// The HTTP method.
        method: String,
        /// The request path with its query.
        path: String,
        /// The timeout, in seconds.
        seconds: u64,
    },
    /// A websocket text frame that is not an event.
    #[error("Cannot decode event {frame:?}: {cause}")]
    Event {
        /// The frame's text.
        frame: String,
        /// Why it did not parse.
        cause: serde_json::Error,
    },
}

impl ClientError {
    /// The HTTP status of an API error, if this is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the daemon said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

/// Results of this crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
