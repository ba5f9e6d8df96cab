//! The kiosk's heartbeat to the central service (`[central]` in the config):
//! every `heartbeat` it reads what the player and sync last wrote
//! (`player.json`, the cache's `status.json`) and sends it. It runs on the
//! sync thread, never the frame loop; a failed heartbeat is logged and the
//! next one tried after a back-off, and nothing waits on it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::Url;

use super::central;
use crate::config::CentralConfig;
use crate::core::heartbeat::Heartbeat;
use crate::core::proof;
use crate::core::sync::backoff;
use crate::store::status::{PlayerStatus, SyncStatus};

/// The first heartbeat goes this soon after start, so a restarted screen
/// shows up at once.
const FIRST: Duration = Duration::from_secs(5);
/// First wait after a failure, doubled up to the heartbeat interval.
const RETRY: Duration = Duration::from_secs(15);
/// Most proof-of-play batches sent after one heartbeat (a kiosk back from
/// weeks offline catches up over a few heartbeats, not in one burst).
const MAX_BATCHES: usize = 20;
/// How long to wait for the player's screenshot the service asked for.
const SCREENSHOT_WAIT: Duration = Duration::from_secs(20);

/// Sends heartbeats for the screen `screen` whose cache is `cache_dir`.
pub struct Reporter {
    client: reqwest::Client,
    url: Url,
    token: String,
    screen: String,
    every: Duration,
    cache_dir: PathBuf,
    started: Instant,
}

impl Reporter {
    /// None when `[central]` has no URL or no token.
    pub fn new(central: &CentralConfig, screen: &str, cache_dir: &Path) -> Option<Result<Reporter, reqwest::Error>> {
        let (url, token) = (central.url.clone()?, central.token.clone()?);
        Some(super::http::client_builder().timeout(Duration::from_secs(30)).build().map(|client| Reporter {
            client,
            url,
            token,
            screen: screen.to_string(),
            every: central.heartbeat,
            cache_dir: cache_dir.to_path_buf(),
            started: Instant::now(),
        }))
    }

    /// Sends heartbeats until the process ends.
    pub async fn forever(&self) {
        tokio::time::sleep(FIRST).await;
        let mut offset: Option<i64> = None;
        let mut failures = 0u32;
        loop {
            let hb = self.heartbeat(Utc::now(), offset);
            let wait = match central::heartbeat(&self.client, &self.url, &self.screen, &self.token, &hb).await {
                Ok(answer) => {
                    if failures > 0 {
                        tracing::info!("central: heartbeat taken again after {failures} failure(s)");
                    }
                    failures = 0;
                    offset = answer.server_date.map(|server| clock_offset(Utc::now(), server));
                    match self.upload_proof().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!("central: {n} proof-of-play record(s) stored"),
                        Err(e) => tracing::warn!("central: proof of play not uploaded (kept for the next heartbeat): {e}"),
                    }
                    if answer.screenshot {
                        self.take_screenshot().await;
                    }
                    match self.upload_screenshot().await {
                        Ok(Some(taken)) => tracing::info!("central: screenshot taken at {taken} uploaded"),
                        Ok(None) => {}
                        Err(e) => tracing::warn!("central: screenshot not uploaded (sent with the next heartbeat): {e}"),
                    }
                    backoff::poll_period(self.every, fastrand::f64())
                }
                Err(e) => {
                    tracing::warn!("central: heartbeat not taken: {e}");
                    failures = failures.saturating_add(1);
                    backoff::delay(failures - 1, RETRY, self.every, fastrand::f64())
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Uploads the proof-of-play records the service does not have yet, in
    /// batches, each acknowledged before the next; returns how many went.
    /// A record counts as sent only once the service answered that it has
    /// it: an upload cut off (the kiosk killed, the answer lost) is sent
    /// again and the service keeps one copy.
    pub async fn upload_proof(&self) -> Result<u64, UploadError> {
        let dir = crate::store::proof::dir_for(&self.cache_dir);
        let Some(stream) = crate::store::proof::stream(&dir)? else { return Ok(0) };
        let mut sent = 0;
        for _ in 0..MAX_BATCHES {
            let after = crate::store::proof::acked(&dir, &stream);
            let records = fit(crate::store::proof::read_after(&dir, after, proof::MAX_BATCH)?);
            let Some(last) = records.last().map(|r| r.seq) else { break };
            let n = records.len() as u64;
            let stored = central::upload_proof(&self.client, &self.url, &self.screen, &self.token, &proof::Batch { stream: stream.clone(), records }).await?;
            crate::store::proof::set_acked(&dir, &stream, stored.through.min(last))?;
            sent += n;
        }
        Ok(sent)
    }

    /// Asks the player for a screenshot now and waits a while for it (the
    /// player captures the next frame; the worker encodes it).
    async fn take_screenshot(&self) {
        let dir = crate::store::screenshot::dir_for(&self.cache_dir);
        let before = crate::store::screenshot::latest(&dir).map(|(t, _)| t);
        if let Err(e) = crate::store::screenshot::ask(&dir) {
            tracing::warn!("central: the service asked for a screenshot: {e}");
            return;
        }
        let deadline = Instant::now() + SCREENSHOT_WAIT;
        while Instant::now() < deadline && crate::store::screenshot::latest(&dir).map(|(t, _)| t) == before {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Uploads the newest screenshot when the service has not had it;
    /// returns when it was taken.
    pub async fn upload_screenshot(&self) -> Result<Option<DateTime<Utc>>, UploadError> {
        let dir = crate::store::screenshot::dir_for(&self.cache_dir);
        let Some((taken, path)) = crate::store::screenshot::latest(&dir) else { return Ok(None) };
        if taken.timestamp_millis() <= crate::store::screenshot::uploaded(&dir) {
            return Ok(None);
        }
        // The player may have replaced it since: then the next heartbeat sends that one.
        let Ok(jpeg) = std::fs::read(&path) else { return Ok(None) };
        central::upload_screenshot(&self.client, &self.url, &self.screen, &self.token, jpeg, taken).await?;
        crate::store::screenshot::set_uploaded(&dir, taken)?;
        Ok(Some(taken))
    }

    /// The heartbeat as of `now`, from what the player and sync last wrote.
    pub fn heartbeat(&self, now: DateTime<Utc>, clock_offset_ms: Option<i64>) -> Heartbeat {
        let player = PlayerStatus::load(&PlayerStatus::path(&self.cache_dir));
        let sync = SyncStatus::load(&crate::store::cache::Cache::at(&self.cache_dir).status_path());
        assemble(player.as_ref(), &sync, now, self.started.elapsed(), crate::store::cache::free_space(&self.cache_dir), clock_offset_ms, self.every)
    }
}

/// Records from the front of `records` whose JSON fits in one upload body.
fn fit(mut records: Vec<proof::Record>) -> Vec<proof::Record> {
    let mut size = 64;
    let keep = records
        .iter()
        .take_while(|r| {
            size += serde_json::to_vec(r).map_or(proof::MAX_BODY, |b| b.len() + 1);
            size <= proof::MAX_BODY
        })
        .count();
    records.truncate(keep.max(1).min(records.len()));
    records
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Log(#[from] crate::store::proof::LogError),
    #[error(transparent)]
    Central(#[from] central::CentralError),
    #[error(transparent)]
    Screenshot(#[from] crate::store::screenshot::ShotError),
}

/// The kiosk's clock minus the service's, in ms (the service's `Date` is
/// whole seconds, so within a second).
fn clock_offset(local: DateTime<Utc>, server: DateTime<Utc>) -> i64 {
    local.signed_duration_since(server).num_milliseconds()
}

/// A heartbeat from the player's and sync's records, each text cut to what
/// the service accepts.
fn assemble(
    player: Option<&PlayerStatus>,
    sync: &SyncStatus,
    now: DateTime<Utc>,
    uptime: Duration,
    disk_free: Option<u64>,
    clock_offset_ms: Option<i64>,
    every: Duration,
) -> Heartbeat {
    let cut = |s: String| -> String {
        let clean: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let mut end = clean.len().min(crate::core::heartbeat::MAX_TEXT);
        while !clean.is_char_boundary(end) {
            end -= 1;
        }
        clean[..end].to_string()
    };
    let on_screen = player.and_then(|p| match (&p.playlist, &p.item) {
        (Some(pl), Some(item)) => Some(format!("{pl}/{item}")),
        (None, Some(item)) => Some(item.clone()),
        _ => None,
    });
    Heartbeat {
        sent_at: now,
        software: format!("estation {}", env!("CARGO_PKG_VERSION")),
        feed_version: player.and_then(|p| p.feed_version),
        on_screen: on_screen.map(cut),
        warnings: player.map(|p| p.warnings.iter().take(crate::core::heartbeat::MAX_WARNINGS).cloned().map(cut).collect()).unwrap_or_default(),
        last_sync: sync.last_success,
        last_error: sync.last_error.clone().map(cut),
        uptime_secs: uptime.as_secs(),
        disk_free,
        clock_offset_ms,
        sound: player.and_then(|p| p.sound.clone()).map(cut),
        renderer: player.and_then(|p| p.renderer.as_ref()).map(|r| cut(r.describe())),
        every_secs: every.as_secs().clamp(10, 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_says_what_the_records_say_and_always_passes_the_services_limits() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let player = PlayerStatus {
            playlist: Some("school".into()),
            item: Some("暴雨来临前".into()),
            feed_version: Some(9),
            warnings: vec!["a".repeat(5000)],
            sound: Some("silent: no sound device\u{7}".into()),
            ..PlayerStatus::default()
        };
        let sync = SyncStatus { last_error: Some("错".repeat(2000)), ..SyncStatus::default() };
        let hb = assemble(Some(&player), &sync, now, Duration::from_secs(61), Some(5), Some(-3), Duration::from_secs(300));
        assert_eq!(hb.on_screen.as_deref(), Some("school/暴雨来临前"));
        assert_eq!(hb.feed_version, Some(9));
        assert_eq!(hb.uptime_secs, 61);
        assert_eq!(hb.validate(), Ok(()), "cut to the limits: {hb:?}");
        assert!(hb.last_error.as_deref().is_some_and(|e| e.starts_with('错')));
        let nothing = assemble(None, &SyncStatus::default(), now, Duration::ZERO, None, None, Duration::from_secs(5));
        assert_eq!(nothing.validate(), Ok(()));
        assert_eq!(nothing.every_secs, 10);
        assert_eq!(clock_offset(now, now - chrono::Duration::seconds(2)), 2000);
    }
}
