//! A discreet line in a corner of the screen while the player runs on a
//! config other than the file the operator wrote (the file could not be
//! used; see `crate::config::last_good`): someone walking past the screen
//! can tell the office, without the programme being spoilt for viewers.
//! Drawn once at start; it costs no frames after that.

use bevy::prelude::*;
use bevy::ui::PositionType;

use super::fonts::Fonts;
use super::Settings;

/// Above the slides and the ticker, below the alert banner and takeover.
const NOTICE_Z: i32 = i32::MAX / 2 + 5;

/// What the corner says (the log and `estation status` have the details).
pub(crate) const TEXT: &str = "配置文件有误，正在使用上次可用的配置";

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Startup, show);
}

fn show(mut commands: Commands, settings: Res<Settings>, fonts: Res<Fonts>) {
    if settings.config_fallback.is_none() {
        return;
    }
    let mut font = super::slides::TextSize::Footer.font(&fonts);
    font.font_size = bevy::text::FontSize::VMin(1.8);
    commands.spawn((
        Node { position_type: PositionType::Absolute, top: Val::VMin(1.0), right: Val::VMin(1.0), padding: UiRect::axes(Val::VMin(0.8), Val::VMin(0.3)), ..default() },
        BackgroundColor(Color::srgba(0.0, 0.0, 0.0, 0.45)),
        GlobalZIndex(NOTICE_Z),
        children![(Text::new(TEXT), font, TextColor(Color::srgba(1.0, 0.85, 0.3, 0.9)))],
    ));
}
