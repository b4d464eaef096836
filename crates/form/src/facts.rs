//! What a server reports of its host for the plan: its interfaces with their addresses
//! ([`interfaces`]), its disks ([`disks`], from `/sys/block` and `/proc/mounts`), and which
//! of the planned member addresses it reaches ([`probe`]). The daemon adds its version,
//! extensions, clock and local data.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::planner::{Cidr, Disk, Interface};

/// The host's interfaces that are up, each with its addresses, by name.
pub fn interfaces() -> Vec<Interface> {
    let mut by_name: BTreeMap<String, Vec<Cidr>> = BTreeMap::new();
    for iface in if_addrs::get_if_addrs().unwrap_or_default() {
        let prefix = match &iface.addr {
            if_addrs::IfAddr::V4(a) => prefix_len(&a.netmask.octets()),
            if_addrs::IfAddr::V6(a) => prefix_len(&a.netmask.octets()),
        };
        if let Ok(cidr) = format!("{}/{prefix}", iface.ip()).parse::<Cidr>() {
            by_name.entry(iface.name.clone()).or_default().push(cidr);
        }
    }
    by_name
        .into_iter()
        .map(|(name, addresses)| Interface { name, addresses })
        .collect()
}

fn prefix_len(mask: &[u8]) -> u8 {
    mask.iter().map(|b| b.count_ones() as u8).sum()
}

/// The host's disks under `sys_block` (`/sys/block`): not loop, RAM or device-mapper
/// devices; a disk holds data when it has partitions, and is in use when it or one of its
/// partitions is mounted (per `mounts`, the text of `/proc/mounts`).
pub fn disks_in(sys_block: &Path, mounts: &str) -> Vec<Disk> {
    let mounted: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|dev| dev.starts_with("/dev/"))
        .collect();
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(sys_block) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if ["loop", "ram", "dm-", "zram", "sr"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            continue;
        }
        let dir = e.path();
        let sectors: u64 = std::fs::read_to_string(dir.join("size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let partitions: Vec<String> = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .map(|p| p.file_name().to_string_lossy().into_owned())
                    .filter(|p| p.starts_with(&name) && p.len() > name.len())
                    .collect()
            })
            .unwrap_or_default();
        let path = format!("/dev/{name}");
        let in_use = mounted
            .iter()
            .any(|m| *m == path || partitions.iter().any(|p| *m == format!("/dev/{p}")));
        out.push(Disk {
            path,
            size_bytes: sectors * 512,
            holds_data: !partitions.is_empty() || in_use,
            in_use,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// This host's disks.
pub fn disks() -> Vec<Disk> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    disks_in(Path::new("/sys/block"), &mounts)
}

/// Which of `addresses` (`host:port`) accept a TCP connection within `timeout`, all tried
/// at once; in the order given. An address refused is tried again every 250 ms until then:
/// the other servers start listening on their planned addresses at about the same time.
pub async fn probe(addresses: &[String], timeout: Duration) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let tries = addresses.iter().map(|a| async move {
        let attempt = async {
            loop {
                if tokio::net::TcpStream::connect(a.as_str()).await.is_ok() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        };
        let ok = tokio::time::timeout_at(deadline, attempt).await.is_ok();
        ok.then(|| a.clone())
    });
    futures_util::future::join_all(tries)
        .await
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disks_with_partitions_hold_data_and_mounted_ones_are_in_use() {
        let dir = std::env::temp_dir().join(format!("rxd-form-facts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (disk, size, parts) in [
            ("vda", "2048", vec!["vda1"]),
            ("vdb", "4096", vec![]),
            ("loop0", "8", vec![]),
        ] {
            std::fs::create_dir_all(dir.join(disk)).unwrap();
            std::fs::write(dir.join(disk).join("size"), size).unwrap();
            for p in parts {
                std::fs::create_dir_all(dir.join(disk).join(p)).unwrap();
            }
        }
        let disks = disks_in(&dir, "/dev/vda1 / ext4 rw 0 0\nproc /proc proc rw 0 0\n");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            disks,
            vec![
                Disk {
                    path: "/dev/vda".into(),
                    size_bytes: 2048 * 512,
                    holds_data: true,
                    in_use: true
                },
                Disk {
                    path: "/dev/vdb".into(),
                    size_bytes: 4096 * 512,
                    holds_data: false,
                    in_use: false
                },
            ]
        );
    }

    #[test]
    fn interfaces_list_the_loopback_address_with_its_prefix() {
        let lo = interfaces()
            .into_iter()
            .find(|i| i.name == "lo")
            .expect("lo is up");
        assert!(
            lo.addresses.iter().any(|c| c.to_string() == "127.0.0.1/8"),
            "{lo:?}"
        );
    }

    #[tokio::test]
    async fn probe_lists_the_addresses_that_accept() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap().to_string();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let reached = probe(&[closed, open.clone()], Duration::from_secs(2)).await;
        assert_eq!(reached, vec![open]);
    }
}
