//! Which playlist and which item play at a given instant.
//!
//! Everything here is a pure function of the library, the time zone, `now`
//! and the items' measured lengths ([`Lengths`]): the player, `estation
//! playlist at` and the tests all ask the same questions. The rules:
//!
//! 1. A playlist applies when its `[schedule]` matches the local time
//!    (no schedule = always) and at least one of its items is valid then.
//! 2. Of the applicable non-fallback playlists the highest `priority` wins;
//!    ties go to the file that sorts first. If none applies, the fallback
//!    playlist plays; if that has nothing either, the idle screen shows.
//! 3. Items play in order, skipping items not valid at their start. A change
//!    of playlist takes effect at the next item boundary.
//! 4. The rotation restarts at local midnight and whenever the chosen
//!    playlist changes, so screens with the same content show the same item.

use std::fmt;

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::core::playlist::{Item, Library, Playlist};
use crate::core::playlist::validity::{add_days, start_of_day, Minute};

/// Why a playlist was chosen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Rule {
    /// Its schedule matched and it had the highest priority.
    Schedule { priority: i32, when: String },
    /// It has no schedule, so it always applies (at its priority).
    Always { priority: i32 },
    /// Nothing else applied.
    Fallback,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Schedule { priority, when } => write!(f, "schedule {when} (priority {priority})"),
            Rule::Always { priority } => write!(f, "no schedule, always applies (priority {priority})"),
            Rule::Fallback => write!(f, "fallback: no scheduled playlist applies"),
        }
    }
}

/// The playlist that applies at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// Index into `Library::playlists`.
    pub playlist: usize,
    pub rule: Rule,
    /// Playlists that matched by schedule but had no item valid then.
    pub skipped: Vec<String>,
}

/// One item on screen from `start` to `end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub playlist: usize,
    pub item: usize,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Items the player found unplayable (e.g. an image that fails to decode).
pub trait Usable {
    fn usable(&self, playlist: &Playlist, item: &Item) -> bool;
}

/// Every item is usable: what `playlist at` assumes.
pub struct AllUsable;
impl Usable for AllUsable {
    fn usable(&self, _: &Playlist, _: &Item) -> bool {
        true
    }
}

/// How long items last once their media are measured. The player learns
/// a length when it prepares an item (see [`Item::on_screen`]); `playlist
/// at` measures the same files the same way, so both see the same
/// boundaries after a narration or an `auto` clip.
pub trait Lengths {
    /// How long `item` stays on screen, or `None` for its nominal length
    /// (not measured, or nothing to measure).
    fn length(&self, playlist: &Playlist, item: &Item) -> Option<std::time::Duration>;
}

/// Nothing measured: every item lasts its nominal length.
pub struct Nominal;
impl Lengths for Nominal {
    fn length(&self, _: &Playlist, _: &Item) -> Option<std::time::Duration> {
        None
    }
}

impl<F: Fn(&Playlist, &Item) -> Option<std::time::Duration>> Lengths for F {
    fn length(&self, playlist: &Playlist, item: &Item) -> Option<std::time::Duration> {
        self(playlist, item)
    }
}

/// The schedule of a library in a time zone.
pub struct Scheduler<'a, U: Usable = AllUsable, L: Lengths = Nominal> {
    pub library: &'a Library,
    pub tz: Tz,
    pub usable: U,
    pub lengths: L,
}

impl<'a> Scheduler<'a, AllUsable, Nominal> {
    pub fn new(library: &'a Library, tz: Tz) -> Self {
        Scheduler { library, tz, usable: AllUsable, lengths: Nominal }
    }
}

impl<'a, U: Usable, L: Lengths> Scheduler<'a, U, L> {
    /// The same schedule with items lasting what `lengths` measured.
    pub fn with_lengths<M: Lengths>(self, lengths: M) -> Scheduler<'a, U, M> {
        Scheduler { library: self.library, tz: self.tz, usable: self.usable, lengths }
    }

    /// How long an item stays on screen in this schedule.
    pub fn length(&self, p: &Playlist, item: &Item) -> std::time::Duration {
        self.lengths.length(p, item).unwrap_or_else(|| item.duration.nominal())
    }

    fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        t.with_timezone(&self.tz).naive_local()
    }

    fn playable(&self, p: &Playlist, item: &Item, local: NaiveDateTime) -> bool {
        item.validity.matches(local) && self.usable.usable(p, item)
    }

    /// The playlist that applies at `t`, or `None` for the idle screen.
    pub fn choose(&self, t: DateTime<Utc>) -> Option<Choice> {
        let local = self.local(t);
        let lists = &self.library.playlists;
        let mut order: Vec<usize> = (0..lists.len())
            .filter(|&i| !lists[i].schedule.fallback && lists[i].schedule.validity.matches(local))
            .collect();
        // Stable sort keeps file order among equal priorities.
        order.sort_by_key(|&i| std::cmp::Reverse(lists[i].schedule.priority));
        let mut skipped = Vec::new();
        for i in order {
            let p = &lists[i];
            if p.items.iter().any(|it| self.playable(p, it, local)) {
                let rule = if p.schedule.validity.is_always() {
                    Rule::Always { priority: p.schedule.priority }
                } else {
                    Rule::Schedule {
                        priority: p.schedule.priority,
                        when: p.schedule.validity.describe(),
                    }
                };
                return Some(Choice { playlist: i, rule, skipped });
            }
            skipped.push(p.id.clone());
        }
        let fallback = lists.iter().position(|p| {
            p.schedule.fallback
                && p.schedule.validity.matches(local)
                && p.items.iter().any(|it| self.playable(p, it, local))
        })?;
        Some(Choice { playlist: fallback, rule: Rule::Fallback, skipped })
    }

    /// The item after `prev` (or the first one), starting at `t`.
    pub fn next_slot(&self, prev: Option<&Slot>, t: DateTime<Utc>) -> Option<Slot> {
        let choice = self.choose(t)?;
        let p = &self.library.playlists[choice.playlist];
        let n = p.items.len();
        let first = match prev {
            Some(s) if s.playlist == choice.playlist => s.item + 1,
            _ => 0,
        };
        let local = self.local(t);
        let item = (0..n)
            .map(|k| (first + k) % n)
            .find(|&i| self.playable(p, &p.items[i], local))?;
        let len = Duration::from_std(self.length(p, &p.items[item])).unwrap_or(Duration::seconds(10));
        Some(Slot {
            playlist: choice.playlist,
            item,
            start: t,
            end: t + len,
        })
    }

    /// Instants of the local day containing `t` at which a choice may change.
    fn day_edges(&self, day_start: NaiveDateTime) -> Vec<DateTime<Utc>> {
        let mut minutes: Vec<Minute> = vec![Minute::MIDNIGHT];
        for p in &self.library.playlists {
            minutes.extend(p.schedule.validity.edges());
            for it in &p.items {
                minutes.extend(it.validity.edges());
            }
        }
        minutes.sort();
        minutes.dedup();
        minutes
            .into_iter()
            .filter_map(|m| m.time())
            .filter_map(|tm| {
                self.tz
                    .from_local_datetime(&day_start.date().and_time(tm))
                    .earliest()
                    .map(|d| d.with_timezone(&Utc))
            })
            .collect()
    }

    /// Since when the choice in force at `t` has been in force (today).
    fn anchor(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let key = |c: Option<Choice>| c.map(|c| c.playlist);
        let edges = self.day_edges(start_of_day(self.local(t)));
        let mut anchor = edges.first().copied().unwrap_or(t);
        let mut prev = None;
        for e in edges.into_iter().filter(|e| *e <= t) {
            let now = key(self.choose(e));
            if Some(now) != prev {
                anchor = e;
                prev = Some(now);
            }
        }
        anchor.min(t)
    }

    /// The slot on screen at `t`, as if the player had run since the anchor.
    pub fn slot_at(&self, t: DateTime<Utc>) -> Option<Slot> {
        let mut slot = self.next_slot(None, self.anchor(t))?;
        // Bounded: items last at least a second and the anchor is today.
        for _ in 0..200_000 {
            if slot.end > t {
                return Some(slot);
            }
            let end = slot.end;
            slot = self.next_slot(Some(&slot), end)?;
        }
        None
    }

    /// The first instant after `t` (within a week) where another playlist
    /// applies, and which one (`None` = the idle screen).
    pub fn next_playlist_change(&self, t: DateTime<Utc>) -> Option<(DateTime<Utc>, Option<usize>)> {
        let current = self.choose(t).map(|c| c.playlist);
        let day = start_of_day(self.local(t));
        for d in 0..8 {
            for e in self.day_edges(add_days(day, d)) {
                if e <= t {
                    continue;
                }
                let c = self.choose(e).map(|c| c.playlist);
                if c != current {
                    return Some((e, c));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::playlist::parse_playlist;
    use std::path::Path;

    fn lib(files: &[(&str, &str)]) -> Library {
        let mut lib = Library::default();
        for (name, text) in files {
            let parsed = parse_playlist(Path::new(name), text);
            assert_eq!(parsed.problems, vec![], "{name}");
            lib.playlists.push(parsed.playlist.unwrap());
        }
        lib
    }

    fn utc(local: &str) -> DateTime<Utc> {
        let n = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S").unwrap();
        chrono_tz::Asia::Shanghai
            .from_local_datetime(&n)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn chosen(lib: &Library, local: &str) -> Option<String> {
        let s = Scheduler::new(lib, chrono_tz::Asia::Shanghai);
        s.choose(utc(local)).map(|c| lib.playlists[c.playlist].id.clone())
    }

    const SCHOOL: &str = r#"
[schedule]
priority = 10
weekdays = "mon-fri"
hours = ["07:30-11:30", "13:30-17:00"]
[[items]]
kind = "clock"
"#;
    const EVENING: &str = r#"
[schedule]
priority = 5
hours = "17:00-07:30"
[[items]]
kind = "clock"
"#;
    const HOLIDAY: &str = r#"
[schedule]
priority = 50
dates = "2026-10-01..2026-10-07"
[[items]]
kind = "clock"
"#;
    const DEFAULT: &str = r#"
[schedule]
fallback = true
[[items]]
kind = "clock"
"#;

    fn school_lib() -> Library {
        lib(&[
            ("default.toml", DEFAULT),
            ("evening.toml", EVENING),
            ("holiday.toml", HOLIDAY),
            ("school.toml", SCHOOL),
        ])
    }

    #[test]
    fn dayparts_weekdays_dates_priorities_and_fallback() {
        let lib = school_lib();
        // Monday 2026-11-23.
        assert_eq!(chosen(&lib, "2026-11-23 08:00:00").as_deref(), Some("school"));
        assert_eq!(chosen(&lib, "2026-11-23 12:00:00").as_deref(), Some("default"));
        assert_eq!(chosen(&lib, "2026-11-23 17:00:00").as_deref(), Some("evening"));
        // Evening window crosses midnight: Tuesday 03:00 belongs to Monday's.
        assert_eq!(chosen(&lib, "2026-11-24 03:00:00").as_deref(), Some("evening"));
        assert_eq!(chosen(&lib, "2026-11-24 07:29:59").as_deref(), Some("evening"));
        assert_eq!(chosen(&lib, "2026-11-24 07:30:00").as_deref(), Some("school"));
        // Saturday daytime: no school.
        assert_eq!(chosen(&lib, "2026-11-28 10:00:00").as_deref(), Some("default"));
        // National Day week beats everything (Thursday 2026-10-01 09:00).
        assert_eq!(chosen(&lib, "2026-10-01 09:00:00").as_deref(), Some("holiday"));
        assert_eq!(chosen(&lib, "2026-10-08 09:00:00").as_deref(), Some("school"));
    }

    #[test]
    fn equal_priorities_go_to_the_first_file() {
        let lib = lib(&[("a.toml", "[[items]]\nkind=\"clock\"\n"), ("b.toml", "[[items]]\nkind=\"clock\"\n")]);
        assert_eq!(chosen(&lib, "2026-11-23 08:00:00").as_deref(), Some("a"));
    }

    #[test]
    fn a_playlist_with_no_valid_item_yields_to_the_next() {
        let lib = lib(&[
            (
                "night.toml",
                "[schedule]\npriority = 9\n[[items]]\nkind=\"clock\"\nhours=\"20:00-06:00\"\n",
            ),
            ("day.toml", "[[items]]\nkind=\"clock\"\n"),
        ]);
        assert_eq!(chosen(&lib, "2026-11-23 21:00:00").as_deref(), Some("night"));
        let s = Scheduler::new(&lib, chrono_tz::Asia::Shanghai);
        let c = s.choose(utc("2026-11-23 12:00:00")).unwrap();
        assert_eq!(lib.playlists[c.playlist].id, "day");
        assert_eq!(c.skipped, vec!["night".to_string()]);
    }

    #[test]
    fn empty_schedule_means_idle() {
        let s_lib = Library::default();
        let s = Scheduler::new(&s_lib, chrono_tz::Asia::Shanghai);
        assert_eq!(s.choose(utc("2026-11-23 12:00:00")), None);
        assert_eq!(s.slot_at(utc("2026-11-23 12:00:00")), None);
        // A schedule that never matches now, with no fallback, is idle too.
        let lib = lib(&[("x.toml", "[schedule]\ndates=\"2020-01-01\"\n[[items]]\nkind=\"clock\"\n")]);
        assert_eq!(chosen(&lib, "2026-11-23 12:00:00"), None);
    }

    const ROTATION: &str = r#"
[[items]]
id = "a"
kind = "clock"
duration = "10s"
[[items]]
id = "b"
kind = "clock"
duration = "20s"
weekdays = "sat,sun"
[[items]]
id = "c"
kind = "clock"
duration = "30s"
"#;

    #[test]
    fn rotation_skips_items_not_valid_and_restarts_at_midnight() {
        let lib = lib(&[("r.toml", ROTATION)]);
        let s = Scheduler::new(&lib, chrono_tz::Asia::Shanghai);
        let id = |local: &str| {
            let slot = s.slot_at(utc(local)).unwrap();
            (lib.playlists[0].items[slot.item].id.clone(), slot.start)
        };
        // Monday: a(10) c(30) cycle of 40 s from midnight.
        assert_eq!(id("2026-11-23 00:00:00"), ("a".into(), utc("2026-11-23 00:00:00")));
        assert_eq!(id("2026-11-23 00:00:09"), ("a".into(), utc("2026-11-23 00:00:00")));
        assert_eq!(id("2026-11-23 00:00:10"), ("c".into(), utc("2026-11-23 00:00:10")));
        assert_eq!(id("2026-11-23 00:00:40"), ("a".into(), utc("2026-11-23 00:00:40")));
        // 12:00 = 43200 s = 1080 cycles exactly.
        assert_eq!(id("2026-11-23 12:00:05"), ("a".into(), utc("2026-11-23 12:00:00")));
        // Saturday: a(10) b(20) c(30), 60 s cycle.
        assert_eq!(id("2026-11-28 00:00:15"), ("b".into(), utc("2026-11-28 00:00:10")));
        assert_eq!(id("2026-11-28 00:00:59"), ("c".into(), utc("2026-11-28 00:00:30")));
    }

    #[test]
    fn playlist_changes_wait_for_the_item_boundary_and_restart_the_rotation() {
        let lib = lib(&[
            ("day.toml", "[schedule]\nhours=\"08:00-09:00\"\npriority=1\n[[items]]\nid=\"d\"\nkind=\"clock\"\nduration=\"7s\"\n"),
            ("all.toml", ROTATION),
        ]);
        let s = Scheduler::new(&lib, chrono_tz::Asia::Shanghai);
        let slot = s.slot_at(utc("2026-11-23 08:00:03")).unwrap();
        assert_eq!(lib.playlists[slot.playlist].id, "day");
        assert_eq!(slot.start, utc("2026-11-23 08:00:00"));
        assert_eq!(slot.end, utc("2026-11-23 08:00:07"));
        // An item that straddles 09:00 is finished, then "all" restarts at its first item.
        let last = s.slot_at(utc("2026-11-23 08:59:59")).unwrap();
        assert!(last.end > utc("2026-11-23 09:00:00"));
        let next = s.next_slot(Some(&last), last.end).unwrap();
        assert_eq!(lib.playlists[next.playlist].id, "all");
        assert_eq!(next.item, 0);
        assert_eq!(
            s.next_playlist_change(utc("2026-11-23 08:30:00")),
            Some((utc("2026-11-23 09:00:00"), Some(1)))
        );
    }

    #[test]
    fn unusable_items_are_skipped_and_all_unusable_is_idle() {
        struct NotB;
        impl Usable for NotB {
            fn usable(&self, _: &Playlist, item: &Item) -> bool {
                item.id != "b"
            }
        }
        struct Nothing;
        impl Usable for Nothing {
            fn usable(&self, _: &Playlist, _: &Item) -> bool {
                false
            }
        }
        let lib = lib(&[("r.toml", ROTATION)]);
        let s = Scheduler { library: &lib, tz: chrono_tz::Asia::Shanghai, usable: NotB, lengths: Nominal };
        let t = utc("2026-11-28 00:00:00");
        let a = s.next_slot(None, t).unwrap();
        let c = s.next_slot(Some(&a), a.end).unwrap();
        assert_eq!(lib.playlists[0].items[c.item].id, "c");
        let s = Scheduler { library: &lib, tz: chrono_tz::Asia::Shanghai, usable: Nothing, lengths: Nominal };
        assert_eq!(s.next_slot(None, t), None);
    }

    #[test]
    fn time_zone_comes_from_the_caller() {
        let lib = school_lib();
        // 2026-11-23 00:30 UTC is 08:30 in Shanghai (school) but 01:30 in Berlin (evening).
        let t = DateTime::parse_from_rfc3339("2026-11-23T00:30:00Z").unwrap().with_timezone(&Utc);
        let sh = Scheduler::new(&lib, chrono_tz::Asia::Shanghai).choose(t).unwrap();
        let be = Scheduler::new(&lib, chrono_tz::Europe::Berlin).choose(t).unwrap();
        assert_eq!(lib.playlists[sh.playlist].id, "school");
        assert_eq!(lib.playlists[be.playlist].id, "evening");
    }
}
