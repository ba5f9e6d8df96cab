//! A headless player for the shell's tests: the plugins that decide what is
//! on screen under `MinimalPlugins` (no window, renderer or sound device), a
//! window entity with no window behind it, and a clock set by hand.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy::state::app::StatesPlugin;
use bevy::window::PrimaryWindow;
use chrono::{DateTime, Utc};

use super::fonts::Fonts;
use super::now::Now;
use super::worker::{self, Files};
use super::Settings;
use crate::config::Config;
use crate::store::content::ContentSource;

/// 10:00 in Shanghai, the screens' default zone.
pub(crate) fn ten_am() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-07-01T10:00:00+08:00").unwrap().with_timezone(&Utc)
}

pub(crate) struct Player {
    pub app: App,
    pub dir: tempfile::TempDir,
}

impl Player {
    /// A player of `playlist` (TOML text), with its cache (the alert store,
    /// the trusted time) and `player.json` in a temp folder; `config`
    /// adjusts the defaults.
    pub fn new(playlist: &str, config: impl FnOnce(&mut Config)) -> Player {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, playlist).unwrap();
        let cache = dir.path().join("cache");
        std::fs::create_dir_all(&cache).unwrap();
        let mut c = Config { cache: crate::config::CacheConfig { dir: Some(cache), ..Default::default() }, ..Config::default() };
        config(&mut c);
        let settings = Settings {
            config: c,
            source: ContentSource::Files(file),
            status_path: Some(dir.path().join("player.json")),
            assets: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets"),
            config_fallback: None,
        };
        let mut app = App::new();
        app.add_plugins((MinimalPlugins, StatesPlugin));
        // The worker looks at its files every few milliseconds, not every second.
        let files = Files { check: Duration::from_millis(5), ..Files::of(&settings) };
        app.insert_resource(worker::spawn(files, std::sync::Arc::new(|| {})).unwrap())
            .insert_resource(settings)
            .insert_resource(Now::manual(ten_am()))
            .insert_resource(ClearColor(super::hours::BACKGROUND))
            .insert_resource(Fonts { bold: default() })
            .init_resource::<Assets<Image>>()
            .add_plugins(super::shell);
        app.world_mut().spawn((Window::default(), PrimaryWindow));
        Player { app, dir }
    }

    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// Runs frames (without moving the clock) until `done` holds; panics
    /// after five seconds of real time (the worker and the preparations
    /// run on threads of their own).
    pub fn until(&mut self, what: &str, mut done: impl FnMut(&mut World) -> bool) {
        let give_up = Instant::now() + Duration::from_secs(5);
        loop {
            self.app.update();
            if done(self.app.world_mut()) {
                return;
            }
            assert!(Instant::now() < give_up, "never: {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Moves the clock on by `by`, then runs a frame.
    pub fn advance(&mut self, by: Duration) {
        self.app.world_mut().resource_mut::<Now>().advance(by);
        self.app.update();
    }

    pub fn mode(&self) -> Option<super::mode::Mode> {
        self.app.world().get_resource::<State<super::mode::Mode>>().map(|s| *s.get())
    }
}

/// A red rain-storm warning (`id`, or its cancel when `cancel`), received
/// into the alert store in `cache` the way sync does.
pub(crate) fn warn(cache: &Path, id: &str, cancel: bool) {
    use crate::core::alert::cap;
    let (msg_type, references, sent) = if cancel {
        ("Cancel", format!("<references>s,{id},2026-07-01T08:00:00+08:00</references>"), "09")
    } else {
        ("Alert", String::new(), "08")
    };
    let id_here = if cancel { format!("{id}-cancel") } else { id.to_string() };
    let xml = format!(
        "<alert xmlns=\"{}\"><identifier>{id_here}</identifier><sender>s</sender><sent>2026-07-01T{sent}:00:00+08:00</sent>\
         <status>Actual</status><msgType>{msg_type}</msgType><scope>Public</scope>{references}\
         <info><category>Met</category><event>暴雨</event><urgency>Immediate</urgency><severity>Extreme</severity>\
         <certainty>Likely</certainty><expires>2026-07-01T20:00:00+08:00</expires></info></alert>",
        cap::NS_12,
    );
    let message = (cap::parse(Path::new("t"), xml.as_bytes()).unwrap().alert, xml);
    let inbox = crate::store::inbox::Inbox::new(cache);
    inbox.receive(vec![message], "feed", ten_am(), &Config::default().alert_rules()).unwrap();
}
