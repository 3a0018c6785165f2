//! The admin API on its own listener (`docs/admin-api.md`): this node's stats, its clients and
//! rooms (paged and filtered server-side), kick and throttle, a client joining or leaving a
//! room, publishing into a room as the backend, and a room's history (newest first) and
//! presence. Bearer token compared in constant time, or loopback-only without a token. Every
//! mutating call is audit-logged (who, what, when) and counted in
//! `gatehouse_admin_actions_total`.
//!
//! `/admin/v1/cluster` answers for the whole cluster from any node: this node, every peer that
//! answers within a second, down peers with their last known facts, and `missing` for the rest.
//! Client and room lists are this node's (cluster-wide lists come with cross-node rooms).
//!
//! Requests and answers are the admin API's own types (`protocol::admin`), as is every limit
//! (page sizes, sort columns, body and reason sizes); answers are written through
//! [`admin::to_value`], which keeps their keys in alphabetical order, as the contract shows.

use super::body;
use super::error::ApiError;
use crate::cluster::view::PeerState;
use crate::cluster::ClusterMessage;
use crate::context::NodeCtx;
use crate::hub::HubMessage;
use crate::ids::ClientId;
use crate::metrics::Metrics;
use crate::room_access::calls;
use crate::room_access::listing;
use crate::wire::endpoint::Limits;
use crate::wire::endpoint::{ClientsRequest, EndpointMessage, StatsRequest};
use crate::wire::host::RoomHostMessage;
use crate::wire::listing::{ListRooms, RoomListQuery};
use crate::wire::room::RoomInfo;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use protocol::admin::{self, ListQuery};
use protocol::codes::ErrorCode;

const CALL_MS: u64 = 5_000;
/// How long `/admin/v1/cluster` waits for each peer before listing it as missing.
const PEER_STATS_MS: u64 = 1_000;

/// Registers the routes under `/admin/v1`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/stats", web::get().to(stats))
        .route("/cluster", web::get().to(cluster))
        .route("/clients", web::get().to(clients))
        .route("/clients/{client}", web::get().to(client))
        .route("/clients/{client}/kick", web::post().to(kick))
        .route("/clients/{client}/throttle", web::post().to(throttle))
        .route("/clients/{client}/throttle", web::delete().to(unthrottle))
        .route("/clients/{client}/join", web::post().to(join))
        .route("/clients/{client}/leave", web::post().to(leave))
        .route("/rooms", web::get().to(rooms))
        .route("/rooms/{room}", web::get().to(room))
        .route("/rooms/{room}/migrate", web::post().to(migrate))
        .route("/rooms/{room}/publish", web::post().to(publish))
        .route("/rooms/{room}/history", web::get().to(history))
        .route("/rooms/{room}/presence", web::get().to(presence))
        .route(
            "/nodes/{node}/{op:drain|undrain}",
            web::post().to(node_command),
        )
        .route("/events", web::get().to(events));
}

fn guard(req: &HttpRequest, ctx: &NodeCtx) -> Result<(), ApiError> {
    super::bearer::check(req, ctx.config.admin.token.as_ref(), "admin token")
}

fn audit(req: &HttpRequest, ctx: &NodeCtx, action: &str, target: &str, detail: &str) {
    Metrics::count(&ctx.metrics.admin_actions, action);
    tracing::info!(
        target: "audit",
        who = %super::bearer::caller(req),
        action,
        subject = target,
        detail,
        at_ms = crate::webhook::now_ms(),
        "admin action"
    );
}

/// An answer with `status`.
fn answer(status: StatusCode, body: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::build(status).json(admin::to_value(body))
}

/// How long a node's page of rooms may take (each node asks each of its rooms).
const PEER_MS: u64 = 10_000;

/// The requested sort column, checked against `allowed`.
fn sort_column(q: &ListQuery, allowed: &[&'static str]) -> Result<&'static str, ApiError> {
    let Some(want) = q.sort.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(allowed[0]);
    };
    allowed.iter().copied().find(|a| *a == want).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown sort `{want}`: one of {}",
            allowed.join(", ")
        ))
    })
}

async fn stats(req: HttpRequest, ctx: web::Data<NodeCtx>) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx)?;
    let node = crate::stats::node_stats(&ctx).await;
    let clients = ractor::call_t!(ctx.hub, HubMessage::List, CALL_MS).unwrap_or_default();
    let queue_bytes = clients.iter().map(|c| c.queue_bytes).sum::<usize>() as u64;
    Ok(answer(
        StatusCode::OK,
        &admin::StatsResponse { node, queue_bytes },
    ))
}

async fn cluster(req: HttpRequest, ctx: web::Data<NodeCtx>) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx)?;
    let me = crate::stats::node_stats(&ctx).await;
    let peers = ractor::call_t!(ctx.cluster, ClusterMessage::Peers, CALL_MS)
        .map_err(|e| ApiError::unavailable(format!("cluster view unavailable: {e}")))?;
    // Ask every live peer at once; one that does not answer in time is listed as missing.
    let asks = peers.iter().map(|p| async move {
        let answer = match (&p.endpoint, p.state) {
            (Some(ep), s) if s != PeerState::Down => ractor::call_t!(
                ep,
                EndpointMessage::Stats,
                PEER_STATS_MS,
                StatsRequest {
                    version: crate::wire::protocol_version()
                }
            )
            .ok()
            .and_then(|r| serde_json::from_str::<admin::NodeStats>(&r.json).ok()),
            _ => None,
        };
        (p, answer)
    });
    let answers = futures_util::future::join_all(asks).await;
    let mut nodes = vec![admin::ClusterNode::Live(admin::LiveNode {
        stats: me,
        link: None,
    })];
    let mut missing = Vec::new();
    for (p, answer) in answers {
        match answer {
            Some(stats) => nodes.push(admin::ClusterNode::Live(admin::LiveNode {
                stats,
                link: Some(admin::PeerLink {
                    reconnects: p.reconnects,
                    rtt_us: p.rtt_us,
                }),
            })),
            None if p.state == PeerState::Down => {
                nodes.push(admin::ClusterNode::Down(admin::DownNode {
                    address: p.public_addr.clone(),
                    cluster_address: p.addr.clone(),
                    incarnation: p.incarnation.clone(),
                    name: p.name.clone(),
                    reconnects: p.reconnects,
                    state: "down".into(),
                }))
            }
            None => missing.push(p.name.clone()),
        }
    }
    nodes.sort_by(|a, b| a.name().cmp(b.name()));
    let body = admin::ClusterResponse {
        partial: !missing.is_empty(),
        missing,
        nodes,
    };
    Ok(answer(StatusCode::OK, &body))
}

async fn clients(
    req: HttpRequest,
    q: web::Query<ListQuery>,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx)?;
    let sort = sort_column(&q, &admin::CLIENT_SORTS)?;
    let members = match q.room.as_deref() {
        None => None,
        Some(room) => {
            let room = super::error::room_name(room)?;
            let members = match crate::directory::locate(&ctx.placement, &room).await {
                Ok(Some(r)) => calls::presence(&r).await.unwrap_or_default(),
                _ => Vec::new(),
            };
            Some(members.into_iter().map(|m| m.client).collect())
        }
    };
    let query = crate::wire::endpoint::ClientQuery {
        q: q.q.clone(),
        node: q.node.clone(),
        members,
        sort: sort.to_owned(),
        after: q.cursor.clone(),
        limit: admin::page_limit(q.limit),
    };
    let page = crate::clients::page_everywhere(&ctx, query).await;
    let body = admin::ClientsResponse {
        clients: page.clients,
        partial: !page.missing.is_empty(),
        missing: page.missing,
        next_cursor: page.next_cursor,
        total: page.total,
    };
    Ok(answer(StatusCode::OK, &body))
}

async fn client(
    req: HttpRequest,
    path: web::Path<String>,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx)?;
    let id = ClientId::new(&path);
    let get = ClientsRequest::Get {
        client: id.to_string(),
    };
    let connections = crate::clients::everywhere(&ctx, get).await.clients;
    let Some(first) = connections.first().cloned() else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("client `{id}` is not connected"),
        ));
    };
    let body = admin::ClientDetail { first, connections };
    Ok(answer(StatusCode::OK, &body))
}

async fn kick(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx)?;
    let id = ClientId::new(&path);
    let bytes = body::read(payload, admin::MAX_BODY_BYTES).await?;
    let b: admin::KickRequest = if bytes.is_empty() {
        admin::KickRequest::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let reason = b
        .reason
        .unwrap_or_else(|| admin::DEFAULT_KICK_REASON.into());
    if reason.len() > admin::MAX_REASON_BYTES {
        return Err(ApiError::bad_request(format!(
            "`reason` must be at most {} bytes",
            admin::MAX_REASON_BYTES
        )));
    }
    let kick = ClientsRequest::Kick {
        client: id.to_string(),
        code: protocol::codes::close::KICKED,
        reason: reason.clone(),
    };
    let n = crate::clients::everywhere(&ctx, kick).await.count;
    if n == 0 {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("client `{id}` is not connected"),
        ));
    }
    audit(&req, &ctx, "kick", id.as_str(), &reason);
    crate::events::emit(crate::events::Event::ClientKicked {
        client: id.to_string(),
        reason: reason.clone(),
    });
    let body = admin::KickResponse {
        client: id.to_string(),
        kicked: n,
    };
    Ok(answer(StatusCode::OK, &body))
}

async fn throttle(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx)?;
    let id = ClientId::new(&path);
    let b: admin::ThrottleRequest = body::json(payload, admin::MAX_BODY_BYTES).await?;
    if b.msgs_per_sec == 0 {
        return Err(ApiError::bad_request(
            "`msgs_per_sec` must be greater than 0",
        ));
    }
    if b.burst < 1 {
        return Err(ApiError::bad_request("`burst` must be at least 1"));
    }
    if b.bytes_per_sec
        .is_some_and(|v| v < ctx.config.limits.max_message_bytes as u64)
    {
        return Err(ApiError::bad_request(format!(
            "`bytes_per_sec` must be at least `limits.max_message_bytes` ({}), or a maximal message could never pass",
            ctx.config.limits.max_message_bytes
        )));
    }
    if b.bytes_per_sec == Some(0) {
        return Err(ApiError::bad_request(
            "`bytes_per_sec` must be greater than 0",
        ));
    }
    let limits = Limits {
        msgs_per_sec: b.msgs_per_sec,
        burst: b.burst,
        bytes_per_sec: b.bytes_per_sec.unwrap_or(ctx.config.limits.bytes_per_sec),
    };
    let n = set_limits(&ctx, &id, Some(limits)).await?;
    audit(&req, &ctx, "throttle", id.as_str(), &format!("{limits:?}"));
    crate::events::emit(crate::events::Event::ClientThrottled {
        client: id.to_string(),
        throttled: true,
    });
    let body = admin::ThrottleResponse {
        burst: limits.burst,
        bytes_per_sec: limits.bytes_per_sec,
        client: id.to_string(),
        connections: n,
        msgs_per_sec: limits.msgs_per_sec,
    };
    Ok(answer(StatusCode::OK, &body))
}

async fn unthrottle(
    req: HttpRequest,
    path: web::Path<String>,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx)?;
    let id = ClientId::new(&path);
    let n = set_limits(&ctx, &id, None).await?;
    audit(&req, &ctx, "unthrottle", id.as_str(), "");
    crate::events::emit(crate::events::Event::ClientThrottled {
        client: id.to_string(),
        throttled: false,
    });
    let body = admin::UnthrottleResponse {
        client: id.to_string(),
        connections: n,
    };
    Ok(answer(StatusCode::OK, &body))
}

async fn set_limits(
    ctx: &NodeCtx,
    id: &ClientId,
    limits: Option<Limits>,
) -> Result<usize, ApiError> {
    let throttle = ClientsRequest::Throttle {
        client: id.to_string(),
        limits,
    };
    let n = crate::clients::everywhere(ctx, throttle).await.count;
    if n == 0 {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("client `{id}` is not connected"),
        ));
    }
    Ok(n)
}

/// One page of rooms from every live node (each lists the rooms running on it, sorted and cut
/// to the page), merged: the page, the total, the next cursor, and the nodes that did not
/// answer.
async fn room_page(ctx: &NodeCtx, query: RoomListQuery) -> admin::RoomsResponse {
    let limit = query.limit.max(1);
    let sort = query.sort.clone();
    let asks = crate::directory::hosts(&ctx.placement)
        .into_iter()
        .map(|(node, host)| {
            let query = query.clone();
            async move {
                let page = match host {
                    Some(h) => ractor::call_t!(h, RoomHostMessage::List, PEER_MS, ListRooms(query))
                        .ok()
                        .map(|listed| listed.0),
                    None => None,
                };
                (node, page)
            }
        });
    let mut missing = Vec::new();
    let (mut total, mut remaining) = (0, 0);
    let mut keyed: Vec<(String, RoomInfo)> = Vec::new();
    for (node, page) in futures_util::future::join_all(asks).await {
        let Some(page) = page else {
            missing.push(node);
            continue;
        };
        total += page.total;
        remaining += page.remaining;
        keyed.extend(
            page.rooms
                .into_iter()
                .map(|r| (listing::sort_key(&r, &sort), r)),
        );
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.truncate(limit);
    let next = (remaining > keyed.len())
        .then(|| keyed.last().map(|(k, _)| k.clone()))
        .flatten();
    missing.sort();
    let rooms: Vec<RoomInfo> = keyed.into_iter().map(|(_, r)| r).collect();
    admin::RoomsResponse {
        partial: !missing.is_empty(),
        missing,
        next_cursor: next,
        rooms,
        total,
    }
}

async fn rooms(
    req: HttpRequest,
    q: web::Query<ListQuery>,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx)?;
    let sort = sort_column(&q, &admin::ROOM_SORTS)?;
    let query = RoomListQuery {
        q: q.q.clone().filter(|s| !s.is_empty()),
        node: q.node.clone(),
        sort: sort.to_owned(),
        after: q.cursor.clone(),
        limit: admin::page_limit(q.limit),
    };
    Ok(answer(StatusCode::OK, &room_page(&ctx, query).await))
}

/// `GET /admin/v1/events`: a WebSocket of this node's event log (one JSON object per text
/// frame); a listener that falls behind gets `{"type":"lagged","missed":n}` and continues.
async fn events(
    req: HttpRequest,
    body: web::Payload,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx)?;
    let Some(mut rx) = crate::events::subscribe() else {
        return Err(ApiError::unavailable("the event log is not running"));
    };
    let (resp, mut session, mut stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::bad_request(format!("not a WebSocket handshake: {e}")))?;
    let hello = admin::to_value(&admin::Control::Hello {
        observed_by: ctx.node.clone(),
        state: ctx.state().as_str().to_owned(),
    })
    .to_string();
    actix_web::rt::spawn(async move {
        if session.text(hello).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                ev = rx.recv() => {
                    let text = match ev {
                        Ok(e) => e.to_string(),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                            admin::to_value(&admin::Control::Lagged { missed }).to_string()
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    };
                    if session.text(text).await.is_err() {
                        return;
                    }
                }
                msg = stream.recv() => match msg {
                    Some(Ok(actix_ws::Message::Ping(p))) => {
                        if session.pong(&p).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(actix_ws::Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
            }
        }
        let _ = session.close(None).await;
    });
    Ok(resp)
}

/// Drains or undrains `node`, this one or any peer.
async fn node_command(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx)?;
    let (node, op) = path.into_inner();
    let op = op.as_str();
    let out = if node == ctx.node {
        crate::drain::command(&ctx, op)
    } else {
        let peers = ractor::call_t!(ctx.cluster, ClusterMessage::Peers, CALL_MS)
            .map_err(|e| ApiError::unavailable(e.to_string()))?;
        let Some(p) = peers.iter().find(|p| p.name == node) else {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("no node named `{node}` in the cluster"),
            ));
        };
        let Some(ep) = p.endpoint.as_ref().filter(|_| p.state != PeerState::Down) else {
            return Err(ApiError::unavailable(format!("node `{node}` is down")));
        };
        let cmd = crate::wire::endpoint::NodeCommand { op: op.to_owned() };
        ractor::call_t!(ep, EndpointMessage::Node, CALL_MS, cmd)
            .map_err(|e| ApiError::unavailable(format!("node `{node}` did not answer: {e}")))?
    };
    if let Some(e) = out.error {
        return Err(ApiError::with_status(409, ErrorCode::Unavailable, e));
    }
    audit(&req, &ctx, op, &node, &out.state);
    let status = if op == "drain" {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let body = admin::NodeCommandResponse {
        node,
        state: out.state,
    };
    Ok(answer(status, &body))
}

async fn migrate(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx)?;
    let room = super::error::room_name(&path)?;
    let b: admin::MigrateRequest = body::json(payload, admin::MAX_BODY_BYTES).await?;
    let active = ctx.placement.members.active();
    if !active.contains(&b.to) {
        return Err(ApiError::bad_request(format!(
            "`{}` is not an active node (active: {})",
            b.to,
            active.join(", ")
        )));
    }
    let Some(r) = crate::directory::locate(&ctx.placement, &room).await? else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("room `{room}` does not exist"),
        ));
    };
    let out = calls::migrate(&r, &b.to).await.map_err(|e| match e {
        crate::room_access::RoomCallError::Refused(m) => {
            ApiError::with_status(409, ErrorCode::Unavailable, m)
        }
        e => ApiError::unavailable(e.to_string()),
    })?;
    audit(
        &req,
        &ctx,
        "migrate",
        room.as_str(),
        &format!("{} -> {}", out.from, out.to),
    );
    let body = admin::MigrateResponse {
        epoch: out.epoch,
        from: out.from,
        room: room.to_string(),
        seq: out.seq,
        to: out.to,
    };
    Ok(answer(StatusCode::OK, &body))
}

async fn room(
    req: HttpRequest,
    path: web::Path<String>,
    q: web::Query<ListQuery>,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx)?;
    let room = super::error::room_name(&path)?;
    let Some(r) = crate::directory::locate(&ctx.placement, &room).await? else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("room `{room}` does not exist"),
        ));
    };
    let info = calls::info(&r)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    // One page of members, in client id order, read as far as the page goes (a room of 55 000
    // members is not read whole to show 50 of them).
    let limit = admin::page_limit(q.limit);
    let mut members = Vec::with_capacity(limit);
    let next = calls::presence_page(&r, q.cursor.clone(), limit, |m| {
        members.push(m.clone());
        true
    })
    .await
    .map_err(|e| ApiError::unavailable(e.to_string()))?;
    // Every live instance of the room, by node (each live node says what runs on it): one,
    // except for a moment during a migration or after a partition healed (the rival yields
    // within ~2 s).
    let (found, _missing) = crate::directory::instances_everywhere(&ctx.placement, &room).await;
    let instances = found
        .iter()
        .filter_map(|a| {
            let (epoch, node) = crate::wire::names::parse_room_actor(&a.name)?;
            Some(admin::RoomInstance {
                epoch: epoch.to_string(),
                node: node.to_string(),
            })
        })
        .collect();
    let body = admin::RoomDetail::new(info, members, next, instances);
    Ok(answer(StatusCode::OK, &body))
}

/// The room of a join or leave body, checked.
async fn room_body(payload: web::Payload) -> Result<protocol::room::RoomName, ApiError> {
    let b: admin::RoomRequest = body::json(payload, admin::MAX_BODY_BYTES).await?;
    super::error::room_name(&b.room)
}

/// A room that runs somewhere, or 404.
async fn running(
    ctx: &NodeCtx,
    room: &protocol::room::RoomName,
) -> Result<crate::room_access::RoomRef, ApiError> {
    crate::directory::locate(&ctx.placement, room)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("room `{room}` does not exist")))
}

fn not_connected(id: &ClientId) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("client `{id}` is not connected"),
    )
}

/// `POST /admin/v1/clients/{client}/join`: every connection of the client, on every node that
/// answers, joins the room as if it had asked (the token's `rooms` claim and
/// `limits.max_rooms` hold) and is told with a `joined` frame.
async fn join(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx)?;
    let id = ClientId::new(&path);
    let room = room_body(payload).await?;
    let ask = ClientsRequest::Join {
        client: id.to_string(),
        room: room.to_string(),
    };
    let a = crate::clients::everywhere(&ctx, ask).await;
    if a.count == 0 && a.unchanged == 0 {
        return Err(match a.refused {
            Some(r) => {
                let code = match r.code.as_str() {
                    "forbidden" => ErrorCode::Forbidden,
                    "too_many_rooms" => ErrorCode::TooManyRooms,
                    _ => ErrorCode::Unavailable,
                };
                ApiError::new(
                    code,
                    format!("client `{id}` cannot join `{room}`: {}", r.message),
                )
            }
            None => not_connected(&id),
        });
    }
    audit(&req, &ctx, "join", id.as_str(), room.as_str());
    crate::events::emit(crate::events::Event::ClientJoined {
        client: id.to_string(),
        room: room.to_string(),
    });
    let body = admin::JoinResponse {
        already_joined: a.unchanged,
        client: id.to_string(),
        joined: a.count,
        room: room.to_string(),
    };
    Ok(answer(StatusCode::OK, &body))
}

/// `POST /admin/v1/clients/{client}/leave`: every connection of the client that is a member
/// of the room leaves it and is told with a `left` frame.
async fn leave(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx)?;
    let id = ClientId::new(&path);
    let room = room_body(payload).await?;
    let ask = ClientsRequest::Leave {
        client: id.to_string(),
        room: room.to_string(),
    };
    let a = crate::clients::everywhere(&ctx, ask).await;
    if a.count == 0 {
        return Err(if a.unchanged == 0 {
            not_connected(&id)
        } else {
            ApiError::new(
                ErrorCode::NotFound,
                format!("client `{id}` is not a member of `{room}`"),
            )
        });
    }
    audit(&req, &ctx, "leave", id.as_str(), room.as_str());
    crate::events::emit(crate::events::Event::ClientLeft {
        client: id.to_string(),
        room: room.to_string(),
    });
    let body = admin::LeaveResponse {
        client: id.to_string(),
        left: a.count,
        room: room.to_string(),
    };
    Ok(answer(StatusCode::OK, &body))
}

/// `POST /admin/v1/rooms/{room}/publish`: a message into the room as the backend (created on
/// its owner if it is not running), bounded as the backend API's publish.
async fn publish(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx)?;
    let room = super::error::room_name(&path)?;
    let max = ctx.config.limits.max_message_bytes;
    let b: admin::PublishRequest = body::json(payload, max + admin::PUBLISH_BODY_SLACK).await?;
    if b.data.is_null() {
        return Err(ApiError::bad_request("`data` must not be null"));
    }
    let bytes = b.data.get().len();
    if bytes > max {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("`data` is {bytes} bytes: at most `limits.max_message_bytes` ({max})"),
        ));
    }
    let p = super::api::publish_as_backend(&ctx, &room, b.data.0).await?;
    audit(
        &req,
        &ctx,
        "publish",
        room.as_str(),
        &format!("seq {}, {bytes} bytes", p.seq),
    );
    crate::events::emit(crate::events::Event::RoomPublished {
        room: room.to_string(),
        seq: p.seq,
    });
    let body = admin::PublishResponse {
        epoch: p.epoch,
        room: room.to_string(),
        seq: p.seq,
    };
    Ok(answer(StatusCode::OK, &body))
}

/// `GET /admin/v1/rooms/{room}/history`: one page of what the room holds, newest first
/// (`limit` as every list, at most `rooms.history_size`; at most
/// [`admin::MAX_HISTORY_PAGE_BYTES`] of messages); `cursor` is the previous page's
/// `next_cursor`.
async fn history(
    req: HttpRequest,
    path: web::Path<String>,
    q: web::Query<ListQuery>,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx)?;
    let room = super::error::room_name(&path)?;
    let before = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(admin::parse_history_cursor(c).ok_or_else(|| {
            ApiError::bad_request("`cursor` must be a previous page's `next_cursor`")
        })?),
    };
    let r = running(&ctx, &room).await?;
    let limit = admin::page_limit(q.limit).min(ctx.config.rooms.history_size.max(1));
    let page = calls::history_newest(&r, before, limit, admin::MAX_HISTORY_PAGE_BYTES)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let next_cursor = match (page.more, page.messages.last()) {
        (true, Some(d)) => Some(admin::history_cursor(&page.epoch, d.seq)),
        _ => None,
    };
    let messages = page
        .messages
        .iter()
        .filter_map(|d| {
            let mut m = serde_json::from_str::<admin::HistoryMessage>(&d.frame).ok()?;
            m.published_ms = d.published_us / 1000;
            Some(m)
        })
        .collect();
    let body = admin::HistoryResponse {
        epoch: page.epoch.to_string(),
        messages,
        next_cursor,
        room: room.to_string(),
        seq: page.seq,
    };
    Ok(answer(StatusCode::OK, &body))
}

/// `GET /admin/v1/rooms/{room}/presence`: one page of the room's members by client id
/// (`limit` and `cursor` as every list), and their number.
async fn presence(
    req: HttpRequest,
    path: web::Path<String>,
    q: web::Query<ListQuery>,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx)?;
    let room = super::error::room_name(&path)?;
    if let Some(c) = q.cursor.as_deref() {
        if !protocol::client::is_presence_cursor(c) {
            return Err(ApiError::bad_request(
                "`cursor` must be a previous page's `next_cursor`",
            ));
        }
    }
    let r = running(&ctx, &room).await?;
    let info = calls::info(&r)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let limit = admin::page_limit(q.limit);
    let mut members = Vec::with_capacity(limit.min(info.members));
    let next_cursor = calls::presence_page(&r, q.cursor.clone(), limit, |m| {
        members.push(m.clone());
        true
    })
    .await
    .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let body = admin::PresenceResponse {
        members,
        next_cursor,
        room: room.to_string(),
        total: info.members,
    };
    Ok(answer(StatusCode::OK, &body))
}
