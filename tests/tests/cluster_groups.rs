//! Cluster groups (issue 11, Part B point 1), as LXD 5.0.2 has them: every endpoint through the
//! typed client on a three-member cluster, bad input answered with a sentence, members' `groups`
//! kept in step with the groups' `members`, a removed member gone from its groups.

use rxd_api::{ClusterGroupPut, ClusterGroupsPost};
use rxd_client::{Client, ClientError};
use rxd_testkit::{Member, Net};

/// The status and sentence of a refused call.
fn refused<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Api { status, message }) => (status, message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn post(name: &str, members: &[&str]) -> ClusterGroupsPost {
    ClusterGroupsPost {
        put: ClusterGroupPut {
            description: String::new(),
            members: members.iter().map(|m| m.to_string()).collect(),
        },
        name: name.into(),
    }
}

async fn groups_of(c: &Client, member: &str) -> Vec<String> {
    c.cluster_member(member).await.unwrap().0.put.groups
}

async fn members_of(c: &Client, group: &str) -> Vec<String> {
    c.cluster_group(group).await.unwrap().0.put.members
}

async fn set_groups(c: &Client, member: &str, groups: &[&str]) -> Result<(), ClientError> {
    let (m, etag) = c.cluster_member(member).await.unwrap();
    let mut put = m.put;
    put.groups = groups.iter().map(|g| g.to_string()).collect();
    c.update_cluster_member(member, &put, Some(&etag)).await
}

#[tokio::test]
async fn cluster_groups_through_the_api() {
    let net = Net::lease();
    let members = Member::form(3, &net, &[]).await;
    let a = members[0].client();
    let clients: Vec<Client> = members.iter().map(Member::client).collect();

    eprintln!("the default group holds every member, and the extension is advertised");
    let (server, _) = a.server().await.unwrap();
    assert!(server
        .api_extensions
        .iter()
        .any(|e| e == "clustering_groups"));
    assert_eq!(
        a.cluster_group_urls().await.unwrap(),
        ["/1.0/cluster/groups/default"]
    );
    let (default, _) = a.cluster_group("default").await.unwrap();
    assert_eq!(default.put.description, "Default cluster group");
    eprintln!("a group has LXD 5.0.2's fields and no others (`used_by` came with a later LXD)");
    for path in [
        "/1.0/cluster/groups/default",
        "/1.0/cluster/groups?recursion=1",
    ] {
        let raw = a.request("GET", path, None, None).await.unwrap();
        let metadata = raw.envelope.metadata;
        let group = metadata.as_array().map_or(&metadata, |all| &all[0]);
        let mut keys: Vec<&str> = group
            .as_object()
            .unwrap_or_else(|| panic!("{path}: {metadata}"))
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["description", "members", "name"],
            "{path}: {metadata}"
        );
    }
    assert_eq!(default.put.members, ["node1", "node2", "node3"]);
    for m in ["node1", "node2", "node3"] {
        assert_eq!(groups_of(&a, m).await, ["default"]);
    }

    eprintln!("create: a group with a member, seen from every member and in the member's groups");
    a.create_cluster_group(&post("fast", &["node2"]))
        .await
        .unwrap();
    for c in &clients {
        let all = c.cluster_groups().await.unwrap();
        let names: Vec<&str> = all.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["default", "fast"]);
        assert_eq!(all[1].put.members, ["node2"]);
        assert_eq!(groups_of(c, "node2").await, ["default", "fast"]);
    }

    eprintln!("create: bad input is a 4xx with a sentence");
    assert_eq!(
        refused(a.create_cluster_group(&post("fast", &[])).await),
        (409, "This cluster group already exists".into())
    );
    for (name, why) in [
        ("", "Cluster group name cannot be empty"),
        ("a b", "Cluster group names may not contain spaces"),
        ("a/b", "Cluster group names may not contain slashes"),
        ("a_b", "Cluster group names may not contain underscores"),
        ("a\"b", "Cluster group names may not contain quotes"),
        ("*", "Reserved cluster group name"),
    ] {
        assert_eq!(
            refused(a.create_cluster_group(&post(name, &[])).await),
            (400, why.into()),
            "{name:?}"
        );
    }
    assert_eq!(
        refused(a.create_cluster_group(&post("slow", &["nosuch"])).await),
        (400, "Cluster member \"nosuch\" doesn't exist".into())
    );
    assert_eq!(
        refused(a.cluster_group("nosuch").await),
        (404, "Cluster group not found".into())
    );

    eprintln!("PUT with If-Match: a stale ETag is a 412; PATCH keeps what it leaves out");
    let (fast, etag) = a.cluster_group("fast").await.unwrap();
    let put = ClusterGroupPut {
        description: "fast disks".into(),
        members: vec!["node2".into(), "node3".into()],
    };
    a.update_cluster_group("fast", &put, Some(&etag))
        .await
        .unwrap();
    assert_eq!(
        refused(a.update_cluster_group("fast", &fast.put, Some(&etag)).await).0,
        412
    );
    a.patch_cluster_group("fast", &serde_json::json!({"description": "NVMe"}), None)
        .await
        .unwrap();
    let (fast, _) = clients[2].cluster_group("fast").await.unwrap();
    assert_eq!(fast.put.description, "NVMe");
    assert_eq!(fast.put.members, ["node2", "node3"]);
    assert_eq!(groups_of(&clients[1], "node3").await, ["default", "fast"]);

    eprintln!("a member leaves a group only while it stays in another");
    let only_node1 = ClusterGroupPut {
        description: "Default cluster group".into(),
        members: vec!["node1".into()],
    };
    a.update_cluster_group("default", &only_node1, None)
        .await
        .unwrap();
    assert_eq!(groups_of(&a, "node2").await, ["fast"]);
    let empty = ClusterGroupPut {
        description: String::new(),
        members: vec![],
    };
    assert_eq!(
        refused(a.update_cluster_group("fast", &empty, None).await),
        (
            400,
            "Cannot remove node2 from group as member needs to belong to at least one group".into()
        )
    );
    assert_eq!(
        refused(set_groups(&a, "node2", &[]).await),
        (
            400,
            "Cluster members need to belong to at least one group".into()
        )
    );
    assert_eq!(
        refused(set_groups(&a, "node2", &["nosuch"]).await),
        (400, "Cluster group \"nosuch\" doesn't exist".into())
    );
    set_groups(&a, "node2", &["fast", "default"]).await.unwrap();
    set_groups(&a, "node3", &["default"]).await.unwrap();
    assert_eq!(members_of(&a, "default").await, ["node1", "node2", "node3"]);
    assert_eq!(members_of(&a, "fast").await, ["node2"]);
    assert_eq!(groups_of(&a, "node2").await, ["fast", "default"]);

    eprintln!("rename: not the default group, not onto a taken name; members follow");
    assert_eq!(
        refused(a.rename_cluster_group("default", "other").await),
        (403, "The \"default\" group cannot be renamed".into())
    );
    assert_eq!(
        refused(a.rename_cluster_group("fast", "default").await),
        (409, "Name \"default\" already in use".into())
    );
    assert_eq!(
        refused(a.rename_cluster_group("fast", "a b").await),
        (400, "Cluster group names may not contain spaces".into())
    );
    assert_eq!(refused(a.rename_cluster_group("nosuch", "x").await).0, 404);
    a.rename_cluster_group("fast", "quick").await.unwrap();
    assert_eq!(groups_of(&clients[1], "node2").await, ["quick", "default"]);
    assert_eq!(members_of(&clients[2], "quick").await, ["node2"]);

    eprintln!("delete: not the default group, only an empty one");
    assert_eq!(
        refused(a.delete_cluster_group("default").await),
        (403, "The 'default' cluster group cannot be deleted".into())
    );
    assert_eq!(
        refused(a.delete_cluster_group("quick").await),
        (400, "Only empty cluster groups can be removed".into())
    );
    set_groups(&a, "node2", &["default"]).await.unwrap();
    a.delete_cluster_group("quick").await.unwrap();
    assert_eq!(refused(clients[1].cluster_group("quick").await).0, 404);
    assert_eq!(refused(a.delete_cluster_group("quick").await).0, 404);

    eprintln!("a member that leaves the cluster leaves its groups");
    a.create_cluster_group(&post("rack2", &["node3"]))
        .await
        .unwrap();
    a.delete_cluster_member("node3", false).await.unwrap();
    for c in &clients[..2] {
        assert_eq!(members_of(c, "default").await, ["node1", "node2"]);
        assert!(members_of(c, "rack2").await.is_empty());
    }
    a.delete_cluster_group("rack2").await.unwrap();
}

#[tokio::test]
async fn cluster_groups_need_a_cluster() {
    let m = Member::start();
    let c = m.client();
    assert_eq!(
        refused(c.cluster_groups().await),
        (400, "This server is not clustered".into())
    );
    assert_eq!(
        refused(c.create_cluster_group(&post("fast", &[])).await),
        (400, "This server is not clustered".into())
    );
}

const LXC: &str = "/usr/bin/lxc";

/// stdout of a command that succeeded, or its stderr as a failure.
fn run(m: &Member, program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let out = m.command(program, args, stdin);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs the same arguments through `rxc` and the real `lxc`; both must print the same.
fn same_as_lxc(m: &Member, args: &[&str]) -> Result<String, String> {
    let ours = run(m, "rxc", args, None);
    let theirs = run(m, LXC, args, None);
    assert_eq!(ours, theirs, "rxc and lxc differ on {args:?}");
    ours
}

#[tokio::test]
async fn rxc_cluster_group_commands_match_lxc() {
    let net = Net::lease();
    let members = Member::form(2, &net, &[]).await;
    let m = &members[0];
    run(m, LXC, &["remote", "list"], None).unwrap();
    let group = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["cluster".to_string(), "group".to_string()];
        all.extend(args.iter().map(|a| a.to_string()));
        all
    };
    let both = |args: &[&str]| {
        same_as_lxc(
            m,
            &group(args).iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };
    let rxc = |args: &[&str], stdin: Option<&str>| {
        run(
            m,
            "rxc",
            &group(args).iter().map(String::as_str).collect::<Vec<_>>(),
            stdin,
        )
    };
    let lxc = |args: &[&str], stdin: Option<&str>| {
        run(
            m,
            LXC,
            &group(args).iter().map(String::as_str).collect::<Vec<_>>(),
            stdin,
        )
    };

    eprintln!("create with each client, then list and show alike in every format");
    assert_eq!(
        rxc(&["create", "g1"], None).unwrap(),
        "Cluster group g1 created\n"
    );
    assert_eq!(
        lxc(&["create", "g2"], None).unwrap(),
        "Cluster group g2 created\n"
    );
    for format in ["table", "csv", "json", "yaml", "compact"] {
        let list = both(&["list", "--format", format]).unwrap();
        assert!(list.contains("g2"), "{list}");
    }
    let show = both(&["show", "default"]).unwrap();
    assert_eq!(
        show,
        "description: Default cluster group\nmembers:\n- node1\n- node2\nname: default\n"
    );
    both(&["show", "g1"]).unwrap();

    eprintln!("assign and remove members, refusals worded alike");
    assert_eq!(
        rxc(&["assign", "node2", "default,g1"], None).unwrap(),
        "Cluster member node2 added to cluster groups default,g1\n"
    );
    assert_eq!(
        lxc(&["assign", "node1", "default,g2"], None).unwrap(),
        "Cluster member node1 added to cluster groups default,g2\n"
    );
    both(&["show", "g1"]).unwrap();
    both(&["list"]).unwrap();
    assert_eq!(
        both(&["remove", "node2", "g2"]).unwrap_err(),
        "Error: Cluster group g2 isn't currently applied to node2\n"
    );
    assert_eq!(
        both(&["assign", "node2", "nosuch"]).unwrap_err(),
        "Error: Cluster group \"nosuch\" doesn't exist\n"
    );
    assert_eq!(
        both(&["delete", "default"]).unwrap_err(),
        "Error: The 'default' cluster group cannot be deleted\n"
    );
    assert_eq!(
        both(&["rename", "default", "other"]).unwrap_err(),
        "Error: The \"default\" group cannot be renamed\n"
    );
    assert_eq!(
        both(&["delete", "g1"]).unwrap_err(),
        "Error: Only empty cluster groups can be removed\n"
    );
    assert_eq!(
        rxc(&["remove", "node2", "g1"], None).unwrap(),
        "Cluster member node2 removed from group g1\n"
    );
    assert_eq!(
        lxc(&["remove", "node1", "g2"], None).unwrap(),
        "Cluster member node1 removed from group g2\n"
    );
    assert_eq!(
        both(&["remove", "node1", "default"]).unwrap_err(),
        "Error: Cluster members need to belong to at least one group\n"
    );

    eprintln!("edit reads YAML from stdin");
    let yaml = "description: edited\nmembers:\n- node2\n";
    assert_eq!(rxc(&["edit", "g1"], Some(yaml)).unwrap(), "");
    assert_eq!(lxc(&["edit", "g2"], Some(yaml)).unwrap(), "");
    let g1 = both(&["show", "g1"]).unwrap();
    let g2 = both(&["show", "g2"]).unwrap();
    assert_eq!(g1, "description: edited\nmembers:\n- node2\nname: g1\n");
    assert_eq!(g1.replace("g1", "g2"), g2);

    eprintln!("rename and delete");
    assert_eq!(
        rxc(&["rename", "g1", "g3"], None).unwrap(),
        "Cluster group g1 renamed to g3\n"
    );
    assert_eq!(
        lxc(&["rename", "g2", "g4"], None).unwrap(),
        "Cluster group g2 renamed to g4\n"
    );
    rxc(&["assign", "node2", "default"], None).unwrap();
    assert_eq!(
        rxc(&["delete", "g3"], None).unwrap(),
        "Cluster group g3 deleted\n"
    );
    assert_eq!(
        lxc(&["delete", "g4"], None).unwrap(),
        "Cluster group g4 deleted\n"
    );
    assert_eq!(
        both(&["show", "g4"]).unwrap_err(),
        "Error: Cluster group not found\n"
    );
    let list = both(&["list", "--format", "csv"]).unwrap();
    assert_eq!(list, "default,Default cluster group,2\n");
}
