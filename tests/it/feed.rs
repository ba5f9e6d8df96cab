//! The feed through the real `estation` binary: keys, build, verify, the
//! embedded server, sync into a cache, `kill -9` mid-sync, the player
//! starting from (and switching between) verified versions, and the same
//! feed folder served by a real nginx.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::feedsrv::FeedServer;
use common::nginx::Nginx;
use common::operator::{status_json, Operator};
use common::pixels::near;
use common::player::{Played, Player};
use common::{estation, root, stderr, stdout, wait_until, Killed};
use estation::core::feed::Digest;

fn sync(config: &Path, args: &[&str]) -> std::process::Output {
    estation(config).arg("sync").args(args).output().unwrap()
}

/// `estation feed serve` on a free port; killed on drop.
struct Served(std::process::Child, String);

impl Served {
    fn start(feed: &Path) -> Served {
        Served::spawn(feed, &[], Stdio::piped())
    }

    /// With more arguments, its log (stderr) going to `log`, so a test can
    /// read it and a busy server never blocks on a full pipe.
    fn start_logged(feed: &Path, args: &[&str], log: &Path) -> Served {
        Served::spawn(feed, args, std::fs::File::create(log).unwrap().into())
    }

    fn spawn(feed: &Path, args: &[&str], stderr: Stdio) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_estation"))
            .args(["feed", "serve"])
            .arg(feed)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let url = line.split_whitespace().last().unwrap_or_default().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{line}");
        Served(child, url)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(url: &str, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let client = estation::net::sync::client_builder().build().unwrap();
        let mut req = client.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let (code, h) = (resp.status().as_u16(), resp.headers().clone());
        (code, h, resp.bytes().await.unwrap().to_vec())
    })
}

#[test]
fn publish_verify_serve_and_sync_through_the_cli() {
    let op = Operator::new();
    std::fs::remove_dir_all(op.path("playlists")).unwrap();
    let out = op.build_from(&root().join("playlists/demo.toml"), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 playlist(s), 7 file(s)"), "{}", stdout(&out));

    let verify = |feed: &Path| estation(&op.path("none.toml")).args(["feed", "verify"]).arg(feed).arg("--public-key").arg(op.path("keys/feed-key.pub")).output().unwrap();
    let ok = verify(&op.path("feed"));
    assert!(ok.status.success(), "{}{}", stdout(&ok), stderr(&ok));

    // The embedded server: types, validators, 304, ranges, access log.
    let served = Served::start(&op.path("feed"));
    let (code, h, body) = get(&format!("{}manifest.json", served.1), &[]);
    assert_eq!(code, 200);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["cache-control"], "no-cache");
    assert!(h.contains_key("last-modified"));
    let etag = h["etag"].to_str().unwrap().to_string();
    // The server's fast 304 path computes the same validator as ServeDir.
    let meta = std::fs::metadata(op.path("feed/manifest.json")).unwrap();
    assert_eq!(estation::net::serve::etag(meta.len(), meta.modified().unwrap()).as_deref(), Some(etag.as_str()));
    let (code, h304, _) = get(&format!("{}manifest.json", served.1), &[("if-none-match", &etag)]);
    assert_eq!(code, 304);
    assert_eq!(h304["etag"].to_str().unwrap(), etag);
    assert_eq!(h304["cache-control"], "no-cache");
    let (code, _, _) = get(&format!("{}manifest.json", served.1), &[("if-none-match", "\"other\"")]);
    assert_eq!(code, 200);
    let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let png = manifest["signed"]["media"].as_array().unwrap().iter().find(|m| m["type"] == "image/png").unwrap();
    let png_url = format!("{}blobs/{}.png", served.1, png["sha256"].as_str().unwrap());
    let (code, h, body) = get(&png_url, &[("range", "bytes=8-15")]);
    assert_eq!((code, body.len()), (206, 8));
    assert_eq!(h["content-type"], "image/png");
    assert!(h["cache-control"].to_str().unwrap().contains("immutable"));
    let (code, _, _) = get(&format!("{}blobs/.tmp-x", served.1), &[]);
    assert_eq!(code, 404);

    // A kiosk syncs from it, then a no-change poll changes nothing.
    let kiosk = tempfile::tempdir().unwrap();
    let config = op.kiosk(kiosk.path(), Some(&served.1));
    let first = sync(&config, &["--once"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stdout(&first).starts_with("updated from nothing to version"), "{}", stdout(&first));
    let again = sync(&config, &["--once"]);
    assert!(stdout(&again).starts_with("up to date at version"), "{}", stdout(&again));
    let st = status_json(&config);
    assert_eq!(st["feed_version"], manifest["signed"]["version"]);
    assert_eq!(st["stale"], false);
    assert!(st["sync"]["last_success"].is_string());
    assert!(st["sync"]["last_error"].is_null());
    let human = stdout(&estation(&config).arg("status").output().unwrap());
    assert!(human.contains("feed:       version"), "{human}");

    // A tampered file in the feed folder is named by verify.
    let victim = op.path("feed").join(format!("blobs/{}.png", png["sha256"].as_str().unwrap()));
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[40] ^= 1;
    std::fs::write(&victim, bytes).unwrap();
    let bad = verify(&op.path("feed"));
    assert!(!bad.status.success());
    assert!(stdout(&bad).starts_with(&format!("{}: content is", victim.display())), "{}", stdout(&bad));
    drop(served);
}

#[test]
fn a_bad_playlist_fails_the_build_like_playlist_check_and_writes_nothing() {
    let op = Operator::new();
    std::fs::write(op.path("playlists/bad.toml"), "[[items]]\nkind = \"image\"\npath = \"gone.png\"\nduration = \"soon\"\n").unwrap();
    let out = op.build();
    assert_eq!(out.status.code(), Some(1));
    let check = estation(&op.path("none.toml")).args(["playlist", "check"]).arg(op.path("playlists")).output().unwrap();
    assert_eq!(stdout(&out).trim(), stdout(&check).trim());
    assert!(stdout(&out).contains("bad.toml:3: items[1].path: `gone.png`: file not found"), "{}", stdout(&out));
    assert!(!op.path("feed").exists());
}

/// The player on what the cache holds (no `--playlist`), in a 320×180 window.
fn from_cache(config: &Path, shots: &[&str]) -> Player {
    Player::new(config).window(320, 180).shots(shots)
}

/// Plays what the cache holds; returns the log and the screenshots.
fn play_from_cache(config: &Path, shots: &[&str]) -> Played {
    from_cache(config, shots).run()
}

/// The card's colour in the top-left corner, away from its title.
fn corner_is(img: &image::RgbImage, want: [u8; 3]) -> bool {
    near(img, 6, 6, want, 12)
}

const GREEN: [u8; 3] = [0x1b, 0x5e, 0x20];
const RED: [u8; 3] = [0xb7, 0x1c, 0x1c];

#[test]
fn kill_9_mid_sync_leaves_the_last_good_version_and_the_restart_resumes() {
    let op = Operator::new();
    op.card("第一版", "#1b5e20");
    assert!(op.build().status.success());
    let server = FeedServer::start(op.path("feed"));
    let kiosk = tempfile::tempdir().unwrap();
    let config = op.kiosk(kiosk.path(), Some(&server.url()));
    assert!(sync(&config, &["--once"]).status.success());
    let v1 = status_json(&config)["feed_version"].as_u64().unwrap();

    // Version 2 with a big picture, served slowly; kill the kiosk mid-file.
    op.card("第二版", "#b71c1c");
    let pic = op.path("playlists/big.png");
    let img = image::RgbaImage::from_fn(400, 400, |x, y| image::Rgba([((x * 7) ^ (y * 13)) as u8, (x * y) as u8, (x + y * 3) as u8, 255]));
    img.save(&pic).unwrap();
    std::fs::write(op.path("playlists/extra.toml"), "id = \"extra\"\n[schedule]\nweekdays = \"mon\"\nhours = [\"03:00-03:01\"]\n[[items]]\nkind = \"image\"\npath = \"big.png\"\n").unwrap();
    assert!(op.build().status.success());
    server.set(|k| k.rate = Some(60_000));
    let mut child = Killed::spawn(estation(&config).args(["sync", "--once"]).stdout(Stdio::null()).stderr(Stdio::null()));
    let partial = kiosk.path().join("cache/partial");
    wait_until(Duration::from_secs(60), "the download to pass 100 kB", || {
        std::fs::read_dir(&partial).unwrap().flatten().any(|e| e.metadata().map(|m| m.len() > 100_000).unwrap_or(false))
    });
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();

    // The cache is whole, still on version 1, and a player starts on it.
    let st = status_json(&config);
    assert_eq!(st["feed_version"].as_u64(), Some(v1));
    // The status shows the download that was under way, bytes done of total.
    let files = st["sync"]["pending"]["files"].as_array().cloned().unwrap_or_default();
    assert!(files.iter().any(|f| f["done"].as_u64() > Some(0) && f["done"].as_u64() < f["size"].as_u64()), "{st}");
    for e in std::fs::read_dir(kiosk.path().join("cache/blobs")).unwrap().flatten() {
        let name: Digest = e.file_name().to_str().unwrap().parse().unwrap();
        assert_eq!(Digest::of_file(&e.path()).unwrap().0, name);
    }
    let Played { shots, .. } = play_from_cache(&config, &["1.5s"]);
    assert!(corner_is(&shots[0], GREEN), "expected version 1's card, got {:?}", shots[0].get_pixel(6, 6));

    // The restart resumes the partial file with a Range request.
    server.set(|k| k.rate = None);
    server.take_seen();
    let out = sync(&config, &["--once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let resumed = server.take_seen().into_iter().filter(|s| s.range.is_some()).count();
    assert_eq!(resumed, 1);
    assert!(status_json(&config)["feed_version"].as_u64().unwrap() > v1);
    let Played { shots, .. } = play_from_cache(&config, &["1.5s"]);
    assert!(corner_is(&shots[0], RED), "expected version 2's card, got {:?}", shots[0].get_pixel(6, 6));
}

#[test]
fn the_player_switches_to_a_new_version_without_a_restart_or_a_black_frame() {
    let op = Operator::new();
    op.card("第一版", "#1b5e20");
    assert!(op.build().status.success());
    let stick = op.path("feed-v1");
    std::fs::rename(op.path("feed"), &stick).unwrap();
    let kiosk = tempfile::tempdir().unwrap();
    let config = op.kiosk(kiosk.path(), None);
    // A village with no network: the feed comes on a USB stick.
    let out = sync(&config, &["--from", stick.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));

    op.card("第二版", "#b71c1c");
    std::fs::rename(&stick, op.path("feed")).unwrap();
    assert!(op.build().status.success());
    // Version 1 twice, then shots close together once version 2 has had
    // time to come in and take over (a new programme waits for an item
    // boundary, and a loaded machine draws slowly).
    let shots = ["1s", "2s", "9s", "9.2s", "9.4s", "9.6s", "9.8s", "10s", "10.5s"];
    let player = from_cache(&config, &shots);
    let second = player.shot_path(2);
    let mut running = player.spawn();
    // The new version comes in once version 1 has been seen twice, so
    // neither of those shots can have caught version 2.
    wait_until(Duration::from_secs(120), "the player's second screenshot", || second.exists() || running.exited());
    let out = sync(&config, &["--from", op.path("feed").to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let Played { log, shots: imgs } = running.finish();
    assert!(corner_is(&imgs[0], GREEN) && corner_is(&imgs[1], GREEN), "{log}");
    assert!(corner_is(imgs.last().unwrap(), RED), "never switched:\n{log}");
    for (i, img) in imgs.iter().enumerate() {
        assert!(corner_is(img, GREEN) || corner_is(img, RED), "shot {} is neither version: {:?}", i + 1, img.get_pixel(6, 6));
    }
    // The player reported what it played last, and from which version.
    let st = status_json(&config);
    assert_eq!(st["player"]["feed_version"], st["feed_version"], "{st}");
    assert_eq!(st["player"]["playlist"], "main");
}

#[test]
fn the_player_syncs_in_the_background_and_a_stale_feed_keeps_playing() {
    let op = Operator::new();
    op.card("第二版", "#b71c1c");
    // Kiosks accept this build for 3 seconds only.
    let out = op.build_from(&op.path("playlists"), &["--expires", "3s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let server = FeedServer::start(op.path("feed"));
    let kiosk = tempfile::tempdir().unwrap();
    // Until the first sync lands, the kiosk plays its local playlist.
    std::fs::write(kiosk.path().join("local.toml"), "[[items]]\nkind = \"text\"\ntitle = \"本地\"\nbackground = \"#1b5e20\"\nduration = \"1s\"\n").unwrap();
    let config = op.kiosk(kiosk.path(), Some(&server.url()));
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[player]\nplaylist = \"local.toml\"\n");
    std::fs::write(&config, text).unwrap();
    let Played { log, shots: imgs } = play_from_cache(&config, &["5s"]);
    assert!(corner_is(&imgs[0], RED), "the synced feed is not on screen:\n{log}");
    assert!(server.take_seen().iter().any(|s| s.path == "/manifest.json"));

    // Past its expiry: still played, flagged stale. About time passing, so a
    // sleep: until the build's wall-clock expiry (usually past by now, the
    // player having run for longer than the feed lasts).
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(op.path("feed/manifest.json")).unwrap()).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(manifest["signed"]["expires"].as_str().unwrap()).unwrap();
    std::thread::sleep((expires.to_utc() - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(100));
    let st = status_json(&config);
    assert_eq!(st["stale"], true, "{st}");
    let server_gone = op.kiosk(kiosk.path(), Some("http://127.0.0.1:9/"));
    let Played { shots: imgs, .. } = play_from_cache(&server_gone, &["1.5s"]);
    assert!(corner_is(&imgs[0], RED), "a stale feed must keep playing");
}

#[test]
fn a_real_nginx_serves_the_same_feed_folder() {
    let op = Operator::new();
    op.card("第一版", "#1b5e20");
    assert!(op.build().status.success());
    let nginx = Nginx::start(&op.path("feed"), "1", true).unwrap_or_else(|e| panic!("{e}"));
    let kiosk = tempfile::tempdir().unwrap();
    let config = op.kiosk(kiosk.path(), Some(&nginx.url()));
    let first = sync(&config, &["--once"]);
    assert!(first.status.success(), "{}\n{}", stderr(&first), nginx.log());
    assert!(stdout(&first).starts_with("updated from nothing"), "{}", stdout(&first));
    // nginx's ETag answers the poll with 304.
    let access_before = nginx.requests();
    let again = sync(&config, &["--once"]);
    assert!(stdout(&again).starts_with("up to date"), "{}", stdout(&again));
    let new_lines: Vec<String> = nginx.requests().into_iter().skip(access_before.len()).collect();
    assert_eq!(new_lines.len(), 2, "{new_lines:?}");
    assert!(new_lines[0].contains("\"GET /manifest.json HTTP/1.1\" 304"), "{new_lines:?}");
    assert!(new_lines[1].contains("\"GET /alerts.json HTTP/1.1\" 304"), "{new_lines:?}");

    op.card("第二版", "#b71c1c");
    assert!(op.build().status.success());
    let third = sync(&config, &["--once"]);
    assert!(stdout(&third).starts_with("updated from version"), "{}", stdout(&third));
}

/// The `host:port` of a server's URL.
fn authority(url: &str) -> String {
    url.trim_start_matches("http://").trim_end_matches('/').to_string()
}

/// Sends `head` exactly as written (HTTP clients normalise paths, so a
/// `%2e` would never reach the server as sent) and reads the answer to its
/// end; returns the status code and the whole answer.
fn raw(addr: &str, head: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let code = answer.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, answer)
}

fn raw_get(addr: &str, path: &str, headers: &str) -> (u16, String) {
    raw(addr, &format!("GET {path} HTTP/1.1\r\nHost: feed\r\n{headers}Connection: close\r\n\r\n"))
}

/// An operator with a feed of one card and one picture; returns the picture's
/// blob path in the feed (`blobs/<sha256>.png`).
fn feed_with_picture(op: &Operator) -> String {
    image::RgbaImage::from_fn(64, 64, |x, y| image::Rgba([x as u8 * 4, y as u8 * 4, 90, 255])).save(op.path("playlists/pic.png")).unwrap();
    std::fs::write(op.path("playlists/main.toml"), "id = \"main\"\n[[items]]\nkind = \"image\"\npath = \"pic.png\"\n").unwrap();
    let out = op.build();
    assert!(out.status.success(), "{}", stderr(&out));
    let (d, _) = Digest::of_file(&op.path("playlists/pic.png")).unwrap();
    format!("blobs/{d}.png")
}

fn verify_ok(op: &Operator) -> bool {
    let out = estation(&op.path("none.toml")).args(["feed", "verify"]).arg(op.path("feed")).arg("--public-key").arg(op.path("keys/feed-key.pub")).output().unwrap();
    out.status.success()
}

#[test]
fn hidden_files_percent_encoded_or_not_and_symlinks_out_of_the_feed_are_404() {
    let op = Operator::new();
    let blob = feed_with_picture(&op);
    let feed = op.path("feed");
    std::fs::copy(op.path("keys/feed-key.pem"), feed.join("feed-key.pem")).unwrap();
    std::fs::write(feed.join("blobs/.tmp-abc"), b"half a file").unwrap();
    std::fs::write(op.path("secret.png"), b"not for the network").unwrap();
    std::os::unix::fs::symlink(op.path("secret.png"), feed.join("blobs/escape.png")).unwrap();
    std::os::unix::fs::symlink(op.path("keys"), feed.join("keys")).unwrap();
    // The build leaves its lock file; asked for below.
    std::fs::File::options().create(true).truncate(false).write(true).open(feed.join(".publish.lock")).unwrap();
    let log = op.path("serve.log");
    let served = Served::start_logged(&feed, &[], &log);
    let addr = authority(&served.1);

    for path in [
        "/feed-key.pem",
        "/feed-key%2epem",
        "/feed-key%2Epem",
        "/.publish.lock",
        "/%2epublish.lock",
        "/blobs/.tmp-abc",
        "/blobs/%2etmp-abc",
        "/blobs/%2Etmp-abc",
        "/blobs/./%2etmp-abc",
        "/blobs/escape.png",
        "/blobs/escape%2epng",
        "/keys/feed-key.pub",
        "/blobs/..%2f..%2fsecret.png",
        "/blobs/%ff%fe",
    ] {
        let (code, answer) = raw_get(&addr, path, "");
        assert_eq!(code, 404, "{path}: {answer}");
        assert!(!answer.contains("PRIVATE KEY") && !answer.contains("not for the network") && !answer.contains("half a file"), "{path}: {answer}");
    }

    // What kiosks ask for still works: 200, 304, 206.
    let (code, answer) = raw_get(&addr, "/manifest.json", "");
    assert_eq!(code, 200, "{answer}");
    let etag = answer.lines().find_map(|l| l.strip_prefix("etag: ")).unwrap().trim().to_string();
    let (code, _) = raw_get(&addr, "/manifest.json", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(code, 304);
    let (code, answer) = raw_get(&addr, &format!("/{blob}"), "");
    assert_eq!(code, 200);
    assert!(answer.contains("content-type: image/png"), "{answer}");
    let (code, answer) = raw_get(&addr, &format!("/{blob}"), "Range: bytes=0-7\r\n");
    assert_eq!(code, 206, "{answer}");
    assert!(answer.ends_with("\u{fffd}PNG\r\n\u{1a}\n"), "{answer:?}");

    // A body nobody reads is refused, not received; the server lives on.
    let (code, _) = raw(&addr, "POST /manifest.json HTTP/1.1\r\nHost: feed\r\nContent-Length: 100000000\r\nConnection: close\r\n\r\n");
    assert_eq!(code, 413);
    let (code, _) = raw(&addr, "GET /manifest.json HTTP/1.1\r\nHost: feed\r\nConnection: close\r\n\r\n");
    assert_eq!(code, 200);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("\"GET /%2epublish.lock\" 404"), "each refusal has its access line:\n{log}");
    drop(served);
}

/// A few hundred connections that send half a request line and stall.
fn stall(addr: &str, n: usize) -> Vec<std::net::TcpStream> {
    use std::io::Write as _;
    (0..n)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /manifest.json HT").unwrap();
            s
        })
        .collect()
}

#[test]
fn slowloris_connections_do_not_starve_kiosks_and_are_closed_after_the_header_timeout() {
    let op = Operator::new();
    op.card("第一版", "#1b5e20");
    assert!(op.build().status.success());
    let log = op.path("serve.log");
    let served = Served::start_logged(&op.path("feed"), &["--header-timeout", "2s"], &log);
    let addr = authority(&served.1);
    let start = Instant::now();
    let stalled = stall(&addr, 300);

    // A kiosk is answered at once, beside them.
    let asked = Instant::now();
    let (code, _) = raw_get(&addr, "/manifest.json", "");
    assert_eq!(code, 200);
    assert!(asked.elapsed() < Duration::from_secs(2), "a kiosk waited {:?} behind 300 stalled connections", asked.elapsed());

    // Each stalled connection is closed by the server after the timeout.
    for mut s in stalled {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 512];
        loop {
            match std::io::Read::read(&mut s, &mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("a stalled connection was still open after {:?}: {e}", start.elapsed()),
            }
        }
    }
    let closed_after = start.elapsed();
    assert!(closed_after >= Duration::from_millis(1900) && closed_after < Duration::from_secs(12), "closed after {closed_after:?}");
    let (code, _) = raw_get(&addr, "/manifest.json", "");
    assert_eq!(code, 200);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(!log.contains("panicked"), "{log}");
    drop(served);
}

#[test]
fn at_the_connection_limit_a_new_connection_waits_until_a_stalled_one_is_closed() {
    let op = Operator::new();
    op.card("第一版", "#1b5e20");
    assert!(op.build().status.success());
    let served = Served::start_logged(&op.path("feed"), &["--header-timeout", "2s", "--max-connections", "8"], &op.path("serve.log"));
    let addr = authority(&served.1);
    // Wait until the server is up and idle (its first answer).
    assert_eq!(raw_get(&addr, "/manifest.json", "").0, 200);
    let _stalled = stall(&addr, 8);
    let asked = Instant::now();
    let (code, _) = raw_get(&addr, "/manifest.json", "");
    assert_eq!(code, 200);
    let waited = asked.elapsed();
    assert!(waited >= Duration::from_millis(1500) && waited < Duration::from_secs(8), "waited {waited:?}; expected about the 2 s header timeout");
}

#[test]
fn a_build_while_the_feed_is_locked_is_refused_as_busy_and_changes_nothing() {
    let op = Operator::new();
    op.card("第一版", "#1b5e20");
    assert!(op.build().status.success());
    let before = std::fs::read(op.path("feed/manifest.json")).unwrap();
    // What `alert publish` holds while it writes.
    let lock = std::fs::File::options().write(true).open(op.path("feed/.publish.lock")).unwrap();
    lock.try_lock().unwrap();
    op.card("第二版", "#b71c1c");
    let out = op.build();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("another `feed build` or `alert publish` is writing this feed; try again"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(std::fs::read(op.path("feed/manifest.json")).unwrap(), before);
    drop(lock);
    assert!(op.build().status.success());
    assert_ne!(std::fs::read(op.path("feed/manifest.json")).unwrap(), before);
}

#[test]
fn a_playlist_name_kiosks_refuse_fails_the_build_with_the_kiosks_message_and_writes_nothing() {
    let op = Operator::new();
    op.card("第一版", "#1b5e20");
    std::fs::rename(op.path("playlists/main.toml"), op.path("playlists/p (1).toml")).unwrap();
    let out = op.build();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("playlists[1].name: `p (1).toml` is not a playlist file name"), "{err}");
    assert!(err.contains("kiosks would refuse this manifest, so nothing was written"), "{err}");
    assert!(!op.path("feed").exists());
}

#[test]
fn expires_zero_is_refused_and_writes_nothing() {
    let op = Operator::new();
    op.card("第一版", "#1b5e20");
    for expires in ["0", "0s", "0.4"] {
        let out = op.build_from(&op.path("playlists"), &["--expires", expires]);
        assert_eq!(out.status.code(), Some(1), "--expires {expires}");
        let err = stderr(&out);
        assert!(err.starts_with("error: feed not built: --expires ") && err.contains("give at least 1s"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!op.path("feed").exists());
    }
}

#[test]
fn a_blob_damaged_on_disk_is_found_and_rewritten_by_the_next_build() {
    let op = Operator::new();
    let blob = feed_with_picture(&op);
    let victim = op.path("feed").join(&blob);
    let mut bytes = std::fs::read(&victim).unwrap();
    let n = bytes.len() / 2;
    bytes[n] ^= 0x55; // same size, other bytes: bit rot
    std::fs::write(&victim, &bytes).unwrap();
    assert!(!verify_ok(&op));
    let out = op.build();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("; 1 new file(s)"), "{}", stdout(&out));
    assert_eq!(std::fs::read(&victim).unwrap(), std::fs::read(op.path("playlists/pic.png")).unwrap());
    assert!(verify_ok(&op));
}

#[test]
fn temp_files_left_by_a_killed_writer_are_removed_by_the_next_build_and_publish() {
    let op = Operator::new();
    op.card("第一版", "#1b5e20");
    assert!(op.build().status.success());
    let leftovers = [op.path("feed/.tmp-manifest"), op.path("feed/blobs/.tmp-blob")];
    for p in &leftovers {
        std::fs::write(p, b"half").unwrap();
    }
    assert!(op.build().status.success());
    for p in &leftovers {
        assert!(!p.exists(), "{} is still there", p.display());
        std::fs::write(p, b"half").unwrap();
    }
    op.run(&["alert", "new", "--event", "暴雨", "--level", "red", "--area", "330522", "--out", "w.xml"]);
    op.run(&["alert", "publish", "w.xml", "--feed", "feed", "--key", "keys/feed-key.pem"]);
    for p in &leftovers {
        assert!(!p.exists(), "{} is still there after publish", p.display());
    }
    assert!(verify_ok(&op));
}
