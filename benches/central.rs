//! Central service figures (not a pass/fail test): run with
//! `scripts/bench-central`, which installs PostgreSQL and builds without
//! Bevy.
//!
//! One real `estation-central serve` on 127.0.0.1, on SQLite and then on a
//! throw-away PostgreSQL (fsync on, as a real server), with 50,000 screens
//! enrolled (`ESTATION_BENCH_SCREENS` to change it). Each simulated screen
//! does what a kiosk does after each heartbeat: the heartbeat, then one
//! proof-of-play batch of the five minutes since (15 items of 20 s). Time is
//! compressed: screens take turns, so a run of seconds carries what the
//! fleet sends in minutes.
//!
//! - **Paced**: visits at the fleet's real rate (every screen every 5 min),
//!   timed from when each was due, so a service that falls behind shows it
//!   in the latency (no coordinated omission).
//! - **Flat out**: 32 screens at a time, each visit as soon as the last one
//!   ended: the most the service sustains, and so how many screens at a
//!   5-minute heartbeat one service carries.
//! - **Size**: the database's growth per proof-of-play record, times the
//!   records of a screen-day (12 hours on, items of 20 s, on/off split every
//!   10 minutes); then everything rolled up by day, and the size of a day row.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use estation::central::db::Db;
use estation::core::heartbeat::Heartbeat;
use estation::core::proof::{Batch, Entry, Record, What};

#[path = "../tests/it/common/pg.rs"]
#[allow(dead_code)] // the tests use more of it
mod pg;

/// A kiosk's heartbeat interval.
const EVERY: Duration = Duration::from_secs(300);
/// Items a kiosk shows in one interval (20 s each).
const RECORDS_PER_VISIT: u64 = 15;
const ITEM: chrono::Duration = chrono::Duration::seconds(20);
/// A screen-day: 12 hours of items of 20 s, and the hours on and off split
/// every 10 minutes.
const RECORDS_PER_DAY: u64 = 12 * 3600 / 20 + 2 * 72;
/// A screen-day rolled up: a few dozen items, a few warnings, on and off.
const DAY_ROWS: u64 = 50;
const PACED_FOR: Duration = Duration::from_secs(30);
const FLAT_OUT_FOR: Duration = Duration::from_secs(20);
const FLAT_OUT_AT_ONCE: usize = 32;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test` probes benches with --list
    }
    let screens: usize = std::env::var("ESTATION_BENCH_SCREENS").ok().and_then(|s| s.parse().ok()).unwrap_or(50_000);
    let work = tempfile::tempdir().expect("temp dir");
    let feed = work.path().join("feed");
    std::fs::create_dir_all(&feed).expect("feed folder");
    println!("{screens} screens, a heartbeat and a proof-of-play batch of {RECORDS_PER_VISIT} records each every {} s\n", EVERY.as_secs());

    let sqlite = work.path().join("central.db");
    run("SQLite", &format!("sqlite://{}", sqlite.display()), screens, &feed, &Size::Sqlite);
    let postgres = pg::Postgres::start_with(true);
    let url = postgres.database("bench");
    run("PostgreSQL", &url, screens, &feed, &Size::Postgres);
}

/// How the database's size is read.
enum Size {
    Sqlite,
    Postgres,
}

/// Bytes table `table` and its indexes take.
async fn table_bytes(pool: &sqlx::AnyPool, size: &Size, table: &str) -> i64 {
    use sqlx::Row;
    let sql = match size {
        Size::Sqlite => format!("SELECT CAST(COALESCE(SUM(pgsize), 0) AS BIGINT) FROM dbstat WHERE name = '{table}' OR name IN (SELECT name FROM sqlite_master WHERE tbl_name = '{table}')"),
        Size::Postgres => format!("SELECT CAST(pg_total_relation_size('{table}') AS BIGINT)"),
    };
    let sql = sql.as_str();
    let row = sqlx::query(sql).fetch_one(pool).await.expect("the size of the proof table");
    row.try_get(0).expect("a size")
}

fn run(name: &str, url: &str, screens: usize, feed: &std::path::Path, size: &Size) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(Db::open(url)).expect("open the database");
    let t = Instant::now();
    let tokens = rt.block_on(enrol(url, screens));
    println!("{name}: {screens} screens enrolled in {:.1} s", t.elapsed().as_secs_f64());

    let service = Service::start(url, feed);
    let client = estation::net::http::client_builder().pool_max_idle_per_host(1024).build().expect("client");
    let fleet = Arc::new(Fleet { base: service.url.clone(), tokens, seq: (0..screens).map(|_| AtomicU64::new(0)).collect(), next: AtomicU64::new(0), ok: AtomicU64::new(0), errors: AtomicU64::new(0), stored: AtomicU64::new(0) });
    let pool = rt.block_on(sqlx::any::AnyPoolOptions::new().max_connections(1).connect(url)).expect("a connection for sizes");
    let before = rt.block_on(table_bytes(&pool, size, "proof"));

    // Paced: the fleet's own rate.
    let rate = screens as f64 / EVERY.as_secs_f64();
    let (lat, took, n) = rt.block_on(paced(&client, &fleet, rate));
    report(&format!("{name}, paced at {:.0} visits/s ({:.0} requests/s)", rate, rate * 2.0), &lat, took, n, &fleet);

    // Flat out.
    let (lat, took, n) = rt.block_on(flat_out(&client, &fleet));
    let rps = fleet.ok.load(Ordering::Relaxed) as f64 / took.as_secs_f64();
    report(&format!("{name}, flat out ({FLAT_OUT_AT_ONCE} screens at a time)"), &lat, took, n, &fleet);
    println!("  => one service on this machine carries {:.0} screens at a 5-minute heartbeat (2 requests each per 5 min)", rps / 2.0 * EVERY.as_secs_f64());

    let after = rt.block_on(table_bytes(&pool, size, "proof"));
    let records = fleet.stored.load(Ordering::Relaxed);
    let per_record = (after - before) as f64 / records.max(1) as f64;
    println!(
        "  size: {records} proof-of-play records took {:.1} MB ({per_record:.0} bytes each, indexes included) => {:.0} KB per screen-day ({RECORDS_PER_DAY} records), {:.1} GB a day for {screens} screens",
        (after - before) as f64 / 1e6,
        per_record * RECORDS_PER_DAY as f64 / 1e3,
        per_record * RECORDS_PER_DAY as f64 * screens as f64 / 1e9
    );

    // Rolled up by day: everything so far (the cut is tomorrow's midnight).
    let tz = chrono_tz::Asia::Shanghai;
    let db = rt.block_on(Db::open(url)).expect("open the database");
    let t = Instant::now();
    let rolled = rt.block_on(db.roll_up(estation::central::rollup::cut(Utc::now(), 0, tz) + chrono::Duration::days(1), tz)).expect("roll up");
    let took = t.elapsed().as_secs_f64();
    let daily = rt.block_on(table_bytes(&pool, size, "proof_daily"));
    let per_row = daily as f64 / rolled.rows.max(1) as f64;
    println!(
        "  rolled up: {} records of {} screens into {} day rows in {took:.1} s ({:.0} records/s); {per_row:.0} bytes a row => {:.1} KB per screen-day at {DAY_ROWS} rows (items, warnings, on, off)\n",
        rolled.records,
        rolled.screens,
        rolled.rows,
        rolled.records as f64 / took.max(1e-9),
        per_row * DAY_ROWS as f64 / 1e3
    );
    drop(service);
}

/// Enrols `n` screens (`bench-0` …) in one transaction per thousand;
/// returns their tokens.
async fn enrol(url: &str, n: usize) -> Vec<String> {
    let pool = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(url).await.expect("connect");
    let tokens: Vec<String> = (0..n).map(|_| estation::central::token::generate().expect("a token")).collect();
    let now = Utc::now().timestamp_millis();
    for (c, chunk) in tokens.chunks(1000).enumerate() {
        let mut sql = String::from("INSERT INTO screens (id, name, region, token_salt, token_hash, added_at) VALUES ");
        for i in 0..chunk.len() {
            let b = i * 6;
            sql.push_str(&format!("{}(${}, ${}, ${}, ${}, ${}, ${})", if i == 0 { "" } else { ", " }, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6));
        }
        let mut q = sqlx::query(&sql);
        for (i, token) in chunk.iter().enumerate() {
            let id = c * 1000 + i;
            let sealed = estation::central::token::seal(token).expect("seal");
            // 100 counties of 500 screens.
            q = q.bind(format!("bench-{id}")).bind(format!("屏 {id}")).bind(format!("44{:04}", id / 500)).bind(sealed.salt).bind(sealed.hash).bind(now);
        }
        q.execute(&pool).await.expect("enrol");
    }
    tokens
}

struct Fleet {
    base: reqwest::Url,
    tokens: Vec<String>,
    /// Each screen's last proof-of-play number.
    seq: Vec<AtomicU64>,
    /// The next screen to visit.
    next: AtomicU64,
    /// Requests answered 2xx, and the others (refused or failed).
    ok: AtomicU64,
    errors: AtomicU64,
    /// Proof-of-play records the service took.
    stored: AtomicU64,
}

impl Fleet {
    /// One visit of the next screen: its heartbeat, then its batch; each
    /// request's latency counted from `due` (the batch's from when the
    /// heartbeat answered).
    async fn visit(&self, client: &reqwest::Client, due: Instant, lat: &Mutex<Vec<Duration>>) {
        let i = (self.next.fetch_add(1, Ordering::Relaxed) as usize) % self.tokens.len();
        let id = format!("bench-{i}");
        let now = Utc::now();
        let hb = Heartbeat {
            sent_at: now,
            software: "estation 0.1.0".into(),
            feed_version: Some(42),
            on_screen: Some("main/暴雨来临前怎么办".into()),
            warnings: vec![],
            last_sync: Some(now),
            last_error: None,
            uptime_secs: 86_400,
            disk_free: Some(20 << 30),
            clock_offset_ms: Some(-120),
            sound: Some("playing".into()),
            renderer: Some("gl on \"Mesa Intel(R) HD Graphics 530\"".into()),
            every_secs: EVERY.as_secs(),
        };
        let token = &self.tokens[i];
        let ok = self.post(client, &format!("api/v1/screens/{id}/heartbeat"), token, &hb).await;
        let answered = Instant::now();
        lat.lock().expect("latencies").push(answered - due);
        if !ok {
            return;
        }
        let first = self.seq[i].fetch_add(RECORDS_PER_VISIT, Ordering::Relaxed) + 1;
        let start = now - ITEM * RECORDS_PER_VISIT as i32;
        let records = (0..RECORDS_PER_VISIT)
            .map(|k| Record {
                seq: first + k,
                entry: Entry {
                    start: start + ITEM * k as i32,
                    end: start + ITEM * (k as i32 + 1),
                    cont: false,
                    what: What::Play { playlist: "main".into(), item: format!("科普-{}", k % 7), feed_version: Some(42) },
                },
            })
            .collect();
        let batch = Batch { stream: format!("{i:032x}"), records };
        if self.post(client, &format!("api/v1/screens/{id}/proof"), token, &batch).await {
            self.stored.fetch_add(RECORDS_PER_VISIT, Ordering::Relaxed);
        }
        lat.lock().expect("latencies").push(answered.elapsed());
    }

    async fn post(&self, client: &reqwest::Client, path: &str, token: &str, body: &impl serde::Serialize) -> bool {
        let url = self.base.join(path).expect("url");
        let body = serde_json::to_vec(body).expect("JSON");
        let ok = match client.post(url).bearer_auth(token).header(reqwest::header::CONTENT_TYPE, "application/json").body(body).send().await {
            Ok(r) => r.status().is_success(),
            Err(_) => false,
        };
        if ok {
            self.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }
}

/// Visits at `rate` a second for [`PACED_FOR`]: latencies, time, requests.
async fn paced(client: &reqwest::Client, fleet: &Arc<Fleet>, rate: f64) -> (Vec<Duration>, Duration, u64) {
    let lat = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let visits = (rate * PACED_FOR.as_secs_f64()) as u64;
    let mut tasks = Vec::new();
    for v in 0..visits {
        let due = start + Duration::from_secs_f64(v as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let (client, fleet, lat) = (client.clone(), fleet.clone(), lat.clone());
        tasks.push(tokio::spawn(async move { fleet.visit(&client, due, &lat).await }));
    }
    finish(tasks, start, &lat).await
}

/// [`FLAT_OUT_AT_ONCE`] screens at a time for [`FLAT_OUT_FOR`].
async fn flat_out(client: &reqwest::Client, fleet: &Arc<Fleet>) -> (Vec<Duration>, Duration, u64) {
    let lat = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let workers: Vec<_> = (0..FLAT_OUT_AT_ONCE)
        .map(|_| {
            let (client, fleet, lat) = (client.clone(), fleet.clone(), lat.clone());
            tokio::spawn(async move {
                while start.elapsed() < FLAT_OUT_FOR {
                    fleet.visit(&client, Instant::now(), &lat).await;
                }
            })
        })
        .collect();
    finish(workers, start, &lat).await
}

/// Waits for `tasks`: the latencies they gathered, the time since `start`
/// and the number of requests.
async fn finish(tasks: Vec<tokio::task::JoinHandle<()>>, start: Instant, lat: &Mutex<Vec<Duration>>) -> (Vec<Duration>, Duration, u64) {
    for t in tasks {
        let _ = t.await;
    }
    let took = start.elapsed();
    let lat = std::mem::take(&mut *lat.lock().expect("latencies"));
    let n = lat.len() as u64;
    (lat, took, n)
}

/// Prints a run's figures; requests per second count only those answered
/// 2xx (a fleet too small for the run hits its screens' rate limits).
fn report(what: &str, lat: &[Duration], took: Duration, n: u64, fleet: &Fleet) {
    let ok = fleet.ok.swap(0, Ordering::Relaxed);
    let refused = fleet.errors.swap(0, Ordering::Relaxed);
    if refused > 0 {
        println!("  ({refused} of {n} requests refused or failed: too few screens for this run, or the service is overloaded; their times are in the latencies)");
    }
    let mut ms: Vec<f64> = lat.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms.get(((ms.len() as f64 * q) as usize).min(ms.len().saturating_sub(1))).copied().unwrap_or(f64::NAN);
    println!(
        "{what}: {ok} requests answered in {:.1} s = {:.0} requests/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {refused} refused or failed (target: p99 under 100 ms)",
        took.as_secs_f64(),
        ok as f64 / took.as_secs_f64(),
        at(0.50),
        at(0.99),
        ms.last().copied().unwrap_or(f64::NAN),
    );
}

/// A running `estation-central serve`, stopped on drop.
struct Service {
    child: Child,
    url: reqwest::Url,
}

impl Service {
    fn start(db: &str, feed: &std::path::Path) -> Service {
        let log = std::fs::File::create(std::env::temp_dir().join("estation-bench-central.log")).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_estation-central"))
            .args(["--db", db, "serve", "--listen", "127.0.0.1:0", "--feed"])
            .arg(feed)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start estation-central serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the listening line");
        let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("not a listening line: {line:?}"));
        Service { child, url: reqwest::Url::parse(&format!("{url}/")).expect("a URL") }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
