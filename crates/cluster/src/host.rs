//! The narrow interface membership needs from the daemon that runs it, and the state it keeps
//! there ([`Membership`]).
//!
//! The daemon implements [`Host`]; every step of this crate takes a `&H: Host` (or an
//! `Arc<H>` when it runs aside) and nothing else of the daemon.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rxd_api::ClusterMemberConfigKey;
use rxd_db::tables::{self, Config, Member};
use rxd_raft::ReplicatedDb;
use rxd_tls::CertKey;
use serde::{Deserialize, Serialize};

use crate::heartbeat::Liveness;
use crate::{Error, Result, RoleLimits};

/// The cluster configuration membership acts on, read by the daemon (which owns the keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `cluster.offline_threshold`: a member not heard from for longer is offline.
    pub offline_threshold: Duration,
    /// `cluster.max_voters` and `cluster.max_standby`.
    pub limits: RoleLimits,
}

/// Membership's own state in the daemon: liveness, the lock every membership change holds, and
/// the call for an early heartbeat round.
#[derive(Default)]
pub struct Membership {
    /// When each member was last heard from.
    pub liveness: Liveness,
    /// Held by every raft membership change (join, removal, rebalancing, a certificate
    /// rotation), one at a time.
    pub changes: tokio::sync::Mutex<()>,
    /// Notified to run a heartbeat round at once (after a membership change).
    pub heartbeat_now: tokio::sync::Notify,
    /// The leader's heartbeat rounds so far, for metrics.
    pub rounds: HeartbeatRounds,
}

/// The heartbeat rounds this member sent as the leader.
#[derive(Debug, Default)]
pub struct HeartbeatRounds {
    count: std::sync::atomic::AtomicU64,
    last_micros: std::sync::atomic::AtomicU64,
}

impl HeartbeatRounds {
    /// Records a round that took `took`, from its first send to the last answer.
    pub fn record(&self, took: Duration) {
        use std::sync::atomic::Ordering;
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.last_micros.store(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// How many rounds, and how long the last one took.
    pub fn view(&self) -> (u64, Duration) {
        use std::sync::atomic::Ordering;
        (
            self.count.load(Ordering::Relaxed),
            Duration::from_micros(self.last_micros.load(Ordering::Relaxed)),
        )
    }
}

/// This member's sides of the cluster's pools and networks that a join made, recorded before
/// each is made so that a failure or a crash removes it again.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSides {
    /// Pool sides made here: name, driver, member config.
    #[serde(default)]
    pub pools_made: Vec<(String, String, Config)>,
    /// Network sides made here.
    #[serde(default)]
    pub networks_made: Vec<String>,
}

/// The member-specific keys of the sides a joiner prepared, as the leader records them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PreparedSides {
    /// Per storage pool.
    pub storage_pools: BTreeMap<String, Config>,
    /// Per managed network.
    pub networks: BTreeMap<String, Config>,
}

/// The join's journal as the member-side step sees it: the record of sides made so far, and
/// a way to write it to disk before the next side is made.
pub trait SidesJournal: Send {
    /// The sides made so far.
    fn sides(&mut self) -> &mut MemberSides;
    /// Writes the journal (temp file, fsync, rename).
    fn save(&self) -> Result<()>;
}

/// What membership needs of the daemon.
pub trait Host: Send + Sync + 'static {
    /// The data directory.
    fn dir(&self) -> &Path;
    /// The host name (the cluster certificate's subject).
    fn hostname(&self) -> &str;
    /// The replicated database.
    fn db(&self) -> ReplicatedDb;
    /// This member's raft node id, which is also its member id.
    fn node_id(&self) -> u64 {
        self.db().status().id
    }
    /// Opens the replicated database of node `id` in `database/global`.
    fn open_db(
        &self,
        id: u64,
    ) -> impl Future<Output = std::result::Result<ReplicatedDb, rxd_raft::RaftError>> + Send;
    /// Swaps in another replicated database (joining replaces the standalone one).
    fn replace_db(&self, db: ReplicatedDb);
    /// This member's own certificate.
    fn server_cert(&self) -> &CertKey;
    /// The cluster certificate, once clustered.
    fn cluster_cert(&self) -> Option<CertKey>;
    /// Serves `cert` on HTTPS from the next connection on, and remembers it as the cluster's
    /// (`None`: this member's own certificate again).
    fn set_cluster_cert(&self, cert: Option<CertKey>) -> Result<()>;
    /// The cluster certificate a bootstrap is to use when one was made ahead of it (a
    /// formation tells its joiners the fingerprint before the cluster exists); `None`: the
    /// bootstrap makes a new one.
    fn staged_cluster_cert(&self) -> Option<CertKey> {
        None
    }
    /// The fingerprints a member-to-member call accepts from the other member.
    fn peer_pins(&self) -> Vec<String>;
    /// Trusts these member fingerprints until the replica knows them (while joining).
    fn set_pending_trust(&self, fingerprints: Vec<String>);
    /// This member's local configuration.
    fn local_config(&self) -> Result<Config>;
    /// Changes local keys (`None` removes one).
    fn update_local(&self, changes: &[(&str, Option<&str>)]) -> Result<()>;
    /// (Re)binds the HTTPS listener to `address`, or closes it for "".
    fn set_https_address(&self, address: &str) -> impl Future<Output = Result<()>> + Send;
    /// Membership's state.
    fn membership(&self) -> &Membership;
    /// The cluster configuration membership acts on.
    fn settings(&self) -> impl Future<Output = Settings> + Send;
    /// This host's architecture, as `GET /1.0` names it.
    fn architecture(&self) -> String;
    /// The member name events and operations carry from now on (`none` when standalone).
    fn set_location(&self, name: &str);
    /// On the leader, after each heartbeat round: the members and the threshold the round
    /// judged them by (the daemon raises or resolves its offline-member warnings).
    fn heartbeats_sent(self: Arc<Self>, members: &[Member], threshold: Duration);
    /// The member-specific keys this member holds for the cluster's pools and networks.
    fn member_config(&self) -> impl Future<Output = Result<Vec<ClusterMemberConfigKey>>> + Send;
    /// On a joiner: makes this member's side of every pool and network the cluster at
    /// `cluster` has created, with the values of `member_config`, recording each in `journal`
    /// before it is made.
    fn prepare_member_sides<'a>(
        &'a self,
        cluster: &'a rxd_client::Client,
        member_config: &'a [ClusterMemberConfigKey],
        journal: &'a mut dyn SidesJournal,
    ) -> impl Future<Output = Result<PreparedSides>> + Send + 'a;
    /// The sides of the cluster's pools this member holds (a removed member drops them).
    fn own_sides(&self) -> impl Future<Output = MemberSides> + Send;
    /// Removes the sides in `sides` from this host.
    fn undo_member_sides(&self, sides: &MemberSides) -> impl Future<Output = ()> + Send;
}

/// This member's row, by raft node id, from the local replica.
pub async fn own_member<H: Host + ?Sized>(h: &H) -> Result<Member> {
    let id = h.node_id();
    let members = h.db().read_local(tables::members).await?;
    members
        .into_iter()
        .find(|m| m.id == id)
        .ok_or_else(|| Error::internal("This member has no row in the cluster database"))
}

/// Whether this server is part of a cluster.
pub async fn is_clustered<H: Host + ?Sized>(h: &H) -> Result<bool> {
    Ok(own_member(h).await?.name != "none")
}

/// The local key that records this member's raft node id.
pub const NODE_ID_KEY: &str = "internal.raft_node_id";
