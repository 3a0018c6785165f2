//! `GET /conformance/echo`: a WebSocket echo on the same stack as `/ws` (the node's own socket
//! handling in [`crate::websocket`]: the same frame and message limits, continuation joining,
//! UTF-8 checks and close-code mapping), so the Autobahn fuzzing client can check the node's
//! WebSocket implementation. Served only when `node.conformance_echo = true`; otherwise 404.
//! The upgrade itself arrives through [`super::upgrade`].

use super::error::ApiError;
use crate::context::NodeCtx;
use crate::websocket::{linger_close, Reader, Writer, WsMessage};
use actix_web::{web, HttpResponse};
use protocol::codes::ErrorCode;
use std::time::Duration;
use tokio::net::TcpStream;

/// A plain `GET` (no upgrade): 404 when disabled, else 400.
pub async fn echo(ctx: web::Data<NodeCtx>) -> Result<HttpResponse, ApiError> {
    if !ctx.config.node.conformance_echo {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "the conformance echo is disabled (node.conformance_echo)",
        ));
    }
    Err(ApiError::bad_request(
        "not a WebSocket handshake: expected `Connection: Upgrade` and `Upgrade: websocket`",
    ))
}

/// Echoes text and binary messages back; answers pings; mirrors close frames; closes with the
/// protocol error's code on bad input.
pub async fn echo_on(io: TcpStream, leftover: Vec<u8>, max: usize) {
    let mut reader = Reader::new(&leftover, max);
    drop(leftover);
    let mut writer = Writer::default();
    let close = loop {
        let msg = match reader.recv(&io).await {
            Ok(m) => m,
            Err(e) => break e.close_code(),
        };
        match msg {
            WsMessage::Text(t) => writer.text(t.as_bytes()),
            WsMessage::Binary(b) => writer.binary(&b),
            WsMessage::Ping(p) => writer.pong(&p),
            WsMessage::Pong => {}
            WsMessage::Close(r) => break Some(r.map_or(1000, |r| u16::from(r.code))),
        }
        if writer.flush(&io).await.is_err() {
            return;
        }
    };
    if let Some(code) = close {
        writer.close(code, "");
        let _ = tokio::time::timeout(Duration::from_secs(5), writer.flush(&io)).await;
        linger_close(&io, Duration::from_secs(2)).await;
    }
}
