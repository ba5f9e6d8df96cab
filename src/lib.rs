//! estation: kiosk software for science-popularization screens (科普e站).
//!
//! The crate is a pure core (playlists, schedules, config, media decoding)
//! with no Bevy and no network, plus a thin Bevy shell in [`player`] behind
//! the default `player` feature. `cargo test --lib --no-default-features`
//! builds and tests the core alone.

pub mod cli;
pub mod clock_text;
pub mod color;
pub mod config;
pub mod diag;
pub mod media;
pub mod playlist;
pub mod qr;
pub mod schedule;
pub mod validity;

#[cfg(feature = "player")]
pub mod player;
