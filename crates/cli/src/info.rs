//! `rxc info [<remote>:] [--resources] [--target]`: the server, or its hardware in `lxc info
//! --resources`'s layout.

use std::fmt::Write;

use rxd_api::{
    Resources, ResourcesCpuSocket, ResourcesGpuCard, ResourcesNetworkCard, ResourcesStorageDisk,
};

use crate::output::bytes_iec;
use crate::{print, CliError, Ctx, Result};

/// Runs `rxc info`.
pub async fn run(
    ctx: &Ctx,
    what: Option<String>,
    resources: bool,
    target: Option<String>,
) -> Result<()> {
    let (client, _, instance) = ctx.resolve_opt(&what)?;
    if !instance.is_empty() {
        if target.is_some() {
            return Err(CliError::BadArgument {
                message: "--target cannot be used with instances".into(),
            });
        }
        // rxd answers that it has no instances, in its own words.
        let shown: serde_json::Value = client
            .get(&format!("/1.0/instances/{}", rxd_client::encode(&instance)))
            .await?;
        return print(&crate::yaml::to_string(&shown)?);
    }
    let (server, _) = client.server().await?;
    if target.is_some()
        && !server
            .environment
            .as_ref()
            .is_some_and(|e| e.server_clustered)
    {
        return Err(CliError::BadArgument {
            message: "To use --target, the destination remote must be a cluster".into(),
        });
    }
    if resources {
        if !server.api_extensions.iter().any(|e| e == "resources_v2") {
            return Err(CliError::BadArgument {
                message: "The server doesn't implement the newer v2 resources API".into(),
            });
        }
        let res = client.server_resources(target.as_deref()).await?;
        return print(&resources_text(&res));
    }
    let server = match target {
        Some(t) => client.server_on(&t).await?.0,
        None => server,
    };
    print(&crate::yaml::to_string(&server)?)
}

/// The hardware as `lxc info --resources` prints it.
pub fn resources_text(r: &Resources) -> String {
    let mut o = String::new();
    let arch = &r.cpu.architecture;
    match r.cpu.sockets.as_slice() {
        [] => {}
        [one] => {
            let _ = writeln!(o, "CPU ({arch}):");
            cpu(&mut o, one, "  ");
        }
        many => {
            let _ = writeln!(o, "CPUs ({arch}):");
            for s in many {
                let _ = writeln!(o, "  Socket {}:", s.socket);
                cpu(&mut o, s, "    ");
            }
        }
    }

    let m = &r.memory;
    o.push_str("\nMemory:\n");
    if m.hugepages_total > 0 {
        o.push_str("  Hugepages:\n");
        free_used_total(&mut o, "    ", m.hugepages_total, m.hugepages_used);
    }
    if m.nodes.len() > 1 {
        o.push_str("  NUMA nodes:\n");
        for n in &m.nodes {
            let _ = writeln!(o, "    Node {}:", n.numa_node);
            if n.hugepages_total > 0 {
                o.push_str("      Hugepages:\n");
                free_used_total(&mut o, "        ", n.hugepages_total, n.hugepages_used);
            }
            free_used_total(&mut o, "      ", n.total, n.used);
        }
    }
    free_used_total(&mut o, "  ", m.total, m.used);

    listed(&mut o, &r.gpu.cards, ("GPU", "GPUs", "Card"), gpu);
    listed(&mut o, &r.network.cards, ("NIC", "NICs", "Card"), nic);
    listed(&mut o, &r.storage.disks, ("Disk", "Disks", "Disk"), disk);
    o
}

fn free_used_total(o: &mut String, prefix: &str, total: u64, used: u64) {
    let _ = writeln!(
        o,
        "{prefix}Free: {}",
        bytes_iec(total.saturating_sub(used), 2)
    );
    let _ = writeln!(o, "{prefix}Used: {}", bytes_iec(used, 2));
    let _ = writeln!(o, "{prefix}Total: {}", bytes_iec(total, 2));
}

/// One item under `Title:`, several under `Titles:` as `Item N:`, none not at all.
fn listed<T>(
    o: &mut String,
    items: &[T],
    (one, many, item): (&str, &str, &str),
    render: fn(&mut String, &T, &str),
) {
    match items {
        [] => {}
        [only] => {
            let _ = writeln!(o, "\n{one}:");
            o.push_str("  ");
            render(o, only, "  ");
        }
        all => {
            let _ = writeln!(o, "\n{many}:");
            for (i, x) in all.iter().enumerate() {
                let _ = writeln!(o, "  {item} {i}:");
                o.push_str("    ");
                render(o, x, "    ");
            }
        }
    }
}

fn cpu(o: &mut String, s: &ResourcesCpuSocket, p: &str) {
    if !s.vendor.is_empty() {
        let _ = writeln!(o, "{p}Vendor: {}", s.vendor);
    }
    if !s.name.is_empty() {
        let _ = writeln!(o, "{p}Name: {}", s.name);
    }
    if !s.cache.is_empty() {
        let _ = writeln!(o, "{p}Caches:");
        for c in &s.cache {
            let _ = writeln!(
                o,
                "{p}  - Level {} (type: {}): {}",
                c.level,
                c.cache_type,
                bytes_iec(c.size, 0)
            );
        }
    }
    let _ = writeln!(o, "{p}Cores:");
    for c in &s.cores {
        let _ = writeln!(o, "{p}  - Core {}", c.core);
        let _ = writeln!(o, "{p}    Frequency: {}Mhz", c.frequency);
        let _ = writeln!(o, "{p}    Threads:");
        for t in &c.threads {
            let _ = writeln!(
                o,
                "{p}      - {} (id: {}, online: {}, NUMA node: {})",
                t.thread, t.id, t.online, t.numa_node
            );
        }
    }
    if s.frequency > 0 {
        if s.frequency_turbo > 0 && s.frequency_minimum > 0 {
            let _ = writeln!(
                o,
                "{p}Frequency: {}Mhz (min: {}Mhz, max: {}Mhz)",
                s.frequency, s.frequency_minimum, s.frequency_turbo
            );
        } else {
            let _ = writeln!(o, "{p}Frequency: {}Mhz", s.frequency);
        }
    }
}

/// `Vendor`, `Product`, `PCI address` and `Driver` lines, each when known.
fn device_lines(o: &mut String, p: &str, ids: [(&str, &str); 2], pci: &str, driver: (&str, &str)) {
    for (label, (name, id)) in ["Vendor", "Product"].iter().zip(ids) {
        if !name.is_empty() {
            let _ = writeln!(o, "{p}{label}: {name} ({id})");
        }
    }
    if !pci.is_empty() {
        let _ = writeln!(o, "{p}PCI address: {pci}");
    }
    if !driver.0.is_empty() {
        let _ = writeln!(o, "{p}Driver: {} ({})", driver.0, driver.1);
    }
}

fn sriov_lines(o: &mut String, p: &str, current: u64, maximum: u64, vfs: usize) -> bool {
    let _ = writeln!(o, "{p}SR-IOV information:");
    let _ = writeln!(o, "{p}  Current number of VFs: {current}");
    let _ = writeln!(o, "{p}  Maximum number of VFs: {maximum}");
    if vfs > 0 {
        // lxc prints the maximum here.
        let _ = writeln!(o, "{p}  VFs: {maximum}");
    }
    vfs > 0
}

fn gpu(o: &mut String, g: &ResourcesGpuCard, p: &str) {
    let _ = writeln!(o, "NUMA node: {}", g.numa_node);
    device_lines(
        o,
        p,
        [(&g.vendor, &g.vendor_id), (&g.product, &g.product_id)],
        &g.pci_address,
        (&g.driver, &g.driver_version),
    );
    if let Some(d) = &g.drm {
        let _ = writeln!(o, "{p}DRM:");
        let _ = writeln!(o, "{p}  ID: {}", d.id);
        for (label, name, dev) in [
            ("Card", &d.card_name, &d.card_device),
            ("Control", &d.control_name, &d.control_device),
            ("Render", &d.render_name, &d.render_device),
        ] {
            if !name.is_empty() {
                let _ = writeln!(o, "{p}  {label}: {name} ({dev})");
            }
        }
    }
    if let Some(s) = &g.sriov {
        if sriov_lines(o, p, s.current_vfs, s.maximum_vfs, s.vfs.len()) {
            for vf in &s.vfs {
                let _ = write!(o, "{p}  - ");
                gpu(o, vf, &format!("{p}    "));
            }
        }
    }
    if !g.mdev.is_empty() {
        let _ = writeln!(o, "{p}Mdev profiles:");
        for (k, v) in &g.mdev {
            let _ = writeln!(o, "{p}  - {k} ({} available)", v.available);
            if !v.description.is_empty() {
                for line in v.description.split('\n') {
                    let _ = writeln!(o, "{p}      {line}");
                }
            }
        }
    }
}

fn nic(o: &mut String, n: &ResourcesNetworkCard, p: &str) {
    let _ = writeln!(o, "NUMA node: {}", n.numa_node);
    device_lines(
        o,
        p,
        [(&n.vendor, &n.vendor_id), (&n.product, &n.product_id)],
        &n.pci_address,
        (&n.driver, &n.driver_version),
    );
    if !n.ports.is_empty() {
        let _ = writeln!(o, "{p}Ports:");
        for port in &n.ports {
            let _ = writeln!(o, "{p}  - Port {} ({})", port.port, port.protocol);
            let _ = writeln!(o, "{p}    ID: {}", port.id);
            if !port.address.is_empty() {
                let _ = writeln!(o, "{p}    Address: {}", port.address);
            }
            if !port.supported_modes.is_empty() {
                let _ = writeln!(
                    o,
                    "{p}    Supported modes: {}",
                    port.supported_modes.join(", ")
                );
            }
            if !port.supported_ports.is_empty() {
                let _ = writeln!(
                    o,
                    "{p}    Supported ports: {}",
                    port.supported_ports.join(", ")
                );
            }
            if !port.port_type.is_empty() {
                let _ = writeln!(o, "{p}    Port type: {}", port.port_type);
            }
            if !port.transceiver_type.is_empty() {
                let _ = writeln!(o, "{p}    Transceiver type: {}", port.transceiver_type);
            }
            let _ = writeln!(o, "{p}    Auto negotiation: {}", port.auto_negotiation);
            let _ = writeln!(o, "{p}    Link detected: {}", port.link_detected);
            if port.link_speed > 0 {
                let _ = writeln!(
                    o,
                    "{p}    Link speed: {}Mbit/s ({} duplex)",
                    port.link_speed, port.link_duplex
                );
            }
        }
    }
    if let Some(s) = &n.sriov {
        if sriov_lines(o, p, s.current_vfs, s.maximum_vfs, s.vfs.len()) {
            for vf in &s.vfs {
                let _ = write!(o, "{p}  - ");
                nic(o, vf, &format!("{p}    "));
            }
        }
    }
}

fn disk(o: &mut String, d: &ResourcesStorageDisk, p: &str) {
    let _ = writeln!(o, "NUMA node: {}", d.numa_node);
    let _ = writeln!(o, "{p}ID: {}", d.id);
    let _ = writeln!(o, "{p}Device: {}", d.device);
    if !d.model.is_empty() {
        let _ = writeln!(o, "{p}Model: {}", d.model);
    }
    if !d.disk_type.is_empty() {
        let _ = writeln!(o, "{p}Type: {}", d.disk_type);
    }
    let _ = writeln!(o, "{p}Size: {}", bytes_iec(d.size, 2));
    if !d.wwn.is_empty() {
        let _ = writeln!(o, "{p}WWN: {}", d.wwn);
    }
    let _ = writeln!(o, "{p}Read-Only: {}", d.read_only);
    let _ = writeln!(o, "{p}Removable: {}", d.removable);
    if !d.partitions.is_empty() {
        let _ = writeln!(o, "{p}Partitions:");
        for part in &d.partitions {
            let _ = writeln!(o, "{p}  - Partition {}", part.partition);
            let _ = writeln!(o, "{p}    ID: {}", part.id);
            let _ = writeln!(o, "{p}    Device: {}", part.device);
            let _ = writeln!(o, "{p}    Read-Only: {}", part.read_only);
            let _ = writeln!(o, "{p}    Size: {}", bytes_iec(part.size, 2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_print_as_lxc_prints_them() {
        // An LXD 5.0.2 answer for a one-socket, one-NIC, one-disk virtual machine.
        let r: Resources = serde_json::from_str(
            r#"{"cpu":{"architecture":"x86_64","sockets":[{"name":"Intel Xeon","vendor":"GenuineIntel","socket":0,
            "cache":[{"level":1,"type":"Data","size":32768}],
            "cores":[{"core":0,"die":0,"threads":[{"id":0,"numa_node":0,"thread":0,"online":true,"isolated":false}]}]}],"total":1},
            "memory":{"hugepages_total":0,"hugepages_used":0,"hugepages_size":2097152,"used":1073741824,"total":4294967296},
            "gpu":{"cards":[],"total":0},
            "network":{"cards":[{"driver":"virtio_net","driver_version":"6.1.0","ports":[{"id":"eth0","address":"00:16:3e:00:00:01","port":0,"protocol":"ethernet","auto_negotiation":false,"link_detected":true}],"numa_node":0,"pci_address":"0000:00:05.0","vendor":"Red Hat, Inc.","vendor_id":"1af4","product":"Virtio network device","product_id":"0001"}],"total":1},
            "storage":{"disks":[{"id":"vda","device":"254:0","type":"virtio","read_only":false,"size":10737418240,"removable":false,"numa_node":0,"block_size":512,"rpm":0,"device_id":"","partitions":[{"id":"vda1","device":"254:1","read_only":false,"size":1048576,"partition":1}]}],"total":2}}"#,
        )
        .unwrap();
        assert_eq!(
            resources_text(&r),
            "CPU (x86_64):
  Vendor: GenuineIntel
  Name: Intel Xeon
  Caches:
    - Level 1 (type: Data): 32KiB
  Cores:
    - Core 0
      Frequency: 0Mhz
      Threads:
        - 0 (id: 0, online: true, NUMA node: 0)

Memory:
  Free: 3.00GiB
  Used: 1.00GiB
  Total: 4.00GiB

NIC:
  NUMA node: 0
  Vendor: Red Hat, Inc. (1af4)
  Product: Virtio network device (0001)
  PCI address: 0000:00:05.0
  Driver: virtio_net (6.1.0)
  Ports:
    - Port 0 (ethernet)
      ID: eth0
      Address: 00:16:3e:00:00:01
      Auto negotiation: false
      Link detected: true

Disk:
  NUMA node: 0
  ID: vda
  Device: 254:0
  Type: virtio
  Size: 10.00GiB
  Read-Only: false
  Removable: false
  Partitions:
    - Partition 1
      ID: vda1
      Device: 254:1
      Read-Only: false
      Size: 1.00MiB
"
        );
    }
}
