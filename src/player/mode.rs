//! What the screen is doing, in one state the adapters read: the programme
//! plays, a warning has taken the screen over, or it is dark outside its
//! screen-on hours. The alert plugin ([`Warning`]) and the screen hours
//! ([`Hours`]) set its sources; the rotation, sound and video follow it.

use bevy::prelude::*;

use super::alerts::Warning;
use super::hours::Hours;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Mode {
    Playing,
    /// A warning covers the screen: the programme is paused where it is.
    Takeover,
    /// Outside screen-on hours: nothing is on screen (a warning, if any,
    /// still shows over the dark screen).
    Dark,
}

impl ComputedStates for Mode {
    type SourceStates = (Hours, Warning);

    fn compute((hours, warning): (Hours, Warning)) -> Option<Mode> {
        Some(match (hours, warning) {
            (Hours::Dark, _) => Mode::Dark,
            (Hours::On, Warning::Takeover) => Mode::Takeover,
            (Hours::On, Warning::None) => Mode::Playing,
        })
    }
}

pub(super) fn plugin(app: &mut App) {
    app.add_computed_state::<Mode>();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dark_wins_over_a_takeover() {
        assert_eq!(Mode::compute((Hours::Dark, Warning::Takeover)), Some(Mode::Dark));
        assert_eq!(Mode::compute((Hours::On, Warning::Takeover)), Some(Mode::Takeover));
        assert_eq!(Mode::compute((Hours::On, Warning::None)), Some(Mode::Playing));
    }
}
