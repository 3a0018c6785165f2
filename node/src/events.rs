//! The node's event log for operators: what this node observes (its own state, its peers going
//! up, down or restarting, rooms created, restored, moved or closed here, clients kicked or
//! throttled, drains), fanned out to every `GET /admin/v1/events` WebSocket. The events are the
//! admin API's own (`protocol::admin::Event`), each sent stamped as a
//! `protocol::admin::EventRecord`.
//!
//! A bounded broadcast channel: a slow listener misses events (and is told how many), it never
//! slows the node. Emitting without listeners costs one atomic load.

use protocol::admin::EventRecord;
use std::sync::{Arc, OnceLock};
use tokio::sync::broadcast;

pub use protocol::admin::Event;

/// Events kept for a listener that falls behind.
const BUFFER: usize = 1024;

struct Bus {
    node: String,
    tx: broadcast::Sender<Arc<str>>,
}

static BUS: OnceLock<Bus> = OnceLock::new();

/// Starts the log for node `node` (once per process).
pub fn init(node: &str) {
    let _ = BUS.set(Bus {
        node: node.to_owned(),
        tx: broadcast::channel(BUFFER).0,
    });
}

/// Records an event (dropped when nobody listens).
pub fn emit(event: Event) {
    let Some(bus) = BUS.get() else { return };
    if bus.tx.receiver_count() == 0 {
        return;
    }
    let record = EventRecord {
        observed_by: bus.node.clone(),
        at_ms: crate::webhook::now_ms(),
        event,
    };
    if let Ok(json) = serde_json::to_string(&record) {
        let _ = bus.tx.send(Arc::from(json));
    }
}

/// A new listener.
pub fn subscribe() -> Option<broadcast::Receiver<Arc<str>>> {
    BUS.get().map(|b| b.tx.subscribe())
}
