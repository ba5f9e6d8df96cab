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

/// The push listener the config asks for: `[push] url` with the screen's
/// topics. None without a URL; an error when the broker's settings cannot
/// be used (its CA file, say), which the caller logs: the kiosk then polls.
pub fn push_listener(config: &Config, cache_dir: &Path) -> Option<Result<crate::net::push::Listener, crate::net::push::PushError>> {
    let p = &config.push;
    let url = p.url.as_ref()?;
    let username = p.username.as_deref().unwrap_or(&config.screen_id);
    Some(crate::net::push::Broker::new(url, Some(username), p.password.as_deref(), p.ca.as_deref()).map(|broker| crate::net::push::Listener {
        broker,
        client_id: format!("estation-{}", config.screen_id),
        names: crate::core::push::Topics::new(&p.topic_prefix),
        topics: crate::core::push::Topics::new(&p.topic_prefix).for_screen(&config.screen_id, config.region.as_deref()),
        keep_alive: p.keep_alive,
        status_path: crate::store::status::PushStatus::path(cache_dir),
        commands: config.feed.public_key.map(|key| crate::net::push::Commands {
            key,
            screen_id: config.screen_id.clone(),
            region: config.region.clone(),
            used_path: cache_dir.with_file_name("commands.json"),
            cache_dir: cache_dir.to_path_buf(),
        }),
    }))
}

/// Syncs the feed for ever: on its poll interval, and at once when the push
/// broker (if the config names one) sends a notice.
pub async fn sync_feed(syncer: &crate::net::sync::Syncer, config: &Config, cache_dir: &Path) {
    match push_listener(config, cache_dir) {
        Some(Ok(listener)) => {
            let wake = crate::net::push::Wake::default();
            tokio::join!(syncer.forever(config.feed.interval, Some((&wake, config.push.poll_when_healthy))), listener.run(&wake));
        }
        Some(Err(e)) => {
            tracing::error!("push: {e}; the feed is polled every [feed] interval");
            syncer.forever(config.feed.interval, None).await;
        }
        None => syncer.forever(config.feed.interval, None).await,
    }
}
