//! Screenshots for the central service: the real frame, every
//! `[central] screenshot` (default 15 min; `"off"`) and whenever the
//! service asks (the heartbeat's answer; the worker sees the request file).
//! The frame loop only asks Bevy for the capture; cutting it down, encoding
//! and saving happen on the worker thread ([`crate::store::screenshot`]),
//! and the heartbeat uploads it.

use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};

use super::now::{Now, TrustedClock};
use super::power::Wake;
use super::rotation::Started;
use super::worker::{ScreenshotAsked, Worker};
use super::{Phase, Settings};

/// The first screenshot on the interval comes this long after the first
/// frame, so the office sees a restarted screen soon.
const FIRST: Duration = Duration::from_secs(30);
/// A capture not back after this is given up (Bevy keeps one capture per
/// window per frame, so one asked for in the same frame as `--screenshot`'s
/// may never come).
const GIVE_UP: Duration = Duration::from_secs(10);

#[derive(Resource)]
struct Due {
    every: Option<Duration>,
    next: Option<Instant>,
    asked: bool,
    in_flight: Option<Instant>,
}

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Startup, setup).add_systems(Update, take.in_set(Phase::Observe));
}

/// Screenshots only for a kiosk that reports to a service, with a cache
/// (their folder is beside it).
fn setup(mut commands: Commands, settings: Res<Settings>) {
    let c = &settings.config;
    if c.central.url.is_some() && c.central.token.is_some() && c.cache.dir().is_some() {
        commands.insert_resource(Due { every: c.central.screenshot, next: None, asked: false, in_flight: None });
    }
}

fn take(
    mut commands: Commands,
    due: Option<ResMut<Due>>,
    started: Res<Started>,
    mut asked: MessageReader<ScreenshotAsked>,
    (clock, now): (Res<TrustedClock>, Res<Now>),
    mut wake: ResMut<Wake>,
) {
    let Some(mut due) = due else { return };
    if asked.read().count() > 0 {
        due.asked = true;
    }
    // Nothing to show the office before the first frame with content.
    let Some(t0) = started.0 else { return };
    let at = Instant::now();
    if due.next.is_none() {
        due.next = due.every.map(|_| t0 + FIRST);
    }
    if due.in_flight.is_some_and(|t| at.duration_since(t) > GIVE_UP) {
        warn!("screenshot for the central service: the capture did not come back; tried again later");
        due.in_flight = None;
    }
    let on_time = due.next.is_some_and(|n| at >= n);
    if due.in_flight.is_none() && (due.asked || on_time) {
        due.asked = false;
        due.in_flight = Some(at);
        // One asked for keeps the interval's times where they were.
        if on_time {
            due.next = due.every.map(|e| at + e);
        }
        let taken = clock.now(&now);
        commands.spawn(Screenshot::primary_window()).observe(move |shot: On<ScreenshotCaptured>, mut due: ResMut<Due>, worker: Option<Res<Worker>>| {
            due.in_flight = None;
            if let Some(worker) = worker {
                worker.screenshot(shot.image.clone(), taken);
            }
        });
    }
    if let Some(next) = due.next {
        wake.at(next);
    }
    if due.in_flight.is_some() {
        // The capture completes a frame or two later.
        wake.animate();
    }
}
