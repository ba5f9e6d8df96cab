//! Which GPU the player draws with, chosen before the window opens, so that
//! a machine without a usable Vulkan driver still gets a picture.
//!
//! Bevy's own renderer start asks wgpu for one adapter and panics ("Unable
//! to find a GPU!") when Vulkan is missing, and its GL backend cannot
//! present: it creates the wgpu instance without the windowing system's
//! display, so EGL runs surfaceless (bevy-kiosk-tech.md §3). Here the
//! instance is made with the display of the event loop winit already opened
//! (the same connection the window uses, so surfaces match), every adapter
//! of every backend is listed, and they are tried best first
//! ([`rank`]): a real GPU on Vulkan, a real GPU on GL (old Intel iGPUs with
//! no conformant Vulkan driver), then Mesa's software renderers (lavapipe
//! on Vulkan, llvmpipe on GL). The first whose device opens is handed to
//! Bevy's [`RenderPlugin`] as [`RenderCreation::Manual`].
//!
//! What only a real window shows (a driver that opens a device but offers
//! the window no present mode, or hangs in its first frame) ends the start
//! early; the next start tries that adapter after the others
//! ([`crate::core::first_frame`]), so a bad driver costs a restart or two,
//! never the picture.
//!
//! `WGPU_BACKEND=gl` (or `vulkan`) in the unit's environment narrows the
//! choice on a machine whose listed driver misbehaves.

use bevy::prelude::*;
use bevy::render::RenderPlugin;
use bevy::render::renderer::{
    RenderAdapter, RenderAdapterInfo, RenderDevice, RenderInstance, RenderQueue, WgpuWrapper,
};
use bevy::render::settings::{RenderCreation, WgpuSettings};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use wgpu::{Backend, Backends, DeviceType};

use crate::core::first_frame;
use crate::store::status::RendererReport;

/// What to install when nothing can draw (the `.deb` depends on these).
pub(crate) const DRIVERS: &str = "mesa-vulkan-drivers libgl1-mesa-dri libegl1";

/// Replaces Bevy's [`RenderPlugin`] in the player's plugin group; adds it
/// itself, with the chosen device, once winit's event loop exists.
pub(crate) struct ChooseRenderer {
    pub synchronous_pipeline_compilation: bool,
    /// The record of earlier starts ([`first_frame`]); None keeps none.
    pub first_frame: Option<PathBuf>,
}

/// This start's entry in the first-frame record, marked drawn at the
/// first frame.
#[derive(Resource)]
struct Trial {
    path: PathBuf,
    adapter: String,
    at: DateTime<Utc>,
}

/// The adapter the player draws with, for the log and `player.json`.
#[derive(Resource, Clone, Debug)]
pub(crate) struct InUse(pub RendererReport);

impl Plugin for ChooseRenderer {
    fn build(&self, app: &mut App) {
        let display = app.world().get_resource::<bevy::winit::DisplayHandleWrapper>().map(|d| d.0.clone());
        let version = env!("CARGO_PKG_VERSION");
        let now = Utc::now();
        let earlier = self.first_frame.as_deref().map(first_frame::load).unwrap_or_default();
        let last = first_frame::passed_over(&earlier, version, now);
        for p in &last {
            warn!(
                "renderer: {} ended its last {} starts before a first frame (the latest at {}); \
                 trying it after the others until {}",
                p.adapter,
                first_frame::FAILS,
                p.last.format("%F %T UTC"),
                p.until.format("%F %T UTC")
            );
        }
        let last: Vec<String> = last.into_iter().map(|p| p.adapter).collect();
        let render_creation = match open(display, &last) {
            Ok((resources, report)) => {
                info!("renderer: {}", report.describe());
                if let Some(path) = &self.first_frame {
                    let adapter = report.describe();
                    let starts = first_frame::started(&earlier, &adapter, version, now);
                    match save(path, &starts) {
                        Ok(()) => {
                            app.insert_resource(Trial { path: path.clone(), adapter, at: now })
                                .add_systems(Last, drawn.run_if(resource_exists::<Trial>));
                        }
                        Err(e) => warn!("renderer: {}: {e}", path.display()),
                    }
                }
                if report.software {
                    warn!(
                        "renderer: software rendering on the CPU; it works, but slowly (a GPU driver \
                         would help: `estation doctor` says which)"
                    );
                }
                app.insert_resource(InUse(report));
                resources
            }
            Err(e) => {
                // Bevy then runs without a renderer: the app exits below
                // with the reason instead of panicking in the render plugin.
                error!("renderer: {e}");
                app.add_systems(Startup, |mut exit: MessageWriter<AppExit>| {
                    exit.write(AppExit::error());
                });
                RenderCreation::Automatic(Box::new(WgpuSettings { backends: None, ..default() }))
            }
        };
        app.add_plugins(RenderPlugin {
            render_creation,
            synchronous_pipeline_compilation: self.synchronous_pipeline_compilation,
            ..default()
        });
        app.add_plugins(super::presented::plugin);
    }
}

/// Marks this start drawn once the first frame is on screen (as the render
/// world counts it, when the watchdog sends READY), off the frame loop.
fn drawn(mut passes: Local<u32>, trial: Res<Trial>, presented: Option<Res<super::presented::Presented>>, mut commands: Commands) {
    *passes += 1;
    if !super::presented::first_presented(presented.as_deref(), *passes) {
        return;
    }
    let (path, adapter, at) = (trial.path.clone(), trial.adapter.clone(), trial.at);
    commands.remove_resource::<Trial>();
    std::thread::spawn(move || {
        let starts = first_frame::drew(&first_frame::load(&path), &adapter, at);
        if let Err(e) = save(&path, &starts) {
            warn!("renderer: {}: {e}", path.display());
        }
    });
}

fn save(path: &std::path::Path, starts: &[first_frame::Start]) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(starts).map_err(std::io::Error::other)?;
    crate::store::atomic::write(path, &bytes)
}

/// Why no adapter could be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NoRenderer {
    #[error("no GPU adapter on {backends:?}, not even Mesa's software renderer (install {DRIVERS})")]
    NoAdapter { backends: Backends },
    #[error("no adapter would open a device ({tried}); install or update {DRIVERS}")]
    NoDevice { tried: String },
}

/// Opens the best adapter on `display`. When `WGPU_BACKEND` narrows the
/// backends and none of those works, every backend is tried: a screen that
/// draws on the "wrong" API beats a black one.
fn open<D>(display: Option<D>, last: &[String]) -> Result<(RenderCreation, RendererReport), NoRenderer>
where
    D: wgpu::rwh::HasDisplayHandle + std::fmt::Debug + Clone + Send + Sync + 'static,
{
    let settings = WgpuSettings::default();
    let every = Backends::all();
    let wanted = asked(&settings).unwrap_or(every);
    match open_on(&settings, wanted, display.clone(), last) {
        Err(e) if wanted != every => {
            warn!("renderer: WGPU_BACKEND asks for {wanted:?}, but {e}; trying every backend");
            open_on(&settings, every, display, last)
        }
        done => done,
    }
}

/// Lists the adapters of `backends` and opens the best one that works.
fn open_on<D>(
    settings: &WgpuSettings,
    backends: Backends,
    display: Option<D>,
    last: &[String],
) -> Result<(RenderCreation, RendererReport), NoRenderer>
where
    D: wgpu::rwh::HasDisplayHandle + std::fmt::Debug + Send + Sync + 'static,
{
    let instance = instance(settings, backends, display);
    let adapters = listed(&instance, backends, last);
    if adapters.is_empty() {
        return Err(NoRenderer::NoAdapter { backends });
    }
    let mut tried = Vec::new();
    for (adapter, info) in adapters {
        let what = report(&info).describe();
        match bevy::tasks::block_on(adapter.request_device(&device_descriptor(settings, &adapter))) {
            Ok((device, queue)) => {
                let creation = RenderCreation::manual(
                    RenderDevice::from(device),
                    RenderQueue(Arc::new(WgpuWrapper::new(queue))),
                    RenderAdapterInfo(WgpuWrapper::new(info.clone())),
                    RenderAdapter(Arc::new(WgpuWrapper::new(adapter))),
                    RenderInstance(Arc::new(WgpuWrapper::new(instance))),
                );
                return Ok((creation, report(&info)));
            }
            Err(e) => {
                warn!("renderer: {what} would not open a device: {e}; trying the next");
                tried.push(format!("{what}: {e}"));
            }
        }
    }
    Err(NoRenderer::NoDevice { tried: tried.join("; ") })
}

/// The backends `WGPU_BACKEND` asks for; an empty or unknown value (which
/// wgpu reads as no backend at all) asks for nothing.
fn asked(settings: &WgpuSettings) -> Option<Backends> {
    settings.backends.filter(|b| !b.is_empty())
}

/// A wgpu instance on `backends`, tied to the windowing system's display
/// when there is one (GL needs it to present; Vulkan ignores it).
fn instance<D>(settings: &WgpuSettings, backends: Backends, display: Option<D>) -> wgpu::Instance
where
    D: wgpu::rwh::HasDisplayHandle + std::fmt::Debug + Send + Sync + 'static,
{
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    desc.flags = settings.instance_flags;
    desc.memory_budget_thresholds = settings.instance_memory_budget_thresholds;
    desc.backend_options.gl.gles_minor_version = settings.gles3_minor_version;
    if let Some(d) = display {
        desc = desc.with_display_handle(Box::new(d));
    }
    wgpu::Instance::new(desc)
}

/// The same device request Bevy makes by default: every feature and limit
/// the adapter has (less mappable primary buffers on a discrete GPU, slow
/// across the bus).
fn device_descriptor<'a>(settings: &'a WgpuSettings, adapter: &wgpu::Adapter) -> wgpu::DeviceDescriptor<'a> {
    let mut features = adapter.features();
    if adapter.get_info().device_type == DeviceType::DiscreteGpu {
        features.remove(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS);
    }
    wgpu::DeviceDescriptor {
        label: settings.device_label.as_deref(),
        required_features: features,
        required_limits: adapter.limits(),
        // As Bevy does (bevy_render renderer::initialize_renderer).
        // SAFETY: the experimental features are only enabled, not relied on
        // by estation's own code.
        experimental_features: unsafe { wgpu::ExperimentalFeatures::enabled() },
        memory_hints: settings.memory_hints.clone(),
        trace: wgpu::Trace::Off,
    }
}

/// Lists every adapter wgpu sees without a window, in the order the player
/// would try them (`last`: those it passes over), for `estation doctor` (GL
/// is listed surfaceless; the player ties it to the display).
pub(crate) fn survey(last: &[String]) -> Vec<RendererReport> {
    let settings = WgpuSettings::default();
    let backends = asked(&settings).unwrap_or(Backends::all());
    let instance = instance(&settings, backends, None::<NoDisplay>);
    listed(&instance, backends, last).iter().map(|(_, info)| report(info)).collect()
}

/// The adapters of `backends`, best first ([`rank`]), those named in `last`
/// (by [`RendererReport::describe`]) after all the others, each with its info.
fn listed(instance: &wgpu::Instance, backends: Backends, last: &[String]) -> Vec<(wgpu::Adapter, wgpu::AdapterInfo)> {
    let adapters = bevy::tasks::block_on(instance.enumerate_adapters(backends));
    let infos: Vec<_> = adapters.iter().map(wgpu::Adapter::get_info).collect();
    for info in &infos {
        debug!("renderer: found {}", report(info).describe());
    }
    let order = rank(&infos.iter().map(|i| (i.backend, i.device_type, experimental(i))).collect::<Vec<_>>());
    let mut all: Vec<_> = adapters.into_iter().zip(infos).map(Some).collect();
    let mut listed: Vec<_> = order.into_iter().filter_map(|i| all[i].take()).collect();
    // Stable: the passed-over keep their rank among themselves.
    listed.sort_by_key(|(_, info)| last.contains(&report(info).describe()));
    listed
}

fn report(info: &wgpu::AdapterInfo) -> RendererReport {
    RendererReport {
        backend: info.backend.to_string(),
        adapter: info.name.clone(),
        driver: [info.driver.as_str(), info.driver_info.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" "),
        software: info.device_type == DeviceType::Cpu,
    }
}

/// Whether the adapter is a driver its makers called experimental: lavapipe
/// before Mesa 21.1 (it became conformant there). Debian 11's lavapipe (Mesa
/// 20.3) opens a device but offers an X11 window no present mode, and Bevy
/// then aborts; llvmpipe on GL draws there.
fn experimental(info: &wgpu::AdapterInfo) -> bool {
    let mesa = |text: &str| -> Option<(u32, u32)> {
        let version = text.split("Mesa ").nth(1)?;
        let mut parts = version.split(|c: char| !c.is_ascii_digit());
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    };
    info.backend == Backend::Vulkan
        && info.device_type == DeviceType::Cpu
        && mesa(&info.driver_info).is_some_and(|v| v < (21, 1))
}

/// The order to try adapters in, as indexes into `adapters` (backend, kind,
/// experimental driver): real GPUs before software, and within each, Vulkan
/// before GL (wgpu's Vulkan path is the one Bevy tests); a discrete GPU
/// before an integrated one; an experimental driver after all the others.
/// wgpu alone would take any Vulkan adapter, lavapipe included, over a real
/// GPU on GL (gfx-rs/wgpu#3820). Adapters of other backends are left out.
pub(crate) fn rank(adapters: &[(Backend, DeviceType, bool)]) -> Vec<usize> {
    let score = |&(backend, device, experimental): &(Backend, DeviceType, bool)| {
        let software = u8::from(device == DeviceType::Cpu) + u8::from(experimental);
        let api = match backend {
            Backend::Vulkan => 0,
            Backend::Gl => 1,
            _ => return None,
        };
        let kind = match device {
            DeviceType::DiscreteGpu => 0,
            DeviceType::IntegratedGpu => 1,
            DeviceType::VirtualGpu => 2,
            DeviceType::Other | DeviceType::Cpu => 3,
        };
        Some((software, api, kind))
    };
    let mut order: Vec<_> = (0..adapters.len()).filter_map(|i| score(&adapters[i]).map(|s| (s, i))).collect();
    // Stable: equal adapters keep wgpu's order.
    order.sort_by_key(|&(s, _)| s);
    order.into_iter().map(|(_, i)| i).collect()
}

/// No windowing system (for listing adapters).
#[derive(Debug)]
enum NoDisplay {}

impl wgpu::rwh::HasDisplayHandle for NoDisplay {
    fn display_handle(&self) -> Result<wgpu::rwh::DisplayHandle<'_>, wgpu::rwh::HandleError> {
        match *self {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_gpu_comes_before_software_and_vulkan_before_gl() {
        use Backend::{Gl, Vulkan};
        use DeviceType::{Cpu, DiscreteGpu, IntegratedGpu};
        // A Haswell box: wgpu lists lavapipe on Vulkan and the iGPU on GL
        // only; the iGPU wins.
        assert_eq!(rank(&[(Vulkan, Cpu, false), (Gl, IntegratedGpu, false), (Gl, Cpu, false)]), vec![1, 0, 2]);
        // A modern box: the iGPU on Vulkan, then on GL, then software.
        assert_eq!(rank(&[(Gl, IntegratedGpu, false), (Vulkan, Cpu, false), (Vulkan, IntegratedGpu, false)]), vec![2, 0, 1]);
        // No GPU: lavapipe, then llvmpipe; an experimental lavapipe last.
        assert_eq!(rank(&[(Gl, Cpu, false), (Vulkan, Cpu, false)]), vec![1, 0]);
        assert_eq!(rank(&[(Vulkan, Cpu, true), (Gl, Cpu, false)]), vec![1, 0]);
        // A discrete card before the integrated one, on the same API.
        assert_eq!(rank(&[(Vulkan, IntegratedGpu, false), (Vulkan, DiscreteGpu, false)]), vec![1, 0]);
        // Equal adapters keep wgpu's order; other backends are never tried.
        assert_eq!(rank(&[(Vulkan, Cpu, false), (Backend::Noop, DiscreteGpu, false), (Vulkan, Cpu, false)]), vec![0, 2]);
        assert!(rank(&[]).is_empty());
    }

    #[test]
    fn lavapipe_before_mesa_21_1_is_experimental() {
        let lavapipe = |driver_info: &str| wgpu::AdapterInfo {
            name: "llvmpipe (LLVM 11.0.1, 256 bits)".into(),
            vendor: 0x10005,
            device: 0,
            device_type: DeviceType::Cpu,
            device_pci_bus_id: String::new(),
            driver: "llvmpipe".into(),
            driver_info: driver_info.into(),
            backend: Backend::Vulkan,
            subgroup_min_size: 8,
            subgroup_max_size: 8,
            transient_saves_memory: false,
        };
        assert!(experimental(&lavapipe("Mesa 20.3.5 (LLVM 11.0.1)")), "Debian 11");
        assert!(!experimental(&lavapipe("Mesa 22.3.6 (LLVM 15.0.6)")), "Debian 12");
        assert!(!experimental(&lavapipe("Mesa 21.1.0")));
        assert!(!experimental(&lavapipe("")), "no version: trusted");
        let gl = wgpu::AdapterInfo { backend: Backend::Gl, ..lavapipe("Mesa 20.3.5") };
        assert!(!experimental(&gl), "llvmpipe on GL is not lavapipe");
    }
}
