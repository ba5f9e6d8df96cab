//! Audio that alerts link to (`<resource><uri>`), fetched by sync into
//! `CACHE/alert-media/` so the player, which reads only the cache, can play
//! it after the chime. Only `audio/*` resources are fetched, over http(s),
//! up to a size cap, and checked against the CAP `<digest>` (SHA-1) when the
//! message gives one. A failed fetch is retried at the next poll; files no
//! message in the store needs any more are removed.

use std::path::{Path, PathBuf};

use sha1::Digest as _;

use crate::alert::store::Store;
use crate::feed::Digest;

pub const DIR: &str = "alert-media";
/// Largest audio file fetched (a few minutes of speech in MP3).
const MAX_BYTES: u64 = 8 * 1024 * 1024;

/// Where the audio linked at `uri` is kept.
pub fn path_for(cache_root: &Path, uri: &str) -> PathBuf {
    cache_root.join(DIR).join(Digest::of(uri.as_bytes()).hex())
}

/// The linked audio of every message in the store: (uri, SHA-1 digest).
fn wanted(store: &Store) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for e in store.entries() {
        for info in &e.alert.infos {
            for r in &info.resources {
                let audio = r.mime_type.as_deref().is_some_and(|m| m.trim().to_ascii_lowercase().starts_with("audio/"));
                if let (true, None, Some(uri)) = (audio, &r.deref, &r.uri)
                    && (uri.starts_with("https://") || uri.starts_with("http://"))
                    && !out.iter().any(|(u, _)| u == uri)
                {
                    out.push((uri.clone(), r.digest.clone()));
                }
            }
        }
    }
    out
}

/// Fetches what is missing and removes what is no longer needed.
pub async fn sync(client: &reqwest::Client, cache_root: &Path, store: &Store) {
    let dir = cache_root.join(DIR);
    let wanted = wanted(store);
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let keep: Vec<PathBuf> = wanted.iter().map(|(u, _)| path_for(cache_root, u)).collect();
        for e in entries.flatten() {
            // `.tmp-` files are writes in progress (perhaps another process's).
            if !keep.contains(&e.path()) && !e.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    for (uri, digest) in wanted {
        let dest = path_for(cache_root, &uri);
        if dest.exists() {
            continue;
        }
        match fetch(client, &uri, digest.as_deref()).await {
            Ok(bytes) => {
                let written = std::fs::create_dir_all(&dir).and_then(|()| crate::atomic::write(&dest, &bytes));
                match written {
                    Ok(()) => tracing::info!("alerts: audio {uri} cached ({} bytes)", bytes.len()),
                    Err(e) => tracing::warn!("alerts: audio {uri}: {}: {e}", dest.display()),
                }
            }
            Err(e) => tracing::warn!("alerts: audio {uri} not fetched: {e}"),
        }
    }
}

async fn fetch(client: &reqwest::Client, uri: &str, sha1_hex: Option<&str>) -> Result<Vec<u8>, String> {
    let resp = client.get(uri).send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let bytes = super::read_limited(resp, MAX_BYTES).await?;
    if let Some(want) = sha1_hex {
        let got = hex::encode(sha1::Sha1::digest(&bytes));
        if !got.eq_ignore_ascii_case(want.trim()) {
            return Err(format!("SHA-1 is {got}, the message says {want}"));
        }
    }
    Ok(bytes)
}
