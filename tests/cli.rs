//! The operator commands, run as a user runs them: the real binary.

mod common;

use std::process::Command;

use common::{estation, root, stdout, write_config};

fn in_dir(cmd: &mut Command, dir: &std::path::Path) -> std::process::Output {
    cmd.current_dir(dir).output().expect("run estation")
}

#[test]
fn playlist_check_accepts_the_bundled_playlists() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "");
    let out = in_dir(
        estation(&config).args([
            "playlist",
            "check",
            "playlists/demo.toml",
            "playlists/school/school-hours.toml",
            "playlists/school/evening.toml",
            "playlists/school/weekend.toml",
            "playlists/school/fallback.toml",
        ]),
        &root(),
    );
    assert_eq!(stdout(&out), "ok: 5 playlist(s) checked, no problems\n", "stderr: {}", common::stderr(&out));
    assert!(out.status.success());
}

#[test]
fn playlist_check_reports_every_problem_with_file_line_and_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "");
    let data = root().join("tests/data");
    let out = in_dir(
        estation(&config).args(["playlist", "check", "bad.toml", "not-toml.toml", "no-such-file.toml"]),
        &data,
    );
    assert_eq!(out.status.code(), Some(1));
    let expected = [
        "bad.toml:3: id: `bad playlist` is not a valid id; use 1-64 ASCII letters, digits, '-', '_' or '.'".to_string(),
        "bad.toml:6: schedule.priority: must be between -1000 and 1000".into(),
        "bad.toml:7: schedule.hours: `25:00` is not a time of day (00:00 to 24:00)".into(),
        "bad.toml:10: ticker.messages[1]: message is empty".into(),
        "bad.toml:11: ticker.speed: must be between 10 and 2000 (pixels per second at 1080p)".into(),
        "bad.toml:14: items[1].kind: unknown kind `slideshow`; expected one of image, video, text, qr, clock".into(),
        format!(
            "bad.toml:18: items[2].path: `nowhere.png`: file not found (looked for {})",
            data.join("nowhere.png").display()
        ),
        "bad.toml:22: items[3].path: `notes.txt`: unsupported image type; use png, jpg, jpeg, webp".into(),
        "bad.toml:26: items[4].duration: `forever` is not a duration; write e.g. 10s, 1m30s".into(),
        "bad.toml:28: items[4].color: `red` is not a colour; write #RRGGBB or #RRGGBBAA, e.g. #0d47a1".into(),
        "bad.toml:31: items[5].data: qr items need `data` (a URL or text)".into(),
        "bad.toml:35: items[6].weekdays: `funday` is not a weekday; use mon, tue, wed, thu, fri, sat, sun".into(),
        "bad.toml:36: items[6].dates: `2026-02-30` is not a date; write YYYY-MM-DD, e.g. 2026-09-01".into(),
        "bad.toml:37: items[6].path: `path` is not used by clock items; allowed here: lunar, seconds, title".into(),
        "bad.toml:44: items[8].id: id `twice` is already used by the item on line 39".into(),
        "not-toml.toml:4: items[1].duration: duplicate key".into(),
        "no-such-file.toml: (file): cannot read: No such file or directory (os error 2)".into(),
    ];
    let got: Vec<&str> = std::str::from_utf8(&out.stdout).expect("utf-8").lines().collect();
    assert_eq!(got, expected);
}

#[test]
fn playlist_at_json_names_playlist_item_rule_and_next_change() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "");
    let at = |time: &str| -> serde_json::Value {
        let out = in_dir(
            estation(&config).args(["playlist", "at", "playlists/school", "--time", time, "--json"]),
            &root(),
        );
        assert!(out.status.success(), "{}", common::stderr(&out));
        serde_json::from_slice(&out.stdout).expect("JSON output")
    };

    // Monday 2026-11-23 in term time, during lessons.
    let v = at("2026-11-23T09:00:05+08:00");
    assert_eq!(v["timezone"], "Asia/Shanghai");
    assert_eq!(v["playlist"]["id"], "school-hours");
    assert_eq!(v["rule"]["kind"], "schedule");
    assert_eq!(v["item"]["id"], "timetable-clock");
    assert_eq!(v["item"]["index"], 1);
    assert_eq!(v["item"]["count"], 3);
    assert_eq!(v["item"]["started"], "2026-11-23T09:00:00+08:00");
    assert_eq!(v["item"]["ends"], "2026-11-23T09:00:10+08:00");
    assert_eq!(v["next_change"], "2026-11-23T09:00:10+08:00");
    assert_eq!(v["next_playlist_change"]["time"], "2026-11-23T12:00:00+08:00");
    assert_eq!(v["next_playlist_change"]["playlist"], "fallback");

    // The same evening: the evening programme, whose second item starts at 20:00.
    let v = at("2026-11-23T19:59:59+08:00");
    assert_eq!(v["playlist"]["id"], "evening");
    assert_eq!(v["item"]["id"], "beidou");
    let v = at("2026-11-23T22:00:00+08:00");
    assert_eq!(v["item"]["count"], 2);

    // Saturday: the weekend programme outranks nothing else, so it plays
    // until the evening one (higher priority) starts at 18:00.
    let v = at("2026-11-28T10:00:00+08:00");
    assert_eq!(v["playlist"]["id"], "weekend");
    assert_eq!(v["next_playlist_change"]["time"], "2026-11-28T18:00:00+08:00");
    assert_eq!(v["next_playlist_change"]["playlist"], "evening");

    // A weeknight after 22:30: nothing scheduled, so the fallback.
    let v = at("2026-11-23T23:30:00+08:00");
    assert_eq!(v["playlist"]["id"], "fallback");
    assert_eq!(v["rule"]["kind"], "fallback");
    assert_eq!(v["next_playlist_change"]["time"], "2026-11-24T07:30:00+08:00");

    // Summer holidays: school hours do not apply on a weekday in August.
    let v = at("2027-08-02T09:00:00+08:00");
    assert_eq!(v["playlist"]["id"], "fallback");

    // A time given in another zone is read as that instant.
    let v = at("2026-11-23T01:00:00Z");
    assert_eq!(v["time"], "2026-11-23T09:00:00+08:00");
    assert_eq!(v["playlist"]["id"], "school-hours");
}

#[test]
fn playlist_at_rejects_a_bad_time_clearly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "");
    let out = in_dir(
        estation(&config).args(["playlist", "at", "playlists/school", "--time", "tomorrow"]),
        &root(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert!(err.contains("--time") && err.contains("tomorrow"), "{err}");
}

#[test]
fn config_check_names_file_line_and_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "\n[audio]\nvolume = 300\n");
    let out = estation(&config).args(["config", "check"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out).trim_end(),
        format!("{}:8: audio.volume: must be between 0 and 100", config.display())
    );
}

/// No config anywhere: defaults, and a note saying so. An explicit
/// `--config` that does not exist is an error (a typo must not go unnoticed).
#[test]
fn missing_config_means_defaults_but_a_missing_explicit_one_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_estation"))
        .args(["config", "show", "--json"])
        .env_remove("ESTATION_CONFIG")
        .env("XDG_CONFIG_HOME", dir.path())
        .env("HOME", dir.path())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", common::stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["timezone"], "Asia/Shanghai");
    assert_eq!(v["language"], "zh-CN");

    let missing = dir.path().join("none.toml");
    let out = estation(&missing).args(["config", "show"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        common::stderr(&out).trim_end(),
        format!("error: cannot read config file {}: No such file or directory (os error 2)", missing.display())
    );
}
