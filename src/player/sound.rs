//! Sound through rodio: the alert chime and the alert's own audio, item
//! narration, and a playlist's background music that ducks under narration
//! and clip sound and stops for warnings.
//!
//! The device is opened only when something is to be heard, and reopened
//! (with back-off) after it failed or vanished (USB speakers unplugged, the
//! sound server restarted): no device means silence and one log line, never
//! a crash or a stalled frame loop; the music comes back with the device.
//! How loud each part is comes from [`crate::core::media::mix`]; which music
//! track plays, when the next starts and when it pauses, from
//! [`crate::core::media::music`]. Nothing here
//! waits for a sound to end: item lengths come from measured durations
//! (rodio never drains a player whose device is gone). The chime is
//! synthesised here, so no sample file needs a licence.

use std::fs::File;
use std::io::{BufReader, Cursor};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bevy::prelude::*;
use chrono::Utc;
use rodio::source::SineWave;
use rodio::{CpalErrorKind, DeviceSinkBuilder, MixerDeviceSink, Player, Source};

use super::alerts::ChimeRequest;
use super::mode::Mode;
use super::power::Wake;
use super::video::ClipSound;
use super::worker::Worker;
use super::Settings;
use crate::core::alert::policy::AudioRef;
use crate::core::media::mix::{self, Sounding, Volumes};
use crate::core::media::music::{self, Next};
use crate::core::media::narration::{self, Cue};
use crate::core::playlist::Music;

/// Longest back-off between attempts to open a missing device.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Largest embedded audio resource decoded (a minute of speech in MP3).
const MAX_AUDIO_BYTES: usize = 4 * 1024 * 1024;
/// The chime's length (six 380 ms tones).
const CHIME: Duration = Duration::from_millis(2280);
/// Assumed length of alert audio whose length the decoder cannot tell.
const UNKNOWN_AUDIO: Duration = Duration::from_secs(20);

/// What a slide wants heard: its item's narration and its playlist's
/// music (none for the idle screen). The rotation puts it on each slide it
/// spawns; the newest slide is the one heard, and none once it is gone.
#[derive(Component, Debug, Clone, Default)]
pub(crate) struct SlideSound {
    pub narration: Option<PathBuf>,
    pub music: Option<Music>,
}

/// What the programme on screen wants heard, from the newest slide.
#[derive(Resource, Default)]
struct ProgrammeSound {
    /// The slide heard.
    slide: Option<Entity>,
    narration: Option<PathBuf>,
    /// Bumped at every item, so the same narration twice starts twice.
    item: u64,
    music: Option<Music>,
    music_changes: u64,
    /// The sound output's state in words, for `estation status`.
    output: Option<String>,
}

impl ProgrammeSound {
    /// A new item is on screen (or none, with `None, None`).
    fn show(&mut self, narration: Option<PathBuf>, music: Option<Music>) {
        self.narration = narration;
        self.item += 1;
        if self.music != music {
            self.music = music;
            self.music_changes += 1;
        }
    }
}

/// The output device and what plays on it, held on the main thread (audio
/// streams are not `Send` on every platform).
struct Speaker {
    sink: Option<MixerDeviceSink>,
    lost: Arc<AtomicBool>,
    retry_at: Instant,
    /// Failed attempts to open the device since it last opened.
    attempts: u32,
    said_silent: bool,
    /// Why the device is not open, when it is not.
    silent_because: Option<String>,
    chime: Option<Player>,
    chime_until: Instant,
    narration: Option<Player>,
    /// Whose narration plays: decided in [`narration`].
    narrated: narration::Narration,
    /// Which track, when the next, how loud: decided in [`music`].
    music: music::Music,
    /// The player of the music track that plays.
    music_player: Option<Player>,
    /// Wakes the frame loop from the audio thread when the device fails.
    waker: Option<super::power::Waker>,
}

pub(super) fn plugin(app: &mut App) {
    let now = Instant::now();
    app.init_resource::<ProgrammeSound>()
        .insert_non_send(Speaker {
            sink: None,
            lost: Arc::new(AtomicBool::new(false)),
            retry_at: now,
            attempts: 0,
            said_silent: false,
            silent_because: None,
            chime: None,
            chime_until: now,
            narration: None,
            narrated: narration::Narration::default(),
            music: music::Music::default(),
            music_player: None,
            waker: None,
        })
        .add_systems(Startup, |mut speaker: NonSendMut<Speaker>, waker: Res<super::power::LoopWaker>| {
            speaker.waker = Some(waker.0.clone());
        })
        .add_systems(Update, (follow_slides, chime_and_alert_audio, programme).chain().in_set(super::Phase::Animate));
}

/// Follows the newest slide's sound; with no slide left (a dark screen),
/// nothing plays.
fn follow_slides(mut wanted: ResMut<ProgrammeSound>, added: Query<(Entity, &SlideSound), Added<SlideSound>>, slides: Query<(), With<SlideSound>>) {
    if let Some((e, s)) = added.iter().last() {
        wanted.slide = Some(e);
        wanted.show(s.narration.clone(), s.music.clone());
    } else if let Some(e) = wanted.slide
        && slides.get(e).is_err()
    {
        wanted.slide = None;
        wanted.show(None, None);
    }
}

impl Speaker {
    /// The wait before the next attempt: 1 s, doubling up to
    /// [`MAX_BACKOFF`] (without jitter: one device, no fleet to spread).
    fn backoff(&self) -> Duration {
        crate::core::sync::backoff::delay(self.attempts, Duration::from_secs(1), MAX_BACKOFF, 1.0)
    }

    fn device(&mut self) -> Option<&MixerDeviceSink> {
        if self.lost.swap(false, Ordering::Relaxed) && self.sink.is_some() {
            warn!("audio: the device failed or went away; silent until it is back");
            self.chime = None;
            self.narration = None;
            self.music_player = None;
            self.music.lost();
            self.sink = None;
            self.retry_at = Instant::now() + self.backoff();
            self.silent_because = Some("the output device failed or went away".into());
        }
        let now = Instant::now();
        if self.sink.is_none() && now >= self.retry_at {
            let lost = self.lost.clone();
            let waker = self.waker.clone();
            // Underruns (a busy 2-core kiosk decoding video) and reroutes are
            // recovered by the backend; anything else means the device is gone.
            let on_error = move |e: rodio::CpalError| {
                if !matches!(e.kind(), CpalErrorKind::Xrun | CpalErrorKind::DeviceChanged | CpalErrorKind::DeviceBusy)
                    && !lost.swap(true, Ordering::Relaxed)
                    && let Some(w) = &waker
                {
                    w();
                }
            };
            let opened = DeviceSinkBuilder::from_default_device().and_then(|b| b.with_error_callback(on_error).open_stream());
            match opened {
                Ok(mut s) => {
                    s.log_on_drop(false);
                    info!("audio: sound on the default output device");
                    self.sink = Some(s);
                    self.attempts = 0;
                    self.said_silent = false;
                    self.silent_because = None;
                }
                Err(e) => {
                    if !self.said_silent {
                        warn!("audio: no output device ({e}); silent until one appears");
                        self.said_silent = true;
                    }
                    self.retry_at = now + self.backoff();
                    self.attempts += 1;
                    self.silent_because = Some(format!("no output device ({e})"));
                }
            }
        }
        self.sink.as_ref()
    }

    /// The output's state in words; `None` before anything was to be heard.
    fn state(&self) -> Option<String> {
        match (&self.sink, &self.silent_because) {
            (Some(_), _) => Some("on the default output device".into()),
            (None, Some(why)) => Some(format!("silent: {why}; retrying")),
            (None, None) => None,
        }
    }
}

fn chime_and_alert_audio(mut request: ResMut<ChimeRequest>, mut speaker: NonSendMut<Speaker>, settings: Res<Settings>) {
    let Some(audio) = request.0.take() else { return };
    let volume = f32::from(settings.config.volume) / 100.0;
    // A warning does not wait out the back-off: try the device now.
    if speaker.sink.is_none() {
        speaker.retry_at = Instant::now();
    }
    let Some(sink) = speaker.device() else { return };
    let player = Player::connect_new(sink.mixer());
    player.set_volume(volume);
    for tone in chime() {
        player.append(tone);
    }
    let mut length = CHIME;
    let cache = settings.config.cache.dir();
    for a in &audio {
        match decode(a, cache.as_deref()) {
            Ok(Some(source)) => {
                length += source.total_duration().unwrap_or(UNKNOWN_AUDIO);
                player.append(source);
            }
            Ok(None) => {}
            Err(e) => warn!("audio: alert audio ({}) not played: {e}", a.mime_type),
        }
    }
    // A new chime replaces one still sounding.
    speaker.chime = Some(player);
    speaker.chime_until = Instant::now() + length;
}

/// Narration and music: started, ducked, paused and moved on as the
/// programme and the mix say.
#[allow(clippy::too_many_arguments)] // a Bevy system: one parameter per resource it touches
fn programme(
    mut wanted: ResMut<ProgrammeSound>,
    mut speaker: NonSendMut<Speaker>,
    settings: Res<Settings>,
    mode: Res<State<Mode>>,
    clip_sound: Res<ClipSound>,
    worker: Option<Res<Worker>>,
    mut wake: ResMut<Wake>,
) {
    let now = Instant::now();
    let takeover = *mode.get() == Mode::Takeover;
    // Notice a lost device now (the audio thread woke us), not at the next
    // sound: the players are dropped and the device retried with back-off.
    if speaker.lost.load(Ordering::Relaxed) {
        speaker.device();
    }
    // Music retries the device at each back-off step (narration and chimes
    // try when they start).
    if speaker.sink.is_none() && wanted.music.is_some() {
        wake.at(speaker.retry_at);
    }
    let state = speaker.state();
    if state.is_some() && wanted.output != state {
        wanted.output.clone_from(&state);
        if let Some(w) = &worker {
            w.sound_output(state);
        }
    }
    let wanted = &*wanted;
    let config = &settings.config;
    let quiet = config.is_quiet(Utc::now().with_timezone(&config.timezone).naive_local());
    let sp = &mut *speaker;
    let sounding = Sounding {
        narration: sp.narration.as_ref().is_some_and(|p| !p.empty()),
        clip_sound: clip_sound.0,
        chime: now < sp.chime_until,
        takeover,
    };
    let music_volume = wanted.music.as_ref().map_or(0, |m| m.volume);
    let levels = mix::levels(Volumes { master: config.volume, music: music_volume, clip: 100 }, quiet, sounding);
    if sounding.chime {
        wake.at(sp.chime_until);
    }

    sp.play_narration(wanted, levels.narration, takeover);
    sp.play_music(wanted, levels.music, mix::music_reason(quiet, sounding), now, &mut wake);
}

impl Speaker {
    /// Narration: a new item stops the last one's and starts its own.
    fn play_narration(&mut self, wanted: &ProgrammeSound, level: f32, takeover: bool) {
        let cue = self.narrated.follow(wanted.item, wanted.narration.as_deref(), level);
        if cue != Cue::Same {
            self.narration = None;
            if let Cue::Start(path) = cue {
                match open_track(path) {
                    Ok((source, _)) => {
                        if let Some(sink) = self.device() {
                            let player = Player::connect_new(sink.mixer());
                            player.append(source);
                            info!("audio: narration {}", path.display());
                            self.narration = Some(player);
                        }
                    }
                    Err(e) => warn!("audio: narration {}: {e}", path.display()),
                }
            }
        }
        if let Some(p) = &self.narration {
            p.set_volume(level);
            if takeover != p.is_paused() {
                if takeover { p.pause() } else { p.play() }
            }
        }
    }

    /// Music: follows the playlist on screen, as [`music`] says.
    fn play_music(&mut self, wanted: &ProgrammeSound, target: f32, why: &str, now: Instant, wake: &mut Wake) {
        if self.music.follow(wanted.music_changes, wanted.music.as_ref(), fastrand::u64(..), now) {
            self.music_player = None;
        }
        if self.music.deck().is_none() {
            return;
        }
        if self.music.news(target) {
            info!("audio: music level {:.0}% ({why})", target * 100.0);
        }
        let drained = self.music_player.as_ref().is_some_and(|p| p.empty());
        if self.music.deck().is_some_and(|d| d.due(now, target, drained)) {
            match self.device().map(|d| d.mixer().clone()) {
                Some(mixer) => next_track(self, &mixer, now),
                None => wake.at(self.retry_at),
            }
        }
        let Some(steer) = self.music.deck().and_then(|d| d.steer(target, now)) else { return };
        if let Some(p) = &self.music_player {
            p.set_volume(steer.volume);
            match steer.pause {
                Some(true) => p.pause(),
                Some(false) => p.play(),
                None => {}
            }
            if steer.animate {
                wake.animate();
            }
            if let Some(t) = steer.wake_at {
                wake.at(t);
            }
        }
    }
}

/// Starts the deck's next track that opens.
fn next_track(sp: &mut Speaker, mixer: &rodio::mixer::Mixer, now: Instant) {
    let slot = &mut sp.music_player;
    *slot = None;
    let Some(deck) = sp.music.deck() else { return };
    deck.advance(now, |next: Next<'_>| match open_track(next.path) {
        Ok((source, length)) => {
            let player = Player::connect_new(mixer);
            player.set_volume(next.level);
            player.append(source);
            info!("audio: music {} ({}/{})", next.path.display(), next.index + 1, next.of);
            *slot = Some(player);
            Ok(length)
        }
        Err(e) => {
            warn!("audio: music {}: {e}; next track", next.path.display());
            Err(e)
        }
    });
}

type TrackSource = rodio::Decoder<BufReader<File>>;

/// Why a sound was not played (its file or message is named by the caller).
#[derive(Debug, thiserror::Error)]
pub enum SoundError {
    #[error("cannot open: {0}")]
    Open(#[source] std::io::Error),
    #[error("not playable: {0}")]
    Decode(#[source] rodio::decoder::DecoderError),
    #[error("no sound in it")]
    Empty,
    #[error("{uri}: {source}")]
    Linked {
        uri: String,
        #[source]
        source: rodio::decoder::DecoderError,
    },
    #[error("larger than {MAX_AUDIO_BYTES} bytes")]
    TooLarge,
    #[error("derefUri is not base64: {0}")]
    Base64(#[source] base64::DecodeError),
}

fn open_track(path: &Path) -> Result<(TrackSource, Option<Duration>), SoundError> {
    let file = File::open(path).map_err(SoundError::Open)?;
    let source = rodio::Decoder::try_from(file).map_err(SoundError::Decode)?;
    let length = source.total_duration();
    Ok((source, length))
}

/// How long a narration lasts: from its header when it says, otherwise by
/// decoding it (off the frame loop: the rotation calls this while preparing).
pub(crate) fn narration_length(path: &Path) -> Result<Duration, SoundError> {
    let (source, length) = open_track(path)?;
    if let Some(d) = length {
        return Ok(d);
    }
    let per_second = f64::from(source.sample_rate().get()) * f64::from(source.channels().get());
    let samples = source.count();
    if samples == 0 {
        return Err(SoundError::Empty);
    }
    Ok(Duration::from_secs_f64(samples as f64 / per_second))
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
fn decode(a: &AudioRef, cache: Option<&std::path::Path>) -> Result<Option<rodio::Decoder<Cursor<Vec<u8>>>>, SoundError> {
    let Some(b64) = &a.deref else {
        let (Some(uri), Some(cache)) = (&a.uri, cache) else { return Ok(None) };
        let path = crate::store::cache::alert_media_path(cache, uri);
        return match std::fs::read(&path) {
            Ok(bytes) => rodio::Decoder::new(Cursor::new(bytes)).map(Some).map_err(|source| SoundError::Linked { uri: uri.clone(), source }),
            Err(_) => {
                info!("audio: alert audio {uri} is not in the cache yet");
                Ok(None)
            }
        };
    };
    let cleaned: String = b64.split_whitespace().collect();
    if cleaned.len() / 4 * 3 > MAX_AUDIO_BYTES {
        return Err(SoundError::TooLarge);
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(cleaned).map_err(SoundError::Base64)?;
    rodio::Decoder::new(Cursor::new(bytes)).map(Some).map_err(SoundError::Decode)
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
    fn narration_is_measured_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.wav");
        std::fs::write(&path, wav(8000 * 3 / 2)).unwrap();
        let d = narration_length(&path).unwrap();
        assert!((d.as_secs_f64() - 1.5).abs() < 0.01, "{d:?}");
        std::fs::write(&path, b"RIFF nonsense").unwrap();
        assert!(narration_length(&path).is_err());
        assert!(matches!(narration_length(&dir.path().join("missing.wav")), Err(SoundError::Open(_))));
    }

    /// A WAV of `samples` 16-bit mono samples of silence at 8 kHz.
    fn wav(samples: u32) -> Vec<u8> {
        let mut wav = Vec::new();
        let data = vec![0u8; samples as usize * 2];
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
        wav
    }

    #[test]
    fn embedded_audio_decodes_and_garbage_is_an_error() {
        let wav = wav(800);
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
        let path = crate::store::cache::alert_media_path(cache.path(), "https://x/a.wav");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &wav).unwrap();
        assert!(decode(&linked, Some(cache.path())).unwrap().is_some());
    }
}
