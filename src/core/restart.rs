//! The kiosk unit's restart back-off: systemd 252 (Debian 12) restarts a
//! crashed player after a fixed `RestartSec` and has no `RestartSteps`, so
//! a player that dies at once (a broken driver, a full disk) would spin the
//! CPU, the flash and the journal. Before each start the unit runs
//! `estation backoff`, which records the start and waits longer the more
//! starts came recently.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Starts this long ago no longer count: a player that ran this long was
/// not crash-looping.
pub const WINDOW: Duration = Duration::from_secs(10 * 60);
/// Starts in the window that wait nothing: a crash or a watchdog kill now
/// and then restarts at once.
pub const FREE: usize = 3;
/// The first wait, doubled for each further start in the window.
pub const BASE: Duration = Duration::from_secs(5);
/// The longest wait (the unit's start timeout allows for it).
pub const MAX: Duration = Duration::from_secs(120);

/// How long to wait before this start, given the earlier starts: none for
/// the first [`FREE`] in [`WINDOW`], then 5 s, 10 s, 20 s … up to [`MAX`].
/// A start in the future (the clock was set back) counts as recent.
pub fn delay(earlier: &[DateTime<Utc>], now: DateTime<Utc>) -> Duration {
    let recent = earlier.iter().filter(|t| recent(**t, now)).count();
    let Some(over) = recent.checked_sub(FREE) else { return Duration::ZERO };
    BASE.saturating_mul(1u32.checked_shl(over.min(16) as u32).unwrap_or(u32::MAX)).min(MAX)
}

/// The starts worth keeping with `now` added: those still in the window.
pub fn record(earlier: &[DateTime<Utc>], now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut kept: Vec<_> = earlier.iter().copied().filter(|t| recent(*t, now)).collect();
    kept.push(now);
    kept
}

/// Whether a start at `t` is within [`WINDOW`] of `now` (or after it).
fn recent(t: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now.signed_duration_since(t).to_std().map_or(true, |ago| ago < WINDOW)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn a_crash_loop_waits_longer_each_time_and_a_long_run_resets_it() {
        let mut starts = Vec::new();
        let mut now = 0;
        let mut waits = Vec::new();
        // A player that dies 3 s after each start, restarted 3 s later.
        for _ in 0..10 {
            let wait = delay(&starts, at(now));
            waits.push(wait.as_secs());
            starts = record(&starts, at(now));
            now += wait.as_secs() as i64 + 6;
        }
        assert_eq!(waits, [0, 0, 0, 5, 10, 20, 40, 80, 120, 120]);
        // It then runs for an hour before failing: it starts again at once.
        assert_eq!(delay(&starts, at(now + 3600)), Duration::ZERO);
        assert_eq!(record(&starts, at(now + 3600)), vec![at(now + 3600)]);
    }

    #[test]
    fn starts_dated_after_now_count_as_recent() {
        // The clock went back a day: the loop must still back off.
        let future: Vec<_> = (0..5).map(|i| at(86_400 + i)).collect();
        assert_eq!(delay(&future, at(0)), Duration::from_secs(20));
        assert_eq!(record(&future, at(0)).len(), 6);
    }
}
