//! `GET /ws`: admission and upgrade. Everything that can refuse a client does so here, with an
//! HTTP status before the WebSocket opens (`interfaces.md` §1): 503 when the node is not
//! active, 403 for an `Origin` outside the allow-list, 401 for a bad or missing token, 429 for
//! the per-IP / per-user caps. Then the connection task takes over ([`crate::connection`]).

use super::error::ApiError;
use crate::admission::{origin_allowed, Refusal};
use crate::connection::{self, Accepted};
use crate::context::{NodeCtx, NodeState};
use crate::ids::{now_micros, ClientId};
use crate::metrics::Metrics;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use protocol::codes::ErrorCode;
use std::collections::HashMap;

/// The subprotocol clients offer (and the node selects).
pub const SUBPROTOCOL: &str = "gatehouse.v1";

fn refuse(ctx: &NodeCtx, reason: &str, err: ApiError) -> ApiError {
    Metrics::count(&ctx.metrics.rejected_upgrades, reason);
    tracing::debug!(reason, error = %err, "upgrade refused");
    err
}

/// The token from `?token=`, `Authorization: Bearer`, or the subprotocol `token.<JWT>`.
fn token_of(req: &HttpRequest, query: &HashMap<String, String>) -> Option<String> {
    if let Some(t) = query.get("token") {
        return Some(t.clone());
    }
    if let Some(h) = req.headers().get(header::AUTHORIZATION) {
        if let Some(t) = h.to_str().ok().and_then(super::bearer::bearer_token) {
            return Some(t.to_owned());
        }
    }
    for h in req.headers().get_all(header::SEC_WEBSOCKET_PROTOCOL) {
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
async fn resume(
    ctx: &NodeCtx,
    mut identity: crate::auth::Identity,
    token: Option<&String>,
) -> (crate::auth::Identity, ClientId, bool) {
    let ttl = ctx.config.limits.session_ttl.as_secs();
    let verified = token
        .and_then(|t| {
            ctx.sessions
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
    let fresh = age <= ttl
        || ractor::call_t!(
            ctx.hub,
            |tx| crate::hub::HubMessage::Resumable {
                client: client.clone(),
                reply: tx
            },
            1_000
        )
        .unwrap_or(false);
    if !fresh {
        return (identity, ClientId::generate(), false);
    }
    if identity.anonymous {
        identity.user = user;
    }
    (identity, client, true)
}

/// Admits and upgrades a client.
pub async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    let ctx = ctx.into_inner();
    match ctx.state() {
        NodeState::Active => {}
        s => {
            let msg = format!("node is {}", s.as_str());
            return Err(refuse(&ctx, "not_ready", ApiError::unavailable(msg)));
        }
    }
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok());
    if !origin_allowed(&ctx.config.auth.allowed_origins, origin) {
        let msg = format!("origin `{}` is not allowed", origin.unwrap_or_default());
        return Err(refuse(
            &ctx,
            "origin",
            ApiError::new(ErrorCode::Forbidden, msg),
        ));
    }
    let query = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let token = token_of(&req, &query);
    let identity = ctx.auth.authenticate(token.as_deref()).map_err(|e| {
        refuse(
            &ctx,
            "auth",
            ApiError::new(ErrorCode::Unauthorized, e.to_string()),
        )
    })?;
    let (identity, client, resumed) = resume(&ctx, identity, query.get("session")).await;
    let remote_ip = req
        .peer_addr()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    let guard = ctx
        .admission
        .try_admit(remote_ip, &identity.user)
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
                &ctx,
                "connection_cap",
                ApiError::with_status(status, code, r.to_string()),
            )
        })?;
    let (resp, session, stream) = actix_ws::handle_with_protocols(&req, body, &[SUBPROTOCOL])
        .map_err(|e| {
            refuse(
                &ctx,
                "handshake",
                ApiError::bad_request(format!("not a WebSocket handshake: {e}")),
            )
        })?;
    connection::spawn(
        ctx.clone(),
        session,
        stream,
        Accepted {
            identity,
            client,
            resumed,
            remote_ip,
            guard,
        },
    );
    Ok(resp)
}
