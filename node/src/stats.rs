//! This node's statistics as the admin API and peers see them (`/admin/v1/stats`, one entry of
//! `/admin/v1/cluster`). Reads counters and asks the hub and relay; changes nothing.

use crate::context::NodeCtx;
use crate::hub::HubMessage;
use crate::metrics::rss_bytes;
use serde_json::json;

const CALL_MS: u64 = 2_000;

/// Returns this node's statistics.
pub async fn node_stats(ctx: &NodeCtx) -> serde_json::Value {
    let conns = ractor::call_t!(ctx.hub, HubMessage::Count, CALL_MS).unwrap_or(0);
    let (rooms_local, subscriptions) =
        ractor::call_t!(ctx.relay, crate::relay::RelayMessage::Stats, CALL_MS).unwrap_or((0, 0));
    let m = &ctx.metrics;
    let draining = matches!(
        ctx.state(),
        crate::lifecycle::NodeState::Draining | crate::lifecycle::NodeState::Drained
    );
    json!({
        "name": ctx.node,
        "incarnation": ctx.incarnation,
        "address": ctx.bound.0.to_string(),
        "admin_address": ctx.bound.1.to_string(),
        "state": ctx.state().as_str(),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": ctx.started.elapsed().as_secs(),
        "connections": conns,
        "rooms_owned": m.rooms_active.get(),
        "rooms_with_local_members": rooms_local,
        "subscriptions": subscriptions,
        "messages_in": m.messages_in.get(),
        "messages_out": m.messages_out.get(),
        "msgs_in_per_s": m.in_per_s(),
        "msgs_out_per_s": m.out_per_s(),
        "bytes_in": m.bytes_in.get(),
        "bytes_out": m.bytes_out.get(),
        "slow_consumer_closes": m.slow_consumer_closes.get(),
        "rate_limited": m.rate_limited.get(),
        "webhook_queue": m.webhook_queue.get(),
        "rss_bytes": rss_bytes(),
        "active_view": ctx.placement.members.active(),
        "rooms_left": draining.then(|| crate::drain::owned_rooms().len()),
        "connections_left": draining.then_some(conns),
    })
}
