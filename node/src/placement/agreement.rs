//! Whether this node's view of which peers are down is shared by the rest of the cluster (see
//! `cluster::view::View::agreed`), published by the cluster manager for the room host. The room
//! host restores a room from its replica with the same epoch only under agreement: a peer that
//! only this side sees as down may still be serving the room on the other side of a partition.
//!
//! Holds one timestamp; it never reads the view itself (the manager is the view's only owner).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a waiter looks again.
const POLL: Duration = Duration::from_millis(20);

/// The manager's latest verdict: agreed, or disagreeing since when.
#[derive(Debug, Default)]
pub struct Agreement {
    disagreeing_since: Mutex<Option<Instant>>,
}

impl Agreement {
    /// Records the manager's verdict (keeps the first instant of a disagreement).
    pub fn set(&self, agreed: bool) {
        if let Ok(mut s) = self.disagreeing_since.lock() {
            match (agreed, *s) {
                (true, _) => *s = None,
                (false, None) => *s = Some(Instant::now()),
                (false, Some(_)) => {}
            }
        }
    }

    /// Disagreeing since when, if so.
    fn since(&self) -> Option<Instant> {
        self.disagreeing_since.lock().ok().and_then(|s| *s)
    }

    /// Waits until the cluster agrees, or until it has disagreed for `patience` (counted from
    /// the start of the disagreement, so a long partition costs each caller nothing). True when
    /// it agrees.
    pub async fn wait(&self, patience: Duration) -> bool {
        loop {
            match self.since() {
                None => return true,
                Some(t) if t.elapsed() >= patience => return false,
                Some(_) => tokio::time::sleep(POLL).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_agreement_only_as_long_as_the_disagreement_is_young() {
        let a = Agreement::default();
        assert!(a.wait(Duration::from_secs(1)).await);
        a.set(false);
        assert!(!a.wait(Duration::ZERO).await);
        a.set(true);
        assert!(a.wait(Duration::ZERO).await);
    }
}
