//! Request-body helpers: read a body under a size limit and parse JSON, answering every
//! failure as a JSON [`ApiError`] (actix's own extractors answer in plain text).

use super::error::ApiError;
use actix_web::web;
use futures_util::StreamExt;
use protocol::codes::ErrorCode;
use serde::de::DeserializeOwned;

/// Reads the whole body, refusing more than `limit` bytes with 413.
pub async fn read(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("cannot read body: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("body larger than {limit} bytes"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Reads and parses a JSON body.
pub async fn json<T: DeserializeOwned>(payload: web::Payload, limit: usize) -> Result<T, ApiError> {
    let bytes = read(payload, limit).await?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request("a JSON body is required"));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}
