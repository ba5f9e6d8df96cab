//! The kiosk's screenshots for the central service, in `screenshots/`
//! beside the cache: the player writes the newest as
//! `shot-<ms since 1970>.jpg` (older ones go), the heartbeat uploads it.
//! A request from the service reaches the player as the file `asked`.
//!
//! A screenshot is the real frame, cut down to fit [`MAX_SIDE`] and saved
//! as JPEG: tens of KB, cheap on a village link, enough to see that the
//! screen shows the programme (or a warning) and not a desktop or an error.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, Utc};

/// The longest side of a screenshot, in pixels (a 1920×1080 frame becomes
/// 640×360; a portrait kiosk's 1080×1920, 360×640).
pub const MAX_SIDE: u32 = 640;
/// JPEG quality: text on a card stays legible.
const QUALITY: u8 = 75;
/// The largest screenshot the service takes (a 640×360 JPEG is 20-60 KB).
pub const MAX_BYTES: usize = 1024 * 1024;
/// The longest side the service takes (a kiosk that sends its full frame).
pub const MAX_ACCEPTED_SIDE: u32 = 3840;
/// The request file.
const ASKED: &str = "asked";
/// What the heartbeat uploaded last (ms of the shot).
const UPLOADED: &str = "uploaded";

#[derive(Debug, thiserror::Error)]
pub enum ShotError {
    #[error("screenshot: the frame does not convert: {0}")]
    Frame(String),
    #[error("screenshot: {0}")]
    Encode(#[from] image::ImageError),
    #[error("screenshot: {0}")]
    Refused(String),
    #[error("screenshot {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ShotError + '_ {
    move |source| ShotError::Io { path: path.to_path_buf(), source }
}

/// The screenshots' folder for the cache at `cache_dir`: beside it.
pub fn dir_for(cache_dir: &Path) -> PathBuf {
    cache_dir.with_file_name("screenshots")
}

/// A frame cut down to fit [`MAX_SIDE`] (never enlarged), as JPEG.
pub fn encode(frame: &image::DynamicImage) -> Result<Vec<u8>, ShotError> {
    let small = if frame.width() > MAX_SIDE || frame.height() > MAX_SIDE { frame.thumbnail(MAX_SIDE, MAX_SIDE) } else { frame.clone() };
    let rgb = small.to_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, QUALITY).encode_image(&rgb)?;
    Ok(out)
}

/// Checks that `bytes` are a JPEG of a sensible size, as the service
/// does with what a screen sends; its width and height.
pub fn check(bytes: &[u8]) -> Result<(u32, u32), ShotError> {
    if bytes.len() > MAX_BYTES {
        return Err(ShotError::Refused(format!("{} bytes; at most {MAX_BYTES}", bytes.len())));
    }
    let reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), image::ImageFormat::Jpeg);
    let (w, h) = reader.into_dimensions().map_err(|e| ShotError::Refused(format!("not a JPEG: {e}")))?;
    if w == 0 || h == 0 || w > MAX_ACCEPTED_SIDE || h > MAX_ACCEPTED_SIDE {
        return Err(ShotError::Refused(format!("{w}×{h} pixels; at most {MAX_ACCEPTED_SIDE} a side")));
    }
    Ok((w, h))
}

/// Saves `jpeg` as the newest screenshot, taken at `taken`, and removes the
/// older ones; answers a pending request.
pub fn save(dir: &Path, jpeg: &[u8], taken: DateTime<Utc>) -> Result<PathBuf, ShotError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(format!("shot-{:013}.jpg", taken.timestamp_millis().max(0)));
    super::atomic::write(&path, jpeg).map_err(io(&path))?;
    for (_, old) in shots(dir) {
        if old != path {
            let _ = std::fs::remove_file(old);
        }
    }
    let _ = std::fs::remove_file(dir.join(ASKED));
    Ok(path)
}

/// Every screenshot in `dir` with its time, oldest first.
fn shots(dir: &Path) -> Vec<(i64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<(i64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let ms = name.strip_prefix("shot-")?.strip_suffix(".jpg")?.parse().ok()?;
            Some((ms, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// The newest screenshot: when it was taken and its file.
pub fn latest(dir: &Path) -> Option<(DateTime<Utc>, PathBuf)> {
    let (ms, path) = shots(dir).pop()?;
    Some((DateTime::from_timestamp_millis(ms)?, path))
}

/// Asks the player for a screenshot now (the service asked for one).
pub fn ask(dir: &Path) -> Result<(), ShotError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(ASKED);
    super::atomic::write(&path, Utc::now().to_rfc3339().as_bytes()).map_err(io(&path))
}

/// When the pending request was made (its file's time), if there is one.
pub fn asked(dir: &Path) -> Option<SystemTime> {
    std::fs::metadata(dir.join(ASKED)).and_then(|m| m.modified()).ok()
}

/// The time (ms) of the last screenshot the service took, 0 when none.
pub fn uploaded(dir: &Path) -> i64 {
    std::fs::read_to_string(dir.join(UPLOADED)).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

pub fn set_uploaded(dir: &Path, taken: DateTime<Utc>) -> Result<(), ShotError> {
    let path = dir.join(UPLOADED);
    super::atomic::write(&path, taken.timestamp_millis().to_string().as_bytes()).map_err(io(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_cut_to_fit_and_only_the_newest_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().join("screenshots");
        let frame = image::DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(1920, 1080, image::Rgba([200, 30, 30, 255])));
        let jpeg = encode(&frame).unwrap();
        let back = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).unwrap();
        assert_eq!((back.width(), back.height()), (640, 360));
        let px = back.to_rgb8().get_pixel(320, 180).0;
        assert!(px[0] > 170 && px[1] < 70, "the colour survives: {px:?}");
        let portrait = image::DynamicImage::ImageRgb8(image::RgbImage::new(1080, 1920));
        let back = image::load_from_memory(&encode(&portrait).unwrap()).unwrap();
        assert_eq!((back.width(), back.height()), (360, 640));
        let small = image::DynamicImage::ImageRgb8(image::RgbImage::new(320, 180));
        assert_eq!(image::load_from_memory(&encode(&small).unwrap()).unwrap().width(), 320, "never enlarged");

        assert_eq!(check(&jpeg).unwrap(), (640, 360));
        assert!(check(b"\x89PNG\r\n").is_err());
        assert!(matches!(check(&vec![0xFF; MAX_BYTES + 1]), Err(ShotError::Refused(_))));

        assert!(latest(&dir).is_none());
        ask(&dir).unwrap();
        assert!(asked(&dir).is_some());
        let t1 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let t2 = t1 + chrono::Duration::minutes(15);
        save(&dir, &jpeg, t1).unwrap();
        assert!(asked(&dir).is_none(), "a screenshot answers the request");
        save(&dir, b"second", t2).unwrap();
        let (at, path) = latest(&dir).unwrap();
        assert_eq!(at, t2);
        assert_eq!(std::fs::read(path).unwrap(), b"second");
        assert_eq!(shots(&dir).len(), 1, "older ones removed");
        assert_eq!(uploaded(&dir), 0);
        set_uploaded(&dir, t2).unwrap();
        assert_eq!(uploaded(&dir), t2.timestamp_millis());
    }
}
