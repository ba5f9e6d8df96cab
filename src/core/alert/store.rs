//! The kiosk's alert store: which warnings are in force, kept on disk so they
//! survive restarts, power cuts and days offline.
//!
//! Messages are applied in the order they arrive by CAP's rules: `Alert`
//! adds; `Update` replaces what it references; `Cancel` (and an all-clear)
//! ends it; `Ack`/`Error`, `System` and `Draft` are never shown. What ended
//! is remembered ("tombstones"), so a late copy of a cancelled message,
//! replayed by a feed or arriving out of order, is not shown again.
//!
//! A message acts only on what its source may act on ([`Authority`]): by
//! default its own source's messages, the signed feed's on all. Tombstones
//! keep the source that made them and keep off only what it could end.
//!
//! References are matched by identifier and sender, where the sender may be
//! spelt as in the referencing message itself (real feeds disagree on the
//! sender's spelling between a message and its references); the `sent` of a
//! reference is not relied upon (producers put odd times there).
//!
//! Time from outside is bounded: a `sent` more than [`FUTURE_SKEW`] after the
//! kiosk received the message counts as sent when received, so a far-future
//! `sent` can neither supersede later copies nor block its identifier, and a
//! message's life is capped from when it was received. The store holds at
//! most [`MAX_PER_SOURCE`] messages of one source and [`MAX_ENTRIES`] in all:
//! a flood is refused, and the warnings already in force stay.
//!
//! Sync writes the store (`CACHE/alerts.json`, atomically); the player reads it.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

use super::authority::Authority;
use super::cap::{self, Alert, MsgType, Reference, Status};
use super::signal;

pub const FILE: &str = "alerts.json";
const FORMAT: &str = "estation-alerts/1";
/// How long an ended message is remembered.
const TOMBSTONE_DAYS: i64 = 30;
/// Most tombstones kept per source (the oldest go first).
const MAX_TOMBSTONES_PER_SOURCE: usize = 4096;
/// Most messages of one source in force at once. A province-wide outbreak
/// of warnings is a few dozen; hundreds from one source is a flood.
pub const MAX_PER_SOURCE: usize = 256;
/// Most messages in the store, all sources together.
pub const MAX_ENTRIES: usize = 2048;
/// Most bytes of message text one source may hold in the store (the text is
/// kept, so the store file is bounded whatever the messages weigh).
pub const MAX_SOURCE_BYTES: usize = 16 << 20;
/// How far ahead of the kiosk's clock a `sent` is believed.
pub const FUTURE_SKEW: Duration = Duration::minutes(15);

/// One message in force (or waiting for its `effective` time).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub alert: Alert,
    /// The message as received, kept so the store reloads with the same reader.
    pub xml: String,
    /// Where it came from: [`super::authority::FEED`] or the upstream URL.
    pub source: String,
    pub received: DateTime<Utc>,
}

impl Entry {
    /// Identity for logs, the screen and references.
    pub fn key(&self) -> String {
        key(&self.alert)
    }

    /// `sent` as the store orders by (see [`believed_sent`]).
    fn sent(&self) -> DateTime<FixedOffset> {
        believed_sent(self.alert.sent, self.received)
    }
}

/// `sender,identifier,sent` as CAP references write it.
pub fn key(a: &Alert) -> String {
    format!("{},{},{}", a.sender, a.identifier, a.sent.to_rfc3339())
}

/// A `sent` more than [`FUTURE_SKEW`] after `received` is not believed: the
/// message counts as sent when it was received.
pub fn believed_sent(sent: DateTime<FixedOffset>, received: DateTime<Utc>) -> DateTime<FixedOffset> {
    if sent.with_timezone(&Utc) > received + FUTURE_SKEW { received.with_timezone(sent.offset()) } else { sent }
}

/// A message that was ended by a Cancel, Update or all-clear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ended {
    pub sender: String,
    pub identifier: String,
    /// `sent` of the message that ended it: copies sent up to then are over.
    pub by_sent: DateTime<FixedOffset>,
    pub at: DateTime<Utc>,
    /// The source of the message that ended it. Stores written before
    /// sources had authority have none: such a tombstone keeps nothing off
    /// (the feed, which carries whole chains, ends them again).
    #[serde(default = "unknown_source")]
    pub by: String,
    /// A Chinese lift ends only the hazards it names (see [`lift_fits`]):
    /// a late copy of a warning of another hazard is not kept off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lifts: Vec<signal::Hazard>,
}

fn unknown_source() -> String {
    "(unknown)".into()
}

/// What applying one message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new message in force (`replaced` earlier ones it updates;
    /// `refused` references to messages its source may not act on).
    Added { replaced: usize, refused: usize },
    /// A Cancel or all-clear; `ended` messages were in the store.
    Ended { ended: usize, refused: usize },
    /// Seen before (same sender, identifier and sent).
    Duplicate,
    /// Cancelled or updated before it arrived.
    Superseded,
    /// Never shown (Ack, Error, System, Draft, an all-clear for nothing).
    Ignored(&'static str),
    /// Not taken: the source or the store is full (a flood).
    Refused(&'static str),
}

impl Outcome {
    pub fn changed(&self) -> bool {
        matches!(self, Outcome::Added { .. } | Outcome::Ended { ended: 1.., .. })
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

/// Whether the all-clear `by` may end `target`: a Chinese lift names a
/// signal (`解除暴雨红色预警`) and ends only a warning of that hazard. A
/// Cancel, or a `responseType` AllClear, ends whatever it references.
fn lift_fits(by: &Alert, target: &Alert) -> bool {
    hazard_fits(&lifted_hazards(by), target)
}

/// The hazards a message lifts when it ends others only by a Chinese lift
/// (empty: it ends whatever it references).
fn lifted_hazards(by: &Alert) -> Vec<signal::Hazard> {
    if by.msg_type == MsgType::Cancel || by.infos.iter().any(|i| i.response_types.contains(&cap::ResponseType::AllClear)) || !by.ends_others() {
        return Vec::new();
    }
    by.infos.iter().filter_map(signal::lifted).filter_map(|l| l.hazard).collect()
}

fn hazard_fits(lifted: &[signal::Hazard], target: &Alert) -> bool {
    match signal::of_alert(target).and_then(|s| s.hazard) {
        Some(h) if !lifted.is_empty() => lifted.contains(&h),
        _ => true,
    }
}

impl Store {
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Applies one message from `source` received at `now`, acting only on
    /// what `authority` lets that source act on.
    pub fn apply(&mut self, alert: Alert, xml: String, source: &str, now: DateTime<Utc>, authority: &Authority) -> Outcome {
        match alert.msg_type {
            MsgType::Ack | MsgType::Error => return Outcome::Ignored("Ack and Error messages are not shown"),
            _ => {}
        }
        match alert.status {
            Status::System => return Outcome::Ignored("status System is network-internal"),
            Status::Draft => return Outcome::Ignored("status Draft is not actionable"),
            _ => {}
        }
        // The same message again, from a source whose copy counts for this
        // one (an upstream copy of a feed message, edited after the fact,
        // must not make the feed's own copy a "duplicate").
        let k = key(&alert);
        if self.entries.iter().any(|e| e.key() == k && authority.may_act(&e.source, source, &alert.sender)) {
            return Outcome::Duplicate;
        }
        let sent = believed_sent(alert.sent, now);
        if self.is_ended(&alert, sent, source, authority) {
            return Outcome::Superseded;
        }
        let same_id = |e: &Entry| e.alert.identifier == alert.identifier && e.alert.sender == alert.sender;
        // The same identifier sent again: the newer copy is the one in force
        // (where the newer copy's source may act on this one's).
        if self.entries.iter().any(|e| same_id(e) && e.sent() > sent && authority.may_act(&e.source, source, &alert.sender)) {
            return Outcome::Superseded;
        }
        let ends = alert.ends_others();
        if ends && alert.references.is_empty() {
            return Outcome::Ignored("an all-clear that references nothing");
        }
        if !ends {
            let (count, bytes) = self.entries.iter().filter(|e| e.source == source).fold((0, 0), |(n, b), e| (n + 1, b + e.xml.len()));
            if count >= MAX_PER_SOURCE {
                return Outcome::Refused("this source already has the most messages in force one source may have");
            }
            if bytes + xml.len() > MAX_SOURCE_BYTES {
                return Outcome::Refused("this source's messages in force already weigh the most one source may hold");
            }
            // The office's own feed is never crowded out by upstream floods.
            if source != super::authority::FEED && self.entries.len() >= MAX_ENTRIES {
                return Outcome::Refused("the alert store is full");
            }
        }
        // End what this message references (and an older copy of itself),
        // where its source may.
        let before = self.entries.len();
        let mut refused = 0;
        let mut removed_sent = Vec::new();
        self.entries.retain(|e| {
            let referenced = alert.references.iter().any(|r| e.alert.identifier == r.identifier && same_sender(&e.alert, r, &alert));
            if !(referenced || same_id(e) && (e.sent() < sent || e.key() == k)) {
                return true;
            }
            if !authority.may_act(source, &e.source, &e.alert.sender) || (referenced && ends && !lift_fits(&alert, &e.alert)) {
                refused += usize::from(referenced);
                return true;
            }
            removed_sent.push(e.sent());
            false
        });
        // Tombstones cover everything this message ended, even if its
        // sender's clock was behind theirs (but not past what is believed).
        let latest = |t: DateTime<FixedOffset>| believed_sent(t, now);
        let by_sent = removed_sent
            .into_iter()
            .chain(alert.references.iter().filter_map(|r| DateTime::parse_from_rfc3339(&r.sent).ok()).map(latest))
            .fold(sent, Ord::max);
        let lifts = lifted_hazards(&alert);
        for r in &alert.references {
            let tomb = Ended { sender: r.sender.clone(), identifier: r.identifier.clone(), by_sent, at: now, by: source.to_string(), lifts: lifts.clone() };
            // Remember under both spellings of the sender.
            let own = Ended { sender: alert.sender.clone(), ..tomb.clone() };
            for t in [tomb, own] {
                match self.ended.iter_mut().find(|x| x.sender == t.sender && x.identifier == t.identifier && x.by == t.by) {
                    Some(x) if x.by_sent >= t.by_sent => {}
                    Some(x) => *x = t,
                    None => self.ended.push(t),
                }
            }
        }
        self.cap_tombstones(source);
        let removed = before - self.entries.len();
        if ends {
            return Outcome::Ended { ended: removed, refused };
        }
        self.entries.push(Entry { alert, xml, source: source.to_string(), received: now });
        Outcome::Added { replaced: removed, refused }
    }

    /// A message is over if an Update/Cancel sent at or after it named it,
    /// from a source that may act on it.
    fn is_ended(&self, a: &Alert, sent: DateTime<FixedOffset>, source: &str, authority: &Authority) -> bool {
        self.ended
            .iter()
            .any(|t| t.identifier == a.identifier && t.sender == a.sender && sent <= t.by_sent && authority.may_act(&t.by, source, &a.sender) && hazard_fits(&t.lifts, a))
    }

    /// Keeps the newest [`MAX_TOMBSTONES_PER_SOURCE`] tombstones of `source`.
    fn cap_tombstones(&mut self, source: &str) {
        let n = self.ended.iter().filter(|t| t.by == source).count();
        if n > MAX_TOMBSTONES_PER_SOURCE {
            let mut ats: Vec<DateTime<Utc>> = self.ended.iter().filter(|t| t.by == source).map(|t| t.at).collect();
            ats.sort();
            let cut = ats[n - MAX_TOMBSTONES_PER_SOURCE];
            let mut drop = n - MAX_TOMBSTONES_PER_SOURCE;
            self.ended.retain(|t| {
                let go = drop > 0 && t.by == source && t.at <= cut;
                drop -= usize::from(go);
                !go
            });
        }
    }

    /// Drops messages whose every block has ended (see [`Lifetimes`]) and
    /// old tombstones. Returns whether anything was dropped.
    pub fn prune(&mut self, now: DateTime<Utc>, life: &Lifetimes) -> bool {
        let before = (self.entries.len(), self.ended.len());
        self.entries.retain(|e| {
            e.alert.infos.is_empty() && now < e.received + life.default
                || e.alert.infos.iter().any(|i| now < life.window(&e.alert, i, e.received).1)
        });
        self.ended.retain(|t| now < t.at + Duration::days(TOMBSTONE_DAYS));
        before != (self.entries.len(), self.ended.len())
    }

    /// Reads a store from the bytes of its file at `path` (named in
    /// errors). Pure: the file is read by `store::inbox`.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Store, StoreError> {
        let disk: OnDisk = serde_json::from_slice(bytes).map_err(|e| StoreError::Format { path: path.to_path_buf(), message: e.to_string() })?;
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

    /// The bytes of the store's file (written by the alerts' writer,
    /// `store::cache::AlertWriter`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let disk = OnDisk {
            format: FORMAT.into(),
            entries: self.entries.iter().map(|e| DiskEntry { source: e.source.clone(), received: e.received, xml: e.xml.clone() }).collect(),
            ended: self.ended.clone(),
        };
        // Strings, numbers and times only: serialising cannot fail.
        serde_json::to_vec_pretty(&disk).unwrap_or_default()
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
    /// `[start, end)` of a block received at `received`: from `effective`
    /// (CAP's default: `sent`, but never later than it arrived, so a sender's
    /// clock running ahead of ours does not hold a warning back) until
    /// `expires`, or the default lifetime when it has none; never more than
    /// `max` after the later of its start and its arrival.
    pub fn window(&self, alert: &Alert, info: &cap::Info, received: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = info.effective.map_or_else(|| alert.sent.with_timezone(&Utc).min(received), |e| e.with_timezone(&Utc));
        let end = info.expires.map_or(start + self.default, |e| e.with_timezone(&Utc));
        (start, end.min(received.max(start) + self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::alert::authority::FEED;

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
        s.apply(m.0, m.1, FEED, at(T2), &Authority::none())
    }

    #[test]
    fn alert_update_cancel() {
        let mut s = Store::default();
        assert_eq!(apply(&mut s, msg("a", T0, "Alert", "", "")), Outcome::Added { replaced: 0, refused: 0 });
        assert_eq!(apply(&mut s, msg("a", T0, "Alert", "", "")), Outcome::Duplicate);
        assert_eq!(apply(&mut s, msg("b", T1, "Update", &format!("qxt,a,{T0}"), "")), Outcome::Added { replaced: 1, refused: 0 });
        assert_eq!(s.entries().len(), 1);
        assert_eq!(s.entries()[0].alert.identifier, "b");
        let cancel = msg("c", T2, "Cancel", &format!("qxt,a,{T0} qxt,b,{T1}"), "");
        assert_eq!(apply(&mut s, cancel), Outcome::Ended { ended: 1, refused: 0 });
        assert!(s.entries().is_empty());
        // A late copy of the original (a feed replay) stays cancelled.
        assert_eq!(apply(&mut s, msg("a", T0, "Alert", "", "")), Outcome::Superseded);
        assert_eq!(apply(&mut s, msg("b", T1, "Update", &format!("qxt,a,{T0}"), "")), Outcome::Superseded);
    }

    #[test]
    fn a_cancel_before_its_alert_keeps_the_alert_off() {
        let mut s = Store::default();
        assert_eq!(apply(&mut s, msg("c", T2, "Cancel", &format!("qxt,a,{T0}"), "")), Outcome::Ended { ended: 0, refused: 0 });
        assert_eq!(apply(&mut s, msg("a", T0, "Alert", "", "")), Outcome::Superseded);
    }

    #[test]
    fn all_clear_ends_like_a_cancel_and_other_types_are_ignored() {
        let mut s = Store::default();
        apply(&mut s, msg("a", T0, "Alert", "", ""));
        let clear = msg("b", T1, "Update", &format!("qxt,a,{T0}"), "<responseType>AllClear</responseType>");
        assert_eq!(apply(&mut s, clear), Outcome::Ended { ended: 1, refused: 0 });
        assert!(s.entries().is_empty());
        assert!(matches!(apply(&mut s, msg("x", T0, "Ack", &format!("qxt,a,{T0}"), "")), Outcome::Ignored(_)));
        let (mut sys, xml) = msg("y", T0, "Alert", "", "");
        sys.status = Status::System;
        assert!(matches!(s.apply(sys, xml, FEED, at(T2), &Authority::none()), Outcome::Ignored(_)));
    }

    #[test]
    fn references_match_on_identifier_with_either_sender_spelling() {
        let mut s = Store::default();
        apply(&mut s, msg("a", T0, "Alert", "", ""));
        // Sent time in the reference differs, sender spelt differently.
        let upd = msg("b", T1, "Update", "https://qxt.example/cap,a,2026-07-01T07:59:00+08:00", "");
        assert_eq!(apply(&mut s, upd), Outcome::Added { replaced: 1, refused: 0 });
        // A self-referencing update replaces the earlier message of the same id.
        let again = msg("b", T2, "Update", &format!("qxt,b,{T1}"), "");
        assert_eq!(apply(&mut s, again), Outcome::Added { replaced: 1, refused: 0 });
        assert_eq!(s.entries().len(), 1);
        assert_eq!(s.entries()[0].alert.sent, DateTime::parse_from_rfc3339(T2).unwrap());
    }

    #[test]
    fn a_cancel_with_an_earlier_clock_still_keeps_its_target_off() {
        let mut s = Store::default();
        apply(&mut s, msg("a", T1, "Alert", "", ""));
        // The canceller's clock is an hour behind the sender's.
        assert_eq!(apply(&mut s, msg("c", T0, "Cancel", &format!("qxt,a,{T1}"), "")), Outcome::Ended { ended: 1, refused: 0 });
        assert_eq!(apply(&mut s, msg("a", T1, "Alert", "", "")), Outcome::Superseded, "the feed replays it");
    }

    #[test]
    fn the_same_identifier_sent_again_replaces_the_older_copy() {
        let mut s = Store::default();
        apply(&mut s, msg("a", T0, "Alert", "", ""));
        assert_eq!(apply(&mut s, msg("a", T1, "Alert", "", "")), Outcome::Added { replaced: 1, refused: 0 });
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
        s.apply(a.clone(), xml, FEED, at(T0), &Authority::none());
        assert_eq!(life.window(&a, &a.infos[0], at(T0)).1, at("2026-07-01T20:00:00+08:00"), "12 h default");
        a.infos[0].expires = Some(DateTime::parse_from_rfc3339("2568-07-01T20:00:00+07:00").unwrap());
        assert_eq!(life.window(&a, &a.infos[0], at(T0)).1, at("2026-07-31T08:00:00+08:00"), "clamped to 30 days");
    }

    const UP_A: &str = "https://a.example/cap.atom";
    const UP_B: &str = "https://b.example/cap.xml";

    fn from(s: &mut Store, source: &str, m: (Alert, String), auth: &Authority) -> Outcome {
        s.apply(m.0, m.1, source, at(T2), auth)
    }

    fn severity(s: &Store) -> Vec<cap::Severity> {
        s.entries().iter().map(|e| e.alert.infos[0].severity).collect()
    }

    #[test]
    fn a_source_may_cancel_only_its_own_messages_and_the_feed_any() {
        let none = Authority::none();
        let cancel = || msg("c", T1, "Cancel", &format!("qxt,a,{T0}"), "");
        // upstream → feed: the feed's warning stays, and so does it on a replay.
        let mut s = Store::default();
        from(&mut s, FEED, msg("a", T0, "Alert", "", ""), &none);
        assert_eq!(from(&mut s, UP_A, cancel(), &none), Outcome::Ended { ended: 0, refused: 1 });
        assert_eq!(s.entries().len(), 1, "an upstream Cancel does not end a feed warning");
        assert_eq!(from(&mut s, FEED, msg("a", T0, "Alert", "", ""), &none), Outcome::Duplicate);
        // upstream A → upstream B: the same.
        let mut s = Store::default();
        from(&mut s, UP_B, msg("a", T0, "Alert", "", ""), &none);
        assert_eq!(from(&mut s, UP_A, cancel(), &none), Outcome::Ended { ended: 0, refused: 1 });
        assert_eq!(s.entries().len(), 1);
        // upstream A → upstream A, feed → feed, feed → upstream: ended.
        for (owner, actor) in [(UP_A, UP_A), (FEED, FEED), (UP_A, FEED)] {
            let mut s = Store::default();
            from(&mut s, owner, msg("a", T0, "Alert", "", ""), &none);
            assert_eq!(from(&mut s, actor, cancel(), &none), Outcome::Ended { ended: 1, refused: 0 }, "{actor} → {owner}");
            assert_eq!(from(&mut s, owner, msg("a", T0, "Alert", "", ""), &none), Outcome::Superseded, "the tombstone keeps {owner}'s replay off");
        }
    }

    #[test]
    fn a_tombstone_keeps_off_only_what_its_source_could_end() {
        let none = Authority::none();
        let mut s = Store::default();
        // The attacker's Cancel arrives first, before the feed's warning.
        assert_eq!(from(&mut s, UP_A, msg("c", T1, "Cancel", &format!("qxt,a,{T0}"), ""), &none), Outcome::Ended { ended: 0, refused: 0 });
        assert_eq!(from(&mut s, FEED, msg("a", T0, "Alert", "", ""), &none), Outcome::Added { replaced: 0, refused: 0 });
        // A copy of the same message from the attacker's source is off.
        let mut s2 = s.clone();
        s2.entries.clear();
        assert_eq!(from(&mut s2, UP_A, msg("a", T0, "Alert", "", ""), &none), Outcome::Superseded);
    }

    #[test]
    fn a_later_sent_from_another_source_does_not_downgrade_a_warning() {
        let none = Authority::none();
        let mut s = Store::default();
        from(&mut s, FEED, msg("a", T0, "Alert", "", ""), &none);
        let minor = {
            let (mut a, xml) = msg("a", T1, "Alert", "", "");
            a.infos[0].severity = cap::Severity::Minor;
            (a, xml.replace("Extreme", "Minor"))
        };
        assert_eq!(from(&mut s, UP_A, minor.clone(), &none), Outcome::Added { replaced: 0, refused: 0 });
        assert!(severity(&s).contains(&cap::Severity::Extreme), "the feed's Extreme stays in force");
        // Nor can an older feed copy be blocked by a newer upstream one.
        let mut s = Store::default();
        from(&mut s, UP_A, minor.clone(), &none);
        assert_eq!(from(&mut s, FEED, msg("a", T0, "Alert", "", ""), &none), Outcome::Added { replaced: 0, refused: 0 });
        // From its own source, the later copy is the one in force.
        let mut s = Store::default();
        from(&mut s, UP_A, msg("a", T0, "Alert", "", ""), &none);
        assert_eq!(from(&mut s, UP_A, minor, &none), Outcome::Added { replaced: 1, refused: 0 });
        assert_eq!(severity(&s), [cap::Severity::Minor]);
    }

    #[test]
    fn a_granted_source_may_end_its_senders_messages_in_the_feed() {
        let cma = Authority::none().grant(UP_A, ["qxt".to_string()]);
        let mut s = Store::default();
        from(&mut s, FEED, msg("a", T0, "Alert", "", ""), &cma);
        assert_eq!(from(&mut s, UP_B, msg("c", T1, "Cancel", &format!("qxt,a,{T0}"), ""), &cma), Outcome::Ended { ended: 0, refused: 1 }, "only the granted source");
        assert_eq!(from(&mut s, UP_A, msg("c", T1, "Cancel", &format!("qxt,a,{T0}"), ""), &cma), Outcome::Ended { ended: 1, refused: 0 });
        assert_eq!(from(&mut s, FEED, msg("a", T0, "Alert", "", ""), &cma), Outcome::Superseded, "its tombstone covers the feed's copy");
        let other = Authority::none().grant(UP_A, ["someone-else".to_string()]);
        let mut s = Store::default();
        from(&mut s, FEED, msg("a", T0, "Alert", "", ""), &other);
        assert_eq!(from(&mut s, UP_A, msg("c", T1, "Cancel", &format!("qxt,a,{T0}"), ""), &other), Outcome::Ended { ended: 0, refused: 1 });
    }

    #[test]
    fn a_lift_ends_only_the_hazard_it_names() {
        let none = Authority::none();
        let mut s = Store::default();
        from(&mut s, FEED, msg("a", T0, "Alert", "", "<headline>长兴县气象台发布暴雨红色预警</headline>"), &none);
        let gale_lift = msg("b", T1, "Update", &format!("qxt,a,{T0}"), "<headline>长兴县气象台解除大风蓝色预警</headline>");
        assert_eq!(from(&mut s, FEED, gale_lift, &none), Outcome::Ended { ended: 0, refused: 1 }, "a gale lift does not end a rainstorm warning");
        let rain_lift = msg("c", T2, "Update", &format!("qxt,a,{T0}"), "<headline>长兴县气象台解除暴雨红色预警</headline>");
        assert_eq!(from(&mut s, FEED, rain_lift, &none), Outcome::Ended { ended: 1, refused: 0 });
        // 解除 in a headline that also issues a warning: an Update, not an all-clear.
        let mut s = Store::default();
        from(&mut s, FEED, msg("a", T0, "Alert", "", "<headline>发布暴雨黄色预警</headline>"), &none);
        let both = msg("b", T1, "Update", &format!("qxt,a,{T0}"), "<headline>长兴县气象台发布暴雨红色预警，解除暴雨黄色预警</headline>");
        assert_eq!(from(&mut s, FEED, both, &none), Outcome::Added { replaced: 1, refused: 0 });
        assert_eq!(s.entries().len(), 1);
    }

    #[test]
    fn an_upstream_copy_with_the_feeds_key_does_not_make_the_feed_warning_a_duplicate() {
        let none = Authority::none();
        let mut s = Store::default();
        // The attacker copies a public feed message, edits it (another area,
        // a lower severity) and gets it in first.
        let (mut fake, xml) = msg("a", T0, "Alert", "", "");
        fake.infos[0].severity = cap::Severity::Minor;
        assert!(matches!(from(&mut s, UP_A, (fake, xml), &none), Outcome::Added { .. }));
        assert_eq!(from(&mut s, FEED, msg("a", T0, "Alert", "", ""), &none), Outcome::Added { replaced: 1, refused: 0 }, "the feed's copy replaces it");
        assert_eq!(severity(&s), [cap::Severity::Extreme]);
        assert_eq!(s.entries()[0].source, FEED);
        // The same copy from upstream again is the duplicate now.
        assert_eq!(from(&mut s, UP_A, msg("a", T0, "Alert", "", ""), &none), Outcome::Duplicate);
    }

    #[test]
    fn a_lift_that_arrives_first_keeps_off_only_its_own_hazard() {
        let none = Authority::none();
        let mut s = Store::default();
        let gale_lift = msg("b", T1, "Update", &format!("qxt,a,{T0}"), "<headline>长兴县气象台解除大风蓝色预警</headline>");
        from(&mut s, FEED, gale_lift, &none);
        let rain = msg("a", T0, "Alert", "", "<headline>长兴县气象台发布暴雨红色预警</headline>");
        assert!(matches!(from(&mut s, FEED, rain, &none), Outcome::Added { .. }), "a gale lift does not keep a rainstorm warning off");
        let mut s = Store::default();
        from(&mut s, FEED, msg("b", T1, "Update", &format!("qxt,a,{T0}"), "<headline>长兴县气象台解除暴雨红色预警</headline>"), &none);
        assert_eq!(from(&mut s, FEED, msg("a", T0, "Alert", "", "<headline>长兴县气象台发布暴雨红色预警</headline>"), &none), Outcome::Superseded);
    }

    #[test]
    fn the_feed_is_never_crowded_out_of_a_full_store() {
        let none = Authority::none();
        let mut s = Store::default();
        let sources: Vec<String> = (0..MAX_ENTRIES / MAX_PER_SOURCE).map(|i| format!("https://up{i}.example/")).collect();
        for src in &sources {
            for i in 0..MAX_PER_SOURCE {
                from(&mut s, src, msg(&format!("{src}-{i}").replace([':', '/', '.'], ""), T0, "Alert", "", ""), &none);
            }
        }
        assert_eq!(s.entries().len(), MAX_ENTRIES);
        assert!(matches!(from(&mut s, "https://more.example/", msg("m", T0, "Alert", "", ""), &none), Outcome::Refused(_)));
        assert!(matches!(from(&mut s, FEED, msg("f", T0, "Alert", "", ""), &none), Outcome::Added { .. }));
    }

    #[test]
    fn a_flood_from_one_source_is_refused_and_the_warnings_in_force_stay() {
        let none = Authority::none();
        let mut s = Store::default();
        from(&mut s, FEED, msg("feed-1", T0, "Alert", "", ""), &none);
        for i in 0..MAX_PER_SOURCE {
            assert!(matches!(from(&mut s, UP_A, msg(&format!("f{i}"), T0, "Alert", "", ""), &none), Outcome::Added { .. }));
        }
        assert!(matches!(from(&mut s, UP_A, msg("one-more", T0, "Alert", "", ""), &none), Outcome::Refused(_)));
        assert_eq!(s.entries().len(), MAX_PER_SOURCE + 1);
        assert!(s.entries().iter().any(|e| e.alert.identifier == "feed-1"), "what was in force stays");
        assert!(matches!(from(&mut s, FEED, msg("feed-2", T1, "Alert", "", ""), &none), Outcome::Added { .. }), "other sources still get through");
        // Heavy messages are bounded by weight too.
        let mut s = Store::default();
        let heavy = |id: &str| {
            let (a, xml) = msg(id, T0, "Alert", "", "");
            (a, format!("{xml}{}", " ".repeat(MAX_SOURCE_BYTES / 4)))
        };
        for id in ["h1", "h2", "h3"] {
            assert!(matches!(from(&mut s, UP_B, heavy(id), &none), Outcome::Added { .. }), "{id}");
        }
        assert!(matches!(from(&mut s, UP_B, heavy("h4"), &none), Outcome::Refused(_)));
        // Tombstones are capped per source too.
        let mut s = Store::default();
        for i in 0..MAX_TOMBSTONES_PER_SOURCE + 10 {
            from(&mut s, UP_A, msg(&format!("c{i}"), T1, "Cancel", &format!("qxt,x{i},{T0}"), ""), &none);
        }
        assert_eq!(s.ended.iter().filter(|t| t.by == UP_A).count(), MAX_TOMBSTONES_PER_SOURCE);
    }

    #[test]
    fn a_far_future_sent_neither_supersedes_nor_blocks_nor_stretches_the_cap() {
        let none = Authority::none();
        let far = "2036-07-01T08:00:00+08:00";
        // A copy "sent" ten years ahead counts as sent when received (T2)...
        let mut s = Store::default();
        from(&mut s, UP_A, msg("a", far, "Alert", "", ""), &none);
        let later = "2026-07-01T11:00:00+08:00";
        s.apply(msg("a", later, "Alert", "", "").0, msg("a", later, "Alert", "", "").1, UP_A, at(later), &none);
        assert_eq!(s.entries().len(), 1, "a later real copy replaces it");
        assert_eq!(s.entries()[0].alert.sent, DateTime::parse_from_rfc3339(later).unwrap());
        // ...a far-future Cancel does not block the identifier for ten years...
        let mut s = Store::default();
        from(&mut s, FEED, msg("c", far, "Cancel", &format!("qxt,a,{far}"), ""), &none);
        let next_day = "2026-07-02T08:00:00+08:00";
        let m = msg("a", next_day, "Alert", "", "");
        assert!(matches!(s.apply(m.0, m.1, FEED, at(next_day), &none), Outcome::Added { .. }), "a new copy sent after the Cancel arrived is shown");
        // ...and the 30-day cap counts from when the kiosk received it.
        let life = Lifetimes::default();
        let (mut a, _) = msg("n", far, "Alert", "", "");
        a.infos[0].expires = None;
        a.infos[0].effective = None;
        let (start, end) = life.window(&a, &a.infos[0], at(T2));
        assert_eq!(start, at(T2), "shown from when it arrived, not held back ten years");
        assert!(end <= at(T2) + Duration::days(30));
        a.infos[0].expires = Some(DateTime::parse_from_rfc3339("2037-01-01T00:00:00+08:00").unwrap());
        assert_eq!(life.window(&a, &a.infos[0], at(T2)).1, at(T2) + Duration::days(30));
    }

    #[test]
    fn survives_a_save_and_load() {
        let path = Path::new(FILE);
        let mut s = Store::default();
        apply(&mut s, msg("a", T0, "Alert", "", ""));
        apply(&mut s, msg("c", T1, "Cancel", &format!("qxt,z,{T0}"), ""));
        let back = Store::from_bytes(path, &s.to_bytes()).unwrap();
        assert_eq!(back, s);
        assert!(Store::from_bytes(path, b"{\"format\":\"other\",\"entries\":[],\"ended\":[]}").unwrap_err().to_string().contains("format `other`"));
    }
}
