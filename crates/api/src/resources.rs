//! `GET /1.0/resources`: what a member's hardware is, as LXD reads it from `/proc` and `/sys`
//! (API extensions `resources`, `resources_v2` and the `resources_*` ones that added fields).
//!
//! Every struct reads with missing fields and Go's `null` lists as empty, so a client can read
//! an answer from any LXD version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

fn zero(n: &u64) -> bool {
    *n == 0
}

/// The hardware of one member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Resources {
    /// Processors.
    pub cpu: ResourcesCpu,
    /// Memory.
    pub memory: ResourcesMemory,
    /// Graphics cards (`resources_gpu`).
    pub gpu: ResourcesGpu,
    /// Network cards (`resources_v2`).
    pub network: ResourcesNetwork,
    /// Disks (`resources_v2`).
    pub storage: ResourcesStorage,
    /// USB devices (`resources_usb_pci`).
    pub usb: ResourcesUsb,
    /// PCI devices (`resources_usb_pci`).
    pub pci: ResourcesPci,
    /// Firmware's description of the machine (`resources_system`).
    pub system: ResourcesSystem,
}

/// Processors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesCpu {
    /// Kernel architecture name, such as `x86_64`.
    pub architecture: String,
    /// Sockets, by number.
    #[serde(deserialize_with = "crate::nullable")]
    pub sockets: Vec<ResourcesCpuSocket>,
    /// Threads of all sockets and cores.
    pub total: u64,
}

/// One processor socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesCpuSocket {
    /// Product name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Vendor name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub vendor: String,
    /// Socket number.
    pub socket: u64,
    /// Caches.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::nullable"
    )]
    pub cache: Vec<ResourcesCpuCache>,
    /// Cores, by number.
    #[serde(deserialize_with = "crate::nullable")]
    pub cores: Vec<ResourcesCpuCore>,
    /// Average current frequency of the cores (MHz).
    #[serde(skip_serializing_if = "zero")]
    pub frequency: u64,
    /// Minimum frequency (MHz).
    #[serde(skip_serializing_if = "zero")]
    pub frequency_minimum: u64,
    /// Maximum frequency (MHz).
    #[serde(skip_serializing_if = "zero")]
    pub frequency_turbo: u64,
}

/// One processor cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesCpuCache {
    /// Level, usually 1 to 3.
    pub level: u64,
    /// `Data`, `Instruction`, `Unified`, ...
    #[serde(rename = "type")]
    pub cache_type: String,
    /// Bytes.
    pub size: u64,
}

/// One core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesCpuCore {
    /// Core number within its socket.
    pub core: u64,
    /// Die number (`resources_cpu_core_die`).
    pub die: u64,
    /// Threads.
    #[serde(deserialize_with = "crate::nullable")]
    pub threads: Vec<ResourcesCpuThread>,
    /// Current frequency (MHz).
    #[serde(skip_serializing_if = "zero")]
    pub frequency: u64,
}

/// One hardware thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesCpuThread {
    /// Kernel CPU number (used for pinning).
    pub id: i64,
    /// NUMA node (`resources_cpu_threads_numa`).
    pub numa_node: u64,
    /// Thread number within its core.
    pub thread: u64,
    /// Whether it is online.
    pub online: bool,
    /// Whether it is isolated from normal scheduling (`resource_cpu_isolated`).
    pub isolated: bool,
}

/// Memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesMemory {
    /// NUMA nodes (`resources_v2`).
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::nullable"
    )]
    pub nodes: Vec<ResourcesMemoryNode>,
    /// Huge pages in all (bytes).
    pub hugepages_total: u64,
    /// Huge pages in use (bytes).
    pub hugepages_used: u64,
    /// Size of one huge page (bytes).
    pub hugepages_size: u64,
    /// In use, without caches and buffers (bytes).
    pub used: u64,
    /// In all (bytes).
    pub total: u64,
}

/// Memory of one NUMA node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesMemoryNode {
    /// Node number.
    pub numa_node: u64,
    /// Huge pages in use (bytes).
    pub hugepages_used: u64,
    /// Huge pages in all (bytes).
    pub hugepages_total: u64,
    /// In use (bytes).
    pub used: u64,
    /// In all (bytes).
    pub total: u64,
}

/// Graphics cards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesGpu {
    /// Cards.
    #[serde(deserialize_with = "crate::nullable")]
    pub cards: Vec<ResourcesGpuCard>,
    /// Cards, virtual functions included.
    pub total: u64,
}

/// One graphics card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesGpuCard {
    /// Kernel driver.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// Driver version (the kernel's when the module has none).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver_version: String,
    /// DRM devices, when the host uses the card.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drm: Option<ResourcesGpuCardDrm>,
    /// SR-IOV, when the card has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sriov: Option<ResourcesGpuCardSriov>,
    /// NVIDIA's own details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nvidia: Option<serde_json::Value>,
    /// Mediated device profiles (`resources_gpu_mdev`).
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "crate::nullable"
    )]
    pub mdev: BTreeMap<String, ResourcesGpuCardMdev>,
    /// NUMA node.
    pub numa_node: u64,
    /// PCI address.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pci_address: String,
    /// Vendor name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub vendor: String,
    /// PCI vendor id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub vendor_id: String,
    /// Product name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub product: String,
    /// PCI product id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub product_id: String,
    /// USB address `bus:device`, for USB cards (`resources_gpu_usb`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub usb_address: String,
}

/// A graphics card's DRM devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesGpuCardDrm {
    /// Card number.
    pub id: u64,
    /// Card device name, such as `card0`.
    pub card_name: String,
    /// Card device number, such as `226:0`.
    pub card_device: String,
    /// Control device name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub control_name: String,
    /// Control device number.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub control_device: String,
    /// Render device name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub render_name: String,
    /// Render device number.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub render_device: String,
}

/// A graphics card's SR-IOV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesGpuCardSriov {
    /// Virtual functions configured.
    pub current_vfs: u64,
    /// Virtual functions possible.
    pub maximum_vfs: u64,
    /// The virtual functions, as cards.
    #[serde(deserialize_with = "crate::nullable")]
    pub vfs: Vec<ResourcesGpuCard>,
}

/// One mediated device profile of a graphics card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesGpuCardMdev {
    /// Device API, such as `vfio-pci`.
    pub api: String,
    /// Devices of this profile that can still be made.
    pub available: u64,
    /// Profile name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Profile description.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// UUIDs of the devices made.
    #[serde(deserialize_with = "crate::nullable")]
    pub devices: Vec<String>,
}

/// Network cards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesNetwork {
    /// Cards.
    #[serde(deserialize_with = "crate::nullable")]
    pub cards: Vec<ResourcesNetworkCard>,
    /// Cards, virtual functions included.
    pub total: u64,
}

/// One network card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesNetworkCard {
    /// Kernel driver.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// Driver version (the kernel's when the module has none).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver_version: String,
    /// Ports.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::nullable"
    )]
    pub ports: Vec<ResourcesNetworkCardPort>,
    /// SR-IOV, when the card has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sriov: Option<ResourcesNetworkCardSriov>,
    /// NUMA node.
    pub numa_node: u64,
    /// PCI address.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pci_address: String,
    /// Vendor name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub vendor: String,
    /// PCI vendor id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub vendor_id: String,
    /// Product name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub product: String,
    /// PCI product id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub product_id: String,
    /// Firmware version (`resources_network_firmware`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub firmware_version: String,
    /// USB address `bus:device`, for USB cards (`resources_network_usb`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub usb_address: String,
}

/// One port of a network card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesNetworkCardPort {
    /// Interface name.
    pub id: String,
    /// MAC address.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// Port number.
    pub port: u64,
    /// `ethernet`, `infiniband`, ...
    pub protocol: String,
    /// Supported link modes.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::nullable"
    )]
    pub supported_modes: Vec<String>,
    /// Supported port types.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::nullable"
    )]
    pub supported_ports: Vec<String>,
    /// Current port type.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub port_type: String,
    /// Transceiver type.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub transceiver_type: String,
    /// Whether the link is negotiated.
    pub auto_negotiation: bool,
    /// Whether a link is up.
    pub link_detected: bool,
    /// Link speed (Mbit/s).
    #[serde(skip_serializing_if = "zero")]
    pub link_speed: u64,
    /// `full` or `half`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub link_duplex: String,
    /// Infiniband devices (`resources_infiniband`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub infiniband: Option<serde_json::Value>,
}

/// A network card's SR-IOV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesNetworkCardSriov {
    /// Virtual functions configured.
    pub current_vfs: u64,
    /// Virtual functions possible.
    pub maximum_vfs: u64,
    /// The virtual functions, as cards.
    #[serde(deserialize_with = "crate::nullable")]
    pub vfs: Vec<ResourcesNetworkCard>,
}

/// Disks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesStorage {
    /// Disks.
    #[serde(deserialize_with = "crate::nullable")]
    pub disks: Vec<ResourcesStorageDisk>,
    /// Disks and partitions.
    pub total: u64,
}

/// One disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesStorageDisk {
    /// Device name, such as `nvme0n1`.
    pub id: String,
    /// Device number, such as `259:0`.
    pub device: String,
    /// Model name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub model: String,
    /// Bus or kind: `nvme`, `scsi`, `sata`, `usb`, `cdrom`, ...
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub disk_type: String,
    /// Whether it is read-only.
    pub read_only: bool,
    /// Bytes.
    pub size: u64,
    /// Whether it is removable.
    pub removable: bool,
    /// WWN identifier.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub wwn: String,
    /// NUMA node.
    pub numa_node: u64,
    /// Name in `/dev/disk/by-path` (`resources_disk_sata`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub device_path: String,
    /// Physical block size (`resources_disk_sata`).
    pub block_size: u64,
    /// Firmware version (`resources_disk_sata`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub firmware_version: String,
    /// Rotation speed; 1 for a rotating disk of unknown speed (`resources_disk_sata`).
    pub rpm: u64,
    /// Serial number (`resources_disk_sata`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub serial: String,
    /// Name in `/dev/disk/by-id` (`resources_disk_id`).
    pub device_id: String,
    /// Partitions.
    #[serde(deserialize_with = "crate::nullable")]
    pub partitions: Vec<ResourcesStorageDiskPartition>,
    /// PCI address (`resources_disk_address`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pci_address: String,
    /// USB address `bus:device` (`resources_disk_address`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub usb_address: String,
}

/// One partition of a disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesStorageDiskPartition {
    /// Device name, such as `nvme0n1p1`.
    pub id: String,
    /// Device number.
    pub device: String,
    /// Whether it is read-only.
    pub read_only: bool,
    /// Bytes.
    pub size: u64,
    /// Partition number.
    pub partition: u64,
}

/// USB devices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesUsb {
    /// Devices, hubs left out.
    #[serde(deserialize_with = "crate::nullable")]
    pub devices: Vec<ResourcesUsbDevice>,
    /// Devices.
    pub total: u64,
}

/// One USB device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesUsbDevice {
    /// Bus number.
    pub bus_address: u64,
    /// Device number on the bus.
    pub device_address: u64,
    /// Interfaces.
    #[serde(deserialize_with = "crate::nullable")]
    pub interfaces: Vec<ResourcesUsbDeviceInterface>,
    /// Vendor name.
    pub vendor: String,
    /// USB vendor id.
    pub vendor_id: String,
    /// Product name.
    pub product: String,
    /// USB product id.
    pub product_id: String,
    /// Transfer speed (Mbit/s).
    pub speed: f64,
}

/// One interface of a USB device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesUsbDeviceInterface {
    /// Class name.
    pub class: String,
    /// Class id.
    pub class_id: u64,
    /// Kernel driver.
    pub driver: String,
    /// Driver version.
    pub driver_version: String,
    /// Interface number.
    pub number: u64,
    /// Subclass name.
    pub subclass: String,
    /// Subclass id.
    pub subclass_id: u64,
}

/// PCI devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesPci {
    /// Devices.
    #[serde(deserialize_with = "crate::nullable")]
    pub devices: Vec<ResourcesPciDevice>,
    /// Devices.
    pub total: u64,
}

/// One PCI device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesPciDevice {
    /// Kernel driver.
    pub driver: String,
    /// Driver version.
    pub driver_version: String,
    /// NUMA node.
    pub numa_node: u64,
    /// PCI address.
    pub pci_address: String,
    /// Vendor name.
    pub vendor: String,
    /// PCI vendor id.
    pub vendor_id: String,
    /// Product name.
    pub product: String,
    /// PCI product id.
    pub product_id: String,
    /// IOMMU group (`resources_pci_iommu`).
    pub iommu_group: u64,
    /// Vital product data (`resources_pci_vpd`).
    pub vpd: ResourcesPciVpd,
}

/// Vital product data of a PCI device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesPciVpd {
    /// Product name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub product_name: String,
    /// Vendor entries.
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "crate::nullable"
    )]
    pub entries: BTreeMap<String, String>,
}

/// The machine, as its firmware describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesSystem {
    /// System UUID.
    pub uuid: String,
    /// Vendor.
    pub vendor: String,
    /// Model.
    pub product: String,
    /// Family.
    pub family: String,
    /// Version.
    pub version: String,
    /// Manufacturer's SKU.
    pub sku: String,
    /// Serial number.
    pub serial: String,
    /// `physical`, `virtual-machine`, `container` or `unknown`.
    #[serde(rename = "type")]
    pub system_type: String,
    /// Firmware.
    pub firmware: Option<ResourcesSystemFirmware>,
    /// Chassis.
    pub chassis: Option<ResourcesSystemChassis>,
    /// Motherboard.
    pub motherboard: Option<ResourcesSystemMotherboard>,
}

/// The machine's firmware.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesSystemFirmware {
    /// Vendor.
    pub vendor: String,
    /// Build date.
    pub date: String,
    /// Version.
    pub version: String,
}

/// The machine's chassis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesSystemChassis {
    /// Vendor.
    pub vendor: String,
    /// Type, by its SMBIOS name (`Notebook`, `Rack Mount Chassis`, ...).
    #[serde(rename = "type")]
    pub chassis_type: String,
    /// Serial number.
    pub serial: String,
    /// Version.
    pub version: String,
}

/// The machine's motherboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourcesSystemMotherboard {
    /// Vendor.
    pub vendor: String,
    /// Model.
    pub product: String,
    /// Serial number.
    pub serial: String,
    /// Version.
    pub version: String,
}

/// `GET /1.0/projects/{name}/state` (`project_usage`): limits and usage by resource
/// (`containers`, `cpu`, `disk`, `instances`, `memory`, `networks`, `processes`,
/// `virtual-machines`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProjectState {
    /// Limits and usage by resource name.
    #[serde(default, deserialize_with = "crate::nullable")]
    pub resources: BTreeMap<String, ProjectStateResource>,
}

/// One resource's limit and usage in a project. LXD's names are capitalised (its Go struct
/// has no JSON tags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProjectStateResource {
    /// The limit, -1 for none.
    #[serde(rename = "Limit", default)]
    pub limit: i64,
    /// Current usage.
    #[serde(rename = "Usage", default)]
    pub usage: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lxd_answers_with_nulls_and_writes_go_omitempty() {
        let lxd = r#"{"cpu":{"architecture":"x86_64","sockets":[{"socket":0,"cores":[{"core":0,"die":0,"threads":[{"id":0,"numa_node":0,"thread":0,"online":true,"isolated":false}]}]}],"total":1},
            "memory":{"hugepages_total":0,"hugepages_used":0,"hugepages_size":2097152,"used":1,"total":2},
            "gpu":{"cards":null,"total":0},"usb":{"devices":[{"bus_address":1,"device_address":2,"interfaces":null,"vendor":"","vendor_id":"1d6b","product":"","product_id":"0002","speed":480}],"total":1}}"#;
        let r: Resources = serde_json::from_str(lxd).unwrap();
        assert_eq!(r.cpu.total, 1);
        assert!(r.gpu.cards.is_empty());
        assert!(r.usb.devices[0].interfaces.is_empty());
        let back = serde_json::to_value(&r).unwrap();
        assert!(back["cpu"]["sockets"][0].get("name").is_none(), "{back}");
        assert!(
            back["cpu"]["sockets"][0].get("frequency").is_none(),
            "{back}"
        );
        assert!(back["memory"].get("nodes").is_none(), "{back}");
        assert_eq!(back["system"]["firmware"], serde_json::Value::Null);
        assert_eq!(back["pci"]["devices"], serde_json::json!([]));
    }

    #[test]
    fn project_state_uses_lxd_capitalised_names() {
        let s: ProjectState =
            serde_json::from_str(r#"{"resources":{"containers":{"Limit":-1,"Usage":0}}}"#).unwrap();
        assert_eq!(s.resources["containers"].limit, -1);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"resources":{"containers":{"Limit":-1,"Usage":0}}}"#
        );
    }
}
