//! Full screen with or without a window manager.
//!
//! winit's borderless full screen asks the window manager to fill the
//! monitor. A bare X session (xinit with no window manager, common on kiosks,
//! and Xvfb) has nobody to honour that, and the window would stay at its
//! default 1280×720. So a full-screen window is also sized and placed to
//! cover its monitor, and follows it when the resolution changes or the
//! screen is rotated. Under a window manager or cage this is a no-op.

use bevy::prelude::*;
use bevy::window::{Monitor, PrimaryMonitor, PrimaryWindow, WindowMode, WindowPosition};

use super::Phase;

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Update, fill_monitor.in_set(Phase::Decide));
}

fn fill_monitor(
    mut window: Single<&mut Window, With<PrimaryWindow>>,
    monitor: Query<&Monitor, With<PrimaryMonitor>>,
    mut asked: Local<Option<(UVec2, IVec2)>>,
) {
    if !matches!(window.mode, WindowMode::BorderlessFullscreen(_)) {
        return;
    }
    let Ok(m) = monitor.single() else { return };
    let want = (UVec2::new(m.physical_width, m.physical_height), m.physical_position);
    // Ask once per monitor geometry: a window manager that refuses must not
    // get the same request every frame.
    if *asked == Some(want) || window.physical_size() == want.0 && window.position == WindowPosition::At(want.1) {
        return;
    }
    info!("full screen: {}×{} at {:?}", want.0.x, want.0.y, want.1);
    window.resolution.set_physical_resolution(want.0.x, want.0.y);
    window.position = WindowPosition::At(want.1);
    *asked = Some(want);
}
