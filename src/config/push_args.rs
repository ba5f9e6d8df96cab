//! The publisher's broker options (`--push` and the rest), shared by
//! `feed build`, `alert publish`, `alert cancel`, `estation command` and
//! `estation-central serve`. The network side is `net::push`.

use std::path::PathBuf;

use crate::core::push::Topics;

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
    /// The topic names of `--push-prefix`.
    pub fn topics(&self) -> Result<Topics, String> {
        if !crate::core::push::valid_prefix(&self.push_prefix) {
            return Err(format!("--push-prefix `{}` is not a topic prefix", self.push_prefix));
        }
        Ok(Topics::new(&self.push_prefix))
    }

    /// `url` checked: `mqtts://`, or `mqtt://` with `--push-allow-plain`.
    pub fn checked_url(&self, url: &str) -> Result<url::Url, String> {
        url::Url::parse(url)
            .ok()
            .filter(|u| u.scheme() == "mqtts" || self.push_allow_plain && u.scheme() == "mqtt")
            .ok_or_else(|| format!("`{url}` is not an mqtts:// URL (--push-allow-plain for mqtt://)"))
    }

    /// The password, from `ESTATION_PUSH_PASSWORD` only.
    pub fn password(&self) -> Option<String> {
        std::env::var("ESTATION_PUSH_PASSWORD").ok()
    }
}
