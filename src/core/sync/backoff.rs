//! Retry delays: exponential with "full jitter", so a village's screens
//! that lost the network together do not all come back in the same second.

use std::time::Duration;

/// The wait before retry number `attempt` (0 = first retry): a random point
/// in `[base·2^attempt / 2, base·2^attempt]`, capped at `max`. `unit` is a
/// random number in [0, 1).
pub fn delay(attempt: u32, base: Duration, max: Duration, unit: f64) -> Duration {
    let ceiling = base.saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX)).min(max);
    ceiling.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

/// A poll period with ±10 % jitter, so a fleet does not poll in lockstep.
/// `unit` is a random number in [0, 1).
pub fn poll_period(interval: Duration, unit: f64) -> Duration {
    interval.mul_f64(0.9 + 0.2 * unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps_and_stays_in_its_window() {
        let s = Duration::from_secs;
        assert_eq!(delay(0, s(1), s(60), 0.0), Duration::from_millis(500));
        assert_eq!(delay(0, s(1), s(60), 1.0), s(1));
        assert_eq!(delay(3, s(1), s(60), 1.0), s(8));
        assert_eq!(delay(30, s(1), s(60), 1.0), s(60));
        assert_eq!(delay(30, s(1), s(60), 0.0), s(30));
    }

    #[test]
    fn poll_periods_stay_within_ten_percent() {
        let s = Duration::from_secs;
        assert_eq!(poll_period(s(60), 0.0), s(54));
        assert_eq!(poll_period(s(60), 0.5), s(60));
        assert_eq!(poll_period(s(60), 1.0), s(66));
    }
}
