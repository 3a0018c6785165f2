//! Answers what other nodes ask of this one beyond membership: its statistics, its
//! connections (list, kick, throttle, send to a user, join or leave a room) and drain commands.
//! The cluster endpoint queues these requests ([`PeerRequest`]); this task, started once the
//! node is assembled, takes them one at a time, in order, and answers from the node's context
//! (a join or leave, which waits for the client's connections, in a task of its own).
//!
//! Sits above membership and the operations it calls (`stats`, `clients`, `drain`): the
//! cluster layer never imports them.

use crate::cluster::endpoint::PeerRequest;
use crate::context::NodeCtx;
use crate::wire::endpoint::{ClientsRequest, StatsReply};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Answers every request until the endpoint is gone.
pub async fn serve(ctx: Arc<NodeCtx>, mut requests: mpsc::Receiver<PeerRequest>) {
    while let Some(request) = requests.recv().await {
        match request {
            PeerRequest::Stats(reply) => {
                let stats = crate::stats::node_stats(&ctx).await;
                let json = serde_json::to_string(&stats).unwrap_or_default();
                let _ = reply.send(StatsReply { json });
            }
            PeerRequest::Node(cmd, reply) => {
                let _ = reply.send(crate::drain::command(&ctx, &cmd.op));
            }
            // A join or leave waits for the client's connections (a room lookup and call
            // each): answered on its own, so the requests behind it are not held up.
            PeerRequest::Clients(
                req @ (ClientsRequest::Join { .. } | ClientsRequest::Leave { .. }),
                reply,
            ) => {
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    let _ = reply.send(crate::clients::local(&ctx, req).await);
                });
            }
            PeerRequest::Clients(req, reply) => {
                let _ = reply.send(crate::clients::local(&ctx, req).await);
            }
        }
    }
}
