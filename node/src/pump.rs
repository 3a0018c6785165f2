//! Per-worker delivery pumps. The relay runs on the actors' runtime and every connection task
//! on one of the HTTP workers' threads; a push into a connection's queue from the relay is a
//! cross-thread wake, which costs the worker a syscall (an eventfd write) per delivery. Instead
//! the relay hands each worker one batch per event (a publish, a presence change, a re-homing):
//! the worker's pump, a task on that worker's thread, pushes the batch into the queues of its
//! connections, where waking a task is a local operation.
//!
//! Order: everything the relay sends one connection goes through that connection's pump, in the
//! relay's order. Bounds: the relay reserves a delivery's bytes in the connection's queue budget
//! before batching it (`ConnHandle::reserve`), so what waits in a pump counts against the
//! connection's limit, and overflow closes that connection with 4008 as before.
//!
//! Owns the batches in flight only; it never decides who gets what (the relay does).

use crate::outbound::{ConnHandle, Outbound};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc;

/// One batch: (connection, what to push, its bytes already reserved).
type Batch = Vec<(ConnHandle, Outbound, usize)>;

/// The way to one worker's pump. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Pump {
    id: usize,
    tx: mpsc::UnboundedSender<Batch>,
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static LOCAL: RefCell<Option<Pump>> = const { RefCell::new(None) };
}

impl Pump {
    /// The pump of the current worker thread, started on first use. Must be called on a thread
    /// with a local task set (an HTTP worker), where connection tasks run.
    pub fn local() -> Pump {
        LOCAL.with(|slot| {
            let mut slot = slot.borrow_mut();
            if let Some(p) = slot.as_ref().filter(|p| !p.tx.is_closed()) {
                return p.clone();
            }
            let (tx, rx) = mpsc::unbounded_channel();
            actix_web::rt::spawn(run(rx));
            let p = Pump {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                tx,
            };
            *slot = Some(p.clone());
            p
        })
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<Batch>) {
    while let Some(batch) = rx.recv().await {
        for (conn, out, bytes) in batch {
            conn.deliver(out, bytes);
        }
    }
}

/// Pushes gathered per pump, sent when the event is done ([`Fanout::send`]).
#[derive(Default)]
pub struct Fanout {
    batches: HashMap<usize, (Pump, Batch)>,
}

impl Fanout {
    /// Queues `out` (`bytes` long) for `conn`: through its worker's pump when it has one,
    /// directly otherwise. Overflow closes the connection (4008), as a direct push does.
    pub fn push(&mut self, conn: &ConnHandle, out: Outbound, bytes: usize) {
        let Some(pump) = conn.pump() else {
            conn.push(out, bytes);
            return;
        };
        if conn.reserve(bytes).is_ok() {
            self.batches
                .entry(pump.id)
                .or_insert_with(|| (pump.clone(), Vec::new()))
                .1
                .push((conn.clone(), out, bytes));
        }
    }

    /// Hands every batch to its pump (one wake per worker).
    pub fn send(self) {
        for (_, (pump, batch)) in self.batches {
            if let Err(mpsc::error::SendError(batch)) = pump.tx.send(batch) {
                // The worker is gone (shutdown): its connections are closing anyway.
                for (conn, _, bytes) in batch {
                    conn.release(bytes);
                }
            }
        }
    }
}
