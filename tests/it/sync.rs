//! Sync against a real HTTP server on 127.0.0.1 that fails, delays, cuts,
//! truncates and corrupts on demand; and the folder (USB stick) source.
//! Whatever happens, the cache holds the last good version, whole. The
//! cache's own damage (rot, a lost current.json, leftovers of a kill) is
//! done to a real cache and healed by the real `estation` binary.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::feedsrv::FeedServer;
use ed25519_dalek::SigningKey;
use estation::store::cache::Cache;
use estation::publish::build::{build, BuildOptions};
use estation::core::feed::{Digest, Verified};
use estation::net::sync::{Options, Outcome, Source, SyncError, Syncer};

/// A feed folder built from one playlist with `n` noisy pictures (each
/// ~190 KB, so a cut lands mid-file).
struct Fixture {
    src: tempfile::TempDir,
    feed: tempfile::TempDir,
    key: SigningKey,
}

impl Fixture {
    fn new(n: usize, title: &str) -> Fixture {
        let f = Fixture { src: tempfile::tempdir().unwrap(), feed: tempfile::tempdir().unwrap(), key: SigningKey::from_bytes(&[9; 32]) };
        f.write(n, title, 1);
        f.build();
        f
    }

    fn write(&self, n: usize, title: &str, seed: u32) {
        let mut items = format!("id = \"main\"\n[[items]]\nkind = \"text\"\ntitle = \"{title}\"\n");
        for i in 0..n {
            let name = format!("pic{i}.png");
            noise(&self.src.path().join(&name), seed * 1000 + i as u32);
            items.push_str(&format!("[[items]]\nkind = \"image\"\npath = \"{name}\"\n"));
        }
        std::fs::write(self.src.path().join("main.toml"), items).unwrap();
    }

    fn build(&self) -> u64 {
        self.build_at(chrono::Utc::now(), Duration::from_secs(86_400))
    }

    /// A build as if made at `now`, accepted as new for `expires_in`.
    fn build_at(&self, now: chrono::DateTime<chrono::Utc>, expires_in: Duration) -> u64 {
        let playlist = self.src.path().join("main.toml");
        build(&BuildOptions {
            playlists: &playlist,
            alerts: None,
            key: &self.key,
            out: self.feed.path(),
            expires_in,
            now,
        })
        .unwrap()
        .version
    }

    fn manifest(&self) -> Verified {
        let bytes = std::fs::read(self.feed.path().join("manifest.json")).unwrap();
        estation::core::feed::manifest::verify_signature(&bytes, &self.key.verifying_key()).unwrap()
    }
}

fn noise(path: &Path, seed: u32) {
    noise_sized(path, seed, 220);
}

/// A noisy picture `side` pixels square: about `side² × 4` bytes of PNG.
fn noise_sized(path: &Path, seed: u32, side: u32) {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let img = image::RgbaImage::from_fn(side, side, |_, _| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        image::Rgba([x as u8, (x >> 8) as u8, (x >> 16) as u8, 255])
    });
    img.save(path).unwrap();
}

fn fast_options(key: &SigningKey) -> Options {
    let mut o = Options::new(key.verifying_key());
    o.backoff_base = Duration::from_millis(20);
    o.backoff_max = Duration::from_millis(100);
    // Short, but not so short that a loaded 2-core CI machine times out a
    // healthy local answer (the timeout tests set their own).
    o.read_timeout = Duration::from_secs(5);
    o.connect_timeout = Duration::from_secs(2);
    o
}

fn syncer(cache: &Path, source: Source, opts: Options) -> Syncer {
    Syncer::new(Cache::open(cache).unwrap(), source, opts).unwrap()
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

fn http(server: &FeedServer) -> Source {
    Source::http(&server.url()).unwrap()
}

/// Every file in `blobs/` matches its name: nothing unverified is ever there.
fn assert_cache_sound(cache: &Path) {
    for e in std::fs::read_dir(cache.join("blobs")).unwrap() {
        let e = e.unwrap();
        let name: Digest = e.file_name().to_str().unwrap().parse().unwrap();
        assert_eq!(Digest::of_file(&e.path()).unwrap().0, name, "{}", e.path().display());
    }
}

fn current_version(cache: &Path, key: &SigningKey) -> Option<u64> {
    Cache::at(cache).current(&key.verifying_key()).unwrap().map(|v| v.manifest.version)
}

/// A feed of `n` pictures served over HTTP, and an empty kiosk cache with
/// a syncer for it (its options tuned by `tune`).
struct Setup {
    fx: Fixture,
    server: FeedServer,
    cache: tempfile::TempDir,
    s: Syncer,
}

fn setup(n: usize, tune: impl FnOnce(&mut Options)) -> Setup {
    let fx = Fixture::new(n, "甲");
    let server = FeedServer::start(fx.feed.path().to_path_buf());
    let cache = tempfile::tempdir().unwrap();
    let mut opts = fast_options(&fx.key);
    tune(&mut opts);
    let s = syncer(cache.path(), http(&server), opts);
    Setup { fx, server, cache, s }
}

#[test]
fn first_sync_fetches_everything_and_an_unchanged_poll_is_one_small_304() {
    let Setup { fx, server, cache, s } = setup(3, |_| {});
    let v = fx.manifest().manifest.version;
    assert_eq!(block(s.once()).unwrap(), Outcome::Updated { from: None, to: v, files: 4, bytes: fx.manifest().manifest.total_bytes() });
    assert_cache_sound(cache.path());
    // The manifest, its four files, and the warnings document.
    assert_eq!(server.take_seen().len(), 6);

    // Unchanged: the manifest and the warnings document, each one small 304.
    assert_eq!(block(s.once()).unwrap(), Outcome::Unchanged { version: Some(v) });
    let seen = server.take_seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!((seen[0].path.as_str(), seen[0].status), ("/manifest.json", 304));
    assert_eq!((seen[1].path.as_str(), seen[1].status), ("/alerts.json", 304));
    for s in &seen {
        assert!(s.if_none_match.is_some() && s.bytes < 1024, "{s:?}");
    }
}

#[test]
fn a_one_file_change_fetches_that_file_and_the_manifest() {
    let Setup { fx, server, cache, s } = setup(3, |_| {});
    block(s.once()).unwrap();
    server.take_seen();

    noise(&fx.src.path().join("pic1.png"), 4242);
    let v2 = fx.build();
    let Outcome::Updated { to, files, .. } = block(s.once()).unwrap() else { panic!("no update") };
    assert_eq!(to, v2);
    // Only the new picture: the playlist text is unchanged (the manifest
    // maps its paths to the new digest).
    assert_eq!(files, 1);
    // And the warnings document, which every build renews (a few hundred bytes).
    let paths: Vec<String> = server.take_seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths.len(), 3, "{paths:?}");
    assert_eq!(paths[0], "/manifest.json");
    let new_pic = fx.manifest().manifest.playlists[0].media["pic1.png"];
    assert!(paths[1].contains(&new_pic.hex()), "{paths:?}");
    assert_eq!(paths[2], "/alerts.json");
    assert_cache_sound(cache.path());
}

#[test]
fn server_down_and_500s_leave_the_last_good_version() {
    let Setup { fx, server, cache, s } = setup(1, |_| {});
    block(s.once()).unwrap();
    let good = current_version(cache.path(), &fx.key);

    fx.write(1, "乙", 2);
    fx.build();
    // 500s for every try of this sync: refused, nothing changes.
    server.set(|k| k.fail = Some((500, 100)));
    let err = block(s.once()).unwrap_err().to_string();
    assert!(err.contains("HTTP 500"), "{err}");
    assert_eq!(current_version(cache.path(), &fx.key), good);
    let status = estation::store::status::SyncStatus::load(&cache.path().join("status.json"));
    assert!(status.last_error.as_deref().is_some_and(|e| e.contains("500")), "{status:?}");

    // A few 500s, then the server recovers: the retries get through.
    server.set(|k| k.fail = Some((503, 2)));
    assert!(matches!(block(s.once()).unwrap(), Outcome::Updated { .. }));
    assert_cache_sound(cache.path());

    // Nobody listening at all.
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let s_down = syncer(cache.path(), Source::http(&format!("http://{down}/")).unwrap(), fast_options(&fx.key));
    let before = current_version(cache.path(), &fx.key);
    let err = block(s_down.once()).unwrap_err().to_string();
    assert!(err.contains(&down.to_string()), "{err}");
    assert_eq!(current_version(cache.path(), &fx.key), before);
}

#[test]
fn very_slow_answers_time_out_without_harm() {
    let Setup { fx, server, cache, s } = setup(1, |o| {
        o.attempts = 2;
        o.read_timeout = Duration::from_millis(300);
    });
    server.set(|k| k.delay = Duration::from_secs(3));
    let err = block(s.once()).unwrap_err().to_string();
    assert!(err.contains("timed out"), "{err}");
    assert_eq!(current_version(cache.path(), &fx.key), None);
}

#[test]
fn a_cut_connection_resumes_with_range() {
    let Setup { fx: _fx, server, cache, s } = setup(2, |o| o.concurrency = 1);
    server.set(|k| k.cut_after = Some((50_000, 1)));
    assert!(matches!(block(s.once()).unwrap(), Outcome::Updated { files: 3, .. }));
    let seen = server.take_seen();
    let resumed: Vec<_> = seen.iter().filter(|s| s.range.is_some()).collect();
    assert_eq!(resumed.len(), 1, "{seen:?}");
    assert_eq!(resumed[0].range.as_deref(), Some("bytes=50000-"));
    assert_eq!(resumed[0].status, 206);
    assert_cache_sound(cache.path());
}

#[test]
fn corrupted_and_truncated_files_are_refetched_never_used() {
    let Setup { fx, server, cache, s } = setup(2, |_| {});
    server.set(|k| {
        k.corrupt = 1;
        k.truncate = 1;
    });
    assert!(matches!(block(s.once()).unwrap(), Outcome::Updated { files: 3, .. }));
    let blob_gets = server.take_seen().iter().filter(|s| s.path.starts_with("/blobs/")).count();
    assert_eq!(blob_gets, 5, "3 files, 2 of them fetched twice");
    assert_cache_sound(cache.path());

    // A server that corrupts every time: the version is refused whole.
    fx.write(2, "乙", 3);
    fx.build();
    server.set(|k| k.corrupt = 1000);
    let before = current_version(cache.path(), &fx.key);
    let err = block(s.once()).unwrap_err().to_string();
    assert!(err.contains("does not match its digest"), "{err}");
    assert_eq!(current_version(cache.path(), &fx.key), before);
    assert_cache_sound(cache.path());
    assert_eq!(std::fs::read_dir(cache.path().join("partial")).unwrap().count(), 0);
}

#[test]
fn tampered_other_key_rolled_back_and_expired_manifests_are_refused() {
    let Setup { fx, server: _server, cache, s } = setup(1, |_| {});
    block(s.once()).unwrap();
    let good = std::fs::read(cache.path().join("current.json")).unwrap();
    let manifest_path = fx.feed.path().join("manifest.json");
    let refused = |expect: &str| {
        let err = block(s.once()).unwrap_err();
        assert!(matches!(err, SyncError::Manifest { .. }), "{err}");
        assert!(err.to_string().contains(expect), "{err}");
        assert_eq!(std::fs::read(cache.path().join("current.json")).unwrap(), good);
    };

    // Tampered: a newer build with one size edited after signing.
    fx.write(1, "乙", 2);
    fx.build();
    let text = std::fs::read_to_string(&manifest_path).unwrap();
    let size = fx.manifest().manifest.media[0].size;
    std::fs::write(&manifest_path, text.replace(&format!("\"size\": {size}"), &format!("\"size\": {}", size + 1))).unwrap();
    refused("tampered");

    // Signed by another key.
    let other = SigningKey::from_bytes(&[10; 32]);
    let mut m = estation::core::feed::manifest::verify_signature(text.as_bytes(), &fx.key.verifying_key()).unwrap().manifest;
    std::fs::write(&manifest_path, estation::core::feed::manifest::sign(&m, &other)).unwrap();
    refused("signed by another key");

    // Rolled back: an older version, properly signed.
    m.version = 1;
    std::fs::write(&manifest_path, estation::core::feed::manifest::sign(&m, &fx.key)).unwrap();
    refused("rollback refused");

    // Already expired when it arrives.
    m.version = u64::MAX / 2;
    m.created = (chrono::Utc::now() - chrono::Duration::days(30)).fixed_offset();
    m.expires = (chrono::Utc::now() - chrono::Duration::days(1)).fixed_offset();
    std::fs::write(&manifest_path, estation::core::feed::manifest::sign(&m, &fx.key)).unwrap();
    refused("expired");

    // Not signed at all.
    std::fs::write(&manifest_path, br#"{"signed": {"format": "estation-feed/1"}, "signatures": []}"#).unwrap();
    refused("not signed");
}

#[test]
fn a_usb_folder_is_verified_the_same_way() {
    let fx = Fixture::new(2, "甲");
    let cache = tempfile::tempdir().unwrap();
    // A corrupted copy on the stick: refused, nothing installed.
    let stick = tempfile::tempdir().unwrap();
    copy_dir(fx.feed.path(), stick.path());
    let victim = fx.manifest().manifest.media[0].feed_path();
    let mut bytes = std::fs::read(stick.path().join(&victim)).unwrap();
    bytes[100] ^= 1;
    std::fs::write(stick.path().join(&victim), bytes).unwrap();
    let s = syncer(cache.path(), Source::Dir(stick.path().to_path_buf()), fast_options(&fx.key));
    let err = block(s.once()).unwrap_err().to_string();
    assert!(err.contains("does not match its digest"), "{err}");
    assert_eq!(current_version(cache.path(), &fx.key), None);

    // The good copy: the files already verified from the stick are kept,
    // the one that failed is copied again.
    let s = syncer(cache.path(), Source::Dir(fx.feed.path().to_path_buf()), fast_options(&fx.key));
    assert!(matches!(block(s.once()).unwrap(), Outcome::Updated { files: 1, .. }));
    assert_eq!(current_version(cache.path(), &fx.key), Some(fx.manifest().manifest.version));
    assert_cache_sound(cache.path());
}

#[test]
fn too_little_room_keeps_the_current_version_and_says_why() {
    let Setup { fx, server, cache, s } = setup(1, |_| {});
    block(s.once()).unwrap();
    let good = current_version(cache.path(), &fx.key);

    fx.write(3, "乙", 5);
    fx.build();
    let mut opts = fast_options(&fx.key);
    opts.budget = 400_000;
    let s = syncer(cache.path(), http(&server), opts);
    let err = block(s.once()).unwrap_err().to_string();
    assert!(err.starts_with("not enough space"), "{err}");
    assert_eq!(current_version(cache.path(), &fx.key), good);
    let status = estation::store::status::SyncStatus::load(&cache.path().join("status.json"));
    assert!(status.last_error.is_some_and(|e| e.starts_with("not enough space")));
}

#[test]
fn the_bandwidth_cap_holds() {
    let Setup { fx, server: _server, cache: _cache, s } = setup(2, |o| o.max_bytes_per_sec = Some(200_000));
    let total = fx.manifest().manifest.total_bytes();
    let start = std::time::Instant::now();
    block(s.once()).unwrap();
    let took = start.elapsed().as_secs_f64();
    // One second's worth may pass at once; the rest at the cap.
    let floor = (total as f64 - 200_000.0) / 200_000.0;
    assert!(took >= floor * 0.95, "{total} bytes in {took:.2}s, cap 200 kB/s");
}

fn copy_dir(from: &Path, to: &Path) {
    for e in walk(from) {
        let rel = e.strip_prefix(from).unwrap();
        std::fs::create_dir_all(to.join(rel).parent().unwrap()).unwrap();
        std::fs::copy(&e, to.join(rel)).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A kiosk config for the real binary in `dir`: syncing from `server`,
/// trusting the fixture's key, its cache in `dir/cache`; `feed` adds lines
/// under `[feed]`.
fn kiosk(dir: &Path, server: &FeedServer, key: &SigningKey, feed: &str) -> PathBuf {
    let key = estation::core::feed::keys::public_key_string(&key.verifying_key());
    let cache = dir.join("cache");
    common::write_config(dir, &format!("[feed]\nurl = \"{}\"\npublic_key = \"{key}\"\n{feed}[cache]\ndir = \"{}\"\n", server.url(), cache.display()))
}

/// `estation sync --once`, which must succeed; its stdout and stderr.
fn sync_once(config: &Path) -> (String, String) {
    let out = common::estation(config).args(["sync", "--once"]).output().unwrap();
    let (o, e) = (common::stdout(&out), common::stderr(&out));
    assert!(out.status.success(), "sync failed:\n{o}{e}");
    (o, e)
}

/// `estation cache verify`: success, and what it printed.
fn cache_verify(config: &Path) -> (bool, String) {
    let out = common::estation(config).args(["cache", "verify"]).output().unwrap();
    (out.status.success(), common::stdout(&out) + &common::stderr(&out))
}

/// Flips one bit in the middle of a file: same size, different content.
fn rot(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_rotten_playlist_is_found_at_the_next_sync_start_fetched_again_and_the_cache_verifies() {
    let fx = Fixture::new(2, "甲");
    let server = FeedServer::start(fx.feed.path().to_path_buf());
    let kiosk_dir = tempfile::tempdir().unwrap();
    let config = kiosk(kiosk_dir.path(), &server, &fx.key, "");
    sync_once(&config);
    let playlist = fx.manifest().manifest.playlists[0].sha256;
    let blob = kiosk_dir.path().join("cache/blobs").join(playlist.hex());
    rot(&blob);
    assert!(!cache_verify(&config).0, "the damage is visible before the sync");

    server.take_seen();
    let (out, err) = sync_once(&config);
    assert!(err.contains(&blob.display().to_string()) && err.contains("no longer matches its name"), "{err}");
    assert!(out.contains("was missing 1 file(s); fetched them again"), "{out}");
    // The manifest is unchanged (a 304): the sync noticed the current
    // version was incomplete, and fetched just that file.
    let seen = server.take_seen();
    assert_eq!((seen[0].path.as_str(), seen[0].status), ("/manifest.json", 304), "{seen:?}");
    let blobs: Vec<_> = seen.iter().filter(|s| s.path.starts_with("/blobs/")).collect();
    assert_eq!(blobs.len(), 1, "{seen:?}");
    assert!(blobs[0].path.contains(&playlist.hex()), "{seen:?}");
    assert_cache_sound(&kiosk_dir.path().join("cache"));
    let (ok, said) = cache_verify(&config);
    assert!(ok && said.starts_with("ok: version"), "{said}");
}

#[test]
fn a_rotten_large_picture_is_found_by_the_scrub_and_fetched_again_by_the_next_sync() {
    let fx = Fixture::new(1, "甲");
    // Bigger than the start check's limit: only the scrub looks at it.
    noise_sized(&fx.src.path().join("big.png"), 77, 640);
    let playlist = fx.src.path().join("main.toml");
    let text = std::fs::read_to_string(&playlist).unwrap();
    std::fs::write(&playlist, text + "[[items]]\nkind = \"image\"\npath = \"big.png\"\n").unwrap();
    fx.build();
    let big = fx.manifest().manifest.playlists[0].media["big.png"];
    let size = fx.manifest().manifest.media.iter().find(|b| b.sha256 == big).unwrap().size;
    assert!(size > estation::store::cache::START_CHECK_MAX_BYTES, "{size} bytes is not large");
    let server = FeedServer::start(fx.feed.path().to_path_buf());
    let kiosk_dir = tempfile::tempdir().unwrap();
    let config = kiosk(kiosk_dir.path(), &server, &fx.key, "");
    sync_once(&config);
    let blob = kiosk_dir.path().join("cache/blobs").join(big.hex());
    rot(&blob);
    let (ok, said) = cache_verify(&config);
    assert!(!ok && said.contains(&blob.display().to_string()), "{said}");

    let (_, err) = sync_once(&config);
    assert!(err.contains(&blob.display().to_string()) && err.contains("no longer matches its name"), "{err}");
    assert!(!blob.exists(), "the scrub removes it");
    server.take_seen();
    let (out, _) = sync_once(&config);
    assert!(out.contains("was missing 1 file(s); fetched them again"), "{out}");
    let seen = server.take_seen();
    assert!(seen.iter().any(|s| s.path.contains(&big.hex()) && s.status == 200), "{seen:?}");
    assert_cache_sound(&kiosk_dir.path().join("cache"));
    let (ok, said) = cache_verify(&config);
    assert!(ok, "{said}");
}

#[test]
fn an_older_signed_manifest_is_refused_as_rollback_after_current_json_is_lost_or_damaged() {
    let fx = Fixture::new(1, "甲");
    let server = FeedServer::start(fx.feed.path().to_path_buf());
    let kiosk_dir = tempfile::tempdir().unwrap();
    let config = kiosk(kiosk_dir.path(), &server, &fx.key, "");
    let manifest = fx.feed.path().join("manifest.json");
    sync_once(&config);
    let old = std::fs::read(&manifest).unwrap();
    fx.write(1, "乙", 2);
    let newest = fx.build();
    sync_once(&config);
    let new = std::fs::read(&manifest).unwrap();
    assert_eq!(common::operator::status_json(&config)["highest_version"].as_u64(), Some(newest));

    let cache = kiosk_dir.path().join("cache");
    let refused = |config: &Path| {
        let out = common::estation(config).args(["sync", "--once"]).output().unwrap();
        assert!(!out.status.success());
        let err = common::stderr(&out);
        assert!(err.contains("rollback refused"), "{err}");
        let status = common::estation(config).arg("status").output().unwrap();
        let text = common::stdout(&status);
        assert!(text.lines().any(|l| l.starts_with("last error:") && l.contains("rollback refused")), "{text}");
    };
    // current.json lost, the old (validly signed) manifest served again.
    std::fs::remove_file(cache.join("current.json")).unwrap();
    std::fs::write(&manifest, &old).unwrap();
    refused(&config);
    assert!(!cache.join("current.json").exists());

    // current.json damaged, and one of the two records of the highest too.
    std::fs::write(cache.join("current.json"), b"{\"signed\": garbage").unwrap();
    std::fs::write(cache.join("highest.json"), b"").unwrap();
    refused(&config);

    // The newest version itself is taken back, and plays again.
    std::fs::write(&manifest, &new).unwrap();
    sync_once(&config);
    assert_eq!(current_version(&cache, &fx.key), Some(newest));
}

#[test]
fn a_feed_built_longer_ago_than_max_age_but_not_expired_is_flagged_frozen() {
    let fx = Fixture::new(1, "甲");
    let ten_days = chrono::Duration::days(10);
    fx.build_at(chrono::Utc::now() - ten_days, Duration::from_secs(30 * 86_400));
    let server = FeedServer::start(fx.feed.path().to_path_buf());
    for (max_age, frozen) in [("7d", true), ("30d", false)] {
        let kiosk_dir = tempfile::tempdir().unwrap();
        let config = kiosk(kiosk_dir.path(), &server, &fx.key, &format!("max_age = \"{max_age}\"\n"));
        sync_once(&config);
        let st = common::operator::status_json(&config);
        assert_eq!((st["frozen"].as_bool(), st["stale"].as_bool()), (Some(frozen), Some(false)), "max_age {max_age}: {st}");
        assert_eq!(st["sync"]["frozen"].as_bool(), Some(frozen), "status.json, max_age {max_age}: {st}");
        let text = common::stdout(&common::estation(&config).arg("status").output().unwrap());
        assert_eq!(text.contains("FROZEN"), frozen, "max_age {max_age}:\n{text}");
    }
}

#[test]
fn leftovers_of_a_kill_9_are_cleaned_at_the_next_start_and_the_download_still_resumes() {
    let fx = Fixture::new(1, "甲");
    let server = FeedServer::start(fx.feed.path().to_path_buf());
    let kiosk_dir = tempfile::tempdir().unwrap();
    let config = kiosk(kiosk_dir.path(), &server, &fx.key, "");
    sync_once(&config);
    fx.write(2, "乙", 2);
    fx.build();

    // Kill the kiosk's sync mid-file.
    server.set(|k| k.rate = Some(60_000));
    let mut child = common::Killed::spawn(common::estation(&config).args(["sync", "--once"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()));
    let cache = kiosk_dir.path().join("cache");
    common::wait_until(Duration::from_secs(60), "the download to pass 50 kB", || {
        std::fs::read_dir(cache.join("partial")).unwrap().flatten().any(|e| e.metadata().is_ok_and(|m| m.len() > 50_000))
    });
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();
    let partials = std::fs::read_dir(cache.join("partial")).unwrap().flatten().filter(|e| e.metadata().is_ok_and(|m| m.len() > 0)).count();

    // What a kill inside an atomic write leaves, a while ago; and a partial
    // download of a version long gone.
    std::fs::create_dir_all(cache.join("alert-media")).unwrap();
    let temps = [cache.join(".tmp-Ab12Cd"), cache.join("blobs/.tmp-Ef34Gh"), cache.join("alert-media/.tmp-Ij56Kl")];
    for t in &temps {
        std::fs::write(t, b"half a write").unwrap();
        let back = std::time::SystemTime::now() - estation::store::cache::STALE_TEMP_AGE - Duration::from_secs(10);
        std::fs::File::options().write(true).open(t).unwrap().set_modified(back).unwrap();
    }
    let orphan = cache.join("partial").join(Digest::of(b"a file of an old version").hex());
    std::fs::write(&orphan, b"a file of").unwrap();

    server.set(|k| k.rate = None);
    server.take_seen();
    let (out, _) = sync_once(&config);
    assert!(out.contains("updated from version"), "{out}");
    let resumed = server.take_seen().into_iter().filter(|s| s.range.is_some()).count();
    assert_eq!(resumed, partials, "each download the kill cut resumes");
    for t in temps.iter().chain([&orphan]) {
        assert!(!t.exists(), "{} left", t.display());
    }
    assert_cache_sound(&cache);
    assert!(cache_verify(&config).0);
}


/// A kiosk whose background sync (`estation sync`, killed on drop) is
/// downloading a two-picture feed throttled to 20 KB/s (≈ 380 KB: about
/// twenty seconds), under way when this returns.
struct Downloading {
    fx: Fixture,
    server: FeedServer,
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    background: common::Killed,
    status: std::path::PathBuf,
}

fn downloading() -> Downloading {
    let fx = Fixture::new(2, "网");
    let server = FeedServer::start(fx.feed.path().to_path_buf());
    let dir = tempfile::tempdir().unwrap();
    let config = kiosk(dir.path(), &server, &fx.key, "max_bytes_per_sec = 20000\ninterval = \"5s\"\n");
    let background = common::Killed::spawn(common::estation(&config).arg("sync").stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()));
    let status = dir.path().join("cache/status.json");
    common::wait_until(Duration::from_secs(20), "the background download to start", || {
        std::fs::read_to_string(&status).is_ok_and(|s| s.contains("\"pending\": {"))
    });
    Downloading { fx, server, dir, config, background, status }
}

impl Fixture {
    /// Another build of the same feed (same key), on a USB stick, not built yet.
    fn stick() -> Fixture {
        let stick = Fixture { src: tempfile::tempdir().unwrap(), feed: tempfile::tempdir().unwrap(), key: SigningKey::from_bytes(&[9; 32]) };
        stick.write(1, "优盘", 7);
        stick
    }
}

/// A slow host must not stop a USB import: while a throttled background
/// download runs (holding only the download lock), `sync --from` brings a
/// newer version in, and the background sync then never goes back to its
/// older one.
#[test]
fn a_usb_import_proceeds_while_a_throttled_background_download_runs() {
    let Downloading { fx, server: _server, dir, config, background, status } = downloading();
    // A newer build, on a stick.
    let stick = Fixture::stick();
    let usb_version = stick.build_at(chrono::Utc::now() + chrono::Duration::seconds(5), Duration::from_secs(86_400));
    let began = std::time::Instant::now();
    let out = common::estation(&config).args(["sync", "--from"]).arg(stick.feed.path()).output().unwrap();
    let took = began.elapsed();
    assert!(out.status.success(), "{}{}", common::stdout(&out), common::stderr(&out));
    assert!(took < Duration::from_secs(10), "the USB import waited {took:?} for the download");
    assert_eq!(current_version(&dir.path().join("cache"), &fx.key), Some(usb_version));
    // The background download finishes and does not roll the screen back.
    let http_cache = Cache::at(&dir.path().join("cache"));
    common::wait_until(Duration::from_secs(60), "the background download to finish (its files were taken?)", || {
        fx.manifest().manifest.blobs().iter().all(|b| http_cache.has(b))
    });
    // The background sync clears its pending download where it decides
    // whether to commit its version (or keep the newer one).
    common::wait_until(Duration::from_secs(30), "the background sync to decide on its download", || {
        std::fs::read_to_string(&status).is_ok_and(|s| !s.contains("\"pending\": {"))
    });
    drop(background);
    assert_eq!(current_version(&dir.path().join("cache"), &fx.key), Some(usb_version));
    let (ok, report) = cache_verify(&config);
    assert!(ok, "{report}");
}

/// The switch keeps two versions as the cache names them at that moment:
/// a USB import that brought an older version while a background download
/// ran leaves it current until the download's newer version takes over,
/// and it stays, whole, as the version before.
#[test]
fn a_usb_import_during_a_download_stays_whole_as_the_previous_version() {
    let Downloading { fx, server: _server, dir, config, background, status: _ } = downloading();
    // An older build on a stick: lower version than the one downloading.
    let stick = Fixture::stick();
    let usb_version = stick.build_at(chrono::Utc::now() - chrono::Duration::hours(1), Duration::from_secs(86_400));
    let http_version = fx.manifest().manifest.version;
    assert!(usb_version < http_version);
    let out = common::estation(&config).args(["sync", "--from"]).arg(stick.feed.path()).output().unwrap();
    assert!(out.status.success(), "{}{}", common::stdout(&out), common::stderr(&out));
    let cache = dir.path().join("cache");
    assert_eq!(current_version(&cache, &fx.key), Some(usb_version));
    common::wait_until(Duration::from_secs(90), "the background sync to switch to its newer version", || {
        current_version(&cache, &fx.key) == Some(http_version)
    });
    drop(background);
    let kept = Cache::at(&cache);
    let previous = kept.previous(&fx.key.verifying_key()).unwrap().expect("a previous version");
    assert_eq!(previous.manifest.version, usb_version);
    assert!(previous.manifest.blobs().iter().all(|b| kept.has(b)), "the version before the switch lost files");
    let (ok, report) = cache_verify(&config);
    assert!(ok, "{report}");
}

/// A CAP warning for the county, `n` making its identifier.
fn cap(n: u32) -> Vec<u8> {
    let sent = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap()).format("%Y-%m-%dT%H:%M:%S+08:00");
    format!(
        r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>w{n}</identifier><sender>changxing-qxt</sender><sent>{sent}</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
<info><category>Met</category><event>暴雨</event><urgency>Immediate</urgency><severity>Severe</severity><certainty>Likely</certainty><headline>暴雨红色预警 {n}</headline>
<area><areaDesc>长兴县</areaDesc><geocode><valueName>行政区划代码</valueName><value>330522</value></geocode></area></info></alert>"#
    )
    .into_bytes()
}

/// A warning changes only the small signed warnings document: the kiosk
/// fetches it and the one CAP file, a few KB, while the programme's manifest
/// (large here: 40 pictures) is a 304. A warnings document tampered with,
/// rolled back or signed by another key is refused and the one here stays;
/// and a broken manifest does not hold up a warning.
#[test]
fn a_warning_costs_a_few_kb_whatever_the_feed_and_its_document_is_checked_like_the_manifest() {
    let Setup { fx, server, cache, s } = setup(40, |_| {});
    block(s.once()).unwrap();
    server.take_seen();
    let manifest_bytes = std::fs::metadata(fx.feed.path().join("manifest.json")).unwrap().len();
    let publish = |n: u32| estation::publish::alerts::publish(fx.feed.path(), &fx.key, Path::new("w.xml"), &cap(n), chrono::Utc::now()).unwrap();
    let doc_path = fx.feed.path().join("alerts.json");
    let first_doc = std::fs::read(&doc_path).unwrap();
    publish(1);

    let v = fx.manifest().manifest.version;
    assert_eq!(block(s.once()).unwrap(), Outcome::Unchanged { version: Some(v) }, "the programme did not change");
    let seen = server.take_seen();
    let paths: Vec<(&str, u16)> = seen.iter().map(|s| (s.path.as_str(), s.status)).collect();
    assert_eq!(paths.len(), 3, "{paths:?}");
    assert_eq!(paths[0], ("/manifest.json", 304));
    assert_eq!(paths[1], ("/alerts.json", 200));
    assert!(paths[2].0.ends_with(".xml") && paths[2].1 == 200, "{paths:?}");
    let wire: u64 = seen.iter().map(|s| s.bytes).sum();
    assert!(wire < 8 * 1024 && manifest_bytes > 8 * 1024, "a warning cost {wire} bytes on the wire; the manifest is {manifest_bytes}");
    let store = estation::store::inbox::Inbox::new(cache.path()).load().unwrap();
    assert_eq!(store.entries().len(), 1, "the warning is in the alert store");
    let good = std::fs::read(cache.path().join("feed-alerts.json")).unwrap();
    let published = std::fs::read(&doc_path).unwrap();

    let refused = |expect: &str| {
        let err = block(s.once()).unwrap_err();
        assert!(matches!(err, SyncError::Alerts { .. }) && err.to_string().contains(expect), "{err}");
        assert_eq!(std::fs::read(cache.path().join("feed-alerts.json")).unwrap(), good, "the document here stays");
    };
    // Rolled back: the document from before the warning, properly signed.
    std::fs::write(&doc_path, &first_doc).unwrap();
    refused("rollback refused");
    // Tampered, and signed by another key.
    std::fs::write(&doc_path, &published).unwrap();
    publish(2);
    let text = std::fs::read_to_string(&doc_path).unwrap();
    std::fs::write(&doc_path, text.replace("\"size\": ", "\"size\": 1")).unwrap();
    refused("tampered");
    let doc = estation::core::feed::alerts_doc::verify_signature(text.as_bytes(), &fx.key.verifying_key()).unwrap().doc;
    std::fs::write(&doc_path, doc.sign(&SigningKey::from_bytes(&[10; 32]))).unwrap();
    refused("signed by another key");
    // Even with the manifest broken, the warning arrives.
    std::fs::write(&doc_path, &text).unwrap();
    std::fs::write(fx.feed.path().join("manifest.json"), b"<html>oops</html>").unwrap();
    let err = block(s.once()).unwrap_err();
    assert!(matches!(err, SyncError::Manifest { .. }), "{err}");
    let store = estation::store::inbox::Inbox::new(cache.path()).load().unwrap();
    assert_eq!(store.entries().len(), 2, "the second warning arrived beside the broken manifest");
    assert_eq!(current_version(cache.path(), &fx.key), Some(v), "and the programme stays");
}
