//! The words on a clock card: date, weekday, time and the Chinese lunar date,
//! in the configured language.

use std::str::FromStr;

use chrono::{DateTime, Datelike, Timelike};
use chrono_tz::Tz;

/// Display language of the player's own texts (clock, idle screen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum Language {
    #[default]
    #[serde(rename = "zh-CN")]
    ZhCn,
    #[serde(rename = "en")]
    En,
}

impl FromStr for Language {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "zh" | "zh-cn" | "zh-hans" | "zh-hans-cn" | "zh_cn" => Ok(Language::ZhCn),
            "en" | "en-us" | "en-gb" | "en_us" => Ok(Language::En),
            _ => Err(format!("`{s}` is not a supported language; use zh-CN or en")),
        }
    }
}

/// What a clock card shows at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockText {
    pub time: String,
    pub date: String,
    /// e.g. `农历丙午年十月初五`; `None` when not wanted or out of the calendar's range.
    pub lunar: Option<String>,
}

const WEEKDAYS_ZH: [&str; 7] = ["星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"];

/// Formats `t` for a clock card.
pub fn clock_text(t: DateTime<Tz>, lang: Language, lunar: bool, seconds: bool) -> ClockText {
    let time = if seconds {
        format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
    } else {
        format!("{:02}:{:02}", t.hour(), t.minute())
    };
    let date = match lang {
        Language::ZhCn => format!(
            "{}年{}月{}日 {}",
            t.year(),
            t.month(),
            t.day(),
            WEEKDAYS_ZH[t.weekday().num_days_from_monday() as usize]
        ),
        Language::En => t.format("%A, %-d %B %Y").to_string(),
    };
    let lunar = lunar.then(|| lunar_date(t.year(), t.month(), t.day())).flatten();
    ClockText { time, date, lunar }
}

/// The lunar date of a Gregorian day, e.g. `农历丙午年十月初五`.
pub fn lunar_date(year: i32, month: u32, day: u32) -> Option<String> {
    // tyme4rs panics outside its tables; its own constructor reports errors.
    let solar = tyme4rs::tyme::solar::SolarDay::new(year as isize, month as usize, day as usize).ok()?;
    if !(1900..=2100).contains(&year) {
        return None;
    }
    Some(solar.get_lunar_day().to_string())
}

/// When the text next changes: the next minute (or second) boundary.
pub fn next_tick(t: DateTime<Tz>, seconds: bool) -> std::time::Duration {
    let ms_into_second = u64::from(t.timestamp_subsec_millis());
    let ms = if seconds {
        1000 - ms_into_second
    } else {
        (60 - u64::from(t.second())) * 1000 - ms_into_second
    };
    std::time::Duration::from_millis(ms.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn chinese_clock_with_lunar_date() {
        let t = chrono_tz::Asia::Shanghai.with_ymd_and_hms(2026, 11, 23, 9, 5, 7).unwrap();
        let c = clock_text(t, Language::ZhCn, true, false);
        assert_eq!(c.time, "09:05");
        assert_eq!(c.date, "2026年11月23日 星期一");
        assert_eq!(c.lunar.as_deref(), Some("农历丙午年十月十五"));
        assert_eq!(clock_text(t, Language::ZhCn, false, true).time, "09:05:07");
    }

    #[test]
    fn spring_festival_is_the_first_day_of_the_first_month() {
        assert_eq!(lunar_date(2026, 2, 17).as_deref(), Some("农历丙午年正月初一"));
    }

    #[test]
    fn english_clock() {
        let t = chrono_tz::Europe::London.with_ymd_and_hms(2026, 11, 23, 21, 0, 0).unwrap();
        let c = clock_text(t, Language::En, false, false);
        assert_eq!((c.time.as_str(), c.date.as_str(), c.lunar), ("21:00", "Monday, 23 November 2026", None));
    }

    #[test]
    fn ticks_land_on_minute_boundaries() {
        let t = chrono_tz::Asia::Shanghai.with_ymd_and_hms(2026, 11, 23, 9, 5, 50).unwrap();
        assert_eq!(next_tick(t, false), std::time::Duration::from_secs(10));
        assert_eq!(next_tick(t, true), std::time::Duration::from_secs(1));
    }
}
