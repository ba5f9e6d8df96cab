//! The bandwidth cap for village links: a token bucket shared by all
//! downloads of a sync.

use std::time::{Duration, Instant};

/// Bytes earn the right to pass at `rate` per second; up to one second's
/// worth may be saved up (so the cap holds over any second, not just on
/// average).
#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn new(bytes_per_sec: u64, now: Instant) -> Bucket {
        let rate = bytes_per_sec.max(1) as f64;
        Bucket { rate, tokens: rate, at: now }
    }

    /// Takes `n` bytes' worth; returns how long to wait before sending them.
    pub fn take(&mut self, n: usize, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// A [`Bucket`] shared across tasks.
#[derive(Debug)]
pub struct Throttle(Option<std::sync::Mutex<Bucket>>);

impl Throttle {
    pub fn new(bytes_per_sec: Option<u64>) -> Throttle {
        Throttle(bytes_per_sec.map(|r| std::sync::Mutex::new(Bucket::new(r, Instant::now()))))
    }

    pub async fn pass(&self, n: usize) {
        let Some(bucket) = &self.0 else { return };
        let wait = match bucket.lock() {
            Ok(mut b) => b.take(n, Instant::now()),
            Err(_) => Duration::ZERO,
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1000, t0);
        assert_eq!(b.take(1000, t0), Duration::ZERO);
        assert_eq!(b.take(500, t0), Duration::from_millis(500));
        // Half a second later the debt is paid; another 500 waits again.
        assert_eq!(b.take(500, t0 + Duration::from_millis(500)), Duration::from_millis(500));
        // A long idle saves up at most one second.
        assert_eq!(b.take(1000, t0 + Duration::from_secs(100)), Duration::ZERO);
        assert_eq!(b.take(1000, t0 + Duration::from_secs(100)), Duration::from_secs(1));
    }
}
