//! `--push`: after a publish, a notice to the office's MQTT broker, so the
//! screens it concerns sync at once instead of at their next poll.

use std::path::{Path, PathBuf};

use crate::core::push::{Notice, Topics};

/// The broker options of `feed build`, `alert publish` and `alert cancel`.
/// The password comes only from `ESTATION_PUSH_PASSWORD` (a command line
/// is visible to every user of the machine).
#[derive(Debug, Clone, clap::Args)]
pub struct PushArgs {
    /// The broker to notify, `mqtts://HOST[:PORT]` (or `mqtt://` with
    /// --push-allow-plain).
    #[arg(long, value_name = "URL", env = "ESTATION_PUSH_URL")]
    pub push: Option<String>,
    /// The broker user allowed to publish (see packaging/mosquitto).
    #[arg(long, value_name = "USER", env = "ESTATION_PUSH_USER", default_value = "estation-publisher")]
    pub push_user: String,
    /// A PEM file of the CA that signed the broker's certificate.
    #[arg(long, value_name = "PEM", env = "ESTATION_PUSH_CA")]
    pub push_ca: Option<PathBuf>,
    /// The kiosks' `[push] topic_prefix`.
    #[arg(long, value_name = "PREFIX", env = "ESTATION_PUSH_PREFIX", default_value = crate::core::push::DEFAULT_PREFIX)]
    pub push_prefix: String,
    /// Allow `mqtt://` without TLS (a broker on the LAN).
    #[arg(long)]
    pub push_allow_plain: bool,
}

impl PushArgs {
    /// Sends the notice of the feed's new `document` (`manifest.json`,
    /// `alerts.json`) to the topics `to` picks.
    /// A notice that cannot be sent is a warning, not a failure: what was
    /// published is in the feed, and screens get it at their next poll.
    pub fn notify(&self, feed: &Path, document: &str, version: u64, to: impl FnOnce(&Topics) -> Vec<String>) {
        let Some(url) = &self.push else { return };
        match self.send(url, feed, document, version, to) {
            Ok(topics) => println!("push: notice sent to {}", topics.join(", ")),
            Err(e) => eprintln!("warning: push: {e:#}; screens get this at their next poll"),
        }
    }

    #[cfg(feature = "net")]
    fn send(&self, url: &str, feed: &Path, document: &str, version: u64, to: impl FnOnce(&Topics) -> Vec<String>) -> anyhow::Result<Vec<String>> {
        use anyhow::Context as _;
        let path = feed.join(document);
        let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
        let notice = Notice::new(document, version, &bytes).to_bytes();
        let topics = to(&self.topics()?);
        self.publish(url, topics.iter().map(|t| (t.clone(), notice.clone())).collect())?;
        Ok(topics)
    }

    #[cfg(not(feature = "net"))]
    fn send(&self, _url: &str, _feed: &Path, _document: &str, _version: u64, _to: impl FnOnce(&Topics) -> Vec<String>) -> anyhow::Result<Vec<String>> {
        anyhow::bail!("this build has no network (the `net` feature)")
    }

    /// The topic names of `--push-prefix`.
    pub fn topics(&self) -> anyhow::Result<Topics> {
        if !crate::core::push::valid_prefix(&self.push_prefix) {
            anyhow::bail!("--push-prefix `{}` is not a topic prefix", self.push_prefix);
        }
        Ok(Topics::new(&self.push_prefix))
    }

    /// Sends each `(topic, payload)` to the broker at `url`, QoS 1.
    #[cfg(feature = "net")]
    pub fn publish(&self, url: &str, messages: Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
        use anyhow::Context as _;
        let parsed = url::Url::parse(url).ok().filter(|u| u.scheme() == "mqtts" || self.push_allow_plain && u.scheme() == "mqtt");
        let parsed = parsed.with_context(|| format!("`{url}` is not an mqtts:// URL (--push-allow-plain for mqtt://)"))?;
        let password = std::env::var("ESTATION_PUSH_PASSWORD").ok();
        let broker = crate::net::push::Broker::new(&parsed, Some(&self.push_user), password.as_deref(), self.push_ca.as_deref())?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(crate::net::push::publish(&broker, &messages, std::time::Duration::from_secs(15)))?;
        Ok(())
    }

    #[cfg(not(feature = "net"))]
    pub fn publish(&self, _url: &str, _messages: Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
        anyhow::bail!("this build has no network (the `net` feature)")
    }
}
