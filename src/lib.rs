//! estation: kiosk software for science-popularization screens (科普e站).
//!
//! The folders are the layers, and each may use only those above it:
//!
//! ```text
//! core/     pure: playlists, schedules, validity, the rotation and the
//!           slide hand-over, CAP, alert policy and the takeover's view, the
//!           signed manifest, sync plans, media rules, the music's and a
//!           clip's state machines, trusted time. No network, no Bevy;
//!           takes `now` and inputs as arguments.
//! store/    the files on disk: atomic writes, the offline cache (which
//!           owns every path under its folder; only its writers change
//!           them), status, the alert inbox
//! config/   the kiosk's settings, resolved once, and the last copy that loaded
//! publish/  what an operator writes: building and signing a feed folder
//! net/      the network (feature `net`): the HTTP client, sync, upstream
//!           CAP sources, the feed server, the kiosk's side of the central service
//! central/  the office's central service (feature `central`): its database,
//!           API and fleet view; `estation-central`
//! video/    GStreamer video (feature `player`)
//! player/   the Bevy shell (feature `player`): it presents state
//! kiosk/    start-up of a kiosk: the player with its background sync
//! cli/      the operator's commands
//! ```
//!
//! A layer uses only those above it; `layers::each_layer_uses_only_those_above_it`
//! checks every `crate::` path outside tests.
//! `cargo test --lib --no-default-features` builds and tests everything but
//! the network and the player, and fails to compile if network code leaks
//! into the core.

pub mod cli;
pub mod config;
pub mod core;
pub mod publish;
pub mod store;

#[cfg(feature = "net")]
pub mod net;

/// The county office's central service (feature `central`).
#[cfg(feature = "central")]
pub mod central;

#[cfg(feature = "player")]
pub mod kiosk;
#[cfg(feature = "player")]
pub mod player;
/// GStreamer video, used by the player (and by `estation doctor`).
#[cfg(feature = "player")]
pub mod video;

#[cfg(test)]
mod layers {
    /// The layers, top first: each may use only those before it.
    const ORDER: [&str; 10] = ["core", "store", "config", "publish", "net", "central", "video", "player", "kiosk", "cli"];

    /// The code of a file without its tests and comments.
    fn code(text: &str) -> String {
        let end = ["#[cfg(test)]\nmod tests", "#[cfg(test)]\npub(crate) mod tests"].iter().filter_map(|m| text.find(m)).min().unwrap_or(text.len());
        text[..end].lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
    }

    fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    #[test]
    fn each_layer_uses_only_those_above_it() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut wrong = Vec::new();
        for (i, layer) in ORDER.iter().enumerate() {
            let mut paths = Vec::new();
            files(&src.join(layer), &mut paths);
            assert!(!paths.is_empty(), "src/{layer}/ has no code");
            for path in paths {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let code = code(&text);
                for below in &ORDER[i + 1..] {
                    if code.contains(&format!("crate::{below}::")) || code.contains(&format!("crate::{below};")) {
                        wrong.push(format!("{} uses {below}", path.strip_prefix(&src).unwrap_or(&path).display()));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "layers used from above: {wrong:#?}");
    }
}
