//! The player in the display sessions a kiosk runs: X11 (Xvfb), Wayland in
//! a compositor that offers output power control (headless sway), and the
//! kiosk unit's own session, cage. What is checked is what the session
//! itself says (`xset`, sway's log) and what `estation status` reports.
//!
//! No display server here can really power an output off: Xvfb, Xorg's
//! dummy driver, Xvnc and Xephyr have no DPMS, and sway 1.7's headless
//! outputs refuse to be switched off (`/work/research-display-power.md`
//! has the survey). So these tests show the requests reach the session
//! through its real protocol and that the player reports truthfully what
//! the session did; a kiosk with a monitor shows the rest.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::operator::{status_json, Operator};
use crate::common::player::{Player, Session};
use crate::common::{estation, root, stderr, stdout, wait_until_every, Sway};

/// `[[display.on]]` hours that start two hours from now (Shanghai time), so
/// the screen is outside them for the whole test.
fn hours_not_now() -> String {
    use chrono::Timelike;
    let now = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai);
    let (h1, h2) = ((now.hour() + 2) % 24, (now.hour() + 3) % 24);
    format!("\n[[display.on]]\nhours = \"{h1:02}:00-{h2:02}:00\"\n")
}

/// What the player last said of the display (`estation status --json`).
fn display_said(config: &Path) -> String {
    status_json(config)["player"]["display"].as_str().unwrap_or_default().to_string()
}

/// Waits until the player says `want` of the display; returns what it said.
fn wait_for_display(config: &Path, want: &str) -> String {
    wait_until_every(Duration::from_millis(250), Duration::from_secs(120), &format!("the player to say the display is `{want}`"), || {
        display_said(config).contains(want)
    });
    display_said(config)
}

/// X11: the X server must never blank the screen by itself in screen-on
/// hours (its screen saver is on by default, 10 minutes), and where it has
/// no DPMS the player says the display stays on and black.
#[test]
fn on_x11_the_screen_saver_is_off_and_without_dpms_the_display_stays_on_black() {
    let dir = tempfile::tempdir().unwrap();
    let demo = root().join("playlists/demo.toml");
    let player = Player::fresh(dir.path(), &hours_not_now()).playlist(&demo).screen(640, 360);
    let config = dir.path().join("config.toml");
    let running = player.spawn();
    let said = wait_for_display(&config, "stays on, black outside screen-on hours");
    assert!(said.contains("the X server has no DPMS extension"), "{said}");
    let x = running.x_display().expect("an Xvfb session").to_string();
    let q = Command::new("xset").args(["-display", &x, "q"]).output().expect("xset (x11-xserver-utils)");
    let q = stdout(&q);
    let saver = q.lines().skip_while(|l| !l.starts_with("Screen Saver")).nth(2).unwrap_or_default();
    assert!(saver.split_whitespace().nth(1) == Some("0"), "the X screen saver is still on: {saver:?}\n{q}");
    let status = estation(&config).arg("status").output().unwrap();
    assert!(stdout(&status).contains("display:    stays on, black outside screen-on hours"), "{}", stdout(&status));
    assert!(running.log().contains("display: stays on, black"), "{}", running.log());
}

/// Wayland with output power control: outside screen-on hours the player
/// asks the compositor to power every output off, and a takeover warning
/// asks them on again.
#[test]
fn on_wayland_the_player_asks_the_compositor_to_power_off_and_a_warning_wakes_it() {
    let op = Operator::new();
    op.card("科普", "#1b5e20");
    let built = op.build();
    assert!(built.status.success(), "{}", stderr(&built));
    let kiosk = tempfile::tempdir().unwrap();
    let config = op.kiosk_with(kiosk.path(), "region = \"330522\"\n", "", &hours_not_now());
    let sync = || {
        let out = estation(&config).args(["sync", "--from"]).arg(op.path("feed")).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    };
    sync();

    let sway = Sway::start();
    // What sway logs when an output cannot be switched as asked.
    let refused = "Failed to commit output";
    assert!(!sway.log().contains(refused), "before the player:\n{}", sway.log());
    let running = Player::new(&config)
        .window(640, 360)
        .session(Session::Wayland { runtime: sway.runtime(), display: sway.display.clone() })
        .spawn();
    let said = wait_for_display(&config, "(Wayland output power)");
    // sway 1.7's headless outputs cannot be powered off: the request is
    // made and refused, and the player says so rather than claiming "off".
    assert_eq!(said, "on (Wayland output power): asked off, the session left it on", "{}", running.log());
    assert!(sway.log().contains(refused), "sway was not asked to switch its output off:\n{}", sway.log());

    // A red warning for this county: the display is wanted on.
    op.run(&["alert", "new", "--sender", "changxing-qxt", "--event", "暴雨", "--level", "red", "--area", "330522", "--expires", "6h", "--out", "w.xml"]);
    op.run(&["alert", "publish", "w.xml", "--feed", "feed", "--key", "keys/feed-key.pem"]);
    sync();
    let woken = "on (Wayland output power)";
    wait_until_every(Duration::from_millis(250), Duration::from_secs(60), "the display wanted on for the warning", || display_said(&config) == woken);
    let log = running.log();
    assert!(log.contains("alerts: takeover 暴雨红色预警"), "{log}");
    let (takeover, woke) = (log.find("alerts: takeover").unwrap_or(usize::MAX), log.rfind(&format!("display: {woken}\n")).unwrap_or(0));
    assert!(takeover < woke, "the display was not wanted on after the takeover:\n{log}");
}

/// The kiosk unit's session: the player as cage's child, with the unit's
/// flags. It draws on Wayland and says that this cage cannot power the
/// display off (cage 0.1.4 has no output power control), so the screen
/// stays on and black outside its hours.
#[test]
fn in_cage_the_player_draws_and_says_the_display_cannot_sleep() {
    let dir = tempfile::tempdir().unwrap();
    let demo = root().join("playlists/demo.toml");
    let config = crate::common::write_config(dir.path(), &hours_not_now());
    let running = Player::new(&config).playlist(&demo).session(Session::Cage).exit_after("4s").spawn();
    let said = wait_for_display(&config, "stays on, black outside screen-on hours");
    assert!(said.contains("the compositor offers no output power control"), "{said}");
    let played = running.finish();
    assert!(played.log.contains("outside screen-on hours: screen dark"), "{}", played.log);
    let renderer = &status_json(&config)["player"]["renderer"];
    assert!(renderer["backend"].is_string(), "no renderer reported: {renderer}\n{}", played.log);
}
