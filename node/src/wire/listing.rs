//! The admin listing of rooms as it crosses nodes: one page query and one node's page, the admin
//! API's own types (`protocol::admin::RoomListQuery`, `protocol::admin::RoomListPage`).

use serde::{Deserialize, Serialize};

pub use protocol::admin::{RoomListPage, RoomListQuery};

/// Asks a node's room host for one page of the rooms it runs: a [`RoomListQuery`], encoded as it
/// is (a newtype only because ractor's encoding trait cannot be implemented for another crate's
/// type).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ListRooms(pub RoomListQuery);

/// The room host's answer: a [`RoomListPage`], encoded as it is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoomsListed(pub RoomListPage);

super::json_or_default!(ListRooms, RoomsListed);
