//! Reports from the proof of play (考核): plays and minutes on screen,
//! hours the screen was on, and for each warning which screens showed it
//! and when first. The kiosk's `estation report` sums its own log with
//! this; the central service sums every screen's.
//!
//! Intervals are clipped to the report's window `[from, to)`, so minutes
//! and hours add up across consecutive reports; a play counts in the
//! window where it started (a continuation is time, never a play).

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Utc};
use chrono::TimeZone;
use chrono_tz::Tz;
use serde::Serialize;

use crate::core::alert::policy::Treatment;
use crate::core::proof::{Entry, What};

/// What the rows of a report are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum By {
    Screen,
    Item,
    Day,
    Region,
}

/// A record and the screen it came from.
pub struct Seen<'a> {
    pub screen: &'a str,
    pub region: &'a str,
    pub entry: &'a Entry,
}

/// One row: a screen, an item (`playlist/item`), a day or a region.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Row {
    pub key: String,
    pub plays: u64,
    /// Minutes items of playlists were on screen.
    pub play_minutes: f64,
    /// Hours the screen was lit (the player ran inside screen-on hours).
    pub on_hours: f64,
    /// Hours it was dark by its screen-on hours.
    pub off_hours: f64,
    /// Minutes warnings were on screen (a takeover, a banner or a ticker line).
    pub warning_minutes: f64,
}

/// One screen's showing of one warning.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Showing {
    pub screen: String,
    pub region: String,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    pub minutes: f64,
    /// The loudest way it was shown.
    pub treatment: Treatment,
}

/// Which screens showed one warning, first shown first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub identifier: String,
    pub sender: String,
    pub sent: DateTime<FixedOffset>,
    pub screens: Vec<Showing>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub by: By,
    pub rows: Vec<Row>,
    pub warnings: Vec<Evidence>,
}

fn minutes(d: chrono::Duration) -> f64 {
    d.num_milliseconds() as f64 / 60_000.0
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoundError {
    #[error("`{0}` is neither a day (2026-07-01) nor an RFC 3339 time")]
    Unreadable(String),
    #[error("`{0}`: day out of range")]
    OutOfRange(String),
}

/// A report's bound as written: a day starts at its midnight in `tz`, and
/// `end` moves it to the next midnight (the day is included); an RFC 3339
/// time is taken as given.
pub fn parse_bound(s: &str, tz: Tz, end: bool) -> Result<DateTime<Utc>, BoundError> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| BoundError::Unreadable(s.to_string()))?;
    let day = if end { day.succ_opt() } else { Some(day) };
    let midnight = day.and_then(|d| d.and_hms_opt(0, 0, 0)).ok_or_else(|| BoundError::OutOfRange(s.to_string()))?;
    // At a DST gap (not in China) the earliest instant of the day.
    tz.from_local_datetime(&midnight).earliest().map(|t| t.with_timezone(&Utc)).ok_or_else(|| BoundError::OutOfRange(s.to_string()))
}

/// `[from, to)` as local days in `tz`: each day's name and its part of the
/// window (the first and last may be part days).
pub fn days(from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz) -> Vec<(String, DateTime<Utc>, DateTime<Utc>)> {
    split_at_midnights(from, to, tz).into_iter().map(|(a, b)| (a.with_timezone(&tz).format("%Y-%m-%d").to_string(), a, b)).collect()
}

/// `[start, end)` cut at each local midnight in `tz`.
fn split_at_midnights(start: DateTime<Utc>, end: DateTime<Utc>, tz: Tz) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let next_day = at.with_timezone(&tz).date_naive().succ_opt().and_then(|d| d.and_hms_opt(0, 0, 0));
        let midnight = next_day.and_then(|m| tz.from_local_datetime(&m).earliest()).map(|m| m.with_timezone(&Utc));
        let cut = midnight.filter(|m| *m > at).map_or(end, |m| m.min(end));
        out.push((at, cut));
        at = cut;
    }
    out
}

/// Sums `records` over `[from, to)` into rows by `by`, days in `tz`.
pub fn build<'a>(records: impl IntoIterator<Item = Seen<'a>>, from: DateTime<Utc>, to: DateTime<Utc>, by: By, tz: Tz) -> Report {
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut warnings: BTreeMap<(String, String, DateTime<FixedOffset>), BTreeMap<String, Showing>> = BTreeMap::new();
    for s in records {
        let e = s.entry;
        let (start, end) = (e.start.max(from), e.end.min(to));
        if start >= end {
            continue;
        }
        // By day, an interval over midnight counts on both days.
        let pieces = if by == By::Day { split_at_midnights(start, end, tz) } else { vec![(start, end)] };
        for (i, (start, end)) in pieces.into_iter().enumerate() {
            let span = minutes(end - start);
            let key = |item: Option<String>| match by {
                By::Screen => s.screen.to_string(),
                By::Region => s.region.to_string(),
                By::Day => start.with_timezone(&tz).format("%Y-%m-%d").to_string(),
                By::Item => item.unwrap_or_default(),
            };
            match &e.what {
                What::Play { playlist, item, .. } => {
                    let row = rows.entry(key(Some(format!("{playlist}/{item}")))).or_default();
                    row.play_minutes += span;
                    if !e.cont && e.start >= from && i == 0 {
                        row.plays += 1;
                    }
                }
                // By item, time on and off belongs to no item.
                What::On | What::Off if by == By::Item => {}
                What::On => rows.entry(key(None)).or_default().on_hours += span / 60.0,
                What::Off => rows.entry(key(None)).or_default().off_hours += span / 60.0,
                What::Warning { identifier, sender, sent, treatment } => {
                    if by != By::Item {
                        rows.entry(key(None)).or_default().warning_minutes += span;
                    }
                    let screens = warnings.entry((identifier.clone(), sender.clone(), *sent)).or_default();
                    let showing = screens.entry(s.screen.to_string()).or_insert_with(|| Showing {
                        screen: s.screen.to_string(),
                        region: s.region.to_string(),
                        first: start,
                        last: end,
                        minutes: 0.0,
                        treatment: *treatment,
                    });
                    showing.first = showing.first.min(start);
                    showing.last = showing.last.max(end);
                    showing.minutes += span;
                    showing.treatment = showing.treatment.max(*treatment);
                }
            }
        }
    }
    let rows = rows.into_iter().map(|(key, row)| Row { key, ..row }).collect();
    let warnings = evidence(warnings.into_iter().map(|(key, screens)| (key, screens.into_values().collect())));
    Report { from, to, by, rows, warnings }
}

/// Each warning (identifier, sender, sent) with the screens that showed it,
/// in the report's order: each warning's screens first shown first, and
/// the warnings by when they were first shown.
pub fn evidence(groups: impl IntoIterator<Item = ((String, String, DateTime<FixedOffset>), Vec<Showing>)>) -> Vec<Evidence> {
    let mut warnings: Vec<Evidence> = groups
        .into_iter()
        .map(|((identifier, sender, sent), mut screens)| {
            screens.sort_by(|a, b| (a.first, &a.screen).cmp(&(b.first, &b.screen)));
            Evidence { identifier, sender, sent, screens }
        })
        .collect();
    warnings.sort_by(|a, b| (a.screens.first().map(|s| s.first), &a.identifier).cmp(&(b.screens.first().map(|s| s.first), &b.identifier)));
    warnings
}

impl Report {
    /// The report as CSV for Excel and WPS: UTF-8 with a byte-order mark
    /// (without it they read Chinese as GBK), the rows, an empty line, then
    /// one line per screen per warning. Times in `tz`.
    pub fn to_csv(&self, tz: Tz) -> Result<Vec<u8>, csv::Error> {
        let time = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string();
        let mut out = "\u{feff}".as_bytes().to_vec();
        {
            let mut w = csv::WriterBuilder::new().flexible(true).from_writer(&mut out);
            let what = match self.by {
                By::Screen => "屏幕 screen",
                By::Item => "节目 playlist/item",
                By::Day => "日期 day",
                By::Region => "区域 region",
            };
            w.write_record([what, "播放次数 plays", "播放分钟 play minutes", "开屏小时 hours on", "熄屏小时 hours off", "预警分钟 warning minutes"])?;
            for r in &self.rows {
                w.write_record([r.key.clone(), r.plays.to_string(), format!("{:.1}", r.play_minutes), format!("{:.2}", r.on_hours), format!("{:.2}", r.off_hours), format!("{:.1}", r.warning_minutes)])?;
            }
            w.write_record([""])?;
            w.write_record(["预警标识 identifier", "发布单位 sender", "发布时间 sent", "屏幕 screen", "区域 region", "首次显示 first shown", "最后显示 last shown", "显示分钟 minutes", "方式 treatment"])?;
            for e in &self.warnings {
                for s in &e.screens {
                    let treatment = serde_json::to_value(s.treatment).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
                    w.write_record([
                        e.identifier.clone(),
                        e.sender.clone(),
                        e.sent.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string(),
                        s.screen.clone(),
                        s.region.clone(),
                        time(s.first),
                        time(s.last),
                        format!("{:.1}", s.minutes),
                        treatment,
                    ])?;
                }
            }
            w.flush()?;
        }
        Ok(out)
    }

    /// The rows and warnings for a terminal.
    pub fn to_text(&self, tz: Tz) -> String {
        use std::fmt::Write;
        let time = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string();
        let mut s = format!("{} – {} ({tz})\n", time(self.from), time(self.to));
        let _ = writeln!(s, "{:<32} {:>7} {:>10} {:>9} {:>9}", format!("{:?}", self.by).to_lowercase(), "plays", "minutes", "hours on", "hours off");
        for r in &self.rows {
            let _ = writeln!(s, "{:<32} {:>7} {:>10.1} {:>9.2} {:>9.2}", r.key, r.plays, r.play_minutes, r.on_hours, r.off_hours);
        }
        if self.rows.is_empty() {
            s.push_str("(nothing on screen in this time)\n");
        }
        for e in &self.warnings {
            let _ = writeln!(s, "\nwarning {} from {} (sent {}):", e.identifier, e.sender, e.sent.with_timezone(&tz).format("%Y-%m-%d %H:%M"));
            for sh in &e.screens {
                let _ = writeln!(s, "  {:<24} first {}  last {}  {:.1} min  {:?}", sh.screen, time(sh.first), time(sh.last), sh.minutes, sh.treatment);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    const SH: Tz = chrono_tz::Asia::Shanghai;

    fn at(h: i64, m: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-07-01T00:00:00+08:00").unwrap().with_timezone(&Utc) + Duration::hours(h) + Duration::minutes(m)
    }

    fn e(start: DateTime<Utc>, end: DateTime<Utc>, cont: bool, what: What) -> Entry {
        Entry { start, end, cont, what }
    }

    fn play(item: &str) -> What {
        What::Play { playlist: "科普".into(), item: item.into(), feed_version: Some(1) }
    }

    fn red() -> What {
        What::Warning {
            identifier: "44000041600000_20260701".into(),
            sender: "ggxx@12379.cn".into(),
            sent: DateTime::parse_from_rfc3339("2026-07-01T23:50:00+08:00").unwrap(),
            treatment: Treatment::Takeover,
        }
    }

    fn entries() -> Vec<Entry> {
        vec![
            e(at(23, 0), at(23, 10), false, What::On),
            e(at(23, 10), at(24, 10), false, What::On),
            e(at(23, 0), at(23, 1), false, play("水循环")),
            e(at(23, 1), at(23, 2), false, play("防雷")),
            e(at(23, 2), at(23, 3), false, play("水循环")),
            // Resumed after the takeover: time, not a play.
            e(at(23, 58), at(23, 59), true, play("水循环")),
            e(at(23, 50), at(23, 58), false, red()),
            e(at(24, 10), at(30, 0), false, What::Off),
        ]
    }

    #[test]
    fn plays_minutes_and_hours_are_summed_and_clipped_to_the_window() {
        let es = entries();
        fn seen(es: &[Entry]) -> Vec<Seen<'_>> {
            es.iter().map(|entry| Seen { screen: "s1", region: "330522", entry }).collect()
        }
        let r = build(seen(&es), at(0, 0), at(24, 0), By::Item, SH);
        let keys: Vec<(&str, u64, f64)> = r.rows.iter().map(|r| (r.key.as_str(), r.plays, r.play_minutes)).collect();
        assert_eq!(keys, [("科普/水循环", 2, 3.0), ("科普/防雷", 1, 1.0)]);
        let d = build(seen(&es), at(0, 0), at(48, 0), By::Day, SH);
        let days: Vec<(&str, f64, f64)> = d.rows.iter().map(|r| (r.key.as_str(), r.on_hours, r.off_hours)).collect();
        assert_eq!(days, [("2026-07-01", 1.0, 0.0), ("2026-07-02", 1.0 / 6.0, 5.0 + 5.0 /6.0)]);
        assert_eq!(d.rows[0].warning_minutes, 8.0);
        // Clipped: the first hour's On is cut at midnight, nothing is counted twice.
        let today = build(seen(&es), at(0, 0), at(24, 0), By::Screen, SH);
        assert_eq!(today.rows[0].on_hours, 1.0);
        let w = &today.warnings[0];
        assert_eq!((w.screens[0].first, w.screens[0].last, w.screens[0].minutes), (at(23, 50), at(23, 58), 8.0));
    }

    #[test]
    fn the_evidence_lists_each_screen_once_first_shown_first() {
        let a = [e(at(10, 5), at(10, 15), false, red()), e(at(10, 15), at(10, 20), true, red())];
        let b = [e(at(10, 1), at(10, 3), false, red())];
        let all = a.iter().map(|entry| Seen { screen: "a", region: "330522", entry }).chain(b.iter().map(|entry| Seen { screen: "b", region: "330523", entry }));
        let r = build(all, at(0, 0), at(24, 0), By::Region, SH);
        let s: Vec<(&str, DateTime<Utc>, DateTime<Utc>, f64)> = r.warnings[0].screens.iter().map(|s| (s.screen.as_str(), s.first, s.last, s.minutes)).collect();
        assert_eq!(s, [("b", at(10, 1), at(10, 3), 2.0), ("a", at(10, 5), at(10, 20), 15.0)]);
        assert_eq!(r.rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["330522", "330523"]);
    }

    #[test]
    fn a_day_is_local_midnight_to_midnight_and_a_time_is_as_given() {
        let sh = chrono_tz::Asia::Shanghai;
        assert_eq!(parse_bound("2026-07-01", sh, false).unwrap().to_rfc3339(), "2026-06-30T16:00:00+00:00");
        assert_eq!(parse_bound("2026-07-01", sh, true).unwrap().to_rfc3339(), "2026-07-01T16:00:00+00:00");
        assert_eq!(parse_bound("2026-07-01T08:30:00+08:00", sh, true).unwrap().to_rfc3339(), "2026-07-01T00:30:00+00:00");
        assert_eq!(parse_bound("July", sh, false), Err(BoundError::Unreadable("July".into())));
        let (from, to) = (parse_bound("2026-07-01T12:00:00+08:00", sh, false).unwrap(), parse_bound("2026-07-03", sh, false).unwrap());
        let d = days(from, to, sh);
        assert_eq!(d.iter().map(|(n, _, _)| n.as_str()).collect::<Vec<_>>(), ["2026-07-01", "2026-07-02"]);
        assert_eq!((d[0].1, d[0].2, d[1].2), (from, parse_bound("2026-07-02", sh, false).unwrap(), to));
    }

    #[test]
    fn csv_opens_in_excel_with_chinese_intact() {
        let es = entries();
        let r = build(es.iter().map(|entry| Seen { screen: "村口,大屏", region: "330522", entry }), at(0, 0), at(48, 0), By::Item, SH);
        let csv = r.to_csv(SH).unwrap();
        assert_eq!(&csv[..3], b"\xef\xbb\xbf");
        let text = String::from_utf8(csv[3..].to_vec()).unwrap();
        assert!(text.contains("科普/水循环,2,3.0"), "{text}");
        assert!(text.contains("\"村口,大屏\""), "a comma in a name is quoted: {text}");
        assert!(text.contains("2026-07-01 23:50:00"), "times in the screen's zone: {text}");
    }
}
