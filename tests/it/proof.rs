//! Proof of play on the kiosk, for real: the log the player writes of what
//! was on screen (items, a warning, the lit screen), killed with `kill -9`
//! over and over, reads back whole every time, and `estation report` sums it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use estation::store::proof;

use crate::common::operator::Operator;
use crate::common::player::Player;
use crate::common::{estation, stderr, stdout, wait_until};

/// A feed of three one-second cards and a yellow (banner) warning over
/// them, synced into a kiosk in 330522 from a USB copy; the kiosk's config.
fn kiosk(op: &Operator, dir: &Path) -> PathBuf {
    let items: String = [("water-cycle", "水循环"), ("lightning", "防雷"), ("sorting", "垃圾分类")]
        .iter()
        .map(|(id, t)| format!("[[items]]\nid = \"{id}\"\nkind = \"text\"\ntitle = \"{t}\"\n"))
        .collect();
    std::fs::write(op.path("playlists/main.toml"), format!("id = \"main\"\n[defaults]\nduration = \"1s\"\ntransition = \"0s\"\n{items}")).unwrap();
    assert!(op.build().status.success());
    op.run(&[
        "alert", "new", "--sender", "changxing-qxt", "--sender-name", "长兴县气象台", "--out", "yellow.xml", "--event", "大风", "--level", "yellow",
        "--area", "330522", "--expires", "6h", "--description", "预计今天下午有6级大风",
    ]);
    op.run(&["alert", "publish", "yellow.xml", "--feed", "feed", "--key", "keys/feed-key.pem"]);
    let config = op.kiosk_with(dir, "region = \"330522\"\n", "", "");
    let out = estation(&config).args(["sync", "--from"]).arg(op.path("feed")).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    config
}

/// Every segment decodes to its end with nothing skipped, and the numbers
/// run 1, 2, 3 … with none missing or twice.
fn whole(log: &Path) -> Vec<estation::core::proof::Record> {
    for e in std::fs::read_dir(log).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "log") {
            let bytes = std::fs::read(e.path()).unwrap();
            let d = proof::decode(&bytes);
            assert_eq!((d.end, d.skipped), (bytes.len(), 0), "{}: not whole", e.path().display());
        }
    }
    let records = proof::read_after(log, 0, usize::MAX).unwrap();
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=records.len() as u64).collect::<Vec<_>>(), "numbers in order, none missing");
    records
}

#[test]
fn the_log_survives_kill_9_at_any_moment_and_the_report_sums_it() {
    let op = Operator::new();
    let dir = tempfile::tempdir().unwrap();
    let config = kiosk(&op, dir.path());
    let log = proof::dir_for(&dir.path().join("cache"));
    let mut had = 0;
    for round in 0..5 {
        let running = Player::new(&config).window(320, 180).exit_after("120s").spawn();
        let mut now = 0;
        wait_until(Duration::from_secs(90), "the player to log more items", || {
            now = proof::read_after(&log, 0, usize::MAX).map_or(0, |r| r.len());
            now > had + 1
        });
        // Somewhere in the next item, whatever it is doing.
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..1200)));
        let played = running.kill9();
        let records = whole(&log);
        assert!(records.len() >= now, "round {round}: records written before the kill were lost\n{played}");
        had = records.len();
    }
    // A run that ends by itself closes what is open: the lit time and the warning.
    let last = Player::new(&config).window(320, 180).exit_after("4s").run();
    let records = whole(&log);
    let kinds = |k: &str| records.iter().filter(|r| serde_json::to_value(&r.entry.what).unwrap()["kind"] == k).count();
    assert!(kinds("on") >= 1 && kinds("warning") >= 1, "lit time and the warning are recorded: {records:?}\n{}", last.log);
    assert!(records.iter().all(|r| r.entry.start < r.entry.end), "{records:?}");
    let plays = records.iter().filter(|r| matches!(r.entry.what, estation::core::proof::What::Play { .. }) && !r.entry.cont).count() as u64;

    // The report counts what the log holds.
    let out = estation(&config).args(["report", "--from", "2000-01-01", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let r: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let rows = r["rows"].as_array().unwrap();
    let keys: Vec<&str> = rows.iter().filter_map(|row| row["key"].as_str()).collect();
    assert_eq!(keys, ["main/lightning", "main/sorting", "main/water-cycle"], "{r}");
    assert_eq!(rows.iter().map(|row| row["plays"].as_u64().unwrap()).sum::<u64>(), plays, "{r}");
    let w = &r["warnings"][0];
    assert_eq!(w["sender"], "changxing-qxt", "{r}");
    assert_eq!(w["screens"][0]["screen"], "test-1", "{r}");
    assert_eq!(w["screens"][0]["treatment"], "banner", "{r}");
    let by_day = stdout(&estation(&config).args(["report", "--from", "2000-01-01", "--by", "day", "--csv"]).output().unwrap());
    assert!(by_day.starts_with('\u{feff}'), "CSV with a BOM for Excel");
    assert!(by_day.contains("开屏小时 hours on") && by_day.contains("changxing-qxt"), "{by_day}");
    let refused = estation(&config).args(["report", "--from", "2000-01-01", "--by", "region"]).output().unwrap();
    assert!(!refused.status.success() && stderr(&refused).contains("estation-central report"), "{}", stderr(&refused));
}
