//! Issue 9, findings 6 and 10: values that overflowed a handler or slipped past validation are
//! refused with a 400 that names the rule, and the daemon keeps answering afterwards.

use rxd_testkit::{Member, Net};
use serde_json::json;

/// The status and message of a request that must fail.
async fn refused(
    c: &rxd_client::Client,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> (u16, String) {
    let err = c
        .request(method, path, Some(body), None)
        .await
        .expect_err("the request is refused");
    (err.status().unwrap_or(0), err.to_string())
}

async fn assert_bad_request(
    c: &rxd_client::Client,
    method: &str,
    path: &str,
    body: serde_json::Value,
    rule: &str,
) {
    let (status, msg) = refused(c, method, path, body.clone()).await;
    assert_eq!(status, 400, "{body}: {msg}");
    assert!(msg.contains(rule), "{body}: {msg:?} does not name {rule:?}");
}

#[tokio::test]
async fn expiries_and_thresholds_are_bounded_and_tokens_keep_working() {
    let net = Net::lease();
    let m = Member::start();
    m.bootstrap(&net.addr(2), "node1", &[]);
    let c = m.client();

    eprintln!("phase: expiries that overflow a timestamp are refused");
    for key in ["cluster.join_token_expiry", "core.remote_token_expiry"] {
        for value in ["9223372036854775807S", "300000000y", "101y"] {
            assert_bad_request(
                &c,
                "PATCH",
                "/1.0",
                json!({"config": {key: value}}),
                "an expiry is at most 100 years",
            )
            .await;
        }
    }
    assert_bad_request(
        &c,
        "PATCH",
        "/1.0",
        json!({"config": {"cluster.offline_threshold": "9223372036854775807"}}),
        "at most 31536000",
    )
    .await;

    eprintln!("phase: the longest accepted expiry still gives a join token and a trust token");
    c.request(
        "PATCH",
        "/1.0",
        Some(json!({"config": {"cluster.join_token_expiry": "100y",
            "core.remote_token_expiry": "100y"}})),
        None,
    )
    .await
    .unwrap();
    rxd_testkit::join_token(&m, "node2").await;
    c.request(
        "POST",
        "/1.0/certificates",
        Some(json!({"name": "later", "type": "client", "token": true})),
        None,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn names_keys_addresses_and_sources_are_checked() {
    let net = Net::lease();
    let m = Member::start();
    m.bootstrap(&net.addr(3), "node1", &[]);
    let c = m.client();

    eprintln!("phase: profile names a client would mangle are refused");
    let long = "p".repeat(10_000);
    for name in [
        "a\0b",
        "a\u{200b}b",
        "a?b",
        "a#b",
        "a%2fb",
        "a/b",
        ".",
        "..",
        long.as_str(),
    ] {
        assert_bad_request(
            &c,
            "POST",
            "/1.0/profiles",
            json!({"name": name}),
            "Invalid profile name",
        )
        .await;
    }

    eprintln!("phase: profile config keys are LXD's instance keys");
    let big = format!("user.{}", "k".repeat(100_000));
    for (key, rule) in [
        ("", "Config keys must not be empty"),
        ("user.a\0b", "printable ASCII"),
        (big.as_str(), "at most 256 characters"),
        ("bogus.key", "Unknown configuration key"),
        (
            "volatile.uuid",
            "Volatile keys can only be set on instances",
        ),
    ] {
        assert_bad_request(
            &c,
            "POST",
            "/1.0/profiles",
            json!({"name": "p1", "config": {key: "x"}}),
            rule,
        )
        .await;
        assert_bad_request(
            &c,
            "PATCH",
            "/1.0/profiles/default",
            json!({"config": {key: "x"}}),
            rule,
        )
        .await;
    }
    c.request(
        "POST",
        "/1.0/profiles",
        Some(
            json!({"name": "p1", "config": {"limits.cpu": "2", "security.nesting": "true",
            "user.note": "x", "environment.TZ": "UTC"}}),
        ),
        None,
    )
    .await
    .unwrap();
    assert_bad_request(
        &c,
        "POST",
        "/1.0/profiles/p1",
        json!({"name": "a?b"}),
        "Invalid profile name",
    )
    .await;

    eprintln!("phase: an address with a trailing newline is refused");
    assert_bad_request(
        &c,
        "PATCH",
        "/1.0",
        json!({"config": {"core.https_address": &format!("{net}.3:8443\n")}}),
        "must not start or end with whitespace",
    )
    .await;

    eprintln!("phase: a relative pool source is refused and leaves nothing behind");
    assert_bad_request(
        &c,
        "POST",
        "/1.0/storage-pools",
        json!({"name": "rel", "driver": "dir", "config": {"source": "relative/dir"}}),
        "isn't absolute",
    )
    .await;
    assert!(std::fs::symlink_metadata(m.dir().join("storage-pools/rel")).is_err());

    eprintln!("phase: member names a client would normalise away are refused");
    for name in [".", "..", "a/b", "a?b"] {
        assert_bad_request(
            &c,
            "POST",
            "/1.0/cluster/members",
            json!({"server_name": name}),
            "Invalid cluster member name",
        )
        .await;
    }
}
