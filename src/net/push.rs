//! Push over MQTT: one connection from a kiosk to the office's broker
//! (Mosquitto, EMQX), and the short-lived one a publisher opens to send
//! notices. Topics and notices are in [`crate::core::push`].
//!
//! The kiosk keeps its connection with keep-alive and reconnects with
//! jittered back-off; it subscribes again at every connection (the client
//! does not). A notice only wakes the sync, which verifies everything as it
//! always does; the state of the connection is in `push.json` beside the
//! cache, for `estation status`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeFilter, TlsConfiguration, Transport};

use crate::core::command::{self, Action, Me, Used};
use crate::core::push::{Notice, MAX_NOTICE_BYTES};
use crate::core::sync::backoff;
use crate::store::requests::Request;
use crate::store::status::PushStatus;

/// The MQTT port of `mqtts://` (and of `mqtt://`) when the URL names none.
pub const MQTTS_PORT: u16 = 8883;
pub const MQTT_PORT: u16 = 1883;
/// Longest wait between two connection attempts.
const MAX_RETRY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{url}: not an mqtts:// (or mqtt://) URL with a host")]
    Url { url: String },
    #[error("{path}: {message}")]
    Ca { path: PathBuf, message: String },
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("{url}: {message}")]
    Broker { url: String, message: String },
}

/// Where a broker is and how to log in to it.
#[derive(Clone)]
pub struct Broker {
    url: String,
    host: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    credentials: Option<(String, String)>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("Broker").field("url", &self.url).field("user", &self.credentials.as_ref().map(|c| &c.0)).finish()
    }
}

impl Broker {
    /// `mqtts://` is TLS, checked against the system's CA store and `ca`
    /// (a PEM file, for a broker with its own CA); `mqtt://` is plain (the
    /// config allows it only with `allow_plain`).
    pub fn new(url: &url::Url, username: Option<&str>, password: Option<&str>, ca: Option<&Path>) -> Result<Broker, PushError> {
        let bad = || PushError::Url { url: url.to_string() };
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(bad)?;
        // An IPv6 host comes bracketed; the socket wants it bare.
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let (tls, default_port) = match url.scheme() {
            "mqtts" => (Some(Arc::new(tls_config(ca)?)), MQTTS_PORT),
            "mqtt" => (None, MQTT_PORT),
            _ => return Err(bad()),
        };
        let credentials = username.map(|u| (u.to_string(), password.unwrap_or_default().to_string()));
        Ok(Broker { url: url.to_string(), host, port: url.port().unwrap_or(default_port), tls, credentials })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn options(&self, client_id: &str, keep_alive: Duration) -> MqttOptions {
        let mut o = MqttOptions::new(client_id, &self.host, self.port);
        o.set_keep_alive(keep_alive);
        o.set_clean_session(true);
        // Notices and commands are small; anything larger is not one.
        o.set_max_packet_size(MAX_NOTICE_BYTES * 8, 64 * 1024);
        if let Some((u, p)) = &self.credentials {
            o.set_credentials(u, p);
        }
        if let Some(tls) = &self.tls {
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls.clone())));
        }
        o
    }
}

impl crate::config::push_args::PushArgs {
    /// The broker at `url` (see [`PushArgs::checked_url`](crate::config::push_args::PushArgs::checked_url)),
    /// logged in as `--push-user` with `ESTATION_PUSH_PASSWORD`.
    pub fn broker(&self, url: &url::Url) -> Result<Broker, PushError> {
        Broker::new(url, Some(&self.push_user), self.password().as_deref(), self.push_ca.as_deref())
    }
}

/// rustls with ring (as for HTTP), the platform's CA store and `ca`.
fn tls_config(ca: Option<&Path>) -> Result<rustls::ClientConfig, PushError> {
    use rustls::pki_types::pem::PemObject as _;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let extra = match ca {
        Some(path) => {
            let ca_error = |message: String| PushError::Ca { path: path.to_path_buf(), message };
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| ca_error(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ca_error(e.to_string()))?;
            if certs.is_empty() {
                return Err(ca_error("holds no PEM certificate".into()));
            }
            certs
        }
        None => vec![],
    };
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// What the push connection tells the sync loop: "sync now" (a notice, a
/// new connection, a lost one) and whether push is healthy (then the feed
/// poll may relax).
///
/// Asks are counted, not kept as one pending permit: a sync covers every
/// ask made before it started, so notices that came while it waited out
/// the gap cost no second sync, and one that comes while it runs (it may
/// have fetched the document before the publish) starts one more.
#[derive(Debug, Default)]
pub struct Wake {
    notify: tokio::sync::Notify,
    asked: AtomicU64,
    healthy: AtomicBool,
}

impl Wake {
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// How many syncs were asked for so far: a sync that starts now covers
    /// them all.
    pub fn asked(&self) -> u64 {
        self.asked.load(Ordering::Acquire)
    }

    /// Returns once a sync is asked for after the first `seen` asks.
    pub async fn asked_after(&self, seen: u64) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before the count is read: no ask slips between.
            notified.as_mut().enable();
            if self.asked() > seen {
                return;
            }
            notified.await;
        }
    }

    pub fn nudge(&self) {
        self.asked.fetch_add(1, Ordering::AcqRel);
        self.notify.notify_waiters();
    }

    fn set_healthy(&self, healthy: bool) {
        if self.healthy.swap(healthy, Ordering::Relaxed) != healthy {
            // Connected: catch up on what came while it was down. Lost: the
            // relaxed poll must not be waited out.
            self.nudge();
        }
    }
}

/// A kiosk's subscription: what it listens to and where it says how it goes.
pub struct Listener {
    pub broker: Broker,
    pub client_id: String,
    /// The topic names of the kiosks' prefix, and those this one listens to.
    pub names: crate::core::push::Topics,
    pub topics: Vec<String>,
    pub keep_alive: Duration,
    pub status_path: PathBuf,
    /// How commands are checked and carried out; None: commands are ignored
    /// (a kiosk without a feed key trusts no one to give them).
    pub commands: Option<Commands>,
}

/// What a kiosk needs to check a command and carry it out.
pub struct Commands {
    pub key: ed25519_dalek::VerifyingKey,
    pub screen_id: String,
    pub region: Option<String>,
    /// The nonces already used (`commands.json` beside the cache), so a
    /// replay is refused across restarts too.
    pub used_path: PathBuf,
    /// The cache folder: its trusted time, and beside it the screenshots'
    /// folder and the player's requests (`store::requests`).
    pub cache_dir: PathBuf,
}

impl Commands {
    /// Checks a command and carries it out; says in the log what it did or
    /// why not.
    fn handle(&self, topic: &str, payload: &[u8], wake: &Wake) {
        let me = Me { id: &self.screen_id, region: self.region.as_deref() };
        let mut used: Used = std::fs::read(&self.used_path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        // The later of the trusted times: a command is never taken as still
        // valid because the local clock was set back.
        let now = crate::core::trusted_time::now(crate::store::cache::Cache::at(&self.cache_dir).trusted_time().as_ref(), Utc::now()).starts;
        let command = match command::accept(payload, &self.key, me, now, &mut used) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("push: command on {topic} refused: {e}");
                return;
            }
        };
        // Recorded before it is carried out: a crash in between never lets
        // the same command through twice.
        let recorded = serde_json::to_vec(&used).map_err(std::io::Error::other).and_then(|b| crate::store::atomic::write(&self.used_path, &b));
        if let Err(e) = recorded {
            tracing::warn!("push: command {} refused: its nonce cannot be recorded in {}: {e}", command.nonce, self.used_path.display());
            return;
        }
        tracing::info!("push: command `{}` for {} (nonce {}, until {})", command.action.as_str(), command.to, command.nonce, command.expires);
        match command.action {
            Action::Sync => wake.nudge(),
            Action::Screenshot => {
                if let Err(e) = crate::store::screenshot::ask(&crate::store::screenshot::dir_for(&self.cache_dir)) {
                    tracing::warn!("push: screenshot: {e}");
                }
            }
            Action::Restart | Action::Overlay => {
                let request = if command.action == Action::Restart { Request::Restart } else { Request::Overlay };
                if let Err(e) = request.ask(&self.cache_dir) {
                    tracing::warn!("push: {}: {}: {e}", command.action.as_str(), request.path(&self.cache_dir).display());
                }
            }
        }
    }
}

impl Listener {
    /// Keeps the connection up for the life of the process, waking the sync
    /// at every notice. Never returns.
    pub async fn run(&self, wake: &Wake) -> ! {
        let (client, mut events) = AsyncClient::new(self.broker.options(&self.client_id, self.keep_alive), 16);
        let mut status = PushStatus { url: self.broker.url.clone(), state: "connecting".into(), topics: self.topics.clone(), ..PushStatus::default() };
        status.save(&self.status_path);
        let mut failures: u32 = 0;
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let filters = self.topics.iter().map(|t| SubscribeFilter::new(t.clone(), QoS::AtLeastOnce));
                    if let Err(e) = client.try_subscribe_many(filters) {
                        tracing::warn!("push: subscribing: {e}");
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    let refused = ack.return_codes.iter().filter(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure)).count();
                    if refused > 0 {
                        tracing::warn!("push: the broker refused {refused} of {} topic(s); check its ACL for this kiosk's user", self.topics.len());
                    }
                    failures = 0;
                    tracing::info!("push: connected to {}, listening on {} topic(s)", self.broker.url, self.topics.len());
                    status.state = "connected".into();
                    status.since = Some(Utc::now());
                    status.save(&self.status_path);
                    wake.set_healthy(true);
                }
                Ok(Event::Incoming(Packet::Publish(p))) if self.names.is_command(&p.topic) => match &self.commands {
                    Some(c) => c.handle(&p.topic, &p.payload, wake),
                    None => tracing::warn!("push: command on {} ignored: this kiosk has no feed key to check it with", p.topic),
                },
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    match Notice::parse(&p.payload) {
                        Ok(n) => {
                            tracing::info!("push: notice on {}: {} version {}; syncing", p.topic, n.document, n.version);
                            status.notices += 1;
                            status.last_notice_at = Some(Utc::now());
                            status.last_notice = Some(format!("{} version {} on {}", n.document, n.version, p.topic));
                            status.save(&self.status_path);
                            wake.nudge();
                        }
                        Err(e) => tracing::warn!("push: {}: message ignored: {e}", p.topic),
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let was = std::mem::replace(&mut status.state, "down".into());
                    if was != "down" {
                        tracing::warn!("push: {}: {e}; the feed is polled every [feed] interval meanwhile", self.broker.url);
                    } else {
                        tracing::debug!("push: {}: {e}", self.broker.url);
                    }
                    status.since = if was == "down" { status.since } else { Some(Utc::now()) };
                    status.last_error = Some(e.to_string());
                    status.last_error_at = Some(Utc::now());
                    status.save(&self.status_path);
                    wake.set_healthy(false);
                    // The next poll reconnects.
                    tokio::time::sleep(backoff::delay(failures, Duration::from_secs(1), MAX_RETRY, fastrand::f64())).await;
                    failures = failures.saturating_add(1);
                }
            }
        }
    }
}

/// Sends each `(topic, payload)` once (QoS 1: the broker has it when this
/// returns), then disconnects. Gives up after `deadline`.
pub async fn publish(broker: &Broker, messages: &[(String, Vec<u8>)], deadline: Duration) -> Result<(), PushError> {
    let failed = |message: String| PushError::Broker { url: broker.url.clone(), message };
    let id = format!("estation-publish-{}-{:08x}", std::process::id(), fastrand::u32(..));
    let (client, mut events) = AsyncClient::new(broker.options(&id, Duration::from_secs(30)), messages.len() + 4);
    let run = async {
        let mut acked = 0;
        loop {
            match events.poll().await.map_err(|e| failed(e.to_string()))? {
                Event::Incoming(Packet::ConnAck(_)) => {
                    for (topic, payload) in messages {
                        client.try_publish(topic.clone(), QoS::AtLeastOnce, false, payload.clone()).map_err(|e| failed(format!("{topic}: {e}")))?;
                    }
                    if messages.is_empty() {
                        return Ok(());
                    }
                }
                Event::Incoming(Packet::PubAck(_)) => {
                    acked += 1;
                    if acked == messages.len() {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
    };
    let result = tokio::time::timeout(deadline, run).await.unwrap_or_else(|_| Err(failed(format!("no answer in {}s", deadline.as_secs()))));
    // A polite goodbye, so the broker does not log a lost client.
    if client.try_disconnect().is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(2), async { while events.poll().await.is_ok() {} }).await;
    }
    result
}

/// Sends a notice whenever a signed document of the feed folder `feed`
/// changes, whoever wrote it (`alert publish` without `--push`, `feed
/// build`, a province's system): the manifest to every screen, the
/// warnings document to the region topics of the messages new in it (see
/// [`crate::core::push::Topics::for_alert`]). Looks at the two files once
/// a second (their time and length; every writer replaces them by rename).
/// Nothing is trusted here: a notice only makes kiosks sync and check the
/// signatures themselves. Never returns.
pub async fn watch_feed(feed: &Path, broker: &Broker, topics: &crate::core::push::Topics) -> ! {
    use crate::core::feed::alerts_doc::ALERTS_FILE;
    use crate::core::feed::manifest::MANIFEST_FILE;
    let stamp = |name: &str| std::fs::metadata(feed.join(name)).ok().map(|m| (m.modified().ok(), m.len()));
    let mut stamps = [stamp(MANIFEST_FILE), stamp(ALERTS_FILE)];
    let mut known = listed_alerts(&feed.join(ALERTS_FILE));
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        for (i, name) in [MANIFEST_FILE, ALERTS_FILE].into_iter().enumerate() {
            let now = stamp(name);
            if now == stamps[i] || now.is_none() {
                continue;
            }
            stamps[i] = now;
            let Ok(bytes) = std::fs::read(feed.join(name)) else { continue };
            let Some(version) = signed_version(&bytes) else { continue };
            let to = if name == ALERTS_FILE {
                let listed = listed_alerts(&feed.join(name));
                let new: Vec<&crate::core::feed::Blob> = listed.iter().filter(|b| !known.contains(b)).collect();
                let mut to: Vec<String> = Vec::new();
                for blob in new {
                    let path = feed.join(blob.feed_path());
                    match std::fs::read(&path).ok().and_then(|b| crate::core::alert::cap::parse(&path, &b).ok()) {
                        Some(parsed) => to.extend(topics.for_alert(&parsed.alert)),
                        None => to.push(topics.all()),
                    }
                }
                known = listed;
                to.sort();
                to.dedup();
                to
            } else {
                vec![topics.all()]
            };
            if to.is_empty() {
                continue;
            }
            let notice = Notice::new(name, version, &bytes).to_bytes();
            let messages: Vec<(String, Vec<u8>)> = to.iter().map(|t| (t.clone(), notice.clone())).collect();
            match publish(broker, &messages, Duration::from_secs(15)).await {
                Ok(()) => tracing::info!("push: {name} version {version}: notice sent to {}", to.join(", ")),
                Err(e) => tracing::warn!("push: {name} version {version}: {e}; screens get it at their next poll"),
            }
        }
    }
}

/// The `signed.version` of a feed document, unchecked (for a notice only).
fn signed_version(bytes: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(bytes).ok()?["signed"]["version"].as_u64()
}

/// The messages a warnings document lists, unchecked (for a notice only).
fn listed_alerts(path: &Path) -> Vec<crate::core::feed::Blob> {
    let Ok(bytes) = std::fs::read(path) else { return Vec::new() };
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| serde_json::from_value(v["signed"]["alerts"].clone()).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(wake: &Wake, seen: u64) -> bool {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        rt.block_on(async { tokio::time::timeout(Duration::from_millis(20), wake.asked_after(seen)).await.is_ok() })
    }

    #[test]
    fn a_sync_covers_every_ask_made_before_it_started_and_no_later_one() {
        let wake = Wake::default();
        assert!(!ready(&wake, wake.asked()), "nothing asked");
        // Three notices while the sync waited out the gap: the sync that
        // then starts covers them, and nothing is pending after it.
        let before = wake.asked();
        wake.nudge();
        wake.nudge();
        wake.nudge();
        assert!(ready(&wake, before));
        let started = wake.asked();
        assert!(!ready(&wake, started), "no second sync for notices the first one covered");
        // One while it runs: one more sync.
        wake.nudge();
        assert!(ready(&wake, started));
    }
}
