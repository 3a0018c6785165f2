//! Client operations across the cluster: send to a user, kick, throttle, list — done on this
//! node through its hub and rate limiter, and on every live peer through its cluster endpoint,
//! with the answers summed or merged. Peers that do not answer in time are named in `missing`.
//! Holds no state.

use crate::cluster::remote::{ClientsReply, ClientsRequest, EndpointMessage};
use crate::cluster::view::PeerState;
use crate::cluster::ClusterMessage;
use crate::context::NodeCtx;
use crate::hub::{ClientSummary, HubMessage};
use crate::ids::{ClientId, UserId};
use crate::rate_limit::RateLimitMessage;

const LOCAL_MS: u64 = 5_000;
/// How long a peer may take to answer.
const PEER_MS: u64 = 2_000;

/// Does `req` on this node.
pub async fn local(ctx: &NodeCtx, req: ClientsRequest) -> ClientsReply {
    fn count<E>(n: Result<usize, E>) -> ClientsReply {
        ClientsReply {
            count: n.unwrap_or(0),
            clients: Vec::new(),
        }
    }
    match req {
        ClientsRequest::SendToUser { user, frame } => count(ractor::call_t!(
            ctx.hub,
            |tx| HubMessage::SendToUser {
                user: UserId::new(&user),
                frame: frame.into(),
                reply: tx
            },
            LOCAL_MS
        )),
        ClientsRequest::Kick {
            client,
            code,
            reason,
        } => count(ractor::call_t!(
            ctx.hub,
            |tx| HubMessage::Kick {
                client: ClientId::new(&client),
                code,
                reason,
                reply: tx
            },
            LOCAL_MS
        )),
        ClientsRequest::Throttle { client, limits } => count(ractor::call_t!(
            ctx.limiter,
            |tx| RateLimitMessage::Throttle {
                client: ClientId::new(&client),
                limits,
                reply: tx
            },
            LOCAL_MS
        )),
        ClientsRequest::List => ClientsReply {
            count: 0,
            clients: ractor::call_t!(ctx.hub, HubMessage::List, LOCAL_MS).unwrap_or_default(),
        },
        ClientsRequest::Get { client } => ClientsReply {
            count: 0,
            clients: ractor::call_t!(
                ctx.hub,
                |tx| HubMessage::Get {
                    client: ClientId::new(&client),
                    reply: tx
                },
                LOCAL_MS
            )
            .unwrap_or_default(),
        },
    }
}

/// The merged answer of every node.
#[derive(Debug, Default)]
pub struct ClusterAnswer {
    /// Connections affected, summed.
    pub count: usize,
    /// Connections listed, merged.
    pub clients: Vec<ClientSummary>,
    /// Peers that did not answer.
    pub missing: Vec<String>,
}

/// Does `req` on this node and on every live peer.
pub async fn everywhere(ctx: &NodeCtx, req: ClientsRequest) -> ClusterAnswer {
    let mine = local(ctx, req.clone()).await;
    let mut out = ClusterAnswer {
        count: mine.count,
        clients: mine.clients,
        missing: Vec::new(),
    };
    let peers = ractor::call_t!(ctx.cluster, ClusterMessage::Peers, LOCAL_MS).unwrap_or_default();
    let asks = peers
        .into_iter()
        .filter(|p| p.state != PeerState::Down)
        .map(|p| {
            let req = req.clone();
            async move {
                let r = match &p.endpoint {
                    Some(ep) => ractor::call_t!(ep, EndpointMessage::Clients, PEER_MS, req).ok(),
                    None => None,
                };
                (p.name, r)
            }
        });
    for (name, r) in futures_util::future::join_all(asks).await {
        match r {
            Some(r) => {
                out.count += r.count;
                out.clients.extend(r.clients);
            }
            None => out.missing.push(name),
        }
    }
    out.missing.sort();
    out
}
