//! A write with `If-Match` is a compare-and-set: of many concurrent writes holding the same
//! ETag exactly one applies, the others answer 412. LXD checks the ETag in the handler and
//! writes in a later transaction, so two such writes can both succeed and one is silently lost
//! (the fault suite's append and register workloads found it in rxd too); rxd checks the
//! precondition where the write applies, in the replicated state machine.

use rxd_testkit::Member;

#[tokio::test]
async fn concurrent_if_match_writes_apply_once() {
    let m = Member::start();
    let client = m.client();
    client
        .create_profile(&rxd_api::ProfilesPost {
            name: "cas".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    for round in 0..5 {
        let (_, etag) = client.profile("cas").await.unwrap();
        let writes = (0..16).map(|i| {
            let client = client.clone();
            let etag = etag.clone();
            async move {
                let put = rxd_api::ProfilePut {
                    config: [("user.v".to_string(), format!("{round}-{i}"))].into(),
                    ..Default::default()
                };
                (i, client.update_profile("cas", &put, Some(&etag)).await)
            }
        });
        let results = futures_util::future::join_all(writes).await;
        let won: Vec<usize> = results
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(i, _)| *i)
            .collect();
        for (_, r) in &results {
            if let Err(e) = r {
                assert_eq!(e.status(), Some(412), "a losing write answers 412: {e}");
            }
        }
        assert_eq!(
            won.len(),
            1,
            "round {round}: writes {won:?} all succeeded with one ETag"
        );
        let (p, _) = client.profile("cas").await.unwrap();
        assert_eq!(p.config["user.v"], format!("{round}-{}", won[0]));
    }
}

#[tokio::test]
async fn concurrent_patches_of_different_keys_keep_both() {
    let m = Member::start();
    let client = m.client();
    client
        .create_profile(&rxd_api::ProfilesPost {
            name: "merge".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let patches = (0..16).map(|i| {
        let client = client.clone();
        async move {
            let body = serde_json::json!({"config": {format!("user.k{i}"): "x"}});
            client
                .request("PATCH", "/1.0/profiles/merge", Some(body), None)
                .await
        }
    });
    for r in futures_util::future::join_all(patches).await {
        r.expect("a PATCH without If-Match applies");
    }
    let (p, _) = client.profile("merge").await.unwrap();
    assert_eq!(
        p.config.len(),
        16,
        "every PATCH kept its key: {:?}",
        p.config
    );
}
