//! What waits for each peer, and whether rooms hold their deliveries back from it. ractor_cluster
//! queues outbound messages without bound in front of its writer, so part of what waits for a
//! peer is counted where it is enqueued: rooms count every delivery and presence event they cast
//! to a peer's relay (the bulk of what crosses a link), and the peer's link counts what it takes
//! from the library. The rest waits in the link's own queue (`cluster::outbox`), which the link
//! publishes here.
//!
//! Above half the link budget ([`PeerQueue::hold_back`]), rooms stop casting deliveries to the peer and
//! send what they held back from their history once it is below a quarter
//! ([`PeerQueue::may_resume`]); at the whole budget the link itself is cut (`cluster::transport`).
//!
//! A leaf: owns the counters, knows nothing of rooms or links. Keyed by peer node name (the
//! nodes of the cluster, never a stranger's input).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The link budget while none is configured (the shipped default).
const DEFAULT_BUDGET: u64 = 64 * 1024 * 1024;

static BUDGET: AtomicU64 = AtomicU64::new(DEFAULT_BUDGET);

/// Sets the per-peer budget (`node.cluster_peer_budget_bytes`) the thresholds derive from.
pub fn configure(budget: usize) {
    BUDGET.store(budget as u64, Ordering::Relaxed);
}

/// What waits for one peer.
#[derive(Debug, Default)]
pub struct PeerQueue {
    /// Bytes rooms cast to the peer since this process started.
    enqueued: AtomicU64,
    /// Bytes the peer's links took from the library (at least `enqueued` as it was when the
    /// current link was attached: what the library held for a closed link is gone).
    taken: AtomicU64,
    /// Bytes waiting in the current link's own queue.
    buffered: AtomicU64,
    /// Whether a link is attached (before that, nothing is held back).
    linked: std::sync::atomic::AtomicBool,
}

impl PeerQueue {
    /// Counts `n` bytes cast to the peer.
    pub fn enqueue(&self, n: usize) {
        self.enqueued.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A new link carries this peer's traffic from now on.
    pub fn attach(&self) {
        self.taken
            .fetch_max(self.enqueued.load(Ordering::Relaxed), Ordering::Relaxed);
        self.buffered.store(0, Ordering::Relaxed);
        self.linked.store(true, Ordering::Relaxed);
    }

    /// The link took `n` bytes from the library.
    pub fn took(&self, n: u64) {
        self.taken.fetch_add(n, Ordering::Relaxed);
    }

    /// The link's own queue holds `n` bytes.
    pub fn set_buffered(&self, n: u64) {
        self.buffered.store(n, Ordering::Relaxed);
    }

    /// Bytes waiting for the peer: in the library's queue (estimated from what rooms enqueued)
    /// and in the link's.
    pub fn waiting(&self) -> u64 {
        let enqueued = self.enqueued.load(Ordering::Relaxed);
        let taken = self.taken.load(Ordering::Relaxed);
        enqueued.saturating_sub(taken) + self.buffered.load(Ordering::Relaxed)
    }

    /// Whether rooms hold deliveries back: more than half the budget waits.
    pub fn hold_back(&self) -> bool {
        self.linked.load(Ordering::Relaxed) && self.waiting() > BUDGET.load(Ordering::Relaxed) / 2
    }

    /// Whether rooms that held deliveries back may send them: less than a quarter waits.
    pub fn may_resume(&self) -> bool {
        self.waiting() < BUDGET.load(Ordering::Relaxed) / 4
    }
}

/// The counter of peer `node`.
pub fn of(node: &str) -> Arc<PeerQueue> {
    static QUEUES: OnceLock<Mutex<HashMap<String, Arc<PeerQueue>>>> = OnceLock::new();
    let map = QUEUES.get_or_init(Mutex::default);
    let mut map = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    map.entry(node.to_owned()).or_default().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_counts_the_library_queue_and_the_link_queue_and_forgets_a_closed_link() {
        let q = PeerQueue::default();
        q.enqueue(1000);
        assert!(!q.hold_back(), "no link yet");
        q.attach();
        assert_eq!(
            q.waiting(),
            0,
            "what the last link's library queue held is gone"
        );
        q.enqueue(500);
        q.took(200);
        q.set_buffered(50);
        assert_eq!(q.waiting(), 350);
        // Other traffic taken (replies, heartbeats) never makes it negative.
        q.took(10_000);
        assert_eq!(q.waiting(), 50);
    }
}
