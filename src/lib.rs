//! estation: kiosk software for science-popularization screens (科普e站).
//!
//! The folders are the layers, and each may use only those above it:
//!
//! ```text
//! core/     pure: playlists, schedules, validity, CAP and alert policy,
//!           the signed manifest, sync plans, media rules, trusted time.
//!           No network, no Bevy; takes `now` and inputs as arguments.
//! config/   the kiosk's settings, and the last copy that loaded
//! store/    the files on disk: atomic writes, the offline cache (which
//!           owns every path under its folder), status, the alert inbox
//! publish/  what an operator writes: building and signing a feed folder
//! net/      the network (feature `net`): the HTTP client, sync, upstream
//!           CAP sources, the feed server
//! video/    GStreamer video (feature `player`)
//! player/   the Bevy shell (feature `player`): it presents state
//! kiosk/    start-up of a kiosk: the player with its background sync
//! cli/      the operator's commands
//! ```
//!
//! `cargo test --lib --no-default-features` builds and tests everything but
//! the network and the player, and fails to compile if network code leaks
//! into the core.

pub mod cli;
pub mod config;
pub mod core;
pub mod publish;
pub mod store;

#[cfg(feature = "net")]
pub mod net;

#[cfg(feature = "player")]
pub mod kiosk;
#[cfg(feature = "player")]
pub mod player;
/// GStreamer video, used by the player (and by `estation doctor`).
#[cfg(feature = "player")]
pub mod video;
