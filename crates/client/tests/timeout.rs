//! A client with a timeout gives up on a daemon that accepted the connection but never answers.

use std::time::{Duration, Instant};

use rxd_client::{Client, ClientError};

#[tokio::test]
async fn a_silent_daemon_runs_into_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unix.socket");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    // Accepts and holds every connection without reading or answering.
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let client = Client::unix(&path).with_timeout(Duration::from_millis(300));
    let start = Instant::now();
    let err = client.request("GET", "/1.0", None, None).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(err.to_string().contains("no answer"), "{err}");
    server.abort();
}
