//! Issue 10: `network_state`, `network_leases` and network rename, driven by Debian's real
//! `lxc` and by `rxc`. Every rxd runs in a network namespace of its own; DHCP clients run in
//! further namespaces, attached to a bridge by a veth pair, and get real leases from dnsmasq.

use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use rxd_testkit::netns::{alive, cluster, Netns, NsMember};
use rxd_testkit::{fails, ok, until};

const LXC: &str = "/usr/bin/lxc";

fn lxc(m: &NsMember, args: &[&str]) -> std::process::Output {
    assert!(
        Path::new(LXC).exists(),
        "lxc is not installed: .ci/run installs Debian's lxd-client"
    );
    m.run_in(Path::new(LXC), args, None)
}

/// `network info` text without the traffic counters, which move between two calls.
fn without_counters(info: &str) -> String {
    info.lines()
        .filter(|l| !l.starts_with("  Bytes") && !l.starts_with("  Packets"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The JSON `rxc query` prints for `GET path`.
fn query(m: &NsMember, path: &str) -> serde_json::Value {
    serde_json::from_str(&ok(&m.rxc(&["query", path]))).unwrap()
}

/// The status and message of a failed request.
async fn refusal(m: &NsMember, method: &str, path: &str, body: serde_json::Value) -> (u16, String) {
    let body = (method != "GET").then_some(body);
    match m.client().request(method, path, body, None).await {
        Ok(r) => panic!("{method} {path} succeeded: {:?}", r.envelope),
        Err(e) => (e.status().unwrap_or(0), e.to_string()),
    }
}

/// A DHCP client: a namespace whose `eth0` is the other end of port `port` of `bridge` in
/// `m`'s namespace.
struct DhcpClient {
    ns: Netns,
    mac: [u8; 6],
}

impl DhcpClient {
    fn attach(m: &NsMember, bridge: &str, port: &str, mac: [u8; 6]) -> DhcpClient {
        let ns = Netns::create();
        m.ns.ip(&[
            "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", &ns.name,
        ]);
        m.ns.ip(&["link", "set", port, "master", bridge, "up"]);
        let hw = mac.map(|b| format!("{b:02x}")).join(":");
        ns.ip(&["link", "set", "eth0", "address", &hw, "up"]);
        DhcpClient { ns, mac }
    }

    fn hwaddr(&self) -> String {
        self.mac.map(|b| format!("{b:02x}")).join(":")
    }

    /// DISCOVER, then REQUEST of the offered address, asking for broadcast answers (the
    /// client has no address yet); returns the address dnsmasq acknowledged.
    fn lease(&self, hostname: &str) -> Ipv4Addr {
        let (ns, mac, hostname) = (self.ns.name.clone(), self.mac, hostname.to_string());
        // setns changes only the calling thread, so the socket is made in a thread of its own.
        std::thread::spawn(move || {
            let file = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
            // SAFETY: a valid namespace descriptor; this thread alone moves into it.
            let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            let sock = UdpSocket::bind("0.0.0.0:68").unwrap();
            let dev = b"eth0";
            // SAFETY: the option value is a valid buffer of the given length.
            let r = unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_BINDTODEVICE,
                    dev.as_ptr().cast(),
                    dev.len() as libc::socklen_t,
                )
            };
            assert_eq!(r, 0, "SO_BINDTODEVICE: {}", std::io::Error::last_os_error());
            sock.set_broadcast(true).unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let xid: u32 = std::process::id() ^ 0x5a5a_0000;
            let mut name = vec![12, hostname.len() as u8];
            name.extend_from_slice(hostname.as_bytes());
            let offer = exchange(&sock, &dhcp_packet(xid, mac, &[&[53, 1, 1], &name]), xid, 2);
            let yiaddr: [u8; 4] = offer[16..20].try_into().unwrap();
            let server = option(&offer, 54).expect("the offer names its server");
            let mut requested = vec![50, 4];
            requested.extend_from_slice(&yiaddr);
            let mut sid = vec![54, 4];
            sid.extend_from_slice(&server);
            let request = dhcp_packet(xid, mac, &[&[53, 1, 3], &requested, &sid, &name]);
            exchange(&sock, &request, xid, 5);
            Ipv4Addr::from(yiaddr)
        })
        .join()
        .unwrap()
    }
}

/// A BOOTREQUEST with the broadcast flag and `options`.
fn dhcp_packet(xid: u32, mac: [u8; 6], options: &[&[u8]]) -> Vec<u8> {
    let mut p = vec![1, 1, 6, 0];
    p.extend_from_slice(&xid.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x80, 0]);
    p.extend_from_slice(&[0; 16]);
    let mut chaddr = [0u8; 16];
    chaddr[..6].copy_from_slice(&mac);
    p.extend_from_slice(&chaddr);
    p.extend_from_slice(&[0; 192]);
    p.extend_from_slice(&[99, 130, 83, 99]);
    for o in options {
        p.extend_from_slice(o);
    }
    p.push(255);
    p
}

/// The value of DHCP option `code` in a reply.
fn option(reply: &[u8], code: u8) -> Option<Vec<u8>> {
    let mut i = 240;
    while i + 1 < reply.len() && reply[i] != 255 {
        if reply[i] == 0 {
            i += 1;
            continue;
        }
        let len = reply[i + 1] as usize;
        if reply[i] == code {
            return reply.get(i + 2..i + 2 + len).map(<[u8]>::to_vec);
        }
        i += 2 + len;
    }
    None
}

/// Sends `packet` to the DHCP server and waits (bounded) for the reply of message type `want`
/// to transaction `xid`.
fn exchange(sock: &UdpSocket, packet: &[u8], xid: u32, want: u8) -> Vec<u8> {
    for _ in 0..5 {
        sock.send_to(packet, "255.255.255.255:67").unwrap();
        let mut buf = [0u8; 1500];
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            let reply = &buf[..n];
            if n > 240 && reply[4..8] == xid.to_be_bytes() && option(reply, 53) == Some(vec![want])
            {
                return reply.to_vec();
            }
        }
    }
    panic!("no DHCP reply of type {want}");
}

#[tokio::test]
async fn lxc_shows_interfaces_lists_leases_and_renames_a_bridge() {
    let m = NsMember::start();

    eprintln!("lxc network info of a host interface reads the kernel: addresses and counters");
    for _ in 0..2 {
        ok(&m
            .ns
            .exec("bash", &["-c", "echo traffic > /dev/udp/127.0.0.1/9"]));
    }
    let info = ok(&lxc(&m, &["network", "info", "lo"]));
    assert!(info.starts_with("Name: lo\n"), "{info}");
    assert!(info.contains("State: up\nType: loopback\n"), "{info}");
    assert!(info.contains("  inet\t127.0.0.1/8 (local)\n"), "{info}");
    let received = info
        .lines()
        .find_map(|l| l.strip_prefix("  Packets received: "))
        .expect("counters are shown");
    assert!(received.parse::<u64>().unwrap() >= 2, "{info}");
    assert_eq!(
        without_counters(&ok(&m.rxc(&["network", "info", "lo"]))),
        without_counters(&info),
        "rxc prints lxc's text"
    );

    eprintln!("A managed bridge shows its address and bridge details");
    ok(&m.rxc(&[
        "network",
        "create",
        "rxdbr0",
        "ipv4.address=10.201.0.1/24",
        "ipv6.address=none",
    ]));
    let client = DhcpClient::attach(&m, "rxdbr0", "vc0", [0x00, 0x16, 0x3e, 0x10, 0x20, 0x30]);
    let info = ok(&lxc(&m, &["network", "info", "rxdbr0"]));
    assert!(info.contains("Type: broadcast\n"), "{info}");
    assert!(info.contains("  inet\t10.201.0.1/24 (global)\n"), "{info}");
    assert!(info.contains("\nBridge:\n  ID: 8000."), "{info}");
    assert!(info.contains("  Upper devices: vc0\n"), "{info}");

    eprintln!("A real DHCP client's lease is listed beside the gateway");
    let address = client.lease("leasetest");
    let leases = ok(&lxc(
        &m,
        &["network", "list-leases", "rxdbr0", "--format", "csv"],
    ));
    assert_eq!(
        leases,
        format!(
            "leasetest,{},{address},DYNAMIC\nrxdbr0.gw,,10.201.0.1,GATEWAY\n",
            client.hwaddr()
        )
    );
    let table = ok(&lxc(&m, &["network", "list-leases", "rxdbr0"]));
    assert!(
        table.contains("| HOSTNAME  |    MAC ADDRESS    |"),
        "{table}"
    );
    assert_eq!(
        ok(&m.rxc(&["network", "list-leases", "rxdbr0"])),
        table,
        "rxc prints lxc's table"
    );
    let json = query(&m, "/1.0/networks/rxdbr0/leases");
    assert_eq!(json[1]["location"], "none", "{json}");
    assert_eq!(json[1]["type"], "dynamic", "{json}");

    eprintln!("lxc network rename moves the bridge, its dnsmasq and its leases");
    let old_pid = m.dnsmasq_pid("rxdbr0").unwrap();
    assert_eq!(
        ok(&lxc(&m, &["network", "rename", "rxdbr0", "rxdbr1"])),
        "Network rxdbr0 renamed to rxdbr1\n"
    );
    let list = ok(&lxc(&m, &["network", "list", "--format", "csv"]));
    assert!(list.contains("rxdbr1,bridge,YES,10.201.0.1/24,"), "{list}");
    assert!(!list.contains("rxdbr0"), "{list}");
    let links = m.ns.links();
    assert!(links.contains(&"rxdbr1".to_string()), "{links:?}");
    assert!(!links.contains(&"rxdbr0".to_string()), "{links:?}");
    assert_eq!(m.ns.addrs("rxdbr1"), vec!["10.201.0.1/24".to_string()]);
    assert!(!m.dir.join("networks/rxdbr0").exists());
    until(
        Duration::from_secs(10),
        "the old dnsmasq to exit",
        || async { !alive(old_pid) },
    )
    .await;
    assert!(alive(
        m.dnsmasq_pid("rxdbr1").expect("dnsmasq runs for rxdbr1")
    ));
    assert!(m.ns.nft().contains("rxdbr1") && !m.ns.nft().contains("rxdbr0"));
    let leases = ok(&m.rxc(&["network", "list-leases", "rxdbr1", "--format", "csv"]));
    assert!(leases.contains(&format!(
        "leasetest,{},{address},DYNAMIC\n",
        client.hwaddr()
    )));
    assert!(
        leases.contains("rxdbr1.gw,,10.201.0.1,GATEWAY\n"),
        "{leases}"
    );

    eprintln!("Bad input is refused in words, with LXD's status codes");
    let err = fails(&lxc(&m, &["network", "info", "nosuch0"]));
    assert!(
        err.contains("Network interface \"nosuch0\" not found"),
        "{err}"
    );
    for name in ["nosuch0", "lo", "rxdbr0"] {
        let err = fails(&lxc(&m, &["network", "list-leases", name]));
        assert!(err.contains("Network not found"), "{name}: {err}");
    }
    let err = fails(&lxc(&m, &["network", "rename", "rxdbr0", "rxdbr2"]));
    assert!(err.contains("Network not found"), "{err}");
    let cases: &[(&str, serde_json::Value, u16, &str)] = &[
        (
            "/1.0/networks/nosuch0/state",
            serde_json::Value::Null,
            404,
            "Network interface \"nosuch0\" not found",
        ),
        (
            "/1.0/networks/lo/leases",
            serde_json::Value::Null,
            404,
            "Network not found",
        ),
        (
            "/1.0/networks/rxdbr1",
            serde_json::json!({"name": ""}),
            400,
            "New network name not provided",
        ),
        (
            "/1.0/networks/rxdbr1",
            serde_json::json!({"name": "x"}),
            400,
            "Network interface is too short",
        ),
        (
            "/1.0/networks/rxdbr1",
            serde_json::json!({"name": "bad/name"}),
            400,
            "invalid characters",
        ),
        (
            "/1.0/networks/rxdbr1",
            serde_json::json!({"name": "lo"}),
            400,
            "Network interface \"lo\" already exists",
        ),
        (
            "/1.0/networks/nosuch0",
            serde_json::json!({"name": "rxdbr2"}),
            404,
            "Network not found",
        ),
    ];
    for (path, body, status, want) in cases {
        let method = if body.is_null() { "GET" } else { "POST" };
        let (got, message) = refusal(&m, method, path, body.clone()).await;
        assert_eq!(got, *status, "{method} {path} {body}: {message}");
        assert!(message.contains(want), "{method} {path} {body}: {message}");
    }
    ok(&m.rxc(&[
        "network",
        "create",
        "rxdbr2",
        "ipv4.address=10.202.0.1/24",
        "ipv6.address=none",
    ]));
    let (got, message) = refusal(
        &m,
        "POST",
        "/1.0/networks/rxdbr1",
        serde_json::json!({"name": "rxdbr2"}),
    )
    .await;
    assert_eq!(
        (got, message.contains("Network \"rxdbr2\" already exists")),
        (409, true),
        "{message}"
    );
    assert!(
        m.ns.links().contains(&"rxdbr1".to_string()),
        "a refused rename changes nothing"
    );
}

#[tokio::test]
async fn info_of_another_member_and_leases_from_every_member() {
    let (_hub, m) = cluster(2).await;
    for member in ["node1", "node2"] {
        ok(&m[0].rxc(&["network", "create", "rxdbr0", "--target", member]));
    }
    ok(&m[0].rxc(&[
        "network",
        "create",
        "rxdbr0",
        "ipv4.address=10.203.0.1/24",
        "ipv6.address=none",
    ]));

    eprintln!("lxc network info --target answers from that member's kernel");
    let info = ok(&lxc(
        &m[0],
        &["network", "info", "eth0", "--target", "node2"],
    ));
    assert!(info.contains("  inet\t192.0.2.2/24 (global)\n"), "{info}");
    let info = ok(&lxc(&m[0], &["network", "info", "eth0"]));
    assert!(info.contains("  inet\t192.0.2.1/24 (global)\n"), "{info}");
    let mac2 = query(&m[1], "/1.0/networks/rxdbr0/state")["hwaddr"]
        .as_str()
        .unwrap()
        .to_string();
    let info = ok(&lxc(
        &m[0],
        &["network", "info", "rxdbr0", "--target", "node2"],
    ));
    assert!(info.contains(&format!("MAC address: {mac2}\n")), "{info}");
    assert!(info.contains("\nBridge:\n"), "{info}");
    let err = fails(&lxc(
        &m[0],
        &["network", "info", "rxdbr0", "--target", "node9"],
    ));
    assert!(err.contains("not found"), "{err}");
    assert_eq!(
        without_counters(&ok(
            &m[0].rxc(&["network", "info", "rxdbr0", "--target", "node2"])
        )),
        without_counters(&info)
    );

    eprintln!("list-leases gathers every member's leases, each with its location");
    let c1 = DhcpClient::attach(&m[0], "rxdbr0", "vc1", [0x00, 0x16, 0x3e, 0x00, 0x00, 0x01]);
    let c2 = DhcpClient::attach(&m[1], "rxdbr0", "vc2", [0x00, 0x16, 0x3e, 0x00, 0x00, 0x02]);
    let a1 = c1.lease("client1");
    let a2 = c2.lease("client2");
    let want = format!(
        "client1,{},{a1},DYNAMIC,node1\nclient2,{},{a2},DYNAMIC,node2\nrxdbr0.gw,,10.203.0.1,GATEWAY,\n",
        c1.hwaddr(),
        c2.hwaddr()
    );
    for member in &m {
        let leases = ok(&lxc(
            member,
            &["network", "list-leases", "rxdbr0", "--format", "csv"],
        ));
        assert_eq!(leases, want);
        let leases = ok(&member.rxc(&["network", "list-leases", "rxdbr0", "--format", "csv"]));
        assert_eq!(leases, want);
    }

    eprintln!("As in LXD, a clustered network is not renamed");
    let err = fails(&lxc(&m[0], &["network", "rename", "rxdbr0", "rxdbr1"]));
    assert!(
        err.contains("Renaming clustered network not supported"),
        "{err}"
    );
    assert!(m[1].ns.links().contains(&"rxdbr0".to_string()));
}
