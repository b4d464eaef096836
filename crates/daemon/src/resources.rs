//! The member's hardware for `GET /1.0/resources`, read from `/proc` and `/sys` the way LXD's
//! `lxd/resources` reads them: the same files, the same totals, the same ordering. What a
//! machine does not expose (no DMI tables, no USB bus, no udev database) is left empty, as LXD
//! leaves it. It knows nothing of the daemon: a handler calls [`read`] on a blocking thread.
//!
//! ```text
//!  /proc/cpuinfo + /sys/devices/system/cpu ─► cpu      /proc/meminfo + /sys/devices/system/{memory,node} ─► memory
//!  /sys/class/drm + /sys/bus/pci (0x03) ───► gpu      /sys/class/net + /sys/bus/pci (0x02) ─► network
//!  /sys/class/block ───────────────────────► storage  /sys/bus/usb, /sys/bus/pci ─► usb, pci
//!  /sys/class/dmi/id ──────────────────────► system
//! ```
//!
//! Vendor and product names come from the `pci.ids` and `usb.ids` files when the host has
//! them (LXD carries its own copy); without them only the numeric ids are shown.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rxd_api::{
    Resources, ResourcesCpu, ResourcesCpuCache, ResourcesCpuCore, ResourcesCpuSocket,
    ResourcesCpuThread, ResourcesGpu, ResourcesGpuCard, ResourcesGpuCardDrm, ResourcesGpuCardMdev,
    ResourcesGpuCardSriov, ResourcesMemory, ResourcesMemoryNode, ResourcesNetwork,
    ResourcesNetworkCard, ResourcesNetworkCardPort, ResourcesNetworkCardSriov, ResourcesPci,
    ResourcesPciDevice, ResourcesStorage, ResourcesStorageDisk, ResourcesStorageDiskPartition,
    ResourcesSystem, ResourcesSystemChassis, ResourcesSystemFirmware, ResourcesSystemMotherboard,
    ResourcesUsb, ResourcesUsbDevice, ResourcesUsbDeviceInterface,
};

const SYS_CPU: &str = "/sys/devices/system/cpu";
const SYS_MEMORY: &str = "/sys/devices/system/memory";
const SYS_NODE: &str = "/sys/devices/system/node";
const SYS_PCI: &str = "/sys/bus/pci/devices";
const SYS_USB: &str = "/sys/bus/usb/devices";
const SYS_DRM: &str = "/sys/class/drm";
const SYS_NET: &str = "/sys/class/net";
const SYS_BLOCK: &str = "/sys/class/block";
const SYS_DMI: &str = "/sys/class/dmi/id";
const PCI_IDS: &[&str] = &[
    "/usr/share/hwdata/pci.ids",
    "/usr/share/misc/pci.ids",
    "/usr/share/pci.ids",
];
const USB_IDS: &[&str] = &[
    "/usr/share/hwdata/usb.ids",
    "/usr/share/misc/usb.ids",
    "/var/lib/usbutils/usb.ids",
];

/// A part of the hardware that could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("Failed to retrieve {part} information: Failed to read {path:?}: {source}")]
pub struct ResourcesError {
    /// `CPU` or `memory`.
    pub part: &'static str,
    /// The file or directory.
    pub path: PathBuf,
    /// What the kernel said.
    #[source]
    pub source: std::io::Error,
}

/// Everything `GET /1.0/resources` shows about this machine. Only the CPU and memory files
/// are required; any other part the machine lacks is empty.
pub fn read() -> Result<Resources, ResourcesError> {
    let kernel = read_str(Path::new("/proc/sys/kernel/osrelease")).unwrap_or_default();
    let pci_ids = IdsFile::load(PCI_IDS);
    Ok(Resources {
        cpu: cpu()?,
        memory: memory()?,
        gpu: gpu(&pci_ids, &kernel),
        network: network(&pci_ids, &kernel),
        storage: storage(),
        usb: usb(&IdsFile::load(USB_IDS), &kernel),
        pci: pci(&pci_ids, &kernel),
        system: system(),
    })
}

fn must<T>(part: &'static str, path: &Path, r: std::io::Result<T>) -> Result<T, ResourcesError> {
    r.map_err(|source| ResourcesError {
        part,
        path: path.to_path_buf(),
        source,
    })
}

fn read_str(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn read_u64(path: &Path) -> Option<u64> {
    read_str(path)?.parse().ok()
}

fn read_i64(path: &Path) -> Option<i64> {
    read_str(path)?.parse().ok()
}

/// A sysfs id file (`0x8086`) without its prefix.
fn read_id(path: &Path) -> String {
    read_str(path)
        .map(|s| s.trim_start_matches("0x").to_string())
        .unwrap_or_default()
}

fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

/// Entry names of a directory, sorted as Go's `os.ReadDir` sorts them.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn base_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The NUMA node a device file names; none or -1 is node 0.
fn device_numa_node(device: &Path) -> u64 {
    read_i64(&device.join("numa_node"))
        .filter(|n| *n > 0)
        .map_or(0, |n| n as u64)
}

/// The kernel driver bound to a device and its version (the module's, else the kernel's).
fn driver(device: &Path, kernel: &str) -> (String, String) {
    let link = device.join("driver");
    let Ok(target) = std::fs::canonicalize(&link) else {
        return Default::default();
    };
    let version =
        read_str(&link.join("module").join("version")).unwrap_or_else(|| kernel.to_string());
    (base_name(&target), version)
}

/// The PCI address of a device, looking through a virtio device to its PCI parent.
fn pci_address(device: &Path) -> String {
    let Ok(mut real) = std::fs::canonicalize(device) else {
        return String::new();
    };
    let subsystem = |p: &Path| {
        std::fs::canonicalize(p.join("subsystem"))
            .map(|s| base_name(&s))
            .unwrap_or_default()
    };
    let mut kind = subsystem(&real);
    if kind == "virtio" {
        real.pop();
        kind = subsystem(&real);
    }
    if kind == "pci" {
        base_name(&real)
    } else {
        String::new()
    }
}

/// The USB address `bus:device` of a device on a USB bus.
fn usb_address(device: &Path) -> String {
    let Ok(real) = std::fs::canonicalize(device) else {
        return String::new();
    };
    if !real.to_string_lossy().contains("/usb") {
        return String::new();
    }
    real.ancestors()
        .find(|p| exists(&p.join("busnum")) && exists(&p.join("devnum")))
        .and_then(|p| Some((read_u64(&p.join("busnum"))?, read_u64(&p.join("devnum"))?)))
        .map(|(bus, dev)| format!("{bus}:{dev}"))
        .unwrap_or_default()
}

/// Parses a cpuset such as `0-3,8`.
pub fn parse_cpuset(text: &str) -> Option<Vec<i64>> {
    let mut cpus = Vec::new();
    for chunk in text.trim().split(',').filter(|c| !c.is_empty()) {
        match chunk.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi): (i64, i64) = (lo.parse().ok()?, hi.parse().ok()?);
                cpus.extend(lo..=hi);
            }
            None => cpus.push(chunk.parse().ok()?),
        }
    }
    Some(cpus)
}

/// What `/proc/cpuinfo` says of one processor.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CpuInfo {
    /// The `processor` number.
    pub processor: i64,
    /// `vendor_id`.
    pub vendor: String,
    /// `model name` (or `cpu` on POWER).
    pub name: String,
}

/// Parses `/proc/cpuinfo` into one entry per `processor` section.
pub fn parse_cpuinfo(text: &str) -> Vec<CpuInfo> {
    let mut out: Vec<CpuInfo> = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key == "processor" {
            if let Ok(n) = value.parse() {
                out.push(CpuInfo {
                    processor: n,
                    ..Default::default()
                });
            }
            continue;
        }
        let Some(cur) = out.last_mut() else { continue };
        match key {
            "vendor_id" if cur.vendor.is_empty() => cur.vendor = value.to_string(),
            "model name" | "cpu" if cur.name.is_empty() => cur.name = value.to_string(),
            _ => {}
        }
    }
    out
}

fn cpu_caches(dir: &Path) -> Vec<ResourcesCpuCache> {
    entries(dir)
        .into_iter()
        .map(|e| dir.join(e))
        .filter_map(|p| {
            let level = read_u64(&p.join("level"))?;
            let size = read_str(&p.join("size")).map_or(0, |s| match s.strip_suffix('K') {
                Some(k) => k.parse::<u64>().unwrap_or(0) * 1024,
                None => s.parse().unwrap_or(0),
            });
            Some(ResourcesCpuCache {
                level,
                cache_type: read_str(&p.join("type")).unwrap_or_else(|| "Unknown".into()),
                size,
            })
        })
        .collect()
}

/// The NUMA node a CPU directory links to (`nodeN` with a `numastat`), else 0.
fn cpu_numa_node(cpu: &Path) -> u64 {
    entries(cpu)
        .iter()
        .filter(|e| e.starts_with("node") && exists(&cpu.join(e).join("numastat")))
        .find_map(|e| e["node".len()..].parse().ok())
        .unwrap_or(0)
}

fn khz_to_mhz(path: &Path) -> Option<u64> {
    read_u64(path).map(|khz| khz / 1000)
}

fn cpu() -> Result<ResourcesCpu, ResourcesError> {
    let text = must(
        "CPU",
        Path::new("/proc/cpuinfo"),
        std::fs::read_to_string("/proc/cpuinfo"),
    )?;
    let info = parse_cpuinfo(&text);
    let sys = Path::new(SYS_CPU);
    must("CPU", sys, std::fs::read_dir(sys))?;
    let isolated = read_str(&sys.join("isolated"))
        .and_then(|s| parse_cpuset(&s))
        .unwrap_or_default();
    let mut sockets: BTreeMap<u64, ResourcesCpuSocket> = BTreeMap::new();
    let mut cores: BTreeMap<u64, BTreeMap<(u64, u64), ResourcesCpuCore>> = BTreeMap::new();
    let mut total = 0;
    for name in entries(sys) {
        let path = sys.join(&name);
        let topology = path.join("topology");
        let Some(id) = name.strip_prefix("cpu").and_then(|n| n.parse::<i64>().ok()) else {
            continue;
        };
        if !exists(&topology) {
            continue;
        }
        // -1 or a missing file: an architecture without that level.
        let level = |f: &str| {
            read_i64(&topology.join(f))
                .filter(|n| *n >= 0)
                .map_or(0, |n| n as u64)
        };
        let (socket, core, die) = (
            level("physical_package_id"),
            level("core_id"),
            level("die_id"),
        );
        sockets.entry(socket).or_insert_with(|| {
            let entry = info.iter().find(|i| i.processor == id).cloned();
            let freq = path.join("cpufreq");
            ResourcesCpuSocket {
                name: entry.as_ref().map(|e| e.name.clone()).unwrap_or_default(),
                vendor: entry.map(|e| e.vendor).unwrap_or_default(),
                socket,
                cache: cpu_caches(&path.join("cache")),
                frequency_minimum: khz_to_mhz(&freq.join("cpuinfo_min_freq"))
                    .or_else(|| khz_to_mhz(&freq.join("scaling_min_freq")))
                    .unwrap_or(0),
                frequency_turbo: khz_to_mhz(&freq.join("cpuinfo_max_freq"))
                    .or_else(|| khz_to_mhz(&freq.join("scaling_max_freq")))
                    .unwrap_or(0),
                ..Default::default()
            }
        });
        let c = cores
            .entry(socket)
            .or_default()
            .entry((core, die))
            .or_insert_with(|| ResourcesCpuCore {
                core,
                die,
                frequency: khz_to_mhz(&path.join("cpufreq").join("scaling_cur_freq")).unwrap_or(0),
                threads: Vec::new(),
            });
        c.threads.push(ResourcesCpuThread {
            id,
            numa_node: cpu_numa_node(&path),
            thread: c.threads.len() as u64,
            online: read_u64(&path.join("online")) != Some(0),
            isolated: isolated.contains(&id),
        });
        total += 1;
    }
    let sockets = sockets
        .into_values()
        .map(|mut s| {
            s.cores = cores
                .remove(&s.socket)
                .unwrap_or_default()
                .into_values()
                .collect();
            let freqs: Vec<u64> = s
                .cores
                .iter()
                .map(|c| c.frequency)
                .filter(|f| *f > 0)
                .collect();
            if !freqs.is_empty() {
                s.frequency = freqs.iter().sum::<u64>() / freqs.len() as u64;
            }
            s
        })
        .collect();
    Ok(ResourcesCpu {
        architecture: read_str(Path::new("/proc/sys/kernel/arch"))
            .unwrap_or_else(|| std::env::consts::ARCH.to_string()),
        sockets,
        total,
    })
}

/// The fields of a `meminfo` file LXD uses, in bytes (huge page counts as counts).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Meminfo {
    /// `MemTotal`.
    pub total: u64,
    /// `MemFree`.
    pub free: u64,
    /// `MemUsed` (NUMA nodes only).
    pub used: u64,
    /// `Cached`.
    pub cached: u64,
    /// `Buffers`.
    pub buffers: u64,
    /// `HugePages_Total`, a count.
    pub hugepages_total: u64,
    /// `HugePages_Free`, a count.
    pub hugepages_free: u64,
    /// `Hugepagesize`.
    pub hugepages_size: u64,
}

/// Parses `/proc/meminfo` or a NUMA node's `meminfo` (`Node 0 MemTotal: ... kB`).
pub fn parse_meminfo(text: &str) -> Meminfo {
    let mut m = Meminfo::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.split_whitespace().last().unwrap_or_default();
        let value = value.trim();
        let bytes = match value.strip_suffix("kB") {
            Some(kb) => kb.trim().parse::<u64>().map(|n| n * 1024),
            None => value.parse::<u64>(),
        };
        let Ok(bytes) = bytes else { continue };
        let field = match key {
            "MemTotal" => &mut m.total,
            "MemFree" => &mut m.free,
            "MemUsed" => &mut m.used,
            "Cached" => &mut m.cached,
            "Buffers" => &mut m.buffers,
            "HugePages_Total" => &mut m.hugepages_total,
            "HugePages_Free" => &mut m.hugepages_free,
            "Hugepagesize" => &mut m.hugepages_size,
            _ => continue,
        };
        *field = bytes;
    }
    m
}

/// Memory as the online memory blocks under `dir` add up (what `meminfo` reports minus what
/// the kernel keeps), or 0 when the machine has no memory blocks.
fn online_block_memory(dir: &Path) -> u64 {
    let block = read_str(&Path::new(SYS_MEMORY).join("block_size_bytes"))
        .and_then(|s| u64::from_str_radix(&s, 16).ok())
        .unwrap_or(0);
    if block == 0 {
        return 0;
    }
    let online = entries(dir)
        .iter()
        .filter(|e| e.starts_with("memory"))
        .filter(|e| read_str(&dir.join(e).join("online")).as_deref() == Some("1"))
        .count() as u64;
    block * online
}

fn memory() -> Result<ResourcesMemory, ResourcesError> {
    let path = Path::new("/proc/meminfo");
    let mut info = parse_meminfo(&must("memory", path, std::fs::read_to_string(path))?);
    let blocks = online_block_memory(Path::new(SYS_MEMORY));
    if blocks > 0 {
        info.total = blocks;
    }
    let size = info.hugepages_size;
    let nodes = entries(Path::new(SYS_NODE))
        .into_iter()
        .filter_map(|e| {
            let dir = Path::new(SYS_NODE).join(&e);
            let number = e.strip_prefix("node")?.parse().ok()?;
            let node = parse_meminfo(&std::fs::read_to_string(dir.join("meminfo")).ok()?);
            let blocks = online_block_memory(&dir);
            Some(ResourcesMemoryNode {
                numa_node: number,
                hugepages_used: node.hugepages_total.saturating_sub(node.hugepages_free) * size,
                hugepages_total: node.hugepages_total * size,
                used: node.used,
                total: if blocks > 0 { blocks } else { node.total },
            })
        })
        .collect();
    Ok(ResourcesMemory {
        nodes,
        hugepages_total: info.hugepages_total * size,
        hugepages_used: info.hugepages_total.saturating_sub(info.hugepages_free) * size,
        hugepages_size: size,
        used: info
            .total
            .saturating_sub(info.free + info.cached + info.buffers),
        total: info.total,
    })
}

/// Vendor and product names of an `ids` file (`pci.ids`, `usb.ids`): vendor lines
/// `xxxx  Name`, their products indented by one tab.
pub struct IdsFile {
    vendors: HashMap<String, (String, HashMap<String, String>)>,
}

impl IdsFile {
    fn load(candidates: &[&str]) -> IdsFile {
        let text = candidates
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        IdsFile::parse(&text)
    }

    /// Parses the text of an ids file; class sections (`C xx`) and deeper levels are skipped.
    pub fn parse(text: &str) -> IdsFile {
        let mut vendors: HashMap<String, (String, HashMap<String, String>)> = HashMap::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let split = |l: &str| {
                l.split_once("  ")
                    .map(|(id, name)| (id.trim().to_lowercase(), name.trim().to_string()))
            };
            if let Some(rest) = line.strip_prefix('\t') {
                if rest.starts_with('\t') {
                    continue;
                }
                if let (Some(v), Some((id, name))) = (&current, split(rest)) {
                    if let Some(entry) = vendors.get_mut(v) {
                        entry.1.insert(id, name);
                    }
                }
                continue;
            }
            match split(line) {
                Some((id, name)) if id.len() == 4 && id.chars().all(|c| c.is_ascii_hexdigit()) => {
                    vendors.insert(id.clone(), (name, HashMap::new()));
                    current = Some(id);
                }
                _ => current = None,
            }
        }
        IdsFile { vendors }
    }

    /// The vendor's and the product's names, empty when unknown.
    pub fn names(&self, vendor: &str, product: &str) -> (String, String) {
        match self.vendors.get(&vendor.to_lowercase()) {
            Some((v, products)) => (
                v.clone(),
                products
                    .get(&product.to_lowercase())
                    .cloned()
                    .unwrap_or_default(),
            ),
            None => Default::default(),
        }
    }
}

/// PCI devices of `class` (`0x02` network, `0x03` display) the class listing did not find.
fn pci_devices_of_class<'a>(
    class: &'a str,
    known: &'a [String],
) -> impl Iterator<Item = (String, PathBuf)> + 'a {
    entries(Path::new(SYS_PCI))
        .into_iter()
        .filter(move |e| !known.contains(e))
        .filter_map(move |e| {
            let dir = Path::new(SYS_PCI).join(&e);
            read_str(&dir.join("class"))
                .filter(|c| c.starts_with(class))
                .map(|_| (e, dir))
        })
}

/// The SR-IOV counts of a device, when it has them.
fn sriov(device: &Path) -> Option<(u64, u64)> {
    if !exists(&device.join("sriov_numvfs")) {
        return None;
    }
    Some((
        read_u64(&device.join("sriov_numvfs")).unwrap_or(0),
        read_u64(&device.join("sriov_totalvfs")).unwrap_or(0),
    ))
}

/// The parent's PCI address of a virtual function.
fn physfn(device: &Path) -> Option<String> {
    std::fs::canonicalize(device.join("physfn"))
        .ok()
        .map(|p| base_name(&p))
}

/// Puts each virtual function under its parent card's SR-IOV entry; answers the cards and
/// their count, virtual functions included. `parts` gives a card's PCI address and, when it
/// has SR-IOV, its list of virtual functions.
fn with_vfs<C>(
    found: Vec<(PathBuf, C)>,
    parts: impl Fn(&mut C) -> (&String, Option<&mut Vec<C>>),
) -> (Vec<C>, u64) {
    let (mut cards, mut vfs): (Vec<C>, HashMap<String, Vec<C>>) = (Vec::new(), HashMap::new());
    for (device, card) in found {
        match physfn(&device) {
            Some(parent) => vfs.entry(parent).or_default().push(card),
            None => cards.push(card),
        }
    }
    let mut total = 0;
    for card in &mut cards {
        let (address, list) = parts(card);
        if let Some(list) = list {
            *list = vfs.remove(address.as_str()).unwrap_or_default();
            total += list.len() as u64;
        }
        total += 1;
    }
    (cards, total)
}

fn drm_info(device: &Path) -> Option<ResourcesGpuCardDrm> {
    let dir = device.join("drm");
    if !exists(&dir) {
        return None;
    }
    let mut drm = ResourcesGpuCardDrm::default();
    for e in entries(&dir) {
        let dev = read_str(&dir.join(&e).join("dev")).unwrap_or_default();
        if let Some(id) = e.strip_prefix("card").and_then(|n| n.parse().ok()) {
            drm.id = id;
            drm.card_name = e;
            drm.card_device = dev;
        } else if e.starts_with("controlD") {
            drm.control_name = e;
            drm.control_device = dev;
        } else if e.starts_with("renderD") {
            drm.render_name = e;
            drm.render_device = dev;
        }
    }
    Some(drm)
}

fn mdev_profiles(device: &Path) -> BTreeMap<String, ResourcesGpuCardMdev> {
    let dir = device.join("mdev_supported_types");
    entries(&dir)
        .into_iter()
        .map(|e| {
            let p = dir.join(&e);
            let mdev = ResourcesGpuCardMdev {
                api: read_str(&p.join("device_api")).unwrap_or_default(),
                available: read_u64(&p.join("available_instances")).unwrap_or(0),
                name: read_str(&p.join("name")).unwrap_or_default(),
                description: read_str(&p.join("description")).unwrap_or_default(),
                devices: entries(&p.join("devices")),
            };
            (e, mdev)
        })
        .collect()
}

fn gpu_card(device: &Path, ids: &IdsFile, kernel: &str, card: &mut ResourcesGpuCard) {
    // Some drivers nest the real device one level down.
    if device.join("device").is_dir() {
        return gpu_card(&device.join("device"), ids, kernel, card);
    }
    card.sriov = sriov(device).map(|(current_vfs, maximum_vfs)| ResourcesGpuCardSriov {
        current_vfs,
        maximum_vfs,
        vfs: Vec::new(),
    });
    card.numa_node = device_numa_node(device);
    if exists(&device.join("device").join("busnum")) {
        card.usb_address = usb_address(&device.join("device"));
    } else {
        card.vendor_id = read_id(&device.join("vendor"));
        card.product_id = read_id(&device.join("device"));
        (card.vendor, card.product) = ids.names(&card.vendor_id, &card.product_id);
    }
    (card.driver, card.driver_version) = driver(device, kernel);
    card.drm = drm_info(device);
    card.mdev = mdev_profiles(device);
}

fn gpu(ids: &IdsFile, kernel: &str) -> ResourcesGpu {
    // Cards only, not their connectors nor the render nodes.
    let listed = entries(Path::new(SYS_DRM))
        .into_iter()
        .map(|e| (Path::new(SYS_DRM).join(&e), e))
        .filter(|(dir, e)| e.starts_with("card") && exists(&dir.join("dev")))
        .map(|(dir, _)| dir.join("device"));
    let found = cards_of(
        listed,
        "0x03",
        |c: &mut ResourcesGpuCard| &mut c.pci_address,
        |device, card| gpu_card(device, ids, kernel, card),
    );
    let (cards, total) = with_vfs(found, |c| {
        (&c.pci_address, c.sriov.as_mut().map(|s| &mut s.vfs))
    });
    ResourcesGpu { cards, total }
}

/// The cards of one kind: the devices sysfs lists for it (a PCI device once however many
/// entries lead to it), then the PCI devices of `class` it did not list; each is filled in by
/// `fill`, its PCI address set through `address`.
fn cards_of<C: Default>(
    listed: impl Iterator<Item = PathBuf>,
    class: &str,
    address: fn(&mut C) -> &mut String,
    fill: impl Fn(&Path, &mut C),
) -> Vec<(PathBuf, C)> {
    let mut known: Vec<String> = Vec::new();
    let mut found = Vec::new();
    let mut add = |device: PathBuf, pci: String| {
        let mut card = C::default();
        *address(&mut card) = pci;
        fill(&device, &mut card);
        found.push((device, card));
    };
    for device in listed {
        let pci = pci_address(&device);
        if !pci.is_empty() {
            if known.contains(&pci) {
                continue;
            }
            known.push(pci.clone());
        }
        add(device, pci);
    }
    for (pci, device) in pci_devices_of_class(class, &known) {
        add(device, pci);
    }
    found
}

/// A port's protocol by its ARPHRD type.
fn protocol(kind: u64) -> &'static str {
    match kind {
        1 => "ethernet",
        19 => "ATM",
        32 => "infiniband",
        _ => "",
    }
}

fn network_card(device: &Path, ids: &IdsFile, kernel: &str, card: &mut ResourcesNetworkCard) {
    card.sriov = sriov(device).map(|(current_vfs, maximum_vfs)| ResourcesNetworkCardSriov {
        current_vfs,
        maximum_vfs,
        vfs: Vec::new(),
    });
    card.numa_node = device_numa_node(device);
    card.usb_address = usb_address(device);
    card.vendor_id = read_id(&device.join("vendor"));
    card.product_id = read_id(&device.join("device"));
    (card.vendor, card.product) = ids.names(&card.vendor_id, &card.product_id);
    (card.driver, card.driver_version) = driver(device, kernel);
    let net = device.join("net");
    card.ports = entries(&net)
        .into_iter()
        .map(|id| {
            let p = net.join(&id);
            // The link as sysfs shows it; LXD asks ethtool, which also knows supported modes.
            let up = read_u64(&p.join("carrier")) == Some(1);
            ResourcesNetworkCardPort {
                address: read_str(&p.join("address")).unwrap_or_default(),
                port: read_u64(&p.join("dev_port")).unwrap_or(0),
                protocol: read_u64(&p.join("type")).map_or("", protocol).to_string(),
                link_detected: up,
                link_speed: if up {
                    read_i64(&p.join("speed"))
                        .filter(|s| *s > 0)
                        .map_or(0, |s| s as u64)
                } else {
                    0
                },
                link_duplex: if up {
                    read_str(&p.join("duplex"))
                        .filter(|d| d != "unknown")
                        .unwrap_or_default()
                } else {
                    String::new()
                },
                id,
                ..Default::default()
            }
        })
        .collect();
}

fn network(ids: &IdsFile, kernel: &str) -> ResourcesNetwork {
    // Physical devices only: bridges, veths and loopback have no device.
    let listed = entries(Path::new(SYS_NET))
        .into_iter()
        .map(|e| Path::new(SYS_NET).join(e).join("device"))
        .filter(|device| exists(device));
    let found = cards_of(
        listed,
        "0x02",
        |c: &mut ResourcesNetworkCard| &mut c.pci_address,
        |device, card| network_card(device, ids, kernel, card),
    );
    let (cards, total) = with_vfs(found, |c| {
        (&c.pci_address, c.sriov.as_mut().map(|s| &mut s.vfs))
    });
    ResourcesNetwork { cards, total }
}

/// The link in `dir` (`/dev/disk/by-path`, `by-id`) that points at `/dev/<name>`.
fn disk_link(dir: &str, name: &str) -> String {
    let want = Path::new("/dev").join(name);
    entries(Path::new(dir))
        .into_iter()
        .rev()
        .find(|l| {
            std::fs::canonicalize(Path::new(dir).join(l))
                .ok()
                .as_deref()
                == Some(&*want)
        })
        .unwrap_or_default()
}

/// `E:KEY=VALUE` properties of a udev database entry.
fn udev_properties(device: &str) -> HashMap<String, String> {
    std::fs::read_to_string(format!("/run/udev/data/b{device}"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("E:")?.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Decodes udev's `\xNN` escapes.
fn udev_decode(s: &str) -> String {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') && i + 4 <= bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 2..i + 4], 16) {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn storage() -> ResourcesStorage {
    let all = entries(Path::new(SYS_BLOCK));
    let mut disks = Vec::new();
    for name in &all {
        let dir = Path::new(SYS_BLOCK).join(name);
        let device = dir.join("device");
        // Whole disks only: partitions and virtual devices have no device.
        if !exists(&device) {
            continue;
        }
        // Multipath members have no device node.
        let Some(dev) = read_str(&dir.join("dev")) else {
            continue;
        };
        let disk_type = std::fs::canonicalize(device.join("subsystem"))
            .map(|s| base_name(&s))
            .unwrap_or_default();
        // Ceph's rbd devices are not local disks.
        if disk_type == "rbd" {
            continue;
        }
        let mut disk = ResourcesStorageDisk {
            id: name.clone(),
            device: dev.clone(),
            model: read_str(&device.join("model")).unwrap_or_default(),
            disk_type,
            read_only: read_u64(&dir.join("ro")) == Some(1),
            size: read_u64(&dir.join("size")).unwrap_or(0) * 512,
            removable: read_u64(&dir.join("removable")) == Some(1),
            wwn: read_str(&dir.join("wwid")).unwrap_or_default(),
            numa_node: device_numa_node(&device),
            firmware_version: read_str(&device.join("firmware_rev")).unwrap_or_default(),
            pci_address: pci_address(&device),
            usb_address: usb_address(&device),
            device_path: disk_link("/dev/disk/by-path", name),
            device_id: disk_link("/dev/disk/by-id", name),
            // What LXD's BLKPBSZGET answers.
            block_size: read_u64(&dir.join("queue").join("physical_block_size")).unwrap_or(0),
            ..Default::default()
        };
        if name.starts_with("sr") && disk.removable {
            disk.disk_type = "cdrom".into();
            // Most drives report this size whatever the medium.
            if disk.size == 0x1fffff * 512 {
                disk.size = 0;
            }
        }
        disk.partitions = all
            .iter()
            .filter(|p| p.starts_with(name.as_str()))
            .filter_map(|p| {
                let pd = Path::new(SYS_BLOCK).join(p);
                Some(ResourcesStorageDiskPartition {
                    partition: read_u64(&pd.join("partition"))?,
                    id: p.clone(),
                    device: read_str(&pd.join("dev")).unwrap_or_default(),
                    read_only: read_u64(&pd.join("ro")) == Some(1),
                    size: read_u64(&pd.join("size")).unwrap_or(0) * 512,
                })
            })
            .collect();
        let udev = udev_properties(&dev);
        let prop = |k: &str| udev.get(k).filter(|v| !v.is_empty());
        if prop("ID_CDROM").map(String::as_str) == Some("1") {
            disk.disk_type = "cdrom".into();
        } else if prop("ID_USB_DRIVER").map(String::as_str) == Some("usb-storage") {
            disk.disk_type = "usb".into();
        } else if prop("ID_ATA_SATA").map(String::as_str) == Some("1") {
            disk.disk_type = "sata".into();
        }
        if let Some(rev) = prop("ID_REVISION").filter(|_| disk.firmware_version.is_empty()) {
            disk.firmware_version = rev.clone();
        }
        if let Some(serial) = prop("ID_SERIAL_SHORT") {
            disk.serial = serial.clone();
        }
        if let Some(model) = prop("ID_MODEL_ENC") {
            disk.model = udev_decode(model).trim().to_string();
        } else if let Some(model) = prop("ID_MODEL") {
            disk.model = model.clone();
        }
        disk.rpm = prop("ID_ATA_ROTATION_RATE_RPM")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if disk.rpm == 0 {
            // A rotating disk of unknown speed shows 1.
            disk.rpm = read_u64(&dir.join("queue").join("rotational")).unwrap_or(0);
        }
        disks.push(disk);
    }
    let total = disks.iter().map(|d| 1 + d.partitions.len() as u64).sum();
    ResourcesStorage { disks, total }
}

fn usb(ids: &IdsFile, kernel: &str) -> ResourcesUsb {
    let hex = |p: &Path| read_str(p).and_then(|s| u64::from_str_radix(&s, 16).ok());
    let devices: Vec<ResourcesUsbDevice> = entries(Path::new(SYS_USB))
        .into_iter()
        .filter_map(|e| {
            let dir = Path::new(SYS_USB).join(&e);
            let bus_address = read_u64(&dir.join("busnum"))?;
            // Hubs are left out.
            if hex(&dir.join("bDeviceClass")) == Some(9) {
                return None;
            }
            let vendor_id = read_id(&dir.join("idVendor"));
            let product_id = read_id(&dir.join("idProduct"));
            let (vendor, known_product) = ids.names(&vendor_id, &product_id);
            let interfaces = entries(&dir)
                .into_iter()
                .filter(|s| s.starts_with(e.as_str()) && dir.join(s).is_dir())
                .map(|s| {
                    let p = dir.join(s);
                    let (driver, driver_version) = driver(&p, kernel);
                    ResourcesUsbDeviceInterface {
                        class_id: hex(&p.join("bInterfaceClass")).unwrap_or(0),
                        subclass_id: hex(&p.join("bInterfaceSubClass")).unwrap_or(0),
                        number: hex(&p.join("bInterfaceNumber")).unwrap_or(0),
                        driver,
                        driver_version,
                        ..Default::default()
                    }
                })
                .collect();
            Some(ResourcesUsbDevice {
                bus_address,
                device_address: read_u64(&dir.join("devnum")).unwrap_or(0),
                interfaces,
                vendor,
                product: read_str(&dir.join("product")).unwrap_or(known_product),
                vendor_id,
                product_id,
                speed: read_str(&dir.join("speed"))
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0.0),
            })
        })
        .collect();
    ResourcesUsb {
        total: devices.len() as u64,
        devices,
    }
}

fn pci(ids: &IdsFile, kernel: &str) -> ResourcesPci {
    let devices: Vec<ResourcesPciDevice> = entries(Path::new(SYS_PCI))
        .into_iter()
        .map(|e| {
            let dir = Path::new(SYS_PCI).join(&e);
            let (driver, driver_version) = driver(&dir, kernel);
            let vendor_id = read_id(&dir.join("vendor"));
            let product_id = read_id(&dir.join("device"));
            let (vendor, product) = ids.names(&vendor_id, &product_id);
            ResourcesPciDevice {
                driver,
                driver_version,
                numa_node: device_numa_node(&dir),
                iommu_group: std::fs::read_link(dir.join("iommu_group"))
                    .ok()
                    .and_then(|l| base_name(&l).parse().ok())
                    .unwrap_or(0),
                pci_address: e,
                vendor,
                vendor_id,
                product,
                product_id,
                vpd: Default::default(),
            }
        })
        .collect();
    ResourcesPci {
        total: devices.len() as u64,
        devices,
    }
}

/// `physical`, `virtual-machine`, `container` or `unknown`, as `systemd-detect-virt` tells;
/// asked once.
fn system_type() -> String {
    static TYPE: OnceLock<String> = OnceLock::new();
    TYPE.get_or_init(|| {
        let detect = |flag: &str| {
            std::process::Command::new("systemd-detect-virt")
                .arg(flag)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
        };
        match (detect("--container"), detect("--vm")) {
            (Err(_), _) => "unknown",
            (Ok(s), _) if s.success() => "container",
            (_, Ok(s)) if s.success() => "virtual-machine",
            _ => "physical",
        }
        .to_string()
    })
    .clone()
}

/// An SMBIOS chassis type's name.
fn chassis_type(n: u64) -> &'static str {
    const NAMES: [&str; 36] = [
        "Other",
        "Unknown",
        "Desktop",
        "Low Profile Desktop",
        "Pizza Box",
        "Mini Tower",
        "Tower",
        "Portable",
        "Laptop",
        "Notebook",
        "Hand Held",
        "Docking Station",
        "All in One",
        "Sub Notebook",
        "Space-saving",
        "Lunch Box",
        "Main Server Chassis",
        "Expansion Chassis",
        "SubChassis",
        "Bus Expansion Chassis",
        "Peripheral Chassis",
        "RAID Chassis",
        "Rack Mount Chassis",
        "Sealed-case PC",
        "Multi-system chassis",
        "Compact PCI",
        "Advanced TCA",
        "Blade",
        "Blade Enclosure",
        "Tablet",
        "Convertible",
        "Detachable",
        "IoT Gateway",
        "Embedded PC",
        "Mini PC",
        "Stick PC",
    ];
    (n as usize)
        .checked_sub(1)
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("")
}

fn system() -> ResourcesSystem {
    let mut system = ResourcesSystem {
        system_type: system_type(),
        ..Default::default()
    };
    let dmi = Path::new(SYS_DMI);
    if !exists(dmi) {
        return system;
    }
    // Serial numbers and the UUID are readable by root only.
    let f = |name: &str| read_str(&dmi.join(name)).unwrap_or_default();
    system.uuid = f("product_uuid");
    system.vendor = f("sys_vendor");
    system.product = f("product_name");
    system.family = f("product_family");
    system.version = f("product_version");
    system.sku = f("product_sku");
    system.serial = f("product_serial");
    system.firmware = Some(ResourcesSystemFirmware {
        vendor: f("bios_vendor"),
        date: f("bios_date"),
        version: f("bios_version"),
    });
    system.chassis = Some(ResourcesSystemChassis {
        vendor: f("chassis_vendor"),
        chassis_type: read_u64(&dmi.join("chassis_type"))
            .map_or("", chassis_type)
            .to_string(),
        serial: f("chassis_serial"),
        version: f("chassis_version"),
    });
    system.motherboard = Some(ResourcesSystemMotherboard {
        vendor: f("board_vendor"),
        product: f("board_name"),
        serial: f("board_serial"),
        version: f("board_version"),
    });
    system
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUINFO: &str = "processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model name\t: Intel(R) Xeon(R) CPU E5-2683 v4 @ 2.10GHz
cpu MHz\t\t: 2100.000

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13

processor\t: 2
cpu\t\t: POWER9 (architected), altivec supported
";

    #[test]
    fn cpuinfo_gives_each_processor_its_vendor_and_name() {
        let info = parse_cpuinfo(CPUINFO);
        assert_eq!(info.len(), 3);
        assert_eq!(info[0].processor, 0);
        assert_eq!(info[0].vendor, "GenuineIntel");
        assert_eq!(info[0].name, "Intel(R) Xeon(R) CPU E5-2683 v4 @ 2.10GHz");
        assert_eq!(info[1].name, "AMD EPYC 7B13");
        assert_eq!(info[2].vendor, "");
        assert_eq!(info[2].name, "POWER9 (architected), altivec supported");
        assert!(parse_cpuinfo("").is_empty());
    }

    #[test]
    fn meminfo_reads_kilobytes_as_bytes_and_counts_as_counts() {
        let m = parse_meminfo(
            "MemTotal:       24683656 kB\nMemFree:         1000 kB\nMemAvailable:   5 kB\n\
Buffers:           10 kB\nCached:           20 kB\nHugePages_Total:       4\n\
HugePages_Free:        1\nHugepagesize:       2048 kB\nbroken line\n",
        );
        assert_eq!(m.total, 24683656 * 1024);
        assert_eq!(m.free, 1000 * 1024);
        assert_eq!((m.buffers, m.cached), (10 * 1024, 20 * 1024));
        assert_eq!((m.hugepages_total, m.hugepages_free), (4, 1));
        assert_eq!(m.hugepages_size, 2048 * 1024);
        let node = parse_meminfo("Node 0 MemTotal:  8 kB\nNode 0 MemUsed:   2 kB\n");
        assert_eq!((node.total, node.used), (8 * 1024, 2 * 1024));
    }

    #[test]
    fn cpusets_and_ids_files_parse() {
        assert_eq!(parse_cpuset("0-2,5"), Some(vec![0, 1, 2, 5]));
        assert_eq!(parse_cpuset(""), Some(vec![]));
        assert_eq!(parse_cpuset("x"), None);
        let ids = IdsFile::parse(
            "# comment\n8086  Intel Corporation\n\t1237  440FX - 82441FX PMC [Natoma]\n\
\t\t1af4 1100  Qemu virtual machine\n1af4  Red Hat, Inc.\n\t1000  Virtio network device\n\
C 00  Unclassified device\n\t00  Non-VGA unclassified device\n",
        );
        assert_eq!(
            ids.names("8086", "1237"),
            (
                "Intel Corporation".into(),
                "440FX - 82441FX PMC [Natoma]".into()
            )
        );
        assert_eq!(
            ids.names("1AF4", "1000"),
            ("Red Hat, Inc.".into(), "Virtio network device".into())
        );
        assert_eq!(
            ids.names("1af4", "9999"),
            ("Red Hat, Inc.".into(), String::new())
        );
        assert_eq!(ids.names("ffff", "0000"), Default::default());
        assert_eq!(
            udev_decode("QEMU\\x20HARDDISK\\x20\\x20"),
            "QEMU HARDDISK  "
        );
        assert_eq!(chassis_type(0xA), "Notebook");
        assert_eq!(chassis_type(0), "");
    }

    #[test]
    fn this_machine_reads_whole() {
        let r = read().unwrap();
        let threads: u64 = r
            .cpu
            .sockets
            .iter()
            .flat_map(|s| &s.cores)
            .map(|c| c.threads.len() as u64)
            .sum();
        assert_eq!(threads, r.cpu.total);
        assert!(r.cpu.total > 0);
        assert!(r.memory.total > 0 && r.memory.used <= r.memory.total);
        assert_eq!(r.pci.total, r.pci.devices.len() as u64);
    }
}
