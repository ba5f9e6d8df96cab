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
pub mod throttle;
pub mod upstream;

use crate::core::sync::{backoff, plan};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use ed25519_dalek::VerifyingKey;
use futures_util::StreamExt as _;
use tokio::io::AsyncWriteExt as _;

use crate::store::cache::{Cache, CacheError};
use crate::core::feed::manifest::{verify_new, ManifestError, MANIFEST_FILE, MAX_MANIFEST_BYTES};
use crate::core::feed::{Blob, Digest};
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
    #[error("{what}: {why}")]
    Fetch { what: String, why: String },
    #[error(transparent)]
    NoSpace(#[from] plan::NoSpace),
}

/// One kiosk's sync: a cache, a source, and the HTTP client it reuses.
pub struct Syncer {
    cache: Cache,
    source: Source,
    opts: Options,
    client: reqwest::Client,
    throttle: throttle::Throttle,
    /// Whether this process has run [`Cache::start`] yet.
    started: AtomicBool,
}

/// An HTTP client builder with rustls' ring provider installed (reqwest is
/// built without a default provider, to keep aws-lc and cmake out of the
/// build). Use it for every client in the process.
pub fn client_builder() -> reqwest::ClientBuilder {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder().redirect(redirect_policy())
}

/// Longest the manifest request may take, however slowly it trickles.
const MANIFEST_DEADLINE: Duration = Duration::from_secs(60);
/// A file's download gets this long, plus its size at [`SLOWEST_RATE`].
const BLOB_DEADLINE_BASE: Duration = Duration::from_secs(60);
/// The slowest link a download is given time for (bytes per second); a
/// slower one resumes where it stopped at the next try.
const SLOWEST_RATE: u64 = 8 * 1024;

/// Most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;

/// Redirects are followed at most [`MAX_REDIRECTS`] times, each logged, and
/// never from `https://` down to plain `http://`: what TLS vouched for must
/// not be handed to a server nobody vouches for.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let Some(from) = attempt.previous().last().cloned() else { return attempt.follow() };
        match redirect_refusal(attempt.previous(), attempt.url()) {
            Some(why) => {
                tracing::warn!("{from}: {why}");
                attempt.error(why)
            }
            None => {
                tracing::info!("{from}: redirected ({}) to {}", attempt.status(), attempt.url());
                attempt.follow()
            }
        }
    })
}

/// Why a redirect to `next` after `previous` (the URLs so far, first the
/// one asked for) is not followed.
fn redirect_refusal(previous: &[reqwest::Url], next: &reqwest::Url) -> Option<String> {
    if previous.len() > MAX_REDIRECTS {
        return Some(format!("more than {MAX_REDIRECTS} redirects; not followed"));
    }
    (previous.iter().any(|u| u.scheme() == "https") && next.scheme() != "https")
        .then(|| format!("redirect to {next} refused: https is never followed down to {}", next.scheme()))
}

impl Syncer {
    pub fn new(cache: Cache, source: Source, opts: Options) -> Result<Syncer, SyncError> {
        let client = client_builder()
            .connect_timeout(opts.connect_timeout)
            .read_timeout(opts.read_timeout)
            .user_agent(concat!("estation/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SyncError::Fetch { what: "HTTP client".into(), why: e.to_string() })?;
        let throttle = throttle::Throttle::new(opts.max_bytes_per_sec);
        Ok(Syncer { cache, source, opts, client, throttle, started: AtomicBool::new(false) })
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
            alert_media::sync(&self.client, self.cache.root(), &store, &self.opts.alert_media).await;
        }
    }

    /// [`Syncer::once`] without the alert audio.
    async fn poll(&self) -> Result<Outcome, SyncError> {
        // Held until this poll returns.
        let downloading = match &self.source {
            Source::Http(_) => Some(self.cache.download_lock()?),
            Source::Dir(_) => None,
        };
        let mut writer = Writer { cache: &self.cache, lock: Some(self.cache.lock_wait().await?) };
        // The start step clears stray partial downloads: not while another
        // process is downloading into them.
        if (downloading.is_some() || !self.cache.downloading()) && !self.started.swap(true, Ordering::Relaxed) {
            self.cache.start(&self.opts.key);
        }
        let status_path = self.cache.status_path();
        let status = Arc::new(Mutex::new(SyncStatus::load(&status_path)));
        update(&status, &status_path, |s| {
            s.last_attempt = Some(Utc::now());
            s.source = Some(self.source.to_string());
        });
        let result = self.run(&status, &status_path, &mut writer).await;
        let result = writer.hold().await.and(result);
        self.after_poll(result.is_ok(), &status, &status_path).await;
        let trusted = crate::core::trusted_time::load(self.cache.root());
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
    pub async fn forever(&self, interval: Duration) {
        let fetched = tokio::sync::Notify::new();
        let polls = async {
            loop {
                match self.poll().await {
                    Ok(Outcome::Unchanged { .. }) => tracing::debug!("sync: no change"),
                    Ok(o) => tracing::info!("sync: {o}"),
                    Err(e) => tracing::warn!("sync: {e}"),
                }
                fetched.notify_one();
                tokio::time::sleep(backoff::poll_period(interval, fastrand::f64())).await;
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
        let http = matches!(self.source, Source::Http(_));
        if http {
            writer.release();
        }
        let fetched = self.fetch_manifest(had_current, validators).await;
        writer.hold().await?;
        let (fetched, date) = fetched?;
        // Read after the wait: a USB import may have moved it meanwhile.
        let current = read_current();
        let refused = |error| SyncError::Manifest { source_name: self.source.to_string(), error };
        let (new, mut validators) = match fetched {
            None => (None, None),
            Some((bytes, etag, last_modified)) => {
                let new = verify_new(&bytes, key, Utc::now(), current.as_ref()).map_err(refused)?;
                if let Some(n) = &new {
                    self.cache.check_not_rolled_back(n).map_err(refused)?;
                }
                (new, Some((etag, last_modified)))
            }
        };
        if let Some(v) = new.as_ref().or(current.as_ref()) {
            self.learn_time(v, date);
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

        let mut p = plan::plan(&new.manifest, |b| self.cache.has(b));
        let free = free_space(self.cache.root());
        let cur_manifest = current.as_ref().map(|c| &c.manifest);
        if plan::check_space(cur_manifest, &new.manifest, &p, self.opts.budget, free).is_err()
            || self.cache.used_bytes() + p.to_fetch > self.opts.budget
        {
            // Room may be held by files of older versions: let them go
            // (the player only reads the current one), then look again.
            let mut keep: std::collections::BTreeSet<Digest> = [current.as_ref(), Some(&new)].into_iter().flatten().flat_map(|v| v.manifest.blobs()).map(|b| b.sha256).collect();
            // A USB import while an HTTP sync downloads: its files are not ours to take.
            if !http && self.cache.downloading() {
                keep.extend(SyncStatus::load(status_path).pending.iter().flat_map(|p| p.files.iter().map(|f| f.sha256)));
            }
            if let Err(e) = self.cache.collect_except(&keep) {
                tracing::warn!("cache: {e}");
            }
            p = plan::plan(&new.manifest, |b| self.cache.has(b));
        }
        plan::check_space(cur_manifest, &new.manifest, &p, self.opts.budget, free_space(self.cache.root()))?;

        let progress: Arc<Mutex<BTreeMap<Digest, u64>>> = Arc::new(Mutex::new(BTreeMap::new()));
        let pending = |progress: &BTreeMap<Digest, u64>| Pending {
            version: new.manifest.version,
            files: p
                .fetch
                .iter()
                .map(|b| PendingFile { sha256: b.sha256, size: b.size, done: progress.get(&b.sha256).copied().unwrap_or(0) })
                .collect(),
        };
        // `pending` is the HTTP download's (a USB copy is quick, and must
        // not write over the record of a download going on beside it).
        let show_pending = |snapshot: &BTreeMap<Digest, u64>| {
            if http {
                update(status, status_path, |s| s.pending = Some(pending(snapshot)));
            }
        };
        show_pending(&BTreeMap::new());
        if http {
            writer.release();
        }

        let downloads = futures_util::stream::iter(p.fetch.iter().cloned())
            .map(|b| {
                let progress = progress.clone();
                async move { self.fetch_blob(&b, &progress).await.map(|()| b.size) }
            })
            .buffer_unordered(self.opts.concurrency.max(1))
            .collect::<Vec<_>>();
        tokio::pin!(downloads);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let results = loop {
            tokio::select! {
                r = &mut downloads => break r,
                _ = tick.tick() => {
                    let snapshot = progress.lock().map(|m| m.clone()).unwrap_or_default();
                    show_pending(&snapshot);
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
        if let Some(first) = failures.first() {
            return Err(SyncError::Fetch {
                what: format!("version {}", new.manifest.version),
                why: format!("{} of {} file(s) not fetched; first: {first}", failures.len(), p.fetch.len()),
            });
        }

        if repair {
            if http {
                update(status, status_path, |s| s.pending = None);
            }
            return Ok(Outcome::Repaired { version: new.manifest.version, files: p.fetch.len(), bytes });
        }
        // A USB import may have brought this version, or a newer one, while
        // the files downloaded: never go back.
        if let Some(now_current) = read_current().filter(|c| c.manifest.version >= new.manifest.version) {
            if http {
                update(status, status_path, |s| s.pending = None);
            }
            return Ok(Outcome::Unchanged { version: Some(now_current.manifest.version) });
        }
        self.cache.commit(&new)?;
        update(status, status_path, |s| {
            if http {
                s.pending = None;
            }
            if let Some((etag, last_modified)) = validators {
                s.manifest_etag = etag;
                s.manifest_last_modified = last_modified;
            }
        });
        // While an HTTP sync downloads (a USB import meanwhile), its files
        // are not ours to collect: it collects after its own commit.
        if http || !self.cache.downloading() {
            match self.cache.collect_garbage(key) {
                Ok(c) if c.files > 0 => tracing::info!("cache: removed {} unused file(s), {}", c.files, bytesize::ByteSize(c.bytes)),
                Ok(_) => {}
                Err(e) => tracing::warn!("cache: {e}"),
            }
        }
        Ok(Outcome::Updated {
            from: current.map(|c| c.manifest.version),
            to: new.manifest.version,
            files: p.fetch.len(),
            bytes,
        })
    }

    /// After each poll: flags a frozen feed when the server answered, and
    /// scrubs a bounded slice of the cache (off the async thread).
    async fn after_poll(&self, answered: bool, status: &Arc<Mutex<SyncStatus>>, status_path: &Path) {
        if answered {
            let current = self.cache.current(&self.opts.key).ok().flatten();
            let frozen = current.is_some_and(|v| v.manifest.is_frozen(Utc::now(), self.opts.max_age));
            update(status, status_path, |s| s.frozen = frozen);
        }
        let cache = self.cache.clone();
        let max = self.opts.scrub_bytes_per_poll;
        match tokio::task::spawn_blocking(move || cache.scrub(max)).await {
            Ok(Ok(s)) if !s.bad.is_empty() => tracing::warn!("cache: the scrub removed {} damaged file(s); the next sync fetches them again", s.bad.len()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("cache: scrub: {e}"),
            Err(e) => tracing::warn!("cache: scrub: {e}"),
        }
    }

    /// Records the trusted time this sync learnt (see `crate::core::trusted_time`):
    /// the signed manifest's `created`, and the server's `Date` up to the
    /// manifest's `expires`.
    fn learn_time(&self, v: &crate::core::feed::Verified, date: Option<chrono::DateTime<Utc>>) {
        let m = &v.manifest;
        let seen = crate::core::trusted_time::Observation { created: m.created.with_timezone(&Utc), expires: m.expires.with_timezone(&Utc), date };
        if let Err(e) = crate::core::trusted_time::observe(self.cache.root(), seen, Utc::now()) {
            tracing::warn!("cache: {}: {e}", crate::core::trusted_time::FILE);
        }
    }

    /// The manifest's bytes and validators, or None when unchanged (304),
    /// and the server's `Date`.
    #[allow(clippy::type_complexity)] // private: the three parts of one answer
    async fn fetch_manifest(
        &self,
        conditional: bool,
        (etag, last_modified): (Option<String>, Option<String>),
    ) -> Result<(Option<(Vec<u8>, Option<String>, Option<String>)>, Option<chrono::DateTime<Utc>>), SyncError> {
        match &self.source {
            Source::Dir(dir) => {
                let path = dir.join(MANIFEST_FILE);
                let fail = |why: String| SyncError::Fetch { what: path.display().to_string(), why };
                let len = std::fs::metadata(&path).map_err(|e| fail(e.to_string()))?.len();
                if len > MAX_MANIFEST_BYTES {
                    return Err(SyncError::Manifest { source_name: self.source.to_string(), error: ManifestError::TooLarge(len) });
                }
                let bytes = std::fs::read(&path).map_err(|e| fail(e.to_string()))?;
                Ok((Some((bytes, None, None)), None))
            }
            Source::Http(base) => {
                let url = base.join(MANIFEST_FILE).map_err(|e| SyncError::Fetch { what: base.to_string(), why: e.to_string() })?;
                let fail = |why: String| SyncError::Fetch { what: url.to_string(), why };
                let mut attempt = 0;
                loop {
                    let mut req = self.client.get(url.clone()).timeout(MANIFEST_DEADLINE);
                    if conditional {
                        if let Some(e) = &etag {
                            req = req.header(reqwest::header::IF_NONE_MATCH, e);
                        } else if let Some(lm) = &last_modified {
                            req = req.header(reqwest::header::IF_MODIFIED_SINCE, lm);
                        }
                    }
                    let result = async {
                        let resp = req.send().await.map_err(|e| describe(&e))?;
                        let code = resp.status();
                        let header = |h| resp.headers().get(h).and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok()).map(str::to_string);
                        let date = header(reqwest::header::DATE).and_then(|d| httpdate::parse_http_date(&d).ok()).map(chrono::DateTime::<Utc>::from);
                        if code == reqwest::StatusCode::NOT_MODIFIED {
                            return Ok((None, date));
                        }
                        if !code.is_success() {
                            return Err(format!("HTTP {code}"));
                        }
                        let (etag, lm) = (header(reqwest::header::ETAG), header(reqwest::header::LAST_MODIFIED));
                        let bytes = read_limited(resp, MAX_MANIFEST_BYTES).await?;
                        Ok((Some((bytes, etag, lm)), date))
                    }
                    .await;
                    match result {
                        Ok(r) => return Ok(r),
                        Err(why) if attempt + 1 >= self.opts.attempts => return Err(fail(why)),
                        Err(why) => {
                            let wait = backoff::delay(attempt, self.opts.backoff_base, self.opts.backoff_max, fastrand::f64());
                            tracing::info!("{url}: {why}; retrying in {wait:.1?}");
                            tokio::time::sleep(wait).await;
                            attempt += 1;
                        }
                    }
                }
            }
        }
    }

    /// Fetches one file into the cache, retrying with back-off.
    async fn fetch_blob(&self, blob: &Blob, progress: &Mutex<BTreeMap<Digest, u64>>) -> Result<(), String> {
        let mut attempt = 0;
        loop {
            let result = match &self.source {
                Source::Http(base) => self.fetch_http(base, blob, progress).await,
                Source::Dir(dir) => self.copy_from_dir(dir, blob).await,
            };
            match result {
                Ok(()) => {
                    if let Ok(mut p) = progress.lock() {
                        p.insert(blob.sha256, blob.size);
                    }
                    return Ok(());
                }
                Err(why) if attempt + 1 >= self.opts.attempts || matches!(self.source, Source::Dir(_)) => {
                    return Err(format!("{}: {why}", blob.feed_path()));
                }
                Err(why) => {
                    let wait = backoff::delay(attempt, self.opts.backoff_base, self.opts.backoff_max, fastrand::f64());
                    tracing::info!("{}: {why}; retrying in {wait:.1?}", blob.feed_path());
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn fetch_http(&self, base: &reqwest::Url, blob: &Blob, progress: &Mutex<BTreeMap<Digest, u64>>) -> Result<(), String> {
        let url = base.join(&blob.feed_path()).map_err(|e| e.to_string())?;
        let partial = self.cache.partial_path(&blob.sha256);
        let mut have = tokio::fs::metadata(&partial).await.map(|m| m.len()).unwrap_or(0);
        if have > blob.size {
            let _ = tokio::fs::remove_file(&partial).await;
            have = 0;
        }
        if have < blob.size || blob.size == 0 {
            // An overall deadline: a server that trickles forever must not
            // hold the download (and its slot) for ever.
            let rate = self.opts.max_bytes_per_sec.map_or(SLOWEST_RATE, |r| (r / 2).clamp(1, SLOWEST_RATE));
            let deadline = BLOB_DEADLINE_BASE + Duration::from_secs((blob.size - have) / rate);
            let mut req = self.client.get(url).timeout(deadline.min(Duration::from_secs(6 * 3600)));
            if have > 0 {
                req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
            }
            let mut resp = req.send().await.map_err(|e| describe(&e))?;
            let code = resp.status();
            let append = match code {
                reqwest::StatusCode::PARTIAL_CONTENT if have > 0 => {
                    let start = resp
                        .headers()
                        .get(reqwest::header::CONTENT_RANGE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(content_range_start);
                    if start != Some(have) {
                        let _ = tokio::fs::remove_file(&partial).await;
                        return Err(format!("server resumed at {start:?}, not at byte {have}; starting over"));
                    }
                    true
                }
                reqwest::StatusCode::OK => {
                    have = 0;
                    false
                }
                reqwest::StatusCode::RANGE_NOT_SATISFIABLE => {
                    let _ = tokio::fs::remove_file(&partial).await;
                    return Err("server refused to resume; starting over".into());
                }
                other => return Err(format!("HTTP {other}")),
            };
            if let Some(len) = resp.content_length()
                && have + len != blob.size {
                    return Err(format!("server offers {} bytes, the manifest says {}", have + len, blob.size));
                }
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(append)
                .truncate(!append)
                .open(&partial)
                .await
                .map_err(|e| format!("{}: {e}", partial.display()))?;
            loop {
                let chunk = match resp.chunk().await {
                    Ok(Some(c)) => c,
                    Ok(None) => break,
                    Err(e) => {
                        // Keep what arrived: the next try resumes from it.
                        let _ = file.sync_all().await;
                        return Err(format!("connection cut after {have} of {} bytes ({})", blob.size, describe(&e)));
                    }
                };
                if have + chunk.len() as u64 > blob.size {
                    drop(file);
                    let _ = tokio::fs::remove_file(&partial).await;
                    return Err(format!("server sent more than the {} bytes the manifest lists", blob.size));
                }
                self.throttle.pass(chunk.len()).await;
                file.write_all(&chunk).await.map_err(|e| format!("{}: {e}", partial.display()))?;
                have += chunk.len() as u64;
                if let Ok(mut p) = progress.lock() {
                    p.insert(blob.sha256, have);
                }
            }
            file.sync_all().await.map_err(|e| format!("{}: {e}", partial.display()))?;
            if have < blob.size {
                return Err(format!("connection closed after {have} of {} bytes", blob.size));
            }
        }
        self.install(blob).await
    }

    /// Copies a file of a feed folder (a USB stick) into `blobs/`, hashing
    /// as it copies into a temp file there: it lands under its name only if
    /// its digest checks out. It never touches `partial/`, which an HTTP
    /// download may be writing meanwhile.
    async fn copy_from_dir(&self, dir: &Path, blob: &Blob) -> Result<(), String> {
        let from = dir.join(blob.feed_path());
        let dest = self.cache.blob_path(&blob.sha256);
        let (size, expected) = (blob.size, blob.sha256);
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            let src = std::fs::File::open(&from).map_err(|e| format!("{}: {e}", from.display()))?;
            let len = src.metadata().map_err(|e| e.to_string())?.len();
            if len != size {
                return Err(format!("{}: {len} bytes, the manifest says {size}", from.display()));
            }
            let (got, n) = crate::store::atomic::copy_verified(&mut std::io::Read::take(src, size), &dest, &expected).map_err(|e| format!("{}: {e}", from.display()))?;
            if got != expected {
                return Err(format!("{}: content does not match its digest (got {got}, {n} bytes)", from.display()));
            }
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Checks a complete partial file's digest and moves it into `blobs/`.
    /// A mismatch deletes it, so the retry fetches it whole again.
    async fn install(&self, blob: &Blob) -> Result<(), String> {
        let partial = self.cache.partial_path(&blob.sha256);
        let dest = self.cache.blob_path(&blob.sha256);
        let expected = blob.sha256;
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            let (got, len) = Digest::of_file(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
            if got != expected {
                let _ = std::fs::remove_file(&partial);
                return Err(format!("content does not match its digest (got {got}, {len} bytes); discarded"));
            }
            std::fs::rename(&partial, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
            dest.parent().map(crate::store::atomic::sync_dir).transpose().map_err(|e| e.to_string())?;
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// The writer's lock of one sync, let go while it waits on the network.
struct Writer<'a> {
    cache: &'a Cache,
    lock: Option<crate::store::cache::Lock>,
}

impl Writer<'_> {
    fn release(&mut self) {
        self.lock = None;
    }

    async fn hold(&mut self) -> Result<(), SyncError> {
        if self.lock.is_none() {
            self.lock = Some(self.cache.lock_wait().await?);
        }
        Ok(())
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

/// Reads a body, refusing it beyond `max` bytes.
pub(crate) async fn read_limited(mut resp: reqwest::Response, max: u64) -> Result<Vec<u8>, String> {
    if resp.content_length().is_some_and(|n| n > max) {
        return Err(ManifestError::TooLarge(resp.content_length().unwrap_or(0)).to_string());
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&e))? {
        if out.len() as u64 + chunk.len() as u64 > max {
            return Err(ManifestError::TooLarge(out.len() as u64 + chunk.len() as u64).to_string());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// `bytes 100-199/200` → 100.
fn content_range_start(v: &str) -> Option<u64> {
    v.strip_prefix("bytes ")?.split('-').next()?.trim().parse().ok()
}

/// reqwest's errors with their causes: "error sending request" alone says
/// nothing to an operator.
fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() { "timed out".to_string() } else { e.to_string() };
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

/// Free bytes on the file system holding `path` (None if it cannot be read).
fn free_space(path: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(path).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_are_limited_and_never_leave_https() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        assert_eq!(redirect_refusal(&[u("http://a/")], &u("http://b/")), None);
        assert_eq!(redirect_refusal(&[u("http://a/")], &u("https://b/")), None);
        assert!(redirect_refusal(&[u("https://a/")], &u("http://a/")).unwrap().contains("https is never followed down"));
        assert!(redirect_refusal(&[u("https://a/"), u("https://b/")], &u("http://c/")).is_some(), "anywhere in the chain");
        let six: Vec<_> = (0..=MAX_REDIRECTS).map(|i| u(&format!("http://a/{i}"))).collect();
        assert!(redirect_refusal(&six, &u("http://a/x")).unwrap().contains("more than 5 redirects"));
        assert_eq!(redirect_refusal(&six[..MAX_REDIRECTS], &u("http://a/x")), None);
    }

    #[test]
    fn urls_and_ranges() {
        let Source::Http(u) = Source::http("http://example.org/feed").unwrap() else { panic!() };
        assert_eq!(u.join("manifest.json").unwrap().as_str(), "http://example.org/feed/manifest.json");
        assert!(Source::http("ftp://x/").is_err());
        assert!(Source::http("not a url").is_err());
        assert_eq!(content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(content_range_start("items 1-2"), None);
    }
}
