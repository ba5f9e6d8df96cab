//! Push figures (not a pass/fail test): run with `scripts/bench-push`.
//!
//! One real player (the release build, in a window under Xvfb with Mesa's
//! software renderer) and SUBSCRIBERS simulated kiosks (MQTT connections
//! only, in this process, TLS like the real one) on one Mosquitto on
//! 127.0.0.1, run from the shipped config and ACL. ROUNDS warnings for the
//! county (330522) are published one after the other, each with its notice;
//! printed: publish → notice received over all subscribers, and publish →
//! the player's first frame with the takeover (it logs it when drawn), p50
//! and p99. Then the broker is stopped and POLL_ROUNDS warnings go the
//! no-push way, by the feed poll (60 s ± 10 %), for comparison.
//!
//! `ESTATION_BIN` names the release `estation`; `ESTATION_BENCH_SUBSCRIBERS`,
//! `ESTATION_BENCH_ROUNDS`, `ESTATION_BENCH_POLL_ROUNDS` change the sizes.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use estation::core::feed::alerts_doc::ALERTS_FILE;
use estation::core::push::{Notice, Topics};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeFilter, TlsConfiguration, Transport};

#[path = "../tests/it/common/mosquitto.rs"]
#[allow(dead_code)] // the tests use more of it
mod mosquitto;

/// The source tree (for `mosquitto`'s shipped config, and the player's data).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn poll_until(timeout: Duration, every: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if condition() {
            return true;
        }
        std::thread::sleep(every);
    }
    condition()
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test` probes benches with --list
    }
    let subscribers = env_number("ESTATION_BENCH_SUBSCRIBERS", 1000);
    let rounds = env_number("ESTATION_BENCH_ROUNDS", 50);
    let poll_rounds = env_number("ESTATION_BENCH_POLL_ROUNDS", 5);
    let bin = PathBuf::from(std::env::var("ESTATION_BIN").expect("ESTATION_BIN: the release estation (scripts/bench-push sets it)"));
    let work = tempfile::tempdir().expect("temp dir");
    let w = work.path();
    let run = |args: &[&str]| {
        let out = Command::new(&bin).arg("--config").arg(w.join("op.toml")).args(args).current_dir(w).output().expect("run estation");
        assert!(out.status.success(), "estation {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    // The office: a feed served by `feed serve`, a broker.
    std::fs::write(w.join("op.toml"), "[screen]\nregion = \"330522\"\n").expect("write");
    let key_line = run(&["feed", "keygen", "--out", "keys"]).trim().to_string();
    std::fs::create_dir_all(w.join("playlists")).expect("mkdir");
    std::fs::write(w.join("playlists/main.toml"), "id = \"main\"\n[[items]]\nkind = \"text\"\ntitle = \"科普\"\nbackground = \"#1b5e20\"\nduration = \"1h\"\n").expect("write");
    run(&["feed", "build", "--playlists", "playlists", "--key", "keys/feed-key.pem", "--out", "feed"]);
    let key = estation::core::feed::keys::read_private(&w.join("keys/feed-key.pem")).expect("the feed key");
    let mut serve = Process(Command::new(&bin).args(["feed", "serve", "feed", "--listen", "127.0.0.1:0"]).current_dir(w).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("feed serve"));
    let mut line = String::new();
    std::io::BufReader::new(serve.0.stdout.take().expect("its stdout")).read_line(&mut line).expect("its URL");
    let feed_url = line.split_whitespace().last().expect("a URL").to_string();
    let mut broker = mosquitto::Mosquitto::start(&[("bench-kiosk", "kiosk-pw"), ("sim", "sim-pw")]);

    // The real kiosk.
    std::fs::write(
        w.join("kiosk.toml"),
        format!(
            "[screen]\nid = \"bench-kiosk\"\nregion = \"330522\"\n[feed]\nurl = \"{feed_url}\"\n{key_line}\n[cache]\ndir = \"cache\"\n[audio]\nvolume = 0\n{}",
            broker.kiosk_section("kiosk-pw", "")
        ),
    )
    .expect("write");
    let kiosk = |args: &[&str]| Command::new(&bin).arg("--config").arg(w.join("kiosk.toml")).args(args).current_dir(w).output().expect("run estation");
    assert!(kiosk(&["sync", "--once"]).status.success());
    let display = (90..200).find(|n| !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()).expect("a free X display");
    let _xvfb = Process(Command::new("Xvfb").arg(format!(":{display}")).args(["-screen", "0", "1280x720x24", "-nolisten", "tcp"]).stderr(Stdio::null()).spawn().expect("Xvfb"));
    poll_until(Duration::from_secs(10), Duration::from_millis(50), || Path::new(&format!("/tmp/.X11-unix/X{display}")).exists());
    let log_path = w.join("player.log");
    let _player = Process(
        Command::new(&bin)
            .arg("--config")
            .arg(w.join("kiosk.toml"))
            .args(["play", "--window", "1280x720"])
            .env("DISPLAY", format!(":{display}"))
            .env("ESTATION_DATA_DIR", root())
            .current_dir(w)
            .stderr(std::fs::File::create(&log_path).expect("player.log"))
            .spawn()
            .expect("the player"),
    );
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let push_state = || std::fs::read(w.join("push.json")).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok()).map(|v| v["state"].as_str().unwrap_or("").to_string()).unwrap_or_default();
    let up = poll_until(Duration::from_secs(120), Duration::from_millis(100), || log().contains("from feed version") && push_state() == "connected");
    assert!(up, "the player did not start or connect:\n{}", log());

    // The simulated kiosks.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (tx, rx) = std::sync::mpsc::channel::<(u64, Instant)>();
    let connected = Arc::new(AtomicUsize::new(0));
    let tls = Arc::new(tls(&broker.ca()));
    let started = Instant::now();
    for i in 0..subscribers {
        let (tx, connected, tls, port) = (tx.clone(), connected.clone(), tls.clone(), broker.port);
        rt.spawn(async move {
            let mut o = MqttOptions::new(format!("sim-{i}"), "127.0.0.1", port);
            o.set_credentials("sim", "sim-pw").set_keep_alive(Duration::from_secs(60)).set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
            let (client, mut events) = AsyncClient::new(o, 10);
            let topics = Topics::new("estation").for_screen(&format!("sim-{i}"), Some("330522"));
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = client.try_subscribe_many(topics.iter().map(|t| SubscribeFilter::new(t.clone(), QoS::AtLeastOnce)));
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        connected.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Ok(n) = Notice::parse(&p.payload) {
                            let _ = tx.send((n.version, Instant::now()));
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
        });
    }
    let all = poll_until(Duration::from_secs(120), Duration::from_millis(20), || connected.load(Ordering::Relaxed) >= subscribers);
    assert!(all, "only {} of {subscribers} subscribers connected", connected.load(Ordering::Relaxed));
    println!("{subscribers} simulated kiosks connected and subscribed over TLS in {:.2} s", started.elapsed().as_secs_f64());
    let rss = std::fs::read_to_string(format!("/proc/{}/status", broker_pid(&broker))).ok().and_then(|s| s.lines().find(|l| l.starts_with("VmRSS")).map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<u64>().unwrap_or(0)));
    if let Some(kb) = rss {
        println!("mosquitto with {} connections: {:.1} MB resident ({:.1} KB per connection)", subscribers + 1, kb as f64 / 1024.0, kb as f64 / (subscribers + 1) as f64);
    }

    let url = url::Url::parse(&broker.url()).expect("URL");
    let publisher = estation::net::push::Broker::new(&url, Some(mosquitto::PUBLISHER), Some(mosquitto::PUBLISHER_PASSWORD), Some(&broker.ca())).expect("publisher");
    let topics = Topics::new("estation");
    let mut notice_ms = Vec::new();
    let mut pixels_ms = Vec::new();
    let mut missed = 0;
    for r in 0..rounds {
        let (id, cap) = warning(&format!("push-{r}"));
        let skip = log().lines().count();
        let (t0, wall) = (Instant::now(), Utc::now());
        let published = estation::publish::alerts::publish(&w.join("feed"), &key, Path::new("w.xml"), &cap, Utc::now()).expect("publish");
        let doc = std::fs::read(w.join("feed").join(ALERTS_FILE)).expect("alerts.json");
        let alert = estation::core::alert::cap::parse(Path::new("w.xml"), &cap).expect("a valid warning").alert;
        let notice = Notice::new(ALERTS_FILE, published.version, &doc).to_bytes();
        let messages: Vec<(String, Vec<u8>)> = topics.for_alert(&alert).into_iter().map(|t| (t, notice.clone())).collect();
        rt.block_on(estation::net::push::publish(&publisher, &messages, Duration::from_secs(10))).expect("the notice");
        let mut got = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while got < subscribers {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok((v, at)) if v == published.version => {
                    got += 1;
                    notice_ms.push(at.duration_since(t0).as_secs_f64() * 1e3);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        missed += subscribers - got;
        match on_screen(&log_path, skip, "alerts: on screen: takeover", Duration::from_secs(30)) {
            Some(at) => pixels_ms.push((at - wall).num_microseconds().unwrap_or(0) as f64 / 1e3),
            None => println!("  round {r}: the takeover did not show in 30 s"),
        }
        // Gone again before the next round, by a Cancel with its notice.
        let skip = log().lines().count();
        let (cancel, _) = estation::publish::alerts::cancel(&w.join("feed"), &key, &id, Utc::now().fixed_offset()).expect("cancel");
        let doc = std::fs::read(w.join("feed").join(ALERTS_FILE)).expect("alerts.json");
        let notice = Notice::new(ALERTS_FILE, cancel.version, &doc).to_bytes();
        rt.block_on(estation::net::push::publish(&publisher, &[(topics.all(), notice)], Duration::from_secs(10))).expect("the notice");
        if on_screen(&log_path, skip, "alerts: no warning on screen", Duration::from_secs(30)).is_none() {
            println!("  round {r}: the Cancel did not clear the screen in 30 s");
        }
        // Past the kiosk's notice spacing, so each round starts alike.
        std::thread::sleep(estation::core::push::NOTICE_GAP + Duration::from_millis(200));
        while rx.try_recv().is_ok() {}
    }
    println!(
        "push, {rounds} warnings: publish → notice at {subscribers} subscribers: p50 {:.0} ms, p99 {:.0} ms, {missed} missed (target p99 ≤ 1 s)",
        percentile(&mut notice_ms, 0.5),
        percentile(&mut notice_ms, 0.99)
    );
    let first = pixels_ms.first().copied().unwrap_or(f64::NAN);
    println!(
        "push, {rounds} warnings: publish → the takeover's first frame on the real player: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms; the first warning {first:.0} ms (target p99 ≤ 2 s)",
        percentile(&mut pixels_ms, 0.5),
        percentile(&mut pixels_ms, 0.9),
        percentile(&mut pixels_ms, 0.99),
        percentile(&mut pixels_ms, 1.0)
    );

    // Without push: the broker down, the feed poll (60 s ± 10 %) brings it.
    broker.stop();
    poll_until(Duration::from_secs(30), Duration::from_millis(100), || push_state() == "down");
    let mut poll_ms = Vec::new();
    for r in 0..poll_rounds {
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..20_000)));
        let (id, cap) = warning(&format!("poll-{r}"));
        let skip = log().lines().count();
        let wall = Utc::now();
        estation::publish::alerts::publish(&w.join("feed"), &key, Path::new("w.xml"), &cap, Utc::now()).expect("publish");
        match on_screen(&log_path, skip, "alerts: on screen: takeover", Duration::from_secs(90)) {
            Some(at) => poll_ms.push((at - wall).num_milliseconds() as f64),
            None => println!("  poll round {r}: not on screen in 90 s"),
        }
        let skip = log().lines().count();
        estation::publish::alerts::cancel(&w.join("feed"), &key, &id, Utc::now().fixed_offset()).expect("cancel");
        on_screen(&log_path, skip, "alerts: no warning on screen", Duration::from_secs(90));
    }
    if !poll_ms.is_empty() {
        println!(
            "no push (broker down, feed poll 60 s): publish → the takeover's first frame, {} warnings: p50 {:.1} s, max {:.1} s",
            poll_ms.len(),
            percentile(&mut poll_ms, 0.5) / 1e3,
            percentile(&mut poll_ms, 1.0) / 1e3
        );
    }
    // The player's log, for a look at where the time went.
    if let Some(keep) = std::env::var_os("ESTATION_BENCH_LOG") {
        std::fs::copy(&log_path, &keep).expect("copy the player's log");
        println!("the player's log: {}", Path::new(&keep).display());
    }
    drop(serve);
}

/// A red rainstorm warning for the county, sent now: (identifier, CAP).
fn warning(id: &str) -> (String, Vec<u8>) {
    let sent = Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00")).format("%Y-%m-%dT%H:%M:%S+08:00");
    let xml = format!(
        r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>{id}</identifier><sender>changxing-qxt</sender><sent>{sent}</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope><info><category>Met</category><event>暴雨</event><urgency>Immediate</urgency><severity>Severe</severity><certainty>Likely</certainty><headline>长兴县气象台发布暴雨红色预警</headline><description>预计未来3小时降雨量将达100毫米以上。</description><area><areaDesc>长兴县</areaDesc><geocode><valueName>行政区划代码</valueName><value>330522</value></geocode></area></info></alert>"#
    );
    (id.to_string(), xml.into_bytes())
}

/// When the player logged a line with `pattern` after its first `skip`
/// lines (the time at the head of that line).
fn on_screen(log: &Path, skip: usize, pattern: &str, within: Duration) -> Option<DateTime<Utc>> {
    let mut found = None;
    poll_until(within, Duration::from_millis(10), || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        found = text.lines().skip(skip).find(|l| l.contains(pattern)).and_then(|l| DateTime::parse_from_rfc3339(l.split_whitespace().next()?).ok()).map(|t| t.with_timezone(&Utc));
        found.is_some()
    });
    found
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let i = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
    values[i]
}

/// rustls with ring, trusting the test CA only.
fn tls(ca: &Path) -> rustls::ClientConfig {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).expect("the CA file").flatten() {
        roots.add(cert).expect("the CA");
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

fn broker_pid(b: &mosquitto::Mosquitto) -> u32 {
    b.pid().unwrap_or(0)
}
