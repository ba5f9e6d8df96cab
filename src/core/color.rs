//! Colours as operators write them in playlists: `#RRGGBB` or `#RRGGBBAA`.

use std::fmt;
use std::str::FromStr;

/// An sRGB colour with straight alpha.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgba(pub [u8; 4]);

impl Rgba {
    pub const WHITE: Rgba = Rgba([255, 255, 255, 255]);
    pub const fn rgb(r: u8, g: u8, b: u8) -> Rgba {
        Rgba([r, g, b, 255])
    }
}

impl FromStr for Rgba {
    type Err = String;
    /// ```
    /// use estation::core::color::Rgba;
    /// assert_eq!("#0d47a1".parse::<Rgba>().unwrap(), Rgba([0x0d, 0x47, 0xa1, 255]));
    /// assert!("blue".parse::<Rgba>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a colour; write #RRGGBB or #RRGGBBAA, e.g. #0d47a1");
        let hex = s.strip_prefix('#').ok_or_else(bad)?;
        if !(hex.len() == 6 || hex.len() == 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
        let a = if hex.len() == 8 { byte(6)? } else { 255 };
        Ok(Rgba([byte(0)?, byte(2)?, byte(4)?, a]))
    }
}

impl fmt::Display for Rgba {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [r, g, b, a] = self.0;
        if a == 255 {
            write!(f, "#{r:02x}{g:02x}{b:02x}")
        } else {
            write!(f, "#{r:02x}{g:02x}{b:02x}{a:02x}")
        }
    }
}
