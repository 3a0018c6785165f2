//! What one cluster link is held to and what it counts: its fences (the bytes that may wait for
//! the peer, the longest a write may stall, the longest it may stay silent, what the kernel may
//! hold unsent) and its counters, shared by the link's sides ([`super::transport`] for the
//! socket and its read side, [`super::outbox`] for its write queue) and read by the manager.
//!
//! A leaf of the cluster's link code: it knows the peer's queue ([`crate::peer_queue`]) and the
//! handshake's confirmation flag, never sockets.

use super::handshake::Confirmation;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most bytes that may wait for one peer before its link is cut.
pub const OUTBOUND_BUDGET: usize = 64 * 1024 * 1024;
/// Longest a write to a peer may make no progress before its link is cut.
pub const WRITE_STALL: Duration = Duration::from_secs(5);
/// Longest a link may carry nothing inbound before it is closed.
pub const READ_SILENCE: Duration = Duration::from_secs(10);
/// Unsent bytes the kernel may hold for a link (more waits in the link's queue, where a
/// heartbeat can go first).
pub const NOTSENT_LOWAT: u32 = 64 * 1024;
/// The limits a link enforces (the constants above; tests use shorter ones).
#[derive(Debug, Clone, Copy)]
pub struct Fences {
    /// See [`OUTBOUND_BUDGET`].
    pub budget: usize,
    /// See [`WRITE_STALL`].
    pub stall: Duration,
    /// See [`READ_SILENCE`].
    pub silence: Duration,
}

impl Default for Fences {
    fn default() -> Self {
        Self {
            budget: OUTBOUND_BUDGET,
            stall: WRITE_STALL,
            silence: READ_SILENCE,
        }
    }
}

/// Counters of one link.
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Bytes waiting for the peer: in the link's queue and, once the link is attached to its
    /// peer, in the library's (see [`crate::peer_queue::PeerQueue::waiting`]).
    pub queued: AtomicU64,
    /// Bytes this link wrote to its socket.
    pub written: AtomicU64,
    /// The peer's queue once the manager knows who is on the link.
    pub peer: std::sync::OnceLock<Arc<crate::peer_queue::PeerQueue>>,
    /// Why the link was fenced, if it was.
    pub fenced: Mutex<Option<&'static str>>,
    /// Set when the link authenticated (its read side stops gating then).
    pub confirmation: Arc<Confirmation>,
}

impl LinkStats {
    /// Counts what this link carries for `peer` from now on.
    pub fn attach(&self, peer: Arc<crate::peer_queue::PeerQueue>) {
        peer.attach();
        let _ = self.peer.set(peer);
    }

    /// The link took `n` bytes from the library.
    pub fn took(&self, n: u64) {
        if let Some(q) = self.peer.get() {
            q.took(n);
        }
    }

    /// Publishes that the link's queue holds `held` bytes; returns what waits for the peer.
    pub fn publish(&self, held: u64) -> u64 {
        let waiting = match self.peer.get() {
            Some(q) => {
                q.set_buffered(held);
                q.waiting()
            }
            None => held,
        };
        self.queued.store(waiting, Ordering::Relaxed);
        waiting
    }
}
