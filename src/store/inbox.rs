//! Where received CAP messages enter the kiosk: `CACHE/alerts.json`.
//!
//! Several writers may deliver messages (the feed sync, each upstream
//! source), so every change is a short read-modify-write through the
//! alerts' writer, which only their lock hands out
//! ([`Cache::alert_writer`]: never the writer's lock, which a USB copy
//! holds), saved atomically and only when something changed. The player
//! only reads ([`load`]).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;

use crate::core::alert::authority::Authority;
use crate::core::alert::cap::{self, Alert};
use crate::core::alert::store::{self, Lifetimes, Outcome, Store, StoreError};
use crate::store::cache::Cache;

/// A message as received: parsed, with its text.
pub type Message = (Alert, String);

/// What decides what a delivery may do (from the config).
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub lifetimes: Lifetimes,
    pub authority: Authority,
    /// Where the screen is: a warning for elsewhere is not kept (so a
    /// national source's hundreds of warnings never crowd out this
    /// screen's own under the per-source cap). Cancels and updates are
    /// kept whatever their area: they end what they reference.
    pub place: crate::core::alert::target::Place,
}

/// The alert store of one cache folder.
#[derive(Debug, Clone)]
pub struct Inbox {
    cache: Cache,
}

/// Reads the store at `path`; a missing file is an empty store.
pub fn load(path: &Path) -> Result<Store, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => Store::from_bytes(path, &bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Store::default()),
        Err(source) => Err(StoreError::Io { path: path.to_path_buf(), source }),
    }
}

impl Inbox {
    pub fn new(cache_root: &Path) -> Inbox {
        Inbox { cache: Cache::at(cache_root) }
    }

    /// The cache folder the store lives in.
    pub fn dir(&self) -> &Path {
        self.cache.root()
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    pub fn path(&self) -> PathBuf {
        self.dir().join(store::FILE)
    }

    /// Reads the store (for the player and `estation status`).
    pub fn load(&self) -> Result<Store, StoreError> {
        load(&self.path())
    }

    /// Applies `messages` from `source` (oldest first), acting only where
    /// the rules' authority lets the source, keeping only what is for this
    /// screen, and drops what ended by `now`. Returns each message's
    /// outcome; what was refused is logged once per call.
    pub fn receive(&self, mut messages: Vec<Message>, source: &str, now: DateTime<Utc>, rules: &Rules) -> Result<Vec<Outcome>, StoreError> {
        let writer = self.cache.alert_writer().map_err(|e| match e {
            crate::store::cache::CacheError::Io { path, source } => StoreError::Io { path, source },
            other => StoreError::Io { path: self.path(), source: std::io::Error::other(other.to_string()) },
        })?;
        let path = self.path();
        let mut store = match load(&path) {
            Ok(s) => s,
            // A store that cannot be read must not stop new warnings: start
            // afresh, keeping the bad file aside for a look.
            Err(e @ StoreError::Format { .. }) => {
                tracing::error!("{e}; starting a new alert store");
                writer.set_aside_alerts();
                Store::default()
            }
            Err(e) => return Err(e),
        };
        messages.sort_by_key(|(a, _)| store::believed_sent(a.sent, now));
        let before = store.clone();
        let mut outcomes = Vec::new();
        let (mut flood, mut not_allowed) = (None, 0);
        for (alert, xml) in messages {
            let key = store::key(&alert);
            let elsewhere = !alert.ends_others() && !alert.infos.is_empty() && !alert.infos.iter().any(|i| rules.place.is_targeted_by(i));
            let o = if elsewhere { Outcome::Ignored("not for this screen's area") } else { store.apply(alert, xml, source, now, &rules.authority) };
            match &o {
                Outcome::Duplicate => {}
                Outcome::Refused(why) => {
                    flood.get_or_insert((*why, 0)).1 += 1;
                }
                o if o.changed() => tracing::info!("alert {key} from {source}: {o:?}"),
                o => tracing::debug!("alert {key} from {source}: {o:?}"),
            }
            if let Outcome::Added { refused, .. } | Outcome::Ended { refused, .. } = &o {
                not_allowed += refused;
            }
            outcomes.push(o);
        }
        if let Some((why, n)) = flood {
            tracing::warn!("alerts: {source}: {n} message(s) refused: {why} (the warnings in force stay)");
        }
        if not_allowed > 0 {
            tracing::warn!("alerts: {source}: {not_allowed} reference(s) to messages of another source ignored (a source may only update or cancel its own messages; see [[alerts.source]] authority_for)");
        }
        store.prune(now, &rules.lifetimes);
        if store != before {
            writer.save_alerts(&store).map_err(|source| StoreError::Io { path, source })?;
        }
        Ok(outcomes)
    }
}

/// The CAP messages of the feed: those of its warnings document
/// (`alerts.json`) and, from a feed built before it existed, those its
/// current manifest lists. Each is a file whose sha256 a signed document
/// names, checked when it entered the cache.
pub fn feed_messages(cache: &Cache, key: &VerifyingKey) -> Vec<Message> {
    let mut files = Vec::new();
    match cache.current(key) {
        Ok(Some(v)) => files.extend(v.manifest.alerts.iter().map(|b| cache.blob_path(&b.sha256))),
        Ok(None) => {}
        Err(e) => tracing::warn!("alerts: {e}"),
    }
    match cache.current_alerts(key) {
        Ok(Some(v)) => files.extend(v.doc.alerts.iter().map(|b| cache.feed_alert_path(&b.sha256))),
        Ok(None) => {}
        Err(e) => tracing::warn!("alerts: {e}"),
    }
    let mut out = Vec::new();
    for path in files {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("alerts: {}: {e}", path.display());
                continue;
            }
        };
        match cap::parse(&path, &bytes) {
            Ok(p) => out.push((p.alert, crate::core::alert::xml::utf8_text(&bytes))),
            Err(e) => tracing::warn!("alerts: feed alert not used: {e}"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str, msg_type: &str, refs: &str) -> Message {
        let references = if refs.is_empty() { String::new() } else { format!("<references>{refs}</references>") };
        let xml = format!(
            "<alert xmlns=\"{}\"><identifier>{id}</identifier><sender>s</sender><sent>2026-07-01T0{}:00:00+08:00</sent>\
             <status>Actual</status><msgType>{msg_type}</msgType><scope>Public</scope>{references}\
             <info><category>Met</category><event>暴雨</event><urgency>Immediate</urgency><severity>Extreme</severity>\
             <certainty>Likely</certainty><expires>2026-07-01T20:00:00+08:00</expires></info></alert>",
            cap::NS_12,
            if msg_type == "Alert" { 8 } else { 9 }
        );
        (cap::parse(Path::new("t"), xml.as_bytes()).unwrap().alert, xml)
    }

    #[test]
    fn receives_in_sent_order_and_saves_only_changes() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::new(dir.path());
        let now = DateTime::parse_from_rfc3339("2026-07-01T10:00:00+08:00").unwrap().with_timezone(&Utc);
        let rules = Rules::default();
        // The cancel arrives first in the list; sent order puts it after.
        let out = inbox.receive(vec![msg("c", "Cancel", "s,a,2026-07-01T08:00:00+08:00"), msg("a", "Alert", "")], "feed", now, &rules).unwrap();
        assert_eq!(out, [Outcome::Added { replaced: 0, refused: 0 }, Outcome::Ended { ended: 1, refused: 0 }]);
        assert!(inbox.load().unwrap().entries().is_empty());
        let mtime = std::fs::metadata(inbox.path()).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        inbox.receive(vec![msg("c", "Cancel", "s,a,2026-07-01T08:00:00+08:00")], "feed", now, &rules).unwrap();
        inbox.receive(vec![msg("a", "Alert", "")], "feed", now, &rules).unwrap();
        assert_eq!(std::fs::metadata(inbox.path()).unwrap().modified().unwrap(), mtime, "nothing new: not rewritten");
        // A damaged store is set aside, not fatal.
        std::fs::write(inbox.path(), b"{").unwrap();
        inbox.receive(vec![msg("b", "Alert", "")], "feed", now, &rules).unwrap();
        assert_eq!(inbox.load().unwrap().entries().len(), 1);
        assert!(dir.path().join("alerts.json.bad").exists());
    }

    #[test]
    fn warnings_for_elsewhere_are_not_kept_but_their_cancels_are() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::new(dir.path());
        let now = DateTime::parse_from_rfc3339("2026-07-01T10:00:00+08:00").unwrap().with_timezone(&Utc);
        let rules = Rules { place: crate::core::alert::target::Place { region: Some("110101".into()), ..Default::default() }, ..Rules::default() };
        let (a, xml) = msg("a", "Alert", "");
        let xml = xml.replace("</info>", "<area><areaDesc>长兴</areaDesc><geocode><valueName>CPEAS Geographic Code</valueName><value>330522000000</value></geocode></area></info>");
        let a = cap::parse(Path::new("t"), xml.as_bytes()).map(|p| p.alert).unwrap_or(a);
        let out = inbox.receive(vec![(a, xml), msg("c", "Cancel", "s,z,2026-07-01T08:00:00+08:00")], "https://up.example/", now, &rules).unwrap();
        assert_eq!(out[0], Outcome::Ignored("not for this screen's area"));
        assert_eq!(out[1], Outcome::Ended { ended: 0, refused: 0 }, "a Cancel is kept whatever its area");
        assert!(inbox.load().unwrap().entries().is_empty());
    }
}
