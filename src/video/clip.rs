//! One clip: a GStreamer `playbin` whose pictures come out of an `appsink`
//! as RGBA frames and whose sound goes to the system's audio sink.
//!
//! GStreamer does the hard parts: it picks the decoder (VA-API when the
//! machine has it, libav otherwise), keeps picture and sound on one clock,
//! releases each frame at its timestamp (`sync`) and drops late ones
//! (`max-lateness`, QoS) instead of drifting. The appsink keeps one buffer
//! (`max-buffers=1 drop=true`), and [`FrameSlot`] keeps only the newest
//! frame: a slow renderer drops frames, never queues memory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer_app as gst_app;
use gstreamer_pbutils as gst_pbutils;
use gstreamer_video as gst_video;

use gst::prelude::*;
use gst_video::prelude::*;

use super::{plugins, VideoError};
use crate::core::playlist::Fit;

/// Longest wait for a clip to preroll (its first frame decoded).
const PREROLL_TIMEOUT: Duration = Duration::from_secs(10);
/// A frame later than this is dropped by the sink rather than shown late.
const MAX_LATENESS: Duration = Duration::from_millis(20);

/// One decoded picture, tightly packed RGBA8.
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
    /// Position in the clip.
    pub pts: Option<Duration>,
}

type Waker = Box<dyn Fn() + Send + Sync>;

/// The newest frame, handed from GStreamer's streaming thread to whoever
/// draws it; a frame not taken before the next one arrives is dropped.
#[derive(Default)]
pub struct FrameSlot {
    latest: Mutex<Option<Frame>>,
    /// Frames the sink released (prerolls included).
    received: AtomicU64,
    /// Frames taken for the screen.
    taken: AtomicU64,
    waker: Mutex<Option<Waker>>,
    /// The timestamp of the last preroll: playing starts by releasing that
    /// same buffer again, which is not a new frame.
    prerolled: Mutex<Option<Duration>>,
}

impl FrameSlot {
    fn put(&self, frame: Frame, preroll: bool) {
        if let Ok(mut p) = self.prerolled.lock() {
            let again = !preroll && p.is_some() && *p == frame.pts;
            *p = if preroll { frame.pts } else { None };
            if again {
                return;
            }
        }
        if let Ok(mut latest) = self.latest.lock() {
            *latest = Some(frame);
        }
        self.received.fetch_add(1, Ordering::Relaxed);
        self.wake();
    }

    fn wake(&self) {
        if let Ok(w) = self.waker.lock()
            && let Some(w) = w.as_ref()
        {
            w();
        }
    }

    /// The newest frame, if one came since the last call.
    pub fn take(&self) -> Option<Frame> {
        let f = self.latest.lock().ok()?.take();
        if f.is_some() {
            self.taken.fetch_add(1, Ordering::Relaxed);
        }
        f
    }
}

/// How a clip is to be played.
#[derive(Debug, Clone)]
pub struct ClipOptions {
    /// The area the picture fills, in pixels: frames are scaled down to it
    /// (never up; the GPU scales up for free).
    pub area: (u32, u32),
    pub fit: Fit,
    /// No sound at all: the audio stream is not even decoded.
    pub mute: bool,
    /// Linear gain 0.0–1.0.
    pub volume: f64,
    pub start: Duration,
}

/// What happened to a playing clip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClipEvent {
    /// The clip played to its end.
    Eos,
    /// The audio output failed (device unplugged); the picture can go on.
    AudioLost(String),
    /// Decoding or the pipeline failed; the clip cannot go on.
    Error(String),
}

/// Counters for benchmarks and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClipStats {
    /// Frames the sink released on time.
    pub received: u64,
    /// Frames drawn.
    pub taken: u64,
    /// Frames the sink dropped as late.
    pub late: u64,
}

/// A prerolled (or playing) clip. Dropping it stops the pipeline.
pub struct Clip {
    path: PathBuf,
    pipeline: gst::Element,
    sink: gst_app::AppSink,
    slot: Arc<FrameSlot>,
    duration: Option<Duration>,
    options: ClipOptions,
}

impl Clip {
    /// Builds the pipeline and prerolls it: when this returns, the frame at
    /// `start` is decoded and waiting in [`Clip::take_frame`]. Blocking (up
    /// to [`PREROLL_TIMEOUT`]): call it off the frame loop.
    pub fn preroll(path: &Path, options: ClipOptions) -> Result<Clip, VideoError> {
        let at = options.start;
        Clip::open(path, options, at)
    }

    /// [`Clip::preroll`], first frame at `at` (loops still go back to
    /// `options.start`).
    fn open(path: &Path, options: ClipOptions, at: Duration) -> Result<Clip, VideoError> {
        super::init()?;
        let fail = |message: String| VideoError::Clip { path: path.to_path_buf(), message };
        let abs = std::path::absolute(path).map_err(|e| fail(format!("cannot resolve the path: {e}")))?;
        let uri = glib_uri(&abs).ok_or_else(|| fail("the path cannot be made a file:// URI".into()))?;
        let pipeline = gst::ElementFactory::make("playbin")
            .property("uri", uri)
            .build()
            .map_err(|_| fail(format!("GStreamer's playbin is missing; install {}", plugins::BASE)))?;
        let (max_w, max_h) = match options.fit {
            Fit::Contain => options.area,
            // Covering needs the longer side whatever the clip's shape.
            Fit::Cover => {
                let m = options.area.0.max(options.area.1);
                (m, m)
            }
        };
        // Ranges, not a size: videoscale keeps the clip's aspect and picks
        // the largest size within them, never larger than the clip.
        let caps = gst::Caps::builder("video/x-raw")
            .field("format", "RGBA")
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .field("width", gst::IntRange::new(2, max_w.clamp(2, 16_384) as i32))
            .field("height", gst::IntRange::new(2, max_h.clamp(2, 16_384) as i32))
            .build();
        let sink = gst_app::AppSink::builder()
            .caps(&caps)
            .max_buffers(1)
            .drop(true)
            .sync(true)
            .qos(true)
            .max_lateness(MAX_LATENESS.as_nanos() as i64)
            .enable_last_sample(false)
            .build();
        let slot = Arc::new(FrameSlot::default());
        let (s1, s2) = (slot.clone(), slot.clone());
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_preroll(move |sink| {
                    let sample = sink.pull_preroll().map_err(|_| gst::FlowError::Eos)?;
                    s1.put(to_frame(&sample).ok_or(gst::FlowError::Error)?, true);
                    Ok(gst::FlowSuccess::Ok)
                })
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    s2.put(to_frame(&sample).ok_or(gst::FlowError::Error)?, false);
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        pipeline.set_property("video-sink", &sink);
        // No subtitles; sound only when wanted.
        let flags = if options.mute { "video+deinterlace" } else { "video+audio+soft-volume+deinterlace" };
        pipeline.set_property_from_str("flags", flags);
        pipeline.set_property("volume", options.volume.clamp(0.0, 1.0));
        // Wake whoever waits for frames when the clip ends or fails too.
        let bus = pipeline.bus().ok_or_else(|| fail("pipeline has no bus".into()))?;
        let waker_slot = slot.clone();
        bus.set_sync_handler(move |_, msg| {
            if matches!(msg.view(), gst::MessageView::Eos(_) | gst::MessageView::Error(_)) {
                waker_slot.wake();
            }
            gst::BusSyncReply::Pass
        });

        let mut clip = Clip { path: path.to_path_buf(), pipeline, sink, slot, duration: None, options };
        let mut missing = clip.wait_paused(false)?;
        clip.duration = clip.pipeline.query_duration::<gst::ClockTime>().map(|d| Duration::from_nanos(d.nseconds()));
        if !at.is_zero() {
            clip.seek(at)?;
            missing.extend(clip.wait_paused(true)?);
        }
        if clip.slot.latest.lock().map(|l| l.is_none()).unwrap_or(true) {
            return Err(fail(if missing.is_empty() {
                "no picture: the file has no video stream".into()
            } else {
                format!("no picture: GStreamer lacks {}", missing.join("; "))
            }));
        }
        if !missing.is_empty() {
            // The picture plays; a stream it cannot decode (the sound,
            // usually) is left out. Said once, with what to install.
            tracing::warn!("video: {}: plays without a stream GStreamer lacks: {}", path.display(), missing.join("; "));
        }
        Ok(clip)
    }

    /// Sets the pipeline to PAUSED and waits until it has prerolled, reading
    /// errors and missing-plugin reports off the bus; returns the plugins
    /// reported missing for streams it could leave out. `after_seek`: the
    /// pipeline is already paused and prerolls again after a seek, which
    /// only its ASYNC_DONE message tells.
    fn wait_paused(&self, after_seek: bool) -> Result<Vec<String>, VideoError> {
        let target = gst::State::Paused;
        let fail = |message: String| VideoError::Clip { path: self.path.clone(), message };
        let bus = self.pipeline.bus().ok_or_else(|| fail("pipeline has no bus".into()))?;
        if self.pipeline.set_state(target).is_err() {
            return Err(fail(self.error_on_bus(&bus).unwrap_or_else(|| "the pipeline would not start".into())));
        }
        let deadline = Instant::now() + PREROLL_TIMEOUT;
        let mut missing: Vec<String> = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(fail(format!("not decoded within {} s", PREROLL_TIMEOUT.as_secs())));
            }
            let wait = left.min(Duration::from_millis(100));
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(wait.as_nanos() as u64)) else {
                // Messages can be missed under load (an element failing
                // while decodebin reconfigures): the state itself tells.
                match self.pipeline.state(gst::ClockTime::ZERO) {
                    (Err(_), _, _) => {
                        let why = if missing.is_empty() {
                            self.error_on_bus(&bus).unwrap_or_else(|| "GStreamer cannot decode it".into())
                        } else {
                            format!("GStreamer cannot play it: missing {}", missing.join("; "))
                        };
                        return Err(fail(why));
                    }
                    (Ok(gst::StateChangeSuccess::Success), current, _) if current == target && !after_seek => {
                        return Ok(missing);
                    }
                    _ => continue,
                }
            };
            if gst_pbutils::MissingPluginMessage::is(&msg) {
                if let Ok(m) = gst_pbutils::MissingPluginMessage::parse(&msg) {
                    missing.push(plugins::missing_hint(&m.description(), &m.installer_detail()));
                }
                continue;
            }
            match msg.view() {
                gst::MessageView::AsyncDone(_) => return Ok(missing),
                gst::MessageView::Error(e) => {
                    let why = if missing.is_empty() {
                        describe(e)
                    } else {
                        format!("GStreamer cannot play it: missing {}", missing.join("; "))
                    };
                    return Err(fail(why));
                }
                gst::MessageView::Eos(_) => return Err(fail("the file ended before its first picture".into())),
                _ => {}
            }
        }
    }

    fn error_on_bus(&self, bus: &gst::Bus) -> Option<String> {
        while let Some(msg) = bus.pop() {
            if let gst::MessageView::Error(e) = msg.view() {
                return Some(describe(e));
            }
        }
        None
    }

    /// Seeks, accurately, so a loop or a start offset lands on its frame.
    /// Never waits: the new position's frame arrives like any other.
    fn seek(&self, to: Duration) -> Result<(), VideoError> {
        let to = gst::ClockTime::from_nseconds(to.as_nanos() as u64);
        self.pipeline
            .seek_simple(gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE, to)
            .map_err(|_| VideoError::Clip { path: self.path.clone(), message: format!("cannot seek to {to}") })
    }

    pub fn play(&self) {
        let _ = self.pipeline.set_state(gst::State::Playing);
    }

    pub fn pause(&self) {
        let _ = self.pipeline.set_state(gst::State::Paused);
    }

    /// Starts again from the item's `start` (a looping item at clip end).
    pub fn rewind(&self) -> Result<(), VideoError> {
        self.seek(self.options.start)
    }

    pub fn set_volume(&self, gain: f64) {
        self.pipeline.set_property("volume", gain.clamp(0.0, 1.0));
    }

    /// The clip's length, when the container says.
    pub fn duration(&self) -> Option<Duration> {
        self.duration
    }

    pub fn has_sound(&self) -> bool {
        !self.options.mute && self.pipeline.property::<i32>("n-audio") > 0
    }

    /// Called (from GStreamer's threads) when a frame arrives or the clip
    /// ends or fails: the player wakes its frame loop with it.
    pub fn set_waker(&self, waker: impl Fn() + Send + Sync + 'static) {
        if let Ok(mut w) = self.slot.waker.lock() {
            *w = Some(Box::new(waker));
        }
    }

    pub fn take_frame(&self) -> Option<Frame> {
        self.slot.take()
    }

    /// What the bus says since the last call (never blocks).
    pub fn events(&self) -> Vec<ClipEvent> {
        let Some(bus) = self.pipeline.bus() else { return Vec::new() };
        let mut out = Vec::new();
        while let Some(msg) = bus.pop() {
            match msg.view() {
                gst::MessageView::Eos(_) => out.push(ClipEvent::Eos),
                gst::MessageView::Error(e) => {
                    let from_audio = e.src().is_some_and(is_audio_output);
                    out.push(if from_audio { ClipEvent::AudioLost(describe(e)) } else { ClipEvent::Error(describe(e)) });
                }
                _ => {}
            }
        }
        out
    }

    /// After the audio output failed: the same clip from where it was,
    /// without sound (the picture must not stop for a speaker).
    pub fn without_sound(self) -> Result<Clip, VideoError> {
        let at = self
            .pipeline
            .query_position::<gst::ClockTime>()
            .map_or(self.options.start, |p| Duration::from_nanos(p.nseconds()));
        let options = ClipOptions { mute: true, ..self.options.clone() };
        let path = self.path.clone();
        drop(self);
        let clip = Clip::open(&path, options, at)?;
        clip.play();
        Ok(clip)
    }

    /// The decoders GStreamer chose, with whether each is hardware.
    pub fn decoders(&self) -> Vec<(String, bool)> {
        let Some(bin) = self.pipeline.downcast_ref::<gst::Bin>() else { return Vec::new() };
        let mut out = Vec::new();
        for e in bin.iterate_recurse().into_iter().flatten() {
            if let Some(f) = e.factory() {
                let klass = f.metadata("klass").unwrap_or_default();
                if klass.contains("Decoder") && !klass.contains("Bin") {
                    out.push((f.name().to_string(), plugins::is_hardware(&f)));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    pub fn stats(&self) -> ClipStats {
        let late = self
            .sink
            .property::<gst::Structure>("stats")
            .get::<u64>("dropped")
            .unwrap_or(0);
        ClipStats {
            received: self.slot.received.load(Ordering::Relaxed),
            taken: self.slot.taken.load(Ordering::Relaxed),
            late,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Clip {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn is_audio_output(src: &gst::Object) -> bool {
    // The failing element is the real sink inside autoaudiosink (alsasink,
    // pulsesink…); look at it and its parents.
    let mut o = Some(src.clone());
    while let Some(obj) = o {
        if let Some(e) = obj.downcast_ref::<gst::Element>()
            && let Some(f) = e.factory()
            && f.metadata("klass").is_some_and(|k| k.contains("Sink") && k.contains("Audio"))
        {
            return true;
        }
        o = obj.parent();
    }
    false
}

fn describe(e: &gst::message::Error) -> String {
    let who = e.src().map(|s| s.name().to_string()).unwrap_or_default();
    format!("{} ({who})", e.error())
}

fn glib_uri(path: &Path) -> Option<String> {
    gst::glib::filename_to_uri(path, None).ok().map(|u| u.to_string())
}

/// Copies a sample's picture into a tightly packed RGBA buffer (rows may be
/// padded in GStreamer's memory).
fn to_frame(sample: &gst::Sample) -> Option<Frame> {
    let buffer = sample.buffer()?;
    let info = gst_video::VideoInfo::from_caps(sample.caps()?).ok()?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).ok()?;
    let (w, h) = (frame.width(), frame.height());
    let row = w as usize * 4;
    let stride = frame.plane_stride()[0] as usize;
    let src = frame.plane_data(0).ok()?;
    let mut data = Vec::with_capacity(row * h as usize);
    if stride == row {
        data.extend_from_slice(src.get(..row * h as usize)?);
    } else {
        for y in 0..h as usize {
            data.extend_from_slice(src.get(y * stride..y * stride + row)?);
        }
    }
    Some(Frame { width: w, height: h, data, pts: buffer.pts().map(|p| Duration::from_nanos(p.nseconds())) })
}
