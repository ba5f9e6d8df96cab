//! The rotation on screen as a state machine: what to prepare, when to show
//! it, when to pause, apart from any window, decoder or clock.
//!
//! The player feeds it events (the item on screen stopped, a preparation
//! finished or failed, a warning took the screen or left it, the screen went
//! dark) and a tick each frame, and executes the [`Command`]s it returns;
//! the decoding and drawing stay in the shell. The rules it owns:
//!
//! - The next item is prepared [`timing::PREPARE_AHEAD`] before the current
//!   one ends, and shown once that one is over, so there is never a black
//!   frame between items.
//! - An item that cannot be prepared, or whose clip fails on screen, is
//!   skipped from then on (logged once) until the programme is reloaded.
//! - One still item (or the idle screen) following itself is kept on
//!   screen, not drawn again.
//! - A new programme takes over at an item boundary; slots (playlist and
//!   item indexes) of the old one mean nothing in it, so the generation
//!   counter tells them apart.
//! - Under a takeover the item on screen keeps its remaining time, and the
//!   rotation goes on from there when the takeover ends.

use std::collections::HashSet;
use std::fmt;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::core::media::timing::{self, Measured};
use crate::core::playlist::schedule::{Nominal, Scheduler, Slot, Usable};
use crate::core::playlist::{Item, ItemKind, Length, Library, Playlist};

/// How often the idle screen asks the schedule again.
pub const IDLE_RECHECK: Duration = Duration::from_secs(5);
/// How often the shell polls a preparation in progress.
pub const POLL: Duration = Duration::from_millis(40);

/// What goes on screen next: an item of the programme, or the idle screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Item(Slot),
    Idle,
}

impl Next {
    /// The same item (or both idle), whatever its start and end.
    fn same_content(&self, other: &Next) -> bool {
        match (self, other) {
            (Next::Idle, Next::Idle) => true,
            (Next::Item(x), Next::Item(y)) => x.playlist == y.playlist && x.item == y.item,
            _ => false,
        }
    }
}

/// What the rotation has on screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnScreen {
    pub next: Next,
    /// When it is over (later while a takeover pauses it).
    pub until: Instant,
    /// The programme `next` indexes into.
    pub generation: u64,
}

/// What the shell is to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Prepare `next` off the frame loop (decode its picture, preroll its
    /// clip, measure its media) and report back with
    /// [`Rotation::prepared`] or [`Rotation::not_prepared`].
    Prepare {
        next: Next,
        /// The item, for the worker thread (`None`: the idle screen);
        /// boxed, as it is much larger than the other commands.
        item: Option<Box<Item>>,
        /// Its playlist has a ticker, so the content box leaves it a band.
        band: bool,
    },
    /// Put what was prepared for `next` on screen now, for `length`.
    Show { next: Next, length: Duration },
    /// A takeover took the screen: the item on screen is frozen.
    Pause,
    /// The takeover left after `after`; the item on screen goes on.
    Resume { after: Duration },
}

/// A preparation that failed: the item is skipped from now on. Its
/// `Display` is the line for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// `item `id` (line n) of path`, or `None` for the idle screen.
    pub what: Option<String>,
    pub why: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.what {
            Some(what) => write!(f, "skipping {what}: {}", self.why),
            None => write!(f, "idle screen: {}", self.why),
        }
    }
}

/// What a tick asks of the shell.
#[derive(Debug, Default, PartialEq)]
pub struct Step {
    pub commands: Vec<Command>,
    /// The next frame the rotation needs (`None`: none of its own).
    pub wake: Option<Instant>,
}

impl Step {
    fn wake_at(&mut self, t: Instant) {
        self.wake = Some(self.wake.map_or(t, |w| w.min(t)));
    }
}

/// Items found unplayable, by playlist and item id.
struct NotBad<'a>(&'a HashSet<(String, String)>);
impl Usable for NotBad<'_> {
    fn usable(&self, p: &Playlist, item: &Item) -> bool {
        !self.0.contains(&(p.id.clone(), item.id.clone()))
    }
}

/// The rotation's state. One per screen.
pub struct Rotation {
    library: Library,
    tz: Tz,
    bad: HashSet<(String, String)>,
    /// Counts loads: a slot means something only in the programme it was
    /// taken from.
    generation: u64,
    current: Option<OnScreen>,
    /// A preparation is in progress in the shell.
    preparing: bool,
    /// Prepared and waiting for the current item to end.
    ready: Option<(Next, Duration)>,
    /// When a takeover paused the rotation.
    paused: Option<Instant>,
    dark: bool,
}

impl Rotation {
    /// The rotation of a freshly loaded programme, nothing on screen yet.
    pub fn new(library: Library, tz: Tz) -> Rotation {
        Rotation {
            library,
            tz,
            bad: HashSet::new(),
            generation: 0,
            current: None,
            preparing: false,
            ready: None,
            paused: None,
            dark: false,
        }
    }

    pub fn library(&self) -> &Library {
        &self.library
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn on_screen(&self) -> Option<&OnScreen> {
        self.current.as_ref()
    }

    /// Outside screen-on hours.
    pub fn is_dark(&self) -> bool {
        self.dark
    }

    /// The playlist and item `next` names in the current programme.
    pub fn lookup(&self, next: &Next) -> Option<(&Playlist, &Item)> {
        match next {
            Next::Item(slot) => {
                let p = self.library.playlists.get(slot.playlist)?;
                Some((p, p.items.get(slot.item)?))
            }
            Next::Idle => None,
        }
    }

    /// Whether what is on screen is of the current programme (so
    /// [`Rotation::lookup`] finds it).
    pub fn on_screen_is_current(&self) -> Option<&Next> {
        self.current.as_ref().filter(|c| c.generation == self.generation).map(|c| &c.next)
    }

    /// The screen went dark (`true`) or lit again. Dark drops what is on
    /// screen and anything prepared or in preparation: the shell drops its
    /// part too, and the rotation starts afresh when the screen lights.
    pub fn set_dark(&mut self, dark: bool) {
        self.dark = dark;
        if dark {
            self.current = None;
            self.preparing = false;
            self.ready = None;
        }
    }

    /// The item on screen stopped before its time: its clip ended (an
    /// `auto` clip: the item is over) or failed (`failed`: skipped from now
    /// on). Its last frame stays until the next item is ready.
    pub fn stopped(&mut self, now: Instant, failed: bool) {
        let generation = self.generation;
        let Some(c) = self.current.as_mut() else { return };
        if let (true, Next::Item(slot), true) = (failed, &c.next, c.generation == generation)
            && let Some(p) = self.library.playlists.get(slot.playlist)
            && let Some(item) = p.items.get(slot.item)
        {
            self.bad.insert((p.id.clone(), item.id.clone()));
        }
        c.until = c.until.min(now);
    }

    /// Whether a takeover covers the screen now. Returns whether the
    /// rotation goes on this frame (not under a takeover, not dark), and
    /// the pause or resume it caused.
    pub fn takeover(&mut self, now: Instant, on: bool) -> (bool, Option<Command>) {
        if self.dark {
            return (false, None);
        }
        if on {
            let fresh = self.paused.is_none();
            self.paused.get_or_insert(now);
            return (false, fresh.then_some(Command::Pause));
        }
        let Some(since) = self.paused.take() else { return (true, None) };
        let after = now.saturating_duration_since(since);
        if let Some(c) = self.current.as_mut() {
            c.until += after;
        }
        (true, Some(Command::Resume { after }))
    }

    /// The preparation of `next` finished, with what it measured.
    pub fn prepared(&mut self, next: Next, measured: Measured) {
        self.preparing = false;
        let length = self.lookup(&next).map_or(IDLE_RECHECK, |(_, item)| item.on_screen(measured));
        self.ready = Some((next, length));
    }

    /// The preparation of `next` failed: the item is skipped from now on.
    pub fn not_prepared(&mut self, next: Next, why: String) -> Skipped {
        self.preparing = false;
        let found = self.lookup(&next).map(|(p, item)| {
            let what = format!("item `{}` (line {}) of {}", item.id, item.line, p.source.display());
            (what, (p.id.clone(), item.id.clone()))
        });
        let what = found.map(|(what, key)| {
            self.bad.insert(key);
            what
        });
        Skipped { what, why }
    }

    /// One frame of the rotation: shows what is ready once the current item
    /// is over, and starts preparing the next one ahead of the boundary.
    /// `wall` is the trusted time now; `newer` is asked, at an item boundary
    /// only, for a programme that replaced the current one.
    pub fn tick(&mut self, now: Instant, wall: DateTime<Utc>, newer: impl FnOnce() -> Option<Library>) -> Step {
        let mut step = Step::default();
        if self.dark || self.paused.is_some() {
            return step;
        }
        let due = self.current.as_ref().is_none_or(|c| now >= c.until);
        if due && let Some((next, length)) = self.ready.take() {
            step.commands.push(Command::Show { next: next.clone(), length });
            self.current = Some(OnScreen { next, until: now + length, generation: self.generation });
        }
        if !self.preparing && self.ready.is_none() {
            let start_at = self.current.as_ref().map(|c| timing::prepare_at(c.until));
            if start_at.is_none_or(|t| now >= t) {
                self.choose_next(now, wall, newer, &mut step);
            } else if let Some(t) = start_at {
                step.wake_at(t);
            }
        }
        if self.preparing {
            step.wake_at(now + POLL);
        }
        // Past its end, an item waits for the next one to be prepared: the
        // preparation's poll wakes the loop, not a busy wait here.
        if let Some(c) = self.current.as_ref().filter(|c| c.until > now) {
            step.wake_at(c.until);
        }
        step
    }

    fn choose_next(&mut self, now: Instant, wall: DateTime<Utc>, newer: impl FnOnce() -> Option<Library>, step: &mut Step) {
        // A new programme takes over here, at an item boundary: what is on
        // screen stays until the first item of the new one has been
        // prepared and faded in.
        let fresh = match newer() {
            Some(library) => {
                self.library = library;
                self.bad.clear();
                self.generation += 1;
                true
            }
            None => false,
        };
        let boundary = self.current.as_ref().map_or(now, |c| c.until.max(now));
        let wall = wall + chrono::Duration::from_std(boundary - now).unwrap_or_default();
        let scheduler = Scheduler { library: &self.library, tz: self.tz, usable: NotBad(&self.bad), lengths: Nominal };
        let prev = match self.current.as_ref().map(|c| &c.next) {
            Some(Next::Item(slot)) if !fresh => Some(slot),
            _ => None,
        };
        let next = scheduler.next_slot(prev, wall).map_or(Next::Idle, Next::Item);
        let same = !fresh && self.current.as_ref().is_some_and(|c| c.next.same_content(&next)) && self.still(&next);
        if same {
            // One still item (or the idle screen) again: keep it, no redraw.
            let length = self.lookup(&next).map_or(IDLE_RECHECK, |(_, item)| item.duration.nominal());
            if let Some(c) = self.current.as_mut() {
                c.until = boundary + length;
                c.next = next;
            }
            return;
        }
        let (item, band) = match self.lookup(&next) {
            Some((p, item)) => (Some(Box::new(item.clone())), p.ticker.is_some()),
            None => (None, false),
        };
        self.preparing = true;
        step.commands.push(Command::Prepare { next, item, band });
    }

    /// Whether an item looks the same all through (no clip to restart, no
    /// narration to say again), so showing it twice in a row needs no redraw.
    fn still(&self, next: &Next) -> bool {
        match self.lookup(next) {
            Some((_, item)) => {
                !matches!(item.kind, ItemKind::Video(_)) && item.narration.is_none() && matches!(item.duration, Length::Fixed(_))
            }
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::playlist::parse_playlist;
    use std::path::Path;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn lib(files: &[(&str, &str)]) -> Library {
        let mut lib = Library::default();
        for (name, text) in files {
            let parsed = parse_playlist(Path::new(name), text);
            assert_eq!(parsed.problems, vec![], "{name}");
            lib.playlists.push(parsed.playlist.unwrap());
        }
        lib
    }

    fn wall() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T04:00:00Z").unwrap().with_timezone(&Utc)
    }

    const TWO: &str = r#"
[[items]]
id = "a"
kind = "clock"
duration = "10s"
[[items]]
id = "b"
kind = "clock"
duration = "20s"
"#;

    const ONE: &str = "[[items]]\nid = \"only\"\nkind = \"clock\"\nduration = \"10s\"\n";

    /// One clock item lasting as long as its narration (no file needed: the
    /// rotation never reads it).
    fn narrated() -> Library {
        let mut l = lib(&[("p.toml", ONE)]);
        let item = &mut l.playlists[0].items[0];
        item.narration = Some("n.ogg".into());
        item.duration = Length::Narration;
        l
    }

    /// A rotation and a fake clock, driven the way the shell drives it.
    struct Rig {
        r: Rotation,
        t0: Instant,
        /// The trusted time at `t0`.
        wall0: DateTime<Utc>,
        now: Instant,
        takeover: bool,
        /// What a preparation measures.
        measure: fn(&Item) -> Measured,
    }

    impl Rig {
        fn new(library: Library) -> Rig {
            let t0 = Instant::now();
            let r = Rotation::new(library, chrono_tz::Asia::Shanghai);
            Rig { r, t0, wall0: wall(), now: t0, takeover: false, measure: |_| Measured::default() }
        }

        fn wall(&self) -> DateTime<Utc> {
            self.wall0 + chrono::Duration::from_std(self.now - self.t0).unwrap()
        }

        /// One frame with no programme change.
        fn frame(&mut self) -> Step {
            self.frame_with(None)
        }

        fn frame_with(&mut self, newer: Option<Library>) -> Step {
            let (runs, change) = self.r.takeover(self.now, self.takeover);
            let mut step = self.r.tick(self.now, self.wall(), || newer);
            if let Some(c) = change {
                step.commands.insert(0, c);
            }
            assert!(runs || step.commands.iter().all(|c| matches!(c, Command::Pause)));
            step
        }

        /// Finishes the preparation asked for, measuring nothing.
        fn prepare(&mut self, step: &Step) -> Next {
            let next = prepared_next(step).expect("a preparation was asked for");
            let measured = self.r.lookup(&next).map(|(_, item)| (self.measure)(item)).unwrap_or_default();
            self.r.prepared(next.clone(), measured);
            next
        }

        fn at(&mut self, secs: u64) {
            self.now = self.t0 + S(secs);
        }

        fn id(&self, next: &Next) -> String {
            self.r.lookup(next).map_or("idle".into(), |(_, i)| i.id.clone())
        }

        /// Runs the rotation (preparations finishing at once) until `secs`,
        /// and returns the items shown with the second they came on.
        fn run_until(&mut self, secs: u64) -> Vec<(u64, String)> {
            let mut shown = Vec::new();
            while self.now <= self.t0 + S(secs) {
                let step = self.frame();
                for c in &step.commands {
                    if let Command::Show { next, .. } = c {
                        shown.push(((self.now - self.t0).as_secs(), self.id(next)));
                    }
                }
                if prepared_next(&step).is_some() {
                    self.prepare(&step);
                    continue;
                }
                match step.wake {
                    Some(w) if w > self.now => self.now = w,
                    _ => self.now += Duration::from_millis(500),
                }
            }
            shown
        }
    }

    fn prepared_next(step: &Step) -> Option<Next> {
        step.commands.iter().find_map(|c| match c {
            Command::Prepare { next, .. } => Some(next.clone()),
            _ => None,
        })
    }

    fn shows(step: &Step) -> Option<(Next, Duration)> {
        step.commands.iter().find_map(|c| match c {
            Command::Show { next, length } => Some((next.clone(), *length)),
            _ => None,
        })
    }

    #[test]
    fn items_are_prepared_ahead_and_shown_at_the_boundary() {
        let mut g = Rig::new(lib(&[("p.toml", TWO)]));
        let step = g.frame();
        let a = g.prepare(&step);
        assert_eq!(g.id(&a), "a");
        assert_eq!(step.wake, Some(g.now + POLL), "a preparation is polled");
        let step = g.frame();
        assert_eq!(shows(&step), Some((a, S(10))));
        assert_eq!(step.wake, Some(g.t0 + S(7)), "the next is prepared 3 s ahead");
        // Nothing to do until then.
        g.at(5);
        assert_eq!(g.frame(), Step { commands: vec![], wake: Some(g.t0 + S(7)) });
        g.at(7);
        let step = g.frame();
        let b = g.prepare(&step);
        assert_eq!(g.id(&b), "b");
        // Ready, but the current item is not over: it waits for its end.
        g.at(8);
        assert_eq!(g.frame(), Step { commands: vec![], wake: Some(g.t0 + S(10)) });
        g.at(10);
        assert_eq!(shows(&g.frame()).map(|(n, l)| (g.id(&n), l)), Some(("b".into(), S(20))));
        assert_eq!(g.run_until(65), vec![(30, "a".into()), (40, "b".into()), (60, "a".into())]);
    }

    #[test]
    fn a_takeover_pauses_and_the_item_keeps_its_remaining_time() {
        let mut g = Rig::new(lib(&[("p.toml", TWO)]));
        assert_eq!(g.run_until(4), vec![(0, "a".into())]);
        g.at(4);
        g.takeover = true;
        let step = g.frame();
        assert_eq!(step, Step { commands: vec![Command::Pause], wake: None }, "a paused rotation asks for no frames");
        // Still paused long after "a" would have ended: nothing happens, once.
        g.at(60);
        assert_eq!(g.frame(), Step::default());
        g.at(64);
        g.takeover = false;
        let step = g.frame();
        assert_eq!(step.commands.first(), Some(&Command::Resume { after: S(60) }));
        // "a" had 6 s left when paused, so it ends at 70 and "b" follows.
        assert_eq!(g.r.on_screen().map(|c| c.until), Some(g.t0 + S(70)));
        assert_eq!(g.run_until(71), vec![(70, "b".into())]);
    }

    #[test]
    fn a_takeover_while_dark_neither_pauses_nor_resumes() {
        let mut g = Rig::new(lib(&[("p.toml", TWO)]));
        g.run_until(1);
        g.r.set_dark(true);
        g.takeover = true;
        assert_eq!(g.frame(), Step::default());
        assert!(g.r.on_screen().is_none());
        g.takeover = false;
        g.at(20);
        g.r.set_dark(false);
        assert_eq!(g.run_until(21), vec![(20, "a".into())], "lit again, the rotation starts afresh");
    }

    #[test]
    fn a_bad_item_is_skipped_and_logged_once() {
        let mut g = Rig::new(lib(&[("p.toml", TWO)]));
        let step = g.frame();
        let a = prepared_next(&step).unwrap();
        let skipped = g.r.not_prepared(a, "a.png: truncated".into());
        assert_eq!(skipped.to_string(), "skipping item `a` (line 2) of p.toml: a.png: truncated");
        // From now on only "b" plays: "a" is never asked for again.
        let mut asked = Vec::new();
        for _ in 0..20 {
            let step = g.frame();
            if let Some(n) = prepared_next(&step) {
                asked.push(g.id(&n));
                g.r.prepared(n, Measured::default());
            }
            g.now = step.wake.unwrap_or(g.now + S(1)).max(g.now + Duration::from_millis(1));
        }
        assert!(asked.iter().all(|i| i == "b"), "{asked:?}");
    }

    #[test]
    fn a_clip_failing_on_screen_ends_the_item_and_skips_it() {
        let mut g = Rig::new(lib(&[("p.toml", TWO)]));
        assert_eq!(g.run_until(1), vec![(0, "a".into())]);
        g.at(2);
        g.r.stopped(g.now, true);
        assert_eq!(g.r.on_screen().map(|c| c.until), Some(g.now));
        let shown = g.run_until(100);
        assert_eq!(shown.first(), Some(&(2, "b".into())), "the next item follows at once");
        assert!(shown.iter().all(|(_, i)| i == "b"), "{shown:?}");
    }

    #[test]
    fn an_ended_clip_ends_the_item_but_is_not_skipped() {
        let mut g = Rig::new(lib(&[("p.toml", TWO)]));
        g.run_until(1);
        g.at(3);
        g.r.stopped(g.now, false);
        assert_eq!(g.run_until(24), vec![(3, "b".into()), (23, "a".into())]);
    }

    #[test]
    fn the_same_still_item_is_not_drawn_again() {
        let mut g = Rig::new(lib(&[("p.toml", ONE)]));
        assert_eq!(g.run_until(55), vec![(0, "only".into())]);
        // It stays on screen, its time extended item by item.
        assert_eq!(g.r.on_screen().map(|c| c.until), Some(g.t0 + S(60)));
    }

    #[test]
    fn the_same_item_with_narration_or_a_clip_is_shown_again() {
        let mut g = Rig::new(narrated());
        // Unmeasured, a narrated item lasts 10 s, and starts again each time.
        assert_eq!(g.run_until(25), vec![(0, "only".into()), (10, "only".into()), (20, "only".into())]);
    }

    #[test]
    fn measured_lengths_set_the_time_on_screen() {
        let mut g = Rig::new(narrated());
        let step = g.frame();
        let n = prepared_next(&step).unwrap();
        g.r.prepared(n, Measured { clip: None, narration: Some(S(4)) });
        let (_, length) = shows(&g.frame()).unwrap();
        assert_eq!(length, S(4) + timing::NARRATION_TAIL);
    }

    #[test]
    fn nothing_playable_is_the_idle_screen_rechecked() {
        let mut g = Rig::new(Library::default());
        let step = g.frame();
        assert_eq!(step.commands, vec![Command::Prepare { next: Next::Idle, item: None, band: false }]);
        g.r.prepared(Next::Idle, Measured::default());
        assert_eq!(shows(&g.frame()), Some((Next::Idle, IDLE_RECHECK)));
        // The idle screen is still: asked again every 5 s, never redrawn.
        assert_eq!(g.run_until(30), vec![]);
        assert_eq!(g.r.on_screen().map(|c| c.next.clone()), Some(Next::Idle));
        // Everything bad is idle too.
        let mut g = Rig::new(lib(&[("p.toml", ONE)]));
        let step = g.frame();
        let only = prepared_next(&step).unwrap();
        g.r.not_prepared(only, "gone".into());
        assert_eq!(prepared_next(&g.frame()), Some(Next::Idle));
    }

    #[test]
    fn a_new_programme_waits_for_the_boundary_and_starts_at_its_first_item() {
        let mut g = Rig::new(lib(&[("p.toml", TWO)]));
        g.run_until(1);
        // A bad item in the old programme.
        assert_eq!(g.r.generation(), 0);
        g.at(7);
        let replacement = lib(&[("p.toml", ONE), ("q.toml", TWO)]);
        let step = g.frame_with(Some(replacement));
        assert_eq!(g.r.generation(), 1);
        let next = prepared_next(&step).unwrap();
        assert_eq!(g.id(&next), "only", "the new programme starts at its first item");
        // What is on screen belongs to the old programme: not looked up in the new one.
        assert_eq!(g.r.on_screen_is_current(), None);
        // A clip failing on screen now marks nothing in the new programme.
        g.r.stopped(g.now, true);
        g.r.prepared(next, Measured::default());
        let (shown, _) = shows(&g.frame()).unwrap();
        assert_eq!(g.id(&shown), "only");
        assert!(g.r.on_screen_is_current().is_some());
        // The new programme does not inherit the old one's bad items.
        let mut g = Rig::new(lib(&[("p.toml", TWO)]));
        let step = g.frame();
        g.r.not_prepared(prepared_next(&step).unwrap(), "bad".into());
        let step = g.frame_with(Some(lib(&[("p.toml", TWO)])));
        assert_eq!(prepared_next(&step).map(|n| g.id(&n)), Some("a".into()));
    }

    #[test]
    fn the_same_still_item_is_drawn_again_after_a_reload() {
        let mut g = Rig::new(lib(&[("p.toml", ONE)]));
        g.run_until(1);
        g.at(7);
        let step = g.frame_with(Some(lib(&[("p.toml", ONE)])));
        assert!(prepared_next(&step).is_some(), "its slot is of another programme: drawn again");
    }

    #[test]
    fn a_ticker_playlist_asks_for_a_band() {
        let ticker = format!("[ticker]\nmessages = [\"hello\"]\n{ONE}");
        let mut g = Rig::new(lib(&[("p.toml", &ticker)]));
        assert!(matches!(g.frame().commands.as_slice(), [Command::Prepare { band: true, .. }]));
    }

    #[test]
    fn the_schedule_is_asked_for_the_boundary_not_the_preparation() {
        // Prepared at 12:00:57 local, the item after "early" starts at
        // 12:01, when "late" applies.
        let late = "[schedule]\npriority = 5\nhours = \"12:01-13:00\"\n[[items]]\nid = \"late\"\nkind = \"clock\"\n";
        let early = "[[items]]\nid = \"early\"\nkind = \"clock\"\nduration = \"60s\"\n";
        let mut g = Rig::new(lib(&[("e.toml", early), ("l.toml", late)]));
        assert_eq!(g.run_until(61), vec![(0, "early".into()), (60, "late".into())]);
    }

    #[test]
    fn a_new_programme_is_looked_for_only_at_a_boundary() {
        let mut g = Rig::new(lib(&[("p.toml", ONE)]));
        g.run_until(1);
        g.at(7);
        let asked = std::cell::Cell::new(false);
        let step = g.r.tick(g.now, g.wall(), || {
            asked.set(true);
            None
        });
        assert!(asked.get(), "a new programme is looked for at the preparation");
        assert!(prepared_next(&step).is_none(), "one still item again: kept");
        g.at(8);
        let _ = g.r.tick(g.now, g.wall(), || panic!("asked between boundaries"));
    }

    /// A playlist of a fixed item, a narrated one and an `auto` clip, and
    /// what the player measures of them (4 s of narration, a 17 s clip).
    fn measured_playlist() -> (Library, fn(&Item) -> Measured) {
        let three = "[[items]]\nid = \"fixed\"\nkind = \"clock\"\nduration = \"10s\"\n\
                     [[items]]\nid = \"narrated\"\nkind = \"clock\"\n\
                     [[items]]\nid = \"clip\"\nkind = \"clock\"\n";
        let mut l = lib(&[("p.toml", three)]);
        let items = &mut l.playlists[0].items;
        items[1].narration = Some("n.ogg".into());
        items[1].duration = Length::Narration;
        items[2].kind = ItemKind::Video(crate::core::playlist::Video {
            path: "v.mp4".into(),
            fit: crate::core::playlist::Fit::Contain,
            looped: false,
            mute: true,
            volume: 100,
            start: Duration::ZERO,
        });
        items[2].duration = Length::Clip;
        let measure = |item: &Item| match item.id.as_str() {
            "narrated" => Measured { clip: None, narration: Some(S(4)) },
            "clip" => Measured { clip: Some(S(17)), narration: None },
            _ => Measured::default(),
        };
        (l, measure)
    }

    #[test]
    fn the_rotation_and_playlist_at_agree_after_measured_lengths() {
        let (library, measure) = measured_playlist();
        // From local midnight, where `slot_at` anchors the rotation.
        let midnight = DateTime::parse_from_rfc3339("2026-11-22T16:00:00Z").unwrap().with_timezone(&Utc);
        let mut g = Rig::new(library.clone());
        g.wall0 = midnight;
        g.measure = measure;
        let shown = g.run_until(200);
        // 10 s, 4 s + the narration's tail, 17 s: a 31.8 s cycle.
        assert_eq!(shown.iter().take(4).map(|(t, i)| (*t, i.as_str())).collect::<Vec<_>>(), [
            (0, "fixed"),
            (10, "narrated"),
            (14, "clip"),
            (31, "fixed"),
        ]);
        let lengths = |_: &Playlist, item: &Item| Some(item.on_screen(measure(item)));
        let at = Scheduler::new(&library, chrono_tz::Asia::Shanghai).with_lengths(lengths);
        let nominal = Scheduler::new(&library, chrono_tz::Asia::Shanghai);
        let mut disagreed = 0;
        // Every item the rotation showed, asked of `playlist at`'s function
        // a moment after it came on.
        let mut g = Rig::new(library.clone());
        g.wall0 = midnight;
        g.measure = measure;
        let mut seen = 0;
        while seen < 20 {
            let step = g.frame();
            if prepared_next(&step).is_some() {
                g.prepare(&step);
                continue;
            }
            if let Some((next, _)) = shows(&step) {
                seen += 1;
                let t = g.wall() + chrono::Duration::milliseconds(1);
                let slot = at.slot_at(t).unwrap();
                assert_eq!(library.playlists[0].items[slot.item].id, g.id(&next), "at {t}");
                assert_eq!(slot.start, g.wall(), "at {t}");
                let old = nominal.slot_at(t).unwrap();
                disagreed += usize::from(old.item != slot.item);
            }
            g.now = step.wake.filter(|w| *w > g.now).unwrap_or(g.now + Duration::from_millis(500));
        }
        assert!(disagreed > 0, "nominal lengths mispredict the screen after a measured item");
    }
}
