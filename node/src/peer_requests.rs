//! Answers what other nodes ask of this one beyond membership: its statistics, its
//! connections (list, kick, throttle, send to a user, join or leave a room) and drain commands.
//! The cluster endpoint queues these requests ([`PeerRequest`]); this task, started once the
//! node is assembled, takes them one at a time, in order, and answers from the node's context
//! (a join or leave, which waits for the client's connections, in a task of its own: at most
//! [`ROOM_OPS_IN_FLIGHT`] at once).
//!
//! Sits above membership and the operations it calls (`stats`, `clients`, `drain`): the
//! cluster layer never imports them.

use crate::cluster::endpoint::PeerRequest;
use crate::context::NodeCtx;
use crate::wire::endpoint::{ClientsRequest, StatsReply};
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};

/// Most joins and leaves asked by peers under way at once; one more waits (and the requests
/// behind it with it) until one is done.
pub const ROOM_OPS_IN_FLIGHT: usize = 16;

/// Answers every request until the endpoint is gone.
pub async fn serve(ctx: Arc<NodeCtx>, mut requests: mpsc::Receiver<PeerRequest>) {
    let room_ops = Arc::new(Semaphore::new(ROOM_OPS_IN_FLIGHT));
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
                let Ok(permit) = room_ops.clone().acquire_owned().await else {
                    continue;
                };
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    let _ = reply.send(crate::clients::local(&ctx, req).await);
                    drop(permit);
                });
            }
            PeerRequest::Clients(req, reply) => {
                let _ = reply.send(crate::clients::local(&ctx, req).await);
            }
        }
    }
}
