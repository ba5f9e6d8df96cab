//! The hand-over from one slide to the next: the incoming slide fades in
//! over the outgoing one, which stays fully opaque underneath until the
//! fade is done, so there is never a black frame between items.
//!
//! Pure and generic over what names a slide (the player's entities): the
//! rotation plugin says when a slide comes, passes `now` each frame, and
//! removes and fades the slides it is told to.

use std::time::{Duration, Instant};

/// How long the idle screen takes to come in (it has no item to say).
pub const IDLE_TRANSITION: Duration = Duration::from_millis(500);

/// The slides on screen and the fade between them.
#[derive(Debug, Clone)]
pub struct Handover<S> {
    current: Option<S>,
    /// Outgoing slides, under the one fading in.
    fading_out: Vec<S>,
    fade: Option<Crossfade<S>>,
}

impl<S> Default for Handover<S> {
    fn default() -> Self {
        Handover { current: None, fading_out: Vec::new(), fade: None }
    }
}

#[derive(Debug, Clone, Copy)]
struct Crossfade<S> {
    incoming: S,
    start: Instant,
    length: Duration,
}

/// What to do before a new slide is put on screen.
#[derive(Debug, Clone, PartialEq)]
pub struct Cut<S> {
    /// A slide whose fade was cut short: show it fully now.
    pub opaque: Option<S>,
    /// Slides to remove now.
    pub remove: Vec<S>,
    /// The new slide's opacity to start at.
    pub alpha: f32,
}

/// One frame of a fade.
#[derive(Debug, Clone, PartialEq)]
pub struct FadeStep<S> {
    pub slide: S,
    pub alpha: f32,
    /// The fade is done: these outgoing slides go.
    pub remove: Vec<S>,
    /// The fade goes on: keep frames coming.
    pub animate: bool,
}

impl<S: Copy> Handover<S> {
    /// The slide on screen (the newest, fading in or not).
    pub fn current(&self) -> Option<S> {
        self.current
    }

    /// Makes way for a slide that comes in over `transition`: an unfinished
    /// fade is cut short (its outgoing slides go now), and the new slide
    /// starts transparent when there is something to fade from.
    pub fn cut(&mut self, transition: Duration) -> Cut<S> {
        let opaque = self.fade.take().map(|f| f.incoming);
        let remove = std::mem::take(&mut self.fading_out);
        let alpha = if self.fades(transition) { 0.0 } else { 1.0 };
        Cut { opaque, remove, alpha }
    }

    /// The new slide is on screen: returns the slide it replaced, if that
    /// is to go now (no fade); otherwise it goes when the fade is done.
    pub fn shown(&mut self, slide: S, transition: Duration, now: Instant) -> Option<S> {
        let fades = self.fades(transition);
        let old = self.current.replace(slide)?;
        if fades {
            self.fading_out.push(old);
            self.fade = Some(Crossfade { incoming: slide, start: now, length: transition });
            None
        } else {
            Some(old)
        }
    }

    /// The fade at `now`: the incoming slide's opacity, eased in and out
    /// like a projector's dissolve; `None` when no fade runs.
    pub fn step(&mut self, now: Instant) -> Option<FadeStep<S>> {
        let f = self.fade?;
        let t = (now.saturating_duration_since(f.start).as_secs_f32() / f.length.as_secs_f32()).clamp(0.0, 1.0);
        let alpha = t * t * (3.0 - 2.0 * t);
        let done = t >= 1.0;
        let remove = if done {
            self.fade = None;
            std::mem::take(&mut self.fading_out)
        } else {
            Vec::new()
        };
        Some(FadeStep { slide: f.incoming, alpha, remove, animate: !done })
    }

    /// The screen goes dark: every slide goes.
    pub fn clear(&mut self) -> Vec<S> {
        let mut all: Vec<S> = self.fading_out.drain(..).collect();
        all.extend(self.current.take());
        all.extend(self.fade.take().map(|f| f.incoming));
        all
    }

    fn fades(&self, transition: Duration) -> bool {
        self.current.is_some() && !transition.is_zero()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn the_first_slide_and_a_cut_show_at_once_and_the_old_one_goes() {
        let t0 = Instant::now();
        let mut h = Handover::default();
        assert_eq!(h.cut(MS(800)), Cut { opaque: None, remove: vec![], alpha: 1.0 }, "nothing to fade from");
        assert_eq!(h.shown(1, MS(800), t0), None);
        assert_eq!(h.step(t0), None);
        assert_eq!(h.cut(Duration::ZERO).alpha, 1.0);
        assert_eq!(h.shown(2, Duration::ZERO, t0), Some(1), "a cut removes the old slide now");
        assert_eq!(h.current(), Some(2));
    }

    #[test]
    fn the_new_slide_fades_in_over_the_old_which_goes_when_it_is_done() {
        let t0 = Instant::now();
        let mut h = Handover::default();
        h.shown(1, MS(800), t0);
        assert_eq!(h.cut(MS(800)).alpha, 0.0);
        assert_eq!(h.shown(2, MS(800), t0), None, "the old slide stays underneath");
        let s = h.step(t0 + MS(400)).unwrap();
        assert_eq!((s.slide, s.alpha, s.remove.is_empty(), s.animate), (2, 0.5, true, true));
        assert!(h.step(t0 + MS(200)).unwrap().alpha < 0.5 - 0.1, "eased, not linear");
        let s = h.step(t0 + MS(800)).unwrap();
        assert_eq!(s, FadeStep { slide: 2, alpha: 1.0, remove: vec![1], animate: false });
        assert_eq!(h.step(t0 + MS(900)), None);
    }

    #[test]
    fn a_fade_cut_short_shows_its_slide_fully_and_its_outgoing_ones_go() {
        let t0 = Instant::now();
        let mut h = Handover::default();
        h.shown(1, MS(800), t0);
        h.shown(2, MS(800), t0);
        assert_eq!(h.cut(MS(800)), Cut { opaque: Some(2), remove: vec![1], alpha: 0.0 });
        h.shown(3, MS(800), t0 + MS(100));
        assert_eq!(h.step(t0 + MS(900)).unwrap().remove, vec![2]);
    }

    #[test]
    fn a_dark_screen_clears_every_slide() {
        let t0 = Instant::now();
        let mut h = Handover::default();
        h.shown(1, MS(800), t0);
        h.shown(2, MS(800), t0);
        let mut gone = h.clear();
        gone.sort();
        gone.dedup();
        assert_eq!(gone, [1, 2]);
        assert_eq!((h.current(), h.step(t0)), (None, None));
    }
}
