//! Push: the topics a kiosk listens on and a publisher sends to, and the
//! notice that travels on them.
//!
//! A notice says only that something new is there to fetch (which document,
//! its version and digest). It never changes what is shown: the kiosk syncs,
//! and the sync trusts only what the feed key signed. So a forged notice can
//! at most cause one extra fetch, and [`notice_wait`] spaces those out.
//!
//! ```text
//! PREFIX/notice/all                 every screen of the feed (a feed build; a
//!                                   warning with no area code a screen can match)
//! PREFIX/notice/region/CODE         a warning for an area: CODE is the area
//!                                   code's meaningful prefix (33, 3305, 330522,
//!                                   330522100), so 330500 reaches 330522
//! PREFIX/command/screen/ID          a signed command to one screen
//! PREFIX/command/region/CODE        a signed command to a region's screens
//! ```

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::core::alert::cap::{Alert, MsgType};
use crate::core::alert::target::code_prefix;
use crate::core::feed::Digest;

/// The topic prefix when the config names none.
pub const DEFAULT_PREFIX: &str = "estation";
/// A notice larger than this is not one (a real one is about 150 bytes).
pub const MAX_NOTICE_BYTES: usize = 1024;
/// The format written in every notice.
pub const NOTICE_FORMAT: &str = "estation-notice/1";
/// The shortest time between two syncs that notices start: a flood of
/// (forged or repeated) notices costs a kiosk one conditional GET per gap.
pub const NOTICE_GAP: Duration = Duration::from_secs(3);

/// The lengths of an area code's levels: province, city, county, township,
/// village (GB/T 2260 and its 9- and 12-digit extensions).
const LEVELS: [usize; 5] = [2, 4, 6, 9, 12];

/// "Something new is there to fetch."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notice {
    pub format: String,
    /// The feed document that changed (`manifest.json`).
    pub document: String,
    pub version: u64,
    /// The digest of the document's bytes.
    pub sha256: Digest,
}

impl Notice {
    pub fn new(document: &str, version: u64, bytes: &[u8]) -> Notice {
        Notice { format: NOTICE_FORMAT.into(), document: document.into(), version, sha256: Digest::of(bytes) }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising a plain struct cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a notice, refusing anything too large or not quite one.
    pub fn parse(bytes: &[u8]) -> Result<Notice, NoticeError> {
        if bytes.len() > MAX_NOTICE_BYTES {
            return Err(NoticeError::TooLarge(bytes.len()));
        }
        let n: Notice = serde_json::from_slice(bytes).map_err(|e| NoticeError::Syntax(e.to_string()))?;
        if n.format != NOTICE_FORMAT {
            return Err(NoticeError::Format(n.format.chars().take(40).collect()));
        }
        Ok(n)
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NoticeError {
    #[error("{0} bytes; a notice is at most {MAX_NOTICE_BYTES}")]
    TooLarge(usize),
    #[error("not a notice: {0}")]
    Syntax(String),
    #[error("format `{0}` is not one this kiosk reads (expected {NOTICE_FORMAT})")]
    Format(String),
}

/// The topic names of one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    /// `prefix` must be a topic level path without wildcards (checked by
    /// the config: [`valid_prefix`]).
    pub fn new(prefix: &str) -> Topics {
        Topics { prefix: prefix.trim_end_matches('/').to_string() }
    }

    pub fn all(&self) -> String {
        format!("{}/notice/all", self.prefix)
    }

    pub fn region(&self, code_prefix: &str) -> String {
        format!("{}/notice/region/{code_prefix}", self.prefix)
    }

    pub fn command_to_screen(&self, id: &str) -> String {
        format!("{}/command/screen/{id}", self.prefix)
    }

    pub fn command_to_region(&self, code_prefix: &str) -> String {
        format!("{}/command/region/{code_prefix}", self.prefix)
    }

    /// Whether `topic` is one of this prefix's command topics.
    pub fn is_command(&self, topic: &str) -> bool {
        topic.strip_prefix(&self.prefix).is_some_and(|rest| rest.starts_with("/command/"))
    }

    /// What a screen subscribes to: every notice for the whole feed and for
    /// each level of its region, and the commands to it and to those levels.
    pub fn for_screen(&self, screen_id: &str, region: Option<&str>) -> Vec<String> {
        let levels = region.map(region_levels).unwrap_or_default();
        let mut out = vec![self.all()];
        out.extend(levels.iter().map(|l| self.region(l)));
        out.push(self.command_to_screen(screen_id));
        out.extend(levels.iter().map(|l| self.command_to_region(l)));
        out
    }

    /// Where the notice of a published warning goes: the region topic of
    /// each area code it names. A message a screen could match by other
    /// means (a polygon, a circle, no area), or one that updates or cancels
    /// others (whose areas may differ), goes to every screen: a notice sent
    /// too wide costs a fetch, one sent too narrow hides a warning.
    pub fn for_alert(&self, alert: &Alert) -> Vec<String> {
        if alert.msg_type != MsgType::Alert || alert.infos.is_empty() {
            return vec![self.all()];
        }
        let mut out = Vec::new();
        for info in &alert.infos {
            if info.areas.is_empty() {
                return vec![self.all()];
            }
            for area in &info.areas {
                let codes: Vec<&str> = area.geocodes.iter().filter_map(|g| code_prefix(&g.value)).collect();
                if codes.is_empty() || !area.polygons.is_empty() || !area.circles.is_empty() {
                    return vec![self.all()];
                }
                out.extend(codes.into_iter().map(|c| self.region(c)));
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// The levels of an area code that a screen there belongs to, widest first:
/// `330522` → `33`, `3305`, `330522`. A code that is not one gives none.
pub fn region_levels(code: &str) -> Vec<String> {
    let Some(mine) = code_prefix(code) else { return vec![] };
    LEVELS.iter().filter(|&&n| n <= mine.len()).map(|&n| mine[..n].to_string()).collect()
}

/// Whether `prefix` can start topic names: levels of letters, digits, '-',
/// '_' and '.', no wildcards, no empty level.
pub fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty() && prefix.len() <= 64 && prefix.split('/').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
}

/// How long to wait before the sync a notice asks for, given when the last
/// sync that a notice started began: none when that was at least
/// [`NOTICE_GAP`] ago, else the rest of the gap. A notice is never dropped,
/// only held back.
pub fn notice_wait(last_nudged: Option<Instant>, now: Instant) -> Duration {
    last_nudged.map_or(Duration::ZERO, |last| (last + NOTICE_GAP).saturating_duration_since(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(xml_areas: &str, msg_type: &str) -> Alert {
        let refs = if msg_type == "Alert" { String::new() } else { "<references>w@x,old,2026-12-01T08:00:00+08:00</references>".into() };
        let xml = format!(
            r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>id1</identifier><sender>w@x</sender><sent>2026-12-01T09:00:00+08:00</sent><status>Actual</status><msgType>{msg_type}</msgType><scope>Public</scope>{refs}
<info><category>Met</category><event>暴雨</event><urgency>Immediate</urgency><severity>Severe</severity><certainty>Likely</certainty><headline>暴雨红色预警</headline>{xml_areas}</info></alert>"#
        );
        crate::core::alert::cap::parse(std::path::Path::new("t.xml"), xml.as_bytes()).expect("a valid alert").alert
    }

    fn area(codes: &[&str], polygon: bool) -> String {
        let mut s = String::from("<area><areaDesc>x</areaDesc>");
        if polygon {
            s.push_str("<polygon>30,119 30,120 31,120 30,119</polygon>");
        }
        for c in codes {
            s.push_str(&format!("<geocode><valueName>行政区划代码</valueName><value>{c}</value></geocode>"));
        }
        s.push_str("</area>");
        s
    }

    #[test]
    fn a_screen_listens_to_every_level_of_its_region() {
        let t = Topics::new("estation/");
        assert_eq!(region_levels("330522"), ["33", "3305", "330522"]);
        assert_eq!(region_levels("330500"), ["33", "3305"]);
        assert_eq!(region_levels("330522100000"), ["33", "3305", "330522", "330522100"]);
        assert!(region_levels("33052").is_empty() && region_levels("abc").is_empty() && region_levels("000000").is_empty());
        assert_eq!(
            t.for_screen("kiosk-1", Some("330522")),
            [
                "estation/notice/all",
                "estation/notice/region/33",
                "estation/notice/region/3305",
                "estation/notice/region/330522",
                "estation/command/screen/kiosk-1",
                "estation/command/region/33",
                "estation/command/region/3305",
                "estation/command/region/330522",
            ]
        );
        assert_eq!(t.for_screen("k", None), ["estation/notice/all", "estation/command/screen/k"]);
        assert!(t.is_command("estation/command/screen/k") && !t.is_command("estation/notice/all") && !t.is_command("other/command/screen/k"));
    }

    /// The city's warning (330500) reaches a county's screen (330522),
    /// whose topics include the city's level.
    #[test]
    fn a_warning_goes_to_its_areas_and_wider_when_in_doubt() {
        let t = Topics::new("estation");
        let city = t.for_alert(&alert(&area(&["330500"], false), "Alert"));
        assert_eq!(city, ["estation/notice/region/3305"]);
        assert!(t.for_screen("k", Some("330522")).contains(&city[0]));
        assert!(!t.for_screen("k", Some("330100")).contains(&city[0]));
        let two = t.for_alert(&alert(&(area(&["330522", "330523"], false) + &area(&["330522"], false)), "Alert"));
        assert_eq!(two, ["estation/notice/region/330522", "estation/notice/region/330523"]);
        // Shapes, no area, no usable code, updates and cancels: everyone.
        assert_eq!(t.for_alert(&alert(&area(&["330522"], true), "Alert")), ["estation/notice/all"]);
        assert_eq!(t.for_alert(&alert("", "Alert")), ["estation/notice/all"]);
        assert_eq!(t.for_alert(&alert(&area(&["33x"], false), "Alert")), ["estation/notice/all"]);
        assert_eq!(t.for_alert(&alert(&area(&["330522"], false), "Update")), ["estation/notice/all"]);
        assert_eq!(t.for_alert(&alert(&area(&["330522"], false), "Cancel")), ["estation/notice/all"]);
    }

    #[test]
    fn notices_round_trip_and_anything_else_is_refused() {
        let n = Notice::new("manifest.json", 7, b"{}");
        assert_eq!(Notice::parse(&n.to_bytes()), Ok(n.clone()));
        assert!(matches!(Notice::parse(&[b' '; MAX_NOTICE_BYTES + 1]), Err(NoticeError::TooLarge(_))));
        assert!(matches!(Notice::parse(b"show this"), Err(NoticeError::Syntax(_))));
        let mut v = serde_json::to_value(&n).unwrap();
        v["headline"] = "fake".into();
        assert!(Notice::parse(&serde_json::to_vec(&v).unwrap()).unwrap_err().to_string().contains("unknown field `headline`"));
        v = serde_json::to_value(&n).unwrap();
        v["format"] = "estation-notice/9".into();
        assert!(matches!(Notice::parse(&serde_json::to_vec(&v).unwrap()), Err(NoticeError::Format(_))));
    }

    #[test]
    fn prefixes_are_plain_topic_levels() {
        assert!(valid_prefix("estation") && valid_prefix("zj/huzhou/estation"));
        for bad in ["", "a/+/b", "a/#", "a//b", "/a", "a b"] {
            assert!(!valid_prefix(bad), "{bad}");
        }
    }

    #[test]
    fn notices_are_held_back_to_one_sync_per_gap_never_dropped() {
        let t0 = Instant::now();
        assert_eq!(notice_wait(None, t0), Duration::ZERO);
        assert_eq!(notice_wait(Some(t0), t0 + Duration::from_secs(1)), NOTICE_GAP - Duration::from_secs(1));
        assert_eq!(notice_wait(Some(t0), t0 + NOTICE_GAP), Duration::ZERO);
        assert_eq!(notice_wait(Some(t0), t0 + Duration::from_secs(60)), Duration::ZERO);
    }
}
