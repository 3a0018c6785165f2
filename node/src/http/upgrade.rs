//! Upgrade requests on the public listener, taken over from actix-http. actix-http hands every
//! request that asks for a protocol upgrade to this service together with the connection's I/O
//! (`HttpService::upgrade`), instead of running it through the HTTP/1 dispatcher; so an
//! upgraded WebSocket does not keep the dispatcher's per-connection buffers (8 KiB read and
//! 8 KiB write) or its task. Here:
//!
//! - `/ws`: admission ([`super::ws::admit`]: 503, 403, 401, 429), then the handshake (400 when
//!   it is not a valid WebSocket handshake), the `101` response, and the connection task on the
//!   raw socket ([`crate::connection`]).
//! - `/conformance/echo`: the Autobahn echo ([`super::conformance`]), when enabled.
//! - Anything else: 404 (only WebSocket upgrades are served).
//!
//! The `101` and refusals (the same JSON errors the rest of the API uses, then the socket
//! closes) are encoded as [`super::front`] encodes them. Holds nothing once the connection task
//! is spawned.

use super::error::ApiError;
use crate::context::NodeCtx;
use actix_codec::Framed;
use actix_http::h1;
use actix_http::Request;
use actix_web::rt::net::TcpStream;
use protocol::codes::ErrorCode;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// What actix-http hands over: the request and the connection with its buffers.
pub type Upgraded = (Request, Framed<TcpStream, h1::Codec>);

/// The upgrade service factory for the public listener's `HttpService`.
pub fn service(
    ctx: Arc<NodeCtx>,
) -> impl actix_service::ServiceFactory<
    Upgraded,
    Config = (),
    Response = (),
    Error = actix_web::Error,
    InitError = (),
> + Clone {
    actix_service::fn_service(move |(req, framed): Upgraded| {
        let ctx = ctx.clone();
        async move {
            handle(ctx, req, framed).await;
            Ok::<(), actix_web::Error>(())
        }
    })
}

enum Target {
    Client(crate::connection::Accepted),
    Echo,
}

async fn handle(ctx: Arc<NodeCtx>, req: Request, framed: Framed<TcpStream, h1::Codec>) {
    let head = req.head();
    let target = match head.uri.path() {
        "/ws" => super::ws::admit(&ctx, head).map(Target::Client),
        "/conformance/echo" if ctx.config.node.conformance_echo => Ok(Target::Echo),
        "/conformance/echo" => Err(ApiError::new(
            ErrorCode::NotFound,
            "the conformance echo is disabled (node.conformance_echo)",
        )),
        path => Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no WebSocket endpoint at `{path}` (clients connect to /ws)"),
        )),
    };
    let target = target.and_then(|t| match actix_http::ws::verify_handshake(head) {
        Ok(()) => Ok(t),
        Err(e) => {
            let e = ApiError::bad_request(format!("not a WebSocket handshake: {e}"));
            Err(super::ws::refuse(&ctx, "handshake", e))
        }
    });
    // The dispatcher's buffers are dropped here; bytes the client sent right after the
    // handshake (its first frames) stay with it.
    let parts = framed.into_parts();
    match target {
        Err(e) => super::front::refuse(parts.io, e).await,
        Ok(Target::Client(acc)) => {
            // The `101` is not written here: it goes out in one `write` with the `welcome`.
            let res = super::front::switching_protocols(head, true);
            crate::connection::spawn(ctx.conn.clone(), parts.io, &parts.read_buf, &res, acc);
        }
        Ok(Target::Echo) => {
            let mut io = parts.io;
            let res = super::front::switching_protocols(head, false);
            if io.write_all(&res).await.is_err() {
                return;
            }
            let max = ctx.config.limits.max_message_bytes;
            let leftover = parts.read_buf.to_vec();
            actix_web::rt::spawn(super::conformance::echo_on(io, leftover, max));
        }
    }
}
