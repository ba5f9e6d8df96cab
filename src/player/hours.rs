//! Screen-on hours: outside them the screen is dark and nothing plays (and
//! no frames are drawn beyond one a minute, to notice the hours starting
//! again). This plugin only says which it is ([`Hours`]); the rotation and
//! sound follow [`super::mode::Mode`].

use std::time::Duration;

use bevy::prelude::*;
use chrono::Timelike;

use super::now::{Now, TrustedClock};
use super::power::Wake;
use super::worker::Worker;
use crate::store::status::PlayerStatus;
use super::{Phase, Settings};

/// The screen's background while it is on.
pub(crate) const BACKGROUND: Color = Color::srgb_u8(0x0d, 0x2b, 0x4e);

/// Whether the screen is within its screen-on hours.
#[derive(States, Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) enum Hours {
    #[default]
    On,
    Dark,
}

pub(super) fn plugin(app: &mut App) {
    app.init_state::<Hours>()
        .add_systems(PreUpdate, screen_hours.run_if(TrustedClock::loaded).in_set(Phase::Sense))
        .add_systems(OnEnter(Hours::Dark), nothing_on_screen);
}

/// Nothing is on screen outside screen-on hours; `estation status` says so
/// (and the display's power, which the worker fills in).
fn nothing_on_screen(settings: Res<Settings>, now: Res<Now>, clock: Res<TrustedClock>, worker: Option<Res<Worker>>) {
    if let (Some(path), Some(worker)) = (&settings.status_path, &worker) {
        let dark = PlayerStatus {
            pid: std::process::id(),
            since: Some(clock.now(&now)),
            source: "nothing: outside screen-on hours".into(),
            ..PlayerStatus::default()
        };
        worker.save_status(path.clone(), dark);
    }
}

fn screen_hours(
    settings: Res<Settings>,
    now: Res<Now>,
    clock: Res<TrustedClock>,
    hours: Res<State<Hours>>,
    mut next: ResMut<NextState<Hours>>,
    mut clear: ResMut<ClearColor>,
    mut wake: ResMut<Wake>,
) {
    let local = clock.now(&now).with_timezone(&settings.config.timezone).naive_local();
    let on = settings.config.screen_is_on(local);
    if !settings.config.screen_on.is_empty() {
        // Screen-on hours switch on whole minutes: look again at the next one.
        let into_minute = Duration::from_secs(u64::from(local.second())) + Duration::from_nanos(u64::from(local.nanosecond()));
        wake.at(now.instant + Duration::from_secs(60).saturating_sub(into_minute) + Duration::from_millis(20));
    }
    let want = if on { Hours::On } else { Hours::Dark };
    if *hours.get() == want {
        return;
    }
    next.set(want);
    if on {
        info!("screen-on hours started");
        clear.0 = BACKGROUND;
    } else {
        info!("outside screen-on hours: screen dark");
        clear.0 = Color::BLACK;
    }
}
