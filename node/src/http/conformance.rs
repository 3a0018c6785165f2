//! `GET /conformance/echo`: a WebSocket echo on the same stack as `/ws` (actix-ws, the same
//! frame and message limits, continuation aggregation, close-code mapping), so the Autobahn
//! fuzzing client can check the node's WebSocket implementation. Served only when
//! `node.conformance_echo = true`; otherwise 404.

use super::error::ApiError;
use crate::context::NodeCtx;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason};
use protocol::codes::ErrorCode;

/// Echoes text and binary messages back; answers pings; mirrors close frames.
pub async fn echo(
    req: HttpRequest,
    body: web::Payload,
    ctx: web::Data<NodeCtx>,
) -> Result<HttpResponse, ApiError> {
    if !ctx.config.node.conformance_echo {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "the conformance echo is disabled (node.conformance_echo)",
        ));
    }
    let (resp, mut session, stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::bad_request(format!("not a WebSocket handshake: {e}")))?;
    let max = ctx.config.limits.max_message_bytes;
    let mut stream = stream
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max);
    actix_web::rt::spawn(async move {
        let close = loop {
            let Some(msg) = stream.recv().await else {
                break None;
            };
            let sent = match msg {
                Ok(AggregatedMessage::Text(t)) => session.text(t).await,
                Ok(AggregatedMessage::Binary(b)) => session.binary(b).await,
                Ok(AggregatedMessage::Ping(p)) => session.pong(&p).await,
                Ok(AggregatedMessage::Pong(_)) => Ok(()),
                Ok(AggregatedMessage::Close(r)) => {
                    break r.or(Some(CloseReason {
                        code: CloseCode::Normal,
                        description: None,
                    }))
                }
                Err(e) => match crate::connection::protocol_close_code(&e) {
                    Some(code) => {
                        break Some(CloseReason {
                            code: CloseCode::from(code),
                            description: None,
                        })
                    }
                    None => break None,
                },
            };
            if sent.is_err() {
                break None;
            }
        };
        if let Some(r) = close {
            let _ = session.close(Some(r)).await;
        }
    });
    Ok(resp)
}
