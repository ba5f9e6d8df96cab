//! Proof of play (考核): what was really on screen, as intervals.
//!
//! The player tells a [`Tracker`] what fills the screen whenever that
//! changes (the item of a playlist, the warnings, whether the screen is lit
//! or dark by its hours); the tracker answers with the intervals that
//! closed, which the player appends to its log (`store::proof`) and the
//! kiosk uploads to the central service. An interval is closed and a new one
//! opened at least every [`SPLIT`], so a power cut loses at most that much
//! of a long warning or a long video, and records never overlap: minutes
//! and hours are plain sums.
//!
//! The wire format of an upload ([`Batch`]) and the limits the service
//! holds it to are here too, so both ends check the same rules.

use chrono::{DateTime, Duration, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

use crate::core::alert::policy::Treatment;

/// The longest interval one record covers.
pub const SPLIT: Duration = Duration::minutes(10);
/// Longest text in a record (item and playlist ids, CAP identifiers).
pub const MAX_TEXT: usize = 256;
/// Most records in one upload.
pub const MAX_BATCH: usize = 500;
/// Largest upload body the service reads.
pub const MAX_BODY: usize = 512 * 1024;
/// Longest interval the service takes: a record is at most [`SPLIT`], and
/// a clock step while it was open may stretch it (but not to days).
pub const MAX_SPAN: Duration = Duration::hours(1);

/// What was on screen over one interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum What {
    /// An item of a playlist filled the screen.
    Play {
        playlist: String,
        item: String,
        /// The feed version it came from (none: local playlists).
        #[serde(default)]
        feed_version: Option<u64>,
    },
    /// A warning was on screen, as a takeover, a banner or a ticker line.
    Warning { identifier: String, sender: String, sent: DateTime<FixedOffset>, treatment: Treatment },
    /// The player ran and the screen was lit (inside its screen-on hours).
    On,
    /// The player ran and the screen was dark: outside its screen-on hours.
    Off,
}

/// One closed interval, before the log numbers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Continues the previous interval of the same thing (split at
    /// [`SPLIT`], or resumed after a takeover): time on screen, not a new
    /// play or a new showing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cont: bool,
    pub what: What,
}

/// One record of the log: an entry and its number, unique in its stream
/// and increasing (the service stores each `(screen, stream, seq)` once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub entry: Entry,
}

/// An item on screen, as the rotation names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRef {
    pub playlist: String,
    pub item: String,
    pub feed_version: Option<u64>,
}

/// What fills the screen at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// Inside screen-on hours.
    pub lit: bool,
    /// The item of a playlist on screen: none while a warning takes the
    /// screen over, while it is dark, and on the idle screen.
    pub item: Option<ItemRef>,
    /// The warnings on screen ([`crate::core::alert::Presentation::on_screen`]).
    pub warnings: Vec<What>,
}

impl Seen {
    fn whats(&self) -> Vec<What> {
        let mut all = vec![if self.lit { What::On } else { What::Off }];
        if let Some(i) = &self.item {
            all.push(What::Play { playlist: cut(&i.playlist), item: cut(&i.item), feed_version: i.feed_version });
        }
        for w in &self.warnings {
            if !all.contains(w) {
                all.push(w.clone());
            }
        }
        all
    }
}

/// A warning on screen, for [`Seen::warnings`].
pub fn warning(shown: &crate::core::alert::policy::Shown) -> What {
    What::Warning { identifier: cut(&shown.identifier), sender: cut(&shown.cap_sender), sent: shown.sent, treatment: shown.treatment }
}

/// Text cut to [`MAX_TEXT`] bytes on a character boundary.
fn cut(s: &str) -> String {
    let mut end = s.len().min(MAX_TEXT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

struct Open {
    what: What,
    start: DateTime<Utc>,
    cont: bool,
}

/// Turns what is on screen, moment by moment, into closed intervals.
#[derive(Default)]
pub struct Tracker {
    open: Vec<Open>,
    /// The item that left a lit screen for nothing else (a takeover), so
    /// that it counts as the same play when it comes back.
    paused: Option<What>,
}

impl Tracker {
    /// Takes what is on screen at `now` and returns the intervals that
    /// closed: what left the screen, and what was open for [`SPLIT`].
    pub fn observe(&mut self, now: DateTime<Utc>, seen: &Seen) -> Vec<Entry> {
        let wanted = seen.whats();
        let mut closed = Vec::new();
        let mut still = Vec::new();
        for o in self.open.drain(..) {
            if wanted.contains(&o.what) {
                still.push(o);
            } else {
                // An item that leaves for a takeover and comes back after
                // it is resumed, not played again.
                if matches!(o.what, What::Play { .. }) {
                    self.paused = (seen.lit && seen.item.is_none()).then(|| o.what.clone());
                }
                closed.extend(close(o, now));
            }
        }
        for o in &mut still {
            if now - o.start >= SPLIT {
                let what = o.what.clone();
                let old = std::mem::replace(o, Open { what, start: now, cont: true });
                closed.extend(close(old, now));
            }
        }
        for w in wanted {
            if !still.iter().any(|o| o.what == w) {
                let cont = matches!(w, What::Play { .. }) && self.paused.as_ref() == Some(&w);
                if matches!(w, What::Play { .. }) {
                    self.paused = None;
                }
                still.push(Open { what: w, start: now, cont });
            }
        }
        self.open = still;
        closed
    }

    /// When the next split is due: the player wakes then to call
    /// [`Tracker::observe`] again.
    pub fn next_split(&self) -> Option<DateTime<Utc>> {
        self.open.iter().map(|o| o.start + SPLIT).min()
    }

    /// Closes everything at `now` (the player is stopping).
    pub fn close_all(&mut self, now: DateTime<Utc>) -> Vec<Entry> {
        self.paused = None;
        self.open.drain(..).filter_map(|o| close(o, now)).collect()
    }
}

/// The entry for an interval; none when it lasted no time (a state that
/// came and went in one frame) or the clock stepped back past its start.
fn close(o: Open, now: DateTime<Utc>) -> Option<Entry> {
    (now > o.start).then_some(Entry { start: o.start, end: now, cont: o.cont, what: o.what })
}

/// One upload: records of one stream (a kiosk's log; a new one when the
/// log is started afresh), in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub stream: String,
    pub records: Vec<Record>,
}

/// The service's answer: every record up to `through` is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub through: u64,
    /// How many of the batch were new (the rest were stored before).
    pub new: u64,
}

/// A batch the service refuses, naming the record and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("stream: must be 32 lower-case hex digits")]
    Stream,
    #[error("records: {0} in one batch, at most {MAX_BATCH}")]
    TooMany(usize),
    #[error("records: empty")]
    Empty,
    #[error("records[{index}].seq: {seq} does not follow {after}")]
    Order { index: usize, seq: u64, after: u64 },
    #[error("records[{index}].end: before its start, or more than {} min after it", MAX_SPAN.num_minutes())]
    Span { index: usize },
    #[error("records[{index}].end: more than a day ahead of the service's clock")]
    Future { index: usize },
    #[error("records[{index}].{field}: empty, longer than {MAX_TEXT} bytes, or with control characters")]
    Text { index: usize, field: &'static str },
}

impl Batch {
    /// Checks the batch against the limits, with the service's clock.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<(), Invalid> {
        if self.stream.len() != 32 || !self.stream.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(Invalid::Stream);
        }
        if self.records.is_empty() {
            return Err(Invalid::Empty);
        }
        if self.records.len() > MAX_BATCH {
            return Err(Invalid::TooMany(self.records.len()));
        }
        let mut after = 0;
        for (index, r) in self.records.iter().enumerate() {
            if r.seq <= after {
                return Err(Invalid::Order { index, seq: r.seq, after });
            }
            after = r.seq;
            let e = &r.entry;
            if e.end < e.start || e.end - e.start > MAX_SPAN {
                return Err(Invalid::Span { index });
            }
            if e.end > now + Duration::days(1) {
                return Err(Invalid::Future { index });
            }
            let texts: Vec<(&'static str, &str)> = match &e.what {
                What::Play { playlist, item, .. } => vec![("playlist", playlist), ("item", item)],
                What::Warning { identifier, sender, .. } => vec![("identifier", identifier), ("sender", sender)],
                What::On | What::Off => vec![],
            };
            for (field, t) in texts {
                if t.is_empty() || t.len() > MAX_TEXT || t.chars().any(char::is_control) {
                    return Err(Invalid::Text { index, field });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(min: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-07-01T08:00:00+08:00").unwrap().with_timezone(&Utc) + Duration::minutes(min)
    }

    fn item(id: &str) -> ItemRef {
        ItemRef { playlist: "main".into(), item: id.into(), feed_version: Some(7) }
    }

    fn red(id: &str) -> What {
        What::Warning {
            identifier: id.into(),
            sender: "qxt@12379.cn".into(),
            sent: DateTime::parse_from_rfc3339("2026-07-01T07:50:00+08:00").unwrap(),
            treatment: Treatment::Takeover,
        }
    }

    fn lit(i: Option<&str>, warnings: Vec<What>) -> Seen {
        Seen { lit: true, item: i.map(item), warnings }
    }

    fn kinds(e: &[Entry]) -> Vec<String> {
        e.iter()
            .map(|e| {
                let what = match &e.what {
                    What::Play { item, .. } => item.clone(),
                    What::Warning { identifier, .. } => identifier.clone(),
                    What::On => "on".into(),
                    What::Off => "off".into(),
                };
                format!("{what} {}-{}{}", (e.start - at(0)).num_minutes(), (e.end - at(0)).num_minutes(), if e.cont { " cont" } else { "" })
            })
            .collect()
    }

    #[test]
    fn items_close_when_the_next_comes_and_the_lit_time_runs_on() {
        let mut t = Tracker::default();
        assert!(t.observe(at(0), &lit(Some("a"), vec![])).is_empty());
        assert_eq!(kinds(&t.observe(at(1), &lit(Some("b"), vec![]))), ["a 0-1"]);
        assert_eq!(kinds(&t.observe(at(2), &Seen::default())), ["on 0-2", "b 1-2"]);
        assert_eq!(kinds(&t.close_all(at(5))), ["off 2-5"]);
    }

    #[test]
    fn an_item_under_a_takeover_is_resumed_after_it_not_played_again() {
        let mut t = Tracker::default();
        t.observe(at(0), &lit(Some("a"), vec![]));
        assert_eq!(kinds(&t.observe(at(1), &lit(None, vec![red("w1")]))), ["a 0-1"]);
        assert_eq!(kinds(&t.observe(at(3), &lit(Some("a"), vec![]))), ["w1 1-3"]);
        assert_eq!(kinds(&t.observe(at(4), &lit(Some("b"), vec![]))), ["a 3-4 cont"]);
        // The same item again later, after another item, is a new play.
        assert_eq!(kinds(&t.observe(at(5), &lit(Some("a"), vec![]))), ["b 4-5"]);
        assert_eq!(kinds(&t.close_all(at(6))), ["on 0-6", "a 5-6"]);
    }

    #[test]
    fn long_intervals_are_split_so_a_power_cut_loses_at_most_one_split() {
        let mut t = Tracker::default();
        t.observe(at(0), &lit(None, vec![red("w1")]));
        assert_eq!(t.next_split(), Some(at(10)));
        assert!(t.observe(at(9), &lit(None, vec![red("w1")])).is_empty());
        assert_eq!(kinds(&t.observe(at(10), &lit(None, vec![red("w1")]))), ["on 0-10", "w1 0-10"]);
        assert_eq!(t.next_split(), Some(at(20)));
        assert_eq!(kinds(&t.close_all(at(12))), ["on 10-12 cont", "w1 10-12 cont"]);
    }

    #[test]
    fn a_state_gone_in_no_time_or_a_clock_step_back_leaves_no_record() {
        let mut t = Tracker::default();
        t.observe(at(5), &lit(Some("a"), vec![]));
        assert!(t.observe(at(5), &lit(Some("b"), vec![])).is_empty());
        assert!(t.observe(at(2), &lit(Some("c"), vec![])).is_empty());
    }

    #[test]
    fn ids_are_cut_to_the_limit_on_a_character_boundary() {
        let long = "预".repeat(200);
        let mut t = Tracker::default();
        t.observe(at(0), &lit(Some(&long), vec![]));
        let e = t.close_all(at(1));
        let What::Play { item, .. } = &e.iter().find(|e| matches!(e.what, What::Play { .. })).unwrap().what else { unreachable!() };
        assert!(item.len() <= MAX_TEXT && long.starts_with(item.as_str()));
    }

    fn batch(records: Vec<Record>) -> Batch {
        Batch { stream: "0123456789abcdef0123456789abcdef".into(), records }
    }

    fn rec(seq: u64, start: i64, end: i64, what: What) -> Record {
        Record { seq, entry: Entry { start: at(start), end: at(end), cont: false, what } }
    }

    #[test]
    fn a_batch_is_checked_record_by_record_naming_the_field() {
        let now = at(100);
        assert_eq!(batch(vec![rec(1, 0, 1, What::On), rec(2, 1, 2, red("w"))]).validate(now), Ok(()));
        assert_eq!(batch(vec![]).validate(now), Err(Invalid::Empty));
        assert_eq!(Batch { stream: "x".into(), ..batch(vec![rec(1, 0, 1, What::On)]) }.validate(now), Err(Invalid::Stream));
        assert_eq!(batch(vec![rec(2, 0, 1, What::On), rec(2, 0, 1, What::On)]).validate(now), Err(Invalid::Order { index: 1, seq: 2, after: 2 }));
        assert_eq!(batch(vec![rec(1, 5, 1, What::On)]).validate(now), Err(Invalid::Span { index: 0 }));
        assert_eq!(batch(vec![rec(1, 0, 61, What::On)]).validate(now), Err(Invalid::Span { index: 0 }));
        assert_eq!(batch(vec![rec(1, 3000, 3001, What::On)]).validate(now), Err(Invalid::Future { index: 0 }));
        let bad = What::Play { playlist: "p".into(), item: "a\u{7}".into(), feed_version: None };
        assert_eq!(batch(vec![rec(1, 0, 1, bad)]).validate(now), Err(Invalid::Text { index: 0, field: "item" }));
        let many = (1..=MAX_BATCH as u64 + 1).map(|s| rec(s, 0, 1, What::On)).collect();
        assert_eq!(batch(many).validate(now), Err(Invalid::TooMany(MAX_BATCH + 1)));
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let r = rec(9, 0, 1, red("w"));
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"kind\":\"warning\"") && json.contains("\"treatment\":\"takeover\""), "{json}");
        assert_eq!(serde_json::from_str::<Record>(&json).unwrap(), r);
    }
}
