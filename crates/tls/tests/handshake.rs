//! Real TLS handshakes over loopback TCP between the configurations this crate builds.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use rxd_tls::{
    capture_client_config, fingerprint_pinned_client_config, fingerprints_pinned_client_config,
    generate, generate_client, peer_certificate, peer_fingerprint, pinned_client_config,
    server_config, server_config_alpn, CertKey, TlsError, ALPN_H2, ALPN_HTTP11,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

const FIXTURE_CERT: &str = include_str!("fixtures/cert.pem");
const FIXTURE_KEY_PKCS8: &str = include_str!("fixtures/pkcs8.key");

/// What one side learned from a completed handshake.
#[derive(Debug)]
struct Seen {
    peer_fingerprint: Option<String>,
    peer_certificate: Option<Vec<u8>>,
    alpn: Option<Vec<u8>>,
}

/// Runs one connection on 127.0.0.1 and returns what each side saw. After the
/// handshake the client sends a byte and the server echoes it, so both sides
/// know the other finished.
async fn connect(
    server: Arc<ServerConfig>,
    client: ClientConfig,
) -> (Result<Seen, std::io::Error>, Result<Seen, std::io::Error>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = TlsAcceptor::from(server).accept(tcp).await?;
        let (_, conn) = tls.get_ref();
        let seen = Seen {
            peer_fingerprint: peer_fingerprint(conn),
            peer_certificate: peer_certificate(conn),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        };
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await?;
        tls.write_all(&byte).await?;
        tls.flush().await?;
        Ok(seen)
    });

    let client_result = async {
        let tcp = TcpStream::connect(addr).await?;
        // Members are dialled by IP; the name must not matter to the verifiers.
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = TlsConnector::from(Arc::new(client))
            .connect(name, tcp)
            .await?;
        let (_, conn) = tls.get_ref();
        let seen = Seen {
            peer_fingerprint: peer_fingerprint(conn),
            peer_certificate: peer_certificate(conn),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        };
        tls.write_all(b"x").await?;
        tls.flush().await?;
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await?;
        assert_eq!(&byte, b"x");
        Ok(seen)
    }
    .await;

    let server_result = server_task.await.unwrap();
    (server_result, client_result)
}

/// The rustls error inside an I/O error from tokio-rustls.
fn rustls_error(err: &std::io::Error) -> &rustls::Error {
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("not a rustls error: {err:?}"))
}

/// The pin mismatch a pinning verifier reported.
fn pin_mismatch(err: &std::io::Error) -> (String, String) {
    match rustls_error(err) {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
            match other.0.downcast_ref::<TlsError>() {
                Some(TlsError::PinMismatch { expected, actual }) => {
                    (expected.clone(), actual.clone())
                }
                inner => panic!("unexpected inner error {inner:?}"),
            }
        }
        e => panic!("unexpected rustls error {e:?}"),
    }
}

fn member(name: &str) -> CertKey {
    generate(name).unwrap()
}

#[tokio::test]
async fn pinned_server_and_presented_client_certificate() {
    let server = member("node1");
    let client = member("node2");
    let config = pinned_client_config(server.cert_pem.as_str(), Some(&client)).unwrap();
    let (server_seen, client_seen) = connect(server_config(&server).unwrap(), config).await;
    let server_seen = server_seen.unwrap();
    let client_seen = client_seen.unwrap();

    assert_eq!(
        server_seen.peer_fingerprint.as_deref(),
        Some(client.fingerprint().as_str())
    );
    assert_eq!(
        server_seen.peer_certificate.as_deref(),
        Some(client.cert_der())
    );
    assert_eq!(
        client_seen.peer_fingerprint.as_deref(),
        Some(server.fingerprint().as_str())
    );
    // The client offers only http/1.1 by default; the server accepts it.
    assert_eq!(server_seen.alpn.as_deref(), Some(ALPN_HTTP11));
    assert_eq!(client_seen.alpn.as_deref(), Some(ALPN_HTTP11));
}

#[tokio::test]
async fn wrong_pinned_certificate_is_refused() {
    let server = member("node1");
    let other = member("node1");
    let config = pinned_client_config(other.cert_pem.as_str(), None).unwrap();
    let (server_seen, client_seen) = connect(server_config(&server).unwrap(), config).await;

    let err = client_seen.unwrap_err();
    assert_eq!(
        pin_mismatch(&err),
        (
            other.fingerprint().to_string(),
            server.fingerprint().to_string()
        )
    );
    assert!(
        server_seen.is_err(),
        "server must not complete: {server_seen:?}"
    );
}

#[tokio::test]
async fn fingerprint_pin_accepts_the_right_server_only() {
    let server = member("node1");
    let client = member("node2");

    let right = fingerprint_pinned_client_config(&server.fingerprint(), Some(&client)).unwrap();
    let (server_seen, client_seen) = connect(server_config(&server).unwrap(), right).await;
    assert_eq!(
        server_seen.unwrap().peer_fingerprint.as_deref(),
        Some(client.fingerprint().as_str())
    );
    assert_eq!(
        client_seen.unwrap().peer_fingerprint.as_deref(),
        Some(server.fingerprint().as_str())
    );

    let wrong = fingerprint_pinned_client_config(&client.fingerprint(), None).unwrap();
    let (server_seen, client_seen) = connect(server_config(&server).unwrap(), wrong).await;
    assert_eq!(
        pin_mismatch(&client_seen.unwrap_err()),
        (
            client.fingerprint().to_string(),
            server.fingerprint().to_string()
        )
    );
    assert!(server_seen.is_err());
}

#[tokio::test]
async fn a_set_of_pins_accepts_any_of_them_only() {
    let old = member("old");
    let new = member("new");
    let other = member("other");
    let both = [old.fingerprint(), new.fingerprint()];
    for served in [&old, &new] {
        let config = fingerprints_pinned_client_config(&both, None).unwrap();
        let (_, client_seen) = connect(server_config(served).unwrap(), config).await;
        assert_eq!(
            client_seen.unwrap().peer_fingerprint.as_deref(),
            Some(served.fingerprint().as_str())
        );
    }
    let config = fingerprints_pinned_client_config(&both, None).unwrap();
    let (_, client_seen) = connect(server_config(&other).unwrap(), config).await;
    assert_eq!(
        pin_mismatch(&client_seen.unwrap_err()),
        (
            format!("{} or {}", old.fingerprint(), new.fingerprint()),
            other.fingerprint()
        )
    );
}

#[tokio::test]
async fn client_without_certificate_is_still_served() {
    let server = member("node1");
    let config = pinned_client_config(server.cert_pem.as_str(), None).unwrap();
    let (server_seen, client_seen) = connect(server_config(&server).unwrap(), config).await;
    let server_seen = server_seen.unwrap();
    assert_eq!(server_seen.peer_fingerprint, None);
    assert_eq!(server_seen.peer_certificate, None);
    assert_eq!(
        client_seen.unwrap().peer_fingerprint.as_deref(),
        Some(server.fingerprint().as_str())
    );
}

#[tokio::test]
async fn client_auth_only_certificate_is_accepted() {
    // The certificate `rxc` makes for itself carries clientAuth, not serverAuth.
    let server = member("node1");
    let client = generate_client("alice", "laptop").unwrap();
    let config = pinned_client_config(server.cert_pem.as_str(), Some(&client)).unwrap();
    let (server_seen, _) = connect(server_config(&server).unwrap(), config).await;
    assert_eq!(
        server_seen.unwrap().peer_fingerprint.as_deref(),
        Some(client.fingerprint().as_str())
    );
}

#[tokio::test]
async fn tls12_only_client_is_refused() {
    let server = member("node1");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            server.cert_der().to_vec(),
        ))
        .unwrap();
    let tls12 =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();

    let (server_seen, client_seen) = connect(server_config(&server).unwrap(), tls12).await;
    let err = client_seen.unwrap_err();
    assert_eq!(
        rustls_error(&err),
        &rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion)
    );
    assert!(server_seen.is_err());
}

#[tokio::test]
async fn capture_records_the_server_certificate() {
    let server = member("node1");
    let client = member("node2");
    let (config, captured) = capture_client_config(Some(&client)).unwrap();
    assert_eq!(captured.der(), None);

    let (server_seen, client_seen) = connect(server_config(&server).unwrap(), config).await;
    client_seen.unwrap();
    assert_eq!(
        server_seen.unwrap().peer_fingerprint.as_deref(),
        Some(client.fingerprint().as_str())
    );
    assert_eq!(captured.der().as_deref(), Some(server.cert_der()));
    assert_eq!(
        captured.fingerprint().as_deref(),
        Some(server.fingerprint().as_str())
    );
    assert_eq!(captured.pem().as_deref(), Some(server.cert_pem.as_str()));
}

#[tokio::test]
async fn alpn_negotiation() {
    let server = member("node1");
    let h2_first = |cfg: &mut ClientConfig| {
        cfg.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()];
    };
    let cases: Vec<(Arc<ServerConfig>, Option<&[u8]>)> = vec![
        (server_config(&server).unwrap(), Some(ALPN_H2)),
        (
            server_config_alpn(&server, &[ALPN_HTTP11]).unwrap(),
            Some(ALPN_HTTP11),
        ),
        (server_config_alpn(&server, &[]).unwrap(), None),
    ];
    for (server_cfg, want) in cases {
        let mut client = pinned_client_config(server.cert_pem.as_str(), None).unwrap();
        h2_first(&mut client);
        let (server_seen, client_seen) = connect(server_cfg, client).await;
        assert_eq!(server_seen.unwrap().alpn.as_deref(), want);
        assert_eq!(client_seen.unwrap().alpn.as_deref(), want);
    }
}

#[tokio::test]
async fn server_with_pkcs8_key_from_openssl() {
    let server = CertKey::from_pem(FIXTURE_CERT, FIXTURE_KEY_PKCS8).unwrap();
    let config = pinned_client_config(FIXTURE_CERT, None).unwrap();
    let (server_seen, client_seen) = connect(server_config(&server).unwrap(), config).await;
    server_seen.unwrap();
    assert_eq!(
        client_seen.unwrap().peer_fingerprint.as_deref(),
        Some(server.fingerprint().as_str())
    );
}
