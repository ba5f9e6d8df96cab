//! What a kiosk tells the central service every `[central] heartbeat`: the
//! wire format both sides share, and the limits the service holds it to.
//!
//! It is a report, not a command: the service only stores it and shows it
//! (`fleet`); nothing in it changes what a screen plays. Every field is
//! bounded so one screen cannot fill the office's database.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Longest text in any one field (an error message, an item name).
pub const MAX_TEXT: usize = 1024;
/// Most warnings listed as on screen.
pub const MAX_WARNINGS: usize = 64;
/// Largest heartbeat body the service reads.
pub const MAX_BODY: usize = 64 * 1024;

/// One heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// When the kiosk sent it, by its own clock.
    pub sent_at: DateTime<Utc>,
    /// `estation --version` of the kiosk.
    pub software: String,
    /// The feed version in its cache.
    #[serde(default)]
    pub feed_version: Option<u64>,
    /// What is on screen: `playlist/item`, or why nothing is.
    #[serde(default)]
    pub on_screen: Option<String>,
    /// CAP identifiers of the warnings on screen now.
    #[serde(default)]
    pub warnings: Vec<String>,
    #[serde(default)]
    pub last_sync: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Seconds since the player started.
    #[serde(default)]
    pub uptime_secs: u64,
    /// Free bytes on the cache's disk.
    #[serde(default)]
    pub disk_free: Option<u64>,
    /// The kiosk's clock minus the service's (`Date` of the last answer), ms.
    #[serde(default)]
    pub clock_offset_ms: Option<i64>,
    /// The sound output, as `estation status` says it.
    #[serde(default)]
    pub sound: Option<String>,
    /// The GPU adapter the player draws with.
    #[serde(default)]
    pub renderer: Option<String>,
    /// How often this kiosk sends one (its `[central] heartbeat`), so the
    /// service can tell a late screen from a quiet one.
    #[serde(default = "default_every")]
    pub every_secs: u64,
}

/// `[central] heartbeat`'s default: 5 min.
pub const DEFAULT_EVERY_SECS: u64 = 300;

fn default_every() -> u64 {
    DEFAULT_EVERY_SECS
}

/// A heartbeat the service refuses, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("{field}: {len} bytes, at most {MAX_TEXT}")]
    TooLong { field: &'static str, len: usize },
    #[error("warnings: {0} listed, at most {MAX_WARNINGS}")]
    TooManyWarnings(usize),
    #[error("{field}: control characters are not allowed")]
    Control { field: &'static str },
    #[error("software: empty")]
    NoSoftware,
    #[error("every_secs: {0}, must be 10 to 86400")]
    Every(u64),
}

impl Heartbeat {
    /// Checks the limits; the first problem found, by field.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.software.trim().is_empty() {
            return Err(Invalid::NoSoftware);
        }
        if !(10..=86_400).contains(&self.every_secs) {
            return Err(Invalid::Every(self.every_secs));
        }
        if self.warnings.len() > MAX_WARNINGS {
            return Err(Invalid::TooManyWarnings(self.warnings.len()));
        }
        let texts = [
            ("software", Some(self.software.as_str())),
            ("on_screen", self.on_screen.as_deref()),
            ("last_error", self.last_error.as_deref()),
            ("sound", self.sound.as_deref()),
            ("renderer", self.renderer.as_deref()),
        ];
        for (field, text) in texts.into_iter().filter_map(|(f, t)| t.map(|t| (f, t))).chain(self.warnings.iter().map(|w| ("warnings", w.as_str()))) {
            if text.len() > MAX_TEXT {
                return Err(Invalid::TooLong { field, len: text.len() });
            }
            if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                return Err(Invalid::Control { field });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Heartbeat {
        Heartbeat {
            sent_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            software: "estation 0.1.0".into(),
            feed_version: Some(7),
            on_screen: Some("school/暴雨来临前".into()),
            warnings: vec!["44000041600000_20261202080000".into()],
            last_sync: None,
            last_error: None,
            uptime_secs: 3600,
            disk_free: Some(1 << 30),
            clock_offset_ms: Some(-120),
            sound: Some("playing on default".into()),
            renderer: Some("gl on \"llvmpipe\"".into()),
            every_secs: 300,
        }
    }

    #[test]
    fn a_heartbeat_within_limits_passes_and_each_limit_names_its_field() {
        assert_eq!(sample().validate(), Ok(()));
        let long = Heartbeat { last_error: Some("x".repeat(MAX_TEXT + 1)), ..sample() };
        assert_eq!(long.validate(), Err(Invalid::TooLong { field: "last_error", len: MAX_TEXT + 1 }));
        let many = Heartbeat { warnings: vec!["a".into(); MAX_WARNINGS + 1], ..sample() };
        assert_eq!(many.validate(), Err(Invalid::TooManyWarnings(MAX_WARNINGS + 1)));
        let control = Heartbeat { on_screen: Some("a\u{1b}[2J".into()), ..sample() };
        assert_eq!(control.validate(), Err(Invalid::Control { field: "on_screen" }));
        let empty = Heartbeat { software: " ".into(), ..sample() };
        assert_eq!(empty.validate(), Err(Invalid::NoSoftware));
    }

    #[test]
    fn unknown_fields_from_a_newer_kiosk_are_ignored_and_missing_optional_ones_default() {
        let json = r#"{"sent_at":"2026-12-02T08:00:00Z","software":"estation 0.2.0","future":1}"#;
        let hb: Heartbeat = serde_json::from_str(json).unwrap();
        assert_eq!(hb.software, "estation 0.2.0");
        assert!(hb.warnings.is_empty() && hb.feed_version.is_none());
    }
}
