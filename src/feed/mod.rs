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

pub mod build;
mod digest;
pub mod keys;
pub mod lock;
pub mod manifest;
pub mod publish;
pub mod serve;

pub use digest::{Digest, Hashing};
pub use manifest::{Blob, Manifest, MediaType, PlaylistEntry, Verified};
