//! The one way the tests start the real player: `estation play` in a
//! private Xvfb (Mesa's software renderer), or on Wayland in a headless
//! compositor (see [`Session`]), with a config, a playlist, a screen and
//! window size, screenshot times, an end time, a sound device and more
//! environment; it hands back the log and the screenshots.
//!
//! Screenshots and the home folder go beside the config file.

use std::ffi::OsString;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use image::RgbImage;

use super::{estation, wait_until, write_config, Xvfb};

/// Where the player's window goes.
#[derive(Clone, Default)]
pub enum Session {
    /// A private Xvfb of the screen's size (X11).
    #[default]
    Xvfb,
    /// An already running Wayland compositor: its `XDG_RUNTIME_DIR` and
    /// `WAYLAND_DISPLAY` (see [`super::Sway`]).
    Wayland { runtime: PathBuf, display: String },
    /// Inside cage, as the kiosk unit starts it (`cage -d -s -- estation
    /// play`), on wlroots' headless backend with its software renderer.
    /// cage refuses to run as root, so it runs in a user namespace of its
    /// own (`unshare --user`), where it is nobody; files stay the tester's.
    Cage,
}

/// Generous: a cold debug build under llvmpipe on 2 busy cores is slow.
const LIMIT: Duration = Duration::from_secs(240);

/// One player run, set up builder-style; [`Player::run`] or [`Player::spawn`].
pub struct Player {
    config: PathBuf,
    dir: PathBuf,
    playlist: Option<PathBuf>,
    screen: Option<(u32, u32)>,
    depth: u8,
    window: Option<(u32, u32)>,
    shots: Vec<String>,
    exit_after: Option<String>,
    pcm: Option<String>,
    env: Vec<(OsString, OsString)>,
    session: Session,
}

/// What a finished run left: its log (stderr) and screenshots, in order.
pub struct Played {
    pub log: String,
    pub shots: Vec<RgbImage>,
}

impl Player {
    /// The player on the config file `config` (it must exist); its
    /// screenshots are written beside it.
    pub fn new(config: &Path) -> Player {
        Player {
            config: config.to_path_buf(),
            dir: config.parent().expect("the config is in a folder").to_path_buf(),
            playlist: None,
            screen: None,
            depth: 24,
            window: None,
            shots: Vec::new(),
            exit_after: None,
            pcm: None,
            env: Vec::new(),
            session: Session::Xvfb,
        }
    }

    /// The player on a fresh `dir/config.toml` ([`write_config`] with `extra`).
    pub fn fresh(dir: &Path, extra: &str) -> Player {
        Player::new(&write_config(dir, extra))
    }

    /// `--playlist` (a file or folder) instead of what the config or cache holds.
    pub fn playlist(mut self, path: &Path) -> Player {
        self.playlist = Some(path.to_path_buf());
        self
    }

    /// The X screen's size; full screen unless [`Player::window`] is given.
    /// Without it the screen is the window's size (or 640×360).
    pub fn screen(mut self, width: u32, height: u32) -> Player {
        self.screen = Some((width, height));
        self
    }

    /// The X screen's colour depth (24 unless told; Xvfb also has 8, 15,
    /// 16 and 30).
    pub fn depth(mut self, bits: u8) -> Player {
        self.depth = bits;
        self
    }

    /// `--window WxH`.
    pub fn window(mut self, width: u32, height: u32) -> Player {
        self.window = Some((width, height));
        self
    }

    /// `--screenshot-at`: times after the first frame (`1s`, `2700ms`). The
    /// player ends after the last one.
    pub fn shots(mut self, at: &[&str]) -> Player {
        self.shots = at.iter().map(|s| s.to_string()).collect();
        self
    }

    /// `--exit-after` (`12s`).
    pub fn exit_after(mut self, after: &str) -> Player {
        self.exit_after = Some(after.to_string());
        self
    }

    /// Sound to the ALSA device `pcm` (`type null`: one that discards what it
    /// is sent; `type hw card 99`: none at all), set in a home folder of the
    /// run's own (`home/` beside the config) so the tester's sound setup never
    /// leaks in.
    pub fn sound(mut self, pcm: &str) -> Player {
        self.pcm = Some(pcm.to_string());
        self
    }

    /// Where the window goes (Xvfb unless told).
    pub fn session(mut self, session: Session) -> Player {
        self.session = session;
        self
    }

    /// One more environment variable.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Player {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Where the screenshot `i` (from 1) of this run is written: one keeps
    /// the `--screenshot` name, several are numbered.
    pub fn shot_path(&self, i: usize) -> PathBuf {
        if self.shots.len() == 1 { self.dir.join("shot.png") } else { self.dir.join(format!("shot-{i}.png")) }
    }

    /// Runs the player to its end; it must succeed.
    pub fn run(self) -> Played {
        self.spawn().finish()
    }

    /// Starts the player and returns at once, for a test that acts while it
    /// plays.
    pub fn spawn(self) -> Running {
        let shots: Vec<PathBuf> = (1..=self.shots.len()).map(|i| self.shot_path(i)).collect();
        // A run before this one in the same folder must not pass for this one.
        for p in &shots {
            let _ = std::fs::remove_file(p);
        }
        let (w, h) = self.screen.or(self.window).unwrap_or((640, 360));
        let mut cmd = estation(&self.config);
        let mut x = None;
        let mut runtime = None;
        match &self.session {
            Session::Xvfb => {
                let server = Xvfb::start_at_depth(w, h, self.depth);
                cmd.env("DISPLAY", &server.display).env_remove("WAYLAND_DISPLAY");
                x = Some(server);
            }
            Session::Wayland { runtime, display } => {
                cmd.env("XDG_RUNTIME_DIR", runtime).env("WAYLAND_DISPLAY", display).env_remove("DISPLAY");
            }
            Session::Cage => {
                let dir = tempfile::tempdir().expect("runtime folder");
                cmd.env("XDG_RUNTIME_DIR", dir.path()).env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY");
                runtime = Some(dir);
            }
        }
        cmd.arg("play");
        if let Some(p) = &self.playlist {
            cmd.arg("--playlist").arg(p);
        }
        if let Some((w, h)) = self.window {
            cmd.arg("--window").arg(format!("{w}x{h}"));
        }
        if !self.shots.is_empty() {
            cmd.arg("--screenshot").arg(self.dir.join("shot.png")).arg("--screenshot-at").arg(self.shots.join(","));
        }
        if let Some(after) = &self.exit_after {
            cmd.arg("--exit-after").arg(after);
        }
        if let Some(pcm) = &self.pcm {
            let home = self.dir.join("home");
            std::fs::create_dir_all(&home).expect("home folder");
            std::fs::write(home.join(".asoundrc"), format!("pcm.!default {{ {pcm} }}\n")).expect("write .asoundrc");
            cmd.env("HOME", &home);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let (Session::Cage, Some(dir)) = (&self.session, &runtime) {
            cmd = in_cage(&cmd, dir.path());
        }
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start estation play");
        // The log is read as it comes, so a test can wait for a line and a
        // chatty player never blocks on a full pipe.
        let log = Arc::new(Mutex::new(String::new()));
        let reader = {
            let log = log.clone();
            let err = child.stderr.take().expect("piped stderr");
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                    let mut log = log.lock().expect("log");
                    log.push_str(&line);
                    log.push('\n');
                }
            })
        };
        Running { child, x, _runtime: runtime, log, reader: Some(reader), shots }
    }
}

/// `cmd` (a program, its arguments and environment) as the child of a
/// headless cage with the kiosk unit's flags, in the folder `dir`: cage
/// starts Xwayland with `-core`, and Xwayland dumps core into its working
/// folder when cage ends under it.
fn in_cage(cmd: &std::process::Command, dir: &Path) -> std::process::Command {
    let mut cage = std::process::Command::new("unshare");
    cage.current_dir(dir);
    cage.args(["--user", "cage", "-d", "-s", "--"]).arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => cage.env(k, v),
            None => cage.env_remove(k),
        };
    }
    cage.env("WLR_BACKENDS", "headless").env("WLR_RENDERER", "pixman").env("WLR_LIBINPUT_NO_DEVICES", "1");
    cage
}

/// A player that is running; killed (and its X server closed) if the test
/// lets go of it before [`Running::finish`].
pub struct Running {
    child: Child,
    x: Option<Xvfb>,
    _runtime: Option<tempfile::TempDir>,
    log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
    shots: Vec<PathBuf>,
}

impl Running {
    /// The log so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// The player's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The X display it runs on (an Xvfb session).
    pub fn x_display(&self) -> Option<&str> {
        self.x.as_ref().map(|x| x.display.as_str())
    }

    /// `kill -9`, as a power cut or the watchdog would end it: no chance
    /// to close anything. Its X server closes on drop.
    pub fn kill9(mut self) -> String {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.log()
    }

    /// Whether the player has ended (for whatever reason).
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().expect("wait for the player").is_some()
    }

    /// Waits for the player to end, however it ends: its exit code and log.
    pub fn wait(mut self) -> (Option<i32>, String) {
        wait_until(LIMIT, "the player to end", || self.exited());
        let code = self.child.wait().expect("wait for the player").code();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        (code, self.log())
    }

    /// Waits for the player to end; it must succeed and have written every
    /// screenshot.
    pub fn finish(mut self) -> Played {
        wait_until(LIMIT, "the player to finish", || self.exited());
        let ok = self.child.wait().expect("wait for the player").success();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let log = self.log();
        assert!(ok, "estation play failed:\n{log}");
        let shots = self
            .shots
            .iter()
            .map(|p| image::open(p).unwrap_or_else(|e| panic!("screenshot {}: {e}\nlog:\n{log}", p.display())).to_rgb8())
            .collect();
        Played { log, shots }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
