//! Which GStreamer plugins this machine has, which decoder each format gets,
//! and the Debian package that provides what is missing — for
//! `estation doctor` and for the log line of a clip that cannot play.

use gstreamer as gst;

use gst::prelude::*;

pub const BASE: &str = "gstreamer1.0-plugins-base";
pub const GOOD: &str = "gstreamer1.0-plugins-good";
pub const BAD: &str = "gstreamer1.0-plugins-bad";
pub const LIBAV: &str = "gstreamer1.0-libav";

/// One format the player should play.
struct Need {
    what: &'static str,
    caps: &'static str,
    /// Where a software decoder comes from on Debian.
    package: &'static str,
}

const DECODERS: &[Need] = &[
    Need { what: "H.264 video", caps: "video/x-h264", package: LIBAV },
    Need { what: "H.265 video", caps: "video/x-h265", package: LIBAV },
    Need { what: "VP8 video", caps: "video/x-vp8", package: GOOD },
    Need { what: "VP9 video", caps: "video/x-vp9", package: GOOD },
    Need { what: "AAC sound", caps: "audio/mpeg, mpegversion=(int)4", package: LIBAV },
    Need { what: "MP3 sound", caps: "audio/mpeg, mpegversion=(int)1, layer=(int)3", package: GOOD },
    Need { what: "Opus sound", caps: "audio/x-opus", package: BASE },
    Need { what: "Vorbis sound", caps: "audio/x-vorbis", package: BASE },
];

/// Demuxers by their caps: (caps, package).
const CONTAINERS: &[(&str, &str)] = &[
    ("video/quicktime", GOOD),
    ("video/x-matroska", GOOD),
    ("video/webm", GOOD),
    ("application/ogg", BASE),
    ("audio/x-wav", GOOD),
    ("audio/x-flac", GOOD),
];

/// Elements by name: (what, element, package).
const ELEMENTS: &[(&str, &str, &str)] = &[
    ("playback", "playbin", BASE),
    ("frames to the screen", "appsink", BASE),
    ("colour conversion", "videoconvert", BASE),
    ("scaling", "videoscale", BASE),
    ("MP4 files", "qtdemux", GOOD),
    ("MKV and WebM files", "matroskademux", GOOD),
    ("sound output", "autoaudiosink", GOOD),
];

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub what: &'static str,
    /// The element that does it, or `None` when missing.
    pub element: Option<String>,
    pub hardware: bool,
    /// What to install when it is missing.
    pub package: &'static str,
}

/// The machine's video abilities.
#[derive(Debug, Clone)]
pub struct Report {
    pub version: String,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn missing(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.element.is_none())
    }

    /// Whether some video format decodes in hardware (VA-API and friends).
    pub fn hardware(&self) -> bool {
        self.checks.iter().any(|c| c.hardware)
    }
}

/// Looks at GStreamer's registry: what is there, and what autoplugging
/// would pick for each format (the highest-ranked decoder).
pub fn report() -> Result<Report, super::VideoError> {
    super::init()?;
    let mut checks = Vec::new();
    for &(what, name, package) in ELEMENTS {
        let element = gst::ElementFactory::find(name).map(|_| name.to_string());
        checks.push(Check { what, element, hardware: false, package });
    }
    let decoders = gst::ElementFactory::factories_with_type(gst::ElementFactoryType::DECODER, gst::Rank::MARGINAL);
    for need in DECODERS {
        let caps: gst::Caps = need.caps.parse().map_err(|_| super::VideoError::Init(format!("bad caps {}", need.caps)))?;
        // Alpha-channel VP8/9 bins take only streams marked as having alpha.
        let best = decoders
            .iter()
            .filter(|f| f.can_sink_any_caps(&caps) && !f.name().contains("alpha"))
            .max_by_key(|f| (f.rank(), std::cmp::Reverse(f.name().len())));
        checks.push(Check {
            what: need.what,
            element: best.map(|f| f.name().to_string()),
            hardware: best.is_some_and(is_hardware),
            package: need.package,
        });
    }
    Ok(Report { version: gst::version_string().to_string(), checks })
}

/// Whether a decoder runs on a hardware block rather than the CPU.
pub fn is_hardware(f: &gst::ElementFactory) -> bool {
    let name = f.name();
    f.metadata("klass").is_some_and(|k| k.contains("Hardware"))
        || ["va", "vaapi", "v4l2", "nv", "msdk", "qsv"].iter().any(|p| name.starts_with(p))
}

/// A missing-plugin report turned into words and a Debian package.
///
/// `detail` is GStreamer's installer detail, e.g.
/// `gstreamer|1.0|estation|H.265 decoder|decoder-video/x-h265, …`.
pub fn missing_hint(description: &str, detail: &str) -> String {
    let wanted = detail.split('|').nth(4).unwrap_or_default();
    let caps = wanted.split_once('-').map_or(wanted, |(_, c)| c);
    let media = caps.split(',').next().unwrap_or_default().trim();
    let package = DECODERS
        .iter()
        .find(|n| n.caps.split(',').next() == Some(media))
        .map(|n| n.package)
        .or_else(|| CONTAINERS.iter().find(|(c, _)| *c == media).map(|(_, p)| *p))
        .unwrap_or(BAD);
    format!("{description} (install {package})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_plugins_name_their_package() {
        assert_eq!(
            missing_hint("H.265 (Main Profile) decoder", "gstreamer|1.0|estation|H.265 (Main Profile) decoder|decoder-video/x-h265, profile=(string)main"),
            "H.265 (Main Profile) decoder (install gstreamer1.0-libav)"
        );
        assert_eq!(missing_hint("VP9 decoder", "gstreamer|1.0|x|VP9 decoder|decoder-video/x-vp9"), "VP9 decoder (install gstreamer1.0-plugins-good)");
        assert_eq!(missing_hint("AV1 decoder", "gstreamer|1.0|x|AV1 decoder|decoder-video/x-av1"), "AV1 decoder (install gstreamer1.0-plugins-bad)");
        assert_eq!(
            missing_hint("QuickTime demuxer", "gstreamer|1.0|x|QuickTime demuxer|decoder-video/quicktime, variant=(string)iso"),
            "QuickTime demuxer (install gstreamer1.0-plugins-good)"
        );
        assert_eq!(missing_hint("AAC decoder", "gstreamer|1.0|x|AAC|decoder-audio/mpeg, mpegversion=(int)4"), "AAC decoder (install gstreamer1.0-libav)");
    }

    #[test]
    fn this_machine_decodes_what_the_tests_play() {
        let r = report().unwrap();
        let has = |what: &str| r.checks.iter().any(|c| c.what == what && c.element.is_some());
        for what in ["playback", "frames to the screen", "MP4 files", "MKV and WebM files", "H.264 video", "VP8 video", "VP9 video", "Opus sound", "AAC sound"] {
            assert!(has(what), "{what} missing: install scripts/install-deps; {r:?}");
        }
    }
}
