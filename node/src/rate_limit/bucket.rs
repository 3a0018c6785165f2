//! A token bucket: pure state, the clock passed in, so it is tested without a runtime.

use std::time::Instant;

/// Refills at `rate` tokens per second up to `capacity`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, capacity: f64, now: Instant) -> Self {
        Self {
            rate,
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    /// Changes rate and capacity, keeping the current fill (capped).
    pub fn reconfigure(&mut self, rate: f64, capacity: f64, now: Instant) {
        self.refill(now);
        self.rate = rate;
        self.capacity = capacity;
        self.tokens = self.tokens.min(capacity);
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.capacity);
        self.last = now;
    }

    /// Takes `n` tokens if available; otherwise returns how many milliseconds until they are.
    pub fn take(&mut self, n: f64, now: Instant) -> Result<(), u64> {
        self.refill(now);
        if self.tokens >= n {
            self.tokens -= n;
            Ok(())
        } else {
            let missing = n.min(self.capacity) - self.tokens;
            let ms = if self.rate > 0.0 {
                (missing / self.rate * 1000.0).ceil() as u64
            } else {
                u64::MAX
            };
            Err(ms.max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 20.0, t0);
        for _ in 0..20 {
            assert!(b.take(1.0, t0).is_ok());
        }
        let wait = b.take(1.0, t0).unwrap_err();
        assert_eq!(wait, 100);
        assert!(b.take(1.0, t0 + Duration::from_millis(100)).is_ok());
        assert!(b.take(1.0, t0 + Duration::from_millis(100)).is_err());
        // A second later, ten more.
        let t1 = t0 + Duration::from_millis(1100);
        for _ in 0..10 {
            assert!(b.take(1.0, t1).is_ok());
        }
        assert!(b.take(1.0, t1).is_err());
    }

    #[test]
    fn reconfigure_caps_the_fill() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100.0, 200.0, t0);
        b.reconfigure(1.0, 2.0, t0);
        assert!(b.take(1.0, t0).is_ok());
        assert!(b.take(1.0, t0).is_ok());
        assert!(b.take(1.0, t0).is_err());
    }
}
