//! Finding a room's owner. A live room is found through its process group `room:<name>`
//! (synchronized across the cluster); an absent room is created by the room host of its owner
//! node, chosen by rendezvous (highest-random-weight) hashing of the room name over the active
//! nodes, which every node computes alike from its view.
//!
//! Holds no room state of its own (the process groups are ractor's): there is no global room
//! map. The active-node list is the cluster manager's, shared read-only through [`Placement`].

use crate::room::RoomMessage;
use crate::room_host::{self, EnsureRoom, RoomHostMessage};
use protocol::room::RoomName;
use ractor::{ActorRef, ActorStatus};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How long a lookup may wait for a room host, milliseconds.
pub const LOOKUP_TIMEOUT_MS: u64 = 5_000;
/// How long a lookup waits for a room created on another node to appear in its group.
const APPEAR_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a room could not be found or created.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The owner's host did not answer in time or is gone.
    #[error("room host unavailable: {0}")]
    Unavailable(String),
    /// The host could not start the room.
    #[error("{0}")]
    Spawn(String),
}

/// What placement needs: this node, its room host, and the active nodes (kept by the cluster
/// manager).
#[derive(Clone)]
pub struct Placement {
    /// This node's name.
    pub node: String,
    /// This node's room host.
    pub host: ActorRef<RoomHostMessage>,
    /// Active nodes, including this one when it is active.
    pub active: Arc<RwLock<Vec<String>>>,
    /// This node's lifecycle: a node that is not active never creates a room (its view of the
    /// cluster may be incomplete, which could make a second owner).
    pub lifecycle: Arc<crate::context::Lifecycle>,
}

/// The process group of a room.
pub fn group_of(room: &RoomName) -> String {
    format!("room:{room}")
}

/// The actor name of a room instance: its group, epoch and node (the node and epoch of any
/// member of a room's group can be read off its name, without a call), plus a random tag so a
/// room that comes back to a node where its forwarder still runs gets a fresh name.
pub fn room_actor_name(room: &RoomName, epoch: &str, node: &str) -> String {
    format!(
        "{}@{epoch}~{node}~{:04x}",
        group_of(room),
        rand::random::<u16>()
    )
}

/// (epoch, node) of a room instance, from its actor name (see [`room_actor_name`]).
pub fn parse_room_actor(name: &str) -> Option<(&str, &str)> {
    let mut right = name.rsplitn(3, '~');
    let _tag = right.next()?;
    let node = right.next()?;
    let (_, epoch) = right.next()?.rsplit_once('@')?;
    Some((epoch, node))
}

/// Whether an actor counts as a live room: starting (just spawned, not yet running its first
/// message) or running. Counting a starting room as absent would let concurrent joins create a
/// second owner.
pub fn is_live(c: &ractor::ActorCell) -> bool {
    !matches!(c.get_status(), ActorStatus::Stopping | ActorStatus::Stopped)
}

/// Every live instance of a room this node can see (normally one; two for a moment during a
/// migration, or after a partition healed until the rival yields).
pub fn instances(room: &RoomName) -> Vec<ractor::ActorCell> {
    ractor::pg::get_members(&group_of(room))
        .into_iter()
        .filter(is_live)
        .collect()
}

/// Returns a live room actor, on any node, without creating it.
pub fn find(room: &RoomName) -> Option<ActorRef<RoomMessage>> {
    ractor::pg::get_members(&group_of(room))
        .into_iter()
        .find(is_live)
        .map(ActorRef::from)
}

/// A stable 64-bit hash (FNV-1a with a final mix), the same on every node and every build.
fn hash(room: &str, node: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in room
        .bytes()
        .chain(std::iter::once(0xff))
        .chain(node.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// The owner of `room` among `nodes` by rendezvous hashing (ties broken by name).
pub fn owner<'a>(room: &str, nodes: &'a [String]) -> Option<&'a str> {
    nodes
        .iter()
        .max_by(|a, b| hash(room, a).cmp(&hash(room, b)).then(b.cmp(a)))
        .map(String::as_str)
}

/// The room host of `node` (this node's own included), if reachable.
pub fn host_of(node: &str) -> Option<ActorRef<RoomHostMessage>> {
    remote_host(node)
}

fn remote_host(node: &str) -> Option<ActorRef<RoomHostMessage>> {
    let name = room_host::name_of(node);
    ractor::pg::get_members(&room_host::GROUP.to_owned())
        .into_iter()
        .find(|c| c.get_name().as_deref() == Some(name.as_str()))
        .map(ActorRef::from)
}

/// Returns the room's actor, creating it on its owner node when there is none.
pub async fn lookup(p: &Placement, room: &RoomName) -> Result<ActorRef<RoomMessage>, LookupError> {
    if let Some(r) = find(room) {
        return Ok(r);
    }
    let active = p.active.read().map(|v| v.clone()).unwrap_or_default();
    let Some(owner) = owner(room.as_str(), &active).map(str::to_owned) else {
        return Err(LookupError::Unavailable(
            "no active node to own the room yet".into(),
        ));
    };
    if owner == p.node && p.lifecycle.get() != crate::context::NodeState::Active {
        return Err(LookupError::Unavailable(format!(
            "this node is {} and creates no rooms",
            p.lifecycle.get().as_str()
        )));
    }
    let host = if owner == p.node {
        p.host.clone()
    } else {
        remote_host(&owner).ok_or_else(|| {
            LookupError::Unavailable(format!("owner node `{owner}` of `{room}` is not reachable"))
        })?
    };
    let res = ractor::call_t!(
        host,
        RoomHostMessage::Ensure,
        LOOKUP_TIMEOUT_MS,
        EnsureRoom {
            room: room.to_string()
        }
    )
    .map_err(|e| LookupError::Unavailable(e.to_string()))?;
    if let Some(e) = res.error {
        return Err(LookupError::Spawn(e));
    }
    // A room created on another node shows up here once its group membership arrives.
    let deadline = tokio::time::Instant::now() + APPEAR_TIMEOUT;
    loop {
        if let Some(r) = find(room) {
            return Ok(r);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(LookupError::Unavailable(format!(
                "room `{room}` was created on `{owner}` but is not visible yet"
            )));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_is_stable_spread_and_minimal_on_change() {
        let nodes: Vec<String> = ["node-a", "node-b", "node-c"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let mut counts = std::collections::HashMap::new();
        let mut moved = 0;
        let two: Vec<String> = nodes[..2].to_vec();
        for i in 0..3000 {
            let room = format!("room-{i}");
            let o = owner(&room, &nodes).unwrap();
            *counts.entry(o.to_owned()).or_insert(0) += 1;
            assert_eq!(owner(&room, &nodes), Some(o), "deterministic");
            let o2 = owner(&room, &two).unwrap();
            if o != "node-c" {
                assert_eq!(o, o2, "only node-c's rooms move when node-c leaves");
            } else {
                moved += 1;
            }
        }
        for n in &nodes {
            let c = counts[n];
            assert!((800..1200).contains(&c), "{n} owns {c} of 3000");
        }
        assert!(moved > 800);
        assert_eq!(owner("x", &[]), None);
    }

    #[test]
    fn room_actor_names_carry_epoch_and_node() {
        let room = RoomName::parse("chat@home:1").unwrap();
        let name = room_actor_name(&room, "0badcafe", "node-b");
        assert_eq!(parse_room_actor(&name), Some(("0badcafe", "node-b")));
        assert_eq!(parse_room_actor("gatehouse.room_hosts:node-a"), None);
    }
}
