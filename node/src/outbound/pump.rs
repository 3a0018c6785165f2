//! Per-worker delivery pumps. The relay runs on the actors' runtime and every connection task
//! on one of the HTTP workers' threads; a push into a connection's queue from the relay is a
//! cross-thread wake, which costs the worker a syscall (an eventfd write) per delivery. Instead
//! the relay hands each worker one piece of `Work` per event, and the worker's pump, a task on
//! that worker's thread, takes it from there. A publish is one `Work::Room`: the message and
//! the room's subscribers on that worker, a list the relay builds when the room's membership
//! changes ([`Subscribers`]) and shares with every publish after it, so a delivery costs the
//! relay nothing and the pump no allocation and no reference count. Other events (presence, a
//! re-homing) are one batch per worker ([`Fanout`]).
//!
//! - A room message for a connection whose queue is empty and that follows the room in the
//!   message's epoch is written straight into the connection's write buffer
//!   ([`ConnLocal::room_message`]): no queue, no task wake.
//! - Everything else goes into the connection's queue (a local wake), in order.
//! - The pump takes the work that is already waiting (up to [`ROUND`] deliveries), then flushes
//!   the connections it wrote to, oldest first, [`CHUNK`] at a time, yielding to the worker's
//!   other tasks between chunks and taking the work that arrived meanwhile. A connection is flushed once however many
//!   frames it collected, so under load the messages of many publishes leave in one `write`
//!   per connection (their payloads shared until the flush gathers them: `websocket::Writer`). What the socket does not take now is left for the connection task, which
//!   waits for the socket to become writable.
//!
//! Order: everything the relay sends one connection goes through that connection's pump, in the
//! relay's order; a frame is written around the queue only when the queue is empty. Bounds: a
//! publish in flight to a pump is one shared delivery and one shared list, whatever the room's
//! size; a batch's bytes are reserved in each connection's queue budget before batching
//! (`ConnHandle::reserve`), and a room message that cannot go around the queue is pushed into
//! it under the same budget; unwritten bytes over that budget close the connection with 4008.
//!
//! Owns the work in flight and the worker's table of connections (slots); never decides who
//! gets what (the relay does).

use crate::delivery::Delivery;
use crate::ids::{now_micros, ConnId};
use crate::metrics::{Metrics, LATENCY_SAMPLE};
use crate::outbound::local::{ConnLocal, RoomWrite};
use crate::outbound::{ConnHandle, Outbound};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// One batch: (connection, what to push, its bytes already reserved).
type Batch = Vec<(ConnHandle, Outbound, usize)>;

/// What the relay hands a pump.
enum Work {
    /// Pushes gathered by a [`Fanout`].
    Batch(Batch),
    /// One publish for a room's subscribers on this worker.
    Room(Arc<Delivery>, Arc<[Sub]>),
}

/// A subscriber as a pump finds it: its slot and id inline, so a delivery goes from this
/// list to the worker-local state without reading the handle.
pub struct Sub {
    conn: ConnHandle,
    id: ConnId,
    slot: usize,
}

impl Work {
    /// Connections this work is for.
    fn deliveries(&self) -> usize {
        match self {
            Work::Batch(b) => b.len(),
            Work::Room(_, subs) => subs.len(),
        }
    }
}

/// Most deliveries taken between two flush chunks (a publish to a room counts its subscribers
/// on this worker): taking is cheap, but a pump that took every publish waiting before flushing
/// again left the sockets idle for as long as that took (at 10 000 subscribers, a backlog of 100
/// publishes is a million deliveries), and the worker's other tasks, the publisher's among them,
/// waited that long too.
pub const ROUND: usize = 16 * 1024;

/// Connections flushed before the pump yields to the worker's other tasks.
pub const CHUNK: usize = 256;

/// Emptied batches kept for reuse, per pump.
const SPARE_BATCHES: usize = 4;

/// Largest batch (entries) kept for reuse; a bigger one is freed.
const SPARE_MAX_LEN: usize = 1 << 16;

/// The way to one worker's pump. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Pump {
    id: usize,
    tx: mpsc::UnboundedSender<Work>,
    /// Batches the pump emptied, handed back to the relay for the next publish. A batch for a
    /// big room is hundreds of KiB: allocating it per publish meant a fresh mapping (the
    /// allocator maps blocks of 4 KiB and more, see `memory`), page faults and zeroing each
    /// time, which at saturation cost more than the delivery itself.
    spare: Arc<Mutex<Vec<Batch>>>,
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// The worker's connections, by slot.
#[derive(Default)]
struct Slots {
    slots: Vec<Option<Rc<ConnLocal>>>,
    free: Vec<usize>,
}

thread_local! {
    static LOCAL: RefCell<Option<Pump>> = const { RefCell::new(None) };
    static SLOTS: RefCell<Slots> = RefCell::new(Slots::default());
}

impl Pump {
    /// The pump of the current worker thread, started on first use. Must be called on a thread
    /// with a local task set (an HTTP worker), where connection tasks run.
    pub fn local(metrics: &Arc<Metrics>) -> Pump {
        LOCAL.with(|slot| {
            let mut slot = slot.borrow_mut();
            if let Some(p) = slot.as_ref().filter(|p| !p.tx.is_closed()) {
                return p.clone();
            }
            let (tx, rx) = mpsc::unbounded_channel();
            let spare = Arc::new(Mutex::new(Vec::new()));
            actix_web::rt::spawn(run(rx, spare.clone(), metrics.clone()));
            let p = Pump {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                tx,
                spare,
            };
            *slot = Some(p.clone());
            p
        })
    }

    /// Gives a connection of this worker a slot, so the pump can write to it directly.
    pub fn register(local: Rc<ConnLocal>) -> usize {
        SLOTS.with(|s| {
            let mut s = s.borrow_mut();
            if let Some(i) = s.free.pop() {
                s.slots[i] = Some(local);
                i
            } else {
                s.slots.push(Some(local));
                s.slots.len() - 1
            }
        })
    }

    /// Frees a connection's slot; from then on the pump only queues for it.
    pub fn unregister(slot: usize) {
        SLOTS.with(|s| {
            let mut s = s.borrow_mut();
            if let Some(entry) = s.slots.get_mut(slot) {
                if entry.take().is_some() {
                    s.free.push(slot);
                }
            }
        });
    }
}

impl Slots {
    /// The worker-local side of connection `id`, if it is in `slot` (slots are reused).
    fn at(&self, slot: usize, id: ConnId) -> Option<&Rc<ConnLocal>> {
        self.slots
            .get(slot)
            .and_then(Option::as_ref)
            .filter(|l| l.id == id)
    }

    /// The worker-local side of `conn`, if it has a slot on this worker.
    fn get(&self, conn: &ConnHandle) -> Option<&Rc<ConnLocal>> {
        let (_, i) = conn.pump()?;
        self.at(*i, conn.id)
    }
}

/// What the pump wrote and has not flushed yet.
#[derive(Default)]
struct Round {
    /// Connections with frames waiting, oldest first.
    dirty: VecDeque<Rc<ConnLocal>>,
    frames: u64,
    bytes: u64,
    sample: u64,
}

async fn run(
    mut rx: mpsc::UnboundedReceiver<Work>,
    spare: Arc<Mutex<Vec<Batch>>>,
    metrics: Arc<Metrics>,
) {
    let mut round = Round::default();
    let give_back = |work: Work| {
        let Work::Batch(batch) = work else {
            return;
        };
        if batch.capacity() <= SPARE_MAX_LEN {
            if let Ok(mut s) = spare.lock() {
                if s.len() < SPARE_BATCHES {
                    s.push(batch);
                }
            }
        }
    };
    loop {
        if round.dirty.is_empty() {
            let Some(work) = rx.recv().await else {
                return;
            };
            give_back(take(work, &mut round, &metrics));
        }
        let mut taken = 0;
        while taken < ROUND {
            match rx.try_recv() {
                Ok(work) => {
                    taken += work.deliveries();
                    give_back(take(work, &mut round, &metrics));
                }
                Err(_) => break,
            }
        }
        flush(&mut round, &metrics);
        if !round.dirty.is_empty() {
            // Let the worker's other tasks run (and more publishes arrive) before the next
            // chunk: under load, a connection flushed later leaves with more frames per write.
            tokio::task::yield_now().await;
        }
    }
}

/// Delivers a piece of work; returns what is left of it (an emptied batch, for reuse).
fn take(mut work: Work, round: &mut Round, metrics: &Metrics) -> Work {
    SLOTS.with(|s| {
        let slots = s.borrow();
        match &mut work {
            Work::Batch(batch) => {
                for (conn, out, bytes) in batch.drain(..) {
                    if let (Outbound::Room(d), Some(local)) = (&out, slots.get(&conn)) {
                        match write_room(local, d, round, metrics) {
                            RoomWrite::Written | RoomWrite::Duplicate => {
                                conn.release(bytes);
                                continue;
                            }
                            // The connection task fills a gap before it writes.
                            RoomWrite::Other | RoomWrite::Gap => {}
                        }
                    }
                    conn.deliver(out, bytes);
                }
            }
            Work::Room(d, subs) => {
                let bytes = d.frame.len();
                for sub in subs.iter() {
                    if let Some(local) = slots.at(sub.slot, sub.id) {
                        if local.shared.closing()
                            || matches!(
                                write_room(local, d, round, metrics),
                                RoomWrite::Written | RoomWrite::Duplicate
                            )
                        {
                            continue;
                        }
                    }
                    sub.conn.push(Outbound::Room(d.clone()), bytes);
                }
            }
        }
    });
    work
}

/// Writes room message `d` straight into `conn`'s write buffer when its queue is empty and it
/// follows the room in `d`'s epoch; [`RoomWrite::Other`] or [`RoomWrite::Gap`] when the connection's queue must
/// take it.
fn write_room(
    local: &Rc<ConnLocal>,
    d: &Arc<Delivery>,
    round: &mut Round,
    metrics: &Metrics,
) -> RoomWrite {
    if !local.shared.queue_empty() {
        return RoomWrite::Other;
    }
    let written = local.room_message(d);
    if written == RoomWrite::Written {
        round.frames += 1;
        round.bytes += d.frame.len() as u64;
        round.sample = round.sample.wrapping_add(1);
        if round.sample.is_multiple_of(LATENCY_SAMPLE) {
            let us = now_micros().saturating_sub(d.published_us);
            metrics.deliver_latency.observe(us as f64 / 1e6);
        }
        let n = local.unflushed.get();
        local.unflushed.set(n.saturating_add(1));
        if n == 0 {
            round.dirty.push_back(local.clone());
        }
    }
    written
}

/// Flushes the oldest [`CHUNK`] connections with frames waiting.
fn flush(round: &mut Round, metrics: &Metrics) {
    if round.frames > 0 {
        metrics.messages_out.inc_by(round.frames);
        metrics.bytes_out.inc_by(round.bytes);
        round.frames = 0;
        round.bytes = 0;
    }
    for _ in 0..CHUNK {
        let Some(local) = round.dirty.pop_front() else {
            return;
        };
        let shared = &local.shared;
        let n = local.unflushed.replace(0);
        shared.msgs_out.fetch_add(u64::from(n), Ordering::Relaxed);
        let mut writer = local.writer.borrow_mut();
        match writer.try_flush(&local.io) {
            Ok(true) => {}
            Ok(false) if writer.over_budget(shared.max_queued_bytes) => shared.overflow(),
            // The rest waits for the socket: the connection task takes it from here (and a
            // failed socket ends the connection there).
            Ok(false) | Err(_) => shared.wake.notify_one(),
        }
    }
}

/// Pushes gathered per pump, sent when the event is done ([`Fanout::send`]).
#[derive(Default)]
pub struct Fanout {
    /// One batch per worker (a handful: found by a scan).
    batches: Vec<(Pump, Batch)>,
}

impl Fanout {
    /// Queues `out` (`bytes` long) for `conn`: through its worker's pump when it has one,
    /// directly otherwise. Overflow closes the connection (4008), as a direct push does.
    pub fn push(&mut self, conn: &ConnHandle, out: Outbound, bytes: usize) {
        let Some((pump, _)) = conn.pump() else {
            conn.push(out, bytes);
            return;
        };
        if conn.reserve(bytes).is_ok() {
            let i = match self.batches.iter().position(|(p, _)| p.id == pump.id) {
                Some(i) => i,
                None => {
                    let batch = pump
                        .spare
                        .lock()
                        .ok()
                        .and_then(|mut s| s.pop())
                        .unwrap_or_default();
                    self.batches.push((pump.clone(), batch));
                    self.batches.len() - 1
                }
            };
            self.batches[i].1.push((conn.clone(), out, bytes));
        }
    }

    /// Hands every batch to its pump (one wake per worker).
    pub fn send(self) {
        for (pump, batch) in self.batches {
            if let Err(mpsc::error::SendError(Work::Batch(batch))) =
                pump.tx.send(Work::Batch(batch))
            {
                // The worker is gone (shutdown): its connections are closing anyway.
                for (conn, _, bytes) in batch {
                    conn.release(bytes);
                }
            }
        }
    }
}

/// One room's subscribers on this node, grouped by worker: what a publish is handed to the
/// pumps with. The relay builds it when the room's membership changed and shares it with every
/// publish until the next change, so a publish costs the relay one message per worker.
#[derive(Default)]
pub struct Subscribers {
    /// Per pump, its connections.
    by_pump: Vec<(Pump, Arc<[Sub]>)>,
    /// Connections without a pump: queued directly.
    direct: Vec<ConnHandle>,
}

impl Subscribers {
    /// Groups `conns` by their worker's pump.
    pub fn new<'a>(conns: impl Iterator<Item = &'a ConnHandle>) -> Self {
        let mut groups: Vec<(Pump, Vec<Sub>)> = Vec::new();
        let mut direct = Vec::new();
        for conn in conns {
            let Some((pump, slot)) = conn.pump() else {
                direct.push(conn.clone());
                continue;
            };
            let sub = Sub {
                conn: conn.clone(),
                id: conn.id,
                slot: *slot,
            };
            match groups.iter_mut().find(|(p, _)| p.id == pump.id) {
                Some((_, g)) => g.push(sub),
                None => groups.push((pump.clone(), vec![sub])),
            }
        }
        Self {
            by_pump: groups.into_iter().map(|(p, g)| (p, g.into())).collect(),
            direct,
        }
    }

    /// Hands `d` to every subscriber: one message per worker's pump. A subscriber whose
    /// queue overflows is closed with 4008 (by its pump, or here for a connection without one).
    pub fn deliver(&self, d: &Arc<Delivery>) {
        for (pump, subs) in &self.by_pump {
            // A worker that is gone (shutdown) takes its connections with it.
            let _ = pump.tx.send(Work::Room(d.clone(), subs.clone()));
        }
        for conn in &self.direct {
            conn.push(Outbound::Room(d.clone()), d.frame.len());
        }
    }
}
