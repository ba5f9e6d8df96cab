//! Where a feed's files come from, behind one trait: [`Fetch`], with an
//! HTTP(S) server ([`Http`]: conditional GETs, resumable downloads into
//! `partial/`, retries, a bandwidth cap) and a folder on disk ([`Folder`]: a
//! USB stick, copied under the writer). Sync's apply step sees only the
//! trait.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use futures_util::future::BoxFuture;
use tokio::io::AsyncWriteExt as _;

use super::{throttle::Throttle, FetchError, SyncError};
use crate::core::feed::manifest::{ManifestError, MANIFEST_FILE, MAX_MANIFEST_BYTES};
use crate::core::feed::{Blob, Digest};
use crate::net::http::{describe, HttpError, Retry};
use crate::store::cache::{Cache, CacheWriter, InstallError};

/// Longest the manifest request may take, however slowly it trickles.
const MANIFEST_DEADLINE: Duration = Duration::from_secs(60);
/// A file's download gets this long, plus its size at [`SLOWEST_RATE`].
const BLOB_DEADLINE_BASE: Duration = Duration::from_secs(60);
/// The slowest link a download is given time for (bytes per second); a
/// slower one resumes where it stopped at the next try.
const SLOWEST_RATE: u64 = 8 * 1024;

/// Bytes fetched so far of each file of a download (for the status file).
pub type Progress = Mutex<BTreeMap<Digest, u64>>;

/// A manifest as fetched: its bytes and the validators to ask with next
/// time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// What asking for the manifest got: None when unchanged (304), and the
/// server's `Date`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub fetched: Option<Fetched>,
    pub date: Option<chrono::DateTime<Utc>>,
}

/// A feed's source as sync's apply step sees it.
pub trait Fetch: Send + Sync {
    /// Whether it waits on the network: the writer is let go meanwhile (and
    /// the download lock held), and files land in `partial/` first.
    fn remote(&self) -> bool;

    /// The manifest, asked for with `validators` (etag, last-modified) when
    /// given, so that an unchanged one costs one 304.
    fn manifest<'a>(&'a self, validators: Option<(&'a Option<String>, &'a Option<String>)>) -> BoxFuture<'a, Result<Answer, SyncError>>;

    /// A small document of the feed (`alerts.json`, a CAP message), at
    /// most `max` bytes, asked for with `validators` when given. None: the
    /// feed has no such file (a 404; no file in the folder).
    fn document<'a>(&'a self, name: &'a str, max: u64, validators: Option<(&'a Option<String>, &'a Option<String>)>) -> BoxFuture<'a, Result<Option<Answer>, SyncError>>;

    /// Brings one file into the cache, verified against its digest; a
    /// source that is not remote copies under `importing`, the writer.
    fn blob<'a>(&'a self, blob: &'a Blob, progress: &'a Progress, importing: Option<&'a CacheWriter>) -> BoxFuture<'a, Result<(), FetchError>>;
}

/// A feed served over HTTP(S).
pub struct Http {
    pub base: reqwest::Url,
    pub client: reqwest::Client,
    pub cache: Cache,
    pub retry: Retry,
    pub throttle: Throttle,
    pub max_bytes_per_sec: Option<u64>,
}

/// A feed folder on disk (a USB stick), verified exactly the same way.
pub struct Folder {
    pub dir: PathBuf,
}

impl Fetch for Folder {
    fn remote(&self) -> bool {
        false
    }

    fn manifest<'a>(&'a self, _: Option<(&'a Option<String>, &'a Option<String>)>) -> BoxFuture<'a, Result<Answer, SyncError>> {
        Box::pin(async move {
            let path = self.dir.join(MANIFEST_FILE);
            let fail = |source| SyncError::Fetch { what: path.display().to_string(), source: FetchError::Io { path: path.clone(), source } };
            let len = std::fs::metadata(&path).map_err(fail)?.len();
            if len > MAX_MANIFEST_BYTES {
                return Err(SyncError::Manifest { source_name: self.dir.display().to_string(), error: ManifestError::TooLarge(len) });
            }
            let bytes = std::fs::read(&path).map_err(fail)?;
            Ok(Answer { fetched: Some(Fetched { bytes, etag: None, last_modified: None }), date: None })
        })
    }

    fn document<'a>(&'a self, name: &'a str, max: u64, _: Option<(&'a Option<String>, &'a Option<String>)>) -> BoxFuture<'a, Result<Option<Answer>, SyncError>> {
        Box::pin(async move {
            let path = self.dir.join(name);
            let fail = |source| SyncError::Fetch { what: path.display().to_string(), source: FetchError::Io { path: path.clone(), source } };
            let len = match std::fs::metadata(&path) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(fail(e)),
            };
            if len > max {
                return Err(SyncError::Fetch { what: path.display().to_string(), source: FetchError::Server(format!("{len} bytes; at most {max} are taken")) });
            }
            let bytes = std::fs::read(&path).map_err(fail)?;
            Ok(Some(Answer { fetched: Some(Fetched { bytes, etag: None, last_modified: None }), date: None }))
        })
    }

    /// Copies a file of the folder into `blobs/` through the writer, hashing
    /// as it copies: it lands under its name only if its digest checks out.
    /// It never touches `partial/`, which an HTTP download may be writing
    /// meanwhile.
    fn blob<'a>(&'a self, blob: &'a Blob, _: &'a Progress, importing: Option<&'a CacheWriter>) -> BoxFuture<'a, Result<(), FetchError>> {
        Box::pin(async move {
            let from = self.dir.join(blob.feed_path());
            let Some(writer) = importing else {
                return Err(FetchError::Server(format!("{}: a folder is copied only under the writer", from.display())));
            };
            let src = std::fs::File::open(&from).map_err(FetchError::io(&from))?;
            let len = src.metadata().map_err(FetchError::io(&from))?.len();
            if len != blob.size {
                return Err(FetchError::Server(format!("{}: {len} bytes, the manifest says {}", from.display(), blob.size)));
            }
            // Blocking file I/O on the async thread: only `sync --from`
            // copies from a folder, on a runtime of its own, holding the
            // writer anyway (its copies go one at a time).
            writer.import(&mut std::io::BufReader::new(src), blob).map_err(FetchError::from)
        })
    }
}

impl Fetch for Http {
    fn remote(&self) -> bool {
        true
    }

    fn manifest<'a>(&'a self, validators: Option<(&'a Option<String>, &'a Option<String>)>) -> BoxFuture<'a, Result<Answer, SyncError>> {
        Box::pin(async move {
            let url = self.base.join(MANIFEST_FILE).map_err(|e| SyncError::Fetch { what: self.base.to_string(), source: FetchError::Server(e.to_string()) })?;
            let (etag, last_modified) = validators.map_or((None, None), |(e, lm)| (e.as_deref(), lm.as_deref()));
            let get = crate::net::http::Get { url: &url, accept: None, etag, last_modified, deadline: Some(MANIFEST_DEADLINE), max: MAX_MANIFEST_BYTES };
            let answer = self.retry.run(&url, || get.send(&self.client)).await.map(|got| Answer {
                fetched: got.body.map(|bytes| Fetched { bytes, etag: got.etag, last_modified: got.last_modified }),
                date: got.date,
            });
            answer.map_err(|e| SyncError::Fetch { what: url.to_string(), source: e.into() })
        })
    }

    fn document<'a>(&'a self, name: &'a str, max: u64, validators: Option<(&'a Option<String>, &'a Option<String>)>) -> BoxFuture<'a, Result<Option<Answer>, SyncError>> {
        Box::pin(async move {
            let url = self.base.join(name).map_err(|e| SyncError::Fetch { what: self.base.to_string(), source: FetchError::Server(e.to_string()) })?;
            let (etag, last_modified) = validators.map_or((None, None), |(e, lm)| (e.as_deref(), lm.as_deref()));
            let get = crate::net::http::Get { url: &url, accept: None, etag, last_modified, deadline: Some(MANIFEST_DEADLINE), max };
            // A 404 is an answer (the feed has no such file), not a fault to retry.
            let answer = self
                .retry
                .run(&url, || async {
                    match get.send(&self.client).await {
                        Err(HttpError::Status(reqwest::StatusCode::NOT_FOUND)) => Ok(None),
                        other => other.map(Some),
                    }
                })
                .await
                .map(|got| got.map(|got| Answer { fetched: got.body.map(|bytes| Fetched { bytes, etag: got.etag, last_modified: got.last_modified }), date: got.date }));
            answer.map_err(|e| SyncError::Fetch { what: url.to_string(), source: e.into() })
        })
    }

    /// Downloads one file into `partial/` (resuming what an earlier try
    /// left), retrying with back-off, then has the writer move it into
    /// `blobs/` once its digest checks out.
    fn blob<'a>(&'a self, blob: &'a Blob, progress: &'a Progress, _: Option<&'a CacheWriter>) -> BoxFuture<'a, Result<(), FetchError>> {
        Box::pin(async move { self.retry.run(&blob.feed_path(), || self.download(blob, progress)).await })
    }
}

impl Http {
    async fn download(&self, blob: &Blob, progress: &Progress) -> Result<(), FetchError> {
        let url = self.base.join(&blob.feed_path()).map_err(|e| FetchError::Server(e.to_string()))?;
        let partial = self.cache.partial_path(&blob.sha256);
        let mut have = tokio::fs::metadata(&partial).await.map(|m| m.len()).unwrap_or(0);
        if have > blob.size {
            let _ = tokio::fs::remove_file(&partial).await;
            have = 0;
        }
        if have < blob.size || blob.size == 0 {
            // An overall deadline: a server that trickles forever must not
            // hold the download (and its slot) for ever.
            let rate = self.max_bytes_per_sec.map_or(SLOWEST_RATE, |r| (r / 2).clamp(1, SLOWEST_RATE));
            let deadline = BLOB_DEADLINE_BASE + Duration::from_secs((blob.size - have) / rate);
            let mut req = self.client.get(url).timeout(deadline.min(Duration::from_secs(6 * 3600)));
            if have > 0 {
                req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
            }
            let mut resp = req.send().await?;
            let append = match resp.status() {
                reqwest::StatusCode::PARTIAL_CONTENT if have > 0 => {
                    let start = resp.headers().get(reqwest::header::CONTENT_RANGE).and_then(|v| v.to_str().ok()).and_then(content_range_start);
                    if start != Some(have) {
                        let _ = tokio::fs::remove_file(&partial).await;
                        return Err(FetchError::Server(format!("server resumed at {start:?}, not at byte {have}; starting over")));
                    }
                    true
                }
                reqwest::StatusCode::OK => {
                    have = 0;
                    false
                }
                reqwest::StatusCode::RANGE_NOT_SATISFIABLE => {
                    let _ = tokio::fs::remove_file(&partial).await;
                    return Err(FetchError::Server("server refused to resume; starting over".into()));
                }
                other => return Err(HttpError::Status(other).into()),
            };
            if let Some(len) = resp.content_length()
                && have + len != blob.size
            {
                return Err(FetchError::Server(format!("server offers {} bytes, the manifest says {}", have + len, blob.size)));
            }
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(append)
                .truncate(!append)
                .open(&partial)
                .await
                .map_err(FetchError::io(&partial))?;
            loop {
                let chunk = match resp.chunk().await {
                    Ok(Some(c)) => c,
                    Ok(None) => break,
                    Err(e) => {
                        // Keep what arrived: the next try resumes from it.
                        let _ = file.sync_all().await;
                        return Err(FetchError::Server(format!("connection cut after {have} of {} bytes ({})", blob.size, describe(&e))));
                    }
                };
                if have + chunk.len() as u64 > blob.size {
                    drop(file);
                    let _ = tokio::fs::remove_file(&partial).await;
                    return Err(FetchError::Server(format!("server sent more than the {} bytes the manifest lists", blob.size)));
                }
                self.throttle.pass(chunk.len()).await;
                file.write_all(&chunk).await.map_err(FetchError::io(&partial))?;
                have += chunk.len() as u64;
                if let Ok(mut p) = progress.lock() {
                    p.insert(blob.sha256, have);
                }
            }
            file.sync_all().await.map_err(FetchError::io(&partial))?;
            if have < blob.size {
                return Err(FetchError::Server(format!("connection closed after {have} of {} bytes", blob.size)));
            }
        }
        install(&self.cache, blob, &partial).await
    }
}

/// Hashes a complete partial file (off the async thread, without the
/// writer), then has the writer move it into `blobs/` (a rename and a
/// folder fsync, off the async thread too: the kiosk's sync shares its
/// thread with the upstream warning polls).
async fn install(cache: &Cache, blob: &Blob, partial: &Path) -> Result<(), FetchError> {
    let hashed = tokio::task::spawn_blocking({
        let partial = partial.to_path_buf();
        move || Digest::of_file(&partial)
    })
    .await
    .map_err(|e| FetchError::io(partial)(std::io::Error::other(e)))?
    .map_err(FetchError::io(partial))?;
    let writer = cache.writer().await.map_err(InstallError::from)?;
    let blob = blob.clone();
    tokio::task::spawn_blocking(move || writer.install(&blob, hashed))
        .await
        .map_err(|e| FetchError::io(partial)(std::io::Error::other(e)))?
        .map_err(FetchError::from)
}

/// `bytes 100-199/200` → 100.
fn content_range_start(v: &str) -> Option<u64> {
    v.strip_prefix("bytes ")?.split('-').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn content_ranges() {
        assert_eq!(super::content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(super::content_range_start("items 1-2"), None);
    }
}
