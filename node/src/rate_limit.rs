//! Rate-limit policy: the [`RateLimiterActor`] holds the defaults from config and per-client
//! overrides (operator throttles), and pushes changes to live connections through the hub.
//!
//! The hot path does not come here: each connection enforces its own [`bucket::TokenBucket`]s
//! with the [`Limits`] of the [`Policy`] table, so no frame costs a message hop. A connecting
//! client reads the table ([`Policy::for_client`], a read lock) instead of asking the actor:
//! a call per connection was two cross-thread wakes on every connect. Only the actor writes the
//! table. This module owns only policy; it never touches a socket.

pub mod bucket;

use crate::hub::HubMessage;
use crate::ids::ClientId;
use crate::wire::endpoint::Limits;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::HashMap;

/// The limits that apply, readable by every connection; written by [`RateLimiterActor`] only.
#[derive(Debug)]
pub struct Policy {
    /// Limits from config.
    defaults: Limits,
    /// Per-client overrides. Kept after the client disconnects, so a throttled client cannot
    /// shed its throttle by reconnecting with its session; only an operator clears one.
    overrides: std::sync::RwLock<HashMap<ClientId, Limits>>,
}

impl Policy {
    /// A table with `defaults` and no overrides.
    pub fn new(defaults: Limits) -> Self {
        Self {
            defaults,
            overrides: std::sync::RwLock::new(HashMap::new()),
        }
    }

    /// The limits for `client`, and whether they are an operator's override.
    pub fn for_client(&self, client: &ClientId) -> (Limits, bool) {
        match self
            .overrides
            .read()
            .ok()
            .and_then(|o| o.get(client).copied())
        {
            Some(l) => (l, true),
            None => (self.defaults, false),
        }
    }

    fn set(&self, client: &ClientId, limits: Option<Limits>) {
        if let Ok(mut o) = self.overrides.write() {
            match limits {
                Some(l) => o.insert(client.clone(), l),
                None => o.remove(client),
            };
        }
    }
}

/// The node's rate limiter: the actor that changes policy, and the table connections read.
#[derive(Clone)]
pub struct RateLimiter {
    /// The actor (throttle requests).
    pub actor: ActorRef<RateLimitMessage>,
    /// The table.
    pub policy: std::sync::Arc<Policy>,
}

/// Messages accepted by [`RateLimiterActor`].
pub enum RateLimitMessage {
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
    /// The table it writes.
    pub policy: std::sync::Arc<Policy>,
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
            RateLimitMessage::Throttle {
                client,
                limits,
                reply,
            } => {
                let effective = match limits {
                    Some(l) => (l, true),
                    None => (state.policy.defaults, false),
                };
                // The override is kept only for a client that is connected (and then survives
                // its reconnects); the hub answers how many connections took it. It is in the
                // table before the hub is asked, so a connection of that client opening
                // meanwhile reads it.
                if limits.is_some() {
                    state.policy.set(&client, limits);
                }
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
                if limits.is_none() || n == 0 {
                    state.policy.set(&client, None);
                }
                tracing::info!(client = %client, throttled = effective.1, limits = ?effective.0, connections = n, "rate limit policy changed");
                let _ = reply.send(n);
            }
        }
        Ok(())
    }
}
