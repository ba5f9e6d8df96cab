//! Reading the player's screenshots: colours near a reference, the ink of
//! white text on a dark card, lines of text, black frames, a moving ball.
//! The one copy of these for every test that looks at pixels.

use image::{Rgb, RgbImage};

/// Colour distance, max over channels.
pub fn dist(a: Rgb<u8>, b: [u8; 3]) -> u8 {
    (0..3).map(|i| a[i].abs_diff(b[i])).max().unwrap_or(0)
}

/// Whether pixel (x, y) is within `tol` of `want` on every channel.
pub fn near(img: &RgbImage, x: u32, y: u32, want: [u8; 3], tol: u8) -> bool {
    dist(*img.get_pixel(x, y), want) <= tol
}

/// Asserts pixel (x, y) is about `want` (within 12), naming `what` it is.
pub fn assert_near(img: &RgbImage, x: u32, y: u32, want: [u8; 3], what: &str) {
    let got = img.get_pixel(x, y);
    assert!(dist(*got, want) <= 12, "{what}: pixel ({x},{y}) is {got:?}, expected about {want:?}");
}

/// Perceived brightness, 0 to 255 (ITU-R BT.601 weights).
pub fn luma(p: &Rgb<u8>) -> u32 {
    (u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000
}

/// An sRGB channel in linear light, 0 to 1: what the GPU blends in.
pub fn linear(c: u8) -> f64 {
    let c = f64::from(c) / 255.0;
    if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
}

/// Bright ("ink") pixels of white text on a dark card, in a rectangle.
pub fn ink(img: &RgbImage, x0: u32, y0: u32, x1: u32, y1: u32) -> usize {
    let mut n = 0;
    for y in y0..y1.min(img.height()) {
        for x in x0..x1.min(img.width()) {
            if luma(img.get_pixel(x, y)) > 140 {
                n += 1;
            }
        }
    }
    n
}

/// Rows containing ink, grouped into text lines: (top, bottom, left, right).
pub fn text_lines(img: &RgbImage, x0: u32, y0: u32, x1: u32, y1: u32) -> Vec<(u32, u32, u32, u32)> {
    let mut lines = Vec::new();
    let mut cur: Option<(u32, u32, u32, u32)> = None;
    for y in y0..y1 {
        let xs: Vec<u32> = (x0..x1).filter(|&x| luma(img.get_pixel(x, y)) > 140).collect();
        match (xs.first(), xs.last(), cur.as_mut()) {
            (Some(&l), Some(&r), Some(c)) => {
                c.1 = y;
                c.2 = c.2.min(l);
                c.3 = c.3.max(r);
            }
            (Some(&l), Some(&r), None) => cur = Some((y, y, l, r)),
            (None, _, _) => {
                if let Some(c) = cur.take() {
                    lines.push(c);
                }
            }
            _ => {}
        }
    }
    lines.extend(cur);
    lines
}

/// Share of pixels that are (nearly) black: a frame with no picture in it.
pub fn black_share(img: &RgbImage) -> f64 {
    let dark = img.pixels().filter(|p| luma(p) < 24).count();
    dark as f64 / f64::from(img.width() * img.height())
}

/// Whether every pixel is darker than `max_luma`: a dark screen.
pub fn all_dark(img: &RgbImage, max_luma: u32) -> bool {
    img.pixels().all(|p| luma(p) < max_luma)
}

/// Centre of the white pixels (the test pattern's ball), if there are some.
pub fn white_centre(img: &RgbImage) -> Option<(f64, f64)> {
    let (mut n, mut sx, mut sy) = (0.0, 0.0, 0.0);
    for (x, y, p) in img.enumerate_pixels() {
        if p.0.iter().all(|&c| c > 230) {
            n += 1.0;
            sx += f64::from(x);
            sy += f64::from(y);
        }
    }
    (n > 20.0).then(|| (sx / n, sy / n))
}
