//! LXD's REST wire types, as rxd speaks them: the response envelope, servers, cluster members,
//! operations, events, certificates, storage pools, networks, profiles, projects (and their usage),
//! warnings, the host's hardware resources, the `lxd init` preseed,
//! join tokens and the API extension list.
//!
//! This crate does no I/O and knows nothing of how the daemon stores or serves these types.
#![deny(missing_docs)]

mod certificate;
mod cluster;
pub mod config_keys;
mod encoding;
mod envelope;
mod event;
mod extensions;
pub mod names;
mod network;
mod operation;
mod preseed;
mod profile;
mod resources;
mod server;
mod storage;
mod token;
mod units;
mod warning;

pub use certificate::{Certificate, CertificatePut, CertificatesPost};
pub use cluster::{
    Cluster, ClusterCertificatePut, ClusterGroup, ClusterGroupPost, ClusterGroupPut,
    ClusterGroupsPost, ClusterMember, ClusterMemberConfigKey, ClusterMemberPut, ClusterMembersPost,
    ClusterPut,
};
pub use encoding::decode_base64;
pub use envelope::{etag, Response, ResponseType};
pub use event::{Event, EventLifecycle, EventLogging, Requestor};
pub use extensions::API_EXTENSIONS;
pub use network::NETWORK_MEMBER_KEYS;
pub use network::{
    Network, NetworkLease, NetworkPost, NetworkPut, NetworkState, NetworkStateAddress,
    NetworkStateBond, NetworkStateBridge, NetworkStateCounters, NetworkStateVlan, NetworksPost,
};
pub use operation::{Operation, OperationStatus};
pub use preseed::{InitClusterPreseed, InitNetwork, InitPreseed, InitProject};
pub use profile::{Profile, ProfilePost, ProfilePut, ProfilesPost, Project};
pub use resources::{
    ProjectState, ProjectStateResource, Resources, ResourcesCpu, ResourcesCpuCache,
    ResourcesCpuCore, ResourcesCpuSocket, ResourcesCpuThread, ResourcesGpu, ResourcesGpuCard,
    ResourcesGpuCardDrm, ResourcesGpuCardMdev, ResourcesGpuCardSriov, ResourcesMemory,
    ResourcesMemoryNode, ResourcesNetwork, ResourcesNetworkCard, ResourcesNetworkCardPort,
    ResourcesNetworkCardSriov, ResourcesPci, ResourcesPciDevice, ResourcesPciVpd, ResourcesStorage,
    ResourcesStorageDisk, ResourcesStorageDiskPartition, ResourcesSystem, ResourcesSystemChassis,
    ResourcesSystemFirmware, ResourcesSystemMotherboard, ResourcesUsb, ResourcesUsbDevice,
    ResourcesUsbDeviceInterface,
};
pub use server::{Server, ServerEnvironment, ServerPut, ServerStorageDriverInfo};
pub use storage::POOL_MEMBER_KEYS;
pub use storage::{
    ResourcesStoragePool, ResourcesStoragePoolUsage, StoragePool, StoragePoolPut, StoragePoolsPost,
};
pub use token::{CertificateAddToken, JoinToken, TokenError};
pub use units::parse_size;
pub use warning::{Warning, WarningPut, WarningType};

/// String-to-string configuration, as LXD keeps it.
pub type Config = std::collections::BTreeMap<String, String>;
/// Devices by name.
pub type Devices = std::collections::BTreeMap<String, Config>;

/// Go clients send `null` for empty maps and lists; it reads as the empty value.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    use serde::Deserialize;
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
