//! Writing CAP 1.2 for operators (`estation alert new`, `alert cancel`).
//!
//! Output follows the spec's element order and CMA's practice: the colour
//! and grade in the Chinese headline (`暴雨橙色预警[Ⅱ级/严重]`), the area as a
//! 12-digit `CPEAS Geographic Code` (a 6-digit code padded with zeros means
//! the same area), times in the screen's offset. Every document is read back
//! with [`super::cap::parse`] before it is handed out, so what this writes is
//! always valid.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Duration, FixedOffset};
use quick_xml::escape::escape;

use super::cap::{self, Alert, Circle, Polygon, Severity, Status, Urgency};
use super::signal::{Hazard, Level};
use super::target::code_prefix;

/// What `alert new` is asked for.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub sender: String,
    pub sender_name: Option<String>,
    pub identifier: Option<String>,
    pub sent: DateTime<FixedOffset>,
    pub status: Status,
    pub event: String,
    pub level: Option<Level>,
    /// Overrides the severity the level stands for.
    pub severity: Option<Severity>,
    pub urgency: Urgency,
    pub headline: Option<String>,
    pub description: Option<String>,
    pub instruction: Option<String>,
    pub expires: Duration,
    pub area_desc: Option<String>,
    pub codes: Vec<String>,
    pub polygons: Vec<Polygon>,
    pub circles: Vec<Circle>,
    pub language: String,
    /// `sender,identifier,sent` triples this message updates.
    pub references: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthorError {
    #[error("{field}: {message}")]
    Field { field: &'static str, message: String },
    /// Our own output failed our own reader: a bug, reported with the reasons.
    #[error("the written CAP does not check out:\n{0}")]
    Invalid(crate::core::diag::Diagnostics),
}

fn bad(field: &'static str, message: impl Into<String>) -> AuthorError {
    AuthorError::Field { field, message: message.into() }
}

/// A CAP `sender`/`identifier` token: no spaces, commas, `<` or `&`.
fn check_token(field: &'static str, v: &str) -> Result<(), AuthorError> {
    if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c == ',' || c == '<' || c == '&') {
        return Err(bad(field, format!("`{v}` must be non-empty without spaces, commas, `<` or `&`")));
    }
    Ok(())
}

fn time(t: DateTime<FixedOffset>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

fn el(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(out, "    <{name}>{}</{name}>", escape(value.trim()));
}

/// Writes the CAP 1.2 document for `a` and returns it with its parsed form.
pub fn new_alert(a: &NewAlert) -> Result<(String, Alert), AuthorError> {
    check_token("--sender", &a.sender)?;
    if a.event.trim().is_empty() {
        return Err(bad("--event", "is empty"));
    }
    if a.codes.is_empty() && a.polygons.is_empty() && a.circles.is_empty() {
        return Err(bad("--area", "say where: at least one --area code, --polygon or --circle"));
    }
    let mut codes = Vec::new();
    for c in &a.codes {
        if code_prefix(c).is_none() {
            return Err(bad("--area", format!("`{c}` is not a 6- or 12-digit 行政区划代码")));
        }
        codes.push(if c.len() == 6 { format!("{c}000000") } else { c.clone() });
    }
    if a.expires <= Duration::zero() {
        return Err(bad("--expires", "must be in the future"));
    }
    let expires = a.sent.checked_add_signed(a.expires).ok_or_else(|| bad("--expires", "is too far in the future"))?;
    let identifier = match &a.identifier {
        Some(id) => id.clone(),
        None => format!("{}_{}_{:04x}", a.sender, a.sent.format("%Y%m%d%H%M%S"), fastrand::u16(..)),
    };
    check_token("--identifier", &identifier)?;

    let hazard = Hazard::parse(&a.event).or_else(|| Hazard::in_text(&a.event));
    let event = hazard.map_or_else(|| a.event.trim().to_string(), |h| h.zh().to_string());
    let severity = a.severity.or(a.level.map(Level::severity)).unwrap_or(Severity::Unknown);
    let sender_name = a.sender_name.clone().unwrap_or_else(|| a.sender.clone());
    let title = match a.level {
        Some(l) => format!("{event}{}预警[{}]", l.zh(), l.grade()),
        None => format!("{event}预警"),
    };
    let verb = if a.references.is_empty() { "发布" } else { "更新" };
    let headline = a.headline.clone().unwrap_or_else(|| format!("{sender_name}{verb}{title}"));
    let area_desc = a.area_desc.clone().unwrap_or_else(|| if a.codes.is_empty() { "预警区域".into() } else { a.codes.join(" ") });
    let msg_type = if a.references.is_empty() { "Alert" } else { "Update" };

    let mut x = String::new();
    let _ = writeln!(x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(x, "<alert xmlns=\"{}\">", cap::NS_12);
    let top = |x: &mut String, name: &str, v: &str| {
        let _ = writeln!(x, "  <{name}>{}</{name}>", escape(v));
    };
    top(&mut x, "identifier", &identifier);
    top(&mut x, "sender", &a.sender);
    top(&mut x, "sent", &time(a.sent));
    top(&mut x, "status", a.status.as_str());
    top(&mut x, "msgType", msg_type);
    top(&mut x, "scope", "Public");
    if a.status == Status::Exercise {
        top(&mut x, "note", "演练 Exercise");
    }
    if !a.references.is_empty() {
        top(&mut x, "references", &a.references.join(" "));
    }
    let _ = writeln!(x, "  <info>");
    el(&mut x, "language", &a.language);
    el(&mut x, "category", if hazard.is_some() { "Met" } else { "Other" });
    el(&mut x, "event", &event);
    el(&mut x, "urgency", a.urgency.as_str());
    el(&mut x, "severity", severity.as_str());
    el(&mut x, "certainty", "Likely");
    if let (Some(h), Some(l)) = (hazard, a.level) {
        let code = signal_code(h, l);
        let _ = writeln!(x, "    <eventCode>\n      <valueName>estation:warning-signal</valueName>\n      <value>{code}</value>\n    </eventCode>");
    }
    el(&mut x, "effective", &time(a.sent));
    el(&mut x, "expires", &time(expires));
    el(&mut x, "senderName", &sender_name);
    el(&mut x, "headline", &headline);
    if let Some(d) = &a.description {
        el(&mut x, "description", d);
    }
    if let Some(i) = &a.instruction {
        el(&mut x, "instruction", i);
    }
    let _ = writeln!(x, "    <area>");
    let _ = writeln!(x, "      <areaDesc>{}</areaDesc>", escape(&area_desc));
    for p in &a.polygons {
        let pts: Vec<String> = p.0.iter().map(|pt| format!("{},{}", pt.lat, pt.lon)).collect();
        let _ = writeln!(x, "      <polygon>{}</polygon>", pts.join(" "));
    }
    for c in &a.circles {
        let _ = writeln!(x, "      <circle>{},{} {}</circle>", c.center.lat, c.center.lon, c.radius_km);
    }
    for c in &codes {
        let _ = writeln!(x, "      <geocode>\n        <valueName>CPEAS Geographic Code</valueName>\n        <value>{c}</value>\n      </geocode>");
    }
    let _ = writeln!(x, "    </area>");
    let _ = writeln!(x, "  </info>");
    let _ = writeln!(x, "</alert>");
    let parsed = cap::parse(Path::new("(new alert)"), x.as_bytes()).map_err(AuthorError::Invalid)?;
    Ok((x, parsed.alert))
}

/// The `TTLL` code (01 台风 … 14 道路结冰 × 01 蓝 … 04 红) of a national signal.
fn signal_code(h: Hazard, l: Level) -> String {
    let tt = match h {
        Hazard::Typhoon => 1,
        Hazard::Rainstorm => 2,
        Hazard::Snowstorm => 3,
        Hazard::ColdWave => 4,
        Hazard::Gale => 5,
        Hazard::Sandstorm => 6,
        Hazard::HeatWave => 7,
        Hazard::Drought => 8,
        Hazard::Lightning => 9,
        Hazard::Hail => 10,
        Hazard::Frost => 11,
        Hazard::HeavyFog => 12,
        Hazard::Haze => 13,
        Hazard::RoadIcing => 14,
        Hazard::ThunderstormGale => 93,
        Hazard::ForestFire => 94,
    };
    let ll = match l {
        Level::Blue => 1,
        Level::Yellow => 2,
        Level::Orange => 3,
        Level::Red => 4,
    };
    format!("{tt:02}{ll:02}")
}

/// A Cancel for the messages `refs` (all with the same sender), sent at `sent`.
pub fn cancel(refs: &[&Alert], sent: DateTime<FixedOffset>) -> Result<(String, Alert), AuthorError> {
    let first = refs.first().ok_or_else(|| bad("ID", "nothing to cancel"))?;
    let identifier = format!("{}_{}_cancel_{:04x}", first.identifier, sent.format("%Y%m%d%H%M%S"), fastrand::u16(..));
    let references: Vec<String> = refs.iter().map(|a| super::store::key(a)).collect();
    let mut x = String::new();
    let _ = writeln!(x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(x, "<alert xmlns=\"{}\">", cap::NS_12);
    for (name, v) in [
        ("identifier", identifier.as_str()),
        ("sender", first.sender.as_str()),
        ("sent", &time(sent)),
        ("status", first.status.as_str()),
        ("msgType", "Cancel"),
        ("scope", "Public"),
        ("references", &references.join(" ")),
    ] {
        let _ = writeln!(x, "  <{name}>{}</{name}>", escape(v));
    }
    let _ = writeln!(x, "</alert>");
    let parsed = cap::parse(Path::new("(cancel)"), x.as_bytes()).map_err(AuthorError::Invalid)?;
    Ok((x, parsed.alert))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::alert::signal;

    fn base() -> NewAlert {
        NewAlert {
            sender: "changxing-qxt".into(),
            sender_name: Some("长兴县气象台".into()),
            identifier: None,
            sent: DateTime::parse_from_rfc3339("2026-07-01T08:00:00+08:00").unwrap(),
            status: Status::Actual,
            event: "暴雨".into(),
            level: Some(Level::Orange),
            severity: None,
            urgency: Urgency::Immediate,
            headline: None,
            description: Some("预计未来3小时将出现50毫米以上降雨 & 雷电".into()),
            instruction: Some("注意防范".into()),
            expires: Duration::hours(6),
            area_desc: Some("长兴县".into()),
            codes: vec!["330522".into()],
            polygons: vec![],
            circles: vec![cap::parse_circle("31.0,119.9 10").unwrap()],
            language: "zh-CN".into(),
            references: vec![],
        }
    }

    #[test]
    fn writes_valid_cap_that_reads_back_as_asked() {
        let (xml, a) = new_alert(&base()).unwrap();
        assert!(xml.contains("&amp; 雷电"), "text is escaped");
        let info = &a.infos[0];
        assert_eq!(info.headline.as_deref(), Some("长兴县气象台发布暴雨橙色预警[Ⅱ级/严重]"));
        assert_eq!(info.severity, Severity::Severe);
        assert_eq!(info.expires.unwrap().to_rfc3339(), "2026-07-01T14:00:00+08:00");
        assert_eq!(info.areas[0].geocodes[0].value, "330522000000");
        assert_eq!(signal::of_alert(&a).unwrap(), signal::Signal { hazard: Some(Hazard::Rainstorm), level: Level::Orange });
        let c = cancel(&[&a], a.sent + Duration::hours(1)).unwrap().1;
        assert_eq!(c.references[0].identifier, a.identifier);
    }

    #[test]
    fn bad_arguments_are_named() {
        let e = new_alert(&NewAlert { codes: vec!["33052".into()], ..base() }).unwrap_err();
        assert_eq!(e.to_string(), "--area: `33052` is not a 6- or 12-digit 行政区划代码");
        let e = new_alert(&NewAlert { sender: "a b".into(), ..base() }).unwrap_err();
        assert!(e.to_string().starts_with("--sender:"));
        let e = new_alert(&NewAlert { codes: vec![], circles: vec![], ..base() }).unwrap_err();
        assert!(e.to_string().starts_with("--area: say where"));
        let ex = new_alert(&NewAlert { status: Status::Exercise, ..base() }).unwrap().1;
        assert_eq!(ex.status, Status::Exercise);
    }
}
