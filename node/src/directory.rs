//! Finding a room's owner. On its own node a room is found through its local process group
//! `room:<name>`. From any other node it is found through its *home*: the node that would own
//! it by rendezvous (highest-random-weight) hashing of the room name over the active nodes,
//! which every node computes alike from its view. The home's room host knows where each of its
//! rooms runs (it runs them itself, or they told it), and creates an absent room there.
//!
//! Holds no room state of its own: there is no global room map, and a node holds nothing for a
//! room it neither owns, backs up, holds members of nor is the home of. The active-node list is
//! the cluster manager's, shared read-only through [`Placement`].

use crate::placement::{host_of, owner, Membership};
use crate::room_access::address::RoomRef;
use crate::wire::host::{EnsureRoom, RoomHostMessage};
use crate::wire::names::group_of;
use crate::wire::room::RoomAt;
use protocol::room::RoomName;
use ractor::ActorRef;
use std::sync::Arc;
use std::time::Duration;

use crate::groups::is_live;

/// How long a lookup may wait for a room host, milliseconds.
pub const LOOKUP_TIMEOUT_MS: u64 = 5_000;
/// How long a lookup keeps asking while the owner asked declines because placement is
/// settling (views converge within a heartbeat or two).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a room could not be found or created.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The owner's host did not answer in time or is gone.
    #[error("room host unavailable: {0}")]
    Unavailable(String),
    /// The host could not start the room.
    #[error("{0}")]
    Spawn(String),
    /// The node asked does not own the room in its own view yet (asked again meanwhile).
    #[error("placement settling: {0}")]
    Settling(String),
}

/// What placement needs: this node, its room host, and the cluster's membership (kept by the
/// cluster manager).
#[derive(Clone)]
pub struct Placement {
    /// This node's name.
    pub node: String,
    /// Active and live nodes.
    pub members: Arc<Membership>,
    /// This node's lifecycle: a node that is not active never creates a room (its view of the
    /// cluster may be incomplete, which could make a second owner).
    pub lifecycle: Arc<crate::lifecycle::Lifecycle>,
}

/// The live instances of a room on this node (normally none or one).
pub fn local_instances(room: &RoomName) -> Vec<RoomRef> {
    ractor::pg::get_local_members(&group_of(room))
        .into_iter()
        .filter(is_live)
        .map(|c| RoomRef::local(ActorRef::from(c)))
        .collect()
}

/// The live instance of a room on this node, if any (never asks another node).
pub fn find_local(room: &RoomName) -> Option<RoomRef> {
    local_instances(room).into_iter().next()
}

/// The room host of `node`: this node's own directly, another's through its group.
fn host_for(p: &Placement, node: &str) -> Option<ActorRef<RoomHostMessage>> {
    if node == p.node {
        // By its registered name: placement exists before the host does (the host's rooms
        // and the relay are given it at start).
        let name = crate::groups::name_in(crate::wire::names::ROOM_HOSTS, node);
        ractor::registry::where_is(name).map(ActorRef::from)
    } else {
        host_of(node)
    }
}

/// The room hosts of every live node (this one's included) that are reachable, by node.
pub fn hosts(p: &Placement) -> Vec<(String, Option<ActorRef<RoomHostMessage>>)> {
    p.members
        .live()
        .into_iter()
        .map(|n| {
            let h = host_for(p, &n);
            (n, h)
        })
        .collect()
}

/// Returns the room's actor, creating it on its home node when it runs nowhere. While
/// placement settles (a node just turned active and not every node counts it yet, so the home
/// asked declines), asks again for up to `SETTLE_TIMEOUT`.
pub async fn lookup(p: &Placement, room: &RoomName) -> Result<RoomRef, LookupError> {
    match ask(p, room, true).await? {
        Some(r) => Ok(r),
        None => Err(LookupError::Unavailable(format!(
            "room `{room}` was not created"
        ))),
    }
}

/// Returns the room's actor if it runs anywhere (never creates it).
pub async fn locate(p: &Placement, room: &RoomName) -> Result<Option<RoomRef>, LookupError> {
    ask(p, room, false).await
}

async fn ask(p: &Placement, room: &RoomName, create: bool) -> Result<Option<RoomRef>, LookupError> {
    let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
    let mut pause = Duration::from_millis(10);
    loop {
        match ask_once(p, room, create).await {
            Err(LookupError::Settling(why)) => {
                if tokio::time::Instant::now() + pause >= deadline {
                    return Err(LookupError::Unavailable(why));
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

async fn ask_once(
    p: &Placement,
    room: &RoomName,
    create: bool,
) -> Result<Option<RoomRef>, LookupError> {
    if let Some(r) = find_local(room) {
        return Ok(Some(r));
    }
    let active = p.members.active();
    let Some(home) = owner(room.as_str(), &active).map(str::to_owned) else {
        return Err(LookupError::Settling(
            "no active node to own the room yet".into(),
        ));
    };
    if create && home == p.node && p.lifecycle.get() != crate::lifecycle::NodeState::Active {
        return Err(LookupError::Unavailable(format!(
            "this node is {} and creates no rooms",
            p.lifecycle.get().as_str()
        )));
    }
    let host = host_for(p, &home).ok_or_else(|| {
        LookupError::Unavailable(format!("home node `{home}` of `{room}` is not reachable"))
    })?;
    let res = ractor::call_t!(
        host,
        RoomHostMessage::Ensure,
        LOOKUP_TIMEOUT_MS,
        EnsureRoom {
            room: room.to_string(),
            live: p.members.live(),
            create,
        }
    )
    .map_err(|e| LookupError::Unavailable(e.to_string()))?;
    match res.error {
        Some(e) if res.settling => return Err(LookupError::Settling(e)),
        Some(e) => return Err(LookupError::Spawn(e)),
        None => {}
    }
    let Some(at) = res.at else {
        return Ok(None);
    };
    resolve(p, &at).map(Some)
}

/// The handle of the instance `at` names.
fn resolve(p: &Placement, at: &RoomAt) -> Result<RoomRef, LookupError> {
    RoomRef::resolve(at, &p.node).ok_or_else(|| {
        LookupError::Unavailable(format!(
            "room `{}` runs on `{}`, which is not reachable",
            at.room, at.node
        ))
    })
}

/// Every live instance of a room in the cluster, by node (normally one; two for a moment during
/// a migration, or after a partition healed until the rival yields): each live node says what
/// it runs or knows. `missing`: nodes that did not answer.
pub async fn instances_everywhere(p: &Placement, room: &RoomName) -> (Vec<RoomAt>, Vec<String>) {
    let q = RoomAt {
        room: room.to_string(),
        ..RoomAt::default()
    };
    let asks = p.members.live().into_iter().map(|node| {
        let q = q.clone();
        let host = host_for(p, &node);
        async move {
            let found = match host {
                Some(h) => ractor::call_t!(h, RoomHostMessage::Locate, 2_000, q).ok(),
                None => None,
            };
            (node, found)
        }
    });
    let mut all: Vec<RoomAt> = Vec::new();
    let mut missing = Vec::new();
    for (node, found) in futures_util::future::join_all(asks).await {
        match found {
            // Each node vouches for what runs on it; what a directory says is checked there.
            Some(l) => all.extend(l.at.into_iter().filter(|a| a.node == node)),
            None => missing.push(node),
        }
    }
    all.sort_by(|a, b| a.node.cmp(&b.node).then(a.name.cmp(&b.name)));
    all.dedup_by(|a, b| a.name == b.name);
    (all, missing)
}
