//! Warnings on screen: the takeover, the banner and the ticker lines.
//!
//! What to show is decided by [`crate::core::alert::policy`] from the alert store
//! that sync writes (`CACHE/alerts.json`), and how it reads (colours, title,
//! footer lines, the chime) by [`crate::core::alert::view`]; this plugin only
//! takes the store the worker thread read ([`super::worker`], which looks at
//! the file once a second and wakes the frame loop when it changed) and
//! spawns nodes from the view. The loop also wakes exactly when the answer
//! can change by the clock alone
//! (a warning starting or expiring, the takeover's next turn, the chime), so
//! an alert leaves the screen the second it expires, network or not, and a
//! screen with no change draws no frames. While a takeover is up,
//! [`Warning`] makes the [`super::mode::Mode`] a takeover: the rotation
//! pauses and resumes where it was.

use std::time::Duration;

use bevy::prelude::*;
use bevy::ui::PositionType;
use super::fonts::Fonts;
use super::now::{Now, TrustedClock};
use super::power::Wake;
use super::presented::Presented;
use super::worker::StoreLoaded;
use super::slides::TextSize;
use super::{Phase, Settings};
use crate::core::alert::policy::{AudioRef, Chime};
use crate::core::alert::view::{self, Banner, Colours, Icon, Rgb, View};
use crate::core::alert::{Policy, Presentation, Store};

/// Above the ticker band (which is at `i32::MAX / 2`).
const BANNER_Z: i32 = i32::MAX / 2 + 10;
const TAKEOVER_Z: i32 = i32::MAX / 2 + 20;

/// Something to sound now: the chime, then these resources (the sound
/// plugin plays it). Declared here, by the plugin that asks, so the alert
/// layer needs nothing from the sound plugin.
#[derive(Resource, Default)]
pub(crate) struct ChimeRequest(pub Option<Vec<AudioRef>>);

/// Whether a warning has taken the screen over (the rotation pauses
/// while it has: see [`super::mode::Mode`]).
#[derive(States, Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) enum Warning {
    #[default]
    None,
    Takeover,
}

/// Alert lines for the ticker, most urgent first.
#[derive(Resource, Default, PartialEq)]
pub(crate) struct AlertTicker(pub Vec<String>);

#[derive(Resource)]
struct Watch {
    store: Store,
    policy: Policy,
    chime: Chime,
    chime_interval: chrono::Duration,
    /// Times on the takeover are written in the screen's zone.
    tz: chrono_tz::Tz,
}

/// What is drawn now, compared with the new view to redraw only on change.
#[derive(Resource, Default, PartialEq)]
struct Drawn(View);

#[derive(Component)]
struct AlertLayer;

/// A warning drawn whose frame is not known to be on screen yet: what to
/// log, and the presented-frame count that proves it (the frame it was
/// spawned in, past the one the renderer may have had in flight).
#[derive(Resource, Default)]
struct Unconfirmed(Option<(String, u64)>);

pub(super) fn plugin(app: &mut App) {
    app.init_state::<Warning>()
        .init_resource::<ChimeRequest>()
        .init_resource::<AlertTicker>()
        .init_resource::<Drawn>()
        .init_resource::<Unconfirmed>()
        .add_systems(Startup, setup)
        .add_systems(PreUpdate, check.run_if(TrustedClock::loaded).in_set(Phase::Sense))
        .add_systems(Update, (draw, confirm).chain().before(Phase::Decide));
}

fn setup(mut commands: Commands, settings: Res<Settings>) {
    match settings.config.cache.dir() {
        Some(d) => info!("alerts: watching {}", crate::store::inbox::Inbox::new(&d).path().display()),
        None => warn!("alerts: no cache folder, so no alerts will be shown"),
    }
    let policy = settings.config.alert_policy();
    if policy.place.shows_everything() {
        info!("alerts: showing every alert from the sources (no screen.region or latitude/longitude, or alerts.show_all)");
    }
    let chime_interval = chrono::Duration::from_std(settings.config.alerts.chime_interval).unwrap_or_default();
    let tz = settings.config.timezone;
    commands.insert_resource(Watch { store: Store::default(), policy, chime: Chime::default(), chime_interval, tz });
}

/// Takes the store the worker read, and decides what is shown now.
#[allow(clippy::too_many_arguments)] // a Bevy system: one parameter per resource it touches
fn check(
    mut loaded: MessageReader<StoreLoaded>,
    mut watch: ResMut<Watch>,
    mut drawn: ResMut<Drawn>,
    warning: Res<State<Warning>>,
    mut next: ResMut<NextState<Warning>>,
    mut ticker: ResMut<AlertTicker>,
    mut wake: ResMut<Wake>,
    mut chime: ResMut<ChimeRequest>,
    clock: Res<TrustedClock>,
    now: Res<Now>,
    mut on_screen: ResMut<super::proof::WarningsOnScreen>,
) {
    if let Some(StoreLoaded(store)) = loaded.read().last() {
        watch.store = store.clone();
    }
    let times = clock.times(&now);
    let utc = times.ends;
    let p: Presentation = crate::core::alert::policy::present(&watch.store, &watch.policy, times);
    let new = View::new(&p, &watch.policy, utc, watch.tz);
    let interval = watch.chime_interval;
    if let Some(audio) = view::chime(&p, &mut watch.chime, utc, interval) {
        info!("alerts: chime");
        chime.0 = Some(audio);
    }
    let want = if new.takeover.is_some() { Warning::Takeover } else { Warning::None };
    if *warning.get() != want {
        next.set(want);
    }
    ticker.set_if_neq(AlertTicker(new.ticker.clone()));
    on_screen.set_if_neq(super::proof::WarningsOnScreen(p.on_screen(&watch.policy).into_iter().map(crate::core::proof::warning).collect()));
    drawn.set_if_neq(Drawn(new));
    // Sleep until the answer can change by the clock alone.
    let until = [crate::core::alert::policy::next_change(&watch.store, &watch.policy, &p, times), watch.chime.next_due(interval)];
    if let Some(t) = until.into_iter().flatten().min() {
        wake.at(now.instant + (t - utc).to_std().unwrap_or_default() + Duration::from_millis(5));
    }
}

fn rgb([r, g, b]: Rgb) -> Color {
    Color::srgb_u8(r, g, b)
}

#[allow(clippy::too_many_arguments)] // a Bevy system: one parameter per resource it touches
fn draw(
    mut commands: Commands,
    drawn: Res<Drawn>,
    layers: Query<Entity, With<AlertLayer>>,
    fonts: Res<Fonts>,
    worker: Option<Res<super::worker::Worker>>,
    presented: Option<Res<Presented>>,
    mut unconfirmed: ResMut<Unconfirmed>,
) {
    if !drawn.is_changed() {
        return;
    }
    let shown = drawn.0.takeover.as_ref().map(|t| format!("takeover {} ({})", t.name, t.key)).or_else(|| drawn.0.banner.as_ref().map(|b| format!("banner {} ({})", b.name, b.key)));
    if let Some(what) = &shown {
        info!("alerts: {what}");
    }
    unconfirmed.0 = shown.map(|what| (what, presented.map_or(0, |p| p.count() + 2)));
    if let Some(worker) = &worker {
        let on_screen = drawn.0.takeover.as_ref().map(|t| t.key.clone()).into_iter().chain(drawn.0.banner.as_ref().map(|b| b.key.clone()));
        worker.warnings(on_screen.collect());
    }
    for e in &layers {
        commands.entity(e).despawn();
    }
    if let Some(t) = &drawn.0.takeover {
        spawn_takeover(&mut commands, &fonts, t);
    } else if let Some(b) = &drawn.0.banner {
        spawn_banner(&mut commands, &fonts, b);
    } else if !layers.is_empty() {
        info!("alerts: no warning on screen");
    }
}

/// Logs a warning once the frame holding it has been presented: the
/// moment it is really on screen (what `scripts/bench-push` times). Until
/// then the loop is kept awake, a frame at a time.
fn confirm(mut unconfirmed: ResMut<Unconfirmed>, presented: Option<Res<Presented>>, mut wake: ResMut<Wake>) {
    let Some((what, after)) = &unconfirmed.0 else { return };
    if presented.is_none_or(|p| p.count() >= *after) {
        info!("alerts: on screen: {what}");
        unconfirmed.0 = None;
    } else {
        wake.at(std::time::Instant::now() + Duration::from_millis(10));
    }
}

/// The icon we draw ourselves (not official artwork): a square in the
/// signal colour with a white frame, the hazard's name and the colour word.
fn icon(parent: &mut ChildSpawnerCommands, fonts: &Fonts, icon: &Icon, colours: Colours, side_vmin: f32, compact: bool) {
    let (bg, fg) = (rgb(colours.background), rgb(colours.text));
    parent
        .spawn((
            Node {
                width: Val::VMin(side_vmin),
                height: Val::VMin(side_vmin),
                flex_shrink: 0.0,
                flex_direction: FlexDirection::Column,
                align_items: AlignItems::Center,
                justify_content: JustifyContent::Center,
                border: UiRect::all(Val::VMin(side_vmin * 0.05)),
                ..default()
            },
            BackgroundColor(bg),
            BorderColor::all(Color::WHITE),
        ))
        .with_children(|i| {
            let (big, small) = if compact { (TextSize::Body, TextSize::Footer) } else { (TextSize::Title, TextSize::Body) };
            i.spawn((Text::new(icon.name.clone()), big.font(fonts), TextColor(fg)));
            i.spawn((Text::new(icon.level.clone()), small.font(fonts), TextColor(fg)));
            if let Some(english) = icon.english.as_ref().filter(|_| !compact) {
                i.spawn((Text::new(english.clone()), TextSize::Footer.font(fonts), TextColor(fg)));
            }
        });
}

fn spawn_takeover(commands: &mut Commands, fonts: &Fonts, t: &view::Takeover) {
    let (bg, fg) = (rgb(t.colours.background), rgb(t.colours.text));
    let body = Color::srgb_u8(0x12, 0x14, 0x18);
    let white = Color::WHITE;
    commands
        .spawn((
            AlertLayer,
            Node { flex_direction: FlexDirection::Column, ..super::slides::full_cover() },
            BackgroundColor(body),
            GlobalZIndex(TAKEOVER_Z),
        ))
        .with_children(|root| {
            // The header band in the warning's colour.
            root.spawn((
                Node {
                    width: Val::Percent(100.0),
                    padding: UiRect::axes(Val::VMin(4.0), Val::VMin(2.5)),
                    align_items: AlignItems::Center,
                    column_gap: Val::VMin(4.0),
                    ..default()
                },
                BackgroundColor(bg),
            ))
            .with_children(|h| {
                icon(h, fonts, &t.icon, t.colours, 24.0, false);
                h.spawn((Text::new(t.title.clone()), TextSize::Title.font(fonts), TextColor(fg)));
            });
            // Headline, description, instruction.
            root.spawn(Node {
                flex_grow: 1.0,
                flex_direction: FlexDirection::Column,
                padding: UiRect::axes(Val::VMin(5.0), Val::VMin(3.0)),
                row_gap: Val::VMin(2.5),
                overflow: Overflow::clip(),
                ..default()
            })
            .with_children(|b| {
                if let Some(n) = &t.not_real {
                    b.spawn((Text::new(n.clone()), TextSize::Body.font(fonts), TextColor(Color::srgb_u8(255, 214, 0))));
                }
                if let Some(h) = &t.headline {
                    b.spawn((Text::new(h.clone()), TextSize::Body.font(fonts), TextColor(white)));
                }
                if let Some(d) = &t.description {
                    b.spawn((Text::new(d.clone()), TextSize::Body.font(fonts), TextColor(Color::srgb_u8(225, 228, 232))));
                }
                if let Some(i) = &t.instruction {
                    b.spawn((
                        Node { padding: UiRect::all(Val::VMin(1.5)), border: UiRect::left(Val::VMin(1.0)), ..default() },
                        BorderColor::all(bg),
                        BackgroundColor(Color::srgb_u8(0x24, 0x27, 0x2e)),
                    ))
                    .with_children(|box_| {
                        box_.spawn((Text::new(i.clone()), TextSize::Body.font(fonts), TextColor(white)));
                    });
                }
            });
            root.spawn((
                Node {
                    width: Val::Percent(100.0),
                    padding: UiRect::axes(Val::VMin(5.0), Val::VMin(1.5)),
                    column_gap: Val::VMin(4.0),
                    flex_wrap: FlexWrap::Wrap,
                    ..default()
                },
                BackgroundColor(Color::srgb_u8(0x1c, 0x1f, 0x25)),
            ))
            .with_children(|f| {
                for line in &t.footer {
                    f.spawn((Text::new(line.clone()), TextSize::Footer.font(fonts), TextColor(Color::srgb_u8(200, 204, 210))));
                }
            });
        });
}

fn spawn_banner(commands: &mut Commands, fonts: &Fonts, banner: &Banner) {
    let (bg, fg) = (rgb(banner.colours.background), rgb(banner.colours.text));
    commands
        .spawn((
            AlertLayer,
            Node {
                position_type: PositionType::Absolute,
                left: Val::Px(0.0),
                right: Val::Px(0.0),
                top: Val::Px(0.0),
                padding: UiRect::axes(Val::VMin(2.0), Val::VMin(1.2)),
                align_items: AlignItems::Center,
                column_gap: Val::VMin(2.5),
                ..default()
            },
            BackgroundColor(bg),
            GlobalZIndex(BANNER_Z),
        ))
        .with_children(|b| {
            icon(b, fonts, &banner.icon, banner.colours, 12.0, true);
            b.spawn((Text::new(banner.text.clone()), TextSize::Body.font(fonts), TextColor(fg)));
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::player::testing::{warn, Player};

    fn takeover(w: &World) -> Option<String> {
        w.resource::<Drawn>().0.takeover.as_ref().map(|t| t.name.clone())
    }

    #[test]
    fn a_new_store_file_brings_the_takeover_and_its_cancel_takes_it_away() {
        let mut p = Player::new("[[items]]\nid = \"a\"\nkind = \"clock\"\n", |_| {});
        p.until("the programme", |w| w.get_resource::<crate::player::rotation::Programme>().is_some());
        assert_eq!(takeover(p.app.world()), None);
        assert_eq!(*p.app.world().resource::<State<Warning>>().get(), Warning::None);
        warn(&p.cache(), "w", false);
        p.until("the takeover", |w| takeover(w).is_some());
        assert_eq!(*p.app.world().resource::<State<Warning>>().get(), Warning::Takeover);
        assert!(p.app.world().resource::<ChimeRequest>().0.is_some(), "no chime asked for");
        assert_eq!(p.app.world_mut().query_filtered::<(), With<AlertLayer>>().iter(p.app.world()).count(), 1);
        warn(&p.cache(), "w", true);
        p.until("the takeover leaves", |w| takeover(w).is_none());
        p.app.update();
        assert_eq!(*p.app.world().resource::<State<Warning>>().get(), Warning::None);
        assert_eq!(p.app.world_mut().query_filtered::<(), With<AlertLayer>>().iter(p.app.world()).count(), 0);
    }

    #[test]
    fn a_warning_leaves_when_it_expires_by_the_clock_alone() {
        let mut p = Player::new("[[items]]\nid = \"a\"\nkind = \"clock\"\n", |_| {});
        warn(&p.cache(), "w", false);
        p.until("the takeover", |w| takeover(w).is_some());
        // It expires at 20:00; the clock says 10:00.
        p.advance(Duration::from_secs(9 * 3600 + 3599));
        assert!(takeover(p.app.world()).is_some());
        p.advance(Duration::from_secs(2));
        assert_eq!(takeover(p.app.world()), None);
    }
}
