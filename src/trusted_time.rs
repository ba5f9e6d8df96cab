//! The last trusted time: what the kiosk knows of the real time when its own
//! clock cannot be believed (a dead RTC battery resets it to 2000, someone
//! sets it back, an NTP-less box drifts a day slow).
//!
//! Sync records the newest of the signed manifest's `created` and the feed
//! server's `Date` (bounded by the manifest's `expires`, so a forged `Date`
//! cannot push the kiosk's time past what the signed feed allows) with the
//! local clock at that moment (`CACHE/trusted-time.json`). Everything that
//! asks "what time is it" for warnings and schedules asks [`Record::now`]:
//!
//! - never earlier than the trusted time, so a clock set back does not bring
//!   an expired warning back or replay old schedule slots;
//! - corrected forward by the offset measured when the clock was slow, so a
//!   clock running slow does not hold back a new warning until its
//!   `effective` time comes round on the wrong clock.
//!
//! A clock that runs fast is left alone: the trusted time is only a lower
//! bound, and moving time back on the word of an unsigned header could bring
//! back what has ended. `status` warns when the two disagree by more than the
//! configured skew.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

pub const FILE: &str = "trusted-time.json";

/// A trusted instant and the local clock when it was observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The trusted time.
    pub at: DateTime<Utc>,
    /// The local clock at the moment `at` was learnt.
    pub local: DateTime<Utc>,
}

impl Record {
    /// How far the local clock was behind the trusted time when observed
    /// (negative: ahead).
    pub fn behind(&self) -> Duration {
        self.at - self.local
    }

    /// The time to use for the local clock reading `local`.
    ///
    /// ```
    /// use chrono::{Duration, TimeZone, Utc};
    /// use estation::trusted_time::Record;
    /// let real = Utc.with_ymd_and_hms(2026, 7, 1, 8, 0, 0).unwrap();
    /// // The clock was found a day slow: warnings and schedules run a day on.
    /// let slow = Record { at: real, local: real - Duration::days(1) };
    /// assert_eq!(slow.now(real - Duration::days(1) + Duration::hours(1)), real + Duration::hours(1));
    /// // Set back a year since: never earlier than the trusted time.
    /// let good = Record { at: real, local: real };
    /// assert_eq!(good.now(real - Duration::days(365)), real);
    /// ```
    pub fn now(&self, local: DateTime<Utc>) -> DateTime<Utc> {
        let behind = self.behind().max(Duration::zero());
        (local + behind).max(self.at)
    }
}

/// [`Record::now`] for an optional record.
pub fn now(record: Option<&Record>, local: DateTime<Utc>) -> DateTime<Utc> {
    record.map_or(local, |r| r.now(local))
}

/// Reads the record; missing or unreadable is none (the local clock is then
/// all there is).
pub fn load(cache_root: &Path) -> Option<Record> {
    std::fs::read(cache_root.join(FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok())
}

/// The trusted time a sync learnt: the manifest's `created`, and the
/// server's `Date` no later than the manifest's `expires`.
pub fn candidate(created: DateTime<Utc>, expires: DateTime<Utc>, date: Option<DateTime<Utc>>) -> DateTime<Utc> {
    date.map_or(created, |d| d.min(expires).max(created))
}

/// Whether `new` is worth writing over `old`: time moved on by a while, or
/// the measured offset changed (writes are rare on a kiosk's flash).
fn worth_writing(old: Option<&Record>, new: &Record) -> bool {
    match old {
        None => true,
        Some(old) => new.at >= old.at && (new.at - old.at > Duration::minutes(10) || (new.behind() - old.behind()).abs() > Duration::seconds(2)),
    }
}

/// Records that `at` was trusted when the local clock read `local`. The
/// trusted time never goes back: an older `at` changes nothing (the same
/// one, read on a clock that has moved, updates the offset).
pub fn observe(cache_root: &Path, at: DateTime<Utc>, local: DateTime<Utc>) -> std::io::Result<Option<Record>> {
    let old = load(cache_root);
    if old.is_some_and(|o| at < o.at) {
        return Ok(old);
    }
    let new = Record { at, local };
    if worth_writing(old.as_ref(), &new) {
        let bytes = serde_json::to_vec_pretty(&new).map_err(std::io::Error::other)?;
        crate::atomic::write(&cache_root.join(FILE), &bytes)?;
    }
    Ok(Some(new))
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
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 7, 1, h, 0, 0).unwrap()
    }

    #[test]
    fn never_back_and_corrected_forward_only() {
        let r = Record { at: t(8), local: t(8) + Duration::minutes(3) };
        assert_eq!(r.now(t(9)), t(9), "a fast clock is not moved back");
        assert_eq!(r.now(t(1)), t(8), "a clock set back is held at the trusted time");
        assert_eq!(now(None, t(5)), t(5));
    }

    #[test]
    fn a_forged_date_cannot_pass_the_manifest_expiry() {
        assert_eq!(candidate(t(1), t(10), Some(t(23))), t(10));
        assert_eq!(candidate(t(5), t(10), Some(t(2))), t(5), "never before the signed created");
        assert_eq!(candidate(t(5), t(10), None), t(5));
    }

    #[test]
    fn observations_only_move_forward_and_are_written_rarely() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(observe(dir.path(), t(8), t(8)).unwrap(), Some(Record { at: t(8), local: t(8) }));
        assert_eq!(load(dir.path()), Some(Record { at: t(8), local: t(8) }));
        observe(dir.path(), t(7), t(9)).unwrap();
        assert_eq!(load(dir.path()).unwrap().at, t(8), "an older time changes nothing");
        observe(dir.path(), t(8) + Duration::minutes(1), t(8) + Duration::minutes(1)).unwrap();
        assert_eq!(load(dir.path()).unwrap().at, t(8), "a minute on at the same offset is not written");
        observe(dir.path(), t(9), t(8)).unwrap();
        assert_eq!(load(dir.path()), Some(Record { at: t(9), local: t(8) }), "a new offset is");
        assert!(disagreement(load(dir.path()).as_ref(), Duration::minutes(5)).unwrap().contains("1h behind"));
        assert_eq!(disagreement(Some(&Record { at: t(8), local: t(8) }), Duration::minutes(5)), None);
    }
}
