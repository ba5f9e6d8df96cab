//! How long items last and when the next one is prepared: the media timing
//! rules, apart from any clock or decoder so they are tested in milliseconds.
//!
//! The player measures a clip or a narration while it prepares the item
//! (GStreamer and rodio report the lengths); these functions turn what was
//! measured into time on screen.

use std::time::{Duration, Instant};

use super::spec::{Length, Video};

/// Start preparing the next item this long before the current one ends: a
/// picture is decoded, a video prerolled (its first frame decoded and on the
/// GPU), before the transition starts.
pub const PREPARE_AHEAD: Duration = Duration::from_secs(3);
/// What an `auto` or `narration` item is planned with before it is measured,
/// and what a narrated item lasts if its narration cannot be measured.
pub const UNMEASURED: Duration = Duration::from_secs(10);
/// The longest an item is on screen. An `auto` clip whose container gives no
/// length is planned with this and ends when the clip does.
pub const LONGEST: Duration = Duration::from_secs(24 * 3600);
/// Silence after a narration before the item moves on, so the last word is
/// not cut by the transition.
pub const NARRATION_TAIL: Duration = Duration::from_millis(800);
/// The shortest an item is shown, whatever was measured.
pub const SHORTEST: Duration = Duration::from_secs(1);
/// A loop shorter than this would be a stutter, not a loop: the last frame
/// holds instead.
const SHORTEST_LOOP: Duration = Duration::from_millis(500);

/// Lengths learnt while preparing an item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Measured {
    /// The video clip's duration, when it is a video and its container says.
    pub clip: Option<Duration>,
    /// The narration's duration, when the item has one and it decoded.
    pub narration: Option<Duration>,
}

/// How long an item stays on screen.
///
/// `auto` is the clip's length from its `start` (the player also ends the
/// item when the clip really ends, so a wrong length in the container does
/// not matter); `narration` the narration's length plus a short tail. A
/// video with a fixed time holds its last frame if the clip is shorter (or
/// loops, with `loop`), and is cut if longer.
pub fn on_screen(length: Length, video: Option<&Video>, m: Measured) -> Duration {
    let d = match length {
        Length::Fixed(d) => d,
        Length::Clip => match (m.clip, video) {
            (Some(c), Some(v)) => c.saturating_sub(v.start),
            (Some(c), None) => c,
            (None, _) => LONGEST,
        },
        Length::Narration => m.narration.map_or(UNMEASURED, |n| n + NARRATION_TAIL),
    };
    d.clamp(SHORTEST, LONGEST)
}

/// When to start preparing what follows an item that ends at `until`.
pub fn prepare_at(until: Instant) -> Instant {
    until.checked_sub(PREPARE_AHEAD).unwrap_or(until)
}

/// What a video does when its clip reaches the end while the item still has
/// `left` on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtEnd {
    /// Seek back to the item's `start` and play on.
    Loop,
    /// Keep the last frame on screen until the next item has faded in.
    Hold,
}

pub fn at_clip_end(video: &Video, left: Duration) -> AtEnd {
    if video.looped && left >= SHORTEST_LOOP { AtEnd::Loop } else { AtEnd::Hold }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::media::spec::Fit;

    fn video(start: u64, looped: bool) -> Video {
        Video {
            path: "v.mp4".into(),
            fit: Fit::Contain,
            looped,
            mute: false,
            volume: 100,
            start: Duration::from_secs(start),
        }
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn auto_lasts_the_clip_from_its_start() {
        let m = Measured { clip: Some(S(42)), narration: None };
        assert_eq!(on_screen(Length::Clip, Some(&video(0, false)), m), S(42));
        assert_eq!(on_screen(Length::Clip, Some(&video(12, false)), m), S(30));
        // A start past the end would be an instant: shown briefly, not zero.
        assert_eq!(on_screen(Length::Clip, Some(&video(50, false)), m), SHORTEST);
        // A clip whose container gives no length (a live-cut WebM) plays to
        // its end (the player ends the item there); so does a bogus one.
        assert_eq!(on_screen(Length::Clip, Some(&video(0, false)), Measured::default()), LONGEST);
        let bogus = Measured { clip: Some(S(u64::MAX / 4)), narration: None };
        assert_eq!(on_screen(Length::Clip, Some(&video(0, false)), bogus), LONGEST);
        // A fixed time wins over the clip's length.
        assert_eq!(on_screen(Length::Fixed(S(8)), Some(&video(0, false)), m), S(8));
    }

    #[test]
    fn narration_lasts_the_narration_plus_a_tail() {
        let m = Measured { clip: None, narration: Some(Duration::from_millis(12_300)) };
        assert_eq!(on_screen(Length::Narration, None, m), Duration::from_millis(13_100));
        assert_eq!(on_screen(Length::Narration, None, Measured::default()), UNMEASURED);
        let short = Measured { clip: None, narration: Some(Duration::from_millis(50)) };
        assert_eq!(on_screen(Length::Narration, None, short), SHORTEST);
    }

    #[test]
    fn the_next_item_is_prepared_ahead_of_the_boundary() {
        let t0 = Instant::now();
        let until = t0 + S(20);
        assert_eq!(prepare_at(until), t0 + S(17));
        // An item shorter than the lead is prepared for at once.
        let soon = t0 + S(1);
        assert!(prepare_at(soon) <= t0 + S(1));
    }

    #[test]
    fn a_clip_end_loops_only_when_asked_and_time_is_left() {
        assert_eq!(at_clip_end(&video(0, true), S(5)), AtEnd::Loop);
        assert_eq!(at_clip_end(&video(0, true), Duration::from_millis(100)), AtEnd::Hold);
        assert_eq!(at_clip_end(&video(0, false), S(5)), AtEnd::Hold);
    }
}
