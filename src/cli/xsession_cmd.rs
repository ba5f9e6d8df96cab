//! `estation xsession TTY`: the X11 kiosk session, for systems without cage
//! (Debian 11, UOS V20, Kylin V10) and machines whose GPU draws on X11 only.
//! The `estation-x11` package's unit runs it in place of cage.
//!
//! It does what `startx` does for a login, without a desktop: an X server
//! of its own on the unit's virtual terminal, the player its only client.
//! The server runs as the kiosk user (rootless Xorg, the devices handed out
//! by logind for the unit's PAM session), on the session's own VT (`vtN`,
//! `-keeptty`; logind gives the display only to the session in front),
//! with no cursor and no TCP listener, and only clients holding the
//! session's cookie may connect: any other local user could otherwise read
//! or drive the screen. Screen blanking is the player's to decide: it turns
//! the X screen saver off and uses DPMS outside screen-on hours.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The X server the session starts (xserver-xorg-core's wrapper, which runs
/// Xorg as the calling user).
pub const SERVER: &str = "/usr/bin/Xorg";
/// What starts the server and the player and ends the one when the other ends.
pub const XINIT: &str = "/usr/bin/xinit";
/// Writes the session's cookie into its authority file.
pub const XAUTH: &str = "/usr/bin/xauth";

/// A virtual terminal and the X display on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub vt: u32,
    pub display: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a virtual terminal; give the unit's instance, e.g. tty1 (estation-kiosk@tty1.service)")]
pub struct NotAVt(pub String);

impl Session {
    /// The session on `tty` (`tty1` … `tty63`, or `/dev/tty1`): display
    /// `:0` on tty1, `:1` on tty2, and so on.
    pub fn on(tty: &str) -> Result<Session, NotAVt> {
        let name = tty.strip_prefix("/dev/").unwrap_or(tty);
        let vt: u32 = name
            .strip_prefix("tty")
            .filter(|n| !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse().ok())
            .filter(|n| (1..=63).contains(n))
            .ok_or_else(|| NotAVt(tty.to_string()))?;
        Ok(Session { vt, display: vt - 1 })
    }

    pub fn display_name(&self) -> String {
        format!(":{}", self.display)
    }

    /// xinit's arguments: the player (`estation play` with `play`), then
    /// the server and its options.
    pub fn xinit_args(&self, player: &Path, play: &[OsString], auth: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![player.into(), "play".into()];
        args.extend(play.iter().cloned());
        args.extend(["--".into(), SERVER.into()]);
        args.extend(
            [self.display_name(), format!("vt{}", self.vt)]
                .into_iter()
                .chain(["-keeptty", "-nolisten", "tcp", "-nocursor", "-auth"].map(String::from))
                .map(OsString::from),
        );
        args.push(auth.into());
        args
    }
}

/// Makes the cookie and replaces this process with xinit (or, with
/// `dry_run`, prints the command and exits).
pub fn run(tty: &str, play: &[OsString], dry_run: bool) -> anyhow::Result<ExitCode> {
    let session = Session::on(tty)?;
    let player = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/usr/bin/estation"));
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .or_else(|| std::env::var_os("STATE_DIRECTORY"))
        .map_or_else(std::env::temp_dir, PathBuf::from);
    let auth = dir.join("estation-xauthority");
    if play.iter().any(|a| a == "--") {
        anyhow::bail!("the player's options may not hold `--` (xinit would take what follows for the server's)");
    }
    let args = session.xinit_args(&player, play, &auth);
    if dry_run {
        let line: Vec<_> = std::iter::once(XINIT.into()).chain(args.iter().map(|a| a.to_string_lossy().into_owned())).collect::<Vec<String>>();
        println!("XAUTHORITY={} {}", auth.display(), line.join(" "));
        return Ok(ExitCode::SUCCESS);
    }
    cookie(&auth, &session)?;
    let err = Command::new(XINIT).args(&args).env("XAUTHORITY", &auth).env_remove("WAYLAND_DISPLAY").exec();
    anyhow::bail!("could not start {XINIT}: {err} (install the xinit package)")
}

/// A fresh random cookie for the session's display in `auth` (mode 0600,
/// the old file replaced), written by xauth.
fn cookie(auth: &Path, session: &Session) -> anyhow::Result<()> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for the X cookie: {e}"))?;
    match std::fs::remove_file(auth) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("{}: {e}", auth.display()),
    }
    let out = Command::new(XAUTH)
        .args(["-q", "-f"])
        .arg(auth)
        .args(["add", &session.display_name(), "MIT-MAGIC-COOKIE-1", &hex::encode(bytes)])
        .output()
        .map_err(|e| anyhow::anyhow!("could not run {XAUTH}: {e} (install the xauth package)"))?;
    if !out.status.success() {
        anyhow::bail!("{XAUTH} could not write {}: {}", auth.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_on_a_tty_is_its_vt_and_a_display_of_its_own() {
        assert_eq!(Session::on("tty1"), Ok(Session { vt: 1, display: 0 }));
        assert_eq!(Session::on("/dev/tty7"), Ok(Session { vt: 7, display: 6 }));
        for bad in ["", "tty", "tty0", "tty01", "tty64", "ttyS0", "pts/1", "tty1 ", "1", "tty-1"] {
            assert_eq!(Session::on(bad), Err(NotAVt(bad.to_string())), "{bad:?}");
        }
    }

    #[test]
    fn xinit_starts_the_player_and_a_rootless_server_on_that_vt_with_a_cookie() {
        let session = Session::on("tty2").unwrap();
        let player = Path::new("/usr/bin/estation");
        let auth = Path::new("/run/user/999/estation-xauthority");
        let args = session.xinit_args(player, &[], auth);
        let args: Vec<_> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "/usr/bin/estation", "play", "--", "/usr/bin/Xorg", ":1", "vt2", "-keeptty", "-nolisten", "tcp",
                "-nocursor", "-auth", "/run/user/999/estation-xauthority",
            ]
        );
        let more = session.xinit_args(player, &["--exit-after".into(), "3s".into()], auth);
        assert_eq!(&more[..5], ["/usr/bin/estation", "play", "--exit-after", "3s", "--"].map(OsString::from).as_slice());
    }
}
