//! Sync: bring the cache to the feed's newest good version.
//!
//! Diff → plan → apply. The manifest is fetched with a conditional GET (a
//! poll with no change is one request answered 304) and fully verified —
//! signature, key, version above the current one, not expired — before
//! anything else happens. Then only missing files are fetched, a few at a
//! time, with timeouts, retries with jittered exponential back-off, HTTP
//! Range resume of partial files, a bandwidth cap and a sha256 check. Every
//! write is atomic; the version becomes current in one step once all its
//! files are in. Any failure leaves the current version as it was.

pub mod alert_media;
pub mod fetch;
pub mod throttle;
pub mod upstream;

use crate::core::sync::{backoff, plan};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use ed25519_dalek::VerifyingKey;
use futures_util::StreamExt as _;

use crate::core::sync::plan::{Local, Op};
use crate::net::http::{HttpError, Retry};
use crate::store::cache::{Cache, CacheError, CacheWriter, InstallError};
use crate::core::feed::manifest::{verify_new, ManifestError};
use crate::core::feed::{Blob, Digest, Verified};
use crate::store::status::{Pending, PendingFile, SyncStatus};

/// Where a feed comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A feed served over HTTP(S): the URL of the folder holding `manifest.json`.
    Http(reqwest::Url),
    /// A feed folder on disk (a USB stick), verified exactly the same way.
    Dir(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Http(u) => write!(f, "{u}"),
            Source::Dir(d) => write!(f, "{}", d.display()),
        }
    }
}

impl Source {
    /// Parses a feed URL; the folder URL gets its trailing slash so that
    /// file names join under it.
    pub fn http(url: &str) -> Result<Source, String> {
        crate::core::feed::folder_url(url).map(Source::Http)
    }
}

/// Knobs of a sync; [`Options::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct Options {
    pub key: VerifyingKey,
    pub max_bytes_per_sec: Option<u64>,
    /// Most bytes the cache may hold.
    pub budget: u64,
    /// Files fetched at once.
    pub concurrency: usize,
    /// Tries per file per sync.
    pub attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub connect_timeout: Duration,
    /// Longest silence inside a response before it counts as cut.
    pub read_timeout: Duration,
    /// Lives, authority and place for the alerts the feed carries (see
    /// `alert::inbox::Rules`).
    pub alert_rules: crate::store::inbox::Rules,
    /// How alerts' linked audio may be fetched.
    pub alert_media: alert_media::Rules,
    /// A feed whose newest manifest was built longer ago than this is
    /// flagged frozen (its server answers, but nobody renews it).
    pub max_age: Duration,
    /// Bytes of the cache the background scrub hashes after each poll
    /// (see [`Cache::scrub`]).
    pub scrub_bytes_per_poll: u64,
}

impl Options {
    pub fn new(key: VerifyingKey) -> Options {
        Options {
            key,
            max_bytes_per_sec: None,
            budget: 4_000_000_000,
            concurrency: 4,
            attempts: 5,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            alert_rules: Default::default(),
            alert_media: alert_media::Rules { http_sources: Vec::new(), budget: 4_000_000_000 },
            max_age: Duration::from_secs(7 * 86_400),
            // At the default 60 s poll about 0.5 MiB/s: a full 4 GB cache is
            // checked every two hours or so, each pass a second of reading.
            scrub_bytes_per_poll: 32 << 20,
        }
    }
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The feed has nothing newer (`version` is current; None: none yet).
    Unchanged { version: Option<u64> },
    Updated { from: Option<u64>, to: u64, files: usize, bytes: u64 },
    /// Nothing newer, but the current version had lost files (found damaged
    /// and removed by the cache's checks); they were fetched again.
    Repaired { version: u64, files: usize, bytes: u64 },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Unchanged { version: Some(v) } => write!(f, "up to date at version {v}"),
            Outcome::Unchanged { version: None } => write!(f, "the feed has no version yet"),
            Outcome::Updated { from, to, files, bytes } => {
                let from = from.map_or("nothing".to_string(), |v| format!("version {v}"));
                write!(f, "updated from {from} to version {to}: fetched {files} file(s), {}", bytesize::ByteSize(*bytes))
            }
            Outcome::Repaired { version, files, bytes } => {
                write!(f, "version {version} was missing {files} file(s); fetched them again, {}", bytesize::ByteSize(*bytes))
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("manifest from {source_name} refused: {error}")]
    Manifest { source_name: String, error: ManifestError },
    #[error("warnings document (alerts.json) from {source_name} refused: {error}")]
    Alerts { source_name: String, error: ManifestError },
    #[error("{what}: {source}")]
    Fetch {
        what: String,
        #[source]
        source: FetchError,
    },
    #[error("version {version}: {failed} of {of} file(s) not fetched; first: {first}")]
    Incomplete { version: u64, failed: usize, of: usize, first: Box<SyncError> },
    #[error(transparent)]
    NoSpace(#[from] plan::NoSpace),
}

/// Why one file (or the manifest) was not fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Install(#[from] InstallError),
    /// The server broke the protocol (a resume at the wrong byte, more or
    /// fewer bytes than the manifest lists).
    #[error("{0}")]
    Server(String),
}

impl FetchError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
        move |source| FetchError::Io { path: path.to_path_buf(), source }
    }
}

impl From<reqwest::Error> for FetchError {
    fn from(e: reqwest::Error) -> FetchError {
        FetchError::Http(HttpError::Transport(e))
    }
}

/// One kiosk's sync: a cache, a source, and the HTTP client it reuses.
pub struct Syncer {
    cache: Cache,
    source: Source,
    fetch: Box<dyn fetch::Fetch>,
    opts: Options,
    /// For the alerts' linked audio.
    client: reqwest::Client,
    /// Whether this process has run the cache's start step yet.
    started: AtomicBool,
}

pub use crate::net::http::{client_builder, MAX_REDIRECTS};

impl Syncer {
    pub fn new(cache: Cache, source: Source, opts: Options) -> Result<Syncer, SyncError> {
        let client = client_builder()
            .connect_timeout(opts.connect_timeout)
            .read_timeout(opts.read_timeout)
            .build()
            .map_err(|e| SyncError::Fetch { what: "HTTP client".into(), source: e.into() })?;
        let fetch: Box<dyn fetch::Fetch> = match &source {
            Source::Http(base) => Box::new(fetch::Http {
                base: base.clone(),
                client: client.clone(),
                cache: cache.clone(),
                retry: Retry { attempts: opts.attempts, base: opts.backoff_base, max: opts.backoff_max },
                throttle: throttle::Throttle::new(opts.max_bytes_per_sec),
                max_bytes_per_sec: opts.max_bytes_per_sec,
            }),
            Source::Dir(dir) => Box::new(fetch::Folder { dir: dir.clone() }),
        };
        Ok(Syncer { cache, source, fetch, opts, client, started: AtomicBool::new(false) })
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// One sync, recorded in the cache's status file.
    ///
    /// An HTTP sync holds the writer's lock only for its short steps and
    /// lets go of it while it waits on the network (fetching the manifest,
    /// downloading), holding the download lock instead; so a USB import
    /// (`sync --from`) goes on while a throttled background download runs,
    /// and a slow server never holds up another writer. Alert audio is
    /// fetched after every lock is let go.
    pub async fn once(&self) -> Result<Outcome, SyncError> {
        let result = self.poll().await;
        self.fetch_alert_media().await;
        result
    }

    /// The audio that the alerts in the store link to (see `alert_media`).
    async fn fetch_alert_media(&self) {
        if let Ok(store) = crate::store::inbox::Inbox::new(self.cache.root()).load() {
            alert_media::sync(&self.client, &self.cache, &store, &self.opts.alert_media).await;
        }
    }

    /// [`Syncer::once`] without the alert audio.
    async fn poll(&self) -> Result<Outcome, SyncError> {
        // Held until this poll returns.
        let downloading = if self.fetch.remote() { Some(self.cache.download_lock()?) } else { None };
        let mut writer = Writer { cache: &self.cache, held: Some(self.cache.writer().await?) };
        // The start step clears stray partial downloads: not while another
        // process is downloading into them.
        if (downloading.is_some() || !self.cache.downloading()) && !self.started.swap(true, Ordering::Relaxed) {
            writer.held()?.start(&self.opts.key);
        }
        let status_path = self.cache.status_path();
        let status = Arc::new(Mutex::new(SyncStatus::load(&status_path)));
        update(&status, &status_path, |s| {
            s.last_attempt = Some(Utc::now());
            s.source = Some(self.source.to_string());
        });
        let result = self.run(&status, &status_path, &mut writer).await;
        let result = writer.hold().await.and(result);
        // The warnings whatever became of the programme: a broken manifest
        // must not hold up a warning.
        let alerts = match self.sync_alerts(&status, &status_path, &mut writer).await {
            Ok(Some(v)) => {
                tracing::info!("sync: warnings document version {v} taken");
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        let result = writer.hold().await.and(result).and_then(|o| alerts.map(|()| o));
        self.after_poll(result.is_ok(), &status, &status_path, writer.take()).await;
        let trusted = self.cache.trusted_time();
        let now = crate::core::trusted_time::now(trusted.as_ref(), Utc::now()).ends;
        // The current version's alerts go to the alert store whatever this
        // sync did: a first start after an upgrade, or a store lost, is
        // filled from what the cache already holds.
        let messages = crate::store::inbox::feed_messages(&self.cache, &self.opts.key);
        let inbox = crate::store::inbox::Inbox::new(self.cache.root());
        if let Err(e) = inbox.receive(messages, crate::core::alert::authority::FEED, now, &self.opts.alert_rules) {
            tracing::error!("alerts: {e}");
        }
        update(&status, &status_path, |s| match &result {
            Ok(_) => {
                s.last_success = Some(Utc::now());
                s.last_error = None;
                s.last_error_at = None;
            }
            Err(e) => {
                s.last_error = Some(e.to_string());
                s.last_error_at = Some(Utc::now());
            }
        });
        result
    }

    /// Syncs every `interval` until the process ends, logging each outcome.
    /// Alert audio is fetched beside the polls, never in their way: a slow
    /// audio host cannot hold up the next feed poll (nor the Cancel in it).
    ///
    /// With push, a nudge (a notice, push connected or lost) starts a sync
    /// at once, and while push is healthy the poll waits `relaxed` instead.
    /// Syncs that nudges start are at least
    /// [`NOTICE_GAP`](crate::core::push::NOTICE_GAP) apart (a flood of
    /// forged notices costs one fetch per gap); the scheduled polls do not
    /// count, so a notice just after one goes at once.
    pub async fn forever(&self, interval: Duration, push: Option<(&crate::net::push::Wake, Duration)>) {
        let fetched = tokio::sync::Notify::new();
        let polls = async {
            let mut nudged_sync: Option<std::time::Instant> = None;
            loop {
                // Every ask so far is covered by this poll.
                let seen = push.map(|(wake, _)| wake.asked());
                match self.poll().await {
                    Ok(Outcome::Unchanged { .. }) => tracing::debug!("sync: no change"),
                    Ok(o) => tracing::info!("sync: {o}"),
                    Err(e) => tracing::warn!("sync: {e}"),
                }
                fetched.notify_one();
                let (Some((wake, relaxed)), Some(seen)) = (push, seen) else {
                    tokio::time::sleep(backoff::poll_period(interval, fastrand::f64())).await;
                    continue;
                };
                let period = if wake.healthy() { relaxed.max(interval) } else { interval };
                tokio::select! {
                    _ = tokio::time::sleep(backoff::poll_period(period, fastrand::f64())) => {}
                    _ = wake.asked_after(seen) => {
                        tokio::time::sleep(crate::core::push::notice_wait(nudged_sync, std::time::Instant::now())).await;
                        nudged_sync = Some(std::time::Instant::now());
                    }
                }
            }
        };
        let media = async {
            loop {
                fetched.notified().await;
                self.fetch_alert_media().await;
            }
        };
        tokio::join!(polls, media);
    }

    async fn run(&self, status: &Arc<Mutex<SyncStatus>>, status_path: &Path, writer: &mut Writer<'_>) -> Result<Outcome, SyncError> {
        let key = &self.opts.key;
        // A current.json that no longer verifies is as good as none: the
        // feed will replace it.
        let read_current = || {
            self.cache.current(key).unwrap_or_else(|e| {
                tracing::warn!("cache: {e}; syncing as if empty");
                None
            })
        };
        let had_current = self.cache.current(key).ok().flatten().is_some();
        let validators = status.lock().map(|s| (s.manifest_etag.clone(), s.manifest_last_modified.clone())).unwrap_or_default();
        let http = self.fetch.remote();
        if http {
            writer.release();
        }
        let answer = self.fetch.manifest(had_current.then_some((&validators.0, &validators.1))).await;
        writer.hold().await?;
        let fetch::Answer { fetched, date } = answer?;
        // Read after the wait: a USB import may have moved it meanwhile.
        let current = read_current();
        let refused = |error| SyncError::Manifest { source_name: self.source.to_string(), error };
        let (new, mut validators) = match fetched {
            None => (None, None),
            Some(fetch::Fetched { bytes, etag, last_modified }) => {
                let new = verify_new(&bytes, key, Utc::now(), current.as_ref()).map_err(refused)?;
                if let Some(n) = &new {
                    self.cache.check_not_rolled_back(n).map_err(refused)?;
                }
                (new, Some((etag, last_modified)))
            }
        };
        if let Some(v) = new.as_ref().or(current.as_ref()) {
            learn_time(writer.held()?, v, date);
        }
        // Nothing newer: the current version may still have lost files
        // (removed as damaged by the cache's checks); fetch those again.
        let repair = new.is_none();
        let new = match new {
            Some(new) => new,
            None => {
                if let Some((etag, last_modified)) = validators.take() {
                    update(status, status_path, |s| {
                        s.manifest_etag = etag;
                        s.manifest_last_modified = last_modified;
                    });
                }
                match current.clone().filter(|c| !self.cache.missing(c).is_empty()) {
                    Some(c) => c,
                    None => return Ok(Outcome::Unchanged { version: current.map(|c| c.manifest.version) }),
                }
            }
        };

        // A USB import while an HTTP sync downloads: its files are not ours to take.
        let downloading = (!http && self.cache.downloading())
            .then(|| SyncStatus::load(status_path).pending.iter().flat_map(|p| p.files.iter().map(|f| f.sha256)).collect::<BTreeSet<_>>());
        let snapshot = || -> Result<Local, SyncError> {
            let blobs = self.cache.blobs()?;
            let partial = self.cache.partials()?;
            let held = blobs.values().chain(partial.values()).sum::<u64>();
            Ok(Local {
                current: current.as_ref().map(|c| c.manifest.clone()),
                other_bytes: self.cache.used_bytes().saturating_sub(held),
                blobs,
                partial,
                free: crate::store::cache::free_space(self.cache.root()),
                downloading: downloading.clone(),
            })
        };
        let target = (!repair).then_some(&new.manifest);
        let mut ops = plan::plan(&snapshot()?, target, self.opts.budget)?;
        // Room first; then plan again on what the disk says now (a file
        // that could not be removed frees nothing).
        if let Some(Op::Collect { keep }) = ops.first() {
            log_collected(writer.held()?.collect_except(keep));
            ops = plan::plan(&snapshot()?, target, self.opts.budget)?;
            ops.retain(|op| !matches!(op, Op::Collect { .. }));
        }
        self.apply(&ops, &new, current.as_ref().map(|c| c.manifest.version), repair, validators, (status, status_path), writer).await
    }

    /// The feed's warnings document (`alerts.json`, beside the manifest):
    /// asked for conditionally at every poll, verified (signature, version
    /// above the one here and the highest ever taken, not expired), its
    /// missing messages fetched and checked, then made current in one step.
    /// Some(version) when a new one was taken; None when there is none or
    /// nothing changed (a message lost to rot is fetched again meanwhile).
    async fn sync_alerts(&self, status: &Arc<Mutex<SyncStatus>>, status_path: &Path, writer: &mut Writer<'_>) -> Result<Option<u64>, SyncError> {
        use crate::core::feed::alerts_doc::{self, ALERTS_FILE, MAX_ALERTS_BYTES, MAX_CAP_BYTES};
        let key = &self.opts.key;
        let read_current = || {
            self.cache.current_alerts(key).unwrap_or_else(|e| {
                tracing::warn!("cache: {e}; taking the feed's warnings as if none were here");
                None
            })
        };
        let had = read_current().is_some();
        let validators = status.lock().map(|s| (s.alerts_etag.clone(), s.alerts_last_modified.clone())).unwrap_or_default();
        let http = self.fetch.remote();
        if http {
            writer.release();
        }
        let answer = self.fetch.document(ALERTS_FILE, MAX_ALERTS_BYTES, had.then_some((&validators.0, &validators.1))).await;
        writer.hold().await?;
        let Some(fetch::Answer { fetched, .. }) = answer? else { return Ok(None) };
        let current = read_current();
        let refused = |error| SyncError::Alerts { source_name: self.source.to_string(), error };
        let (new, validators) = match fetched {
            None => (None, None),
            Some(f) => (alerts_doc::verify_new(&f.bytes, key, Utc::now(), current.as_ref(), self.cache.alerts_highest()).map_err(refused)?, Some((f.etag, f.last_modified))),
        };
        let Some(target) = new.clone().or(current) else { return Ok(None) };
        let missing = self.cache.missing_alerts(&target);
        if !missing.is_empty() {
            if http {
                writer.release();
            }
            let mut got = Vec::new();
            for b in &missing {
                got.push(self.fetch.document(&b.feed_path(), MAX_CAP_BYTES, None).await);
            }
            writer.hold().await?;
            for (b, answer) in missing.iter().zip(got) {
                let what = || b.feed_path();
                let bytes = match answer? {
                    Some(fetch::Answer { fetched: Some(f), .. }) => f.bytes,
                    _ => return Err(SyncError::Fetch { what: what(), source: FetchError::Server("not in the feed, though alerts.json lists it".into()) }),
                };
                writer.held()?.put_feed_alert(b, &bytes).map_err(|e| SyncError::Fetch { what: what(), source: e.into() })?;
            }
        }
        if new.is_some() || !missing.is_empty() {
            writer.held()?.commit_alerts(&target)?;
        }
        if let Some((etag, last_modified)) = validators {
            update(status, status_path, |s| {
                s.alerts_etag = etag;
                s.alerts_last_modified = last_modified;
            });
        }
        Ok(new.map(|n| n.doc.version))
    }

    /// Carries out a plan's steps in order, through the writer (held for
    /// collections and the switch; let go while an HTTP sync downloads).
    #[allow(clippy::too_many_arguments)] // private: one sync's state
    async fn apply(
        &self,
        ops: &[Op],
        new: &Verified,
        from: Option<u64>,
        repair: bool,
        validators: Option<(Option<String>, Option<String>)>,
        (status, status_path): (&Arc<Mutex<SyncStatus>>, &Path),
        writer: &mut Writer<'_>,
    ) -> Result<Outcome, SyncError> {
        let http = self.fetch.remote();
        let version = new.manifest.version;
        let fetch: Vec<Blob> = ops.iter().filter_map(|op| if let Op::Fetch(b) = op { Some(b.clone()) } else { None }).collect();
        let mut bytes = 0;
        let mut fetched = false;
        for op in ops {
            match op {
                Op::Collect { keep } => {
                    writer.hold().await?;
                    log_collected(writer.held()?.collect_except(keep));
                }
                // While an HTTP sync downloads (a USB import meanwhile), its
                // files are not ours to collect: it collects after its own switch.
                Op::CollectOld if !http && self.cache.downloading() => {}
                Op::CollectOld => {
                    writer.hold().await?;
                    log_collected(writer.held()?.collect_garbage(&self.opts.key));
                }
                Op::Fetch(_) if fetched => {}
                Op::Fetch(_) => {
                    fetched = true;
                    bytes = self.fetch_all(&fetch, version, (status, status_path), writer).await?;
                    if repair && http {
                        update(status, status_path, |s| s.pending = None);
                    }
                }
                Op::Commit { .. } => {
                    writer.hold().await?;
                    // A USB import may have brought this version, or a newer
                    // one, while the files downloaded: never go back.
                    let now_current = self.cache.current(&self.opts.key).unwrap_or(None).filter(|c| c.manifest.version >= version);
                    if let Some(c) = now_current {
                        if http {
                            update(status, status_path, |s| s.pending = None);
                        }
                        return Ok(Outcome::Unchanged { version: Some(c.manifest.version) });
                    }
                    writer.held()?.commit(new)?;
                    update(status, status_path, |s| {
                        if http {
                            s.pending = None;
                        }
                        if let Some((etag, last_modified)) = validators.clone() {
                            s.manifest_etag = etag;
                            s.manifest_last_modified = last_modified;
                        }
                    });
                }
            }
        }
        Ok(if repair { Outcome::Repaired { version, files: fetch.len(), bytes } } else { Outcome::Updated { from, to: version, files: fetch.len(), bytes } })
    }

    /// Fetches `fetch` a few at a time (the writer let go meanwhile for an
    /// HTTP sync), showing the download's progress in the status file.
    /// Returns the bytes fetched.
    async fn fetch_all(&self, fetch: &[Blob], version: u64, (status, status_path): (&Arc<Mutex<SyncStatus>>, &Path), writer: &mut Writer<'_>) -> Result<u64, SyncError> {
        let http = self.fetch.remote();
        let progress: Arc<Mutex<BTreeMap<Digest, u64>>> = Arc::new(Mutex::new(BTreeMap::new()));
        let pending = |progress: &BTreeMap<Digest, u64>| Pending {
            version,
            files: fetch.iter().map(|b| PendingFile { sha256: b.sha256, size: b.size, done: progress.get(&b.sha256).copied().unwrap_or(0) }).collect(),
        };
        // `pending` is the HTTP download's (a USB copy is quick, and must
        // not write over the record of a download going on beside it).
        let show_pending = |snapshot: &BTreeMap<Digest, u64>| {
            if http {
                update(status, status_path, |s| s.pending = Some(pending(snapshot)));
            }
        };
        show_pending(&BTreeMap::new());
        // A USB import copies under the writer (its copies land in blobs/
        // directly); an HTTP download lets go of it.
        if http {
            writer.release();
        } else {
            writer.hold().await?;
        }
        let results = {
        let importing = if http { None } else { Some(writer.held()?) };
        let downloads = futures_util::stream::iter(fetch.iter().cloned())
            .map(|b| {
                let progress = progress.clone();
                async move {
                    self.fetch.blob(&b, &progress, importing).await.map_err(|source| SyncError::Fetch { what: b.feed_path(), source })?;
                    if let Ok(mut p) = progress.lock() {
                        p.insert(b.sha256, b.size);
                    }
                    Ok::<_, SyncError>(b.size)
                }
            })
            .buffer_unordered(self.opts.concurrency.max(1))
            .collect::<Vec<_>>();
        tokio::pin!(downloads);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                r = &mut downloads => break r,
                _ = tick.tick() => {
                    let snapshot = progress.lock().map(|m| m.clone()).unwrap_or_default();
                    show_pending(&snapshot);
                }
            }
        }
        };
        let snapshot = progress.lock().map(|m| m.clone()).unwrap_or_default();
        show_pending(&snapshot);
        writer.hold().await?;
        let mut bytes = 0;
        let mut failures = Vec::new();
        for r in results {
            match r {
                Ok(n) => bytes += n,
                Err(e) => failures.push(e),
            }
        }
        let failed = failures.len();
        match failures.into_iter().next() {
            Some(first) => Err(SyncError::Incomplete { version, failed, of: fetch.len(), first: Box::new(first) }),
            None => Ok(bytes),
        }
    }

    /// After each poll: flags a frozen feed when the server answered, and
    /// scrubs a bounded slice of the cache (off the async thread).
    async fn after_poll(&self, answered: bool, status: &Arc<Mutex<SyncStatus>>, status_path: &Path, writer: Option<CacheWriter>) {
        if answered {
            let current = self.cache.current(&self.opts.key).ok().flatten();
            let frozen = current.is_some_and(|v| v.manifest.is_frozen(Utc::now(), self.opts.max_age));
            update(status, status_path, |s| s.frozen = frozen);
        }
        let Some(writer) = writer else { return };
        let max = self.opts.scrub_bytes_per_poll;
        match tokio::task::spawn_blocking(move || writer.scrub(max)).await {
            Ok(Ok(s)) if !s.bad.is_empty() => tracing::warn!("cache: the scrub removed {} damaged file(s); the next sync fetches them again", s.bad.len()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("cache: scrub: {e}"),
            Err(e) => tracing::warn!("cache: scrub: {e}"),
        }
    }
}

/// The writer of one sync, let go while it waits on the network.
struct Writer<'a> {
    cache: &'a Cache,
    held: Option<CacheWriter>,
}

impl Writer<'_> {
    fn release(&mut self) {
        self.held = None;
    }

    async fn hold(&mut self) -> Result<(), SyncError> {
        if self.held.is_none() {
            self.held = Some(self.cache.writer().await?);
        }
        Ok(())
    }

    /// The writer, when held (every step that writes holds it first).
    fn held(&self) -> Result<&CacheWriter, SyncError> {
        self.held.as_ref().ok_or_else(|| CacheError::Busy(self.cache.root().join("lock")).into())
    }

    fn take(&mut self) -> Option<CacheWriter> {
        self.held.take()
    }
}

fn log_collected(result: Result<crate::store::cache::Collected, CacheError>) {
    match result {
        Ok(c) if c.files > 0 => tracing::info!("cache: removed {} unused file(s), {}", c.files, bytesize::ByteSize(c.bytes)),
        Ok(_) => {}
        Err(e) => tracing::warn!("cache: {e}"),
    }
}

/// Records the trusted time this sync learnt (see `crate::core::trusted_time`):
/// the signed manifest's `created`, and the server's `Date` up to the
/// manifest's `expires`.
fn learn_time(writer: &CacheWriter, v: &Verified, date: Option<chrono::DateTime<Utc>>) {
    let m = &v.manifest;
    let seen = crate::core::trusted_time::Observation { created: m.created.with_timezone(&Utc), expires: m.expires.with_timezone(&Utc), date };
    if let Err(e) = writer.observe_time(seen, Utc::now()) {
        tracing::warn!("cache: {e}");
    }
}

/// Changes the status file: read again first, since a USB import and a
/// background download may both be at work (each changes only its fields).
fn update(status: &Mutex<SyncStatus>, path: &Path, f: impl FnOnce(&mut SyncStatus)) {
    if let Ok(mut s) = status.lock() {
        if std::fs::metadata(path).is_ok() {
            *s = SyncStatus::load(path);
        }
        f(&mut s);
        if let Err(e) = s.save(path) {
            tracing::warn!("{}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_urls() {
        let Source::Http(u) = Source::http("http://example.org/feed").unwrap() else { panic!() };
        assert_eq!(u.join("manifest.json").unwrap().as_str(), "http://example.org/feed/manifest.json");
        assert!(Source::http("ftp://x/").is_err());
        assert!(Source::http("not a url").is_err());
    }
}
