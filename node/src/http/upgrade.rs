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
//! Refusals are written as the same JSON errors the rest of the API uses, then the socket
//! closes. Holds nothing once the connection task is spawned.

use super::error::ApiError;
use crate::context::NodeCtx;
use actix_codec::Framed;
use actix_http::body::{self, BodySize, MessageBody};
use actix_http::h1;
use actix_http::{ConnectionType, Request, Response};
use actix_web::http::header;
use actix_web::rt::net::TcpStream;
use actix_web::ResponseError;
use protocol::codes::ErrorCode;
use std::pin::Pin;
use std::sync::Arc;

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

async fn handle(ctx: Arc<NodeCtx>, req: Request, mut framed: Framed<TcpStream, h1::Codec>) {
    let head = req.head();
    let target = match head.uri.path() {
        "/ws" => super::ws::admit(&ctx, head).await.map(Target::Client),
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
    let target = match target {
        Ok(t) => t,
        Err(e) => return refuse(framed, e.error_response().into()).await,
    };
    let mut res = match actix_http::ws::handshake(head) {
        Ok(res) => res,
        Err(e) => {
            let e = ApiError::bad_request(format!("not a WebSocket handshake: {e}"));
            let e = super::ws::refuse(&ctx, "handshake", e);
            return refuse(framed, e.error_response().into()).await;
        }
    };
    if matches!(target, Target::Client(_)) && super::ws::offers_subprotocol(head) {
        res.insert_header((header::SEC_WEBSOCKET_PROTOCOL, super::ws::SUBPROTOCOL));
    }
    let res = res.finish().drop_body();
    match target {
        Target::Client(acc) => {
            // The `101` is not written here: it goes out in one `write` with the `welcome`.
            if Pin::new(&mut framed)
                .write(h1::Message::Item((res, BodySize::None)))
                .is_err()
            {
                return;
            }
            let parts = framed.into_parts();
            // Bytes the client sent right after the handshake (its first frames) stay with it;
            // the dispatcher's buffers are dropped here.
            crate::connection::spawn(ctx, parts.io, &parts.read_buf, &parts.write_buf, acc);
        }
        Target::Echo => {
            if write_head(&mut framed, res, BodySize::None).await.is_err() {
                return;
            }
            let parts = framed.into_parts();
            let max = ctx.config.limits.max_message_bytes;
            let leftover = parts.read_buf.to_vec();
            actix_web::rt::spawn(super::conformance::echo_on(parts.io, leftover, max));
        }
    }
}

async fn write_head(
    framed: &mut Framed<TcpStream, h1::Codec>,
    res: Response<()>,
    size: BodySize,
) -> std::io::Result<()> {
    Pin::new(&mut *framed).write(h1::Message::Item((res, size)))?;
    std::future::poll_fn(|cx| Pin::new(&mut *framed).flush(cx)).await
}

/// Writes a refusal (status, JSON body) and closes the connection.
async fn refuse(mut framed: Framed<TcpStream, h1::Codec>, res: Response<body::BoxBody>) {
    let (mut res, body) = res.into_parts();
    res.head_mut().set_connection_type(ConnectionType::Close);
    let size = body.size();
    let Ok(bytes) = body::to_bytes(body).await else {
        return;
    };
    if write_head(&mut framed, res, size).await.is_err() {
        return;
    }
    let _ = Pin::new(&mut framed).write(h1::Message::Chunk(Some(bytes)));
    let _ = Pin::new(&mut framed).write(h1::Message::Chunk(None));
    let _ = std::future::poll_fn(|cx| Pin::new(&mut framed).flush(cx)).await;
    let io = framed.into_parts().io;
    crate::websocket::linger_close(io, std::time::Duration::from_secs(1)).await;
}
