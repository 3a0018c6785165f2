//! Waiting with deadlines: every wait in the suite polls a condition until a deadline.
//! `GATEHOUSE_TEST_PATIENCE` (a multiplier, default 1) stretches deadlines on slow machines.

use std::future::Future;
use std::time::Duration;

/// Scales a deadline by `GATEHOUSE_TEST_PATIENCE`.
pub fn patience(d: Duration) -> Duration {
    let k: f64 = std::env::var("GATEHOUSE_TEST_PATIENCE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    d.mul_f64(k.max(1.0))
}

/// Polls `f` every 20 ms until it returns `Some`, or panics with `what` after `timeout`.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + patience(timeout);
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    loop {
        poll.tick().await;
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
    }
}
