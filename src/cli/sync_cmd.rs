//! `estation sync`: the feed and the upstream alert sources (needs the
//! `net` feature).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::cache::Cache;
use crate::config::Config;
use crate::sync::{Options, Source, Syncer};

use super::status_cmd::{cache_dir, feed_key};

/// Sync options from the config; the key is required.
pub fn options(config: &Config) -> anyhow::Result<Options> {
    let mut opts = Options::new(feed_key(config)?);
    opts.max_bytes_per_sec = config.feed.max_bytes_per_sec;
    opts.max_age = config.feed.max_age;
    opts.budget = config.cache.budget;
    opts.alert_rules = config.alert_rules();
    opts.alert_media = alert_media_rules(config);
    Ok(opts)
}

/// How alerts' linked audio may be fetched, from the config.
fn alert_media_rules(config: &Config) -> crate::sync::alert_media::Rules {
    crate::sync::alert_media::Rules {
        http_sources: config.alerts.sources.iter().filter(|s| s.allow_http).map(|s| s.url.clone()).collect(),
        budget: config.cache.budget,
    }
}

/// Polls the config's upstream alert sources into the cache's alert store
/// until the process ends (each on its own interval).
pub async fn poll_alert_sources(config: &Config, cache_dir: &Path) {
    let inbox = crate::alert::inbox::Inbox::new(cache_dir);
    let mut tasks = Vec::new();
    for src in &config.alerts.sources {
        match crate::sync::upstream::Upstream::new(&src.url, alert_media_rules(config)) {
            Ok(up) => tasks.push(up.forever(src.interval, inbox.clone(), config.alert_rules())),
            Err(e) => tracing::error!("alerts: source {}: {e}", src.url),
        }
    }
    futures_util::future::join_all(tasks).await;
}

/// One poll of each upstream alert source (for `sync --once`).
async fn poll_alert_sources_once(config: &Config, cache_dir: &Path) -> bool {
    let inbox = crate::alert::inbox::Inbox::new(cache_dir);
    let mut ok = true;
    for src in &config.alerts.sources {
        let mut up = match crate::sync::upstream::Upstream::new(&src.url, alert_media_rules(config)) {
            Ok(up) => up,
            Err(e) => {
                eprintln!("alerts from {}: {e}", src.url);
                ok = false;
                continue;
            }
        };
        match up.deliver(&inbox, &config.alert_rules()).await {
            Ok(n) => println!("alerts from {}: {n} new message(s)", src.url),
            Err(e) => {
                eprintln!("alerts from {}: {e}", src.url);
                ok = false;
            }
        }
    }
    ok
}

pub fn sync(config: &Config, once: bool, from: Option<&Path>) -> anyhow::Result<ExitCode> {
    // A screen may take warnings from upstream sources and no feed at all.
    if config.feed.public_key.is_none() && from.is_none() && !config.alerts.sources.is_empty() {
        let dir = cache_dir(config)?;
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        if once {
            let ok = rt.block_on(poll_alert_sources_once(config, &dir));
            return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        rt.block_on(poll_alert_sources(config, &dir));
        return Ok(ExitCode::SUCCESS);
    }
    let opts = options(config)?;
    let source = match from {
        Some(dir) => Source::Dir(dir.to_path_buf()),
        None => {
            let url = config.feed.url.as_deref().context("[feed] url is not set in the config; set it, or use --from DIR")?;
            Source::http(url).map_err(anyhow::Error::msg)?
        }
    };
    let dir = cache_dir(config)?;
    let cache = Cache::open(&dir)?;
    let syncer = Syncer::new(cache, source, opts)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if once || from.is_some() {
        let feed = match rt.block_on(syncer.once()) {
            Ok(outcome) => {
                println!("{outcome}");
                true
            }
            Err(e) => {
                eprintln!("sync failed: {e}");
                false
            }
        };
        let alerts = from.is_some() || rt.block_on(poll_alert_sources_once(config, &dir));
        return Ok(if feed && alerts { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }
    rt.block_on(async { tokio::join!(syncer.forever(config.feed.interval), poll_alert_sources(config, &dir)) });
    Ok(ExitCode::SUCCESS)
}

