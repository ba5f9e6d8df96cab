//! Which GPU adapters never got a picture on the screen: the player's guard
//! against a driver that opens a device but then cannot draw to the window.
//!
//! The renderer is chosen before the window exists (`player::renderer`), so
//! what only a real surface shows (no present mode or format for this
//! window, a shader the driver miscompiles, a hang in its first submit)
//! surfaces after the choice, as an abort or a watchdog kill. Debian 11's
//! lavapipe is one such driver; there will be others. So each start records
//! the adapter it chose, and the first frame marks that start as drawn. An
//! adapter whose last [`FAILS`] starts all ended before a first frame is
//! tried after every other adapter at the next start, which the unit makes
//! a few seconds later; a screen on the software renderer beats a black one.
//!
//! A start can also end early for reasons that are not the driver's (a power
//! cut during boot, a stop while starting), so one such start passes nothing
//! over, and a passed-over adapter gets another try after [`RETRY_AFTER`] or
//! when the estation version changes. The adapter's name includes its driver
//! version, so an updated driver is tried at once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Starts in a row that ended before a first frame, to pass an adapter over.
pub const FAILS: usize = 2;
/// How long an adapter is passed over before it is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Starts kept: enough for a few adapters' worth of tries.
const KEPT: usize = 16;

/// One start of the player: the adapter it chose and whether a frame got
/// drawn with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Start {
    /// The adapter as the log names it: backend, name and driver version.
    pub adapter: String,
    /// The estation version that made the start.
    pub version: String,
    pub at: DateTime<Utc>,
    pub drew: bool,
}

/// An adapter passed over, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassedOver {
    pub adapter: String,
    /// The latest of its failed starts.
    pub last: DateTime<Utc>,
    /// When it gets another try.
    pub until: DateTime<Utc>,
}

/// The adapters to try last at a start of `version` at `now`, given the
/// earlier starts (oldest first). Only starts of the same version count.
pub fn passed_over(starts: &[Start], version: &str, now: DateTime<Utc>) -> Vec<PassedOver> {
    let mut adapters: Vec<&str> = starts.iter().map(|s| s.adapter.as_str()).collect();
    adapters.sort_unstable();
    adapters.dedup();
    adapters
        .into_iter()
        .filter_map(|adapter| {
            let mine: Vec<&Start> = starts.iter().filter(|s| s.adapter == adapter && s.version == version).collect();
            let last = mine.iter().rev().take(FAILS).collect::<Vec<_>>();
            if last.len() < FAILS || last.iter().any(|s| s.drew) {
                return None;
            }
            let latest = last[0].at;
            let until = latest + chrono::Duration::from_std(RETRY_AFTER).unwrap_or(chrono::TimeDelta::MAX);
            // A start dated after now (the clock went back) keeps it passed over.
            (now < until || latest > now).then(|| PassedOver { adapter: adapter.to_string(), last: latest, until })
        })
        .collect()
}

/// The starts to keep with this one (not yet drawn) added.
pub fn started(starts: &[Start], adapter: &str, version: &str, now: DateTime<Utc>) -> Vec<Start> {
    let mut kept: Vec<Start> = starts.to_vec();
    kept.push(Start { adapter: adapter.to_string(), version: version.to_string(), at: now, drew: false });
    let over = kept.len().saturating_sub(KEPT);
    kept.drain(..over);
    kept
}

/// The starts with the latest one of `adapter` at `at` marked drawn.
pub fn drew(starts: &[Start], adapter: &str, at: DateTime<Utc>) -> Vec<Start> {
    let mut kept = starts.to_vec();
    if let Some(s) = kept.iter_mut().rev().find(|s| s.adapter == adapter && s.at == at) {
        s.drew = true;
    }
    kept
}

/// Reads the record; a missing or damaged one is no record (the best adapter
/// is then tried first, as on a first start).
pub fn load(path: &std::path::Path) -> Vec<Start> {
    std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    const VK: &str = "vulkan on \"llvmpipe\" (Mesa 20.3.5)";
    const GL: &str = "gl on \"llvmpipe\" (Mesa 20.3.5)";

    #[test]
    fn an_adapter_that_twice_died_before_its_first_frame_is_passed_over_for_a_day() {
        // Start 1 on Vulkan aborts at its first surface: one failure passes
        // nothing over (it may have been a power cut).
        let s = started(&[], VK, "0.1.0", at(0));
        assert!(passed_over(&s, "0.1.0", at(10)).is_empty());
        // Start 2 fails too: Vulkan goes last.
        let s = started(&s, VK, "0.1.0", at(10));
        let over = passed_over(&s, "0.1.0", at(20));
        assert_eq!(over, vec![PassedOver { adapter: VK.into(), last: at(10), until: at(10 + 86_400) }]);
        // Start 3 on GL draws; Vulkan stays passed over, GL is fine.
        let s = started(&s, GL, "0.1.0", at(20));
        let s = drew(&s, GL, at(20));
        assert_eq!(passed_over(&s, "0.1.0", at(30)).len(), 1);
        // A day later Vulkan gets another try; a new version tries it at once.
        assert!(passed_over(&s, "0.1.0", at(10 + 86_400)).is_empty());
        assert!(passed_over(&s, "0.2.0", at(30)).is_empty());
        // The clock went back before the failures: still passed over.
        assert_eq!(passed_over(&s, "0.1.0", at(-1_000_000)).len(), 1);
    }

    #[test]
    fn a_start_that_drew_clears_the_failures_before_it() {
        let s = started(&[], VK, "1", at(0));
        let s = started(&s, VK, "1", at(10));
        let s = drew(&s, VK, at(10));
        assert!(passed_over(&s, "1", at(20)).is_empty());
        // Only the latest FAILS starts count: fail, draw, fail is one failure.
        let s = started(&s, VK, "1", at(30));
        assert!(passed_over(&s, "1", at(40)).is_empty());
    }

    #[test]
    fn the_record_keeps_the_latest_starts_and_marks_only_the_one_that_drew() {
        let mut s = Vec::new();
        for i in 0..40 {
            s = started(&s, VK, "1", at(i));
        }
        assert_eq!(s.len(), KEPT);
        assert_eq!(s[0].at, at(40 - KEPT as i64));
        let marked = drew(&s, VK, at(39));
        assert_eq!(marked.iter().filter(|s| s.drew).count(), 1);
        assert!(marked.last().is_some_and(|s| s.drew));
        // An unknown start marks nothing.
        assert_eq!(drew(&s, GL, at(39)), s);
    }

    #[test]
    fn a_damaged_record_is_no_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("starts.json");
        assert!(load(&path).is_empty());
        std::fs::write(&path, b"{not json").unwrap();
        assert!(load(&path).is_empty());
        let s = started(&[], VK, "1", at(0));
        std::fs::write(&path, serde_json::to_vec(&s).unwrap()).unwrap();
        assert_eq!(load(&path), s);
    }
}
