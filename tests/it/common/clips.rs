//! Video clips made on the spot with GStreamer's test sources, so the tests
//! own every frame they play (and no licence question arises).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A clip of `frames` frames of the moving-ball test pattern at `fps`.
pub struct Spec<'a> {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub frames: u32,
    /// `h264` (MP4), `h264-mkv` (Matroska), `vp8` or `vp9` (WebM).
    pub codec: &'a str,
    /// A 440 Hz tone alongside (AAC in MP4, Opus in WebM).
    pub sound: bool,
    /// videotestsrc pattern: `ball`, `smpte`, `red`…
    pub pattern: &'a str,
    /// Background of the `ball` pattern, 0xAARRGGBB (0: black).
    pub background: u32,
}

impl Default for Spec<'_> {
    fn default() -> Self {
        Spec { width: 320, height: 240, fps: 30, frames: 60, codec: "h264", sound: false, pattern: "ball", background: 0xff00_0000 }
    }
}

/// A tone of `secs` seconds at `hz` in Ogg Vorbis, written into `dir`.
pub fn tone(dir: &Path, name: &str, secs: u32, hz: u32) -> PathBuf {
    let out = dir.join(name);
    let buffers = (secs * 48_000).div_ceil(1024);
    let status = Command::new("gst-launch-1.0")
        .args(["-q", "audiotestsrc"])
        .arg(format!("num-buffers={buffers}"))
        .arg(format!("freq={hz}"))
        .args(["samplesperbuffer=1024", "!", "audio/x-raw,rate=48000", "!", "audioconvert", "!", "vorbisenc", "!", "oggmux", "!", "filesink"])
        .arg(format!("location={}", out.display()))
        .status()
        .expect("gst-launch-1.0 (scripts/install-deps --test installs gstreamer1.0-tools)");
    assert!(status.success());
    out
}

/// Writes the clip into `dir` and returns its path.
pub fn make(dir: &Path, name: &str, spec: &Spec) -> PathBuf {
    let out = dir.join(name);
    let (enc, mux, aenc) = match spec.codec {
        "h264" => ("openh264enc ! h264parse", "mp4mux", "avenc_aac ! aacparse"),
        "h264-mkv" => ("openh264enc ! h264parse", "matroskamux", "avenc_aac ! aacparse"),
        "vp8" => ("vp8enc deadline=1", "webmmux", "opusenc"),
        "vp9" => ("vp9enc deadline=1 cpu-used=8", "webmmux", "opusenc"),
        other => panic!("no encoder for {other}"),
    };
    let mut line = format!(
        "videotestsrc num-buffers={} pattern={} background-color={} ! video/x-raw,width={},height={},framerate={}/1 ! videoconvert ! {enc} ! {mux} name=mux ! filesink location={}",
        spec.frames,
        spec.pattern,
        spec.background,
        spec.width,
        spec.height,
        spec.fps,
        out.display()
    );
    if spec.sound {
        // 1024-sample buffers at 48 kHz, as many as the video lasts.
        let buffers = (u64::from(spec.frames) * 48_000 / u64::from(spec.fps)).div_ceil(1024);
        line += &format!(
            " audiotestsrc num-buffers={buffers} samplesperbuffer=1024 ! audio/x-raw,rate=48000 ! audioconvert ! audioresample ! {aenc} ! mux."
        );
    }
    let status = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(line.split_whitespace())
        .status()
        .expect("gst-launch-1.0 (scripts/install-deps --test installs gstreamer1.0-tools)");
    assert!(status.success(), "gst-launch-1.0 {line}");
    out
}
