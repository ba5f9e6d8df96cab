//! CAP parse throughput (not a pass/fail test): `cargo bench --no-default-features --bench cap`.
//!
//! Reads every valid CAP document under tests/data/cap (real agency messages
//! and our own) through the whole reader — XML tree, CAP checks, language
//! choice, signal recognition — and through the store and presentation
//! policy, and prints documents per second and MB per second.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use estation::core::alert::policy::{present, Policy};
use estation::core::alert::{cap, signal, Store};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test` probes benches with --list
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/cap");
    let mut docs: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("tests/data/cap")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .map(|p| (p.clone(), std::fs::read(&p).expect("read fixture")))
        .filter(|(p, b)| cap::parse(p, b).is_ok())
        .collect();
    docs.sort();
    let bytes: usize = docs.iter().map(|(_, b)| b.len()).sum();
    println!("{} valid CAP documents, {} bytes in all (mean {} bytes)", docs.len(), bytes, bytes / docs.len().max(1));

    let run = |what: &str, f: &dyn Fn(&Path, &[u8])| {
        // Warm up, then as many rounds as fit in two seconds.
        for (p, b) in &docs {
            f(p, b);
        }
        let start = Instant::now();
        let mut n = 0usize;
        while start.elapsed() < Duration::from_secs(2) {
            for (p, b) in &docs {
                f(p, b);
            }
            n += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        let per_sec = (n * docs.len()) as f64 / secs;
        println!("{what:<44} {per_sec:>10.0} documents/s  {:>7.1} MB/s", (n * bytes) as f64 / secs / 1e6);
    };
    run("parse + check (cap::parse)", &|p, b| {
        std::hint::black_box(cap::parse(p, b).ok());
    });
    let now = chrono::DateTime::from_timestamp(1_782_864_000, 0).unwrap_or_default();
    let policy = Policy::default();
    run("parse + signal + store + present", &|p, b| {
        if let Ok(parsed) = cap::parse(p, b) {
            std::hint::black_box(signal::of_alert(&parsed.alert));
            let mut store = Store::default();
            store.apply(parsed.alert, String::new(), "bench", now, &estation::core::alert::authority::Authority::none());
            std::hint::black_box(present(&store, &policy, now));
        }
    });
}
