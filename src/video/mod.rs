//! Video through GStreamer, with no Bevy in sight: a [`Clip`] prerolls a
//! file, hands out RGBA frames at their timestamps and reports its end or
//! its failure; [`plugins`] says what this machine can decode.
//!
//! The player's video plugin turns frames into one reused texture per video
//! surface; the tests drive clips directly on generated files.

mod clip;
pub mod plugins;

use std::path::PathBuf;
use std::sync::OnceLock;

pub use clip::{Clip, ClipEvent, ClipOptions, ClipStats, Frame};

/// Why a clip cannot play.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VideoError {
    #[error("GStreamer is not usable: {0}")]
    Init(String),
    #[error("{}: {message}", path.display())]
    Clip { path: PathBuf, message: String },
}

/// A video item's clip length as the player learns it: prerolled the way
/// the player prerolls it (at its `start`, muted or not), and the length
/// the pipeline then reports (`None`: the container does not say).
/// Blocking; `estation playlist at` uses it to see the player's boundaries.
pub fn clip_length(video: &crate::core::media::spec::Video) -> Result<Option<std::time::Duration>, VideoError> {
    // The size only bounds the frames converted; the length is the same.
    let options = ClipOptions { area: (64, 64), fit: video.fit, mute: video.mute, volume: 0.0, start: video.start };
    Ok(Clip::preroll(&video.path, options)?.duration())
}

/// Initialises GStreamer once per process.
pub fn init() -> Result<(), VideoError> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| gstreamer::init().map_err(|e| e.to_string()))
        .clone()
        .map_err(VideoError::Init)
}
