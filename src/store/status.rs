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

/// What the status overlay says (`estation command overlay`): what is on
/// screen, the feed, the last sync and push, one line each, for someone
/// standing at the screen with the office on the phone.
pub fn overlay_lines(player: Option<&PlayerStatus>, sync: &SyncStatus, push: Option<&PushStatus>) -> Vec<String> {
    let when = |t: Option<DateTime<Utc>>| t.map_or("从未".to_string(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string());
    let mut lines = Vec::new();
    if let Some(p) = player {
        let version = p.feed_version.map_or_else(|| "本地节目".to_string(), |v| format!("第 {v} 版"));
        lines.push(format!("节目：{version}，{} / {}", p.playlist.as_deref().unwrap_or("-"), p.item.as_deref().unwrap_or("-")));
        if !p.warnings.is_empty() {
            lines.push(format!("预警：{}", p.warnings.join("，")));
        }
        if let Some(r) = &p.renderer {
            lines.push(format!("画面：{}", r.describe()));
        }
        if let Some(s) = &p.sound {
            lines.push(format!("声音：{s}"));
        }
    }
    lines.push(format!("同步：上次成功 {}（{}）", when(sync.last_success), sync.source.as_deref().unwrap_or("未配置")));
    if let Some(e) = &sync.last_error {
        lines.push(format!("同步错误：{}", e.chars().take(120).collect::<String>()));
    }
    match push {
        Some(p) if p.state == "connected" => lines.push(format!("推送：已连接 {}，{} 条通知", p.url, p.notices)),
        Some(p) => lines.push(format!("推送：未连接 {}（{}）", p.url, p.last_error.as_deref().unwrap_or(&p.state).chars().take(80).collect::<String>())),
        None => lines.push("推送：未配置".into()),
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overlay_says_what_is_on_screen_and_how_sync_and_push_are() {
        let player = PlayerStatus { feed_version: Some(7), playlist: Some("main".into()), item: Some("card".into()), warnings: vec!["w@x".into()], ..PlayerStatus::default() };
        let sync = SyncStatus { source: Some("https://feed/".into()), last_error: Some("HTTP 500".into()), ..SyncStatus::default() };
        let push = PushStatus { url: "mqtts://push".into(), state: "down".into(), last_error: Some("refused".into()), ..PushStatus::default() };
        let lines = overlay_lines(Some(&player), &sync, Some(&push));
        assert_eq!(
            lines,
            ["节目：第 7 版，main / card", "预警：w@x", "同步：上次成功 从未（https://feed/）", "同步错误：HTTP 500", "推送：未连接 mqtts://push（refused）"]
        );
        assert_eq!(overlay_lines(None, &SyncStatus::default(), None), ["同步：上次成功 从未（未配置）", "推送：未配置"]);
    }
}
