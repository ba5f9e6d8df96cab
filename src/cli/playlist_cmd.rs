//! `estation playlist check` and `estation playlist at`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use serde_json::json;

use crate::core::playlist::{Library, Playlist};
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
    let s = Scheduler::new(&lib, tz);
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
