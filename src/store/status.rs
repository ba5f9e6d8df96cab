//! What a kiosk is doing, for `estation status` and (later) the fleet view:
//! the sync's own record (`CACHE/status.json`, written only by sync) and the
//! player's (`player.json` beside the cache, written only by the player),
//! and the push connection's (`push.json`, see [`PushStatus`]).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::core::feed::Digest;

/// Written by sync after each step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncStatus {
    /// The feed URL or folder last synced from.
    pub source: Option<String>,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Validators of the current manifest, for conditional GETs.
    pub manifest_etag: Option<String>,
    pub manifest_last_modified: Option<String>,
    /// The same for the warnings document (`alerts.json`).
    #[serde(default)]
    pub alerts_etag: Option<String>,
    #[serde(default)]
    pub alerts_last_modified: Option<String>,
    /// The version being downloaded, if any.
    pub pending: Option<Pending>,
    /// The server answered, but the newest manifest it has was built longer
    /// ago than `[feed] max_age`: the feed is frozen (nobody renews it, or
    /// someone replays an old one).
    #[serde(default)]
    pub frozen: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub version: u64,
    pub files: Vec<PendingFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingFile {
    pub sha256: Digest,
    pub size: u64,
    pub done: u64,
}

impl SyncStatus {
    /// Reads the status; a missing or unreadable file is an empty status
    /// (it is advisory: the cache itself is the truth).
    pub fn load(path: &Path) -> SyncStatus {
        std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::store::atomic::write(path, &bytes)
    }
}

/// The push connection's record, `push.json` beside the cache, written by
/// the push listener (`crate::net::push`) at every change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PushStatus {
    pub url: String,
    /// `connected`, `connecting` or `down`.
    pub state: String,
    pub since: Option<DateTime<Utc>>,
    pub topics: Vec<String>,
    pub notices: u64,
    pub last_notice_at: Option<DateTime<Utc>>,
    pub last_notice: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

impl PushStatus {
    pub fn path(cache_dir: &Path) -> PathBuf {
        cache_dir.with_file_name("push.json")
    }

    pub fn load(path: &Path) -> Option<PushStatus> {
        std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok())
    }

    /// Advisory, like [`SyncStatus`]: a failed write is logged, not fatal.
    pub fn save(&self, path: &Path) {
        let written = serde_json::to_vec_pretty(self).map_err(std::io::Error::other).and_then(|b| crate::store::atomic::write(path, &b));
        if let Err(e) = written {
            tracing::debug!("push: {}: {e}", path.display());
        }
    }
}

/// Written by the player when the item on screen changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlayerStatus {
    pub pid: u32,
    pub since: Option<DateTime<Utc>>,
    pub playlist: Option<String>,
    pub item: Option<String>,
    /// The feed version the programme came from (None: local files or demo).
    pub feed_version: Option<u64>,
    pub source: String,
    /// The sound output: playing on a device, or silent and why.
    #[serde(default)]
    pub sound: Option<String>,
    /// The display's power: on, off outside screen-on hours, or why it
    /// cannot be switched.
    #[serde(default)]
    pub display: Option<String>,
    /// The GPU adapter the player draws with.
    #[serde(default)]
    pub renderer: Option<RendererReport>,
    /// The warnings on screen (takeover or banner), by their store keys.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// A GPU adapter, as wgpu names it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RendererReport {
    /// `vulkan` or `gl`.
    pub backend: String,
    pub adapter: String,
    pub driver: String,
    /// Mesa's software renderer (lavapipe, llvmpipe): no GPU in use.
    pub software: bool,
}

impl RendererReport {
    /// One line: `vulkan on "NAME" (DRIVER, software)`.
    pub fn describe(&self) -> String {
        let mut what = vec![];
        if !self.driver.is_empty() {
            what.push(self.driver.as_str());
        }
        if self.software {
            what.push("software");
        }
        let tail = if what.is_empty() { String::new() } else { format!(" ({})", what.join(", ")) };
        format!("{} on \"{}\"{tail}", self.backend, self.adapter)
    }
}

impl PlayerStatus {
    pub fn path(cache_dir: &Path) -> PathBuf {
        cache_dir.with_file_name("player.json")
    }

    /// The player's record of which GPU adapter each start chose and
    /// whether it drew ([`crate::core::first_frame`]), beside `player.json`.
    pub fn first_frame_path(cache_dir: &Path) -> PathBuf {
        cache_dir.with_file_name("renderer-starts.json")
    }

    pub fn load(path: &Path) -> Option<PlayerStatus> {
        std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok())
    }

    /// Replaces the file by rename without fsync: it changes every item, and
    /// a kiosk's flash should not pay for a status that a power cut may lose.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
        std::io::Write::write_all(&mut tmp, &bytes)?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}
