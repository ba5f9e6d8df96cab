//! The kiosk's sync service as its settings describe it: the feed's sync
//! options, and the upstream alert sources polled for ever.

use std::path::Path;

use ed25519_dalek::VerifyingKey;

use crate::config::Config;
use crate::net::sync::{alert_media, upstream::Upstream, Options};
use crate::store::inbox::Inbox;

/// Sync options from the config, for the feed signed by `key`.
pub fn options(config: &Config, key: VerifyingKey) -> Options {
    let mut opts = Options::new(key);
    opts.max_bytes_per_sec = config.feed.max_bytes_per_sec;
    opts.max_age = config.feed.max_age;
    opts.budget = config.cache.budget;
    opts.alert_rules = config.alert_rules();
    opts.alert_media = alert_media_rules(config);
    opts
}

/// How alerts' linked audio may be fetched, from the config.
pub fn alert_media_rules(config: &Config) -> alert_media::Rules {
    alert_media::Rules {
        http_sources: config.alerts.sources.iter().filter(|s| s.allow_http).map(|s| s.url.to_string()).collect(),
        budget: config.cache.budget,
    }
}

/// Polls the config's upstream alert sources into the cache's alert store
/// until the process ends (each on its own interval).
pub async fn poll_alert_sources(config: &Config, cache_dir: &Path) {
    let inbox = Inbox::new(cache_dir);
    let mut tasks = Vec::new();
    for src in &config.alerts.sources {
        match Upstream::new(src.url.as_str(), alert_media_rules(config)) {
            Ok(up) => tasks.push(up.forever(src.interval, inbox.clone(), config.alert_rules())),
            Err(e) => tracing::error!("alerts: source {}: {e}", src.url),
        }
    }
    futures_util::future::join_all(tasks).await;
}
