//! What rooms may hold on one node, counted in one place: the number of live room actors
//! (`rooms.max_rooms`) and the bytes of their history, their snapshots and the replicas this
//! node keeps as a backup (`rooms.memory_budget_bytes`). Clients create rooms and fill their
//! history, so both are bounded here, not per connection.
//!
//! - **Rooms**: at `rooms.max_rooms` the room host refuses to create another (the client's
//!   join is answered `unavailable`); rooms moving here (a drain, a rebalance) are still
//!   taken, so a drain never fails for it.
//! - **Bytes**: every room adds what it stores and subtracts what it drops. A room that
//!   stores a message while the node is over its budget first drops its own oldest messages
//!   (so the bound holds at once, give or take one message per room), and the room host's
//!   tick ([`RoomMemory::regulate`]) moves a cutoff forward while the node stays over it,
//!   a quarter of the way from the oldest message an idle room holds to now: rooms without
//!   members drop what is older, so the oldest history of idle rooms goes first across the
//!   node, a little more each second until the node is back under. A client whose `since` falls in dropped history gets
//!   `recovered:false`, never a partial replay (the history keeps no holes).
//!
//! Owns the counts and the cutoff; each room owns its own history and decides what to drop.

use super::history::History;
use crate::delivery::Delivery;
use crate::metrics::Metrics;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Why history was dropped before its time (the metric's `reason`).
#[derive(Debug, Clone, Copy)]
pub enum Eviction {
    /// Past the room's own byte cap (`rooms.history_max_bytes`).
    RoomBytes,
    /// The node was over its budget when the room stored a message.
    NodeBudget,
    /// Older than the cutoff while the node was over its budget (rooms without members).
    IdlePressure,
}

impl Eviction {
    fn as_str(self) -> &'static str {
        match self {
            Self::RoomBytes => "room_bytes",
            Self::NodeBudget => "node_budget",
            Self::IdlePressure => "idle_pressure",
        }
    }
}

/// The node's room memory.
pub struct RoomMemory {
    budget: usize,
    max_rooms: usize,
    used: AtomicUsize,
    rooms: AtomicUsize,
    /// Messages published before this (µs since the epoch) are dropped by rooms without
    /// members; 0 while the node is within its budget.
    cutoff_us: AtomicU64,
    /// The publish time of the oldest message a room without members reported this tick
    /// (`u64::MAX`: none).
    oldest_us: AtomicU64,
    metrics: Arc<Metrics>,
}

impl RoomMemory {
    /// A node's room memory: `budget` bytes, `max_rooms` live rooms.
    pub fn new(budget: usize, max_rooms: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            budget,
            max_rooms,
            used: AtomicUsize::new(0),
            rooms: AtomicUsize::new(0),
            cutoff_us: AtomicU64::new(0),
            oldest_us: AtomicU64::new(u64::MAX),
            metrics,
        })
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The budget, bytes.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Whether the node holds more than its budget.
    pub fn over(&self) -> bool {
        self.used() > self.budget
    }

    /// Whether `extra` more bytes would fit the budget.
    pub fn fits(&self, extra: usize) -> bool {
        self.used().saturating_add(extra) <= self.budget
    }

    /// Counts `n` bytes stored.
    pub fn add(&self, n: usize) {
        if n > 0 {
            self.used.fetch_add(n, Ordering::Relaxed);
            self.metrics.room_memory_bytes.inc_by(n as i64);
        }
    }

    /// Counts `n` bytes given back.
    pub fn sub(&self, n: usize) {
        if n > 0 {
            self.used.fetch_sub(n, Ordering::Relaxed);
            self.metrics.room_memory_bytes.dec_by(n as i64);
        }
    }

    /// Brings what is counted for one history (its bytes plus `extra`, a snapshot's) up to
    /// date: `counted` is what was counted for it before.
    pub fn recount(&self, history: &History, extra: usize, counted: &mut usize) {
        let now = history.bytes() + extra;
        if now >= *counted {
            self.add(now - *counted);
        } else {
            self.sub(*counted - now);
        }
        *counted = now;
    }

    /// Stores a published message in `history` (a room's, or the replica of one): past the
    /// room's byte cap its oldest go; with the node over its budget, it gives up its own oldest
    /// first. The newest message always stays. `extra` and `counted` as for
    /// [`RoomMemory::recount`].
    pub fn store(
        &self,
        history: &mut History,
        d: Arc<Delivery>,
        extra: usize,
        counted: &mut usize,
    ) {
        self.evicted(Eviction::RoomBytes, history.push(d));
        self.recount(history, extra, counted);
        let mut n = 0;
        while self.over() && history.len() > 1 && history.pop_oldest() {
            n += 1;
            self.recount(history, extra, counted);
        }
        self.evicted(Eviction::NodeBudget, n);
    }

    /// Counts `n` messages dropped before their time.
    pub fn evicted(&self, why: Eviction, n: usize) {
        if n > 0 {
            self.metrics
                .history_evictions
                .get_or_create(&crate::metrics::ReasonLabel {
                    reason: why.as_str().to_owned(),
                })
                .inc_by(n as u64);
        }
    }

    /// Whether another room may be created here.
    pub fn room_allowed(&self) -> bool {
        self.rooms.load(Ordering::Relaxed) < self.max_rooms
    }

    /// The cap on live rooms.
    pub fn max_rooms(&self) -> usize {
        self.max_rooms
    }

    /// A room actor started here.
    pub fn room_started(&self) {
        self.rooms.fetch_add(1, Ordering::Relaxed);
    }

    /// A room actor stopped here.
    pub fn room_stopped(&self) {
        self.rooms.fetch_sub(1, Ordering::Relaxed);
    }

    /// The cutoff rooms without members apply (0: none).
    pub fn cutoff_us(&self) -> u64 {
        self.cutoff_us.load(Ordering::Relaxed)
    }

    /// A room without members holds messages published from `published_us` on.
    pub fn note_oldest(&self, published_us: u64) {
        self.oldest_us.fetch_min(published_us, Ordering::Relaxed);
    }

    /// Once a tick (the room host's): over the budget, the cutoff moves a quarter of the way
    /// from the oldest message an idle room reported to `now_us`; below 90 % of the budget, the
    /// cutoff goes.
    pub fn regulate(&self, now_us: u64) {
        let oldest = self.oldest_us.swap(u64::MAX, Ordering::Relaxed);
        let used = self.used();
        if used > self.budget {
            if oldest < now_us {
                let cutoff = oldest + (now_us - oldest) / 4 + 1;
                self.cutoff_us.fetch_max(cutoff, Ordering::Relaxed);
            }
        } else if used < self.budget / 10 * 9 {
            self.cutoff_us.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_advances_while_over_the_budget_and_goes_below_it() {
        let m = RoomMemory::new(1000, 2, Arc::new(Metrics::new()));
        m.add(1500);
        assert!(m.over() && !m.fits(1));
        // Nothing idle reported: nothing to cut.
        m.regulate(10_000);
        assert_eq!(m.cutoff_us(), 0);
        m.note_oldest(6_000);
        m.note_oldest(2_000);
        m.regulate(10_000);
        assert_eq!(m.cutoff_us(), 4_001, "a quarter of the way from the oldest");
        m.note_oldest(4_001);
        m.regulate(12_001);
        assert_eq!(m.cutoff_us(), 6_002);
        m.sub(1000);
        m.regulate(13_000);
        assert_eq!(m.cutoff_us(), 0);
        assert!(m.fits(400) && !m.fits(501));
        m.room_started();
        m.room_started();
        assert!(!m.room_allowed());
        m.room_stopped();
        assert!(m.room_allowed());
    }
}
