//! Failure domains spread the raft voters and stand-bys, as LXD does: five members in three
//! domains end with one voter per domain. Domains are set through the typed client's `PUT`,
//! `rxc cluster edit` and the real `lxc cluster edit`.

use std::collections::BTreeMap;
use std::time::Duration;

use rxd_testkit::{fails, ok, until, Member, Net};

/// Each member's failure domain and database role (`voter`, `standby` or `spare`), as `m` sees
/// them.
async fn roles(m: &Member) -> BTreeMap<String, (String, &'static str)> {
    let members = m.client().cluster_members().await.expect("members listed");
    members
        .into_iter()
        .map(|c| {
            let role = if c.put.roles.iter().any(|r| r == "database") {
                "voter"
            } else if c.put.roles.iter().any(|r| r == "database-standby") {
                "standby"
            } else {
                "spare"
            };
            (c.server_name, (c.put.failure_domain, role))
        })
        .collect()
}

/// How many members hold `role`, and in how many domains.
fn domains_of(view: &BTreeMap<String, (String, &'static str)>, role: &str) -> (usize, usize) {
    let mut d: Vec<&str> = view
        .values()
        .filter(|(_, r)| *r == role)
        .map(|(d, _)| d.as_str())
        .collect();
    let n = d.len();
    d.sort_unstable();
    d.dedup();
    (n, d.len())
}

/// Whether the voters are three, in three different domains, and the stand-bys two, in two.
fn spread(view: &BTreeMap<String, (String, &'static str)>) -> bool {
    domains_of(view, "voter") == (3, 3) && domains_of(view, "standby") == (2, 2)
}

/// `cluster edit` of `name` through `program` (rxc or lxc), reading the YAML from stdin.
fn edit_domain(m: &Member, program: &str, name: &str, domain: &str) {
    let shown = m.succeeds(program, &["cluster", "show", name], None);
    assert!(shown.contains("failure_domain: default"), "{shown}");
    let edited = shown.replace(
        "failure_domain: default",
        &format!("failure_domain: {domain}"),
    );
    m.succeeds(program, &["cluster", "edit", name], Some(&edited));
}

#[tokio::test]
async fn voters_and_standbys_spread_over_failure_domains() {
    let net = Net::lease();
    let members = Member::form(5, &net, &["cluster.offline_threshold: \"11\""]).await;
    let a = &members[0];
    let rxc = "rxc";

    eprintln!("One domain: the first three members vote, the next two stand by");
    until(Duration::from_secs(60), "three voters", || async {
        let view = roles(a).await;
        ["node1", "node2", "node3"]
            .iter()
            .all(|n| view[*n].1 == "voter")
            && ["node4", "node5"].iter().all(|n| view[*n].1 == "standby")
    })
    .await;

    eprintln!("An empty failure domain is refused with LXD's sentence, as a 400");
    let (node2, _) = a.client().cluster_member("node2").await.unwrap();
    let mut put = node2.put.clone();
    put.failure_domain = String::new();
    let err = a
        .client()
        .update_cluster_member("node2", &put, None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400), "a user's mistake is a 400: {err}");
    assert!(
        err.to_string()
            .contains("Failure domain name can't be empty"),
        "{err}"
    );

    eprintln!("Five members in three domains, set by PUT, rxc cluster edit and lxc cluster edit");
    for (name, domain) in [("node1", "rack1"), ("node2", "rack1")] {
        let (m, _) = a.client().cluster_member(name).await.unwrap();
        let mut put = m.put;
        put.failure_domain = domain.into();
        a.client()
            .update_cluster_member(name, &put, None)
            .await
            .unwrap();
    }
    edit_domain(&members[1], rxc, "node3", "rack2");
    edit_domain(&members[2], rxc, "node4", "rack2");
    edit_domain(&members[3], "/usr/bin/lxc", "node5", "rack3");
    let list = a.succeeds(
        "/usr/bin/lxc",
        &["cluster", "list", "--format", "csv"],
        None,
    );
    assert!(list.contains("rack3"), "lxc lists the domain: {list}");

    eprintln!("The voters move to one per domain, the stand-bys to one per domain");
    until(
        Duration::from_secs(90),
        "voters spread over domains",
        || async { spread(&roles(a).await) },
    )
    .await;
    for m in &members[1..] {
        until(
            Duration::from_secs(10),
            "every member to see the roles",
            || async { spread(&roles(m).await) },
        )
        .await;
    }

    eprintln!("A member that changes domain gets a vote when its new domain has none");
    // rack3 holds node5 only; moving node5 to rack1 and node4 to rack3 leaves rack3 to node4.
    // The stand-bys are then both in rack1, the only domain with members left over.
    let view = roles(a).await;
    assert_eq!(view["node5"].1, "voter", "{view:?}");
    let out = a.command("/usr/bin/lxc", &["cluster", "show", "node5"], None);
    let shown = ok(&out);
    let edited = shown.replace("failure_domain: rack3", "failure_domain: rack1");
    a.succeeds("/usr/bin/lxc", &["cluster", "edit", "node5"], Some(&edited));
    let shown = a.succeeds(rxc, &["cluster", "show", "node4"], None);
    let edited = shown.replace("failure_domain: rack2", "failure_domain: rack3");
    a.succeeds(rxc, &["cluster", "edit", "node4"], Some(&edited));
    until(Duration::from_secs(90), "node4 votes for rack3", || async {
        let view = roles(a).await;
        view["node4"].1 == "voter" && domains_of(&view, "voter") == (3, 3)
    })
    .await;

    eprintln!("lxc refuses an empty domain with the daemon's sentence");
    let shown = a.succeeds("/usr/bin/lxc", &["cluster", "show", "node3"], None);
    let edited = shown.replace("failure_domain: rack2", "failure_domain: \"\"");
    let err = fails(&a.command("/usr/bin/lxc", &["cluster", "edit", "node3"], Some(&edited)));
    assert!(err.contains("Failure domain name can't be empty"), "{err}");
}
