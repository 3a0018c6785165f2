//! The cluster endpoint's messages: heartbeats, and what the admin API asks of another node
//! (its stats, its connections, a drain, a client's connections joining or leaving a room).
//!
//! Each payload is one serde struct encoded as JSON (`BytesConvertable`), so fields can be added
//! with `#[serde(default)]` without a lockstep upgrade; variants are never renamed (the derive
//! identifies a variant by its name). A payload that does not decode becomes a value marked
//! invalid (`version == 0`), never a panic. Changing anything here is a cluster-upgrade event
//! (ARCHITECTURE.md, "Compatibility").

use ractor::RpcReplyPort;
use ractor_cluster::RactorClusterMessage;
use serde::{Deserialize, Serialize};

/// The limits one connection enforces.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Inbound messages per second.
    pub msgs_per_sec: u32,
    /// Inbound message burst.
    pub burst: u32,
    /// Inbound bytes per second.
    pub bytes_per_sec: u64,
}

/// The connections a node lists for the admin API and the page query it answers with them are
/// the admin API's own types (`protocol::admin`), carried as they are.
pub use protocol::admin::{ClientQuery, ClientSummary, RateLimitView};

/// What a node tells every peer twice a second: who it is, its state, and who it knows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Cluster protocol version (0 marks an undecodable payload).
    pub version: u32,
    /// Logical node name.
    pub name: String,
    /// Incarnation id of the sender's process.
    pub incarnation: String,
    /// Cluster address peers dial (`host:port`).
    pub addr: String,
    /// Admin/public addresses, for operators.
    #[serde(default)]
    pub public_addr: String,
    /// Lifecycle state (`joining|active|draining|drained`).
    pub state: String,
    /// Send time, microseconds since the Unix epoch.
    pub sent_us: u64,
    /// The `sent_us` of the last heartbeat the sender got from the recipient (0: none).
    #[serde(default)]
    pub echo_us: u64,
    /// How long the sender held that heartbeat before this one, microseconds.
    #[serde(default)]
    pub hold_us: u64,
    /// The sender's view of the cluster, for discovery.
    #[serde(default)]
    pub members: Vec<Member>,
}

/// One member as gossiped in a heartbeat.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Member {
    /// Logical name.
    pub name: String,
    /// Incarnation.
    pub incarnation: String,
    /// Cluster address.
    pub addr: String,
    /// State as the sender sees it (including `down`).
    pub state: String,
}

/// Asks a node for its statistics (admin API, answered from any node).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatsRequest {
    /// Cluster protocol version of the asker.
    pub version: u32,
}

/// A node's statistics as the admin API shows them (`protocol::admin::NodeStats` encoded as a
/// JSON object, kept as text).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatsReply {
    /// The JSON object.
    pub json: String,
}

/// Something to do with the connections of the node that receives it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ClientsRequest {
    /// Enqueue an encoded frame on every connection of a user.
    SendToUser {
        /// User id.
        user: String,
        /// Encoded frame.
        frame: String,
    },
    /// Close every connection of a client.
    Kick {
        /// Client id.
        client: String,
        /// Close code.
        code: u16,
        /// Reason.
        reason: String,
    },
    /// Set (or clear) a client's limits.
    Throttle {
        /// Client id.
        client: String,
        /// New limits, `None` to return to the defaults.
        limits: Option<Limits>,
    },
    /// One page of the connections that match a query: each node filters, sorts and cuts its
    /// own, so a page costs `limit` rows per node on the wire, not every connection.
    Page(ClientQuery),
    /// A request that did not decode (from a peer of another build): answered empty.
    #[default]
    Invalid,
    /// One client's connections.
    Get {
        /// Client id.
        client: String,
    },
    /// Every connection of a client joins a room (an operator's join). Added after cluster
    /// protocol 2 shipped: a node of an earlier build reads it as [`ClientsRequest::Invalid`]
    /// and answers that it has no connection of the client.
    Join {
        /// Client id.
        client: String,
        /// Room name.
        room: String,
    },
    /// Every connection of a client leaves a room (an operator's leave); as for `Join`.
    Leave {
        /// Client id.
        client: String,
        /// Room name.
        room: String,
    },
}

/// The answer: how many connections were affected, and listed connections.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClientsReply {
    /// Connections affected.
    pub count: usize,
    /// Connections listed.
    pub clients: Vec<ClientSummary>,
    /// For a page: how many matching connections come after the cursor (listed or not),
    /// counted up to `limit + 1` (a node of an earlier build counts them all): the node that
    /// merges the pages only asks whether their sum exceeds the page, which the capped count
    /// answers the same way.
    #[serde(default)]
    pub remaining: usize,
    /// For a join or leave: connections of the client already in (join) or not in (leave) the
    /// room. Left out when 0, so the replies of other requests encode as before.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unchanged: usize,
    /// For a join: why a connection of the client refused it (the first refusal), if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Why a connection refused to join a room: the client protocol's error code (`forbidden`,
/// `too_many_rooms`, `unavailable`) and its message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// Error code, as the client protocol names it.
    pub code: String,
    /// Why.
    pub message: String,
}

/// A lifecycle command for the node that receives it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeCommand {
    /// `drain` or `undrain`.
    pub op: String,
}

/// The node's state after the command.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeCommandReply {
    /// Lifecycle state.
    pub state: String,
    /// Why the command was refused.
    pub error: Option<String>,
}

crate::wire::json_or_default!(
    Heartbeat,
    StatsRequest,
    StatsReply,
    ClientsRequest,
    ClientsReply,
    NodeCommand,
    NodeCommandReply
);

/// Messages accepted by a node's cluster endpoint, from any node.
#[derive(RactorClusterMessage)]
pub enum EndpointMessage {
    /// A peer's heartbeat.
    Heartbeat(Heartbeat),
    /// The node's statistics.
    #[rpc]
    Stats(StatsRequest, RpcReplyPort<StatsReply>),
    /// Act on (or list) the node's connections.
    #[rpc]
    Clients(ClientsRequest, RpcReplyPort<ClientsReply>),
    /// Drain or undrain the node.
    #[rpc]
    Node(NodeCommand, RpcReplyPort<NodeCommandReply>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::CLUSTER_PROTOCOL_VERSION;
    use ractor::BytesConvertable;

    #[test]
    fn payloads_round_trip_and_garbage_is_marked_invalid() {
        let hb = Heartbeat {
            version: CLUSTER_PROTOCOL_VERSION,
            name: "node-a".into(),
            members: vec![Member {
                name: "node-b".into(),
                ..Member::default()
            }],
            ..Heartbeat::default()
        };
        let back = Heartbeat::from_bytes(hb.clone().into_bytes());
        assert_eq!(back.name, "node-a");
        assert_eq!(back.members.len(), 1);
        assert_eq!(Heartbeat::from_bytes(b"\xff not json".to_vec()).version, 0);
        // Unknown fields from a newer peer are ignored.
        let newer = br#"{"version":1,"name":"x","incarnation":"i","addr":"a","state":"active","sent_us":1,"future":true}"#;
        assert_eq!(Heartbeat::from_bytes(newer.to_vec()).name, "x");
    }

    #[test]
    fn join_and_leave_are_additive() {
        // A request this build does not know (as `join` is to an earlier one) reads as invalid.
        let newer = br#"{"op":"rename","client":"c_1","room":"r"}"#;
        assert!(matches!(
            ClientsRequest::from_bytes(newer.to_vec()),
            ClientsRequest::Invalid
        ));
        // A reply of an earlier build reads with nothing unchanged and no refusal; a reply that
        // carries neither encodes as before.
        let older = br#"{"count":1,"clients":[],"remaining":0}"#;
        let r = ClientsReply::from_bytes(older.to_vec());
        assert_eq!((r.count, r.unchanged, r.refused.clone()), (1, 0, None));
        assert_eq!(r.into_bytes(), older.to_vec());
    }
}
