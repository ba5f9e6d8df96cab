//! `estation doctor`: one command that checks what a kiosk needs and says,
//! for each thing wrong, what to do about it (the package to install, the
//! line to change). It changes nothing.
//!
//! Each check gives a [`Finding`]: fine, worth knowing, or to fix. The exit
//! status is 1 when anything is to fix, so a provisioning script can run it.

use std::fmt;
use std::path::Path;
use std::process::ExitCode;

use crate::config::Settings;

/// How a check came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Works, but worth knowing (software rendering, no session here).
    Note,
    /// Needs fixing; the words say how.
    Fix(String),
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub area: &'static str,
    pub said: String,
    pub verdict: Verdict,
}

impl Finding {
    fn ok(area: &'static str, said: impl Into<String>) -> Finding {
        Finding { area, said: said.into(), verdict: Verdict::Ok }
    }
    fn note(area: &'static str, said: impl Into<String>) -> Finding {
        Finding { area, said: said.into(), verdict: Verdict::Note }
    }
    fn fix(area: &'static str, said: impl Into<String>, how: impl Into<String>) -> Finding {
        Finding { area, said: said.into(), verdict: Verdict::Fix(how.into()) }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.verdict {
            Verdict::Ok => "ok",
            Verdict::Note => "note",
            Verdict::Fix(_) => "FIX",
        };
        write!(f, "{tag:<5} {:<9} {}", self.area, self.said)?;
        if let Verdict::Fix(how) = &self.verdict {
            write!(f, "\n                fix: {how}")?;
        }
        Ok(())
    }
}

const INSTALL: &str = "sudo apt-get install ";

/// Runs every check, prints them, and exits 1 when something is to fix.
pub fn run(settings: &Settings, assets: Option<&Path>) -> anyhow::Result<ExitCode> {
    let mut found = Vec::new();
    found.extend(config(settings));
    #[cfg(feature = "player")]
    {
        found.extend(renderer(settings));
        found.push(session());
        found.push(display_power(settings));
        found.push(fonts(assets));
        found.extend(video());
        found.push(sound());
    }
    #[cfg(not(feature = "player"))]
    {
        let _ = assets;
        found.push(Finding::fix(
            "player",
            "this estation was built without the player (no window, video or sound)",
            "install the estation package built with its default features",
        ));
    }
    found.extend(cache(settings));
    #[cfg(feature = "net")]
    found.extend(feed(settings));
    found.extend(unit());
    for f in &found {
        println!("{f}");
    }
    let to_fix = found.iter().filter(|f| matches!(f.verdict, Verdict::Fix(_))).count();
    let mut packages: Vec<&str> = found
        .iter()
        .filter_map(|f| if let Verdict::Fix(how) = &f.verdict { how.strip_prefix(INSTALL) } else { None })
        .flat_map(str::split_whitespace)
        .collect();
    packages.sort_unstable();
    packages.dedup();
    if !packages.is_empty() {
        println!("missing: {INSTALL}{}", packages.join(" "));
    }
    if to_fix == 0 {
        println!("everything the player needs is in order");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{to_fix} thing(s) to fix (the lines marked FIX)");
        Ok(ExitCode::from(1))
    }
}

fn config(settings: &Settings) -> Vec<Finding> {
    let loaded = &settings.loaded;
    let mut out = Vec::new();
    if let Some(why) = &loaded.fallback {
        let how = loaded.unusable.as_ref().map_or_else(|| "correct the config file".to_string(), |d| format!("correct {d}"));
        out.push(Finding::fix("config", why.clone(), how));
    }
    for p in &loaded.problems.0 {
        out.push(Finding::fix("config", format!("{p} (its default is used)"), format!("correct or remove that line: {p}")));
    }
    if out.is_empty() {
        out.push(Finding::ok("config", loaded.note.clone()));
    }
    out
}

#[cfg(feature = "player")]
fn renderer(settings: &Settings) -> Vec<Finding> {
    use crate::core::first_frame;
    use crate::player::renderer::{survey, DRIVERS};
    let record = settings.config.cache.dir().map(|d| crate::store::status::PlayerStatus::first_frame_path(&d));
    let starts = record.as_deref().map(first_frame::load).unwrap_or_default();
    let passed = first_frame::passed_over(&starts, env!("CARGO_PKG_VERSION"), chrono::Utc::now());
    let last: Vec<String> = passed.iter().map(|p| p.adapter.clone()).collect();
    let adapters = survey(&last);
    let Some(best) = adapters.first() else {
        return vec![Finding::fix(
            "renderer",
            "no GPU adapter, not even Mesa's software renderer: the player cannot draw",
            format!("{INSTALL}{DRIVERS}"),
        )];
    };
    let mut out = vec![if best.software {
        Finding::note(
            "renderer",
            format!(
                "{}: software rendering only (no GPU driver works); slow but it draws. On Intel \
                 or AMD graphics check that mesa-vulkan-drivers and libgl1-mesa-dri are installed \
                 and the user is in the video and render groups",
                best.describe()
            ),
        )
    } else {
        Finding::ok("renderer", format!("the player will draw with {}", best.describe()))
    }];
    for other in &adapters[1..] {
        out.push(Finding::ok("renderer", format!("also there: {}", other.describe())));
    }
    // Never a FIX: the player already draws with the next adapter, and the
    // passed-over one gets another try by itself.
    for p in &passed {
        out.push(Finding::note(
            "renderer",
            format!(
                "{} ended its last {} starts before a first frame (the latest at {}): the player \
                 tries it last until {}. To try it first now, remove {}",
                p.adapter,
                first_frame::FAILS,
                p.last.format("%F %T UTC"),
                p.until.format("%F %T UTC"),
                record.as_deref().map_or_else(String::new, |r| r.display().to_string())
            ),
        ));
    }
    out
}

#[cfg(feature = "player")]
fn session() -> Finding {
    let wayland = std::env::var_os("WAYLAND_DISPLAY").filter(|v| !v.is_empty());
    let x11 = std::env::var_os("DISPLAY").filter(|v| !v.is_empty());
    match (wayland, x11) {
        (Some(w), _) => Finding::ok("display", format!("Wayland session ({})", w.to_string_lossy())),
        (None, Some(d)) => Finding::ok("display", format!("X11 session ({})", d.to_string_lossy())),
        (None, None) => Finding::note(
            "display",
            "no display session in this shell (normal over ssh: the kiosk unit starts its own, \
             `systemctl status estation-kiosk@tty1`)",
        ),
    }
}

/// Whether the display can sleep outside screen-on hours, asked of this
/// shell's session without changing it. Never a FIX: a display that cannot
/// sleep still shows everything, black outside its hours.
#[cfg(feature = "player")]
fn display_power(settings: &Settings) -> Finding {
    use crate::player::display_power::{probe, Error};
    if !settings.config.display_sleep {
        return Finding::ok("power", "display.sleep = false: the display stays on, black outside screen-on hours");
    }
    match probe() {
        Ok(name) => Finding::ok("power", format!("the display can be powered off outside screen-on hours ({name})")),
        Err(Error::NoSession) => Finding::note("power", "no display session in this shell to ask (`estation status` says what the player found)"),
        Err(e) => Finding::note("power", format!("the display stays on, black outside screen-on hours: {e}")),
    }
}

#[cfg(feature = "player")]
fn fonts(assets: Option<&Path>) -> Finding {
    let Some(dir) = assets.map(|a| a.join("fonts")) else {
        return Finding::fix(
            "fonts",
            "the bundled assets are not found (no fonts: Chinese text cannot be drawn)",
            "reinstall the estation package, or set ESTATION_DATA_DIR to the folder holding assets/",
        );
    };
    let wanted = ["NotoSansCJKsc-Regular.otf", "NotoSansCJKsc-Bold.otf"];
    let missing: Vec<_> = wanted.iter().filter(|f| !dir.join(f).is_file()).collect();
    if missing.is_empty() {
        Finding::ok("fonts", format!("Noto Sans CJK SC regular and bold in {}", dir.display()))
    } else {
        Finding::fix(
            "fonts",
            format!("missing in {}: {}", dir.display(), missing.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")),
            "reinstall the estation package (scripts/make-fonts in a source checkout)",
        )
    }
}

#[cfg(feature = "player")]
fn video() -> Vec<Finding> {
    use crate::video::plugins;
    let report = match plugins::report() {
        Ok(r) => r,
        Err(e) => {
            return vec![Finding::fix(
                "video",
                e.to_string(),
                format!("{INSTALL}{} {} {} {}", plugins::BASE, plugins::GOOD, plugins::BAD, plugins::LIBAV),
            )]
        }
    };
    let mut out = vec![Finding::ok("video", report.version.clone())];
    for c in &report.checks {
        out.push(match &c.element {
            Some(e) => Finding::ok("video", format!("{}: {e}{}", c.what, if c.hardware { " (hardware)" } else { "" })),
            None => Finding::fix("video", format!("{}: no element", c.what), format!("{INSTALL}{}", c.package)),
        });
    }
    out.push(if report.hardware() {
        Finding::ok("video", "hardware video decoding: yes")
    } else {
        Finding::note(
            "video",
            format!(
                "hardware video decoding: no (software decoding works; on Intel install intel-media-va-driver \
                 (Broadwell and newer) or i965-va-driver, with {}; check with vainfo)",
                plugins::BAD
            ),
        )
    });
    out
}

#[cfg(feature = "player")]
fn sound() -> Finding {
    match rodio::DeviceSinkBuilder::open_default_sink() {
        Ok(_) => Finding::ok("sound", "the default output device opens"),
        Err(e) => Finding::note(
            "sound",
            format!(
                "no output device ({e}); the player plays silently and retries (check the cable or HDMI \
                 audio, and that the user is in the audio group)"
            ),
        ),
    }
}

fn cache(settings: &Settings) -> Vec<Finding> {
    let config = &settings.config;
    let Some(dir) = config.cache.dir() else {
        return vec![Finding::fix("cache", "no cache folder (no home or data folder)", "set [cache] dir in the config")];
    };
    let mut out = Vec::new();
    let cache = crate::store::cache::Cache::at(&dir);
    let used = cache.used_bytes();
    let budget = config.cache.budget;
    let free = crate::store::cache::free_space(dir.ancestors().find(|p| p.exists()).unwrap_or(&dir));
    let room = format!(
        "{}: {} of a {} budget used, {} free on its disk",
        dir.display(),
        bytesize::ByteSize(used),
        bytesize::ByteSize(budget),
        free.map_or("unknown".into(), |f| bytesize::ByteSize(f).to_string())
    );
    out.push(match free {
        // Less room left on the disk than the budget still allows: a large
        // feed version would not fit.
        Some(f) if f < budget.saturating_sub(used) / 2 && f < 1 << 30 => Finding::fix(
            "disk",
            room,
            "free space on that disk, or lower [cache] budget in the config to what the disk holds",
        ),
        _ => Finding::ok("disk", room),
    });
    let Some(key) = config.feed.public_key else {
        out.push(Finding::note("cache", "no feed key configured: the player plays local files, not the cache"));
        return out;
    };
    out.push(match cache.verify(&key) {
        Ok(None) => Finding::note("cache", "no version in the cache yet (the first sync brings one)"),
        Ok(Some(c)) if c.problems.is_empty() => Finding::ok(
            "cache",
            format!("version {}: {} file(s), {}, every hash checks", c.version.manifest.version, c.files, bytesize::ByteSize(c.bytes)),
        ),
        Ok(Some(c)) => Finding::fix(
            "cache",
            format!("version {}: {}", c.version.manifest.version, c.problems.join("; ")),
            "run `estation sync --once` (bad files are fetched again; the player keeps the last whole version)",
        ),
        Err(e) => Finding::fix("cache", e.to_string(), "run `estation sync --once`; if it persists remove the cache folder"),
    });
    out
}

/// The feed: reachable, signed with the configured key, and the clock
/// against the server's.
#[cfg(feature = "net")]
fn feed(settings: &Settings) -> Vec<Finding> {
    use crate::core::feed::manifest::{verify_signature, MANIFEST_FILE, MAX_MANIFEST_BYTES};
    let config = &settings.config;
    let Some(url) = &config.feed.url else {
        return vec![Finding::note("feed", "no [feed] url: this screen plays what is on its disk (USB updates only)")];
    };
    let Some(key) = config.feed.public_key else {
        return vec![Finding::fix(
            "feed",
            format!("{url} is set but no key: nothing from it can be trusted or played"),
            "add [feed] public_key = \"ed25519:…\" (what `estation feed keygen` printed) to the config",
        )];
    };
    let Ok(manifest) = url.join(MANIFEST_FILE) else {
        return vec![Finding::fix("feed", format!("{url}: not a folder URL"), "correct [feed] url")];
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return vec![Finding::fix("feed", format!("cannot start the network runtime: {e}"), "report this")],
    };
    let got = runtime.block_on(async {
        let client = crate::net::http::client_builder().build()?;
        let get = crate::net::http::Get {
            url: &manifest,
            accept: None,
            etag: None,
            last_modified: None,
            deadline: Some(std::time::Duration::from_secs(15)),
            max: MAX_MANIFEST_BYTES,
        };
        get.send(&client).await.map_err(anyhow::Error::from)
    });
    let got = match got {
        Ok(g) => g,
        Err(e) => {
            return vec![Finding::fix(
                "feed",
                format!("{manifest}: {e:#}"),
                "check the network and [feed] url (the screen keeps playing its cache meanwhile)",
            )]
        }
    };
    let mut out = vec![match got.body.as_deref().map(|b| verify_signature(b, &key)) {
        Some(Ok(v)) => Finding::ok(
            "feed",
            format!("{manifest}: version {}, signed with the configured key", v.manifest.version),
        ),
        Some(Err(e)) => Finding::fix(
            "feed",
            format!("{manifest}: {e}"),
            "check [feed] public_key against the one the feed is signed with (`estation feed keygen` printed it)",
        ),
        None => Finding::note("feed", format!("{manifest}: not modified")),
    }];
    if let Some(server) = got.date {
        let skew = chrono::Utc::now() - server;
        let secs = skew.num_seconds();
        out.push(if secs.abs() > 120 {
            Finding::fix(
                "clock",
                format!("this clock is {} {} the feed server's", humantime::format_duration(std::time::Duration::from_secs((secs.unsigned_abs() + 30) / 60 * 60)), if secs > 0 { "ahead of" } else { "behind" }),
                "turn on time sync: sudo timedatectl set-ntp true (schedules and warnings' times depend on it)",
            )
        } else {
            Finding::ok("clock", format!("within {}s of the feed server's", secs.abs().max(1)))
        });
    }
    out
}

/// The kiosk unit, when systemd runs here: whether it is up, and how often
/// it was restarted (crashes, hangs caught by the watchdog).
fn unit() -> Vec<Finding> {
    const UNIT: &str = "estation-kiosk@tty1.service";
    if !Path::new("/run/systemd/system").is_dir() {
        return vec![Finding::note("unit", "systemd is not running here (no kiosk unit to check)")];
    }
    let out = std::process::Command::new("systemctl")
        .args(["show", UNIT, "--property=LoadState,UnitFileState,ActiveState,SubState,NRestarts,ExecMainStartTimestamp"])
        .output();
    let text = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => return vec![Finding::note("unit", format!("systemctl show {UNIT}: {}", String::from_utf8_lossy(&o.stderr).trim()))],
        Err(e) => return vec![Finding::note("unit", format!("systemctl: {e}"))],
    };
    unit_state(UNIT, &text)
}

/// Reads `systemctl show`'s `KEY=value` lines.
fn unit_state(unit: &str, show: &str) -> Vec<Finding> {
    let get = |k: &str| show.lines().find_map(|l| l.strip_prefix(k)?.strip_prefix('=')).unwrap_or("");
    if get("LoadState") == "not-found" {
        return vec![Finding::note("unit", format!("{unit} is not installed (not a kiosk, or run from a checkout)"))];
    }
    let mut out = Vec::new();
    let enabled = get("UnitFileState");
    if enabled != "enabled" && enabled != "indirect" {
        out.push(Finding::fix("unit", format!("{unit} is {enabled}: it will not start at boot"), format!("sudo systemctl enable {unit}")));
    }
    let (active, sub) = (get("ActiveState"), get("SubState"));
    let restarts: u64 = get("NRestarts").parse().unwrap_or(0);
    let since = get("ExecMainStartTimestamp");
    let state = format!("{unit} is {active} ({sub}) since {}; restarted {restarts} time(s) since boot", if since.is_empty() { "-" } else { since });
    out.push(match active {
        "active" if restarts < 5 => Finding::ok("unit", state),
        "active" | "activating" => Finding::fix(
            "unit",
            state,
            format!("it keeps restarting: see why with journalctl -b -u {unit} (the last lines before each restart)"),
        ),
        _ => Finding::fix("unit", state, format!("sudo systemctl start {unit}; journalctl -b -u {unit} says why it stopped")),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixes(f: &[Finding]) -> Vec<&str> {
        f.iter().filter_map(|f| if let Verdict::Fix(how) = &f.verdict { Some(how.as_str()) } else { None }).collect()
    }

    #[test]
    fn a_unit_that_keeps_restarting_or_is_not_enabled_is_to_fix() {
        let unit = "estation-kiosk@tty1.service";
        let healthy = "LoadState=loaded\nUnitFileState=enabled\nActiveState=active\nSubState=running\nNRestarts=1\nExecMainStartTimestamp=Wed 2026-12-02 08:00:01 CST\n";
        let f = unit_state(unit, healthy);
        assert!(fixes(&f).is_empty(), "{f:?}");
        assert!(f[0].said.contains("restarted 1 time(s)") && f[0].said.contains("since Wed 2026-12-02"), "{f:?}");

        let looping = healthy.replace("NRestarts=1", "NRestarts=12").replace("SubState=running", "SubState=auto-restart").replace("ActiveState=active", "ActiveState=activating");
        assert!(fixes(&unit_state(unit, &looping))[0].contains("journalctl -b -u estation-kiosk@tty1.service"));

        let disabled = healthy.replace("UnitFileState=enabled", "UnitFileState=disabled");
        assert_eq!(fixes(&unit_state(unit, &disabled)), vec!["sudo systemctl enable estation-kiosk@tty1.service"]);

        let failed = healthy.replace("ActiveState=active", "ActiveState=failed").replace("SubState=running", "SubState=failed");
        assert!(fixes(&unit_state(unit, &failed))[0].starts_with("sudo systemctl start"));

        let absent = "LoadState=not-found\nUnitFileState=\nActiveState=inactive\n";
        assert!(fixes(&unit_state(unit, absent)).is_empty());
    }

    #[test]
    fn a_finding_to_fix_prints_its_fix_under_it() {
        let f = Finding::fix("fonts", "missing", "reinstall");
        assert_eq!(f.to_string(), "FIX   fonts     missing\n                fix: reinstall");
        assert_eq!(Finding::ok("sound", "opens").to_string(), "ok    sound     opens");
    }
}
