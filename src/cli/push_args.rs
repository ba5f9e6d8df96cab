//! `--push` on the command line: after a publish, a notice to the office's
//! MQTT broker, so the screens it concerns sync at once instead of at their
//! next poll (the options are `config::push_args`).

use std::path::Path;

use crate::config::push_args::PushArgs;
use crate::core::push::Topics;

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
        let notice = crate::core::push::Notice::new(document, version, &bytes).to_bytes();
        let topics = to(&self.topics().map_err(anyhow::Error::msg)?);
        self.publish(url, topics.iter().map(|t| (t.clone(), notice.clone())).collect())?;
        Ok(topics)
    }

    #[cfg(not(feature = "net"))]
    fn send(&self, _url: &str, _feed: &Path, _document: &str, _version: u64, _to: impl FnOnce(&Topics) -> Vec<String>) -> anyhow::Result<Vec<String>> {
        anyhow::bail!("this build has no network (the `net` feature)")
    }

    /// Sends each `(topic, payload)` to the broker at `url`, QoS 1.
    #[cfg(feature = "net")]
    pub fn publish(&self, url: &str, messages: Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
        let url = self.checked_url(url).map_err(anyhow::Error::msg)?;
        let broker = self.broker(&url)?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(crate::net::push::publish(&broker, &messages, std::time::Duration::from_secs(15)))?;
        Ok(())
    }

    #[cfg(not(feature = "net"))]
    pub fn publish(&self, _url: &str, _messages: Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
        anyhow::bail!("this build has no network (the `net` feature)")
    }
}
