//! Narration, background music and clip sound in the real player, with no
//! sound card: ALSA's null device stands in for speakers (CI has none), and
//! a card that does not exist stands in for unplugged ones.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::clips::tone;
use common::player::Player;
use common::{estation, wait_until, write_config};

/// The player for `secs` with `pcm` as ALSA's default device, and more
/// `[audio]` settings.
fn player(dir: &Path, playlist: &Path, pcm: &str, secs: u32, audio: &str) -> Player {
    let config = write_config(dir, &format!("[audio]\nvolume = 80\n{audio}"));
    Player::new(&config).window(640, 360).sound(pcm).exit_after(&format!("{secs}s")).playlist(playlist)
}

/// Runs [`player`] to its end; returns its log.
fn play(dir: &Path, playlist: &Path, pcm: &str, secs: u32) -> String {
    play_with(dir, playlist, pcm, secs, "")
}

/// [`play`] with more `[audio]` settings.
fn play_with(dir: &Path, playlist: &Path, pcm: &str, secs: u32, audio: &str) -> String {
    player(dir, playlist, pcm, secs, audio).run().log
}

/// Seconds between the first log lines containing `a` and then `b`.
fn between(log: &str, a: &str, b: &str) -> f64 {
    let stamp = |line: &str| {
        let t = line.split_whitespace().next().unwrap_or_default();
        chrono::DateTime::parse_from_rfc3339(t).unwrap_or_else(|e| panic!("{t}: {e}"))
    };
    let mut lines = log.lines();
    let first = lines.find(|l| l.contains(a)).unwrap_or_else(|| panic!("no `{a}` in\n{log}"));
    let second = lines.find(|l| l.contains(b)).unwrap_or_else(|| panic!("no `{b}` after `{a}` in\n{log}"));
    (stamp(second) - stamp(first)).as_seconds_f64()
}

const PLAYLIST: &str = r##"
[music]
tracks = ["m1.ogg", "m2.ogg"]
order = "in-order"
volume = 50

[[items]]
id = "quiet-card"
kind = "text"
title = "音乐"
duration = "3s"

[[items]]
id = "talk"
kind = "text"
title = "讲解"
narration = "talk.ogg"
duration = "narration"

[[items]]
id = "after"
kind = "text"
title = "之后"
duration = "3s"
"##;

/// [`PLAYLIST`] and its sounds in `dir` (music tracks of `music_secs`, a 2 s
/// narration), with `more` items after it; returns the playlist's path.
fn narrated(dir: &Path, music_secs: u32, more: &str) -> PathBuf {
    tone(dir, "m1.ogg", music_secs, 330);
    tone(dir, "m2.ogg", music_secs, 440);
    tone(dir, "talk.ogg", 2, 660);
    let playlist = dir.join("p.toml");
    std::fs::write(&playlist, format!("{PLAYLIST}{more}")).unwrap();
    playlist
}

#[test]
fn narration_sets_the_item_length_and_music_ducks_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let playlist = narrated(dir.path(), 4, "");
    let log = &play(dir.path(), &playlist, "type null", 12);
    assert!(log.contains("audio: sound on the default output device"), "{log}");
    // Master 80 % × music 50 % = 40 %; under narration a fifth of that.
    for want in ["audio: music ", "m1.ogg (1/2)", "audio: music level 40% (full)", "talk.ogg", "audio: music level 8% (ducked under narration or clip sound)"] {
        assert!(log.contains(want), "no `{want}` in\n{log}");
    }
    // The music comes back up after the narration.
    let duck = log.find("8% (ducked").unwrap();
    assert!(log[duck..].contains("audio: music level 40% (full)"), "{log}");
    // The narrated item lasts the narration (2 s) and its tail (0.8 s).
    let shown = between(log, "showing `talk`", "showing `after`");
    assert!((2.6..3.3).contains(&shown), "talk lasted {shown} s\n{log}");
    // The second track follows the first (4 s each).
    assert!(log.contains("m2.ogg (2/2)"), "{log}");
    let status = status(dir.path());
    assert!(status.contains("sound:      on the default output device"), "{status}");
}

#[test]
fn with_no_sound_device_the_programme_goes_on_in_silence() {
    let dir = tempfile::tempdir().unwrap();
    common::clips::make(dir.path(), "v.mp4", &common::clips::Spec { sound: true, frames: 45, ..Default::default() });
    let playlist = narrated(dir.path(), 1, "\n[[items]]\nid = \"clip\"\nkind = \"video\"\npath = \"v.mp4\"\n");
    let log = &play(dir.path(), &playlist, "type hw card 99", 14);
    assert_eq!(log.matches("audio: no output device").count(), 1, "one line, not a flood:\n{log}");
    // Every item still comes and goes on time, the narrated one included
    // (measured from its file, not from a player that never drains).
    for id in ["quiet-card", "talk", "after", "clip"] {
        assert!(log.contains(&format!("showing `{id}`")), "{id} never shown:\n{log}");
    }
    let shown = between(log, "showing `talk`", "showing `after`");
    assert!((2.6..3.3).contains(&shown), "talk lasted {shown} s\n{log}");
    let clip = between(log, "showing `clip`", "showing `quiet-card`");
    assert!((1.2..2.2).contains(&clip), "the 1.5 s clip lasted {clip} s\n{log}");
    // `estation status` says the screen is silent, and why.
    let status = status(dir.path());
    assert!(status.contains("sound:      silent: no output device ("), "{status}");
}

fn status(dir: &Path) -> String {
    let out = estation(&dir.join("config.toml")).env("HOME", dir.join("home")).arg("status").output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sound_comes_back_when_a_device_appears() {
    let dir = tempfile::tempdir().unwrap();
    tone(dir.path(), "m1.ogg", 3, 330);
    let playlist = dir.path().join("p.toml");
    std::fs::write(&playlist, "[music]\ntracks = [\"m1.ogg\"]\n\n[[items]]\nkind = \"text\"\ntitle = \"音乐\"\nduration = \"1h\"\n").unwrap();
    // Speakers plugged in once the player has found none: ALSA re-reads its
    // config when the file changes.
    let running = player(dir.path(), &playlist, "type hw card 99", 20, "").spawn();
    wait_until(Duration::from_secs(120), "the player to find no sound device", || running.log().contains("audio: no output device"));
    std::fs::write(dir.path().join("home/.asoundrc"), "pcm.!default { type null }\n").unwrap();
    let log = &running.finish().log;
    let silent = log.find("audio: no output device").unwrap_or_else(|| panic!("never silent:\n{log}"));
    let back = log.find("audio: sound on the default output device").unwrap_or_else(|| panic!("never came back:\n{log}"));
    assert!(silent < back, "{log}");
    assert!(log[back..].contains("audio: music "), "the music did not start with the device:\n{log}");
    assert!(status(dir.path()).contains("sound:      on the default output device"));
}

#[test]
fn in_quiet_hours_the_programme_is_silent() {
    let dir = tempfile::tempdir().unwrap();
    let playlist = narrated(dir.path(), 2, "");
    // All day quiet.
    let log = &play_with(dir.path(), &playlist, "type null", 9, "quiet_hours = \"00:00-24:00\"\n");
    assert!(log.contains("audio: music level 0% (quiet hours)"), "{log}");
    assert!(!log.contains("audio: music level 40%"), "{log}");
    // No narration is started, but the item still lasts it.
    assert!(!log.contains("audio: narration"), "{log}");
    let shown = between(log, "showing `talk`", "showing `after`");
    assert!((2.6..3.3).contains(&shown), "talk lasted {shown} s\n{log}");
}
