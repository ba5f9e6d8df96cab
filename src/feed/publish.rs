//! `estation alert publish` / `alert cancel`: put one CAP message into a
//! built feed and re-sign its manifest. Only the manifest and the new alert
//! file change, so kiosks fetch two small files.
//!
//! The feed carries every message of every chain still in force — the
//! alert, its Updates, the Cancel — so a kiosk that missed any of them ends
//! up in the right state whichever it held before: kiosks apply them in
//! `sent` order by CAP's rules. A message leaves the list only when it has
//! expired (a Cancel after `KEEP_ENDINGS` days). Publishing is serialised
//! by a lock file in the feed folder, so two operators cannot lose each
//! other's message or sign two manifests with one version.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, FixedOffset, Utc};
use ed25519_dalek::SigningKey;

use super::build::bump_mtime;
use super::manifest::{self, verify_signature, Blob, MediaType, MANIFEST_FILE};
use super::Digest;
use crate::alert::cap::{self, Alert, MsgType};
use crate::alert::store::{self, Lifetimes};
use crate::diag::Diagnostics;

/// How long a Cancel stays in the feed (longest an alert can live, see
/// [`Lifetimes`]), so a kiosk offline that long still learns of it.
const KEEP_ENDINGS: i64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{0}")]
    Invalid(Diagnostics),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source} (is this the feed's key?)")]
    Manifest {
        path: PathBuf,
        #[source]
        source: manifest::ManifestError,
    },
    #[error("{0} is already in the feed")]
    Duplicate(String),
    #[error("no alert with identifier `{id}` in {feed}; in the feed: {known}")]
    Unknown { id: String, feed: PathBuf, known: String },
    #[error("{0}")]
    Author(#[from] crate::alert::author::AuthorError),
    #[error("{path}: {size} bytes; a CAP document is 1 to {max} bytes")]
    TooLarge { path: PathBuf, size: usize, max: u64 },
    #[error("{0}: another `alert publish` is writing this feed; try again")]
    Busy(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PublishError + '_ {
    move |source| PublishError::Io { path: path.to_path_buf(), source }
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub version: u64,
    pub key: String,
    pub blob: Blob,
    /// Messages dropped from the feed (expired).
    pub dropped: Vec<String>,
    /// Messages the feed now carries.
    pub alerts: usize,
}

/// One alert message of a feed.
#[derive(Debug, Clone)]
pub struct FeedAlert {
    pub blob: Blob,
    pub alert: Alert,
}

/// The feed's manifest (checked against `key`) and the alerts it lists.
pub fn read(feed: &Path, key: &SigningKey) -> Result<(manifest::Manifest, Vec<FeedAlert>), PublishError> {
    let path = feed.join(MANIFEST_FILE);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    let v = verify_signature(&bytes, &key.verifying_key()).map_err(|source| PublishError::Manifest { path: path.clone(), source })?;
    let mut alerts = Vec::new();
    for blob in &v.manifest.alerts {
        let p = feed.join(blob.feed_path());
        let bytes = std::fs::read(&p).map_err(io(&p))?;
        // Built by us after the same check; one that no longer reads is kept
        // out of the new list rather than blocking a warning.
        match cap::parse(&p, &bytes) {
            Ok(parsed) => alerts.push(FeedAlert { blob: blob.clone(), alert: parsed.alert }),
            Err(e) => tracing::warn!("{}: dropped from the feed: {e}", p.display()),
        }
    }
    Ok((v.manifest, alerts))
}

/// Whether `a` references `b` (by identifier and sender; see `alert::store`).
fn references(a: &Alert, b: &Alert) -> bool {
    store::key(a) != store::key(b) && a.references.iter().any(|r| r.identifier == b.identifier && (r.sender == b.sender || a.sender == b.sender))
}

/// Holds the feed's publish lock (released on drop, or by the kernel).
struct PublishLock(#[allow(dead_code)] std::fs::File);

fn lock(feed: &Path) -> Result<PublishLock, PublishError> {
    // A dot file: `feed serve` never serves those.
    let path = feed.join(".publish.lock");
    let file = std::fs::File::options().create(true).truncate(false).write(true).open(&path).map_err(io(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(PublishLock(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(PublishError::Busy(path)),
        Err(std::fs::TryLockError::Error(source)) => Err(PublishError::Io { path, source }),
    }
}

/// Adds the CAP message `bytes` (read from `file`) to the feed and re-signs.
pub fn publish(feed: &Path, key: &SigningKey, file: &Path, bytes: &[u8], now: DateTime<Utc>) -> Result<Published, PublishError> {
    if bytes.is_empty() || bytes.len() as u64 > super::build::MAX_ALERT_BYTES {
        return Err(PublishError::TooLarge { path: file.to_path_buf(), size: bytes.len(), max: super::build::MAX_ALERT_BYTES });
    }
    let parsed = cap::parse(file, bytes).map_err(PublishError::Invalid)?;
    let new = parsed.alert;
    let _lock = lock(feed)?;
    let (old, mut list) = read(feed, key)?;
    let new_key = store::key(&new);
    if list.iter().any(|f| store::key(&f.alert) == new_key) {
        return Err(PublishError::Duplicate(new_key));
    }
    let digest = Digest::of(bytes);
    let blob = Blob { sha256: digest, size: bytes.len() as u64, media_type: MediaType::Cap };
    list.push(FeedAlert { blob: blob.clone(), alert: new });

    let life = Lifetimes::default();
    let (keep, drop): (Vec<&FeedAlert>, Vec<&FeedAlert>) = list.iter().partition(|f| {
        let a = &f.alert;
        let live = if a.ends_others() {
            now < a.sent.with_timezone(&Utc) + Duration::days(KEEP_ENDINGS)
        } else {
            a.infos.iter().any(|i| now < life.window(a, i, a.sent.with_timezone(&Utc)).1)
        };
        live || store::key(a) == new_key
    });

    let dest = feed.join(blob.feed_path());
    if !std::fs::metadata(&dest).is_ok_and(|m| m.len() == blob.size) {
        crate::atomic::write(&dest, bytes).map_err(io(&dest))?;
    }
    let created = chrono::SubsecRound::trunc_subsecs(now, 0).fixed_offset();
    let span = old.expires - old.created;
    let manifest = manifest::Manifest {
        version: (old.version + 1).max(u64::try_from(now.timestamp()).unwrap_or(0)),
        created,
        expires: old.expires.max(created + span),
        alerts: keep.iter().map(|f| f.blob.clone()).collect(),
        ..old
    };
    let path = feed.join(MANIFEST_FILE);
    let old_mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    crate::atomic::write(&path, &manifest::sign(&manifest, key)).map_err(io(&path))?;
    bump_mtime(&path, old_mtime).map_err(io(&path))?;
    Ok(Published {
        version: manifest.version,
        key: new_key,
        blob,
        dropped: drop.iter().map(|f| store::key(&f.alert)).collect(),
        alerts: manifest.alerts.len(),
    })
}

/// Publishes a Cancel for every message in the feed with identifier `id`
/// and the whole chain it belongs to (what it updates and what updates it,
/// transitively). Returns the Cancel's text too.
pub fn cancel(feed: &Path, key: &SigningKey, id: &str, now: DateTime<FixedOffset>) -> Result<(Published, String), PublishError> {
    let (_, list) = read(feed, key)?;
    let alerts: Vec<&Alert> = list.iter().map(|f| &f.alert).filter(|a| a.msg_type != MsgType::Cancel).collect();
    let mut chain: Vec<&Alert> = alerts.iter().copied().filter(|a| a.identifier == id).collect();
    if chain.is_empty() {
        let known: Vec<&str> = alerts.iter().map(|a| a.identifier.as_str()).collect();
        return Err(PublishError::Unknown {
            id: id.into(),
            feed: feed.to_path_buf(),
            known: if known.is_empty() { "no alerts".into() } else { known.join(", ") },
        });
    }
    loop {
        let more: Vec<&Alert> = alerts
            .iter()
            .copied()
            .filter(|a| !chain.iter().any(|c| store::key(c) == store::key(a)))
            .filter(|a| chain.iter().any(|c| references(a, c) || references(c, a)))
            .collect();
        if more.is_empty() {
            break;
        }
        chain.extend(more);
    }
    chain.sort_by_key(|a| a.sent);
    // Sent after everything it cancels, even if their clocks ran ahead of ours.
    let latest = chain.iter().map(|a| a.sent).max().unwrap_or(now);
    let sent = if now > latest { now } else { latest + Duration::seconds(1) };
    let (xml, _) = crate::alert::author::cancel(&chain, sent)?;
    let p = publish(feed, key, Path::new("(cancel)"), xml.as_bytes(), now.with_timezone(&Utc))?;
    Ok((p, xml))
}
