//! systemd's readiness and watchdog (the sd_notify protocol): `READY=1`
//! once the first frame is on screen ([`super::presented`]), then `WATCHDOG=1` from the frame loop
//! itself at half the unit's `WatchdogSec`, so a hung renderer or a wedged
//! loop stops the pings and systemd kills and restarts the player. The
//! low-power wait is shortened to wake in time for each ping. Outside
//! systemd (no `NOTIFY_SOCKET`) this sends nothing.
//!
//! The kiosk unit starts `cage`, which starts the player: systemd then names
//! cage in `WATCHDOG_PID` and takes the player's messages by
//! `NotifyAccess=all`. So the watchdog is ours when it names this process or
//! its parent, not only this process as `sd_watchdog_enabled(3)` has it.

use std::time::{Duration, Instant};

use bevy::prelude::*;

use super::power::Wake;

/// Where the protocol stands.
#[derive(Resource, Debug)]
struct Watchdog {
    /// Half the watchdog interval (None: no watchdog asked for).
    every: Option<Duration>,
    /// Frame-loop passes so far.
    passes: u32,
    ready: bool,
    last: Option<Instant>,
}

pub(super) fn plugin(app: &mut App) {
    let every = interval(std::env::var("WATCHDOG_USEC").ok().as_deref(), std::env::var("WATCHDOG_PID").ok().as_deref(), std::process::id(), std::os::unix::process::parent_id()).map(|d| d / 2);
    if let Some(e) = every {
        info!("systemd watchdog: a ping every {e:.1?}");
    }
    app.insert_resource(Watchdog { every, passes: 0, ready: false, last: None })
        .add_systems(Last, ping.before(super::power::set_update_mode));
}

fn ping(mut dog: ResMut<Watchdog>, mut wake: ResMut<Wake>, presented: Option<Res<super::presented::Presented>>) {
    let now = Instant::now();
    dog.passes = dog.passes.saturating_add(1);
    if !dog.ready {
        if super::presented::first_presented(presented.as_deref(), dog.passes) {
            notify(sd_notify::NotifyState::Ready);
            dog.ready = true;
        } else {
            // Look again soon rather than after a long low-power sleep.
            wake.at(now + READY_POLL);
        }
    }
    let Some(every) = dog.every else { return };
    if dog.last.is_none_or(|t| now.duration_since(t) >= every) {
        notify(sd_notify::NotifyState::Watchdog);
        dog.last = Some(now);
    }
    wake.at(dog.last.unwrap_or(now) + every);
}

/// How often the loop looks for the first presented frame before READY.
const READY_POLL: Duration = Duration::from_millis(20);

/// The watchdog interval systemd asks of this process (`pid`, started by
/// `parent`), from `WATCHDOG_USEC` and `WATCHDOG_PID`.
fn interval(usec: Option<&str>, for_pid: Option<&str>, pid: u32, parent: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|u| *u > 0)?;
    let ours = match for_pid {
        None => true,
        Some(p) => p.trim().parse::<u32>().is_ok_and(|p| p == pid || p == parent),
    };
    ours.then(|| Duration::from_micros(usec))
}

fn notify(state: sd_notify::NotifyState) {
    if let Err(e) = sd_notify::notify(&[state]) {
        warn!("systemd notify: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_is_ours_when_it_names_us_or_the_compositor_that_started_us() {
        let s = Some(Duration::from_secs(30));
        assert_eq!(interval(Some("30000000"), None, 10, 9), s);
        assert_eq!(interval(Some("30000000"), Some("10"), 10, 9), s);
        assert_eq!(interval(Some("30000000"), Some("9"), 10, 9), s, "cage started us");
        assert_eq!(interval(Some("30000000"), Some("7"), 10, 9), None, "another process's");
        assert_eq!(interval(None, Some("10"), 10, 9), None);
        assert_eq!(interval(Some("0"), None, 10, 9), None);
        assert_eq!(interval(Some("soon"), None, 10, 9), None);
        assert_eq!(interval(Some("30000000"), Some("x"), 10, 9), None);
    }
}
