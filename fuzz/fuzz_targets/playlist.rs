//! Any text into the playlist reader, as a feed in the cache hands it over
//! (media found through a lookup table, never through paths the text
//! names), then into the scheduler. Must never panic or hang; every
//! problem points at a line the text has.
#![no_main]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use estation::core::playlist::{self, Library, MediaRoot};
use estation::core::playlist::schedule::Scheduler;
use libfuzzer_sys::fuzz_target;

/// The media a feed would have in the cache: a few tiny files written once
/// (in memory where /dev/shm exists), under the names the seed playlists
/// and short ones use. The names are only keys; the text never makes a path.
static ROOT: LazyLock<(tempfile::TempDir, MediaRoot)> = LazyLock::new(|| {
    let dir = tempfile::Builder::new()
        .prefix("estation-fuzz-")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("a temp folder");
    let png = base64::engine::general_purpose::STANDARD
        .decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
        .expect("a PNG");
    let files: [(&str, &[u8]); 6] = [
        ("pic.png", &png),
        ("clip.mp4", b"\0\0\0\x1cftypisom\0\0\x02\0isomiso2"),
        (
            "clip.webm",
            b"\x1a\x45\xdf\xa3\x01\0\0\0\0\0\0\x1fB\x82\x84webm",
        ),
        ("talk.ogg", b"OggS\0\x02\0\0\0\0\0\0"),
        ("song.mp3", b"ID3\x04\0\0\0\0\0\0"),
        ("fake.png", b"<html>not found</html>"),
    ];
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).expect("a temp file");
    }
    let at = |name: &str| dir.path().join(name);
    let mut map: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (key, file) in [
        ("a.png", "pic.png"),
        ("b.jpg", "fake.png"),
        ("v.mp4", "clip.mp4"),
        ("v.webm", "clip.webm"),
        ("n.ogg", "talk.ogg"),
        ("m.mp3", "song.mp3"),
        ("x.mp3", "clip.mp4"),
        ("../assets/demo/solar-system.png", "pic.png"),
        ("../../assets/demo/solar-system.png", "pic.png"),
        ("../assets/demo/night-sky.jpg", "pic.png"),
        ("../assets/demo/water-cycle.jpg", "fake.png"),
        ("../assets/demo/prism.webp", "pic.png"),
        ("../assets/demo/moon-phases.webm", "clip.webm"),
        ("../assets/demo/music-calm.ogg", "talk.ogg"),
    ] {
        map.insert(key.into(), at(file));
    }
    // Listed, but gone from the cache.
    map.insert("gone.png".into(), at("missing.png"));
    (dir, MediaRoot::Lookup(map))
});

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let root = &ROOT.1;
    let lines = text.lines().count() + 1;
    let one = playlist::parse_playlist_in(Path::new("fuzz.toml"), &text, root);
    for p in &one.problems {
        let _ = p.to_string();
        assert!(
            p.line <= lines,
            "a problem on line {} of a {lines}-line text: {p}",
            p.line
        );
    }
    if let Some(p) = &one.playlist {
        for (written, file) in &p.media {
            assert!(
                root_has(root, written, file),
                "media `{written}` resolved to {file:?}, not through the lookup"
            );
        }
    }
    // Twice under two names: the cross-playlist rules (ids, fallback).
    let lib = Library::from_texts([
        (PathBuf::from("a.toml"), &*text, root),
        (PathBuf::from("b.toml"), &*text, root),
    ]);
    let _ = lib.problems.iter().map(ToString::to_string).count();
    let scheduler = Scheduler::new(&lib, estation::config::Config::default().timezone);
    for secs in [1_782_864_000, 1_783_000_000] {
        let t = DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default();
        let _ = scheduler.choose(t);
        let _ = scheduler.next_playlist_change(t);
        if let Some(slot) = scheduler.slot_at(t) {
            assert!(
                slot.start <= t && t < slot.end,
                "slot {slot:?} is not on screen at {t}"
            );
        }
    }
});

fn root_has(root: &MediaRoot, written: &str, file: &Path) -> bool {
    matches!(root, MediaRoot::Lookup(m) if m.get(written).is_some_and(|f| f == file))
}
