//! Bridges ractor_cluster's session events into the cluster manager's mailbox, and tells the
//! transport at once when a link authenticated (so its read side stops gating, see
//! [`super::handshake`]). The callbacks run inside the NodeServer actor, so they only forward
//! (never block, never panic).

use super::manager::ClusterMessage;
use ractor::ActorRef;
use ractor_cluster::node::NodeServerSessionInformation;
use ractor_cluster::{NodeEventSubscription, NodeSessionMessage};

/// A session event, reduced to what the manager needs.
#[derive(Debug, Clone)]
pub enum SessionEvent {
    /// A TCP link opened (not yet authenticated).
    Opened {
        /// The session actor (to stop a dial that never authenticates).
        session: ActorRef<NodeSessionMessage>,
        /// Peer socket address.
        peer_addr: String,
        /// Whether the peer dialed us.
        incoming: bool,
    },
    /// A link authenticated (the cookie matched).
    Authenticated {
        /// The session actor.
        session: ActorRef<NodeSessionMessage>,
        /// Peer's full ractor node name (`name#incarnation@host`).
        peer: String,
    },
    /// A link closed.
    Closed {
        /// The session actor.
        session: ActorRef<NodeSessionMessage>,
        /// Peer's full node name, if it got that far.
        peer: Option<String>,
        /// Peer socket address.
        peer_addr: String,
    },
}

/// The subscription registered with the NodeServer.
pub struct Forwarder {
    /// The manager.
    pub manager: ActorRef<ClusterMessage>,
    /// The links' counters and confirmations.
    pub links: std::sync::Arc<super::transport::Links>,
}

impl Forwarder {
    fn send(&self, e: SessionEvent) {
        let _ = self.manager.cast(ClusterMessage::Session(e));
    }
}

impl NodeEventSubscription for Forwarder {
    fn node_session_opened(&self, ses: NodeServerSessionInformation) {
        self.send(SessionEvent::Opened {
            session: ses.actor.clone(),
            peer_addr: ses.peer_addr.clone(),
            incoming: ses.is_server,
        });
    }

    fn node_session_disconnected(&self, ses: NodeServerSessionInformation) {
        self.send(SessionEvent::Closed {
            session: ses.actor.clone(),
            peer: ses.peer_name.as_ref().map(|n| n.name.clone()),
            peer_addr: ses.peer_addr.clone(),
        });
    }

    fn node_session_authenticated(&self, ses: NodeServerSessionInformation) {
        self.links.confirm(&ses.peer_addr);
        if let Some(n) = &ses.peer_name {
            self.send(SessionEvent::Authenticated {
                session: ses.actor.clone(),
                peer: n.name.clone(),
            });
        }
    }
}
