//! The player as systemd runs it: readiness and the watchdog, over a real
//! `NOTIFY_SOCKET` that the test listens on; and on whatever GPU driver the
//! machine has (Vulkan, GL, or none that works).

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::common::player::Player;
use crate::common::{estation, stdout};

/// The datagrams that arrive within `wait` (each `KEY=value` line), or
/// until one is `until`.
fn messages_until(socket: &UnixDatagram, wait: Duration, until: Option<&str>) -> Vec<(Instant, String)> {
    let end = Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    while let Some(left) = end.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
        socket.set_read_timeout(Some(left)).expect("socket timeout");
        match socket.recv(&mut buf) {
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]).trim().to_string();
                let done = until.is_some_and(|u| text == u);
                out.push((Instant::now(), text));
                if done {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => break,
            Err(e) => panic!("notify socket: {e}"),
        }
    }
    out
}

fn messages(socket: &UnixDatagram, wait: Duration) -> Vec<(Instant, String)> {
    messages_until(socket, wait, None)
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).expect("pid")).expect("a pid");
    rustix::process::kill_process(pid, sig).expect("signal the player");
}

/// READY=1 once the first frame is drawn, then WATCHDOG=1 at half the
/// interval from the frame loop, also while a still slide lets the loop
/// sleep; a stopped player stops pinging (so systemd would restart it), and
/// pings again when it runs on.
#[test]
fn the_player_says_ready_after_its_first_frame_and_pings_the_watchdog_from_its_loop() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind a notify socket");
    let playlist = dir.path().join("card.toml");
    std::fs::write(&playlist, "[[items]]\nkind = \"text\"\ntitle = \"科普\"\nduration = \"10m\"\n").unwrap();
    let running = Player::fresh(dir.path(), "")
        .playlist(&playlist)
        .window(320, 180)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "1000000")
        // As under the kiosk unit, where systemd names the compositor, the player's
        // parent (here: this test).
        .env("WATCHDOG_PID", std::process::id().to_string())
        .spawn();
    // Until READY, all that may come is nothing (a cold start under the
    // software renderer takes a while).
    let start = messages_until(&socket, Duration::from_secs(90), Some("READY=1"));
    let ready = start.iter().position(|(_, m)| m == "READY=1");
    assert!(ready.is_some(), "no READY=1 in {start:?}\n{}", running.log());
    // Half the 1 s interval: about four pings in two seconds of a still slide.
    let pings: Vec<_> = messages(&socket, Duration::from_secs(2)).into_iter().filter(|(_, m)| m == "WATCHDOG=1").collect();
    assert!(pings.len() >= 3, "{} pings in 2 s: {pings:?}\n{}", pings.len(), running.log());
    for w in pings.windows(2) {
        assert!(w[1].0 - w[0].0 < Duration::from_millis(900), "a gap over the interval: {pings:?}");
    }
    // A stopped player is silent: systemd would kill and restart it.
    signal(running.pid(), rustix::process::Signal::STOP);
    let _ = messages(&socket, Duration::from_millis(200)); // what was in flight
    let stopped = messages(&socket, Duration::from_secs(2));
    signal(running.pid(), rustix::process::Signal::CONT);
    assert!(stopped.is_empty(), "pings while stopped: {stopped:?}");
    let again = messages(&socket, Duration::from_secs(2));
    assert!(again.iter().any(|(_, m)| m == "WATCHDOG=1"), "no pings after SIGCONT: {again:?}");
}

/// A still card, drawn the same on every backend.
fn card(dir: &std::path::Path) -> std::path::PathBuf {
    let playlist = dir.join("card.toml");
    std::fs::write(&playlist, "[[items]]\nkind = \"text\"\ntitle = \"科普e站\"\nbody = \"暴雨来临前\"\nduration = \"10m\"\n").unwrap();
    playlist
}

/// With no Vulkan driver (a Haswell or Bay Trail iGPU, an ARM board) the
/// player draws on GL instead of aborting at start; asked for GL, it draws
/// on GL; and either way it says which adapter it uses in its log and in
/// `estation status`. Mesa gives both APIs in software here, so the frames
/// must match the Vulkan one.
#[test]
fn the_player_draws_on_gl_when_vulkan_is_missing_and_says_which_renderer_it_uses() {
    let mut frames = Vec::new();
    for (what, env, backend) in [
        ("the default", vec![], "vulkan"),
        ("no Vulkan driver", vec![("VK_ICD_FILENAMES", "/nonexistent")], "gl"),
        ("WGPU_BACKEND=gl", vec![("WGPU_BACKEND", "gl")], "gl"),
        // Asked for an API that has no driver: the other one, not a black screen.
        ("WGPU_BACKEND=vulkan with no Vulkan driver", vec![("WGPU_BACKEND", "vulkan"), ("VK_ICD_FILENAMES", "/nonexistent")], "gl"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut player = Player::fresh(dir.path(), "").playlist(&card(dir.path())).window(320, 180).shots(&["1s"]).exit_after("1.5s");
        for (k, v) in env {
            player = player.env(k, v);
        }
        let played = player.run();
        let said = format!("renderer: {backend} on \"llvmpipe");
        assert!(played.log.contains(&said), "{what}: no \"{said}\" in the log:\n{}", played.log);
        let config = dir.path().join("config.toml");
        let status: serde_json::Value =
            serde_json::from_str(&stdout(&estation(&config).args(["status", "--json"]).output().unwrap())).unwrap();
        let renderer = &status["player"]["renderer"];
        assert_eq!(renderer["backend"], backend, "{what}: status says {renderer}");
        assert_eq!(renderer["software"], true, "{what}: status says {renderer}");
        let text = stdout(&estation(&config).arg("status").output().unwrap());
        assert!(text.contains(&format!("renderer:   {backend} on \"llvmpipe")), "{what}: {text}");
        frames.push((what, played.shots.into_iter().next().unwrap()));
    }
    let (_, vulkan) = &frames[0];
    assert!(crate::common::pixels::ink(vulkan, 0, 0, 320, 180) > 200, "the card has text");
    for (what, frame) in &frames[1..] {
        let worst = vulkan.pixels().zip(frame.pixels()).map(|(a, b)| crate::common::pixels::dist(*a, b.0)).max();
        assert!(worst <= Some(8), "{what}: differs from the Vulkan frame by up to {worst:?}");
    }
}

/// A driver that opens a device but cannot draw to the window ends the
/// start before its first frame: here Mesa's lavapipe on a 16-bit X screen
/// ("No supported formats for surface"); Debian 11's offers no present mode.
/// Each start records the adapter it chose, and the first frame marks it
/// drawn. After two starts that never drew, the player tries that adapter
/// after the others: where GL draws, it draws with GL and says why, and so
/// does `doctor`; a day later it tries the better adapter again.
#[test]
fn an_adapter_that_twice_ended_a_start_before_its_first_frame_is_tried_after_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("[cache]\ndir = \"{}\"\n", dir.path().join("cache").display());
    let record = dir.path().join("renderer-starts.json");
    let starts = || -> Vec<serde_json::Value> {
        serde_json::from_slice(&std::fs::read(&record).expect("the record of starts")).expect("a JSON record")
    };
    let player = || Player::fresh(dir.path(), &extra).playlist(&card(dir.path())).window(320, 180);
    for n in 1..=2 {
        let (code, log) = player().depth(16).exit_after("30s").spawn().wait();
        assert_ne!(code, Some(0), "start {n} on a 16-bit screen drew:\n{log}");
        assert!(log.contains("renderer: vulkan on \"llvmpipe"), "start {n}:\n{log}");
        let s = starts();
        assert_eq!(s.len(), n, "{s:?}");
        assert!(s[n - 1]["adapter"].as_str().is_some_and(|a| a.starts_with("vulkan on \"llvmpipe")), "{s:?}");
        assert_eq!(s[n - 1]["drew"], false, "start {n} is marked drawn: {s:?}");
    }

    // The same machine, a screen GL can draw on: Vulkan goes last.
    let played = player().shots(&["1s"]).exit_after("1.5s").run();
    assert!(played.log.contains("ended its last 2 starts before a first frame"), "{}", played.log);
    assert!(played.log.contains("renderer: gl on \"llvmpipe"), "{}", played.log);
    assert!(crate::common::pixels::ink(&played.shots[0], 0, 0, 320, 180) > 200, "the card is drawn");
    crate::common::wait_until(Duration::from_secs(10), "the start to be marked drawn", || {
        starts().last().is_some_and(|s| s["drew"] == true)
    });
    let s = starts();
    assert!(s[2]["adapter"].as_str().is_some_and(|a| a.starts_with("gl on \"llvmpipe")), "{s:?}");
    let doctor = stdout(&estation(&dir.path().join("config.toml")).arg("doctor").output().unwrap());
    assert!(
        doctor.contains("note  renderer  vulkan on \"llvmpipe") && doctor.contains("tries it last until") && doctor.contains("renderer-starts.json"),
        "{doctor}"
    );

    // A day later (the record aged by 25 h) Vulkan is tried first again.
    let aged: Vec<serde_json::Value> = s
        .into_iter()
        .map(|mut start| {
            let at = chrono::DateTime::parse_from_rfc3339(start["at"].as_str().unwrap()).unwrap();
            start["at"] = (at - chrono::Duration::hours(25)).to_rfc3339().into();
            start
        })
        .collect();
    std::fs::write(&record, serde_json::to_vec(&aged).unwrap()).unwrap();
    let played = player().shots(&["1s"]).exit_after("1.5s").run();
    assert!(played.log.contains("renderer: vulkan on \"llvmpipe"), "{}", played.log);
    assert!(!played.log.contains("before a first frame"), "{}", played.log);
}

/// With no driver at all (neither Vulkan nor EGL can load one) the player
/// says so, with the packages to install, and exits non-zero for systemd
/// to retry; it does not panic.
#[test]
fn with_no_driver_at_all_the_player_names_the_packages_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let running = Player::fresh(dir.path(), "")
        .playlist(&card(dir.path()))
        .window(320, 180)
        .exit_after("20s")
        .env("VK_ICD_FILENAMES", "/nonexistent")
        .env("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent")
        .env("LIBGL_DRIVERS_PATH", "/nonexistent")
        .spawn();
    let (code, log) = running.wait();
    assert_ne!(code, Some(0), "{log}");
    assert!(log.contains("no GPU adapter") && log.contains("install mesa-vulkan-drivers"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

/// `estation doctor` on a kiosk: the feed reachable and signed with the
/// configured key, the cache's hashes, the clock against the feed server's;
/// each problem is marked FIX with what to do, and the exit status says so.
#[test]
fn doctor_checks_feed_key_cache_and_clock_and_says_what_to_fix() {
    use crate::common::feedsrv::FeedServer;
    use crate::common::operator::Operator;
    let op = Operator::new();
    op.card("体检", "#204060");
    let built = op.build();
    assert!(built.status.success(), "{}", crate::common::stderr(&built));
    let server = FeedServer::start(op.path("feed"));
    let dir = tempfile::tempdir().unwrap();
    let config = op.kiosk(dir.path(), Some(&server.url()));
    let doctor = |cmd: &mut std::process::Command| {
        let out = cmd.arg("doctor").output().unwrap();
        (out.status.code(), stdout(&out))
    };

    let (code, text) = doctor(&mut estation(&config));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("ok    feed      ") && text.contains("manifest.json: version ") && text.contains(", signed with the configured key"), "{text}");
    assert!(text.contains("ok    clock"), "{text}");
    assert!(text.contains("note  cache     no version in the cache yet"), "{text}");

    let out = estation(&config).args(["sync", "--once"]).output().unwrap();
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    let (code, text) = doctor(&mut estation(&config));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("ok    cache     version ") && text.contains("every hash checks"), "{text}");

    // A cached file that rotted on the flash.
    let blob = std::fs::read_dir(dir.path().join("cache/blobs")).unwrap().flatten().next().unwrap().path();
    std::fs::write(&blob, b"rotted").unwrap();
    let (code, text) = doctor(&mut estation(&config));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("FIX   cache     version ") && text.contains("fix: run `estation sync --once`"), "{text}");
    std::fs::remove_file(&blob).unwrap();
    assert!(estation(&config).args(["sync", "--once"]).status().unwrap().success());

    // A clock a day behind the feed server's.
    let (code, text) = doctor(&mut crate::common::estation_at("-1d", &config));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("FIX   clock     this clock is 1day") && text.contains("behind the feed server's"), "{text}");
    assert!(text.contains("fix: turn on time sync: sudo timedatectl set-ntp true"), "{text}");

    // Another operator's key: the feed cannot be trusted.
    let other = Operator::new();
    let wrong = other.kiosk(tempfile::tempdir().unwrap().keep().as_path(), Some(&server.url()));
    let (code, text) = doctor(&mut estation(&wrong));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("FIX   feed") && text.contains("fix: check [feed] public_key"), "{text}");
}

/// The unit's ExecStartPre: three quick starts go at once, the fourth waits
/// 5 s (a crash loop backs off instead of spinning); a damaged record is no
/// reason not to start.
#[test]
fn backoff_lets_the_first_starts_go_at_once_and_then_waits() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("none.toml");
    let start = || {
        let t = Instant::now();
        let out = estation(&config).arg("backoff").env("STATE_DIRECTORY", dir.path()).output().unwrap();
        assert!(out.status.success(), "{}", crate::common::stderr(&out));
        (t.elapsed(), crate::common::stderr(&out))
    };
    for n in 1..=3 {
        let (took, said) = start();
        assert!(said.contains(&format!("start {n} in the last 10m: starting at once")), "{said}");
        assert!(took < Duration::from_secs(4), "start {n} waited {took:?}");
    }
    let (took, said) = start();
    assert!(said.contains("start 4 in the last 10m: the player keeps failing; waiting 5s first"), "{said}");
    assert!(took >= Duration::from_secs(5), "waited only {took:?}");

    std::fs::write(dir.path().join("kiosk-starts.json"), "[not json").unwrap();
    let (_, said) = start();
    assert!(said.contains("starting afresh") && said.contains("start 1 in the last 10m: starting at once"), "{said}");
}

/// The config the package installs as /etc/estation/config.toml loads with
/// no problem, and puts the cache where the package made it.
#[test]
fn the_packaged_config_checks_clean_and_keeps_the_cache_in_var_lib() {
    let shipped = crate::common::root().join("packaging/config.toml");
    let out = estation(&shipped).args(["config", "check"]).output().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), crate::common::stderr(&out));
    assert!(!crate::common::stderr(&out).contains("warning"), "{}", crate::common::stderr(&out));
    let shown = stdout(&estation(&shipped).args(["config", "show"]).output().unwrap());
    let line = shown.lines().find(|l| l.contains("cache.dir")).unwrap_or_default();
    assert!(line.contains("/var/lib/estation/cache"), "{shown}");
}
