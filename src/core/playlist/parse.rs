//! TOML → [`Playlist`], collecting every problem as a [`Diagnostic`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{Fit, Item, ItemKind, Length, MediaRoot, Music, Playlist, Schedule, Ticker, Video};
use crate::core::media::sniff::{self, Class, Format};
use crate::core::color::Rgba;
use crate::core::diag::{Diagnostic, SourceMap};
use crate::core::playlist::validity::{OneOrMany, Validity};

const MIN_DURATION: Duration = Duration::from_secs(1);
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
const MAX_TRANSITION: Duration = Duration::from_secs(10);
const DEFAULT_DURATION: Duration = Duration::from_secs(10);
const DEFAULT_TRANSITION: Duration = Duration::from_millis(800);
const DEFAULT_BACKGROUND: Rgba = Rgba::rgb(0x0d, 0x2b, 0x4e);
use super::DEFAULT_TICKER_SPEED;
/// Version 40 at level M holds 2,331 bytes; more cannot become a QR code.
const MAX_QR_BYTES: usize = 2331;

/// The result of reading one playlist file.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// `None` when the file could not be read or is not valid TOML.
    pub playlist: Option<Playlist>,
    pub problems: Vec<Diagnostic>,
}

/// A number of seconds or a humantime string such as `"1m30s"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum DurationValue {
    Seconds(f64),
    Text(String),
}


#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawValidity {
    dates: Option<Spanned<OneOrMany>>,
    weekdays: Option<Spanned<String>>,
    hours: Option<Spanned<OneOrMany>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaylist {
    id: Option<Spanned<String>>,
    name: Option<String>,
    schedule: Option<RawSchedule>,
    ticker: Option<Spanned<RawTicker>>,
    defaults: Option<RawDefaults>,
    music: Option<Spanned<RawMusic>>,
    #[serde(default)]
    items: Vec<Spanned<RawItem>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMusic {
    tracks: Vec<Spanned<String>>,
    order: Option<Spanned<String>>,
    volume: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    priority: Option<Spanned<i64>>,
    #[serde(default)]
    fallback: bool,
    dates: Option<Spanned<OneOrMany>>,
    weekdays: Option<Spanned<String>>,
    hours: Option<Spanned<OneOrMany>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTicker {
    messages: Vec<Spanned<String>>,
    speed: Option<Spanned<f64>>,
    background: Option<Spanned<String>>,
    color: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    duration: Option<Spanned<DurationValue>>,
    transition: Option<Spanned<DurationValue>>,
    background: Option<Spanned<String>>,
    color: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    kind: Spanned<String>,
    id: Option<Spanned<String>>,
    duration: Option<Spanned<DurationValue>>,
    transition: Option<Spanned<DurationValue>>,
    background: Option<Spanned<String>>,
    color: Option<Spanned<String>>,
    dates: Option<Spanned<OneOrMany>>,
    weekdays: Option<Spanned<String>>,
    hours: Option<Spanned<OneOrMany>>,
    narration: Option<Spanned<String>>,
    // image, video
    path: Option<Spanned<String>>,
    fit: Option<Spanned<Fit>>,
    // video
    #[serde(rename = "loop")]
    looped: Option<Spanned<bool>>,
    mute: Option<Spanned<bool>>,
    volume: Option<Spanned<i64>>,
    start: Option<Spanned<DurationValue>>,
    // text
    title: Option<Spanned<String>>,
    body: Option<Spanned<String>>,
    footer: Option<Spanned<String>>,
    background_image: Option<Spanned<String>>,
    // qr
    data: Option<Spanned<String>>,
    caption: Option<Spanned<String>>,
    // clock
    lunar: Option<Spanned<bool>>,
    seconds: Option<Spanned<bool>>,
}

/// Reads and parses a playlist file.
pub(crate) fn parse_file(path: &Path) -> Parsed {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_playlist(path, &text),
        Err(e) => Parsed {
            playlist: None,
            problems: vec![Diagnostic {
                file: path.to_path_buf(),
                line: 0,
                field: "(file)".into(),
                message: format!("cannot read: {e}"),
            }],
        },
    }
}

/// Parses playlist text; `path` names it in messages and anchors relative paths.
///
/// ```
/// use std::path::Path;
/// let good = estation::core::playlist::parse_playlist(Path::new("p.toml"),
///     "[[items]]\nkind = \"clock\"\n");
/// assert!(good.problems.is_empty());
/// let bad = estation::core::playlist::parse_playlist(Path::new("p.toml"),
///     "[[items]]\nkind = \"clock\"\nduration = \"forever\"\n");
/// assert_eq!(bad.problems[0].to_string(),
///     "p.toml:3: items[1].duration: `forever` is not a duration; write e.g. 10s, 1m30s");
/// ```
pub fn parse_playlist(path: &Path, text: &str) -> Parsed {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse_playlist_in(path, text, &MediaRoot::Dir(base))
}

/// Parses playlist text whose media are found through `root`.
pub fn parse_playlist_in(path: &Path, text: &str, root: &MediaRoot) -> Parsed {
    let map = SourceMap::new(path, text);
    let raw: RawPlaylist = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            return Parsed {
                playlist: None,
                problems: vec![map.toml_error(&e)],
            };
        }
    };
    let mut cx = Cx {
        map: &map,
        problems: Vec::new(),
        root,
        media: BTreeMap::new(),
    };
    let playlist = cx.playlist(raw);
    // Report in file order, whatever order the checks ran in.
    cx.problems.sort_by_key(|d| d.line);
    Parsed {
        playlist: Some(playlist),
        problems: cx.problems,
    }
}

struct Cx<'a> {
    map: &'a SourceMap<'a>,
    problems: Vec<Diagnostic>,
    root: &'a MediaRoot,
    media: BTreeMap<String, PathBuf>,
}

impl Cx<'_> {
    fn problem(&mut self, offset: usize, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(self.map.diag(offset, field, message));
    }

    fn playlist(&mut self, raw: RawPlaylist) -> Playlist {
        let stem = self
            .map
            .file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "playlist".into());
        let id = match raw.id {
            Some(id) if valid_id(id.get_ref()) => id.into_inner(),
            Some(id) => {
                self.problem(id.span().start, "id", bad_id_message(id.get_ref()));
                stem
            }
            None => stem,
        };
        let name = raw.name.unwrap_or_else(|| id.clone());
        let schedule = raw.schedule.map(|s| self.schedule(s)).unwrap_or_default();
        let defaults = raw.defaults.unwrap_or_default();
        let default_duration = self
            .duration(defaults.duration.as_ref(), "defaults.duration", MIN_DURATION, MAX_DURATION)
            .unwrap_or(DEFAULT_DURATION);
        let default_transition = self
            .duration(defaults.transition.as_ref(), "defaults.transition", Duration::ZERO, MAX_TRANSITION)
            .unwrap_or(DEFAULT_TRANSITION);
        let default_background = self
            .color(defaults.background.as_ref(), "defaults.background")
            .unwrap_or(DEFAULT_BACKGROUND);
        let default_color = self
            .color(defaults.color.as_ref(), "defaults.color")
            .unwrap_or(Rgba::WHITE);
        let ticker = raw.ticker.and_then(|t| self.ticker(t));
        let music = raw.music.and_then(|m| self.music(m));

        if raw.items.is_empty() {
            self.problem(0, "items", "playlist has no items; add at least one [[items]] entry");
        }
        let mut items: Vec<Item> = Vec::new();
        for (i, raw_item) in raw.items.into_iter().enumerate() {
            let d = Defaults {
                duration: default_duration,
                transition: default_transition,
                background: default_background,
                color: default_color,
            };
            let before = self.problems.len();
            let item = self.item(i + 1, raw_item, &d);
            if let Some((item, id_line)) = item
                && self.problems.len() == before {
                    if let Some(other) = items.iter().find(|o| o.id == item.id) {
                        let line = other.line;
                        self.problems.push(Diagnostic {
                            file: self.map.file.to_path_buf(),
                            line: id_line,
                            field: format!("items[{}].id", i + 1),
                            message: format!("id `{}` is already used by the item on line {line}", item.id),
                        });
                    } else {
                        items.push(item);
                    }
                }
        }
        Playlist {
            id,
            name,
            source: self.map.file.to_path_buf(),
            schedule,
            ticker,
            music,
            items,
            media: std::mem::take(&mut self.media),
        }
    }

    fn schedule(&mut self, raw: RawSchedule) -> Schedule {
        let priority = match raw.priority {
            Some(p) if (-1000..=1000).contains(p.get_ref()) => *p.get_ref() as i32,
            Some(p) => {
                self.problem(p.span().start, "schedule.priority", "must be between -1000 and 1000");
                0
            }
            None => 0,
        };
        let validity = self.validity(
            "schedule.",
            RawValidity {
                dates: raw.dates,
                weekdays: raw.weekdays,
                hours: raw.hours,
            },
        );
        Schedule {
            priority,
            fallback: raw.fallback,
            validity,
        }
    }

    fn ticker(&mut self, raw: Spanned<RawTicker>) -> Option<Ticker> {
        let at = raw.span().start;
        let raw = raw.into_inner();
        let mut messages = Vec::new();
        for (i, m) in raw.messages.into_iter().enumerate() {
            if m.get_ref().trim().is_empty() {
                self.problem(m.span().start, format!("ticker.messages[{}]", i + 1), "message is empty");
            } else {
                messages.push(m.get_ref().trim().replace('\n', " "));
            }
        }
        if messages.is_empty() {
            self.problem(at, "ticker.messages", "ticker has no messages");
            return None;
        }
        let speed = match raw.speed {
            Some(s) if (10.0..=2000.0).contains(s.get_ref()) => *s.get_ref() as f32,
            Some(s) => {
                self.problem(s.span().start, "ticker.speed", "must be between 10 and 2000 (pixels per second at 1080p)");
                DEFAULT_TICKER_SPEED
            }
            None => DEFAULT_TICKER_SPEED,
        };
        Some(Ticker {
            messages,
            speed,
            background: self
                .color(raw.background.as_ref(), "ticker.background")
                .unwrap_or(Rgba::rgb(0xb7, 0x1c, 0x1c)),
            color: self.color(raw.color.as_ref(), "ticker.color").unwrap_or(Rgba::WHITE),
        })
    }

    fn music(&mut self, raw: Spanned<RawMusic>) -> Option<Music> {
        let at = raw.span().start;
        let raw = raw.into_inner();
        let mut tracks = Vec::new();
        for (i, t) in raw.tracks.iter().enumerate() {
            if let Some(path) = self.media_file(t, &format!("music.tracks[{}]", i + 1), Class::Sound) {
                tracks.push(path);
            }
        }
        if tracks.is_empty() {
            self.problem(at, "music.tracks", "background music needs at least one playable track");
            return None;
        }
        let shuffle = match raw.order.as_ref().map(|o| (o.span().start, o.get_ref().trim())) {
            None | Some((_, "in-order")) => false,
            Some((_, "shuffle")) => true,
            Some((at, other)) => {
                self.problem(at, "music.order", format!("`{other}` is not an order; use in-order or shuffle"));
                false
            }
        };
        let volume = self.percent(raw.volume.as_ref(), "music.volume").unwrap_or(50);
        Some(Music { tracks, shuffle, volume })
    }

    fn percent(&mut self, v: Option<&Spanned<i64>>, field: &str) -> Option<u8> {
        let v = v?;
        match u8::try_from(*v.get_ref()) {
            Ok(p) if p <= 100 => Some(p),
            _ => {
                self.problem(v.span().start, field, "must be between 0 and 100 (percent of the master volume)");
                None
            }
        }
    }

    /// The item, and the line of its `id` (or header) for duplicate-id messages.
    fn item(&mut self, n: usize, raw: Spanned<RawItem>, d: &Defaults) -> Option<(Item, usize)> {
        let line = self.map.line_of(raw.span().start);
        let raw = raw.into_inner();
        let f = |name: &str| format!("items[{n}].{name}");
        let id_line = raw.id.as_ref().map_or(line, |id| self.map.line_of(id.span().start));
        let id = match &raw.id {
            Some(id) if valid_id(id.get_ref()) => id.get_ref().clone(),
            Some(id) => {
                self.problem(id.span().start, f("id"), bad_id_message(id.get_ref()));
                return None;
            }
            None => format!("item{n}"),
        };
        let is_video = raw.kind.get_ref() == "video";
        let word = raw.duration.as_ref().and_then(|v| match v.get_ref() {
            DurationValue::Text(t) if matches!(t.trim(), "auto" | "narration") => Some((v.span().start, t.trim())),
            _ => None,
        });
        let duration = match word {
            Some((_, "auto")) if is_video => Length::Clip,
            Some((at, "auto")) => {
                self.problem(at, f("duration"), "`auto` (the clip's length) is only for video items; give a time");
                return None;
            }
            Some((at, _)) => {
                if raw.narration.is_none() {
                    self.problem(at, f("duration"), "`narration` needs the item's `narration` file");
                    return None;
                }
                Length::Narration
            }
            None if raw.duration.is_none() && is_video => Length::Clip,
            None => Length::Fixed(
                self.duration(raw.duration.as_ref(), &f("duration"), MIN_DURATION, MAX_DURATION)
                    .unwrap_or(d.duration),
            ),
        };
        let narration = match &raw.narration {
            Some(n) => Some(self.media_file(n, &f("narration"), Class::Sound)?),
            None => None,
        };
        let transition = self
            .duration(raw.transition.as_ref(), &f("transition"), Duration::ZERO, MAX_TRANSITION)
            .unwrap_or(d.transition);
        let background = self.color(raw.background.as_ref(), &f("background")).unwrap_or(d.background);
        let color = self.color(raw.color.as_ref(), &f("color")).unwrap_or(d.color);
        let validity = self.validity(
            &format!("items[{n}]."),
            RawValidity {
                dates: raw.dates,
                weekdays: raw.weekdays,
                hours: raw.hours,
            },
        );

        let kind_at = raw.kind.span().start;
        // Fields that only some kinds use; a stray one is a likely mistake.
        let present: [(&str, Option<usize>); 14] = [
            ("path", (raw.path.as_ref().map(|v| v.span().start))),
            ("fit", (raw.fit.as_ref().map(|v| v.span().start))),
            ("title", (raw.title.as_ref().map(|v| v.span().start))),
            ("body", (raw.body.as_ref().map(|v| v.span().start))),
            ("footer", (raw.footer.as_ref().map(|v| v.span().start))),
            ("background_image", (raw.background_image.as_ref().map(|v| v.span().start))),
            ("data", (raw.data.as_ref().map(|v| v.span().start))),
            ("caption", (raw.caption.as_ref().map(|v| v.span().start))),
            ("lunar", (raw.lunar.as_ref().map(|v| v.span().start))),
            ("seconds", (raw.seconds.as_ref().map(|v| v.span().start))),
            ("loop", (raw.looped.as_ref().map(|v| v.span().start))),
            ("mute", (raw.mute.as_ref().map(|v| v.span().start))),
            ("volume", (raw.volume.as_ref().map(|v| v.span().start))),
            ("start", (raw.start.as_ref().map(|v| v.span().start))),
        ];
        let allowed: &[&str] = match raw.kind.get_ref().as_str() {
            "image" => &["path", "fit"],
            "video" => &["path", "fit", "loop", "mute", "volume", "start"],
            "text" => &["title", "body", "footer", "background_image"],
            "qr" => &["data", "caption"],
            "clock" => &["lunar", "seconds", "title"],
            other => {
                self.problem(
                    kind_at,
                    f("kind"),
                    format!("unknown kind `{other}`; expected one of image, video, text, qr, clock"),
                );
                return None;
            }
        };
        let kind_name = raw.kind.get_ref().clone();
        for (name, offset) in present {
            if let Some(offset) = offset.filter(|_| !allowed.contains(&name)) {
                self.problem(
                    offset,
                    f(name),
                    format!("`{name}` is not used by {kind_name} items; allowed here: {}", allowed.join(", ")),
                );
            }
        }

        let text = |v: &Option<Spanned<String>>| {
            v.as_ref()
                .map(|s| s.get_ref().trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let kind = match kind_name.as_str() {
            "image" => {
                let Some(path) = &raw.path else {
                    self.problem(kind_at, f("path"), "image items need `path`");
                    return None;
                };
                let path = self.media_file(path, &f("path"), Class::Picture)?;
                ItemKind::Image {
                    path,
                    fit: raw.fit.map(Spanned::into_inner).unwrap_or_default(),
                }
            }
            "video" => {
                let Some(path) = &raw.path else {
                    self.problem(kind_at, f("path"), "video items need `path`");
                    return None;
                };
                let path = self.media_file(path, &f("path"), Class::Video)?;
                let looped = raw.looped.as_ref().is_some_and(|l| *l.get_ref());
                if looped && duration == Length::Clip {
                    let at = raw.duration.as_ref().map_or(kind_at, |d| d.span().start);
                    self.problem(at, f("duration"), "a looping video needs a fixed `duration` (e.g. 2m)");
                    return None;
                }
                let volume = self.percent(raw.volume.as_ref(), &f("volume")).unwrap_or(100);
                let start = self
                    .duration(raw.start.as_ref(), &f("start"), Duration::ZERO, MAX_DURATION)
                    .unwrap_or(Duration::ZERO);
                ItemKind::Video(Video {
                    path,
                    fit: raw.fit.map(Spanned::into_inner).unwrap_or_default(),
                    looped,
                    mute: raw.mute.is_some_and(Spanned::into_inner),
                    volume,
                    start,
                })
            }
            "text" => {
                let (title, body) = (text(&raw.title), text(&raw.body));
                if title.is_none() && body.is_none() {
                    self.problem(kind_at, f("body"), "text items need a `title` or a `body`");
                    return None;
                }
                let background_image = match &raw.background_image {
                    Some(p) => Some(self.media_file(p, &f("background_image"), Class::Picture)?),
                    None => None,
                };
                ItemKind::Text {
                    title,
                    body,
                    footer: text(&raw.footer),
                    background_image,
                }
            }
            "qr" => {
                let Some(data) = &raw.data else {
                    self.problem(kind_at, f("data"), "qr items need `data` (a URL or text)");
                    return None;
                };
                let value = data.get_ref().trim();
                if value.is_empty() {
                    self.problem(data.span().start, f("data"), "is empty");
                    return None;
                }
                if value.len() > MAX_QR_BYTES {
                    self.problem(
                        data.span().start,
                        f("data"),
                        format!("is {} bytes; a QR code holds at most {MAX_QR_BYTES}", value.len()),
                    );
                    return None;
                }
                ItemKind::Qr {
                    data: value.to_string(),
                    caption: text(&raw.caption),
                }
            }
            _ => ItemKind::Clock {
                lunar: raw.lunar.is_none_or(Spanned::into_inner),
                seconds: raw.seconds.is_some_and(Spanned::into_inner),
                title: text(&raw.title),
            },
        };
        let item = Item {
            id,
            kind,
            duration,
            narration,
            transition,
            background,
            color,
            validity,
            line,
        };
        Some((item, id_line))
    }

    /// Resolves a media path against the playlist's folder (or the feed) and
    /// checks that it holds what its place needs: a picture by its header
    /// (the player decodes it fully), a video or sound by its first bytes
    /// (the player's decoder reports codecs it lacks).
    fn media_file(&mut self, raw: &Spanned<String>, field: &str, class: Class) -> Option<PathBuf> {
        let at = raw.span().start;
        let rel = raw.get_ref().trim();
        if rel.is_empty() {
            self.problem(at, field, "is empty");
            return None;
        }
        let ext = Path::new(rel)
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let allowed = Format::extensions(class);
        if !allowed.contains(&ext.as_str()) {
            let what = match class {
                Class::Picture => "image",
                Class::Video => "video",
                Class::Sound => "sound",
            };
            self.problem(at, field, format!("`{rel}`: unsupported {what} type; use {}", allowed.join(", ")));
            return None;
        }
        let path = match self.root {
            MediaRoot::Dir(base) => {
                let path = base.join(rel);
                if !path.is_file() {
                    self.problem(at, field, format!(
                        "`{rel}`: file not found (looked for {})",
                        std::path::absolute(&path).unwrap_or_else(|_| path.clone()).display()
                    ));
                    return None;
                }
                path
            }
            MediaRoot::Lookup(files) => match files.get(rel) {
                Some(p) => p.clone(),
                None => {
                    self.problem(at, field, format!("`{rel}`: not in the feed"));
                    return None;
                }
            },
        };
        let checked = match class {
            Class::Picture => crate::core::media::probe_image(&path).map(drop).map_err(|e| e.to_string()),
            Class::Video | Class::Sound => match sniff::sniff_file(&path) {
                Ok(Some(f)) if f.class() == class => Ok(()),
                Ok(_) => Err(match class {
                    Class::Video => "not a video file (its content is not MP4, Matroska or WebM)".to_string(),
                    _ => "not a sound file (its content is not MP3, Ogg, WAV or FLAC)".to_string(),
                }),
                Err(e) => Err(format!("cannot read: {e}")),
            },
        };
        if let Err(e) = checked {
            self.problem(at, field, format!("`{rel}`: {e}"));
            return None;
        }
        self.media.insert(rel.to_string(), path.clone());
        Some(path)
    }

    fn duration(
        &mut self,
        v: Option<&Spanned<DurationValue>>,
        field: &str,
        min: Duration,
        max: Duration,
    ) -> Option<Duration> {
        let v = v?;
        let at = v.span().start;
        let d = match v.get_ref() {
            DurationValue::Seconds(s) if s.is_finite() && *s >= 0.0 && *s <= 1e7 => Duration::from_secs_f64(*s),
            DurationValue::Seconds(s) => {
                self.problem(at, field, format!("`{s}` is not a duration"));
                return None;
            }
            DurationValue::Text(t) => match humantime::parse_duration(t.trim()) {
                Ok(d) => d,
                Err(_) => {
                    self.problem(at, field, format!("`{t}` is not a duration; write e.g. 10s, 1m30s"));
                    return None;
                }
            },
        };
        if d < min || d > max {
            self.problem(
                at,
                field,
                format!(
                    "{} is out of range ({} to {})",
                    humantime::format_duration(d),
                    humantime::format_duration(min),
                    humantime::format_duration(max)
                ),
            );
            return None;
        }
        Some(d)
    }

    fn color(&mut self, v: Option<&Spanned<String>>, field: &str) -> Option<Rgba> {
        let v = v?;
        match v.get_ref().trim().parse() {
            Ok(c) => Some(c),
            Err(e) => {
                self.problem(v.span().start, field, e);
                None
            }
        }
    }

    fn validity(&mut self, prefix: &str, raw: RawValidity) -> Validity {
        let mut out = Validity::default();
        if let Some(dates) = raw.dates {
            for s in dates.get_ref().items() {
                match s.parse() {
                    Ok(r) => out.dates.push(r),
                    Err(e) => self.problem(dates.span().start, format!("{prefix}dates"), e.to_string()),
                }
            }
        }
        if let Some(w) = raw.weekdays {
            match w.get_ref().parse() {
                Ok(w) => out.weekdays = Some(w),
                Err(e) => self.problem(w.span().start, format!("{prefix}weekdays"), e.to_string()),
            }
        }
        if let Some(hours) = raw.hours {
            for s in hours.get_ref().items() {
                match s.parse() {
                    Ok(h) => out.hours.push(h),
                    Err(e) => self.problem(hours.span().start, format!("{prefix}hours"), e.to_string()),
                }
            }
        }
        out
    }
}

struct Defaults {
    duration: Duration,
    transition: Duration,
    background: Rgba,
    color: Rgba,
}

/// Ids end up in logs, reports and (later) file names: keep them plain.
fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !s.starts_with('.')
}

fn bad_id_message(s: &str) -> String {
    format!("`{s}` is not a valid id; use 1-64 ASCII letters, digits, '-', '_' or '.'")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::playlist::validity::Weekdays;

    fn parse(text: &str) -> Parsed {
        parse_playlist(Path::new("p.toml"), text)
    }

    fn messages(text: &str) -> Vec<String> {
        parse(text).problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_full_playlist_parses() {
        let p = parse(
            r##"
id = "school"
name = "校园时段"
[schedule]
priority = 10
weekdays = "mon-fri"
hours = ["07:30-11:30", "13:30-17:00"]
dates = "2026-09-01..2027-01-20"
[ticker]
messages = ["欢迎", "注意防火"]
speed = 90
[defaults]
duration = "15s"
background = "#102030"
[[items]]
id = "welcome"
kind = "text"
title = "标题"
body = "正文"
[[items]]
kind = "qr"
data = "https://www.kepuchina.cn/"
caption = "扫码"
duration = 20
[[items]]
kind = "clock"
transition = "0s"
hours = "22:00-06:00"
"##,
        );
        assert_eq!(p.problems, vec![]);
        let p = p.playlist.unwrap();
        assert_eq!(p.id, "school");
        assert_eq!(p.schedule.priority, 10);
        assert_eq!(p.schedule.validity.weekdays, Some("mon-fri".parse::<Weekdays>().unwrap()));
        assert_eq!(p.schedule.validity.hours.len(), 2);
        assert_eq!(p.ticker.as_ref().unwrap().messages, ["欢迎", "注意防火"]);
        assert_eq!(p.items.len(), 3);
        assert_eq!(p.items[0].duration, Length::Fixed(Duration::from_secs(15)));
        assert_eq!(p.items[0].background, Rgba::rgb(0x10, 0x20, 0x30));
        assert_eq!(p.items[1].duration, Length::Fixed(Duration::from_secs(20)));
        assert_eq!(p.items[1].id, "item2");
        assert_eq!(p.items[2].transition, Duration::ZERO);
        assert!(matches!(p.items[2].kind, ItemKind::Clock { lunar: true, seconds: false, .. }));
        assert_eq!(p.items[2].line, 25);
    }

    #[test]
    fn syntax_errors_name_line_and_field() {
        assert_eq!(
            messages("[[items]]\nkind = \"text\"\ntitle = \"x\n"),
            vec!["p.toml:3: items[1].title: invalid basic string, expected `\"`"]
        );
    }

    #[test]
    fn unknown_fields_are_reported_with_their_table() {
        let m = messages("[[items]]\nkind = \"text\"\ntitel = \"x\"\n");
        assert_eq!(m.len(), 1);
        assert!(
            m[0].starts_with("p.toml:3: items[1].titel: unknown field `titel`, expected one of"),
            "{}",
            m[0]
        );
    }

    #[test]
    fn wrong_types_are_reported() {
        let m = messages("[[items]]\nkind = \"qr\"\ndata = 5\n");
        assert_eq!(m.len(), 1);
        assert!(m[0].starts_with("p.toml:3: items[1].data: invalid type: integer `5`, expected a string"), "{}", m[0]);
    }

    #[test]
    fn every_item_error_is_reported_and_good_items_survive() {
        let p = parse(
            r##"
[[items]]
kind = "slideshow"
[[items]]
kind = "text"
[[items]]
kind = "qr"
[[items]]
kind = "image"
[[items]]
kind = "clock"
duration = "0s"
[[items]]
kind = "clock"
duration = "soon"
background = "red"
weekdays = "mon-xyz"
hours = "9-17"
dates = "2026-02-30"
[[items]]
kind = "text"
body = "ok"
fit = "cover"
[[items]]
id = "a b"
kind = "clock"
[[items]]
id = "same"
kind = "clock"
[[items]]
id = "same"
kind = "clock"
[[items]]
kind = "image"
path = "nope.png"
[[items]]
kind = "image"
path = "notes.txt"
[[items]]
kind = "qr"
data = "   "
[[items]]
kind = "text"
title = "still fine"
"##,
        );
        let m: Vec<String> = p.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            m,
            [
                "p.toml:3: items[1].kind: unknown kind `slideshow`; expected one of image, video, text, qr, clock",
                "p.toml:5: items[2].body: text items need a `title` or a `body`",
                "p.toml:7: items[3].data: qr items need `data` (a URL or text)",
                "p.toml:9: items[4].path: image items need `path`",
                "p.toml:12: items[5].duration: 0s is out of range (1s to 1day)",
                "p.toml:15: items[6].duration: `soon` is not a duration; write e.g. 10s, 1m30s",
                "p.toml:16: items[6].background: `red` is not a colour; write #RRGGBB or #RRGGBBAA, e.g. #0d47a1",
                "p.toml:17: items[6].weekdays: `xyz` is not a weekday; use mon, tue, wed, thu, fri, sat, sun",
                "p.toml:18: items[6].hours: `9` is not a time; write HH:MM, e.g. 07:30",
                "p.toml:19: items[6].dates: `2026-02-30` is not a date; write YYYY-MM-DD, e.g. 2026-09-01",
                "p.toml:23: items[7].fit: `fit` is not used by text items; allowed here: title, body, footer, background_image",
                "p.toml:25: items[8].id: `a b` is not a valid id; use 1-64 ASCII letters, digits, '-', '_' or '.'",
                "p.toml:31: items[10].id: id `same` is already used by the item on line 27",
                format!(
                    "p.toml:35: items[11].path: `nope.png`: file not found (looked for {})",
                    std::path::absolute("nope.png").unwrap().display()
                )
                .as_str(),
                "p.toml:38: items[12].path: `notes.txt`: unsupported image type; use png, jpg, jpeg, webp",
                "p.toml:41: items[13].data: is empty",
            ]
        );
        let p = p.playlist.unwrap();
        let ids: Vec<&str> = p.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["same", "item14"]);
    }

    #[test]
    fn empty_playlist_and_bad_ticker_and_schedule() {
        let m = messages("[schedule]\npriority = 5000\nhours = \"10:00-10:00\"\n[ticker]\nmessages = [\" \"]\nspeed = 1\n");
        assert_eq!(
            m,
            vec![
                "p.toml:1: items: playlist has no items; add at least one [[items]] entry",
                "p.toml:2: schedule.priority: must be between -1000 and 1000",
                "p.toml:3: schedule.hours: `10:00-10:00` is empty; for the whole day write 00:00-24:00",
                "p.toml:4: ticker.messages: ticker has no messages",
                "p.toml:5: ticker.messages[1]: message is empty",
            ]
        );
    }

    #[test]
    fn oversized_qr_data_is_rejected() {
        let text = format!("[[items]]\nkind = \"qr\"\ndata = \"{}\"\n", "x".repeat(3000));
        assert_eq!(
            messages(&text),
            vec!["p.toml:3: items[1].data: is 3000 bytes; a QR code holds at most 2331"]
        );
    }

    #[test]
    fn video_narration_and_music_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("clip.mp4"), b"\0\0\0\x1cftypisom\0\0\x02\0isomiso2").unwrap();
        std::fs::write(dir.path().join("fake.webm"), b"<html>not found</html>").unwrap();
        std::fs::write(dir.path().join("talk.ogg"), b"OggS\0\x02\0\0\0\0\0\0").unwrap();
        std::fs::write(dir.path().join("song.mp3"), b"ID3\x04\0\0\0\0\0\0").unwrap();
        let file = dir.path().join("p.toml");
        let text = r#"
[music]
tracks = ["song.mp3", "talk.ogg"]
order = "shuffle"
volume = 30

[[items]]
kind = "video"
path = "clip.mp4"
fit = "cover"
mute = true
start = "5s"

[[items]]
kind = "video"
path = "clip.mp4"
loop = true
duration = "2m"
volume = 40

[[items]]
kind = "text"
title = "雷电防护"
narration = "talk.ogg"
duration = "narration"

[[items]]
kind = "video"
path = "fake.webm"

[[items]]
kind = "video"
path = "clip.mp4"
loop = true

[[items]]
kind = "clock"
duration = "auto"

[[items]]
kind = "clock"
duration = "narration"

[[items]]
kind = "image"
path = "clip.mp4"

[[items]]
kind = "video"
path = "clip.mp4"
volume = 150
"#;
        let parsed = parse_playlist(&file, text);
        let msgs: Vec<String> = parsed.problems.iter().map(ToString::to_string).collect();
        let p = file.display().to_string();
        assert_eq!(
            msgs,
            [
                format!("{p}:29: items[4].path: `fake.webm`: not a video file (its content is not MP4, Matroska or WebM)"),
                format!("{p}:32: items[5].duration: a looping video needs a fixed `duration` (e.g. 2m)"),
                format!("{p}:38: items[6].duration: `auto` (the clip's length) is only for video items; give a time"),
                format!("{p}:42: items[7].duration: `narration` needs the item's `narration` file"),
                format!("{p}:46: items[8].path: `clip.mp4`: unsupported image type; use png, jpg, jpeg, webp"),
                format!("{p}:51: items[9].volume: must be between 0 and 100 (percent of the master volume)"),
            ]
        );
        let pl = parsed.playlist.unwrap();
        let music = pl.music.unwrap();
        assert_eq!((music.tracks.len(), music.shuffle, music.volume), (2, true, 30));
        assert_eq!(pl.items.len(), 3);
        let ItemKind::Video(v) = &pl.items[0].kind else { panic!("{:?}", pl.items[0]) };
        assert_eq!(pl.items[0].duration, Length::Clip);
        assert_eq!((v.fit, v.mute, v.looped, v.volume, v.start), (Fit::Cover, true, false, 100, Duration::from_secs(5)));
        let ItemKind::Video(v) = &pl.items[1].kind else { panic!() };
        assert_eq!(pl.items[1].duration, Length::Fixed(Duration::from_secs(120)));
        assert_eq!((v.looped, v.volume), (true, 40));
        assert_eq!(pl.items[2].duration, Length::Narration);
        assert_eq!(pl.items[2].narration.as_deref(), Some(dir.path().join("talk.ogg").as_path()));
        // Every file is in the playlist's media, for `feed build`.
        assert_eq!(pl.media.keys().collect::<Vec<_>>(), ["clip.mp4", "song.mp3", "talk.ogg"]);
    }
}
