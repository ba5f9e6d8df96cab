//! `estation status` and `estation cache verify`: what the cache and the
//! player report (no network: these read files only).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::Utc;
use serde::Serialize;

use crate::store::cache::Cache;
use crate::config::Config;
use crate::store::status::{PlayerStatus, PushStatus, SyncStatus};

/// The feed's public key from the config (parsed when the config loaded);
/// required.
pub fn feed_key(config: &Config) -> anyhow::Result<ed25519_dalek::VerifyingKey> {
    config.feed.public_key.with_context(|| {
        format!(
            "[feed] public_key is not set in {}; add the line `estation feed keygen` printed",
            config.source.as_ref().map_or("the config".into(), |p| p.display().to_string())
        )
    })
}

/// The cache folder the config names (or the default).
pub fn cache_dir(config: &Config) -> anyhow::Result<PathBuf> {
    config.cache.dir().context("no cache folder: set [cache] dir in the config (no home directory to default to)")
}

#[derive(Debug, Serialize)]
struct Report {
    /// The local clock disagrees with the last trusted time (see `crate::core::trusted_time`).
    clock_problem: Option<String>,
    /// The last trusted time sync learnt.
    trusted_time: Option<chrono::DateTime<Utc>>,
    /// The config file cannot be used, and what is used instead (its last
    /// good copy, or defaults): found by loading it the way the player and
    /// sync do when they start.
    config_problem: Option<String>,
    cache: PathBuf,
    feed_version: Option<u64>,
    feed_created: Option<String>,
    feed_expires: Option<String>,
    /// The feed on screen is past its expiry (still played).
    stale: bool,
    /// The feed on screen was built longer ago than `feed_max_age` and is not
    /// yet expired: nobody renews it (still played).
    frozen: bool,
    feed_max_age: String,
    /// The highest version this kiosk ever accepted: older ones are refused,
    /// even if current.json is lost.
    highest_version: Option<u64>,
    cache_bytes: u64,
    cache_budget: u64,
    /// Problem reading the cached feed, if any.
    cache_error: Option<String>,
    sync: SyncStatus,
    /// The push connection, when `[push] url` is set.
    push: Option<PushStatus>,
    player: Option<PlayerStatus>,
    /// Warnings in force for this screen now, most urgent first.
    alerts: Vec<crate::core::alert::Shown>,
    /// Messages in the alert store (including ones not for this screen).
    alert_messages: usize,
    alert_error: Option<String>,
}

pub fn status(config: &Config, config_problem: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let dir = cache_dir(config)?;
    let cache = Cache::at(&dir);
    let trusted = crate::store::cache::Cache::at(&dir).trusted_time();
    let skew = chrono::Duration::from_std(config.feed.clock_skew).unwrap_or(chrono::Duration::minutes(5));
    let mut report = Report {
        clock_problem: crate::core::trusted_time::disagreement(trusted.as_ref(), skew),
        trusted_time: trusted.map(|t| t.at),
        config_problem: config_problem.map(str::to_string),
        cache: dir.clone(),
        feed_version: None,
        feed_created: None,
        feed_expires: None,
        stale: false,
        frozen: false,
        feed_max_age: humantime::format_duration(config.feed.max_age).to_string(),
        highest_version: cache.highest().map(|h| h.version),
        cache_bytes: cache.used_bytes(),
        cache_budget: config.cache.budget,
        cache_error: None,
        sync: SyncStatus::load(&cache.status_path()),
        push: config.push.url.as_ref().map(|url| PushStatus::load(&PushStatus::path(&dir)).unwrap_or_else(|| PushStatus { url: url.to_string(), state: "not started".into(), ..PushStatus::default() })),
        player: PlayerStatus::load(&PlayerStatus::path(&dir)),
        alerts: Vec::new(),
        alert_messages: 0,
        alert_error: None,
    };
    match crate::store::inbox::Inbox::new(&dir).load() {
        Ok(store) => {
            report.alert_messages = store.entries().len();
            report.alerts = crate::core::alert::policy::present(&store, &config.alert_policy(), crate::core::trusted_time::now(trusted.as_ref(), Utc::now())).all;
        }
        Err(e) => report.alert_error = Some(e.to_string()),
    }
    let tz = config.timezone;
    let local = |t: chrono::DateTime<chrono::FixedOffset>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S %Z").to_string();
    match config.feed.public_key {
        Some(key) => match cache.current(&key) {
            Ok(Some(v)) => {
                report.feed_version = Some(v.manifest.version);
                report.feed_created = Some(local(v.manifest.created));
                report.feed_expires = Some(local(v.manifest.expires));
                report.stale = v.manifest.is_expired(Utc::now());
                report.frozen = v.manifest.is_frozen(Utc::now(), config.feed.max_age);
            }
            Ok(None) => {}
            Err(e) => report.cache_error = Some(e.to_string()),
        },
        None => report.cache_error = Some("no [feed] public_key in the config: the cache is not used".into()),
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let when = |t: Option<chrono::DateTime<Utc>>| t.map_or("never".to_string(), |t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string());
    if let Some(c) = &report.clock_problem {
        println!("clock:      {c}");
    }
    if let Some(p) = &report.config_problem {
        println!("config:     {p}");
    }
    match report.feed_version {
        Some(v) => println!(
            "feed:       version {v}, built {}, expires {}{}",
            report.feed_created.as_deref().unwrap_or("?"),
            report.feed_expires.as_deref().unwrap_or("?"),
            if report.stale { "  — STALE: past its expiry, still playing; the feed needs a new build" } else { "" }
        ),
        None => println!("feed:       none in the cache yet (the bundled demo plays)"),
    }
    if report.frozen {
        println!(
            "feed:       FROZEN: built more than [feed] max_age ({}) ago and not renewed; still playing — check that the feed is still rebuilt and published",
            report.feed_max_age
        );
    }
    if let Some(e) = &report.cache_error {
        println!("cache:      {e}");
    }
    println!("cache:      {} of {} used, in {}", bytesize::ByteSize(report.cache_bytes), bytesize::ByteSize(report.cache_budget), dir.display());
    let s = &report.sync;
    println!("source:     {}", s.source.as_deref().or(config.feed.url.as_ref().map(url::Url::as_str)).unwrap_or("none configured"));
    println!("last sync:  {} (attempted {})", when(s.last_success), when(s.last_attempt));
    if let Some(e) = &s.last_error {
        println!("last error: {} — {e}", when(s.last_error_at));
    }
    if let Some(p) = &s.pending {
        let done: u64 = p.files.iter().map(|f| f.done).sum();
        let total: u64 = p.files.iter().map(|f| f.size).sum();
        println!("pending:    version {}: {} file(s), {} of {}", p.version, p.files.len(), bytesize::ByteSize(done), bytesize::ByteSize(total));
        for f in p.files.iter().filter(|f| f.done < f.size) {
            println!("            {} {} of {}", f.sha256, bytesize::ByteSize(f.done), bytesize::ByteSize(f.size));
        }
    }
    match &report.push {
        Some(p) if p.state == "connected" => println!(
            "push:       connected to {} since {}; {} notice(s), last {}; the feed is polled every {} meanwhile",
            p.url,
            when(p.since),
            p.notices,
            p.last_notice.as_deref().map_or("none".to_string(), |n| format!("{n} at {}", when(p.last_notice_at))),
            humantime::format_duration(config.push.poll_when_healthy.max(config.feed.interval))
        ),
        Some(p) if p.since.is_none() => println!(
            "push:       {} — {} (no player has connected yet); the feed is polled every {}",
            p.url,
            p.state.to_uppercase(),
            humantime::format_duration(config.feed.interval)
        ),
        Some(p) => println!(
            "push:       {} — {} since {}{}; nothing is lost: the feed is polled every {}",
            p.url,
            p.state.to_uppercase(),
            when(p.since),
            p.last_error.as_deref().map_or(String::new(), |e| format!(" ({e})")),
            humantime::format_duration(config.feed.interval)
        ),
        None => println!("push:       off (no [push] url); the feed is polled every {}", humantime::format_duration(config.feed.interval)),
    }
    match &report.player {
        Some(p) => println!(
            "playing:    {} / {} since {} ({}, pid {})",
            p.playlist.as_deref().unwrap_or("-"),
            p.item.as_deref().unwrap_or("idle screen"),
            when(p.since),
            p.source,
            p.pid
        ),
        None => println!("playing:    no player has reported yet"),
    }
    if let Some(s) = report.player.as_ref().and_then(|p| p.sound.as_deref()) {
        println!("sound:      {s}");
    }
    if let Some(s) = report.player.as_ref().and_then(|p| p.display.as_deref()) {
        println!("display:    {s}");
    }
    if let Some(r) = report.player.as_ref().and_then(|p| p.renderer.as_ref()) {
        println!("renderer:   {}", r.describe());
    }
    if let Some(e) = &report.alert_error {
        println!("alerts:     {e}");
    }
    if report.alerts.is_empty() {
        println!("alerts:     none in force for this screen ({} message(s) in the store)", report.alert_messages);
    }
    for a in &report.alerts {
        println!(
            "alert:      {:?} {} — {} (until {}; from {}{})",
            a.treatment,
            a.ticker_line(),
            a.key,
            a.ends.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
            a.source,
            if a.over_http { ", over plain HTTP: not authenticated" } else { "" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `estation cache verify`: the cached version as the player trusts it.
pub fn verify_cache(config: &Config) -> anyhow::Result<ExitCode> {
    let dir = cache_dir(config)?;
    let key = feed_key(config)?;
    let cache = Cache::at(&dir);
    let checked = match cache.verify(&key) {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!("ok: no version in the cache yet ({})", dir.display());
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => {
            println!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut problems = checked.problems;
    if problems.is_empty() {
        // The files are whole; the playlists must also load from them.
        match cache.library(&key) {
            Ok(Some((_, library))) => problems.extend(library.problems.iter().map(ToString::to_string)),
            Ok(None) => problems.push("current.json vanished while checking".into()),
            Err(e) => problems.push(e.to_string()),
        }
    }
    for p in &problems {
        println!("{p}");
    }
    if !problems.is_empty() {
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "ok: version {}, {} file(s), {}, in {}",
        checked.version.manifest.version,
        checked.files,
        bytesize::ByteSize(checked.bytes),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
