//! How many frames the renderer has really finished: rendered, submitted
//! and presented to the window. The frame loop's own passes say nothing of
//! that: with pipelined rendering the render world draws frame N while the
//! main world runs N+1, and a driver that cannot draw to the window panics
//! there, after the main world has moved on. So "the first frame is on
//! screen" (systemd's READY=1, the first-frame record of
//! [`crate::core::first_frame`]) is counted where it happens, at the end of
//! the render schedule, and read from the main world.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bevy::prelude::*;
use bevy::render::{Render, RenderApp, RenderSystems};

/// Frames presented so far; the same counter in the main and render worlds.
#[derive(Resource, Clone, Default)]
pub(crate) struct Presented(Arc<AtomicU64>);

impl Presented {
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// Counts presented frames; added by the renderer choice once the render
/// world exists (no renderer, no count: see [`first_presented`]).
pub(super) fn plugin(app: &mut App) {
    let presented = Presented::default();
    if let Some(render) = app.get_sub_app_mut(RenderApp) {
        render.insert_resource(presented.clone()).add_systems(Render, count.in_set(RenderSystems::Cleanup));
        app.insert_resource(presented);
    }
}

/// After the render schedule's `Render` set: the frame's command buffers
/// are submitted and its surface texture presented.
fn count(presented: Res<Presented>) {
    presented.0.fetch_add(1, Ordering::AcqRel);
}

/// Whether the first frame is on screen: counted by the render world, or,
/// with no renderer (headless tests), after the loop's second pass.
pub(crate) fn first_presented(presented: Option<&Presented>, passes: u32) -> bool {
    presented.map_or(passes >= 2, |p| p.count() >= 1)
}
