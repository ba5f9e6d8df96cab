//! The operator commands, run as a user runs them: the real binary.

use crate::common;

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
    insta::assert_snapshot!(stdout(&out));
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
    insta::assert_snapshot!(named(&stdout(&out), &[(&data, "[DATA]")]));
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

/// Regression: `playlist at` planned a narrated item with its nominal 10 s,
/// while the player shows it for the narration's length plus a tail, so
/// after it the prediction was off the screen.
#[cfg(feature = "player")]
#[test]
fn playlist_at_follows_a_measured_narration_as_the_player_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "");
    common::clips::tone(dir.path(), "talk.ogg", 3, 660);
    let list = dir.path().join("talk.toml");
    std::fs::write(
        &list,
        "[[items]]\nid = \"talk\"\nkind = \"clock\"\nduration = \"narration\"\nnarration = \"talk.ogg\"\n\
         [[items]]\nid = \"after\"\nkind = \"clock\"\nduration = \"10s\"\n",
    )
    .expect("write playlist");
    let at = |time: &str| -> serde_json::Value {
        let out = in_dir(estation(&config).args(["playlist", "at"]).arg(&list).args(["--time", time, "--json"]), dir.path());
        assert!(out.status.success(), "{}", common::stderr(&out));
        serde_json::from_slice(&out.stdout).expect("JSON output")
    };
    // Milliseconds after local midnight, where the rotation is anchored.
    let ms = |v: &serde_json::Value| -> i64 {
        let t = chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a time")).expect("RFC 3339");
        let midnight = chrono::DateTime::parse_from_rfc3339("2026-11-23T00:00:00+08:00").expect("RFC 3339");
        (t - midnight).num_milliseconds()
    };
    // Three seconds of narration and the 0.8 s tail: "after" comes on at
    // about 3.8 s, not at the nominal 10 s.
    let v = at("2026-11-23T00:00:02+08:00");
    assert_eq!(v["item"]["id"], "talk");
    let talk_ends = ms(&v["item"]["ends"]);
    assert!((3_700..3_900).contains(&talk_ends), "the narrated item ends at {talk_ends} ms");
    let v = at("2026-11-23T00:00:05+08:00");
    assert_eq!(v["item"]["id"], "after", "{v}");
    assert_eq!(ms(&v["item"]["started"]), talk_ends);
    assert_eq!(ms(&v["item"]["ends"]), talk_ends + 10_000);
    // A whole cycle later the narrated item is back, on the measured beat.
    let v = at("2026-11-23T00:00:14+08:00");
    assert_eq!(v["item"]["id"], "talk", "{v}");
    assert_eq!(ms(&v["item"]["started"]), talk_ends + 10_000);
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
    insta::assert_snapshot!(named(&stdout(&out), &[(dir.path(), "[TMP]")]));
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

/// `config show` says where each value came from: a line of the file, an
/// environment variable, a flag, or the default.
#[test]
fn config_show_names_the_file_line_the_variable_and_the_default() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "[audio]\nvolume = 35\n");
    let out = estation(&config).args(["config", "show"]).output().expect("run");
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = stdout(&out);
    let line = |key: &str| {
        let l = text.lines().find(|l| l.starts_with(&format!("{key} = "))).unwrap_or_else(|| panic!("no {key}: {text}"));
        let (value, origin) = l.rsplit_once("  # ").unwrap_or_else(|| panic!("no origin: {l}"));
        (value.trim_end().to_string(), origin.to_string())
    };
    assert_eq!(line("audio.volume"), ("audio.volume = 35".into(), format!("{}:7", config.display())));
    assert_eq!(line("screen.id"), ("screen.id = \"test-1\"".into(), format!("{}:3", config.display())));
    assert_eq!(line("data_dir"), (format!("data_dir = {:?}", root().display().to_string()), "$ESTATION_DATA_DIR".into()));
    assert_eq!(line("config"), (format!("config = {:?}", config.display().to_string()), "--config".into()));
    assert_eq!(line("feed.interval"), ("feed.interval = \"1m\"".into(), "default".into()));

    // The same in JSON, and ESTATION_CONFIG named when it chose the file.
    let out = Command::new(env!("CARGO_BIN_EXE_estation"))
        .args(["config", "show", "--json"])
        .env("ESTATION_CONFIG", &config)
        .env_remove("ESTATION_DATA_DIR")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", common::stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["volume"], 35, "the settings as before");
    let origins = &v["origins"];
    assert_eq!(origins["audio.volume"], serde_json::json!({"from": "file", "path": config, "line": 7}));
    assert_eq!(origins["config"], serde_json::json!({"from": "env", "var": "ESTATION_CONFIG"}));
    assert_eq!(origins["data_dir"], serde_json::json!({"from": "default"}));
    assert_eq!(origins["feed.interval"], serde_json::json!({"from": "default"}));
}

/// `estation` with a HOME and data folder of its own, so the default cache
/// folder (where a last good config copy may be looked for) is the test's.
fn kiosk(config: &std::path::Path, home: &std::path::Path) -> Command {
    let mut c = estation(config);
    c.env("HOME", home).env("XDG_DATA_HOME", home.join("data")).env("XDG_CONFIG_HOME", home.join("config"));
    c
}

/// 测试 in GBK, as a Chinese Windows editor saves it.
const GBK_NAME: &[u8] = b"[screen]\nname = \"\xb2\xe2\xca\xd4\"\n";

#[test]
fn config_check_names_the_line_and_byte_of_a_gbk_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, GBK_NAME).expect("write");
    let out = kiosk(&config, dir.path()).args(["config", "check"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        format!("{}:2: (file): not UTF-8 text (byte 0xb2 at column 9); it looks like GBK/GB18030 — save it as UTF-8\n", config.display())
    );
    let err = common::stderr(&out);
    insta::assert_snapshot!(named(&format!("{}{err}", stdout(&out)), &[(dir.path(), "[TMP]")]));
    assert!(err.contains("no last good copy of it was found") && err.contains("built-in defaults"), "{err}");

    // First boot with that file: defaults, and status says so.
    let out = kiosk(&config, dir.path()).args(["status", "--json"]).output().expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let problem = v["config_problem"].as_str().expect("config_problem");
    assert!(problem.contains("not UTF-8") && problem.contains("the built-in defaults are used: no feed key, no alert sources"), "{problem}");
}

#[test]
fn config_check_names_the_line_of_a_syntax_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "[feed\nurl = \"https://x.example/\"\n");
    let out = kiosk(&config, dir.path()).args(["config", "check"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.starts_with(&format!("{}:6: ", config.display())), "{text}");
    insta::assert_snapshot!(named(&text, &[(dir.path(), "[TMP]")]));
}

#[test]
fn config_check_names_a_utf16_file_and_accepts_a_utf8_bom() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.toml");
    // Notepad's "Unicode": UTF-16 little-endian with a byte-order mark.
    let utf16: Vec<u8> = [0xff, 0xfe].into_iter().chain("[screen]\nname = \"测试\"\n".encode_utf16().flat_map(u16::to_le_bytes)).collect();
    std::fs::write(&config, utf16).expect("write");
    let out = kiosk(&config, dir.path()).args(["config", "check"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        format!("{}:1: (file): UTF-16 (little-endian) text, as Windows Notepad saves \"Unicode\"; save it as UTF-8\n", config.display())
    );
    insta::assert_snapshot!("config_check_utf16", named(&stdout(&out), &[(dir.path(), "[TMP]")]));

    // Notepad's "UTF-8 with BOM" is fine.
    std::fs::write(&config, "\u{feff}[screen]\nname = \"测试\"\n").expect("write");
    let out = kiosk(&config, dir.path()).args(["config", "check"]).output().expect("run");
    assert!(out.status.success(), "{}{}", stdout(&out), common::stderr(&out));
    let out = kiosk(&config, dir.path()).args(["config", "show", "--json"]).output().expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["screen_name"], "测试");
}

/// The paths the feed server saw since last asked.
#[cfg(feature = "net")] // sync
fn paths(server: &common::feedsrv::FeedServer) -> Vec<String> {
    server.take_seen().into_iter().map(|s| s.path).collect()
}

/// A kiosk whose good config (feed key, feed URL, an alert source) ran
/// `sync` once, then was saved broken: `broken` gets the good text and
/// returns the bytes to write. `cache` is the `[cache]` table, if any.
/// Checks that `sync --once` still talks to the good feed URL and alert
/// source with the good key, that it logs why, and returns the `status
/// --json` of the kiosk.
#[cfg(feature = "net")] // sync
fn broken_after_good(cache: &str, broken: impl Fn(&str) -> Vec<u8>) -> (tempfile::TempDir, serde_json::Value) {
    let op = common::operator::Operator::new();
    op.card("测试", "#0d47a1");
    let built = op.build();
    assert!(built.status.success(), "{}", common::stderr(&built));
    let server = common::feedsrv::FeedServer::start(op.path("feed"));
    let kiosk_dir = tempfile::tempdir().expect("temp dir");
    let home = kiosk_dir.path();
    let url = server.url();
    let good = format!(
        "[screen]\nname = \"测试屏\"\n[feed]\nurl = \"{url}\"\n{}\n{cache}[[alerts.source]]\nurl = \"{url}alerts.atom\"\nallow_http = true\n",
        op.key_line
    );
    let config = home.join("config.toml");
    std::fs::write(&config, &good).expect("write");

    let out = kiosk(&config, home).args(["sync", "--once"]).output().expect("run");
    let err = common::stderr(&out);
    assert!(err.contains("kept a copy of the config as"), "{err}");
    let seen = paths(&server);
    assert!(seen.contains(&"/manifest.json".into()) && seen.contains(&"/alerts.atom".into()), "{seen:?} {err}");

    std::fs::write(&config, broken(&good)).expect("write");
    let out = kiosk(&config, home).args(["sync", "--once"]).output().expect("run");
    let err = common::stderr(&out);
    let seen = paths(&server);
    assert!(seen.contains(&"/manifest.json".into()) && seen.contains(&"/alerts.atom".into()), "the good feed URL and alert source: {seen:?} {err}");
    let line = err.lines().find(|l| l.contains("ERROR")).unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(line.contains(&format!("config: {}:", config.display())), "{line}");
    assert!(line.contains("using the last config that loaded instead:") && line.contains("config.last-good.toml, saved "), "{line}");
    assert!(!err.contains("kept a copy"), "a broken file is never kept: {err}");

    // `config show` prints what is used: the last good key.
    let out = kiosk(&config, home).args(["config", "show", "--json"]).output().expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(format!("public_key = {}", v["feed"]["public_key"]), op.key_line);
    let copy = v["origins"]["feed.public_key"]["path"].as_str().unwrap_or_default();
    assert_eq!(v["origins"]["feed.public_key"]["from"], "last_good", "{v}");
    assert!(copy.ends_with("config.last-good.toml"), "{copy}");
    assert_eq!(v["origins"]["feed.public_key"]["line"], 5, "the copy keeps the file's lines");
    assert_eq!(v["origins"]["config"]["from"], "flag");
    let text = stdout(&kiosk(&config, home).args(["config", "show"]).output().expect("run"));
    let line = text.lines().find(|l| l.starts_with("config = ")).unwrap_or_default();
    assert!(line.starts_with(&format!("config = {:?}", config.display().to_string())) && line.ends_with("# --config"), "the file named, not its copy: {text}");

    let out = kiosk(&config, home).args(["status", "--json"]).output().expect("run");
    assert!(out.status.success(), "{}", common::stderr(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(status["feed_version"].is_u64(), "the cache read with the last good key: {status}");
    let text = kiosk(&config, home).args(["status"]).output().expect("run");
    assert!(stdout(&text).starts_with(&format!("config:     {}:", config.display())), "{}", stdout(&text));
    (kiosk_dir, status)
}

#[cfg(feature = "net")] // sync
#[test]
fn a_gbk_saved_config_keeps_the_last_good_feed_key_and_alert_sources() {
    let (dir, status) = broken_after_good("[cache]\ndir = \"cache\"\n", |good| {
        // The same file saved as GBK: only the screen name's bytes change.
        let (before, after) = good.split_once("测试屏").expect("the name");
        [before.as_bytes(), b"\xb2\xe2\xca\xd4\xc6\xc1", after.as_bytes()].concat()
    });
    let problem = status["config_problem"].as_str().expect("config_problem");
    assert!(problem.contains(":2: (file): not UTF-8 text (byte 0xb2 at column 9); it looks like GBK/GB18030"), "{problem}");
    assert!(problem.contains("using the last config that loaded instead:"), "{problem}");
    assert_eq!(status["cache"], dir.path().join("cache").display().to_string());
}

/// With no `[cache] dir` the copy is in the default cache folder, which a
/// broken file does not need to name.
#[cfg(feature = "net")] // sync
#[test]
fn a_config_with_a_syntax_error_keeps_the_last_good_one_from_the_default_cache() {
    let (dir, status) = broken_after_good("", |good| good.replacen("[feed]", "[feed", 1).into_bytes());
    let problem = status["config_problem"].as_str().expect("config_problem");
    assert!(problem.contains("config.toml:3: feed: unclosed table"), "{problem}");
    assert!(problem.contains("using the last config that loaded instead:"), "{problem}");
    assert_eq!(status["cache"], dir.path().join("data/estation/cache").display().to_string());
}

/// Asserts `out` failed with a message naming `what` and no panic.
fn refused_cleanly(out: &std::process::Output, what: &str) {
    let err = common::stderr(out);
    assert!(!out.status.success(), "accepted: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let first = err.lines().next().unwrap_or_default();
    assert!(first.starts_with("error: ") && first.contains(what), "{err}");
}

#[test]
fn absurd_durations_are_refused_with_a_message_not_a_panic() {
    let op = common::operator::Operator::new();
    op.card("第一版", "#1b5e20");
    for expires in ["1e30", "300000y", "1e19", "inf"] {
        let out = op.build_from(&op.path("playlists"), &["--expires", expires]);
        refused_cleanly(&out, expires);
        assert!(!op.path("feed").exists());
    }
    let config = op.path("config.toml");
    for args in [&["play", "--exit-after", "1e30"][..], &["play", "--screenshot", "s.png", "--screenshot-at", "1s,1e30"], &["play", "--exit-after", "300000y"]] {
        let out = estation(&config).args(args).output().unwrap();
        refused_cleanly(&out, "too long");
    }
    let out = estation(&config).args(["alert", "new", "--event", "暴雨", "--area", "330522", "--expires", "300000y"]).output().unwrap();
    refused_cleanly(&out, "300000y");
}

#[test]
fn alert_publish_of_dev_zero_or_a_huge_file_is_refused_by_size_before_reading_it() {
    let op = common::operator::Operator::new();
    op.card("第一版", "#1b5e20");
    assert!(op.build().status.success());
    let before = std::fs::read(op.path("feed/manifest.json")).unwrap();
    let huge = op.path("huge.xml");
    std::fs::File::create(&huge).unwrap().set_len(8 << 30).unwrap(); // sparse: 8 GiB never read
    for file in [std::path::Path::new("/dev/zero"), &huge] {
        let mut cmd = estation(&op.path("config.toml"));
        cmd.current_dir(op.dir.path()).args(["alert", "publish"]).arg(file).args(["--feed", "feed", "--key", "keys/feed-key.pem"]);
        let start = std::time::Instant::now();
        let run = common::run_with_limit(&mut cmd, std::time::Duration::from_secs(30));
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "{:?}", start.elapsed());
        assert!(!run.success && !run.stderr.contains("panicked"), "{}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.contains("bytes; a CAP document is 1 to 1048576 bytes"), "{}", run.stderr);
    }
    assert_eq!(std::fs::read(op.path("feed/manifest.json")).unwrap(), before);
}

/// `text` with each folder in `paths` written as its name (`[TMP]`), so a
/// snapshot holds no temp folder.
fn named(text: &str, paths: &[(&std::path::Path, &str)]) -> String {
    paths.iter().fold(text.to_string(), |t, (path, name)| t.replace(&path.display().to_string(), name))
}

/// Snapshot filters for what changes from build to build: versions (the
/// build time), key ids, expiry times, content hashes.
fn feed_filters() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(r"version \d+", "version [VERSION]");
    s.add_filter(r"signed by [0-9a-f]+", "signed by [KEY]");
    s.add_filter(r"expires \d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? (UTC|[+-]\d\d:\d\d)", "expires [TIME]");
    s.add_filter(r"[0-9a-f]{64}", "[SHA256]");
    s
}

/// The instants of `playlist_at_json_names_playlist_item_rule_and_next_change`,
/// as an operator reads them.
#[test]
fn playlist_at_text_snapshot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "");
    let mut text = String::new();
    for time in ["2026-11-23T09:00:05+08:00", "2026-11-23T19:59:59+08:00", "2026-11-28T10:00:00+08:00", "2026-11-23T23:30:00+08:00", "2027-08-02T09:00:00+08:00", "2026-11-23T01:00:00Z"] {
        let out = in_dir(estation(&config).args(["playlist", "at", "playlists/school", "--time", time]), &root());
        assert!(out.status.success(), "{}", common::stderr(&out));
        text += &format!("$ estation playlist at playlists/school --time {time}\n{}\n", stdout(&out));
    }
    insta::assert_snapshot!(text);
}

#[test]
fn playlist_at_json_snapshot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "");
    let out = in_dir(estation(&config).args(["playlist", "at", "playlists/school", "--time", "2026-11-23T09:00:05+08:00", "--json"]), &root());
    assert!(out.status.success(), "{}", common::stderr(&out));
    insta::assert_snapshot!(stdout(&out));
}

/// `alert check` over every CAP fixture at once, as an operator runs it in
/// the fixtures' folder: one verdict per message, every problem named.
#[test]
fn alert_check_of_every_fixture_snapshot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "");
    let cap = root().join("tests/data/cap");
    let mut files: Vec<String> = std::fs::read_dir(&cap)
        .expect("fixtures")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".xml"))
        .collect();
    files.sort();
    let out = in_dir(estation(&config).args(["alert", "check"]).args(&files), &cap);
    assert_eq!(out.status.code(), Some(1), "the bad fixtures fail the check");
    insta::assert_snapshot!(stdout(&out));
    // The normalised form of one message, as `--json` gives it.
    let out = in_dir(estation(&config).args(["alert", "check", "--json", "cma-baoding-thunder-yellow.xml"]), &cap);
    assert!(out.status.success(), "{}", common::stderr(&out));
    insta::assert_snapshot!("alert_check_json_cma", stdout(&out));
}

/// `feed build` and `feed verify`, on a feed that is whole and then on one
/// with a damaged file.
#[test]
fn feed_build_and_verify_snapshot() {
    let op = common::operator::Operator::new();
    image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([x as u8 * 8, y as u8 * 8, 90])).save(op.path("playlists/pic.png")).expect("png");
    std::fs::write(
        op.path("playlists/main.toml"),
        "id = \"main\"\n[[items]]\nkind = \"text\"\ntitle = \"科普\"\n[[items]]\nkind = \"image\"\npath = \"pic.png\"\n",
    )
    .expect("playlist");
    let tmp = op.dir.path();
    let out = op.build();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let build = named(&stdout(&out), &[(tmp, "[TMP]")]);
    let verify = || op.try_run(&["feed", "verify", "feed", "--public-key", "keys/feed-key.pub"]);
    let ok = verify();
    assert!(ok.status.success(), "{}", common::stderr(&ok));
    let blob = std::fs::read_dir(op.path("feed/blobs")).expect("blobs").flatten().find(|e| e.file_name().to_string_lossy().ends_with(".png")).expect("the picture").path();
    let mut bytes = std::fs::read(&blob).expect("read");
    bytes[40] ^= 1;
    std::fs::write(&blob, bytes).expect("write");
    let bad = verify();
    assert_eq!(bad.status.code(), Some(1));
    let text = format!(
        "$ estation feed build\n{build}\n$ estation feed verify feed\n{}\n$ estation feed verify feed   # one byte of the picture flipped\n{}{}",
        named(&stdout(&ok), &[(tmp, "[TMP]")]),
        named(&stdout(&bad), &[(tmp, "[TMP]")]),
        named(&common::stderr(&bad), &[(tmp, "[TMP]")]),
    );
    feed_filters().bind(|| insta::assert_snapshot!(text));
}

/// `status` of a kiosk that never synced, as text and JSON.
#[test]
fn status_on_an_empty_cache_snapshot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), &format!("[cache]\ndir = \"{}\"\n", dir.path().join("cache").display()));
    let text = kiosk(&config, dir.path()).arg("status").output().expect("run");
    assert!(text.status.success(), "{}", common::stderr(&text));
    insta::assert_snapshot!("status_text_empty_cache", named(&stdout(&text), &[(dir.path(), "[TMP]")]));
    let json = kiosk(&config, dir.path()).args(["status", "--json"]).output().expect("run");
    assert!(json.status.success(), "{}", common::stderr(&json));
    insta::assert_snapshot!("status_json_empty_cache", named(&stdout(&json), &[(dir.path(), "[TMP]")]));
}

/// `config show`: every setting, and where it came from.
#[test]
fn config_show_snapshot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "[audio]\nvolume = 35\n");
    let out = kiosk(&config, dir.path()).args(["config", "show"]).output().expect("run");
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = named(&stdout(&out), &[(dir.path(), "[TMP]"), (&root(), "[ROOT]")]);
    // The origins are aligned in a column, whose width depends on the
    // length of the temp folder's name.
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r" +# ", "  # ");
    settings.bind(|| insta::assert_snapshot!(text));
}
