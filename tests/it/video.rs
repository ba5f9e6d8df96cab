//! GStreamer decoding on generated clips: frames, timing, scaling, start
//! offsets, loops, and bad files refused with a clear message.

use crate::common;

use std::time::{Duration, Instant};

use common::clips::{self, Spec};
use estation::core::playlist::Fit;
use estation::video::{Clip, ClipEvent, ClipOptions};

fn options(area: (u32, u32)) -> ClipOptions {
    ClipOptions { area, fit: Fit::Contain, mute: true, volume: 1.0, start: Duration::ZERO }
}

/// Plays a clip to its end, taking frames as they come; returns the
/// timestamps seen and the wall time it took.
fn play_through(clip: &Clip, limit: Duration) -> (Vec<Duration>, Duration) {
    let mut pts = Vec::new();
    if let Some(f) = clip.take_frame() {
        pts.extend(f.pts);
    }
    let t0 = Instant::now();
    clip.play();
    // Every 2 ms, so no frame is missed; at `limit` the caller's timing
    // assertions say what went wrong.
    common::poll_until(limit, Duration::from_millis(2), || {
        if let Some(f) = clip.take_frame() {
            pts.extend(f.pts);
        }
        let events = clip.events();
        assert!(!events.iter().any(|e| matches!(e, ClipEvent::Error(_))), "{events:?}");
        events.contains(&ClipEvent::Eos)
    });
    (pts, t0.elapsed())
}

#[test]
fn frames_come_at_their_timestamps_all_of_them_in_order() {
    let dir = tempfile::tempdir().unwrap();
    for codec in ["h264", "h264-mkv", "vp8", "vp9"] {
        let name = format!("c.{}", match codec {
            "h264" => "mp4",
            "h264-mkv" => "mkv",
            _ => "webm",
        });
        let path = clips::make(dir.path(), &name, &Spec { codec, frames: 60, fps: 30, ..Spec::default() });
        let clip = Clip::preroll(&path, options((1920, 1080))).unwrap();
        let d = clip.duration().expect("duration");
        assert!((d.as_secs_f64() - 2.0).abs() < 0.05, "{codec}: {d:?}");
        let (pts, took) = play_through(&clip, Duration::from_secs(10));
        // Played in real time (the sink waits for each timestamp; the upper
        // bound is loose for a loaded test machine)…
        assert!(took > Duration::from_millis(1800) && took < Duration::from_secs(8), "{codec}: {took:?}");
        // …every frame delivered or, if it came too late, dropped and
        // counted; the ones delivered once each, in order, 1/30 s apart.
        let stats = clip.stats();
        assert!(stats.received + stats.late >= 60, "{codec}: {stats:?}");
        assert!(pts.len() >= 54, "{codec}: {} frames: {pts:?}", pts.len());
        assert_eq!(pts[0], Duration::ZERO, "{codec}: the preroll frame is the first");
        for w in pts.windows(2) {
            let step = w[1].saturating_sub(w[0]).as_secs_f64();
            assert!(w[1] > w[0] && step < 0.034 * 2.0, "{codec}: {pts:?}");
        }
        assert!(pts.last().unwrap().as_secs_f64() > 1.9, "{codec}: {pts:?}");
        let decoder = if codec.starts_with("h264") { "264" } else { codec };
        assert!(clip.decoders().iter().any(|(name, _)| name.contains(decoder)), "{codec}: {:?}", clip.decoders());
    }
}

#[test]
fn frames_are_scaled_down_to_the_screen_keeping_their_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = clips::make(dir.path(), "wide.mp4", &Spec { width: 1280, height: 720, frames: 5, ..Spec::default() });
    let clip = Clip::preroll(&path, options((640, 640))).unwrap();
    let f = clip.take_frame().unwrap();
    assert_eq!((f.width, f.height, f.data.len()), (640, 360, 640 * 360 * 4));
    // Never enlarged: the GPU scales up for free.
    let clip = Clip::preroll(&path, options((3840, 2160))).unwrap();
    let f = clip.take_frame().unwrap();
    assert_eq!((f.width, f.height), (1280, 720));
    // Cover: the longer screen side bounds both, so a portrait screen still
    // gets enough pixels to fill its height.
    let clip = Clip::preroll(&path, ClipOptions { fit: Fit::Cover, ..options((360, 640)) }).unwrap();
    let f = clip.take_frame().unwrap();
    assert_eq!((f.width, f.height), (640, 360));
}

#[test]
fn a_start_offset_and_a_rewind_land_on_their_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = clips::make(dir.path(), "c.mp4", &Spec { frames: 90, ..Spec::default() });
    let clip = Clip::preroll(&path, ClipOptions { start: Duration::from_secs(1), ..options((320, 240)) }).unwrap();
    let first = clip.take_frame().unwrap().pts.unwrap();
    assert!((first.as_secs_f64() - 1.0).abs() < 0.04, "{first:?}");
    let (pts, took) = play_through(&clip, Duration::from_secs(10));
    assert!(took < Duration::from_millis(2600), "only the last two seconds play: {took:?}");
    assert!(pts.iter().all(|p| *p >= first));
    clip.rewind().unwrap();
    // The seek does not wait: the frame at `start` comes like any other.
    let mut again = None;
    common::wait_until_every(Duration::from_millis(5), Duration::from_secs(5), "a frame after the rewind", || {
        again = clip.take_frame().map(|f| f.pts.unwrap());
        again.is_some()
    });
    let again = again.unwrap();
    assert!((again.as_secs_f64() - 1.0).abs() < 0.04, "{again:?}");
}

#[test]
fn a_clip_with_sound_plays_in_real_time_whatever_the_sound_device() {
    // CI has no sound card: the audio sink falls back to silence and the
    // picture keeps the clock.
    let dir = tempfile::tempdir().unwrap();
    let path = clips::make(dir.path(), "s.mp4", &Spec { sound: true, frames: 45, ..Spec::default() });
    let clip = Clip::preroll(&path, ClipOptions { mute: false, volume: 0.5, ..options((320, 240)) }).unwrap();
    assert!(clip.has_sound());
    let (pts, took) = play_through(&clip, Duration::from_secs(10));
    assert!(pts.len() >= 40 && took >= Duration::from_millis(1300), "{} frames in {took:?}", pts.len());
    let muted = Clip::preroll(&path, options((320, 240))).unwrap();
    assert!(!muted.has_sound());
}

#[test]
fn corrupt_truncated_and_soundless_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = clips::make(dir.path(), "good.mp4", &Spec { frames: 30, ..Spec::default() });
    let bytes = std::fs::read(&good).unwrap();

    // MP4 header, then noise.
    let garbage = dir.path().join("garbage.mp4");
    let mut noise = bytes[..32].to_vec();
    let mut rng = fastrand::Rng::with_seed(7);
    noise.extend((0..50_000).map(|_| rng.u8(..)));
    std::fs::write(&garbage, noise).unwrap();
    // The first tenth of a real file.
    let truncated = dir.path().join("truncated.mp4");
    std::fs::write(&truncated, &bytes[..bytes.len() / 10]).unwrap();
    // A sound file is no video.
    let tone = clips::tone(dir.path(), "tone.ogg", 1, 440);

    for bad in [&garbage, &truncated, &tone] {
        let t0 = Instant::now();
        let err = Clip::preroll(bad, options((320, 240))).err().unwrap_or_else(|| panic!("{} played", bad.display()));
        let msg = err.to_string();
        assert!(msg.starts_with(&bad.display().to_string()), "{msg}");
        assert!(msg.len() > bad.display().to_string().len() + 10, "{msg}");
        // Usually at once; when decodebin swallows a demuxer's error while
        // it autoplugs (a GStreamer race seen under load), the preroll
        // timeout (10 s) refuses the file instead.
        assert!(t0.elapsed() < Duration::from_secs(12), "{msg}: {:?}", t0.elapsed());
    }
    // The good one still plays after all that.
    assert!(Clip::preroll(&good, options((320, 240))).is_ok());
}

/// GStreamer with every system plugin except those named: a machine that
/// lacks a package.
fn plugins_without(dir: &std::path::Path, left_out: &[&str]) -> std::path::PathBuf {
    let system = std::path::Path::new("/usr/lib/x86_64-linux-gnu/gstreamer-1.0");
    let system = if system.is_dir() { system.to_path_buf() } else { std::path::PathBuf::from("/usr/lib/aarch64-linux-gnu/gstreamer-1.0") };
    let only = dir.join("plugins");
    std::fs::create_dir_all(&only).unwrap();
    for e in std::fs::read_dir(&system).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".so") && !left_out.iter().any(|l| name.contains(l)) {
            std::os::unix::fs::symlink(e.path(), only.join(&name)).unwrap();
        }
    }
    only
}

/// The environment that makes GStreamer see only `plugins` (with a registry
/// of its own in `dir`).
fn restricted(dir: &std::path::Path, plugins: &std::path::Path) -> [(&'static str, std::path::PathBuf); 3] {
    [
        ("GST_PLUGIN_SYSTEM_PATH_1_0", plugins.to_path_buf()),
        ("GST_PLUGIN_PATH_1_0", plugins.to_path_buf()),
        ("GST_REGISTRY_1_0", dir.join("registry.bin")),
    ]
}

#[test]
fn doctor_names_the_decoders_and_the_packages_that_are_missing() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), "");
    let out = common::estation(&config).arg("doctor").output().unwrap();
    let text = common::stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("H.264 video") && text.contains("avdec_h264"), "{text}");
    assert!(text.contains("hardware video decoding: "), "{text}");

    // No libav and no openh264 (plugins-bad): H.264, H.265 and AAC have no decoder.
    let plugins = plugins_without(dir.path(), &["libgstlibav", "libgstopenh264", "libgstfaad", "libgstva"]);
    let out = common::estation(&config).envs(restricted(dir.path(), &plugins)).arg("doctor").output().unwrap();
    let text = common::stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FIX   video     H.264 video: no element\n                fix: sudo apt-get install gstreamer1.0-libav"),
        "{text}"
    );
    assert!(text.contains("ok    video     VP9 video: vp9dec"), "{text}");
    assert!(text.contains("missing: sudo apt-get install gstreamer1.0-libav"), "{text}");
}

#[test]
fn a_clip_the_machine_cannot_decode_is_skipped_naming_file_and_package() {
    let dir = tempfile::tempdir().unwrap();
    clips::make(dir.path(), "h264.mp4", &Spec { frames: 30, ..Spec::default() });
    clips::make(dir.path(), "vp9.webm", &Spec { frames: 30, codec: "vp9", ..Spec::default() });
    std::fs::write(dir.path().join("broken.webm"), {
        let mut b = std::fs::read(dir.path().join("vp9.webm")).unwrap();
        b.truncate(200);
        b
    })
    .unwrap();
    let playlist = dir.path().join("p.toml");
    std::fs::write(
        &playlist,
        "[[items]]\nid = \"h264\"\nkind = \"video\"\npath = \"h264.mp4\"\n\n[[items]]\nid = \"broken\"\nkind = \"video\"\npath = \"broken.webm\"\n\n[[items]]\nid = \"vp9\"\nkind = \"video\"\npath = \"vp9.webm\"\n",
    )
    .unwrap();
    let plugins = plugins_without(dir.path(), &["libgstlibav", "libgstopenh264", "libgstva"]);
    let config = common::write_config(dir.path(), "");
    let mut player = common::player::Player::new(&config).window(320, 240).exit_after("6s").playlist(&playlist);
    for (k, v) in restricted(dir.path(), &plugins) {
        player = player.env(k, v);
    }
    let log = &player.run().log;
    let skip = |id: &str| log.lines().filter(|l| l.contains(&format!("skipping item `{id}`"))).collect::<Vec<_>>();
    let h264 = skip("h264");
    assert_eq!(h264.len(), 1, "one line for the undecodable clip:\n{log}");
    assert!(h264[0].contains("h264.mp4") && h264[0].contains("install gstreamer1.0-libav"), "{}", h264[0]);
    let broken = skip("broken");
    assert_eq!(broken.len(), 1, "one line for the broken clip:\n{log}");
    assert!(broken[0].contains("broken.webm"), "{}", broken[0]);
    // The playlist goes on with what plays, again and again.
    assert!(log.matches("showing `vp9`").count() >= 2, "{log}");
}
