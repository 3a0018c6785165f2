//! The HTTP error type of the backend and admin APIs: `{"error":{"code":…,"message":…}}`
//! (`protocol::admin::ErrorBody`) with the status that belongs to the code.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use protocol::admin::{ErrorBody, ErrorDetail};
use protocol::codes::ErrorCode;

/// An API error.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// Code.
    pub code: ErrorCode,
    /// Reason.
    pub message: String,
    /// Overrides the code's default status (e.g. 429 for connection caps).
    pub status: Option<u16>,
}

impl ApiError {
    /// An error with the code's default status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            status: None,
        }
    }

    /// An error with an explicit status.
    pub fn with_status(status: u16, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            status: Some(status),
        }
    }

    /// `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// `unavailable` for a timed-out or missing actor.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }
}

impl From<crate::directory::LookupError> for ApiError {
    /// A room that could not be looked up (its home or owner did not answer): 503.
    fn from(e: crate::directory::LookupError) -> Self {
        Self::unavailable(e.to_string())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status.unwrap_or_else(|| self.code.http_status()))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(protocol::admin::to_value(&ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message.clone(),
            },
        }))
    }
}

/// Parses a room name from a path segment, answering `room_invalid` (400) when it breaks the rules.
pub fn room_name(path: &str) -> Result<protocol::room::RoomName, ApiError> {
    protocol::room::RoomName::parse(path)
        .map_err(|e| ApiError::new(ErrorCode::RoomInvalid, e.to_string()))
}

/// Fallback for unknown paths.
pub async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {} {}", req.method(), req.path()),
    )
    .error_response()
}
