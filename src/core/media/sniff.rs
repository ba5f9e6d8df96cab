//! What kind of media a file holds, from its first bytes (never its name).
//!
//! Used by playlist checks (a `.mp4` that is really an HTML error page is
//! caught when the playlist is read, not on screen) and by `feed build`,
//! which records the type in the signed manifest.

/// Containers and formats the player plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
    Webp,
    /// ISO base media (MP4, M4V, MOV).
    Mp4,
    /// Matroska (MKV).
    Matroska,
    /// WebM, Matroska's restricted profile.
    Webm,
    Mp3,
    Ogg,
    Wav,
    Flac,
}

/// What a format is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Picture,
    Video,
    Sound,
}

/// Bytes needed from the start of a file to sniff it.
pub const HEAD: usize = 64;

impl Format {
    pub fn class(self) -> Class {
        match self {
            Format::Png | Format::Jpeg | Format::Webp => Class::Picture,
            Format::Mp4 | Format::Matroska | Format::Webm => Class::Video,
            Format::Mp3 | Format::Ogg | Format::Wav | Format::Flac => Class::Sound,
        }
    }

    /// Recognises a file by its first bytes ([`HEAD`] of them suffice).
    ///
    /// ```
    /// use estation::core::media::sniff::Format;
    /// assert_eq!(Format::sniff(b"\0\0\0\x20ftypisom\0\0\x02\0"), Some(Format::Mp4));
    /// assert_eq!(Format::sniff(b"OggS\0\x02"), Some(Format::Ogg));
    /// assert_eq!(Format::sniff(b"<html>"), None);
    /// ```
    pub fn sniff(b: &[u8]) -> Option<Format> {
        if let Ok(f) = image::guess_format(b) {
            return match f {
                image::ImageFormat::Png => Some(Format::Png),
                image::ImageFormat::Jpeg => Some(Format::Jpeg),
                image::ImageFormat::WebP => Some(Format::Webp),
                _ => None,
            };
        }
        if b.len() >= 12 && &b[4..8] == b"ftyp" {
            return Some(Format::Mp4);
        }
        if b.starts_with(&[0x1a, 0x45, 0xdf, 0xa3]) {
            // The EBML header names the DocType within its first bytes.
            let head = &b[..b.len().min(HEAD)];
            return Some(if head.windows(4).any(|w| w == b"webm") { Format::Webm } else { Format::Matroska });
        }
        if b.starts_with(b"OggS") {
            return Some(Format::Ogg);
        }
        if b.starts_with(b"fLaC") {
            return Some(Format::Flac);
        }
        if b.len() >= 12 && b.starts_with(b"RIFF") && &b[8..12] == b"WAVE" {
            return Some(Format::Wav);
        }
        // MP3: an ID3v2 tag, or an MPEG audio frame sync (11 set bits, layer III).
        if b.starts_with(b"ID3") || (b.len() >= 2 && b[0] == 0xff && b[1] & 0xe0 == 0xe0 && b[1] & 0x06 == 0x02) {
            return Some(Format::Mp3);
        }
        None
    }

    /// Extensions an operator may write for this class.
    pub fn extensions(class: Class) -> &'static [&'static str] {
        match class {
            Class::Picture => &["png", "jpg", "jpeg", "webp"],
            Class::Video => &["mp4", "m4v", "mov", "mkv", "webm"],
            // Not `.opus`: rodio (narration, music) has no Opus decoder.
            Class::Sound => &["mp3", "ogg", "oga", "wav", "flac"],
        }
    }
}

/// Reads a file's first bytes and sniffs them.
pub fn sniff_file(path: &std::path::Path) -> std::io::Result<Option<Format>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(HEAD);
    std::fs::File::open(path)?.take(HEAD as u64).read_to_end(&mut head)?;
    Ok(Format::sniff(&head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_is_told_apart() {
        let ebml = |doc: &[u8]| [&[0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x82, 0x84][..], doc].concat();
        let cases: [(&[u8], Option<Format>); 11] = [
            (b"\x89PNG\r\n\x1a\n\0\0", Some(Format::Png)),
            (b"\xff\xd8\xff\xe0\0\x10JFIF", Some(Format::Jpeg)),
            (&ebml(b"webm"), Some(Format::Webm)),
            (&ebml(b"matroska"), Some(Format::Matroska)),
            (b"\0\0\0\x1cftypmp42\0\0\0\0", Some(Format::Mp4)),
            (b"ID3\x04\0\0\0\0", Some(Format::Mp3)),
            (b"\xff\xfb\x90\x64", Some(Format::Mp3)),
            (b"RIFF\x24\0\0\0WAVEfmt ", Some(Format::Wav)),
            (b"fLaC\0\0\0\x22", Some(Format::Flac)),
            (b"RIFF\x24\0\0\0AVI LIST", None),
            (b"<!DOCTYPE html>", None),
        ];
        for (bytes, want) in cases {
            assert_eq!(Format::sniff(bytes), want, "{bytes:?}");
        }
        assert_eq!(Format::Webm.class(), Class::Video);
        assert_eq!(Format::Flac.class(), Class::Sound);
    }
}
