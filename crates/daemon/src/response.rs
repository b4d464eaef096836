//! Building LXD's envelopes, and reading request bodies the way LXD does.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ApiError;

/// Bodies larger than this are refused before they are parsed.
pub const MAX_BODY: usize = 10 * 1024 * 1024;

/// How much of an oversized body is read and discarded before the connection is dropped.
const DRAIN_CAP: usize = 64 * 1024 * 1024;

fn envelope(status: StatusCode, body: rxd_api::Response) -> Response {
    (status, axum::Json(body)).into_response()
}

/// 200 with `metadata`.
pub fn sync<T: Serialize>(metadata: T) -> Response {
    envelope(
        StatusCode::OK,
        rxd_api::Response::sync(serde_json::to_value(metadata).expect("wire types serialise")),
    )
}

/// 200 with `{}`: a mutation with no payload.
pub fn empty() -> Response {
    sync(serde_json::json!({}))
}

/// 200 with `metadata` and an ETag header.
pub fn sync_etag<T: Serialize>(metadata: T, etag: &str) -> Response {
    let mut r = sync(metadata);
    if let Ok(v) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// 201 with `Location`, metadata null: a created resource.
pub fn created(location: &str) -> Response {
    let mut r = envelope(
        StatusCode::CREATED,
        rxd_api::Response::sync(serde_json::Value::Null),
    );
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// 202 with the operation.
pub fn operation(op: &rxd_api::Operation) -> Response {
    let url = format!("/1.0/operations/{}", op.id);
    let mut r = envelope(
        StatusCode::ACCEPTED,
        rxd_api::Response::async_op(
            url.clone(),
            serde_json::to_value(op).expect("operations serialise"),
        ),
    );
    if let Ok(v) = HeaderValue::from_str(&url) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Refuses a write whose `If-Match` does not match the current ETag; a missing header passes.
pub fn check_etag(headers: &HeaderMap, current: &str) -> Result<(), ApiError> {
    let Some(given) = headers.get(header::IF_MATCH) else {
        return Ok(());
    };
    let given = given.to_str().unwrap_or("").trim().trim_matches('"');
    if given.is_empty() || given == current {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        format!("ETag doesn't match: {given} vs {current}"),
    ))
}

/// A read-check-write loop whose write is a compare-and-set ([`rxd_db::Command::If`]). A write
/// that lost a race answers 412 to a writer that sent `If-Match`; without one it is computed
/// again from the new state, so a `PATCH` never drops another writer's keys.
pub struct CompareAndSet {
    conditional: bool,
    attempts: usize,
}

impl CompareAndSet {
    /// How often a write without `If-Match` is computed again before its lost race is answered.
    const ATTEMPTS: usize = 20;

    /// A loop for the request with these headers.
    pub fn new(headers: &HeaderMap) -> Self {
        CompareAndSet {
            conditional: headers.contains_key(header::IF_MATCH),
            attempts: 0,
        }
    }

    /// The outcome of one attempt: its answer, `None` to compute the write again, or the error.
    pub fn outcome<T>(
        &mut self,
        applied: Result<T, rxd_db::ApplyError>,
    ) -> Result<Option<T>, ApiError> {
        self.attempts += 1;
        match applied {
            Err(rxd_db::ApplyError::Changed { .. })
                if !self.conditional && self.attempts < Self::ATTEMPTS =>
            {
                Ok(None)
            }
            other => Ok(Some(other?)),
        }
    }
}

/// A JSON body of at most [`MAX_BODY`] bytes, decoded into `T` with a clear error.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        use http_body_util::BodyExt;
        let mut body = req.into_body();
        let mut bytes = Vec::new();
        let mut total = 0usize;
        // An oversized body is read to its end (up to a hard cap) before refusing it, so the
        // client, still sending, receives the 413 instead of a reset connection.
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|e| ApiError::bad_request(format!("Failed to read request body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                total += data.len();
                if total > DRAIN_CAP {
                    break;
                }
                if total <= MAX_BODY {
                    bytes.extend_from_slice(&data);
                }
            }
        }
        if total > MAX_BODY {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Request body is larger than {MAX_BODY} bytes"),
            ));
        }
        decode(&Bytes::from(bytes)).map(JsonBody)
    }
}

fn decode<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("Invalid request body: {e}")))
}
