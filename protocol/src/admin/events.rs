//! The event stream `GET /admin/v1/events`: one JSON object per text frame. The first is a
//! [`Control::Hello`]; then every [`Event`] the node observes, stamped with the node and the time
//! ([`EventRecord`]); a listener that reads too slowly gets a [`Control::Lagged`] in between.
//!
//! A reader matches on [`StreamFrame`]; a frame of a kind this build does not know still reads
//! as an [`UnknownFrame`].

use serde::{Deserialize, Serialize};

/// Something a node observed (`docs/admin-api.md`, the table of `GET /admin/v1/events`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// This node's lifecycle state changed (`observed_by` is the node).
    NodeState {
        /// New state: `joining`, `active`, `draining` or `drained`.
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
    /// A room started on this node.
    RoomCreated {
        /// Room.
        room: String,
        /// Epoch.
        epoch: String,
        /// Whether it came back from its replica.
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
    /// An operator kicked a client through this node.
    ClientKicked {
        /// Client.
        client: String,
        /// Reason.
        reason: String,
    },
    /// An operator throttled or unthrottled a client through this node.
    ClientThrottled {
        /// Client.
        client: String,
        /// Whether an override is now in force.
        throttled: bool,
    },
    /// An operator made a client's connections join a room, through this node.
    ClientJoined {
        /// Client.
        client: String,
        /// Room.
        room: String,
    },
    /// An operator made a client's connections leave a room, through this node.
    ClientLeft {
        /// Client.
        client: String,
        /// Room.
        room: String,
    },
    /// An operator published into a room (as the backend), through this node.
    RoomPublished {
        /// Room.
        room: String,
        /// The message's seq.
        seq: u64,
    },
}

/// An event as sent: the node that observed it, when, and the event's own fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// The node that observed it.
    pub observed_by: String,
    /// Unix milliseconds.
    pub at_ms: u64,
    /// The event (its `type` and fields, beside the two above).
    #[serde(flatten)]
    pub event: Event,
}

/// The stream's own frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Control {
    /// The first frame.
    Hello {
        /// The node streaming.
        observed_by: String,
        /// Its lifecycle state.
        state: String,
    },
    /// Events this listener missed because it read too slowly.
    Lagged {
        /// How many.
        missed: u64,
    },
}

/// One text frame of the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StreamFrame {
    /// Hello or lagged.
    Control(Control),
    /// An event.
    Event(EventRecord),
}

/// What every frame has, for a kind this build does not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnknownFrame {
    /// The frame's `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The node that observed it, if the frame says.
    #[serde(default)]
    pub observed_by: Option<String>,
}
