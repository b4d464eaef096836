//! `rxd init` joins interactively, with LXD 5.0.2's questions, and `--dry-run` changes nothing.

use rxd_api::{Cluster, ProfilesPost, ServerPut, StoragePoolsPost};
use rxd_testkit::{bootstrap_preseed, fails, join_preseed, join_token as token, ok, Member, Net};

fn answers(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn cluster_fingerprint(leader: &Member) -> String {
    let pem = std::fs::read_to_string(leader.dir().join("cluster.crt")).unwrap();
    rxd_tls::fingerprint_pem(&pem).unwrap()
}

/// Everything a join or a dry run could change on one server, as its API shows it.
#[derive(Debug, PartialEq)]
struct State {
    config: serde_json::Map<String, serde_json::Value>,
    pools: Vec<(String, String, rxd_api::Config)>,
    profiles: Vec<(String, rxd_api::Devices)>,
    cluster: Cluster,
    members: Vec<String>,
    certificates: Vec<String>,
}

async fn state(m: &Member) -> State {
    let c = m.client();
    let (cluster, _) = c.cluster().await.unwrap();
    let members = if cluster.enabled {
        c.cluster_members()
            .await
            .unwrap()
            .into_iter()
            .map(|m| format!("{} {} {:?}", m.server_name, m.url, m.put.roles))
            .collect()
    } else {
        vec![]
    };
    let mut certificates: Vec<String> = c
        .certificates()
        .await
        .unwrap()
        .into_iter()
        .map(|c| format!("{} {} {}", c.fingerprint, c.put.cert_type, c.put.name))
        .collect();
    certificates.sort();
    State {
        config: c.server().await.unwrap().0.config.unwrap_or_default(),
        pools: c
            .storage_pools()
            .await
            .unwrap()
            .into_iter()
            .map(|p| (p.name, p.driver, p.config))
            .collect(),
        profiles: c
            .profiles()
            .await
            .unwrap()
            .into_iter()
            .map(|p| (p.name, p.devices))
            .collect(),
        cluster,
        members,
        certificates,
    }
}

async fn member_names(m: &Member) -> Vec<String> {
    m.client()
        .cluster_members()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.server_name)
        .collect()
}

const CLUSTERING: &str = "Would you like to use LXD clustering? (yes/no) [default=no]: ";
const ADDRESS: &str = "What IP address or DNS name should be used to reach this server? [default=";
const JOINING: &str = "Are you joining an existing cluster? (yes/no) [default=no]: ";
const HAVE_TOKEN: &str = "Do you have a join token? (yes/no/[token]) [default=no]: ";
const LOSE_DATA: &str =
    "All existing data is lost when joining a cluster, continue? (yes/no) [default=no] ";
const CHOOSE_SOURCE: &str = "Choose \"source\" property for storage pool \"local\": ";
const PRINT_YAML: &str =
    "Would you like a YAML \"lxd init\" preseed to be printed? (yes/no) [default=no]: ";

#[tokio::test]
async fn interactive_join_by_token_forms_a_two_member_cluster() {
    let net = Net::lease();
    eprintln!("Bootstrapping node1, then joining node2 by answering the questions with a token");
    let leader = Member::start();
    leader.bootstrap(&net.addr(1), "node1", &[]);
    let joiner = Member::start();
    let t = token(&leader, "node2").await;
    let out = ok(&joiner.rxd_with_input(
        &["init"],
        &answers(&["yes", &net.ip(2), "yes", &t, "yes", "", "no"]),
    ));
    for q in [
        CLUSTERING,
        ADDRESS,
        JOINING,
        HAVE_TOKEN,
        LOSE_DATA,
        CHOOSE_SOURCE,
        PRINT_YAML,
    ] {
        assert!(out.contains(q), "missing {q:?} in {out}");
    }
    assert!(
        !out.contains("What member name"),
        "the token names the member: {out}"
    );
    eprintln!("Both members see a two-member cluster");
    for m in [&leader, &joiner] {
        assert_eq!(member_names(m).await, ["node1", "node2"]);
    }
    let list = joiner.client().cluster_members().await.unwrap();
    assert_eq!(list[1].url, format!("https://{net}.2:8443"));
    assert_eq!(
        std::fs::read(joiner.dir().join("cluster.crt")).unwrap(),
        std::fs::read(leader.dir().join("cluster.crt")).unwrap()
    );
    let pools = joiner.client().storage_pools().await.unwrap();
    assert_eq!(pools[0].locations, ["node1", "node2"]);
}

#[tokio::test]
async fn interactive_join_by_trust_password_forms_a_two_member_cluster() {
    let net = Net::lease();
    eprintln!("Joining node2 with the trust password, confirming the fingerprint shown");
    let leader = Member::start();
    leader.bootstrap(&net.addr(1), "node1", &[]);
    let joiner = Member::start();
    let out = ok(&joiner.rxd_with_input(
        &["init"],
        &answers(&[
            "yes",
            &net.ip(2),
            "yes",
            "no",
            "node2",
            &net.ip(1),
            "yes",
            "sekret",
            "yes",
            "",
            "yes",
        ]),
    ));
    let fp = cluster_fingerprint(&leader);
    for q in [
        CLUSTERING.to_string(),
        ADDRESS.to_string(),
        JOINING.to_string(),
        HAVE_TOKEN.to_string(),
        "What member name should be used to identify this server in the cluster? [default="
            .to_string(),
        "IP address or FQDN of an existing cluster member (may include port): ".to_string(),
        format!("Cluster fingerprint: {fp}\n"),
        "You can validate this fingerprint by running \"lxc info\" locally on an existing cluster member.\n".to_string(),
        "Is this the correct fingerprint? (yes/no/[fingerprint]) [default=no]: ".to_string(),
        "Cluster trust password: ".to_string(),
        LOSE_DATA.to_string(),
        CHOOSE_SOURCE.to_string(),
        PRINT_YAML.to_string(),
    ] {
        assert!(out.contains(&q), "missing {q:?} in {out}");
    }
    eprintln!("The printed preseed is the one sent: trust already done, no password or token");
    assert!(out.contains("server_name: node2"), "{out}");
    assert!(
        out.contains(&format!("cluster_address: {net}.1:8443")),
        "{out}"
    );
    assert!(
        out.contains(&format!("server_address: {net}.2:8443")),
        "{out}"
    );
    assert!(out.contains("cluster_password: ''") || out.contains("cluster_password: \"\""));
    assert!(!out.contains("sekret"), "{out}");
    for m in [&leader, &joiner] {
        assert_eq!(member_names(m).await, ["node1", "node2"]);
    }
}

#[tokio::test]
async fn declining_to_lose_data_changes_nothing_and_keeps_the_token() {
    let net = Net::lease();
    let leader = Member::start();
    leader.bootstrap(&net.addr(1), "node1", &[]);
    let joiner = Member::start();
    let t = token(&leader, "node2").await;
    let leader_before = state(&leader).await;
    let joiner_before = state(&joiner).await;
    eprintln!("Answering no to losing the local data aborts the join");
    let err = fails(&joiner.rxd_with_input(
        &["init"],
        &answers(&["yes", &net.ip(2), "yes", "yes", &t, "no"]),
    ));
    assert!(err.contains("User aborted configuration"), "{err}");
    assert_eq!(
        state(&joiner).await,
        joiner_before,
        "the joiner is untouched"
    );
    assert!(!state(&joiner).await.cluster.enabled);
    assert_eq!(
        state(&leader).await,
        leader_before,
        "the cluster is untouched"
    );
    eprintln!("The token was not spent: a later join with it succeeds");
    ok(&joiner.rxd_with_input(&["init", "--preseed"], &join_preseed(&net.addr(2), &t, "")));
    assert_eq!(member_names(&leader).await, ["node1", "node2"]);
}

#[tokio::test]
async fn dry_run_of_a_bootstrap_prints_the_plan_and_changes_nothing() {
    let net = Net::lease();
    let m = Member::start();
    let before = state(&m).await;
    eprintln!("A dry run of a bootstrap preseed lists keys, pools, profiles and the member");
    let seed = bootstrap_preseed(&net.addr(1), "node1", &[]);
    let out = ok(&m.rxd_with_input(&["init", "--preseed", "--dry-run"], &seed));
    for line in [
        "Would set server configuration:\n",
        &format!("  core.https_address: {net}.1:8443\n"),
        "  core.trust_password: (hidden)\n",
        &format!("  cluster.https_address: {net}.1:8443 (copied from core.https_address)\n"),
        "Would create storage pool local (driver dir)\n",
        "Would update profile default (devices: root)\n",
        &format!("Would enable clustering with member name \"node1\" at {net}.1:8443\n"),
        "Dry run: nothing was changed\n",
    ] {
        assert!(out.contains(line), "missing {line:?} in {out}");
    }
    assert!(!out.contains("sekret"), "{out}");
    assert_eq!(state(&m).await, before);
    assert!(!m.dir().join("storage-pools/local").exists());
    eprintln!("A dry run refuses what the real run would refuse");
    let bad = seed.replace("pool: local", "pool: nosuchpool");
    let err = fails(&m.rxd_with_input(&["init", "--preseed", "--dry-run"], &bad));
    assert!(err.contains("nosuchpool"), "{err}");
    assert_eq!(state(&m).await, before);
    eprintln!("The same preseed then applies");
    ok(&m.rxd_with_input(&["init", "--preseed"], &seed));
    assert_eq!(member_names(&m).await, ["node1"]);
    eprintln!("A clustered server refuses a second bootstrap, also in a dry run");
    let err = fails(&m.rxd_with_input(&["init", "--preseed", "--dry-run"], &seed));
    assert!(err.contains("This server is already clustered"), "{err}");
}

#[tokio::test]
async fn dry_run_of_a_join_prints_the_plan_and_keeps_the_token() {
    let net = Net::lease();
    let leader = Member::start();
    leader.bootstrap(&net.addr(1), "node1", &[]);
    let joiner = Member::start();
    eprintln!("The joiner has data of its own that a join would lose");
    let c = joiner.client();
    c.create_storage_pool(
        &StoragePoolsPost {
            name: "other".into(),
            driver: "dir".into(),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    c.create_profile(&ProfilesPost {
        name: "extra".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut config = serde_json::Map::new();
    config.insert("images.auto_update_interval".into(), "0".into());
    c.patch_server(&ServerPut { config }, None).await.unwrap();
    let t = token(&leader, "node2").await;
    let leader_before = state(&leader).await;
    let joiner_before = state(&joiner).await;
    let fp = cluster_fingerprint(&leader);

    eprintln!("A dry run of a join preseed names the cluster and what would be lost");
    let out = ok(&joiner.rxd_with_input(
        &["init", "--preseed", "--dry-run"],
        &join_preseed(&net.addr(2), &t, ""),
    ));
    for line in [
        format!("Would join the cluster at {net}.1:8443\n"),
        format!("  Cluster fingerprint: {fp}\n"),
        "  Member name: node2\n".to_string(),
        format!("  Server address: {net}.2:8443"),
        "not spent by this dry run".to_string(),
        "only known once this server is trusted".to_string(),
        "Local data that would be lost:\n".to_string(),
        "  Storage pool \"other\" (driver dir)\n".to_string(),
        "  Profile \"extra\"\n".to_string(),
        "  Configuration images.auto_update_interval: 0\n".to_string(),
        "Dry run: nothing was changed\n".to_string(),
    ] {
        assert!(out.contains(&line), "missing {line:?} in {out}");
    }
    assert!(!out.contains("Profile \"default\""), "{out}");
    assert_eq!(state(&joiner).await, joiner_before);
    assert_eq!(state(&leader).await, leader_before);

    eprintln!("An interactive dry run stops before the trust step");
    let out = ok(&joiner.rxd_with_input(
        &["init", "--dry-run"],
        &answers(&["yes", &net.ip(2), "yes", &t, "yes", "no"]),
    ));
    assert!(out.contains(LOSE_DATA), "{out}");
    assert!(!out.contains("Choose "), "{out}");
    assert!(out.contains("Member name: node2\n"), "{out}");
    assert!(out.contains("Dry run: nothing was changed\n"), "{out}");
    assert_eq!(state(&joiner).await, joiner_before);
    assert_eq!(state(&leader).await, leader_before);

    eprintln!("A dry run with a bad token fails the way the join would");
    let err = fails(&joiner.rxd_with_input(
        &["init", "--preseed", "--dry-run"],
        &join_preseed(&net.addr(2), "bm90LWEtdG9rZW4=", ""),
    ));
    assert!(err.contains("Invalid cluster join token"), "{err}");

    eprintln!("The token still works for a real join");
    let fresh = Member::start();
    ok(&fresh.rxd_with_input(&["init", "--preseed"], &join_preseed(&net.addr(3), &t, "")));
    assert_eq!(member_names(&leader).await, ["node1", "node2"]);
}
