//! A sequence of CAP messages from several sources through the alert
//! store, so the lifecycle rules (Update, Cancel, all-clear, tombstones,
//! authority) meet messages in any order. The input is messages separated
//! by [`SEP`]; each one's first byte picks its source (the signed feed or
//! one of two upstream URLs, the first the authority for one sender) and
//! when it arrives. After every message: no panic; what was removed, its
//! source was allowed to remove (so an upstream source never ends a feed
//! warning it has no authority for); the store saves and loads back equal;
//! the presentation and pruning run.
#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use chrono::{DateTime, Duration, Utc};
use estation::core::alert::authority::{Authority, FEED};
use estation::core::alert::policy::{self, Policy};
use estation::core::alert::store::{self, MAX_ENTRIES, MAX_PER_SOURCE, Outcome};
use estation::core::alert::target::Place;
use estation::core::alert::{Store, cap, xml};
use libfuzzer_sys::fuzz_target;

/// Between messages (see fuzz/seeds/alert_sequence/README.md).
const SEP: &[u8] = b"\n@@next@@\n";
/// Longer sequences add little but time.
const MAX_MESSAGES: usize = 12;
const UPSTREAM_A: &str = "https://a.example/cap.atom";
const UPSTREAM_B: &str = "https://b.example/cap.xml";
/// The sender the config names `UPSTREAM_A` the authority for.
const GRANTED: &str = "Changxing_Meteorological_Observatory";

static AUTHORITY: LazyLock<Authority> =
    LazyLock::new(|| Authority::none().grant(UPSTREAM_A, [GRANTED.to_string()]));

/// One store file for the whole run (in memory where /dev/shm exists).
static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
    tempfile::Builder::new()
        .prefix("estation-fuzz-")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("a temp folder")
});

fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(SEP.len()).position(|w| w == SEP) {
        out.push(&rest[..i]);
        rest = &rest[i + SEP.len()..];
    }
    out.push(rest);
    out.truncate(MAX_MESSAGES);
    out
}

fn policies() -> [Policy; 2] {
    let village = Place {
        region: Some("330522".into()),
        point: Some(cap::Point {
            lat: 31.0,
            lon: 119.9,
        }),
        everywhere: false,
    };
    [
        Policy {
            place: village,
            show_exercise: true,
            show_test: true,
            ..Policy::default()
        },
        Policy {
            place: Place {
                everywhere: true,
                ..Place::default()
            },
            ..Policy::default()
        },
    ]
}

fuzz_target!(|data: &[u8]| {
    // 2026-07-01T08:00+08:00, near the fixtures' `sent`.
    let base = DateTime::<Utc>::from_timestamp(1_782_864_000, 0).unwrap_or_default();
    let path = DIR.path().join(store::FILE);
    let policies = policies();
    let mut s = Store::default();
    // The feed's messages alone: what upstream sources send must never
    // change what a feed message does (unless a grant lets it).
    let mut feed_only = Store::default();
    for chunk in split(data) {
        let Some((&control, bytes)) = chunk.split_first() else {
            continue;
        };
        let source = match control & 3 {
            1 => UPSTREAM_A,
            2 => UPSTREAM_B,
            _ => FEED,
        };
        // Up to a day on from the base, in 20-minute steps, in any order.
        let now = base + Duration::minutes(20 * i64::from(control >> 2)) - Duration::hours(1);
        // As sync reads them: the feed's strictly, upstream leniently.
        let mode = if source == FEED {
            cap::Mode::Strict
        } else {
            cap::Mode::Lenient
        };
        let Ok(parsed) = cap::parse_with(Path::new(source), bytes, mode) else {
            continue;
        };
        let before = s.clone();
        let text = xml::utf8_text(bytes);
        let shadow = (source == FEED && parsed.alert.sender != GRANTED)
            .then(|| feed_only.apply(parsed.alert.clone(), text.clone(), source, now, &AUTHORITY));
        let outcome = s.apply(parsed.alert, text, source, now, &AUTHORITY);
        if let Some(alone) = &shadow {
            assert_eq!(
                std::mem::discriminant(alone),
                std::mem::discriminant(&outcome),
                "upstream messages changed what a feed message does: {alone:?} alone, {outcome:?} with them"
            );
        }

        // What went, by entry (key, source and when received): a message
        // that replaces an older copy of itself keeps its key but is a new entry.
        let gone: Vec<_> = before
            .entries()
            .iter()
            .filter(|e| !s.entries().iter().any(|n| n.key() == e.key() && n.source == e.source && n.received == e.received && n.xml == e.xml))
            .collect();
        for e in &gone {
            assert!(
                AUTHORITY.may_act(source, &e.source, &e.alert.sender),
                "{source} removed {} from {} without authority ({outcome:?})",
                e.key(),
                e.source
            );
        }
        match outcome {
            Outcome::Added { replaced, .. } => {
                assert_eq!(replaced, gone.len(), "Added: `replaced` counts what went");
                assert_eq!(s.entries().len(), before.entries().len() - gone.len() + 1);
            }
            Outcome::Ended { ended, .. } => {
                assert_eq!(ended, gone.len(), "Ended: `ended` counts what went");
                assert_eq!(s.entries().len(), before.entries().len() - gone.len());
            }
            _ => assert_eq!(s, before, "{outcome:?} changed the store"),
        }
        assert!(s.entries().len() <= MAX_ENTRIES);
        assert!(s.entries().iter().filter(|e| e.source == source).count() <= MAX_PER_SOURCE);

        // What sync writes, the player reads back the same.
        let loaded = Store::from_bytes(&path, &s.to_bytes()).expect("a saved store loads");
        assert_eq!(loaded, s, "the store read back differs from the one saved");

        for p in &policies {
            let shown = policy::present(&s, p, now);
            let _ = (shown.takeover(p, now), shown.banner(), shown.ticker());
            let _ = policy::next_change(&s, p, &shown, now);
        }
        let mut pruned = s.clone();
        pruned.prune(now, &policies[0].lifetimes);
        assert!(
            pruned.entries().iter().all(|e| s.entries().contains(e)),
            "prune only drops"
        );
    }
});
