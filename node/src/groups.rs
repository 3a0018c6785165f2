//! Actors found through ractor process groups: whether an actor counts as live, and the one
//! actor a node runs in a per-node group (its relay ingress, room host, room gateway), named
//! `<group>:<node>` so any node can pick a given node's out of the group.
//!
//! A leaf: it imports nothing of the node, so every layer may use it.

use ractor::{ActorCell, ActorRef, ActorStatus};

/// Whether an actor counts as live: starting (just spawned, not yet running its first message)
/// or running. Counting a starting room as absent would let concurrent joins create a second
/// owner.
pub fn is_live(c: &ActorCell) -> bool {
    !matches!(c.get_status(), ActorStatus::Stopping | ActorStatus::Stopped)
}

/// The name of `node`'s actor in the per-node `group`.
pub fn name_in(group: &str, node: &str) -> String {
    format!("{group}:{node}")
}

/// `node`'s live actor in the per-node `group` (this node's own included), if reachable.
pub fn node_actor<M: ractor::Message>(group: &str, node: &str) -> Option<ActorRef<M>> {
    let name = name_in(group, node);
    ractor::pg::get_members(&group.to_owned())
        .into_iter()
        .find(|c| c.get_name().as_deref() == Some(name.as_str()) && is_live(c))
        .map(ActorRef::from)
}
