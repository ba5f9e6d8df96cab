//! Audio that alerts link to (`<resource><uri>`), fetched by sync into
//! `CACHE/alert-media/` so the player, which reads only the cache, can play
//! it after the chime. Only `audio/*` resources are fetched, up to a size
//! cap and within the cache budget, and checked against the CAP `<digest>`
//! (SHA-1) when the message gives one. A failed fetch is retried at the
//! next poll; files no message in the store needs any more are removed.
//!
//! Audio follows the same rule as its message: over `https://`, or over
//! plain `http://` only for a source the config lets use http
//! (`allow_http`), and then only with a digest — a sound from a path no one
//! vouches for, with nothing to check it against, is not played. The feed's
//! messages are signed, but their links are not: their audio needs https.


use sha1::Digest as _;

use crate::core::alert::store::Store;
use crate::store::cache::Cache;

pub use crate::store::cache::{alert_media_path as path_for, ALERT_MEDIA as DIR};
/// Largest audio file fetched (a few minutes of speech in MP3).
const MAX_BYTES: u64 = 8 * 1024 * 1024;
/// Longest one audio fetch may take.
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// What the config allows: the sources whose audio may come over plain
/// http (with a digest), and the cache's budget.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub http_sources: Vec<String>,
    pub budget: u64,
}

impl Rules {
    /// Why the audio at `uri` of a message from `source` is not fetched.
    fn refusal(&self, uri: &str, digest: Option<&str>, source: &str) -> Option<&'static str> {
        if uri.starts_with("https://") {
            return None;
        }
        if !uri.starts_with("http://") {
            return Some("not an http(s) link");
        }
        if !self.http_sources.iter().any(|s| s == source) {
            return Some("plain http, and its message's source is not allowed http (allow_http)");
        }
        digest.is_none().then_some("plain http with no <digest> to check it against")
    }
}

/// The linked audio of every message in the store that the rules allow:
/// (uri, SHA-1 digest). What they refuse is logged.
fn wanted(store: &Store, rules: &Rules) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for e in store.entries() {
        for info in &e.alert.infos {
            for r in &info.resources {
                let audio = r.mime_type.as_deref().is_some_and(|m| m.trim().to_ascii_lowercase().starts_with("audio/"));
                let (true, None, Some(uri)) = (audio, &r.deref, &r.uri) else { continue };
                if out.iter().any(|(u, _)| u == uri) {
                    continue;
                }
                match rules.refusal(uri, r.digest.as_deref(), &e.source) {
                    None => out.push((uri.clone(), r.digest.clone())),
                    Some(why) => tracing::debug!("alerts: audio {uri} of {} not fetched: {why}", e.key()),
                }
            }
        }
    }
    out
}

/// Fetches what is missing and removes what is no longer needed, each
/// change through the alerts' writer (fetched without it).
pub async fn sync(client: &reqwest::Client, cache: &Cache, store: &Store, rules: &Rules) {
    let wanted = wanted(store, rules);
    let write = |f: &dyn Fn(&crate::store::cache::AlertWriter)| match cache.alert_writer() {
        Ok(w) => f(&w),
        Err(e) => tracing::warn!("alerts: audio: {e}"),
    };
    write(&|w| w.remove_alert_media_except(&wanted.iter().map(|(u, _)| u.as_str()).collect::<Vec<_>>()));
    for (uri, digest) in wanted {
        if path_for(cache.root(), &uri).exists() {
            continue;
        }
        match fetch(client, &uri, digest.as_deref()).await {
            Ok(bytes) if cache.used_bytes() + bytes.len() as u64 > rules.budget => {
                tracing::warn!("alerts: audio {uri} not cached: its {} bytes do not fit in the cache budget", bytes.len());
            }
            Ok(bytes) => write(&|w| match w.put_alert_media(&uri, &bytes) {
                Ok(_) => tracing::info!("alerts: audio {uri} cached ({} bytes)", bytes.len()),
                Err(e) => tracing::warn!("alerts: audio {uri}: {}: {e}", path_for(cache.root(), &uri).display()),
            }),
            Err(e) => tracing::warn!("alerts: audio {uri} not fetched: {e}"),
        }
    }
}

/// Why a linked audio file was not kept.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error(transparent)]
    Http(#[from] crate::net::http::HttpError),
    #[error("not a URL: {0}")]
    Url(String),
    #[error("SHA-1 is {got}, the message says {want}")]
    Digest { got: String, want: String },
}

async fn fetch(client: &reqwest::Client, uri: &str, sha1_hex: Option<&str>) -> Result<Vec<u8>, MediaError> {
    let url = reqwest::Url::parse(uri).map_err(|e| MediaError::Url(e.to_string()))?;
    let get = crate::net::http::Get { url: &url, accept: None, etag: None, last_modified: None, deadline: Some(DEADLINE), max: MAX_BYTES };
    let bytes = get.send(client).await?.body.unwrap_or_default();
    if let Some(want) = sha1_hex {
        let got = hex::encode(sha1::Sha1::digest(&bytes));
        if !got.eq_ignore_ascii_case(want.trim()) {
            return Err(MediaError::Digest { got, want: want.to_string() });
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_follows_its_messages_rule() {
        let rules = Rules { http_sources: vec!["http://lan.example/cap.xml".into()], budget: 1 << 30 };
        assert_eq!(rules.refusal("https://a.example/x.mp3", None, "feed"), None);
        assert!(rules.refusal("http://a.example/x.mp3", Some("ab"), "feed").is_some(), "no plain http for a feed message");
        assert!(rules.refusal("http://a.example/x.mp3", Some("ab"), "https://up.example/cap.xml").is_some(), "nor for an https source");
        assert!(rules.refusal("http://a.example/x.mp3", None, "http://lan.example/cap.xml").is_some(), "http without a digest is never played");
        assert_eq!(rules.refusal("http://a.example/x.mp3", Some("ab"), "http://lan.example/cap.xml"), None);
        assert!(rules.refusal("file:///etc/passwd", None, "feed").is_some());
    }
}
