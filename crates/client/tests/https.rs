//! The HTTPS transport against an axum server behind rxd_tls's server configuration on
//! 127.0.0.1: certificate pinning, the client certificate, capturing an unknown server
//! certificate, and the events websocket over TLS.

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::Extension;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use futures_util::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rxd_api::Response as Envelope;
use rxd_client::{CertKey, Client};
use serde_json::json;

/// The fingerprint of the certificate the caller presented, if any.
#[derive(Clone)]
struct Peer(Option<String>);

async fn server_info(Extension(peer): Extension<Peer>) -> Json<Envelope> {
    let auth = if peer.0.is_some() {
        "trusted"
    } else {
        "untrusted"
    };
    Json(Envelope::sync(json!({
        "api_extensions": [], "api_status": "stable", "api_version": "1.0",
        "auth": auth, "public": false, "auth_methods": ["tls"],
        "config": {"peer": peer.0},
    })))
}

async fn events(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(|mut socket| async move {
        let event = json!({"type":"lifecycle","timestamp":"2026-11-26T13:47:41.0Z",
            "metadata":{"action":"profile-created","source":"/1.0/profiles/p1"},"location":"node1"});
        socket
            .send(Message::Text(event.to_string().into()))
            .await
            .unwrap();
        socket.send(Message::Close(None)).await.unwrap();
        while let Some(Ok(_)) = socket.recv().await {}
    })
}

/// Starts the server on 127.0.0.1 and returns its address.
async fn start(cert: &CertKey) -> String {
    let config = rxd_tls::server_config(cert).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let peer = Peer(rxd_tls::peer_fingerprint(tls.get_ref().1));
                let app = Router::new()
                    .route("/1.0", get(server_info))
                    .route("/1.0/events", get(events))
                    .layer(Extension(peer));
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(
                        TokioIo::new(tls),
                        TowerToHyperService::new(app),
                    )
                    .await;
            });
        }
    });
    address
}

#[tokio::test]
async fn pinned_client_presents_its_certificate() {
    let server = rxd_tls::generate("testhost").unwrap();
    let client_cert = rxd_tls::generate_client("user", "laptop").unwrap();
    let address = start(&server).await;

    let client = Client::https(&address, &server.cert_pem, Some(&client_cert)).unwrap();
    let (info, _) = client.server().await.unwrap();
    assert_eq!(info.auth, "trusted");
    assert_eq!(
        info.config.unwrap()["peer"],
        json!(client_cert.fingerprint())
    );

    let anonymous = Client::https(&address, &server.cert_pem, None).unwrap();
    assert_eq!(anonymous.server().await.unwrap().0.auth, "untrusted");
}

#[tokio::test]
async fn a_different_server_certificate_is_refused() {
    let server = rxd_tls::generate("testhost").unwrap();
    let other = rxd_tls::generate("testhost").unwrap();
    let address = start(&server).await;

    let client = Client::https(&address, &other.cert_pem, None).unwrap();
    let err = client.server().await.unwrap_err();
    assert!(
        err.to_string().contains(&address),
        "the error names the address: {err}"
    );
}

#[tokio::test]
async fn capture_config_learns_the_server_certificate() {
    let server = rxd_tls::generate("testhost").unwrap();
    let address = start(&server).await;

    let (config, captured) = rxd_tls::capture_client_config(None).unwrap();
    let client = Client::https_with_config(&address, config).unwrap();
    client.server().await.unwrap();
    assert_eq!(captured.fingerprint(), Some(server.fingerprint()));
}

#[tokio::test]
async fn events_arrive_over_tls() {
    let server = rxd_tls::generate("testhost").unwrap();
    let address = start(&server).await;
    let client = Client::https(&address, &server.cert_pem, None).unwrap();
    let events: Vec<_> = client.events(&["lifecycle"]).await.unwrap().collect().await;
    assert_eq!(events.len(), 1);
    let event = events.into_iter().next().unwrap().unwrap();
    assert_eq!(event.kind, "lifecycle");
    assert_eq!(event.metadata["action"], "profile-created");
}

#[test]
fn https_client_for_a_bad_address_is_refused() {
    let server = rxd_tls::generate("testhost").unwrap();
    let err = Client::https("http://x/y", &server.cert_pem, None)
        .err()
        .unwrap();
    assert!(matches!(
        err,
        rxd_client::ClientError::InvalidAddress { .. }
    ));
    // A PEM that is not a certificate cannot be pinned.
    let err = Client::https("127.0.0.1", "garbage", None).err().unwrap();
    assert!(matches!(err, rxd_client::ClientError::Tls { .. }));
}
