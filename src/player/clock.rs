//! Keeps clock texts current, waking the loop only when the text changes.

use bevy::prelude::*;

use super::now::{Now, TrustedClock};
use super::power::Wake;
use super::slides::ClockLabel;
use super::{Phase, Settings};
use crate::core::clock_text::{clock_text, next_tick};

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Update, update_clocks.in_set(Phase::Animate));
}

fn update_clocks(settings: Res<Settings>, mut labels: Query<(&ClockLabel, &mut Text)>, mut wake: ResMut<Wake>, clock: Res<TrustedClock>, frame: Res<Now>) {
    if labels.is_empty() {
        return;
    }
    let now = clock.now(&frame).with_timezone(&settings.config.timezone);
    let lang = settings.config.language;
    let mut any_seconds = false;
    for (label, mut text) in &mut labels {
        let wanted_lunar = matches!(label, ClockLabel::Lunar);
        let seconds = matches!(label, ClockLabel::Time { seconds: true });
        any_seconds |= seconds;
        let c = clock_text(now, lang, wanted_lunar, seconds);
        let value = match label {
            ClockLabel::Time { .. } => c.time,
            ClockLabel::Date => c.date,
            ClockLabel::Lunar => c.lunar.unwrap_or_default(),
        };
        // Assign only on change: a changed Text means a new layout and frame.
        if text.0 != value {
            text.0 = value;
        }
    }
    wake.at(frame.instant + next_tick(now, any_seconds));
}
