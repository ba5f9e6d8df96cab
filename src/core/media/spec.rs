//! How a playlist says to show a medium: how a picture fits the screen, a
//! video's settings, how long an item lasts. Defined here, below the
//! playlist model that names them, so the media rules (timing, scaling)
//! need nothing from the playlist layer.

use std::path::PathBuf;
use std::time::Duration;

/// How an image fills the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Whole picture visible, bands of the background colour around it.
    #[default]
    Contain,
    /// Screen filled, picture cropped to the screen's aspect.
    Cover,
}

/// A video slide.
#[derive(Debug, Clone, PartialEq)]
pub struct Video {
    pub path: PathBuf,
    pub fit: Fit,
    /// Start again from `start` at the end, until the item's time is up.
    pub looped: bool,
    /// No clip sound (its audio is not even decoded).
    pub mute: bool,
    /// The clip's sound, 0-100 percent of the master volume.
    pub volume: u8,
    /// Where in the clip to begin.
    pub start: Duration,
}

/// How long an item stays on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    Fixed(Duration),
    /// As long as the video clip (from its `start`): `duration = "auto"`.
    Clip,
    /// As long as the item's narration: `duration = "narration"`.
    Narration,
}

impl Length {
    /// The length the schedule plans with before the media are measured.
    pub fn nominal(self) -> Duration {
        match self {
            Length::Fixed(d) => d,
            Length::Clip | Length::Narration => super::timing::UNMEASURED,
        }
    }
}

