//! Where the player's programme comes from: local playlist files, or the
//! verified feed in the offline cache (falling back to local files or the
//! bundled demo until the cache holds a version).

use std::path::PathBuf;

use ed25519_dalek::VerifyingKey;

use crate::store::cache::Cache;
use crate::core::playlist::Library;

#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one per process
pub enum ContentSource {
    /// A playlist file or folder.
    Files(PathBuf),
    /// The cache's current feed version; `fallback` plays while it has none.
    Feed { cache: Cache, key: VerifyingKey, fallback: Option<PathBuf> },
}

/// Which programme was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Files(PathBuf),
    Feed { version: u64 },
    /// The cache had no usable version; local files play instead.
    Fallback(PathBuf),
    Nothing,
}

impl Origin {
    pub fn feed_version(&self) -> Option<u64> {
        match self {
            Origin::Feed { version } => Some(*version),
            _ => None,
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Files(p) => write!(f, "files {}", p.display()),
            Origin::Feed { version } => write!(f, "feed version {version}"),
            Origin::Fallback(p) => write!(f, "files {} (no feed in the cache yet)", p.display()),
            Origin::Nothing => write!(f, "nothing"),
        }
    }
}

impl ContentSource {
    /// Loads the programme. Never fails: problems are in the library's
    /// `problems`, and with nothing loadable the library is empty (the
    /// player then shows its idle screen).
    pub fn load(&self) -> (Library, Origin) {
        match self {
            ContentSource::Files(p) => (Library::load(p), Origin::Files(p.clone())),
            ContentSource::Feed { cache, key, fallback } => {
                let mut problems = Vec::new();
                match cache.library(key) {
                    Ok(Some((v, lib))) => return (lib, Origin::Feed { version: v.manifest.version }),
                    Ok(None) => {}
                    Err(e) => problems.push(crate::core::diag::Diagnostic {
                        file: cache.root().to_path_buf(),
                        line: 0,
                        field: "(cache)".into(),
                        message: e.to_string(),
                    }),
                }
                let (mut lib, origin) = match fallback {
                    Some(p) => (Library::load(p), Origin::Fallback(p.clone())),
                    None => (Library::default(), Origin::Nothing),
                };
                lib.problems.splice(0..0, problems);
                (lib, origin)
            }
        }
    }

    /// Whether the cache now holds a different version than `origin`
    /// (cheap: reads and checks one small file).
    pub fn changed(&self, origin: &Origin) -> bool {
        match self {
            ContentSource::Files(_) => false,
            ContentSource::Feed { cache, key, .. } => {
                let now = cache.current(key).ok().flatten().map(|v| v.manifest.version);
                now.is_some() && now != origin.feed_version()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::build::{build, BuildOptions};

    #[test]
    fn feed_replaces_fallback_once_the_cache_has_a_version() {
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("p.toml"), "id = \"from-feed\"\n[[items]]\nkind = \"clock\"\n").unwrap();
        let local = src.path().join("local.toml");
        std::fs::write(&local, "id = \"local\"\n[[items]]\nkind = \"clock\"\n").unwrap();
        let feed = tempfile::tempdir().unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let only = src.path().join("p.toml");
        build(&BuildOptions { playlists: &only, alerts: None, key: &key, out: feed.path(), expires_in: std::time::Duration::from_secs(3600), now: chrono::Utc::now() }).unwrap();

        let cdir = tempfile::tempdir().unwrap();
        let cache = Cache::open(cdir.path()).unwrap();
        let source = ContentSource::Feed { cache: cache.clone(), key: key.verifying_key(), fallback: Some(local.clone()) };
        let (lib, origin) = source.load();
        assert_eq!(origin, Origin::Fallback(local));
        assert_eq!(lib.playlists[0].id, "local");
        assert!(!source.changed(&origin));

        // Install the feed by hand, the way sync would.
        let bytes = std::fs::read(feed.path().join("manifest.json")).unwrap();
        let v = crate::core::feed::manifest::verify_signature(&bytes, &key.verifying_key()).unwrap();
        for b in v.manifest.blobs() {
            std::fs::copy(feed.path().join(b.feed_path()), cache.blob_path(&b.sha256)).unwrap();
        }
        cache.writer_blocking().unwrap().commit(&v).unwrap();
        assert!(source.changed(&origin));
        let (lib, origin) = source.load();
        assert_eq!(origin, Origin::Feed { version: v.manifest.version });
        assert_eq!(lib.playlists[0].id, "from-feed");
        assert!(lib.problems.is_empty(), "{:?}", lib.problems);
        assert!(!source.changed(&origin));
    }
}
