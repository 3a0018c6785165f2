//! Shared report pieces: latency quantiles from an HDR histogram of microseconds.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::time::Duration;

/// Largest value a histogram records (µs): 60 s.
pub const MAX_MICROS: u64 = 60_000_000;

/// A histogram of microseconds, 3 significant digits.
pub fn micros_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant, valid histogram bounds")
}

/// Records `us` microseconds, clamped into the histogram's range.
pub fn record(h: &mut Histogram<u64>, us: u64) {
    // Clamped into range, so recording cannot fail.
    let _ = h.record(us.clamp(1, MAX_MICROS));
}

/// Latency quantiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Samples recorded.
    pub samples: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

impl Latency {
    /// Quantiles of a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            samples: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }

    /// Quantiles of a list of durations.
    pub fn of_durations(ds: &[Duration]) -> Latency {
        let mut h = micros_histogram();
        for d in ds {
            record(&mut h, u64::try_from(d.as_micros()).unwrap_or(MAX_MICROS));
        }
        Latency::of(&h)
    }

    /// `p50 / p90 / p99 / max` for humans.
    pub fn line(&self) -> String {
        format!(
            "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms ({} samples)",
            self.p50_ms, self.p90_ms, self.p99_ms, self.p999_ms, self.max_ms, self.samples
        )
    }
}

/// Microseconds since the Unix epoch.
pub fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Rounds to 2 decimals (for JSON readability).
pub fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_in_ms() {
        let mut h = micros_histogram();
        for us in 1..=1000 {
            record(&mut h, us * 10);
        }
        record(&mut h, u64::MAX);
        let l = Latency::of(&h);
        assert_eq!(l.samples, 1001);
        assert!((l.p50_ms - 5.0).abs() < 0.05, "{l:?}");
        assert!(l.max_ms >= 59_000.0);
        assert_eq!(Latency::of(&micros_histogram()).samples, 0);
    }
}
