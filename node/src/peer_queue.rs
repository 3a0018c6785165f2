//! What this node has put on its way to each peer, counted where it is enqueued: ractor_cluster
//! queues outbound messages without bound in front of its writer, so the bytes waiting for a
//! peer are what was enqueued for it less what its link has written. Rooms count every delivery
//! and presence event they cast to a peer's relay (the bulk of what crosses a link); the
//! cluster transport counts what each link writes and cuts a link whose peer is more than its
//! budget behind (`cluster::transport`).
//!
//! A leaf: owns the counters, knows nothing of rooms or links. Keyed by peer node name (the
//! nodes of the cluster, never a stranger's input).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Bytes enqueued for one peer since this process started.
#[derive(Debug, Default)]
pub struct PeerQueue {
    enqueued: AtomicU64,
}

impl PeerQueue {
    /// Counts `n` bytes cast to the peer.
    pub fn enqueue(&self, n: usize) {
        self.enqueued.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Bytes enqueued so far.
    pub fn enqueued(&self) -> u64 {
        self.enqueued.load(Ordering::Relaxed)
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
