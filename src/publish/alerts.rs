//! `estation alert publish` / `alert cancel`: put one CAP message into a
//! built feed and re-sign its warnings document (`alerts.json`, see
//! `core::feed::alerts_doc`). Only that document and the new message
//! change, so kiosks fetch two small files whatever the size of the feed.
//!
//! The feed carries every message of every chain still in force — the
//! alert, its Updates, the Cancel — so a kiosk that missed any of them ends
//! up in the right state whichever it held before: kiosks apply them in
//! `sent` order by CAP's rules. A message leaves the list only when it has
//! expired (a Cancel after `KEEP_ENDINGS` days). Publishing is serialised
//! with `feed build` by the feed's lock ([`super::lock`]), so two operators
//! cannot lose each other's message or sign two documents with one version;
//! and the new document passes the kiosk's own check before it is signed.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, FixedOffset, Utc};
use ed25519_dalek::SigningKey;

use super::build::write_signed;
use super::lock::{lock, FeedLock, LockError};
use crate::core::feed::alerts_doc::{self, AlertsDoc, ALERTS_FILE};
use crate::core::feed::manifest::{self, verify_signature, Blob, MediaType, MANIFEST_FILE};
use crate::core::feed::Digest;
use crate::core::alert::cap::{self, Alert, MsgType};
use crate::core::alert::store::{self, Lifetimes};
use crate::core::diag::Diagnostics;

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
    Author(#[from] crate::core::alert::author::AuthorError),
    #[error("{path}: {size} bytes; a CAP document is 1 to {max} bytes")]
    TooLarge { path: PathBuf, size: u64, max: u64 },
    /// A pipe or device that had more to give than a CAP document may hold.
    #[error("{path}: more than {max} bytes; a CAP document is 1 to {max} bytes")]
    Endless { path: PathBuf, max: u64 },
    #[error("{0}")]
    Lock(#[from] LockError),
    /// The new manifest fails the check every kiosk makes (see
    /// [`manifest::Manifest::check`]); nothing was written.
    #[error("{path}: {source}; kiosks would refuse this manifest, so it was not signed (the feed is unchanged)")]
    Refused {
        path: PathBuf,
        #[source]
        source: manifest::ManifestError,
    },
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

/// A built feed as `alert publish` sees it.
#[derive(Debug, Clone)]
pub struct Feed {
    pub manifest: manifest::Manifest,
    /// Its warnings document (`alerts.json`), None in a feed built before it.
    pub doc: Option<AlertsDoc>,
    /// The messages it carries: the warnings document's and, in a feed
    /// built before it existed, the manifest's.
    pub alerts: Vec<FeedAlert>,
}

/// The feed's manifest and warnings document (checked against `key`), and
/// the messages they list.
pub fn read(feed: &Path, key: &SigningKey) -> Result<Feed, PublishError> {
    let path = feed.join(MANIFEST_FILE);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    let v = verify_signature(&bytes, &key.verifying_key()).map_err(|source| PublishError::Manifest { path: path.clone(), source })?;
    let doc_path = feed.join(ALERTS_FILE);
    let doc = match std::fs::read(&doc_path) {
        Ok(b) => Some(alerts_doc::verify_signature(&b, &key.verifying_key()).map_err(|source| PublishError::Manifest { path: doc_path.clone(), source })?.doc),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(&doc_path)(e)),
    };
    let mut alerts = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for blob in doc.iter().flat_map(|d| d.alerts.iter()).chain(&v.manifest.alerts) {
        if !seen.insert(blob.sha256) {
            continue;
        }
        let p = feed.join(blob.feed_path());
        let bytes = std::fs::read(&p).map_err(io(&p))?;
        // Built by us after the same check; one that no longer reads is kept
        // out of the new list rather than blocking a warning.
        match cap::parse(&p, &bytes) {
            Ok(parsed) => alerts.push(FeedAlert { blob: blob.clone(), alert: parsed.alert }),
            Err(e) => tracing::warn!("{}: dropped from the feed: {e}", p.display()),
        }
    }
    Ok(Feed { manifest: v.manifest, doc, alerts })
}

/// Whether `a` references `b` (by identifier and sender; see `alert::store`).
fn references(a: &Alert, b: &Alert) -> bool {
    store::key(a) != store::key(b) && a.references.iter().any(|r| r.identifier == b.identifier && (r.sender == b.sender || a.sender == b.sender))
}

/// Reads a CAP document to publish, refusing one over
/// [`MAX_ALERT_BYTES`](super::build::MAX_ALERT_BYTES) before reading it: by
/// its length when it is a regular file, else (a pipe, `/dev/zero`) by
/// reading at most one byte more than allowed.
pub fn read_alert(file: &Path) -> Result<Vec<u8>, PublishError> {
    use std::io::Read as _;
    let max = super::build::MAX_ALERT_BYTES;
    let f = std::fs::File::open(file).map_err(io(file))?;
    let meta = f.metadata().map_err(io(file))?;
    if meta.is_file() && meta.len() > max {
        return Err(PublishError::TooLarge { path: file.to_path_buf(), size: meta.len(), max });
    }
    let mut bytes = Vec::new();
    f.take(max + 1).read_to_end(&mut bytes).map_err(io(file))?;
    if bytes.len() as u64 > max {
        return Err(PublishError::Endless { path: file.to_path_buf(), max });
    }
    Ok(bytes)
}

/// Adds the CAP message `bytes` (read from `file`) to the feed and re-signs.
pub fn publish(feed: &Path, key: &SigningKey, file: &Path, bytes: &[u8], now: DateTime<Utc>) -> Result<Published, PublishError> {
    let new = parse_alert(file, bytes)?;
    let held = lock_feed(feed)?;
    publish_locked(&held, feed, key, new, bytes, now)
}

fn parse_alert(file: &Path, bytes: &[u8]) -> Result<Alert, PublishError> {
    if bytes.is_empty() || bytes.len() as u64 > super::build::MAX_ALERT_BYTES {
        return Err(PublishError::TooLarge { path: file.to_path_buf(), size: bytes.len() as u64, max: super::build::MAX_ALERT_BYTES });
    }
    Ok(cap::parse(file, bytes).map_err(PublishError::Invalid)?.alert)
}

/// The lock of a feed folder that must already hold a feed.
fn lock_feed(feed: &Path) -> Result<FeedLock, PublishError> {
    let path = feed.join(MANIFEST_FILE);
    if !path.is_file() {
        // Without this the lock would create a stray dot file in a typo'd folder.
        return Err(PublishError::Io { path, source: std::io::Error::new(std::io::ErrorKind::NotFound, "no feed here; build one first (estation feed build)") });
    }
    Ok(lock(feed)?)
}

/// [`publish`] with the feed's lock already held (so [`cancel`] reads the
/// chain it cancels and publishes under one lock).
fn publish_locked(_lock: &FeedLock, feed: &Path, key: &SigningKey, new: Alert, bytes: &[u8], now: DateTime<Utc>) -> Result<Published, PublishError> {
    let Feed { manifest: old, doc: old_doc, alerts: mut list } = read(feed, key)?;
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
            // A `sent` at the end of time never overflows into a panic: kept.
            a.sent.with_timezone(&Utc).checked_add_signed(Duration::days(KEEP_ENDINGS)).is_none_or(|end| now < end)
        } else {
            a.infos.iter().any(|i| now < life.window(a, i, a.sent.with_timezone(&Utc)).1)
        };
        live || store::key(a) == new_key
    });

    let doc_path = feed.join(ALERTS_FILE);
    let created = chrono::SubsecRound::trunc_subsecs(now, 0).fixed_offset();
    // A first warnings document lives as long as the manifest does.
    let (version, span, expires) = match &old_doc {
        Some(d) => (d.version, d.expires - d.created, d.expires),
        None => (0, old.expires - old.created, old.expires),
    };
    let refused = |path: &Path, source| PublishError::Refused { path: path.to_path_buf(), source };
    let too_late = |path: &Path| refused(path, manifest::ManifestError::Field { field: "expires".into(), message: "is out of the range of dates".into() });
    let doc = AlertsDoc {
        format: alerts_doc::FORMAT.into(),
        version: next_version(version, now),
        created,
        expires: expires.max(created.checked_add_signed(span).ok_or_else(|| too_late(&doc_path))?),
        alerts: keep.iter().map(|f| f.blob.clone()).collect(),
    };
    doc.check().map_err(|e| refused(&doc_path, e))?;

    let dest = feed.join(blob.feed_path());
    if !Digest::of_file(&dest).is_ok_and(|(d, n)| d == blob.sha256 && n == blob.size) {
        crate::store::atomic::write(&dest, bytes).map_err(io(&dest))?;
    }
    write_signed(&doc_path, &doc.sign(key)).map_err(io(&doc_path))?;
    // A feed from before the warnings document: its manifest stops listing
    // them (once), after the document lists them, so no kiosk sees none.
    if !old.alerts.is_empty() {
        let path = feed.join(MANIFEST_FILE);
        let manifest = manifest::Manifest { version: next_version(old.version, now), created, alerts: vec![], ..old };
        manifest.check().map_err(|e| refused(&path, e))?;
        write_signed(&path, &manifest::sign(&manifest, key)).map_err(io(&path))?;
    }
    Ok(Published {
        version: doc.version,
        key: new_key,
        blob,
        dropped: drop.iter().map(|f| store::key(&f.alert)).collect(),
        alerts: doc.alerts.len(),
    })
}

/// The version after `old`: at least the time in seconds, so versions from
/// two machines publishing into copies of one feed still grow.
pub(crate) fn next_version(old: u64, now: DateTime<Utc>) -> u64 {
    old.saturating_add(1).max(u64::try_from(now.timestamp()).unwrap_or(0))
}

/// Publishes a Cancel for every message in the feed with identifier `id`
/// and the whole chain it belongs to (what it updates and what updates it,
/// transitively). Returns the Cancel's text too.
pub fn cancel(feed: &Path, key: &SigningKey, id: &str, now: DateTime<FixedOffset>) -> Result<(Published, String), PublishError> {
    let held = lock_feed(feed)?;
    let list = read(feed, key)?.alerts;
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
    let sent = if now > latest { now } else { latest.checked_add_signed(Duration::seconds(1)).unwrap_or(latest) };
    let (xml, _) = crate::core::alert::author::cancel(&chain, sent)?;
    let new = parse_alert(Path::new("(cancel)"), xml.as_bytes())?;
    let p = publish_locked(&held, feed, key, new, xml.as_bytes(), now.with_timezone(&Utc))?;
    Ok((p, xml))
}
