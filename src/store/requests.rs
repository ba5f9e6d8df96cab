//! What the sync thread asks of the player when a signed command says so
//! (see `core::command`): a file beside the cache per request, taken by the
//! player's worker thread, which looks for them every second.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A request to the player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Quit, for the kiosk unit to start the player again.
    Restart,
    /// Show the status overlay for a minute.
    Overlay,
}

impl Request {
    /// Where it is asked for.
    pub fn path(self, cache_dir: &Path) -> PathBuf {
        cache_dir.with_file_name(match self {
            Request::Restart => "restart.request",
            Request::Overlay => "overlay.request",
        })
    }

    pub fn ask(self, cache_dir: &Path) -> std::io::Result<()> {
        crate::store::atomic::write(&self.path(cache_dir), chrono::Utc::now().to_rfc3339().as_bytes())
    }
}

/// Takes the request at `path`, if there is one: true when it was made at
/// or after `since` (the player's start). One older than that was left from
/// before this player started (a restart is answered by the start itself)
/// and is ignored; it is removed either way, so a request acts once.
pub fn take(path: &Path, since: SystemTime) -> bool {
    let Ok(made) = std::fs::metadata(path).and_then(|m| m.modified()) else { return false };
    let _ = std::fs::remove_file(path);
    made >= since
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_acts_once_and_one_from_before_the_start_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let start = SystemTime::now() - std::time::Duration::from_secs(1);
        let restart = Request::Restart.path(&cache);
        assert!(!take(&restart, start), "none asked");
        Request::Restart.ask(&cache).unwrap();
        assert!(!take(&Request::Overlay.path(&cache), start), "each request its own file");
        assert!(take(&restart, start));
        assert!(!take(&restart, start), "taken");
        Request::Restart.ask(&cache).unwrap();
        assert!(!take(&restart, SystemTime::now() + std::time::Duration::from_secs(5)), "older than this start");
        assert!(!restart.exists());
    }
}
