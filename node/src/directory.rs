//! Finding a room's owner. On its own node a room is found through its local process group
//! `room:<name>`. From any other node it is found through its *home*: the node that would own
//! it by rendezvous (highest-random-weight) hashing of the room name over the active nodes,
//! which every node computes alike from its view. The home's room host knows where each of its
//! rooms runs (it runs them itself, or they told it), and creates an absent room there.
//!
//! Holds no room state of its own: there is no global room map, and a node holds nothing for a
//! room it neither owns, backs up, holds members of nor is the home of. The active-node list is
//! the cluster manager's, shared read-only through [`Placement`].

use crate::room::address::RoomRef;
use crate::room_host;
use crate::wire::host::{EnsureRoom, RoomHostMessage};
use crate::wire::names::group_of;
use crate::wire::room::RoomAt;
use protocol::room::RoomName;
use ractor::ActorRef;
use std::sync::{Arc, RwLock};
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

/// The nodes placement counts, written by the cluster manager and read everywhere else.
#[derive(Debug, Default)]
pub struct Membership {
    /// Nodes that may own rooms, sorted: the peers this node sees `active`, and this node once
    /// it is active and every live peer sees it so (until then a peer whose view lags could
    /// place the same room elsewhere).
    active: RwLock<Vec<String>>,
    /// Nodes this node hears (any state but down), itself included, sorted.
    live: RwLock<Vec<String>>,
}

impl Membership {
    /// Nodes that may own rooms.
    pub fn active(&self) -> Vec<String> {
        self.active.read().map(|v| v.clone()).unwrap_or_default()
    }

    /// Nodes this node hears, itself included.
    pub fn live(&self) -> Vec<String> {
        self.live.read().map(|v| v.clone()).unwrap_or_default()
    }

    /// Whether `node` may own rooms.
    pub fn is_active(&self, node: &str) -> bool {
        self.active
            .read()
            .is_ok_and(|v| v.iter().any(|n| n == node))
    }

    /// Replaces both lists; true when the active one changed.
    pub fn set(&self, active: Vec<String>, live: Vec<String>) -> bool {
        if let Ok(mut cur) = self.live.write() {
            *cur = live;
        }
        match self.active.write() {
            Ok(mut cur) if *cur != active => {
                *cur = active;
                true
            }
            _ => false,
        }
    }
}

/// What placement needs: this node, its room host, and the cluster's membership (kept by the
/// cluster manager).
#[derive(Clone)]
pub struct Placement {
    /// This node's name.
    pub node: String,
    /// This node's room host.
    pub host: ActorRef<RoomHostMessage>,
    /// Active and live nodes.
    pub members: Arc<Membership>,
    /// This node's lifecycle: a node that is not active never creates a room (its view of the
    /// cluster may be incomplete, which could make a second owner).
    pub lifecycle: Arc<crate::context::Lifecycle>,
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

/// Whether, of two live instances of one room, `other` (node, epoch) keeps the room rather
/// than `me`: the one on the rendezvous winner of their two nodes; on one node (never made on
/// purpose), the higher epoch. Both sides, and the home, decide alike from the names alone.
pub fn rival_wins(room: &str, me: (&str, &str), other: (&str, &str)) -> bool {
    if me.0 == other.0 {
        return other.1 > me.1;
    }
    let pair = [me.0.to_owned(), other.0.to_owned()];
    owner(room, &pair) == Some(other.0)
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
    crate::groups::node_actor(room_host::GROUP, node)
}

/// Casts `msg` to the room host of `node`; false when that host is not reachable.
pub fn tell_host(node: &str, msg: RoomHostMessage) -> bool {
    host_of(node).is_some_and(|h| h.cast(msg).is_ok())
}

/// The room host of `node`: this node's own directly, another's through its group.
fn host_for(p: &Placement, node: &str) -> Option<ActorRef<RoomHostMessage>> {
    if node == p.node {
        Some(p.host.clone())
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
    if create && home == p.node && p.lifecycle.get() != crate::context::NodeState::Active {
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

/// Whether `me` should create `room` when asked by a node that hears `asker_live` (empty: not
/// said): the owner among the nodes this node counts as active, leaving out those the asker
/// cannot hear at all (the other side of a partition), must be `me`. `Err` names the owner this
/// node would pick instead, or says that this node does not own rooms yet.
pub fn may_create(
    room: &str,
    me: &str,
    active: &[String],
    asker_live: &[String],
) -> Result<(), String> {
    if !active.iter().any(|n| n == me) {
        return Err(format!(
            "node `{me}` does not own rooms yet (its peers do not all count it active)"
        ));
    }
    let counted: Vec<String> = active
        .iter()
        .filter(|n| asker_live.is_empty() || asker_live.contains(n) || *n == me)
        .cloned()
        .collect();
    match owner(room, &counted) {
        Some(o) if o == me => Ok(()),
        Some(o) => Err(format!(
            "room `{room}` belongs to `{o}` in the view of `{me}`; placement is settling"
        )),
        None => Err("no active node".into()),
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
    fn only_the_owner_in_its_own_view_creates() {
        let v = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let abc = v(&["node-a", "node-b", "node-c"]);
        let room = (0..100)
            .map(|i| format!("r{i}"))
            .find(|r| owner(r, &abc) == Some("node-c") && owner(r, &abc[..2]) == Some("node-b"))
            .expect("some room moves from node-b to node-c when node-c joins");
        // node-b is asked by a node that does not count node-c yet, but node-b does: declined.
        assert!(may_create(&room, "node-b", &abc, &abc).is_err());
        // The asker cannot hear node-c at all (a partition): node-b creates it.
        assert!(may_create(&room, "node-b", &abc, &v(&["node-a", "node-b"])).is_ok());
        // node-c creates it only once it counts itself.
        assert!(may_create(&room, "node-c", &v(&["node-a", "node-b"]), &[]).is_err());
        assert!(may_create(&room, "node-c", &abc, &[]).is_ok());
    }

    #[test]
    fn two_instances_agree_on_which_one_stays() {
        let room = "r1";
        let pair = ["node-a".to_owned(), "node-b".to_owned()];
        let w = owner(room, &pair).unwrap();
        let l = if w == "node-a" { "node-b" } else { "node-a" };
        assert!(rival_wins(room, (l, "e1"), (w, "e2")));
        assert!(!rival_wins(room, (w, "e2"), (l, "e1")));
        // On one node the higher epoch stays, whichever asks.
        assert!(rival_wins(room, ("node-a", "e1"), ("node-a", "e2")));
        assert!(!rival_wins(room, ("node-a", "e2"), ("node-a", "e1")));
    }
}
