//! Client connections: `GET /clients` (a page, from every node), `GET /clients/{client}`, kick,
//! throttle and unthrottle; and the page query a node sends every peer to build `/clients`.
//!
//! [`ClientSummary`], [`RateLimitView`] and [`ClientQuery`] also cross between nodes: their
//! field order is the inter-node encoding and does not change.

use serde::{Deserialize, Serialize};

/// One connection as listed (`docs/admin-api.md`, `GET /admin/v1/clients`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSummary {
    /// Client id.
    pub id: String,
    /// User id.
    pub user: String,
    /// The node the connection is on.
    pub node: String,
    /// Connection number on that node.
    pub conn: u64,
    /// Peer IP, without the port.
    pub remote_addr: String,
    /// Number of rooms joined.
    pub rooms: usize,
    /// When the connection opened, Unix seconds.
    pub connected_at: u64,
    /// Frames received from the connection.
    pub msgs_in: u64,
    /// Frames written to it.
    pub msgs_out: u64,
    /// Bytes waiting in its outbound queue.
    pub queue_bytes: usize,
    /// Limits in force.
    pub rate_limit: RateLimitView,
    /// Whether an operator throttle is in force.
    pub throttled: bool,
}

/// Rate limits in force on a connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitView {
    /// Messages per second.
    pub msgs_per_sec: u32,
    /// Burst.
    pub burst: u32,
    /// Bytes per second.
    pub bytes_per_sec: u64,
}

/// `GET /admin/v1/clients`: one page of connections from every node that answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientsResponse {
    /// The page, in sort order.
    pub clients: Vec<ClientSummary>,
    /// Peers that did not answer within 2 s.
    pub missing: Vec<String>,
    /// Cursor of the next page; `null` on the last.
    pub next_cursor: Option<String>,
    /// Whether `missing` is not empty.
    pub partial: bool,
    /// Connections that match the filters, on every page.
    pub total: usize,
}

/// `GET /admin/v1/clients/{client}`: the first connection's entry, plus every connection of
/// the client id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientDetail {
    /// The first connection (this node's first, then the peers' by node name).
    #[serde(flatten)]
    pub first: ClientSummary,
    /// Every connection of the client on every node that answered.
    pub connections: Vec<ClientSummary>,
}

/// The body of `POST /admin/v1/clients/{client}/kick` (optional, as is `reason`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KickRequest {
    /// At most [`super::MAX_REASON_BYTES`]; absent: [`super::DEFAULT_KICK_REASON`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer to a kick.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KickResponse {
    /// Client id.
    pub client: String,
    /// Connections closed.
    pub kicked: usize,
}

/// The body of `POST /admin/v1/clients/{client}/throttle`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleRequest {
    /// Messages per second, above 0.
    pub msgs_per_sec: u32,
    /// Burst, at least 1 (it may be below `msgs_per_sec`).
    pub burst: u32,
    /// Bytes per second, at least `limits.max_message_bytes`; absent: `limits.bytes_per_sec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_sec: Option<u64>,
}

/// The answer to a throttle: the limits now in force.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottleResponse {
    /// Burst.
    pub burst: u32,
    /// Bytes per second.
    pub bytes_per_sec: u64,
    /// Client id.
    pub client: String,
    /// Connections that received the limits.
    pub connections: usize,
    /// Messages per second.
    pub msgs_per_sec: u32,
}

/// The answer to `DELETE /admin/v1/clients/{client}/throttle`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnthrottleResponse {
    /// Client id.
    pub client: String,
    /// Connections that got the default limits back.
    pub connections: usize,
}

/// One page of `/clients` as every node computes it for its own connections (the node that
/// answers merges the pages).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientQuery {
    /// Substring of the client id or user id.
    pub q: Option<String>,
    /// Only connections on this node.
    pub node: Option<String>,
    /// Only these clients (the members of a room, looked up once by the asker).
    pub members: Option<Vec<String>>,
    /// Sort column (one of [`super::CLIENT_SORTS`]).
    pub sort: String,
    /// Only rows whose key sorts after this cursor.
    pub after: Option<String>,
    /// Rows per page.
    pub limit: usize,
}
