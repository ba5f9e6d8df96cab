//! The player as systemd runs it: readiness and the watchdog, over a real
//! `NOTIFY_SOCKET` that the test listens on.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::common::player::Player;

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
