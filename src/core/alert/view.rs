//! What the warning layer shows, as plain data: which warning takes the
//! screen, in which colours, with which title and footer lines, whether the
//! chime sounds. The player only spawns nodes from a [`View`], so every
//! word and colour on a takeover is decided (and tested) here.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::core::alert::cap::Severity;
use crate::core::alert::policy::{AudioRef, Chime, Policy, Presentation, Shown, Treatment};
use crate::core::alert::signal::{Level, Signal};

/// A colour as sRGB bytes.
pub type Rgb = [u8; 3];

/// Grey for a warning of unknown severity with no signal.
const UNKNOWN: Rgb = [96, 104, 112];
/// Dark text on light warning colours (yellow).
const DARK_TEXT: Rgb = [20, 20, 20];
const WHITE: Rgb = [255, 255, 255];

/// The colours a warning is drawn in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colours {
    /// Its signal's colour, else one for its severity.
    pub background: Rgb,
    /// Text on that background: dark on light colours, white on the rest.
    pub text: Rgb,
}

impl Colours {
    pub fn of(s: &Shown) -> Colours {
        let background = match s.signal {
            Some(Signal { level, .. }) => level.rgb(),
            None => match s.severity {
                Severity::Extreme => Level::Red.rgb(),
                Severity::Severe => Level::Orange.rgb(),
                Severity::Moderate => Level::Yellow.rgb(),
                Severity::Minor => Level::Blue.rgb(),
                Severity::Unknown => UNKNOWN,
            },
        };
        let [r, g, b] = background;
        // Perceived brightness (ITU-R BT.601 weights).
        let light = 0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b) > 160.0;
        Colours { background, text: if light { DARK_TEXT } else { WHITE } }
    }
}

/// The icon we draw ourselves (not official artwork): a square in the
/// signal colour with the hazard's name and the colour word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icon {
    /// `暴雨`, or the first characters of the event when there is no signal.
    pub name: String,
    /// `红色`, or `预警` when there is no signal.
    pub level: String,
    /// `RAINSTORM`, when the hazard is known.
    pub english: Option<String>,
}

impl Icon {
    pub fn of(s: &Shown) -> Icon {
        let hazard = s.signal.and_then(|g| g.hazard);
        Icon {
            name: hazard.map_or_else(|| s.event.chars().take(4).collect(), |h| h.zh().to_string()),
            level: s.signal.map_or_else(|| "预警".to_string(), |g| g.level.zh().to_string()),
            english: hazard.map(|h| h.en().to_string()).filter(|e| !e.is_empty()),
        }
    }
}

/// A warning covering the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Takeover {
    /// The alert's key, for the log.
    pub key: String,
    /// The alert's own title (`暴雨红色预警`), for the log.
    pub name: String,
    pub colours: Colours,
    pub icon: Icon,
    /// The header: `〔演练〕暴雨红色预警  Ⅰ级`.
    pub title: String,
    /// Said first for an exercise or a test: it is not a real warning.
    pub not_real: Option<String>,
    pub headline: Option<String>,
    pub description: Option<String>,
    /// What to do, with its label (`防御指南：…`).
    pub instruction: Option<String>,
    /// Areas, sender and time, onset, end, and `2/3` when they take turns.
    pub footer: Vec<String>,
}

/// A warning in a band across the top of the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banner {
    pub key: String,
    pub name: String,
    pub colours: Colours,
    pub icon: Icon,
    /// `〔测试〕大风蓝色预警：headline` (the event when there is none).
    pub text: String,
}

/// Everything the warning layer shows now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// The warning covering the screen (the rotation pauses under it).
    pub takeover: Option<Takeover>,
    /// The banner; drawn only when there is no takeover.
    pub banner: Option<Banner>,
    /// Lines for the ticker, most urgent first.
    pub ticker: Vec<String>,
}

impl View {
    /// The view of `p` at `now`: takeovers take turns every `policy.cycle`,
    /// times are written in `tz`.
    pub fn new(p: &Presentation, policy: &Policy, now: DateTime<Utc>, tz: Tz) -> View {
        let takeover = p.takeover(policy, now).map(|top| {
            let index = p.all.iter().position(|s| s.key == top.key).map_or(0, |i| i + 1);
            takeover(top, index, p.takeover_count(policy), tz)
        });
        View { takeover, banner: p.banner().map(banner), ticker: p.ticker() }
    }
}

/// The chime and the audio to play after it, when a takeover not heard
/// before comes up and then every `interval`: `None` when not due now.
/// The top alert's own audio follows the chime.
pub fn chime(p: &Presentation, chime: &mut Chime, now: DateTime<Utc>, interval: Duration) -> Option<Vec<AudioRef>> {
    let keys: Vec<&str> = p.all.iter().filter(|s| s.treatment == Treatment::Takeover).map(|s| s.key.as_str()).collect();
    chime.due(&keys, now, interval).then(|| p.all.first().map(|s| s.audio.clone()).unwrap_or_default())
}

/// `index` counts from 1 in `Presentation::all`; `count` takeovers take turns.
fn takeover(s: &Shown, index: usize, count: usize, tz: Tz) -> Takeover {
    let time = |t: DateTime<Utc>| t.with_timezone(&tz).format("%m月%d日 %H:%M").to_string();
    let mut title = s.title.clone();
    if let Some(g) = s.signal {
        title = format!("{title}  {}", g.level.grade());
    }
    if let Some(m) = s.mark {
        title = format!("〔{m}〕{title}");
    }
    let mut footer = Vec::new();
    if !s.areas.is_empty() {
        footer.push(format!("区域：{}", s.areas.join("、")));
    }
    footer.push(format!("发布：{}  {}", s.sender, time(s.sent.with_timezone(&Utc))));
    // A warning is up from when it is effective; the hazard may begin later.
    if let Some(onset) = s.onset.filter(|o| *o > s.sent) {
        footer.push(format!("预计开始：{}", time(onset.with_timezone(&Utc))));
    }
    footer.push(format!("有效至：{}{}", time(s.ends), if s.expires_given { "" } else { "（未注明，按默认时长）" }));
    if count > 1 {
        footer.push(format!("{index}/{count}"));
    }
    let not_real = s.mark.map(|m| {
        let what = if m == "演练" { "演练信息，并非真实预警 (EXERCISE)" } else { "测试信息，并非真实预警 (TEST)" };
        format!("本条为{what}")
    });
    Takeover {
        key: s.key.clone(),
        name: s.title.clone(),
        colours: Colours::of(s),
        icon: Icon::of(s),
        title,
        not_real,
        headline: s.headline.clone(),
        description: s.description.clone(),
        instruction: s.instruction.as_ref().map(|i| format!("防御指南：{i}")),
        footer,
    }
}

fn banner(s: &Shown) -> Banner {
    let mark = s.mark.map(|m| format!("〔{m}〕")).unwrap_or_default();
    Banner {
        key: s.key.clone(),
        name: s.title.clone(),
        colours: Colours::of(s),
        icon: Icon::of(s),
        text: format!("{mark}{}：{}", s.title, s.headline.as_deref().unwrap_or(&s.event)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::alert::cap::{Status, Urgency};
    use crate::core::alert::signal::Hazard;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const SH: Tz = chrono_tz::Asia::Shanghai;

    fn shown(key: &str, treatment: Treatment, signal: Option<Signal>, severity: Severity) -> Shown {
        Shown {
            key: key.into(),
            identifier: key.into(),
            cap_sender: "qxt".into(),
            treatment,
            severity,
            urgency: Urgency::Immediate,
            status: Status::Actual,
            signal,
            title: "暴雨红色预警".into(),
            event: "暴雨预警事件".into(),
            headline: Some("长兴县气象台发布暴雨红色预警".into()),
            description: Some("预计未来3小时降雨量将达100毫米以上。".into()),
            instruction: Some("停止户外活动。".into()),
            areas: vec!["长兴县".into(), "安吉县".into()],
            sender: "长兴县气象台".into(),
            sent: DateTime::parse_from_rfc3339("2026-07-01T08:00:00+08:00").unwrap(),
            onset: None,
            ends: at("2026-07-01T20:00:00+08:00"),
            expires_given: true,
            mark: None,
            audio: vec![],
            source: "feed".into(),
            over_http: false,
        }
    }

    fn red() -> Option<Signal> {
        Some(Signal { hazard: Some(Hazard::Rainstorm), level: Level::Red })
    }

    #[test]
    fn colours_follow_the_signal_else_the_severity_with_readable_text() {
        let s = shown("a", Treatment::Takeover, red(), Severity::Minor);
        assert_eq!(Colours::of(&s), Colours { background: Level::Red.rgb(), text: WHITE });
        let yellow = Some(Signal { hazard: None, level: Level::Yellow });
        let s = shown("a", Treatment::Takeover, yellow, Severity::Extreme);
        assert_eq!(Colours::of(&s), Colours { background: Level::Yellow.rgb(), text: DARK_TEXT }, "dark text on yellow");
        for (severity, rgb) in [
            (Severity::Extreme, Level::Red.rgb()),
            (Severity::Severe, Level::Orange.rgb()),
            (Severity::Moderate, Level::Yellow.rgb()),
            (Severity::Minor, Level::Blue.rgb()),
            (Severity::Unknown, UNKNOWN),
        ] {
            assert_eq!(Colours::of(&shown("a", Treatment::Banner, None, severity)).background, rgb, "{severity:?}");
        }
    }

    #[test]
    fn the_icon_names_the_hazard_or_the_event() {
        let s = shown("a", Treatment::Takeover, red(), Severity::Extreme);
        assert_eq!(Icon::of(&s), Icon { name: "暴雨".into(), level: "红色".into(), english: Some("RAINSTORM".into()) });
        let s = shown("a", Treatment::Takeover, None, Severity::Extreme);
        assert_eq!(Icon::of(&s), Icon { name: "暴雨预警".into(), level: "预警".into(), english: None });
    }

    #[test]
    fn a_takeover_has_its_title_body_and_footer_in_local_time() {
        let mut s = shown("a", Treatment::Takeover, red(), Severity::Extreme);
        s.onset = Some(DateTime::parse_from_rfc3339("2026-07-01T09:30:00+08:00").unwrap());
        let p = Presentation { all: vec![s] };
        let v = View::new(&p, &Policy::default(), at("2026-07-01T12:00:00+08:00"), SH);
        let t = v.takeover.expect("a takeover");
        assert_eq!(t.title, format!("暴雨红色预警  {}", Level::Red.grade()));
        assert_eq!(t.not_real, None);
        assert_eq!(t.instruction.as_deref(), Some("防御指南：停止户外活动。"));
        assert_eq!(t.footer, [
            "区域：长兴县、安吉县",
            "发布：长兴县气象台  07月01日 08:00",
            "预计开始：07月01日 09:30",
            "有效至：07月01日 20:00",
        ]);
        // The same instant written for a screen in Berlin.
        let v = View::new(&p, &Policy::default(), at("2026-07-01T12:00:00+08:00"), chrono_tz::Europe::Berlin);
        assert_eq!(v.takeover.unwrap().footer[1], "发布：长兴县气象台  07月01日 02:00");
    }

    #[test]
    fn an_exercise_says_so_and_a_default_end_is_marked() {
        let mut s = shown("a", Treatment::Takeover, red(), Severity::Extreme);
        s.mark = Some("演练");
        s.expires_given = false;
        s.areas.clear();
        let v = View::new(&Presentation { all: vec![s] }, &Policy::default(), at("2026-07-01T12:00:00+08:00"), SH);
        let t = v.takeover.unwrap();
        assert!(t.title.starts_with("〔演练〕暴雨红色预警"), "{}", t.title);
        assert_eq!(t.not_real.as_deref(), Some("本条为演练信息，并非真实预警 (EXERCISE)"));
        assert_eq!(t.footer, ["发布：长兴县气象台  07月01日 08:00", "有效至：07月01日 20:00（未注明，按默认时长）"]);
        let mut s = shown("b", Treatment::Banner, None, Severity::Moderate);
        s.mark = Some("测试");
        s.headline = None;
        let v = View::new(&Presentation { all: vec![s] }, &Policy::default(), at("2026-07-01T12:00:00+08:00"), SH);
        assert_eq!(v.takeover, None);
        assert_eq!(v.banner.unwrap().text, "〔测试〕暴雨红色预警：暴雨预警事件");
    }

    #[test]
    fn takeovers_take_turns_and_say_which_of_how_many() {
        let p = Presentation {
            all: vec![
                shown("first", Treatment::Takeover, red(), Severity::Extreme),
                shown("second", Treatment::Takeover, red(), Severity::Extreme),
                shown("banner", Treatment::Banner, None, Severity::Moderate),
                shown("ticker", Treatment::Ticker, None, Severity::Minor),
            ],
        };
        let policy = Policy::default();
        let now = at("2026-07-01T12:00:00+08:00");
        let step = policy.cycle;
        let a = View::new(&p, &policy, now, SH);
        let b = View::new(&p, &policy, now + step, SH);
        let (a, b) = (a.takeover.unwrap(), b.takeover.unwrap());
        assert_ne!(a.key, b.key);
        let page = |t: &Takeover| t.footer.last().cloned().unwrap();
        let mut pages = [page(&a), page(&b)];
        pages.sort();
        assert_eq!(pages, ["1/2", "2/2"]);
        let v = View::new(&p, &policy, now, SH);
        assert_eq!(v.banner.map(|b| b.key).as_deref(), Some("banner"));
        assert_eq!(v.ticker.len(), 2, "banner and ticker alerts are in the ticker: {:?}", v.ticker);
    }

    #[test]
    fn on_screen_are_the_takeovers_in_turn_else_the_banner_and_the_ticker() {
        let (banner, ticker) = (shown("banner", Treatment::Banner, None, Severity::Moderate), shown("ticker", Treatment::Ticker, None, Severity::Minor));
        let policy = Policy { takeover_max: 2, ..Policy::default() };
        let keys = |p: &Presentation| p.on_screen(&policy).iter().map(|s| s.key.clone()).collect::<Vec<_>>();
        let mut p = Presentation { all: vec![banner, ticker] };
        assert_eq!(keys(&p), ["banner", "ticker"]);
        for k in ["c", "b", "a"] {
            p.all.insert(0, shown(k, Treatment::Takeover, red(), Severity::Extreme));
        }
        // The third takeover waits for a turn; the takeover covers the rest.
        assert_eq!(keys(&p), ["a", "b"]);
    }

    #[test]
    fn the_chime_sounds_for_a_new_takeover_with_the_top_alerts_audio() {
        let mut s = shown("a", Treatment::Takeover, red(), Severity::Extreme);
        let audio = AudioRef { mime_type: "audio/ogg".into(), uri: Some("https://x/a.ogg".into()), deref: None, digest: None };
        s.audio = vec![audio.clone()];
        let p = Presentation { all: vec![s] };
        let mut c = Chime::default();
        let now = at("2026-07-01T12:00:00+08:00");
        let every = Duration::minutes(10);
        assert_eq!(chime(&p, &mut c, now, every), Some(vec![audio]));
        assert_eq!(chime(&p, &mut c, now + Duration::minutes(1), every), None, "heard already");
        assert!(chime(&p, &mut c, now + Duration::minutes(11), every).is_some(), "again after the interval");
        let quiet = Presentation { all: vec![shown("b", Treatment::Banner, None, Severity::Moderate)] };
        assert_eq!(chime(&quiet, &mut c, now, every), None, "no chime for a banner");
    }
}
