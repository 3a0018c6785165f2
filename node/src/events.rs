//! The node's event log for operators: what this node observes (its own state, its peers going
//! up, down or restarting, rooms created, restored, moved or closed here, clients kicked or
//! throttled, drains), fanned out to every `GET /admin/v1/events` WebSocket.
//!
//! A bounded broadcast channel: a slow listener misses events (and is told how many), it never
//! slows the node. Emitting without listeners costs one atomic load.

use serde::Serialize;
use std::sync::{Arc, OnceLock};
use tokio::sync::broadcast;

/// Events kept for a listener that falls behind.
const BUFFER: usize = 1024;

/// One event.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// This node's lifecycle state changed (`observed_by` is the node).
    NodeState {
        /// New state.
        state: String,
    },
    /// A peer joined (or came back).
    PeerUp {
        /// Peer.
        node: String,
    },
    /// A peer is down.
    PeerDown {
        /// Peer.
        node: String,
        /// Why (`silent`, `link closed`).
        reason: String,
    },
    /// A peer restarted (new incarnation).
    PeerRestarted {
        /// Peer.
        node: String,
    },
    /// A room started on this node (`restored`: from its replica).
    RoomCreated {
        /// Room.
        room: String,
        /// Epoch.
        epoch: String,
        /// Whether it came back from a replica.
        restored: bool,
    },
    /// A room owned here moved to another node.
    RoomMigrated {
        /// Room.
        room: String,
        /// Old owner.
        from: String,
        /// New owner.
        to: String,
    },
    /// A room owned here stopped (idle).
    RoomClosed {
        /// Room.
        room: String,
    },
    /// An operator kicked a client.
    ClientKicked {
        /// Client.
        client: String,
        /// Reason.
        reason: String,
    },
    /// An operator throttled or unthrottled a client.
    ClientThrottled {
        /// Client.
        client: String,
        /// Whether an override is now in force.
        throttled: bool,
    },
}

/// An event with its origin and time, as sent.
#[derive(Debug, Clone, Serialize)]
struct Stamped<'a> {
    /// Node that observed it.
    observed_by: &'a str,
    /// Milliseconds since the Unix epoch.
    at_ms: u64,
    #[serde(flatten)]
    event: &'a Event,
}

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
    let stamped = Stamped {
        observed_by: &bus.node,
        at_ms: crate::webhook::now_ms(),
        event: &event,
    };
    if let Ok(json) = serde_json::to_string(&stamped) {
        let _ = bus.tx.send(Arc::from(json));
    }
}

/// A new listener.
pub fn subscribe() -> Option<broadcast::Receiver<Arc<str>>> {
    BUS.get().map(|b| b.tx.subscribe())
}
