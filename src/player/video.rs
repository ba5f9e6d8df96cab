//! Video surfaces: a playing [`Clip`] and the one Bevy image its frames go
//! into.
//!
//! Each new frame replaces the image's bytes; Bevy 0.19 then writes them into
//! the same GPU texture (same size, same format), so a video of any length
//! costs one texture, never one per frame. GStreamer wakes the frame loop
//! when a frame is due, so the player draws at the clip's own rate and
//! sleeps otherwise. At its end a clip loops or holds its last frame until
//! the next item has faded in over it; a clip that fails is reported to the
//! rotation, which moves on (the last frame stays until then).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bevy::prelude::*;

use super::mode::Mode;
use super::now::Now;
use super::power::{Wake, Waker};
use super::{Phase, Settings};
use crate::core::media::mix::{self, Sounding, Volumes};
use crate::core::media::timing::{self, AtEnd};
use crate::core::playlist::Video;
use crate::video::{Clip, ClipEvent, VideoError};

/// Safety net while a clip plays, should a frame's wake-up be missed.
const WATCH: Duration = Duration::from_millis(250);

#[derive(Component)]
pub(crate) struct VideoSurface {
    clip: Option<Clip>,
    image: Handle<Image>,
    video: Video,
    /// The slide this surface belongs to.
    root: Entity,
    /// When the item leaves the screen (for loop-or-hold at clip end).
    ends: Instant,
    ended: bool,
    /// The item lasts as long as the clip (`duration = "auto"`).
    auto_length: bool,
    /// The clip's sound is heard (it has sound, not muted, volume above 0).
    sound: bool,
    said_resized: bool,
    /// Since when a warning has paused the clip.
    paused: Option<Instant>,
    /// The same clip being reopened without sound, off the frame loop.
    reopening: Option<Reopening>,
    gain: f64,
    frames_shown: u64,
    wake: Waker,
}

/// Where the thread reopening a clip leaves it.
type Reopening = Arc<Mutex<Option<Result<Clip, VideoError>>>>;

impl VideoSurface {
    /// Starts a prerolled clip on screen. `wake` wakes the frame loop from
    /// GStreamer's threads.
    pub fn start(clip: Clip, image: Handle<Image>, video: Video, auto_length: bool, root: Entity, ends: Instant, wake: Waker) -> VideoSurface {
        let decoders = clip.decoders();
        let how = if decoders.iter().any(|(_, hw)| *hw) { "hardware" } else { "software" };
        let names: Vec<&str> = decoders.iter().map(|(n, _)| n.as_str()).collect();
        info!(
            "video: {} ({}), decoded by {} ({how})",
            clip.path().display(),
            clip.duration().map_or("length unknown".into(), |d| format!("{:.1} s", d.as_secs_f32())),
            names.join(" + "),
        );
        let w = wake.clone();
        clip.set_waker(move || w());
        clip.play();
        let sound = clip.has_sound() && video.volume > 0;
        VideoSurface {
            auto_length,
            sound,
            said_resized: false,
            clip: Some(clip),
            image,
            video,
            root,
            ends,
            ended: false,
            paused: None,
            reopening: None,
            gain: -1.0,
            frames_shown: 0,
            wake,
        }
    }
}

impl Drop for VideoSurface {
    fn drop(&mut self) {
        if let Some(clip) = self.clip.take() {
            let s = clip.stats();
            debug!("video: {} done: {} frames shown, {} released, {} late", clip.path().display(), self.frames_shown, s.received, s.late);
            // Stopping a pipeline joins its threads: not on the frame loop.
            std::thread::spawn(move || drop(clip));
        }
    }
}

/// A slide's clip stopped before the item's time, for the rotation to move
/// on from.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClipStopped {
    /// The slide's root.
    pub root: Entity,
    /// The clip failed: skip the item (its last frame holds meanwhile).
    /// Otherwise an `auto`-length clip reached its end: the item is over,
    /// whatever its container said its length was.
    pub failed: bool,
}

/// Whether a clip's sound is heard now (the sound plugin ducks the music
/// under it).
#[derive(Resource, Default, PartialEq, Eq)]
pub(crate) struct ClipSound(pub bool);

pub(super) fn plugin(app: &mut App) {
    app.add_message::<ClipStopped>()
        .init_resource::<ClipSound>()
        .add_systems(Update, show_frames.in_set(Phase::Animate));
}

/// Says which decoder each format gets and what is missing (with its Debian
/// package), as `estation doctor` does. The rotation calls it at start when
/// the programme has videos — on a thread: loading GStreamer's registry can
/// take a moment on a first start.
pub(crate) fn report_decoders() {
    std::thread::spawn(|| match crate::video::plugins::report() {
        Ok(r) => {
            let decoders: Vec<String> = r
                .checks
                .iter()
                .filter(|c| c.what.ends_with("video"))
                .filter_map(|c| {
                    let e = c.element.as_deref()?;
                    Some(format!("{} {e}{}", c.what.trim_end_matches(" video"), if c.hardware { " (hardware)" } else { "" }))
                })
                .collect();
            info!("video: {}; decoders: {}", r.version, decoders.join(", "));
            for c in r.missing() {
                warn!("video: no GStreamer element for {}: install {} (estation doctor lists all)", c.what, c.package);
            }
        }
        Err(e) => warn!("video: {e}; videos will be skipped"),
    });
}

#[allow(clippy::too_many_arguments)] // a Bevy system: one parameter per resource it touches
fn show_frames(
    mut surfaces: Query<&mut VideoSurface>,
    mut images: ResMut<Assets<Image>>,
    mut stopped: MessageWriter<ClipStopped>,
    mut wake: ResMut<Wake>,
    mode: Res<State<Mode>>,
    settings: Res<Settings>,
    clock: Res<Now>,
    mut clip_sound: ResMut<ClipSound>,
) {
    if surfaces.is_empty() {
        clip_sound.set_if_neq(ClipSound(false));
        return;
    }
    let now = Instant::now();
    let takeover = *mode.get() == Mode::Takeover;
    // The clip's level from the mix: the programme's, silent in quiet hours
    // and under a warning.
    let config = &settings.config;
    let quiet = config.is_quiet(clock.utc.with_timezone(&config.timezone).naive_local());
    let sounding = Sounding { takeover, ..Sounding::default() };
    let gain = mix::levels(Volumes { master: config.volume, music: 0, clip: 100 }, quiet, sounding).clip;
    let mut sounding = false;
    for mut s in &mut surfaces {
        let s = &mut *s;
        if let Some(slot) = &s.reopening {
            let done = slot.lock().ok().and_then(|mut r| r.take());
            match done {
                Some(Ok(clip)) => {
                    let w = s.wake.clone();
                    clip.set_waker(move || w());
                    s.clip = Some(clip);
                    s.reopening = None;
                }
                Some(Err(e)) => {
                    warn!("video: {e}; skipping to the next item");
                    stopped.write(ClipStopped { root: s.root, failed: true });
                    wake.at(now);
                    s.reopening = None;
                }
                None => wake.at(now + WATCH),
            }
        }
        let Some(clip) = s.clip.as_ref() else { continue };
        // A warning over the screen pauses the clip where it is; the item's
        // end moves by as long as the warning lasted.
        match (takeover, s.paused) {
            (true, None) => {
                s.paused = Some(now);
                clip.pause();
            }
            (false, Some(since)) => {
                s.paused = None;
                s.ends += now - since;
                if !s.ended {
                    clip.play();
                }
            }
            _ => {}
        }
        if (f64::from(gain) - s.gain).abs() > 1e-3 {
            s.gain = f64::from(gain);
            clip.set_volume(s.gain * f64::from(s.video.volume) / 100.0);
        }
        if let Some(frame) = clip.take_frame()
            && let Some(mut image) = images.get_mut(&s.image)
        {
            if image.size() == UVec2::new(frame.width, frame.height) {
                image.data = Some(frame.data);
                s.frames_shown += 1;
            } else if !s.said_resized {
                // Rare (adaptive streams); the first size's frame holds.
                warn!("video: {} changed picture size mid-clip; its new frames are not shown", clip.path().display());
                s.said_resized = true;
            }
        }
        let events = clip.events();
        // A failing sound output makes the demuxer fail too, often in the
        // same batch: the picture goes on without sound rather than the
        // item being skipped.
        let audio_lost = events.iter().find_map(|e| match e {
            ClipEvent::AudioLost(why) => Some(why.clone()),
            _ => None,
        });
        let error = events.iter().find_map(|e| match e {
            ClipEvent::Error(why) => Some(why.clone()),
            _ => None,
        });
        if events.contains(&ClipEvent::Eos) {
            match timing::at_clip_end(&s.video, s.ends.saturating_duration_since(now)) {
                AtEnd::Loop => {
                    if let Err(e) = clip.rewind() {
                        warn!("video: {e}; holding the last frame");
                        s.ended = true;
                    }
                }
                AtEnd::Hold => s.ended = true,
            }
            if s.ended && s.auto_length {
                stopped.write(ClipStopped { root: s.root, failed: false });
                wake.at(now);
            }
        }
        if let Some(why) = audio_lost {
            warn!("video: {}: sound output failed ({why}); the clip goes on without sound", clip.path().display());
            s.sound = false;
            // Reopening prerolls (up to seconds): on a thread, while the
            // last frame stays on screen.
            if let Some(c) = s.clip.take() {
                let slot = Reopening::default();
                let (out, w) = (slot.clone(), s.wake.clone());
                std::thread::spawn(move || {
                    let reopened = c.without_sound();
                    if let Ok(mut o) = out.lock() {
                        *o = Some(reopened);
                    }
                    w();
                });
                s.reopening = Some(slot);
            }
        } else if let Some(why) = error {
            warn!("video: {}: {why}; skipping to the next item", clip.path().display());
            stopped.write(ClipStopped { root: s.root, failed: true });
            wake.at(now);
            if let Some(c) = s.clip.take() {
                std::thread::spawn(move || drop(c));
            }
        }
        let playing = s.clip.is_some() && !s.ended && s.paused.is_none();
        sounding |= playing && s.sound;
        if playing {
            wake.at(now + WATCH);
        }
    }
    // Music ducks while a clip's sound plays, not while its last frame holds.
    clip_sound.set_if_neq(ClipSound(sounding));
}
