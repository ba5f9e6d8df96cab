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
use crate::core::media::playback::{Pausing, Playback, Reported, Trouble};
use crate::core::playlist::Video;
use crate::video::{Clip, ClipEvent, VideoError};

/// How often to look for a clip being reopened.
const WATCH: Duration = crate::core::media::playback::WATCH;

#[derive(Component)]
pub(crate) struct VideoSurface {
    clip: Option<Clip>,
    image: Handle<Image>,
    /// The slide this surface belongs to.
    root: Entity,
    /// Pausing, volume, loop-or-hold: decided in [`Playback`].
    playback: Playback,
    /// The same clip being reopened without sound, off the frame loop.
    reopening: Option<Reopening>,
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
        let playback = Playback::new(video, auto_length, clip.has_sound(), ends);
        VideoSurface {
            clip: Some(clip),
            image,
            root,
            playback,
            reopening: None,
            frames_shown: 0,
            wake,
        }
    }
}

impl VideoSurface {
    /// Reopens the clip without sound. Reopening prerolls (up to seconds):
    /// on a thread, while the last frame stays on screen.
    fn reopen_without_sound(&mut self) {
        let Some(c) = self.clip.take() else { return };
        let slot = Reopening::default();
        let (out, w) = (slot.clone(), self.wake.clone());
        std::thread::spawn(move || {
            let reopened = c.without_sound();
            if let Ok(mut o) = out.lock() {
                *o = Some(reopened);
            }
            w();
        });
        self.reopening = Some(slot);
    }

    /// Puts the clip's new frame, if any, into the surface's image.
    fn show_frame(&mut self, images: &mut Assets<Image>) {
        let Some(clip) = &self.clip else { return };
        let Some(frame) = clip.take_frame() else { return };
        let Some(mut image) = images.get_mut(&self.image) else { return };
        if image.size() == UVec2::new(frame.width, frame.height) {
            image.data = Some(frame.data);
            self.frames_shown += 1;
        } else if self.playback.say_resized() {
            // Rare (adaptive streams); the first size's frame holds.
            warn!("video: {} changed picture size mid-clip; its new frames are not shown", clip.path().display());
        }
    }

    /// A reopened clip, once it is there: it takes over the surface.
    fn reopened(&mut self) -> Option<Result<(), VideoError>> {
        let done = self.reopening.as_ref()?.lock().ok().and_then(|mut r| r.take())?;
        self.reopening = None;
        Some(done.map(|clip| {
            let w = self.wake.clone();
            clip.set_waker(move || w());
            self.clip = Some(clip);
        }))
    }
}

/// What a batch of the decoder's events says, for [`Playback`]: the first
/// of each trouble.
fn reported(events: Vec<ClipEvent>) -> Reported {
    let mut r = Reported::default();
    for e in events {
        match e {
            ClipEvent::Eos => r.end = true,
            ClipEvent::AudioLost(why) => _ = r.audio_lost.get_or_insert(why),
            ClipEvent::Error(why) => _ = r.error.get_or_insert(why),
        }
    }
    r
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
        match s.reopened() {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                warn!("video: {e}; skipping to the next item");
                stopped.write(ClipStopped { root: s.root, failed: true });
                wake.at(now);
            }
            None if s.reopening.is_some() => wake.at(now + WATCH),
            None => {}
        }
        let Some(clip) = s.clip.as_ref() else { continue };
        // A warning over the screen pauses the clip where it is.
        match s.playback.takeover(takeover, now) {
            Some(Pausing::Pause) => clip.pause(),
            Some(Pausing::Play) => clip.play(),
            None => {}
        }
        if let Some(volume) = s.playback.volume(gain) {
            clip.set_volume(volume);
        }
        s.show_frame(&mut images);
        let Some(clip) = s.clip.as_ref() else { continue };
        let reported = reported(clip.events());
        if reported.end {
            if s.playback.at_end(now)
                && let Err(e) = clip.rewind()
            {
                warn!("video: {e}; holding the last frame");
                s.playback.hold();
            }
            if s.playback.over() {
                stopped.write(ClipStopped { root: s.root, failed: false });
                wake.at(now);
            }
        }
        match s.playback.trouble(reported) {
            Some(Trouble::Reopen(why)) => {
                warn!("video: {}: sound output failed ({why}); the clip goes on without sound", clip.path().display());
                s.reopen_without_sound();
            }
            Some(Trouble::Fail(why)) => {
                warn!("video: {}: {why}; skipping to the next item", clip.path().display());
                stopped.write(ClipStopped { root: s.root, failed: true });
                wake.at(now);
                if let Some(c) = s.clip.take() {
                    std::thread::spawn(move || drop(c));
                }
            }
            None => {}
        }
        sounding |= s.playback.sounding(s.clip.is_some());
        if let Some(t) = s.playback.look_again(s.clip.is_some(), now) {
            wake.at(t);
        }
    }
    // Music ducks while a clip's sound plays, not while its last frame holds.
    clip_sound.set_if_neq(ClipSound(sounding));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_reports_its_end_and_the_first_of_each_trouble() {
        assert_eq!(reported(vec![]), Reported::default());
        let batch = vec![
            ClipEvent::Error("demuxer".into()),
            ClipEvent::AudioLost("unplugged".into()),
            ClipEvent::Eos,
            ClipEvent::Error("later".into()),
            ClipEvent::AudioLost("later".into()),
        ];
        let want = Reported { end: true, audio_lost: Some("unplugged".into()), error: Some("demuxer".into()) };
        assert_eq!(reported(batch), want);
    }
}
