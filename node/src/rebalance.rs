//! Rebalancing when a node joins (`node.rebalance_on_join`): rooms this node owns whose
//! rendezvous owner is now another active node migrate to it, one at a time, so placement stays
//! what every node computes. Only an active node moves its rooms; a draining node's drain moves
//! them instead. Owns no state but the last active set it saw.

use crate::context::NodeCtx;
use crate::lifecycle::NodeState;
use crate::room_access::calls;
use std::sync::Arc;
use std::time::Duration;

/// How often the active set is compared.
const CHECK: Duration = Duration::from_secs(1);

/// The rebalancer task.
pub async fn run(ctx: Arc<NodeCtx>) {
    let mut seen: Vec<String> = Vec::new();
    let mut tick = tokio::time::interval(CHECK);
    loop {
        tick.tick().await;
        let active = ctx.placement.members.active();
        let newcomers: Vec<String> = active
            .iter()
            .filter(|n| !seen.contains(n))
            .cloned()
            .collect();
        let first_look = seen.is_empty();
        seen.clone_from(&active);
        if first_look
            || newcomers.is_empty()
            || ctx.state() != NodeState::Active
            || !active.contains(&ctx.node)
        {
            continue;
        }
        let mut moved = 0;
        for room in crate::drain::owned_rooms() {
            let Some(owner) = crate::placement::owner(room.as_str(), &active) else {
                continue;
            };
            // Only rooms that now belong to a node that just joined move (placement chosen
            // by an operator's `migrate` is otherwise left alone).
            if owner == ctx.node || !newcomers.iter().any(|n| n == owner) {
                continue;
            }
            // Only a room with one instance here; two instances (a partition just healed) are
            // settled at the room's home, never by moving one onto the other.
            let inst = crate::directory::local_instances(&room);
            let [r] = inst.as_slice() else {
                continue;
            };
            match calls::migrate(r, owner).await {
                Ok(_) => moved += 1,
                Err(e) => {
                    tracing::warn!(room = %room, to = owner, error = %e, "rebalance: migration failed")
                }
            }
        }
        if moved > 0 {
            tracing::info!(rooms = moved, active = ?active, "rebalanced rooms to a joining node");
        }
    }
}
