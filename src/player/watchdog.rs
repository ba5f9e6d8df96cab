//! systemd's readiness and watchdog (the sd_notify protocol): `READY=1`
//! once the first frame is drawn, then `WATCHDOG=1` from the frame loop
//! itself at half the unit's `WatchdogSec`, so a hung renderer or a wedged
//! loop stops the pings and systemd kills and restarts the player. The
//! low-power wait is shortened to wake in time for each ping. Outside
//! systemd (no `NOTIFY_SOCKET`) this sends nothing.

use std::time::{Duration, Instant};

use bevy::prelude::*;

use super::power::Wake;

/// Where the protocol stands.
#[derive(Resource, Debug)]
struct Watchdog {
    /// Half the watchdog interval (None: no watchdog asked for).
    every: Option<Duration>,
    /// Frame-loop passes so far (READY goes at the second: the first
    /// frame has then been drawn).
    passes: u32,
    last: Option<Instant>,
}

pub(super) fn plugin(app: &mut App) {
    let every = sd_notify::watchdog_enabled().map(|d| d / 2);
    if let Some(e) = every {
        info!("systemd watchdog: a ping every {e:.1?}");
    }
    app.insert_resource(Watchdog { every, passes: 0, last: None })
        .add_systems(Last, ping.before(super::power::set_update_mode));
}

fn ping(mut dog: ResMut<Watchdog>, mut wake: ResMut<Wake>) {
    let now = Instant::now();
    dog.passes = dog.passes.saturating_add(1);
    match dog.passes {
        // Draw the second frame at once rather than after a long sleep.
        1 => wake.at(now),
        2 => notify(sd_notify::NotifyState::Ready),
        _ => {}
    }
    let Some(every) = dog.every else { return };
    if dog.last.is_none_or(|t| now.duration_since(t) >= every) {
        notify(sd_notify::NotifyState::Watchdog);
        dog.last = Some(now);
    }
    wake.at(dog.last.unwrap_or(now) + every);
}

fn notify(state: sd_notify::NotifyState) {
    if let Err(e) = sd_notify::notify(&[state]) {
        warn!("systemd notify: {e}");
    }
}
