//! The whole flows, through the real `estation` binary, in one test binary
//! (one link of the crate instead of one per file): the CLI, the feed and
//! sync against real servers on 127.0.0.1 (our own, nginx), warnings from
//! CAP files to a real window, the real player under Xvfb with Mesa's
//! software renderer, and on Wayland in headless sway and cage, GStreamer on
//! generated clips, sound without a sound card. Shared helpers are in
//! `common`.

mod common;

#[cfg(feature = "net")]
mod alerts;
#[cfg(feature = "central")]
mod central;
mod cli;
#[cfg(feature = "net")]
mod feed;
mod fonts;
#[cfg(feature = "player")]
mod kiosk;
#[cfg(feature = "player")]
mod proof;
#[cfg(feature = "net")]
mod push;
mod screen;
#[cfg(feature = "player")]
mod session;
mod sound;
#[cfg(feature = "net")]
mod sync;
#[cfg(feature = "player")]
mod video;
