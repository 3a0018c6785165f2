//! Where rooms belong, as every node computes it alike: the nodes that count
//! ([`Membership`], written by the cluster manager, read by rooms and lookups), rendezvous
//! hashing of a room over them ([`owner`]), which of two instances of a room stays
//! ([`rival_wins`]), whether a node may create a room ([`may_create`]), whether the cluster
//! agrees that a node is gone ([`agreement`]), and how to reach a node's room host.
//!
//! Shared cells and pure rules: it never looks a room up (that is `directory`) and never
//! spawns one (that is `room_host`). Membership publishes into these cells; rooms read them,
//! so neither imports the other.

pub mod agreement;

use crate::wire::host::RoomHostMessage;
use ractor::ActorRef;
use std::sync::RwLock;

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
    crate::groups::node_actor(crate::wire::names::ROOM_HOSTS, node)
}

/// Casts `msg` to the room host of `node`; false when that host is not reachable.
pub fn tell_host(node: &str, msg: RoomHostMessage) -> bool {
    host_of(node).is_some_and(|h| h.cast(msg).is_ok())
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
