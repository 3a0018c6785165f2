//! The admin API on its own listener (`docs/admin-api.md`): this node's stats, its clients and
//! rooms (paged and filtered server-side), kick and throttle. Bearer token compared in constant
//! time, or loopback-only without a token. Every mutating call is audit-logged (who, what, when)
//! and counted in `gatehouse_admin_actions_total`.
//!
//! `/admin/v1/cluster` answers for the whole cluster from any node: this node, every peer that
//! answers within a second, down peers with their last known facts, and `missing` for the rest.
//! Client and room lists are this node's (cluster-wide lists come with cross-node rooms).

use super::body;
use super::error::ApiError;
use crate::cluster::view::PeerState;
use crate::cluster::ClusterMessage;
use crate::context::NodeCtx;
use crate::hub::HubMessage;
use crate::ids::ClientId;
use crate::metrics::Metrics;
use crate::room::calls;
use crate::room::listing;
use crate::wire::endpoint::Limits;
use crate::wire::endpoint::{ClientsRequest, EndpointMessage, StatsRequest};
use crate::wire::host::RoomHostMessage;
use crate::wire::listing::RoomListQuery;
use crate::wire::room::RoomInfo;
use actix_web::{web, HttpRequest, HttpResponse};
use protocol::codes::ErrorCode;
use serde::Deserialize;
use serde_json::json;

const CALL_MS: u64 = 5_000;
const MAX_PAGE: usize = 1000;
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
        .route("/rooms", web::get().to(rooms))
        .route("/rooms/{room}", web::get().to(room))
        .route("/rooms/{room}/migrate", web::post().to(migrate))
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

/// Paging and filtering shared by the list endpoints.
#[derive(Deserialize)]
struct ListQuery {
    limit: Option<usize>,
    cursor: Option<String>,
    q: Option<String>,
    node: Option<String>,
    room: Option<String>,
    /// Sort column (`CLIENT_SORTS` / `listing::SORTS`); numeric columns sort largest first.
    sort: Option<String>,
}

/// `sort` values of `/clients`; the first is the default.
const CLIENT_SORTS: [&str; 7] = [
    "id",
    "user",
    "node",
    "msgs_in",
    "msgs_out",
    "queue_bytes",
    "connected_at",
];
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
    let mut s = crate::stats::node_stats(&ctx).await;
    let clients = ractor::call_t!(ctx.hub, HubMessage::List, CALL_MS).unwrap_or_default();
    s["queue_bytes"] = clients.iter().map(|c| c.queue_bytes).sum::<usize>().into();
    Ok(HttpResponse::Ok().json(s))
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
            .and_then(|r| serde_json::from_str::<serde_json::Value>(&r.json).ok()),
            _ => None,
        };
        (p, answer)
    });
    let answers = futures_util::future::join_all(asks).await;
    let mut nodes = vec![me];
    let mut missing = Vec::new();
    for (p, answer) in answers {
        match answer {
            Some(mut v) => {
                v["rtt_us"] = p.rtt_us.into();
                v["reconnects"] = p.reconnects.into();
                nodes.push(v);
            }
            None if p.state == PeerState::Down => nodes.push(json!({
                "name": p.name, "incarnation": p.incarnation, "cluster_address": p.addr,
                "address": p.public_addr, "state": "down", "reconnects": p.reconnects,
            })),
            None => missing.push(p.name.clone()),
        }
    }
    nodes.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(HttpResponse::Ok().json(json!({
        "nodes": nodes, "partial": !missing.is_empty(), "missing": missing
    })))
}

async fn clients(
    req: HttpRequest,
    q: web::Query<ListQuery>,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx)?;
    let sort = sort_column(&q, &CLIENT_SORTS)?;
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
        limit: q.limit.unwrap_or(100).clamp(1, MAX_PAGE),
    };
    let page = crate::clients::page_everywhere(&ctx, query).await;
    let body = json!({
        "clients": page.clients,
        "total": page.total,
        "next_cursor": page.next_cursor,
        "partial": !page.missing.is_empty(),
        "missing": page.missing,
    });
    Ok(HttpResponse::Ok().json(body))
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
    let conns = crate::clients::everywhere(&ctx, get).await.clients;
    let Some(first) = conns.first() else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("client `{id}` is not connected"),
        ));
    };
    let mut v = serde_json::to_value(first).unwrap_or_default();
    v["connections"] = serde_json::to_value(&conns).unwrap_or_default();
    Ok(HttpResponse::Ok().json(v))
}

#[derive(Deserialize)]
struct KickBody {
    #[serde(default)]
    reason: Option<String>,
}

async fn kick(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx)?;
    let id = ClientId::new(&path);
    let bytes = body::read(payload, 4096).await?;
    let b: KickBody = if bytes.is_empty() {
        KickBody { reason: None }
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let reason = b.reason.unwrap_or_else(|| "kicked by operator".into());
    if reason.len() > 120 {
        return Err(ApiError::bad_request("`reason` must be at most 120 bytes"));
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
    Ok(HttpResponse::Ok().json(json!({ "client": id.as_str(), "kicked": n })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThrottleBody {
    msgs_per_sec: u32,
    burst: u32,
    #[serde(default)]
    bytes_per_sec: Option<u64>,
}

async fn throttle(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx)?;
    let id = ClientId::new(&path);
    let b: ThrottleBody = body::json(payload, 4096).await?;
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
    Ok(HttpResponse::Ok().json(json!({
        "client": id.as_str(), "connections": n,
        "msgs_per_sec": limits.msgs_per_sec, "burst": limits.burst, "bytes_per_sec": limits.bytes_per_sec
    })))
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
    Ok(HttpResponse::Ok().json(json!({ "client": id.as_str(), "connections": n })))
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
async fn room_page(ctx: &NodeCtx, query: RoomListQuery) -> serde_json::Value {
    let limit = query.limit.max(1);
    let sort = query.sort.clone();
    let asks = crate::directory::hosts(&ctx.placement)
        .into_iter()
        .map(|(node, host)| {
            let query = query.clone();
            async move {
                let page = match host {
                    Some(h) => ractor::call_t!(h, RoomHostMessage::List, PEER_MS, query).ok(),
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
    json!({
        "rooms": rooms, "total": total, "next_cursor": next,
        "partial": !missing.is_empty(), "missing": missing
    })
}

async fn rooms(
    req: HttpRequest,
    q: web::Query<ListQuery>,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx)?;
    let sort = sort_column(&q, &listing::SORTS)?;
    let query = RoomListQuery {
        q: q.q.clone().filter(|s| !s.is_empty()),
        node: q.node.clone(),
        sort: sort.to_owned(),
        after: q.cursor.clone(),
        limit: q.limit.unwrap_or(100).clamp(1, MAX_PAGE),
    };
    Ok(HttpResponse::Ok().json(room_page(&ctx, query).await))
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
    let hello = json!({"type": "hello", "observed_by": ctx.node, "state": ctx.state().as_str()})
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
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            json!({"type": "lagged", "missed": n}).to_string()
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
        actix_web::http::StatusCode::ACCEPTED
    } else {
        actix_web::http::StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(json!({ "node": node, "state": out.state })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MigrateBody {
    to: String,
}

async fn migrate(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx)?;
    let room = super::error::room_name(&path)?;
    let b: MigrateBody = body::json(payload, 4096).await?;
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
        crate::room::RoomCallError::Refused(m) => {
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
    Ok(HttpResponse::Ok().json(json!({
        "room": room.as_str(), "from": out.from, "to": out.to, "seq": out.seq, "epoch": out.epoch
    })))
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
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let mut members = Vec::with_capacity(limit);
    let next = calls::presence_page(&r, q.cursor.clone(), limit, |m| {
        members.push(m.clone());
        true
    })
    .await
    .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let total = info.members;
    let mut body = serde_json::to_value(&info).unwrap_or_default();
    body["members"] = json!(members);
    body["members_total"] = json!(total);
    body["next_cursor"] = json!(next);
    // Every live instance of the room, by node (each live node says what runs on it): one,
    // except for a moment during a migration or after a partition healed (the rival yields
    // within ~2 s).
    let (found, _missing) = crate::directory::instances_everywhere(&ctx.placement, &room).await;
    let instances: Vec<serde_json::Value> = found
        .iter()
        .filter_map(|a| {
            let (epoch, node) = crate::wire::names::parse_room_actor(&a.name)?;
            Some(serde_json::json!({"node": node, "epoch": epoch}))
        })
        .collect();
    body["instances"] = serde_json::Value::Array(instances);
    Ok(HttpResponse::Ok().json(body))
}
