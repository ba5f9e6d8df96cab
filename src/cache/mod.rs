//! The kiosk's offline cache: the only place the player reads content from.
//!
//! ```text
//! CACHE/blobs/<sha256>     verified files, named by their digest
//! CACHE/partial/<sha256>   downloads in progress (resumed with HTTP Range)
//! CACHE/current.json       the signed manifest of the version on screen
//! CACHE/previous.json      the version before it (its files are kept)
//! CACHE/status.json        what sync last did (see `crate::status`)
//! CACHE/lock               held by the one sync that may write
//! ```
//!
//! Sync is the only writer. A file enters `blobs/` only by an atomic rename
//! after its digest checked out, and a version becomes current by one atomic
//! rename of `current.json` only once every file it lists is in `blobs/`.
//! So after a crash or power cut the cache holds the last good version,
//! whole.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;

use crate::feed::manifest::{verify_signature, ManifestError};
use crate::feed::{Blob, Digest, Verified};
use crate::playlist::{Library, MediaRoot};

const CURRENT: &str = "current.json";
const PREVIOUS: &str = "previous.json";
pub const STATUS: &str = "status.json";

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Manifest {
        path: PathBuf,
        #[source]
        source: ManifestError,
    },
    #[error("{0}: another sync is running")]
    Busy(PathBuf),
    #[error("version {version} cannot become current: {missing} of its files are not in the cache")]
    Incomplete { version: u64, missing: usize },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io { path: path.to_path_buf(), source }
}

/// A cache folder.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// Held while a sync writes; released on drop (and by the kernel if the
/// process dies, so a `kill -9` never leaves the cache locked).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// What [`Cache::collect_garbage`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Collected {
    pub files: usize,
    pub bytes: u64,
}

impl Cache {
    /// Opens (creating if needed) the cache at `root`.
    pub fn open(root: &Path) -> Result<Cache, CacheError> {
        for sub in ["blobs", "partial"] {
            let p = root.join(sub);
            std::fs::create_dir_all(&p).map_err(io(&p))?;
        }
        Ok(Cache { root: root.to_path_buf() })
    }

    /// A cache that may not exist yet, for readers (the player, `status`):
    /// never creates anything.
    pub fn at(root: &Path) -> Cache {
        Cache { root: root.to_path_buf() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs").join(d.hex())
    }

    pub fn partial_path(&self, d: &Digest) -> PathBuf {
        self.root.join("partial").join(d.hex())
    }

    pub fn status_path(&self) -> PathBuf {
        self.root.join(STATUS)
    }

    /// Whether a verified copy of `b` is here. Files enter `blobs/` only
    /// after their digest is checked, so presence and size suffice.
    pub fn has(&self, b: &Blob) -> bool {
        std::fs::metadata(self.blob_path(&b.sha256)).is_ok_and(|m| m.is_file() && m.len() == b.size)
    }

    /// Takes the writer's lock, or says another sync holds it.
    pub fn lock(&self) -> Result<Lock, CacheError> {
        let path = self.root.join("lock");
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(Lock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(CacheError::Busy(path)),
            Err(std::fs::TryLockError::Error(e)) => Err(CacheError::Io { path, source: e }),
        }
    }

    /// The version on screen, its signature checked again (an expired one is
    /// still returned: stale content beats a black screen).
    pub fn current(&self, key: &VerifyingKey) -> Result<Option<Verified>, CacheError> {
        self.read_manifest(CURRENT, key)
    }

    pub fn previous(&self, key: &VerifyingKey) -> Result<Option<Verified>, CacheError> {
        self.read_manifest(PREVIOUS, key)
    }

    fn read_manifest(&self, name: &str, key: &VerifyingKey) -> Result<Option<Verified>, CacheError> {
        let path = self.root.join(name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CacheError::Io { path, source }),
        };
        verify_signature(&bytes, key).map(Some).map_err(|source| CacheError::Manifest { path, source })
    }

    /// Makes `new` the current version in one atomic step, keeping the old
    /// current as previous. Refuses unless every file of `new` is here.
    pub fn commit(&self, new: &Verified) -> Result<(), CacheError> {
        let missing = new.manifest.blobs().iter().filter(|b| !self.has(b)).count();
        if missing > 0 {
            return Err(CacheError::Incomplete { version: new.manifest.version, missing });
        }
        let current = self.root.join(CURRENT);
        let previous = self.root.join(PREVIOUS);
        match std::fs::read(&current) {
            Ok(old) => crate::atomic::write(&previous, &old).map_err(io(&previous))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(CacheError::Io { path: current, source }),
        }
        crate::atomic::write(&current, &new.bytes).map_err(io(&current))
    }

    /// Removes blobs that neither the current nor the previous version
    /// lists, and the partial downloads (called after a switch, when every
    /// file of both versions is whole, so none of theirs is partial).
    pub fn collect_garbage(&self, key: &VerifyingKey) -> Result<Collected, CacheError> {
        let mut keep: BTreeSet<Digest> = BTreeSet::new();
        for v in [self.current(key), self.previous(key)] {
            // An unreadable previous.json only loses its retention.
            if let Ok(Some(v)) = v {
                keep.extend(v.manifest.blobs().iter().map(|b| b.sha256));
            }
        }
        self.collect_except(&keep)
    }

    /// Removes every file in `blobs/` and `partial/` not named by a digest
    /// in `keep` (a kept digest's partial download stays, to be resumed).
    pub fn collect_except(&self, keep: &BTreeSet<Digest>) -> Result<Collected, CacheError> {
        let mut out = Collected::default();
        for sub in ["blobs", "partial"] {
            let dir = self.root.join(sub);
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(CacheError::Io { path: dir, source }),
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                if name.to_str().and_then(|n| n.parse::<Digest>().ok()).is_some_and(|d| keep.contains(&d)) {
                    continue;
                }
                let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                if std::fs::remove_file(entry.path()).is_ok() {
                    out.files += 1;
                    out.bytes += len;
                }
            }
        }
        Ok(out)
    }

    /// Bytes held in `blobs/`, `partial/`, the alert store and its audio
    /// (all of which count against the budget).
    pub fn used_bytes(&self) -> u64 {
        let alerts = std::fs::metadata(self.root.join(crate::alert::store::FILE)).map_or(0, |m| m.len());
        ["blobs", "partial", crate::sync::alert_media::DIR]
            .iter()
            .filter_map(|sub| std::fs::read_dir(self.root.join(sub)).ok())
            .flat_map(|rd| rd.flatten())
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum::<u64>()
            + alerts
    }

    /// The playlists of the current version, their media resolved to files
    /// in `blobs/` (never to names from the network).
    pub fn library(&self, key: &VerifyingKey) -> Result<Option<(Verified, Library)>, CacheError> {
        let Some(v) = self.current(key)? else { return Ok(None) };
        let mut texts = Vec::new();
        let mut problems = Vec::new();
        for entry in &v.manifest.playlists {
            let name = PathBuf::from(format!("feed v{}/{}", v.manifest.version, entry.name));
            let path = self.blob_path(&entry.sha256);
            match std::fs::read(&path).map(String::from_utf8) {
                Ok(Ok(text)) => {
                    let files = entry.media.iter().map(|(written, d)| (written.clone(), self.blob_path(d))).collect();
                    texts.push((name, text, MediaRoot::Lookup(files)));
                }
                Ok(Err(_)) => problems.push(crate::diag::Diagnostic { file: name, line: 0, field: "(file)".into(), message: "not UTF-8 text".into() }),
                Err(e) => problems.push(crate::diag::Diagnostic { file: name, line: 0, field: "(file)".into(), message: format!("missing from the cache ({e})") }),
            }
        }
        let mut library = Library::from_texts(texts.iter().map(|(n, t, r)| (n.clone(), t.as_str(), r)));
        library.problems.extend(problems);
        Ok(Some((v, library)))
    }
}

/// The default cache folder: the user's data dir (`~/.local/share/estation/cache`).
pub fn default_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "estation").map(|d| d.data_dir().join("cache"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::manifest::{sign, tests::{key, sample}};

    fn put(cache: &Cache, bytes: &[u8]) {
        crate::atomic::write(&cache.blob_path(&Digest::of(bytes)), bytes).unwrap();
    }

    #[test]
    fn commit_needs_every_file_and_gc_keeps_two_versions() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let k = key(1);
        let vk = k.verifying_key();
        let v5 = verify_signature(&sign(&sample(5), &k), &vk).unwrap();
        assert!(matches!(cache.commit(&v5), Err(CacheError::Incomplete { version: 5, missing: 2 })));
        assert!(cache.current(&vk).unwrap().is_none());
        put(&cache, b"toml");
        put(&cache, b"png");
        put(&cache, b"stray");
        std::fs::write(cache.partial_path(&Digest::of(b"half")), b"ha").unwrap();
        cache.commit(&v5).unwrap();
        assert_eq!(cache.current(&vk).unwrap().unwrap().manifest.version, 5);
        assert_eq!(cache.collect_garbage(&vk).unwrap(), Collected { files: 2, bytes: 7 });
        assert!(cache.blob_path(&Digest::of(b"png")).exists());

        // v6 drops the picture: it survives v6 (previous) and goes with v7.
        let mut m6 = sample(6);
        m6.media.clear();
        m6.playlists[0].media.clear();
        let v6 = verify_signature(&sign(&m6, &k), &vk).unwrap();
        cache.commit(&v6).unwrap();
        cache.collect_garbage(&vk).unwrap();
        assert!(cache.blob_path(&Digest::of(b"png")).exists());
        let mut m7 = m6.clone();
        m7.version = 7;
        cache.commit(&verify_signature(&sign(&m7, &k), &vk).unwrap()).unwrap();
        cache.collect_garbage(&vk).unwrap();
        assert!(!cache.blob_path(&Digest::of(b"png")).exists());
        assert_eq!(cache.previous(&vk).unwrap().unwrap().manifest.version, 6);
    }

    #[test]
    fn one_writer_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let held = cache.lock().unwrap();
        assert!(matches!(cache.lock(), Err(CacheError::Busy(_))));
        drop(held);
        cache.lock().unwrap();
    }

    #[test]
    fn a_cache_edited_by_hand_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let k = key(1);
        let text = String::from_utf8(sign(&sample(5), &k)).unwrap().replace("\"version\": 5", "\"version\": 9");
        std::fs::write(dir.path().join(CURRENT), text).unwrap();
        assert!(matches!(cache.current(&k.verifying_key()), Err(CacheError::Manifest { .. })));
    }
}
