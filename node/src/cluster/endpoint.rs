//! The cluster endpoint: this node's one remotely addressable actor for membership. It takes
//! peers' heartbeats (forwarded to the local manager) and hands what peers ask of this node
//! beyond membership (its statistics, its connections, a drain) to whoever answers them, as
//! [`PeerRequest`]s on a bounded queue: membership never calls the code that answers (that is
//! `peer_requests`, above it). It owns no state beyond the references it forwards to.

use super::manager::ClusterMessage;
use crate::wire::endpoint::{
    ClientsReply, ClientsRequest, EndpointMessage, NodeCommand, NodeCommandReply, StatsReply,
};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::mpsc::{self, error::TrySendError};

/// How many peer requests may wait for an answer; one more is answered at once as if this node
/// were starting (empty stats and listings, a refused command), and the peer's admin API says
/// so. Requests are answered one at a time, in order.
pub const PEER_REQUEST_QUEUE: usize = 64;

/// What a peer asks of this node beyond membership, with the port its answer goes to.
pub enum PeerRequest {
    /// The node's statistics.
    Stats(RpcReplyPort<StatsReply>),
    /// Drain or undrain the node.
    Node(NodeCommand, RpcReplyPort<NodeCommandReply>),
    /// Act on (or list) the node's connections.
    Clients(ClientsRequest, RpcReplyPort<ClientsReply>),
}

impl PeerRequest {
    /// Answers without asking anyone: what a node that is starting (or whose queue is full)
    /// says.
    pub fn refuse(self) {
        match self {
            Self::Stats(reply) => {
                let _ = reply.send(StatsReply { json: "{}".into() });
            }
            Self::Node(_, reply) => {
                let _ = reply.send(NodeCommandReply {
                    state: "joining".into(),
                    error: Some("node is starting".into()),
                });
            }
            Self::Clients(_, reply) => {
                let _ = reply.send(ClientsReply::default());
            }
        }
    }
}

/// Creates the queue of peer requests: the endpoint gets the sender, the node's answerer the
/// receiver.
pub fn peer_requests() -> (mpsc::Sender<PeerRequest>, mpsc::Receiver<PeerRequest>) {
    mpsc::channel(PEER_REQUEST_QUEUE)
}

/// The endpoint; one per node, in the process group [`super::GROUP`].
pub struct EndpointActor;

/// References the endpoint forwards to.
pub struct EndpointState {
    /// The local manager.
    pub manager: ActorRef<ClusterMessage>,
    /// Where peer requests go.
    pub requests: mpsc::Sender<PeerRequest>,
}

impl Actor for EndpointActor {
    type Msg = EndpointMessage;
    type State = EndpointState;
    type Arguments = EndpointState;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: EndpointState,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let request = match msg {
            EndpointMessage::Heartbeat(hb) => {
                let _ = state.manager.cast(ClusterMessage::Heartbeat(hb));
                return Ok(());
            }
            EndpointMessage::Stats(_req, reply) => PeerRequest::Stats(reply),
            EndpointMessage::Node(cmd, reply) => PeerRequest::Node(cmd, reply),
            EndpointMessage::Clients(req, reply) => PeerRequest::Clients(req, reply),
        };
        if let Err(TrySendError::Full(r) | TrySendError::Closed(r)) =
            state.requests.try_send(request)
        {
            tracing::warn!("peer request refused: the queue of requests is full");
            r.refuse();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::endpoint::StatsRequest;

    #[tokio::test]
    async fn a_full_queue_of_peer_requests_answers_the_next_one_at_once() {
        // Stands in for the manager: heartbeats are not what this test is about.
        struct Sink;
        impl Actor for Sink {
            type Msg = ClusterMessage;
            type State = ();
            type Arguments = ();
            async fn pre_start(
                &self,
                _: ActorRef<ClusterMessage>,
                (): (),
            ) -> Result<(), ActorProcessingErr> {
                Ok(())
            }
        }
        let (manager, manager_task) = Actor::spawn(None, Sink, ()).await.unwrap();
        let (tx, mut rx) = peer_requests();
        let (endpoint, task) = Actor::spawn(
            None,
            EndpointActor,
            EndpointState {
                manager,
                requests: tx,
            },
        )
        .await
        .unwrap();
        let mut waiting = Vec::new();
        for _ in 0..=PEER_REQUEST_QUEUE {
            let (port, answer) = tokio::sync::oneshot::channel();
            endpoint
                .cast(EndpointMessage::Stats(StatsRequest::default(), port.into()))
                .unwrap();
            waiting.push(answer);
        }
        // The one past the bound is answered at once, as by a starting node.
        let refused = waiting.pop().unwrap().await.unwrap();
        assert_eq!(refused.json, "{}");
        // The others wait, in order, for whoever answers.
        for _ in 0..PEER_REQUEST_QUEUE {
            match rx.recv().await.unwrap() {
                PeerRequest::Stats(reply) => {
                    let _ = reply.send(StatsReply {
                        json: "{\"ok\":1}".into(),
                    });
                }
                _ => panic!("a stats request stays one"),
            }
        }
        for w in waiting {
            assert_eq!(w.await.unwrap().json, "{\"ok\":1}");
        }
        endpoint.stop(None);
        task.await.unwrap();
        manager_task.abort();
    }
}
