//! This node's statistics as the admin API and peers see them (`/admin/v1/stats`, one entry of
//! `/admin/v1/cluster`), as the admin API's `protocol::admin::NodeStats`. Reads counters and asks
//! the hub and relay; changes nothing.

use crate::context::NodeCtx;
use crate::hub::HubMessage;
use crate::metrics::rss_bytes;
use protocol::admin::NodeStats;

const CALL_MS: u64 = 2_000;

/// Returns this node's statistics.
pub async fn node_stats(ctx: &NodeCtx) -> NodeStats {
    let conns = ractor::call_t!(ctx.hub, HubMessage::Count, CALL_MS).unwrap_or(0);
    let (rooms_local, subscriptions) =
        ractor::call_t!(ctx.relay, crate::relay::RelayMessage::Stats, CALL_MS).unwrap_or((0, 0));
    let m = &ctx.metrics;
    let draining = matches!(
        ctx.state(),
        crate::lifecycle::NodeState::Draining | crate::lifecycle::NodeState::Drained
    );
    NodeStats {
        active_view: ctx.placement.members.active(),
        address: ctx.bound.0.to_string(),
        admin_address: ctx.bound.1.to_string(),
        bytes_in: m.bytes_in.get(),
        bytes_out: m.bytes_out.get(),
        connections: conns as u64,
        connections_left: draining.then_some(conns as u64),
        incarnation: ctx.incarnation.clone(),
        messages_in: m.messages_in.get(),
        messages_out: m.messages_out.get(),
        msgs_in_per_s: m.in_per_s(),
        msgs_out_per_s: m.out_per_s(),
        name: ctx.node.clone(),
        rate_limited: m.rate_limited.get(),
        rooms_left: draining.then(|| crate::drain::owned_rooms().len() as u64),
        rooms_owned: m.rooms_active.get(),
        rooms_with_local_members: rooms_local as u64,
        rss_bytes: rss_bytes(),
        slow_consumer_closes: m.slow_consumer_closes.get(),
        state: ctx.state().as_str().to_owned(),
        subscriptions: subscriptions as u64,
        uptime_s: ctx.started.elapsed().as_secs(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        webhook_queue: m.webhook_queue.get(),
    }
}
