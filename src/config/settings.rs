//! The settings of one run, resolved once: the config file (or its last good
//! copy), the environment and the command line merged by [`resolve`], highest
//! first:
//!
//! 1. command-line flags (`--config`, `play --playlist`, `play --window`),
//! 2. environment variables (`ESTATION_CONFIG`, `ESTATION_DATA_DIR`),
//! 3. the config file, field by field (see [`super::parse`]),
//! 4. built-in defaults.
//!
//! Values leave here typed — the feed URL a `url::Url`, its key a
//! `VerifyingKey`, durations and sizes as numbers — so no caller parses them
//! again, and each keeps its [`Origin`] for `estation config show`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::origin::{Origin, pick};
use super::{Config, ConfigError, DisplayMode, Language, Loaded};

/// Where the bundled fonts, pictures and demo playlists are, when not found
/// by search (see `crate::kiosk`).
pub const DATA_DIR_VAR: &str = "ESTATION_DATA_DIR";

/// What the command line says about settings. (Its other flags are about
/// one run — screenshots, `--exit-after` — and are not settings.)
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--config PATH`.
    pub config: Option<PathBuf>,
    /// `play --playlist PATH`: play these files, not the cache.
    pub playlist: Option<PathBuf>,
    /// `play --window WxH`.
    pub window: Option<(u32, u32)>,
}

/// The environment variables estation takes settings from, read in one
/// place ([`Env::from_process`]) so tests can hand in their own.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `ESTATION_CONFIG`.
    pub config: Option<OsString>,
    /// `ESTATION_DATA_DIR`.
    pub data_dir: Option<OsString>,
}

impl Env {
    pub fn from_process() -> Env {
        Env { config: std::env::var_os(super::ENV_VAR), data_dir: std::env::var_os(DATA_DIR_VAR) }
    }

    /// An empty variable counts as unset (a unit file's `ESTATION_CONFIG=`).
    fn get(v: &Option<OsString>) -> Option<&OsString> {
        v.as_ref().filter(|v| !v.is_empty())
    }
}

/// The settings in force, and where each came from.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The values, typed; what the player, sync and the commands use.
    pub config: Config,
    /// The folder named by `ESTATION_DATA_DIR`, searched first for the
    /// bundled assets and demo.
    pub data_dir: Option<PathBuf>,
    /// The config file as it loaded, before the environment and the command
    /// line: its problems, its note for the log, why it was not used, and
    /// what [`super::last_good::keep`] keeps.
    pub loaded: Loaded,
    origins: BTreeMap<&'static str, Origin>,
}

/// One line of `config show`: a setting by its name in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: &'static str,
    pub value: Value,
    pub origin: Origin,
}

/// Finds and loads the config file as the kiosk does (a file that cannot be
/// used gives way to its last good copy), then [`merge`]s the environment
/// and the command line over it.
pub fn resolve(flags: &Flags, env: &Env) -> Result<Settings, ConfigError> {
    let location = super::locate(flags.config.as_deref(), env.config.clone(), super::user_config_dir());
    Ok(merge(flags, env, super::load_or_last_good(&location)?))
}

/// The one place the precedence of settings is applied: `flags` over `env`
/// over the file `loaded` over defaults (which file was loaded follows the
/// same order, in [`super::locate`]).
pub fn merge(flags: &Flags, env: &Env, loaded: Loaded) -> Settings {
    let mut config = loaded.config.clone();
    let mut origins = loaded.origins.clone();
    let file = |key: &str| loaded.origins.get(key).cloned();
    let flag = |flag| Origin::Flag { flag };

    let (_, from) = pick(
        [flags.config.as_ref().map(|_| ((), flag("--config"))), Env::get(&env.config).map(|_| ((), Origin::Env { var: super::ENV_VAR }))],
        (),
    );
    origins.insert("config", from);

    let (playlist, from) = pick(
        [flags.playlist.clone().map(|p| (Some(p), flag("--playlist"))), file("player.playlist").map(|o| (config.playlist.clone(), o))],
        None,
    );
    config.playlist = playlist;
    origins.insert("player.playlist", from);

    let (display, from) = pick(
        [
            flags.window.map(|(width, height)| (DisplayMode::Window { width, height }, flag("--window"))),
            file("display.mode").map(|o| (config.display, o)),
        ],
        Config::default().display,
    );
    config.display = display;
    origins.insert("display.mode", from);

    let (data_dir, from) = pick([Env::get(&env.data_dir).map(|d| (Some(PathBuf::from(d)), Origin::Env { var: DATA_DIR_VAR }))], None);
    origins.insert("data_dir", from);

    Settings { config, data_dir, loaded, origins }
}

impl Settings {
    /// Where the setting `key` (its name in the file: `feed.url`) came from.
    pub fn origin(&self, key: &str) -> &Origin {
        self.origins.get(key).unwrap_or(&Origin::Default)
    }

    /// The config file found (by `--config`, `ESTATION_CONFIG` or search),
    /// even when its last good copy is what is used; None: no file.
    pub fn config_file(&self) -> Option<&Path> {
        self.loaded.unusable.as_ref().map(|d| d.file.as_path()).or(self.config.source.as_deref())
    }

    /// `play --playlist` was given: play those files, not the cache.
    pub fn playlist_from_command_line(&self) -> bool {
        matches!(self.origin("player.playlist"), Origin::Flag { .. })
    }

    /// Every setting with its value (as `config show --json` writes it) and
    /// origin, in the file's order.
    pub fn entries(&self) -> Vec<Entry> {
        let c = &self.config;
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let dur = |d: std::time::Duration| json!(humantime::format_duration(d).to_string());
        let display = match c.display {
            DisplayMode::Fullscreen => "fullscreen".to_string(),
            DisplayMode::Window { width, height } => format!("window {width}x{height}"),
        };
        let screen_on: Vec<String> = c
            .screen_on
            .iter()
            .map(|v| {
                let hours: Vec<String> = v.hours.iter().map(ToString::to_string).collect();
                format!("{} {}", v.weekdays.map_or("every day".into(), |w| w.to_string()), hours.join(","))
            })
            .collect();
        let language = match c.language {
            Language::ZhCn => "zh-CN",
            Language::En => "en",
        };
        let values: Vec<(&'static str, Value)> = vec![
            ("config", json!(self.config_file().map(|p| p.display().to_string()))),
            ("data_dir", json!(path(&self.data_dir))),
            ("screen.id", json!(c.screen_id)),
            ("screen.name", json!(c.screen_name)),
            ("screen.timezone", json!(c.timezone.name())),
            ("screen.language", json!(language)),
            ("screen.region", json!(c.region)),
            ("screen.latitude", json!(c.latitude)),
            ("screen.longitude", json!(c.longitude)),
            ("display.mode", json!(display)),
            ("display.on", json!(screen_on)),
            ("display.sleep", json!(c.display_sleep)),
            ("audio.volume", json!(c.volume)),
            ("audio.quiet_hours", json!(c.quiet_hours.iter().map(ToString::to_string).collect::<Vec<_>>())),
            ("player.playlist", json!(path(&c.playlist))),
            ("feed.url", json!(c.feed.url.as_ref().map(url::Url::as_str))),
            ("feed.public_key", json!(c.feed.public_key.as_ref().map(crate::core::feed::keys::public_key_string))),
            ("feed.interval", dur(c.feed.interval)),
            ("feed.max_bytes_per_sec", json!(c.feed.max_bytes_per_sec)),
            ("feed.max_age", dur(c.feed.max_age)),
            ("feed.clock_skew", dur(c.feed.clock_skew)),
            ("cache.dir", json!(path(&c.cache.dir()))),
            ("cache.budget", json!(c.cache.budget)),
            ("alerts.source", json!(c.alerts.sources.iter().map(|s| s.url.as_str()).collect::<Vec<_>>())),
            ("alerts.show_all", json!(c.alerts.show_all)),
            ("alerts.show_exercise", json!(c.alerts.show_exercise)),
            ("alerts.show_test", json!(c.alerts.show_test)),
            ("alerts.default_lifetime", dur(c.alerts.default_lifetime)),
            ("alerts.takeover", json!(c.alerts.takeover.as_str())),
            ("alerts.banner", json!(c.alerts.banner.as_str())),
            ("alerts.chime_interval", dur(c.alerts.chime_interval)),
            ("alerts.cycle", dur(c.alerts.cycle)),
            ("alerts.addresses", json!(c.alerts.addresses)),
        ];
        values.into_iter().map(|(key, value)| Entry { key, value, origin: self.origin(key).clone() }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(text: &str) -> Loaded {
        let l = super::super::parse(Path::new("/k/config.toml"), text);
        assert!(l.problems.0.is_empty() && l.unusable.is_none(), "{}", l.diagnostics());
        l
    }

    fn at(line: usize) -> Origin {
        Origin::File { path: "/k/config.toml".into(), line }
    }

    const FILE: &str = "[screen]\nid = \"cx-1\"\n[display]\nmode = \"window\"\nwidth = 800\nheight = 600\n[player]\nplaylist = \"p.toml\"\n";

    #[test]
    fn the_command_line_wins_over_the_file() {
        let flags = Flags { config: Some("/k/config.toml".into()), playlist: Some("/cli/p.toml".into()), window: Some((1280, 720)) };
        let env = Env { config: Some("/env/config.toml".into()), data_dir: None };
        let s = merge(&flags, &env, loaded(FILE));
        assert_eq!(s.config.playlist, Some(PathBuf::from("/cli/p.toml")));
        assert_eq!(s.origin("player.playlist"), &Origin::Flag { flag: "--playlist" });
        assert_eq!(s.config.display, DisplayMode::Window { width: 1280, height: 720 });
        assert_eq!(s.origin("display.mode"), &Origin::Flag { flag: "--window" });
        assert_eq!(s.origin("config"), &Origin::Flag { flag: "--config" }, "over ESTATION_CONFIG");
        assert!(s.playlist_from_command_line());
        assert_eq!(s.loaded.config.playlist, Some(PathBuf::from("/k/p.toml")), "the file's own view is kept");
    }

    #[test]
    fn the_environment_wins_over_defaults_and_the_file_over_defaults() {
        let env = Env { config: Some("/k/config.toml".into()), data_dir: Some("/opt/estation".into()) };
        let s = merge(&Flags::default(), &env, loaded(FILE));
        assert_eq!(s.origin("config"), &Origin::Env { var: "ESTATION_CONFIG" });
        assert_eq!(s.data_dir, Some(PathBuf::from("/opt/estation")));
        assert_eq!(s.origin("data_dir"), &Origin::Env { var: "ESTATION_DATA_DIR" });
        assert_eq!(s.config.playlist, Some(PathBuf::from("/k/p.toml")));
        assert_eq!(s.origin("player.playlist"), &at(8));
        assert_eq!(s.config.display, DisplayMode::Window { width: 800, height: 600 });
        assert_eq!(s.origin("display.mode"), &at(4));
        assert_eq!(s.origin("screen.id"), &at(2));
        assert_eq!(s.origin("screen.name"), &Origin::Default);
        assert!(!s.playlist_from_command_line());

        // Nothing anywhere: defaults, and an empty variable is no variable.
        let env = Env { config: Some("".into()), data_dir: Some("".into()) };
        let s = merge(&Flags::default(), &env, loaded(""));
        for key in ["config", "data_dir", "player.playlist", "display.mode", "feed.url"] {
            assert_eq!(s.origin(key), &Origin::Default, "{key}");
        }
        assert_eq!((s.data_dir, s.config.display), (None, DisplayMode::Fullscreen));
    }

    #[test]
    fn typed_values_and_their_lines() {
        let key = crate::core::feed::keys::public_key_string(&ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key());
        let text = format!("[feed]\nurl = \"https://feed.example/county\"\npublic_key = \"{key}\"\ninterval = \"2m\"\n[cache]\nbudget = \"8GB\"\n[[alerts.source]]\nurl = \"https://a.example/cap.atom\"\n[alerts]\nshow_test = true\n");
        let s = merge(&Flags::default(), &Env::default(), loaded(&text));
        let url = s.config.feed.url.as_ref().expect("url");
        assert_eq!(url.join("manifest.json").unwrap().as_str(), "https://feed.example/county/manifest.json", "a folder URL");
        assert_eq!(s.config.feed.public_key.map(|k| crate::core::feed::keys::public_key_string(&k)), Some(key.clone()));
        let entries = s.entries();
        let entry = |k: &str| entries.iter().find(|e| e.key == k).unwrap_or_else(|| panic!("{k}")).clone();
        assert_eq!(entry("feed.url"), Entry { key: "feed.url", value: json!("https://feed.example/county/"), origin: at(2) });
        assert_eq!(entry("feed.public_key").value, json!(key));
        assert_eq!(entry("feed.public_key").origin, at(3));
        assert_eq!(entry("feed.interval"), Entry { key: "feed.interval", value: json!("2m"), origin: at(4) });
        assert_eq!(entry("feed.max_age"), Entry { key: "feed.max_age", value: json!("7days"), origin: Origin::Default });
        assert_eq!(entry("cache.budget").value, json!(8_000_000_000u64));
        assert_eq!(entry("cache.budget").origin, at(6));
        assert_eq!(entry("alerts.source"), Entry { key: "alerts.source", value: json!(["https://a.example/cap.atom"]), origin: at(8) });
        assert_eq!(entry("alerts.show_test").origin, at(10));
        assert_eq!(entry("alerts.show_all").origin, Origin::Default);
    }

    #[test]
    fn a_refused_value_is_a_default_not_the_file() {
        let l = super::super::parse(Path::new("/k/config.toml"), "[audio]\nvolume = 300\n[screen]\nid = \"ok\"\n");
        assert_eq!(l.problems.0.len(), 1);
        let s = merge(&Flags::default(), &Env::default(), l);
        assert_eq!((s.config.volume, s.origin("audio.volume")), (80, &Origin::Default));
        assert_eq!(s.origin("screen.id"), &at(4));
    }
}
