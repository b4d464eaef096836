//! Issue 10: `GET /1.0/resources` (with `?target=`) and `GET /1.0/projects/{name}/state`, as
//! Debian's real `lxc` (5.0.2) and rxc use them: `lxc info --resources [--target]`, `lxc
//! storage info`, `lxc storage show --resources`, `lxc project info`. The figures are checked
//! against `/proc` and `/sys` of this machine, read here independently.

use std::path::Path;
use std::process::Output;

use rxd_testkit::{system_tool, Member, Net};
use serde_json::Value;

/// `lxc ARGS` (or `rxc ARGS`) against `m`, bounded in time by the testkit.
fn run(m: &Member, program: &str, args: &[&str]) -> Output {
    m.command(program, args, None)
}

fn ok(m: &Member, program: &str, args: &[&str]) -> String {
    m.succeeds(program, args, None)
}

fn fails(m: &Member, program: &str, args: &[&str]) -> String {
    let out = run(m, program, args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{program} {args:?} succeeded: {err}");
    err.trim().to_string()
}

/// Hardware threads as `/proc/cpuinfo` lists them.
fn processors() -> u64 {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(':').next().unwrap_or_default().trim() == "processor")
        .count() as u64
}

/// Memory as LXD counts it: the online memory blocks when the kernel has them, else
/// `MemTotal`.
fn memory_total() -> u64 {
    let blocks = Path::new("/sys/devices/system/memory");
    let size = std::fs::read_to_string(blocks.join("block_size_bytes"))
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())
        .unwrap_or(0);
    let online = std::fs::read_dir(blocks)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("memory"))
                .filter(|e| {
                    std::fs::read_to_string(e.path().join("online")).is_ok_and(|s| s.trim() == "1")
                })
                .count() as u64
        })
        .unwrap_or(0);
    if size * online > 0 {
        return size * online;
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// Go's `units.GetByteSizeStringIEC(n, 2)`.
fn iec(n: u64) -> String {
    let mut v = n as f64;
    for unit in ["KiB", "MiB", "GiB", "TiB"] {
        v /= 1024.0;
        if v < 1024.0 {
            return format!("{v:.2}{unit}");
        }
    }
    format!("{v:.2}PiB")
}

/// `lxc info --resources` without its memory Free/Used lines, which move between two calls.
fn steady(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("Free: ") && !l.trim_start().starts_with("Used: "))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_10_lxc_and_rxc_show_each_members_resources() {
    let net = Net::lease();
    let mut members = Member::form(2, &net, &[]).await;
    let (lxc, rxc) = (system_tool("lxc"), "rxc");
    let node1 = &members[0];

    eprintln!("GET /1.0/resources reports this machine's threads and memory as LXD counts them");
    let raw: Value = serde_json::from_str(&ok(node1, &lxc, &["query", "/1.0/resources"])).unwrap();
    assert_eq!(raw["cpu"]["total"], processors(), "{raw}");
    assert_eq!(raw["memory"]["total"], memory_total(), "{raw}");
    let threads: usize = raw["cpu"]["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["cores"].as_array().unwrap())
        .map(|c| c["threads"].as_array().unwrap().len())
        .sum();
    assert_eq!(threads as u64, processors(), "{raw}");
    for part in ["gpu", "network", "storage", "usb", "pci"] {
        assert!(raw[part]["total"].is_u64(), "{part}: {raw}");
    }

    eprintln!("lxc info --resources prints it, and rxc prints the same");
    let theirs = ok(node1, &lxc, &["info", "--resources"]);
    assert!(
        theirs.starts_with("CPU (") || theirs.starts_with("CPUs ("),
        "{theirs}"
    );
    let threads_shown = theirs.lines().filter(|l| l.contains("(id: ")).count() as u64;
    assert_eq!(threads_shown, processors(), "{theirs}");
    assert!(
        theirs.contains("\nMemory:\n")
            && theirs.contains(&format!("  Total: {}\n", iec(memory_total()))),
        "{theirs}"
    );
    let ours = ok(node1, rxc, &["info", "--resources"]);
    assert_eq!(steady(&ours), steady(&theirs));

    eprintln!("--target node2 is answered by node2, through node1");
    let theirs2 = ok(node1, &lxc, &["info", "--resources", "--target", "node2"]);
    assert_eq!(steady(&theirs2), steady(&theirs));
    let ours2 = ok(node1, rxc, &["info", "--resources", "--target", "node2"]);
    assert_eq!(steady(&ours2), steady(&theirs));
    for program in [lxc.as_str(), rxc] {
        let err = fails(
            node1,
            program,
            &["info", "--resources", "--target", "nosuch"],
        );
        assert_eq!(err, "Error: Cluster member not found", "{program}");
    }

    eprintln!("lxc storage info and storage show --resources read the pool's space");
    let info = ok(node1, &lxc, &["storage", "info", "local"]);
    assert!(info.contains("\n  total space: "), "{info}");
    let theirs = ok(node1, &lxc, &["storage", "show", "local", "--resources"]);
    assert!(theirs.starts_with("space:\n"), "{theirs}");
    let ours = ok(node1, rxc, &["storage", "show", "local", "--resources"]);
    let total = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("  total: "))
            .map(str::to_string)
    };
    assert_eq!(total(&ours), total(&theirs), "{ours}\n{theirs}");
    assert!(total(&ours).is_some(), "{ours}");

    eprintln!("lxc project info shows LXD's eight resources, unlimited, and rxc the same");
    let theirs = ok(
        node1,
        &lxc,
        &["project", "info", "default", "--format", "csv"],
    );
    let rows: Vec<&str> = theirs.lines().collect();
    assert_eq!(
        rows,
        [
            "CONTAINERS,UNLIMITED,0",
            "CPU,UNLIMITED,0",
            "DISK,UNLIMITED,0B",
            "INSTANCES,UNLIMITED,0",
            "MEMORY,UNLIMITED,0B",
            "NETWORKS,UNLIMITED,0",
            "PROCESSES,UNLIMITED,0",
            "VIRTUAL-MACHINES,UNLIMITED,0"
        ],
        "{theirs}"
    );
    for format in ["table", "csv", "json", "yaml"] {
        let args = ["project", "info", "default", "--format", format];
        assert_eq!(ok(node1, rxc, &args), ok(node1, &lxc, &args), "{format}");
    }
    for program in [lxc.as_str(), rxc] {
        let err = fails(node1, program, &["project", "info", "nosuch"]);
        assert_eq!(
            err, "Error: Fetch project database object: Project not found",
            "{program}"
        );
    }

    eprintln!(
        "With node2 gone, a request targeting it fails naming it; node1 still answers for itself"
    );
    members[1].kill();
    let node1 = &members[0];
    let err = node1
        .client()
        .get::<Value>("/1.0/resources?target=node2")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("node2"), "{err}");
    let own: Value = node1.client().get("/1.0/resources").await.unwrap();
    assert_eq!(own["cpu"]["total"], processors());
    let own: Value = node1
        .client()
        .get("/1.0/resources?target=node1")
        .await
        .unwrap();
    assert_eq!(own["cpu"]["total"], processors());
}
