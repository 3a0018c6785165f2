//! Error codes carried in `error` frames, `reply` frames and HTTP error bodies, and the
//! WebSocket close codes of client protocol v1 (`docs/protocol.md` §9).

use serde::{Deserialize, Serialize};

/// Machine-readable error code; the contract's names, never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not a JSON object.
    BadFrame,
    /// The `op` is not one this protocol version knows.
    UnknownOp,
    /// A field is missing or has the wrong type or value.
    BadRequest,
    /// Authentication failed or is missing.
    Unauthorized,
    /// Authenticated, but not allowed to do this.
    Forbidden,
    /// The operation needs membership of a room the connection has not joined.
    NotJoined,
    /// The room name breaks the naming rules.
    RoomInvalid,
    /// The connection has joined as many rooms as it may.
    TooManyRooms,
    /// The message or payload is larger than allowed.
    PayloadTooLarge,
    /// Over the rate limit; `retry_after_ms` says when to try again.
    RateLimited,
    /// The service cannot answer now (room moving, node draining, timeout); retry later.
    Unavailable,
    /// A bug or an unexpected failure on the server.
    Internal,
    /// The resource does not exist (backend and admin APIs).
    NotFound,
}

impl ErrorCode {
    /// Returns the wire name of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadFrame => "bad_frame",
            Self::UnknownOp => "unknown_op",
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotJoined => "not_joined",
            Self::RoomInvalid => "room_invalid",
            Self::TooManyRooms => "too_many_rooms",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::NotFound => "not_found",
        }
    }

    /// Returns the HTTP status that carries this code on the backend and admin APIs.
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadFrame | Self::UnknownOp | Self::BadRequest | Self::RoomInvalid => 400,
            Self::Unauthorized => 401,
            Self::Forbidden | Self::NotJoined => 403,
            Self::NotFound => 404,
            Self::TooManyRooms => 409,
            Self::PayloadTooLarge => 413,
            Self::RateLimited => 429,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// WebSocket close codes of protocol v1.
pub mod close {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// Server shutting down (not draining): reconnect with backoff.
    pub const GOING_AWAY: u16 = 1001;
    /// Policy violation: sustained rate abuse, forbidden.
    pub const POLICY: u16 = 1008;
    /// Message too big.
    pub const TOO_BIG: u16 = 1009;
    /// Internal error.
    pub const INTERNAL: u16 = 1011;
    /// Service restart: node drained, reconnect elsewhere and resume with `since`.
    pub const SERVICE_RESTART: u16 = 1012;
    /// Token expired or invalid mid-session.
    pub const TOKEN_EXPIRED: u16 = 4001;
    /// Kicked by an operator or the backend.
    pub const KICKED: u16 = 4003;
    /// Slow consumer: outbound queue overflow.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// Heartbeat timeout: two pongs missed.
    pub const HEARTBEAT_TIMEOUT: u16 = 4009;
}
