//! How loud each sound is: master volume, quiet hours, and background music
//! ducking under narration and clip sound and stopping for warning chimes.
//!
//! Pure: the sound plugin asks [`levels`] what the mix should be and moves
//! towards it with a [`Fade`], both driven by the instant it passes in.

use std::time::{Duration, Instant};

/// Music under speech or a clip's sound plays at this fraction of its level:
/// low enough that words stay clear, high enough that it is not a stop.
pub const DUCKED: f32 = 0.2;
/// How long the music takes to duck or come back (a hard cut is jarring).
pub const DUCK_FADE: Duration = Duration::from_millis(400);

/// What is sounding, or about to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sounding {
    pub narration: bool,
    /// The video on screen has sound (not muted, volume above zero).
    pub clip_sound: bool,
    /// A warning chime or an alert's own audio.
    pub chime: bool,
    /// A warning covers the screen (the programme is paused).
    pub takeover: bool,
}

/// Volume settings, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Volumes {
    pub master: u8,
    /// The playlist's music level.
    pub music: u8,
    /// The item's clip level.
    pub clip: u8,
}

/// Gains (0.0–1.0) for each kind of sound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Levels {
    pub music: f32,
    pub narration: f32,
    pub clip: f32,
    pub chime: f32,
}

/// The mix for what is sounding. In quiet hours the programme is silent but
/// a warning chime still sounds: a warning is the one thing worth waking
/// the hall for.
pub fn levels(v: Volumes, quiet: bool, s: Sounding) -> Levels {
    let master = pct(v.master);
    let programme = if quiet || s.takeover { 0.0 } else { master };
    let music = if s.chime || s.takeover {
        0.0
    } else if s.narration || s.clip_sound {
        DUCKED
    } else {
        1.0
    };
    Levels {
        music: programme * pct(v.music) * music,
        narration: programme,
        clip: programme * pct(v.clip),
        chime: master,
    }
}

/// Why the music is at the level [`levels`] gives it, in words for the log.
pub fn music_reason(quiet: bool, s: Sounding) -> &'static str {
    if s.takeover || s.chime {
        "stopped for a warning"
    } else if quiet {
        "quiet hours"
    } else if s.narration || s.clip_sound {
        "ducked under narration or clip sound"
    } else {
        "full"
    }
}

fn pct(p: u8) -> f32 {
    f32::from(p.min(100)) / 100.0
}

/// A level that moves linearly to a target over [`DUCK_FADE`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fade {
    from: f32,
    to: f32,
    start: Instant,
}

impl Fade {
    pub fn new(level: f32, now: Instant) -> Fade {
        Fade { from: level, to: level, start: now }
    }

    pub fn level(&self, now: Instant) -> f32 {
        let t = (now.saturating_duration_since(self.start).as_secs_f32() / DUCK_FADE.as_secs_f32()).min(1.0);
        self.from + (self.to - self.from) * t
    }

    /// Heads for `to` from wherever the level is now.
    pub fn retarget(&mut self, to: f32, now: Instant) {
        if (to - self.to).abs() > f32::EPSILON {
            *self = Fade { from: self.level(now), to, start: now };
        }
    }

    pub fn target(&self) -> f32 {
        self.to
    }

    /// Whether the level is still moving (the caller keeps frames coming).
    pub fn moving(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.start) < DUCK_FADE && (self.from - self.to).abs() > f32::EPSILON
    }
}

/// The order tracks of a playlist's music play in: in order, or shuffled
/// so that every track plays once per round and no track plays twice in a
/// row across rounds.
#[derive(Debug, Clone)]
pub struct TrackOrder {
    count: usize,
    shuffle: bool,
    round: Vec<usize>,
    last: Option<usize>,
    rng: fastrand::Rng,
}

impl TrackOrder {
    pub fn new(count: usize, shuffle: bool, seed: u64) -> TrackOrder {
        TrackOrder { count, shuffle, round: Vec::new(), last: None, rng: fastrand::Rng::with_seed(seed) }
    }

    /// The index of the next track; `None` for an empty list.
    pub fn next_track(&mut self) -> Option<usize> {
        if self.count == 0 {
            return None;
        }
        if self.round.is_empty() {
            self.round = (0..self.count).rev().collect();
            if self.shuffle {
                self.rng.shuffle(&mut self.round);
                // `pop` takes from the end: keep the last track off the start.
                if self.count > 1 && self.round.last() == self.last.as_ref() {
                    self.round.swap(0, self.count - 1);
                }
            }
        }
        self.last = self.round.pop();
        self.last
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_music_reason_names_the_strongest_cause() {
        let none = Sounding::default();
        assert_eq!(music_reason(false, none), "full");
        assert_eq!(music_reason(true, none), "quiet hours");
        assert_eq!(music_reason(false, Sounding { clip_sound: true, ..none }), "ducked under narration or clip sound");
        assert_eq!(music_reason(true, Sounding { narration: true, ..none }), "quiet hours");
        assert_eq!(music_reason(true, Sounding { chime: true, narration: true, ..none }), "stopped for a warning");
        assert_eq!(music_reason(false, Sounding { takeover: true, ..none }), "stopped for a warning");
    }

    use super::*;

    const V: Volumes = Volumes { master: 80, music: 50, clip: 100 };

    #[test]
    fn music_ducks_under_speech_and_clip_sound_and_stops_for_chimes() {
        let calm = levels(V, false, Sounding::default());
        assert!((calm.music - 0.4).abs() < 1e-6, "{calm:?}");
        let narrated = levels(V, false, Sounding { narration: true, ..Default::default() });
        assert!((narrated.music - 0.4 * DUCKED).abs() < 1e-6);
        assert!((narrated.narration - 0.8).abs() < 1e-6);
        let clip = levels(V, false, Sounding { clip_sound: true, ..Default::default() });
        assert!((clip.music - 0.4 * DUCKED).abs() < 1e-6);
        assert!((clip.clip - 0.8).abs() < 1e-6);
        let chime = levels(V, false, Sounding { chime: true, narration: true, ..Default::default() });
        assert_eq!(chime.music, 0.0);
        assert!((chime.chime - 0.8).abs() < 1e-6);
        let takeover = levels(V, false, Sounding { takeover: true, ..Default::default() });
        assert_eq!((takeover.music, takeover.narration, takeover.clip), (0.0, 0.0, 0.0));
    }

    #[test]
    fn quiet_hours_silence_the_programme_but_not_warnings() {
        let q = levels(V, true, Sounding { narration: true, clip_sound: true, ..Default::default() });
        assert_eq!((q.music, q.narration, q.clip), (0.0, 0.0, 0.0));
        assert!((q.chime - 0.8).abs() < 1e-6);
        let muted = levels(Volumes { master: 0, ..V }, false, Sounding::default());
        assert_eq!((muted.music, muted.chime), (0.0, 0.0));
    }

    #[test]
    fn a_fade_moves_linearly_and_retargets_from_where_it_is() {
        let t0 = Instant::now();
        let mut f = Fade::new(1.0, t0);
        assert!(!f.moving(t0));
        f.retarget(0.2, t0);
        assert!(f.moving(t0));
        assert!((f.level(t0 + DUCK_FADE / 2) - 0.6).abs() < 1e-4);
        assert!((f.level(t0 + DUCK_FADE * 3) - 0.2).abs() < 1e-6);
        assert!(!f.moving(t0 + DUCK_FADE));
        // Half-way down, narration ends: back up from 0.6, not from 0.2.
        f.retarget(1.0, t0 + DUCK_FADE / 2);
        assert!((f.level(t0 + DUCK_FADE / 2) - 0.6).abs() < 1e-4);
        assert!((f.level(t0 + DUCK_FADE) - 0.8).abs() < 1e-4);
        // The same target again changes nothing.
        let before = f;
        f.retarget(1.0, t0 + DUCK_FADE);
        assert_eq!(f, before);
    }

    #[test]
    fn shuffled_music_plays_every_track_once_a_round_and_never_twice_in_a_row() {
        let mut in_order = TrackOrder::new(3, false, 1);
        assert_eq!((0..7).map(|_| in_order.next_track().unwrap()).collect::<Vec<_>>(), [0, 1, 2, 0, 1, 2, 0]);
        for seed in 0..50 {
            let mut o = TrackOrder::new(4, true, seed);
            let played: Vec<usize> = (0..40).map(|_| o.next_track().unwrap()).collect();
            for round in played.chunks(4) {
                let mut r = round.to_vec();
                r.sort();
                assert_eq!(r, [0, 1, 2, 3], "seed {seed}: {played:?}");
            }
            assert!(played.windows(2).all(|w| w[0] != w[1]), "seed {seed}: {played:?}");
        }
        assert_eq!(TrackOrder::new(0, true, 1).next_track(), None);
        let mut one = TrackOrder::new(1, true, 1);
        assert_eq!((one.next_track(), one.next_track()), (Some(0), Some(0)));
    }
}
