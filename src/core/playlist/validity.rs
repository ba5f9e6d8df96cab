//! When something applies: date ranges, weekdays and time-of-day windows.
//!
//! One type serves playlist items, playlist schedules and screen-on hours, so
//! "Friday 22:00-02:00" means the same thing everywhere. A window that crosses
//! midnight belongs to the day it *starts* on: `weekdays = "fri"` with
//! `hours = "22:00-02:00"` covers Friday 22:00 to Saturday 02:00, and the same
//! rule applies to date ranges.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Weekday};

/// A parse error for one validity field; the caller adds file, line and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

fn err(msg: impl Into<String>) -> SpecError {
    SpecError(msg.into())
}

/// One string or a list of them, as playlists and the config write window
/// specs (`hours = "08:00-12:00"` or a list).
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(crate) fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// Minutes since midnight, `0..=1440` (1440 = "24:00", only as a window end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Minute(pub u16);

impl Minute {
    pub const MIDNIGHT: Minute = Minute(0);
    pub const END_OF_DAY: Minute = Minute(24 * 60);

    fn parse(s: &str) -> Result<Minute, SpecError> {
        let (h, m) = s
            .split_once(':')
            .ok_or_else(|| err(format!("`{s}` is not a time; write HH:MM, e.g. 07:30")))?;
        let h: u16 = h
            .trim()
            .parse()
            .map_err(|_| err(format!("`{s}` is not a time; write HH:MM, e.g. 07:30")))?;
        let m: u16 = m
            .trim()
            .parse()
            .map_err(|_| err(format!("`{s}` is not a time; write HH:MM, e.g. 07:30")))?;
        if m > 59 || h > 24 || (h == 24 && m != 0) {
            return Err(err(format!("`{s}` is not a time of day (00:00 to 24:00)")));
        }
        Ok(Minute(h * 60 + m))
    }

    pub fn of(t: NaiveTime) -> Minute {
        Minute((t.hour() * 60 + t.minute()) as u16)
    }

    /// The wall-clock time this minute starts at; 24:00 has none.
    pub fn time(self) -> Option<NaiveTime> {
        NaiveTime::from_hms_opt(u32::from(self.0 / 60), u32::from(self.0 % 60), 0)
    }
}

impl fmt::Display for Minute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// A time-of-day window `start-end`; `end <= start` means it crosses midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourWindow {
    pub start: Minute,
    pub end: Minute,
}

impl HourWindow {
    pub fn crosses_midnight(&self) -> bool {
        self.end <= self.start
    }

    /// Whether a time of day falls in the window, on any day.
    pub fn contains(&self, t: NaiveTime) -> bool {
        let m = Minute::of(t);
        if self.crosses_midnight() {
            m >= self.start || m < self.end
        } else {
            self.start <= m && m < self.end
        }
    }
}

impl FromStr for HourWindow {
    type Err = SpecError;
    /// ```
    /// use estation::core::playlist::validity::HourWindow;
    /// let w: HourWindow = "22:00-06:30".parse().unwrap();
    /// assert!(w.crosses_midnight());
    /// assert!("8:00 to 9:00".parse::<HourWindow>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let (a, b) = s.split_once('-').ok_or_else(|| {
            err(format!(
                "`{s}` is not a time window; write HH:MM-HH:MM, e.g. 07:30-17:00"
            ))
        })?;
        let start = Minute::parse(a)?;
        let end = Minute::parse(b)?;
        if start == Minute::END_OF_DAY {
            return Err(err(format!("`{s}`: a window cannot start at 24:00")));
        }
        if start == end {
            return Err(err(format!(
                "`{s}` is empty; for the whole day write 00:00-24:00"
            )));
        }
        Ok(HourWindow { start, end })
    }
}

impl fmt::Display for HourWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// A set of weekdays, as a bit mask (bit 0 = Monday).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weekdays(u8);

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Weekdays {
    pub const ALL: Weekdays = Weekdays(0x7f);

    pub fn contains(&self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }

    fn parse_day(s: &str) -> Result<u8, SpecError> {
        let lower = s.trim().to_ascii_lowercase();
        let full = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ];
        DAY_NAMES
            .iter()
            .position(|d| *d == lower)
            .or_else(|| full.iter().position(|d| *d == lower))
            .map(|i| i as u8)
            .ok_or_else(|| {
                err(format!(
                    "`{}` is not a weekday; use mon, tue, wed, thu, fri, sat, sun",
                    s.trim()
                ))
            })
    }
}

impl FromStr for Weekdays {
    type Err = SpecError;
    /// ```
    /// use estation::core::playlist::validity::Weekdays;
    /// let w: Weekdays = "mon-fri".parse().unwrap();
    /// assert!(w.contains(chrono::Weekday::Wed) && !w.contains(chrono::Weekday::Sat));
    /// assert!("weekdays".parse::<Weekdays>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let mut mask = 0u8;
        for part in s.split(',') {
            if part.trim().is_empty() {
                return Err(err(format!("`{s}` has an empty weekday entry")));
            }
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (Self::parse_day(a)?, Self::parse_day(b)?);
                    // "fri-mon" wraps over the weekend.
                    let mut d = a;
                    loop {
                        mask |= 1 << d;
                        if d == b {
                            break;
                        }
                        d = (d + 1) % 7;
                    }
                }
                None => mask |= 1 << Self::parse_day(part)?,
            }
        }
        Ok(Weekdays(mask))
    }
}

impl fmt::Display for Weekdays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = (0..7)
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| DAY_NAMES[i])
            .collect();
        write!(f, "{}", names.join(","))
    }
}

/// An inclusive date range `from..to` (or one date).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl DateRange {
    pub fn contains(&self, d: NaiveDate) -> bool {
        self.from <= d && d <= self.to
    }
}

fn parse_date(s: &str) -> Result<NaiveDate, SpecError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        err(format!(
            "`{}` is not a date; write YYYY-MM-DD, e.g. 2026-09-01",
            s.trim()
        ))
    })
}

impl FromStr for DateRange {
    type Err = SpecError;
    /// ```
    /// use estation::core::playlist::validity::DateRange;
    /// let r: DateRange = "2026-09-01..2027-01-20".parse().unwrap();
    /// assert_eq!(r.to.to_string(), "2027-01-20");
    /// assert!("2027-01-20..2026-09-01".parse::<DateRange>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let (from, to) = match s.split_once("..") {
            Some((a, b)) => (parse_date(a)?, parse_date(b)?),
            None => {
                let d = parse_date(s)?;
                (d, d)
            }
        };
        if to < from {
            return Err(err(format!("`{s}` ends before it starts")));
        }
        Ok(DateRange { from, to })
    }
}

impl fmt::Display for DateRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            write!(f, "{}", self.from)
        } else {
            write!(f, "{}..{}", self.from, self.to)
        }
    }
}

/// When an item, a playlist or the screen applies. Empty lists mean "always".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Validity {
    pub dates: Vec<DateRange>,
    pub weekdays: Option<Weekdays>,
    pub hours: Vec<HourWindow>,
}

impl Validity {
    pub fn is_always(&self) -> bool {
        self.dates.is_empty() && self.weekdays.is_none() && self.hours.is_empty()
    }

    fn day_matches(&self, day: NaiveDate) -> bool {
        self.weekdays.is_none_or(|w| w.contains(day.weekday()))
            && (self.dates.is_empty() || self.dates.iter().any(|r| r.contains(day)))
    }

    /// Whether this applies at local wall-clock time `t`.
    pub fn matches(&self, t: NaiveDateTime) -> bool {
        let day = t.date();
        if self.hours.is_empty() {
            return self.day_matches(day);
        }
        let m = Minute::of(t.time());
        self.hours.iter().any(|w| {
            if w.crosses_midnight() {
                (m >= w.start && self.day_matches(day))
                    || (m < w.end
                        && day
                            .pred_opt()
                            .is_some_and(|prev| self.day_matches(prev)))
            } else {
                w.start <= m && m < w.end && self.day_matches(day)
            }
        })
    }

    /// The minutes of a day at which `matches` may change value.
    pub fn edges(&self) -> impl Iterator<Item = Minute> + '_ {
        self.hours
            .iter()
            .flat_map(|w| [w.start, w.end])
            .filter(|m| *m != Minute::END_OF_DAY)
    }

    /// A short human description, e.g. `mon-fri 07:30-17:00`.
    pub fn describe(&self) -> String {
        if self.is_always() {
            return "always".into();
        }
        let mut parts = Vec::new();
        if !self.dates.is_empty() {
            parts.push(
                self.dates
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        if let Some(w) = self.weekdays {
            parts.push(w.to_string());
        }
        if !self.hours.is_empty() {
            parts.push(
                self.hours
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        parts.join(" ")
    }
}

/// Local midnight-to-midnight helper used when scanning for changes.
pub fn start_of_day(t: NaiveDateTime) -> NaiveDateTime {
    t.date().and_time(NaiveTime::MIN)
}

/// `t` shifted by whole days, saturating instead of overflowing.
pub fn add_days(t: NaiveDateTime, days: i64) -> NaiveDateTime {
    t.checked_add_signed(Duration::days(days)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn v(dates: &[&str], weekdays: Option<&str>, hours: &[&str]) -> Validity {
        Validity {
            dates: dates.iter().map(|d| d.parse().unwrap()).collect(),
            weekdays: weekdays.map(|w| w.parse().unwrap()),
            hours: hours.iter().map(|h| h.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn empty_validity_is_always() {
        assert!(Validity::default().matches(at("2026-11-23 03:00")));
    }

    #[test]
    fn plain_window_is_half_open() {
        let v = v(&[], None, &["08:00-17:30"]);
        assert!(!v.matches(at("2026-11-23 07:59")));
        assert!(v.matches(at("2026-11-23 08:00")));
        assert!(v.matches(at("2026-11-23 17:29")));
        assert!(!v.matches(at("2026-11-23 17:30")));
    }

    #[test]
    fn window_crossing_midnight_belongs_to_its_start_day() {
        // 2026-11-27 is a Friday.
        let v = v(&[], Some("fri"), &["22:00-02:00"]);
        assert!(!v.matches(at("2026-11-27 21:59")));
        assert!(v.matches(at("2026-11-27 22:00")));
        assert!(v.matches(at("2026-11-28 01:59"))); // Saturday morning, Friday's window
        assert!(!v.matches(at("2026-11-28 02:00")));
        assert!(!v.matches(at("2026-11-27 01:00"))); // Friday morning is Thursday's window
        assert!(!v.matches(at("2026-11-28 22:30"))); // Saturday night
    }

    #[test]
    fn window_to_24_00_covers_the_last_minute() {
        let v = v(&[], None, &["18:00-24:00"]);
        assert!(v.matches(at("2026-11-23 23:59")));
        assert!(!v.matches(at("2026-11-24 00:00")));
    }

    #[test]
    fn weekdays_ranges_lists_and_wrapping() {
        let w: Weekdays = "mon,wed-fri".parse().unwrap();
        assert_eq!(w.to_string(), "mon,wed,thu,fri");
        let w: Weekdays = "fri-mon".parse().unwrap();
        assert_eq!(w.to_string(), "mon,fri,sat,sun");
        let w: Weekdays = "Saturday,SUN".parse().unwrap();
        assert_eq!(w.to_string(), "sat,sun");
        assert_eq!(
            "mon,,tue".parse::<Weekdays>().unwrap_err().0,
            "`mon,,tue` has an empty weekday entry"
        );
        assert_eq!(
            "周一".parse::<Weekdays>().unwrap_err().0,
            "`周一` is not a weekday; use mon, tue, wed, thu, fri, sat, sun"
        );
    }

    #[test]
    fn date_ranges_are_inclusive() {
        let v = v(&["2026-10-01..2026-10-07"], None, &[]);
        assert!(!v.matches(at("2026-09-30 23:59")));
        assert!(v.matches(at("2026-10-01 00:00")));
        assert!(v.matches(at("2026-10-07 23:59")));
        assert!(!v.matches(at("2026-10-08 00:00")));
    }

    #[test]
    fn bad_windows_are_rejected_with_reasons() {
        assert_eq!(
            "25:00-26:00".parse::<HourWindow>().unwrap_err().0,
            "`25:00` is not a time of day (00:00 to 24:00)"
        );
        assert_eq!(
            "08:00-08:00".parse::<HourWindow>().unwrap_err().0,
            "`08:00-08:00` is empty; for the whole day write 00:00-24:00"
        );
        assert!("0800-0900".parse::<HourWindow>().is_err());
        assert!("2026-13-01".parse::<DateRange>().is_err());
    }

    #[test]
    fn describe_reads_like_the_input() {
        let v = v(&["2026-09-01..2027-01-20"], Some("mon-fri"), &["07:30-11:30", "13:30-17:00"]);
        assert_eq!(v.describe(), "2026-09-01..2027-01-20 mon,tue,wed,thu,fri 07:30-11:30,13:30-17:00");
    }
}
