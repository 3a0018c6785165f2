//! Rate-limit policy: the [`RateLimiterActor`] holds the defaults from config and per-client
//! overrides (operator throttles), and pushes changes to live connections through the hub.
//!
//! The hot path does not come here: each connection enforces its own [`bucket::TokenBucket`]s
//! with the [`Limits`] this actor handed it, so no frame costs a message hop. This actor owns
//! only policy; it never touches a socket.

pub mod bucket;

use crate::hub::HubMessage;
use crate::ids::ClientId;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::HashMap;

/// The limits one connection enforces.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Inbound messages per second.
    pub msgs_per_sec: u32,
    /// Inbound message burst.
    pub burst: u32,
    /// Inbound bytes per second.
    pub bytes_per_sec: u64,
}

/// Messages accepted by [`RateLimiterActor`].
pub enum RateLimitMessage {
    /// A connection opens: which limits apply to `client`?
    Policy {
        /// Client asking.
        client: ClientId,
        /// Answer.
        reply: RpcReplyPort<(Limits, bool)>,
    },
    /// Set (`Some`) or clear (`None`) an operator override for `client`; answers how many live
    /// connections took the new limits.
    Throttle {
        /// Target client.
        client: ClientId,
        /// New limits, or `None` to return to the defaults.
        limits: Option<Limits>,
        /// Number of live connections updated.
        reply: RpcReplyPort<usize>,
    },
}

impl ractor::Message for RateLimitMessage {}

/// Policy holder; one per node.
pub struct RateLimiterActor;

/// Arguments and state of [`RateLimiterActor`].
pub struct RateLimiterState {
    /// Limits from config.
    pub defaults: Limits,
    /// Per-client overrides. Kept after the client disconnects, so a throttled client cannot
    /// shed its throttle by reconnecting with its session; only an operator clears one.
    pub overrides: HashMap<ClientId, Limits>,
    /// Where live connections are found.
    pub hub: ActorRef<HubMessage>,
}

impl Actor for RateLimiterActor {
    type Msg = RateLimitMessage;
    type State = RateLimiterState;
    type Arguments = RateLimiterState;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: RateLimiterState,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RateLimitMessage::Policy { client, reply } => {
                let answer = match state.overrides.get(&client) {
                    Some(l) => (*l, true),
                    None => (state.defaults, false),
                };
                let _ = reply.send(answer);
            }
            RateLimitMessage::Throttle {
                client,
                limits,
                reply,
            } => {
                let effective = match limits {
                    Some(l) => (l, true),
                    None => (state.defaults, false),
                };
                // The override is kept only for a client that is connected (and then survives
                // its reconnects); the hub answers how many connections took it.
                let n = ractor::call_t!(
                    state.hub,
                    |tx| HubMessage::ApplyLimits {
                        client: client.clone(),
                        limits: effective.0,
                        throttled: effective.1,
                        reply: tx,
                    },
                    2000
                )
                .unwrap_or(0);
                match limits {
                    Some(l) if n > 0 => {
                        state.overrides.insert(client.clone(), l);
                    }
                    Some(_) => {}
                    None => {
                        state.overrides.remove(&client);
                    }
                }
                tracing::info!(client = %client, throttled = effective.1, limits = ?effective.0, connections = n, "rate limit policy changed");
                let _ = reply.send(n);
            }
        }
        Ok(())
    }
}
