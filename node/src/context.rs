//! The node's shared context for its operations and HTTP surfaces: configuration, the actor
//! references the edges need, the authenticator, admission table, metrics and the node's
//! lifecycle state. Built once at start and handed to the HTTP edges by `Arc`. A connection's
//! task gets only the narrower part it needs ([`ConnDeps`]: limits, relay, placement, session
//! keys, webhook producer), never this.
//!
//! Holds references and read-mostly values only: all mutable room and connection state lives
//! in actors or in each connection's own task.

use crate::admission::Admission;
use crate::auth::Authenticator;
use crate::cluster::ClusterMessage;
use crate::connection::ConnDeps;
use crate::directory::Placement;
use crate::hub::HubMessage;
use crate::lifecycle::{Lifecycle, NodeState};
use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;
use crate::relay::RelayMessage;
use crate::session_token::SessionKeys;
use crate::webhook::Webhook;
use cluster_config::Config;
use ractor::ActorRef;
use std::sync::Arc;
use std::time::Instant;

/// Shared node context.
pub struct NodeCtx {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Node name.
    pub node: String,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Token verifier.
    pub auth: Authenticator,
    /// Connection caps.
    pub admission: Arc<Admission>,
    /// Connection hub.
    pub hub: ActorRef<HubMessage>,
    /// The hub's index, where connections add and remove themselves.
    pub conns: Arc<crate::hub::HubIndex>,
    /// Local relay.
    pub relay: ActorRef<RelayMessage>,
    /// Room placement (this node's host and the active nodes).
    pub placement: Placement,
    /// Rate-limit policy: the table connections read and the actor that changes it.
    pub limiter: RateLimiter,
    /// What each connection's task is given (a part of this context, see
    /// [`crate::connection::ConnDeps`]); session keys and the webhook producer live there.
    pub conn: Arc<ConnDeps>,
    /// When the node started.
    pub started: Instant,
    /// This process's incarnation id (a restarted node gets a new one).
    pub incarnation: String,
    /// Cluster membership.
    pub cluster: ActorRef<ClusterMessage>,
    /// The bound public and admin addresses (the config may say port 0).
    pub bound: (std::net::SocketAddr, std::net::SocketAddr),
    /// The drainer.
    pub drain: crate::lifecycle::Drainer,
    lifecycle: Arc<Lifecycle>,
}

impl NodeCtx {
    /// Assembles the context.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Arc<Config>,
        incarnation: String,
        lifecycle: Arc<Lifecycle>,
        cluster: ActorRef<ClusterMessage>,
        drain: crate::lifecycle::Drainer,
        bound: (std::net::SocketAddr, std::net::SocketAddr),
        metrics: Arc<Metrics>,
        auth: Authenticator,
        hub: ActorRef<HubMessage>,
        conns: Arc<crate::hub::HubIndex>,
        relay: ActorRef<RelayMessage>,
        placement: Placement,
        limiter: RateLimiter,
        webhook: Webhook,
    ) -> Self {
        let c = &config;
        let conn = Arc::new(ConnDeps {
            config: config.clone(),
            node: c.node.name.clone(),
            metrics: metrics.clone(),
            conns: conns.clone(),
            policy: limiter.policy.clone(),
            relay: relay.clone(),
            placement: placement.clone(),
            sessions: SessionKeys::from_cookie(c.node.cookie.expose()),
            webhook,
        });
        Self {
            node: c.node.name.clone(),
            admission: Admission::new(
                c.auth.max_connections_per_ip,
                c.auth.max_connections_per_user,
                c.limits.max_connections,
            ),
            config: config.clone(),
            metrics,
            auth,
            hub,
            conns,
            relay,
            placement,
            limiter,
            conn,
            started: Instant::now(),
            incarnation,
            cluster,
            bound,
            drain,
            lifecycle,
        }
    }

    /// Current lifecycle state.
    pub fn state(&self) -> NodeState {
        self.lifecycle.get()
    }

    /// Moves to `s`.
    pub fn set_state(&self, s: NodeState) {
        self.lifecycle.set(s);
    }
}
