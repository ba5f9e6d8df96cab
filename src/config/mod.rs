//! The kiosk's settings: who the screen is, where it is, how it shows things.
//!
//! Where the config comes from, highest first (see [`locate`]):
//! 1. `--config PATH` on the command line,
//! 2. the `ESTATION_CONFIG` environment variable,
//! 3. the user's config dir (`~/.config/estation/config.toml` on Linux),
//! 4. `/etc/estation/config.toml` (system installs),
//! 5. built-in defaults.
//!
//! A missing file in 3 or 4 means "use defaults" (logged); a file named by 1
//! or 2 must exist. A field with a bad value is reported with file, line and
//! field, and its default is used, so a typo cannot keep a screen dark.
//!
//! A file that cannot be used as a whole (not UTF-8 — a GBK or UTF-16 file
//! saved by a Windows editor — or not TOML) is different: defaults would drop
//! the feed key and the alert sources and play the demo. The kiosk then runs
//! on the last config that loaded ([`last_good`], [`load_or_last_good`]) and
//! says so.
//!
//! The file is one layer of the settings: [`settings::resolve`] merges the
//! environment and the command line over it, and records where each value
//! came from ([`Origin`]).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use serde::Deserialize;
use toml::Spanned;

use crate::core::diag::{Diagnostic, Diagnostics, SourceMap};
use crate::core::playlist::validity::{HourWindow, OneOrMany, Validity};

pub mod last_good;
pub mod origin;
pub mod push_args;
pub mod settings;

pub use origin::Origin;
pub use settings::{resolve, Settings};

pub const ENV_VAR: &str = "ESTATION_CONFIG";
pub const SYSTEM_PATH: &str = "/etc/estation/config.toml";

pub use crate::core::clock_text::Language;

/// How the window is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum DisplayMode {
    /// Borderless full screen on the primary monitor, at its resolution.
    Fullscreen,
    Window { width: u32, height: u32 },
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Config {
    /// Where the settings came from (`None` = defaults only).
    pub source: Option<PathBuf>,
    pub screen_id: String,
    pub screen_name: String,
    #[serde(serialize_with = "ser_tz")]
    pub timezone: Tz,
    pub language: Language,
    /// 行政区划代码: 6 digits (county) or 12 digits (down to village).
    pub region: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub display: DisplayMode,
    /// Screen-on hours; empty = always on.
    #[serde(skip)]
    pub screen_on: Vec<Validity>,
    /// Outside screen-on hours, ask the display to power off (DPMS on X11,
    /// the compositor's output power control on Wayland). Off for a TV that
    /// does not come back from standby by itself: its screen is then kept on
    /// and black.
    pub display_sleep: bool,
    /// Master volume, 0-100.
    pub volume: u8,
    /// Hours when programme sound (narration, music, video sound) is off;
    /// warning chimes still sound.
    #[serde(serialize_with = "ser_hours")]
    pub quiet_hours: Vec<HourWindow>,
    /// Playlist file or folder to play when none is given on the command line.
    pub playlist: Option<PathBuf>,
    pub feed: FeedConfig,
    pub cache: CacheConfig,
    pub alerts: AlertsConfig,
    pub central: CentralConfig,
    pub push: PushConfig,
}

/// The MQTT broker that tells this kiosk when to sync at once (see
/// `crate::core::push`). Polling goes on beside it: push only makes news
/// arrive sooner, and the poll may relax while it is healthy.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PushConfig {
    /// `mqtts://HOST[:PORT]` (8883 by default), or `mqtt://` with
    /// `allow_plain`; None: no push.
    #[serde(serialize_with = "ser_url")]
    pub url: Option<url::Url>,
    /// The broker's user name; the screen id when not set.
    pub username: Option<String>,
    /// Never shown.
    #[serde(skip)]
    pub password: Option<String>,
    /// A PEM file of the CA that signed the broker's certificate, for a
    /// broker with its own CA; the system's CA store is used as well.
    pub ca: Option<PathBuf>,
    pub allow_plain: bool,
    #[serde(with = "humantime_serde_secs")]
    pub keep_alive: std::time::Duration,
    /// The feed's poll interval while push is healthy (never shorter than
    /// `[feed] interval`).
    #[serde(with = "humantime_serde_secs")]
    pub poll_when_healthy: std::time::Duration,
    pub topic_prefix: String,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            url: None,
            username: None,
            password: None,
            ca: None,
            allow_plain: false,
            keep_alive: std::time::Duration::from_secs(60),
            poll_when_healthy: std::time::Duration::from_secs(600),
            topic_prefix: crate::core::push::DEFAULT_PREFIX.into(),
        }
    }
}

/// The county office's central service this kiosk reports to.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CentralConfig {
    /// The service's URL (https://, or http:// with `allow_http`); None:
    /// reports to nobody.
    #[serde(serialize_with = "ser_url")]
    pub url: Option<url::Url>,
    /// The token `estation-central screen add` printed; never shown.
    #[serde(skip)]
    pub token: Option<String>,
    #[serde(with = "humantime_serde_secs")]
    pub heartbeat: std::time::Duration,
    pub allow_http: bool,
    /// How often the player sends the service a screenshot (it also sends
    /// one when the service asks); None: only when asked (`"off"`).
    #[serde(serialize_with = "ser_opt_duration")]
    pub screenshot: Option<std::time::Duration>,
}

impl Default for CentralConfig {
    fn default() -> Self {
        CentralConfig {
            url: None,
            token: None,
            heartbeat: std::time::Duration::from_secs(crate::core::heartbeat::DEFAULT_EVERY_SECS),
            allow_http: false,
            screenshot: Some(std::time::Duration::from_secs(15 * 60)),
        }
    }
}

/// Where this kiosk's content comes from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FeedConfig {
    /// URL of the feed folder (holding `manifest.json`), with the trailing
    /// `/` that [`crate::core::feed::folder_url`] gives it; None: no network
    /// sync. Parsed here once, so sync and `status` never re-parse it.
    #[serde(serialize_with = "ser_url")]
    pub url: Option<url::Url>,
    /// Written `ed25519:…` as `estation feed keygen` prints it. With a key
    /// the player plays from the cache; without one it plays local files.
    #[serde(serialize_with = "ser_key")]
    pub public_key: Option<ed25519_dalek::VerifyingKey>,
    #[serde(with = "humantime_serde_secs")]
    pub interval: std::time::Duration,
    pub max_bytes_per_sec: Option<u64>,
    /// A feed whose newest build is older than this is flagged frozen in
    /// `estation status` (the server answers, but nobody renews the feed).
    #[serde(with = "humantime_serde_secs")]
    pub max_age: std::time::Duration,
    /// `estation status` warns when the local clock and the last trusted
    /// time (see `crate::core::trusted_time`) disagree by more than this.
    #[serde(with = "humantime_serde_secs")]
    pub clock_skew: std::time::Duration,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            url: None,
            public_key: None,
            interval: std::time::Duration::from_secs(60),
            max_bytes_per_sec: None,
            max_age: std::time::Duration::from_secs(7 * 86_400),
            clock_skew: std::time::Duration::from_secs(300),
        }
    }
}

mod humantime_serde_secs {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

/// Weather and disaster warnings (see `crate::core::alert`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertsConfig {
    /// Upstream CAP sources polled besides the feed's own alerts.
    pub sources: Vec<AlertSource>,
    /// Show every alert from the sources, whatever area it is for.
    pub show_all: bool,
    /// Show `Exercise` messages (marked 演练) and `Test` ones (marked 测试).
    pub show_exercise: bool,
    pub show_test: bool,
    /// Life of a message that gives no `<expires>`.
    #[serde(with = "humantime_serde_secs")]
    pub default_lifetime: std::time::Duration,
    /// Lowest severity that takes the whole screen / gets a banner.
    pub takeover: crate::core::alert::cap::Severity,
    pub banner: crate::core::alert::cap::Severity,
    /// The chime repeats this often while a takeover is up (0: only at start).
    #[serde(with = "humantime_serde_secs")]
    pub chime_interval: std::time::Duration,
    /// Each of several takeover alerts stays this long before the next.
    #[serde(with = "humantime_serde_secs")]
    pub cycle: std::time::Duration,
    /// The CAP addresses this screen answers to (`Restricted` and `Private`
    /// messages are shown only where they are addressed).
    pub addresses: Vec<String>,
}

/// One upstream CAP source: a CAP document or an Atom/RSS index of them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertSource {
    /// Kept as the alert store names the source (`url::Url`'s own spelling).
    #[serde(serialize_with = "ser_one_url")]
    pub url: url::Url,
    #[serde(with = "humantime_serde_secs")]
    pub interval: std::time::Duration,
    /// Plain http was allowed for this source (a server on the LAN): its
    /// messages are marked as such, and their audio may come over http.
    pub allow_http: bool,
    /// Senders whose messages this source may update and cancel wherever
    /// they came from (see `alert::authority`); by default only its own.
    pub authority_for: Vec<String>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            sources: Vec::new(),
            show_all: false,
            show_exercise: false,
            show_test: false,
            default_lifetime: std::time::Duration::from_secs(12 * 3600),
            takeover: crate::core::alert::cap::Severity::Severe,
            banner: crate::core::alert::cap::Severity::Unknown,
            chime_interval: std::time::Duration::from_secs(300),
            cycle: std::time::Duration::from_secs(15),
            addresses: Vec::new(),
        }
    }
}

impl Config {
    /// The alert presentation policy for this screen.
    pub fn alert_policy(&self) -> crate::core::alert::Policy {
        let a = &self.alerts;
        let dur = |d: std::time::Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero());
        crate::core::alert::Policy {
            language: match self.language {
                Language::ZhCn => "zh-CN".into(),
                Language::En => "en".into(),
            },
            place: crate::core::alert::target::Place {
                region: self.region.clone(),
                point: self.latitude.zip(self.longitude).map(|(lat, lon)| crate::core::alert::cap::Point { lat, lon }),
                everywhere: a.show_all,
            },
            show_exercise: a.show_exercise,
            show_test: a.show_test,
            takeover_from: a.takeover,
            banner_from: a.banner,
            lifetimes: crate::core::alert::store::Lifetimes { default: dur(a.default_lifetime), ..Default::default() },
            cycle: dur(a.cycle),
            takeover_max: 3,
            addresses: a.addresses.clone(),
        }
    }

    /// What a delivery of alerts may do: their lives, who may change what,
    /// and where the screen is.
    pub fn alert_rules(&self) -> crate::store::inbox::Rules {
        let policy = self.alert_policy();
        crate::store::inbox::Rules { lifetimes: policy.lifetimes, authority: self.alert_authority(), place: policy.place }
    }

    /// Which source may change which messages (`authority_for` of each
    /// upstream source).
    pub fn alert_authority(&self) -> crate::core::alert::authority::Authority {
        self.alerts.sources.iter().fold(crate::core::alert::authority::Authority::none(), |a, s| a.grant(s.url.as_str(), s.authority_for.iter().cloned()))
    }
}

/// The offline cache.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CacheConfig {
    /// None: the user's data dir (`~/.local/share/estation/cache`).
    pub dir: Option<PathBuf>,
    /// Most bytes the cache may hold.
    pub budget: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { dir: None, budget: 4_000_000_000 }
    }
}

impl CacheConfig {
    pub fn dir(&self) -> Option<PathBuf> {
        self.dir.clone().or_else(crate::store::cache::default_dir)
    }
}

fn ser_hours<S: serde::Serializer>(hours: &[HourWindow], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(hours.iter().map(ToString::to_string))
}

fn ser_opt_duration<S: serde::Serializer>(d: &Option<std::time::Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
        None => s.serialize_str("off"),
    }
}

fn ser_url<S: serde::Serializer>(u: &Option<url::Url>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_some(&u.as_ref().map(url::Url::as_str))
}

fn ser_one_url<S: serde::Serializer>(u: &url::Url, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(u.as_str())
}

/// The key as the config writes it, so `config show --json` can be pasted back.
fn ser_key<S: serde::Serializer>(k: &Option<ed25519_dalek::VerifyingKey>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_some(&k.as_ref().map(crate::core::feed::keys::public_key_string))
}

fn ser_tz<S: serde::Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}

impl Default for Config {
    fn default() -> Self {
        Config {
            source: None,
            screen_id: "estation".into(),
            screen_name: "科普e站".into(),
            timezone: chrono_tz::Asia::Shanghai,
            language: Language::ZhCn,
            region: None,
            latitude: None,
            longitude: None,
            display: DisplayMode::Fullscreen,
            screen_on: Vec::new(),
            display_sleep: true,
            volume: 80,
            quiet_hours: Vec::new(),
            playlist: None,
            feed: FeedConfig::default(),
            cache: CacheConfig::default(),
            alerts: AlertsConfig::default(),
            central: CentralConfig::default(),
            push: PushConfig::default(),
        }
    }
}

impl Config {
    /// Whether the screen should be on at local time `t`.
    pub fn screen_is_on(&self, t: chrono::NaiveDateTime) -> bool {
        self.screen_on.is_empty() || self.screen_on.iter().any(|v| v.matches(t))
    }

    /// Whether programme sound is off at local time `t` (`[audio] quiet_hours`).
    pub fn is_quiet(&self, t: chrono::NaiveDateTime) -> bool {
        self.quiet_hours.iter().any(|w| w.contains(t.time()))
    }
}

/// Where the config file is, and whether it must exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Named by `--config` or `ESTATION_CONFIG`: missing is an error.
    Explicit(PathBuf),
    /// Found by search: missing means defaults.
    Searched(Vec<PathBuf>),
}

/// The one place the precedence is written down.
pub fn locate(cli: Option<&Path>, env: Option<OsString>, user_dir: Option<PathBuf>) -> Location {
    if let Some(p) = cli {
        return Location::Explicit(p.to_path_buf());
    }
    if let Some(p) = env.filter(|v| !v.is_empty()) {
        return Location::Explicit(PathBuf::from(p));
    }
    let mut candidates = Vec::new();
    if let Some(dir) = user_dir {
        candidates.push(dir.join("config.toml"));
    }
    candidates.push(PathBuf::from(SYSTEM_PATH));
    Location::Searched(candidates)
}

/// The user's config dir from the `directories` crate.
pub fn user_config_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "estation").map(|d| d.config_dir().to_path_buf())
}

/// Why no config could be used at all.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A loaded config plus the problems found in it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Problems with single fields (each of them has its default).
    pub problems: Diagnostics,
    /// What happened, for the log: "using defaults: no config file at …".
    pub note: String,
    /// Why the file could not be used at all (not UTF-8, not TOML).
    pub unusable: Option<Diagnostic>,
    /// Set when `config` is not what the file says (it is unusable): why,
    /// and what is used instead, for the log, `estation status` and the
    /// screen.
    pub fallback: Option<String>,
    /// Where each field the file set was written (its file and line, or the
    /// last good copy's), by its name in the file (`feed.url`); a field not
    /// here has its default. Read through [`Settings::origin`].
    pub(crate) origins: BTreeMap<&'static str, Origin>,
    /// The file's text when it loaded, for [`last_good::keep`].
    text: Option<String>,
}

impl Loaded {
    /// Every problem, the whole-file one first: what `config check` prints.
    pub fn diagnostics(&self) -> Diagnostics {
        Diagnostics(self.unusable.iter().chain(&self.problems.0).cloned().collect())
    }

    fn defaults(note: String) -> Loaded {
        Loaded { config: Config::default(), problems: Diagnostics(Vec::new()), note, unusable: None, fallback: None, origins: BTreeMap::new(), text: None }
    }
}

/// Finds and loads the config following [`locate`]'s precedence, as the
/// file says (an unusable file gives defaults; see [`load_or_last_good`]).
pub fn load(location: &Location) -> Result<Loaded, ConfigError> {
    Ok(match read(location)? {
        Some((path, bytes)) => from_bytes(&path, &bytes),
        None => Loaded::defaults(searched_note(location)),
    })
}

/// Like [`load`], but a file that cannot be used as a whole gives way to the
/// last config that loaded from it ([`last_good::recall`]), or to defaults
/// (loudly: [`Loaded::fallback`]) when none was kept. What the player,
/// `sync` and `status` use.
pub fn load_or_last_good(location: &Location) -> Result<Loaded, ConfigError> {
    Ok(match read(location)? {
        Some((path, bytes)) => {
            let loaded = from_bytes(&path, &bytes);
            if loaded.unusable.is_some() { last_good::recall(loaded, &path, &bytes) } else { loaded }
        }
        None => Loaded::defaults(searched_note(location)),
    })
}

/// The file's path and bytes; None when no searched file exists.
fn read(location: &Location) -> Result<Option<(PathBuf, Vec<u8>)>, ConfigError> {
    let candidates = match location {
        Location::Explicit(path) => {
            return std::fs::read(path)
                .map(|b| Some((path.clone(), b)))
                .map_err(|source| ConfigError::Read { path: path.clone(), source });
        }
        Location::Searched(candidates) => candidates,
    };
    for path in candidates {
        match std::fs::read(path) {
            Ok(bytes) => return Ok(Some((path.clone(), bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(ConfigError::Read { path: path.clone(), source }),
        }
    }
    Ok(None)
}

fn searched_note(location: &Location) -> String {
    let looked: Vec<String> = match location {
        Location::Searched(c) => c.iter().map(|p| p.display().to_string()).collect(),
        Location::Explicit(p) => vec![p.display().to_string()],
    };
    format!("no config file (looked at {}); using defaults", looked.join(", "))
}

/// Loads config file bytes: [`decode`], then [`parse`].
pub fn from_bytes(path: &Path, bytes: &[u8]) -> Loaded {
    match decode(path, bytes) {
        Ok(text) => parse(path, &text),
        Err(d) => unusable(path, d),
    }
}

fn unusable(path: &Path, problem: Diagnostic) -> Loaded {
    let mut l = Loaded::defaults(format!("config {} is not usable; using defaults", path.display()));
    l.config.source = Some(path.to_path_buf());
    l.fallback = Some(format!("{problem}; the built-in defaults are used"));
    l.unusable = Some(problem);
    l
}

/// The config text in `bytes`: UTF-8, with or without a byte-order mark.
/// Anything else is a whole-file problem that says where the first bad byte
/// is and what to do; a GBK file (the default of Chinese Windows editors)
/// and UTF-16 (Notepad's "Unicode") are named as such.
///
/// ```
/// use std::path::Path;
/// let p = Path::new("c.toml");
/// assert_eq!(estation::config::decode(p, b"\xef\xbb\xbf[screen]\n").unwrap(), "[screen]\n");
/// let gbk = estation::config::decode(p, b"[screen]\nname = \"\xb2\xe2\xca\xd4\"\n").unwrap_err();
/// assert_eq!(gbk.to_string(),
///     "c.toml:2: (file): not UTF-8 text (byte 0xb2 at column 9); it looks like GBK/GB18030 — save it as UTF-8");
/// ```
pub fn decode(path: &Path, bytes: &[u8]) -> Result<String, Diagnostic> {
    let whole = |line: usize, message: String| Diagnostic { file: path.to_path_buf(), line, field: "(file)".into(), message };
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    // A TOML file never holds a NUL, so one in either of the first two bytes
    // is the high half of an ASCII character in UTF-16.
    let utf16 = match bytes {
        [0xff, 0xfe, ..] | [_, 0, ..] => Some("UTF-16 (little-endian)"),
        [0xfe, 0xff, ..] | [0, _, ..] => Some("UTF-16 (big-endian)"),
        _ => None,
    };
    if let Some(kind) = utf16 {
        return Err(whole(1, format!("{kind} text, as Windows Notepad saves \"Unicode\"; save it as UTF-8")));
    }
    let e = match std::str::from_utf8(bytes) {
        Ok(text) => return Ok(text.to_string()),
        Err(e) => e,
    };
    let good = &bytes[..e.valid_up_to()];
    let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    // The prefix is valid UTF-8, so columns count characters, as editors do.
    let column = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
    let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
    let byte = bytes[e.valid_up_to()];
    let hint = if looks_like_gbk(bytes) {
        "it looks like GBK/GB18030 — save it as UTF-8"
    } else {
        "save it as UTF-8 (in Notepad: Save as, Encoding: UTF-8)"
    };
    Err(whole(line, format!("not UTF-8 text (byte {byte:#04x} at column {column}); {hint}")))
}

/// Whether the whole file reads as GBK and everything beyond ASCII is
/// Chinese text or its punctuation. Chinese typed in a GBK editor is in
/// practice within GB2312 (both bytes 0xa1-0xfe); a Western code page's
/// letters (é, ü) are single bytes next to ASCII, so they never pass, even
/// where they happen to be valid GBK ("Mü" is 0xfc 0x6c, an ideograph).
fn looks_like_gbk(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (b, _) if b.is_ascii() => i += 1,
            (0xa1..=0xf7, Some(0xa1..=0xfe)) => i += 2,
            _ => return false,
        }
    }
    let Some(text) = encoding_rs::GB18030.decode_without_bom_handling_and_without_replacement(bytes) else {
        return false;
    };
    text.chars().filter(|c| !c.is_ascii()).all(|c| {
        matches!(c as u32,
            0x3000..=0x303f // CJK punctuation: 、。「」
            | 0x3400..=0x4dbf | 0x4e00..=0x9fff // ideographs
            | 0xff00..=0xffef // full-width forms: ，：（）
            | 0x2010..=0x2027 // dashes, quotes, ellipsis: —“”…
            | 0x00b7 | 0x00d7 | 0x2103) // · × ℃
    })
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    screen: RawScreen,
    #[serde(default)]
    display: RawDisplay,
    #[serde(default)]
    audio: RawAudio,
    #[serde(default)]
    player: RawPlayer,
    #[serde(default)]
    feed: RawFeed,
    #[serde(default)]
    cache: RawCache,
    #[serde(default)]
    alerts: RawAlerts,
    #[serde(default)]
    central: RawCentral,
    #[serde(default)]
    push: RawPush,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPush {
    url: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    ca: Option<Spanned<String>>,
    allow_plain: Option<bool>,
    keep_alive: Option<Spanned<toml::Value>>,
    poll_when_healthy: Option<Spanned<toml::Value>>,
    topic_prefix: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCentral {
    url: Option<Spanned<String>>,
    token: Option<Spanned<String>>,
    heartbeat: Option<Spanned<toml::Value>>,
    allow_http: Option<bool>,
    screenshot: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    #[serde(default)]
    source: Vec<RawAlertSource>,
    show_all: Option<Spanned<bool>>,
    show_exercise: Option<Spanned<bool>>,
    show_test: Option<Spanned<bool>>,
    default_lifetime: Option<Spanned<toml::Value>>,
    takeover: Option<Spanned<String>>,
    banner: Option<Spanned<String>>,
    chime_interval: Option<Spanned<toml::Value>>,
    cycle: Option<Spanned<toml::Value>>,
    addresses: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlertSource {
    url: Spanned<String>,
    interval: Option<Spanned<toml::Value>>,
    /// Accept plain http (a server on the LAN); https is required otherwise.
    allow_http: Option<bool>,
    #[serde(default)]
    authority_for: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    url: Option<Spanned<String>>,
    public_key: Option<Spanned<String>>,
    interval: Option<Spanned<toml::Value>>,
    max_bytes_per_sec: Option<Spanned<toml::Value>>,
    max_age: Option<Spanned<toml::Value>>,
    clock_skew: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCache {
    dir: Option<Spanned<String>>,
    budget: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawScreen {
    id: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
    language: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
    latitude: Option<Spanned<f64>>,
    longitude: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDisplay {
    mode: Option<Spanned<String>>,
    width: Option<Spanned<u32>>,
    height: Option<Spanned<u32>>,
    sleep: Option<Spanned<bool>>,
    #[serde(default)]
    on: Vec<RawOn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOn {
    weekdays: Option<Spanned<String>>,
    hours: Spanned<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAudio {
    volume: Option<Spanned<i64>>,
    quiet_hours: Option<Spanned<OneOrMany>>,
}


#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPlayer {
    playlist: Option<Spanned<String>>,
}

/// Parses config text. Problems are collected; bad values keep their default.
///
/// ```
/// use std::path::Path;
/// let ok = estation::config::parse(Path::new("c.toml"), "[screen]\nname = \"一号屏\"\n");
/// assert!(ok.problems.0.is_empty());
/// let bad = estation::config::parse(Path::new("c.toml"), "[screen]\ntimezone = \"Mars/Base\"\n");
/// assert_eq!(bad.problems.to_string(),
///     "c.toml:2: screen.timezone: `Mars/Base` is not an IANA time zone, e.g. Asia/Shanghai");
/// ```
pub fn parse(path: &Path, text: &str) -> Loaded {
    let map = SourceMap::new(path, text);
    let mut config = Config {
        source: Some(path.to_path_buf()),
        ..Config::default()
    };
    // Unknown fields and wrong types fail the whole deserialisation too, so
    // they count as unusable: the last good copy beats defaults for them.
    let raw: Raw = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => return unusable(path, map.toml_error(&e)),
    };
    let mut problems: Vec<Diagnostic> = Vec::new();
    let mut bad = |at: usize, field: &str, msg: String| problems.push(map.diag(at, field, msg));
    // Where each value that is used was written, for `config show`.
    let mut origins: BTreeMap<&'static str, Origin> = BTreeMap::new();
    // A list is where its first entry is.
    let mut from = |at: usize, field: &'static str| {
        origins.entry(field).or_insert_with(|| Origin::File { path: path.to_path_buf(), line: map.line_of(at) });
    };

    let s = raw.screen;
    if let Some(id) = s.id {
        let v = id.get_ref().trim();
        if v.is_empty() || v.len() > 64 || !v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            bad(id.span().start, "screen.id", format!("`{v}` is not a valid id; use 1-64 ASCII letters, digits, '-', '_' or '.'"));
        } else {
            config.screen_id = v.to_string();
            from(id.span().start, "screen.id");
        }
    }
    if let Some(name) = s.name.filter(|n| !n.get_ref().trim().is_empty()) {
        config.screen_name = name.get_ref().trim().to_string();
        from(name.span().start, "screen.name");
    }
    if let Some(tz) = s.timezone {
        match tz.get_ref().trim().parse::<Tz>() {
            Ok(z) => {
                config.timezone = z;
                from(tz.span().start, "screen.timezone");
            }
            Err(_) => bad(tz.span().start, "screen.timezone", format!("`{}` is not an IANA time zone, e.g. Asia/Shanghai", tz.get_ref())),
        }
    }
    if let Some(lang) = s.language {
        match lang.get_ref().parse() {
            Ok(l) => {
                config.language = l;
                from(lang.span().start, "screen.language");
            }
            Err(e) => bad(lang.span().start, "screen.language", e),
        }
    }
    if let Some(region) = s.region {
        let v = region.get_ref().trim();
        if (v.len() == 6 || v.len() == 12) && v.bytes().all(|b| b.is_ascii_digit()) {
            config.region = Some(v.to_string());
            from(region.span().start, "screen.region");
        } else {
            bad(region.span().start, "screen.region", format!("`{v}` is not a 行政区划代码; write 6 digits (e.g. 330522) or 12 digits"));
        }
    }
    if let Some(lat) = s.latitude {
        if (-90.0..=90.0).contains(lat.get_ref()) {
            config.latitude = Some(*lat.get_ref());
            from(lat.span().start, "screen.latitude");
        } else {
            bad(lat.span().start, "screen.latitude", "must be between -90 and 90".into());
        }
    }
    if let Some(lon) = s.longitude {
        if (-180.0..=180.0).contains(lon.get_ref()) {
            config.longitude = Some(*lon.get_ref());
            from(lon.span().start, "screen.longitude");
        } else {
            bad(lon.span().start, "screen.longitude", "must be between -180 and 180".into());
        }
    }

    let d = raw.display;
    let size = |v: &Option<Spanned<u32>>, field: &str, default: u32, bad: &mut dyn FnMut(usize, &str, String)| match v {
        Some(x) if (160..=7680).contains(x.get_ref()) => *x.get_ref(),
        Some(x) => {
            bad(x.span().start, field, "must be between 160 and 7680 pixels".into());
            default
        }
        None => default,
    };
    let width = size(&d.width, "display.width", 1280, &mut bad);
    let height = size(&d.height, "display.height", 720, &mut bad);
    match d.mode.as_ref().map(|m| (m.span().start, m.get_ref().trim())) {
        None => {}
        Some((at, mode @ ("window" | "fullscreen"))) => {
            if mode == "window" {
                config.display = DisplayMode::Window { width, height };
            }
            from(at, "display.mode");
        }
        Some((at, other)) => bad(at, "display.mode", format!("`{other}` is not a display mode; use fullscreen or window")),
    }
    if let Some(sleep) = d.sleep {
        config.display_sleep = *sleep.get_ref();
        from(sleep.span().start, "display.sleep");
    }
    for (i, on) in d.on.into_iter().enumerate() {
        let field = |f: &str| format!("display.on[{}].{f}", i + 1);
        let mut v = Validity::default();
        if let Some(w) = on.weekdays {
            match w.get_ref().parse() {
                Ok(w) => v.weekdays = Some(w),
                Err(e) => bad(w.span().start, &field("weekdays"), e.to_string()),
            }
        }
        match on.hours.get_ref().parse() {
            Ok(h) => {
                v.hours.push(h);
                config.screen_on.push(v);
                from(on.hours.span().start, "display.on");
            }
            Err(e) => bad(on.hours.span().start, &field("hours"), e.to_string()),
        }
    }

    if let Some(vol) = raw.audio.volume {
        match u8::try_from(*vol.get_ref()) {
            Ok(v) if v <= 100 => {
                config.volume = v;
                from(vol.span().start, "audio.volume");
            }
            _ => bad(vol.span().start, "audio.volume", "must be between 0 and 100".into()),
        }
    }
    if let Some(q) = raw.audio.quiet_hours {
        let at = q.span().start;
        for t in q.get_ref().items() {
            match t.parse::<HourWindow>() {
                Ok(w) => {
                    config.quiet_hours.push(w);
                    from(at, "audio.quiet_hours");
                }
                Err(e) => bad(at, "audio.quiet_hours", e.to_string()),
            }
        }
    }
    if let Some(p) = raw.player.playlist.filter(|p| !p.get_ref().trim().is_empty()) {
        // Relative to the config file, like paths inside playlists.
        config.playlist = Some(path.parent().unwrap_or(Path::new(".")).join(p.get_ref().trim()));
        from(p.span().start, "player.playlist");
    }
    let f = raw.feed;
    if let Some(url) = f.url {
        match crate::core::feed::folder_url(url.get_ref()) {
            Ok(u) => {
                config.feed.url = Some(u);
                from(url.span().start, "feed.url");
            }
            Err(e) => bad(url.span().start, "feed.url", e),
        }
    }
    if let Some(key) = f.public_key {
        match crate::core::feed::keys::parse_public_key(key.get_ref()) {
            Ok(k) => {
                config.feed.public_key = Some(k);
                from(key.span().start, "feed.public_key");
            }
            Err(e) => bad(key.span().start, "feed.public_key", e.to_string()),
        }
    }
    if let Some(iv) = f.interval {
        match duration_value(iv.get_ref()) {
            Some(d) if d >= std::time::Duration::from_secs(5) && d <= std::time::Duration::from_secs(86_400) => {
                config.feed.interval = d;
                from(iv.span().start, "feed.interval");
            }
            _ => bad(iv.span().start, "feed.interval", "must be a duration from 5s to 24h, e.g. \"60s\" or \"5m\"".into()),
        }
    }
    if let Some(rate) = f.max_bytes_per_sec {
        match size_value(rate.get_ref()) {
            Some(n) if n == 0 || n >= 1024 => {
                config.feed.max_bytes_per_sec = (n > 0).then_some(n);
                from(rate.span().start, "feed.max_bytes_per_sec");
            }
            _ => bad(rate.span().start, "feed.max_bytes_per_sec", "must be at least 1 KiB per second, e.g. \"200KiB\" or 204800 (0: no cap)".into()),
        }
    }
    if let Some(age) = f.max_age {
        match duration_value(age.get_ref()) {
            Some(d) if d >= std::time::Duration::from_secs(3600) && d <= std::time::Duration::from_secs(366 * 86_400) => {
                config.feed.max_age = d;
                from(age.span().start, "feed.max_age");
            }
            _ => bad(age.span().start, "feed.max_age", "must be a duration from 1h to 366d, e.g. \"7d\"".into()),
        }
    }
    if let Some(skew) = f.clock_skew {
        match duration_value(skew.get_ref()) {
            Some(d) if d >= std::time::Duration::from_secs(10) && d <= std::time::Duration::from_secs(86_400) => {
                config.feed.clock_skew = d;
                from(skew.span().start, "feed.clock_skew");
            }
            _ => bad(skew.span().start, "feed.clock_skew", "must be a duration from 10s to 1d, e.g. \"5m\"".into()),
        }
    }
    if let Some(dir) = raw.cache.dir.filter(|d| !d.get_ref().trim().is_empty()) {
        config.cache.dir = Some(path.parent().unwrap_or(Path::new(".")).join(dir.get_ref().trim()));
        from(dir.span().start, "cache.dir");
    }
    if let Some(budget) = raw.cache.budget {
        match size_value(budget.get_ref()) {
            Some(n) if n >= 10_000_000 => {
                config.cache.budget = n;
                from(budget.span().start, "cache.budget");
            }
            _ => bad(budget.span().start, "cache.budget", "must be a size of at least 10 MB, e.g. \"4GB\"".into()),
        }
    }

    let a = raw.alerts;
    let secs = std::time::Duration::from_secs;
    // The duration and where it was written.
    let span = |v: Option<Spanned<toml::Value>>, field: &str, min: std::time::Duration, max: std::time::Duration, hint: &str, bad: &mut dyn FnMut(usize, &str, String)| {
        let v = v?;
        match duration_value(v.get_ref()) {
            Some(d) if d >= min && d <= max => Some((d, v.span().start)),
            _ => {
                bad(v.span().start, field, format!("must be a duration from {} to {}, e.g. {hint}", humantime::format_duration(min), humantime::format_duration(max)));
                None
            }
        }
    };
    for (i, src) in a.source.into_iter().enumerate() {
        let field = |f: &str| format!("alerts.source[{}].{f}", i + 1);
        let written = src.url.get_ref().trim();
        let allow_http = src.allow_http.unwrap_or(false);
        // Kept as the store names the source (`HTTPS://A.example:443` is
        // `https://a.example/`), so grants and rules keyed on it apply.
        let url = url::Url::parse(written).ok().filter(|u| {
            let s = u.as_str();
            crate::core::feed::folder_url(s).is_ok() && (s.starts_with("https://") || allow_http && s.starts_with("http://"))
        });
        let Some(url) = url else {
            bad(src.url.span().start, &field("url"), format!("`{written}` is not an https:// URL (set allow_http = true for a plain http server you trust)"));
            continue;
        };
        let interval = span(src.interval, &field("interval"), secs(5), secs(86_400), "\"15s\"", &mut bad).map_or(secs(15), |(d, _)| d);
        config.alerts.sources.push(AlertSource { url, interval, allow_http, authority_for: src.authority_for });
        from(src.url.span().start, "alerts.source");
    }
    if let Some(addresses) = a.addresses {
        from(addresses.span().start, "alerts.addresses");
        config.alerts.addresses = addresses.into_inner();
    }
    for (v, field, slot) in [
        (a.show_all, "alerts.show_all", &mut config.alerts.show_all),
        (a.show_exercise, "alerts.show_exercise", &mut config.alerts.show_exercise),
        (a.show_test, "alerts.show_test", &mut config.alerts.show_test),
    ] {
        if let Some(v) = v {
            *slot = *v.get_ref();
            from(v.span().start, field);
        }
    }
    for (v, field, hint, min, max, slot) in [
        (a.default_lifetime, "alerts.default_lifetime", "\"12h\"", secs(600), secs(30 * 86_400), &mut config.alerts.default_lifetime),
        (a.chime_interval, "alerts.chime_interval", "\"5m\" (0: only when it starts)", secs(0), secs(86_400), &mut config.alerts.chime_interval),
        (a.cycle, "alerts.cycle", "\"15s\"", secs(3), secs(600), &mut config.alerts.cycle),
    ] {
        if let Some((d, at)) = span(v, field, min, max, hint, &mut bad) {
            *slot = d;
            from(at, field);
        }
    }
    for (v, field, slot) in [(a.takeover, "alerts.takeover", &mut config.alerts.takeover), (a.banner, "alerts.banner", &mut config.alerts.banner)] {
        if let Some(v) = v {
            match crate::core::alert::cap::Severity::ALL.iter().find(|s| s.as_str().eq_ignore_ascii_case(v.get_ref().trim())) {
                Some(s) => {
                    *slot = *s;
                    from(v.span().start, field);
                }
                None => bad(v.span().start, field, format!("`{}` is not a CAP severity: extreme, severe, moderate, unknown or minor", v.get_ref())),
            }
        }
    }

    let c = raw.central;
    let allow_http = c.allow_http.unwrap_or(false);
    config.central.allow_http = allow_http;
    if let Some(url) = c.url {
        let written = url.get_ref().trim();
        match url::Url::parse(written) {
            Ok(u) if u.scheme() == "https" || allow_http && u.scheme() == "http" => {
                config.central.url = Some(u);
                from(url.span().start, "central.url");
            }
            _ => bad(url.span().start, "central.url", format!("`{written}` is not an https:// URL (set allow_http = true for a service on the LAN)")),
        }
    }
    if let Some(token) = c.token {
        let t = token.get_ref().trim();
        let hex = t.strip_prefix("est1_").unwrap_or("");
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            config.central.token = Some(t.to_string());
            from(token.span().start, "central.token");
        } else {
            bad(token.span().start, "central.token", "is not a token from `estation-central screen add` (est1_ and 64 hex digits)".into());
        }
    }
    if let Some((d, at)) = span(c.heartbeat, "central.heartbeat", secs(10), secs(86_400), "\"5m\"", &mut bad) {
        config.central.heartbeat = d;
        from(at, "central.heartbeat");
    }
    match c.screenshot {
        Some(v) if matches!(v.get_ref(), toml::Value::String(s) if s.trim() == "off") => {
            config.central.screenshot = None;
            from(v.span().start, "central.screenshot");
        }
        v => {
            if let Some((d, at)) = span(v, "central.screenshot", secs(60), secs(86_400), "\"15m\" (or \"off\")", &mut bad) {
                config.central.screenshot = Some(d);
                from(at, "central.screenshot");
            }
        }
    }

    let p = raw.push;
    let allow_plain = p.allow_plain.unwrap_or(false);
    config.push.allow_plain = allow_plain;
    if let Some(url) = p.url {
        let written = url.get_ref().trim();
        match url::Url::parse(written) {
            Ok(u) if (u.scheme() == "mqtts" || allow_plain && u.scheme() == "mqtt") && u.host_str().is_some_and(|h| !h.is_empty()) && u.path().trim_matches('/').is_empty() => {
                config.push.url = Some(u);
                from(url.span().start, "push.url");
            }
            _ => bad(url.span().start, "push.url", format!("`{written}` is not an mqtts://HOST[:PORT] URL (set allow_plain = true for a broker on the LAN)")),
        }
    }
    if let Some(user) = p.username {
        let v = user.get_ref().trim();
        if v.is_empty() || v.len() > 64 || v.contains(['/', '+', '#']) {
            bad(user.span().start, "push.username", "must be 1-64 characters without '/', '+' or '#'".into());
        } else {
            config.push.username = Some(v.to_string());
            from(user.span().start, "push.username");
        }
    }
    if let Some(pw) = p.password {
        config.push.password = Some(pw.get_ref().to_string());
        from(pw.span().start, "push.password");
    }
    if let Some(ca) = p.ca.filter(|c| !c.get_ref().trim().is_empty()) {
        config.push.ca = Some(path.parent().unwrap_or(Path::new(".")).join(ca.get_ref().trim()));
        from(ca.span().start, "push.ca");
    }
    if let Some((d, at)) = span(p.keep_alive, "push.keep_alive", secs(5), secs(1200), "\"60s\"", &mut bad) {
        config.push.keep_alive = d;
        from(at, "push.keep_alive");
    }
    if let Some((d, at)) = span(p.poll_when_healthy, "push.poll_when_healthy", secs(5), secs(86_400), "\"10m\"", &mut bad) {
        config.push.poll_when_healthy = d;
        from(at, "push.poll_when_healthy");
    }
    if let Some(prefix) = p.topic_prefix {
        let v = prefix.get_ref().trim();
        if crate::core::push::valid_prefix(v) {
            config.push.topic_prefix = v.to_string();
            from(prefix.span().start, "push.topic_prefix");
        } else {
            bad(prefix.span().start, "push.topic_prefix", format!("`{v}` is not a topic prefix: levels of letters, digits, '-', '_', '.' joined by '/', no wildcards"));
        }
    }

    problems.sort_by_key(|d| d.line);
    // Without its feed's URL or key a kiosk plays the bundled demo: a typo
    // there must not cost the screen its programme (and its warnings), so it
    // makes the whole file unusable, and the last config that loaded is used.
    if let Some(i) = problems.iter().position(|d| d.field == "feed.url" || d.field == "feed.public_key") {
        let mut vital = problems.remove(i);
        vital.message = format!("{}; without it the screen would lose its feed, so this file is not used", vital.message);
        let mut l = unusable(path, vital);
        l.problems = Diagnostics(problems);
        return l;
    }
    let note = format!("config from {}", path.display());
    Loaded {
        config,
        problems: Diagnostics(problems),
        note,
        unusable: None,
        fallback: None,
        origins,
        text: Some(text.to_string()),
    }
}

/// A duration written as text ("90s", "5m") or as seconds.
fn duration_value(v: &toml::Value) -> Option<std::time::Duration> {
    match v {
        toml::Value::String(s) => humantime::parse_duration(s.trim()).ok(),
        toml::Value::Integer(n) => u64::try_from(*n).ok().map(std::time::Duration::from_secs),
        _ => None,
    }
}

/// A size written as text ("200KiB", "4GB") or as bytes.
fn size_value(v: &toml::Value) -> Option<u64> {
    match v {
        toml::Value::String(s) => s.trim().parse::<bytesize::ByteSize>().ok().map(|b| b.as_u64()),
        toml::Value::Integer(n) => u64::try_from(*n).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_cli_then_env_then_user_then_system() {
        let user = Some(PathBuf::from("/home/k/.config/estation"));
        assert_eq!(
            locate(Some(Path::new("/x.toml")), Some("/y.toml".into()), user.clone()),
            Location::Explicit("/x.toml".into())
        );
        assert_eq!(
            locate(None, Some("/y.toml".into()), user.clone()),
            Location::Explicit("/y.toml".into())
        );
        assert_eq!(
            locate(None, Some("".into()), user),
            Location::Searched(vec![
                "/home/k/.config/estation/config.toml".into(),
                SYSTEM_PATH.into()
            ])
        );
    }

    #[test]
    fn a_full_config_parses() {
        let key = crate::core::feed::keys::public_key_string(&ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key());
        let text = format!(r#"
[screen]
id = "cx-001"
name = "长兴县气象科普屏"
timezone = "Asia/Urumqi"
language = "en"
region = "330522"
latitude = 31.03
longitude = 119.91
[display]
mode = "window"
width = 1920
height = 1080
sleep = false
[[display.on]]
weekdays = "mon-fri"
hours = "07:00-22:00"
[audio]
volume = 35
quiet_hours = ["22:00-07:00", "12:00-13:00"]
[player]
playlist = "../playlists"
[feed]
url = "https://feed.example.org/county"
public_key = "{key}"
interval = "2m"
max_bytes_per_sec = "200KiB"
max_age = "3d"
[cache]
dir = "/var/lib/estation/cache"
budget = "8GB"
"#);
        let l = parse(Path::new("/etc/estation/config.toml"), &text);
        assert_eq!(l.problems.0, vec![]);
        let c = l.config;
        assert_eq!(c.screen_id, "cx-001");
        assert_eq!(c.timezone, chrono_tz::Asia::Urumqi);
        assert_eq!(c.language, Language::En);
        assert_eq!(c.region.as_deref(), Some("330522"));
        assert_eq!(c.display, DisplayMode::Window { width: 1920, height: 1080 });
        assert!(!c.display_sleep);
        assert!(Config::default().display_sleep, "the display sleeps outside its hours unless told not to");
        assert_eq!(c.volume, 35);
        let at = |h, m| chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap().and_hms_opt(h, m, 0).unwrap();
        assert!(c.is_quiet(at(23, 0)) && c.is_quiet(at(6, 59)) && c.is_quiet(at(12, 30)));
        assert!(!c.is_quiet(at(7, 0)) && !c.is_quiet(at(11, 59)) && !c.is_quiet(at(13, 0)));
        assert_eq!(c.playlist, Some(PathBuf::from("/etc/estation/../playlists")));
        assert_eq!(c.feed.url.as_ref().map(url::Url::as_str), Some("https://feed.example.org/county/"), "a folder URL, parsed once");
        assert_eq!(c.feed.public_key.map(|k| crate::core::feed::keys::public_key_string(&k)), Some(key.clone()));
        assert_eq!(c.feed.interval, std::time::Duration::from_secs(120));
        assert_eq!(c.feed.max_bytes_per_sec, Some(200 * 1024));
        assert_eq!(c.feed.max_age, std::time::Duration::from_secs(3 * 86_400));
        assert_eq!(c.cache.dir, Some(PathBuf::from("/var/lib/estation/cache")));
        assert_eq!(c.cache.budget, 8_000_000_000);
        let t = |s| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        assert!(c.screen_is_on(t("2026-11-23 08:00")));
        assert!(!c.screen_is_on(t("2026-11-23 23:00")));
        assert!(!c.screen_is_on(t("2026-11-28 08:00")));
    }

    #[test]
    fn bad_values_are_reported_and_defaults_kept() {
        let text = "[screen]\nregion = \"3305\"\nlatitude = 123.0\nlanguage = \"fr\"\n[display]\nmode = \"tv\"\nwidth = 5\n[audio]\nvolume = 300\n[[display.on]]\nhours = \"7-22\"\n[feed]\nurl = \"ftp://x/\"\npublic_key = \"AAAA\"\ninterval = \"1s\"\nmax_age = \"10m\"\n[cache]\nbudget = \"lots\"\n";
        let l = parse(Path::new("c.toml"), text);
        assert_eq!(
            l.diagnostics().to_string().lines().collect::<Vec<_>>(),
            vec![
                "c.toml:13: feed.url: `ftp://x/`: only http and https feeds are supported; without it the screen would lose its feed, so this file is not used",
                "c.toml:2: screen.region: `3305` is not a 行政区划代码; write 6 digits (e.g. 330522) or 12 digits",
                "c.toml:3: screen.latitude: must be between -90 and 90",
                "c.toml:4: screen.language: `fr` is not a supported language; use zh-CN or en",
                "c.toml:6: display.mode: `tv` is not a display mode; use fullscreen or window",
                "c.toml:7: display.width: must be between 160 and 7680 pixels",
                "c.toml:9: audio.volume: must be between 0 and 100",
                "c.toml:11: display.on[1].hours: `7` is not a time; write HH:MM, e.g. 07:30",
                "c.toml:14: feed.public_key: `AAAA` is not a public key; write ed25519:<base64>, as `estation feed keygen` prints it",
                "c.toml:15: feed.interval: must be a duration from 5s to 24h, e.g. \"60s\" or \"5m\"",
                "c.toml:16: feed.max_age: must be a duration from 1h to 366d, e.g. \"7d\"",
                "c.toml:18: cache.budget: must be a size of at least 10 MB, e.g. \"4GB\"",
            ]
        );
        assert_eq!(l.config.region, None);
        assert_eq!(l.config.volume, 80);
        assert_eq!(l.config.display, DisplayMode::Fullscreen);
        assert_eq!(l.config.feed.max_age, std::time::Duration::from_secs(7 * 86_400));
    }

    #[test]
    fn the_central_section_wants_https_and_a_real_token_and_never_shows_it() {
        let token = format!("est1_{}", "ab".repeat(32));
        let good = parse(Path::new("c.toml"), &format!("[central]\nurl = \"https://central.example/\"\ntoken = \"{token}\"\nheartbeat = \"1m\"\n"));
        assert!(good.problems.0.is_empty(), "{}", good.diagnostics());
        assert_eq!(good.config.central.token.as_deref(), Some(token.as_str()));
        assert_eq!(good.config.central.heartbeat, std::time::Duration::from_secs(60));
        assert!(!serde_json::to_string(&good.config).unwrap().contains(&token), "config show must not print the token");
        assert_eq!(good.config.central.screenshot, Some(std::time::Duration::from_secs(900)), "every 15 min by default");
        let off = parse(Path::new("c.toml"), "[central]\nscreenshot = \"off\"\n");
        assert!(off.problems.0.is_empty(), "{}", off.diagnostics());
        assert_eq!(off.config.central.screenshot, None);
        let hourly = parse(Path::new("c.toml"), "[central]\nscreenshot = \"1h\"\n");
        assert_eq!(hourly.config.central.screenshot, Some(std::time::Duration::from_secs(3600)));
        let bad = parse(Path::new("c.toml"), "[central]\nurl = \"http://10.0.0.5:8080/\"\ntoken = \"secret\"\nheartbeat = \"1s\"\nscreenshot = \"5s\"\n");
        assert_eq!(
            bad.diagnostics().to_string().lines().collect::<Vec<_>>(),
            vec![
                "c.toml:2: central.url: `http://10.0.0.5:8080/` is not an https:// URL (set allow_http = true for a service on the LAN)",
                "c.toml:3: central.token: is not a token from `estation-central screen add` (est1_ and 64 hex digits)",
                "c.toml:4: central.heartbeat: must be a duration from 10s to 1day, e.g. \"5m\"",
                "c.toml:5: central.screenshot: must be a duration from 1m to 1day, e.g. \"15m\" (or \"off\")",
            ]
        );
        assert_eq!(bad.config.central, CentralConfig::default());
        let lan = parse(Path::new("c.toml"), "[central]\nurl = \"http://10.0.0.5:8080/\"\nallow_http = true\n");
        assert_eq!(lan.config.central.url.as_ref().map(url::Url::as_str), Some("http://10.0.0.5:8080/"));
    }

    #[test]
    fn the_push_section_wants_mqtts_and_never_shows_the_password() {
        let good = parse(
            Path::new("/etc/estation/c.toml"),
            "[push]\nurl = \"mqtts://push.county.example\"\npassword = \"s3cret\"\nca = \"push-ca.pem\"\nkeep_alive = \"30s\"\npoll_when_healthy = \"15m\"\ntopic_prefix = \"zj/estation\"\n",
        );
        assert!(good.problems.0.is_empty(), "{}", good.diagnostics());
        let p = &good.config.push;
        assert_eq!(p.url.as_ref().map(url::Url::as_str), Some("mqtts://push.county.example"));
        assert_eq!(p.username, None, "the screen id is the user name");
        assert_eq!(p.ca.as_deref(), Some(Path::new("/etc/estation/push-ca.pem")), "relative to the config");
        assert_eq!((p.keep_alive.as_secs(), p.poll_when_healthy.as_secs(), p.topic_prefix.as_str()), (30, 900, "zj/estation"));
        assert!(!serde_json::to_string(&good.config).unwrap().contains("s3cret"), "config show must not print the password");
        assert_eq!(PushConfig::default().poll_when_healthy.as_secs(), 600);
        let bad = parse(
            Path::new("c.toml"),
            "[push]\nurl = \"mqtt://10.0.0.5\"\nusername = \"a/#\"\nkeep_alive = \"1s\"\ntopic_prefix = \"estation/#\"\n",
        );
        assert_eq!(
            bad.diagnostics().to_string().lines().collect::<Vec<_>>(),
            vec![
                "c.toml:2: push.url: `mqtt://10.0.0.5` is not an mqtts://HOST[:PORT] URL (set allow_plain = true for a broker on the LAN)",
                "c.toml:3: push.username: must be 1-64 characters without '/', '+' or '#'",
                "c.toml:4: push.keep_alive: must be a duration from 5s to 20m, e.g. \"60s\"",
                "c.toml:5: push.topic_prefix: `estation/#` is not a topic prefix: levels of letters, digits, '-', '_', '.' joined by '/', no wildcards",
            ]
        );
        assert_eq!(bad.config.push, PushConfig::default());
        let lan = parse(Path::new("c.toml"), "[push]\nurl = \"mqtt://10.0.0.5:1883\"\nallow_plain = true\n");
        assert!(lan.problems.0.is_empty(), "{}", lan.diagnostics());
        assert!(parse(Path::new("c.toml"), "[push]\nurl = \"mqtts://h/some/path\"\n").diagnostics().to_string().contains("push.url"));
    }

    #[test]
    fn unknown_fields_and_syntax_errors_name_the_place() {
        let l = parse(Path::new("c.toml"), "[screen]\nnmae = \"x\"\n");
        let msg = l.diagnostics().to_string();
        assert!(msg.starts_with("c.toml:2: screen.nmae: unknown field `nmae`"), "{msg}");
        let l = parse(Path::new("c.toml"), "[screen]\nid = \"a\"\nname = \"x\n");
        let msg = l.diagnostics().to_string();
        assert!(msg.starts_with("c.toml:3: "), "{msg}");
        assert!(l.unusable.is_some() && l.problems.0.is_empty());
        assert_eq!(l.config.screen_id, "estation", "defaults, not half a file");
        assert!(l.fallback.unwrap().ends_with("the built-in defaults are used"));
    }

    fn decoded(bytes: &[u8]) -> Result<String, String> {
        decode(Path::new("config.toml"), bytes).map_err(|d| d.to_string())
    }

    #[test]
    fn a_gbk_file_is_named_with_line_column_and_byte() {
        // 测试屏 and 。 in GBK: the first bad byte is the first Chinese one.
        let gbk = b"[screen]\nid = \"a\"\nname = \"\xb2\xe2\xca\xd4\xc6\xc1\"  # \xa1\xa3\n";
        assert_eq!(
            decoded(gbk).unwrap_err(),
            "config.toml:3: (file): not UTF-8 text (byte 0xb2 at column 9); it looks like GBK/GB18030 — save it as UTF-8"
        );
        // Columns count characters: 一号 before the bad byte are two columns.
        assert_eq!(
            decoded("name = \"一号".bytes().chain(*b"\xff\"\n").collect::<Vec<u8>>().as_slice()).unwrap_err(),
            "config.toml:1: (file): not UTF-8 text (byte 0xff at column 11); save it as UTF-8 (in Notepad: Save as, Encoding: UTF-8)"
        );
    }

    #[test]
    fn western_text_is_not_called_gbk() {
        // "café" in Windows-1252: 0xe9 then a newline is no GBK pair.
        let e = decoded(b"[screen]\nname = \"caf\xe9\"\n").unwrap_err();
        assert!(e.starts_with("config.toml:2: (file): not UTF-8 text (byte 0xe9 at column 12); save it as UTF-8"), "{e}");
        // "Müller": 0xfc 0x6c is a valid GB18030 pair, but reads as an odd symbol.
        let e = decoded(b"name = \"M\xfcller\"\n").unwrap_err();
        assert!(!e.contains("GBK"), "{e}");
    }

    #[test]
    fn utf16_gets_its_own_message_and_a_utf8_bom_is_accepted() {
        let le: Vec<u8> = [0xff, 0xfe].into_iter().chain("[screen]\n".encode_utf16().flat_map(u16::to_le_bytes)).collect();
        let be: Vec<u8> = [0xfe, 0xff].into_iter().chain("[screen]\n".encode_utf16().flat_map(u16::to_be_bytes)).collect();
        let msg = "config.toml:1: (file): UTF-16 (little-endian) text, as Windows Notepad saves \"Unicode\"; save it as UTF-8";
        assert_eq!(decoded(&le).unwrap_err(), msg);
        assert_eq!(decoded(&le[2..]).unwrap_err(), msg, "no BOM");
        assert_eq!(decoded(&be).unwrap_err(), msg.replace("little", "big"));
        assert_eq!(decoded(&be[2..]).unwrap_err(), msg.replace("little", "big"));

        let l = from_bytes(Path::new("c.toml"), "\u{feff}[screen]\nname = \"一号屏\"\n".as_bytes());
        assert!(l.unusable.is_none() && l.problems.0.is_empty(), "{}", l.diagnostics());
        assert_eq!(l.config.screen_name, "一号屏");
    }

    #[test]
    fn missing_searched_file_means_defaults_but_explicit_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let l = load(&Location::Searched(vec![missing.clone()])).unwrap();
        assert_eq!(l.config, Config::default());
        assert!(l.note.contains("using defaults"));
        let e = load(&Location::Explicit(missing)).unwrap_err();
        assert_eq!(e.to_string(), format!("cannot read config file {}", dir.path().join("nope.toml").display()));
    }

    #[test]
    fn source_urls_are_kept_as_the_store_names_them() {
        let c = parse(Path::new("c.toml"), "[[alerts.source]]\nurl = \"HTTPS://CMA.example:443\"\nauthority_for = [\"cma\"]\n").config;
        assert_eq!(c.alerts.sources[0].url.as_str(), "https://cma.example/");
        assert!(c.alert_authority().may_act("https://cma.example/", crate::core::alert::authority::FEED, "cma"), "the grant names the source as the store does");
    }

    #[test]
    fn alerts_section() {
        let ok = parse(Path::new("c.toml"), r#"
[alerts]
show_exercise = true
default_lifetime = "6h"
takeover = "extreme"
chime_interval = 0
[[alerts.source]]
url = "https://alerts.example/cap.atom"
[[alerts.source]]
url = "http://192.168.1.5/cap.xml"
interval = "30s"
allow_http = true
"#);
        assert!(ok.problems.0.is_empty(), "{}", ok.problems);
        let a = &ok.config.alerts;
        assert_eq!(a.sources.len(), 2);
        assert_eq!(a.sources[0].interval, std::time::Duration::from_secs(15), "default 15 s");
        assert_eq!(a.sources[1].interval, std::time::Duration::from_secs(30));
        assert_eq!((a.show_exercise, a.show_test), (true, false));
        assert_eq!(a.takeover, crate::core::alert::cap::Severity::Extreme);
        assert_eq!(a.chime_interval, std::time::Duration::ZERO);
        assert_eq!(ok.config.alert_policy().lifetimes.default, chrono::Duration::hours(6));

        let bad = parse(Path::new("c.toml"), "[alerts]\ntakeover = \"red\"\ncycle = \"1s\"\n[[alerts.source]]\nurl = \"http://x.example/a.xml\"\n");
        let text = bad.problems.to_string();
        assert!(text.contains("c.toml:2: alerts.takeover: `red` is not a CAP severity"), "{text}");
        assert!(text.contains("c.toml:3: alerts.cycle: must be a duration from 3s to 10m"), "{text}");
        assert!(text.contains("c.toml:5: alerts.source[1].url: `http://x.example/a.xml` is not an https:// URL"), "{text}");
        assert!(bad.config.alerts.sources.is_empty());
    }
}
