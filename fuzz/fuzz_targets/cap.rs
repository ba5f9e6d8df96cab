//! Any bytes into the CAP / Atom / RSS reader, then whatever reads through
//! the store, the targeting and the presentation policy. Must never panic,
//! hang or blow up memory; a message that reads must read again after
//! being written back out (what an Atom entry hands to the store).
#![no_main]

use std::path::Path;

use chrono::{DateTime, Utc};
use estation::core::alert::index::{self, Content, Document};
use estation::core::alert::policy::{self, Policy};
use estation::core::alert::target::Place;
use estation::core::alert::{cap, signal, Store};
use libfuzzer_sys::fuzz_target;

fn exercise(alert: cap::Alert, text: String, now: DateTime<Utc>) {
    let _ = signal::of_alert(&alert);
    let mut store = Store::default();
    store.apply(alert, text, "fuzz", now, &estation::core::alert::authority::Authority::none());
    for place in [Place::default(), Place { region: Some("330522".into()), point: Some(cap::Point { lat: 31.0, lon: 119.9 }), everywhere: false }] {
        let p = Policy { place, show_exercise: true, show_test: true, ..Policy::default() };
        let shown = policy::present(&store, &p, now);
        let _ = shown.takeover(&p, now);
        let _ = shown.ticker();
    }
    store.prune(now, &Default::default());
}

fuzz_target!(|data: &[u8]| {
    let now = DateTime::from_timestamp(1_782_864_000, 0).unwrap_or_default(); // 2026-07-01
    match index::read(Path::new("fuzz.xml"), data) {
        Ok(Document::Alert(p)) => exercise(p.alert, String::from_utf8_lossy(data).into_owned(), now),
        Ok(Document::Index(entries)) => {
            for e in entries {
                if let Content::Embedded(emb) = e.content
                    && let Ok(p) = emb.result
                {
                    let again = cap::parse(Path::new("again.xml"), emb.xml.as_bytes());
                    assert!(again.is_ok(), "an embedded alert that read must read again on its own: {again:?}");
                    exercise(p.alert, emb.xml, now);
                }
            }
        }
        Err(_) => {}
    }
});
