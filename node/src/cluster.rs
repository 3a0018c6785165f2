//! Cluster membership on ractor_cluster: the transport (one `NodeServer`), the local
//! [`manager`] that owns the view (dialing, heartbeats, failure detection), the remote
//! [`endpoint`] peers talk to, and the wire types in [`remote`] (the only messages that cross
//! nodes). Supervision: the node's `server` spawns the NodeServer, the manager and the
//! endpoint; the NodeServer owns one session per peer.
//!
//! Identity: a node is its logical name plus an incarnation id chosen at start; its ractor node
//! name is `name#incarnation@advertise`, so a restarted node is never mistaken for (or locked
//! out by) its former self. Connection mode is `Isolated`: the manager dials every member itself.
//!
//! This module does not place rooms (that is `directory` and `room_host`). Rooms are not
//! remotely usable actors: a peer reaches them through its room gateway, so what ractor_cluster
//! keeps per peer ([`remote_handles`]) is a fixed few actors, never one per room.

pub mod agreement;
pub mod endpoint;
pub mod events;
pub mod frames;
pub mod gate;
pub mod handshake;
pub mod link_stats;
pub mod log_limit;
pub mod manager;
pub mod outbox;
pub mod transport;
pub mod unsent;
pub mod view;

use crate::context::{Lifecycle, NodeCtx};
use crate::wire::endpoint::EndpointMessage;
use cluster_config::Config;
pub use manager::{ClusterMessage, PeerInfo};
use ractor::{Actor, ActorRef};
use ractor_cluster::node::NodeConnectionMode;
use ractor_cluster::{NodeServer, NodeServerMessage};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, OnceLock};

/// The process group every node's endpoint joins.
pub const GROUP: &str = "gatehouse.cluster";

/// How many handles this node holds for actors on other nodes: the process-group entries
/// ractor_cluster keeps for each peer's remotely usable actors (its endpoint, relay, room host
/// and room gateway). A fixed few per peer; rooms are not remotely usable, so this never grows
/// with them (`gatehouse_cluster_remote_actors`).
pub fn remote_handles() -> usize {
    ractor::pg::which_scopes_and_groups()
        .iter()
        .map(|k| {
            ractor::pg::get_scoped_members(&k.get_scope(), &k.get_group())
                .iter()
                .filter(|c| !c.get_id().is_local())
                .count()
        })
        .sum()
}

/// Why the cluster layer could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The cluster listener address is taken or not ours.
    #[error("cannot listen on `{addr}` (`node.cluster_listen`)")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// An actor failed to start.
    #[error("cannot start the cluster {0}: {1}")]
    Spawn(&'static str, String),
}

/// What the node keeps of the cluster layer.
pub struct Cluster {
    /// The manager.
    pub manager: ActorRef<ClusterMessage>,
    /// The endpoint.
    pub endpoint: ActorRef<EndpointMessage>,
    /// The transport.
    pub node_server: ActorRef<NodeServerMessage>,
    /// The task accepting cluster links.
    pub accept: tokio::task::JoinHandle<()>,
    /// Address peers dial (`advertise:port`).
    pub addr: String,
    /// Filled with the node context once it exists (the endpoint answers stats with it).
    pub ctx: Arc<OnceLock<Arc<NodeCtx>>>,
}

impl Cluster {
    /// Stops the transport, the manager and the endpoint.
    pub fn stop(&self) {
        self.accept.abort();
        self.endpoint.stop(None);
        self.manager.stop(None);
        self.node_server.stop(None);
    }
}

/// Whether the seed list names any node other than `own`.
pub fn has_other_seeds(seeds: &[String], own: &str) -> bool {
    seeds.iter().any(|s| s != own)
}

/// Starts the transport, the manager and the endpoint.
pub async fn start(
    config: &Config,
    incarnation: &str,
    lifecycle: Arc<Lifecycle>,
    public_addr: String,
    members: Arc<crate::directory::Membership>,
    agreement: Arc<agreement::Agreement>,
    metrics: Arc<crate::metrics::Metrics>,
) -> Result<Cluster, ClusterError> {
    let listen = config.node.cluster_listen;
    // Our own listener (see `transport`); a taken port is reported here, naming the field.
    let bind_err = |source| ClusterError::Bind {
        addr: listen,
        source,
    };
    let std_listener = TcpListener::bind(listen).map_err(bind_err)?;
    std_listener.set_nonblocking(true).map_err(bind_err)?;
    let port = std_listener.local_addr().map_err(bind_err)?.port();
    let listener = tokio::net::TcpListener::from_std(std_listener).map_err(bind_err)?;
    let name = &config.node.name;
    let advertise = config.node.advertise.clone();
    let addr = format!("{advertise}:{port}");
    // ractor_cluster always runs a listener of its own: it gets an ephemeral loopback port that
    // nobody dials (peers dial ours, which hands it the links).
    let server = NodeServer::new(
        0,
        config.node.cookie.expose().to_owned(),
        format!("{name}#{incarnation}"),
        advertise,
        None,
        Some(NodeConnectionMode::Isolated),
    )
    .with_listen_addr(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let (node_server, _) = Actor::spawn(None, server, ())
        .await
        .map_err(|e| ClusterError::Spawn("transport", e.to_string()))?;
    let links = Arc::new(transport::Links::default());
    let handshakes = Arc::new(handshake::Handshakes::new(
        config.node.cluster_max_handshakes,
        metrics.clone(),
    ));
    crate::peer_queue::configure(config.node.cluster_peer_budget_bytes);
    let link_transport = transport::Transport {
        server: node_server.clone(),
        links: links.clone(),
        handshakes,
        fences: transport::Fences {
            budget: config.node.cluster_peer_budget_bytes,
            ..transport::Fences::default()
        },
        source: Some(listen.ip()).filter(|ip| !ip.is_unspecified()),
    };
    let accept = tokio::spawn(transport::accept(listener, link_transport.clone()));
    let (manager, _) = Actor::spawn(
        Some(format!("gatehouse:cluster_manager:{name}")),
        manager::ManagerActor,
        manager::ManagerArgs {
            name: name.clone(),
            incarnation: incarnation.to_owned(),
            addr: addr.clone(),
            public_addr,
            seeds: config.node.seeds.clone(),
            lifecycle,
            node_server: node_server.clone(),
            members,
            agreement,
            links: links.clone(),
            transport: link_transport,
            metrics,
        },
    )
    .await
    .map_err(|e| ClusterError::Spawn("manager", e.to_string()))?;
    let _ = node_server.cast(NodeServerMessage::SubscribeToEvents {
        id: "gatehouse".into(),
        subscription: Box::new(events::Forwarder {
            manager: manager.clone(),
            links,
        }),
    });
    let ctx = Arc::new(OnceLock::new());
    let (endpoint, _) = Actor::spawn(
        Some(manager::endpoint_name(name, incarnation)),
        endpoint::EndpointActor,
        endpoint::EndpointState {
            manager: manager.clone(),
            ctx: ctx.clone(),
        },
    )
    .await
    .map_err(|e| ClusterError::Spawn("endpoint", e.to_string()))?;
    ractor::pg::join(GROUP.to_owned(), vec![endpoint.get_cell()]);
    Ok(Cluster {
        manager,
        endpoint,
        node_server,
        accept,
        addr,
        ctx,
    })
}
