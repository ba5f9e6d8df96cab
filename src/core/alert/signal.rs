//! Chinese meteorological warning signals (气象灾害预警信号, CMA Order 16 and
//! GB/T 27962): which hazard and which colour a message is, so the screen
//! shows the colour people know.
//!
//! CMA's CAP carries the colour only in text (`雷电黄色预警[Ⅲ级/较重]`), so the
//! colour is read from the Chinese event or headline first, then from the
//! level suffix, then from a numeric `TTLL` code (the 01 台风 … 14 道路结冰 ×
//! 01 蓝 … 04 红 table used by 12379 data users), and CAP `<severity>` is only
//! the fallback. Any colour is accepted for any hazard: provinces issue
//! levels the national table does not list.

use serde::Serialize;

use super::cap::{Alert, Info, MsgType, ResponseType, Severity};

// What ends a warning is read from its text as much as from CAP's fields,
// so it is decided here, above the CAP model (which knows nothing of
// Chinese signals).
impl Info {
    /// Whether this block declares the end of what it refers to:
    /// `responseType` AllClear, or a Chinese lift (`解除…预警`, see [`lifted`]).
    pub fn is_all_clear(&self) -> bool {
        self.response_types.contains(&ResponseType::AllClear) || is_lift(self)
    }
}

impl Alert {
    /// Whether the message only ends what it references (a Cancel, or an
    /// all-clear in every block) rather than being a warning itself.
    pub fn ends_others(&self) -> bool {
        self.msg_type == MsgType::Cancel || (!self.infos.is_empty() && self.infos.iter().all(Info::is_all_clear))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Blue,
    Yellow,
    Orange,
    Red,
}

impl Level {
    pub fn zh(self) -> &'static str {
        match self {
            Level::Blue => "蓝色",
            Level::Yellow => "黄色",
            Level::Orange => "橙色",
            Level::Red => "红色",
        }
    }

    /// Ⅳ级 一般 … Ⅰ级 特别严重.
    pub fn grade(self) -> &'static str {
        match self {
            Level::Blue => "Ⅳ级/一般",
            Level::Yellow => "Ⅲ级/较重",
            Level::Orange => "Ⅱ级/严重",
            Level::Red => "Ⅰ级/特别严重",
        }
    }

    /// The CAP severity a signal of this colour stands for (黄 = Moderate
    /// as CMA sends it; the others by the WMO/MeteoAlarm convention).
    pub fn severity(self) -> Severity {
        match self {
            Level::Blue => Severity::Minor,
            Level::Yellow => Severity::Moderate,
            Level::Orange => Severity::Severe,
            Level::Red => Severity::Extreme,
        }
    }

    /// Display colour (sRGB). Yellow is drawn with dark text on it.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Level::Blue => [30, 80, 205],
            Level::Yellow => [250, 220, 0],
            Level::Orange => [240, 140, 20],
            Level::Red => [215, 0, 15],
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "blue" | "蓝" | "蓝色" | "藍" | "藍色" => Some(Level::Blue),
            "yellow" | "黄" | "黄色" | "黃" | "黃色" => Some(Level::Yellow),
            "orange" | "橙" | "橙色" => Some(Level::Orange),
            "red" | "红" | "红色" | "紅" | "紅色" => Some(Level::Red),
            _ => None,
        }
    }

    fn from_code(n: u32) -> Option<Level> {
        [Level::Blue, Level::Yellow, Level::Orange, Level::Red].get(n.checked_sub(1)? as usize).copied()
    }
}

/// The hazards with a national signal, then the common provincial ones.
/// Order matters when matching text: longer names that contain shorter
/// ones (雷雨大风 ⊃ 大风, 沙尘暴 ⊃ 暴) come first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hazard {
    Typhoon,
    Rainstorm,
    Snowstorm,
    ColdWave,
    Gale,
    Sandstorm,
    HeatWave,
    Drought,
    Lightning,
    Hail,
    Frost,
    HeavyFog,
    Haze,
    RoadIcing,
    ThunderstormGale,
    ForestFire,
}

impl Hazard {
    /// Matching order (see the type's doc).
    pub(crate) const MATCH_ORDER: &[Hazard] = &[
        Hazard::ThunderstormGale,
        Hazard::Sandstorm,
        Hazard::RoadIcing,
        Hazard::ForestFire,
        Hazard::Typhoon,
        Hazard::Rainstorm,
        Hazard::Snowstorm,
        Hazard::ColdWave,
        Hazard::Gale,
        Hazard::HeatWave,
        Hazard::Drought,
        Hazard::Lightning,
        Hazard::Hail,
        Hazard::Frost,
        Hazard::HeavyFog,
        Hazard::Haze,
    ];

    pub fn zh(self) -> &'static str {
        match self {
            Hazard::Typhoon => "台风",
            Hazard::Rainstorm => "暴雨",
            Hazard::Snowstorm => "暴雪",
            Hazard::ColdWave => "寒潮",
            Hazard::Gale => "大风",
            Hazard::Sandstorm => "沙尘暴",
            Hazard::HeatWave => "高温",
            Hazard::Drought => "干旱",
            Hazard::Lightning => "雷电",
            Hazard::Hail => "冰雹",
            Hazard::Frost => "霜冻",
            Hazard::HeavyFog => "大雾",
            Hazard::Haze => "霾",
            Hazard::RoadIcing => "道路结冰",
            Hazard::ThunderstormGale => "雷雨大风",
            Hazard::ForestFire => "森林火险",
        }
    }

    pub fn en(self) -> &'static str {
        match self {
            Hazard::Typhoon => "TYPHOON",
            Hazard::Rainstorm => "RAINSTORM",
            Hazard::Snowstorm => "SNOWSTORM",
            Hazard::ColdWave => "COLD WAVE",
            Hazard::Gale => "GALE",
            Hazard::Sandstorm => "SAND STORM",
            Hazard::HeatWave => "HEAT WAVE",
            Hazard::Drought => "DROUGHT",
            Hazard::Lightning => "LIGHTNING",
            Hazard::Hail => "HAIL",
            Hazard::Frost => "FROST",
            Hazard::HeavyFog => "HEAVY FOG",
            Hazard::Haze => "HAZE",
            Hazard::RoadIcing => "ROAD ICING",
            Hazard::ThunderstormGale => "THUNDERSTORM GALE",
            Hazard::ForestFire => "FOREST FIRE",
        }
    }

    /// The `TT` of the `TTLL` code.
    fn from_code(n: u32) -> Option<Hazard> {
        use Hazard::*;
        Some(match n {
            1 => Typhoon,
            2 => Rainstorm,
            3 => Snowstorm,
            4 => ColdWave,
            5 => Gale,
            6 => Sandstorm,
            7 => HeatWave,
            8 => Drought,
            9 => Lightning,
            10 => Hail,
            11 => Frost,
            12 => HeavyFog,
            13 => Haze,
            14 => RoadIcing,
            93 => ThunderstormGale,
            94 => ForestFire,
            _ => return None,
        })
    }

    /// The hazard named in Chinese text, if any.
    pub fn in_text(text: &str) -> Option<Hazard> {
        // "雷电" must not be read out of "雷雨大风"; MATCH_ORDER handles
        // containment, and 霾 alone is only taken when nothing longer matched.
        Self::MATCH_ORDER.iter().copied().find(|h| text.contains(h.zh()))
    }

    pub fn parse(s: &str) -> Option<Hazard> {
        let t = s.trim();
        Self::MATCH_ORDER
            .iter()
            .copied()
            .find(|h| h.zh() == t || h.en().eq_ignore_ascii_case(t) || format!("{h:?}").eq_ignore_ascii_case(t))
    }
}

/// A recognised warning signal: the hazard (when it is one of ours) and colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Signal {
    pub hazard: Option<Hazard>,
    pub level: Level,
}

impl Signal {
    /// `暴雨红色预警` (or `红色预警` for a hazard we do not know).
    pub fn name_zh(&self, event: &str) -> String {
        let what = match self.hazard {
            Some(h) => h.zh(),
            None => event.trim_end_matches("预警"),
        };
        let what = what.trim_end_matches(self.level.zh());
        format!("{what}{}预警", self.level.zh())
    }
}

/// Reads the signal of an alert from all its info blocks (the Chinese block
/// carries the colour even when the screen shows another language).
pub fn of_alert(alert: &Alert) -> Option<Signal> {
    alert.infos.iter().find_map(of_info).or_else(|| {
        // A colour without a hazard we know: still a coloured warning.
        alert.infos.iter().filter(|i| !is_lift(i)).find_map(|i| level_in_text(&text_of(i)).or_else(|| colour_parameter(i)))
            .map(|level| Signal { hazard: None, level })
    })
}

fn text_of(info: &Info) -> String {
    format!("{} {}", info.event, info.headline.as_deref().unwrap_or_default())
}

/// A lift a block's own text declares (`解除暴雨红色预警`): which signal
/// it lifts, as far as the text names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lift {
    pub hazard: Option<Hazard>,
    pub level: Option<Level>,
}

/// The longest run after `解除` that can still name one signal.
const LIFT_REACH: usize = 24;

/// Byte ranges of the lift phrases in `text`: `解除` up to the next `预警`
/// (and a `信号` after it) within one clause. `解除` elsewhere (`解除隔离`)
/// lifts nothing.
fn lift_spans(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("解除") {
        let start = from + i;
        let after = start + "解除".len();
        let clause_end = text[after..]
            .char_indices()
            .take(LIFT_REACH)
            .find(|(_, c)| "，。；;,!！?？\n".contains(*c))
            .map_or_else(|| text[after..].char_indices().nth(LIFT_REACH).map_or(text.len(), |(j, _)| after + j), |(j, _)| after + j);
        match text[after..clause_end].find("预警") {
            Some(j) => {
                let mut end = after + j + "预警".len();
                if text[end..].starts_with("信号") {
                    end += "信号".len();
                }
                out.push((start, end));
                from = end;
            }
            None => from = after,
        }
    }
    out
}

/// `text` without its lift phrases: what it issues.
fn without_lifts(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in lift_spans(text) {
        out.push_str(&text[at..start]);
        out.push(' ');
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

/// What the block lifts, when its headline (or event) lifts a signal and
/// does not also issue one: `发布暴雨红色预警，解除暴雨黄色预警` issues red,
/// it is no all-clear.
///
/// ```
/// use estation::core::alert::signal::{lifted, Hazard, Level};
/// # let mut info = estation::core::alert::cap::parse(std::path::Path::new("t"), include_bytes!("../../../tests/data/cap/zh-allclear-update.xml")).unwrap().alert.infos.remove(0);
/// info.headline = Some("长兴县气象台解除暴雨红色预警".into());
/// assert_eq!(lifted(&info).map(|l| (l.hazard, l.level)), Some((Some(Hazard::Rainstorm), Some(Level::Red))));
/// info.headline = Some("长兴县气象台发布暴雨红色预警，解除暴雨黄色预警".into());
/// assert_eq!(lifted(&info), None);
/// ```
pub fn lifted(info: &Info) -> Option<Lift> {
    let headline = info.headline.as_deref().unwrap_or_default();
    let (text, spans) = match lift_spans(headline) {
        s if !s.is_empty() => (headline, s),
        _ => (info.event.as_str(), lift_spans(&info.event)),
    };
    let (start, end) = *spans.first()?;
    let rest = without_lifts(headline);
    if rest.contains("预警") || rest.contains("信号") || rest.contains("警报") {
        return None;
    }
    let phrase = &text[start..end];
    Some(Lift { hazard: Hazard::in_text(phrase), level: level_in_text(phrase) })
}

/// Whether the block lifts a warning rather than being one (see [`lifted`]).
pub fn is_lift(info: &Info) -> bool {
    lifted(info).is_some()
}

fn of_info(info: &Info) -> Option<Signal> {
    if is_lift(info) {
        return None;
    }
    if let Some(s) = code_signal(info) {
        return Some(s);
    }
    // What the block lifts on the side (`…，解除暴雨黄色预警`) is not its colour.
    let headline = without_lifts(info.headline.as_deref().unwrap_or_default());
    let text = format!("{} {headline}", info.event);
    let level = level_in_text(&text).or_else(|| colour_parameter(info))?;
    // The event names the hazard; in a headline only the name right before
    // the colour counts (`中小河流洪水蓝色预警（受暴雨影响）` is not 暴雨).
    let hazard = Hazard::in_text(&info.event).or_else(|| {
        Hazard::MATCH_ORDER.iter().copied().find(|h| {
            COLOUR_WORDS.iter().filter(|(_, l)| *l == level).any(|(w, _)| headline.contains(&format!("{}{w}", h.zh())))
        })
    })?;
    Some(Signal { hazard: Some(hazard), level })
}

/// Colour words, Simplified and Traditional.
const COLOUR_WORDS: &[(&str, Level)] = &[
    ("红色", Level::Red),
    ("紅色", Level::Red),
    ("橙色", Level::Orange),
    ("黄色", Level::Yellow),
    ("黃色", Level::Yellow),
    ("蓝色", Level::Blue),
    ("藍色", Level::Blue),
];

/// The level a text states: the `[Ⅱ级/严重]` grade when there is one, else
/// the last colour word (`由橙色预警降级为黄色预警` is yellow).
fn level_in_text(text: &str) -> Option<Level> {
    // Longest marks first: "III级" contains "II级" and "I级".
    for (mark, level) in [
        ("Ⅳ级", Level::Blue),
        ("Ⅲ级", Level::Yellow),
        ("Ⅱ级", Level::Orange),
        ("Ⅰ级", Level::Red),
        ("IV级", Level::Blue),
        ("III级", Level::Yellow),
        ("II级", Level::Orange),
        ("I级", Level::Red),
    ] {
        if text.contains(mark) {
            return Some(level);
        }
    }
    COLOUR_WORDS.iter().filter_map(|(w, l)| text.rfind(w).map(|at| (at, *l))).max_by_key(|(at, _)| *at).map(|(_, l)| l)
}

/// A colour given as a parameter (Taiwan's `alert_color` = 紅色, or ours).
fn colour_parameter(info: &Info) -> Option<Level> {
    info.parameters.iter().find_map(|p| {
        let n = p.name.to_ascii_lowercase();
        (n.ends_with("alert_color") || n.ends_with("colour") || n.ends_with("color")).then(|| Level::parse(&p.value)).flatten()
    })
}

/// A `TTLL` code in an eventCode or parameter whose name says it is a
/// warning-signal code (a bare four-digit value could mean anything).
fn code_signal(info: &Info) -> Option<Signal> {
    info.event_codes.iter().chain(&info.parameters).find_map(|nv| {
        let name = nv.name.to_ascii_lowercase();
        let named = ["signal", "warning", "cma", "预警", "信号"].iter().any(|k| name.contains(k));
        let v = nv.value.trim();
        if !named || v.len() != 4 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let hazard = Hazard::from_code(v[..2].parse().ok()?)?;
        let level = Level::from_code(v[2..].parse().ok()?)?;
        Some(Signal { hazard: Some(hazard), level })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(event: &str, headline: &str) -> Info {
        Info {
            language: "zh-CN".into(),
            categories: vec![],
            event: event.into(),
            response_types: vec![],
            urgency: super::super::cap::Urgency::Unknown,
            severity: Severity::Unknown,
            certainty: super::super::cap::Certainty::Unknown,
            audience: None,
            event_codes: vec![],
            effective: None,
            onset: None,
            expires: None,
            sender_name: None,
            headline: Some(headline.into()).filter(|h: &String| !h.is_empty()),
            description: None,
            instruction: None,
            web: None,
            contact: None,
            parameters: vec![],
            resources: vec![],
            areas: vec![],
        }
    }

    #[test]
    fn reads_hazard_and_colour_from_chinese_text() {
        let s = of_info(&info("雷电", "保定市气象台更新雷电黄色预警[Ⅲ级/较重]")).unwrap();
        assert_eq!(s, Signal { hazard: Some(Hazard::Lightning), level: Level::Yellow });
        let s = of_info(&info("暴雨红色预警", "")).unwrap();
        assert_eq!(s, Signal { hazard: Some(Hazard::Rainstorm), level: Level::Red });
        let s = of_info(&info("雷雨大风", "发布雷雨大风橙色预警")).unwrap();
        assert_eq!(s.hazard, Some(Hazard::ThunderstormGale), "not 大风");
        let s = of_info(&info("沙尘暴", "沙尘暴预警[Ⅱ级/严重]")).unwrap();
        assert_eq!(s, Signal { hazard: Some(Hazard::Sandstorm), level: Level::Orange });
        assert_eq!(of_info(&info("道路结冰", "道路结冰预警")), None, "no colour: no signal");
        assert_eq!(of_info(&info("thunder", "Thunder yellow warning")), None);
    }

    #[test]
    fn grades_downgrades_lifts_and_other_hazards_in_the_headline() {
        let s = of_info(&info("暴雨", "某县气象台将暴雨橙色预警降级为黄色预警")).unwrap();
        assert_eq!(s.level, Level::Yellow, "the last colour is the one in force");
        let s = of_info(&info("暴雨", "暴雨橙色预警降级[Ⅲ级/较重]")).unwrap();
        assert_eq!(s.level, Level::Yellow, "the grade decides");
        assert_eq!(of_info(&info("暴雨", "长兴县气象台解除暴雨红色预警")), None, "a lift is not a warning");
        let both = info("暴雨", "长兴县气象台发布暴雨红色预警，解除暴雨黄色预警");
        assert_eq!(of_info(&both), Some(Signal { hazard: Some(Hazard::Rainstorm), level: Level::Red }), "issues red; the yellow it lifts is not its colour");
        let flood = info("中小河流洪水", "中小河流洪水蓝色预警（受暴雨影响）");
        assert_eq!(of_info(&flood), None, "暴雨 is not the hazard here");
        let s = of_info(&info("颱風", "颱風紅色警報")).map(|s| s.level);
        assert_eq!(s, None, "no hazard we know in that text");
        let mut tw = info("豪雨", "豪雨特報");
        tw.parameters.push(super::super::cap::NameValue { name: "alert_color".into(), value: "紅色".into() });
        assert_eq!(colour_parameter(&tw), Some(Level::Red));
    }

    #[test]
    fn a_block_is_an_all_clear_only_when_its_own_text_lifts_a_signal() {
        let lift = |h: &str| lifted(&info("暴雨", h)).map(|l| (l.hazard, l.level));
        assert_eq!(lift("长兴县气象台解除暴雨红色预警"), Some((Some(Hazard::Rainstorm), Some(Level::Red))));
        assert_eq!(lift("长兴县气象台解除暴雨红色预警信号"), Some((Some(Hazard::Rainstorm), Some(Level::Red))));
        assert_eq!(lift("解除大风蓝色预警"), Some((Some(Hazard::Gale), Some(Level::Blue))), "the lifted hazard, not the event");
        assert_eq!(lift("长兴县气象台发布暴雨红色预警，解除暴雨黄色预警"), None, "it also issues a warning");
        assert_eq!(lift("长兴县气象台发布暴雨红色预警，请勿解除防范"), None, "解除 without a signal lifts nothing");
        assert_eq!(lift("暴雨红色预警：解除警戒前请勿外出"), None);
        assert_eq!(lift("某县气象台将暴雨橙色预警降级为黄色预警"), None);
        assert!(lifted(&info("解除暴雨红色预警", "")).is_some(), "a lift named in the event alone");
    }

    #[test]
    fn reads_ttll_codes_only_under_a_signal_name() {
        let mut i = info("Heavy rain", "");
        i.event_codes.push(super::super::cap::NameValue { name: "CMA-warning-code".into(), value: "0204".into() });
        assert_eq!(of_info(&i), Some(Signal { hazard: Some(Hazard::Rainstorm), level: Level::Red }));
        i.event_codes[0].name = "SAME".into();
        assert_eq!(of_info(&i), None);
    }

    #[test]
    fn names_and_severities() {
        let s = Signal { hazard: Some(Hazard::Rainstorm), level: Level::Red };
        assert_eq!(s.name_zh("暴雨"), "暴雨红色预警");
        assert_eq!(Signal { hazard: None, level: Level::Blue }.name_zh("山洪灾害预警"), "山洪灾害蓝色预警");
        assert_eq!(Level::Yellow.severity(), Severity::Moderate);
        assert_eq!(Hazard::parse("暴雨"), Some(Hazard::Rainstorm));
        assert_eq!(Hazard::parse("heat wave"), Some(Hazard::HeatWave));
        assert_eq!(Level::parse("orange"), Some(Level::Orange));
    }
}
