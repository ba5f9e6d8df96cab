//! The feed's warnings document in the cache (see
//! `core::feed::alerts_doc`), apart from the programme's versions:
//!
//! ```text
//! CACHE/feed-alerts.json      the verified warnings document in force   writer
//! CACHE/feed-alerts.highest   the highest version of it ever taken     writer
//! CACHE/feed-alerts/<sha256>  its CAP messages, each checked            writer
//! ```
//!
//! The same rules as the programme: a file enters only after its digest
//! checked out, a document becomes current by one atomic rename only once
//! every message it lists is here, and an older one is refused even when
//! the current one is lost. Its messages are removed once no current
//! document lists them; the programme's garbage collection never sees them.

use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;

use super::cache::{Cache, CacheError, CacheWriter, InstallError};
use crate::core::feed::alerts_doc::{self, VerifiedAlerts};
use crate::core::feed::{Blob, Digest};

const DOC: &str = "feed-alerts.json";
const HIGHEST: &str = "feed-alerts.highest";
const DIR: &str = "feed-alerts";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io { path: path.to_path_buf(), source }
}

impl Cache {
    /// The warnings document in force, checked against `key`.
    pub fn current_alerts(&self, key: &VerifyingKey) -> Result<Option<VerifiedAlerts>, CacheError> {
        let path = self.root().join(DOC);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CacheError::Io { path, source }),
        };
        alerts_doc::verify_signature(&bytes, key).map(Some).map_err(|source| CacheError::Manifest { path, source })
    }

    /// The highest version of the warnings document ever taken (0: none).
    pub fn alerts_highest(&self) -> u64 {
        std::fs::read_to_string(self.root().join(HIGHEST)).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
    }

    /// Where a message of the warnings document is kept.
    pub fn feed_alert_path(&self, d: &Digest) -> PathBuf {
        self.root().join(DIR).join(d.hex())
    }

    /// The messages of `v` not (or not whole) here.
    pub fn missing_alerts(&self, v: &VerifiedAlerts) -> Vec<Blob> {
        v.doc.alerts.iter().filter(|b| !std::fs::metadata(self.feed_alert_path(&b.sha256)).is_ok_and(|m| m.is_file() && m.len() == b.size)).cloned().collect()
    }

    /// Bytes of the warnings' messages (they count against the budget).
    pub fn feed_alerts_bytes(&self) -> u64 {
        std::fs::read_dir(self.root().join(DIR)).map_or(0, |rd| rd.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
    }
}

impl CacheWriter {
    /// Keeps one message of a warnings document, if its digest checks out.
    pub fn put_feed_alert(&self, blob: &Blob, bytes: &[u8]) -> Result<(), InstallError> {
        let got = Digest::of(bytes);
        if got != blob.sha256 || bytes.len() as u64 != blob.size {
            return Err(InstallError::Digest { expected: blob.sha256, got, len: bytes.len() as u64 });
        }
        let dir = self.root().join(DIR);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = self.feed_alert_path(&blob.sha256);
        crate::store::atomic::write(&path, bytes).map_err(io(&path))?;
        Ok(())
    }

    /// Makes `new` the warnings document in force, in one atomic step,
    /// refusing unless every message it lists is here; then removes the
    /// messages it no longer lists.
    pub fn commit_alerts(&self, new: &VerifiedAlerts) -> Result<(), CacheError> {
        let missing = self.missing_alerts(new).len();
        if missing > 0 {
            return Err(CacheError::Incomplete { version: new.doc.version, missing });
        }
        // The highest first: a crash between the two leaves it refusing
        // older documents already, never the other way round.
        if new.doc.version > self.alerts_highest() {
            let path = self.root().join(HIGHEST);
            crate::store::atomic::write(&path, new.doc.version.to_string().as_bytes()).map_err(io(&path))?;
        }
        let path = self.root().join(DOC);
        crate::store::atomic::write(&path, &new.bytes).map_err(io(&path))?;
        let keep: std::collections::BTreeSet<String> = new.doc.alerts.iter().map(|b| b.sha256.hex()).collect();
        if let Ok(rd) = std::fs::read_dir(self.root().join(DIR)) {
            for e in rd.flatten() {
                if !e.file_name().to_str().is_some_and(|n| keep.contains(n)) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }

    /// Hashes every message of the document in force (they are small) and
    /// removes any that no longer matches its name, so the next sync fetches
    /// it again. Returns the paths removed.
    pub fn check_feed_alerts(&self, key: &VerifyingKey) -> Vec<PathBuf> {
        let Ok(Some(v)) = self.current_alerts(key) else { return Vec::new() };
        let mut bad = Vec::new();
        for b in &v.doc.alerts {
            let path = self.feed_alert_path(&b.sha256);
            match Digest::of_file(&path) {
                Ok((d, _)) if d == b.sha256 => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                _ => {
                    tracing::warn!("cache: {}: no longer matches its name; removed (the next sync fetches it again)", path.display());
                    let _ = std::fs::remove_file(&path);
                    bad.push(path);
                }
            }
        }
        bad
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::feed::alerts_doc::{AlertsDoc, FORMAT};
    use crate::core::feed::MediaType;

    #[test]
    fn a_document_is_current_only_with_all_its_messages_and_takes_its_old_ones_away() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let k = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        let blob = |b: &[u8]| Blob { sha256: Digest::of(b), size: b.len() as u64, media_type: MediaType::Cap };
        let doc = |version, alerts: Vec<Blob>| {
            let d = AlertsDoc { format: FORMAT.into(), version, created: "2026-12-01T08:00:00+08:00".parse().unwrap(), expires: "2026-12-15T08:00:00+08:00".parse().unwrap(), alerts };
            alerts_doc::verify_signature(&d.sign(&k), &k.verifying_key()).unwrap()
        };
        let w = cache.writer_blocking().unwrap();
        let one = doc(1, vec![blob(b"<one/>")]);
        assert!(matches!(w.commit_alerts(&one), Err(CacheError::Incomplete { missing: 1, .. })));
        assert!(matches!(w.put_feed_alert(&blob(b"<one/>"), b"<two/>"), Err(InstallError::Digest { .. })));
        w.put_feed_alert(&blob(b"<one/>"), b"<one/>").unwrap();
        w.commit_alerts(&one).unwrap();
        assert_eq!(cache.current_alerts(&k.verifying_key()).unwrap(), Some(one));
        assert_eq!(cache.alerts_highest(), 1);

        let two = doc(2, vec![blob(b"<two/>")]);
        w.put_feed_alert(&blob(b"<two/>"), b"<two/>").unwrap();
        w.commit_alerts(&two).unwrap();
        assert!(!cache.feed_alert_path(&Digest::of(b"<one/>")).exists(), "no longer listed: removed");
        assert_eq!(cache.feed_alerts_bytes(), 6);
        // Rot is found and removed; the document then misses it.
        std::fs::write(cache.feed_alert_path(&Digest::of(b"<two/>")), b"<tw0/>").unwrap();
        assert_eq!(w.check_feed_alerts(&k.verifying_key()).len(), 1);
        assert_eq!(cache.missing_alerts(&two), vec![blob(b"<two/>")]);
    }
}
