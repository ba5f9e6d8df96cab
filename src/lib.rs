//! estation: kiosk software for science-popularization screens (科普e站).
//!
//! The crate is a core with no Bevy (playlists, schedules, config, media
//! decoding, the signed feed, the offline cache and its sync) plus a thin
//! Bevy shell in [`player`] and GStreamer video in [`video`], both behind the
//! default `player` feature.
//! `cargo test --lib --no-default-features` builds and tests the core alone.

pub mod alert;
pub mod atomic;
pub mod cache;
pub mod cli;
pub mod clock_text;
pub mod color;
pub mod config;
pub mod content;
pub mod diag;
pub mod feed;
pub mod media;
pub mod playlist;
pub mod qr;
pub mod schedule;
pub mod status;
#[cfg(feature = "net")]
pub mod sync;
pub mod trusted_time;
pub mod validity;

#[cfg(feature = "player")]
pub mod player;
/// GStreamer video, used by the player (and by `estation doctor`).
#[cfg(feature = "player")]
pub mod video;
