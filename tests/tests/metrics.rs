//! Issue 13: `GET /1.0/metrics` in Prometheus' text format, read by Prometheus' own Python
//! parser (`prometheus_client`, installed by `.ci/run`) over HTTPS with a `metrics`
//! certificate added by `rxc config trust add --type=metrics`, and by the real
//! `lxc query`. The series move when the cluster changes: writes raise the applied index, the
//! proposal count and the request counts; a stopped member is counted offline.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rxd_testkit::{Member, Net};
use serde_json::Value;

/// One scrape: family name → (type, samples as (name, labels, value)).
type Scrape = BTreeMap<String, (String, Vec<(String, BTreeMap<String, String>, f64)>)>;

/// Scrapes `address` with the certificate in `dir` (`metrics.crt`, `metrics.key`) through
/// the Python parser; answers the status, and the families on a 200.
fn scrape(m: &Member, address: &str, dir: &Path) -> (u16, Scrape, Value) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/scrape_metrics.py");
    let (cert, key) = (dir.join("metrics.crt"), dir.join("metrics.key"));
    let text = m.succeeds(
        "python3",
        &[
            &script.display().to_string(),
            address,
            &cert.display().to_string(),
            &key.display().to_string(),
        ],
        None,
    );
    let answer: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    let status = u16::try_from(answer["status"].as_u64().unwrap()).unwrap();
    let mut families = Scrape::new();
    if let Some(all) = answer["families"].as_object() {
        for (name, f) in all {
            let samples = f["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    let labels = s[1]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                        .collect();
                    (
                        s[0].as_str().unwrap().to_string(),
                        labels,
                        s[2].as_f64().unwrap(),
                    )
                })
                .collect();
            families.insert(
                name.clone(),
                (f["type"].as_str().unwrap().to_string(), samples),
            );
        }
    }
    (status, families, answer)
}

/// The value of sample `name` whose labels include `labels` (summed over the others).
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.values()
        .flat_map(|(_, samples)| samples)
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_prometheus_text_and_move_with_the_cluster() {
    let net = Net::lease();
    let mut members = Member::form(3, &net, &["cluster.offline_threshold: \"11\""]).await;

    eprintln!("a metrics certificate, added as lxc adds one");
    let dir = tempfile::tempdir().unwrap();
    let cert = rxd_tls::generate_client("metrics", "host").unwrap();
    std::fs::write(dir.path().join("metrics.crt"), &cert.cert_pem).unwrap();
    std::fs::write(dir.path().join("metrics.key"), &cert.key_pem).unwrap();
    let crt = dir.path().join("metrics.crt").display().to_string();
    members[0].succeeds(
        "rxc",
        &["config", "trust", "add", &crt, "--type=metrics"],
        None,
    );
    let listed = members[0].succeeds("rxc", &["config", "trust", "list", "--format=csv"], None);
    assert!(listed.contains("metrics,metrics"), "{listed}");

    eprintln!("a follower's series, parsed by Prometheus' parser");
    let follower = net.addr(2);
    let (status, before, raw) = scrape(&members[1], &follower, dir.path());
    assert_eq!(status, 200, "{raw}");
    assert!(
        raw["content_type"]
            .as_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{raw}"
    );
    for (family, kind) in [
        ("lxd_uptime_seconds", "gauge"),
        ("rxd_raft_term", "gauge"),
        ("rxd_raft_role", "gauge"),
        ("rxd_raft_applied_index", "gauge"),
        ("rxd_raft_snapshot_index", "gauge"),
        ("rxd_raft_snapshot_size_bytes", "gauge"),
        ("rxd_raft_leader_changes", "counter"),
        ("rxd_raft_snapshots", "counter"),
        ("rxd_raft_proposal_duration_seconds", "histogram"),
        ("rxd_heartbeat_rounds", "counter"),
        ("rxd_heartbeat_round_duration_seconds", "gauge"),
        ("rxd_cluster_members", "gauge"),
        ("rxd_cluster_member_roles", "gauge"),
        ("rxd_api_requests", "counter"),
        ("rxd_api_request_duration_seconds", "histogram"),
        ("lxd_operations_total", "gauge"),
        ("process_cpu_seconds", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
    ] {
        let got = before.get(family).map(|(k, _)| k.as_str());
        assert_eq!(got, Some(kind), "family {family} in {:?}", before.keys());
    }
    assert!(value(&before, "rxd_raft_term", &[]) >= 1.0);
    assert_eq!(
        value(&before, "rxd_raft_role", &[("role", "follower")]),
        1.0
    );
    assert_eq!(
        value(&before, "rxd_cluster_members", &[("status", "Online")]),
        3.0
    );
    assert_eq!(
        value(&before, "rxd_cluster_member_roles", &[("role", "database")]),
        3.0
    );
    assert!(value(&before, "process_resident_memory_bytes", &[]) > 1e6);

    eprintln!("five writes on the follower move its series");
    for i in 0..5 {
        members[1].succeeds("rxc", &["profile", "create", &format!("m{i}")], None);
    }
    let (_, after, _) = scrape(&members[1], &follower, dir.path());
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    assert!(moved("rxd_raft_applied_index", &[]) >= 5.0);
    assert!(moved("rxd_raft_proposal_duration_seconds_count", &[]) >= 5.0);
    assert!(
        moved(
            "rxd_api_requests_total",
            &[("method", "POST"), ("endpoint", "/1.0/profiles")]
        ) >= 5.0
    );
    assert!(
        moved(
            "rxd_api_request_duration_seconds_count",
            &[("method", "POST"), ("endpoint", "/1.0/profiles")]
        ) >= 5.0
    );

    eprintln!("the leader counts its heartbeat rounds and shows its commit index");
    let leader = net.addr(1);
    let (_, on_leader, _) = scrape(&members[0], &leader, dir.path());
    assert_eq!(
        value(&on_leader, "rxd_raft_role", &[("role", "leader")]),
        1.0
    );
    assert!(value(&on_leader, "rxd_heartbeat_rounds_total", &[]) >= 1.0);
    assert!(
        value(&on_leader, "rxd_raft_commit_index", &[])
            >= value(&after, "rxd_raft_applied_index", &[])
    );

    eprintln!("a stopped member is counted offline");
    members[2].stop();
    rxd_testkit::until(Duration::from_secs(60), "node3 counted offline", || async {
        let (_, s, _) = scrape(&members[0], &leader, dir.path());
        value(&s, "rxd_cluster_members", &[("status", "Offline")]) == 1.0
            && value(&s, "rxd_cluster_members", &[("status", "Online")]) == 2.0
    })
    .await;

    eprintln!(
        "the metrics certificate reads nothing else, nor does an untrusted caller read metrics"
    );
    let metrics_client = rxd_client::Client::https(
        &leader,
        &std::fs::read_to_string(members[0].dir().join("cluster.crt")).unwrap(),
        Some(&cert),
    )
    .unwrap();
    let refused = metrics_client
        .get::<Value>("/1.0/profiles")
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(403), "{refused}");
    let (status, _, _) = {
        let other = rxd_tls::generate_client("stranger", "host").unwrap();
        let strange = tempfile::tempdir().unwrap();
        std::fs::write(strange.path().join("metrics.crt"), &other.cert_pem).unwrap();
        std::fs::write(strange.path().join("metrics.key"), &other.key_pem).unwrap();
        scrape(&members[0], &leader, strange.path())
    };
    assert_eq!(status, 403);

    eprintln!("the real lxc query reads them on the unix socket");
    let lxc = rxd_testkit::system_tool("lxc");
    let text = members[0].succeeds(&lxc, &["query", "/1.0/metrics"], None);
    assert!(text.contains("# TYPE rxd_raft_term gauge"), "{text}");
}
