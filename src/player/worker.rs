//! I/O off the frame loop: one thread loads the programme (parsing every
//! playlist, probing every picture, checking the feed's signature), the
//! alert store and the trusted time when their files change, and writes
//! `player.json`; the frame loop only polls its results.
//!
//! The thread looks at the files once a second (a `stat` each, and the
//! feed's current version), loads what changed and wakes the frame loop, so
//! a new warning or feed version costs no frames until it is there. Its
//! results reach the other plugins as messages (declared here, where they
//! are sent); a plugin asks for work through [`Worker`].

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use bevy::prelude::*;

use super::power::{LoopWaker, Waker};
use super::{Phase, Settings};
use crate::core::alert::Store;
use crate::core::playlist::Library;
use crate::core::trusted_time::Record;
use crate::store::content::{ContentSource, Origin};
use crate::store::status::PlayerStatus;

/// How often the thread looks at the files.
const CHECK: Duration = Duration::from_secs(1);
/// How often it looks at the alert store: a warning is on screen this much
/// sooner (a stat of one file: nothing is read until it changed).
const STORE_CHECK: Duration = Duration::from_millis(200);
/// How long to wait before loading a feed version again that did not load
/// (the cache names a version whose playlists cannot be used).
const RELOAD_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// A programme was loaded: the first one at start, then each new feed
/// version.
#[derive(Message)]
pub(crate) struct ProgrammeLoaded {
    pub library: Library,
    pub origin: Origin,
}

/// The alert store (`CACHE/alerts.json`) as sync last wrote it.
#[derive(Message)]
pub(crate) struct StoreLoaded(pub Store);

/// The trusted-time record as sync last wrote it (sent first, at start,
/// also when there is none).
#[derive(Message)]
pub(crate) struct ClockLoaded(pub Option<Record>);

/// The central service asked for a screenshot (`screenshots/asked`).
#[derive(Message)]
pub(crate) struct ScreenshotAsked;

/// What the worker thread found.
enum Done {
    Programme(Library, Origin),
    Store(Store),
    Clock(Option<Record>),
    ScreenshotAsked,
    /// A signed command asked for a restart (`store::requests`).
    RestartAsked,
    /// A signed command asked for the status overlay: its lines.
    OverlayAsked(Vec<String>),
}

/// What a plugin asks of the worker thread.
enum Job {
    /// What is on screen (its `sound` is filled in here).
    SaveStatus(PathBuf, Box<PlayerStatus>),
    Warnings(Vec<String>),
    /// The sound output's state changed.
    SoundOutput(Option<String>),
    /// The display's power changed.
    DisplayPower(Option<String>),
    /// Intervals for the proof-of-play log; the sender hears when they
    /// are on disk.
    Proof(Vec<crate::core::proof::Entry>, Option<mpsc::Sender<()>>),
    /// A frame for the central service, captured at the time given.
    Screenshot(Box<Image>, chrono::DateTime<chrono::Utc>),
}

/// The way to the worker thread. Absent until it started.
#[derive(Resource)]
pub(crate) struct Worker {
    jobs: Sender<Job>,
    // `Receiver` is `Send` but not `Sync`; only `drain` takes it.
    done: Mutex<Receiver<Done>>,
}

impl Worker {
    /// Writes `player.json` for `estation status`. A failure is logged at
    /// debug level: the screen matters more than the report.
    pub fn save_status(&self, path: PathBuf, status: PlayerStatus) {
        let _ = self.jobs.send(Job::SaveStatus(path, Box::new(status)));
    }

    /// The sound output's state in words, for `player.json` (written again
    /// at once when something is on screen).
    pub fn sound_output(&self, state: Option<String>) {
        let _ = self.jobs.send(Job::SoundOutput(state));
    }

    /// The display's power in words, likewise.
    pub fn display_power(&self, state: Option<String>) {
        let _ = self.jobs.send(Job::DisplayPower(state));
    }

    /// The warnings on screen, likewise (for the heartbeat).
    pub fn warnings(&self, keys: Vec<String>) {
        let _ = self.jobs.send(Job::Warnings(keys));
    }

    /// Cuts a captured frame down, encodes it as JPEG and saves it for the
    /// heartbeat to upload (`screenshots/`).
    pub fn screenshot(&self, frame: Image, taken: chrono::DateTime<chrono::Utc>) {
        let _ = self.jobs.send(Job::Screenshot(Box::new(frame), taken));
    }

    /// Appends intervals to the proof-of-play log; `wait`: until they are
    /// on disk (the player is stopping), for a few seconds at most.
    pub fn proof(&self, entries: Vec<crate::core::proof::Entry>, wait: bool) {
        let (tx, rx) = mpsc::channel();
        if self.jobs.send(Job::Proof(entries, wait.then_some(tx))).is_ok() && wait {
            let _ = rx.recv_timeout(Duration::from_secs(3));
        }
    }
}

/// Where the files the worker watches are.
pub(crate) struct Files {
    pub source: ContentSource,
    /// `CACHE/alerts.json`, when there is a cache folder.
    pub store: Option<PathBuf>,
    /// `CACHE/trusted-time.json`, likewise.
    pub clock: Option<PathBuf>,
    /// How often to look at them.
    pub check: Duration,
    /// How often to look at the alert store, more often than the rest.
    pub store_check: Duration,
    /// The GPU adapter in use, reported in `player.json`.
    pub renderer: Option<crate::store::status::RendererReport>,
    /// The proof-of-play log's folder, beside the cache.
    pub proof: Option<PathBuf>,
    /// The screenshots' folder, beside the cache.
    pub screenshots: Option<PathBuf>,
    /// The cache folder, beside which the requests of signed commands
    /// (`store::requests`) and the sync's and push's status are.
    pub cache: Option<PathBuf>,
}

impl Files {
    pub fn of(settings: &Settings) -> Files {
        let cache = settings.config.cache.dir();
        Files {
            source: settings.source.clone(),
            store: cache.as_deref().map(|d| crate::store::inbox::Inbox::new(d).path()),
            proof: cache.as_deref().map(crate::store::proof::dir_for),
            screenshots: cache.as_deref().map(crate::store::screenshot::dir_for),
            cache: cache.clone(),
            clock: cache.map(|d| d.join(crate::core::trusted_time::FILE)),
            check: CHECK,
            store_check: STORE_CHECK,
            renderer: None,
        }
    }
}

pub(super) fn plugin(app: &mut App) {
    app.add_message::<ProgrammeLoaded>()
        .add_message::<StoreLoaded>()
        .add_message::<ClockLoaded>()
        .add_message::<ScreenshotAsked>()
        .add_systems(PreStartup, start)
        .add_systems(PreUpdate, drain.in_set(Phase::Receive));
}

fn start(
    mut commands: Commands,
    settings: Res<Settings>,
    waker: Res<LoopWaker>,
    renderer: Option<Res<super::renderer::InUse>>,
    started: Option<Res<Worker>>,
) {
    // A test may have started one on its own files.
    if started.is_some() {
        return;
    }
    let files = Files { renderer: renderer.map(|r| r.0.clone()), ..Files::of(&settings) };
    match spawn(files, waker.0.clone()) {
        Ok(worker) => {
            commands.insert_resource(worker);
        }
        Err(e) => error!("player: cannot start the file worker: {e}; nothing will be loaded"),
    }
}

/// Starts the worker thread on `files`; `wake` wakes the frame loop when a
/// result is waiting.
pub(crate) fn spawn(files: Files, wake: Waker) -> std::io::Result<Worker> {
    let (jobs, job_rx) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    std::thread::Builder::new().name("player-io".into()).spawn(move || run(files, &job_rx, &done_tx, &wake))?;
    Ok(Worker { jobs, done: Mutex::new(done) })
}

/// The modification time of a file, `None` when it is missing.
fn stamp(path: &Option<PathBuf>) -> Option<SystemTime> {
    path.as_ref().and_then(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
}

fn run(files: Files, jobs: &Receiver<Job>, done: &Sender<Done>, wake: &Waker) {
    let send = |d: Done| done.send(d).is_ok();
    // At start: the clock first (screen hours need it), then the warnings,
    // and the programme last, so nothing plays before a takeover is known.
    let mut clock_stamp = stamp(&files.clock);
    let mut store_stamp = stamp(&files.store);
    let mut ok = send(Done::Clock(load_clock(&files.clock)));
    if let Some(store) = files.store.as_ref().and_then(|p| load_store(p)) {
        ok &= send(Done::Store(store));
    }
    let (library, mut origin) = load_programme(&files.source);
    ok &= send(Done::Programme(library, origin.clone()));
    wake();
    let mut next_check = Instant::now() + files.check;
    let mut next_store = Instant::now() + files.store_check;
    let mut programme_after = Instant::now();
    let mut status: Option<(PathBuf, PlayerStatus)> = None;
    let mut sound = None;
    let mut display = None;
    let mut warnings = Vec::new();
    let mut proof = ProofLog::new(files.proof.clone());
    // A request already there at start is answered by the first frame.
    let mut asked_stamp = None;
    let started = std::time::SystemTime::now();
    while ok {
        match jobs.recv_timeout(next_check.min(next_store).saturating_duration_since(Instant::now())) {
            Ok(Job::Proof(entries, written)) => {
                proof.append(entries);
                if let Some(tx) = written {
                    let _ = tx.send(());
                }
                continue;
            }
            Ok(Job::Screenshot(frame, taken)) => {
                if let Some(dir) = &files.screenshots {
                    save_screenshot(dir, &frame, taken);
                }
                asked_stamp = files.screenshots.as_deref().and_then(crate::store::screenshot::asked);
                continue;
            }
            Ok(job) => {
                match job {
                    Job::SaveStatus(path, s) => status = Some((path, *s)),
                    Job::SoundOutput(s) => sound = s,
                    Job::DisplayPower(s) => display = s,
                    Job::Warnings(w) => warnings = w,
                    Job::Proof(..) | Job::Screenshot(..) => {}
                }
                if let Some((path, s)) = status.as_mut() {
                    s.sound.clone_from(&sound);
                    s.display.clone_from(&display);
                    s.warnings.clone_from(&warnings);
                    s.renderer.clone_from(&files.renderer);
                    if let Err(e) = s.save(path) {
                        debug!("{}: {e}", path.display());
                    }
                }
                if Instant::now() < next_check.min(next_store) {
                    continue;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            // The app is gone.
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        next_store = now + files.store_check;
        if now < next_check {
            // Only the alert store is due.
            if let Some(store) = changed_store(&files.store, &mut store_stamp) {
                ok &= send(Done::Store(store));
                wake();
            }
            continue;
        }
        next_check = now + files.check;
        let mut any = false;
        // Sync rewrites these by rename, so their times move with every change.
        let s = stamp(&files.clock);
        if s != clock_stamp {
            clock_stamp = s;
            ok &= send(Done::Clock(load_clock(&files.clock)));
            any = true;
        }
        if let Some(store) = changed_store(&files.store, &mut store_stamp) {
            ok &= send(Done::Store(store));
            any = true;
        }
        if Instant::now() >= programme_after && files.source.changed(&origin) {
            let (library, fresh) = load_programme(&files.source);
            origin = fresh;
            if files.source.changed(&origin) {
                programme_after = Instant::now() + RELOAD_AFTER_FAILURE;
            }
            ok &= send(Done::Programme(library, origin.clone()));
            any = true;
            // A load takes a while (every playlist parsed, every picture
            // probed), and sync writes a new version's warnings just after
            // the version: look at the store again at once, not a check later.
            if let Some(store) = changed_store(&files.store, &mut store_stamp) {
                ok &= send(Done::Store(store));
            }
        }
        let asked = files.screenshots.as_deref().and_then(crate::store::screenshot::asked);
        if asked.is_some() && asked != asked_stamp {
            asked_stamp = asked;
            ok &= send(Done::ScreenshotAsked);
            any = true;
        }
        if let Some(cache) = &files.cache {
            use crate::store::requests::{take, Request};
            if take(&Request::Restart.path(cache), started) {
                ok &= send(Done::RestartAsked);
                any = true;
            }
            if take(&Request::Overlay.path(cache), started) {
                ok &= send(Done::OverlayAsked(overlay_lines(cache, status.as_ref().map(|(_, s)| s))));
                any = true;
            }
        }
        if any {
            wake();
        }
    }
}

/// Saves a frame as the newest screenshot; a failure is logged (the
/// service then sees an old screenshot's age).
fn save_screenshot(dir: &std::path::Path, frame: &Image, taken: chrono::DateTime<chrono::Utc>) {
    let saved = frame
        .clone()
        .try_into_dynamic()
        .map_err(|e| crate::store::screenshot::ShotError::Frame(e.to_string()))
        .and_then(|frame| crate::store::screenshot::encode(&frame))
        .and_then(|jpeg| crate::store::screenshot::save(dir, &jpeg, taken));
    match saved {
        Ok(path) => debug!("screenshot for the central service: {}", path.display()),
        Err(e) => warn!("{e}"),
    }
}

/// The proof-of-play log, opened at the first record; a log that cannot be
/// opened is reported once and tried again at the next record after a minute.
struct ProofLog {
    dir: Option<PathBuf>,
    log: Option<crate::store::proof::Log>,
    retry: Option<Instant>,
}

impl ProofLog {
    fn new(dir: Option<PathBuf>) -> ProofLog {
        ProofLog { dir, log: None, retry: None }
    }

    fn append(&mut self, entries: Vec<crate::core::proof::Entry>) {
        let Some(dir) = &self.dir else { return };
        if self.log.is_none() && self.retry.is_none_or(|t| Instant::now() >= t) {
            match crate::store::proof::Log::open(dir) {
                Ok(log) => self.log = Some(log),
                Err(e) => {
                    if self.retry.is_none() {
                        error!("proof of play: {e}; nothing is recorded until it can be opened");
                    }
                    self.retry = Some(Instant::now() + RELOAD_AFTER_FAILURE);
                }
            }
        }
        let Some(log) = &mut self.log else { return };
        for e in entries {
            if let Err(err) = log.append(e) {
                error!("proof of play: {err}");
                // Opened afresh at the next record (a torn tail is cut then).
                self.log = None;
                self.retry = Some(Instant::now());
                return;
            }
        }
    }
}

fn load_clock(path: &Option<PathBuf>) -> Option<Record> {
    let record = path.as_ref()?.parent().and_then(|dir| crate::store::cache::Cache::at(dir).trusted_time());
    if let Some(why) = crate::core::trusted_time::disagreement(record.as_ref(), chrono::Duration::minutes(5)) {
        warn!("clock: {why}");
    }
    record
}

/// The store, or `None` when it cannot be read: sync rewrites the file
/// atomically, so that is a damaged file, and what was read before stays.
/// The alert store, when its file changed since `seen` (which it updates).
fn changed_store(path: &Option<PathBuf>, seen: &mut Option<SystemTime>) -> Option<Store> {
    let s = stamp(path);
    if s == *seen {
        return None;
    }
    *seen = s;
    path.as_ref().and_then(|p| load_store(p))
}

fn load_store(path: &std::path::Path) -> Option<Store> {
    match crate::store::inbox::load(path) {
        Ok(s) => {
            info!("alerts: {} message(s) in the store", s.entries().len());
            Some(s)
        }
        Err(e) => {
            error!("alerts: {e}");
            None
        }
    }
}

/// Loads the programme, logging its problems.
fn load_programme(source: &ContentSource) -> (Library, Origin) {
    let (library, origin) = source.load();
    for p in &library.problems {
        warn!("playlist: {p}");
    }
    info!(
        "loaded {} playlist(s) with {} item(s) from {origin}",
        library.playlists.len(),
        library.playlists.iter().map(|p| p.items.len()).sum::<usize>(),
    );
    (library, origin)
}

/// The status overlay's lines, from what sync, push and the player last
/// wrote (read here, off the frame loop).
fn overlay_lines(cache: &Path, player: Option<&PlayerStatus>) -> Vec<String> {
    let sync = crate::store::status::SyncStatus::load(&crate::store::cache::Cache::at(cache).status_path());
    let push = crate::store::status::PushStatus::load(&crate::store::status::PushStatus::path(cache));
    crate::store::status::overlay_lines(player, &sync, push.as_ref())
}

/// Hands what the thread found to the plugins, as messages.
pub(super) fn drain(
    worker: Option<Res<Worker>>,
    mut programme: MessageWriter<ProgrammeLoaded>,
    mut store: MessageWriter<StoreLoaded>,
    mut clock: MessageWriter<ClockLoaded>,
    mut asked: MessageWriter<ScreenshotAsked>,
    mut exit: MessageWriter<AppExit>,
    mut overlay: MessageWriter<super::overlay::ShowOverlay>,
) {
    let Some(worker) = worker else { return };
    let Ok(rx) = worker.done.lock() else { return };
    for done in rx.try_iter() {
        match done {
            Done::Programme(library, origin) => {
                programme.write(ProgrammeLoaded { library, origin });
            }
            Done::Store(s) => {
                store.write(StoreLoaded(s));
            }
            Done::Clock(r) => {
                clock.write(ClockLoaded(r));
            }
            Done::ScreenshotAsked => {
                asked.write(ScreenshotAsked);
            }
            Done::OverlayAsked(lines) => {
                overlay.write(super::overlay::ShowOverlay(lines));
            }
            Done::RestartAsked => {
                info!("restarting: a signed command asked for it (the kiosk unit starts the player again)");
                exit.write(AppExit::Success);
            }
        }
    }
}
