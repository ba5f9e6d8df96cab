//! The fleet view: each screen online, stale or offline by the age of its
//! last heartbeat, measured in its own heartbeat interval (a kiosk that
//! reports hourly is not late after ten minutes).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::db::ScreenRow;
use crate::core::heartbeat::Heartbeat;

/// Heartbeats a screen may miss and still count as online (a slow village
/// link, one failed request).
const ONLINE_MISSED: u64 = 2;
/// Beyond this many missed heartbeats (an hour at 5 min) it is offline.
const STALE_MISSED: u64 = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Online,
    Stale,
    Offline,
    /// Enrolled, never heard from.
    Never,
    Revoked,
}

impl State {
    pub fn word(self) -> &'static str {
        match self {
            State::Online => "online",
            State::Stale => "stale",
            State::Offline => "offline",
            State::Never => "never",
            State::Revoked => "revoked",
        }
    }
}

/// The state of a screen last heard from at `last` (sending every
/// `every_secs`), at `now`.
pub fn state(last: Option<(DateTime<Utc>, u64)>, revoked: bool, now: DateTime<Utc>) -> State {
    if revoked {
        return State::Revoked;
    }
    let Some((at, every)) = last else { return State::Never };
    let age = now.signed_duration_since(at).num_seconds().max(0) as u64;
    let every = every.max(1);
    // One interval plus a minute's grace for each heartbeat allowed to miss.
    if age <= every * (ONLINE_MISSED + 1) + 60 {
        State::Online
    } else if age <= every * STALE_MISSED {
        State::Stale
    } else {
        State::Offline
    }
}

/// One screen of the fleet, as `fleet --json` and the API give it.
#[derive(Debug, Clone, Serialize)]
pub struct Screen {
    pub id: String,
    pub name: String,
    pub region: String,
    pub state: State,
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// Seconds since then.
    pub age_secs: Option<i64>,
    pub heartbeat: Option<Heartbeat>,
    /// When the newest screenshot kept was taken, and how long ago.
    pub last_screenshot: Option<DateTime<Utc>>,
    pub screenshot_age_secs: Option<i64>,
}

/// The fleet at `now` (the database filters by region).
pub fn view(rows: Vec<ScreenRow>, now: DateTime<Utc>) -> Vec<Screen> {
    rows.into_iter()
        .map(|r| {
            let state = state(r.last.as_ref().map(|(t, hb)| (*t, hb.every_secs)), r.revoked_at.is_some(), now);
            Screen {
                state,
                last_heartbeat: r.last.as_ref().map(|(t, _)| *t),
                age_secs: r.last.as_ref().map(|(t, _)| now.signed_duration_since(*t).num_seconds()),
                heartbeat: r.last.map(|(_, hb)| hb),
                last_screenshot: r.last_screenshot,
                screenshot_age_secs: r.last_screenshot.map(|t| now.signed_duration_since(t).num_seconds()),
                id: r.id,
                name: r.name,
                region: r.region,
            }
        })
        .collect()
}

/// The fleet as a table for a terminal, with a count per state.
pub fn table(screens: &[Screen]) -> String {
    let mut out = String::new();
    let ago = |secs: i64| format!("{} ago", humantime::format_duration(std::time::Duration::from_secs(secs.max(0) as u64)));
    for s in screens {
        let age = s.age_secs.map_or_else(|| "no heartbeat yet".to_string(), ago);
        let shot = s.screenshot_age_secs.map_or_else(|| "no screenshot".to_string(), |a| format!("screenshot {}", ago(a)));
        let hb = s.heartbeat.as_ref();
        let version = hb.map_or("-", |h| h.software.as_str());
        let feed = hb.and_then(|h| h.feed_version).map_or_else(|| "-".into(), |v| format!("feed v{v}"));
        let warnings = hb.map_or(0, |h| h.warnings.len());
        let error = hb.and_then(|h| h.last_error.as_deref()).unwrap_or("");
        out.push_str(&format!(
            "{:<8} {:<16} {:<12} {:<14} {}  {version}  {feed}  warnings on screen: {warnings}  {shot}{}{}\n",
            s.state.word(),
            s.id,
            s.region,
            s.name,
            age,
            if error.is_empty() { "" } else { "  last error: " },
            error
        ));
    }
    let count = |st: State| screens.iter().filter(|s| s.state == st).count();
    out.push_str(&format!(
        "{} screens: {} online, {} stale, {} offline, {} never heard from, {} revoked\n",
        screens.len(),
        count(State::Online),
        count(State::Stale),
        count(State::Offline),
        count(State::Never),
        count(State::Revoked)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn a_screen_is_online_stale_or_offline_by_heartbeats_missed() {
        let now = t(100_000);
        let five_min = 300;
        assert_eq!(state(Some((now, five_min)), false, now), State::Online);
        // Two heartbeats missed and a minute's grace: still online.
        assert_eq!(state(Some((t(100_000 - 960), five_min)), false, now), State::Online);
        assert_eq!(state(Some((t(100_000 - 961), five_min)), false, now), State::Stale);
        assert_eq!(state(Some((t(100_000 - 3600), five_min)), false, now), State::Stale);
        assert_eq!(state(Some((t(100_000 - 3601), five_min)), false, now), State::Offline);
        // An hourly screen is not late after ten minutes.
        assert_eq!(state(Some((t(100_000 - 3000), 3600)), false, now), State::Online);
        assert_eq!(state(None, false, now), State::Never);
        assert_eq!(state(Some((now, five_min)), true, now), State::Revoked);
        // A heartbeat dated after now (the service's clock went back): online.
        assert_eq!(state(Some((t(200_000), five_min)), false, now), State::Online);
    }
}
