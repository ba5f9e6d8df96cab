//! The frame's time: one reading of the clocks per frame, which the systems
//! use for `now` (a test sets it by hand), and the kiosk's trusted time.

use std::time::Instant;

use bevy::prelude::*;
use chrono::{DateTime, Utc};

use super::worker::ClockLoaded;
use super::Phase;
use crate::core::trusted_time::{Record, Times};

/// The clocks as this frame reads them: the monotonic instant (for
/// lengths and wake-ups) and the local wall clock.
#[derive(Resource, Debug, Clone, Copy)]
pub(crate) struct Now {
    pub instant: Instant,
    pub utc: DateTime<Utc>,
    /// Set by hand (a test): the frame does not read the clocks.
    manual: bool,
}

impl Default for Now {
    fn default() -> Now {
        Now { instant: Instant::now(), utc: Utc::now(), manual: false }
    }
}

impl Now {
    /// A clock that moves only when [`Now::advance`] moves it.
    #[cfg(test)]
    pub fn manual(utc: DateTime<Utc>) -> Now {
        Now { instant: Instant::now(), utc, manual: true }
    }

    /// Moves a manual clock on.
    #[cfg(test)]
    pub fn advance(&mut self, by: std::time::Duration) {
        self.instant += by;
        self.utc += chrono::Duration::from_std(by).unwrap_or_default();
    }
}

/// The kiosk's best idea of the time (see [`crate::core::trusted_time`]): the
/// local clock, never earlier than the last trusted time sync recorded, and
/// corrected forward when the clock was found slow. Warnings, schedules and
/// the on-screen clock go by it.
#[derive(Resource, Default)]
pub(crate) struct TrustedClock {
    record: Option<Record>,
    /// The worker has read the record (or found none) once.
    loaded: bool,
}

impl TrustedClock {
    /// The time for schedules, the screen's hours and the clock on screen
    /// (and for whether a warning has ended).
    pub fn now(&self, at: &Now) -> DateTime<Utc> {
        self.times(at).ends
    }

    pub fn times(&self, at: &Now) -> Times {
        crate::core::trusted_time::now(self.record.as_ref(), at.utc)
    }

    /// Whether the record has been read (screen hours wait for it).
    pub fn loaded(clock: Res<TrustedClock>) -> bool {
        clock.loaded
    }
}

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<Now>()
        .init_resource::<TrustedClock>()
        .add_systems(First, read_clocks)
        .add_systems(PreUpdate, take_record.in_set(Phase::Receive).after(super::worker::drain));
}

fn read_clocks(mut now: ResMut<Now>) {
    if !now.manual {
        now.instant = Instant::now();
        now.utc = Utc::now();
    }
}

fn take_record(mut loaded: MessageReader<ClockLoaded>, mut clock: ResMut<TrustedClock>) {
    if let Some(ClockLoaded(record)) = loaded.read().last() {
        clock.record = *record;
        clock.loaded = true;
    }
}
