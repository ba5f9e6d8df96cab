//! Any bytes into the config reader as the kiosk loads a file
//! (`config::from_bytes`: the encoding check, then the TOML), and what the
//! player and `config show` do with the result. Must never panic; a value
//! that is kept is within its documented range, and every problem points at
//! a line the file has.
#![no_main]

use std::path::Path;

use chrono::{DateTime, Utc};
use estation::core::alert::authority::{Authority, FEED};
use estation::core::alert::{Store, cap, policy};
use estation::config;
use libfuzzer_sys::fuzz_target;

/// A red rainstorm warning for 330522, in force on 2026-07-01: what the
/// policy a config makes is tried on.
static STORE: std::sync::LazyLock<Store> = std::sync::LazyLock::new(|| {
    let xml = include_str!("../../tests/data/cap/zh-rainstorm-red-330522.xml");
    let alert = cap::parse(Path::new("red.xml"), xml.as_bytes())
        .expect("the fixture reads")
        .alert;
    let mut s = Store::default();
    s.apply(
        alert,
        xml.into(),
        FEED,
        at(1_782_864_000),
        &Authority::none(),
    );
    assert_eq!(s.entries().len(), 1);
    s
});

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    let path = Path::new("config.toml");
    let loaded = config::from_bytes(path, data);
    let lines = data.split(|&b| b == b'\n').count();
    for d in &loaded.diagnostics().0 {
        assert!(
            d.line <= lines,
            "a problem on line {} of a {lines}-line file: {d}",
            d.line
        );
    }
    let _ = loaded.diagnostics().to_string();
    match config::decode(path, data) {
        Ok(text) => {
            let again = config::parse(path, &text);
            assert_eq!(
                again.diagnostics().to_string(),
                loaded.diagnostics().to_string(),
                "from_bytes is decode + parse"
            );
        }
        Err(_) => assert!(
            loaded.unusable.is_some() && loaded.fallback.is_some(),
            "undecodable bytes must be reported unusable"
        ),
    }
    let c = &loaded.config;
    assert!(
        c.latitude.is_none_or(|v| (-90.0..=90.0).contains(&v)),
        "latitude {:?} kept",
        c.latitude
    );
    assert!(
        c.longitude.is_none_or(|v| (-180.0..=180.0).contains(&v)),
        "longitude {:?} kept",
        c.longitude
    );
    assert!(c.volume <= 100, "volume {} kept", c.volume);
    // `config show --json`.
    let json = serde_json::to_string(c);
    assert!(json.is_ok(), "a loaded config must serialise: {json:?}");
    let policy = c.alert_policy();
    let _ = c.alert_authority();
    for secs in [1_782_864_000, 1_782_900_000, 1_782_950_000] {
        let t = at(secs);
        let local = t.with_timezone(&c.timezone).naive_local();
        let _ = (c.screen_is_on(local), c.is_quiet(local));
        let shown = policy::present(&STORE, &policy, t);
        let _ = (
            shown.takeover(&policy, t),
            shown.takeover_count(&policy),
            shown.banner(),
            shown.ticker(),
        );
        let _ = policy::next_change(&STORE, &policy, &shown, t);
    }
});
