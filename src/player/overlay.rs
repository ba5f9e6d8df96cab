//! The status overlay, for a minute when a signed command asks for it
//! (`estation command overlay`): which screen this is and how it is doing,
//! for someone standing at it with the office on the phone. Below a
//! warning's banner and takeover, which it never hides; drawn once, taken
//! away at its end.

use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy::ui::PositionType;

use super::fonts::Fonts;
use super::power::Wake;
use super::{Phase, Settings};

/// How long it stays.
pub(crate) const SHOWN_FOR: Duration = Duration::from_secs(60);
/// Above the slides, the ticker and the config notice; below the alert
/// banner and takeover.
const OVERLAY_Z: i32 = i32::MAX / 2 + 6;

/// Show the overlay with these lines (from the worker).
#[derive(Message)]
pub(crate) struct ShowOverlay(pub Vec<String>);

#[derive(Component)]
struct Overlay;

#[derive(Resource, Default)]
struct Until(Option<Instant>);

pub(super) fn plugin(app: &mut App) {
    app.add_message::<ShowOverlay>().init_resource::<Until>().add_systems(Update, show.in_set(Phase::Observe));
}

fn show(
    mut commands: Commands,
    mut asked: MessageReader<ShowOverlay>,
    shown: Query<Entity, With<Overlay>>,
    mut until: ResMut<Until>,
    settings: Res<Settings>,
    fonts: Option<Res<Fonts>>,
    mut wake: ResMut<Wake>,
) {
    let now = Instant::now();
    let latest = asked.read().last().map(|m| m.0.clone());
    let ended = until.0.is_some_and(|t| now >= t);
    if latest.is_some() || ended {
        for e in &shown {
            commands.entity(e).despawn();
        }
        until.0 = None;
    }
    if let (Some(lines), Some(fonts)) = (latest, fonts) {
        let c = &settings.config;
        let mut all = vec![format!("{} ({})  地区 {}  · estation {}", c.screen_name, c.screen_id, c.region.as_deref().unwrap_or("未设"), env!("CARGO_PKG_VERSION"))];
        all.extend(lines);
        let mut font = super::slides::TextSize::Footer.font(&fonts);
        font.font_size = bevy::text::FontSize::VMin(2.4);
        info!("status overlay shown for {}s: {}", SHOWN_FOR.as_secs(), all.join(" | "));
        commands
            .spawn((
                Overlay,
                Node {
                    position_type: PositionType::Absolute,
                    left: Val::VMin(2.0),
                    top: Val::VMin(2.0),
                    flex_direction: FlexDirection::Column,
                    row_gap: Val::VMin(0.6),
                    padding: UiRect::all(Val::VMin(1.5)),
                    ..default()
                },
                BackgroundColor(Color::srgba(0.0, 0.0, 0.0, 0.8)),
                GlobalZIndex(OVERLAY_Z),
            ))
            .with_children(|o| {
                for line in all {
                    o.spawn((Text::new(line), font.clone(), TextColor(Color::WHITE)));
                }
            });
        until.0 = Some(now + SHOWN_FOR);
    }
    if let Some(t) = until.0 {
        wake.at(t);
    }
}
