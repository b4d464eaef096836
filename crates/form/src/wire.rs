//! The bodies of the daemon's formation endpoints, shared by the daemon and the joiner's side
//! ([`crate::joiner`]). The window is opened, shown and aborted by root on the unix socket
//! (`POST`, `GET`, `DELETE /internal/form`); a joiner speaks to `/internal/form/<id>/hello`,
//! `/confirm` (the [`crate::trust`] messages) and, once confirmed, `/facts` over HTTPS.

use serde::{Deserialize, Serialize};

use crate::planner::Facts;

/// The window's own path (unix socket only).
pub const WINDOW_PATH: &str = "/internal/form";

/// The path of a joiner's [`crate::trust::Hello`].
pub fn hello_path(window_id: &str) -> String {
    format!("{WINDOW_PATH}/{window_id}/hello")
}

/// The path of a joiner's [`crate::trust::Confirm`].
pub fn confirm_path(window_id: &str) -> String {
    format!("{WINDOW_PATH}/{window_id}/confirm")
}

/// The path of a confirmed joiner's [`Facts`].
pub fn facts_path(window_id: &str) -> String {
    format!("{WINDOW_PATH}/{window_id}/facts")
}

/// `POST /internal/form`: open a window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WindowPost {
    /// This server's name in the formation (SPAKE2 identity B).
    pub name: String,
    /// The passphrase, at least [`crate::trust::MIN_PRESEED_CHARS`] characters; empty: one is
    /// generated and answered once.
    pub passphrase: String,
    /// How long the window stays open (`90s`, `30m`, `1h`); empty: 30 minutes.
    pub window: String,
    /// The `core.https_address` this server had before `rxd form` set one, put back if the
    /// formation fails (even after a restart of the daemon).
    pub listened_before: String,
}

/// `POST /internal/form/undo` (root, unix socket, on a joiner): after a formation was
/// aborted, leave the cluster it joined, the one serving `cluster_fingerprint`.
pub const UNDO_PATH: &str = "/internal/form/undo";

/// The body of [`UNDO_PATH`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UndoPost {
    /// The certificate fingerprint of the formation's cluster.
    pub cluster_fingerprint: String,
}

/// The answer to [`WindowPost`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowOpened {
    /// The window id.
    pub id: String,
    /// The fingerprint of the certificate this server serves, for joiners to compare.
    pub fingerprint: String,
    /// The generated passphrase, when none was given; shown to the operator once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<String>,
    /// Seconds until the window expires.
    pub expires_in: u64,
}

/// `GET /internal/form`: the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowState {
    /// Its id.
    pub id: String,
    /// This server's name.
    pub name: String,
    /// The fingerprint of the certificate this server serves.
    pub fingerprint: String,
    /// Its phase (`Open`, `Collecting`, …, `Aborted`).
    pub phase: String,
    /// Seconds until it expires (0 once closed).
    pub expires_in: u64,
    /// Why it was aborted, once it is.
    #[serde(default)]
    pub abort_reason: Option<String>,
    /// The joiners trusted so far, by name.
    #[serde(default)]
    pub joiners: Vec<JoinerState>,
}

/// A trusted joiner as the window shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinerState {
    /// Its name.
    pub name: String,
    /// Its certificate's fingerprint, pinned at confirmation.
    pub fingerprint: String,
    /// The address its exchange came from.
    pub address: String,
    /// What it reported, once it did.
    #[serde(default)]
    pub facts: Option<Facts>,
}

/// The path of the window's public advertisement over HTTPS (`GET`, anyone, while a window
/// is open): what DNS-SD advertises, for a joiner given `--initiator-address`.
pub const ADVERT_PATH: &str = "/internal/form/advert";

/// The path of this server's own facts (`GET ?name=NAME`, root on the unix socket).
pub const FACTS_PATH: &str = "/internal/form/facts";

/// The path that starts the formation (`POST`, root on the unix socket).
pub const COMMIT_PATH: &str = "/internal/form/commit";

/// The path where a confirmed joiner asks what to do next.
pub fn instruction_path(window_id: &str) -> String {
    format!("{WINDOW_PATH}/{window_id}/instruction")
}

/// The path where a confirmed joiner reports a step's outcome.
pub fn report_path(window_id: &str) -> String {
    format!("{WINDOW_PATH}/{window_id}/report")
}

/// `GET` [`ADVERT_PATH`]: the open window, nothing secret (the same as its DNS-SD TXT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvertBody {
    /// The initiator's name.
    pub name: String,
    /// The formation protocol's version.
    pub version: String,
    /// The window id.
    pub id: String,
    /// The first 16 hexadecimal characters of the initiator's certificate fingerprint.
    pub fingerprint: String,
}

/// What the initiator tells a confirmed joiner to do next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "lowercase")]
pub enum Instruction {
    /// Nothing yet: ask again.
    Wait,
    /// Listen on `address` and report which of `probe` answer.
    Prepare {
        /// This server's planned cluster address.
        address: String,
        /// The other members' planned addresses.
        probe: Vec<String>,
        /// For a new cluster, the fingerprint of the certificate the initiator serves once
        /// the cluster exists (to be accepted besides the one confirmed); empty otherwise.
        #[serde(default)]
        cluster_fingerprint: String,
    },
    /// Join the cluster with this `rxd init` cluster section.
    Join {
        /// The cluster section of a join preseed: the address, a one-time token, the
        /// member-specific values.
        cluster: rxd_api::InitClusterPreseed,
    },
    /// The formation was aborted: undo what was prepared and stop.
    Abort {
        /// Why, in words.
        reason: String,
    },
    /// The cluster is formed.
    Done,
}

/// A joiner's report of the step it was told to take.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StepReport {
    /// The step (`prepare` or `join`).
    pub step: String,
    /// Empty on success, else why it failed.
    pub error: String,
    /// After `prepare`: the probed addresses that answered.
    pub reaches: Vec<String>,
}

/// `POST` [`COMMIT_PATH`]: the operator's answers (the formation preseed's sections) and
/// whether to stop after printing the plan.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CommitPost {
    /// The answers, as the formation preseed holds them.
    pub preseed: crate::preseed::FormPreseed,
    /// Only plan and answer the plan's text.
    pub dry_run: bool,
}
