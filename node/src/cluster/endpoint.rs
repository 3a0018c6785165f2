//! The cluster endpoint: this node's one remotely addressable actor for membership. It takes
//! peers' heartbeats (forwarded to the local manager) and answers statistics requests for the
//! admin API of any node. It owns no state beyond the references it forwards to.

use super::manager::ClusterMessage;
use crate::context::NodeCtx;
use crate::wire::endpoint::{ClientsReply, EndpointMessage, NodeCommandReply, StatsReply};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::sync::{Arc, OnceLock};

/// The endpoint; one per node, in the process group [`super::GROUP`].
pub struct EndpointActor;

/// References the endpoint forwards to.
pub struct EndpointState {
    /// The local manager.
    pub manager: ActorRef<ClusterMessage>,
    /// The node context (set once the node is assembled).
    pub ctx: Arc<OnceLock<Arc<NodeCtx>>>,
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
        match msg {
            EndpointMessage::Heartbeat(hb) => {
                let _ = state.manager.cast(ClusterMessage::Heartbeat(hb));
            }
            EndpointMessage::Stats(_req, reply) => {
                let json = match state.ctx.get() {
                    Some(ctx) => crate::stats::node_stats(ctx).await.to_string(),
                    None => "{}".to_owned(),
                };
                let _ = reply.send(StatsReply { json });
            }
            EndpointMessage::Node(cmd, reply) => {
                let out = match state.ctx.get() {
                    Some(ctx) => crate::drain::command(ctx, &cmd.op),
                    None => NodeCommandReply {
                        state: "joining".into(),
                        error: Some("node is starting".into()),
                    },
                };
                let _ = reply.send(out);
            }
            EndpointMessage::Clients(req, reply) => {
                let out = match state.ctx.get() {
                    Some(ctx) => crate::clients::local(ctx, req).await,
                    None => ClientsReply::default(),
                };
                let _ = reply.send(out);
            }
        }
        Ok(())
    }
}
