//! QR codes as pixels: the `qrcode` crate builds the matrix, we paint it.

use image::{Rgba, RgbaImage};
use qrcode::{EcLevel, QrCode};

/// Modules of quiet zone around the code, as the QR standard asks.
const QUIET: u32 = 4;

/// Renders `data` as a black-on-white QR code, `scale` pixels per module.
/// Level M tolerates 15% damage (glare on a screen photo) and still fits URLs.
pub fn render(data: &str, scale: u32) -> Result<RgbaImage, qrcode::types::QrError> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)?;
    let n = code.width() as u32;
    let side = (n + 2 * QUIET) * scale;
    let mut img = RgbaImage::from_pixel(side, side, Rgba([255, 255, 255, 255]));
    for (i, color) in code.to_colors().iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (mx, my) = (i as u32 % n + QUIET, i as u32 / n + QUIET);
            for y in my * scale..(my + 1) * scale {
                for x in mx * scale..(mx + 1) * scale {
                    img.put_pixel(x, y, Rgba([0, 0, 0, 255]));
                }
            }
        }
    }
    Ok(img)
}

/// Modules across the code including the quiet zone, to pick a pixel scale.
pub fn modules(data: &str) -> Result<u32, qrcode::types::QrError> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)?;
    Ok(code.width() as u32 + 2 * QUIET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_code_decodes_back() {
        let url = "https://www.kepuchina.cn/app";
        let img = render(url, 6).unwrap();
        let gray = image::DynamicImage::ImageRgba8(img).into_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(gray);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, url);
    }
}
