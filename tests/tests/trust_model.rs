//! Issue 9: who may do what over HTTPS. A client certificate cannot make itself (or anyone) a
//! member, only the joiner that consumed a join may fetch the cluster key, a member's
//! certificate is removed only with the member, and a restricted client stays in its projects.

use base64::Engine;
use rxd_api::CertificatesPost;
use rxd_client::Client;
use rxd_testkit::{Member, Net};
use serde_json::json;
use std::time::Duration;

/// Two members, `node1` on `net.addr(1)` and `node2` on `net.addr(2)`.
async fn form(net: &Net) -> (Vec<Member>, [String; 2]) {
    let addresses = [net.addr(1), net.addr(2)];
    let members = vec![Member::start(), Member::start()];
    members[0].bootstrap(&addresses[0], "node1", &[]);
    members[1].join(&members[0], "node2", &addresses[1]).await;
    (members, addresses)
}

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

/// Waits until the member `c` talks to trusts its client certificate: trust is decided on the
/// member's own replica, which may apply a new entry a moment after the write was answered.
async fn until_trusted(c: &Client) {
    rxd_testkit::until(
        Duration::from_secs(10),
        "the member to trust the client",
        || async { c.server().await.is_ok_and(|(s, _)| s.auth == "trusted") },
    )
    .await;
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
    let net = Net::lease();
    let (members, addr) = form(&net).await;
    let client_cert = rxd_tls::generate_client("client", "host").unwrap();
    trust(&members[0], "client", &client_cert, None).await;
    let c = https(&members[0], &addr[0], Some(&client_cert));

    eprintln!("phase: a trusted client asks to add a server certificate, refused");
    let minted = rxd_tls::generate("minted").unwrap();
    let post = json!({"type": "server", "name": "minted", "certificate": der_b64(&minted)});
    assert_eq!(
        status(&c, "POST", "/1.0/certificates", Some(post)).await,
        403
    );
    let as_minted = https(&members[0], &addr[0], Some(&minted));
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

/// A member's own `server.crt`, as its client certificate.
fn member_cert(m: &Member) -> rxd_tls::CertKey {
    let read = |f: &str| std::fs::read_to_string(m.dir().join(f)).unwrap();
    rxd_tls::CertKey::from_pem(read("server.crt"), read("server.key")).unwrap()
}

fn accept_body(net: &Net, name: &str, schema: i64) -> serde_json::Value {
    json!({
        "name": name,
        "address": &net.addr(250),
        "schema": schema,
        "api": rxd_api::API_EXTENSIONS.len(),
        "architecture": "x86_64",
        "storage_pools": {"local": {}},
    })
}

/// The status and message of a raw request.
async fn answer(c: &Client, method: &str, path: &str, body: serde_json::Value) -> (u16, String) {
    match c.request(method, path, Some(body), None).await {
        Ok(r) => (200, serde_json::to_string(&r.envelope.metadata).unwrap()),
        Err(e) => (
            e.status()
                .unwrap_or_else(|| panic!("{method} {path}: no HTTP answer: {e}")),
            e.to_string(),
        ),
    }
}

#[tokio::test]
async fn only_the_joiner_that_presented_a_token_is_accepted_once() {
    let net = Net::lease();
    let (members, addr) = form(&net).await;
    let accept = "/internal/cluster/accept";

    eprintln!("phase: a member certificate with no join in progress gets 403 and no detail");
    for (i, address) in addr.iter().enumerate() {
        let as_member = https(&members[0], address, Some(&member_cert(&members[i])));
        let (status, message) =
            answer(&as_member, "POST", accept, accept_body(&net, "evil", 0)).await;
        assert_eq!(status, 403, "{message}");
        assert!(!message.contains("schema"), "{message}");
    }

    eprintln!("phase: a server presents a join token for node9 with its certificate");
    let token = rxd_testkit::join_token(&members[0], "node9").await;
    let joiner = rxd_tls::generate("node9").unwrap();
    let as_joiner = https(&members[0], &addr[1], Some(&joiner));
    as_joiner
        .add_certificate(&CertificatesPost {
            name: "node9".into(),
            cert_type: "server".into(),
            password: token,
            ..Default::default()
        })
        .await
        .unwrap();
    until_trusted(&as_joiner).await;

    eprintln!("phase: another member's certificate still cannot use the join");
    let other = https(&members[0], &addr[0], Some(&member_cert(&members[0])));
    let mut forged = accept_body(&net, "node9", 0);
    forged["joiner_fingerprint"] = json!("0000");
    assert_eq!(answer(&other, "POST", accept, forged).await.0, 403);

    eprintln!("phase: the joiner, under another name, is refused");
    assert_eq!(
        answer(&as_joiner, "POST", accept, accept_body(&net, "node8", 0))
            .await
            .0,
        403
    );
    eprintln!("phase: the joiner with a wrong version is told why, and keeps its join");
    let (status, message) = answer(&as_joiner, "POST", accept, accept_body(&net, "node9", 0)).await;
    assert_eq!(status, 400, "{message}");
    let schema: i64 = message
        .split("DB schema ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no schema in {message}"));

    eprintln!("phase: the joiner is accepted once, through a member that forwards to the leader");
    let (status, message) = answer(
        &as_joiner,
        "POST",
        accept,
        accept_body(&net, "node9", schema),
    )
    .await;
    assert_eq!(status, 200, "{message}");
    assert!(message.contains("private_key"), "{message}");
    let (status, message) = answer(
        &as_joiner,
        "POST",
        accept,
        accept_body(&net, "node9", schema),
    )
    .await;
    assert_eq!(status, 403, "{message}");
}

#[tokio::test]
async fn a_members_certificate_goes_only_with_the_member() {
    let net = Net::lease();
    let (members, _) = form(&net).await;
    let c = members[0].client();
    let fp = member_cert(&members[1]).fingerprint();

    eprintln!("phase: deleting node2's certificate is refused while node2 is a member");
    let err = c.delete_certificate(&fp).await.unwrap_err();
    assert_eq!(err.status(), Some(409), "{err}");
    assert!(err.to_string().contains("cluster remove"), "{err}");
    assert!(c.certificate(&fp).await.is_ok());
    eprintln!("phase: nor can it be renamed away from its member, nor made a client one");
    let path = format!("/1.0/certificates/{fp}");
    for body in [json!({"name": "other"}), json!({"type": "client"})] {
        assert_eq!(status(&c, "PATCH", &path, Some(body)).await, 403);
    }

    eprintln!("phase: node2 still writes through the cluster");
    let post = rxd_api::ProfilesPost {
        name: "after".into(),
        ..Default::default()
    };
    members[1].client().create_profile(&post).await.unwrap();
}

/// A client certificate written to `<member dir>/<name>.crt`.
fn client_cert_file(m: &Member, name: &str) -> (rxd_tls::CertKey, String) {
    let cert = rxd_tls::generate_client(name, "host").unwrap();
    let path = m.dir().join(format!("{name}.crt"));
    std::fs::write(&path, &cert.cert_pem).unwrap();
    (cert, path.to_string_lossy().into_owned())
}

#[tokio::test]
async fn a_restricted_client_stays_in_its_projects() {
    let net = Net::lease();
    let (members, addr) = form(&net).await;
    let admin = members[0].client();

    eprintln!("phase: a certificate-add token made for a client restricted to no project");
    let op = admin
        .create_certificate_token(&CertificatesPost {
            name: "nobody".into(),
            cert_type: "client".into(),
            token: true,
            restricted: true,
            projects: Some(vec![]),
            ..Default::default()
        })
        .await
        .unwrap();
    let meta = op.metadata.unwrap();
    let token = rxd_api::CertificateAddToken {
        client_name: "nobody".into(),
        fingerprint: meta["fingerprint"].as_str().unwrap().into(),
        addresses: vec![addr[0].clone()],
        secret: meta["secret"].as_str().unwrap().into(),
        expires_at: String::new(),
    };
    let nobody_cert = rxd_tls::generate_client("nobody", "host").unwrap();
    let nobody = https(&members[0], &addr[1], Some(&nobody_cert));
    eprintln!("phase: the client asks to be unrestricted when it presents the token; it is not");
    nobody
        .add_certificate(&CertificatesPost {
            trust_token: token.encode(),
            restricted: false,
            ..Default::default()
        })
        .await
        .unwrap();
    let (cert, _) = admin.certificate(&nobody_cert.fingerprint()).await.unwrap();
    assert!(cert.put.restricted);
    assert!(cert.put.projects.is_empty());

    eprintln!("phase: restricted to nothing, it reads what LXD lets it read and changes nothing");
    until_trusted(&nobody).await;
    let (server, _) = nobody.server().await.unwrap();
    assert!(
        server.config.unwrap_or_default().is_empty(),
        "no server configuration"
    );
    let forbidden = [
        (
            "PATCH",
            "/1.0",
            json!({"config": {"core.trust_password": "x"}}),
        ),
        ("PUT", "/1.0", json!({"config": {}})),
        ("POST", "/1.0/profiles", json!({"name": "p1"})),
        ("GET", "/1.0/profiles", json!(null)),
        ("GET", "/1.0/profiles/default", json!(null)),
        ("GET", "/1.0/projects/default", json!(null)),
        (
            "POST",
            "/1.0/cluster/members",
            json!({"server_name": "node9"}),
        ),
        ("DELETE", "/1.0/cluster/members/node2", json!(null)),
        (
            "POST",
            "/1.0/storage-pools",
            json!({"name": "p", "driver": "dir"}),
        ),
        ("POST", "/1.0/networks", json!({"name": "n"})),
        (
            "POST",
            "/1.0/certificates",
            json!({"type": "server", "name": "x"}),
        ),
        (
            "POST",
            "/1.0/certificates",
            json!({"token": true, "name": "x"}),
        ),
    ];
    for (method, path, body) in forbidden {
        let body = (!body.is_null()).then_some(body);
        assert_eq!(
            status(&nobody, method, path, body).await,
            403,
            "{method} {path}"
        );
    }
    let listed = nobody.certificates().await.unwrap();
    assert_eq!(listed.len(), 1, "only its own entry");
    assert_eq!(listed[0].fingerprint, nobody_cert.fingerprint());
    let member_fp = member_cert(&members[1]).fingerprint();
    assert_eq!(
        status(
            &nobody,
            "GET",
            &format!("/1.0/certificates/{member_fp}"),
            None
        )
        .await,
        404
    );
    assert_eq!(
        status(
            &nobody,
            "DELETE",
            &format!("/1.0/certificates/{member_fp}"),
            None
        )
        .await,
        404
    );
    assert!(nobody.projects().await.unwrap().is_empty());
    assert_eq!(nobody.cluster_members().await.unwrap().len(), 2);

    eprintln!("phase: a join token is not shown to it among the operations");
    rxd_testkit::join_token(&members[0], "node9").await;
    let ops = nobody
        .request("GET", "/1.0/operations?recursion=1", None, None)
        .await
        .unwrap();
    assert!(
        !serde_json::to_string(&ops.envelope.metadata)
            .unwrap()
            .contains("secret"),
        "{:?}",
        ops.envelope.metadata
    );

    eprintln!("phase: rxc and lxc add clients restricted to the default project");
    let (rxc_cert, rxc_file) = client_cert_file(&members[0], "viarxc");
    rxd_testkit::ok(&members[0].command(
        "rxc",
        &[
            "config",
            "trust",
            "add",
            &rxc_file,
            "--restricted",
            "--projects",
            "default",
        ],
        None,
    ));
    let (lxc_cert, lxc_file) = client_cert_file(&members[0], "vialxc");
    rxd_testkit::ok(&members[0].command(
        "lxc",
        &[
            "config",
            "trust",
            "add",
            &lxc_file,
            "--restricted",
            "--projects",
            "default",
        ],
        None,
    ));
    for cert in [&rxc_cert, &lxc_cert] {
        let (entry, _) = admin.certificate(&cert.fingerprint()).await.unwrap();
        assert!(entry.put.restricted);
        assert_eq!(entry.put.projects, ["default"]);
        let c = https(&members[0], &addr[1], Some(cert));
        until_trusted(&c).await;
        let name = format!("p-{}", &cert.fingerprint()[..8]);
        assert_eq!(
            status(&c, "POST", "/1.0/profiles", Some(json!({"name": name}))).await,
            200
        );
        let path = format!("/1.0/profiles/{name}");
        assert_eq!(
            status(&c, "PATCH", &path, Some(json!({"description": "mine"}))).await,
            200
        );
        assert_eq!(status(&c, "GET", "/1.0/profiles", None).await, 200);
        assert_eq!(status(&c, "GET", "/1.0/projects/default", None).await, 200);
        assert_eq!(
            status(&c, "GET", "/1.0/profiles?project=other", None).await,
            403
        );
        assert_eq!(status(&c, "DELETE", &path, None).await, 200);
        assert_eq!(
            status(&c, "PATCH", "/1.0", Some(json!({"config": {}}))).await,
            403
        );
        let own = format!("/1.0/certificates/{}", cert.fingerprint());
        assert_eq!(
            status(&c, "PATCH", &own, Some(json!({"restricted": false}))).await,
            403,
            "it cannot lift its own restriction"
        );
    }
}
