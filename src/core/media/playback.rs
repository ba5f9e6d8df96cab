//! A clip on screen as a state machine: paused under a warning (the item's
//! end moving by as long), its volume following the mix, looping or holding
//! its last frame at its end, going on without sound when the sound output
//! fails, and when the frame loop should look at it again.
//!
//! Pure: the video plugin passes `now` and what the decoder reported, and
//! carries out what it gets back on the GStreamer clip.

use std::time::{Duration, Instant};

use super::spec::Video;
use super::timing::{self, AtEnd};

/// Safety net while a clip plays, should a frame's wake-up be missed.
pub const WATCH: Duration = Duration::from_millis(250);

/// What a clip is doing, apart from its decoder.
#[derive(Debug, Clone)]
pub struct Playback {
    video: Video,
    /// When the item leaves the screen (for loop-or-hold at the clip's end).
    ends: Instant,
    /// The last frame holds.
    ended: bool,
    /// The item lasts as long as the clip (`duration = "auto"`).
    auto_length: bool,
    /// The clip's sound is heard (it has sound and a volume above 0).
    sound: bool,
    /// Since when a warning has paused the clip.
    paused: Option<Instant>,
    /// The gain last given to the clip.
    gain: Option<f32>,
    said_resized: bool,
}

/// What to do with the clip when a warning comes or goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pausing {
    Pause,
    Play,
}

/// What the decoder said in one frame's batch of events that matters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reported {
    /// The clip reached its end.
    pub end: bool,
    /// The sound output failed.
    pub audio_lost: Option<String>,
    pub error: Option<String>,
}

/// What to do after a batch of events, once any end was handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trouble {
    /// Reopen the clip without sound: the picture goes on.
    Reopen(String),
    /// Stop the clip and skip the item (its last frame holds meanwhile).
    Fail(String),
}

impl Playback {
    /// A clip that started playing; the item leaves the screen at `ends`.
    pub fn new(video: Video, auto_length: bool, has_sound: bool, ends: Instant) -> Playback {
        let sound = has_sound && video.volume > 0;
        Playback { video, ends, ended: false, auto_length, sound, paused: None, gain: None, said_resized: false }
    }

    /// Follows a warning over the screen: the clip pauses where it is, and
    /// when the warning goes the item's end moves by as long as it lasted.
    /// A clip holding its last frame stays still.
    pub fn takeover(&mut self, takeover: bool, now: Instant) -> Option<Pausing> {
        match (takeover, self.paused) {
            (true, None) => {
                self.paused = Some(now);
                Some(Pausing::Pause)
            }
            (false, Some(since)) => {
                self.paused = None;
                self.ends += now - since;
                (!self.ended).then_some(Pausing::Play)
            }
            _ => None,
        }
    }

    /// The clip's volume for the programme's `gain` from the mix, when it
    /// changed: the item's own level of it.
    pub fn volume(&mut self, gain: f32) -> Option<f64> {
        if self.gain.is_some_and(|g| (g - gain).abs() <= 1e-3) {
            return None;
        }
        self.gain = Some(gain);
        Some(f64::from(gain) * f64::from(self.video.volume) / 100.0)
    }

    /// Whether a frame of another size than the first is worth a log line
    /// (once a clip: the first size's frame holds).
    pub fn say_resized(&mut self) -> bool {
        !std::mem::replace(&mut self.said_resized, true)
    }

    /// The clip reached its end: whether to seek back to its start (a loop
    /// with time left). Otherwise its last frame holds.
    pub fn at_end(&mut self, now: Instant) -> bool {
        match timing::at_clip_end(&self.video, self.ends.saturating_duration_since(now)) {
            AtEnd::Loop => true,
            AtEnd::Hold => {
                self.ended = true;
                false
            }
        }
    }

    /// Seeking back failed: the last frame holds.
    pub fn hold(&mut self) {
        self.ended = true;
    }

    /// After an end: whether the item is over (an `auto`-length clip that
    /// holds its last frame), whatever its container said its length was.
    pub fn over(&self) -> bool {
        self.ended && self.auto_length
    }

    /// What the batch's troubles call for. A failing sound output makes the
    /// demuxer fail too, often in the same batch: the picture goes on
    /// without sound rather than the item being skipped.
    pub fn trouble(&mut self, r: Reported) -> Option<Trouble> {
        if let Some(why) = r.audio_lost {
            self.sound = false;
            Some(Trouble::Reopen(why))
        } else {
            r.error.map(Trouble::Fail)
        }
    }

    /// Whether the clip plays (`has_clip`: it is open, not being reopened).
    pub fn playing(&self, has_clip: bool) -> bool {
        has_clip && !self.ended && self.paused.is_none()
    }

    /// Whether its sound is heard (the music ducks under it, not under a
    /// last frame that holds).
    pub fn sounding(&self, has_clip: bool) -> bool {
        self.playing(has_clip) && self.sound
    }

    /// When the frame loop should look at the clip next, frames aside.
    pub fn look_again(&self, has_clip: bool, now: Instant) -> Option<Instant> {
        self.playing(has_clip).then_some(now + WATCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::media::spec::Fit;

    const S: Duration = Duration::from_secs(1);

    fn video(looped: bool, volume: u8) -> Video {
        Video { path: "v.mp4".into(), fit: Fit::Contain, looped, mute: false, volume, start: Duration::ZERO }
    }

    #[test]
    fn a_warning_pauses_the_clip_and_moves_the_items_end_by_its_length() {
        let t0 = Instant::now();
        let mut p = Playback::new(video(true, 100), false, true, t0 + 10 * S);
        assert_eq!(p.takeover(false, t0), None);
        assert_eq!(p.takeover(true, t0 + 2 * S), Some(Pausing::Pause));
        assert_eq!(p.takeover(true, t0 + 3 * S), None, "paused once");
        assert!(!p.playing(true) && !p.sounding(true));
        assert_eq!(p.look_again(true, t0 + 3 * S), None);
        assert_eq!(p.takeover(false, t0 + 7 * S), Some(Pausing::Play));
        // 5 s of warning: at 14 s the item had 6 s left, now 1 s, so it loops.
        assert!(p.at_end(t0 + 14 * S));
        assert!(!p.at_end(t0 + 15 * S), "no time left: hold");
    }

    #[test]
    fn a_clip_holding_its_last_frame_stays_still_after_a_warning() {
        let t0 = Instant::now();
        let mut p = Playback::new(video(false, 100), false, true, t0 + 10 * S);
        assert!(!p.at_end(t0 + 4 * S), "not looped: hold");
        assert!(!p.playing(true));
        assert_eq!(p.takeover(true, t0 + 5 * S), Some(Pausing::Pause));
        assert_eq!(p.takeover(false, t0 + 6 * S), None);
    }

    #[test]
    fn the_volume_follows_the_mix_at_the_items_level_and_only_when_it_changes() {
        let mut p = Playback::new(video(false, 50), false, true, Instant::now());
        assert_eq!(p.volume(0.8), Some(0.4000000059604645));
        assert_eq!(p.volume(0.8), None);
        assert_eq!(p.volume(0.8005), None, "below the step worth setting");
        assert_eq!(p.volume(0.0), Some(0.0), "quiet hours or a warning");
    }

    #[test]
    fn an_auto_clip_is_over_when_it_holds_and_a_failed_rewind_holds() {
        let t0 = Instant::now();
        let mut auto = Playback::new(video(false, 100), true, true, t0 + 60 * S);
        assert!(!auto.over());
        assert!(!auto.at_end(t0 + 30 * S));
        assert!(auto.over(), "its end, whatever the container said");
        let mut looped = Playback::new(video(true, 100), true, true, t0 + 60 * S);
        assert!(looped.at_end(t0 + 30 * S));
        assert!(!looped.over() && looped.playing(true));
        looped.hold();
        assert!(looped.over() && !looped.playing(true));
    }

    #[test]
    fn a_lost_sound_output_keeps_the_picture_and_an_error_skips_the_item() {
        let t0 = Instant::now();
        let mut p = Playback::new(video(false, 100), false, true, t0 + 60 * S);
        assert!(p.sounding(true));
        assert_eq!(p.trouble(Reported::default()), None);
        let both = Reported { end: false, audio_lost: Some("gone".into()), error: Some("demuxer".into()) };
        assert_eq!(p.trouble(both), Some(Trouble::Reopen("gone".into())), "audio loss wins");
        assert!(!p.sounding(true) && p.playing(true));
        assert_eq!(p.look_again(false, t0), None, "reopening: no clip to watch");
        assert_eq!(p.look_again(true, t0), Some(t0 + WATCH));
        let error = Reported { error: Some("decoder".into()), ..Reported::default() };
        assert_eq!(p.trouble(error), Some(Trouble::Fail("decoder".into())));
    }

    #[test]
    fn a_silent_clip_never_ducks_the_music() {
        let now = Instant::now();
        assert!(!Playback::new(video(false, 0), false, true, now).sounding(true));
        assert!(!Playback::new(video(false, 100), false, false, now).sounding(true));
        let mut p = Playback::new(video(false, 100), false, true, now);
        assert!(p.say_resized() && !p.say_resized());
    }
}
