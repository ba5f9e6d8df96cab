//! Proof of play: tells [`crate::core::proof::Tracker`] what fills the
//! screen whenever that changes (the item the rotation put on screen, the
//! warnings the alert plugin shows, the screen's hours and a takeover) and
//! hands the intervals that closed to the worker thread, which appends them
//! to the log (`store::proof`) off the frame loop. The loop wakes for the
//! tracker's next split, once every ten minutes at most.

use std::time::Duration;

use bevy::prelude::*;

use super::mode::Mode;
use super::now::{Now, TrustedClock};
use super::power::Wake;
use super::worker::Worker;
use super::Phase;
use crate::core::proof::{ItemRef, Seen, Tracker, What};

/// The item the rotation has on screen (None: the idle screen, or nothing
/// yet). Set by the rotation.
#[derive(Resource, Default, PartialEq)]
pub(crate) struct ItemOnScreen(pub Option<ItemRef>);

/// The warnings on screen, as the proof names them. Set by the alert plugin.
#[derive(Resource, Default, PartialEq)]
pub(crate) struct WarningsOnScreen(pub Vec<What>);

#[derive(Resource, Default)]
struct Proof {
    tracker: Tracker,
    seen: Option<Seen>,
}

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<ItemOnScreen>()
        .init_resource::<WarningsOnScreen>()
        .init_resource::<Proof>()
        .add_systems(Update, observe.run_if(TrustedClock::loaded).after(Phase::Decide).before(Phase::Observe))
        .add_systems(Last, close_on_exit);
}

#[allow(clippy::too_many_arguments)] // a Bevy system: one parameter per resource it touches
fn observe(
    mut proof: ResMut<Proof>,
    item: Res<ItemOnScreen>,
    warnings: Res<WarningsOnScreen>,
    mode: Option<Res<State<Mode>>>,
    worker: Option<Res<Worker>>,
    (clock, now): (Res<TrustedClock>, Res<Now>),
    mut wake: ResMut<Wake>,
) {
    // Nothing is known to be on screen before the clock and the hours are.
    let (Some(mode), Some(worker)) = (mode, worker) else { return };
    let utc = clock.now(&now);
    let due = proof.tracker.next_split().is_some_and(|t| utc >= t);
    // Most frames (a ticker scrolling) change none of it: nothing to build.
    if !(due || item.is_changed() || warnings.is_changed() || mode.is_changed() || proof.seen.is_none()) {
        return;
    }
    let mode = *mode.get();
    let seen = Seen {
        lit: mode != Mode::Dark,
        item: if mode == Mode::Playing { item.0.clone() } else { None },
        warnings: warnings.0.clone(),
    };
    if proof.seen.as_ref() == Some(&seen) && !due {
        return;
    }
    let closed = proof.tracker.observe(utc, &seen);
    proof.seen = Some(seen);
    if !closed.is_empty() {
        worker.proof(closed, false);
    }
    if let Some(t) = proof.tracker.next_split() {
        wake.at(now.instant + (t - utc).to_std().unwrap_or_default() + Duration::from_millis(5));
    }
}

/// The player is stopping: what is open closes now, and the worker writes it
/// before the process ends.
fn close_on_exit(mut exit: MessageReader<AppExit>, mut proof: ResMut<Proof>, worker: Option<Res<Worker>>, clock: Res<TrustedClock>, now: Res<Now>) {
    if exit.read().next().is_none() {
        return;
    }
    let closed = proof.tracker.close_all(clock.now(&now));
    if let (Some(worker), false) = (worker, closed.is_empty()) {
        worker.proof(closed, true);
    }
}
