//! Warnings through the real `estation` binary: `alert check` over real and
//! our own CAP files, `alert new` → `publish` → `cancel` on a signed feed,
//! upstream Atom sources polled from a real HTTP server on 127.0.0.1, and a
//! real window taken over by a published red rainstorm warning that goes
//! away after its Cancel.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::feedsrv::FeedServer;
use common::operator::{status_json, Operator};
use common::pixels::near;
use common::player::{Played, Player};
use common::{estation, poll_until, root, stderr, stdout, wait_until, Killed};

fn cap_dir() -> PathBuf {
    root().join("tests/data/cap")
}

fn check_json(files: &[PathBuf]) -> (bool, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), "");
    let out = estation(&config).args(["alert", "check", "--json"]).args(files).output().unwrap();
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    (out.status.success(), v)
}

#[test]
fn alert_check_reads_every_fixture_as_documented() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(cap_dir()).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "xml")).collect();
    files.sort();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let (ok, v) = check_json(std::slice::from_ref(f));
        let entries = v.as_array().unwrap();
        let invalid: Vec<&serde_json::Value> = entries.iter().filter(|e| e["valid"] == false).collect();
        if name.starts_with("bad-") {
            assert!(!ok, "{name} must fail the check");
            assert_eq!(invalid.len(), 1, "{name}: {v:#}");
            assert!(!invalid[0]["problems"].as_array().unwrap().is_empty());
        } else if name == "atom-one-bad.xml" {
            assert!(!ok);
            assert_eq!((entries.len(), invalid.len()), (3, 1), "one bad entry, the other two read: {v:#}");
            assert!(invalid[0]["problems"][0].as_str().unwrap().contains("alert/status: `Real`"));
        } else {
            assert!(ok, "{name} must pass: {v:#}");
        }
    }
    // Each bad file is refused for its own reason.
    let reason = |f: &str| {
        let (_, v) = check_json(&[cap_dir().join(f)]);
        v[0]["problems"][0].as_str().unwrap().to_string()
    };
    for (file, why) in [
        ("bad-xxe.xml", "<!DOCTYPE> is not allowed"),
        ("bad-billion-laughs.xml", "<!DOCTYPE> is not allowed"),
        ("bad-missing-identifier.xml", "alert/identifier: is missing"),
        ("bad-status.xml", "alert/status: `Real`"),
        ("bad-severity.xml", "alert/info/severity: `Red`"),
        ("bad-time-no-offset.xml", "has no time zone offset"),
        ("bad-polygon-open.xml", "is not closed"),
        ("bad-polygon-short.xml", "a polygon needs at least 4"),
        ("bad-circle.xml", "is not `lat,lon radius_km`"),
        ("bad-latitude.xml", "latitude 123"),
        ("bad-cancel-no-references.xml", "alert/references: is required for msgType Cancel"),
        ("bad-identifier-space.xml", "alert/identifier:"),
        ("bad-not-cap.xml", "neither a CAP alert nor an Atom or RSS feed"),
        ("bad-wrong-namespace.xml", "alert: namespace is"),
        ("bad-truncated.xml", "truncated"),
        ("bad-empty.xml", "empty document"),
        ("bad-references-syntax.xml", "is not a sender,identifier,sent triple"),
    ] {
        let got = reason(file);
        assert!(got.contains(why) && got.starts_with(&cap_dir().join(file).display().to_string()), "{file}: {got}");
    }
}

#[test]
fn the_normalised_cma_message() {
    let (ok, v) = check_json(&[cap_dir().join("cma-baoding-thunder-yellow.xml")]);
    assert!(ok);
    let a = &v[0]["alert"];
    assert_eq!(a["identifier"], "13060041600000_20240712213138");
    assert_eq!(a["status"], "Actual");
    assert_eq!(a["msg_type"], "Update");
    assert_eq!(a["language"], "zh-CN", "the Chinese block, though English comes first");
    assert_eq!(a["event"], "雷电");
    assert_eq!(a["severity"], "Moderate");
    assert_eq!(a["urgency"], "Unknown");
    assert_eq!(a["signal"]["level"], "yellow");
    assert_eq!(a["signal"]["hazard"], "lightning");
    assert_eq!(a["signal_name"], "雷电黄色预警");
    assert_eq!(a["expires"], "2024-07-13T03:31:38+08:00");
    assert_eq!(a["areas"][0]["geocodes"][0], "CPEAS Geographic Code=130602000000");
    assert_eq!(a["info_languages"], serde_json::json!(["en-US", "zh-CN"]));
    // A signed message reads; the signature is noted, not checked.
    let (ok, v) = check_json(&[cap_dir().join("belize-small-craft-signed-prefixed.xml")]);
    assert!(ok);
    assert_eq!(v[0]["alert"]["signed"], true);
}

/// An operator with keys and a feed of one 30-second card.
fn operator() -> Operator {
    let op = Operator::new();
    std::fs::write(
        op.path("playlists/main.toml"),
        "id = \"main\"\n[defaults]\nduration = \"30s\"\n[[items]]\nkind = \"text\"\ntitle = \"科普\"\nbackground = \"#1b5e20\"\n",
    )
    .unwrap();
    op.run(&["feed", "build", "--playlists", "playlists", "--key", "keys/feed-key.pem", "--out", "feed"]);
    op
}

/// `alert new` of a red rainstorm warning for 330522 for 6 h (`extra` may
/// replace the event, level, area and expiry); returns its identifier.
fn new_alert(op: &Operator, out: &str, extra: &[&str]) -> String {
    let mut args = vec!["alert", "new", "--sender", "changxing-qxt", "--sender-name", "长兴县气象台", "--out", out];
    for (flag, default) in [("--event", "暴雨"), ("--level", "red"), ("--area", "330522"), ("--expires", "6h")] {
        if !extra.contains(&flag) {
            args.extend([flag, default]);
        }
    }
    args.extend(["--description", "预计未来3小时降雨量将达100毫米以上", "--instruction", "停止集会、停课、停业"]);
    args.extend_from_slice(extra);
    op.run(&args);
    let text = std::fs::read_to_string(op.path(out)).unwrap();
    text.split("<identifier>").nth(1).unwrap().split('<').next().unwrap().to_string()
}

/// The messages the feed's warnings document lists; the manifest lists none.
fn feed_alerts(op: &Operator) -> usize {
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(op.path("feed/manifest.json")).unwrap()).unwrap();
    assert!(m["signed"].get("alerts").is_none(), "warnings are in alerts.json only: {m}");
    let d: serde_json::Value = serde_json::from_slice(&std::fs::read(op.path("feed/alerts.json")).unwrap()).unwrap();
    d["signed"]["alerts"].as_array().unwrap().len()
}

/// A kiosk config in 330522 (长兴县), polling the feed at `feed_url` every 5 s.
fn kiosk_config(op: &Operator, dir: &Path, feed_url: Option<&str>, extra: &str) -> PathBuf {
    let url = feed_url.map(|u| format!("url = \"{u}\"\ninterval = \"5s\"\n")).unwrap_or_default();
    op.kiosk_with(dir, "region = \"330522\"\n", &url, extra)
}

#[test]
fn new_publish_and_cancel_on_a_signed_feed_reach_the_kiosk() {
    let op = operator();
    let id = new_alert(&op, "w.xml", &[]);
    assert!(op.run(&["alert", "check", "w.xml"]).contains("valid CAP 1.2 Alert (Actual)"));
    let before = std::fs::read_dir(op.path("feed/blobs")).unwrap().count();
    let out = op.run(&["alert", "publish", "w.xml", "--feed", "feed", "--key", "keys/feed-key.pem"]);
    assert!(out.contains("1 alert message(s) in the feed"), "{out}");
    assert_eq!(std::fs::read_dir(op.path("feed/blobs")).unwrap().count(), before + 1, "only the alert file is new");
    op.run(&["feed", "verify", "feed", "--public-key", "keys/feed-key.pub"]);
    // Published twice: refused, feed unchanged.
    let again = op.try_run(&["alert", "publish", "w.xml", "--feed", "feed", "--key", "keys/feed-key.pem"]);
    assert!(!again.status.success() && stderr(&again).contains("is already in the feed"));
    // A content rebuild keeps the published alert.
    op.run(&["feed", "build", "--playlists", "playlists", "--key", "keys/feed-key.pem", "--out", "feed"]);
    assert_eq!(feed_alerts(&op), 1);

    // A kiosk in 330522 takes it from the feed (a USB copy here).
    let kiosk = tempfile::tempdir().unwrap();
    let config = kiosk_config(&op, kiosk.path(), None, "");
    let out = estation(&config).args(["sync", "--from"]).arg(op.path("feed")).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let st = status_json(&config);
    assert_eq!(st["alerts"][0]["treatment"], "takeover", "{st:#}");
    assert_eq!(st["alerts"][0]["title"], "暴雨红色预警");
    // A kiosk elsewhere (110101, Beijing) does not show it.
    let far = tempfile::tempdir().unwrap();
    let far_config = kiosk_config(&op, far.path(), None, "");
    std::fs::write(&far_config, std::fs::read_to_string(&far_config).unwrap().replace("330522", "110101")).unwrap();
    estation(&far_config).args(["sync", "--from"]).arg(op.path("feed")).output().unwrap();
    assert_eq!(status_json(&far_config)["alerts"], serde_json::json!([]));

    // An update, then a Cancel of the chain: the feed carries all three, so
    // a kiosk that saw any part of it ends up with nothing shown.
    let key = |file: &str| {
        let t = std::fs::read_to_string(op.path(file)).unwrap();
        let field = |n: &str| t.split(&format!("<{n}>")).nth(1).unwrap().split('<').next().unwrap().to_string();
        format!("{},{},{}", field("sender"), field("identifier"), field("sent"))
    };
    let first = key("w.xml");
    // About time passing: CAP's `sent` has whole seconds, and the update
    // must be sent later than what it updates.
    std::thread::sleep(Duration::from_secs(1));
    new_alert(&op, "u.xml", &["--updates", &first, "--level", "orange"]);
    op.run(&["alert", "publish", "u.xml", "--feed", "feed", "--key", "keys/feed-key.pem"]);
    let out = estation(&config).args(["sync", "--from"]).arg(op.path("feed")).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let st = status_json(&config);
    assert_eq!(st["alerts"].as_array().unwrap().len(), 1, "the update replaced the alert: {st:#}");
    assert_eq!(st["alerts"][0]["title"], "暴雨橙色预警");
    let out = op.run(&["alert", "cancel", &id, "--feed", "feed", "--key", "keys/feed-key.pem"]);
    assert!(out.contains("3 alert message(s) in the feed"), "{out}");
    let cancel: serde_json::Value = {
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(op.path("feed/alerts.json")).unwrap()).unwrap();
        let last = m["signed"]["alerts"].as_array().unwrap().last().unwrap()["sha256"].as_str().unwrap().to_string();
        let (_, v) = check_json(&[op.path(&format!("feed/blobs/{last}.xml"))]);
        v
    };
    assert_eq!(cancel[0]["alert"]["msg_type"], "Cancel");
    assert_eq!(cancel[0]["alert"]["references"].as_array().unwrap().len(), 2, "the whole chain: {cancel:#}");
    let out = estation(&config).args(["sync", "--from"]).arg(op.path("feed")).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let st = status_json(&config);
    assert_eq!(st["alerts"], serde_json::json!([]), "{st:#}");
    // Cancelling what is not there names what is.
    let none = op.try_run(&["alert", "cancel", "nope", "--feed", "feed", "--key", "keys/feed-key.pem"]);
    assert!(stderr(&none).contains("no alert with identifier `nope`"), "{}", stderr(&none));
    // Bad arguments name the flag.
    let bad = op.try_run(&["alert", "new", "--event", "暴雨", "--area", "33052", "--out", "x.xml"]);
    assert!(!bad.status.success() && stderr(&bad).contains("--area: `33052` is not a 6- or 12-digit"), "{}", stderr(&bad));
}

#[test]
fn exercises_show_only_where_the_config_allows_them() {
    let op = operator();
    new_alert(&op, "ex.xml", &["--status", "exercise"]);
    op.run(&["alert", "publish", "ex.xml", "--feed", "feed", "--key", "keys/feed-key.pem"]);
    let kiosk = tempfile::tempdir().unwrap();
    let quiet = kiosk_config(&op, kiosk.path(), None, "");
    estation(&quiet).args(["sync", "--from"]).arg(op.path("feed")).output().unwrap();
    assert_eq!(status_json(&quiet)["alerts"], serde_json::json!([]));
    assert_eq!(status_json(&quiet)["alert_messages"], 1);
    let shows = kiosk_config(&op, kiosk.path(), None, "[alerts]\nshow_exercise = true\n");
    let st = status_json(&shows);
    assert_eq!(st["alerts"][0]["mark"], "演练", "{st:#}");
}

/// A kiosk in 330522 with no feed, polling `server`'s `index.atom` every 5 s.
fn upstream_kiosk(dir: &Path, server: &FeedServer) -> PathBuf {
    common::write_config(
        dir,
        &format!(
            "region = \"330522\"\n[cache]\ndir = \"{}\"\n[[alerts.source]]\nurl = \"{}index.atom\"\ninterval = \"5s\"\nallow_http = true\n",
            dir.join("cache").display(),
            server.url()
        ),
    )
}

/// An Atom index of CAP files, as a national service publishes it.
fn write_index(dir: &Path, files: &[&str]) {
    let entries: String = files
        .iter()
        .map(|f| format!("<entry><id>urn:test:{f}</id><title>{f}</title><updated>2026-11-23T08:00:00+08:00</updated><link href=\"{f}\" type=\"application/cap+xml\"/></entry>"))
        .collect();
    std::fs::write(
        dir.join("index.atom"),
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><feed xmlns=\"http://www.w3.org/2005/Atom\"><id>urn:test</id><title>t</title><updated>2026-11-23T08:00:00+08:00</updated>{entries}</feed>"),
    )
    .unwrap();
}

#[test]
fn upstream_atom_sources_are_polled_with_conditional_gets() {
    let op = operator();
    let upstream = tempfile::tempdir().unwrap();
    new_alert(&op, upstream.path().join("red.xml").to_str().unwrap(), &[]);
    let yellow = new_alert(&op, upstream.path().join("heat.xml").to_str().unwrap(), &["--event", "高温", "--level", "yellow", "--area", "330500"]);
    std::fs::write(upstream.path().join("broken.xml"), "<alert>").unwrap();
    write_index(upstream.path(), &["red.xml", "heat.xml", "broken.xml"]);
    let server = FeedServer::start(upstream.path().to_path_buf());
    // The red warning links its spoken version (checked by its SHA-1); a
    // second link's digest is wrong, so that file must not be kept.
    let wav = b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x00\x00\x00\x00";
    std::fs::write(upstream.path().join("speech.wav"), wav).unwrap();
    let sha1 = hex::encode(<sha1::Sha1 as sha1::Digest>::digest(wav));
    let link = |file: &str, digest: &str| {
        format!("<resource><resourceDesc>语音播报</resourceDesc><mimeType>audio/wav</mimeType><uri>{}{file}</uri><digest>{digest}</digest></resource>", server.url())
    };
    let red = std::fs::read_to_string(upstream.path().join("red.xml")).unwrap();
    let red = red.replacen("<area>", &format!("{}{}<area>", link("speech.wav", &sha1), link("speech.wav?bad", &"0".repeat(40))), 1);
    std::fs::write(upstream.path().join("red.xml"), red).unwrap();

    // A screen with upstream sources and no feed at all.
    let kiosk = tempfile::tempdir().unwrap();
    let config = upstream_kiosk(kiosk.path(), &server);
    let out = estation(&config).args(["sync", "--once"]).output().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("broken.xml"), "the bad entry is named: {}", stderr(&out));
    let st = status_json(&config);
    let titles: Vec<&str> = st["alerts"].as_array().unwrap().iter().map(|a| a["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["暴雨红色预警", "高温黄色预警"], "{st:#}");
    assert_eq!(st["alerts"][1]["treatment"], "banner");
    assert!(!yellow.is_empty());
    let cached = |uri: String| kiosk.path().join("cache/alert-media").join(estation::core::feed::Digest::of(uri.as_bytes()).hex());
    assert_eq!(std::fs::read(cached(format!("{}speech.wav", server.url()))).unwrap(), wav, "the linked audio is in the cache");
    assert!(!cached(format!("{}speech.wav?bad", server.url())).exists(), "a digest mismatch is not kept");
    assert!(stderr(&out).contains("SHA-1 is"), "{}", stderr(&out));

    // Polling on: the second poll of the unchanged index is a 304.
    server.take_seen();
    let child = Killed::spawn(estation(&config).arg("sync").stdout(Stdio::null()).stderr(Stdio::null()));
    let index_polls = || server.seen().iter().filter(|s| s.path == "/index.atom").count();
    wait_until(Duration::from_secs(30), "two polls of the index", || index_polls() >= 2);
    drop(child);
    let seen = server.take_seen();
    let index: Vec<_> = seen.iter().filter(|s| s.path == "/index.atom").collect();
    assert!(index.len() >= 2, "{seen:?}");
    assert_eq!(index[1].status, 304, "{seen:?}");
    assert!(index[1].if_none_match.is_some());
}

/// The attack of the trust issue: a feed warning's CAP file is public, so
/// anyone can write a Cancel naming it, or the same identifier with a later
/// `sent` and a lower severity, and serve it as an "upstream source".
#[test]
fn an_upstream_source_can_neither_cancel_nor_downgrade_a_signed_feed_warning() {
    let op = operator();
    new_alert(&op, "w.xml", &[]);
    op.run(&["alert", "publish", "w.xml", "--feed", "feed", "--key", "keys/feed-key.pem"]);
    let feed = FeedServer::start(op.path("feed"));
    let w = std::fs::read_to_string(op.path("w.xml")).unwrap();
    let field = |n: &str| w.split(&format!("<{n}>")).nth(1).unwrap().split('<').next().unwrap().to_string();
    let (sender, id, sent) = (field("sender"), field("identifier"), field("sent"));
    let later = (chrono::DateTime::parse_from_rfc3339(&sent).unwrap() + chrono::Duration::minutes(1)).to_rfc3339();

    let evil = tempfile::tempdir().unwrap();
    let cancel = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"><identifier>evil-cancel</identifier>\
         <sender>{sender}</sender><sent>{later}</sent><status>Actual</status><msgType>Cancel</msgType><scope>Public</scope>\
         <references>{sender},{id},{sent}</references></alert>"
    );
    std::fs::write(evil.path().join("cancel.xml"), cancel).unwrap();
    let latest = (chrono::DateTime::parse_from_rfc3339(&sent).unwrap() + chrono::Duration::minutes(2)).to_rfc3339();
    let downgrade = w.replace(&format!("<sent>{sent}</sent>"), &format!("<sent>{latest}</sent>")).replace("Extreme", "Minor").replace("红色", "蓝色").replace("Ⅰ级/特别严重", "Ⅳ级/一般").replace(">0204<", ">0201<");
    std::fs::write(evil.path().join("downgrade.xml"), downgrade).unwrap();
    write_index(evil.path(), &["cancel.xml", "downgrade.xml"]);
    let upstream = FeedServer::start(evil.path().to_path_buf());

    let kiosk_with = |extra: &str| {
        let dir = tempfile::tempdir().unwrap();
        let source = format!("[[alerts.source]]\nurl = \"{}index.atom\"\nallow_http = true\n{extra}", upstream.url());
        let config = kiosk_config(&op, dir.path(), Some(&feed.url()), &source);
        let out = estation(&config).args(["sync", "--once"]).output().unwrap();
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        (dir, config, stderr(&out))
    };
    let (_dir, config, log) = kiosk_with("");
    let st = status_json(&config);
    let takeover: Vec<&str> = st["alerts"].as_array().unwrap().iter().filter(|a| a["treatment"] == "takeover").map(|a| a["title"].as_str().unwrap()).collect();
    assert_eq!(takeover, ["暴雨红色预警"], "the feed's red warning is still on screen: {st:#}");
    assert_eq!(st["alerts"][0]["source"], "feed");
    assert!(log.contains("reference(s) to messages of another source ignored"), "{log}");
    // What the upstream sent is shown as its own, marked as plain HTTP.
    let theirs: Vec<&serde_json::Value> = st["alerts"].as_array().unwrap().iter().filter(|a| a["source"] != "feed").collect();
    assert_eq!(theirs.len(), 1, "{st:#}");
    assert_eq!((&theirs[0]["title"], &theirs[0]["over_http"]), (&serde_json::json!("暴雨蓝色预警"), &serde_json::json!(true)), "{st:#}");
    let text = stdout(&estation(&config).arg("status").output().unwrap());
    assert!(text.contains("over plain HTTP: not authenticated"), "{text}");

    // A county that names the upstream as the authority for this sender
    // lets its Cancel end the warning.
    write_index(evil.path(), &["cancel.xml"]);
    let (_dir, config, _) = kiosk_with(&format!("authority_for = [\"{sender}\"]\n"));
    assert_eq!(status_json(&config)["alerts"], serde_json::json!([]));
}

#[test]
fn an_index_entry_that_failed_to_fetch_is_fetched_again_at_the_next_poll() {
    let op = operator();
    let upstream = tempfile::tempdir().unwrap();
    new_alert(&op, upstream.path().join("red.xml").to_str().unwrap(), &[]);
    write_index(upstream.path(), &["red.xml"]);
    let server = FeedServer::start(upstream.path().to_path_buf());
    server.set(|k| k.fail_path = Some(("/red.xml".into(), 503, 1)));
    let kiosk = tempfile::tempdir().unwrap();
    let config = upstream_kiosk(kiosk.path(), &server);
    let child = Killed::spawn(estation(&config).arg("sync").stdout(Stdio::null()).stderr(Stdio::null()));
    let shown = poll_until(Duration::from_secs(30), Duration::from_millis(250), || status_json(&config)["alerts"].as_array().is_some_and(|a| !a.is_empty()));
    drop(child);
    let seen = server.take_seen();
    assert!(shown, "the warning whose first fetch failed never reached the screen: {seen:?}");
    let red: Vec<u16> = seen.iter().filter(|s| s.path == "/red.xml").map(|s| s.status).collect();
    assert_eq!(red[..2], [503, 200], "{seen:?}");
    let index: Vec<u16> = seen.iter().filter(|s| s.path == "/index.atom").map(|s| s.status).collect();
    assert_eq!(index[..2], [200, 200], "the index is not taken as seen while an entry is missing: {seen:?}");
}

/// The kiosk's clock set wrong (libfaketime on the real binary): set back
/// (2 days, 3 years) it must not bring an expired warning back; running a
/// day slow it must not hold a new warning back; `status` says so.
#[test]
fn a_clock_set_back_or_running_slow_neither_brings_back_nor_hides_a_warning() {
    let op = operator();
    // A warning that ended a day and a half ago (written two days ago), and a new one.
    let old = common::estation_at("-2d", &op.path("config.toml"))
        .current_dir(op.dir.path())
        .args(["alert", "new", "--sender", "changxing-qxt", "--event", "暴雨", "--level", "orange", "--area", "330522", "--expires", "6h", "--out", "old.xml"])
        .output()
        .unwrap();
    assert!(old.status.success(), "{}", stderr(&old));
    op.run(&["alert", "publish", "old.xml", "--feed", "feed", "--key", "keys/feed-key.pem"]);
    new_alert(&op, "new.xml", &[]);
    op.run(&["alert", "publish", "new.xml", "--feed", "feed", "--key", "keys/feed-key.pem"]);
    let feed = FeedServer::start(op.path("feed"));
    let titles = |st: &serde_json::Value| st["alerts"].as_array().unwrap().iter().map(|a| a["title"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let status_at = |offset: &str, config: &Path| {
        let out = common::estation_at(offset, config).args(["status", "--json"]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap()
    };

    // Synced with a good clock, then the clock is set back: the expired
    // orange warning stays away, the red one stays up.
    let kiosk = tempfile::tempdir().unwrap();
    let config = kiosk_config(&op, kiosk.path(), Some(&feed.url()), "");
    let out = estation(&config).args(["sync", "--once"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(titles(&status_json(&config)), ["暴雨红色预警"]);
    for back in ["-2d", "-3y"] {
        assert_eq!(titles(&status_at(back, &config)), ["暴雨红色预警"], "clock set {back}");
    }
    // Syncing on the wrong clock does not bring it back either, and says
    // how far off the clock is.
    let out = common::estation_at("-2d", &config).args(["sync", "--once"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let st = status_at("-2d", &config);
    assert_eq!(titles(&st), ["暴雨红色预警"], "{st:#}");
    assert!(st["clock_problem"].as_str().is_some_and(|c| c.contains("behind")), "{st:#}");

    // A kiosk whose clock has always run a day slow still shows the new
    // warning (its <effective> is tomorrow by that clock).
    let slow = tempfile::tempdir().unwrap();
    let config = kiosk_config(&op, slow.path(), Some(&feed.url()), "");
    let out = common::estation_at("-1d", &config).args(["sync", "--once"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let st = status_at("-1d", &config);
    assert_eq!(titles(&st), ["暴雨红色预警"], "{st:#}");
    let text = stdout(&common::estation_at("-1d", &config).arg("status").output().unwrap());
    assert!(text.contains("clock:") && text.contains("1day behind"), "{text}");

    // A day fast: warned about, not corrected backwards.
    let fast = tempfile::tempdir().unwrap();
    let config = kiosk_config(&op, fast.path(), Some(&feed.url()), "");
    let out = common::estation_at("+1d", &config).args(["sync", "--once"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(status_at("+1d", &config)["clock_problem"].as_str().is_some_and(|c| c.contains("ahead")));
}

/// A slow host must never hold up a Cancel: the warning's linked audio sits
/// on a server that answers after minutes, and the source's Cancel still
/// takes the warning off within a poll or two.
#[test]
fn a_slow_audio_host_does_not_hold_up_the_cancel() {
    let op = operator();
    let slow_dir = tempfile::tempdir().unwrap();
    std::fs::write(slow_dir.path().join("speech.wav"), b"RIFF").unwrap();
    let slow = FeedServer::start(slow_dir.path().to_path_buf());
    slow.set(|k| k.delay = Duration::from_secs(300));
    let upstream = tempfile::tempdir().unwrap();
    let id = new_alert(&op, upstream.path().join("red.xml").to_str().unwrap(), &[]);
    let red = std::fs::read_to_string(upstream.path().join("red.xml")).unwrap();
    let audio = format!("<resource><resourceDesc>语音</resourceDesc><mimeType>audio/wav</mimeType><uri>{}speech.wav</uri><digest>{}</digest></resource>", slow.url(), "0".repeat(40));
    std::fs::write(upstream.path().join("red.xml"), red.replacen("<area>", &format!("{audio}<area>"), 1)).unwrap();
    write_index(upstream.path(), &["red.xml"]);
    let server = FeedServer::start(upstream.path().to_path_buf());
    let kiosk = tempfile::tempdir().unwrap();
    let config = upstream_kiosk(kiosk.path(), &server);
    let child = Killed::spawn(estation(&config).arg("sync").stdout(Stdio::null()).stderr(Stdio::null()));
    let shown = || status_json(&config)["alerts"].as_array().is_some_and(|a| !a.is_empty());
    // Each look runs `estation status`: four a second are plenty.
    common::wait_until_every(Duration::from_millis(250), Duration::from_secs(20), "the warning to come", shown);
    // The source cancels it (its own message) while the audio still hangs.
    let w = std::fs::read_to_string(upstream.path().join("red.xml")).unwrap();
    let field = |n: &str| w.split(&format!("<{n}>")).nth(1).unwrap().split('<').next().unwrap().to_string();
    let later = (chrono::DateTime::parse_from_rfc3339(&field("sent")).unwrap() + chrono::Duration::minutes(1)).to_rfc3339();
    std::fs::write(
        upstream.path().join("cancel.xml"),
        format!(
            "<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"><identifier>c-{id}</identifier><sender>{}</sender><sent>{later}</sent>\
             <status>Actual</status><msgType>Cancel</msgType><scope>Public</scope><references>{},{id},{}</references></alert>",
            field("sender"),
            field("sender"),
            field("sent")
        ),
    )
    .unwrap();
    write_index(upstream.path(), &["red.xml", "cancel.xml"]);
    let cleared = poll_until(Duration::from_secs(25), Duration::from_millis(250), || status_json(&config)["alerts"].as_array().is_some_and(|a| a.is_empty()));
    drop(child);
    assert!(cleared, "the Cancel waited on the slow audio host");
}

/// Plays the kiosk's cache in a 640×360 window; the closure runs once the
/// first frame is on screen (`player.json` written) and gets that instant.
/// Sound goes to the ALSA device `pcm` (see [`Player::sound`]).
fn play(config: &Path, kiosk: &Path, pcm: &str, shots: &[f32], during: impl FnOnce(Instant)) -> (String, Vec<image::RgbImage>) {
    let at: Vec<String> = shots.iter().map(|s| format!("{s}s")).collect();
    let at: Vec<&str> = at.iter().map(String::as_str).collect();
    let mut running = Player::new(config).window(640, 360).sound(pcm).shots(&at).spawn();
    // Under a takeover from the start no playlist item is put on screen (and
    // reported); the player then just takes its screenshots and ends.
    wait_until(Duration::from_secs(120), "the player's first frame (player.json)", || kiosk.join("player.json").exists() || running.exited());
    during(Instant::now());
    let Played { log, shots } = running.finish();
    (log, shots)
}

const SIGNAL_RED: [u8; 3] = [215, 0, 15];
const CARD_GREEN: [u8; 3] = [0x1b, 0x5e, 0x20];

#[test]
fn a_published_red_warning_takes_over_within_one_poll_and_leaves_after_its_cancel() {
    let op = operator();
    let server = FeedServer::start(op.path("feed"));
    let kiosk = tempfile::tempdir().unwrap();
    let config = kiosk_config(&op, kiosk.path(), Some(&server.url()), "");
    // The kiosk has the feed before the player starts.
    let out = estation(&config).args(["sync", "--once"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    // Feed interval 5 s (±10 % jitter) and a 1 s look at the store: a
    // message published at 2 s is on screen by 9 s, and one at 14 s by 21 s.
    let shots = [1.5, 11.0, 13.5, 23.5];
    let (log, imgs) = play(&config, kiosk.path(), "type null", &shots, |t0| {
        let id = new_alert(&op, "w.xml", &[]);
        // About time passing: the test is how soon a message published at
        // a given instant is on screen, so it is published at that instant.
        std::thread::sleep(Duration::from_secs(2).saturating_sub(t0.elapsed()));
        op.run(&["alert", "publish", "w.xml", "--feed", "feed", "--key", "keys/feed-key.pem"]);
        std::thread::sleep(Duration::from_secs(14).saturating_sub(t0.elapsed()));
        op.run(&["alert", "cancel", &id, "--feed", "feed", "--key", "keys/feed-key.pem"]);
        // The feed server stays up until the player has taken its last
        // screenshot and ended.
    });
    let (w, _) = imgs[0].dimensions();
    assert!(near(&imgs[0], 6, 6, CARD_GREEN, 16), "before: the playlist; (6,6) is {:?}\n{log}", imgs[0].get_pixel(6, 6));
    for (i, img) in imgs[1..3].iter().enumerate() {
        assert!(near(img, w / 2, 4, SIGNAL_RED, 16), "shot {}: the takeover's red header is not on screen; the top is {:?}\n{log}", i + 2, img.get_pixel(w / 2, 4));
        // The icon's white frame sits at the header's left.
        let frame = (0..80).any(|x| near(img, x, 40, [255, 255, 255], 16));
        assert!(frame, "shot {}: no icon frame", i + 2);
    }
    assert!(near(&imgs[3], 6, 6, CARD_GREEN, 16), "after the Cancel the playlist is back; (6,6) is {:?}\n{log}", imgs[3].get_pixel(6, 6));
    assert!(log.contains("alerts: takeover 暴雨红色预警"), "{log}");
    // The chime sounded on the (null) device.
    assert!(log.contains("alerts: chime") && log.contains("audio: sound on the default output device"), "{log}");
}

#[test]
fn no_sound_device_means_a_silent_takeover_not_a_crash() {
    let op = operator();
    new_alert(&op, "w.xml", &[]);
    op.run(&["alert", "publish", "w.xml", "--feed", "feed", "--key", "keys/feed-key.pem"]);
    let kiosk = tempfile::tempdir().unwrap();
    let config = kiosk_config(&op, kiosk.path(), None, "");
    let out = estation(&config).args(["sync", "--from"]).arg(op.path("feed")).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let (log, imgs) = play(&config, kiosk.path(), "type hw card 99", &[3.0], |_| {});
    let (w, _) = imgs[0].dimensions();
    assert!(near(&imgs[0], w / 2, 4, SIGNAL_RED, 16), "{log}");
    assert!(log.contains("alerts: chime") && log.contains("audio: no output device"), "{log}");
}

#[test]
fn a_warning_leaves_the_screen_when_it_expires_with_no_network() {
    let op = operator();
    // Long enough that the player is up well before it ends, even on a
    // loaded machine; the second screenshot is surely after it.
    new_alert(&op, "short.xml", &["--expires", "30s"]);
    op.run(&["alert", "publish", "short.xml", "--feed", "feed", "--key", "keys/feed-key.pem"]);
    let kiosk = tempfile::tempdir().unwrap();
    // No feed URL: the kiosk has what the USB copy brought, and its clock.
    let config = kiosk_config(&op, kiosk.path(), None, "");
    let out = estation(&config).args(["sync", "--from"]).arg(op.path("feed")).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let published = Instant::now();
    // Screenshot times count from the first frame, a second or two after
    // start; the first waits as long as the other takeover tests do, for a
    // loaded machine's software renderer.
    let (log, imgs) = play(&config, kiosk.path(), "type null", &[3.0, 31.0], |_| {});
    assert!(published.elapsed() > Duration::from_secs(31), "the run must outlast the warning");
    let (w, _) = imgs[0].dimensions();
    assert!(near(&imgs[0], w / 2, 4, SIGNAL_RED, 16), "the warning is up at first; the top is {:?}\n{log}", imgs[0].get_pixel(w / 2, 4));
    assert!(near(&imgs[1], 6, 6, CARD_GREEN, 16), "expired: the playlist is back; (6,6) is {:?}\n{log}", imgs[1].get_pixel(6, 6));
}
