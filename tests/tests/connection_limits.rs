//! Issue 9, finding 7: connections that never finish a TLS handshake or a request header are
//! closed by the server, and a flood of them does not keep members and trusted clients out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rxd_api::{CertificatesPost, ProfilesPost};
use rxd_testkit::{ok, until, Member, Net};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Silent connections opened against one member.
const SILENT: usize = 1000;
/// The source addresses they come from.
const SOURCES: usize = 10;
/// Longer than the server's handshake and header timeouts (10 s), with room for a slow host.
const CLOSE_WITHIN: Duration = Duration::from_secs(30);

/// Room for the silent connections in this process's file descriptor limit.
fn raise_nofile() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let wanted = (SILENT as u64 + 1024).min(hard);
    if soft < wanted {
        setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).unwrap();
    }
}

async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// Whether the server closed `stream` within `limit`: a read answers end of file or an error.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn silent_connections_are_closed_and_the_cluster_keeps_working() {
    let net = Net::lease();
    raise_nofile();
    let members = Member::form(3, &net, &[]).await;
    let target: SocketAddr = net.addr(1).parse().unwrap();

    eprintln!("phase: {SILENT} silent TCP connections to node1 from {SOURCES} addresses");
    let mut silent = Vec::with_capacity(SILENT);
    for i in 0..SILENT {
        let source = format!("{net}.{}", 100 + i % SOURCES);
        silent.push(connect_from(&source, target).await);
    }
    let opened = Instant::now();

    eprintln!("phase: writes through every member, and `rxc cluster list`, while they are open");
    for (i, m) in members.iter().enumerate() {
        m.client()
            .create_profile(&ProfilesPost {
                name: format!("during-flood-{i}"),
                ..Default::default()
            })
            .await
            .unwrap();
        let list = ok(&m.command("rxc", &["cluster", "list", "--format", "csv"], None));
        assert_eq!(list.lines().count(), 3, "{list}");
    }
    let cluster_crt = std::fs::read_to_string(members[0].dir().join("cluster.crt")).unwrap();
    let https = rxd_client::Client::https(&net.addr(1), &cluster_crt, None).unwrap();
    https.server().await.unwrap();

    eprintln!("phase: the server closes every silent connection");
    let closed = futures_util::future::join_all(
        silent
            .iter_mut()
            .map(|s| closed_within(s, CLOSE_WITHIN.saturating_sub(opened.elapsed()))),
    )
    .await;
    let open = closed.iter().filter(|c| !**c).count();
    assert_eq!(open, 0, "{open} silent connections were still open");
    drop(silent);

    eprintln!("phase: members stayed online and writes still work");
    let client = members[1].client();
    until(Duration::from_secs(30), "three members online", || async {
        let list = client.cluster_members().await.unwrap();
        list.len() == 3 && list.iter().all(|m| m.status == "Online")
    })
    .await;
    client
        .create_profile(&ProfilesPost {
            name: "after-flood".into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

/// An HTTP/1.1 connection over TLS to `to`, presenting `cert` when given.
async fn tls_connect(
    cluster_crt: &str,
    cert: Option<&rxd_tls::CertKey>,
    source: &str,
    to: &str,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = rxd_tls::pinned_client_config(cluster_crt, cert).unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let tcp = connect_from(source, to.parse().unwrap()).await;
    let name = rustls::pki_types::ServerName::try_from("rxd").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

/// Sends `GET /1.0` and reads the whole response; answers its status line.
async fn get_server<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> String {
    stream
        .write_all(b"GET /1.0 HTTP/1.1\r\nHost: rxd\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "closed mid-response: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .expect("the response has a length");
        if body.len() >= length {
            return head.lines().next().unwrap().to_string();
        }
    }
}

#[tokio::test]
async fn a_trusted_connection_outlives_the_untrusted_idle_timeout() {
    let net = Net::lease();
    let m = Member::start();
    m.bootstrap(&net.addr(30), "node1", &[]);
    m.set_config("core.trust_password", "sekret").await;
    let cluster_crt = std::fs::read_to_string(m.dir().join("cluster.crt")).unwrap();
    let cert = rxd_tls::generate_client("trusted", "test").unwrap();
    rxd_client::Client::https(&net.addr(30), &cluster_crt, Some(&cert))
        .unwrap()
        .add_certificate(&CertificatesPost {
            cert_type: "client".into(),
            password: "sekret".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    eprintln!("phase: one request each on a trusted and an untrusted keep-alive connection");
    let to = &net.addr(30);
    let mut trusted = tls_connect(&cluster_crt, Some(&cert), &net.ip(31), to).await;
    let mut untrusted = tls_connect(&cluster_crt, None, &net.ip(32), to).await;
    assert!(get_server(&mut trusted).await.contains("200"));
    assert!(get_server(&mut untrusted).await.contains("200"));

    eprintln!("phase: the idle untrusted one is closed, the trusted one still serves");
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(CLOSE_WITHIN, untrusted.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the idle untrusted connection was not closed: {closed:?}"
    );
    assert!(get_server(&mut trusted).await.contains("200"));
}

#[tokio::test]
async fn a_header_sent_slowly_is_cut_off() {
    let net = Net::lease();
    let m = Member::start();
    m.bootstrap(&net.addr(20), "node1", &[]);
    let cluster_crt = std::fs::read_to_string(m.dir().join("cluster.crt")).unwrap();
    let stream = tls_connect(&cluster_crt, None, &net.ip(21), &net.addr(20)).await;

    eprintln!("phase: a request header, one byte a second");
    let (mut read, mut write) = tokio::io::split(stream);
    let header = b"GET /1.0 HTTP/1.1\r\nHost: rxd\r\nUser-Agent: a-very-slow-client\r\n\r\n";
    let writer = tokio::spawn(async move {
        for byte in header {
            if write.write_all(&[*byte]).await.is_err() || write.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let start = Instant::now();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(CLOSE_WITHIN, read.read_to_end(&mut buf)).await;
    writer.abort();
    assert!(
        closed.is_ok(),
        "the connection was still open after {:?}",
        start.elapsed()
    );
    assert!(
        !String::from_utf8_lossy(&buf).contains("200 OK"),
        "the slow request was served: {}",
        String::from_utf8_lossy(&buf)
    );
}
