//! `/1.0/certificates`: the trust store. Untrusted callers may add their certificate with the
//! trust password, a join token or a certificate-add token.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use rxd_api::{Certificate, CertificatePut, CertificatesPost, JoinToken};
use rxd_cluster::tokens::{expires_at, new_secret};
use rxd_db::tables::{self, Token};
use rxd_db::{ApplyError, Command};

use crate::access::{Caller, Peer};
use crate::config;
use crate::error::{ApiError, ApiResult};
use crate::handlers::cluster_members::token_operation;
use crate::handlers::{recursion, QueryMap};
use crate::password::Attempt;
use crate::response::{
    check_etag, created, empty, operation, sync, sync_etag, CompareAndSet, JsonBody,
};
use crate::Daemon;

fn to_api(c: tables::Certificate) -> Certificate {
    Certificate {
        put: CertificatePut {
            name: c.name,
            cert_type: c.cert_type,
            restricted: c.restricted,
            projects: c.projects,
            certificate: c.certificate,
            description: c.description,
        },
        fingerprint: c.fingerprint,
    }
}

/// Whether the caller may see `cert`: a restricted client sees only its own entry.
fn visible(caller: &Caller, cert: &tables::Certificate) -> bool {
    caller.restricted_to().is_none() || caller.fingerprint().as_deref() == Some(&cert.fingerprint)
}

/// `GET /1.0/certificates`.
pub async fn certificates_get(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    q: QueryMap,
) -> ApiResult<Response> {
    let mut certs = d.db().read(tables::certificates).await?;
    certs.retain(|c| visible(&caller, c));
    if recursion(&q) {
        Ok(sync(certs.into_iter().map(to_api).collect::<Vec<_>>()))
    } else {
        Ok(sync(
            certs
                .iter()
                .map(|c| format!("/1.0/certificates/{}", c.fingerprint))
                .collect::<Vec<_>>(),
        ))
    }
}

/// Finds a certificate the caller may see by a unique fingerprint prefix.
async fn find(d: &Daemon, caller: &Caller, prefix: &str) -> ApiResult<tables::Certificate> {
    let certs = d.db().read(tables::certificates).await?;
    let mut matches = certs
        .into_iter()
        .filter(|c| c.fingerprint.starts_with(prefix) && visible(caller, c));
    match (matches.next(), matches.next()) {
        (Some(c), None) if !prefix.is_empty() => Ok(c),
        (Some(_), Some(_)) => Err(ApiError::bad_request(format!(
            "More than one certificate matches {prefix:?}"
        ))),
        _ => Err(ApiError::not_found("Certificate not found")),
    }
}

/// `GET /1.0/certificates/{fingerprint}`.
pub async fn certificate_get(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(fp): Path<String>,
) -> ApiResult<Response> {
    let c = to_api(find(&d, &caller, &fp).await?);
    let etag = rxd_api::etag(&c.put);
    Ok(sync_etag(c, &etag))
}

fn pem_from_post(post: &CertificatesPost, caller: &Caller) -> ApiResult<String> {
    if !post.certificate.is_empty() {
        // pylxd sends the PEM body, with its line breaks: read it as LXD's Go decoder does.
        let der = rxd_api::decode_base64(post.certificate.trim())
            .map_err(|e| ApiError::bad_request(format!("Invalid certificate material: {e}")))?;
        rxd_tls::CertInfo::from_der(&der)
            .map_err(|e| ApiError::bad_request(format!("Invalid certificate material: {e}")))?;
        return Ok(rxd_tls::der_to_pem(&der));
    }
    match &caller.peer {
        Peer::Tls {
            cert_der: Some(der),
            ..
        } => Ok(rxd_tls::der_to_pem(der)),
        _ => Err(ApiError::bad_request("Can't use TLS data on non-TLS link")),
    }
}

/// Adds the certificate of `post`. A `server` certificate reaches here only with a join's
/// secret (a join token or the trust password), and its holder may then be accepted as a
/// member once.
async fn add(
    d: &Daemon,
    caller: &Caller,
    post: &CertificatesPost,
    name: &str,
) -> ApiResult<Response> {
    let pem = pem_from_post(post, caller)?;
    let fingerprint = rxd_tls::fingerprint_pem(&pem)
        .map_err(|e| ApiError::bad_request(format!("Invalid certificate material: {e}")))?;
    let cert_type = if post.cert_type.is_empty() {
        "client".to_string()
    } else {
        post.cert_type.clone()
    };
    if !["client", "server", "metrics"].contains(&cert_type.as_str()) {
        return Err(ApiError::bad_request(format!(
            "Unknown certificate type {cert_type:?}"
        )));
    }
    let cert = tables::Certificate {
        fingerprint: fingerprint.clone(),
        cert_type,
        name: name.to_string(),
        certificate: pem,
        restricted: post.restricted,
        projects: post.projects.clone().unwrap_or_default(),
        description: post.description.clone(),
    };
    let exists = || ApiError::conflict("Certificate already in trust store");
    if cert.cert_type == "server" {
        // A joiner retrying after a failed attempt is trusted already; it gets a new grant.
        let fp = fingerprint.clone();
        let existed = d
            .db()
            .read(move |c| Ok(tables::certificate(c, &fp).is_ok()))
            .await?;
        d.db().propose(Command::GrantJoin(cert)).await??;
        if existed {
            return Err(exists());
        }
    } else {
        d.db()
            .propose(Command::AddCertificate(cert))
            .await?
            .map_err(|e| match e {
                ApplyError::Exists { .. } => exists(),
                other => other.into(),
            })?;
    }
    // Trust is decided on this member's own replica: wait until it holds the new entry, so the
    // client's next request here is trusted (pylxd reads its certificate back at once).
    d.db().read(|_| Ok(())).await?;
    let url = format!("/1.0/certificates/{fingerprint}");
    d.events
        .lifecycle("certificate-created", &url, None, Some(caller.requestor()));
    Ok(created(&url))
}

const SERVER_BY_JOIN: &str =
    "Server certificates are only added by a server joining the cluster, with a join token or the trust password";

/// Uses up the token of `kind` for `name` with `secret`. A secret that matches no token is a
/// guess and counts against its source, as a wrong trust password does.
async fn consume(
    d: &Daemon,
    attempt: Attempt<'_>,
    kind: &str,
    name: &str,
    secret: &str,
) -> ApiResult<Token> {
    // Anyone may offer a token, so a guess must not become a raft write: only a secret that
    // matches a stored token is consumed through the log.
    let exists = rxd_cluster::tokens::exists(d, kind, name, secret).await?;
    attempt.record(exists);
    if !exists {
        return Err(rxd_cluster::tokens::no_matching(kind).into());
    }
    let t = rxd_cluster::tokens::consume(d, kind, name, secret).await?;
    let mut op = token_operation(&t);
    op.status = "Success".into();
    op.status_code = 200;
    d.events.send(
        "operation",
        serde_json::to_value(&op).expect("operations serialise"),
        "default",
    );
    Ok(t)
}

/// `POST /1.0/certificates`.
pub async fn certificates_post(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    JsonBody(post): JsonBody<CertificatesPost>,
) -> ApiResult<Response> {
    let secret = if post.trust_token.is_empty() {
        post.password.clone()
    } else {
        post.trust_token.clone()
    };
    // A server certificate makes its holder a member: it enters only with a join's secret.
    let server = post.cert_type == "server";
    if caller.is_admin() && !server {
        if post.token {
            return certificate_token(&d, &post).await;
        }
        return add(&d, &caller, &post, &post.name).await;
    }
    if secret.is_empty() {
        return Err(if server && caller.is_admin() {
            ApiError::forbidden_with(SERVER_BY_JOIN)
        } else {
            ApiError::forbidden()
        });
    }
    // A blocked source is refused before its secret is looked at, whatever its kind.
    let attempt = d.passwords.admit(&caller.peer)?;
    if let Ok(token) = JoinToken::decode(&secret) {
        consume(&d, attempt, "join", &token.server_name, &token.secret).await?;
        return add(&d, &caller, &post, &post.name).await;
    }
    if let Ok(token) = rxd_api::CertificateAddToken::decode(&secret) {
        let stored = consume(
            &d,
            attempt,
            "certificate",
            &token.client_name,
            &token.secret,
        )
        .await?;
        // The token's maker chose the restriction, not the client presenting it.
        let mut post = post;
        post.cert_type = "client".into();
        post.restricted = stored.restricted_projects.is_some();
        post.projects = stored.restricted_projects;
        return add(&d, &caller, &post, &token.client_name).await;
    }
    let stored = d.db().read(tables::config).await?;
    attempt
        .check(stored.get("core.trust_password"), &secret)
        .await?;
    add(&d, &caller, &post, &post.name).await
}

async fn certificate_token(d: &Daemon, post: &CertificatesPost) -> ApiResult<Response> {
    if post.name.is_empty() {
        return Err(ApiError::bad_request(
            "A client name is required for a token",
        ));
    }
    let cluster_config = d.db().read(tables::config).await?;
    let expiry = config::cluster_value(&cluster_config, "core.remote_token_expiry");
    let token = Token {
        id: uuid::Uuid::new_v4().to_string(),
        kind: "certificate".into(),
        name: post.name.clone(),
        secret: new_secret(),
        fingerprint: d.served_cert().fingerprint(),
        addresses: d.https_addresses().await,
        created_at: crate::now_rfc3339(),
        expires_at: if expiry.is_empty() {
            // No expiry configured: far in the future, so string comparison still works.
            "9999-12-31T23:59:59Z".into()
        } else {
            expires_at(expiry)?
        },
        location: d.location().await,
        restricted_projects: post
            .restricted
            .then(|| post.projects.clone().unwrap_or_default()),
    };
    d.db().propose(Command::AddToken(token.clone())).await??;
    Ok(operation(&token_operation(&token)))
}

async fn update(
    d: &Daemon,
    caller: &Caller,
    fp: &str,
    headers: &HeaderMap,
    put: CertificatePut,
    merge: bool,
) -> ApiResult<Response> {
    let mut cas = CompareAndSet::new(headers);
    while update_once(d, caller, fp, headers, &put, merge, &mut cas)
        .await?
        .is_none()
    {}
    Ok(empty())
}

/// One read-check-write of [`update`]; `None` when it lost a race and is computed again.
async fn update_once(
    d: &Daemon,
    caller: &Caller,
    fp: &str,
    headers: &HeaderMap,
    put: &CertificatePut,
    merge: bool,
    cas: &mut CompareAndSet,
) -> ApiResult<Option<rxd_db::Response>> {
    let row = find(d, caller, fp).await?;
    let current = to_api(row.clone());
    check_etag(headers, &rxd_api::etag(&current.put))?;
    let pick = |new: String, old: String| if merge && new.is_empty() { old } else { new };
    let name = pick(put.name.clone(), current.put.name.clone());
    let cert_type = pick(put.cert_type.clone(), current.put.cert_type.clone());
    if caller.restricted_to().is_some()
        && (name != current.put.name
            || cert_type != current.put.cert_type
            || put.restricted != current.put.restricted
            || put.projects != current.put.projects)
    {
        // As in LXD, a restricted client's own entry is not its to widen.
        return Err(ApiError::forbidden_with(
            "Only the certificate can be changed",
        ));
    }
    if !["client", "server", "metrics"].contains(&cert_type.as_str()) {
        return Err(ApiError::bad_request(format!(
            "Unknown certificate type {cert_type:?}"
        )));
    }
    if cert_type != current.put.cert_type {
        if cert_type == "server" {
            return Err(ApiError::forbidden_with(SERVER_BY_JOIN));
        }
        if current.put.cert_type == "server" {
            return Err(ApiError::forbidden_with(
                "Cannot change the type of a server certificate: remove the member with `cluster remove` instead",
            ));
        }
    }
    if current.put.cert_type == "server" && name != current.put.name {
        // The name ties the certificate to its member: renaming the member renames it.
        return Err(ApiError::forbidden_with(
            "Cannot rename a server certificate: rename the cluster member instead",
        ));
    }
    let write = Command::UpdateCertificate {
        fingerprint: current.fingerprint.clone(),
        name,
        cert_type,
        restricted: put.restricted,
        projects: put.projects.clone(),
        description: pick(put.description.clone(), current.put.description.clone()),
    }
    .only_if(rxd_db::Expected::Certificate(row));
    cas.outcome(d.db().propose(write).await?)
}

/// `PUT /1.0/certificates/{fingerprint}`.
pub async fn certificate_put(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(fp): Path<String>,
    headers: HeaderMap,
    JsonBody(put): JsonBody<CertificatePut>,
) -> ApiResult<Response> {
    update(&d, &caller, &fp, &headers, put, false).await
}

/// `PATCH /1.0/certificates/{fingerprint}`.
pub async fn certificate_patch(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(fp): Path<String>,
    headers: HeaderMap,
    JsonBody(put): JsonBody<CertificatePut>,
) -> ApiResult<Response> {
    update(&d, &caller, &fp, &headers, put, true).await
}

/// `DELETE /1.0/certificates/{fingerprint}`.
pub async fn certificate_delete(
    State(d): State<Arc<Daemon>>,
    caller: Caller,
    Path(fp): Path<String>,
) -> ApiResult<Response> {
    let c = find(&d, &caller, &fp).await?;
    if c.cert_type == "server" {
        let members = d.db().read(tables::members).await?;
        if members.iter().any(|m| m.name == c.name) {
            return Err(ApiError::conflict(format!(
                "Certificate belongs to cluster member {:?}: remove the member with `cluster remove` instead",
                c.name
            )));
        }
    }
    d.db()
        .propose(Command::DeleteCertificate {
            fingerprint: c.fingerprint.clone(),
        })
        .await??;
    d.events.lifecycle(
        "certificate-deleted",
        &format!("/1.0/certificates/{}", c.fingerprint),
        None,
        Some(caller.requestor()),
    );
    Ok(empty())
}
