//! `estation backoff`: the kiosk unit's `ExecStartPre`. Records this start
//! in the state folder and waits as [`crate::core::restart::delay`] says.

use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use crate::core::restart;

/// The file, in the unit's state folder, that keeps the recent starts.
pub const FILE: &str = "kiosk-starts.json";

pub fn run(state_dir: &Path) -> anyhow::Result<ExitCode> {
    let path = state_dir.join(FILE);
    // A missing or damaged record is no record: the kiosk starts at once
    // rather than not at all.
    let earlier: Vec<DateTime<Utc>> = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            eprintln!("backoff: {}: {e}; starting afresh", path.display());
            Vec::new()
        }),
        Err(_) => Vec::new(),
    };
    let now = Utc::now();
    let wait = restart::delay(&earlier, now);
    let starts = restart::record(&earlier, now);
    std::fs::create_dir_all(state_dir)?;
    crate::store::atomic::write(&path, &serde_json::to_vec(&starts)?)?;
    if wait.is_zero() {
        eprintln!("backoff: start {} in the last {}: starting at once", starts.len(), humantime::format_duration(restart::WINDOW));
    } else {
        eprintln!(
            "backoff: start {} in the last {}: the player keeps failing; waiting {} first (journalctl -u the kiosk unit says why)",
            starts.len(),
            humantime::format_duration(restart::WINDOW),
            humantime::format_duration(wait)
        );
        std::thread::sleep(wait);
    }
    Ok(ExitCode::SUCCESS)
}
