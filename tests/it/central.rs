//! The central service, for real, on SQLite and on PostgreSQL (a throw-away
//! server started here): screens enrolled with a token shown once, their
//! heartbeats checked and stored, the fleet view from the command line and
//! the JSON API, and two services sharing one PostgreSQL.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use estation::core::heartbeat::Heartbeat;
use estation::net::central::{self, CentralError};

use crate::common::operator::Operator;
use crate::common::pg::Postgres;
use crate::common::{stderr, stdout};

fn central(db: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_estation-central"));
    c.arg("--db").arg(db).env("RUST_LOG", "info");
    c
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "estation-central failed: {}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

/// A running `estation-central serve`, stopped on drop.
struct Service {
    child: Child,
    url: reqwest::Url,
}

impl Service {
    fn start(db: &str, feed: &Path) -> Service {
        let mut child = central(db)
            .args(["serve", "--listen", "127.0.0.1:0", "--feed"])
            .arg(feed)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start estation-central serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the listening line");
        let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("not a listening line: {line:?}"));
        Service { child, url: reqwest::Url::parse(url).expect("a URL") }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn beat(software: &str) -> Heartbeat {
    Heartbeat {
        sent_at: chrono::Utc::now(),
        software: software.into(),
        feed_version: Some(3),
        on_screen: Some("school/暴雨来临前".into()),
        warnings: vec!["44000041600000_20261202080000".into()],
        last_sync: Some(chrono::Utc::now()),
        last_error: None,
        uptime_secs: 60,
        disk_free: Some(1 << 30),
        clock_offset_ms: Some(0),
        sound: None,
        renderer: Some("gl on \"llvmpipe\"".into()),
        every_secs: 300,
    }
}

/// A one-minute play of item `seq` (number `seq`) an hour ago.
fn record(seq: u64) -> estation::core::proof::Record {
    let start = chrono::Utc::now() - chrono::Duration::hours(1) + chrono::Duration::minutes(seq as i64);
    estation::core::proof::Record {
        seq,
        entry: estation::core::proof::Entry {
            start,
            end: start + chrono::Duration::minutes(1),
            cont: false,
            what: estation::core::proof::What::Play { playlist: "main".into(), item: format!("第{seq}项"), feed_version: Some(3) },
        },
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

fn client() -> reqwest::Client {
    estation::net::http::client_builder().build().expect("a client")
}

/// What a raw request to the API answers: status and body.
fn raw(rt: &tokio::runtime::Runtime, req: reqwest::RequestBuilder) -> (u16, String) {
    rt.block_on(async {
        let resp = req.send().await.expect("the service answers");
        (resp.status().as_u16(), resp.text().await.unwrap_or_default())
    })
}

/// The whole flow on one database URL.
fn enrol_beat_and_list(db: &str) {
    let op = Operator::new();
    op.card("考核", "#204060");
    assert!(op.build().status.success());
    let token_line = ok(central(db).args(["screen", "add", "kiosk-1", "--name", "东山村文化礼堂", "--region", "440106"]).output().unwrap());
    let token = token_line.lines().find_map(|l| l.strip_prefix("token = \"")?.strip_suffix('"')).expect("the token line").to_string();
    let token2_line = ok(central(db).args(["screen", "add", "kiosk-2", "--name", "西村", "--region", "440201"]).output().unwrap());
    let token2 = token2_line.lines().find_map(|l| l.strip_prefix("token = \"")?.strip_suffix('"')).expect("the token line").to_string();
    let again = central(db).args(["screen", "add", "kiosk-1", "--name", "x", "--region", "440106"]).output().unwrap();
    assert!(!again.status.success() && stderr(&again).contains("enrolled already"), "{}", stderr(&again));
    let bad_region = central(db).args(["screen", "add", "kiosk-3", "--name", "x", "--region", "44a1"]).output().unwrap();
    assert!(!bad_region.status.success() && stderr(&bad_region).contains("region `44a1`"), "{}", stderr(&bad_region));

    let service = Service::start(db, &op.path("feed"));
    let rt = runtime();
    let client = client();
    // The feed folder is served as `feed serve` serves it.
    let (status, manifest) = raw(&rt, client.get(service.url.join("manifest.json").unwrap()));
    assert_eq!(status, 200, "{manifest}");
    assert!(manifest.contains("\"version\""), "{manifest}");

    // The real heartbeat, as the kiosk sends it.
    let answer = rt.block_on(central::heartbeat(&client, &service.url, "kiosk-1", &token, &beat("estation 0.1.0"))).expect("the heartbeat is taken");
    assert!(answer.server_date.is_some(), "the answer has a Date");
    // Refusals name the problem and store nothing.
    let refused = |screen: &str, token: &str| rt.block_on(central::heartbeat(&client, &service.url, screen, token, &beat("estation 9.9.9")));
    match refused("kiosk-1", "est1_0000") {
        Err(CentralError::Refused { status: 401, message, .. }) => assert!(message.contains("wrong token"), "{message}"),
        other => panic!("a wrong token: {other:?}"),
    }
    match refused("kiosk-2", &token) {
        Err(CentralError::Refused { status: 401, .. }) => {}
        other => panic!("another screen's token: {other:?}"),
    }
    match refused("nobody", &token) {
        Err(CentralError::Refused { status: 401, .. }) => {}
        other => panic!("an unknown screen: {other:?}"),
    }
    let url = central::heartbeat_url(&service.url, "kiosk-1").unwrap();
    let (status, body) = raw(&rt, client.post(url.clone()).bearer_auth(&token).body(r#"{"sent_at":"2026-12-02T08:00:00Z","software":"x","feed_version":"seven"}"#));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("feed_version"), "the field is named: {body}");
    let (status, body) = raw(&rt, client.post(url.clone()).bearer_auth(&token).body(vec![b' '; 100 * 1024]));
    assert_eq!(status, 413, "{body}");
    let mut control = beat("estation 0.1.0");
    control.last_error = Some("\u{1b}[2J".into());
    let (status, body) = raw(&rt, client.post(url.clone()).bearer_auth(&token).body(serde_json::to_vec(&control).unwrap()));
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("last_error"), "{body}");
    let (status, _) = raw(&rt, client.post(url.clone()).body(serde_json::to_vec(&beat("x")).unwrap()));
    assert_eq!(status, 401, "no token");

    // Proof of play: stored once however often it comes, refused whole
    // when any record is wrong, naming it.
    let stream = "00112233445566778899aabbccddeeff".to_string();
    let batch = |seqs: std::ops::RangeInclusive<u64>| estation::core::proof::Batch { stream: stream.clone(), records: seqs.map(record).collect() };
    let upload = |b: &estation::core::proof::Batch| rt.block_on(central::upload_proof(&client, &service.url, "kiosk-1", &token, b));
    assert_eq!(upload(&batch(1..=3)).expect("stored"), estation::core::proof::Stored { through: 3, new: 3 });
    assert_eq!(upload(&batch(1..=3)).expect("again"), estation::core::proof::Stored { through: 3, new: 0 }, "sent again, stored once");
    assert_eq!(upload(&batch(2..=5)).expect("overlapping"), estation::core::proof::Stored { through: 5, new: 2 });
    let mut bad = batch(6..=8);
    bad.records[1].entry.what = estation::core::proof::What::Play { playlist: "main".into(), item: "\u{7}".into(), feed_version: None };
    match upload(&bad) {
        Err(CentralError::Refused { status: 422, message, .. }) => assert!(message.contains("records[1].item"), "{message}"),
        other => panic!("a bad record: {other:?}"),
    }
    let proof_url = service.url.join("api/v1/screens/kiosk-1/proof").unwrap();
    let (status, body) = raw(&rt, client.post(proof_url.clone()).bearer_auth(&token).body(format!(r#"{{"stream":"{stream}","records":[{{"seq":9,"entry":{{"start":"soon"}}}}]}}"#)));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("records[0].entry.start"), "the field is named: {body}");
    let (status, _) = raw(&rt, client.post(proof_url).bearer_auth(&token).body(vec![b' '; 600 * 1024]));
    assert_eq!(status, 413);
    match rt.block_on(central::upload_proof(&client, &service.url, "kiosk-2", &token, &batch(1..=1))) {
        Err(CentralError::Refused { status: 401, .. }) => {}
        other => panic!("another screen's token: {other:?}"),
    }
    let office = rt.block_on(estation::central::db::Db::open(db)).unwrap();
    assert_eq!(rt.block_on(office.proof_extent("kiosk-1")).unwrap(), (5, 5), "nothing of a refused batch is stored");

    // Screenshots: asked for by the office, answered in the heartbeat,
    // checked (a JPEG, the taken time), the newest few kept.
    assert!(!answer.screenshot, "nothing asked yet");
    ok(central(db).args(["screenshot", "kiosk-1", "--ask"]).output().unwrap());
    let asked = rt.block_on(central::heartbeat(&client, &service.url, "kiosk-1", &token, &beat("estation 0.1.0"))).expect("taken");
    assert!(asked.screenshot, "the heartbeat's answer asks for a screenshot");
    let frame = |shade: u8| {
        let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(1280, 720, image::Rgb([shade, 40, 40])));
        estation::store::screenshot::encode(&img).unwrap()
    };
    let now = chrono::Utc::now();
    let shot = |i: i64| rt.block_on(central::upload_screenshot(&client, &service.url, "kiosk-1", &token, frame(50 * i as u8), now - chrono::Duration::minutes(10 - i)));
    for i in 1..=3 {
        assert_eq!(shot(i).expect("a screenshot is taken").kept, i as u64);
    }
    match shot(4) {
        Err(CentralError::Refused { status: 429, message, .. }) => assert!(message.contains("screenshots a minute"), "{message}"),
        other => panic!("a fourth screenshot in a minute: {other:?}"),
    }
    let shot_url = service.url.join("api/v1/screens/kiosk-1/screenshot").unwrap();
    let taken = (central::TAKEN_HEADER, now.to_rfc3339());
    // Bad ones from kiosk-2 (kiosk-1 is past its rate now).
    let shot2_url = service.url.join("api/v1/screens/kiosk-2/screenshot").unwrap();
    let (status, body) = raw(&rt, client.post(shot2_url.clone()).bearer_auth(&token2).header(taken.0, &taken.1).body(b"\x89PNG\r\n\x1a\n not a jpeg".to_vec()));
    assert!(status == 422 && body.contains("not a JPEG"), "{status} {body}");
    let (status, body) = raw(&rt, client.post(shot2_url.clone()).bearer_auth(&token2).body(frame(1)));
    assert!(status == 400 && body.contains("x-estation-taken"), "{status} {body}");
    // Too large: refused unread, and the answer closes the connection, so
    // the next request (just below) does not go down it into a broken pipe.
    let too_large = rt.block_on(client.post(shot_url.clone()).bearer_auth(&token).header(taken.0, &taken.1).body(vec![0xFF; 2 * 1024 * 1024]).send()).expect("the service answers");
    assert_eq!(too_large.status(), 413);
    assert_eq!(too_large.headers().get("connection").map(|v| v.as_bytes()), Some(&b"close"[..]), "{:?}", too_large.headers());
    match rt.block_on(central::upload_screenshot(&client, &service.url, "kiosk-2", &token, frame(1), now)) {
        Err(CentralError::Refused { status: 401, .. }) => {}
        other => panic!("another screen's token: {other:?}"),
    }
    // Past the rate, straight into the database: the newest three are kept.
    for i in 4..=5 {
        rt.block_on(office.put_screenshot("kiosk-1", now - chrono::Duration::minutes(10 - i), now, &frame(50 * i as u8))).unwrap();
    }
    let kept = rt.block_on(office.screenshots("kiosk-1")).unwrap();
    let minutes: Vec<i64> = kept.iter().map(|s| (now - s.taken_at).num_minutes()).collect();
    assert_eq!(minutes, vec![5, 6, 7], "the newest three, newest first: {kept:?}");
    assert!(kept.iter().all(|s| s.bytes > 1000), "{kept:?}");
    let after = rt.block_on(central::heartbeat(&client, &service.url, "kiosk-1", &token, &beat("estation 0.1.0"))).expect("taken");
    assert!(!after.screenshot, "a screenshot answered the request");
    let saved = op.path("newest.jpg");
    ok(central(db).args(["screenshot", "kiosk-1", "--out"]).arg(&saved).output().unwrap());
    let newest = image::open(&saved).expect("a JPEG").to_rgb8();
    assert_eq!(newest.dimensions(), (640, 360));
    assert!(newest.get_pixel(10, 10).0[0] > 230, "the newest one (shade 250): {:?}", newest.get_pixel(10, 10));
    let listed = ok(central(db).args(["screenshot", "kiosk-1"]).output().unwrap());
    assert_eq!(listed.lines().count(), 3, "{listed}");

    // The fleet: kiosk-1 online with what it said, kiosk-2 never heard from.
    let fleet = ok(central(db).arg("fleet").output().unwrap());
    assert!(fleet.lines().any(|l| l.starts_with("online") && l.contains("kiosk-1") && l.contains("estation 0.1.0") && l.contains("warnings on screen: 1") && l.contains("screenshot 5m")), "{fleet}");
    assert!(fleet.lines().any(|l| l.contains("kiosk-2") && l.contains("no screenshot")), "{fleet}");
    assert!(fleet.lines().any(|l| l.starts_with("never") && l.contains("kiosk-2")), "{fleet}");
    assert!(!fleet.contains("9.9.9"), "a refused heartbeat was stored: {fleet}");
    assert!(fleet.contains("2 screens: 1 online, 0 stale, 0 offline, 1 never heard from, 0 revoked"), "{fleet}");
    let json: serde_json::Value = serde_json::from_str(&ok(central(db).args(["fleet", "--json", "--region", "4401"]).output().unwrap())).unwrap();
    assert_eq!(json.as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(json[0]["id"], "kiosk-1");
    assert_eq!(json[0]["state"], "online");
    assert_eq!(json[0]["heartbeat"]["on_screen"], "school/暴雨来临前");
    assert!(json[0]["screenshot_age_secs"].as_i64().is_some_and(|a| (300..400).contains(&a)), "{json}");
    let bad_prefix = central(db).args(["fleet", "--region", "44%"]).output().unwrap();
    assert!(!bad_prefix.status.success() && stderr(&bad_prefix).contains("digits only"), "{}", stderr(&bad_prefix));

    // The office's JSON API: with an operator's token only.
    let operator = ok(central(db).args(["operator", "add", "province"]).output().unwrap()).trim().to_string();
    let twice = central(db).args(["operator", "add", "province"]).output().unwrap();
    assert!(!twice.status.success() && stderr(&twice).contains("operator `province` exists already"), "{}", stderr(&twice));
    let fleet_url = service.url.join("api/v1/fleet?region=4402").unwrap();
    let (status, _) = raw(&rt, client.get(fleet_url.clone()).bearer_auth(&token));
    assert_eq!(status, 401, "a screen's token is not an operator's");
    let (status, body) = raw(&rt, client.get(fleet_url).bearer_auth(&operator));
    assert_eq!(status, 200, "{body}");
    let api: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(api[0]["id"], "kiosk-2", "{api}");
    assert_eq!(api[0]["state"], "never", "{api}");
    let (status, _) = raw(&rt, client.get(service.url.join("api/v1/fleet?region=44_").unwrap()).bearer_auth(&operator));
    assert_eq!(status, 400, "a region prefix is digits");
    // Screenshots through the API, for the operator only.
    let (status, _) = raw(&rt, client.get(shot_url.clone()).bearer_auth(&token));
    assert_eq!(status, 401, "a screen cannot read screenshots");
    let (got, jpeg) = rt.block_on(async {
        let resp = client.get(shot_url.clone()).bearer_auth(&operator).send().await.unwrap();
        let taken = resp.headers().get(central::TAKEN_HEADER).and_then(|v| v.to_str().ok()).map(String::from);
        (taken, resp.bytes().await.unwrap().to_vec())
    });
    assert_eq!(jpeg, std::fs::read(&saved).unwrap(), "the newest, as the command saved it");
    assert!(got.is_some_and(|t| chrono::DateTime::parse_from_rfc3339(&t).is_ok()));
    let (status, body) = raw(&rt, client.get(service.url.join("api/v1/screens/kiosk-1/screenshots").unwrap()).bearer_auth(&operator));
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap().as_array().map(Vec::len), Some(3), "{body}");
    let (status, _) = raw(&rt, client.post(service.url.join("api/v1/screens/nobody/screenshot/ask").unwrap()).bearer_auth(&operator));
    assert_eq!(status, 404);
    let (status, _) = raw(&rt, client.post(service.url.join("api/v1/screens/kiosk-2/screenshot/ask").unwrap()).bearer_auth(&operator));
    assert_eq!(status, 200);

    // Revoked: refused from now on.
    ok(central(db).args(["screen", "revoke", "kiosk-1"]).output().unwrap());
    match refused("kiosk-1", &token) {
        Err(CentralError::Refused { status: 403, message, .. }) => assert!(message.contains("revoked"), "{message}"),
        other => panic!("a revoked screen: {other:?}"),
    }
    assert!(ok(central(db).arg("fleet").output().unwrap()).lines().any(|l| l.starts_with("revoked") && l.contains("kiosk-1")));
}

#[test]
fn on_sqlite_screens_enrol_report_and_show_in_the_fleet() {
    let dir = tempfile::tempdir().unwrap();
    enrol_beat_and_list(&format!("sqlite://{}", dir.path().join("central.db").display()));
}

#[test]
fn on_postgresql_screens_enrol_report_and_show_in_the_fleet() {
    let pg = Postgres::start();
    enrol_beat_and_list(&pg.database("central"));
}

/// Past one machine: two services behind a load balancer share one
/// PostgreSQL. A heartbeat taken by one is in the other's fleet.
#[test]
fn two_services_share_one_postgresql() {
    let pg = Postgres::start();
    let db = pg.database("shared");
    let op = Operator::new();
    op.card("共享", "#406020");
    assert!(op.build().status.success());
    let token_line = ok(central(&db).args(["screen", "add", "k-9", "--name", "镇中心校", "--region", "440106001001"]).output().unwrap());
    let token = token_line.lines().find_map(|l| l.strip_prefix("token = \"")?.strip_suffix('"')).unwrap().to_string();
    let (a, b) = (Service::start(&db, &op.path("feed")), Service::start(&db, &op.path("feed")));
    let operator = ok(central(&db).args(["operator", "add", "county"]).output().unwrap()).trim().to_string();
    let rt = runtime();
    let client = client();
    rt.block_on(central::heartbeat(&client, &a.url, "k-9", &token, &beat("estation 0.1.0"))).expect("taken by A");
    let (status, body) = raw(&rt, client.get(b.url.join("api/v1/fleet").unwrap()).bearer_auth(&operator));
    assert_eq!(status, 200, "{body}");
    let fleet: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(fleet[0]["state"], "online", "B sees what A took: {fleet}");
}

/// A service on SQLite in `dir`, serving a one-card feed, with the test
/// config's screen (`[screen] id = "test-1"`) enrolled: the database URL,
/// the operator, the screen's token and the running service.
#[cfg(feature = "player")]
fn office_with_test_screen(dir: &Path) -> (String, Operator, String, Service) {
    let db = format!("sqlite://{}", dir.join("central.db").display());
    let op = Operator::new();
    op.card("考核", "#204060");
    assert!(op.build().status.success());
    let token_line = ok(central(&db).args(["screen", "add", "test-1", "--name", "测试屏", "--region", "440106"]).output().unwrap());
    let token = token_line.lines().find_map(|l| l.strip_prefix("token = \"")?.strip_suffix('"')).unwrap().to_string();
    let service = Service::start(&db, &op.path("feed"));
    (db, op, token, service)
}

/// A kiosk with `[central]` in its config reports on its own: the service's
/// fleet shows it online, with what it plays and the renderer it draws
/// with, taken from what the player wrote (the heartbeat runs on the sync
/// thread, never the frame loop). The office asked for a screenshot before
/// the kiosk started: the first heartbeat's answer says so, and the real
/// frame arrives; the interval's first one follows half a minute after the
/// first frame.
#[cfg(feature = "player")]
#[test]
fn a_kiosk_reports_what_it_plays_to_the_central_service() {
    use crate::common::player::Player;
    let dir = tempfile::tempdir().unwrap();
    let (db, _op, token, service) = office_with_test_screen(dir.path());
    ok(central(&db).args(["screenshot", "test-1", "--ask"]).output().unwrap());
    let kiosk = dir.path().join("kiosk");
    std::fs::create_dir_all(&kiosk).unwrap();
    let playlist = kiosk.join("card.toml");
    std::fs::write(&playlist, "[[items]]\nid = \"kexue-station\"\nkind = \"text\"\ntitle = \"科普\"\nbackground = \"#2060c0\"\nduration = \"10m\"\n").unwrap();
    let extra = format!(
        "[cache]\ndir = \"{}\"\n[central]\nurl = \"{}\"\ntoken = \"{token}\"\nheartbeat = \"10s\"\nallow_http = true\nscreenshot = \"1m\"\n",
        kiosk.join("cache").display(),
        service.url
    );
    let running = Player::fresh(&kiosk, &extra).playlist(&playlist).window(320, 180).exit_after("55s").spawn();
    let mut fleet = serde_json::Value::Null;
    let found = crate::common::poll_until(std::time::Duration::from_secs(45), std::time::Duration::from_millis(500), || {
        fleet = serde_json::from_str(&ok(central(&db).args(["fleet", "--json"]).output().unwrap())).unwrap();
        fleet[0]["heartbeat"]["on_screen"].as_str().is_some_and(|s| s.contains("kexue-station")) && fleet[0]["last_screenshot"].is_string()
    });
    assert!(found, "the kiosk's heartbeat or its screenshot did not arrive: {fleet}\n{}", running.log());
    assert_eq!(fleet[0]["state"], "online", "{fleet}");
    assert_eq!(fleet[0]["heartbeat"]["every_secs"], 10, "{fleet}");
    assert!(fleet[0]["heartbeat"]["renderer"].as_str().is_some_and(|r| r.contains("llvmpipe")), "{fleet}");
    assert!(fleet[0]["heartbeat"]["software"].as_str().is_some_and(|s| s.starts_with("estation ")), "{fleet}");

    // The real frame: the card's blue, at the window's size (never enlarged).
    let saved = dir.path().join("shot.jpg");
    ok(central(&db).args(["screenshot", "test-1", "--out"]).arg(&saved).output().unwrap());
    let shot = image::open(&saved).expect("a JPEG").to_rgb8();
    assert_eq!(shot.dimensions(), (320, 180));
    let blue = shot.pixels().filter(|p| p.0[2] > 150 && p.0[0] < 80).count();
    let light = shot.pixels().filter(|p| p.0.iter().all(|&c| c > 200)).count();
    assert!(blue > shot.len() / 3 / 2, "mostly the card's background: {blue} of {} pixels", shot.len() / 3);
    assert!(light > 20, "with the title's light text on it: {light}");

    // Then the interval's own.
    let mut listed = String::new();
    let two = crate::common::poll_until(std::time::Duration::from_secs(45), std::time::Duration::from_secs(1), || {
        listed = ok(central(&db).args(["screenshot", "test-1"]).output().unwrap());
        listed.lines().count() >= 2
    });
    assert!(two, "no screenshot on the interval: {listed}\n{}", running.log());
    assert!(running.log().contains("screenshot taken at"), "{}", running.log());

    // At its end the player closes what is on screen and sends it at once:
    // the office has every record the kiosk logged.
    let (code, log) = running.wait();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("proof-of-play record(s) stored at exit"), "{log}");
    let logged = estation::store::proof::read_after(&estation::store::proof::dir_for(&kiosk.join("cache")), 0, usize::MAX).unwrap();
    let rt = runtime();
    let office = rt.block_on(estation::central::db::Db::open(&db)).unwrap();
    assert_eq!(rt.block_on(office.proof_extent("test-1")).unwrap(), (logged.len() as i64, logged.len() as i64), "{log}");
    let report: serde_json::Value = serde_json::from_str(&ok(central(&db).args(["report", "--from", "2026-01-01", "--by", "screen", "--json"]).output().unwrap())).unwrap();
    assert_eq!(report["rows"][0]["key"], "test-1", "{report}");
    assert!(report["rows"][0]["on_hours"].as_f64().is_some_and(|h| h > 0.01), "the time lit is there: {report}");
}

/// Stored but never answered, then the kiosk killed in the middle of an
/// upload: the office still gets each proof-of-play record exactly once.
/// nginx stands between the two: first it hands every upload to the
/// service (a mirror) while the kiosk's own request goes to a listener that
/// never answers (nginx gives up after 3 s: a 504), so the service has
/// stored what the kiosk thinks failed; then it passes everything through.
#[cfg(feature = "player")]
#[test]
fn proof_of_play_reaches_the_office_exactly_once_through_lost_answers_and_a_kill() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use crate::common::nginx::Nginx;
    use crate::common::player::Player;
    use estation::store::proof;

    let dir = tempfile::tempdir().unwrap();
    let (db, _op, token, service) = office_with_test_screen(dir.path());
    let svc = format!("{}:{}", service.url.host_str().unwrap(), service.url.port().unwrap());

    // The listener that takes requests and never answers; counts those open.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_addr = hole.local_addr().unwrap();
    let open = Arc::new(AtomicUsize::new(0));
    let counter = open.clone();
    std::thread::spawn(move || {
        for conn in hole.incoming().flatten() {
            let open = counter.clone();
            open.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut conn = conn;
                let _ = std::io::copy(&mut conn, &mut std::io::sink());
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    let lost = format!(
        "location ~ ^/api/v1/screens/[^/]+/proof$ {{ mirror /stored; proxy_pass http://{hole_addr}; proxy_read_timeout 3s; }} \
         location = /stored {{ internal; proxy_pass http://{svc}$request_uri; }} \
         location / {{ proxy_pass http://{svc}; }}"
    );
    let nginx = Nginx::start_server(&lost, "1", false).expect("nginx");

    let kiosk = dir.path().join("kiosk");
    std::fs::create_dir_all(&kiosk).unwrap();
    let playlist = kiosk.join("cards.toml");
    std::fs::write(&playlist, "[defaults]\nduration = \"1s\"\ntransition = \"0s\"\n[[items]]\nid = \"a\"\nkind = \"text\"\ntitle = \"甲\"\n[[items]]\nid = \"b\"\nkind = \"text\"\ntitle = \"乙\"\n").unwrap();
    let extra = format!(
        "[cache]\ndir = \"{}\"\n[central]\nurl = \"{}\"\ntoken = \"{token}\"\nheartbeat = \"10s\"\nallow_http = true\n",
        kiosk.join("cache").display(),
        nginx.url()
    );
    let log = proof::dir_for(&kiosk.join("cache"));
    let rt = runtime();
    let office = rt.block_on(estation::central::db::Db::open(&db)).unwrap();
    let stored = || rt.block_on(office.proof_extent("test-1")).unwrap().0;
    let acked = || proof::stream(&log).ok().flatten().map_or(0, |s| proof::acked(&log, &s));

    // Stored by the service, the answer lost; killed while an upload waits.
    let running = Player::fresh(&kiosk, &extra).playlist(&playlist).window(320, 180).exit_after("120s").spawn();
    let mut log_text = String::new();
    let in_flight = crate::common::poll_until(std::time::Duration::from_secs(60), std::time::Duration::from_millis(100), || {
        log_text = running.log();
        open.load(Ordering::SeqCst) > 0 && stored() > 0
    });
    assert!(in_flight, "no upload reached the service through nginx\n{log_text}\n{}", nginx.log());
    let played = running.kill9();
    assert_eq!(acked(), 0, "nothing was answered, so nothing is acknowledged\n{played}");
    let before = stored();
    assert!(before > 0);

    // Through: the restarted kiosk sends what it has not had answered.
    nginx.reload(&format!("location / {{ proxy_pass http://{svc}; }}")).unwrap();
    let running = Player::fresh(&kiosk, &extra).playlist(&playlist).window(320, 180).exit_after("120s").spawn();
    let mut through = 0;
    let caught_up = crate::common::poll_until(std::time::Duration::from_secs(60), std::time::Duration::from_millis(200), || {
        through = acked();
        through > before as u64
    });
    assert!(caught_up, "the kiosk did not catch up: acknowledged {through}, stored {before}\n{}", running.log());
    let played = running.kill9();
    let through = acked();
    let records = proof::read_after(&log, 0, usize::MAX).unwrap();
    assert!(records.iter().filter(|r| r.seq <= through).count() as u64 == through, "the log holds 1..={through}");
    // Every record is there once: (screen, stream, seq) is the key, so a
    // count equal to the highest number means 1, 2, 3 … each stored, and
    // the acknowledged are among them (the kill may have cut the answer to
    // one more batch).
    let (count, max) = rt.block_on(office.proof_extent("test-1")).unwrap();
    assert_eq!(count, max, "stored once each, none missing\n{played}");
    assert!(max as u64 >= through && (max as usize) <= records.len(), "stored {max}, acknowledged {through}, logged {}", records.len());
    assert!(played.contains("proof-of-play record(s) stored"), "{played}");
}

/// Records of three screens in two regions over a day and a half, across
/// midnight, with continuations, warnings shown in each treatment, and
/// time on and off; deterministic for `seed`.
fn many_records(seed: u64) -> Vec<(&'static str, &'static str, Vec<estation::core::proof::Record>)> {
    use estation::core::alert::policy::Treatment;
    use estation::core::proof::{Entry, Record, What};
    let mut rng = fastrand::Rng::with_seed(seed);
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-07-01T20:00:00+08:00").unwrap().with_timezone(&chrono::Utc);
    let sent = chrono::DateTime::parse_from_rfc3339("2026-07-01T21:30:00+08:00").unwrap();
    let screens = [("kiosk-a", "440106"), ("kiosk-b", "440106"), ("kiosk-c", "330522")];
    screens
        .iter()
        .map(|&(screen, region)| {
            let mut at = t0 + chrono::Duration::seconds(rng.i64(0..600));
            let mut records = Vec::new();
            while at < t0 + chrono::Duration::hours(36) {
                let len = chrono::Duration::milliseconds(rng.i64(0..15 * 60_000));
                let what = match rng.u8(0..10) {
                    0..=5 => What::Play { playlist: ["main", "科普"][rng.usize(0..2)].into(), item: format!("第{}项", rng.u8(1..6)), feed_version: Some(7) },
                    6 => What::On,
                    7 => What::Off,
                    _ => What::Warning {
                        identifier: format!("44000041600000_2026070121{}", rng.u8(0..2)),
                        sender: "44000041600000@12379.cn".into(),
                        sent,
                        treatment: [Treatment::Ticker, Treatment::Banner, Treatment::Takeover][rng.usize(0..3)],
                    },
                };
                let cont = matches!(what, What::Play { .. }) && rng.u8(0..4) == 0;
                records.push(Record { seq: records.len() as u64 + 1, entry: Entry { start: at, end: at + len, cont, what } });
                at += len + chrono::Duration::milliseconds(rng.i64(0..5_000));
            }
            (screen, region, records)
        })
        .collect()
}

/// The office's report is summed by the database; the kiosk's by
/// `core::report`. On the same records, in windows that cut intervals,
/// every way of grouping and a region filter give the same report.
fn office_report_equals_the_kiosks_sum(db: &str) {
    use estation::central::report::Ask;
    use estation::core::report::{self, By};
    let rt = runtime();
    let office = rt.block_on(estation::central::db::Db::open(db)).unwrap();
    let all = many_records(18);
    for (screen, region, records) in &all {
        let sealed = estation::central::token::seal(&estation::central::token::generate().unwrap()).unwrap();
        rt.block_on(office.add_screen(screen, "屏", region, &sealed, chrono::Utc::now())).unwrap();
        for chunk in records.chunks(estation::core::proof::MAX_BATCH) {
            let batch = estation::core::proof::Batch { stream: format!("{:0>32}", screen.len()), records: chunk.to_vec() };
            rt.block_on(office.put_proof(screen, &batch, chrono::Utc::now())).unwrap();
        }
    }
    let sh = chrono_tz::Asia::Shanghai;
    let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc);
    let windows = [(t("2026-07-01T21:07:13.5+08:00"), t("2026-07-02T09:41:00+08:00")), (t("2026-07-01T00:00:00+08:00"), t("2026-07-04T00:00:00+08:00"))];
    let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
    let compare = |windows: &[(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)]| {
    let mut compared = 0;
    for &(from, to) in windows {
        for by in [By::Screen, By::Item, By::Day, By::Region] {
            for region in [None, Some("4401")] {
                let got = rt.block_on(office.report(&Ask { from, to, by, region: region.map(String::from) }, sh)).unwrap();
                let seen = all
                    .iter()
                    .filter(|(_, r, _)| region.is_none_or(|p| r.starts_with(p)))
                    .flat_map(|(screen, region, records)| records.iter().map(move |r| report::Seen { screen, region, entry: &r.entry }));
                let want = report::build(seen, from, to, by, sh);
                let what = format!("by {by:?}, region {region:?}, {from} – {to}");
                assert!(!want.rows.is_empty() && !want.warnings.is_empty(), "{what}: the records cover the window");
                assert_eq!(got.rows.iter().map(|r| (&r.key, r.plays)).collect::<Vec<_>>(), want.rows.iter().map(|r| (&r.key, r.plays)).collect::<Vec<_>>(), "{what}");
                for (g, w) in got.rows.iter().zip(&want.rows) {
                    assert!(
                        close(g.play_minutes, w.play_minutes) && close(g.on_hours, w.on_hours) && close(g.off_hours, w.off_hours) && close(g.warning_minutes, w.warning_minutes),
                        "{what}: {g:?} != {w:?}"
                    );
                }
                assert_eq!(got.warnings.len(), want.warnings.len(), "{what}");
                for (g, w) in got.warnings.iter().zip(&want.warnings) {
                    assert_eq!((&g.identifier, &g.sender, g.sent), (&w.identifier, &w.sender, w.sent), "{what}");
                    let key = |e: &estation::core::report::Evidence| e.screens.iter().map(|s| (s.screen.clone(), s.region.clone(), s.first, s.last, s.treatment)).collect::<Vec<_>>();
                    assert_eq!(key(g), key(w), "{what}: {}", g.identifier);
                    assert!(g.screens.iter().zip(&w.screens).all(|(a, b)| close(a.minutes, b.minutes)), "{what}");
                }
                compared += 1;
            }
        }
    }
    compared
    };
    assert_eq!(compare(&windows), 16);
    // The region filter is digits (it goes into LIKE).
    assert!(rt.block_on(office.report(&Ask { from: windows[0].0, to: windows[0].1, by: By::Screen, region: Some("4%".into()) }, sh)).is_err());

    // Rolled up before 2 July: those days are sums now, the rest raw, and
    // whole-day windows still give the kiosk's sum, as does a window from
    // the cut (records over it stayed raw).
    let cut = t("2026-07-02T00:00:00+08:00");
    let raw = || rt.block_on(async { sqlx_count(db, "SELECT COUNT(*) FROM proof").await });
    let before = raw();
    let rolled = rt.block_on(office.roll_up(cut, sh)).unwrap();
    assert!(rolled.screens == 3 && rolled.records > 60 && rolled.rows > 0 && rolled.rows < rolled.records, "{rolled:?}");
    assert_eq!(raw(), before - rolled.records as i64);
    assert_eq!(rt.block_on(office.roll_up(cut, sh)).unwrap().records, 0, "rolled up once");
    assert_eq!(compare(&[windows[1], (cut, t("2026-07-02T09:41:00+08:00")), (t("2026-07-01T00:00:00+08:00"), t("2026-07-03T00:00:00+08:00"))]), 24);
    // Sent again after its day was rolled up (an answer lost long ago): not stored twice.
    let (screen, _, records) = &all[0];
    let again = estation::core::proof::Batch { stream: format!("{:0>32}", screen.len()), records: records[..10].to_vec() };
    assert_eq!(rt.block_on(office.put_proof(screen, &again, chrono::Utc::now())).unwrap(), 0);
    assert_eq!(compare(&windows[1..]), 8, "still the kiosk's sum");
}

/// One number from the database at `url`, for checks from outside the service.
async fn sqlx_count(url: &str, sql: &str) -> i64 {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(url).await.expect("connect");
    sqlx::query(sql).fetch_one(&pool).await.expect("a row").try_get(0).expect("a number")
}

#[test]
fn the_office_report_sums_in_sql_what_the_kiosk_sums_on_sqlite_and_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    office_report_equals_the_kiosks_sum(&format!("sqlite://{}", dir.path().join("central.db").display()));
    let pg = Postgres::start();
    office_report_equals_the_kiosks_sum(&pg.database("report"));
}

/// `estation-central report` and `GET /api/v1/report`: the evidence a
/// 气象局 asks for after an event, as text, CSV for Excel/WPS and JSON, for
/// operators only.
#[test]
fn the_office_report_from_the_command_line_and_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("central.db").display());
    let rt = runtime();
    let office = rt.block_on(estation::central::db::Db::open(&db)).unwrap();
    for (screen, region, records) in many_records(7) {
        let sealed = estation::central::token::seal(&estation::central::token::generate().unwrap()).unwrap();
        rt.block_on(office.add_screen(screen, "东山村文化礼堂", region, &sealed, chrono::Utc::now())).unwrap();
        rt.block_on(office.put_proof(screen, &estation::core::proof::Batch { stream: "0".repeat(32), records }, chrono::Utc::now())).unwrap();
    }
    let text = ok(central(&db).args(["report", "--from", "2026-07-01", "--to", "2026-07-02", "--by", "region"]).output().unwrap());
    assert!(text.lines().any(|l| l.starts_with("440106")) && text.lines().any(|l| l.starts_with("330522")), "{text}");
    assert!(text.contains("warning 44000041600000_20260701210 from 44000041600000@12379.cn"), "{text}");
    let csv = central(&db).args(["report", "--from", "2026-07-01", "--to", "2026-07-02", "--by", "screen", "--region", "4401", "--csv"]).output().unwrap();
    assert!(csv.status.success(), "{}", stderr(&csv));
    assert!(csv.stdout.starts_with("\u{feff}".as_bytes()), "UTF-8 with a BOM");
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(csv.contains("屏幕 screen,播放次数 plays") && csv.contains("kiosk-a,") && csv.contains("kiosk-b,") && !csv.contains("kiosk-c"), "{csv}");
    let json: serde_json::Value = serde_json::from_str(&ok(central(&db).args(["report", "--from", "2026-07-01", "--by", "day", "--json"]).output().unwrap())).unwrap();
    assert_eq!(json["rows"].as_array().map(|r| r.iter().map(|r| r["key"].as_str().unwrap_or("").to_string()).collect::<Vec<_>>()), Some(vec!["2026-07-01".to_string(), "2026-07-02".into(), "2026-07-03".into()]), "{json}");
    // Rolled up before 2 July: the report by day is the same.
    let by_day = |db: &str| ok(central(db).args(["report", "--from", "2026-07-01", "--to", "2026-07-03", "--by", "day", "--csv"]).output().unwrap());
    let before = by_day(&db);
    let rolled = central(&db).args(["rollup", "--before", "2026-07-02"]).output().unwrap();
    assert!(rolled.status.success() && stderr(&rolled).contains("screen(s) that ended before 2026-07-02 00:00:00 CST"), "{}", stderr(&rolled));
    assert!(!stderr(&rolled).contains("rolled up 0 "), "{}", stderr(&rolled));
    let after = by_day(&db);
    let figures = |csv: &str| csv.lines().take_while(|l| !l.is_empty()).map(|l| l.split(',').map(|f| f.parse::<f64>().map_or(f.to_string(), |n| format!("{n:.1}"))).collect::<Vec<_>>()).collect::<Vec<_>>();
    assert_eq!(figures(&after), figures(&before), "the same figures, to a tenth");
    let half = central(&db).args(["rollup", "--before", "2026-07-02T12:00:00+08:00"]).output().unwrap();
    assert!(!half.status.success() && stderr(&half).contains("days are rolled up whole"), "{}", stderr(&half));
    let bad = central(&db).args(["report", "--from", "July"]).output().unwrap();
    assert!(!bad.status.success() && stderr(&bad).contains("--from") && stderr(&bad).contains("`July`"), "{}", stderr(&bad));

    let op = Operator::new();
    op.card("报告", "#204060");
    assert!(op.build().status.success());
    let service = Service::start(&db, &op.path("feed"));
    let operator = ok(central(&db).args(["operator", "add", "qxj"]).output().unwrap()).trim().to_string();
    let client = client();
    let url = |q: &str| service.url.join(&format!("api/v1/report?{q}")).unwrap();
    let (status, _) = raw(&rt, client.get(url("from=2026-07-01")));
    assert_eq!(status, 401, "no token");
    let (status, body) = raw(&rt, client.get(url("from=2026-07-01&to=2026-07-02&by=item")).bearer_auth(&operator));
    assert_eq!(status, 200, "{body}");
    let api: serde_json::Value = serde_json::from_str(&body).unwrap();
    let cli: serde_json::Value = serde_json::from_str(&ok(central(&db).args(["report", "--from", "2026-07-01", "--to", "2026-07-02", "--by", "item", "--json"]).output().unwrap())).unwrap();
    assert_eq!(api, cli, "the API and the command give the same report");
    assert!(api["warnings"][0]["screens"][0]["first"].is_string(), "{api}");
    let (status, body) = raw(&rt, client.get(url("from=2026-07-01&by=week")).bearer_auth(&operator));
    assert!(status == 400 && body.contains("by") && body.contains("week"), "{status} {body}");
    let (status, body) = raw(&rt, client.get(url("from=2026-07-02&to=2026-07-01")).bearer_auth(&operator));
    assert!(status == 400 && body.contains("not after"), "{status} {body}");
    let (status, body) = raw(&rt, client.get(url("from=2026-07-01&region=44%25")).bearer_auth(&operator));
    assert!(status == 400 && body.contains("digits only"), "{status} {body}");
    let (csv, kind) = rt.block_on(async {
        let resp = client.get(url("from=2026-07-01&to=2026-07-02&by=region&format=csv&tz=Asia/Urumqi")).bearer_auth(&operator).send().await.unwrap();
        let kind = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        (resp.bytes().await.unwrap().to_vec(), kind)
    });
    assert!(kind.starts_with("text/csv") && csv.starts_with("\u{feff}".as_bytes()), "{kind}");
    assert!(String::from_utf8(csv).unwrap().contains("区域 region"));
}
