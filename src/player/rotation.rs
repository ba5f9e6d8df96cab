//! Rotating the playlist on screen: ask the schedule what is next, prepare it
//! off the frame loop, then crossfade to it.
//!
//! The next item is decoded (and its texture created) *before* the current
//! one ends, and the outgoing slide stays fully opaque underneath until the
//! incoming one has faded all the way in, so there is never a black frame
//! between items (the hand-over is [`crate::core::playlist::handover`]'s).
//! An item that cannot be prepared (missing or corrupt file) is logged once
//! and skipped; with nothing playable the idle screen shows.

use std::time::{Duration, Instant};

use bevy::asset::RenderAssetUsages;
use bevy::ecs::system::SystemParam;
use bevy::image::ImageSampler;
use bevy::prelude::*;
use bevy::render::render_resource::{Extent3d, TextureDimension, TextureFormat};
use bevy::tasks::{block_on, poll_once, AsyncComputeTaskPool, Task};
use bevy::window::PrimaryWindow;
use chrono::Utc;
use image::RgbaImage;

use super::fonts::Fonts;
use super::mode::Mode;
use super::now::{Now, TrustedClock};
use super::power::{LoopWaker, Wake};
use super::slides::{self, Content, Pictures, Slide, SlideSpec};
use super::sound::{self, SlideSound};
use super::video::{ClipStopped, VideoSurface};
use super::worker::{ProgrammeLoaded, Worker};
use super::{Phase, Settings};
use crate::core::media;
use crate::core::media::timing::{self, Measured};
use crate::core::playlist::handover::{self, Handover};
use crate::core::playlist::rotation::{Command, Next, Rotation};
use crate::store::content::Origin;
use crate::core::playlist::{Fit, Item, ItemKind, Length, Library, Ticker};
use crate::video::{Clip, ClipOptions};
use crate::store::status::PlayerStatus;
use crate::core::qr;

/// QR code side as a fraction of the content box's smaller side.
const QR_SIDE: f32 = 0.62;

/// The rotation (which owns the loaded playlists, the items found
/// unplayable and the generation counter) and where the playlists came
/// from. Inserted when the worker has loaded the first programme.
#[derive(Resource)]
pub(crate) struct Programme {
    rotation: Rotation,
    origin: Origin,
    /// A newer programme the worker loaded, for the next item boundary.
    newer: Option<(Library, Origin)>,
}

/// The ticker of the playlist on screen, for the ticker plugin.
#[derive(Resource, Default, PartialEq)]
pub(crate) struct CurrentTicker(pub Option<Ticker>);

/// When the first content frame was put on screen (the player's time zero).
#[derive(Resource, Default)]
pub(crate) struct Started(pub Option<Instant>);

struct Prepared {
    next: Next,
    picture: Option<(RgbaImage, bool)>,
    /// A video item's clip, prerolled: its first frame is `picture`.
    clip: Option<Clip>,
    /// What the preparation measured (the clip's and narration's lengths).
    measured: Measured,
}

/// What the rotation's commands have put on screen or in preparation.
#[derive(Resource, Default)]
struct Show {
    /// The slides on screen (the newest is the rotation's current item's)
    /// and the fade between them.
    slides: Handover<Entity>,
    /// When the newest came on screen, for `estation status`.
    since: Option<chrono::DateTime<Utc>>,
    pending: Option<Task<Result<Prepared, (Next, String)>>>,
    /// Prepared and waiting for the rotation to show it.
    ready: Option<Prepared>,
    z: i32,
}

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<Show>()
        .init_resource::<CurrentTicker>()
        .init_resource::<Started>()
        .add_systems(PreUpdate, take_programme.in_set(Phase::Receive).after(super::worker::drain))
        .add_systems(Update, (follow_mode, rotate).chain().in_set(Phase::Decide))
        .add_systems(Update, fade.in_set(Phase::Animate));
}

/// The first programme starts the rotation; a later one waits for the next
/// item boundary.
fn take_programme(mut commands: Commands, mut loaded: MessageReader<ProgrammeLoaded>, programme: Option<ResMut<Programme>>, settings: Res<Settings>) {
    let Some(ProgrammeLoaded { library, origin }) = loaded.read().last() else { return };
    let (library, origin) = (library.clone(), origin.clone());
    match programme {
        Some(mut p) => p.newer = Some((library, origin)),
        None => {
            if library.playlists.iter().flat_map(|p| &p.items).any(|i| matches!(i.kind, ItemKind::Video(_))) {
                super::video::report_decoders();
            }
            commands.insert_resource(Programme { rotation: Rotation::new(library, settings.config.timezone), origin, newer: None });
        }
    }
}

/// A dark screen (outside screen-on hours) drops what is on screen and in
/// preparation; lit again, the rotation starts afresh.
#[allow(clippy::too_many_arguments)] // a Bevy system: one parameter per resource it touches
fn follow_mode(
    mut commands: Commands,
    mode: Res<State<Mode>>,
    now: Res<Now>,
    programme: Option<ResMut<Programme>>,
    mut show: ResMut<Show>,
    mut ticker: ResMut<CurrentTicker>,
    mut started: ResMut<Started>,
    mut on_screen: ResMut<super::proof::ItemOnScreen>,
) {
    let dark = *mode.get() == Mode::Dark;
    if dark {
        // A dark screen is what is on screen: screenshots count from here.
        started.0.get_or_insert(now.instant);
    }
    let Some(mut programme) = programme else { return };
    if dark == programme.rotation.is_dark() {
        return;
    }
    programme.rotation.set_dark(dark);
    if dark {
        let Show { slides, since, pending, ready, .. } = &mut *show;
        for e in slides.clear() {
            commands.entity(e).try_despawn();
        }
        *since = None;
        *pending = None;
        // A prerolled clip stops its pipeline on drop: not on the frame loop.
        if let Some(Prepared { clip: Some(clip), .. }) = ready.take() {
            std::thread::spawn(move || drop(clip));
        }
        ticker.set_if_neq(CurrentTicker(None));
        on_screen.set_if_neq(super::proof::ItemOnScreen(None));
    }
}

/// Feeds the rotation what happened (clip signals, the takeover, a finished
/// preparation, the time) and carries out what it asks.
#[allow(clippy::too_many_arguments)] // a Bevy system: one parameter per resource it touches
fn rotate(
    mut stage: Stage,
    settings: Res<Settings>,
    programme: Option<ResMut<Programme>>,
    mut started: ResMut<Started>,
    mut wake: ResMut<Wake>,
    mode: Res<State<Mode>>,
    mut stopped: MessageReader<ClipStopped>,
    worker: Option<Res<Worker>>,
    (clock, now): (Res<TrustedClock>, Res<Now>),
    mut on_screen: ResMut<super::proof::ItemOnScreen>,
) {
    let Some(mut programme) = programme else { return };
    let now_utc = clock.now(&now);
    let now = now.instant;
    // A clip that failed on screen is skipped from now on; an `auto` clip
    // that ended is over.
    for s in stopped.read() {
        if stage.show.slides.current() == Some(s.root) {
            programme.rotation.stopped(now, s.failed);
        }
    }
    let (runs, change) = programme.rotation.takeover(now, *mode.get() == Mode::Takeover);
    if matches!(change, Some(Command::Pause)) {
        started.0.get_or_insert(now);
    }
    if !runs {
        return;
    }
    let show = &mut *stage.show;
    if let Some(task) = show.pending.as_mut()
        && let Some(result) = block_on(poll_once(task))
    {
        show.pending = None;
        match result {
            Ok(p) => {
                programme.rotation.prepared(p.next.clone(), p.measured);
                show.ready = Some(p);
            }
            Err((next, why)) => warn!("{}", programme.rotation.not_prepared(next, why)),
        }
    }
    let Programme { rotation, origin, newer } = &mut *programme;
    // A new feed version takes over at an item boundary, which is the only
    // time the rotation asks.
    let step = rotation.tick(now, now_utc, || {
        let (library, fresh) = newer.take()?;
        *origin = fresh;
        Some(library)
    });
    for command in step.commands {
        match command {
            Command::Show { next, length } => {
                let Some(prepared) = stage.show.ready.take().filter(|p| p.next == next) else {
                    error!("rotation: nothing prepared to show");
                    continue;
                };
                let shown = prepared.next.clone();
                stage.put_on_screen(&settings, &programme, prepared, length, now);
                let item = programme.rotation.lookup(&shown).map(|(p, item)| crate::core::proof::ItemRef {
                    playlist: p.id.clone(),
                    item: item.id.clone(),
                    feed_version: programme.origin.feed_version(),
                });
                on_screen.set_if_neq(super::proof::ItemOnScreen(item));
                if let (Some(path), Some(worker), Some(since)) = (&settings.status_path, &worker, stage.show.since) {
                    worker.save_status(path.clone(), status(&programme, &shown, since));
                }
                started.0.get_or_insert(now);
            }
            Command::Prepare { next, item, band } => {
                let size = stage.window.physical_size();
                stage.show.pending = Some(AsyncComputeTaskPool::get().spawn(async move {
                    prepare(next, item.as_deref(), size, band)
                }));
            }
            Command::Pause | Command::Resume { .. } => {}
        }
    }
    if let Some(t) = step.wake {
        wake.at(t);
    }
}

/// What `estation status` is to say is on screen (the worker writes it).
fn status(programme: &Programme, next: &Next, since: chrono::DateTime<Utc>) -> PlayerStatus {
    let (playlist, item) = match programme.rotation.lookup(next) {
        Some((p, item)) => (Some(p.id.clone()), Some(item.id.clone())),
        None => (None, None),
    };
    PlayerStatus {
        pid: std::process::id(),
        since: Some(since),
        playlist,
        item,
        feed_version: programme.origin.feed_version(),
        source: programme.origin.to_string(),
        sound: None,
        display: None,
        renderer: None,
        warnings: Vec::new(),
    }
}

/// Decodes what an item needs, on a worker thread. `size` is the window in
/// physical pixels.
fn prepare(next: Next, item: Option<&Item>, size: UVec2, band: bool) -> Result<Prepared, (Next, String)> {
    let box_h = if band {
        (size.y as f32 * (1.0 - slides::TICKER_BAND_VH / 100.0)) as u32
    } else {
        size.y
    };
    let fail = |why: String| (next.clone(), why);
    let mut clip = None;
    let picture = match item.map(|i| &i.kind) {
        Some(ItemKind::Video(v)) => {
            let options = ClipOptions {
                area: (size.x, box_h),
                fit: v.fit,
                mute: v.mute,
                // Silent until the mix sets the level, on its first frame.
                volume: 0.0,
                start: v.start,
            };
            let c = Clip::preroll(&v.path, options).map_err(|e| fail(e.to_string()))?;
            let frame = c.take_frame().ok_or_else(|| fail(format!("{}: no first frame", v.path.display())))?;
            let img = RgbaImage::from_raw(frame.width, frame.height, frame.data)
                .ok_or_else(|| fail(format!("{}: frame of the wrong size", v.path.display())))?;
            clip = Some(c);
            Some((img, false))
        }
        Some(ItemKind::Image { path, fit }) => Some((
            media::decode_image(path, size.x, box_h, *fit).map_err(|e| fail(format!("{}: {e}", path.display())))?,
            false,
        )),
        Some(ItemKind::Text { background_image: Some(path), .. }) => Some((
            media::decode_image(path, size.x, box_h, Fit::Cover).map_err(|e| fail(format!("{}: {e}", path.display())))?,
            false,
        )),
        Some(ItemKind::Qr { data, .. }) => {
            let modules = qr::modules(data).map_err(|e| fail(format!("QR code: {e}")))?;
            let side = QR_SIDE * size.x.min(box_h) as f32;
            let scale = ((side / modules as f32).floor() as u32).max(2);
            Some((qr::render(data, scale).map_err(|e| fail(format!("QR code: {e}")))?, true))
        }
        _ => None,
    };
    let narration = match item.map(|i| (&i.narration, i.duration)) {
        Some((Some(path), Length::Narration)) => match sound::narration_length(path) {
            Ok(d) => Some(d),
            Err(e) => {
                warn!("narration {}: {e}; the item lasts {} s", path.display(), timing::UNMEASURED.as_secs());
                None
            }
        },
        _ => None,
    };
    let measured = Measured { clip: clip.as_ref().and_then(Clip::duration), narration };
    Ok(Prepared { next, picture, clip, measured })
}

/// What putting a slide on screen touches.
#[derive(SystemParam)]
struct Stage<'w, 's> {
    commands: Commands<'w, 's>,
    show: ResMut<'w, Show>,
    images: ResMut<'w, Assets<Image>>,
    fonts: Res<'w, Fonts>,
    window: Single<'w, 's, &'static Window, With<PrimaryWindow>>,
    ticker: ResMut<'w, CurrentTicker>,
    waker: Res<'w, LoopWaker>,
}

impl Stage<'_, '_> {
    /// Spawns the slide for what the rotation shows next, with its clip
    /// and its sound, and hands over to it from the one on screen.
    fn put_on_screen(&mut self, settings: &Settings, programme: &Programme, prepared: Prepared, length: Duration, now: Instant) {
        let Prepared { next, picture, clip, .. } = prepared;
        let scale = self.window.scale_factor();
        let pictures = Pictures { main: picture.map(|(img, nearest)| texture(&mut self.images, img, nearest, scale)) };
        let found = programme.rotation.lookup(&next);
        let (content, ticker, transition) = match found {
            Some((p, item)) => {
                info!("showing `{}` ({}) from {}", item.id, item.kind.name(), p.id);
                (Content::Item(item), p.ticker.clone(), item.transition)
            }
            None => {
                info!("nothing to play now: idle screen");
                let c = &settings.config;
                let idle = Content::Idle { name: &c.screen_name, language: c.language, notice: settings.config_fallback.as_deref() };
                (idle, None, handover::IDLE_TRANSITION)
            }
        };
        let cut = self.show.slides.cut(transition);
        if let Some(root) = cut.opaque {
            self.commands.entity(root).insert(Slide { alpha: 1.0 });
        }
        for e in cut.remove {
            self.commands.entity(e).try_despawn();
        }
        self.show.z += 1;
        let spec = SlideSpec { content: &content, pictures: &pictures, band: ticker.is_some(), window: self.window.size(), z: self.show.z, alpha: cut.alpha };
        let root = slides::spawn(&mut self.commands, &spec, &self.fonts);
        if let (Some(clip), Some((image, _)), Some((_, item))) = (clip, &pictures.main, found)
            && let ItemKind::Video(v) = &item.kind
        {
            let auto = item.duration == Length::Clip;
            self.commands.entity(root).insert(VideoSurface::start(clip, image.clone(), v.clone(), auto, root, now + length, self.waker.0.clone()));
        }
        self.commands.entity(root).insert(match found {
            Some((p, item)) => SlideSound { narration: item.narration.clone(), music: p.music.clone() },
            None => SlideSound::default(),
        });
        if let Some(old) = self.show.slides.shown(root, transition, now) {
            self.commands.entity(old).try_despawn();
        }
        self.show.since = Some(Utc::now());
        self.ticker.set_if_neq(CurrentTicker(ticker));
    }
}

/// A decoded picture as a texture, and its size in logical pixels.
fn texture(images: &mut Assets<Image>, img: RgbaImage, nearest: bool, scale: f32) -> (Handle<Image>, UVec2) {
    let (w, h) = img.dimensions();
    let mut image = Image::new(
        Extent3d { width: w, height: h, depth_or_array_layers: 1 },
        TextureDimension::D2,
        img.into_raw(),
        TextureFormat::Rgba8UnormSrgb,
        // The pixels are needed on the GPU only; drop the CPU copy.
        RenderAssetUsages::RENDER_WORLD,
    );
    if nearest {
        image.sampler = ImageSampler::nearest();
    }
    let logical = UVec2::new((w as f32 / scale) as u32, (h as f32 / scale) as u32);
    (images.add(image), logical)
}

fn fade(mut commands: Commands, mut show: ResMut<Show>, mut slides: Query<&mut Slide>, mut wake: ResMut<Wake>, now: Res<Now>) {
    let Some(step) = show.slides.step(now.instant) else { return };
    if let Ok(mut slide) = slides.get_mut(step.slide)
        && slide.alpha != step.alpha
    {
        slide.alpha = step.alpha;
    }
    for e in step.remove {
        commands.entity(e).try_despawn();
    }
    if step.animate {
        wake.animate();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::playlist::validity::Validity;
    use crate::player::mode::Mode;
    use crate::player::testing::{warn, Player};

    const S: fn(u64) -> Duration = Duration::from_secs;

    const TWO: &str = "[[items]]\nid = \"a\"\nkind = \"clock\"\nduration = \"10s\"\n\
                       [[items]]\nid = \"b\"\nkind = \"clock\"\nduration = \"20s\"\n";

    /// The id of the item on screen (and shown by the shell), if any.
    fn on_screen(world: &mut World) -> Option<String> {
        world.resource::<Show>().slides.current()?;
        let p = world.get_resource::<Programme>()?;
        let next = p.rotation.on_screen()?.next.clone();
        p.rotation.lookup(&next).map(|(_, item)| item.id.clone())
    }

    fn showing(id: &'static str) -> impl FnMut(&mut World) -> bool {
        move |w| on_screen(w).as_deref() == Some(id)
    }

    #[test]
    fn the_first_programme_comes_from_the_worker_and_player_json_says_what_is_on_screen() {
        let mut p = Player::new(TWO, |_| {});
        p.until("the first item on screen", showing("a"));
        let json = p.dir.path().join("player.json");
        p.until("player.json written", |_| std::fs::read_to_string(&json).is_ok_and(|s| s.contains("\"a\"")));
        p.advance(S(10));
        p.until("the second item on screen", showing("b"));
        p.until("player.json follows", |_| std::fs::read_to_string(&json).is_ok_and(|s| s.contains("\"b\"")));
        assert!(p.app.world().resource::<Started>().0.is_some());
    }

    #[test]
    fn a_takeover_pauses_the_rotation_and_it_resumes_where_it_was() {
        let mut p = Player::new(TWO, |_| {});
        p.until("the first item on screen", showing("a"));
        p.advance(S(4));
        warn(&p.cache(), "w", false);
        p.until("the takeover", |w| w.get_resource::<State<Mode>>().is_some_and(|m| *m.get() == Mode::Takeover));
        // Long past the item's end: it is still the one on screen.
        for _ in 0..5 {
            p.advance(S(10));
        }
        assert_eq!(on_screen(p.app.world_mut()).as_deref(), Some("a"));
        warn(&p.cache(), "w", true);
        p.until("the takeover leaves", |w| w.get_resource::<State<Mode>>().is_some_and(|m| *m.get() == Mode::Playing));
        // The item had 6 s left when the takeover came, and still has.
        p.advance(S(5));
        assert_eq!(on_screen(p.app.world_mut()).as_deref(), Some("a"));
        p.advance(Duration::from_millis(1100));
        p.until("the next item after the rest of the first", showing("b"));
    }

    #[test]
    fn outside_screen_on_hours_nothing_is_shown_until_they_start() {
        // On from 11:00; the clock says 10:00.
        let mut p = Player::new(TWO, |c| c.screen_on = vec![Validity { hours: vec!["11:00-12:00".parse().unwrap()], ..Validity::default() }]);
        p.until("dark", |w| w.get_resource::<State<Mode>>().is_some_and(|m| *m.get() == Mode::Dark));
        p.until("the programme loaded", |w| w.get_resource::<Programme>().is_some());
        for _ in 0..20 {
            p.app.update();
        }
        assert_eq!(on_screen(p.app.world_mut()), None, "something is shown outside screen-on hours");
        assert!(p.app.world().resource::<Started>().0.is_some(), "a dark screen is what is on screen");
        assert_eq!(p.app.world().resource::<ClearColor>().0, Color::BLACK);
        p.advance(S(3600));
        p.until("the programme at 11:00", showing("a"));
        assert_eq!(p.mode(), Some(Mode::Playing));
        assert_eq!(p.app.world().resource::<ClearColor>().0, crate::player::hours::BACKGROUND);
        // And dark again at 12:00: the slide goes.
        p.advance(S(3600));
        p.app.update();
        assert_eq!(p.mode(), Some(Mode::Dark));
        assert_eq!(on_screen(p.app.world_mut()), None);
        assert_eq!(p.app.world_mut().query::<&Slide>().iter(p.app.world()).count(), 0);
    }
}
