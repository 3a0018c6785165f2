//! Client operations across the cluster: send to a user, kick, throttle, list, join or leave a
//! room — done on this node through its hub and rate limiter, and on every live peer through its
//! cluster endpoint, with the answers summed or merged. Peers that do not answer in time are
//! named in `missing`. Holds no state.

use crate::cluster::view::PeerState;
use crate::cluster::ClusterMessage;
use crate::context::NodeCtx;
use crate::hub::order::sort_key;
use crate::hub::HubMessage;
use crate::ids::{ClientId, UserId};
use crate::rate_limit::RateLimitMessage;
use crate::wire::endpoint::{ClientQuery, ClientSummary};
use crate::wire::endpoint::{ClientsReply, ClientsRequest, EndpointMessage, Refusal};
use std::time::Duration;

const LOCAL_MS: u64 = 5_000;
/// How long a peer may take to answer.
const PEER_MS: u64 = 2_000;
/// How long a connection may take to join or leave a room for an operator: a join looks the
/// room up and calls its owner, twice at most, each call within 5 s.
const ROOM_OP_MS: u64 = 11_000;
/// How long a peer may take to answer a join or leave (its connections' time and the link's).
pub const PEER_ROOM_OP_MS: u64 = ROOM_OP_MS + 1_000;

/// Does `req` on this node.
pub async fn local(ctx: &NodeCtx, req: ClientsRequest) -> ClientsReply {
    fn count<E>(n: Result<usize, E>) -> ClientsReply {
        ClientsReply {
            count: n.unwrap_or(0),
            ..ClientsReply::default()
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
            ctx.limiter.actor,
            |tx| RateLimitMessage::Throttle {
                client: ClientId::new(&client),
                limits,
                reply: tx
            },
            LOCAL_MS
        )),
        ClientsRequest::Invalid => count(Ok::<usize, ()>(0)),
        ClientsRequest::Page(query) => ractor::call_t!(
            ctx.hub,
            |tx| HubMessage::Page { query, reply: tx },
            LOCAL_MS
        )
        .unwrap_or_default(),
        ClientsRequest::Get { client } => ClientsReply {
            clients: ractor::call_t!(
                ctx.hub,
                |tx| HubMessage::Get {
                    client: ClientId::new(&client),
                    reply: tx
                },
                LOCAL_MS
            )
            .unwrap_or_default(),
            ..ClientsReply::default()
        },
        ClientsRequest::Join { client, room } => room_op(ctx, &client, &room, true).await,
        ClientsRequest::Leave { client, room } => room_op(ctx, &client, &room, false).await,
    }
}

/// Every connection of `client` on this node joins (`join`) or leaves `room`: `count` the
/// connections that did, `unchanged` those already in (join) or not in (leave) it, `refused`
/// the first refusal of a join. A connection that does not answer within [`ROOM_OP_MS`] (or
/// ends first) is not counted; a room name that breaks the rules changes nothing.
async fn room_op(ctx: &NodeCtx, client: &str, room: &str, join: bool) -> ClientsReply {
    use crate::outbound::RoomOpOutcome;
    let mut out = ClientsReply::default();
    let Ok(room) = protocol::room::RoomName::parse(room) else {
        return out;
    };
    let waits = ractor::call_t!(
        ctx.hub,
        |tx| HubMessage::RoomOp {
            client: ClientId::new(client),
            room,
            join,
            reply: tx
        },
        LOCAL_MS
    )
    .unwrap_or_default();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ROOM_OP_MS);
    let answers = futures_util::future::join_all(
        waits
            .into_iter()
            .map(|rx| tokio::time::timeout_at(deadline, rx)),
    )
    .await;
    for answer in answers {
        match answer {
            Ok(Ok(RoomOpOutcome::Done)) => out.count += 1,
            Ok(Ok(RoomOpOutcome::Unchanged)) => out.unchanged += 1,
            Ok(Ok(RoomOpOutcome::Refused(code, message))) => {
                out.refused.get_or_insert(Refusal {
                    code: code.as_str().to_owned(),
                    message,
                });
            }
            Ok(Err(_)) | Err(_) => {}
        }
    }
    out
}

/// A page merged from every node's page.
#[derive(Debug, Default)]
pub struct MergedPage {
    /// Matching connections in the whole cluster.
    pub total: usize,
    /// This page, in key order.
    pub clients: Vec<ClientSummary>,
    /// Cursor of the next page, if there is one.
    pub next_cursor: Option<String>,
    /// Peers that did not answer.
    pub missing: Vec<String>,
}

/// Asks every node for its page of `query` and merges them into one.
pub async fn page_everywhere(ctx: &NodeCtx, query: ClientQuery) -> MergedPage {
    let limit = query.limit.max(1);
    let sort = query.sort.clone();
    let answers = gather(ctx, ClientsRequest::Page(query)).await;
    let mut out = MergedPage {
        missing: answers.missing,
        ..MergedPage::default()
    };
    let mut remaining = 0;
    let mut keyed = Vec::new();
    for r in answers.replies {
        out.total += r.count;
        remaining += r.remaining;
        keyed.extend(r.clients.into_iter().map(|c| (sort_key(&c, &sort), c)));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.truncate(limit);
    if remaining > keyed.len() {
        out.next_cursor = keyed.last().map(|(k, _)| k.clone());
    }
    out.clients = keyed.into_iter().map(|(_, c)| c).collect();
    out
}

/// Every node's reply to one request (this node's first), and the peers that did not answer.
struct Gathered {
    replies: Vec<ClientsReply>,
    missing: Vec<String>,
}

async fn gather(ctx: &NodeCtx, req: ClientsRequest) -> Gathered {
    gather_within(ctx, req, PEER_MS).await
}

/// [`gather`], waiting up to `peer_ms` for each peer.
async fn gather_within(ctx: &NodeCtx, req: ClientsRequest, peer_ms: u64) -> Gathered {
    let mut out = Gathered {
        replies: vec![local(ctx, req.clone()).await],
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
                    Some(ep) => ractor::call_t!(ep, EndpointMessage::Clients, peer_ms, req).ok(),
                    None => None,
                };
                (p.name, r)
            }
        });
    for (name, r) in futures_util::future::join_all(asks).await {
        match r {
            Some(r) => out.replies.push(r),
            None => out.missing.push(name),
        }
    }
    out.missing.sort();
    out
}

/// The merged answer of every node.
#[derive(Debug, Default)]
pub struct ClusterAnswer {
    /// Connections affected, summed.
    pub count: usize,
    /// Connections listed, merged.
    pub clients: Vec<ClientSummary>,
    /// Connections a join or leave left as they were, summed.
    pub unchanged: usize,
    /// The first refusal of a join (this node's first, then the peers' in the order they
    /// answered).
    pub refused: Option<Refusal>,
    /// Peers that did not answer.
    pub missing: Vec<String>,
}

/// Does `req` on this node and on every live peer.
pub async fn everywhere(ctx: &NodeCtx, req: ClientsRequest) -> ClusterAnswer {
    let peer_ms = match req {
        ClientsRequest::Join { .. } | ClientsRequest::Leave { .. } => PEER_ROOM_OP_MS,
        _ => PEER_MS,
    };
    let answers = gather_within(ctx, req, peer_ms).await;
    let mut out = ClusterAnswer {
        missing: answers.missing,
        ..ClusterAnswer::default()
    };
    for r in answers.replies {
        out.count += r.count;
        out.unchanged += r.unchanged;
        if out.refused.is_none() {
            out.refused = r.refused;
        }
        out.clients.extend(r.clients);
    }
    out
}
