//! The room host's messages: ensure, locate and list rooms, adopt a moving room, keep a
//! replica, and the directory of rooms homed on a node that run elsewhere.

use super::ingress::SharedDelivery;
use super::listing::{ListRooms, RoomsListed};
use super::room::{Empty, RoomAt};
use crate::wire::migration::{AdoptChunk, AdoptReply};
use ractor::RpcReplyPort;
use ractor_cluster::RactorClusterMessage;
use serde::{Deserialize, Serialize};

/// Asks for a room to exist on this node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnsureRoom {
    /// Room name.
    pub room: String,
    /// The nodes the asker hears, itself included (empty from an older node).
    #[serde(default)]
    pub live: Vec<String>,
    /// Create the room when it runs nowhere (false: only say where it runs).
    #[serde(default = "yes")]
    pub create: bool,
}

fn yes() -> bool {
    true
}

/// The outcome: where the room runs, or why not.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EnsureReply {
    /// Why not.
    pub error: Option<String>,
    /// The refusal is placement settling (this node does not own the room in its own view
    /// yet): ask again shortly.
    #[serde(default)]
    pub settling: bool,
    /// Where the room runs (`None` with no error: it runs nowhere and was not to be created).
    #[serde(default)]
    pub at: Option<RoomAt>,
}

/// Every instance of a room this node knows of: those running here, then where the directory
/// says it runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Located {
    /// The instances.
    pub at: Vec<RoomAt>,
}

super::json_payloads!(Located, EnsureRoom, EnsureReply, ReplicaKey);

/// Messages accepted by a node's room host, from any node.
#[derive(RactorClusterMessage)]
pub enum RoomHostMessage {
    /// Makes sure the room runs (here, unless a live owner exists anywhere).
    #[rpc]
    Ensure(EnsureRoom, RpcReplyPort<EnsureReply>),
    /// One chunk of a room moving here; the last one starts the room with the moved state.
    #[rpc]
    Adopt(AdoptChunk, RpcReplyPort<AdoptReply>),
    /// One chunk of a room's whole state for the replica kept here (this node is its backup).
    ReplicaSync(AdoptChunk),
    /// A message just published in a room replicated here; answered once it is held, so the
    /// owner acknowledges a publish only when its replica has it.
    #[rpc]
    ReplicaAppend(SharedDelivery, RpcReplyPort<AdoptReply>),
    /// Forget the replica of a room (it moved, stopped, or chose another backup).
    ReplicaDrop(ReplicaKey),
    /// A room whose home is this node runs at `RoomAt` (sent by the room, again every
    /// `room::HOME_REFRESH`, and by a room that moves, for its successor).
    Register(RoomAt),
    /// That instance no longer runs (it stopped, moved on, or is back at its home).
    Unregister(RoomAt),
    /// Where a room runs, as far as this node knows (no creation, no asking around).
    #[rpc]
    Locate(RoomAt, RpcReplyPort<Located>),
    /// One page of the rooms running on this node (admin API).
    #[rpc]
    List(ListRooms, RpcReplyPort<RoomsListed>),
    /// Housekeeping, sent by the host to itself every second: the node's room memory is
    /// regulated, replicas too old to be restored and moves that never finished are dropped.
    Tick(Empty),
}

/// Names a replica: room and epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicaKey {
    /// Room.
    pub room: String,
    /// Epoch of the replicated room.
    pub epoch: String,
}
