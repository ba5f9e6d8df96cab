//! The last config that loaded, kept so that a file an editor broke (saved as
//! GBK or UTF-16, a TOML syntax error) never turns a screen into the demo:
//! the player and `sync` carry on with the copy, and say why.
//!
//! `CACHE/config.last-good.toml` holds the config's text as it last loaded,
//! then one comment line naming the file it is a copy of and when it was
//! saved; its lines keep their numbers. The player and `sync` write it
//! (atomically, only when the text changed) whenever the config loads
//! without a whole-file problem; field-level problems still count as loaded.
//!
//! A broken file cannot be trusted to say where its cache is, so the copy is
//! looked for in
//! 1. the folder its `[cache] dir` line names, read line by line without
//!    TOML (that one line usually survives a bad edit or a wrong encoding),
//! 2. the default cache folder (`~/.local/share/estation/cache`, under
//!    `$XDG_DATA_HOME` when set),
//!
//! and used only when it is a copy of that very file.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Diagnostics, Loaded};

/// The copy's file name in the cache folder.
pub const FILE: &str = "config.last-good.toml";
const MARK: &str = "# estation-last-good: ";

/// The copy's last line, after [`MARK`].
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Stamp {
    /// The config file this is a copy of (absolute).
    source: PathBuf,
    saved: DateTime<Utc>,
    #[serde(default)]
    note: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LastGoodError {
    #[error("no cache folder to keep the config's last good copy in: set [cache] dir")]
    NoCacheDir,
    #[error("cannot keep the config's last good copy as {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// [`keep`], said for the log: what was kept, or why it could not be.
/// (Only the kiosk's own runs keep a copy: the player and sync.)
pub fn keep_note(loaded: &Loaded, now: DateTime<Utc>) -> Result<Option<String>, String> {
    match keep(loaded, now) {
        Ok(Some(path)) => Ok(Some(format!("kept a copy of the config as {} (used if the file ever cannot be read)", path.display()))),
        Ok(None) => Ok(None),
        Err(e) => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(cause) = src {
                s.push_str(": ");
                s.push_str(&cause.to_string());
                src = cause.source();
            }
            Err(s)
        }
    }
}

/// Keeps the text of a config that loaded as its last good copy, in the
/// cache folder it names, unless the copy already holds that text. Returns
/// the copy's path when it wrote one. Defaults, an unusable file and a config
/// that itself came from a copy are never kept.
pub fn keep(loaded: &Loaded, now: DateTime<Utc>) -> Result<Option<PathBuf>, LastGoodError> {
    let (Some(source), Some(text), None) = (&loaded.config.source, &loaded.text, &loaded.fallback) else {
        return Ok(None);
    };
    let dir = loaded.config.cache.dir().ok_or(LastGoodError::NoCacheDir)?;
    let path = dir.join(FILE);
    let source = absolute(source);
    let body = with_newline(text);
    if let Some((stamp, old)) = read(&path)
        && stamp.source == source
        && old == body
    {
        return Ok(None);
    }
    let stamp = Stamp {
        source,
        saved: now,
        note: "a copy of the last config that loaded, used while that file cannot be; edit that file, not this one".into(),
    };
    let write = || -> std::io::Result<()> {
        let json = serde_json::to_string(&stamp).map_err(std::io::Error::other)?;
        std::fs::create_dir_all(&dir)?;
        crate::store::atomic::write(&path, format!("{body}{MARK}{json}\n").as_bytes())
    };
    write().map_err(|source| LastGoodError::Write { path: path.clone(), source })?;
    Ok(Some(path))
}

/// Replaces the config of `broken` (loaded from `path`, whose bytes are
/// `bytes`, and unusable) by its last good copy when one is found, saying so
/// in [`Loaded::fallback`]; otherwise keeps the defaults, and says that.
pub fn recall(broken: Loaded, path: &Path, bytes: &[u8]) -> Loaded {
    let Some(problem) = broken.unusable.clone() else {
        return broken;
    };
    let source = absolute(path);
    let mut looked = Vec::new();
    for dir in places(path, bytes) {
        let copy = dir.join(FILE);
        looked.push(copy.display().to_string());
        let Some((stamp, body)) = read(&copy) else { continue };
        if stamp.source != source {
            continue;
        }
        // Parsed as the original file, so relative paths in it mean the same.
        let mut l = super::parse(path, &body);
        if l.unusable.is_some() {
            continue;
        }
        let saved = stamp.saved.with_timezone(&l.config.timezone).format("%Y-%m-%d %H:%M:%S %Z");
        for d in &mut l.problems.0 {
            d.file = copy.clone();
        }
        // The copy keeps the file's line numbers, so each value is on the
        // same line of the copy.
        for origin in l.origins.values_mut() {
            if let super::Origin::File { line, .. } = origin {
                *origin = super::Origin::LastGood { path: copy.clone(), line: *line };
            }
        }
        l.config.source = Some(copy.clone());
        l.note = format!("config from {} (the last good copy of {}, saved {saved})", copy.display(), path.display());
        l.fallback = Some(format!("{problem}; using the last config that loaded instead: {}, saved {saved}", copy.display()));
        l.unusable = Some(problem);
        l.text = None;
        return l;
    }
    Loaded {
        fallback: Some(format!(
            "{problem}; no last good copy of it was found (looked for {}), so the built-in defaults are used: no feed key, no alert sources",
            looked.join(", ")
        )),
        problems: Diagnostics(Vec::new()),
        ..broken
    }
}

/// Where a copy of the config at `path` may be, best first.
fn places(path: &Path, bytes: &[u8]) -> Vec<PathBuf> {
    let (encoding, _) = encoding_rs::Encoding::for_bom(bytes).unwrap_or((encoding_rs::UTF_8, 0));
    let text = encoding.decode_with_bom_removal(bytes).0;
    let mut dirs: Vec<PathBuf> = cache_dir_line(path, &text).into_iter().collect();
    if let Some(d) = crate::store::cache::default_dir()
        && !dirs.contains(&d)
    {
        dirs.push(d);
    }
    dirs
}

/// The `dir` of the `[cache]` table, found line by line, resolved like
/// [`super::parse`] resolves it.
fn cache_dir_line(config: &Path, text: &str) -> Option<PathBuf> {
    let mut table = "";
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            table = t.trim_start_matches('[').split(']').next().unwrap_or("").trim();
            continue;
        }
        let Some((key, value)) = t.split_once('=') else { continue };
        if table != "cache" || key.trim() != "dir" {
            continue;
        }
        let value = value.trim();
        let quote = value.chars().next().filter(|q| *q == '"' || *q == '\'')?;
        let inner = &value[1..];
        let dir = &inner[..inner.find(quote)?];
        let dir = if quote == '"' { dir.replace("\\\\", "\\") } else { dir.to_string() };
        if dir.trim().is_empty() {
            return None;
        }
        return Some(config.parent().unwrap_or(Path::new(".")).join(dir.trim()));
    }
    None
}

/// The copy at `path`: its stamp and the config text before it.
fn read(path: &Path) -> Option<(Stamp, String)> {
    let text = String::from_utf8(std::fs::read(path).ok()?).ok()?;
    let at = text.rfind(MARK)?;
    if at > 0 && !text[..at].ends_with('\n') {
        return None;
    }
    let stamp = serde_json::from_str(text[at + MARK.len()..].trim_end()).ok()?;
    Some((stamp, text[..at].to_string()))
}

fn with_newline(text: &str) -> String {
    if text.is_empty() || text.ends_with('\n') { text.to_string() } else { format!("{text}\n") }
}

/// The same file named the same way from any working folder.
fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).or_else(|_| std::path::absolute(path)).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{from_bytes, Location, load_or_last_good};

    fn key() -> String {
        crate::core::feed::keys::public_key_string(&ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key())
    }

    /// A config with a feed key, an alert source and its cache in `cache/`
    /// beside it.
    fn good() -> String {
        format!(
            "[screen]\nid = \"good-1\"\n[feed]\nurl = \"https://feed.example/\"\npublic_key = \"{}\"\n[cache]\ndir = \"cache\"\n[[alerts.source]]\nurl = \"https://alerts.example/cap.atom\"\n",
            key()
        )
    }

    fn kept(path: &Path) -> Option<PathBuf> {
        keep(&from_bytes(path, &std::fs::read(path).unwrap()), Utc::now()).unwrap()
    }

    #[test]
    fn a_broken_file_runs_on_the_last_config_that_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, good()).unwrap();
        let l = from_bytes(&path, &std::fs::read(&path).unwrap());
        assert!(l.problems.0.is_empty() && l.unusable.is_none(), "{}", l.diagnostics());
        assert_eq!(kept(&path), Some(dir.path().join("cache").join(FILE)));

        // GBK, a syntax error, and a typo in the feed's key (which alone
        // would leave the screen playing the demo).
        let typo = "[screen]\nid = \"typo\"\n[feed]\nurl = \"https://feed.example/\"\npublic_key = \"ed25519:typo\"\n[cache]\ndir = \"cache\"\n";
        for broken in [&b"[screen]\nname = \"\xb2\xe2\xca\xd4\"\n[cache]\ndir = \"cache\"\n"[..], b"[screen\n[cache]\ndir = \"cache\"\n", typo.as_bytes()] {
            std::fs::write(&path, broken).unwrap();
            let l = load_or_last_good(&Location::Explicit(path.clone())).unwrap();
            assert_eq!(l.config.feed.public_key.map(|k| crate::core::feed::keys::public_key_string(&k)), Some(key()));
            let copy = dir.path().join("cache").join(FILE);
            assert_eq!(l.origins["screen.id"], super::super::Origin::LastGood { path: copy.clone(), line: 2 }, "the copy's line");
            assert_eq!(l.origins["alerts.source"], super::super::Origin::LastGood { path: copy, line: 9 });
            assert_eq!(l.config.alerts.sources.len(), 1);
            assert_eq!(l.config.screen_id, "good-1");
            assert_eq!(l.config.cache.dir, Some(dir.path().join("cache")), "relative to the original file");
            let why = l.fallback.unwrap();
            assert!(why.starts_with(&format!("{}:", path.display())), "{why}");
            assert!(why.contains(&format!("using the last config that loaded instead: {}", dir.path().join("cache").join(FILE).display())), "{why}");
            assert_eq!(l.unusable.unwrap().file, path);
        }
    }

    #[test]
    fn the_copy_is_written_only_when_the_text_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, good()).unwrap();
        assert!(kept(&path).is_some());
        assert_eq!(kept(&path), None, "same text: not written again");
        std::fs::write(&path, good().replace("good-1", "good-2")).unwrap();
        assert!(kept(&path).is_some());
        let (stamp, body) = read(&dir.path().join("cache").join(FILE)).unwrap();
        assert_eq!(body, good().replace("good-1", "good-2"));
        assert_eq!(stamp.source, absolute(&path));
    }

    #[test]
    fn field_problems_still_count_as_loaded_but_unusable_files_are_never_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, good() + "[audio]\nvolume = 300\n").unwrap();
        assert!(kept(&path).is_some());
        std::fs::write(&path, "[screen\n[cache]\ndir = \"cache\"\n").unwrap();
        assert_eq!(kept(&path), None);
        let (_, body) = read(&dir.path().join("cache").join(FILE)).unwrap();
        assert!(body.contains("volume = 300"));
    }

    #[test]
    fn a_copy_of_another_file_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other.toml");
        std::fs::write(&other, good()).unwrap();
        assert!(kept(&other).is_some());
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[screen\n[cache]\ndir = \"cache\"\n").unwrap();
        let l = load_or_last_good(&Location::Explicit(path.clone())).unwrap();
        assert_eq!(l.config.feed.public_key, None);
        let why = l.fallback.unwrap();
        assert!(why.contains("no last good copy of it was found") && why.contains("built-in defaults"), "{why}");
    }

    #[test]
    fn the_cache_dir_line_survives_damage_elsewhere() {
        let c = Path::new("/etc/estation/config.toml");
        assert_eq!(cache_dir_line(c, "[screen\n[cache]\ndir = \"/var/lib/e\" # here\n"), Some("/var/lib/e".into()));
        assert_eq!(cache_dir_line(c, "[cache]\nbudget = 1\ndir = 'c'\n"), Some("/etc/estation/c".into()));
        assert_eq!(cache_dir_line(c, "[feed]\ndir = \"x\"\n"), None);
        assert_eq!(cache_dir_line(c, "[cache]\ndir = \"\"\n"), None);
    }
}
