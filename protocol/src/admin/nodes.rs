//! Nodes: `GET /stats` (one node's figures), `GET /cluster` (every node as the answering node
//! sees it) and the answer of `POST /nodes/{node}/drain|undrain`.
//!
//! [`NodeStats`] is also what a node tells a peer that asks for its figures (encoded as text
//! inside the peer's reply), so its fields are declared in alphabetical order: the text is the
//! same however it is encoded.

use serde::{Deserialize, Serialize};

/// One node's figures, as it reports them itself (`docs/admin-api.md`, `GET /admin/v1/stats`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeStats {
    /// The active nodes as this node sees them, by name.
    pub active_view: Vec<String>,
    /// The configured public listen address (`node.listen`).
    pub address: String,
    /// The configured admin listen address (`node.admin_listen`).
    pub admin_address: String,
    /// Bytes of client frames received since start.
    pub bytes_in: u64,
    /// Bytes of client frames written since start.
    pub bytes_out: u64,
    /// Open client connections.
    pub connections: u64,
    /// While draining or drained: open connections; `null` otherwise.
    pub connections_left: Option<u64>,
    /// Random 16-hex id of this process.
    pub incarnation: String,
    /// Client frames received since start.
    pub messages_in: u64,
    /// Client frames written since start.
    pub messages_out: u64,
    /// Frames received over the last second.
    pub msgs_in_per_s: f64,
    /// Frames written over the last second.
    pub msgs_out_per_s: f64,
    /// Node name.
    pub name: String,
    /// `rate_limited` answers since start.
    pub rate_limited: u64,
    /// While draining or drained: rooms this node still owns; `null` otherwise.
    pub rooms_left: Option<u64>,
    /// Room processes alive on this node (a gauge).
    pub rooms_owned: i64,
    /// Rooms with at least one connection on this node.
    pub rooms_with_local_members: u64,
    /// Resident memory in bytes (0 if unreadable).
    pub rss_bytes: u64,
    /// 4008 closes since start.
    pub slow_consumer_closes: u64,
    /// `joining`, `active`, `draining` or `drained`.
    pub state: String,
    /// Room subscriptions of this node's connections.
    pub subscriptions: u64,
    /// Seconds since start.
    pub uptime_s: u64,
    /// Crate version.
    pub version: String,
    /// Webhook events waiting (a gauge).
    pub webhook_queue: i64,
}

/// `GET /admin/v1/stats`: this node's figures and its connections' queued bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsResponse {
    /// The figures every node reports.
    #[serde(flatten)]
    pub node: NodeStats,
    /// Sum of every connection's outbound-queue bytes.
    pub queue_bytes: u64,
}

/// `GET /admin/v1/cluster`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterResponse {
    /// Peers that are not `down` but did not answer in time.
    pub missing: Vec<String>,
    /// Every node, by name.
    pub nodes: Vec<ClusterNode>,
    /// Whether `missing` is not empty.
    pub partial: bool,
}

/// One node of `/cluster`: one that answered, or a peer known to be `down`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[allow(
    clippy::large_enum_variant,
    reason = "a cluster lists a few nodes, most of them live: boxing would cost more than it saves"
)]
pub enum ClusterNode {
    /// The answering node, or a peer that answered.
    Live(LiveNode),
    /// A peer that is `down`: its last known facts.
    Down(DownNode),
}

/// A node that answered: its own figures and, for a peer, how the link to it does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveNode {
    /// Its figures.
    #[serde(flatten)]
    pub stats: NodeStats,
    /// The link to it; absent for the answering node itself.
    #[serde(flatten)]
    pub link: Option<PeerLink>,
}

/// How the answering node's link to a peer does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerLink {
    /// Times the answering node saw the peer go down and come back, or restart.
    pub reconnects: u64,
    /// Heartbeat round trip in microseconds; `null` until measured.
    pub rtt_us: Option<u64>,
}

/// A peer that is `down`, with what was last known of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownNode {
    /// Its public address.
    pub address: String,
    /// Its cluster address.
    pub cluster_address: String,
    /// Its last incarnation.
    pub incarnation: String,
    /// Its name.
    pub name: String,
    /// Times the answering node saw it go down and come back, or restart.
    pub reconnects: u64,
    /// Always `down`.
    pub state: String,
}

impl ClusterNode {
    /// The node's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Live(n) => &n.stats.name,
            Self::Down(n) => &n.name,
        }
    }

    /// Its lifecycle state (`down` for a down peer).
    pub fn state(&self) -> &str {
        match self {
            Self::Live(n) => &n.stats.state,
            Self::Down(n) => &n.state,
        }
    }

    /// Its incarnation.
    pub fn incarnation(&self) -> &str {
        match self {
            Self::Live(n) => &n.stats.incarnation,
            Self::Down(n) => &n.incarnation,
        }
    }

    /// Its public address.
    pub fn address(&self) -> &str {
        match self {
            Self::Live(n) => &n.stats.address,
            Self::Down(n) => &n.address,
        }
    }

    /// Its figures, if it answered.
    pub fn stats(&self) -> Option<&NodeStats> {
        match self {
            Self::Live(n) => Some(&n.stats),
            Self::Down(_) => None,
        }
    }

    /// Times the answering node saw it go down and come back, or restart (for a peer, down or
    /// not; `None` for the answering node itself).
    pub fn reconnects(&self) -> Option<u64> {
        match self {
            Self::Live(n) => n.link.as_ref().map(|l| l.reconnects),
            Self::Down(n) => Some(n.reconnects),
        }
    }

    /// The heartbeat round trip to it, for a peer that answered and was measured.
    pub fn rtt_us(&self) -> Option<u64> {
        match self {
            Self::Live(n) => n.link.as_ref().and_then(|l| l.rtt_us),
            Self::Down(_) => None,
        }
    }
}

/// `POST /admin/v1/nodes/{node}/drain` and `…/undrain`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCommandResponse {
    /// The node.
    pub node: String,
    /// Its state after the command (`draining` for a drain, even of a drained node).
    pub state: String,
}
