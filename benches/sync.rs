//! Sync and feed-server figures (not a pass/fail test): run with
//! `scripts/bench-sync`, which installs nginx and builds without Bevy.
//!
//! Every byte is counted on the wire by a TCP relay between the kiosk and
//! the server, so the figures are what a village link would carry.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use estation::store::cache::Cache;
use estation::publish::build::{build, BuildOptions};
use estation::net::sync::{Options, Source, Syncer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "../tests/it/common/nginx.rs"]
#[allow(dead_code)] // the tests use more of it
mod nginx;

const ITEMS: usize = 1000;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test` probes benches with --list
    }
    let work = tempfile::tempdir().expect("temp dir");
    let src = work.path().join("src");
    let feed = work.path().join("feed");
    std::fs::create_dir_all(&src).expect("mkdir");
    let key = SigningKey::from_bytes(&[42; 32]);

    // A 1,000-item playlist of distinct small pictures.
    let mut text = String::from("id = \"big\"\n");
    for i in 0..ITEMS {
        picture(&src.join(format!("p{i}.png")), i as u32);
        text.push_str(&format!("[[items]]\nkind = \"image\"\npath = \"p{i}.png\"\nduration = \"5s\"\n"));
    }
    std::fs::write(src.join("big.toml"), text).expect("write playlist");
    let build_feed = || {
        build(&BuildOptions { playlists: &src, alerts: None, key: &key, out: &feed, expires_in: Duration::from_secs(86_400), now: chrono::Utc::now() })
            .expect("build")
    };
    let t = Instant::now();
    let report = build_feed();
    println!("feed: {ITEMS} items, {} files, {:.1} MB, built in {:.2} s", report.blobs, report.total_bytes as f64 / 1e6, t.elapsed().as_secs_f64());

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let server = start_server(feed.clone());
    let relay = rt.block_on(Relay::start(server));
    let url = format!("http://{}/", relay.addr);
    let cache_dir = work.path().join("cache");
    let mut opts = Options::new(key.verifying_key());
    opts.concurrency = 8;
    let syncer = Syncer::new(Cache::open(&cache_dir).expect("cache"), Source::http(&url).expect("url"), opts).expect("syncer");

    let t = Instant::now();
    let out = rt.block_on(syncer.once()).expect("first sync");
    let took = t.elapsed().as_secs_f64();
    let (req, bytes) = relay.take();
    println!("full sync from loopback: {took:.2} s, {req} requests, {:.1} MB on the wire ({out})", bytes as f64 / 1e6);

    let _ = rt.block_on(syncer.once()).expect("poll");
    let (req, bytes) = relay.take();
    println!("no-change poll: {req} request(s) (the manifest and the warnings document), {bytes} bytes on the wire (target: under 1 KB)");

    // A warning: only the warnings document and the CAP message change.
    let sent = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00")).format("%Y-%m-%dT%H:%M:%S+08:00");
    let cap = format!(
        r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>bench-1</identifier><sender>changxing-qxt</sender><sent>{sent}</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope><info><category>Met</category><event>暴雨</event><urgency>Immediate</urgency><severity>Severe</severity><certainty>Likely</certainty><headline>长兴县气象台发布暴雨红色预警</headline><description>预计未来3小时降雨量将达100毫米以上，请注意防范。</description><area><areaDesc>长兴县</areaDesc><geocode><valueName>行政区划代码</valueName><value>330522</value></geocode></area></info></alert>"#
    );
    estation::publish::alerts::publish(&feed, &key, Path::new("bench.xml"), cap.as_bytes(), chrono::Utc::now()).expect("publish a warning");
    let manifest = std::fs::metadata(feed.join("manifest.json")).expect("manifest").len();
    let _ = rt.block_on(syncer.once()).expect("warning");
    let (req, bytes) = relay.take();
    println!(
        "a warning: {req} requests, {bytes} bytes on the wire (target: a few KB whatever the feed; the manifest, not fetched, is {manifest} bytes; the CAP message {} bytes)",
        cap.len()
    );

    picture(&src.join("p500.png"), 999_999);
    let (_, changed) = estation::core::feed::Digest::of_file(&src.join("p500.png")).expect("hash");
    build_feed();
    let manifest = std::fs::metadata(feed.join("manifest.json")).expect("manifest").len();
    let _ = rt.block_on(syncer.once()).expect("change");
    let (req, bytes) = relay.take();
    println!(
        "one-file change: {req} requests, {bytes} bytes on the wire; the file is {changed} bytes and the manifest {manifest} (overhead {} bytes of HTTP headers)",
        bytes as i64 - changed as i64 - manifest as i64
    );

    // 304 answers per second: the embedded server against nginx, same
    // folder, same client, same concurrency.
    let ours = rt.block_on(hammer(server, 5));
    println!("feed serve: {ours:.0} 304 answers/s");
    match nginx::Nginx::start(&feed, "auto", false) {
        Ok(nginx) => {
            let theirs = rt.block_on(hammer(nginx.addr, 5));
            println!("nginx:      {theirs:.0} 304 answers/s  (feed serve at {:.0} % of nginx; target at least 50 %)", 100.0 * ours / theirs);
        }
        Err(e) => println!("nginx:      {e}; no comparison"),
    }
}

fn picture(path: &Path, seed: u32) {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    let img = image::RgbImage::from_fn(48, 48, |_, _| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        image::Rgb([x as u8, (x >> 8) as u8, (x >> 16) as u8])
    });
    img.save(path).expect("write picture");
}

/// The embedded server on its own threads, as `estation feed serve` runs
/// (so it does not share the load generator's runtime; nginx does not).
fn start_server(feed: std::path::PathBuf) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("server runtime");
        let _ = rt.block_on(estation::net::serve::serve(feed, "127.0.0.1:0".parse().expect("addr"), estation::net::serve::Limits::default(), |a| {
            let _ = tx.send(a);
        }));
    });
    rx.recv().expect("server address")
}

/// Relays TCP to `to`, counting bytes both ways and request heads.
struct Relay {
    addr: SocketAddr,
    bytes: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
}

impl Relay {
    async fn start(to: SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let bytes = Arc::new(AtomicU64::new(0));
        let requests = Arc::new(AtomicU64::new(0));
        let (b, r) = (bytes.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (b, r) = (b.clone(), r.clone());
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(to).await else { return };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    let up = pump(cr, sw, b.clone(), Some(r));
                    let down = pump(sr, cw, b, None);
                    tokio::join!(up, down);
                });
            }
        });
        Relay { addr, bytes, requests }
    }

    fn take(&self) -> (u64, u64) {
        (self.requests.swap(0, Ordering::Relaxed), self.bytes.swap(0, Ordering::Relaxed))
    }
}

/// Copies one direction of a relayed connection, counting its bytes and,
/// if asked, its request heads (GET requests have no body: each head starts
/// a request).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    bytes: Arc<AtomicU64>,
    requests: Option<Arc<AtomicU64>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        bytes.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(r) = &requests {
            r.fetch_add(buf[..n].windows(4).filter(|w| w == b"GET ").count() as u64, Ordering::Relaxed);
        }
    }
    let _ = to.shutdown().await;
}

/// Conditional GETs of the manifest from 32 keep-alive clients for
/// `secs` seconds; returns 304 answers per second.
async fn hammer(addr: SocketAddr, secs: u64) -> f64 {
    let client = estation::net::sync::client_builder().pool_max_idle_per_host(64).build().expect("client");
    let url = format!("http://{addr}/manifest.json");
    let etag = client.get(&url).send().await.ok().and_then(|r| r.headers().get("etag").cloned()).expect("an ETag");
    let count = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (client, url, etag, count) = (client.clone(), url.clone(), etag.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                if let Ok(r) = client.get(&url).header("if-none-match", etag.clone()).send().await
                    && r.status() == 304 {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    count.load(Ordering::Relaxed) as f64 / secs as f64
}
