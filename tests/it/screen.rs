//! The real player in a real window: Xvfb plus Mesa's software renderer
//! (lavapipe), checked through the frames `--screenshot` saves.
//!
//! Each test starts its own X server, so they run in parallel. Sizes are small
//! (software rendering costs CPU per pixel) but the layout code is the same at
//! any size.

use crate::common;

use std::path::{Path, PathBuf};

use common::pixels::{all_dark, assert_near, black_share, dist, ink, linear, luma, near, text_lines, white_centre};
use common::player::{Played, Player};
use common::{root, write_config};
use image::{Rgb, RgbImage};

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p
}

#[test]
fn demo_starts_full_screen_with_clock_and_ticker() {
    let dir = tempdir();
    let demo = root().join("playlists/demo.toml");
    let Played { log, shots } = Player::fresh(dir.path(), "").playlist(&demo).screen(960, 540).shots(&["2s"]).run();
    let img = &shots[0];
    // Full screen by default: the frame is the whole X screen.
    assert_eq!(img.dimensions(), (960, 540));
    // The clock card's background, and white text in its middle.
    assert_near(img, 20, 20, [0x0d, 0x2b, 0x4e], "card background");
    assert!(ink(img, 0, 100, 960, 420) > 2000, "no clock text on the demo's first card");
    // The red ticker band along the bottom 7 %, with white text scrolling in it.
    assert_near(img, 5, 535, [0xb7, 0x1c, 0x1c], "ticker band");
    assert!(log.contains("showing `welcome` (clock) from demo"), "log:\n{}", log);
}

#[test]
fn text_card_shows_background_title_and_body() {
    let dir = tempdir();
    let playlist = write(
        dir.path(),
        "card.toml",
        r##"
[[items]]
kind = "text"
title = "雷雨天，这样做更安全"
body = "听到雷声，说明你已经处在雷电可能击中的范围内。请尽快进入有防雷设施的建筑物。"
footer = "气象防灾减灾科普"
background = "#12372a"
color = "#ffffff"
"##,
    );
    let Played { shots, .. } = Player::fresh(dir.path(), "").playlist(&playlist).screen(1280, 720).shots(&["1s"]).run();
    let img = &shots[0];
    let bg = [0x12, 0x37, 0x2a];
    for (x, y) in [(5, 5), (1275, 5), (5, 715), (1275, 715), (1200, 400)] {
        assert_near(img, x, y, bg, "card background");
    }
    // Padding is 6 % of the smaller side (43 px): no ink in it.
    assert_eq!(ink(img, 0, 0, 1280, 30), 0, "ink in the top padding");
    assert_eq!(ink(img, 0, 0, 30, 720), 0, "ink in the left padding");
    let lines = text_lines(img, 0, 0, 1280, 720);
    assert!(lines.len() >= 3, "expected title, body and footer lines, got {lines:?}");
    // The title (bold, larger) comes first and is taller than the footer line.
    let (t0, t1, tl, _) = lines[0];
    let (f0, f1, _, _) = *lines.last().expect("lines");
    assert!((40..60).contains(&tl), "title starts at the padding, got x={tl}");
    assert!(t1 - t0 > f1 - f0, "title is not larger than the footer: {lines:?}");
    // The footer sits at the bottom of the card.
    assert!(f1 > 640, "footer not at the bottom: {lines:?}");
}

/// Long Chinese lines wrap between characters (there are no spaces), and a
/// comma is never pushed to the start of a line: it stays with the character
/// before it, which moves down with it.
#[test]
fn chinese_text_wraps_between_characters_keeping_punctuation_on_the_line() {
    // At 1280×720 the body size is 4.4 % of 720 = 31.7 px, every ideograph is
    // one em wide, and the column is 1280 − 2 × 43.2 = 1193.6 px: 37 per line.
    const PER_LINE: usize = 37;
    let han: Vec<char> = "科学技术是第一生产力人才是第一资源创新是第一动力我们要大力弘扬科学精神普及科学知识倡导科学方法传播科学思想"
        .chars()
        .collect();
    let plain: String = han.iter().cycle().take(PER_LINE * 3 + 5).collect();
    // The same text with a comma exactly where line 2 would begin.
    let mut with_comma: Vec<char> = plain.chars().collect();
    with_comma.insert(PER_LINE, '，');
    let with_comma: String = with_comma.into_iter().collect();

    let dir = tempdir();
    let playlist = write(
        dir.path(),
        "wrap.toml",
        &format!(
            "[defaults]\ntransition = 0\nduration = 3\nbackground = \"#000000\"\n\n\
             [[items]]\nkind = \"text\"\nbody = \"{plain}\"\n\n\
             [[items]]\nkind = \"text\"\nbody = \"{with_comma}\"\n"
        ),
    );
    let Played { shots, .. } = Player::fresh(dir.path(), "").playlist(&playlist).screen(1280, 720).shots(&["1s", "4.5s"]).run();
    let em = 720.0 * 0.044;
    let plain_lines = text_lines(&shots[0], 0, 0, 1280, 720);
    let comma_lines = text_lines(&shots[1], 0, 0, 1280, 720);
    assert_eq!(plain_lines.len(), 4, "3 full lines and 5 characters: {plain_lines:?}");
    // Every full line spans the column: wrapped between characters, not overflowing.
    for &(_, _, l, r) in &plain_lines[..3] {
        let chars = f64::from(r - l) / em;
        assert!((chars - PER_LINE as f64).abs() < 0.8, "line holds {chars:.1} em, expected {PER_LINE}: {plain_lines:?}");
        assert!(r < 1280 - 40, "text runs into the right padding: {plain_lines:?}");
    }
    // With the comma: line 1 is one character shorter (its last character
    // went down with the comma), so no line begins with the comma.
    let (_, _, l1, r1) = plain_lines[0];
    let (_, _, l2, r2) = comma_lines[0];
    assert_eq!(l1, l2, "lines start at the same x");
    let shorter = f64::from(r1 - r2) / em;
    assert!((shorter - 1.0).abs() < 0.3, "line 1 should lose exactly one character to keep the comma company, lost {shorter:.2} em");
    // Line 2 starts with a full ideograph: ink in the upper half of its first em box.
    let (top, bottom, _, _) = comma_lines[1];
    let first_box = ink(&shots[1], l2, top, l2 + em as u32, top + (bottom - top) / 2);
    assert!(first_box > 20, "line 2 starts with something small (a comma?)");
}

#[test]
fn images_fit_contain_and_cover_in_png_jpeg_and_webp() {
    let dir = tempdir();
    // A 4:3 picture in four coloured quadrants.
    let quads = RgbImage::from_fn(400, 300, |x, y| match (x < 200, y < 150) {
        (true, true) => Rgb([220, 30, 30]),
        (false, true) => Rgb([30, 200, 40]),
        (true, false) => Rgb([30, 60, 220]),
        (false, false) => Rgb([240, 220, 30]),
    });
    quads.save(dir.path().join("q.png")).expect("png");
    quads.save(dir.path().join("q.jpg")).expect("jpeg");
    quads.save(dir.path().join("q.webp")).expect("webp");
    let playlist = write(
        dir.path(),
        "images.toml",
        r##"
[defaults]
duration = 3
transition = 0
background = "#000000"

[[items]]
kind = "image"
path = "q.png"
fit = "contain"

[[items]]
kind = "image"
path = "q.jpg"
fit = "cover"

[[items]]
kind = "image"
path = "q.webp"
fit = "contain"
background = "#ff00ff"
"##,
    );
    let Played { shots, .. } = Player::fresh(dir.path(), "").playlist(&playlist).screen(1280, 720).shots(&["1.5s", "4.5s", "7.5s"]).run();
    let (red, green, blue, yellow) = ([220, 30, 30], [30, 200, 40], [30, 60, 220], [240, 220, 30]);
    // contain: 960×720 in the middle, black bars of 160 px left and right.
    let png = &shots[0];
    assert_near(png, 80, 360, [0, 0, 0], "left bar");
    assert_near(png, 1200, 360, [0, 0, 0], "right bar");
    assert_near(png, 400, 180, red, "png top-left");
    assert_near(png, 880, 180, green, "png top-right");
    assert_near(png, 400, 540, blue, "png bottom-left");
    assert_near(png, 880, 540, yellow, "png bottom-right");
    assert_near(png, 165, 5, red, "png fills the height");
    // cover: 1280×960, 120 px cut off top and bottom; corners are the quadrants.
    let jpg = &shots[1];
    for (x, y, c, what) in [(5, 5, red, "top-left"), (1275, 5, green, "top-right"), (5, 715, blue, "bottom-left"), (1275, 715, yellow, "bottom-right")] {
        let got = jpg.get_pixel(x, y);
        assert!(dist(*got, c) <= 30, "jpeg {what}: {got:?} vs {c:?}");
    }
    // The quadrant border is at the centre (120 px cropped, not squashed).
    assert!(near(jpg, 640 - 8, 360 - 8, red, 30) && near(jpg, 640 + 8, 360 + 8, yellow, 30));
    let webp = &shots[2];
    assert_near(webp, 80, 360, [255, 0, 255], "item background around a contained webp");
    assert_near(webp, 880, 540, yellow, "webp bottom-right");
}

#[test]
fn qr_code_on_screen_decodes_to_its_url() {
    let dir = tempdir();
    let url = "https://www.kepuchina.cn/";
    let playlist = write(
        dir.path(),
        "qr.toml",
        &format!(
            "[[items]]\nkind = \"qr\"\ndata = \"{url}\"\ncaption = \"扫码访问“科普中国”\"\nbackground = \"#ffffff\"\ncolor = \"#0d2b4e\"\n"
        ),
    );
    let Played { shots, .. } = Player::fresh(dir.path(), "").playlist(&playlist).screen(1024, 600).shots(&["1s"]).run();
    let gray = image::DynamicImage::ImageRgb8(shots[0].clone()).to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(gray);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "expected one QR code on screen");
    let (_, content) = grids[0].decode().expect("decode the on-screen QR code");
    assert_eq!(content, url);
}

/// Screenshots every 150 ms across a 1.5 s crossfade: every frame is a blend
/// of the two cards, never black and never the bare window.
#[test]
fn crossfade_never_shows_a_black_frame() {
    let dir = tempdir();
    let (a, b) = ([200, 120, 20], [20, 140, 200]);
    let playlist = write(
        dir.path(),
        "fade.toml",
        r##"
[defaults]
duration = 3
transition = "1500ms"

[[items]]
kind = "text"
title = "甲"
background = "#c87814"

[[items]]
kind = "text"
title = "乙"
background = "#148cc8"
"##,
    );
    let times: Vec<String> = (0..16).map(|i| format!("{}ms", 2700 + i * 150)).collect();
    let times: Vec<&str> = times.iter().map(String::as_str).collect();
    let Played { shots, .. } = Player::fresh(dir.path(), "").playlist(&playlist).screen(640, 360).shots(&times).run();
    let mut saw_a = false;
    let mut saw_b = false;
    let mut saw_mix = false;
    // The GPU blends in linear light, so the blend is a straight line there.
    let lin = linear;
    for (i, img) in shots.iter().enumerate() {
        // A background pixel away from the text.
        let p = img.get_pixel(600, 300);
        // On the segment a→b: p = a + t(b − a) for one t in [0, 1].
        let t = (lin(p[2]) - lin(a[2])) / (lin(b[2]) - lin(a[2]));
        assert!((-0.03..=1.03).contains(&t), "frame {i}: {p:?} is not between the two cards");
        for c in 0..3 {
            let want = lin(a[c]) + t * (lin(b[c]) - lin(a[c]));
            assert!((lin(p[c]) - want).abs() < 0.03, "frame {i}: {p:?} is not a blend of the two cards (t={t:.2})");
        }
        assert!(luma(p) > 60, "frame {i} is dark: {p:?}");
        saw_a |= t < 0.05;
        saw_b |= t > 0.95;
        saw_mix |= (0.1..0.9).contains(&t);
    }
    assert!(saw_a && saw_b && saw_mix, "the shots did not span the crossfade (a={saw_a}, mix={saw_mix}, b={saw_b})");
}

/// A playlist whose only item is broken: the item is skipped with a log line
/// and the idle screen shows — not a crash, not a black screen.
#[test]
fn nothing_playable_shows_the_idle_screen() {
    let dir = tempdir();
    let playlist = write(
        dir.path(),
        "broken.toml",
        "[[items]]\nid = \"gone\"\nkind = \"image\"\npath = \"missing.png\"\n\n[[items]]\nid = \"noise\"\nkind = \"image\"\npath = \"noise.png\"\n",
    );
    // A PNG cut short (a power cut while copying): its header reads fine, so
    // it passes the load-time check, but it cannot be decoded when its turn comes.
    let whole = dir.path().join("whole.png");
    RgbImage::from_fn(300, 200, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 90])).save(&whole).expect("png");
    let bytes = std::fs::read(&whole).expect("read png");
    std::fs::write(dir.path().join("noise.png"), &bytes[..bytes.len() / 3]).expect("write");
    let Played { log, shots } = Player::fresh(dir.path(), "").playlist(&playlist).screen(800, 600).shots(&["1s"]).run();
    let img = &shots[0];
    assert_near(img, 10, 10, [0x0d, 0x2b, 0x4e], "idle background");
    assert!(ink(img, 0, 0, 800, 600) > 1500, "idle screen has no text");
    assert!(log.contains("missing.png"), "no log line for the missing image:\n{}", log);
    assert!(log.contains("noise.png"), "no log line for the corrupt image:\n{}", log);
    assert!(log.contains("idle screen"), "idle screen not logged:\n{}", log);
}

/// Portrait screens and explicit window sizes lay out the same content.
#[test]
fn portrait_screen_and_window_size() {
    let dir = tempdir();
    let demo = root().join("playlists/demo.toml");
    let Played { shots, .. } = Player::fresh(dir.path(), "").playlist(&demo).screen(1024, 768).window(450, 800).shots(&["1s"]).run();
    let img = &shots[0];
    assert_eq!(img.dimensions(), (450, 800));
    // The ticker band is 7 % of the height at the bottom, full width.
    assert_near(img, 3, 795, [0xb7, 0x1c, 0x1c], "ticker band left");
    assert_near(img, 446, 795, [0xb7, 0x1c, 0x1c], "ticker band right");
    assert_near(img, 3, 700, [0x0d, 0x2b, 0x4e], "card above the band");
    assert!(ink(img, 0, 150, 450, 700) > 1000, "no clock text in portrait");
}

/// Outside the configured screen-on hours the screen is dark and nothing
/// plays; the log says why.
#[test]
fn outside_screen_on_hours_the_screen_is_dark() {
    use chrono::Timelike;
    let now = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai);
    // A window that opens two hours from now and closes an hour later.
    let (h1, h2) = ((now.hour() + 2) % 24, (now.hour() + 3) % 24);
    let config = format!("\n[[display.on]]\nhours = \"{h1:02}:00-{h2:02}:00\"\n");
    let dir = tempdir();
    let demo = root().join("playlists/demo.toml");
    let Played { log, shots } = Player::fresh(dir.path(), &config).playlist(&demo).screen(640, 360).shots(&["1s"]).run();
    let img = &shots[0];
    assert!(all_dark(img, 8), "the screen is not dark outside screen-on hours");
    assert!(log.contains("outside screen-on hours"), "{}", log);
    assert!(!log.contains("showing `"), "something was shown:\n{}", log);
}

#[test]
fn a_video_slide_shows_moving_pictures() {
    let dir = tempdir();
    let green = [0x20, 0xa0, 0x40];
    common::clips::make(dir.path(), "ball.mp4", &common::clips::Spec { frames: 150, background: 0xff20_a040, ..Default::default() });
    let playlist = write(dir.path(), "v.toml", "[[items]]\nkind = \"video\"\npath = \"ball.mp4\"\n");
    let shots = ["1s", "1.6s", "2.2s", "2.8s"];
    let Played { log, shots: images } = Player::fresh(dir.path(), "").playlist(&playlist).screen(640, 480).shots(&shots).run();
    assert!(log.contains("video: ") && log.contains("decoded by"), "{}", log);
    let mut last: Option<(f64, f64)> = None;
    for (i, img) in images.iter().enumerate() {
        // 320×240 scaled to fit 640×480: the clip fills the screen.
        assert_near(img, 10, 10, green, &format!("shot {i}: the clip's background"));
        assert_near(img, 630, 470, green, &format!("shot {i}: the clip's background"));
        let at = white_centre(img).unwrap_or_else(|| panic!("shot {i}: no ball"));
        if let Some(prev) = last {
            let moved = (at.0 - prev.0).hypot(at.1 - prev.1);
            assert!(moved > 5.0, "shot {i}: the ball stood still at {at:?}");
        }
        last = Some(at);
    }
}

#[test]
fn image_to_video_and_video_to_video_never_show_black() {
    let dir = tempdir();
    use common::clips::{make, Spec};
    make(dir.path(), "a.mp4", &Spec { frames: 60, background: 0xff20_a040, ..Spec::default() });
    make(dir.path(), "b.webm", &Spec { frames: 60, codec: "vp8", background: 0xffc0_2080, ..Spec::default() });
    let playlist = write(
        dir.path(),
        "vv.toml",
        r##"
[defaults]
transition = "600ms"

[[items]]
kind = "text"
title = "甲"
background = "#c87814"
duration = "2s"

[[items]]
kind = "video"
path = "a.mp4"

[[items]]
kind = "video"
path = "b.webm"
"##,
    );
    // Across both boundaries (about 2 s and 4 s) and their fades.
    let times: Vec<String> = (0..24).map(|i| format!("{}ms", 1500 + i * 150)).collect();
    let times: Vec<&str> = times.iter().map(String::as_str).collect();
    let Played { log, shots: images } = Player::fresh(dir.path(), "").playlist(&playlist).screen(640, 360).shots(&times).run();
    let (mut card, mut a, mut b) = (false, false, false);
    for (i, img) in images.iter().enumerate() {
        let share = black_share(img);
        assert!(share < 0.05, "shot {i} ({}) is {:.0}% black\n{}", times[i], share * 100.0, log);
        // Inside the 4:3 clips (pillarboxed in the item's background colour).
        let p = img.get_pixel(100, 8);
        card |= near(img, 100, 8, [0xc8, 0x78, 0x14], 12);
        a |= near(img, 100, 8, [0x20, 0xa0, 0x40], 12);
        b |= near(img, 100, 8, [0xc0, 0x20, 0x80], 12);
        assert!(luma(p) > 40, "shot {i} is dark: {p:?}");
        assert!(!near(img, 100, 8, [0x0d, 0x2b, 0x4e], 10), "shot {i} shows the bare window between items");
    }
    assert!(card && a && b, "the shots did not span card → a → b (card={card}, a={a}, b={b})\n{}", log);
}

/// A config saved as GBK by a Windows editor: the player runs on the last
/// config that loaded, and says so discreetly in the top-right corner while
/// the programme plays (the log and `estation status` have the details).
#[test]
fn a_broken_config_is_noted_in_a_corner_while_the_last_good_one_plays() {
    let dir = tempdir();
    let playlist = write(dir.path(), "card.toml", "[[items]]\nkind = \"text\"\ntitle = \"科普\"\nbackground = \"#12372a\"\nduration = \"60s\"\n");
    let cache = dir.path().join("cache");
    let good = format!("[cache]\ndir = \"{}\"\n", cache.display());
    let play = || {
        let Played { log, mut shots } = Player::new(&dir.path().join("config.toml")).playlist(&playlist).screen(1280, 720).shots(&["1s"]).run();
        (log, shots.remove(0))
    };
    write_config(dir.path(), &good);
    let (_, first) = play();
    let corner = |img: &RgbImage| ink(img, 900, 0, 1280, 40);
    assert_eq!(corner(&first), 0, "a good config shows no notice");
    // The same file saved as GBK, with a name that is not ASCII.
    let mut bytes = std::fs::read(dir.path().join("config.toml")).unwrap();
    bytes.extend_from_slice(b"[player]\n# \xb2\xe2\xca\xd4\n");
    std::fs::write(dir.path().join("config.toml"), bytes).unwrap();
    let (log, broken) = play();
    assert!(log.contains("not UTF-8"), "{}", log);
    assert!(corner(&broken) > 50, "no notice in the corner");
    assert_near(&broken, 640, 700, [0x12, 0x37, 0x2a], "the programme still plays");
}
