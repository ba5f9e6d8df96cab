//! The signed manifest: the one file of a feed a kiosk reads first, and
//! trusts only after checking signature, key, version and expiry.
//!
//! On disk it is a signed envelope ([`super::envelope`]). The `signed` object
//! rejects unknown fields: a kiosk never acts on something it does not
//! understand.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, FixedOffset, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::envelope;

/// The format this build reads and writes.
pub const FORMAT: &str = "estation-feed/1";
/// The manifest's file name inside a feed folder (and its URL under the feed URL).
pub const MANIFEST_FILE: &str = "manifest.json";
/// A manifest larger than this is refused before parsing (1,000 items are ~300 KB).
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// The largest blob a feed may list: beyond this a size is absurd, not a video.
pub const MAX_BLOB_BYTES: u64 = 16 << 30;
/// Most entries (playlists + media + alerts) a manifest may list.
pub const MAX_ENTRIES: usize = 100_000;

/// The kinds of file a feed carries, with the extension used for their URL
/// (so any static server, nginx or a CDN sends the right content type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MediaType {
    #[serde(rename = "application/toml")]
    Playlist,
    #[serde(rename = "application/cap+xml")]
    Cap,
    #[serde(rename = "image/png")]
    Png,
    #[serde(rename = "image/jpeg")]
    Jpeg,
    #[serde(rename = "image/webp")]
    Webp,
    #[serde(rename = "video/mp4")]
    Mp4,
    #[serde(rename = "video/x-matroska")]
    Matroska,
    #[serde(rename = "video/webm")]
    Webm,
    #[serde(rename = "audio/mpeg")]
    Mp3,
    #[serde(rename = "audio/ogg")]
    Ogg,
    #[serde(rename = "audio/wav")]
    Wav,
    #[serde(rename = "audio/flac")]
    Flac,
}

impl MediaType {
    pub const ALL: [MediaType; 12] = [
        MediaType::Playlist,
        MediaType::Cap,
        MediaType::Png,
        MediaType::Jpeg,
        MediaType::Webp,
        MediaType::Mp4,
        MediaType::Matroska,
        MediaType::Webm,
        MediaType::Mp3,
        MediaType::Ogg,
        MediaType::Wav,
        MediaType::Flac,
    ];

    /// The type a feed URL's extension stands for.
    pub fn from_extension(ext: &str) -> Option<MediaType> {
        Self::ALL.into_iter().find(|t| t.extension() == ext)
    }

    pub fn extension(self) -> &'static str {
        match self {
            MediaType::Playlist => "toml",
            MediaType::Cap => "xml",
            MediaType::Png => "png",
            MediaType::Jpeg => "jpg",
            MediaType::Webp => "webp",
            MediaType::Mp4 => "mp4",
            MediaType::Matroska => "mkv",
            MediaType::Webm => "webm",
            MediaType::Mp3 => "mp3",
            MediaType::Ogg => "ogg",
            MediaType::Wav => "wav",
            MediaType::Flac => "flac",
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            MediaType::Playlist => "application/toml",
            MediaType::Cap => "application/cap+xml",
            MediaType::Png => "image/png",
            MediaType::Jpeg => "image/jpeg",
            MediaType::Webp => "image/webp",
            MediaType::Mp4 => "video/mp4",
            MediaType::Matroska => "video/x-matroska",
            MediaType::Webm => "video/webm",
            MediaType::Mp3 => "audio/mpeg",
            MediaType::Ogg => "audio/ogg",
            MediaType::Wav => "audio/wav",
            MediaType::Flac => "audio/flac",
        }
    }

    /// Recognises a media file by its content (never by its name).
    pub fn sniff(bytes: &[u8]) -> Option<MediaType> {
        use crate::core::media::sniff::Format;
        Some(match Format::sniff(bytes)? {
            Format::Png => MediaType::Png,
            Format::Jpeg => MediaType::Jpeg,
            Format::Webp => MediaType::Webp,
            Format::Mp4 => MediaType::Mp4,
            Format::Matroska => MediaType::Matroska,
            Format::Webm => MediaType::Webm,
            Format::Mp3 => MediaType::Mp3,
            Format::Ogg => MediaType::Ogg,
            Format::Wav => MediaType::Wav,
            Format::Flac => MediaType::Flac,
        })
    }
}

/// One file of the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blob {
    pub sha256: Digest,
    pub size: u64,
    #[serde(rename = "type")]
    pub media_type: MediaType,
}

impl Blob {
    /// Where the blob lives relative to the feed root (and the feed URL).
    pub fn feed_path(&self) -> String {
        format!("blobs/{}.{}", self.sha256, self.media_type.extension())
    }
}

/// A playlist of the feed: its file, and what each media path written in it
/// stands for. The paths are lookup keys only, never used as file names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaylistEntry {
    /// The playlist's file name, for messages (e.g. `school-hours.toml`).
    pub name: String,
    pub sha256: Digest,
    pub size: u64,
    #[serde(default)]
    pub media: BTreeMap<String, Digest>,
}

impl PlaylistEntry {
    pub fn blob(&self) -> Blob {
        Blob { sha256: self.sha256, size: self.size, media_type: MediaType::Playlist }
    }
}

/// The signed part of a feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    /// Grows with every build; a kiosk never goes back (rollback protection).
    pub version: u64,
    pub created: DateTime<FixedOffset>,
    /// After this a kiosk refuses the manifest as new, and flags the one it
    /// plays as stale (freeze protection).
    pub expires: DateTime<FixedOffset>,
    pub playlists: Vec<PlaylistEntry>,
    #[serde(default)]
    pub media: Vec<Blob>,
    /// CAP messages, in feeds built before the warnings document
    /// (`alerts.json`, see [`super::alerts_doc`]) took them; read, no
    /// longer written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<Blob>,
}

impl Manifest {
    /// Every file the version needs, each once.
    pub fn blobs(&self) -> Vec<Blob> {
        let mut seen = BTreeSet::new();
        self.playlists
            .iter()
            .map(PlaylistEntry::blob)
            .chain(self.media.iter().cloned())
            .chain(self.alerts.iter().cloned())
            .filter(|b| seen.insert(b.sha256))
            .collect()
    }

    pub fn total_bytes(&self) -> u64 {
        self.blobs().iter().map(|b| b.size).sum()
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires <= now
    }

    /// Built longer than `max_age` before `now` but not yet expired: a feed
    /// that still verifies, yet has not been renewed (freeze protection
    /// before expiry; an expired one is flagged stale instead).
    pub fn is_frozen(&self, now: DateTime<Utc>, max_age: std::time::Duration) -> bool {
        let age = now.signed_duration_since(self.created).to_std().unwrap_or_default();
        !self.is_expired(now) && age > max_age
    }

    /// Rules the JSON shape cannot express. Names the field at fault. The
    /// kiosk runs it on every manifest it reads; `feed build` and `alert
    /// publish` run it before signing, so they never ship one kiosks refuse.
    pub(crate) fn check(&self) -> Result<(), ManifestError> {
        let bad = |field: String, message: String| Err(ManifestError::Field { field, message });
        if self.format != FORMAT {
            return bad("format".into(), format!("`{}` is not a format this kiosk reads (expected {FORMAT})", self.format));
        }
        if self.expires <= self.created {
            return bad("expires".into(), "is not after `created`".into());
        }
        let entries = self.playlists.len() + self.media.len() + self.alerts.len();
        if entries > MAX_ENTRIES {
            return bad("playlists".into(), format!("{entries} entries; at most {MAX_ENTRIES} are allowed"));
        }
        let mut total: u64 = 0;
        let mut media = BTreeMap::new();
        let playlists: Vec<Blob> = self.playlists.iter().map(PlaylistEntry::blob).collect();
        let lists = [("playlists", playlists.iter().collect::<Vec<_>>()), ("media", self.media.iter().collect()), ("alerts", self.alerts.iter().collect())];
        for (list, blobs) in &lists {
            for (i, b) in blobs.iter().enumerate() {
                let field = format!("{list}[{}]", i + 1);
                if b.size > MAX_BLOB_BYTES {
                    return bad(format!("{field}.size"), format!("{} bytes is absurd; at most {MAX_BLOB_BYTES} are allowed", b.size));
                }
                let expected = match *list {
                    "playlists" => b.media_type == MediaType::Playlist,
                    "alerts" => b.media_type == MediaType::Cap,
                    _ => !matches!(b.media_type, MediaType::Playlist | MediaType::Cap),
                };
                if !expected {
                    return bad(format!("{field}.type"), format!("`{}` does not belong in `{list}`", b.media_type.mime()));
                }
                total = total.saturating_add(b.size);
                if *list == "media" && media.insert(b.sha256, b).is_some() {
                    return bad(format!("{field}.sha256"), format!("{} is listed twice", b.sha256));
                }
            }
        }
        if total > MAX_BLOB_BYTES {
            return bad("media".into(), format!("{total} bytes in all is absurd; at most {MAX_BLOB_BYTES} are allowed"));
        }
        let mut names = BTreeSet::new();
        for (i, p) in self.playlists.iter().enumerate() {
            let field = format!("playlists[{}]", i + 1);
            if !valid_playlist_name(&p.name) {
                return bad(format!("{field}.name"), format!("`{}` is not a playlist file name (letters, digits, '-', '_', '.', ending .toml)", p.name.chars().take(80).collect::<String>()));
            }
            if !names.insert(p.name.as_str()) {
                return bad(format!("{field}.name"), format!("`{}` is listed twice", p.name));
            }
            for (path, digest) in &p.media {
                if path.is_empty() || path.len() > 1024 {
                    return bad(format!("{field}.media"), "a media path is empty or longer than 1024 bytes".into());
                }
                if !media.contains_key(digest) {
                    return bad(format!("{field}.media.{path}"), format!("{digest} is not in `media`"));
                }
            }
        }
        Ok(())
    }
}

fn valid_playlist_name(name: &str) -> bool {
    name.len() <= 128
        && name.ends_with(".toml")
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_alphanumeric() || "-_.".contains(c))
}

/// Why a manifest was refused. Each names what was wrong.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ManifestError {
    #[error("manifest is {0} bytes; at most {MAX_MANIFEST_BYTES} are allowed")]
    TooLarge(u64),
    #[error("not a feed manifest: {0}")]
    Syntax(String),
    #[error("not signed")]
    Unsigned,
    #[error("signed by another key ({found}); this kiosk trusts {trusted}")]
    OtherKey { found: String, trusted: String },
    #[error("signature does not match its content (tampered?)")]
    BadSignature,
    #[error("{field}: {message}")]
    Field { field: String, message: String },
    #[error("expired at {0}")]
    Expired(DateTime<FixedOffset>),
    #[error("version {new} is older than the version {current} already here (rollback refused)")]
    Rollback { new: u64, current: u64 },
    #[error("version {0} is already here with different content (refused)")]
    SameVersionDifferent(u64),
}

/// A manifest whose signature checked out, with the bytes it came from.
#[derive(Debug, Clone)]
pub struct Verified {
    pub manifest: Manifest,
    pub bytes: Vec<u8>,
}

/// Checks signature, key and shape only: what the player does with the
/// manifest already in its cache (an expired one still plays).
pub fn verify_signature(bytes: &[u8], key: &VerifyingKey) -> Result<Verified, ManifestError> {
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge(bytes.len() as u64));
    }
    let signed = envelope::open(bytes, key).map_err(ManifestError::from)?;
    let manifest: Manifest = serde_json::from_str(signed).map_err(|e| field_error(&e))?;
    manifest.check()?;
    Ok(Verified { manifest, bytes: bytes.to_vec() })
}

/// Everything a new manifest from the network must pass before the kiosk
/// acts on it: signature, key, shape, expiry, and a version above the
/// current one. Returns `Ok(None)` when it is the version already here.
pub fn verify_new(
    bytes: &[u8],
    key: &VerifyingKey,
    now: DateTime<Utc>,
    current: Option<&Verified>,
) -> Result<Option<Verified>, ManifestError> {
    let v = verify_signature(bytes, key)?;
    let here = current.map(|c| (c.manifest.version, c.bytes.as_slice()));
    check_newer((v.manifest.version, &v.bytes), here, 0)?;
    if here.is_some_and(|(version, _)| version == v.manifest.version) {
        return Ok(None);
    }
    if v.manifest.is_expired(now) {
        return Err(ManifestError::Expired(v.manifest.expires));
    }
    Ok(Some(v))
}

/// The version rule of every signed feed document: a new one's version is
/// above the one here (`here`: its version and bytes) and above `highest`;
/// the same version passes only with the same bytes (then it is not new).
pub(crate) fn check_newer((version, bytes): (u64, &[u8]), here: Option<(u64, &[u8])>, highest: u64) -> Result<(), ManifestError> {
    if let Some((current, current_bytes)) = here {
        if version == current {
            return if bytes == current_bytes { Ok(()) } else { Err(ManifestError::SameVersionDifferent(version)) };
        }
        if version < current {
            return Err(ManifestError::Rollback { new: version, current });
        }
    }
    if version < highest {
        return Err(ManifestError::Rollback { new: version, current: highest });
    }
    Ok(())
}

/// serde_json's message names the unknown field or the bad value and where
/// it is; keep it, it is the best pointer an operator gets.
fn field_error(e: &serde_json::Error) -> ManifestError {
    ManifestError::Field { field: "signed".into(), message: e.to_string() }
}

/// Serialises and signs a manifest.
pub fn sign(manifest: &Manifest, key: &SigningKey) -> Vec<u8> {
    envelope::seal(manifest, key)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::core::feed::keys::key_id;
    use base64::Engine as _;
    use ed25519_dalek::Signer as _;

    pub fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    pub fn sample(version: u64) -> Manifest {
        let img = Blob { sha256: Digest::of(b"png"), size: 3, media_type: MediaType::Png };
        Manifest {
            format: FORMAT.into(),
            version,
            created: "2026-11-23T08:00:00+08:00".parse().unwrap(),
            expires: "2026-12-07T08:00:00+08:00".parse().unwrap(),
            playlists: vec![PlaylistEntry {
                name: "demo.toml".into(),
                sha256: Digest::of(b"toml"),
                size: 4,
                media: [("pics/a.png".to_string(), img.sha256)].into(),
            }],
            media: vec![img],
            alerts: vec![],
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-24T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn signed_manifest_round_trips_and_tampering_is_caught() {
        let k = key(1);
        let bytes = sign(&sample(5), &k);
        let v = verify_new(&bytes, &k.verifying_key(), now(), None).unwrap().unwrap();
        assert_eq!(v.manifest, sample(5));
        assert_eq!(v.manifest.blobs().len(), 2);

        let text = String::from_utf8(bytes.clone()).unwrap();
        let tampered = text.replace("\"size\": 3", "\"size\": 4");
        assert_ne!(tampered, text);
        assert_eq!(verify_new(tampered.as_bytes(), &k.verifying_key(), now(), None).unwrap_err(), ManifestError::BadSignature);
    }

    #[test]
    fn an_old_build_not_yet_expired_is_frozen() {
        let m = sample(5); // built 2026-11-23 08:00 +08:00, expires 14 days later
        let day = std::time::Duration::from_secs(86_400);
        assert!(!m.is_frozen(now(), 7 * day), "a day old");
        let later: DateTime<Utc> = "2026-12-01T01:00:00Z".parse().unwrap();
        assert!(m.is_frozen(later, 7 * day), "eight days old");
        assert!(!m.is_frozen(later, 10 * day), "within a longer max_age");
        let expired: DateTime<Utc> = "2026-12-08T00:00:00Z".parse().unwrap();
        assert!(!m.is_frozen(expired, 7 * day), "expired is stale, not frozen");
    }

    #[test]
    fn other_key_unsigned_expired_and_rollback_are_refused() {
        let k = key(1);
        let other = key(2);
        let bytes = sign(&sample(5), &other);
        assert!(matches!(verify_new(&bytes, &k.verifying_key(), now(), None), Err(ManifestError::OtherKey { .. })));

        let text = String::from_utf8(sign(&sample(5), &k)).unwrap();
        let start = text.find("\"signatures\"").unwrap();
        let unsigned = format!("{}\"signatures\": []\n}}", &text[..start]);
        assert_eq!(verify_new(unsigned.as_bytes(), &k.verifying_key(), now(), None).unwrap_err(), ManifestError::Unsigned);

        let late: DateTime<Utc> = "2026-12-08T00:00:00Z".parse().unwrap();
        assert!(matches!(verify_new(&sign(&sample(5), &k), &k.verifying_key(), late, None), Err(ManifestError::Expired(_))));

        let current = verify_signature(&sign(&sample(5), &k), &k.verifying_key()).unwrap();
        assert_eq!(
            verify_new(&sign(&sample(4), &k), &k.verifying_key(), now(), Some(&current)).unwrap_err(),
            ManifestError::Rollback { new: 4, current: 5 }
        );
        assert!(verify_new(&current.bytes, &k.verifying_key(), now(), Some(&current)).unwrap().is_none());
        let mut changed = sample(5);
        changed.media[0].size = 9;
        assert_eq!(
            verify_new(&sign(&changed, &k), &k.verifying_key(), now(), Some(&current)).unwrap_err(),
            ManifestError::SameVersionDifferent(5)
        );
        assert!(verify_new(&sign(&sample(6), &k), &k.verifying_key(), now(), Some(&current)).unwrap().is_some());
    }

    /// A validly signed manifest can still be refused for its content.
    #[test]
    fn unknown_fields_absurd_sizes_and_path_tricks_are_refused() {
        let k = key(1);
        let vk = k.verifying_key();
        let resign = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v = serde_json::to_value(sample(5)).unwrap();
            edit(&mut v);
            let signed = serde_json::to_string(&v).unwrap();
            let sig = k.sign(signed.as_bytes());
            format!(
                "{{\"signed\":{signed},\"signatures\":[{{\"keyid\":\"{}\",\"sig\":\"{}\"}}]}}",
                key_id(&vk),
                base64::engine::general_purpose::STANDARD.encode(sig.to_bytes())
            )
        };
        let err = |edit: &dyn Fn(&mut serde_json::Value)| verify_new(resign(edit).as_bytes(), &vk, now(), None).unwrap_err().to_string();

        assert!(err(&|v| { v["shiny"] = 1.into(); }).contains("unknown field `shiny`"));
        assert_eq!(err(&|v| { v["media"][0]["size"] = (1u64 << 40).into(); }), format!("media[1].size: {} bytes is absurd; at most {MAX_BLOB_BYTES} are allowed", 1u64 << 40));
        assert!(err(&|v| { v["media"][0]["sha256"] = "../../etc/passwd".into(); }).contains("is not a sha256 digest"));
        assert!(err(&|v| { v["playlists"][0]["name"] = "../evil.toml".into(); }).starts_with("playlists[1].name: `../evil.toml` is not a playlist file name"));
        assert!(err(&|v| { v["playlists"][0]["media"]["x.png"] = Digest::of(b"other").hex().into(); }).starts_with("playlists[1].media.x.png: "));
        assert!(err(&|v| { v["media"][0]["type"] = "application/cap+xml".into(); }).starts_with("media[1].type: "));
        assert!(err(&|v| { v["format"] = "estation-feed/9".into(); }).starts_with("format: "));
        assert!(err(&|v| { v["media"][0]["type"] = "text/html".into(); }).contains("unknown variant `text/html`"));
    }

    #[test]
    fn oversized_or_garbage_input_is_refused_without_parsing() {
        let vk = key(1).verifying_key();
        assert!(matches!(verify_signature(b"<html>", &vk), Err(ManifestError::Syntax(_))));
        let big = vec![b' '; (MAX_MANIFEST_BYTES + 1) as usize];
        assert!(matches!(verify_signature(&big, &vk), Err(ManifestError::TooLarge(_))));
    }
}
