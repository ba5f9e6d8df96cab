//! The playlist model: what operators write in `playlists/*.toml`.
//!
//! A playlist is a loop of items (image, video, text card, QR code, clock),
//! each with optional narration, with an optional ticker, background music
//! and a schedule saying when it is the one to play.
//! Parsing never stops at the first problem: bad items are dropped with a
//! diagnostic and the rest is kept, so one typo cannot blank a screen.

pub mod handover;
mod parse;
pub mod rotation;
pub mod schedule;
pub mod validity;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::core::color::Rgba;
use crate::core::diag::Diagnostic;
use crate::core::playlist::validity::Validity;

pub use parse::{parse_playlist, parse_playlist_in, Parsed};
// How media are shown is the media layer's; a playlist names it.
pub use crate::core::media::spec::{Fit, Length, Video};

/// Where the media files a playlist names are found.
#[derive(Debug, Clone)]
pub enum MediaRoot {
    /// Relative to a folder: the playlist's own, for files on disk.
    Dir(PathBuf),
    /// Looked up by the exact text written in the playlist: a feed in the
    /// cache, whose names come from the network and are never used as paths.
    Lookup(BTreeMap<String, PathBuf>),
}

/// Background music of a playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Music {
    pub tracks: Vec<PathBuf>,
    pub shuffle: bool,
    /// 0-100 percent of the master volume.
    pub volume: u8,
}

/// What an item shows.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemKind {
    Image { path: PathBuf, fit: Fit },
    Video(Video),
    Text {
        title: Option<String>,
        body: Option<String>,
        footer: Option<String>,
        background_image: Option<PathBuf>,
    },
    Qr { data: String, caption: Option<String> },
    Clock { lunar: bool, seconds: bool, title: Option<String> },
}

impl ItemKind {
    pub fn name(&self) -> &'static str {
        match self {
            ItemKind::Image { .. } => "image",
            ItemKind::Video(_) => "video",
            ItemKind::Text { .. } => "text",
            ItemKind::Qr { .. } => "qr",
            ItemKind::Clock { .. } => "clock",
        }
    }

    /// Files this item reads, for checks, preloading and (later) the feed.
    pub fn files(&self) -> Vec<&Path> {
        match self {
            ItemKind::Image { path, .. } => vec![path.as_path()],
            ItemKind::Video(v) => vec![v.path.as_path()],
            ItemKind::Text {
                background_image: Some(p),
                ..
            } => vec![p.as_path()],
            _ => Vec::new(),
        }
    }
}

/// One entry of a playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: String,
    pub kind: ItemKind,
    pub duration: Length,
    /// Spoken commentary played while the item is on screen.
    pub narration: Option<PathBuf>,
    /// Crossfade length into this item.
    pub transition: Duration,
    pub background: Rgba,
    pub color: Rgba,
    pub validity: Validity,
    /// Line of the item's `[[items]]` header, for messages.
    pub line: usize,
}

impl Item {
    /// How long the item stays on screen once its media are measured: what
    /// the player does with what it measured while preparing the item, and
    /// what `playlist at` does with what it measures of the same files.
    pub fn on_screen(&self, measured: crate::core::media::timing::Measured) -> Duration {
        let video = match &self.kind {
            ItemKind::Video(v) => Some(v),
            _ => None,
        };
        crate::core::media::timing::on_screen(self.duration, video, measured)
    }
}

/// The screen-wide scrolling ticker (滚动字幕).
/// Ticker speed when a playlist gives none (pixels per second at 1080p).
pub const DEFAULT_TICKER_SPEED: f32 = 120.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Ticker {
    pub messages: Vec<String>,
    /// Pixels per second on a 1080-line screen; scaled with the screen.
    pub speed: f32,
    pub background: Rgba,
    pub color: Rgba,
}

/// When a playlist is the one to play.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schedule {
    pub priority: i32,
    /// Played when no other playlist applies.
    pub fallback: bool,
    pub validity: Validity,
}

/// A parsed playlist whose items all passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Playlist {
    pub id: String,
    pub name: String,
    pub source: PathBuf,
    pub schedule: Schedule,
    pub ticker: Option<Ticker>,
    pub music: Option<Music>,
    pub items: Vec<Item>,
    /// Each media path as written in the playlist, and the file it names.
    pub media: BTreeMap<String, PathBuf>,
}

/// Every playlist found at a path, with the problems met while loading them.
#[derive(Debug, Clone, Default)]
pub struct Library {
    pub playlists: Vec<Playlist>,
    pub problems: Vec<Diagnostic>,
}

impl Library {
    /// Loads a playlist file, or every `*.toml` in a folder (sorted by name).
    pub fn load(path: &Path) -> Library {
        let mut lib = Library::default();
        let files = match playlist_files(path) {
            Ok(f) => f,
            Err(d) => {
                lib.problems.push(d);
                return lib;
            }
        };
        for file in files {
            lib.add(parse::parse_file(&file));
        }
        lib.check_set();
        lib
    }

    /// A library from playlist texts already in memory (a feed in the cache):
    /// `(name for messages, text, where its media are)`.
    pub fn from_texts<'a>(texts: impl IntoIterator<Item = (PathBuf, &'a str, &'a MediaRoot)>) -> Library {
        let mut lib = Library::default();
        for (name, text, root) in texts {
            lib.add(parse::parse_playlist_in(&name, text, root));
        }
        lib.check_set();
        lib
    }

    fn add(&mut self, parsed: Parsed) {
        self.problems.extend(parsed.problems);
        self.playlists.extend(parsed.playlist);
    }

    /// Rules across playlists: unique ids, at most one fallback.
    fn check_set(&mut self) {
        let mut seen: Vec<(&str, &Path)> = Vec::new();
        let mut fallback: Option<&Path> = None;
        let mut problems = Vec::new();
        for p in &self.playlists {
            if let Some((_, first)) = seen.iter().find(|(id, _)| *id == p.id) {
                problems.push(Diagnostic {
                    file: p.source.clone(),
                    line: 0,
                    field: "id".into(),
                    message: format!(
                        "playlist id `{}` is also used by {}; ids must be unique",
                        p.id,
                        first.display()
                    ),
                });
            }
            seen.push((&p.id, &p.source));
            if p.schedule.fallback {
                match fallback {
                    Some(first) => problems.push(Diagnostic {
                        file: p.source.clone(),
                        line: 0,
                        field: "schedule.fallback".into(),
                        message: format!(
                            "{} is already the fallback; only one playlist may be",
                            first.display()
                        ),
                    }),
                    None => fallback = Some(&p.source),
                }
            }
        }
        self.problems.extend(problems);
    }

    pub fn get(&self, id: &str) -> Option<&Playlist> {
        self.playlists.iter().find(|p| p.id == id)
    }
}

/// The playlist files a path stands for.
pub fn playlist_files(path: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let whole = |message: String| Diagnostic {
        file: path.to_path_buf(),
        line: 0,
        field: "(file)".into(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| whole(format!("cannot read: {e}")))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| whole(format!("cannot list folder: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(whole("folder holds no playlist (*.toml)".into()));
    }
    Ok(files)
}
