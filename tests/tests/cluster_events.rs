//! `GET /1.0/events` across a cluster: every member relays the events the others make, each with
//! the `location` of the member that made it, once; through the typed client, `rxc monitor` and
//! Debian's real `lxc monitor`; a member killed and started again is followed again.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rxd_client::EventStream;
use rxd_testkit::{Member, Net};

const LXC: &str = "/usr/bin/lxc";

async fn create_profile(m: &Member, name: &str) {
    m.client()
        .request(
            "POST",
            "/1.0/profiles",
            Some(serde_json::json!({ "name": name })),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("creating profile {name} failed: {e}"));
}

/// The next lifecycle event on `stream` whose source is a profile, within `limit`.
async fn next_profile_event(stream: &mut EventStream, limit: Duration) -> Option<(String, String)> {
    let until = tokio::time::Instant::now() + limit;
    loop {
        let e = tokio::time::timeout_at(until, stream.next())
            .await
            .ok()??
            .expect("events decode");
        if let Some(source) = e.metadata["source"].as_str() {
            if let Some(name) = source.strip_prefix("/1.0/profiles/") {
                return Some((name.to_string(), e.location));
            }
        }
    }
}

/// Waits until `stream` (opened on another member) relays the events of `from`: creates probe
/// profiles on `from` until one of them arrives, bounded in count and time. Returns the events
/// seen meanwhile.
async fn until_relayed(
    stream: &mut EventStream,
    from: &Member,
    tag: &str,
) -> Vec<(String, String)> {
    let start = Instant::now();
    let mut seen = Vec::new();
    for i in 0..60 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the events of {tag} were never relayed"
        );
        let probe = format!("probe-{tag}-{i}");
        create_profile(from, &probe).await;
        while let Some(e) = next_profile_event(stream, Duration::from_secs(1)).await {
            let hit = e.0.starts_with(&format!("probe-{tag}-"));
            seen.push(e);
            if hit {
                return seen;
            }
        }
    }
    panic!("the events of {tag} were never relayed");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_member_sees_the_events_of_all_once_with_their_location() {
    let net = Net::lease();
    let m = Member::form(3, &net, &[]).await;
    let mut on1 = m[0].client().events(&["lifecycle"]).await.unwrap();
    let mut on3 = m[2].client().events(&["lifecycle"]).await.unwrap();
    until_relayed(&mut on1, &m[1], "2-to-1").await;
    until_relayed(&mut on1, &m[2], "3-to-1").await;
    until_relayed(&mut on3, &m[0], "1-to-3").await;
    until_relayed(&mut on3, &m[1], "2-to-3").await;

    create_profile(&m[0], "made-on-1").await;
    create_profile(&m[1], "made-on-2").await;
    create_profile(&m[2], "made-on-3").await;
    // Markers from the two other members, after which every copy of the three would be here.
    create_profile(&m[1], "marker-2").await;
    create_profile(&m[2], "marker-3").await;
    for (who, stream, marker_a, marker_b) in [
        ("node1", &mut on1, "marker-2", "marker-3"),
        ("node3", &mut on3, "marker-2", "marker-3"),
    ] {
        let mut seen: Vec<(String, String)> = Vec::new();
        while !(seen.iter().any(|e| e.0 == marker_a) && seen.iter().any(|e| e.0 == marker_b)) {
            let e = next_profile_event(stream, Duration::from_secs(30))
                .await
                .unwrap_or_else(|| panic!("{who} saw only {seen:?}"));
            seen.push(e);
        }
        for (name, location) in [
            ("made-on-1", "node1"),
            ("made-on-2", "node2"),
            ("made-on-3", "node3"),
        ] {
            let copies: Vec<_> = seen.iter().filter(|e| e.0 == name).collect();
            assert_eq!(
                copies,
                vec![&(name.to_string(), location.to_string())],
                "{who} sees {name} once, from {location}: {seen:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_events_of_a_member_killed_and_started_again_flow_again() {
    let net = Net::lease();
    let mut m = Member::form(3, &net, &[]).await;
    let mut on1 = m[0].client().events(&["lifecycle"]).await.unwrap();
    until_relayed(&mut on1, &m[1], "before").await;

    m[1].kill();
    m[1].start_again();
    m[1].wait_ready();
    until_relayed(&mut on1, &m[1], "after").await;
    create_profile(&m[1], "after-restart").await;
    let e = loop {
        let e = next_profile_event(&mut on1, Duration::from_secs(30))
            .await
            .expect("the event of the restarted member arrives");
        if e.0 == "after-restart" {
            break e;
        }
    };
    assert_eq!(e.1, "node2");
    // The restarted member follows the others too.
    let mut on2 = m[1].client().events(&["lifecycle"]).await.unwrap();
    until_relayed(&mut on2, &m[0], "to-restarted").await;
}

/// A monitor process whose output lines arrive on a channel; killed by its PID when dropped.
struct Monitor {
    child: Child,
    lines: mpsc::Receiver<String>,
    text: String,
}

impl Monitor {
    fn start(m: &Member, program: &str) -> Monitor {
        let mut child = m
            .cmd(program)
            .args(["monitor", "--type", "lifecycle"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} monitor does not start: {e}"));
        let out = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Monitor {
            child,
            lines,
            text: String::new(),
        }
    }

    /// Waits until the output holds `want`, bounded by `limit`.
    fn shows(&mut self, want: &str, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while !self.text.contains(want) {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.text.push_str(&line);
                    self.text.push('\n');
                }
                Err(_) => return false,
            }
        }
        true
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rxc_monitor_and_lxc_monitor_on_one_member_see_a_profile_made_on_another() {
    let net = Net::lease();
    let m = Member::form(2, &net, &[]).await;
    let mut on1 = m[0].client().events(&["lifecycle"]).await.unwrap();
    until_relayed(&mut on1, &m[1], "node2").await;
    // lxc's first run prints a greeting; have it done before the monitor starts.
    m[0].command(LXC, &["list"], None);

    let mut rxc = Monitor::start(&m[0], "rxc");
    let mut lxc = Monitor::start(&m[0], LXC);
    // Each monitor has its websocket once it shows a profile created on this member.
    for (i, mon) in [&mut rxc, &mut lxc].into_iter().enumerate() {
        let start = Instant::now();
        let mut n = 0;
        loop {
            assert!(
                n < 60 && start.elapsed() < Duration::from_secs(60),
                "monitor {i} never showed an event: {}",
                mon.text
            );
            let name = format!("ready-{i}-{n}");
            create_profile(&m[0], &name).await;
            if mon.shows(
                &format!("source: /1.0/profiles/{name}"),
                Duration::from_secs(1),
            ) {
                break;
            }
            n += 1;
        }
    }

    create_profile(&m[1], "seen-by-monitors").await;
    for (program, mon) in [("rxc", &mut rxc), ("lxc", &mut lxc)] {
        assert!(
            mon.shows(
                "source: /1.0/profiles/seen-by-monitors",
                Duration::from_secs(30)
            ),
            "{program} monitor on node1 shows the profile made on node2: {}",
            mon.text
        );
        let block = mon
            .text
            .split("\n\n")
            .find(|b| b.contains("source: /1.0/profiles/seen-by-monitors"))
            .expect("shown")
            .to_string();
        assert!(
            block.contains("location: node2"),
            "{program} monitor shows where it happened: {block}"
        );
    }
}
