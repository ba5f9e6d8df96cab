//! Upstream CAP sources: a URL of one CAP document, or an Atom/RSS index
//! whose entries link to or embed CAP, as national services publish them.
//!
//! Each source is polled on its own interval with a conditional GET, so an
//! unchanged index costs one small request. Linked messages are fetched once
//! (CAP messages do not change; a new version has a new identifier and, in
//! practice, a new URL). One bad entry is logged and skipped, never the
//! whole source. Upstream sources are trusted by TLS (https is required
//! unless the config allows plain http for a server on the LAN); nothing a
//! message itself links to is fetched here, except its audio, which
//! [`super::alert_media`] fetches into the cache for the player.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use chrono::Utc;

use crate::net::http::{Get, HttpError};

use crate::core::alert::index::{self, Content, Document};
use crate::store::inbox::{Inbox, Message, Rules};
use crate::core::alert::{cap, xml};

/// Servers that negotiate the format (api.weather.gov answers GeoJSON by
/// default) are asked for CAP, then Atom/RSS, then any XML.
const ACCEPT_CAP: &str = "application/cap+xml, application/atom+xml;q=0.9, application/rss+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8";

/// Links remembered as fetched, per source (a busy national index lists a
/// few hundred entries).
const REMEMBER_LINKS: usize = 2000;
/// Largest linked CAP message fetched (the index itself may be up to
/// [`xml::MAX_BYTES`]); an embedded audio resource fits in this.
const MAX_MESSAGE_BYTES: u64 = 4 << 20;
/// Most linked messages fetched in one poll; the rest come at the next.
const MAX_LINKS_PER_POLL: usize = 64;
/// Most bytes of messages one poll holds in memory.
const MAX_POLL_BYTES: usize = 32 << 20;
/// Longest a whole request may take, however slowly the server trickles.
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// Why a poll of an upstream source took nothing.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("`{url}`: {source}")]
    BadUrl {
        url: String,
        #[source]
        source: url::ParseError,
    },
    #[error("HTTP client: {}", crate::net::http::describe(.0))]
    Client(#[source] reqwest::Error),
    #[error("{url}: {source}")]
    Http {
        url: String,
        #[source]
        source: HttpError,
    },
    /// The document is neither CAP nor an Atom/RSS index of it.
    #[error("{0}")]
    Document(#[from] crate::core::diag::Diagnostics),
    /// A link answered with something that is no CAP at all (a captive
    /// portal's page, a proxy's error): perhaps a passing fault.
    #[error("{url}: not a CAP message ({why})")]
    NotCap { url: String, why: crate::core::diag::Diagnostics },
    #[error("{url}: not fetched over {scheme} (the index is {index})")]
    Scheme { url: String, scheme: String, index: String },
    #[error(transparent)]
    Store(#[from] crate::core::alert::store::StoreError),
}

/// One upstream source being polled.
pub struct Upstream {
    url: reqwest::Url,
    client: reqwest::Client,
    etag: Option<String>,
    last_modified: Option<String>,
    fetched: VecDeque<String>,
    /// What the last poll saw, made permanent by `commit` once
    /// its messages are safely in the store.
    pending: Option<Seen>,
    media: super::alert_media::Rules,
}

/// Why a linked message was not taken: for now (tried again at the next
/// poll), or for good.
enum Skip {
    Again(UpstreamError),
    For(UpstreamError),
}

/// What one poll took: the links fetched, and the document's validators
/// only when every entry was taken (so a failed or deferred link is
/// fetched again at the next poll rather than hidden behind a 304).
struct Seen {
    validators: Option<(Option<String>, Option<String>)>,
    links: Vec<String>,
}

impl Upstream {
    /// A source at `url`; its messages' linked audio is fetched by `media`'s rules.
    pub fn new(url: &str, media: super::alert_media::Rules) -> Result<Upstream, UpstreamError> {
        let url = reqwest::Url::parse(url).map_err(|source| UpstreamError::BadUrl { url: url.to_string(), source })?;
        let client = crate::net::http::client_builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(REQUEST_DEADLINE)
            .build()
            .map_err(UpstreamError::Client)?;
        Ok(Upstream { url, client, etag: None, last_modified: None, fetched: VecDeque::new(), pending: None, media })
    }

    /// One poll: returns the messages found that were not seen before, or
    /// an empty list when the source is unchanged (304). They count as seen
    /// only once [`Upstream::deliver`] has stored them.
    pub async fn poll(&mut self) -> Result<Vec<Message>, UpstreamError> {
        self.pending = None;
        let fail = |source| UpstreamError::Http { url: self.url.to_string(), source };
        let get = Get { url: &self.url, accept: Some(ACCEPT_CAP), etag: self.etag.as_deref(), last_modified: self.last_modified.as_deref(), deadline: None, max: xml::MAX_BYTES as u64 };
        let got = get.send(&self.client).await.map_err(fail)?;
        let (Some(bytes), etag, last_modified) = (got.body, got.etag, got.last_modified) else { return Ok(Vec::new()) };
        let name = self.url.to_string();
        let doc = index::read_with(Path::new(&name), &bytes, cap::Mode::Lenient)?;
        let mut out = Vec::new();
        let mut seen_links = Vec::new();
        // Whether every entry was taken; bounded work per poll.
        let mut complete = true;
        let (mut links, mut held, mut over) = (0, 0, None);
        match doc {
            Document::Alert(p) => out.push((p.alert, xml::utf8_text(&bytes))),
            Document::Index(entries) => {
                for e in entries {
                    if out.len() >= crate::core::alert::store::MAX_PER_SOURCE || held > MAX_POLL_BYTES {
                        over.get_or_insert("messages or bytes");
                        complete = false;
                        break;
                    }
                    match e.content {
                        Content::Embedded(emb) => {
                            // Taken once, like a link: a poll goes on past
                            // the entries the last one took.
                            let seen_key = format!("{} {}", e.id, e.updated.as_deref().unwrap_or_default());
                            if self.fetched.contains(&seen_key) {
                                continue;
                            }
                            seen_links.push(seen_key);
                            match emb.result {
                                Ok(p) => {
                                    held += emb.xml.len();
                                    out.push((p.alert, emb.xml));
                                }
                                Err(d) => tracing::warn!("alerts: {name}: entry {} skipped: {d}", e.id),
                            }
                        }
                        Content::Link(link) => {
                            let Ok(url) = self.url.join(&link) else {
                                tracing::warn!("alerts: {name}: entry {}: bad link `{link}`", e.id);
                                continue;
                            };
                            let seen_key = format!("{url} {}", e.updated.as_deref().unwrap_or_default());
                            if self.fetched.contains(&seen_key) {
                                continue;
                            }
                            if links >= MAX_LINKS_PER_POLL {
                                over.get_or_insert("linked messages");
                                complete = false;
                                continue;
                            }
                            links += 1;
                            match self.fetch_one(&url).await {
                                Ok(m) => {
                                    held += m.1.len();
                                    out.push(m);
                                    seen_links.push(seen_key);
                                }
                                // Not remembered, and the index not marked
                                // seen: tried again at the next poll.
                                Err(Skip::Again(err)) => {
                                    complete = false;
                                    tracing::warn!("alerts: {name}: entry {} not fetched (tried again at the next poll): {err}", e.id);
                                }
                                Err(Skip::For(err)) => {
                                    seen_links.push(seen_key);
                                    tracing::warn!("alerts: {name}: entry {} skipped: {err}", e.id);
                                }
                            }
                        }
                        Content::Missing => tracing::warn!("alerts: {name}: entry {} links to nothing", e.id),
                    }
                }
            }
        }
        if let Some(what) = over {
            tracing::warn!("alerts: {name}: more {what} than one poll takes; the rest come at the next poll");
        }
        self.pending = Some(Seen { validators: complete.then_some((etag, last_modified)), links: seen_links });
        Ok(out)
    }

    /// The last poll's messages are stored: remember its validators and links.
    fn commit(&mut self) {
        if let Some(seen) = self.pending.take() {
            if let Some((etag, last_modified)) = seen.validators {
                self.etag = etag;
                self.last_modified = last_modified;
            }
            for l in seen.links {
                self.remember(l);
            }
        }
    }

    /// Fetches the audio the store's messages link to (see `alert_media`).
    async fn fetch_media(client: &reqwest::Client, media: &super::alert_media::Rules, inbox: &Inbox) {
        if let Ok(store) = inbox.load() {
            super::alert_media::sync(client, inbox.cache(), &store, media).await;
        }
    }

    fn remember(&mut self, key: String) {
        if self.fetched.len() >= REMEMBER_LINKS {
            self.fetched.pop_front();
        }
        self.fetched.push_back(key);
    }

    /// Fetches one linked message. `Err(Skip::Again)`: it could not be had
    /// now (network, HTTP error), so the entry is tried at the next poll;
    /// `Err(Skip::For)`: what the link holds is not usable (and a CAP message
    /// at one URL does not change), so it is not fetched again.
    async fn fetch_one(&self, url: &reqwest::Url) -> Result<Message, Skip> {
        if url.scheme() != self.url.scheme() && url.scheme() != "https" {
            return Err(Skip::For(UpstreamError::Scheme { url: url.to_string(), scheme: url.scheme().into(), index: self.url.scheme().into() }));
        }
        let fail = |source| Skip::Again(UpstreamError::Http { url: url.to_string(), source });
        let get = Get { url, accept: Some(ACCEPT_CAP), etag: None, last_modified: None, deadline: None, max: MAX_MESSAGE_BYTES };
        let bytes = get.send(&self.client).await.map_err(fail)?.body.unwrap_or_default();
        // A CAP message that does not read will not read better later; any
        // other answer (a captive portal's page, a proxy's error) may be a
        // passing fault in front of the real message: fetched again.
        let is_alert = [&b"<alert"[..], b":alert", b"urn:oasis:names:tc:emergency:cap"].iter().any(|m| bytes.windows(m.len()).any(|w| w == *m));
        let p = cap::parse_with(Path::new(url.as_str()), &bytes, cap::Mode::Lenient)
            .map_err(|e| if is_alert { Skip::For(e.into()) } else { Skip::Again(UpstreamError::NotCap { url: url.to_string(), why: e }) })?;
        Ok((p.alert, xml::utf8_text(&bytes)))
    }

    /// Polls every `interval` (with a little jitter) until the process ends,
    /// delivering what it finds to `inbox`.
    /// Audio is fetched beside the polls, so a slow audio host never holds
    /// up the next poll (nor a Cancel in it).
    pub async fn forever(mut self, interval: Duration, inbox: Inbox, rules: Rules) {
        let name = self.url.to_string();
        let (client, media) = (self.client.clone(), self.media.clone());
        let polled = tokio::sync::Notify::new();
        let polls = async {
            loop {
                match self.take(&inbox, &rules).await {
                    Ok(0) => tracing::debug!("alerts: {name}: nothing new"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!("alerts: {e}"),
                }
                polled.notify_one();
                tokio::time::sleep(crate::core::sync::backoff::poll_period(interval, fastrand::f64())).await;
            }
        };
        let audio = async {
            loop {
                polled.notified().await;
                Self::fetch_media(&client, &media, &inbox).await;
            }
        };
        tokio::join!(polls, audio);
    }

    /// One poll delivered to `inbox`: new messages are stored (and only then
    /// committed, so a failed store sees them again at the next poll), and
    /// the audio they link to is fetched, retrying what failed before.
    /// Returns how many new messages the source had.
    pub async fn deliver(&mut self, inbox: &Inbox, rules: &Rules) -> Result<usize, UpstreamError> {
        let taken = self.take(inbox, rules).await;
        Self::fetch_media(&self.client, &self.media, inbox).await;
        taken
    }

    /// [`Upstream::deliver`] without the audio.
    async fn take(&mut self, inbox: &Inbox, rules: &Rules) -> Result<usize, UpstreamError> {
        let msgs = self.poll().await?;
        let n = msgs.len();
        let stored = if n == 0 { Ok(()) } else { inbox.receive(msgs, self.url.as_str(), crate::core::trusted_time::now(inbox.cache().trusted_time().as_ref(), Utc::now()).ends, rules).map(drop).map_err(UpstreamError::from) };
        if stored.is_ok() {
            self.commit();
        }
        stored.map(|()| n)
    }
}
