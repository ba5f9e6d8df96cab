//! The screen-wide scrolling ticker (滚动字幕).
//!
//! Motion is time-based (pixels per second, scaled with the screen height),
//! so it scrolls at the same speed at any frame rate. The text is laid out on
//! one line (no wrap) and moved by its `left` offset.

use std::time::Instant;

use bevy::prelude::*;
use bevy::ui::{ComputedNode, Overflow, PositionType};
use bevy::window::PrimaryWindow;

use super::fonts::Fonts;
use super::power::Wake;
use super::alerts::AlertTicker;
use super::rotation::CurrentTicker;
use super::slides::{color, TextSize, TICKER_BAND_VH};
use super::Phase;

/// Gap between messages: three ideographic spaces read as a pause in Chinese.
const SEPARATOR: &str = "\u{3000}\u{3000}\u{3000}";
/// Speeds in the playlist are for a screen this tall.
const REFERENCE_HEIGHT: f32 = 1080.0;

#[derive(Component)]
struct Band;

#[derive(Component)]
struct Scroller {
    x: f32,
    speed: f32,
    last: Option<Instant>,
}

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Update, (show_band, scroll).chain().in_set(Phase::Animate));
}

/// Warnings in the ticker come first, on the alert colours; the playlist's
/// own messages follow. With no playlist ticker, warnings get a band alone.
fn show_band(
    mut commands: Commands,
    ticker: Res<CurrentTicker>,
    alerts: Res<AlertTicker>,
    bands: Query<Entity, With<Band>>,
    fonts: Res<Fonts>,
    window: Single<&Window, With<PrimaryWindow>>,
) {
    if !ticker.is_changed() && !alerts.is_changed() {
        return;
    }
    for e in &bands {
        commands.entity(e).despawn();
    }
    let alert_band = crate::core::playlist::Ticker {
        messages: Vec::new(),
        speed: crate::core::playlist::DEFAULT_TICKER_SPEED,
        background: crate::core::color::Rgba::rgb(0x8e, 0x0e, 0x0e),
        color: crate::core::color::Rgba::WHITE,
    };
    let t = match (&ticker.0, alerts.0.is_empty()) {
        (None, true) => return,
        (Some(t), true) => t.clone(),
        (Some(t), false) => crate::core::playlist::Ticker {
            messages: alerts.0.iter().chain(&t.messages).cloned().collect(),
            ..alert_band
        },
        (None, false) => crate::core::playlist::Ticker { messages: alerts.0.clone(), ..alert_band },
    };
    let t = &t;
    let text = format!("{}{SEPARATOR}", t.messages.join(SEPARATOR));
    commands
        .spawn((
            Band,
            Node {
                position_type: PositionType::Absolute,
                left: Val::Px(0.0),
                right: Val::Px(0.0),
                bottom: Val::Px(0.0),
                height: Val::Vh(TICKER_BAND_VH),
                align_items: AlignItems::Center,
                overflow: Overflow::clip(),
                ..default()
            },
            BackgroundColor(color(t.background)),
            GlobalZIndex(i32::MAX / 2),
        ))
        .with_children(|band| {
            band.spawn((
                Scroller {
                    x: window.width(),
                    speed: t.speed,
                    last: None,
                },
                Node {
                    position_type: PositionType::Absolute,
                    left: Val::Px(window.width()),
                    ..default()
                },
                Text::new(text),
                TextSize::Ticker.font(&fonts),
                TextColor(color(t.color)),
                TextLayout::no_wrap(),
            ));
        });
}

fn scroll(
    mut scrollers: Query<(&mut Scroller, &mut Node, &ComputedNode)>,
    window: Single<&Window, With<PrimaryWindow>>,
    mut wake: ResMut<Wake>,
) {
    let now = Instant::now();
    for (mut s, mut node, computed) in &mut scrollers {
        wake.animate();
        let dt = s.last.map_or(0.0, |l| (now - l).as_secs_f32()).min(0.5);
        s.last = Some(now);
        let width = computed.size().x * computed.inverse_scale_factor();
        s.x -= s.speed * window.height() / REFERENCE_HEIGHT * dt;
        if width > 0.0 && s.x < -width {
            s.x = window.width();
        }
        node.left = Val::Px(s.x.round());
    }
}
