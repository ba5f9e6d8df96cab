//! `--screenshot` and `--exit-after`: real frames saved to PNG, and a timed quit.
//!
//! Times count from the first frame with content on screen, so they mean the
//! same on a fast kiosk and under a slow software renderer.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};

use super::power::Wake;
use super::rotation::Started;
use super::Phase;

/// When no `--screenshot-at` is given.
const DEFAULT_SHOT_AT: Duration = Duration::from_secs(1);

#[derive(Resource)]
pub(crate) struct Plan {
    /// (time after the first frame, file), in time order; taken ones removed.
    shots: Vec<(Duration, PathBuf)>,
    in_flight: usize,
    exit_after: Option<Duration>,
}

impl Plan {
    pub fn new(path: Option<PathBuf>, mut at: Vec<Duration>, exit_after: Option<Duration>, _now: Instant) -> Plan {
        let shots = match path {
            None => Vec::new(),
            Some(path) => {
                if at.is_empty() {
                    at.push(DEFAULT_SHOT_AT);
                }
                let several = at.len() > 1;
                let mut shots: Vec<(Duration, PathBuf)> = at
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| (t, if several { numbered(&path, i + 1) } else { path.clone() }))
                    .collect();
                shots.sort_by_key(|s| s.0);
                shots
            }
        };
        Plan { shots, in_flight: 0, exit_after }
    }

    fn wants_exit_when_done(&self) -> bool {
        self.exit_after.is_none()
    }
}

/// `shot.png` → `shot-2.png`.
fn numbered(path: &Path, n: usize) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{n}"),
    };
    path.with_file_name(name)
}

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Update, (take_screenshots, exit_when_due).in_set(Phase::Observe));
}

fn take_screenshots(mut commands: Commands, mut plan: ResMut<Plan>, started: Res<Started>, mut wake: ResMut<Wake>) {
    let Some(t0) = started.0 else { return };
    let elapsed = t0.elapsed();
    // Bevy captures one screenshot per window per frame (a second request in
    // the same frame is dropped), so every shot due now shares one capture.
    let due = plan.shots.iter().take_while(|(at, _)| *at <= elapsed).count();
    if due > 0 {
        let paths: Vec<PathBuf> = plan.shots.drain(..due).map(|(_, p)| p).collect();
        plan.in_flight += 1;
        commands
            .spawn(Screenshot::primary_window())
            .observe(move |shot: On<ScreenshotCaptured>, mut plan: ResMut<Plan>, mut exit: MessageWriter<AppExit>| {
                plan.in_flight = plan.in_flight.saturating_sub(1);
                for path in &paths {
                    match save(&shot.image, path) {
                        Ok(()) => info!("screenshot saved to {}", path.display()),
                        Err(e) => error!("screenshot {}: {e}", path.display()),
                    }
                }
                if plan.shots.is_empty() && plan.in_flight == 0 && plan.wants_exit_when_done() {
                    exit.write(AppExit::Success);
                }
            });
    }
    if let Some((at, _)) = plan.shots.first() {
        wake.at(t0 + *at);
    }
    if plan.in_flight > 0 {
        // The capture completes a frame or two later.
        wake.animate();
    }
}

/// Writes the frame as PNG via a temp file and rename, so a reader never
/// sees half a file.
fn save(image: &Image, path: &Path) -> anyhow::Result<()> {
    let rgb = image.clone().try_into_dynamic()?.to_rgb8();
    let tmp = path.with_extension("png.part");
    rgb.save_with_format(&tmp, image::ImageFormat::Png)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn exit_when_due(plan: Res<Plan>, started: Res<Started>, mut exit: MessageWriter<AppExit>, mut wake: ResMut<Wake>) {
    let (Some(after), Some(t0)) = (plan.exit_after, started.0) else { return };
    if t0.elapsed() >= after && plan.in_flight == 0 {
        info!("--exit-after reached");
        exit.write(AppExit::Success);
    } else {
        wake.at(t0 + after);
    }
}
