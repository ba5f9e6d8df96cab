//! Low power: draw a frame only when something on screen changes.
//!
//! Bevy renders one frame per app update, and on the kiosks' iGPUs (or
//! llvmpipe) every frame costs. Each frame, plugins say when they next need
//! a frame (`Wake::at`) or that they are animating (`Wake::animate`); this
//! plugin then sets the reactive wait so the loop sleeps until exactly then.
//! A static slide costs one frame at its start and none until its end.

use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy::winit::{UpdateMode, WinitSettings};

/// Frame interval while something moves: smooth enough for a ticker and a
/// crossfade, half the cost of 60 fps.
pub(crate) const ANIMATION_FRAME: Duration = Duration::from_millis(33);
/// Upper bound of a sleep, so a missed wake-up request cannot freeze the
/// screen for long (the systemd watchdog asks for its own wake-ups). Every
/// plugin asks for its own wake-ups; this is only the safety net, and each
/// wake-up draws a frame, so it is kept long.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// Wakes the frame loop from another thread (GStreamer's, the audio
/// device's): a frame runs at once, whatever the low-power wait.
pub(crate) type Waker = std::sync::Arc<dyn Fn() + Send + Sync>;

fn waker(proxy: &bevy::winit::EventLoopProxyWrapper) -> Waker {
    let proxy = (**proxy).clone();
    std::sync::Arc::new(move || {
        let _ = proxy.send_event(bevy::winit::WinitUserEvent::WakeUp);
    })
}

/// The [`Waker`] of this app's frame loop; one that does nothing when there
/// is no window (headless tests).
#[derive(Resource, Clone)]
pub(crate) struct LoopWaker(pub Waker);

/// When the next frame is needed, gathered anew every frame.
#[derive(Resource, Default)]
pub(crate) struct Wake {
    next: Option<Instant>,
    animating: bool,
}

impl Wake {
    /// Ask for a frame at `t` (or as soon as possible if `t` is past).
    pub fn at(&mut self, t: Instant) {
        self.next = Some(self.next.map_or(t, |n| n.min(t)));
    }

    /// Ask for frames at the animation rate this frame and the next.
    pub fn animate(&mut self) {
        self.animating = true;
    }
}

pub(super) fn plugin(app: &mut App) {
    let waker = match app.world().get_resource::<bevy::winit::EventLoopProxyWrapper>() {
        Some(proxy) => waker(proxy),
        None => std::sync::Arc::new(|| {}),
    };
    app.insert_resource(LoopWaker(waker))
        .init_resource::<Wake>()
        .add_systems(First, |mut wake: ResMut<Wake>| *wake = Wake::default())
        .add_systems(Last, set_update_mode);
}

pub(super) fn set_update_mode(wake: Res<Wake>, settings: Option<ResMut<WinitSettings>>) {
    // No window (headless tests): no loop to pace.
    let Some(mut settings) = settings else { return };
    let now = Instant::now();
    let wait = if wake.animating {
        ANIMATION_FRAME
    } else {
        wake.next
            .map_or(MAX_SLEEP, |t| t.saturating_duration_since(now))
            .clamp(Duration::from_millis(5), MAX_SLEEP)
    };
    let mode = UpdateMode::reactive_low_power(wait);
    // Write only on change so change detection stays quiet.
    if settings.focused_mode != mode {
        settings.focused_mode = mode;
        settings.unfocused_mode = mode;
    }
}
