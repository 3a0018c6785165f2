//! The admin listing of rooms as it crosses nodes: one page query and one node's page.

use super::room::RoomInfo;
use serde::{Deserialize, Serialize};

/// One page of rooms to list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RoomListQuery {
    /// Only rooms whose name contains this.
    #[serde(default)]
    pub q: Option<String>,
    /// Only rooms owned by this node or with members on it.
    #[serde(default)]
    pub node: Option<String>,
    /// Sort column (one of `room::listing::SORTS`).
    #[serde(default)]
    pub sort: String,
    /// Only rooms whose sort key comes after this one.
    #[serde(default)]
    pub after: Option<String>,
    /// At most this many.
    #[serde(default)]
    pub limit: usize,
}

/// One node's page.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RoomListPage {
    /// The page, in sort order.
    pub rooms: Vec<RoomInfo>,
    /// Rooms that match the filters (before the cursor too).
    pub total: usize,
    /// Rooms that match after the cursor (listed or not).
    pub remaining: usize,
}

super::json_or_default!(RoomListQuery, RoomListPage);
