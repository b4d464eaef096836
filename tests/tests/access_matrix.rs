//! Issue 9: every endpoint of the router's table, called by every class of caller, on both
//! members of a real cluster. A forbidden call answers 403; an allowed one (with a dummy body or
//! name) answers anything but 403, never a 5xx, and never drops the connection. The expected
//! rules below are written out by hand: an endpoint added to the router without a line here
//! fails the test.

use base64::Engine;
use rxd_api::CertificatesPost;
use rxd_client::Client;
use rxd_daemon::access::Access;
use rxd_testkit::{Member, Net};
use std::time::Duration;

/// The rule each endpoint is expected to have.
const EXPECTED: &[(&str, &str, Access)] = &[
    ("/", "GET", Access::Public),
    ("/1.0", "GET", Access::Public),
    ("/1.0", "PUT", Access::Admin),
    ("/1.0", "PATCH", Access::Admin),
    ("/1.0/metrics", "GET", Access::Metrics),
    ("/1.0/certificates", "GET", Access::Authenticated),
    ("/1.0/certificates", "POST", Access::Public),
    (
        "/1.0/certificates/{fingerprint}",
        "GET",
        Access::Authenticated,
    ),
    (
        "/1.0/certificates/{fingerprint}",
        "PUT",
        Access::Authenticated,
    ),
    (
        "/1.0/certificates/{fingerprint}",
        "PATCH",
        Access::Authenticated,
    ),
    (
        "/1.0/certificates/{fingerprint}",
        "DELETE",
        Access::Authenticated,
    ),
    ("/1.0/cluster", "GET", Access::Authenticated),
    ("/1.0/cluster", "PUT", Access::Admin),
    ("/1.0/cluster/groups", "GET", Access::Authenticated),
    ("/1.0/cluster/groups", "POST", Access::Admin),
    ("/1.0/cluster/groups/{name}", "GET", Access::Authenticated),
    ("/1.0/cluster/groups/{name}", "PUT", Access::Admin),
    ("/1.0/cluster/groups/{name}", "PATCH", Access::Admin),
    ("/1.0/cluster/groups/{name}", "POST", Access::Admin),
    ("/1.0/cluster/groups/{name}", "DELETE", Access::Admin),
    ("/1.0/cluster/certificate", "PUT", Access::Admin),
    ("/1.0/cluster/members", "GET", Access::Authenticated),
    ("/1.0/cluster/members", "POST", Access::Admin),
    ("/1.0/cluster/members/{name}", "GET", Access::Authenticated),
    ("/1.0/cluster/members/{name}", "PUT", Access::Admin),
    ("/1.0/cluster/members/{name}", "PATCH", Access::Admin),
    ("/1.0/cluster/members/{name}", "POST", Access::Admin),
    ("/1.0/cluster/members/{name}", "DELETE", Access::Admin),
    ("/1.0/cluster/members/{name}/state", "POST", Access::Admin),
    ("/1.0/events", "GET", Access::Authenticated),
    ("/1.0/networks", "GET", Access::Project),
    ("/1.0/networks", "POST", Access::Admin),
    ("/1.0/networks/{name}", "GET", Access::Project),
    ("/1.0/networks/{name}", "PUT", Access::Admin),
    ("/1.0/networks/{name}", "PATCH", Access::Admin),
    ("/1.0/networks/{name}", "DELETE", Access::Admin),
    ("/1.0/networks/{name}", "POST", Access::Admin),
    ("/1.0/networks/{name}/leases", "GET", Access::Project),
    ("/1.0/networks/{name}/state", "GET", Access::Project),
    ("/1.0/operations", "GET", Access::Authenticated),
    ("/1.0/operations/{id}", "GET", Access::Authenticated),
    ("/1.0/operations/{id}", "DELETE", Access::Admin),
    ("/1.0/operations/{id}/wait", "GET", Access::Authenticated),
    ("/1.0/profiles", "GET", Access::Project),
    ("/1.0/profiles", "POST", Access::Project),
    ("/1.0/profiles/{name}", "GET", Access::Project),
    ("/1.0/profiles/{name}", "PUT", Access::Project),
    ("/1.0/profiles/{name}", "PATCH", Access::Project),
    ("/1.0/profiles/{name}", "POST", Access::Project),
    ("/1.0/profiles/{name}", "DELETE", Access::Project),
    ("/1.0/projects", "GET", Access::Authenticated),
    ("/1.0/projects/{name}", "GET", Access::Authenticated),
    ("/1.0/projects/{name}/state", "GET", Access::Authenticated),
    ("/1.0/resources", "GET", Access::Authenticated),
    ("/1.0/storage-pools", "GET", Access::Authenticated),
    ("/1.0/storage-pools", "POST", Access::Admin),
    ("/1.0/storage-pools/{name}", "GET", Access::Authenticated),
    ("/1.0/storage-pools/{name}", "PUT", Access::Admin),
    ("/1.0/storage-pools/{name}", "PATCH", Access::Admin),
    ("/1.0/storage-pools/{name}", "DELETE", Access::Admin),
    (
        "/1.0/storage-pools/{name}/resources",
        "GET",
        Access::Authenticated,
    ),
    ("/1.0/warnings", "GET", Access::Admin),
    ("/1.0/warnings/{id}", "GET", Access::Admin),
    ("/1.0/warnings/{id}", "PUT", Access::Admin),
    ("/1.0/warnings/{id}", "PATCH", Access::Admin),
    ("/1.0/warnings/{id}", "DELETE", Access::Admin),
    ("/internal/ready", "GET", Access::Member),
    ("/internal/shutdown", "PUT", Access::Member),
    ("/internal/raft/elect", "POST", Access::Member),
    ("/internal/raft/{kind}", "POST", Access::Member),
    ("/internal/cluster/accept", "POST", Access::Member),
    ("/internal/cluster/joined", "POST", Access::Member),
    ("/internal/cluster/abort", "POST", Access::Member),
    ("/internal/heartbeat", "PUT", Access::Member),
    ("/internal/cluster/left", "POST", Access::Member),
    (
        "/internal/cluster/certificate/stage",
        "POST",
        Access::Member,
    ),
    (
        "/internal/cluster/certificate/unstage",
        "POST",
        Access::Member,
    ),
    (
        "/internal/cluster/certificate/commit",
        "POST",
        Access::Member,
    ),
    ("/internal/storage-pools/create", "POST", Access::Member),
    ("/internal/storage-pools/delete", "POST", Access::Member),
    ("/internal/networks/create", "POST", Access::Member),
    ("/internal/networks/delete", "POST", Access::Member),
    ("/internal/networks/{name}/leases", "GET", Access::Member),
    ("/internal/form", "GET", Access::Local),
    ("/internal/form", "POST", Access::Local),
    ("/internal/form", "DELETE", Access::Local),
    // No formation window is open here: its paths are closed to everyone.
    ("/internal/form/{id}/hello", "POST", Access::Formation),
    ("/internal/form/{id}/confirm", "POST", Access::Formation),
    ("/internal/form/{id}/facts", "POST", Access::Formation),
    ("/internal/form/{id}/instruction", "GET", Access::Formation),
    ("/internal/form/{id}/report", "POST", Access::Formation),
    ("/internal/form/advert", "GET", Access::Formation),
    ("/internal/form/facts", "GET", Access::Local),
    ("/internal/form/commit", "POST", Access::Local),
    ("/internal/form/undo", "POST", Access::Local),
];

const ALL: &[&str] = &["GET", "PUT", "PATCH", "POST", "DELETE"];

/// LXD endpoints rxd does not have yet (issue 10): trusted callers get 501 with a sentence,
/// the others 403, as for any `Authenticated` endpoint.
const UNSUPPORTED: &[(&str, &[&str])] = &[
    ("/1.0/images", ALL),
    ("/1.0/images/{*rest}", ALL),
    ("/1.0/instances", ALL),
    ("/1.0/instances/{*rest}", ALL),
    ("/1.0/containers", ALL),
    ("/1.0/containers/{*rest}", ALL),
    ("/1.0/virtual-machines", ALL),
    ("/1.0/virtual-machines/{*rest}", ALL),
    ("/1.0/projects", &["POST"]),
    ("/1.0/projects/{name}", &["PUT", "PATCH", "POST", "DELETE"]),
    ("/1.0/storage-pools/{name}/volumes", ALL),
    ("/1.0/storage-pools/{name}/volumes/{*rest}", ALL),
    ("/1.0/network-acls", ALL),
    ("/1.0/network-acls/{*rest}", ALL),
    ("/1.0/network-zones", ALL),
    ("/1.0/network-zones/{*rest}", ALL),
    ("/1.0/networks/{name}/forwards", ALL),
    ("/1.0/networks/{name}/forwards/{*rest}", ALL),
    ("/1.0/networks/{name}/peers", ALL),
    ("/1.0/networks/{name}/peers/{*rest}", ALL),
];

fn is_unsupported(pattern: &str, method: &str) -> bool {
    UNSUPPORTED
        .iter()
        .any(|(p, ms)| *p == pattern && ms.contains(&method))
}

/// Every rule: [`EXPECTED`] and the unsupported endpoints.
fn expected() -> Vec<(&'static str, &'static str, Access)> {
    let unsupported = UNSUPPORTED
        .iter()
        .flat_map(|(p, ms)| ms.iter().map(move |m| (*p, *m, Access::Authenticated)));
    EXPECTED.iter().copied().chain(unsupported).collect()
}

/// Endpoints whose allowed call changes the member itself (it stops, leaves the cluster or
/// campaigns): their allowed cells run on a standalone server of their own, after the rest.
const DISRUPTIVE: &[&str] = &[
    "/internal/shutdown",
    "/internal/cluster/left",
    "/internal/raft/elect",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Unix,
    Untrusted,
    RandomCert,
    Trusted,
    RestrictedDefault,
    RestrictedNone,
    Member,
    /// A certificate of type `metrics`.
    MetricsCert,
}

const CLASSES: [Class; 8] = [
    Class::Unix,
    Class::Untrusted,
    Class::RandomCert,
    Class::Trusted,
    Class::RestrictedDefault,
    Class::RestrictedNone,
    Class::Member,
    Class::MetricsCert,
];

fn allowed(rule: Access, class: Class) -> bool {
    use Class::*;
    match rule {
        Access::Public => true,
        Access::Authenticated => !matches!(class, Untrusted | RandomCert | MetricsCert),
        Access::Project => matches!(class, Unix | Trusted | RestrictedDefault | Member),
        Access::Admin => matches!(class, Unix | Trusted | Member),
        Access::Metrics => matches!(class, Unix | Trusted | Member | MetricsCert),
        Access::Member => matches!(class, Unix | Member),
        Access::Local => matches!(class, Unix),
        // Only while a window of that id is open, and none is in this test.
        Access::Formation => false,
    }
}

/// Concrete paths for a pattern: every name is one that does not exist; each raft call is
/// tried with a body it cannot decode.
fn concrete(pattern: &str) -> Vec<String> {
    let kinds: &[&str] = if pattern.contains("{kind}") {
        &[
            "matrix-none",
            "append",
            "vote",
            "propose",
            "read-index",
            "snapshot",
        ]
    } else {
        &[""]
    };
    kinds
        .iter()
        .map(|kind| {
            pattern
                .replace("{fingerprint}", "00000000")
                .replace("{kind}", kind)
                .replace("{name}", "matrix-none")
                .replace("{id}", "matrix-none")
                .replace("{*rest}", "matrix-none/x")
        })
        .collect()
}

/// Calls the handler itself refuses with 403 although the route lets the caller in: a
/// restricted client asking for a project it is not given.
fn handler_forbids(pattern: &str, method: &str, class: Class) -> bool {
    matches!(
        (pattern, method),
        ("/1.0/projects/{name}", "GET") | ("/1.0/projects/{name}/state", "GET")
    ) && matches!(class, Class::RestrictedDefault | Class::RestrictedNone)
}

/// The callers of one member.
struct Callers {
    unix: Client,
    https: Vec<(Class, Client)>,
}

impl Callers {
    fn of(&self, class: Class) -> &Client {
        match class {
            Class::Unix => &self.unix,
            other => {
                &self
                    .https
                    .iter()
                    .find(|(c, _)| *c == other)
                    .expect("every HTTPS class has a client")
                    .1
            }
        }
    }
}

struct Certs {
    random: rxd_tls::CertKey,
    trusted: rxd_tls::CertKey,
    restricted_default: rxd_tls::CertKey,
    restricted_none: rxd_tls::CertKey,
    member: rxd_tls::CertKey,
    metrics: rxd_tls::CertKey,
}

fn callers(m: &Member, address: &str, certs: &Certs) -> Callers {
    let cluster_crt = std::fs::read_to_string(m.dir().join("cluster.crt"))
        .or_else(|_| std::fs::read_to_string(m.dir().join("server.crt")))
        .unwrap();
    let https = |cert: Option<&rxd_tls::CertKey>| {
        Client::https(address, &cluster_crt, cert)
            .unwrap()
            .with_timeout(Duration::from_secs(20))
    };
    Callers {
        unix: m.client(),
        https: vec![
            (Class::Untrusted, https(None)),
            (Class::RandomCert, https(Some(&certs.random))),
            (Class::Trusted, https(Some(&certs.trusted))),
            (
                Class::RestrictedDefault,
                https(Some(&certs.restricted_default)),
            ),
            (Class::RestrictedNone, https(Some(&certs.restricted_none))),
            (Class::Member, https(Some(&certs.member))),
            (Class::MetricsCert, https(Some(&certs.metrics))),
        ],
    }
}

async fn trust(m: &Member, name: &str, cert: &rxd_tls::CertKey, projects: Option<&[&str]>) {
    trust_as(m, name, "client", cert, projects).await
}

async fn trust_as(
    m: &Member,
    name: &str,
    cert_type: &str,
    cert: &rxd_tls::CertKey,
    projects: Option<&[&str]>,
) {
    m.client()
        .add_certificate(&CertificatesPost {
            name: name.into(),
            cert_type: cert_type.into(),
            certificate: base64::engine::general_purpose::STANDARD.encode(cert.cert_der()),
            restricted: projects.is_some(),
            projects: projects.map(|p| p.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        })
        .await
        .unwrap();
}

/// Calls one cell (each concrete path of it) and checks it; answers what went wrong. Counts
/// the calls made.
async fn check(
    c: &Client,
    method: &str,
    pattern: &str,
    rule: Access,
    class: Class,
    calls: &mut usize,
) -> Vec<String> {
    let mut failures = Vec::new();
    // A joiner asking a window that is not there at all is told so (404) over HTTPS, whoever
    // it is, to stop asking: the id is the advert's, nothing is opened or shown.
    let window_gone = rule == Access::Formation
        && class != Class::Unix
        && matches!(
            pattern,
            "/internal/form/{id}/instruction" | "/internal/form/{id}/report"
        );
    let expected_allowed =
        window_gone || allowed(rule, class) && !handler_forbids(pattern, method, class);
    for path in concrete(pattern) {
        *calls += 1;
        // A body that no handler accepts, so an allowed call changes nothing.
        let body = matches!(method, "PUT" | "PATCH" | "POST").then(|| serde_json::json!("matrix"));
        let status = match c.request(method, &path, body, None).await {
            Ok(_) => 200,
            // Raft calls answer in their own format, not LXD's envelope.
            Err(rxd_client::ClientError::Envelope { status, .. }) => status,
            Err(e) => match e.status() {
                Some(s) => s,
                None => {
                    failures.push(format!("{class:?} {method} {path}: no HTTP answer: {e}"));
                    continue;
                }
            },
        };
        let ok = if expected_allowed && is_unsupported(pattern, method) {
            status == 501
        } else if expected_allowed {
            status != 403 && status < 500
        } else {
            status == 403
        };
        if !ok {
            failures.push(format!(
                "{class:?} {method} {path} ({rule:?}): got {status}, expected {}",
                if expected_allowed && is_unsupported(pattern, method) {
                    "501"
                } else if expected_allowed {
                    "not 403 and not 5xx"
                } else {
                    "403"
                }
            ));
        }
    }
    failures
}

#[tokio::test]
async fn every_endpoint_answers_every_caller_by_its_rule() {
    let net = Net::lease();
    eprintln!("phase: the test's rules and the router's table list the same endpoints");
    let table: Vec<(String, String, Access)> = rxd_daemon::router::endpoints()
        .map(|(p, m, a)| (p.to_string(), m.to_string(), a))
        .collect();
    let all = expected();
    for (p, m, a) in &table {
        let expected = all.iter().find(|(ep, em, _)| ep == p && em == m);
        let Some((_, _, rule)) = expected else {
            panic!("{m} {p} has no expectation in the access matrix: add its rule here");
        };
        assert_eq!(
            rule, a,
            "{m} {p}: the router's rule differs from the matrix"
        );
    }
    for (p, m, _) in &all {
        assert!(
            table.iter().any(|(tp, tm, _)| tp == p && tm == m),
            "{m} {p} is in the matrix but not in the router"
        );
    }

    eprintln!("phase: a two-member cluster and one certificate per class of caller");
    let members = [Member::start(), Member::start()];
    let addresses = [&net.addr(1), &net.addr(2)];
    members[0].bootstrap(addresses[0], "node1", &[]);
    members[1].join(&members[0], "node2", addresses[1]).await;
    let read = |f: &str| std::fs::read_to_string(members[1].dir().join(f)).unwrap();
    let certs = Certs {
        random: rxd_tls::generate_client("random", "host").unwrap(),
        trusted: rxd_tls::generate_client("trusted", "host").unwrap(),
        restricted_default: rxd_tls::generate_client("rdefault", "host").unwrap(),
        restricted_none: rxd_tls::generate_client("rnone", "host").unwrap(),
        member: rxd_tls::CertKey::from_pem(read("server.crt"), read("server.key")).unwrap(),
        metrics: rxd_tls::generate_client("metrics", "host").unwrap(),
    };
    trust(&members[0], "trusted", &certs.trusted, None).await;
    trust_as(&members[0], "metrics", "metrics", &certs.metrics, None).await;
    trust(
        &members[0],
        "rdefault",
        &certs.restricted_default,
        Some(&["default"]),
    )
    .await;
    trust(&members[0], "rnone", &certs.restricted_none, Some(&[])).await;

    eprintln!("phase: every endpoint x method x class, on both members");
    let mut failures = Vec::new();
    let mut cells = 0;
    let mut calls = 0;
    for (i, m) in members.iter().enumerate() {
        let callers = callers(m, addresses[i], &certs);
        // Trust is decided on each member's own replica, which may apply the entries a moment
        // after the writes were answered.
        for class in [
            Class::Trusted,
            Class::RestrictedDefault,
            Class::RestrictedNone,
        ] {
            let c = callers.of(class);
            rxd_testkit::until(
                Duration::from_secs(10),
                "the member to trust the client",
                || async { c.server().await.is_ok_and(|(s, _)| s.auth == "trusted") },
            )
            .await;
        }
        let c = callers.of(Class::MetricsCert);
        rxd_testkit::until(
            Duration::from_secs(10),
            "the member to know the metrics certificate",
            || async { c.get_text("/1.0/metrics").await.is_ok() },
        )
        .await;
        for (pattern, method, rule) in &all {
            for class in CLASSES {
                if DISRUPTIVE.contains(pattern) && allowed(*rule, class) {
                    continue;
                }
                cells += 1;
                for f in check(callers.of(class), method, pattern, *rule, class, &mut calls).await {
                    failures.push(format!("node{}: {f}", i + 1));
                }
            }
        }
    }

    eprintln!(
        "phase: the allowed calls that stop, remove or re-elect a member, each on its own server"
    );
    let mut next = 10;
    for (pattern, method, rule) in EXPECTED.iter().filter(|(p, _, _)| DISRUPTIVE.contains(p)) {
        for class in CLASSES.into_iter().filter(|c| allowed(*rule, *c)) {
            let m = Member::start();
            let address = format!("{net}.{next}:8443");
            next += 1;
            m.bootstrap(&address, "solo", &[]);
            let read = |f: &str| std::fs::read_to_string(m.dir().join(f)).unwrap();
            let own = Certs {
                member: rxd_tls::CertKey::from_pem(read("server.crt"), read("server.key")).unwrap(),
                ..clone_certs(&certs)
            };
            let callers = callers(&m, &address, &own);
            cells += 1;
            for f in check(callers.of(class), method, pattern, *rule, class, &mut calls).await {
                failures.push(format!("solo: {f}"));
            }
        }
    }
    eprintln!("access matrix: {cells} cells, {calls} calls");
    assert!(
        failures.is_empty(),
        "{} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn clone_certs(c: &Certs) -> Certs {
    let copy = |k: &rxd_tls::CertKey| {
        rxd_tls::CertKey::from_pem(k.cert_pem.clone(), k.key_pem.clone()).unwrap()
    };
    Certs {
        random: copy(&c.random),
        trusted: copy(&c.trusted),
        restricted_default: copy(&c.restricted_default),
        restricted_none: copy(&c.restricted_none),
        member: copy(&c.member),
        metrics: copy(&c.metrics),
    }
}
