//! Shared by the integration tests: run the real binary, in a real X server.

#![allow(dead_code)] // each test binary uses a different part

pub mod clips;
#[cfg(feature = "net")]
pub mod feedsrv;
#[cfg(feature = "net")]
pub mod nginx;
#[cfg(feature = "net")]
pub mod mosquitto;
pub mod operator;
#[cfg(feature = "central")]
pub mod pg;
pub mod pixels;
pub mod player;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The source tree being tested. Read at run time: cargo sets
/// `CARGO_MANIFEST_DIR` for the tests it runs, while the compile-time value
/// goes stale when a clone reuses another clone's `CARGO_TARGET_DIR` (cargo
/// does not rebuild a package just because its folder moved).
pub fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The `estation` binary with a config of our own, so the tester's config
/// never leaks in, and a data folder beside it (`XDG_DATA_HOME`), so a
/// config with no `[cache] dir` keeps its default cache, and the last good
/// copy of the config, there and not in the tester's own.
pub fn estation(config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_estation"));
    c.arg("--config").arg(config);
    c.env_remove("ESTATION_CONFIG").env("ESTATION_DATA_DIR", root());
    if let Some(dir) = config.parent() {
        c.env("XDG_DATA_HOME", dir.join(".data"));
    }
    c
}

/// [`estation`] with its clock moved by `offset` (libfaketime's format:
/// `-2d`, `+1d`, `-3y`), as a kiosk whose clock was set wrong sees it.
/// Monotonic time is left alone, so timers and timeouts still work.
pub fn estation_at(offset: &str, config: &Path) -> Command {
    let mut c = Command::new("faketime");
    c.args(["-f", offset]).arg(env!("CARGO_BIN_EXE_estation")).arg("--config").arg(config);
    c.env_remove("ESTATION_CONFIG").env("ESTATION_DATA_DIR", root()).env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    c
}

/// A config file in `dir`: Shanghai time, zh-CN, windowed only if asked.
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("config.toml");
    let text = format!(
        "[screen]\nname = \"测试屏\"\nid = \"test-1\"\ntimezone = \"Asia/Shanghai\"\nlanguage = \"zh-CN\"\n{extra}"
    );
    std::fs::write(&path, text).expect("write config");
    path
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A private Xvfb server, killed on drop. `-displayfd` lets the server pick a
/// free display number, so tests can run in parallel.
pub struct Xvfb {
    child: Child,
    pub display: String,
}

impl Xvfb {
    pub fn start(width: u32, height: u32) -> Xvfb {
        Xvfb::start_at_depth(width, height, 24)
    }

    pub fn start_at_depth(width: u32, height: u32, depth: u8) -> Xvfb {
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-nolisten", "tcp", "-screen", "0"])
            .arg(format!("{width}x{height}x{depth}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb must be installed to run the screen tests (scripts/install-deps --test)");
        let mut line = String::new();
        let out = child.stdout.take().expect("piped stdout");
        BufReader::new(out).read_line(&mut line).expect("read the display number from Xvfb");
        let n = line.trim();
        assert!(!n.is_empty(), "Xvfb did not report a display number");
        Xvfb { child, display: format!(":{n}") }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private headless sway (wlroots' headless backend, software renderer):
/// a Wayland compositor that offers output power control
/// (`zwlr_output_power_manager_v1`), which Debian 12's cage does not. sway
/// refuses to run as root, so it runs in a user namespace of its own
/// (`unshare --user`); clients of the tester's connect as usual. Killed on
/// drop. Its debug log shows what clients asked of the outputs.
pub struct Sway {
    child: Child,
    runtime: tempfile::TempDir,
    pub display: String,
}

impl Sway {
    pub fn start() -> Sway {
        let runtime = tempfile::tempdir().expect("runtime folder");
        let config = runtime.path().join("sway.conf");
        std::fs::write(&config, "xwayland disable\noutput * resolution 640x360\n").expect("sway config");
        let log = std::fs::File::create(runtime.path().join("sway.log")).expect("sway log");
        let child = Command::new("unshare")
            .args(["--user", "sway", "-d", "-c"])
            .arg(&config)
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env("WLR_BACKENDS", "headless")
            .env("WLR_RENDERER", "pixman")
            .env("WLR_LIBINPUT_NO_DEVICES", "1")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sway must be installed to run the session tests (scripts/install-deps --test)");
        let mut sway = Sway { child, runtime, display: String::new() };
        let socket = |dir: &Path| {
            std::fs::read_dir(dir).ok()?.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).find(|n| n.starts_with("wayland-") && !n.ends_with(".lock"))
        };
        wait_until(Duration::from_secs(30), "sway's Wayland socket", || socket(sway.runtime.path()).is_some());
        sway.display = socket(sway.runtime.path()).unwrap_or_default();
        sway
    }

    /// Its `XDG_RUNTIME_DIR`.
    pub fn runtime(&self) -> PathBuf {
        self.runtime.path().to_path_buf()
    }

    /// Its debug log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.runtime.path().join("sway.log")).unwrap_or_default()
    }
}

impl Drop for Sway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a run printed, and how it ended.
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion, killing it after `limit`. Output is drained on
/// threads so a chatty child never blocks on a full pipe.
pub fn run_with_limit(cmd: &mut Command, limit: Duration) -> Run {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start estation");
    let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = Read::read_to_string(&mut r, &mut s);
            }
            s
        })
    };
    let out = drain(child.stdout.take().map(|r| Box::new(r) as _));
    let err = drain(child.stderr.take().map(|r| Box::new(r) as _));
    let mut status = None;
    if !poll_until(limit, Duration::from_millis(100), || {
        status = child.try_wait().expect("wait for estation");
        status.is_some()
    }) {
        let _ = child.kill();
        let _ = child.wait();
    }
    let run = Run {
        success: status.is_some_and(|s| s.success()),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    assert!(status.is_some(), "estation did not finish within {limit:?}\nstderr:\n{}", run.stderr);
    run
}

/// Polls `condition` every 50 ms until it holds and returns how long that
/// took; fails the test after `timeout`, naming `what` it waited for.
pub fn wait_until(timeout: Duration, what: &str, condition: impl FnMut() -> bool) -> Duration {
    wait_until_every(Duration::from_millis(50), timeout, what, condition)
}

/// [`wait_until`], polling every `every` (a video frame pump needs
/// milliseconds; running a command to look needs no more than a few a second).
pub fn wait_until_every(every: Duration, timeout: Duration, what: &str, condition: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    assert!(poll_until(timeout, every, condition), "timed out after {timeout:?} waiting for {what}");
    start.elapsed()
}

/// Polls `condition` every `every` until it holds (true) or `timeout` has
/// passed (false), for a caller that has more to say when it never held.
pub fn poll_until(timeout: Duration, every: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// A child process killed when the test lets go of it, failed assertions
/// included, so a panicking test never leaves a `sync` loop running.
pub struct Killed(pub Child);

impl Killed {
    pub fn spawn(cmd: &mut Command) -> Killed {
        Killed(cmd.spawn().expect("start estation"))
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
