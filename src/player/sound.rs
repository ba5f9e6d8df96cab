//! Sound through rodio: the alert chime, then the alert's own audio.
//!
//! The device is opened only when something is to be heard, and reopened
//! (with back-off) after it failed or vanished (USB speakers unplugged, the
//! sound server restarted): no device means silence and one log line, never
//! a crash or a stalled frame loop. The chime is synthesised here, so no
//! sample file needs a licence.

use std::io::Cursor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bevy::prelude::*;
use rodio::source::SineWave;
use rodio::{DeviceSinkBuilder, MixerDeviceSink, Player, Source};

use super::Settings;
use crate::alert::policy::AudioRef;

/// Longest back-off between attempts to open a missing device.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Largest embedded audio resource decoded (a minute of speech in MP3).
const MAX_AUDIO_BYTES: usize = 4 * 1024 * 1024;

/// Something to sound now: the chime, then these resources.
#[derive(Resource, Default)]
pub(crate) struct ChimeRequest(pub Option<Vec<AudioRef>>);

/// The output device, held on the main thread (audio streams are not `Send`
/// on every platform).
struct Speaker {
    sink: Option<MixerDeviceSink>,
    lost: Arc<AtomicBool>,
    retry_at: Instant,
    backoff: Duration,
    said_silent: bool,
    playing: Option<Player>,
}

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<ChimeRequest>()
        .insert_non_send(Speaker {
            sink: None,
            lost: Arc::new(AtomicBool::new(false)),
            retry_at: Instant::now(),
            backoff: Duration::from_secs(1),
            said_silent: false,
            playing: None,
        })
        .add_systems(Update, sound);
}

impl Speaker {
    fn device(&mut self) -> Option<&MixerDeviceSink> {
        if self.lost.swap(false, Ordering::Relaxed) && self.sink.is_some() {
            warn!("audio: the device failed or went away; will reopen it");
            self.playing = None;
            self.sink = None;
        }
        let now = Instant::now();
        if self.sink.is_none() && now >= self.retry_at {
            let lost = self.lost.clone();
            let opened = DeviceSinkBuilder::from_default_device()
                .and_then(|b| b.with_error_callback(move |_| lost.store(true, Ordering::Relaxed)).open_stream());
            match opened {
                Ok(mut s) => {
                    s.log_on_drop(false);
                    info!("audio: sound on the default output device");
                    self.sink = Some(s);
                    self.backoff = Duration::from_secs(1);
                    self.said_silent = false;
                }
                Err(e) => {
                    if !self.said_silent {
                        warn!("audio: no output device ({e}); alerts are silent until one appears");
                        self.said_silent = true;
                    }
                    self.retry_at = now + self.backoff;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        self.sink.as_ref()
    }
}

fn sound(mut request: ResMut<ChimeRequest>, mut speaker: NonSendMut<Speaker>, settings: Res<Settings>) {
    let Some(audio) = request.0.take() else { return };
    let volume = f32::from(settings.config.volume) / 100.0;
    let Some(sink) = speaker.device() else { return };
    let player = Player::connect_new(sink.mixer());
    player.set_volume(volume);
    for tone in chime() {
        player.append(tone);
    }
    let cache = settings.config.cache.dir();
    for a in &audio {
        match decode(a, cache.as_deref()) {
            Ok(Some(source)) => player.append(source),
            Ok(None) => {}
            Err(e) => warn!("audio: alert audio ({}) not played: {e}", a.mime_type),
        }
    }
    // A new chime replaces one still sounding.
    speaker.playing = Some(player);
}

/// Three two-tone "ding-dongs" (880 Hz / 660 Hz), about 2.4 s in all.
pub(crate) fn chime() -> Vec<impl Source + Send + 'static> {
    let tone = |hz: f32| {
        SineWave::new(hz)
            .take_duration(Duration::from_millis(380))
            .fade_in(Duration::from_millis(8))
            .amplify(0.5)
    };
    (0..3).flat_map(|_| [tone(880.0), tone(660.0)]).collect()
}

/// An alert's audio: embedded (`derefUri`) resources are decoded; linked
/// ones are played from where sync cached them (the player reads only the
/// cache), and skipped until they are there.
fn decode(a: &AudioRef, cache: Option<&std::path::Path>) -> Result<Option<rodio::Decoder<Cursor<Vec<u8>>>>, String> {
    let Some(b64) = &a.deref else {
        let (Some(uri), Some(cache)) = (&a.uri, cache) else { return Ok(None) };
        let path = crate::sync::alert_media::path_for(cache, uri);
        return match std::fs::read(&path) {
            Ok(bytes) => rodio::Decoder::new(Cursor::new(bytes)).map(Some).map_err(|e| format!("{uri}: {e}")),
            Err(_) => {
                info!("audio: alert audio {uri} is not in the cache yet");
                Ok(None)
            }
        };
    };
    let cleaned: String = b64.split_whitespace().collect();
    if cleaned.len() / 4 * 3 > MAX_AUDIO_BYTES {
        return Err(format!("larger than {MAX_AUDIO_BYTES} bytes"));
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(cleaned).map_err(|e| format!("derefUri is not base64: {e}"))?;
    rodio::Decoder::new(Cursor::new(bytes)).map(Some).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chime_is_short_and_audible() {
        let parts = chime();
        assert_eq!(parts.len(), 6);
        let total: Duration = parts
            .into_iter()
            .map(|p| {
                let per_sec = p.sample_rate().get() as f64 * f64::from(p.channels().get());
                Duration::from_secs_f64(p.count() as f64 / per_sec)
            })
            .sum();
        assert!(total > Duration::from_secs(2) && total < Duration::from_secs(3), "{total:?}");
        let peak = chime().into_iter().flatten().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!(peak > 0.3 && peak <= 0.5, "{peak}");
    }

    #[test]
    fn embedded_audio_decodes_and_garbage_is_an_error() {
        // A tiny WAV written by hound-free hand: 8 kHz mono 16-bit silence.
        let mut wav = Vec::new();
        let data = vec![0u8; 1600];
        wav.extend_from_slice(b"RIFF");
        wav.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        wav.extend_from_slice(b"WAVEfmt ");
        wav.extend_from_slice(&[16, 0, 0, 0, 1, 0, 1, 0]);
        wav.extend_from_slice(&8000u32.to_le_bytes());
        wav.extend_from_slice(&16000u32.to_le_bytes());
        wav.extend_from_slice(&[2, 0, 16, 0]);
        wav.extend_from_slice(b"data");
        wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
        wav.extend_from_slice(&data);
        let ok = AudioRef {
            mime_type: "audio/wav".into(),
            uri: None,
            deref: Some(base64::engine::general_purpose::STANDARD.encode(&wav)),
            digest: None,
        };
        assert!(decode(&ok, None).unwrap().is_some());
        let bad = AudioRef { deref: Some("bm90IGF1ZGlv".into()), ..ok.clone() };
        assert!(decode(&bad, None).is_err());
        // Linked audio plays once sync has put it in the cache.
        let cache = tempfile::tempdir().unwrap();
        let linked = AudioRef { deref: None, uri: Some("https://x/a.wav".into()), ..ok };
        assert!(decode(&linked, Some(cache.path())).unwrap().is_none());
        let path = crate::sync::alert_media::path_for(cache.path(), "https://x/a.wav");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &wav).unwrap();
        assert!(decode(&linked, Some(cache.path())).unwrap().is_some());
    }
}
