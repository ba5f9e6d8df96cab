//! Start-up of a kiosk: the player on the main thread, the background sync
//! (the feed and the upstream alert sources) on its own, sharing nothing
//! but the cache folder, which the player only reads.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use ed25519_dalek::VerifyingKey;

use crate::config::{self, Config, Settings};
use crate::store::content::ContentSource;

/// What `estation play` was asked for on its command line for this run
/// (`--playlist` and `--window` are settings: in [`Settings`]).
#[derive(Debug, Clone, Default)]
pub struct Launch {
    pub screenshot: Option<PathBuf>,
    pub screenshot_at: Vec<Duration>,
    pub exit_after: Option<Duration>,
}

/// Runs the kiosk until the player quits. A kiosk with a feed key plays its
/// cache; one without (or given `--playlist`) plays its local playlists, or
/// the bundled demo.
pub fn start(settings: Settings, launch: Launch) -> anyhow::Result<ExitCode> {
    let files_asked = settings.playlist_from_command_line();
    let Settings { config, data_dir, loaded, .. } = settings;
    let data_dir = data_dir.as_deref();
    let local = config.playlist.clone().or_else(|| bundled_playlists(data_dir));
    let assets = bundled_assets(data_dir).context("the bundled fonts were not found; set ESTATION_DATA_DIR to the folder holding assets/")?;
    let cache_dir = config.cache.dir();
    // `--playlist` plays those files; otherwise a kiosk with a feed key plays
    // its cache (and syncs it in the background when a feed URL is set).
    let key = config.feed.public_key.filter(|_| !files_asked);
    let source = match (key, &cache_dir) {
        (Some(key), Some(dir)) => ContentSource::Feed { cache: crate::store::cache::Cache::at(dir), key, fallback: local },
        _ => ContentSource::Files(local.context("no playlist given and the bundled demo was not found; pass --playlist PATH")?),
    };
    if let Some(dir) = &cache_dir {
        let feed_key = match &source {
            ContentSource::Feed { key, .. } => Some(*key),
            ContentSource::Files(_) => None,
        };
        start_background_sync(dir, &config, feed_key)?;
    }
    // The player sets up logging; what happened to the config is logged there.
    let config_note = match config::last_good::keep_note(&loaded, chrono::Utc::now()) {
        Ok(Some(kept)) => format!("{}; {kept}", loaded.note),
        Ok(None) => loaded.note,
        Err(e) => format!("{}; {e}", loaded.note),
    };
    let central = (config.central.clone(), config.screen_id.clone());
    let played = crate::player::run(crate::player::Options {
        config,
        config_problems: loaded.problems.0,
        config_note,
        config_fallback: loaded.fallback,
        source,
        status_path: cache_dir.as_deref().map(crate::store::status::PlayerStatus::path),
        first_frame: cache_dir.as_deref().map(crate::store::status::PlayerStatus::first_frame_path),
        assets,
        // `--window` is in `config.display` already.
        window: None,
        screenshot: launch.screenshot,
        screenshot_at: launch.screenshot_at,
        exit_after: launch.exit_after,
    });
    if let Some(dir) = &cache_dir {
        send_last_proof(&central.0, &central.1, dir);
    }
    played
}

/// The player closed the intervals on screen when it stopped: sends them to
/// the central service now, for a few seconds at most, rather than at the
/// next start (which may be days away for a screen switched off).
fn send_last_proof(central: &crate::config::CentralConfig, screen: &str, dir: &Path) {
    let Some(Ok(reporter)) = crate::net::heartbeat::Reporter::new(central, screen, dir) else { return };
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
    match rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), reporter.upload_proof()).await }) {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!("central: {n} proof-of-play record(s) stored at exit"),
        Ok(Err(e)) => tracing::warn!("central: the last proof of play is sent at the next start: {e}"),
        Err(_) => tracing::warn!("central: the service did not answer in 5 s; the last proof of play is sent at the next start"),
    }
}

/// Runs sync (the feed, when the player plays it, and the upstream alert
/// sources) on its own thread for the life of the player.
fn start_background_sync(dir: &Path, config: &Config, feed_key: Option<VerifyingKey>) -> anyhow::Result<()> {
    let syncer = match (&config.feed.url, feed_key) {
        (Some(url), Some(key)) => {
            let cache = crate::store::cache::Cache::open(dir)?;
            let source = crate::net::sync::Source::Http(url.clone());
            Some(crate::net::sync::Syncer::new(cache, source, crate::net::service::options(config, key))?)
        }
        _ => None,
    };
    let reporter = match crate::net::heartbeat::Reporter::new(&config.central, &config.screen_id, dir) {
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => {
            tracing::error!("central: no HTTP client for the heartbeat: {e}");
            None
        }
        None => None,
    };
    if syncer.is_none() && config.alerts.sources.is_empty() && reporter.is_none() {
        return Ok(());
    }
    let (config, dir) = (config.clone(), dir.to_path_buf());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("sync".into()).spawn(move || {
        rt.block_on(async {
            let feed = async {
                if let Some(s) = &syncer {
                    crate::net::service::sync_feed(s, &config, &dir).await;
                }
            };
            let report = async {
                if let Some(r) = &reporter {
                    r.forever().await;
                }
            };
            tokio::join!(feed, crate::net::service::poll_alert_sources(&config, &dir), report)
        })
    })?;
    Ok(())
}

/// Folders that may hold the bundled `assets/` and `playlists/`, best first:
/// `named` (`ESTATION_DATA_DIR`, from the settings); the source tree when started by `cargo run` (cargo
/// sets `CARGO_MANIFEST_DIR` at run time); `../share/estation` beside the
/// binary (`/usr/bin` → `/usr/share/estation`, also for `/usr/local`); the
/// source tree the binary was built from. The last comes last because it
/// goes stale when a clone reuses another clone's target folder.
fn data_dirs(named: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = named.map(Path::to_path_buf).into_iter().collect();
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(prefix) = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf())) {
        dirs.push(prefix.join("share/estation"));
    }
    dirs.push(PathBuf::from("/usr/share/estation"));
    dirs.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    dirs
}

/// Where the bundled demo lives (see [`data_dirs`]).
pub fn bundled_playlists(named: Option<&Path>) -> Option<PathBuf> {
    data_dirs(named).into_iter().map(|d| d.join("playlists/demo.toml")).find(|p| p.is_file())
}

/// Where the bundled fonts and pictures live (see [`data_dirs`]).
pub fn bundled_assets(named: Option<&Path>) -> Option<PathBuf> {
    data_dirs(named).into_iter().map(|d| d.join("assets")).find(|p| p.join("fonts").is_dir())
}
