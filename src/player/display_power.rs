//! Display power: outside screen-on hours the display is asked to power
//! off, and a takeover warning wakes it.
//!
//! A black screen still lights its backlight all night; a village hall's
//! display asleep from 22:00 to 07:00 saves most of its power and its panel
//! life. The session decides what can be asked:
//! - **X11**: DPMS (the X server's display power extension). The player also
//!   turns off the X screen saver and the server's own DPMS timeouts, so the
//!   screen never blanks by itself during screen-on hours.
//! - **Wayland**: the compositor's output power control
//!   (`zwlr_output_power_manager_v1`), where it offers one. cage 0.1.4
//!   (Debian 12) does not (cage-kiosk/cage#245); there the screen stays on
//!   and black outside its hours, and `estation status` says so.
//!
//! The session is talked to on a thread of its own, never from the frame
//! loop: a request to a busy or gone server must not hold a frame up. The
//! thread also looks again every minute, so a mouse moved at night (which
//! wakes a DPMS display) does not leave it lit until morning.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::time::Duration;

use bevy::prelude::*;

use super::alerts::Warning;
use super::hours::Hours;
use super::now::TrustedClock;
use super::power::{LoopWaker, Waker};
use super::worker::Worker;
use super::{Phase, Settings};

/// How often the thread checks that the display is as asked.
const RECHECK: Duration = Duration::from_secs(60);

/// The display's power, asked or found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Power {
    On,
    Off,
}

impl Power {
    fn word(self) -> &'static str {
        match self {
            Power::On => "on",
            Power::Off => "off",
        }
    }
}

/// What the display should be: off only outside screen-on hours with no
/// warning on screen, and only where the config lets it sleep.
pub(crate) fn wanted(hours: Hours, warning: Warning, sleep: bool) -> Power {
    match (hours, warning) {
        (Hours::Dark, Warning::None) if sleep => Power::Off,
        _ => Power::On,
    }
}

/// Why the display could not be switched.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("no display session (neither WAYLAND_DISPLAY nor DISPLAY is set)")]
    NoSession,
    #[error("cannot connect to the X server: {0}")]
    X11Connect(#[from] x11rb::errors::ConnectError),
    #[error("X server: {0}")]
    X11(#[from] x11rb::errors::ConnectionError),
    #[error("X server: {0}")]
    X11Reply(#[from] x11rb::errors::ReplyError),
    #[error("the X server has no DPMS extension")]
    NoDpms,
    #[error("cannot connect to the Wayland compositor: {0}")]
    WaylandConnect(#[from] wayland_client::ConnectError),
    #[error("Wayland compositor: {0}")]
    Wayland(String),
    #[error("the compositor offers no output power control (wlr-output-power-management); cage 0.1.4 has none")]
    NoOutputPower,
    #[error("the compositor refused to switch an output")]
    Refused,
}

/// A display session's power switch.
trait Switch: Send {
    /// `X11 DPMS` or `Wayland output power`.
    fn name(&self) -> &'static str;
    fn get(&mut self) -> Result<Power, Error>;
    fn set(&mut self, power: Power) -> Result<(), Error>;
}

/// The switch of the session the player's window is in.
fn open() -> Result<Box<dyn Switch>, Error> {
    match session() {
        Some(Kind::Wayland) => Ok(Box::new(wayland::OutputPower::open()?)),
        Some(Kind::X11) => Ok(Box::new(x11::Dpms::open()?)),
        None => Err(Error::NoSession),
    }
}

enum Kind {
    Wayland,
    X11,
}

/// The session winit opens the window in: Wayland when it is there
/// (`WAYLAND_DISPLAY` or `WAYLAND_SOCKET` set), X11 otherwise.
fn session() -> Option<Kind> {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    if set("WAYLAND_DISPLAY") || set("WAYLAND_SOCKET") {
        Some(Kind::Wayland)
    } else if set("DISPLAY") {
        Some(Kind::X11)
    } else {
        None
    }
}

/// Whether this shell's display session can switch the display, with no
/// change to it (for `estation doctor`): the switch's name, or why not.
pub(crate) fn probe() -> Result<&'static str, Error> {
    match session() {
        Some(Kind::Wayland) => wayland::probe(),
        Some(Kind::X11) => x11::probe(),
        None => Err(Error::NoSession),
    }
}

mod x11 {
    use x11rb::connection::RequestConnection as _;
    use x11rb::protocol::dpms::{self, ConnectionExt as _, DPMSMode};
    use x11rb::protocol::xproto::{Blanking, ConnectionExt as _, Exposures};
    use x11rb::rust_connection::RustConnection;

    use super::{Error, Power, Switch};

    pub(super) struct Dpms(RustConnection);

    /// Fails with `NoDpms` where the server has no (capable) DPMS.
    fn dpms_capable(conn: &RustConnection) -> Result<(), Error> {
        if conn.extension_information(dpms::X11_EXTENSION_NAME)?.is_none() || !conn.dpms_capable()?.reply()?.capable {
            return Err(Error::NoDpms);
        }
        Ok(())
    }

    /// Whether `$DISPLAY` has DPMS, changing nothing.
    pub(super) fn probe() -> Result<&'static str, Error> {
        let (conn, _) = x11rb::connect(None)?;
        dpms_capable(&conn)?;
        Ok("X11 DPMS")
    }

    impl Dpms {
        /// Connects to `$DISPLAY`, turns the screen saver off, and enables
        /// DPMS with no timeouts of its own: only the player switches the
        /// display. Screen-saver and DPMS settings are the server's, so they
        /// hold for the session even where DPMS is missing (then `NoDpms`).
        pub(super) fn open() -> Result<Dpms, Error> {
            let (conn, _) = x11rb::connect(None)?;
            conn.set_screen_saver(0, 0, Blanking::DEFAULT, Exposures::DEFAULT)?.check()?;
            dpms_capable(&conn)?;
            conn.dpms_set_timeouts(0, 0, 0)?.check()?;
            conn.dpms_enable()?.check()?;
            Ok(Dpms(conn))
        }
    }

    impl Switch for Dpms {
        fn name(&self) -> &'static str {
            "X11 DPMS"
        }

        fn get(&mut self) -> Result<Power, Error> {
            let info = self.0.dpms_info()?.reply()?;
            Ok(if info.power_level == DPMSMode::ON { Power::On } else { Power::Off })
        }

        fn set(&mut self, power: Power) -> Result<(), Error> {
            // Force-level needs DPMS enabled; someone (`xset -dpms`) may
            // have turned it off since.
            self.0.dpms_enable()?.check()?;
            let level = match power {
                Power::On => DPMSMode::ON,
                Power::Off => DPMSMode::OFF,
            };
            self.0.dpms_force_level(level)?.check()?;
            Ok(())
        }
    }
}

mod wayland {
    use wayland_client::globals::{registry_queue_init, GlobalListContents};
    use wayland_client::protocol::wl_output::WlOutput;
    use wayland_client::protocol::wl_registry::WlRegistry;
    use wayland_client::{delegate_noop, Connection, Dispatch, EventQueue, Proxy, QueueHandle, WEnum};
    use wayland_protocols_wlr::output_power_management::v1::client::zwlr_output_power_manager_v1::ZwlrOutputPowerManagerV1;
    use wayland_protocols_wlr::output_power_management::v1::client::zwlr_output_power_v1::{self, ZwlrOutputPowerV1};

    use super::{Error, Power, Switch};

    /// Each output's mode as the compositor last said it.
    #[derive(Default)]
    struct Seen {
        modes: Vec<Option<zwlr_output_power_v1::Mode>>,
        failed: bool,
    }

    impl Dispatch<WlRegistry, GlobalListContents> for Seen {
        fn event(_: &mut Seen, _: &WlRegistry, _: <WlRegistry as Proxy>::Event, _: &GlobalListContents, _: &Connection, _: &QueueHandle<Seen>) {}
    }
    delegate_noop!(Seen: ignore WlOutput);
    delegate_noop!(Seen: ZwlrOutputPowerManagerV1);

    impl Dispatch<ZwlrOutputPowerV1, usize> for Seen {
        fn event(seen: &mut Seen, _: &ZwlrOutputPowerV1, event: zwlr_output_power_v1::Event, i: &usize, _: &Connection, _: &QueueHandle<Seen>) {
            match event {
                zwlr_output_power_v1::Event::Mode { mode: WEnum::Value(m) } => {
                    if let Some(slot) = seen.modes.get_mut(*i) {
                        *slot = Some(m);
                    }
                }
                // The output went away or another client controls it; the
                // thread opens the switch afresh.
                zwlr_output_power_v1::Event::Failed => seen.failed = true,
                _ => {}
            }
        }
    }

    /// Every output of the compositor, switched together.
    pub(super) struct OutputPower {
        // Kept: the objects live as long as the connection.
        _conn: Connection,
        queue: EventQueue<Seen>,
        seen: Seen,
        outputs: Vec<ZwlrOutputPowerV1>,
    }

    fn wayland(e: impl std::fmt::Display) -> Error {
        Error::Wayland(e.to_string())
    }

    /// Whether the compositor offers output power control, changing nothing.
    pub(super) fn probe() -> Result<&'static str, Error> {
        let conn = Connection::connect_to_env()?;
        let (globals, _queue) = registry_queue_init::<Seen>(&conn).map_err(wayland)?;
        let offered = globals.contents().with_list(|list| list.iter().any(|g| g.interface == ZwlrOutputPowerManagerV1::interface().name));
        if offered { Ok("Wayland output power") } else { Err(Error::NoOutputPower) }
    }

    impl OutputPower {
        pub(super) fn open() -> Result<OutputPower, Error> {
            let conn = Connection::connect_to_env()?;
            let (globals, mut queue) = registry_queue_init::<Seen>(&conn).map_err(wayland)?;
            let qh = queue.handle();
            let manager: ZwlrOutputPowerManagerV1 = globals.bind(&qh, 1..=1, ()).map_err(|_| Error::NoOutputPower)?;
            let outputs: Vec<WlOutput> = globals.contents().with_list(|list| {
                list.iter()
                    .filter(|g| g.interface == WlOutput::interface().name)
                    .map(|g| globals.registry().bind::<WlOutput, _, _>(g.name, 1, &qh, ()))
                    .collect()
            });
            if outputs.is_empty() {
                return Err(Error::Wayland("the compositor has no outputs".into()));
            }
            let outputs: Vec<ZwlrOutputPowerV1> = outputs.iter().enumerate().map(|(i, o)| manager.get_output_power(o, &qh, i)).collect();
            let mut seen = Seen { modes: vec![None; outputs.len()], failed: false };
            queue.roundtrip(&mut seen).map_err(wayland)?;
            Ok(OutputPower { _conn: conn, queue, seen, outputs })
        }
    }

    impl Switch for OutputPower {
        fn name(&self) -> &'static str {
            "Wayland output power"
        }

        fn get(&mut self) -> Result<Power, Error> {
            self.queue.roundtrip(&mut self.seen).map_err(wayland)?;
            if self.seen.failed {
                return Err(Error::Refused);
            }
            // On while any output is lit: that one still shows a picture.
            let lit = self.seen.modes.iter().any(|m| *m != Some(zwlr_output_power_v1::Mode::Off));
            Ok(if lit { Power::On } else { Power::Off })
        }

        fn set(&mut self, power: Power) -> Result<(), Error> {
            let mode = match power {
                Power::On => zwlr_output_power_v1::Mode::On,
                Power::Off => zwlr_output_power_v1::Mode::Off,
            };
            for o in &self.outputs {
                o.set_mode(mode);
            }
            self.queue.roundtrip(&mut self.seen).map_err(wayland)?;
            if self.seen.failed { Err(Error::Refused) } else { Ok(()) }
        }
    }
}

const KEPT: &str = "kept on outside screen-on hours (display.sleep = false)";

/// Makes the display what is wanted (opening the session's switch if it is
/// not open) and says what it is now, in words for the log and `estation
/// status`. A switch that fails is dropped, to be opened afresh next time.
fn check(switch: &mut Option<Box<dyn Switch>>, want: Power, sleep: bool) -> String {
    let s = match switch.take().map_or_else(open, Ok) {
        Ok(s) => switch.insert(s),
        Err(e) if sleep => return format!("stays on, black outside screen-on hours: {e}"),
        Err(_) => return KEPT.to_string(),
    };
    let name = s.name();
    let now = s.get().and_then(|p| if p == want { Ok(p) } else { s.set(want).and_then(|()| s.get()) });
    match now {
        Ok(p) if p != want => format!("{} ({name}): asked {}, the session left it {}", p.word(), want.word(), p.word()),
        Ok(Power::On) if !sleep => format!("on ({name}); {KEPT}"),
        Ok(Power::On) => format!("on ({name})"),
        Ok(Power::Off) => format!("off outside screen-on hours ({name})"),
        Err(e) => {
            *switch = None;
            format!("cannot switch ({name}): {e}")
        }
    }
}

/// The thread: follows what the app asks, looks again every [`RECHECK`],
/// and says what the display is whenever that changes. It touches nothing
/// before the first request: a player restarted at night must not light
/// the display for the moment before it knows the hours.
fn run(asked: &Receiver<Power>, say: &Sender<String>, wake: &Waker, sleep: bool) {
    let Ok(mut want) = asked.recv() else { return };
    let mut switch = None;
    let mut last_said = String::new();
    loop {
        let state = check(&mut switch, want, sleep);
        if state != last_said {
            if say.send(state.clone()).is_err() {
                return;
            }
            wake();
            last_said = state;
        }
        match asked.recv_timeout(RECHECK) {
            // Only the newest request counts.
            Ok(p) => want = asked.try_iter().last().unwrap_or(p),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// The way to the thread.
#[derive(Resource)]
struct Link {
    ask: Sender<Power>,
    // `Receiver` is `Send` but not `Sync`.
    said: Mutex<Receiver<String>>,
    asked: Option<Power>,
}

pub(super) fn plugin(app: &mut App) {
    // Screen hours are known once the trusted clock is.
    app.add_systems(Startup, start).add_systems(Update, (follow.run_if(TrustedClock::loaded), report).in_set(Phase::Observe));
}

fn start(mut commands: Commands, settings: Res<Settings>, waker: Res<LoopWaker>) {
    let (ask, asked) = mpsc::channel();
    let (say, said) = mpsc::channel();
    let wake = waker.0.clone();
    let sleep = settings.config.display_sleep;
    match std::thread::Builder::new().name("display-power".into()).spawn(move || run(&asked, &say, &wake, sleep)) {
        Ok(_) => {
            commands.insert_resource(Link { ask, said: Mutex::new(said), asked: None });
        }
        Err(e) => error!("display: cannot start the display power thread: {e}; the display stays as it is"),
    }
}

fn follow(hours: Res<State<Hours>>, warning: Res<State<Warning>>, settings: Res<Settings>, link: Option<ResMut<Link>>) {
    let Some(mut link) = link else { return };
    let want = wanted(*hours.get(), *warning.get(), settings.config.display_sleep);
    if link.asked != Some(want) {
        link.asked = Some(want);
        let _ = link.ask.send(want);
    }
}

fn report(link: Option<Res<Link>>, worker: Option<Res<Worker>>) {
    let Some(link) = link else { return };
    let Ok(said) = link.said.lock() else { return };
    for s in said.try_iter() {
        info!("display: {s}");
        if let Some(w) = &worker {
            w.display_power(Some(s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A display that follows what it is told, or not, or fails.
    struct Panel {
        power: Power,
        follows: bool,
        broken: bool,
    }

    impl Switch for Panel {
        fn name(&self) -> &'static str {
            "panel"
        }
        fn get(&mut self) -> Result<Power, Error> {
            if self.broken { Err(Error::Refused) } else { Ok(self.power) }
        }
        fn set(&mut self, power: Power) -> Result<(), Error> {
            if self.follows {
                self.power = power;
            }
            Ok(())
        }
    }

    fn panel(follows: bool, broken: bool) -> Option<Box<dyn Switch>> {
        Some(Box::new(Panel { power: Power::On, follows, broken }))
    }

    #[test]
    fn the_thread_says_what_the_display_is_and_whether_it_followed() {
        let mut s = panel(true, false);
        assert_eq!(check(&mut s, Power::Off, true), "off outside screen-on hours (panel)");
        assert_eq!(check(&mut s, Power::On, true), "on (panel)");
        let mut stubborn = panel(false, false);
        assert_eq!(check(&mut stubborn, Power::Off, true), "on (panel): asked off, the session left it on");
        assert_eq!(check(&mut panel(true, false), Power::On, false), format!("on (panel); {KEPT}"));
        let mut broken = panel(true, true);
        assert_eq!(check(&mut broken, Power::Off, true), "cannot switch (panel): the compositor refused to switch an output");
        assert!(broken.is_none(), "a failed switch is opened afresh next time");
    }

    #[test]
    fn the_display_sleeps_only_outside_its_hours_with_no_warning_and_when_allowed() {
        assert_eq!(wanted(Hours::Dark, Warning::None, true), Power::Off);
        assert_eq!(wanted(Hours::Dark, Warning::Takeover, true), Power::On, "a warning wakes it");
        assert_eq!(wanted(Hours::On, Warning::None, true), Power::On);
        assert_eq!(wanted(Hours::On, Warning::Takeover, true), Power::On);
        assert_eq!(wanted(Hours::Dark, Warning::None, false), Power::On, "display.sleep = false");
    }
}
