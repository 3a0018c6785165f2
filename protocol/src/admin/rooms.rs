//! Rooms: `GET /rooms` (a page, from every node), `GET /rooms/{room}` (a room and a page of its
//! members), `POST /rooms/{room}/migrate`; and the page query and page each node answers for the
//! rooms it runs when `/rooms` is built.
//!
//! [`RoomInfo`], [`Member`], [`RoomListQuery`] and [`RoomListPage`] also cross between nodes:
//! their field order is the inter-node encoding and does not change, and fields added later
//! default (an older peer leaves them out).

use serde::{Deserialize, Serialize};

/// One room as its owner reports it (`docs/admin-api.md`, `GET /admin/v1/rooms`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// Room name.
    pub name: String,
    /// The node the room lives on.
    pub owner: String,
    /// Distinct client ids, on every node.
    pub members: usize,
    /// Nodes with member connections.
    pub nodes: Vec<String>,
    /// Current seq.
    pub seq: u64,
    /// Epoch.
    pub epoch: String,
    /// Messages held in history.
    pub history_len: usize,
    /// Whether the room has a snapshot.
    pub has_snapshot: bool,
    /// Publishes in the last full second.
    #[serde(default)]
    pub msgs_per_s: f64,
    /// The node keeping the room's replica; `null` while it is synced, and in a one-node
    /// cluster.
    #[serde(default)]
    pub backup: Option<String>,
}

/// One member of a room: a client id, its user, and the node it is connected to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Client id.
    pub client: String,
    /// User id.
    pub user: String,
    /// Node the client is on.
    pub node: String,
}

/// `GET /admin/v1/rooms`: one page of rooms from every node that answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoomsResponse {
    /// Nodes that did not answer within 10 s (the rooms they run are left out).
    pub missing: Vec<String>,
    /// Cursor of the next page; `null` on the last.
    pub next_cursor: Option<String>,
    /// Whether `missing` is not empty.
    pub partial: bool,
    /// The page, in sort order.
    pub rooms: Vec<RoomInfo>,
    /// Rooms that match the filters, on every page.
    pub total: usize,
}

/// `GET /admin/v1/rooms/{room}`: the room's fields as in the list, with a page of its members
/// instead of their number, and every live instance of the room.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoomDetail {
    /// The node keeping the replica, or `null`.
    pub backup: Option<String>,
    /// Epoch.
    pub epoch: String,
    /// Whether the room has a snapshot.
    pub has_snapshot: bool,
    /// Messages held in history.
    pub history_len: usize,
    /// Every live instance, as every node reached reports it (one, but for a moment during a
    /// migration or after a partition healed).
    pub instances: Vec<RoomInstance>,
    /// This page of members, by client id.
    pub members: Vec<Member>,
    /// The member count.
    pub members_total: usize,
    /// Publishes in the last full second.
    pub msgs_per_s: f64,
    /// Room name.
    pub name: String,
    /// Cursor of the next page of members; `null` on the last.
    pub next_cursor: Option<String>,
    /// Nodes with member connections.
    pub nodes: Vec<String>,
    /// The node the room lives on.
    pub owner: String,
    /// Current seq.
    pub seq: u64,
}

impl RoomDetail {
    /// The room `info` with a page of its `members`.
    pub fn new(
        info: RoomInfo,
        members: Vec<Member>,
        next_cursor: Option<String>,
        instances: Vec<RoomInstance>,
    ) -> Self {
        Self {
            backup: info.backup,
            epoch: info.epoch,
            has_snapshot: info.has_snapshot,
            history_len: info.history_len,
            instances,
            members,
            members_total: info.members,
            msgs_per_s: info.msgs_per_s,
            name: info.name,
            next_cursor,
            nodes: info.nodes,
            owner: info.owner,
            seq: info.seq,
        }
    }
}

/// One live instance of a room.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInstance {
    /// Its epoch.
    pub epoch: String,
    /// The node it runs on.
    pub node: String,
}

/// The body of `POST /admin/v1/rooms/{room}/migrate`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrateRequest {
    /// The target node, which must be active.
    pub to: String,
}

/// The answer to a migrate: where the room went, and its seq and epoch at the hand-off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrateResponse {
    /// Epoch (unchanged by a move).
    pub epoch: String,
    /// The node that owned the room.
    pub from: String,
    /// Room name.
    pub room: String,
    /// Seq at the hand-off.
    pub seq: u64,
    /// The node that owns it now.
    pub to: String,
}

/// One page of `/rooms` as every node computes it for the rooms it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomListQuery {
    /// Only rooms whose name contains this.
    #[serde(default)]
    pub q: Option<String>,
    /// Only rooms owned by this node or with members on it.
    #[serde(default)]
    pub node: Option<String>,
    /// Sort column (one of [`super::ROOM_SORTS`]).
    #[serde(default)]
    pub sort: String,
    /// Only rooms whose sort key comes after this one.
    #[serde(default)]
    pub after: Option<String>,
    /// At most this many.
    #[serde(default)]
    pub limit: usize,
}

/// One node's page of the rooms it runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoomListPage {
    /// The page, in sort order.
    pub rooms: Vec<RoomInfo>,
    /// Rooms that match the filters (before the cursor too).
    pub total: usize,
    /// Rooms that match after the cursor (listed or not).
    pub remaining: usize,
}
