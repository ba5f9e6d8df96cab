//! `estation sync`: the feed and the upstream alert sources (needs the
//! `net` feature).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::store::cache::Cache;
use crate::config::Config;
use crate::net::service::{alert_media_rules, options, poll_alert_sources};
use crate::net::sync::{Source, Syncer};

use super::status_cmd::{cache_dir, feed_key};

/// One poll of each upstream alert source (for `sync --once`).
async fn poll_alert_sources_once(config: &Config, cache_dir: &Path) -> bool {
    let inbox = crate::store::inbox::Inbox::new(cache_dir);
    let mut ok = true;
    for src in &config.alerts.sources {
        let mut up = match crate::net::sync::upstream::Upstream::new(src.url.as_str(), alert_media_rules(config)) {
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
    let opts = options(config, feed_key(config)?);
    let source = match from {
        Some(dir) => Source::Dir(dir.to_path_buf()),
        None => {
            let url = config.feed.url.clone().context("[feed] url is not set in the config; set it, or use --from DIR")?;
            Source::Http(url)
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
    rt.block_on(async { tokio::join!(crate::net::service::sync_feed(&syncer, config, &dir), poll_alert_sources(config, &dir)) });
    Ok(ExitCode::SUCCESS)
}

