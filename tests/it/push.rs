//! Push: a real Mosquitto (TLS, passwords, the ACL file we ship) on
//! 127.0.0.1, a real feed server, real kiosks. A notice makes a kiosk sync
//! at once; trust stays in the signatures; polling carries on without the
//! broker, and the kiosk reconnects when it is back.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::feedsrv::FeedServer;
use crate::common::mosquitto::{Mosquitto, PUBLISHER_PASSWORD};
use crate::common::operator::Operator;
use crate::common::{estation, poll_until, stderr, stdout};
#[cfg(feature = "player")]
use crate::common::wait_until;

const KIOSK_PASSWORD: &str = "kiosk-secret";

fn operator() -> Operator {
    let op = Operator::new();
    op.card("科普", "#1b5e20");
    assert!(op.build().status.success());
    op
}

/// An operator command with the publisher's password in its environment.
fn publish(op: &Operator, broker: &Mosquitto, args: &[&str]) -> std::process::Output {
    estation(&op.path("config.toml"))
        .current_dir(op.dir.path())
        .env("ESTATION_PUSH_PASSWORD", PUBLISHER_PASSWORD)
        .args(args)
        .args(broker.publisher_args())
        .output()
        .unwrap()
}

/// A red rainstorm warning for `area`; returns its identifier.
#[cfg(feature = "player")]
fn new_alert(op: &Operator, out: &str, area: &str) -> String {
    op.run(&["alert", "new", "--sender", "changxing-qxt", "--event", "暴雨", "--level", "red", "--area", area, "--expires", "6h", "--out", out]);
    let text = std::fs::read_to_string(op.path(out)).unwrap();
    text.split("<identifier>").nth(1).unwrap().split('<').next().unwrap().to_string()
}

/// A kiosk of region 330522 whose feed poll is 10 s without push and 10 min
/// while push is healthy: only a notice brings news sooner than that.
fn kiosk(op: &Operator, dir: &Path, server: &FeedServer, broker: &Mosquitto) -> std::path::PathBuf {
    let feed = format!("url = \"{}\"\ninterval = \"10s\"\n", server.url());
    op.kiosk_with(dir, "region = \"330522\"\n", &feed, &broker.kiosk_section(KIOSK_PASSWORD, "poll_when_healthy = \"10m\"\n"))
}

fn push_state(dir: &Path) -> serde_json::Value {
    std::fs::read(dir.join("push.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

fn wait_push(dir: &Path, state: &str, within: Duration, log: impl Fn() -> String) {
    let reached = poll_until(within, Duration::from_millis(100), || push_state(dir)["state"] == state);
    assert!(reached, "push never `{state}`: {}\n{}", push_state(dir), log());
}

fn manifest_gets(server: &FeedServer) -> usize {
    server.seen().iter().filter(|s| s.path.ends_with("manifest.json")).count()
}

#[cfg(feature = "player")]
fn logs(running: &crate::common::player::Running, broker: &Mosquitto) -> String {
    format!("{}\nbroker:\n{}", running.log(), broker.log())
}

#[cfg(feature = "player")]
fn status_text(config: &Path) -> String {
    let out = estation(config).arg("status").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// The whole life of a pushed warning on a real screen: on screen within
/// seconds of its publish (the poll waits 10 min while push is healthy);
/// with the broker killed, the Cancel still arrives by the 10 s poll and
/// `status` says push is down; the broker back, the kiosk reconnects and
/// the next warning is again on screen within seconds.
#[cfg(feature = "player")]
#[test]
fn a_pushed_warning_is_on_screen_in_seconds_and_polling_carries_on_without_the_broker() {
    use crate::common::player::Player;
    let op = operator();
    let mut broker = Mosquitto::start(&[("test-1", KIOSK_PASSWORD)]);
    let server = FeedServer::start(op.path("feed"));
    let dir = tempfile::tempdir().unwrap();
    let config = kiosk(&op, dir.path(), &server, &broker);
    let out = estation(&config).args(["sync", "--once"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let running = Player::new(&config).window(320, 180).exit_after("400s").spawn();
    wait_push(dir.path(), "connected", Duration::from_secs(120), || logs(&running, &broker));
    let warnings = || estation::store::status::PlayerStatus::load(&dir.path().join("player.json")).map_or(0, |p| p.warnings.len());
    wait_until(Duration::from_secs(60), "the player's first report", || dir.path().join("player.json").exists());
    assert_eq!(warnings(), 0);

    // A warning for the whole city (330500) reaches the county's screen.
    let first = new_alert(&op, "w.xml", "330500");
    let published = Instant::now();
    let out = publish(&op, &broker, &["alert", "publish", "w.xml", "--feed", "feed", "--key", "keys/feed-key.pem"]);
    assert!(out.status.success() && stdout(&out).contains("push: notice sent to estation/notice/region/3305"), "{}{}", stdout(&out), stderr(&out));
    assert!(poll_until(Duration::from_secs(30), Duration::from_millis(50), || warnings() == 1), "not on screen: {}\n{}", push_state(dir.path()), logs(&running, &broker));
    let took = published.elapsed();
    eprintln!("publish → on screen: {took:?}");
    assert!(took < Duration::from_secs(10), "a notice, not the 10 min poll, brought it: {took:?}\n{}", logs(&running, &broker));
    // The frame holding it was presented (what bench-push times).
    assert!(poll_until(Duration::from_secs(10), Duration::from_millis(50), || running.log().contains("alerts: on screen: takeover")), "{}", logs(&running, &broker));
    let status = status_text(&config);
    assert!(status.contains("push:       connected to mqtts://127.0.0.1") && status.contains("1 notice(s)"), "{status}");

    // The broker dies: the kiosk says so, and the 10 s poll brings the Cancel.
    broker.stop();
    wait_push(dir.path(), "down", Duration::from_secs(30), || logs(&running, &broker));
    let status = status_text(&config);
    assert!(status.contains("DOWN") && status.contains("nothing is lost: the feed is polled every 10s"), "{status}");
    let out = publish(&op, &broker, &["alert", "cancel", &first, "--feed", "feed", "--key", "keys/feed-key.pem"]);
    assert!(out.status.success(), "the Cancel is in the feed whatever the broker: {}", stderr(&out));
    assert!(stderr(&out).contains("warning: push:") && stderr(&out).contains("next poll"), "{}", stderr(&out));
    assert!(poll_until(Duration::from_secs(40), Duration::from_millis(200), || warnings() == 0), "the Cancel did not arrive by polling\n{}", logs(&running, &broker));

    // The broker is back: the kiosk reconnects, and push works again.
    broker.start_again();
    wait_push(dir.path(), "connected", Duration::from_secs(90), || logs(&running, &broker));
    new_alert(&op, "w2.xml", "330522");
    let published = Instant::now();
    let out = publish(&op, &broker, &["alert", "publish", "w2.xml", "--feed", "feed", "--key", "keys/feed-key.pem"]);
    assert!(out.status.success() && stdout(&out).contains("estation/notice/region/330522"), "{}{}", stdout(&out), stderr(&out));
    assert!(poll_until(Duration::from_secs(30), Duration::from_millis(50), || warnings() == 1), "not on screen after the reconnect\n{}", logs(&running, &broker));
    let took = published.elapsed();
    eprintln!("after the reconnect, publish → on screen: {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}\n{}", logs(&running, &broker));

    // The status overlay, for someone at the screen.
    let out = publish(&op, &broker, &["command", "overlay", "--screen", "test-1", "--key", "keys/feed-key.pem"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = poll_until(Duration::from_secs(15), Duration::from_millis(100), || running.log().contains("status overlay shown for 60s"));
    assert!(shown, "{}", logs(&running, &broker));
    let log = running.log();
    let line = log.lines().find(|l| l.contains("status overlay shown")).unwrap_or_default();
    assert!(line.contains("(test-1)") && line.contains("推送：已连接 mqtts://127.0.0.1") && line.contains("节目：第 "), "{line}");

    // A signed restart: the player ends at once (the kiosk unit starts it again).
    let asked = Instant::now();
    let out = publish(&op, &broker, &["command", "restart", "--screen", "test-1", "--key", "keys/feed-key.pem"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (code, log) = running.wait();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("restarting: a signed command asked for it"), "{log}");
    assert!(asked.elapsed() < Duration::from_secs(30), "the player took {:?} to restart", asked.elapsed());
}

/// What a notice can and cannot do. A screen cannot send one (the shipped
/// ACL drops it); garbage is ignored; a well-formed notice for nothing new
/// costs one conditional GET; a flood of them costs one GET per 3 s; and a
/// notice never changes what the kiosk has: only the signed feed does.
#[test]
fn a_notice_only_wakes_the_sync_and_no_screen_can_send_one() {
    let op = operator();
    let broker = Mosquitto::start(&[("test-1", KIOSK_PASSWORD), ("test-2", "other-secret")]);
    let server = FeedServer::start(op.path("feed"));
    let dir = tempfile::tempdir().unwrap();
    let config = kiosk(&op, dir.path(), &server, &broker);
    let mut sync = crate::common::Killed::spawn(estation(&config).arg("sync").stderr(std::process::Stdio::null()));
    let log = || format!("broker:\n{}", broker.log());
    wait_push(dir.path(), "connected", Duration::from_secs(60), log);
    // The start's poll and the catch-up after connecting, then quiet: the
    // poll waits 10 min while push is healthy.
    std::thread::sleep(Duration::from_secs(4));
    let quiet = manifest_gets(&server);
    let version = estation::store::cache::Cache::at(&dir.path().join("cache")).current(&key(&op)).unwrap().unwrap().manifest.version;

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let url = url::Url::parse(&broker.url()).unwrap();
    let send = |user: &str, password: &str, topic: &str, payload: &[u8]| {
        let b = estation::net::push::Broker::new(&url, Some(user), Some(password), Some(&broker.ca())).unwrap();
        rt.block_on(estation::net::push::publish(&b, &[(topic.to_string(), payload.to_vec())], Duration::from_secs(10))).unwrap();
    };
    let forged = estation::core::push::Notice::new("manifest.json", version + 1000, b"nothing").to_bytes();

    // Another screen (a stolen password) publishes: the broker drops it.
    send("test-2", "other-secret", "estation/notice/all", &forged);
    send("test-2", "other-secret", "estation/notice/region/330522", &forged);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(push_state(dir.path())["notices"], 0, "a screen's publish reached a screen: {}\n{}", push_state(dir.path()), log());
    assert_eq!(manifest_gets(&server), quiet);

    // From the publisher: garbage is ignored; one notice is one conditional GET.
    send("estation-publisher", PUBLISHER_PASSWORD, "estation/notice/all", b"<script>show a warning</script>");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(push_state(dir.path())["notices"], 0, "{}", push_state(dir.path()));
    send("estation-publisher", PUBLISHER_PASSWORD, "estation/notice/region/3305", &forged);
    assert!(poll_until(Duration::from_secs(10), Duration::from_millis(50), || manifest_gets(&server) == quiet + 1), "{:?}", server.seen());
    assert_eq!(server.seen().last().map(|s| s.status), Some(304), "nothing new: a 304 and no body");
    assert_eq!(push_state(dir.path())["notices"], 1);

    // A flood: 30 notices in a second cost at most one GET per 3 s.
    let before = manifest_gets(&server);
    let flood: Vec<(String, Vec<u8>)> = (0..30).map(|_| ("estation/notice/all".to_string(), forged.clone())).collect();
    let b = estation::net::push::Broker::new(&url, Some("estation-publisher"), Some(PUBLISHER_PASSWORD), Some(&broker.ca())).unwrap();
    let flooded = Instant::now();
    rt.block_on(estation::net::push::publish(&b, &flood, Duration::from_secs(10))).unwrap();
    std::thread::sleep(Duration::from_secs(7));
    let gets = manifest_gets(&server) - before;
    let bound = flooded.elapsed().as_secs() as usize / 3 + 1;
    assert!((1..=bound).contains(&gets), "{gets} GETs for 30 notices in {:?} (at most {bound})", flooded.elapsed());
    assert!(push_state(dir.path())["notices"].as_u64().is_some_and(|n| n >= 30), "{}", push_state(dir.path()));

    // And nothing changed: the same signed version is current.
    let now = estation::store::cache::Cache::at(&dir.path().join("cache")).current(&key(&op)).unwrap().unwrap().manifest.version;
    assert_eq!(now, version);
    let _ = sync.0.kill();
}

fn key(op: &Operator) -> ed25519_dalek::VerifyingKey {
    let line = op.key_line.split('"').nth(1).unwrap();
    estation::core::feed::keys::parse_public_key(line).unwrap()
}

/// Commands: `estation command` reaches the screen and is carried out; a
/// forged, unsigned, expired, misaddressed or replayed one is refused and
/// says why, a replay even after the kiosk restarts.
#[test]
fn signed_commands_are_carried_out_once_and_forged_or_replayed_ones_are_refused() {
    use estation::core::command::{Action, Command, Target};
    let op = operator();
    let broker = Mosquitto::start(&[("test-1", KIOSK_PASSWORD)]);
    let server = FeedServer::start(op.path("feed"));
    let dir = tempfile::tempdir().unwrap();
    let config = kiosk(&op, dir.path(), &server, &broker);
    let log_path = dir.path().join("sync.log");
    let start = || {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).unwrap();
        crate::common::Killed::spawn(estation(&config).arg("sync").stderr(log))
    };
    let mut sync = start();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    wait_push(dir.path(), "connected", Duration::from_secs(60), log);
    let asked = dir.path().join("screenshots/asked");

    // From the operator's command line.
    let out = publish(&op, &broker, &["command", "screenshot", "--screen", "test-1", "--key", "keys/feed-key.pem"]);
    assert!(out.status.success() && stdout(&out).contains("sent `screenshot` to screen test-1 on estation/command/screen/test-1"), "{}{}", stdout(&out), stderr(&out));
    assert!(poll_until(Duration::from_secs(10), Duration::from_millis(50), || asked.exists()), "the screenshot was not asked for\n{}", log());
    std::fs::remove_file(&asked).unwrap();

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let url = url::Url::parse(&broker.url()).unwrap();
    let b = estation::net::push::Broker::new(&url, Some("estation-publisher"), Some(PUBLISHER_PASSWORD), Some(&broker.ca())).unwrap();
    let send = |topic: &str, payload: &[u8]| rt.block_on(estation::net::push::publish(&b, &[(topic.to_string(), payload.to_vec())], Duration::from_secs(10))).unwrap();
    let feed_key = estation::core::feed::keys::read_private(&op.path("keys/feed-key.pem")).unwrap();
    let now = chrono::Utc::now().fixed_offset();
    let mut n = 0u8;
    let mut command = |to: Target, issued: chrono::DateTime<chrono::FixedOffset>, life: chrono::Duration| {
        n += 1;
        Command::new(Action::Screenshot, to, issued, life, [n; 16])
    };
    let me = || Target::Screen("test-1".into());
    let topic = "estation/command/screen/test-1";
    let good = command(me(), now, chrono::Duration::minutes(10)).sign(&feed_key);
    let refused: Vec<(Vec<u8>, &str)> = vec![
        (command(me(), now, chrono::Duration::minutes(10)).sign(&ed25519_dalek::SigningKey::from_bytes(&[7; 32])), "signed by another key"),
        (br#"{"signed":{"action":"screenshot"},"signatures":[]}"#.to_vec(), "not signed"),
        (b"screenshot".to_vec(), "not a signed document"),
        (command(me(), now - chrono::Duration::hours(1), chrono::Duration::minutes(10)).sign(&feed_key), "is past"),
        (command(Target::Screen("test-2".into()), now, chrono::Duration::minutes(10)).sign(&feed_key), "for screen test-2, not this screen"),
        (command(Target::Region("330100".into()), now, chrono::Duration::minutes(10)).sign(&feed_key), "for region 330100, not this screen"),
    ];
    for (payload, why) in &refused {
        send(topic, payload);
        assert!(poll_until(Duration::from_secs(10), Duration::from_millis(50), || log().contains(why)), "no refusal saying `{why}`\n{}", log());
    }
    assert!(!asked.exists(), "a refused command was carried out\n{}", log());

    // A good one once; its replay is refused, also after a restart.
    send(topic, &good);
    assert!(poll_until(Duration::from_secs(10), Duration::from_millis(50), || asked.exists()), "{}", log());
    std::fs::remove_file(&asked).unwrap();
    send(topic, &good);
    assert!(poll_until(Duration::from_secs(10), Duration::from_millis(50), || log().matches("a replay; refused").count() == 1), "{}", log());
    let _ = sync.0.kill();
    let _ = sync.0.wait();
    sync = start();
    let reconnected = poll_until(Duration::from_secs(60), Duration::from_millis(100), || log().matches("push: connected").count() >= 2);
    assert!(reconnected, "{}", log());
    send(topic, &good);
    assert!(poll_until(Duration::from_secs(10), Duration::from_millis(50), || log().matches("a replay; refused").count() == 2), "{}", log());
    // A region command for the city reaches the county's screen.
    send("estation/command/region/3305", &command(Target::Region("330500".into()), now, chrono::Duration::minutes(10)).sign(&feed_key));
    assert!(poll_until(Duration::from_secs(10), Duration::from_millis(50), || asked.exists()), "{}", log());
    let _ = sync.0.kill();
}

/// The office's service with `--push` sends the notice itself, whoever
/// published into its feed folder: here `alert publish` without `--push`.
#[cfg(feature = "central")]
#[test]
fn the_central_service_sends_the_notice_of_a_publish_made_without_push() {
    use std::io::BufRead as _;
    let op = operator();
    let broker = Mosquitto::start(&[("test-1", KIOSK_PASSWORD)]);
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("central.db").display());
    let mut office = crate::common::Killed::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_estation-central"))
            .args(["--db", &db, "serve", "--feed"])
            .arg(op.path("feed"))
            .args(["--listen", "127.0.0.1:0"])
            .args(broker.publisher_args())
            .env("ESTATION_PUSH_PASSWORD", PUBLISHER_PASSWORD)
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("office.log")).unwrap()),
    );
    let mut line = String::new();
    std::io::BufReader::new(office.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = format!("{}/", line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("{line}")));
    let feed = format!("url = \"{url}\"\ninterval = \"10s\"\n");
    let kiosk = dir.path().join("kiosk");
    std::fs::create_dir_all(&kiosk).unwrap();
    let config = op.kiosk_with(&kiosk, "region = \"330522\"\n", &feed, &broker.kiosk_section(KIOSK_PASSWORD, "poll_when_healthy = \"10m\"\n"));
    let _sync = crate::common::Killed::spawn(estation(&config).arg("sync").stderr(std::process::Stdio::null()));
    let office_log = || std::fs::read_to_string(dir.path().join("office.log")).unwrap_or_default();
    wait_push(&kiosk, "connected", Duration::from_secs(60), office_log);
    std::thread::sleep(Duration::from_secs(4));

    new_alert(&op, "w.xml", "330522");
    let published = Instant::now();
    op.run(&["alert", "publish", "w.xml", "--feed", "feed", "--key", "keys/feed-key.pem"]);
    let noticed = poll_until(Duration::from_secs(15), Duration::from_millis(50), || push_state(&kiosk)["notices"].as_u64().is_some_and(|n| n >= 1));
    assert!(noticed, "no notice: {}\n{}", push_state(&kiosk), office_log());
    let last = push_state(&kiosk)["last_notice"].as_str().unwrap_or_default().to_string();
    assert!(last.contains("alerts.json") && last.contains("estation/notice/region/330522"), "{last}");
    let store = || estation::store::inbox::Inbox::new(&kiosk.join("cache")).load().map_or(0, |s| s.entries().len());
    assert!(poll_until(Duration::from_secs(15), Duration::from_millis(50), || store() == 1), "the warning did not arrive\n{}", office_log());
    assert!(published.elapsed() < Duration::from_secs(10), "{:?}: the notice, not the 10 min poll", published.elapsed());
    assert!(office_log().contains("alerts.json version") && office_log().contains("notice sent to estation/notice/region/330522"), "{}", office_log());
}
