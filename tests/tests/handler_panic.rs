//! Issue 9, finding 6: a panic in a request handler answers a 500 envelope, is logged with the
//! request, and leaves the daemon serving.

use rxd_testkit::Member;

#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_daemon_keeps_serving() {
    let m = Member::start_with_env(&[("RXD_FAILPOINT", "projects-get:panic")]);
    let client = m.client();

    eprintln!("phase: the panicking handler answers a 500 error envelope");
    let err = client.projects().await.unwrap_err();
    assert!(
        matches!(&err, rxd_client::ClientError::Api { status: 500, message }
            if message.contains("GET /1.0/projects") && !message.starts_with('{')),
        "{err:?}"
    );

    eprintln!("phase: the daemon keeps serving, and the log names the request");
    client.server().await.unwrap();
    client.projects().await.unwrap_err();
    client.server().await.unwrap();
    let log = m.log();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("GET /1.0/projects")),
        "no error line naming the request in the log:\n{log}"
    );
}
