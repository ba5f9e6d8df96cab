//! The last trusted time: what the kiosk knows of the real time when its own
//! clock cannot be believed (a dead RTC battery resets it to 2000, someone
//! sets it back, an NTP-less box drifts a day slow).
//!
//! At each poll sync records what it learnt (`CACHE/trusted-time.json`):
//! the signed manifest's `created` and the feed server's `Date` (unsigned:
//! anyone on a plain-HTTP path can forge it), with the local clock at that
//! moment. Two times come out of it ([`Times`]), because the two mistakes
//! are not alike:
//!
//! - **starts** (has a warning begun?) go by the most forward of them — the
//!   newer of `created` and `Date`, `Date` capped at the manifest's
//!   `expires` — so a clock running slow never holds a new warning back. A
//!   forged `Date` can at most show a warning early.
//! - **ends** (has it expired? schedules, the screen's hours, the clock on
//!   screen) go forward only on what cannot be forged alone: the older of
//!   `created` (signed) and `Date`, and the latest moment at which the local
//!   clock and `Date` agreed. So a clock set back does not bring an expired
//!   warning back or replay old schedule slots, and no header, forged or
//!   from a server whose clock runs ahead, ends a real warning early or
//!   darkens the screen.
//!
//! A clock that runs fast is left alone (moving time back could bring back
//! what has ended). `status` warns when the clock and the trusted time
//! disagree by more than the configured skew.


use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

pub const FILE: &str = "trusted-time.json";

/// What one observation taught, with the local clock at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The most forward trusted time: the newer of `created` and `Date`
    /// (`Date` capped at the manifest's `expires`). Judges starts.
    pub at: DateTime<Utc>,
    /// The local clock at the moment it was learnt.
    pub local: DateTime<Utc>,
    /// What no one source can push forward alone: the older of `created`
    /// and `Date`. Judges ends.
    #[serde(default)]
    pub agreed: Option<DateTime<Utc>>,
    /// The latest time known to have passed: the highest `agreed`, and of
    /// each moment the local clock and `Date` agreed, the earlier of the two.
    #[serde(default)]
    pub floor: Option<DateTime<Utc>>,
}

/// The two times a kiosk goes by (see the module's doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    /// Whether a warning has begun.
    pub starts: DateTime<Utc>,
    /// Whether it has ended; schedules and the clock on screen.
    pub ends: DateTime<Utc>,
}

impl From<DateTime<Utc>> for Times {
    fn from(t: DateTime<Utc>) -> Times {
        Times { starts: t, ends: t }
    }
}

impl Record {
    /// How far the local clock was behind the most forward trusted time
    /// when observed (negative: ahead).
    pub fn behind(&self) -> Duration {
        self.at - self.local
    }

    fn agreed(&self) -> DateTime<Utc> {
        self.agreed.unwrap_or(self.at.min(self.local))
    }

    fn floor(&self) -> DateTime<Utc> {
        self.floor.unwrap_or(self.at.min(self.local))
    }

    /// The times to use for the local clock reading `local`.
    ///
    /// ```
    /// use chrono::{Duration, TimeZone, Utc};
    /// use estation::core::trusted_time::Record;
    /// let real = Utc.with_ymd_and_hms(2026, 7, 1, 8, 0, 0).unwrap();
    /// // Found a day slow by a feed built an hour ago: both run (nearly) a day on.
    /// let created = real - Duration::hours(1);
    /// let slow = Record { at: real, local: real - Duration::days(1), agreed: Some(created), floor: Some(created) };
    /// let t = slow.now(real - Duration::days(1) + Duration::hours(1));
    /// assert_eq!(t.starts, real + Duration::hours(1));
    /// assert_eq!(t.ends, real);
    /// // Set back a year after a good observation: never before the floor.
    /// let good = Record { at: real, local: real, agreed: Some(created), floor: Some(real) };
    /// assert_eq!(good.now(real - Duration::days(365)).ends, real);
    /// // A forged Date two weeks ahead: warnings may start early, none ends early.
    /// let forged = Record { at: real + Duration::days(14), local: real, agreed: Some(created), floor: Some(real) };
    /// assert_eq!(forged.now(real).ends, real);
    /// ```
    pub fn now(&self, local: DateTime<Utc>) -> Times {
        let ends = (local + (self.agreed() - self.local).max(Duration::zero())).max(self.floor());
        let starts = (local + self.behind().max(Duration::zero())).max(ends);
        Times { starts, ends }
    }
}

/// [`Record::now`] for an optional record.
pub fn now(record: Option<&Record>, local: DateTime<Utc>) -> Times {
    record.map_or(local.into(), |r| r.now(local))
}


/// What one poll learnt: the manifest's `created` (signed), its `expires`,
/// and the server's `Date` if it sent one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    pub date: Option<DateTime<Utc>>,
}

/// How near the local clock and `Date` must be to count as agreeing.
const AGREE: Duration = Duration::minutes(2);

/// The record after `seen` at local time `local`, given the one before.
/// Never goes back: the floor only rises.
pub fn learn(old: Option<&Record>, seen: Observation, local: DateTime<Utc>) -> Record {
    let date = seen.date.map(|d| d.min(seen.expires));
    let at = date.map_or(seen.created, |d| d.max(seen.created));
    let agreed = date.map_or(seen.created, |d| d.min(seen.created));
    let corroborated = date.filter(|d| (*d - local).abs() <= AGREE).map(|d| d.min(local));
    let floor = [old.map(Record::floor), Some(agreed), corroborated].into_iter().flatten().max().unwrap_or(agreed);
    Record { at, local, agreed: Some(agreed), floor: Some(floor) }
}

/// Whether `new` is worth writing over `old`: time moved on by a while, or
/// an offset changed (writes are rare on a kiosk's flash).
pub fn worth_writing(old: Option<&Record>, new: &Record) -> bool {
    match old {
        None => true,
        Some(old) => {
            // Only a clock found slow is corrected, so only those offsets count.
            let moved = |a: Duration, b: Duration| (a.max(Duration::zero()) - b.max(Duration::zero())).abs() > Duration::seconds(2);
            new.at - old.at > Duration::minutes(10)
                || moved(new.behind(), old.behind())
                || moved(new.agreed() - new.local, old.agreed() - old.local)
                || new.floor() > old.floor() + Duration::minutes(10)
        }
    }
}

/// Says how the local clock disagrees with the trusted time, when it does by
/// more than `skew`.
pub fn disagreement(record: Option<&Record>, skew: Duration) -> Option<String> {
    let r = record?;
    let behind = r.behind();
    if behind.abs() <= skew {
        return None;
    }
    // `Date` has whole seconds; past an hour, whole minutes say enough.
    let secs = behind.num_seconds().unsigned_abs();
    let secs = if secs >= 3600 { (secs + 30) / 60 * 60 } else { secs };
    let by = humantime::format_duration(std::time::Duration::from_secs(secs)).to_string();
    Some(if behind > Duration::zero() {
        format!("the local clock was {by} behind the feed's time (at {}); warnings and schedules use the feed's time", r.at.format("%Y-%m-%d %H:%M:%S UTC"))
    } else {
        format!("the local clock was {by} ahead of the feed's time (at {}); set the clock (NTP) — it is not corrected backwards", r.at.format("%Y-%m-%d %H:%M:%S UTC"))
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    pub(crate) fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 7, 1, h, 0, 0).unwrap()
    }

    pub(crate) fn seen(created: DateTime<Utc>, date: Option<DateTime<Utc>>) -> Observation {
        Observation { created, expires: created + Duration::days(14), date }
    }

    #[test]
    fn a_good_clock_then_set_back_stays_at_the_floor() {
        let r = learn(None, seen(t(7), Some(t(8))), t(8));
        assert_eq!(r.now(t(9)), Times { starts: t(9), ends: t(9) }, "a good clock is used as it is");
        assert_eq!(r.now(t(1)).ends, t(8), "set back: held at the moment clock and server agreed");
        assert_eq!(now(None, t(5)), Times::from(t(5)));
    }

    #[test]
    fn a_slow_clock_starts_warnings_by_the_server_and_ends_them_by_the_signed_feed() {
        // The clock reads 08:00 when it is 20:00; the feed was built at 19:00.
        let r = learn(None, seen(t(19), Some(t(20))), t(8));
        let at = r.now(t(9));
        assert_eq!(at.starts, t(21));
        assert_eq!(at.ends, t(20), "corrected by what the signed created proves");
    }

    #[test]
    fn a_forged_date_neither_ends_warnings_early_nor_raises_the_floor() {
        let r = learn(None, seen(t(1), Some(t(1) + Duration::days(30))), t(8));
        assert_eq!(r.at, t(1) + Duration::days(14), "capped at the manifest's expiry");
        let at = r.now(t(8));
        assert_eq!(at.ends, t(8), "ends go by the local clock");
        assert!(at.starts > at.ends, "starts may run ahead");
        assert_eq!(r.floor, Some(t(1)));
        // An operator's clock a year ahead is no better on its own.
        let r = learn(None, seen(t(8) + Duration::days(365), Some(t(8))), t(8));
        assert_eq!(r.now(t(8)).ends, t(8));
    }
}
