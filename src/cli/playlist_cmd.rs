//! `estation playlist check` and `estation playlist at`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use serde_json::json;

use crate::core::playlist::{Item, Library, Playlist};
use crate::core::playlist::schedule::Scheduler;

/// Prints one line per problem; exit 1 if there were any.
pub fn check(paths: &[PathBuf]) -> ExitCode {
    let mut problems = Vec::new();
    let mut count = 0;
    for path in paths {
        let lib = Library::load(path);
        count += lib.playlists.len();
        problems.extend(lib.problems);
    }
    if problems.is_empty() {
        println!("ok: {count} playlist(s) checked, no problems");
        ExitCode::SUCCESS
    } else {
        for p in &problems {
            println!("{p}");
        }
        ExitCode::FAILURE
    }
}

/// Answers "what plays at this time" for a playlist or a folder.
pub fn at(path: &Path, time: DateTime<FixedOffset>, tz: Tz, json_out: bool) -> anyhow::Result<ExitCode> {
    let lib = Library::load(path);
    for p in &lib.problems {
        eprintln!("warning: {p}");
    }
    let t = time.with_timezone(&Utc);
    // The player's boundaries move with what it measures (a narration, an
    // `auto` clip): measured here the same way, once per item.
    let measured = measure_all(&lib);
    let lengths = |p: &Playlist, item: &Item| measured.get(&p.id).and_then(|m| m.get(&item.id)).copied();
    let s = Scheduler::new(&lib, tz).with_lengths(lengths);
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).to_rfc3339();
    let choice = s.choose(t);
    let slot = s.slot_at(t);
    let change = s.next_playlist_change(t);
    let describe = |p: &Playlist| json!({"id": p.id, "name": p.name, "file": p.source});

    let out = match (&choice, &slot) {
        (Some(c), Some(slot)) => {
            let p = &lib.playlists[slot.playlist];
            let item = &p.items[slot.item];
            // A playlist switch also waits for the item boundary.
            let next_change = slot.end;
            json!({
                "time": local(t),
                "timezone": tz.name(),
                "playlist": describe(p),
                "rule": c.rule,
                "rule_text": c.rule.to_string(),
                "skipped": c.skipped,
                "item": {
                    "index": slot.item + 1,
                    "count": p.items.len(),
                    "id": item.id,
                    "kind": item.kind.name(),
                    "line": item.line,
                    "started": local(slot.start),
                    "ends": local(slot.end),
                },
                "next_change": local(next_change),
                "next_playlist_change": change.map(|(when, to)| json!({
                    "time": local(when),
                    "playlist": to.map(|i| lib.playlists[i].id.clone()),
                })),
            })
        }
        _ => json!({
            "time": local(t),
            "timezone": tz.name(),
            "playlist": null,
            "rule": {"kind": "idle"},
            "rule_text": "idle screen: no playlist has an item valid at this time",
            "skipped": choice.map(|c| c.skipped).unwrap_or_default(),
            "item": null,
            "next_change": change.map(|(when, _)| local(when)),
            "next_playlist_change": change.map(|(when, to)| json!({
                "time": local(when),
                "playlist": to.map(|i| lib.playlists[i].id.clone()),
            })),
        }),
    };
    if json_out {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_text(&out);
    }
    Ok(ExitCode::SUCCESS)
}

/// How long each measured item lasts, by playlist and item id.
type MeasuredLengths = std::collections::HashMap<String, std::collections::HashMap<String, std::time::Duration>>;

/// Measures every item whose length depends on its media, as the player
/// does when it prepares the item (see [`measure`]).
fn measure_all(lib: &Library) -> MeasuredLengths {
    let mut all = MeasuredLengths::new();
    for p in &lib.playlists {
        for item in &p.items {
            if let Some(m) = measure(item) {
                all.entry(p.id.clone()).or_default().insert(item.id.clone(), item.on_screen(m));
            }
        }
    }
    all
}

/// What the player measures of an item while preparing it: the narration
/// (rodio) of a `narration` item, the clip (GStreamer's preroll) of an
/// `auto` one. `None`: nothing to measure, or it cannot be measured here.
#[cfg(feature = "player")]
fn measure(item: &Item) -> Option<crate::core::media::timing::Measured> {
    use crate::core::media::timing::{Measured, UNMEASURED};
    use crate::core::playlist::{ItemKind, Length};
    match (item.duration, &item.kind, &item.narration) {
        (Length::Narration, _, Some(path)) => {
            let narration = match crate::player::narration_length(path) {
                Ok(d) => Some(d),
                Err(e) => {
                    eprintln!("warning: narration {}: {e}; the item lasts {} s", path.display(), UNMEASURED.as_secs());
                    None
                }
            };
            Some(Measured { clip: None, narration })
        }
        (Length::Clip, ItemKind::Video(v), _) => match crate::video::clip_length(v) {
            Ok(clip) => Some(Measured { clip, narration: None }),
            Err(e) => {
                eprintln!("warning: item `{}`: {e}; the player skips it, but it is counted here at its nominal length", item.id);
                None
            }
        },
        _ => None,
    }
}

/// Without the player nothing is measured: items last their nominal length.
#[cfg(not(feature = "player"))]
fn measure(_: &Item) -> Option<crate::core::media::timing::Measured> {
    None
}

fn print_text(v: &serde_json::Value) {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    println!("time:      {} ({})", s(&v["time"]), s(&v["timezone"]));
    if v["playlist"].is_null() {
        println!("playlist:  none — {}", s(&v["rule_text"]));
    } else {
        let p = &v["playlist"];
        println!("playlist:  {} ({}) from {}", s(&p["id"]), s(&p["name"]), s(&p["file"]));
        println!("rule:      {}", s(&v["rule_text"]));
        let i = &v["item"];
        println!(
            "item:      {}/{} {} ({}), {} to {}",
            i["index"], i["count"], s(&i["id"]), s(&i["kind"]), s(&i["started"]), s(&i["ends"])
        );
    }
    if let Some(skipped) = v["skipped"].as_array().filter(|a| !a.is_empty()) {
        let names: Vec<String> = skipped.iter().map(s).collect();
        println!("skipped:   {} (no item valid then)", names.join(", "));
    }
    if !v["next_change"].is_null() {
        println!("next:      {}", s(&v["next_change"]));
    }
    if let Some(c) = v["next_playlist_change"].as_object() {
        let to = c["playlist"].as_str().unwrap_or("idle screen");
        println!("switch:    {} to {}", s(&c["time"]), to);
    }
}
