//! A room's history: a ring buffer of the last N deliveries, bounded by count, bytes and age.
//! Pure state; the room actor is its only owner. It only ever drops from the front (the
//! oldest), so what it holds is always a run of consecutive seqs: a recovery that needs a
//! dropped message is incomplete, never partial.

use crate::delivery::Delivery;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// Outcome of a recovery request.
#[derive(Debug)]
pub enum Recovery {
    /// Every message after the position is here, in order (possibly none).
    Complete(Vec<Arc<Delivery>>),
    /// The epoch differs, or history no longer holds everything after the position.
    Incomplete,
}

/// Bytes an entry holds beyond its frame (the delivery, its reference count, the slot).
pub const ENTRY_OVERHEAD: usize = 96;

/// Bytes `d` holds in a history.
pub fn cost(d: &Delivery) -> usize {
    d.frame.len() + ENTRY_OVERHEAD
}

/// Ring buffer of deliveries.
#[derive(Debug)]
pub struct History {
    entries: VecDeque<Arc<Delivery>>,
    capacity: usize,
    ttl: Duration,
    max_bytes: usize,
    bytes: usize,
}

impl History {
    /// An empty history holding up to `capacity` entries and `max_bytes` bytes, each for at
    /// most `ttl` (zero: no age limit).
    pub fn new(capacity: usize, ttl: Duration, max_bytes: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            capacity,
            ttl,
            max_bytes,
            bytes: 0,
        }
    }

    /// Appends a delivery, pushing out the oldest beyond capacity; returns how many were pushed
    /// out by the byte cap (the newest message always stays).
    pub fn push(&mut self, d: Arc<Delivery>) -> usize {
        if self.entries.len() == self.capacity {
            self.pop_oldest();
        }
        self.bytes += cost(&d);
        self.entries.push_back(d);
        let mut dropped = 0;
        while self.bytes > self.max_bytes && self.entries.len() > 1 {
            self.pop_oldest();
            dropped += 1;
        }
        dropped
    }

    /// Drops the oldest entry; false when empty.
    pub fn pop_oldest(&mut self) -> bool {
        match self.entries.pop_front() {
            Some(d) => {
                self.bytes -= cost(&d);
                true
            }
            None => false,
        }
    }

    /// When the oldest message held was published.
    pub fn oldest_us(&self) -> Option<u64> {
        self.entries.front().map(|d| d.published_us)
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Drops entries older than the ttl, measured at `now_us`.
    pub fn expire(&mut self, now_us: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let cutoff = now_us.saturating_sub(self.ttl.as_micros() as u64);
        self.expire_before(cutoff);
    }

    /// Drops entries published before `cutoff_us`; returns how many.
    pub fn expire_before(&mut self, cutoff_us: u64) -> usize {
        let mut n = 0;
        while self
            .entries
            .front()
            .is_some_and(|d| d.published_us < cutoff_us)
        {
            self.pop_oldest();
            n += 1;
        }
        n
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether history is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every message with a seq above `after_seq`, given that `current_seq` is the room's last
    /// seq: complete only if history still holds `after_seq + 1` (or nothing was missed).
    pub fn after(&self, after_seq: u64, current_seq: u64, limit: usize) -> Recovery {
        if after_seq > current_seq {
            return Recovery::Incomplete;
        }
        if after_seq == current_seq {
            return Recovery::Complete(Vec::new());
        }
        let Some(first) = self.entries.front() else {
            return Recovery::Incomplete;
        };
        if first.seq > after_seq + 1 {
            return Recovery::Incomplete;
        }
        let missed = (current_seq - after_seq) as usize;
        if missed > limit {
            return Recovery::Incomplete;
        }
        let skip = (after_seq + 1 - first.seq) as usize;
        Recovery::Complete(self.entries.iter().skip(skip).cloned().collect())
    }

    /// The last `n` entries with a seq above `floor`, oldest first.
    pub fn last(&self, n: usize, floor: u64) -> Vec<Arc<Delivery>> {
        let start = self.entries.len().saturating_sub(n);
        self.entries
            .iter()
            .skip(start)
            .filter(|d| d.seq > floor)
            .cloned()
            .collect()
    }

    /// Up to `limit` entries with a seq above `after_seq`, oldest first.
    pub fn range(&self, after_seq: u64, limit: usize) -> Vec<Arc<Delivery>> {
        self.entries
            .iter()
            .filter(|d| d.seq > after_seq)
            .take(limit)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::room::RoomName;

    fn d(seq: u64, us: u64) -> Arc<Delivery> {
        Arc::new(Delivery {
            room: RoomName::parse("r").unwrap(),
            seq,
            epoch: Arc::from("e"),
            frame: format!("{seq}").into(),
            published_us: us,
        })
    }

    fn seqs(v: &[Arc<Delivery>]) -> Vec<u64> {
        v.iter().map(|d| d.seq).collect()
    }

    #[test]
    fn recovers_what_is_held_and_refuses_gaps() {
        let mut h = History::new(3, Duration::ZERO, usize::MAX);
        for s in 1..=5 {
            h.push(d(s, s));
        }
        // Holds 3,4,5.
        match h.after(2, 5, 100) {
            Recovery::Complete(v) => assert_eq!(seqs(&v), vec![3, 4, 5]),
            Recovery::Incomplete => panic!("should recover"),
        }
        match h.after(5, 5, 100) {
            Recovery::Complete(v) => assert!(v.is_empty()),
            Recovery::Incomplete => panic!("nothing missed"),
        }
        assert!(matches!(h.after(1, 5, 100), Recovery::Incomplete));
        assert!(matches!(h.after(6, 5, 100), Recovery::Incomplete));
        assert!(matches!(h.after(2, 5, 2), Recovery::Incomplete));
        assert_eq!(seqs(&h.last(2, 0)), vec![4, 5]);
        assert_eq!(seqs(&h.last(10, 4)), vec![5]);
        assert_eq!(seqs(&h.range(3, 1)), vec![4]);
    }

    #[test]
    fn expires_by_age() {
        let mut h = History::new(10, Duration::from_micros(100), usize::MAX);
        h.push(d(1, 1_000));
        h.push(d(2, 1_050));
        h.push(d(3, 1_200));
        h.expire(1_160);
        assert_eq!(h.len(), 1);
        assert!(matches!(h.after(1, 3, 100), Recovery::Incomplete));
    }

    #[test]
    fn the_byte_cap_drops_the_oldest_and_keeps_the_newest() {
        let per = cost(&d(1, 1));
        let mut h = History::new(100, Duration::ZERO, 3 * per);
        for s in 1..=3 {
            assert_eq!(h.push(d(s, s)), 0);
        }
        assert_eq!(h.bytes(), 3 * per);
        assert_eq!(h.push(d(4, 4)), 1);
        assert_eq!(seqs(&h.last(10, 0)), vec![2, 3, 4]);
        // Dropped history is never replayed in part.
        assert!(matches!(h.after(0, 4, 100), Recovery::Incomplete));
        assert!(matches!(h.after(1, 4, 100), Recovery::Complete(_)));
        assert_eq!(h.expire_before(4), 2);
        assert_eq!(h.bytes(), per);
        assert!(h.pop_oldest() && !h.pop_oldest());
        assert_eq!(h.bytes(), 0);
    }
}
