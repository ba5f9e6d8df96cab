//! The one lock every writer of a feed folder takes (`feed build`, `alert
//! publish`, `alert cancel`): each reads the current manifest, continues its
//! version and re-signs it, so two at once would lose one's change or sign
//! two manifests with one version. Writers refuse rather than wait, as an
//! operator would rather be told "try again" than watch a command hang.
//!
//! The lock is `flock` on a dot file in the feed folder (`feed serve` never
//! serves dot files); the kernel drops it when a writer dies, even by
//! `kill -9`. So whoever holds it knows no live writer is mid-way, and
//! clears the temp files a killed one left behind.

use std::path::{Path, PathBuf};

/// The lock file's name inside the feed folder.
pub const LOCK_FILE: &str = ".publish.lock";
/// The prefix of [`crate::store::atomic`]'s temp files.
const TEMP_PREFIX: &str = ".tmp-";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{0}: another `feed build` or `alert publish` is writing this feed; try again when it is done")]
    Busy(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Holds the feed's write lock (released on drop, or by the kernel).
#[derive(Debug)]
pub struct FeedLock(#[allow(dead_code, reason = "held for its lock, never read")] std::fs::File);

/// Takes the write lock of the feed folder `feed` (which must exist), then
/// removes temp files left in it and in its `blobs/` by a writer that was
/// killed: under the lock none can belong to a live one.
pub fn lock(feed: &Path) -> Result<FeedLock, LockError> {
    let path = feed.join(LOCK_FILE);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LockError::Io { path, source }
    };
    let file = std::fs::File::options().create(true).truncate(false).write(true).open(&path).map_err(io(&path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Err(LockError::Busy(path)),
        Err(std::fs::TryLockError::Error(source)) => return Err(LockError::Io { path, source }),
    }
    for dir in [feed.to_path_buf(), feed.join("blobs")] {
        clean_temps(&dir).map_err(io(&dir))?;
    }
    Ok(FeedLock(file))
}

fn clean_temps(dir: &Path) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in entries {
        let e = e?;
        if e.file_name().to_string_lossy().starts_with(TEMP_PREFIX) && e.file_type()?.is_file() {
            match std::fs::remove_file(e.path()) {
                Ok(()) => tracing::info!("{}: removed, left by a write that was interrupted", e.path().display()),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_writer_is_refused_and_the_first_cleans_temps() {
        let feed = tempfile::tempdir().unwrap();
        std::fs::create_dir(feed.path().join("blobs")).unwrap();
        for p in [".tmp-abc", "blobs/.tmp-def"] {
            std::fs::write(feed.path().join(p), b"half").unwrap();
        }
        std::fs::write(feed.path().join("blobs/keep.png"), b"x").unwrap();
        let held = lock(feed.path()).unwrap();
        assert!(!feed.path().join(".tmp-abc").exists());
        assert!(!feed.path().join("blobs/.tmp-def").exists());
        assert!(feed.path().join("blobs/keep.png").exists());
        let err = lock(feed.path()).unwrap_err().to_string();
        assert!(err.ends_with("is writing this feed; try again when it is done"), "{err}");
        drop(held);
        lock(feed.path()).unwrap();
    }
}
