//! `GET /ws`: admission and upgrade. Everything that can refuse a client does so here, with an
//! HTTP status before the WebSocket opens (`docs/protocol.md` §1): 503 when the node is not
//! active, 403 for an `Origin` outside the allow-list, 401 for a bad or missing token, 429 for
//! the per-IP / per-user caps. The handshake itself is [`super::upgrade`]'s; then the connection
//! task takes over ([`crate::connection`]).

use super::error::ApiError;
use crate::admission::{origin_allowed, Refusal};
use crate::connection::Accepted;
use crate::context::NodeCtx;
use crate::ids::{now_micros, ClientId};
use crate::lifecycle::NodeState;
use crate::metrics::Metrics;
use actix_http::RequestHead;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{web, HttpRequest, HttpResponse};
use protocol::codes::ErrorCode;
use std::collections::HashMap;
use std::sync::Arc;

/// The subprotocol clients offer (and the node selects).
pub const SUBPROTOCOL: &str = "gatehouse.v1";

/// Counts and logs a refused upgrade (`reason` labels `gatehouse_rejected_upgrades_total`).
pub(super) fn refuse(ctx: &NodeCtx, reason: &str, err: ApiError) -> ApiError {
    Metrics::count(&ctx.metrics.rejected_upgrades, reason);
    tracing::debug!(reason, error = %err, "upgrade refused");
    err
}

/// The token from `?token=`, `Authorization: Bearer`, or the subprotocol `token.<JWT>`.
fn token_of(headers: &HeaderMap, query: &HashMap<String, String>) -> Option<String> {
    if let Some(t) = query.get("token") {
        return Some(t.clone());
    }
    if let Some(h) = headers.get(header::AUTHORIZATION) {
        if let Some(t) = h.to_str().ok().and_then(super::bearer::bearer_token) {
            return Some(t.to_owned());
        }
    }
    for h in headers.get_all(header::SEC_WEBSOCKET_PROTOCOL) {
        if let Ok(s) = h.to_str() {
            for p in s.split(',').map(str::trim) {
                if let Some(t) = p.strip_prefix("token.") {
                    return Some(t.to_owned());
                }
            }
        }
    }
    None
}

/// Session tokens older than this are never honoured, however recently the client was seen.
const SESSION_MAX_AGE_S: u64 = 24 * 3600;

/// Resolves `?session=`: a valid token for the same user (or, for an anonymous client, the
/// token's own anonymous user) keeps its client id if the token is younger than the session TTL
/// or the client is connected or left within the TTL. Otherwise a new client id is minted.
fn resume(
    ctx: &NodeCtx,
    mut identity: crate::auth::Identity,
    token: Option<&String>,
) -> (crate::auth::Identity, ClientId, bool) {
    let ttl = ctx.config.limits.session_ttl.as_secs();
    let verified = token
        .and_then(|t| {
            ctx.conn
                .sessions
                .verify(t, SESSION_MAX_AGE_S, now_micros() / 1_000_000)
        })
        // An anonymous client may only resume an anonymous session: a token alone never grants
        // an authenticated user's identity.
        .filter(|(_, user, _)| {
            if identity.anonymous {
                user.as_str().starts_with("anon-")
            } else {
                *user == identity.user
            }
        });
    let Some((client, user, age)) = verified else {
        return (identity, ClientId::generate(), false);
    };
    let fresh = age <= ttl || ctx.conns.resumable(&client);
    if !fresh {
        return (identity, ClientId::generate(), false);
    }
    if identity.anonymous {
        identity.user = user;
    }
    (identity, client, true)
}

/// Runs every admission check on an upgrade request's head: node state (503), `Origin` (403),
/// token (401), connection caps (429, 503 when the node is full). On success the client holds
/// an admission slot until its connection ends.
pub fn admit(ctx: &Arc<NodeCtx>, head: &RequestHead) -> Result<Accepted, ApiError> {
    match ctx.state() {
        NodeState::Active => {}
        s => {
            let msg = format!("node is {}", s.as_str());
            return Err(refuse(ctx, "not_ready", ApiError::unavailable(msg)));
        }
    }
    let origin = head
        .headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok());
    if !origin_allowed(&ctx.config.auth.allowed_origins, origin) {
        let msg = format!("origin `{}` is not allowed", origin.unwrap_or_default());
        return Err(refuse(
            ctx,
            "origin",
            ApiError::new(ErrorCode::Forbidden, msg),
        ));
    }
    let query = web::Query::<HashMap<String, String>>::from_query(head.uri.query().unwrap_or(""))
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let token = token_of(&head.headers, &query);
    let identity = ctx.auth.authenticate(token.as_deref()).map_err(|e| {
        refuse(
            ctx,
            "auth",
            ApiError::new(ErrorCode::Unauthorized, e.to_string()),
        )
    })?;
    let (identity, client, resumed) = resume(ctx, identity, query.get("session"));
    let remote_ip = head
        .peer_addr
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    let guard = ctx
        .admission
        .try_admit(remote_ip, (!identity.anonymous).then_some(&identity.user))
        .map_err(|r| {
            let status = match r {
                Refusal::NodeFull(_) => 503,
                _ => 429,
            };
            let code = if status == 503 {
                ErrorCode::Unavailable
            } else {
                ErrorCode::RateLimited
            };
            refuse(
                ctx,
                "connection_cap",
                ApiError::with_status(status, code, r.to_string()),
            )
        })?;
    Ok(Accepted {
        identity,
        client,
        resumed,
        remote_ip,
        guard,
    })
}

/// Whether the client offered the `gatehouse.v1` subprotocol.
pub fn offers_subprotocol(head: &RequestHead) -> bool {
    head.headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|h| h.to_str().ok())
        .flat_map(|s| s.split(','))
        .any(|p| p.trim() == SUBPROTOCOL)
}

/// `GET /ws` without `Upgrade: websocket` (upgrade requests never reach the app: actix-http
/// hands them to [`super::upgrade`]). Answers what admission would, else 400.
pub async fn not_upgraded(
    req: HttpRequest,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    let ctx = ctx.into_inner();
    let _accepted = admit(&ctx, req.head())?;
    Err(refuse(
        &ctx,
        "handshake",
        ApiError::bad_request(
            "not a WebSocket handshake: expected `Connection: Upgrade` and `Upgrade: websocket`",
        ),
    ))
}
