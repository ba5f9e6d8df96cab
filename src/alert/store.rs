//! The kiosk's alert store: which warnings are in force, kept on disk so they
//! survive restarts, power cuts and days offline.
//!
//! Messages are applied in the order they arrive, from any source, by CAP's
//! rules: `Alert` adds; `Update` replaces what it references; `Cancel` (and an
//! all-clear) ends it; `Ack`/`Error`, `System` and `Draft` are never shown.
//! What ended is remembered ("tombstones"), so a late copy of a cancelled
//! message, replayed by a feed or arriving out of order, is not shown again.
//!
//! References are matched by identifier and sender, where the sender may be
//! spelt as in the referencing message itself (real feeds disagree on the
//! sender's spelling between a message and its references); the `sent` of a
//! reference is not relied upon (producers put odd times there).
//!
//! Sync writes the store (`CACHE/alerts.json`, atomically); the player reads it.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

use super::cap::{self, Alert, MsgType, Reference, Status};

pub const FILE: &str = "alerts.json";
const FORMAT: &str = "estation-alerts/1";
/// How long an ended message is remembered.
const TOMBSTONE_DAYS: i64 = 30;

/// One message in force (or waiting for its `effective` time).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub alert: Alert,
    /// The message as received, kept so the store reloads with the same reader.
    pub xml: String,
    /// Where it came from: `feed` or the upstream URL.
    pub source: String,
    pub received: DateTime<Utc>,
}

impl Entry {
    /// Identity for logs, the screen and references.
    pub fn key(&self) -> String {
        key(&self.alert)
    }
}

/// `sender,identifier,sent` as CAP references write it.
pub fn key(a: &Alert) -> String {
    format!("{},{},{}", a.sender, a.identifier, a.sent.to_rfc3339())
}

/// A message that was ended by a Cancel, Update or all-clear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ended {
    pub sender: String,
    pub identifier: String,
    /// `sent` of the message that ended it: copies sent up to then are over.
    pub by_sent: DateTime<FixedOffset>,
    pub at: DateTime<Utc>,
}

/// What applying one message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new message in force (`replaced` earlier ones it updates).
    Added { replaced: usize },
    /// A Cancel or all-clear; `ended` messages were in the store.
    Ended { ended: usize },
    /// Seen before (same sender, identifier and sent).
    Duplicate,
    /// Cancelled or updated before it arrived.
    Superseded,
    /// Never shown (Ack, Error, System, Draft, an all-clear for nothing).
    Ignored(&'static str),
}

impl Outcome {
    pub fn changed(&self) -> bool {
        matches!(self, Outcome::Added { .. } | Outcome::Ended { ended: 1.. })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not an alert store: {message}")]
    Format { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Store {
    entries: Vec<Entry>,
    ended: Vec<Ended>,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    format: String,
    entries: Vec<DiskEntry>,
    ended: Vec<Ended>,
}

#[derive(Serialize, Deserialize)]
struct DiskEntry {
    source: String,
    received: DateTime<Utc>,
    xml: String,
}

fn same_sender(entry: &Alert, reference: &Reference, referrer: &Alert) -> bool {
    entry.sender == reference.sender || entry.sender == referrer.sender
}

impl Store {
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Applies one message received at `now`.
    pub fn apply(&mut self, alert: Alert, xml: String, source: &str, now: DateTime<Utc>) -> Outcome {
        match alert.msg_type {
            MsgType::Ack | MsgType::Error => return Outcome::Ignored("Ack and Error messages are not shown"),
            _ => {}
        }
        match alert.status {
            Status::System => return Outcome::Ignored("status System is network-internal"),
            Status::Draft => return Outcome::Ignored("status Draft is not actionable"),
            _ => {}
        }
        let k = key(&alert);
        if self.entries.iter().any(|e| e.key() == k) {
            return Outcome::Duplicate;
        }
        if self.is_ended(&alert) {
            return Outcome::Superseded;
        }
        // The same identifier sent again: the newer copy is the one in force.
        let same_id = |e: &Entry| e.alert.identifier == alert.identifier && e.alert.sender == alert.sender;
        if self.entries.iter().any(|e| same_id(e) && e.alert.sent > alert.sent) {
            return Outcome::Superseded;
        }
        let ends = alert.ends_others();
        if ends && alert.references.is_empty() {
            return Outcome::Ignored("an all-clear that references nothing");
        }
        // End what this message references (and an older copy of itself).
        let before = self.entries.len();
        let mut by_sent = alert.sent;
        let mut removed_sent = Vec::new();
        self.entries.retain(|e| {
            let referenced = alert.references.iter().any(|r| e.alert.identifier == r.identifier && same_sender(&e.alert, r, &alert));
            if referenced || same_id(e) {
                removed_sent.push(e.alert.sent);
                false
            } else {
                true
            }
        });
        // Tombstones cover everything this message ended, even if its
        // sender's clock was behind theirs.
        by_sent = removed_sent.into_iter().chain(alert.references.iter().filter_map(|r| DateTime::parse_from_rfc3339(&r.sent).ok())).fold(by_sent, Ord::max);
        for r in &alert.references {
            let tomb = Ended { sender: r.sender.clone(), identifier: r.identifier.clone(), by_sent, at: now };
            // Remember under both spellings of the sender.
            let own = Ended { sender: alert.sender.clone(), ..tomb.clone() };
            for t in [tomb, own] {
                match self.ended.iter_mut().find(|x| x.sender == t.sender && x.identifier == t.identifier) {
                    Some(x) if x.by_sent >= t.by_sent => {}
                    Some(x) => *x = t,
                    None => self.ended.push(t),
                }
            }
        }
        let removed = before - self.entries.len();
        if ends {
            return Outcome::Ended { ended: removed };
        }
        self.entries.push(Entry { alert, xml, source: source.to_string(), received: now });
        Outcome::Added { replaced: removed }
    }

    /// A message is over if an Update/Cancel sent at or after it named it.
    fn is_ended(&self, a: &Alert) -> bool {
        self.ended.iter().any(|t| t.identifier == a.identifier && t.sender == a.sender && a.sent <= t.by_sent)
    }

    /// Drops messages whose every block has ended (see [`Lifetimes`]) and
    /// old tombstones. Returns whether anything was dropped.
    pub fn prune(&mut self, now: DateTime<Utc>, life: &Lifetimes) -> bool {
        let before = (self.entries.len(), self.ended.len());
        self.entries.retain(|e| {
            e.alert.infos.is_empty() && now < e.received + life.default
                || e.alert.infos.iter().any(|i| now < life.window(&e.alert, i).1)
        });
        self.ended.retain(|t| now < t.at + Duration::days(TOMBSTONE_DAYS));
        before != (self.entries.len(), self.ended.len())
    }

    /// Reads the store; a missing file is an empty store.
    pub fn load(path: &Path) -> Result<Store, StoreError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Store::default()),
            Err(source) => return Err(StoreError::Io { path: path.to_path_buf(), source }),
        };
        let disk: OnDisk = serde_json::from_slice(&bytes).map_err(|e| StoreError::Format { path: path.to_path_buf(), message: e.to_string() })?;
        if disk.format != FORMAT {
            return Err(StoreError::Format { path: path.to_path_buf(), message: format!("format `{}`, expected `{FORMAT}`", disk.format) });
        }
        let mut store = Store { entries: Vec::new(), ended: disk.ended };
        for d in disk.entries {
            // Written by us after the same check, so this only fails if a
            // newer reader is stricter; such an entry is dropped, not fatal.
            match cap::parse_with(Path::new(&d.source), d.xml.as_bytes(), cap::Mode::Lenient) {
                Ok(p) => store.entries.push(Entry { alert: p.alert, xml: d.xml, source: d.source, received: d.received }),
                Err(e) => tracing::warn!("{}: dropping a stored alert that no longer reads: {e}", path.display()),
            }
        }
        Ok(store)
    }

    /// Writes the store atomically.
    pub fn save(&self, path: &Path) -> Result<(), StoreError> {
        let disk = OnDisk {
            format: FORMAT.into(),
            entries: self.entries.iter().map(|e| DiskEntry { source: e.source.clone(), received: e.received, xml: e.xml.clone() }).collect(),
            ended: self.ended.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&disk).map_err(|e| StoreError::Format { path: path.to_path_buf(), message: e.to_string() })?;
        crate::atomic::write(path, &bytes).map_err(|source| StoreError::Io { path: path.to_path_buf(), source })
    }
}

/// When a block is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// For a block without `expires` (CAP gives it no end).
    pub default: Duration,
    /// Upper bound on any block's life: real feeds carry far-future (and
    /// Buddhist-era) years, which must not pin a warning to the screen.
    pub max: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes { default: Duration::hours(12), max: Duration::days(30) }
    }
}

impl Lifetimes {
    /// `[start, end)` of a block: from `effective` (CAP's default: `sent`)
    /// until `expires`, or the default lifetime when it has none.
    pub fn window(&self, alert: &Alert, info: &cap::Info) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = info.effective.unwrap_or(alert.sent).with_timezone(&Utc);
        let sent = alert.sent.with_timezone(&Utc);
        let end = info.expires.map_or(start + self.default, |e| e.with_timezone(&Utc));
        (start, end.min(sent.max(start) + self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str, sent: &str, msg_type: &str, refs: &str, extra_info: &str) -> (Alert, String) {
        let references = if refs.is_empty() { String::new() } else { format!("<references>{refs}</references>") };
        let xml = format!(
            "<alert xmlns=\"{}\"><identifier>{id}</identifier><sender>qxt</sender><sent>{sent}</sent>\
             <status>Actual</status><msgType>{msg_type}</msgType><scope>Public</scope>{references}\
             <info><category>Met</category><event>暴雨</event>{extra_info}<urgency>Immediate</urgency>\
             <severity>Extreme</severity><certainty>Likely</certainty>\
             <expires>2026-07-01T20:00:00+08:00</expires></info></alert>",
            cap::NS_12
        );
        (cap::parse(Path::new("t"), xml.as_bytes()).unwrap().alert, xml)
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const T0: &str = "2026-07-01T08:00:00+08:00";
    const T1: &str = "2026-07-01T09:00:00+08:00";
    const T2: &str = "2026-07-01T10:00:00+08:00";

    fn apply(s: &mut Store, m: (Alert, String)) -> Outcome {
        s.apply(m.0, m.1, "feed", at(T2))
    }

    #[test]
    fn alert_update_cancel() {
        let mut s = Store::default();
        assert_eq!(apply(&mut s, msg("a", T0, "Alert", "", "")), Outcome::Added { replaced: 0 });
        assert_eq!(apply(&mut s, msg("a", T0, "Alert", "", "")), Outcome::Duplicate);
        assert_eq!(apply(&mut s, msg("b", T1, "Update", &format!("qxt,a,{T0}"), "")), Outcome::Added { replaced: 1 });
        assert_eq!(s.entries().len(), 1);
        assert_eq!(s.entries()[0].alert.identifier, "b");
        let cancel = msg("c", T2, "Cancel", &format!("qxt,a,{T0} qxt,b,{T1}"), "");
        assert_eq!(apply(&mut s, cancel), Outcome::Ended { ended: 1 });
        assert!(s.entries().is_empty());
        // A late copy of the original (a feed replay) stays cancelled.
        assert_eq!(apply(&mut s, msg("a", T0, "Alert", "", "")), Outcome::Superseded);
        assert_eq!(apply(&mut s, msg("b", T1, "Update", &format!("qxt,a,{T0}"), "")), Outcome::Superseded);
    }

    #[test]
    fn a_cancel_before_its_alert_keeps_the_alert_off() {
        let mut s = Store::default();
        assert_eq!(apply(&mut s, msg("c", T2, "Cancel", &format!("qxt,a,{T0}"), "")), Outcome::Ended { ended: 0 });
        assert_eq!(apply(&mut s, msg("a", T0, "Alert", "", "")), Outcome::Superseded);
    }

    #[test]
    fn all_clear_ends_like_a_cancel_and_other_types_are_ignored() {
        let mut s = Store::default();
        apply(&mut s, msg("a", T0, "Alert", "", ""));
        let clear = msg("b", T1, "Update", &format!("qxt,a,{T0}"), "<responseType>AllClear</responseType>");
        assert_eq!(apply(&mut s, clear), Outcome::Ended { ended: 1 });
        assert!(s.entries().is_empty());
        assert!(matches!(apply(&mut s, msg("x", T0, "Ack", &format!("qxt,a,{T0}"), "")), Outcome::Ignored(_)));
        let (mut sys, xml) = msg("y", T0, "Alert", "", "");
        sys.status = Status::System;
        assert!(matches!(s.apply(sys, xml, "feed", at(T2)), Outcome::Ignored(_)));
    }

    #[test]
    fn references_match_on_identifier_with_either_sender_spelling() {
        let mut s = Store::default();
        apply(&mut s, msg("a", T0, "Alert", "", ""));
        // Sent time in the reference differs, sender spelt differently.
        let upd = msg("b", T1, "Update", "https://qxt.example/cap,a,2026-07-01T07:59:00+08:00", "");
        assert_eq!(apply(&mut s, upd), Outcome::Added { replaced: 1 });
        // A self-referencing update replaces the earlier message of the same id.
        let again = msg("b", T2, "Update", &format!("qxt,b,{T1}"), "");
        assert_eq!(apply(&mut s, again), Outcome::Added { replaced: 1 });
        assert_eq!(s.entries().len(), 1);
        assert_eq!(s.entries()[0].alert.sent, DateTime::parse_from_rfc3339(T2).unwrap());
    }

    #[test]
    fn a_cancel_with_an_earlier_clock_still_keeps_its_target_off() {
        let mut s = Store::default();
        apply(&mut s, msg("a", T1, "Alert", "", ""));
        // The canceller's clock is an hour behind the sender's.
        assert_eq!(apply(&mut s, msg("c", T0, "Cancel", &format!("qxt,a,{T1}"), "")), Outcome::Ended { ended: 1 });
        assert_eq!(apply(&mut s, msg("a", T1, "Alert", "", "")), Outcome::Superseded, "the feed replays it");
    }

    #[test]
    fn the_same_identifier_sent_again_replaces_the_older_copy() {
        let mut s = Store::default();
        apply(&mut s, msg("a", T0, "Alert", "", ""));
        assert_eq!(apply(&mut s, msg("a", T1, "Alert", "", "")), Outcome::Added { replaced: 1 });
        assert_eq!(s.entries().len(), 1);
        assert_eq!(apply(&mut s, msg("a", T0, "Alert", "", "")), Outcome::Superseded, "an older copy arriving late");
    }

    #[test]
    fn expiry_and_default_lifetime_prune_on_the_clock_alone() {
        let life = Lifetimes::default();
        let mut s = Store::default();
        apply(&mut s, msg("a", T0, "Alert", "", ""));
        assert!(!s.prune(at("2026-07-01T19:59:59+08:00"), &life));
        assert!(s.prune(at("2026-07-01T20:00:00+08:00"), &life), "gone on the second it expires");
        assert!(s.entries().is_empty());

        let (mut a, xml) = msg("n", T0, "Alert", "", "");
        a.infos[0].expires = None;
        s.apply(a.clone(), xml, "feed", at(T0));
        assert_eq!(life.window(&a, &a.infos[0]).1, at("2026-07-01T20:00:00+08:00"), "12 h default");
        a.infos[0].expires = Some(DateTime::parse_from_rfc3339("2568-07-01T20:00:00+07:00").unwrap());
        assert_eq!(life.window(&a, &a.infos[0]).1, at("2026-07-31T08:00:00+08:00"), "clamped to 30 days");
    }

    #[test]
    fn survives_a_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let mut s = Store::default();
        apply(&mut s, msg("a", T0, "Alert", "", ""));
        apply(&mut s, msg("c", T1, "Cancel", &format!("qxt,z,{T0}"), ""));
        s.save(&path).unwrap();
        let back = Store::load(&path).unwrap();
        assert_eq!(back, s);
        assert_eq!(Store::load(&dir.path().join("none.json")).unwrap(), Store::default());
        std::fs::write(&path, b"{\"format\":\"other\",\"entries\":[],\"ended\":[]}").unwrap();
        assert!(Store::load(&path).unwrap_err().to_string().contains("format `other`"));
    }
}
