//! Discovery across network namespaces this test makes: the initiator's namespace has two
//! links, one to a joiner's namespace and one to a stranger's; nothing touches the host's own
//! interfaces. The window is advertised on the joiner's link only. A second test has a link
//! with IPv6 addresses alone.
//!
//! ```text
//!   [joiner] j0 ─── a0 [initiator] a1 ─── s0 [stranger]
//!   192.0.2.2    192.0.2.1   198.51.100.1    198.51.100.2
//! ```

use std::fs::File;
use std::time::Duration;

use nix::sched::{setns, CloneFlags};
use rxd_form::discovery::{browse, pick, Advert, Advertiser, BrowseSettings, DiscoveryError};
use rxd_testkit::netns::Netns;

/// Runs `f` on a thread inside `ns`; threads it starts (the mDNS daemon's) stay there.
fn in_ns<T: Send>(ns: &Netns, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = File::open(format!("/run/netns/{}", ns.name)).unwrap();
            setns(&file, CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    })
}

/// A veth pair between two namespaces, each end addressed and up.
fn link(a: &Netns, a_dev: &str, a_addr: &str, b: &Netns, b_dev: &str, b_addr: &str) {
    a.ip(&[
        "link", "add", a_dev, "type", "veth", "peer", "name", b_dev, "netns", &b.name,
    ]);
    a.ip(&["addr", "add", a_addr, "dev", a_dev]);
    a.ip(&["link", "set", a_dev, "up"]);
    b.ip(&["addr", "add", b_addr, "dev", b_dev]);
    b.ip(&["link", "set", b_dev, "up"]);
}

#[test]
fn a_window_is_seen_only_on_its_interface_with_other_versions_listed() {
    let initiator = Netns::create();
    let joiner = Netns::create();
    let stranger = Netns::create();
    link(
        &initiator,
        "a0",
        "192.0.2.1/24",
        &joiner,
        "j0",
        "192.0.2.2/24",
    );
    link(
        &initiator,
        "a1",
        "198.51.100.1/24",
        &stranger,
        "s0",
        "198.51.100.2/24",
    );

    eprintln!("advertising two windows on a0: this build's and a later protocol's");
    let fp = "9f8e7d6c5b4a3f21".to_string() + &"0".repeat(48);
    let ours = Advert::new("node1", "0123456789abcdef", &fp, 8443).unwrap();
    let mut later = Advert::new("node9", "fedcba9876543210", &fp, 9443).unwrap();
    later.version = "2".into();
    let (_a, _b) = in_ns(&initiator, || {
        (
            Advertiser::start(&ours, "a0").unwrap(),
            Advertiser::start(&later, "a0").unwrap(),
        )
    });

    eprintln!("the joiner's browse lists both windows");
    let settings = BrowseSettings {
        listen: Duration::from_secs(3),
        silence: Duration::from_secs(20),
    };
    // Both windows were registered together, so both answer within the listening time
    // after the first.
    let seen = in_ns(&joiner, || browse("j0", settings)).unwrap();
    let names: Vec<&str> = seen.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["node1", "node9"], "{seen:?}");
    let node1 = &seen[0];
    assert_eq!(
        (
            node1.version.as_str(),
            node1.id.as_str(),
            node1.fingerprint.as_str(),
            node1.port
        ),
        ("1", "0123456789abcdef", "9f8e7d6c5b4a3f21", 8443)
    );
    assert!(
        node1.addresses.contains(&"192.0.2.1".parse().unwrap()),
        "{node1:?}"
    );
    assert!(
        !node1.addresses.contains(&"198.51.100.1".parse().unwrap()),
        "only the interface's addresses: {node1:?}"
    );
    assert_eq!(seen[1].version, "2");
    assert!(node1.is_compatible() && !seen[1].is_compatible());
    assert_eq!(pick(&seen, None).unwrap().name, "node1");

    eprintln!("the stranger's link hears nothing while the joiner's sees the window");
    let quiet = BrowseSettings {
        listen: Duration::from_secs(1),
        silence: Duration::from_secs(4),
    };
    let err = in_ns(&stranger, || browse("s0", quiet)).unwrap_err();
    assert_eq!(
        err,
        DiscoveryError::Silence {
            interface: "s0".into(),
            waited: Duration::from_secs(4)
        }
    );
    assert!(err.to_string().contains("UDP port 5353"));
    assert!(err.to_string().contains("--initiator-address"));
}

#[test]
fn a_window_is_seen_over_ipv6_alone() {
    let initiator = Netns::create();
    let joiner = Netns::create();
    initiator.ip(&[
        "link",
        "add",
        "a0",
        "type",
        "veth",
        "peer",
        "name",
        "j0",
        "netns",
        &joiner.name,
    ]);
    for (ns, dev, addr) in [
        (&initiator, "a0", "fd00::1/64"),
        (&joiner, "j0", "fd00::2/64"),
    ] {
        ns.ip(&["addr", "add", addr, "dev", dev, "nodad"]);
        ns.ip(&["link", "set", dev, "up"]);
    }

    eprintln!("advertising on a link with no IPv4 address at all");
    let fp = "0123456789abcdef".repeat(4);
    let advert = Advert::new("node1", "0123456789abcdef", &fp, 8443).unwrap();
    let _a = in_ns(&initiator, || Advertiser::start(&advert, "a0").unwrap());
    let settings = BrowseSettings {
        listen: Duration::from_secs(1),
        silence: Duration::from_secs(20),
    };
    let seen = in_ns(&joiner, || browse("j0", settings)).unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].addresses.contains(&"fd00::1".parse().unwrap()),
        "{seen:?}"
    );
    assert!(seen[0].addresses.iter().all(|a| a.is_ipv6()), "{seen:?}");
}
