//! Decoding pictures for the screen, off the frame loop.
//!
//! Images are decoded with the `image` crate and scaled down to the screen
//! before they reach the GPU: a 24-megapixel photo from a phone would
//! otherwise cost ~100 MB of texture memory for a 1080p screen.

pub mod mix;
pub mod music;
pub mod narration;
pub mod playback;
pub mod sniff;
pub mod spec;
pub mod timing;

use std::path::Path;

use image::imageops::FilterType;
use image::{ImageReader, RgbaImage};

use spec::Fit;

/// Why a picture cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("cannot open: {0}")]
    Open(#[source] std::io::Error),
    #[error("not a readable image: {0}")]
    Decode(#[source] image::ImageError),
    #[error("image is {0}×{1} pixels; at most 16384×16384 is supported")]
    TooLarge(u32, u32),
}

const MAX_SIDE: u32 = 16_384;

/// Checks a file's header: format known, dimensions sane. Cheap (no decode).
pub fn probe_image(path: &Path) -> Result<(u32, u32), MediaError> {
    let reader = ImageReader::open(path)
        .map_err(MediaError::Open)?
        .with_guessed_format()
        .map_err(MediaError::Open)?;
    let (w, h) = reader.into_dimensions().map_err(MediaError::Decode)?;
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(MediaError::TooLarge(w, h));
    }
    Ok((w, h))
}

/// Decodes a picture to RGBA8, scaled so that it is no larger than needed to
/// fill a `box_w`×`box_h` area with the given fit.
pub fn decode_image(path: &Path, box_w: u32, box_h: u32, fit: Fit) -> Result<RgbaImage, MediaError> {
    let (w, h) = probe_image(path)?;
    let img = ImageReader::open(path)
        .map_err(MediaError::Open)?
        .with_guessed_format()
        .map_err(MediaError::Open)?
        .decode()
        .map_err(MediaError::Decode)?;
    let (tw, th) = target_size(w, h, box_w.max(1), box_h.max(1), fit);
    if (tw, th) == (w, h) {
        return Ok(img.into_rgba8());
    }
    Ok(image::imageops::resize(&img.into_rgba8(), tw, th, FilterType::Triangle))
}

/// The decoded size: the picture scaled to cover (or fit in) the box, never
/// enlarged (the GPU scales up for free).
pub fn target_size(w: u32, h: u32, box_w: u32, box_h: u32, fit: Fit) -> (u32, u32) {
    let sx = f64::from(box_w) / f64::from(w);
    let sy = f64::from(box_h) / f64::from(h);
    let s = match fit {
        Fit::Contain => sx.min(sy),
        Fit::Cover => sx.max(sy),
    }
    .min(1.0);
    (
        ((f64::from(w) * s).round() as u32).max(1),
        ((f64::from(h) * s).round() as u32).max(1),
    )
}

/// Where a `w`×`h` picture lands in a `box_w`×`box_h` area: (x, y, width,
/// height) in the area's units; with `Cover` the rectangle overflows the box.
pub fn place(w: f32, h: f32, box_w: f32, box_h: f32, fit: Fit) -> (f32, f32, f32, f32) {
    let s = match fit {
        Fit::Contain => (box_w / w).min(box_h / h),
        Fit::Cover => (box_w / w).max(box_h / h),
    };
    let (dw, dh) = (w * s, h * s);
    ((box_w - dw) / 2.0, (box_h - dh) / 2.0, dw, dh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_pictures_are_scaled_down_never_up() {
        assert_eq!(target_size(6000, 4000, 1920, 1080, Fit::Contain), (1620, 1080));
        assert_eq!(target_size(6000, 4000, 1920, 1080, Fit::Cover), (1920, 1280));
        assert_eq!(target_size(640, 480, 1920, 1080, Fit::Contain), (640, 480));
    }

    #[test]
    fn contain_letterboxes_and_cover_crops() {
        assert_eq!(place(400.0, 300.0, 1600.0, 900.0, Fit::Contain), (200.0, 0.0, 1200.0, 900.0));
        assert_eq!(place(400.0, 300.0, 1600.0, 900.0, Fit::Cover), (0.0, -150.0, 1600.0, 1200.0));
    }

    #[test]
    fn corrupt_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.png");
        std::fs::write(&p, b"\x89PNG\r\n\x1a\nthis is not a png").unwrap();
        assert!(matches!(decode_image(&p, 100, 100, Fit::Contain), Err(MediaError::Decode(_))));
        let missing = dir.path().join("missing.png");
        assert!(matches!(probe_image(&missing), Err(MediaError::Open(_))));
    }
}
