//! The kiosk's offline cache: the only place the player reads content from.
//!
//! ```text
//! CACHE/blobs/<sha256>      verified files, named by their digest       writer
//! CACHE/partial/<sha256>    downloads in progress (HTTP Range resume)   download lock
//! CACHE/current.json        the signed manifest of the version on screen  writer
//! CACHE/previous.json       the version before it (its files are kept)  writer
//! CACHE/highest.json(.bak)  the highest version ever accepted, twice    writer
//!                           (refuses rollback even when current.json is lost)
//! CACHE/scrub.json          where the background scrub got to           writer
//! CACHE/trusted-time.json   the last trusted time (`core::trusted_time`)  writer
//! CACHE/alerts.json         the alert store (`store::inbox`)            alert writer
//! CACHE/alert-media/<sha256 of uri>  audio the alerts link to           alert writer
//! CACHE/feed-alerts.json, feed-alerts/  the feed's warnings document and
//!                           its messages (`store::feed_alerts`)          writer
//! CACHE/status.json         what sync last did (`store::status`): each sync
//!                           rewrites only its own fields, read again first
//! CACHE/config.last-good.toml  the last config that loaded (`config::last_good`)
//! CACHE/lock                the writer's lock: hands out [`CacheWriter`]
//! CACHE/alerts.lock         the alerts' lock: hands out [`AlertWriter`]
//! CACHE/download.lock       held by the one HTTP sync downloading into partial/
//! ```
//!
//! Sync is the only writer, and the types say so: [`Cache`] only reads
//! (the player, `status`); every change to the content goes through a
//! [`CacheWriter`], which only the writer's lock hands out, and every change
//! to the alerts through an [`AlertWriter`] from their own lock (held for
//! milliseconds, so a warning never waits behind a USB copy). A file enters
//! `blobs/` only by an atomic rename after its digest checked out, and a
//! version becomes current by one atomic rename of `current.json` only once
//! every file it lists is in `blobs/`. So after a crash or power cut the
//! cache holds the last good version, whole.
//!
//! What a crash cannot do, flash can: a blob may rot on the card, or be
//! edited by hand. So the cache checks itself — the current version's
//! playlists and alerts at every sync start ([`Cache::start`]), and every
//! blob, a bounded number of bytes per poll, by [`Cache::scrub`]. A file
//! that no longer matches its name is logged and removed, and the next sync
//! fetches it again (it sees the current version incomplete).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read as _, Seek as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::core::feed::manifest::{verify_signature, ManifestError};
use crate::core::feed::{Blob, Digest, Hashing, MediaType, Verified};
use crate::core::playlist::{Library, MediaRoot};

const CURRENT: &str = "current.json";
const PREVIOUS: &str = "previous.json";
const HIGHEST: &str = "highest.json";
const HIGHEST_COPY: &str = "highest.json.bak";
const SCRUB: &str = "scrub.json";
pub const STATUS: &str = "status.json";
const WRITER_LOCK: &str = "lock";
const ALERTS_LOCK: &str = "alerts.lock";

/// Playlists and CAP alerts up to this size (1 MiB) are hashed again at every
/// sync start: they are small and read as text, so it costs milliseconds.
/// Bigger ones, and all media, wait for the background [`Cache::scrub`].
pub const START_CHECK_MAX_BYTES: u64 = 1 << 20;

/// A `.tmp-` file this old is a leftover of a write that was killed. Every
/// atomic write here takes milliseconds; the margin covers fsync stalling on
/// slow flash, and spares a live writer that does not hold the cache lock
/// (the alert store is written under its own).
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(60);

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

/// Why a file did not enter `blobs/`.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("content does not match its digest (got {got}, {len} bytes); discarded")]
    Digest { expected: Digest, got: Digest, len: u64 },
    #[error(transparent)]
    Cache(#[from] CacheError),
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

/// The highest version this kiosk ever accepted, and the digest of its
/// manifest: an older one is refused even when `current.json` is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Highest {
    pub version: u64,
    pub manifest_sha256: Digest,
}

/// What [`Cache::start`] cleaned and found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Started {
    /// Leftover `.tmp-` files removed.
    pub temp_files: usize,
    /// Partial downloads no version wants, removed.
    pub partials: usize,
    /// Blobs that did not match their name, removed.
    pub bad: Vec<PathBuf>,
}

/// What one [`Cache::scrub`] pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scrubbed {
    /// Files whose check finished in this pass.
    pub files: usize,
    pub bytes: u64,
    /// Blobs that did not match their name, removed.
    pub bad: Vec<PathBuf>,
}

/// Where the scrub got to: the file it is in, how far, and the hash so far.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ScrubState {
    next: Option<Digest>,
    offset: u64,
    /// Hex of [`Hashing::save`], when `offset` is inside `next`.
    hash: Option<String>,
}

/// What [`Cache::verify`] found of the current version.
#[derive(Debug, Clone)]
pub struct Checked {
    pub version: Verified,
    pub files: usize,
    pub bytes: u64,
    /// `path: what is wrong`, one per bad or missing file.
    pub problems: Vec<String>,
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

    /// Waits for the writer's lock and hands out the cache's writer. Writers
    /// hold it only for short steps (planning, commit, garbage collection, a
    /// USB copy), never while they wait on the network, so this does not
    /// wait on a slow server.
    #[cfg(feature = "net")]
    pub async fn writer(&self) -> Result<CacheWriter, CacheError> {
        let cache = self.clone();
        match tokio::task::spawn_blocking(move || cache.writer_blocking()).await {
            Ok(w) => w,
            Err(e) => Err(CacheError::Io { path: self.root.join(WRITER_LOCK), source: std::io::Error::other(e) }),
        }
    }

    /// [`Cache::writer`], blocking the thread while it waits.
    pub fn writer_blocking(&self) -> Result<CacheWriter, CacheError> {
        Ok(Held { cache: self.clone(), _lock: self.lock_file(WRITER_LOCK)?, _kind: std::marker::PhantomData })
    }

    /// Waits for the alerts' lock and hands out their writer: the alert
    /// store and the audio its messages link to. A lock of their own, held
    /// for milliseconds by anyone: a warning must never wait for a USB copy
    /// or a scrub under the writer's lock.
    pub fn alert_writer(&self) -> Result<AlertWriter, CacheError> {
        std::fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        Ok(Held { cache: self.clone(), _lock: self.lock_file(ALERTS_LOCK)?, _kind: std::marker::PhantomData })
    }

    fn lock_file(&self, name: &str) -> Result<Lock, CacheError> {
        let path = self.root.join(name);
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io(&path))?;
        file.lock().map_err(io(&path))?;
        Ok(Lock { _file: file })
    }

    /// Held by the one HTTP sync that downloads into `partial/` (without
    /// the writer's lock, so a USB import can go on meanwhile).
    pub fn download_lock(&self) -> Result<Lock, CacheError> {
        self.try_lock_file("download.lock")
    }

    /// Whether some process is downloading into `partial/` now.
    pub fn downloading(&self) -> bool {
        matches!(self.download_lock(), Err(CacheError::Busy(_)))
    }

    fn try_lock_file(&self, name: &str) -> Result<Lock, CacheError> {
        let path = self.root.join(name);
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

    /// The highest version ever accepted: the larger of `highest.json` and
    /// its copy, whichever can be read (None: neither).
    pub fn highest(&self) -> Option<Highest> {
        [HIGHEST, HIGHEST_COPY]
            .iter()
            .filter_map(|name| std::fs::read(self.root.join(name)).ok())
            .filter_map(|bytes| serde_json::from_slice::<Highest>(&bytes).ok())
            .max_by_key(|h| h.version)
    }

    /// Refuses a manifest older than the highest version ever accepted, or
    /// that version with other content, whatever `current.json` says (it may
    /// be lost or damaged, and the check against it alone would let an old
    /// signed manifest back in).
    pub fn check_not_rolled_back(&self, new: &Verified) -> Result<(), ManifestError> {
        let Some(h) = self.highest() else { return Ok(()) };
        let version = new.manifest.version;
        if version < h.version {
            return Err(ManifestError::Rollback { new: version, current: h.version });
        }
        if version == h.version && Digest::of(&new.bytes) != h.manifest_sha256 {
            return Err(ManifestError::SameVersionDifferent(version));
        }
        Ok(())
    }

    /// The files of `v` not (or no longer) in the cache.
    pub fn missing(&self, v: &Verified) -> Vec<Blob> {
        v.manifest.blobs().into_iter().filter(|b| !self.has(b)).collect()
    }

    /// Checks the current version as the player would trust it: the
    /// signature of `current.json` and the digest of every file it lists.
    /// Read-only (removes nothing); None when there is no version yet.
    pub fn verify(&self, key: &VerifyingKey) -> Result<Option<Checked>, CacheError> {
        let Some(v) = self.current(key)? else { return Ok(None) };
        let mut problems = Vec::new();
        let blobs = v.manifest.blobs();
        for b in &blobs {
            let path = self.blob_path(&b.sha256);
            match Digest::of_file(&path) {
                Ok((d, n)) if d == b.sha256 && n == b.size => {}
                Ok((d, n)) => problems.push(format!("{}: {n} bytes with digest {d}; the manifest says {} bytes, {}", path.display(), b.size, b.sha256)),
                Err(e) => problems.push(format!("{}: {e}", path.display())),
            }
        }
        let bytes = blobs.iter().map(|b| b.size).sum();
        Ok(Some(Checked { files: blobs.len(), bytes, problems, version: v }))
    }

    /// The trusted time sync last learnt (see `core::trusted_time`); missing
    /// or unreadable is none (the local clock is then all there is).
    pub fn trusted_time(&self) -> Option<crate::core::trusted_time::Record> {
        std::fs::read(self.root.join(crate::core::trusted_time::FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok())
    }

    /// The verified files held: digest → size.
    pub fn blobs(&self) -> Result<std::collections::BTreeMap<Digest, u64>, CacheError> {
        self.sizes("blobs")
    }

    /// The partial downloads held: digest → bytes so far.
    pub fn partials(&self) -> Result<std::collections::BTreeMap<Digest, u64>, CacheError> {
        self.sizes("partial")
    }

    fn sizes(&self, sub: &str) -> Result<std::collections::BTreeMap<Digest, u64>, CacheError> {
        let dir = self.root.join(sub);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
            Err(source) => return Err(CacheError::Io { path: dir, source }),
        };
        Ok(entries
            .flatten()
            .filter_map(|e| Some((e.file_name().to_str()?.parse::<Digest>().ok()?, e.metadata().ok().filter(|m| m.is_file())?.len())))
            .collect())
    }

    /// Bytes held in `blobs/`, `partial/`, the alert store and its audio,
    /// and the feed's warnings (all of which count against the budget).
    pub fn used_bytes(&self) -> u64 {
        let alerts = std::fs::metadata(self.root.join(crate::core::alert::store::FILE)).map_or(0, |m| m.len());
        ["blobs", "partial", ALERT_MEDIA]
            .iter()
            .filter_map(|sub| std::fs::read_dir(self.root.join(sub)).ok())
            .flat_map(|rd| rd.flatten())
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum::<u64>()
            + alerts
            + self.feed_alerts_bytes()
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
                Ok(Err(_)) => problems.push(crate::core::diag::Diagnostic { file: name, line: 0, field: "(file)".into(), message: "not UTF-8 text".into() }),
                Err(e) => problems.push(crate::core::diag::Diagnostic { file: name, line: 0, field: "(file)".into(), message: format!("missing from the cache ({e})") }),
            }
        }
        let mut library = Library::from_texts(texts.iter().map(|(n, t, r)| (n.clone(), t.as_str(), r)));
        library.problems.extend(problems);
        Ok(Some((v, library)))
    }
}

/// The right to change the cache, handed out only by its lock
/// ([`Cache::writer`]): every write to `blobs/`, the manifests, the scrub's
/// record and the trusted time goes through it, so "sync is the only
/// writer" holds by construction — the player and `status` hold a
/// [`Cache`], which can only read. Dropping it lets the lock go (and the
/// kernel does, if the process dies).
pub type CacheWriter = Held<Content>;

/// A cache with one of its locks held: the right to change what that lock
/// guards (`K`), and to read everything.
#[derive(Debug)]
pub struct Held<K> {
    cache: Cache,
    _lock: Lock,
    _kind: std::marker::PhantomData<K>,
}

/// What the writer's lock guards: the content (see [`CacheWriter`]).
#[derive(Debug)]
pub enum Content {}

/// What the alerts' lock guards (see [`AlertWriter`]).
#[derive(Debug)]
pub enum Alerts {}

impl<K> std::ops::Deref for Held<K> {
    type Target = Cache;
    fn deref(&self) -> &Cache {
        &self.cache
    }
}

impl CacheWriter {
    /// Moves a complete partial download of `blob` into `blobs/` once its
    /// digest checks out (hashed by the caller, without the lock: only the
    /// holder of the download lock writes `partial/`). A mismatch deletes
    /// it, so the retry fetches it whole again.
    pub fn install(&self, blob: &Blob, hashed: (Digest, u64)) -> Result<(), InstallError> {
        let partial = self.partial_path(&blob.sha256);
        if hashed.0 != blob.sha256 {
            let _ = std::fs::remove_file(&partial);
            return Err(InstallError::Digest { expected: blob.sha256, got: hashed.0, len: hashed.1 });
        }
        let dest = self.blob_path(&blob.sha256);
        std::fs::rename(&partial, &dest).map_err(io(&dest))?;
        dest.parent().map(crate::store::atomic::sync_dir).transpose().map_err(io(&dest))?;
        Ok(())
    }

    /// Copies `blob` from `from` (a file of a feed folder on a USB stick)
    /// into `blobs/`, hashing as it copies: it lands under its name only if
    /// its digest checks out.
    pub fn import(&self, from: &mut impl std::io::Read, blob: &Blob) -> Result<(), InstallError> {
        let dest = self.blob_path(&blob.sha256);
        let (got, len) = crate::store::atomic::copy_verified(&mut from.take(blob.size), &dest, &blob.sha256).map_err(io(&dest))?;
        if got != blob.sha256 {
            return Err(InstallError::Digest { expected: blob.sha256, got, len });
        }
        Ok(())
    }

    /// Records what a poll learnt of the time at local time `local` (see
    /// `core::trusted_time`), writing only when it moved enough to matter.
    pub fn observe_time(&self, seen: crate::core::trusted_time::Observation, local: chrono::DateTime<chrono::Utc>) -> Result<crate::core::trusted_time::Record, CacheError> {
        let old = self.trusted_time();
        let new = crate::core::trusted_time::learn(old.as_ref(), seen, local);
        if crate::core::trusted_time::worth_writing(old.as_ref(), &new) {
            let path = self.root.join(crate::core::trusted_time::FILE);
            let bytes = serde_json::to_vec_pretty(&new).map_err(|e| CacheError::Io { path: path.clone(), source: e.into() })?;
            crate::store::atomic::write(&path, &bytes).map_err(io(&path))?;
        }
        Ok(new)
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
            Ok(old) => crate::store::atomic::write(&previous, &old).map_err(io(&previous))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(CacheError::Io { path: current, source }),
        }
        crate::store::atomic::write(&current, &new.bytes).map_err(io(&current))?;
        // The switch is done; a failure here only delays the record to the
        // next start, which takes it from current.json.
        if let Err(e) = self.record_highest(new) {
            tracing::warn!("cache: {e}");
        }
        Ok(())
    }

    /// Records `v` as the highest version accepted, unless a higher one is.
    /// Two files, each written atomically one after the other, so a torn or
    /// rotten one still leaves the other.
    pub fn record_highest(&self, v: &Verified) -> Result<(), CacheError> {
        let new = Highest { version: v.manifest.version, manifest_sha256: Digest::of(&v.bytes) };
        if self.highest().is_some_and(|h| h.version >= new.version) {
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(&new).map_err(|e| CacheError::Io { path: self.root.join(HIGHEST), source: e.into() })?;
        for name in [HIGHEST, HIGHEST_COPY] {
            let path = self.root.join(name);
            crate::store::atomic::write(&path, &bytes).map_err(io(&path))?;
        }
        Ok(())
    }

    /// What a sync does once when its process starts, under the lock: removes
    /// leftover `.tmp-` files of killed writes (in the cache, `blobs/` and
    /// `alert-media/`) and partial downloads that no version wants (those of
    /// the download under way, as `status.json` records it, are kept to be
    /// resumed); seeds `highest.json` from `current.json` (a cache from
    /// before it existed); and hashes the current version's playlists and
    /// alerts (up to [`START_CHECK_MAX_BYTES`] each), removing any that no
    /// longer match their name. Problems are logged, never fatal: the sync
    /// goes on.
    pub fn start(&self, key: &VerifyingKey) -> Started {
        let mut out = Started { temp_files: self.remove_stale_temps(SystemTime::now()), ..Started::default() };
        let current = self.current(key).ok().flatten();
        let mut keep: BTreeSet<Digest> = BTreeSet::new();
        for v in [current.clone(), self.previous(key).ok().flatten()].into_iter().flatten() {
            keep.extend(v.manifest.blobs().iter().map(|b| b.sha256));
        }
        if let Some(p) = crate::store::status::SyncStatus::load(&self.status_path()).pending {
            keep.extend(p.files.iter().map(|f| f.sha256));
        }
        match self.remove_except(&["partial"], &keep) {
            Ok(c) => out.partials = c.files,
            Err(e) => tracing::warn!("cache: {e}"),
        }
        if out.temp_files + out.partials > 0 {
            tracing::info!("cache: removed {} leftover temporary file(s) and {} unwanted partial download(s)", out.temp_files, out.partials);
        }
        out.bad.extend(self.check_feed_alerts(key));
        let Some(current) = current else { return out };
        if let Err(e) = self.record_highest(&current) {
            tracing::warn!("cache: {e}");
        }
        for b in current.manifest.blobs() {
            if matches!(b.media_type, MediaType::Playlist | MediaType::Cap) && b.size <= START_CHECK_MAX_BYTES && self.check_blob(&b.sha256) {
                out.bad.push(self.blob_path(&b.sha256));
            }
        }
        out
    }

    /// Hashes the blob named `d`; if it does not match (or cannot be read:
    /// on flash that is rot too), logs it and removes it. True if removed.
    fn check_blob(&self, d: &Digest) -> bool {
        let path = self.blob_path(d);
        let why = match Digest::of_file(&path) {
            Ok((got, _)) if got == *d => return false,
            Ok((got, len)) => format!("its content ({len} bytes, sha256 {got}) no longer matches its name"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
            Err(e) => format!("cannot be read ({e})"),
        };
        self.remove_bad(&path, &why)
    }

    fn remove_bad(&self, path: &Path, why: &str) -> bool {
        match std::fs::remove_file(path) {
            Ok(()) => {
                tracing::warn!("cache: {}: {why}; removed, the next sync fetches it again", path.display());
                true
            }
            Err(e) => {
                tracing::error!("cache: {}: {why}, and it cannot be removed: {e}", path.display());
                false
            }
        }
    }

    /// Removes `.tmp-` files of killed writes: in `blobs/` all of them (only
    /// a writer holding the writer's lock writes there, and the caller holds
    /// it, so none belongs to a live writer however young), elsewhere those
    /// older than [`STALE_TEMP_AGE`] at `now` (the alert store and its audio
    /// are written under other locks).
    fn remove_stale_temps(&self, now: SystemTime) -> usize {
        let mut n = 0;
        for dir in [self.root.clone(), self.root.join("blobs"), self.root.join(ALERT_MEDIA), self.root.join("feed-alerts")] {
            let any_age = dir.ends_with("blobs");
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for e in entries.flatten() {
                if !e.file_name().to_string_lossy().starts_with(".tmp-") {
                    continue;
                }
                let modified = e.metadata().and_then(|m| m.modified()).ok();
                let stale = any_age || modified.and_then(|m| now.duration_since(m).ok()).is_some_and(|age| age >= STALE_TEMP_AGE);
                if stale && std::fs::remove_file(e.path()).is_ok() {
                    n += 1;
                }
            }
        }
        n
    }

    /// One pass of the background check: hashes the blobs in name order,
    /// going on from where the last pass stopped (`scrub.json`, with the hash
    /// state when it stopped inside a file), until `max_bytes` are read or
    /// every blob has been seen once. So the pass's cost is bounded, and a
    /// 4 GB cache is checked over hours, whole files included. A blob that
    /// no longer matches its name is logged and removed. Call it under the
    /// lock: it removes files.
    pub fn scrub(&self, max_bytes: u64) -> Result<Scrubbed, CacheError> {
        let state_path = self.root.join(SCRUB);
        let state: ScrubState = std::fs::read(&state_path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        let dir = self.root.join("blobs");
        let mut names: Vec<Digest> = std::fs::read_dir(&dir)
            .map_err(io(&dir))?
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .collect();
        names.sort();
        let mut out = Scrubbed::default();
        if names.is_empty() {
            return Ok(out);
        }
        let mut i = state.next.map_or(0, |d| names.partition_point(|n| *n < d)) % names.len();
        // The saved hash counts only if the pass resumes the very file it was for.
        let mut resume = match (state.next, state.hash.as_deref().and_then(|h| hex::decode(h).ok())) {
            (Some(d), Some(bytes)) if names[i] == d && state.offset > 0 => Hashing::resume(&bytes).map(|h| (h, state.offset)),
            _ => None,
        };
        let mut left = max_bytes;
        let mut seen = 0;
        let mut buf = vec![0u8; 64 * 1024];
        let next = loop {
            if seen == names.len() {
                break ScrubState { next: Some(names[i]), offset: 0, hash: None };
            }
            let d = names[i];
            let path = self.blob_path(&d);
            let (mut hash, mut offset) = resume.take().unwrap_or_default();
            let mut file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    i = (i + 1) % names.len();
                    seen += 1;
                    continue;
                }
                Err(e) => {
                    if self.remove_bad(&path, &format!("cannot be read ({e})")) {
                        out.bad.push(path);
                    }
                    i = (i + 1) % names.len();
                    seen += 1;
                    continue;
                }
            };
            let read = file.seek(std::io::SeekFrom::Start(offset)).and_then(|_| loop {
                if left == 0 {
                    break Ok(false);
                }
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = file.read(&mut buf[..want])?;
                if n == 0 {
                    break Ok(true);
                }
                hash.update(&buf[..n]);
                offset += n as u64;
                left -= n as u64;
                out.bytes += n as u64;
            });
            match read {
                Ok(false) => break ScrubState { next: Some(d), offset, hash: Some(hex::encode(hash.save())) },
                Ok(true) => {
                    out.files += 1;
                    let got = hash.finish();
                    if got != d && self.remove_bad(&path, &format!("its content ({offset} bytes, sha256 {got}) no longer matches its name")) {
                        out.bad.push(path);
                    }
                }
                Err(e) => {
                    if self.remove_bad(&path, &format!("cannot be read ({e})")) {
                        out.bad.push(path);
                    }
                }
            }
            i = (i + 1) % names.len();
            seen += 1;
        };
        let bytes = serde_json::to_vec(&next).map_err(|e| CacheError::Io { path: state_path.clone(), source: e.into() })?;
        crate::store::atomic::write(&state_path, &bytes).map_err(io(&state_path))?;
        Ok(out)
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
        self.remove_except(&["blobs", "partial"], keep)
    }

    fn remove_except(&self, subs: &[&str], keep: &BTreeSet<Digest>) -> Result<Collected, CacheError> {
        let mut out = Collected::default();
        for sub in subs {
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

}

/// The right to change the alert store (`alerts.json`) and the audio its
/// messages link to (`alert-media/`), handed out only by the alerts' lock
/// ([`Cache::alert_writer`]).
pub type AlertWriter = Held<Alerts>;

impl AlertWriter {
    /// Writes the alert store atomically.
    pub fn save_alerts(&self, store: &crate::core::alert::Store) -> std::io::Result<()> {
        crate::store::atomic::write(&self.root.join(crate::core::alert::store::FILE), &store.to_bytes())
    }

    /// Moves an alert store that cannot be read aside (`alerts.json.bad`),
    /// for a look.
    pub fn set_aside_alerts(&self) {
        let path = self.root.join(crate::core::alert::store::FILE);
        let _ = std::fs::rename(&path, path.with_extension("json.bad"));
    }

    /// Keeps the audio linked at `uri`; returns where it is.
    pub fn put_alert_media(&self, uri: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
        let dest = alert_media_path(&self.root, uri);
        std::fs::create_dir_all(self.root.join(ALERT_MEDIA))?;
        crate::store::atomic::write(&dest, bytes)?;
        Ok(dest)
    }

    /// Removes the alert audio no message links to any more (`keep`: the
    /// URIs still linked). Temp files are writes in progress.
    pub fn remove_alert_media_except(&self, keep: &[&str]) {
        let keep: Vec<PathBuf> = keep.iter().map(|u| alert_media_path(&self.root, u)).collect();
        let Ok(entries) = std::fs::read_dir(self.root.join(ALERT_MEDIA)) else { return };
        for e in entries.flatten() {
            if !keep.contains(&e.path()) && !e.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Where sync keeps the audio that alerts link to (see `sync::alert_media`).
pub const ALERT_MEDIA: &str = "alert-media";

/// Where the audio linked at `uri` is kept.
pub fn alert_media_path(cache_root: &Path, uri: &str) -> PathBuf {
    cache_root.join(ALERT_MEDIA).join(Digest::of(uri.as_bytes()).hex())
}

/// Free bytes on the file system holding `path` (None if it cannot be read).
pub fn free_space(path: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(path).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// The default cache folder: the user's data dir (`~/.local/share/estation/cache`).
pub fn default_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "estation").map(|d| d.data_dir().join("cache"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::feed::manifest::{sign, tests::{key, sample}};

    fn put(cache: &Cache, bytes: &[u8]) {
        crate::store::atomic::write(&cache.blob_path(&Digest::of(bytes)), bytes).unwrap();
    }

    #[test]
    fn commit_needs_every_file_and_gc_keeps_two_versions() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap().writer_blocking().unwrap();
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
    fn the_alert_store_and_its_audio_count_against_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap().writer_blocking().unwrap();
        put(&cache, b"12345");
        std::fs::write(dir.path().join(crate::core::alert::store::FILE), b"0123456789").unwrap();
        std::fs::create_dir_all(dir.path().join(ALERT_MEDIA)).unwrap();
        std::fs::write(dir.path().join(ALERT_MEDIA).join("a"), b"abc").unwrap();
        assert_eq!(cache.used_bytes(), 5 + 10 + 3);
    }

    #[test]
    fn one_download_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap().writer_blocking().unwrap();
        let held = cache.download_lock().unwrap();
        assert!(matches!(cache.download_lock(), Err(CacheError::Busy(_))));
        assert!(cache.downloading());
        drop(held);
        assert!(!cache.downloading());
        cache.download_lock().unwrap();
    }

    #[test]
    fn a_cache_edited_by_hand_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap().writer_blocking().unwrap();
        let k = key(1);
        let text = String::from_utf8(sign(&sample(5), &k)).unwrap().replace("\"version\": 5", "\"version\": 9");
        std::fs::write(dir.path().join(CURRENT), text).unwrap();
        assert!(matches!(cache.current(&k.verifying_key()), Err(CacheError::Manifest { .. })));
    }

    fn backdate(path: &Path, by: Duration) {
        File::options().write(true).open(path).unwrap().set_modified(SystemTime::now() - by).unwrap();
    }

    fn flip_a_byte(path: &Path, at: usize) {
        let mut bytes = std::fs::read(path).unwrap();
        bytes[at] ^= 0x20;
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_rotten_playlist_is_found_at_start_removed_and_listed_missing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap().writer_blocking().unwrap();
        let k = key(1);
        let v5 = verify_signature(&sign(&sample(5), &k), &k.verifying_key()).unwrap();
        put(&cache, b"toml");
        put(&cache, b"png");
        cache.commit(&v5).unwrap();
        assert_eq!(cache.start(&k.verifying_key()).bad, Vec::<PathBuf>::new());

        let playlist = cache.blob_path(&Digest::of(b"toml"));
        flip_a_byte(&playlist, 1); // same size: `has` alone cannot tell
        assert!(cache.missing(&v5).is_empty());
        assert_eq!(cache.start(&k.verifying_key()).bad, vec![playlist.clone()]);
        assert!(!playlist.exists());
        assert_eq!(cache.missing(&v5).iter().map(|b| b.sha256).collect::<Vec<_>>(), vec![Digest::of(b"toml")]);
        // Media are left to the scrub: a rotten picture survives the start.
        let picture = cache.blob_path(&Digest::of(b"png"));
        flip_a_byte(&picture, 0);
        assert!(cache.start(&k.verifying_key()).bad.is_empty());
        assert!(picture.exists());
    }

    #[test]
    fn start_removes_leftover_temps_and_orphan_partials_but_keeps_a_resumable_download() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap().writer_blocking().unwrap();
        let k = key(1);
        let media = dir.path().join(ALERT_MEDIA);
        std::fs::create_dir_all(&media).unwrap();
        let old: Vec<PathBuf> = [dir.path().join(".tmp-a1"), dir.path().join("blobs/.tmp-b2"), media.join(".tmp-c3")].into();
        for p in &old {
            std::fs::write(p, b"half a write").unwrap();
            backdate(p, STALE_TEMP_AGE + Duration::from_secs(5));
        }
        // A write in progress right now (the alert store has its own lock).
        let live = dir.path().join(".tmp-live");
        std::fs::write(&live, b"being written").unwrap();
        let resumable = cache.partial_path(&Digest::of(b"wanted"));
        let orphan = cache.partial_path(&Digest::of(b"nobody"));
        std::fs::write(&resumable, b"wan").unwrap();
        std::fs::write(&orphan, b"nob").unwrap();
        let pending = crate::store::status::Pending {
            version: 9,
            files: vec![crate::store::status::PendingFile { sha256: Digest::of(b"wanted"), size: 6, done: 3 }],
        };
        crate::store::status::SyncStatus { pending: Some(pending), ..Default::default() }.save(&cache.status_path()).unwrap();

        let started = cache.start(&k.verifying_key());
        assert_eq!((started.temp_files, started.partials), (3, 1));
        assert!(old.iter().all(|p| !p.exists()));
        assert!(live.exists() && resumable.exists() && !orphan.exists());
    }

    #[test]
    fn the_scrub_reads_a_bounded_slice_per_pass_resumes_inside_a_file_and_removes_rot() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let big: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let small: &[&[u8]] = &[b"one", b"two", b"three"];
        put(&cache, &big);
        for s in small {
            put(&cache, s);
        }
        let big_path = cache.blob_path(&Digest::of(&big));
        flip_a_byte(&big_path, 900); // late in the file: found only by the pass that ends it
        let total = 1000 + 3 + 3 + 5;
        let mut read = 0;
        let mut bad = Vec::new();
        let mut passes = 0;
        while bad.is_empty() {
            // A fresh handle each pass: where it got to lives in scrub.json.
            let s = cache.writer_blocking().unwrap().scrub(128).unwrap();
            assert!(s.bytes <= 128, "{s:?}");
            read += s.bytes;
            bad.extend(s.bad);
            passes += 1;
            assert!(passes < 20, "never found");
        }
        assert_eq!(bad, vec![big_path.clone()]);
        assert!(!big_path.exists());
        assert!(read <= total + 128, "read {read} bytes of {total} to get round once");
        for s in small {
            assert!(cache.blob_path(&Digest::of(s)).exists());
        }
        // A whole round in one generous pass, each file once, nothing else bad.
        let round = cache.writer_blocking().unwrap().scrub(1 << 20).unwrap();
        assert_eq!((round.files, round.bytes, round.bad.len()), (3, 11, 0));
    }

    #[test]
    fn the_highest_version_outlives_a_lost_current_json_and_refuses_older_ones() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap().writer_blocking().unwrap();
        let k = key(1);
        let vk = k.verifying_key();
        put(&cache, b"toml");
        put(&cache, b"png");
        let v = |n| verify_signature(&sign(&sample(n), &k), &vk).unwrap();
        cache.commit(&v(5)).unwrap();
        cache.commit(&v(6)).unwrap();
        std::fs::remove_file(dir.path().join(CURRENT)).unwrap();
        assert_eq!(cache.check_not_rolled_back(&v(5)), Err(ManifestError::Rollback { new: 5, current: 6 }));
        // One of the two records torn: the other still holds.
        std::fs::write(dir.path().join(HIGHEST), b"{\"vers").unwrap();
        assert_eq!(cache.highest().map(|h| h.version), Some(6));
        assert!(cache.check_not_rolled_back(&v(5)).is_err());
        let mut other6 = sample(6);
        other6.media[0].size = 9;
        let other6 = verify_signature(&sign(&other6, &k), &vk).unwrap();
        assert_eq!(cache.check_not_rolled_back(&other6), Err(ManifestError::SameVersionDifferent(6)));
        assert_eq!(cache.check_not_rolled_back(&v(6)), Ok(()));
        assert_eq!(cache.check_not_rolled_back(&v(7)), Ok(()));

        // A cache from before highest.json: the start takes it from current.json.
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap().writer_blocking().unwrap();
        std::fs::write(dir.path().join(CURRENT), sign(&sample(8), &k)).unwrap();
        assert_eq!(cache.highest(), None);
        cache.start(&vk);
        assert_eq!(cache.highest().map(|h| h.version), Some(8));
    }

    #[test]
    fn verify_names_a_damaged_file() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap().writer_blocking().unwrap();
        let k = key(1);
        assert!(cache.verify(&k.verifying_key()).unwrap().is_none());
        put(&cache, b"toml");
        put(&cache, b"png");
        cache.commit(&verify_signature(&sign(&sample(5), &k), &k.verifying_key()).unwrap()).unwrap();
        assert!(cache.verify(&k.verifying_key()).unwrap().unwrap().problems.is_empty());
        let picture = cache.blob_path(&Digest::of(b"png"));
        flip_a_byte(&picture, 0);
        let problems = cache.verify(&k.verifying_key()).unwrap().unwrap().problems;
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with(&picture.display().to_string()), "{problems:?}");
    }

    use crate::core::trusted_time::tests::{seen, t};

    #[test]
    fn the_trusted_times_floor_only_rises_and_writes_are_rare() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap().writer_blocking().unwrap();
        let load = |_| cache.trusted_time();
        let r1 = cache.observe_time(seen(t(7), Some(t(8))), t(8)).unwrap();
        assert_eq!(load(dir.path()), Some(r1));
        let r2 = cache.observe_time(seen(t(7), Some(t(8) + chrono::Duration::minutes(1))), t(8) + chrono::Duration::minutes(1)).unwrap();
        assert_eq!(load(dir.path()), Some(r1), "a minute on at the same offsets is not written");
        assert_eq!(r2.floor, Some(t(8) + chrono::Duration::minutes(1)));
        // Synced again on a clock set back a day: the floor stays.
        cache.observe_time(seen(t(7), Some(t(9))), t(9) - chrono::Duration::days(1)).unwrap();
        let r = load(dir.path()).unwrap();
        assert!(r.floor >= Some(t(8)));
        assert!(crate::core::trusted_time::disagreement(Some(&r), chrono::Duration::minutes(5)).unwrap().contains("1day behind"));
        assert_eq!(crate::core::trusted_time::disagreement(Some(&r1), chrono::Duration::minutes(5)), None);
    }

}
