//! The Bevy shell: presents what the pure core decides.
//!
//! One plugin per concern. The rotation plugin asks [`crate::core::playlist::schedule`] what
//! plays next, prepares it off the frame loop and crossfades to it; the other
//! plugins draw the ticker and clocks, show warnings over the playlist,
//! take screenshots, and keep the frame rate near zero when nothing moves.

mod alerts;
mod notice;
mod overlay;
mod capture;
mod clock;
mod display;
mod fonts;
mod hours;
mod mode;
mod now;
mod power;
mod presented;
mod proof;
pub(crate) mod renderer;
pub(crate) mod display_power;
mod rotation;
mod screenshots;
mod slides;
mod sound;
#[cfg(test)]
mod testing;
mod ticker;
mod video;
mod watchdog;
mod worker;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy::window::{CursorOptions, MonitorSelection, PresentMode, WindowMode, WindowResolution};
use bevy::winit::WinitSettings;

use crate::config::{Config, DisplayMode};

/// How long a narration lasts, as the rotation measures it (for `estation
/// playlist at`, which measures the same way).
pub(crate) use sound::narration_length;
use crate::core::diag::Diagnostic;

/// Everything `estation play` was asked to do.
pub struct Options {
    pub config: Config,
    pub config_problems: Vec<Diagnostic>,
    pub config_note: String,
    /// Why the config in use is not the file's (`config::Loaded::fallback`).
    pub config_fallback: Option<String>,
    /// Where the programme comes from.
    pub source: crate::store::content::ContentSource,
    /// Where to report the item on screen (`estation status` reads it).
    pub status_path: Option<PathBuf>,
    /// Where each start's adapter and whether it drew are kept
    /// ([`crate::core::first_frame`]); None: every start tries the best first.
    pub first_frame: Option<PathBuf>,
    /// Folder holding `fonts/`.
    pub assets: PathBuf,
    pub window: Option<(u32, u32)>,
    pub screenshot: Option<PathBuf>,
    pub screenshot_at: Vec<Duration>,
    pub exit_after: Option<Duration>,
}

/// The settings every plugin reads; set once at start.
#[derive(Resource)]
pub(crate) struct Settings {
    pub config: Config,
    pub source: crate::store::content::ContentSource,
    pub status_path: Option<PathBuf>,
    pub assets: PathBuf,
    /// Shown small on the idle screen: the config file cannot be used.
    pub config_fallback: Option<String>,
}

/// The order of the frame's work, written once.
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Phase {
    /// (`PreUpdate`) Take what the worker thread loaded.
    Receive,
    /// (`PreUpdate`) Set the states from it and the time (a warning, the
    /// screen's hours), so the frame's `Update` sees the new [`mode::Mode`].
    Sense,
    /// Decide what is on screen (rotation, screen hours).
    Decide,
    /// Update what moves or changes (fades, ticker, clocks).
    Animate,
    /// Screenshots and exit, after the frame's content is final.
    Observe,
}

/// Runs the player until the window closes or `--exit-after` elapses.
pub fn run(opts: Options) -> anyhow::Result<ExitCode> {
    let (mode, resolution) = match (opts.window, opts.config.display) {
        (Some((w, h)), _) | (None, DisplayMode::Window { width: w, height: h }) => {
            (WindowMode::Windowed, WindowResolution::new(w, h))
        }
        (None, DisplayMode::Fullscreen) => (
            WindowMode::BorderlessFullscreen(MonitorSelection::Primary),
            WindowResolution::default(),
        ),
    };
    let window = Window {
        title: format!("estation — {}", opts.config.screen_name),
        mode,
        resolution,
        present_mode: PresentMode::AutoVsync,
        // One frame in flight: a kiosk gains nothing from queued frames, and
        // each one is a full-screen buffer (8 MB at 1080p).
        desired_maximum_frame_latency: std::num::NonZeroU32::new(1),
        resizable: true,
        ..default()
    };

    let mut app = App::new();
    app.add_plugins(
        DefaultPlugins
            .set(WindowPlugin {
                primary_window: Some(window),
                primary_cursor_options: Some(CursorOptions {
                    visible: false,
                    ..default()
                }),
                ..default()
            })
            // Pipelines compile before the frame that first needs them, not
            // in the background: a kiosk shows whole frames only, never a
            // warning whose header is drawn but whose text is not yet (a
            // one-off pause of milliseconds on a GPU, longer under software
            // rendering). Screenshot times then count from real content.
            // The renderer is chosen by our own plugin in its place, so a
            // machine with no usable Vulkan falls back to GL, then to
            // Mesa's software renderer (renderer.rs).
            .disable::<bevy::render::RenderPlugin>()
            .add_after::<bevy::render::RenderPlugin>(renderer::ChooseRenderer {
                synchronous_pipeline_compilation: true,
                first_frame: opts.first_frame.clone(),
            })
            .set(bevy::log::LogPlugin {
                filter: "info,wgpu=error,naga=warn,bevy_render=warn,bevy_winit=warn,estation=info".into(),
                // Colours only on a terminal: under systemd the log goes to
                // journald, where escape codes are noise.
                fmt_layer: |_| {
                    Some(Box::new(
                        tracing_subscriber::fmt::Layer::default()
                            .with_writer(std::io::stderr)
                            .with_ansi(std::io::stderr().is_terminal()),
                    ))
                },
                ..default()
            }),
    );
    for p in &opts.config_problems {
        error!("config: {p} (using the default for this field)");
    }
    if let Some(why) = &opts.config_fallback {
        error!("config: {why}");
    }
    info!("{}", opts.config_note);

    app.insert_resource(WinitSettings {
        focused_mode: bevy::winit::UpdateMode::reactive_low_power(Duration::from_millis(100)),
        unfocused_mode: bevy::winit::UpdateMode::reactive_low_power(Duration::from_millis(100)),
    })
    .insert_resource(ClearColor(hours::BACKGROUND))
    .insert_resource(Settings {
        config: opts.config,
        source: opts.source,
        status_path: opts.status_path,
        assets: opts.assets,
        config_fallback: opts.config_fallback,
    })
    .insert_resource(capture::Plan::new(
        opts.screenshot,
        opts.screenshot_at,
        opts.exit_after,
        Instant::now(),
    ))
    .add_plugins((shell, fonts::plugin, slides::plugin, ticker::plugin, clock::plugin, capture::plugin, display::plugin, display_power::plugin, notice::plugin, sound::plugin, watchdog::plugin))
    .add_systems(Startup, spawn_camera);

    Ok(match app.run() {
        AppExit::Success => ExitCode::SUCCESS,
        AppExit::Error(code) => ExitCode::from(code.get()),
    })
}

/// The order of the frame and the plugins that decide what is on screen
/// (these need no window, renderer or sound device: the headless tests run
/// them).
fn shell(app: &mut App) {
    app.configure_sets(PreUpdate, (Phase::Receive, Phase::Sense).chain())
        .configure_sets(Update, (Phase::Decide, Phase::Animate, Phase::Observe).chain())
        .add_plugins((power::plugin, now::plugin, worker::plugin, hours::plugin, alerts::plugin, mode::plugin, rotation::plugin, video::plugin, proof::plugin, screenshots::plugin, overlay::plugin));
}

fn spawn_camera(mut commands: Commands) {
    // No multisampling: UI edges are anti-aliased in the shader, and 4×MSAA
    // would quadruple the frame buffer (33 MB at 1080p) and its fill cost.
    commands.spawn((Camera2d, Msaa::Off));
}
