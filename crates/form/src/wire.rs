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
