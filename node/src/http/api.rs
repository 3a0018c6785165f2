//! The backend API (`/api/v1`, `Authorization: Bearer <api key>`): publish to a room, send to a
//! user's connections, disconnect a client, presence, history and room snapshots
//! (`docs/protocol.md` §13). Answers are JSON; errors are `{"error":{"code","message"}}`.

use super::body;
use super::error::ApiError;
use crate::context::NodeCtx;
use crate::directory;
use crate::ids::ClientId;
use crate::metrics::Metrics;
use crate::room_access::calls;
use crate::room_access::RoomRef;
use crate::wire::endpoint::ClientsRequest;
use crate::wire::room::Publisher;
use actix_web::{web, HttpRequest, HttpResponse};
use protocol::client::Since;
use protocol::client::{PRESENCE_MAX_LIMIT, PRESENCE_REPLY_BYTES};
use protocol::codes::ErrorCode;
use protocol::room::RoomName;
use protocol::server::ServerFrame;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

/// Registers the routes under `/api/v1`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/rooms/{room}/publish", web::post().to(publish))
        .route("/users/{user}/send", web::post().to(send_to_user))
        .route("/clients/{client}/disconnect", web::post().to(disconnect))
        .route("/rooms/{room}/presence", web::get().to(presence))
        .route("/rooms/{room}/history", web::get().to(history))
        .route("/rooms/{room}/snapshot", web::put().to(put_snapshot))
        .route("/rooms/{room}/snapshot", web::get().to(get_snapshot));
}

#[derive(Deserialize)]
struct DataBody {
    data: Box<RawValue>,
}

#[derive(Deserialize)]
struct DisconnectBody {
    #[serde(default)]
    code: Option<u16>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
struct PresenceQuery {
    after: Option<String>,
    limit: Option<u32>,
}

#[derive(Deserialize)]
struct HistoryQuery {
    since_seq: Option<u64>,
    epoch: Option<String>,
    limit: Option<usize>,
}

fn guard(req: &HttpRequest, ctx: &NodeCtx, endpoint: &str) -> Result<(), ApiError> {
    super::bearer::check(req, ctx.config.api.key.as_ref(), "API key")?;
    Metrics::count(&ctx.metrics.api_requests, endpoint);
    Ok(())
}

fn body_limit(ctx: &NodeCtx) -> usize {
    ctx.config
        .limits
        .max_message_bytes
        .max(ctx.config.rooms.max_snapshot_bytes)
        + 1024
}

async fn room_ref(ctx: &NodeCtx, room: &RoomName) -> Result<RoomRef, ApiError> {
    Ok(directory::lookup(&ctx.placement, room).await?)
}

async fn publish(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx, "publish")?;
    let room = super::error::room_name(&path)?;
    let b: DataBody = body::json(payload, ctx.config.limits.max_message_bytes + 1024).await?;
    let p = publish_as_backend(&ctx, &room, b.data).await?;
    Ok(HttpResponse::Ok().json(json!({ "seq": p.seq, "epoch": p.epoch })))
}

/// Publishes `data` into `room` as the backend (the room is created on its owner if it is not
/// running): the backend API's publish and the admin API's.
pub(super) async fn publish_as_backend(
    ctx: &NodeCtx,
    room: &RoomName,
    data: Box<RawValue>,
) -> Result<crate::wire::room::Published, ApiError> {
    let r = room_ref(ctx, room).await?;
    calls::publish(&r, Publisher::Backend, data)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))
}

async fn send_to_user(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx, "send")?;
    let user = path.into_inner();
    if user.is_empty() || user.len() > 256 {
        return Err(ApiError::bad_request("user id must be 1-256 characters"));
    }
    let b: DataBody = body::json(payload, ctx.config.limits.max_message_bytes + 1024).await?;
    let frame = ServerFrame::Direct { data: &b.data }.encode();
    let a = crate::clients::everywhere(&ctx, ClientsRequest::SendToUser { user, frame }).await;
    Ok(HttpResponse::Ok().json(json!({
        "delivered": a.count, "partial": !a.missing.is_empty(), "missing": a.missing
    })))
}

async fn disconnect(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx, "disconnect")?;
    let client = ClientId::new(&path);
    let bytes = body::read(payload, 4096).await?;
    let b: DisconnectBody = if bytes.is_empty() {
        DisconnectBody {
            code: None,
            reason: None,
        }
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let code = b.code.unwrap_or(protocol::codes::close::KICKED);
    if !(code == 1000 || code == 1008 || (3000..=4999).contains(&code)) {
        return Err(ApiError::bad_request(format!(
            "`code` {code} is not allowed: use 1000, 1008 or 3000-4999"
        )));
    }
    let reason = b
        .reason
        .unwrap_or_else(|| "disconnected by the backend".into());
    if reason.len() > 120 {
        return Err(ApiError::bad_request("`reason` must be at most 120 bytes"));
    }
    let kick = ClientsRequest::Kick {
        client: client.to_string(),
        code,
        reason: reason.clone(),
    };
    let n = crate::clients::everywhere(&ctx, kick).await.count;
    // Idempotent: a client that is already gone answers `disconnected: 0`.
    tracing::info!(client = %client, code, %reason, connections = n, "client disconnected by backend");
    Ok(HttpResponse::Ok().json(json!({ "disconnected": n })))
}

/// One page of a room's members, like a client's `presence`: at most `limit` (default and
/// most [`PRESENCE_MAX_LIMIT`]) and [`PRESENCE_REPLY_BYTES`] of member entries, and the cursor
/// of the next page.
async fn presence(
    req: HttpRequest,
    path: web::Path<String>,
    q: web::Query<PresenceQuery>,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx, "presence")?;
    let room = super::error::room_name(&path)?;
    let q = q.into_inner();
    if let Some(a) = &q.after {
        if !protocol::client::is_presence_cursor(a) {
            return Err(ApiError::bad_request(
                "`after` must be a cursor from a previous page's `next`",
            ));
        }
    }
    if q.limit == Some(0) {
        return Err(ApiError::bad_request("`limit` must be at least 1"));
    }
    let Some(r) = crate::directory::locate(&ctx.placement, &room).await? else {
        return Ok(HttpResponse::Ok().json(json!({ "members": [], "count": 0, "next": null })));
    };
    let limit = q
        .limit
        .unwrap_or(PRESENCE_MAX_LIMIT)
        .min(PRESENCE_MAX_LIMIT) as usize;
    let (members, count, next) =
        calls::presence_json(&r, q.after, limit, PRESENCE_REPLY_BYTES, true)
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let body = format!(
        r#"{{"count":{count},"members":{members},"next":{}}}"#,
        serde_json::Value::from(next)
    );
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

async fn history(
    req: HttpRequest,
    path: web::Path<String>,
    q: web::Query<HistoryQuery>,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx, "history")?;
    let room = super::error::room_name(&path)?;
    let Some(r) = crate::directory::locate(&ctx.placement, &room).await? else {
        // No live room: no epoch and nothing in history.
        return Ok(HttpResponse::Ok().json(json!({
            "epoch": null, "seq": 0, "recovered": false, "messages": []
        })));
    };
    let limit = q.limit.unwrap_or(100).min(ctx.config.rooms.history_size);
    // Without `epoch` the position is taken in the room's current epoch.
    let since = q.since_seq.map(|seq| Since {
        seq,
        epoch: q.epoch.clone().unwrap_or_default(),
    });
    let page = calls::history(&r, since, limit)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let messages = page.messages_json();
    let body = format!(
        r#"{{"epoch":{},"seq":{},"recovered":{},"messages":{}}}"#,
        serde_json::Value::from(&*page.epoch),
        page.seq,
        page.complete,
        messages
    );
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

async fn put_snapshot(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx, "put_snapshot")?;
    let room = super::error::room_name(&path)?;
    let b: DataBody = body::json(payload, body_limit(&ctx)).await?;
    let r = room_ref(&ctx, &room).await?;
    match calls::set_snapshot(&r, b.data).await {
        Ok(seq) => Ok(HttpResponse::Ok().json(json!({ "seq": seq }))),
        Err(crate::room_access::RoomCallError::Refused(e)) => {
            Err(ApiError::new(ErrorCode::PayloadTooLarge, e))
        }
        Err(e) => Err(ApiError::unavailable(e.to_string())),
    }
}

async fn get_snapshot(
    req: HttpRequest,
    path: web::Path<String>,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    guard(&req, &ctx, "get_snapshot")?;
    let room = super::error::room_name(&path)?;
    let missing = || {
        ApiError::new(
            ErrorCode::NotFound,
            format!("room `{room}` has no snapshot"),
        )
    };
    let Some(r) = crate::directory::locate(&ctx.placement, &room).await? else {
        return Err(missing());
    };
    let res = calls::get_snapshot(&r).await.map_err(|e| match e {
        crate::room_access::RoomCallError::Refused(e) => ApiError::new(ErrorCode::Internal, e),
        e => ApiError::unavailable(e.to_string()),
    })?;
    let Some((seq, epoch, data)) = res else {
        return Err(missing());
    };
    let body = format!(
        r#"{{"seq":{seq},"epoch":{},"data":{}}}"#,
        serde_json::Value::from(&*epoch),
        data.get()
    );
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}
