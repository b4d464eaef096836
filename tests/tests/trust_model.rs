//! Issue 9: who may do what over HTTPS. A client certificate cannot make itself (or anyone) a
//! member, only the joiner that consumed a join may fetch the cluster key, a member's
//! certificate is removed only with the member, and a restricted client stays in its projects.

use base64::Engine;
use rxd_api::CertificatesPost;
use rxd_client::Client;
use rxd_testkit::Member;
use serde_json::json;

/// HTTPS to `address` with `cert` as the client certificate.
fn https(m: &Member, address: &str, cert: Option<&rxd_tls::CertKey>) -> Client {
    let cluster_crt = std::fs::read_to_string(m.dir().join("cluster.crt")).unwrap();
    Client::https(address, &cluster_crt, cert).unwrap()
}

fn der_b64(cert: &rxd_tls::CertKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(cert.cert_der())
}

/// Adds `cert` to the trust store through the unix socket.
async fn trust(m: &Member, name: &str, cert: &rxd_tls::CertKey, restricted: Option<&[&str]>) {
    m.client()
        .add_certificate(&CertificatesPost {
            name: name.into(),
            certificate: der_b64(cert),
            restricted: restricted.is_some(),
            projects: restricted.map(|p| p.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        })
        .await
        .unwrap();
}

/// The status of a raw request: 2xx as 200, an API error as its status.
async fn status(c: &Client, method: &str, path: &str, body: Option<serde_json::Value>) -> u16 {
    match c.request(method, path, body, None).await {
        Ok(_) => 200,
        Err(e) => e
            .status()
            .unwrap_or_else(|| panic!("{method} {path}: no HTTP answer: {e}")),
    }
}

#[tokio::test]
async fn a_client_certificate_cannot_mint_a_member() {
    let members = Member::form(2, "127.0.150", &[]).await;
    let client_cert = rxd_tls::generate_client("client", "host").unwrap();
    trust(&members[0], "client", &client_cert, None).await;
    let c = https(&members[0], "127.0.150.1:8443", Some(&client_cert));

    eprintln!("phase: a trusted client asks to add a server certificate, refused");
    let minted = rxd_tls::generate("minted").unwrap();
    let post = json!({"type": "server", "name": "minted", "certificate": der_b64(&minted)});
    assert_eq!(
        status(&c, "POST", "/1.0/certificates", Some(post)).await,
        403
    );
    let as_minted = https(&members[0], "127.0.150.1:8443", Some(&minted));
    assert_eq!(
        status(&as_minted, "GET", "/internal/ready", None).await,
        403
    );

    eprintln!("phase: a client certificate cannot be turned into a server one");
    let fp = client_cert.fingerprint();
    for method in ["PUT", "PATCH"] {
        let body = json!({"type": "server", "name": "client"});
        assert_eq!(
            status(&c, method, &format!("/1.0/certificates/{fp}"), Some(body)).await,
            403,
            "{method}"
        );
    }
    let (cert, _) = members[0].client().certificate(&fp).await.unwrap();
    assert_eq!(cert.put.cert_type, "client");
    assert_eq!(status(&c, "GET", "/internal/ready", None).await, 403);

    eprintln!("phase: the same through the unix socket is refused too");
    let err = members[0]
        .client()
        .add_certificate(&CertificatesPost {
            cert_type: "server".into(),
            name: "minted".into(),
            certificate: der_b64(&minted),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
}
