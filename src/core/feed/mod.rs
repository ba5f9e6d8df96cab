//! The central feed: what operators publish, as a folder of static files.
//!
//! ```text
//! FEED/manifest.json                 signed list of everything below
//! FEED/blobs/<sha256>.<ext>          playlists, pictures, CAP alerts
//! ```
//!
//! Files are named by their content, so they never change once written:
//! any HTTP server, CDN or object store can serve the folder with long cache
//! lifetimes, and rebuilding only adds what is new. The manifest is the
//! only file that changes; it is signed (see [`manifest`]).

pub mod alerts_doc;
mod digest;
pub mod envelope;
pub mod keys;
pub mod manifest;

pub use digest::{Digest, Hashing};

/// A feed folder's URL: http or https, with the trailing slash that makes
/// file names join under it.
///
/// ```
/// let u = estation::core::feed::folder_url("https://feed.example/county").unwrap();
/// assert_eq!(u.join("manifest.json").unwrap().as_str(), "https://feed.example/county/manifest.json");
/// assert!(estation::core::feed::folder_url("ftp://x/").is_err());
/// ```
pub fn folder_url(url: &str) -> Result<url::Url, String> {
    let mut u = url::Url::parse(url.trim()).map_err(|e| format!("`{url}` is not a URL ({e})"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("`{url}`: only http and https feeds are supported"));
    }
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    Ok(u)
}
pub use manifest::{Blob, Manifest, MediaType, PlaylistEntry, Verified};
