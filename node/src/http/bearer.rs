//! Bearer-token checks for the backend and admin APIs: constant-time comparison with the
//! configured secret, or — when none is configured — true loopback clients only: the TCP peer
//! is on loopback *and* the request was not relayed by a proxy (a PROXY header naming another
//! address, [`super::front`]). A load balancer or sidecar on the same host is a loopback peer
//! for every client it relays; none of them is let in.

use super::error::ApiError;
use actix_web::http::header;
use actix_web::HttpRequest;
use cluster_config::Secret;
use protocol::codes::ErrorCode;
use subtle::ConstantTimeEq;

/// Admits the request if it carries `expected` as a bearer token, or if no token is configured
/// and the peer is on loopback.
pub fn check(req: &HttpRequest, expected: Option<&Secret>, what: &str) -> Result<(), ApiError> {
    match expected {
        Some(secret) => {
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|h| h.to_str().ok())
                .and_then(bearer_token);
            let Some(given) = given else {
                return Err(ApiError::new(
                    ErrorCode::Unauthorized,
                    format!("`Authorization: Bearer <{what}>` is required"),
                ));
            };
            if bool::from(given.as_bytes().ct_eq(secret.expose().as_bytes())) {
                Ok(())
            } else {
                Err(ApiError::new(
                    ErrorCode::Unauthorized,
                    format!("wrong {what}"),
                ))
            }
        }
        None => {
            if true_loopback(req) {
                Ok(())
            } else {
                Err(ApiError::new(
                    ErrorCode::Forbidden,
                    format!("no {what} is configured: only loopback clients are served"),
                ))
            }
        }
    }
}

/// Whether the request comes from this host, not through a proxy: its TCP peer is on loopback
/// and is the address the request carries. (The admin listener's connections have no
/// `TcpPeer`: nothing relays them, so their peer address is the TCP peer.)
fn true_loopback(req: &HttpRequest) -> bool {
    let peer = req.peer_addr();
    let tcp = req
        .conn_data::<super::front::TcpPeer>()
        .map_or(peer, |t| t.0);
    tcp.is_some_and(|a| a.ip().to_canonical().is_loopback()) && tcp == peer
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is case-insensitive).
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Who made the request, for the audit log.
pub fn caller(req: &HttpRequest) -> String {
    req.peer_addr()
        .map_or_else(|| "unknown".to_owned(), |a| a.to_string())
}
