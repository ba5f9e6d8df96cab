//! `estation feed build`: playlists and their media in, a signed feed out.
//!
//! The build runs the kiosk's own manifest check before it signs, so it never
//! ships a feed every kiosk refuses; it writes under the feed's lock (shared
//! with `alert publish`), so a publish during a long build is refused rather
//! than lost; and it checks each blob already in the feed against its name,
//! so a blob damaged on disk is written again from its source.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;

use crate::core::feed::alerts_doc::{self, AlertsDoc, ALERTS_FILE};
use crate::core::feed::Digest;
use super::lock::{lock, LockError};
use crate::core::feed::manifest::{self, Blob, Manifest, ManifestError, MediaType, PlaylistEntry, FORMAT, MANIFEST_FILE};
use crate::core::diag::Diagnostics;
use crate::core::playlist::Library;

/// Largest CAP document accepted into a feed.
pub const MAX_ALERT_BYTES: u64 = 1 << 20;

pub struct BuildOptions<'a> {
    /// A playlist file or a folder of them.
    pub playlists: &'a Path,
    /// A folder of CAP documents (`*.xml`), optional.
    pub alerts: Option<&'a Path>,
    pub key: &'a SigningKey,
    pub out: &'a Path,
    /// How long kiosks accept the manifest as new.
    pub expires_in: Duration,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildReport {
    pub version: u64,
    pub playlists: usize,
    pub blobs: usize,
    /// Blobs written by this build (the others were already in the feed).
    pub added: usize,
    pub added_bytes: u64,
    pub total_bytes: u64,
    pub expires: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The same problems `estation playlist check` prints.
    #[error("{0}")]
    Playlists(Diagnostics),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// What `estation alert check` prints for the bad CAP files.
    #[error("{0}")]
    Alerts(Diagnostics),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{path}: the feed's current manifest cannot be read, so its version cannot be continued ({message}); move it away to start a new feed")]
    Previous { path: PathBuf, message: String },
    #[error("{0}")]
    Lock(#[from] LockError),
    /// `--expires` out of range.
    #[error("--expires {0}")]
    Expires(String),
    /// The manifest fails the check every kiosk makes; nothing was written.
    #[error("{0}; kiosks would refuse this manifest, so nothing was written")]
    Refused(#[source] ManifestError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io { path: path.to_path_buf(), source }
}

/// A file to put in the feed: where it is now, and what it is.
struct Source {
    path: PathBuf,
    blob: Blob,
}

/// Builds (or updates) the feed in `opts.out`. Validates everything before
/// writing anything; writes blobs before the manifest, so a server never
/// offers a manifest whose files are missing.
pub fn build(opts: &BuildOptions) -> Result<BuildReport, BuildError> {
    let library = Library::load(opts.playlists);
    if !library.problems.is_empty() {
        return Err(BuildError::Playlists(Diagnostics(library.problems)));
    }

    let mut sources: BTreeMap<Digest, Source> = BTreeMap::new();
    let mut by_path: BTreeMap<PathBuf, Digest> = BTreeMap::new();
    let mut playlists = Vec::new();
    let mut media = Vec::new();
    for p in &library.playlists {
        let (digest, size) = Digest::of_file(&p.source).map_err(io(&p.source))?;
        let blob = Blob { sha256: digest, size, media_type: MediaType::Playlist };
        sources.insert(digest, Source { path: p.source.clone(), blob: blob.clone() });
        let mut map = BTreeMap::new();
        for (written, path) in &p.media {
            let d = match by_path.get(path) {
                Some(d) => *d,
                None => {
                    let mut head = [0u8; crate::core::media::sniff::HEAD];
                    let n = read_head(path, &mut head)?;
                    let media_type = MediaType::sniff(&head[..n]).ok_or_else(|| BuildError::File {
                        path: path.clone(),
                        message: "not a picture (png, jpeg, webp), video (mp4, mkv, webm) or sound (mp3, ogg, wav, flac) we can play".into(),
                    })?;
                    let (d, size) = Digest::of_file(path).map_err(io(path))?;
                    by_path.insert(path.clone(), d);
                    sources.entry(d).or_insert_with(|| {
                        let blob = Blob { sha256: d, size, media_type };
                        media.push(blob.clone());
                        Source { path: path.clone(), blob }
                    });
                    d
                }
            };
            map.insert(written.clone(), d);
        }
        let name = p.source.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        playlists.push(PlaylistEntry { name, sha256: digest, size, media: map });
    }

    let mut alerts = Vec::new();
    if let Some(dir) = opts.alerts {
        for path in xml_files(dir)? {
            let (d, size) = Digest::of_file(&path).map_err(io(&path))?;
            if size == 0 || size > MAX_ALERT_BYTES {
                return Err(BuildError::File { path, message: format!("{size} bytes; a CAP document is 1 to {MAX_ALERT_BYTES} bytes") });
            }
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            if let Err(problems) = crate::core::alert::cap::parse(&path, &bytes) {
                return Err(BuildError::Alerts(problems));
            }
            let blob = Blob { sha256: d, size, media_type: MediaType::Cap };
            sources.entry(d).or_insert_with(|| {
                alerts.push(blob.clone());
                Source { path, blob }
            });
        }
    }

    let created = chrono::SubsecRound::trunc_subsecs(opts.now, 0);
    if opts.expires_in < Duration::from_secs(1) {
        return Err(BuildError::Expires(format!("{}: kiosks take a feed only until it expires; give at least 1s, e.g. 14d", humantime::format_duration(opts.expires_in))));
    }
    let expires = chrono::Duration::from_std(opts.expires_in)
        .ok()
        .and_then(|d| created.checked_add_signed(d))
        .ok_or_else(|| BuildError::Expires(format!("{}: too far in the future; give e.g. 14d", humantime::format_duration(opts.expires_in))))?;
    let mut manifest = Manifest {
        format: FORMAT.into(),
        version: 0,
        created: created.fixed_offset(),
        expires: expires.fixed_offset(),
        playlists,
        media,
        // The warnings go in their own document (`alerts.json`), below.
        alerts: Vec::new(),
    };
    // Before the feed folder is touched: what the playlists alone make must
    // pass (the version and kept alerts come from the feed, under its lock).
    manifest.check().map_err(BuildError::Refused)?;

    std::fs::create_dir_all(opts.out).map_err(io(opts.out))?;
    // Held from reading the previous manifest until the new one is written.
    let _lock = lock(opts.out)?;
    let manifest_path = opts.out.join(MANIFEST_FILE);
    let previous = previous_manifest(&manifest_path)?;
    let alerts_path = opts.out.join(ALERTS_FILE);
    let previous_alerts = previous_manifest(&alerts_path)?;
    // Without --alerts, what `alert publish` put in the feed stays (from a
    // feed built before the warnings document, from its manifest).
    if opts.alerts.is_none() {
        let published = previous_alerts.iter().chain(&previous).flat_map(|p| p.alerts.clone());
        for blob in published.collect::<Vec<_>>() {
            let path = opts.out.join(blob.feed_path());
            if sources.contains_key(&blob.sha256) {
                continue;
            }
            // The feed's copy is the only one: one damaged on disk is dropped, as
            // `alert publish` drops one that no longer reads.
            match Digest::of_file(&path) {
                Ok((d, n)) if d == blob.sha256 && n == blob.size => {
                    alerts.push(blob.clone());
                    sources.insert(blob.sha256, Source { path, blob });
                }
                Ok(_) => tracing::warn!("{}: dropped from the feed: its content no longer matches its name (publish the alert again)", path.display()),
                Err(e) => tracing::warn!("{}: dropped from the feed: {e}", path.display()),
            }
        }
    }
    manifest.version = super::alerts::next_version(previous.as_ref().map_or(0, |p| p.version), created);
    manifest.check().map_err(BuildError::Refused)?;
    // Signed at every build, with the manifest's lifetime, so the warnings
    // document is renewed whenever the feed is.
    let doc = AlertsDoc {
        format: alerts_doc::FORMAT.into(),
        version: super::alerts::next_version(previous_alerts.as_ref().map_or(0, |p| p.version), created),
        created: manifest.created,
        expires: manifest.expires,
        alerts,
    };
    doc.check().map_err(BuildError::Refused)?;

    // Everything is known good: now write.
    let blobs_dir = opts.out.join("blobs");
    std::fs::create_dir_all(&blobs_dir).map_err(io(&blobs_dir))?;
    let (mut added, mut added_bytes) = (0, 0);
    for src in sources.values() {
        let dest = opts.out.join(src.blob.feed_path());
        // Read back, not just sized: a blob whose bytes no longer match its name
        // (bit rot, a torn write) is written again from its source.
        if Digest::of_file(&dest).is_ok_and(|(d, n)| d == src.blob.sha256 && n == src.blob.size) {
            continue;
        }
        let mut file = std::fs::File::open(&src.path).map_err(io(&src.path))?;
        let (d, _) = crate::store::atomic::copy_verified(&mut file, &dest, &src.blob.sha256).map_err(io(&dest))?;
        if d != src.blob.sha256 {
            return Err(BuildError::File { path: src.path.clone(), message: "changed while the feed was being built; build again".into() });
        }
        added += 1;
        added_bytes += src.blob.size;
    }
    // The warnings first: a kiosk between the two writes sees the new
    // document beside the old manifest, never a feed without its warnings.
    write_signed(&alerts_path, &doc.sign(opts.key)).map_err(io(&alerts_path))?;
    write_signed(&manifest_path, &manifest::sign(&manifest, opts.key)).map_err(io(&manifest_path))?;
    Ok(BuildReport {
        version: manifest.version,
        playlists: manifest.playlists.len(),
        blobs: sources.len(),
        added,
        added_bytes,
        total_bytes: manifest.total_bytes(),
        expires,
    })
}

/// nginx and Apache derive the ETag from mtime in whole seconds and size:
/// two builds in one second with manifests of equal length would look the
/// same, and kiosks would be told "304 Not Modified". Keep the manifest's
/// mtime strictly later, second by second, than the one it replaces.
/// Writes a signed document of the feed atomically, its time moved on even
/// within the same second, so servers' `Last-Modified` changes with it.
pub(crate) fn write_signed(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let old_mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    crate::store::atomic::write(path, bytes)?;
    bump_mtime(path, old_mtime)
}

pub(crate) fn bump_mtime(path: &Path, old: Option<std::time::SystemTime>) -> std::io::Result<()> {
    let Some(old) = old else { return Ok(()) };
    let secs = |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let new = std::fs::metadata(path)?.modified()?;
    if secs(new) <= secs(old) {
        let later = std::time::UNIX_EPOCH + Duration::from_secs(secs(old) + 1);
        std::fs::File::options().write(true).open(path)?.set_modified(later)?;
    }
    Ok(())
}

fn read_head(path: &Path, buf: &mut [u8]) -> Result<usize, BuildError> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    let mut n = 0;
    while n < buf.len() {
        let m = f.read(&mut buf[n..]).map_err(io(path))?;
        if m == 0 {
            break;
        }
        n += m;
    }
    Ok(n)
}

#[derive(serde::Deserialize)]
struct Previous {
    version: u64,
    #[serde(default)]
    alerts: Vec<Blob>,
}

fn xml_files(dir: &Path) -> Result<Vec<PathBuf>, BuildError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("xml")) && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// A signed document already in the output folder (the manifest, the
/// warnings document: its version and alerts), read without checking its
/// signature (it is the operator's own earlier output).
fn previous_manifest(path: &Path) -> Result<Option<Previous>, BuildError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(BuildError::Io { path: path.to_path_buf(), source }),
    };
    #[derive(serde::Deserialize)]
    struct Env {
        signed: Previous,
    }
    serde_json::from_slice::<Env>(&bytes)
        .map(|e| Some(e.signed))
        .map_err(|e| BuildError::Previous { path: path.to_path_buf(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::feed::manifest::verify_signature;

    fn write_png(path: &Path, shade: u8) {
        image::RgbaImage::from_pixel(4, 4, image::Rgba([shade, 0, 0, 255])).save(path).unwrap();
    }

    #[test]
    fn builds_reuses_blobs_and_versions_grow() {
        let src = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        write_png(&src.path().join("a.png"), 10);
        write_png(&src.path().join("b.png"), 20);
        std::fs::write(
            src.path().join("p.toml"),
            "[[items]]\nkind = \"image\"\npath = \"a.png\"\n[[items]]\nkind = \"text\"\ntitle = \"x\"\nbackground_image = \"./b.png\"\n",
        )
        .unwrap();
        let key = SigningKey::from_bytes(&[7; 32]);
        let now: DateTime<Utc> = "2026-11-23T00:00:00Z".parse().unwrap();
        let opts = BuildOptions { playlists: src.path(), alerts: None, key: &key, out: out.path(), expires_in: Duration::from_secs(86400), now };
        let first = build(&opts).unwrap();
        assert_eq!((first.playlists, first.blobs, first.added), (1, 3, 3));
        let v = verify_signature(&std::fs::read(out.path().join(MANIFEST_FILE)).unwrap(), &key.verifying_key()).unwrap();
        assert_eq!(v.manifest.playlists[0].media.keys().collect::<Vec<_>>(), ["./b.png", "a.png"]);
        for b in v.manifest.blobs() {
            let (d, n) = Digest::of_file(&out.path().join(b.feed_path())).unwrap();
            assert_eq!((d, n), (b.sha256, b.size));
        }

        // Change one picture: one new blob, a higher version, same clock.
        write_png(&src.path().join("b.png"), 30);
        let second = build(&opts).unwrap();
        assert_eq!(second.added, 1);
        assert_eq!(second.version, first.version + 1);
        assert_eq!(std::fs::read_dir(out.path().join("blobs")).unwrap().count(), 4);
    }

    #[test]
    fn bad_playlist_writes_nothing() {
        let src = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("p.toml"), "[[items]]\nkind = \"image\"\npath = \"missing.png\"\n").unwrap();
        let key = SigningKey::from_bytes(&[7; 32]);
        let opts = BuildOptions { playlists: src.path(), alerts: None, key: &key, out: out.path(), expires_in: Duration::from_secs(60), now: Utc::now() };
        let err = build(&opts).unwrap_err().to_string();
        assert!(err.contains("p.toml:3: items[1].path: `missing.png`: file not found"), "{err}");
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    }
}
