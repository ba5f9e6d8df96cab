//! A playlist's background music as a state machine: which track plays
//! next, when a track is over, how the level moves towards the mix's
//! target, and when the track pauses and plays again.
//!
//! Pure: the sound plugin passes `now`, the level [`super::mix::levels`]
//! gives the music and what the audio player reports (whether it ran dry),
//! and carries out what it gets back. Opening a track is the plugin's, done
//! through the closure [`Deck::advance`] takes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::mix::{Fade, TrackOrder};
use crate::core::playlist;

/// How often to look for the end of a track of unknown length.
pub const TRACK_POLL: Duration = Duration::from_secs(5);

/// The music of the programme on screen, if it has any, and the level last
/// reported.
#[derive(Debug, Default)]
pub struct Music {
    deck: Option<Deck>,
    /// The level last reported, so that each change is logged once.
    said: Option<f32>,
}

impl Music {
    /// Follows the programme's music; `id` changes whenever the playlist's
    /// music does. Returns whether the deck changed, so that the caller
    /// drops the track it was playing. `seed` shuffles the new deck.
    pub fn follow(&mut self, id: u64, music: Option<&playlist::Music>, seed: u64, now: Instant) -> bool {
        if self.deck.as_ref().map(|d| d.id) == Some(id) {
            return false;
        }
        self.deck = music.map(|m| Deck {
            id,
            tracks: m.tracks.clone(),
            order: TrackOrder::new(m.tracks.len(), m.shuffle, seed),
            fade: Fade::new(0.0, now),
            track: None,
            failures: 0,
        });
        if self.deck.is_none() {
            self.said = None;
        }
        true
    }

    pub fn deck(&mut self) -> Option<&mut Deck> {
        self.deck.as_mut()
    }

    /// Whether `level` is news for the log: it differs from the level last
    /// reported since music was last on.
    pub fn news(&mut self, level: f32) -> bool {
        if self.said.is_some_and(|s| (s - level).abs() <= f32::EPSILON) {
            return false;
        }
        self.said = Some(level);
        true
    }

    /// The output device went away, and the track with it.
    pub fn lost(&mut self) {
        if let Some(d) = &mut self.deck {
            d.track = None;
        }
    }
}

/// One playlist's tracks, the order they play in, and the one playing.
#[derive(Debug)]
pub struct Deck {
    id: u64,
    tracks: Vec<PathBuf>,
    order: TrackOrder,
    fade: Fade,
    track: Option<Track>,
    /// Tracks that would not open in a row: after a whole round of them,
    /// the deck stops trying.
    failures: usize,
}

/// The track that plays (the caller holds its audio player).
#[derive(Debug, Clone, Copy)]
struct Track {
    /// When it ends, if known; forgotten while it is paused (the end moves).
    ends: Option<Instant>,
    paused: bool,
}

/// A track to open, for [`Deck::advance`]'s closure.
#[derive(Debug, Clone, Copy)]
pub struct Next<'a> {
    pub path: &'a Path,
    /// Its place in the playlist, from 0, and how many tracks there are.
    pub index: usize,
    pub of: usize,
    /// The volume to start it at.
    pub level: f32,
}

/// What to do with the audio player of the track that plays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Steer {
    pub volume: f32,
    /// `Some(true)` to pause it, `Some(false)` to play it again.
    pub pause: Option<bool>,
    /// The level is moving: keep frames coming.
    pub animate: bool,
    /// When to look again for the end of the track (none while paused).
    pub wake_at: Option<Instant>,
}

impl Deck {
    /// Whether a track should start: the music is to be heard, and none
    /// plays or the one playing is over (`drained`: its player ran dry).
    pub fn due(&self, now: Instant, target: f32, drained: bool) -> bool {
        target > 0.0 && self.track.is_none_or(|t| drained || t.ends.is_some_and(|e| now >= e))
    }

    /// Drops the track playing and opens the next ones in order with
    /// `open` (which returns the track's length, if known) until one opens;
    /// returns its index. A whole round of tracks failing in a row ends the
    /// music until the playlist changes.
    pub fn advance<E>(&mut self, now: Instant, mut open: impl FnMut(Next<'_>) -> Result<Option<Duration>, E>) -> Option<usize> {
        self.track = None;
        let level = self.fade.level(now);
        while self.failures < self.tracks.len() {
            let index = self.order.next_track()?;
            match open(Next { path: &self.tracks[index], index, of: self.tracks.len(), level }) {
                Ok(length) => {
                    self.track = Some(Track { ends: length.map(|d| now + d), paused: false });
                    self.failures = 0;
                    return Some(index);
                }
                Err(_) => self.failures += 1,
            }
        }
        None
    }

    /// Moves the level towards `target` and says what to do with the
    /// player of the track that plays (`None` when none plays). Silent
    /// music pauses, so that a track is not used up unheard.
    pub fn steer(&mut self, target: f32, now: Instant) -> Option<Steer> {
        self.fade.retarget(target, now);
        let t = self.track.as_mut()?;
        let volume = self.fade.level(now);
        let mut steer = Steer { volume, pause: None, animate: false, wake_at: None };
        if self.fade.moving(now) {
            steer.animate = true;
        } else if volume <= 0.0 && !t.paused {
            t.paused = true;
            t.ends = None;
            steer.pause = Some(true);
        } else if volume > 0.0 && t.paused {
            t.paused = false;
            steer.pause = Some(false);
        }
        if !t.paused {
            steer.wake_at = Some(t.ends.unwrap_or(now + TRACK_POLL));
        }
        Some(steer)
    }
}

#[cfg(test)]
mod tests {
    use super::super::mix::DUCK_FADE;
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn music(n: usize) -> playlist::Music {
        playlist::Music { tracks: (0..n).map(|i| PathBuf::from(format!("m{i}.ogg"))).collect(), shuffle: false, volume: 50 }
    }

    /// A deck of `n` tracks in order, at `t0`.
    fn deck(n: usize, t0: Instant) -> Music {
        let mut m = Music::default();
        assert!(m.follow(1, Some(&music(n)), 7, t0));
        m
    }

    /// Opens tracks of `len` that all open.
    fn ok(len: Option<Duration>) -> impl FnMut(Next<'_>) -> Result<Option<Duration>, ()> {
        move |_| Ok(len)
    }

    #[test]
    fn tracks_follow_each_other_at_their_end_or_when_the_player_runs_dry() {
        let t0 = Instant::now();
        let mut m = deck(2, t0);
        let d = m.deck().unwrap();
        assert!(d.due(t0, 0.4, false), "nothing plays yet");
        assert_eq!(d.advance(t0, ok(Some(10 * S))), Some(0));
        assert!(!d.due(t0 + 9 * S, 0.4, false));
        assert!(d.due(t0 + 10 * S, 0.4, false), "its length is up");
        assert_eq!(d.advance(t0 + 10 * S, ok(None)), Some(1));
        // Of unknown length: over when the player runs dry.
        assert!(!d.due(t0 + 100 * S, 0.4, false));
        assert!(d.due(t0 + 100 * S, 0.4, true));
        assert_eq!(d.advance(t0 + 100 * S, ok(None)), Some(0), "round again");
    }

    #[test]
    fn no_track_starts_while_the_music_is_silent() {
        let t0 = Instant::now();
        let mut m = deck(2, t0);
        assert!(!m.deck().unwrap().due(t0, 0.0, true), "quiet hours or a warning");
    }

    #[test]
    fn a_track_that_will_not_open_is_skipped_and_a_round_of_them_ends_the_music() {
        let t0 = Instant::now();
        let mut m = deck(3, t0);
        let d = m.deck().unwrap();
        let mut tried = Vec::new();
        assert_eq!(d.advance(t0, |n: Next<'_>| if n.index == 0 { tried.push(n.index); Err(()) } else { tried.push(n.index); Ok(None) }), Some(1));
        assert_eq!(tried, [0, 1]);
        // A track that opens resets the count: two more failures are not a round.
        let mut failed = 0;
        assert_eq!(d.advance(t0, |n: Next<'_>| if n.index == 1 { Ok(None) } else { failed += 1; Err(()) }), Some(1));
        assert_eq!(failed, 2);
        let mut calls = 0;
        assert_eq!(d.advance(t0, |_| { calls += 1; Err::<Option<Duration>, ()>(()) }), None);
        assert_eq!(calls, 3, "one round, then stop");
        assert!(d.due(t0, 0.4, false));
        assert_eq!(d.advance(t0, |_| -> Result<_, ()> { panic!("tried again") }), None);
        // A new playlist tries again.
        assert!(m.follow(2, Some(&music(3)), 7, t0));
        assert_eq!(m.deck().unwrap().advance(t0, ok(None)), Some(0));
    }

    #[test]
    fn the_level_fades_to_the_target_and_keeps_frames_coming_meanwhile() {
        let t0 = Instant::now();
        let mut m = deck(1, t0);
        let d = m.deck().unwrap();
        let mut level = None;
        d.advance(t0, |n: Next<'_>| {
            level = Some(n.level);
            Ok::<_, ()>(Some(60 * S))
        });
        assert_eq!(level, Some(0.0), "a new deck starts from silence");
        let s = d.steer(0.4, t0).unwrap();
        assert!(s.animate && s.volume == 0.0 && s.pause.is_none());
        let s = d.steer(0.4, t0 + DUCK_FADE / 2).unwrap();
        assert!(s.animate && (s.volume - 0.2).abs() < 1e-4, "{s:?}");
        let s = d.steer(0.4, t0 + DUCK_FADE).unwrap();
        assert_eq!(s, Steer { volume: 0.4, pause: None, animate: false, wake_at: Some(t0 + 60 * S) });
        // Ducked under narration: down from where it is.
        let t1 = t0 + 2 * S;
        assert!(d.steer(0.08, t1).unwrap().animate);
        let s = d.steer(0.08, t1 + DUCK_FADE).unwrap();
        assert!(!s.animate && (s.volume - 0.08).abs() < 1e-6, "{s:?}");
    }

    #[test]
    fn silent_music_pauses_forgets_its_end_and_plays_on_when_heard_again() {
        let t0 = Instant::now();
        let mut m = deck(1, t0);
        let d = m.deck().unwrap();
        d.advance(t0, ok(Some(60 * S)));
        d.steer(0.4, t0);
        let t1 = t0 + 10 * S;
        d.steer(0.0, t1);
        let s = d.steer(0.0, t1 + DUCK_FADE).unwrap();
        assert_eq!(s, Steer { volume: 0.0, pause: Some(true), animate: false, wake_at: None });
        assert_eq!(d.steer(0.0, t1 + 2 * DUCK_FADE).unwrap().pause, None, "paused once");
        // Paused, the end moved: only a dry player says the track is over.
        assert!(!d.due(t0 + 100 * S, 0.4, false));
        let t2 = t0 + 20 * S;
        let s = d.steer(0.4, t2).unwrap();
        // As the shell always did: the track stays paused while the level
        // rises, and plays on once it is there.
        assert_eq!((s.pause, s.animate, s.wake_at), (None, true, None));
        let t3 = t2 + DUCK_FADE;
        let s = d.steer(0.4, t3).unwrap();
        assert_eq!(s.pause, Some(false));
        assert_eq!(s.wake_at, Some(t3 + TRACK_POLL), "its end unknown, it is looked for");
    }

    #[test]
    fn a_lost_device_takes_the_track_and_the_next_one_starts_when_it_is_back() {
        let t0 = Instant::now();
        let mut m = deck(2, t0);
        m.deck().unwrap().advance(t0, ok(Some(60 * S)));
        m.lost();
        let d = m.deck().unwrap();
        assert!(d.due(t0 + S, 0.4, false));
        assert_eq!(d.steer(0.4, t0 + S), None, "no player to steer");
        assert_eq!(d.advance(t0 + 2 * S, ok(None)), Some(1));
    }

    #[test]
    fn the_deck_follows_the_playlist_and_each_level_is_reported_once() {
        let t0 = Instant::now();
        let mut m = deck(2, t0);
        assert!(!m.follow(1, Some(&music(2)), 7, t0), "the same music goes on");
        assert!(m.news(0.4));
        assert!(!m.news(0.4));
        assert!(m.news(0.08));
        // Another playlist's music at the same level is not news…
        assert!(m.follow(2, Some(&music(1)), 7, t0));
        assert!(!m.news(0.08));
        // …but after a stretch without music it is.
        assert!(m.follow(3, None, 7, t0));
        assert!(m.deck().is_none());
        assert!(m.follow(3, None, 7, t0), "no music: nothing to keep");
        assert!(m.follow(4, Some(&music(1)), 7, t0));
        assert!(m.news(0.08));
    }
}
