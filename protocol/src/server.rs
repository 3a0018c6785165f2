//! Frames the node sends to a client (client protocol v1), encoded once into JSON text.
//!
//! Encoding lives here so every frame of one kind has one shape. Payloads (`data`) are carried
//! as raw JSON and never re-parsed. A `message` frame is encoded once per publish and the same
//! bytes are shared by every subscriber.

use crate::codes::ErrorCode;
use serde::Serialize;
use serde_json::value::RawValue;

/// Who published a message: a client (identity set by the gateway from its token, never from
/// the client) or the backend API.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum From<'a> {
    /// A connected client.
    Client {
        /// Client id.
        client: &'a str,
        /// User id (the JWT `sub`).
        user: &'a str,
    },
    /// The backend, through `POST /api/v1/rooms/{room}/publish`.
    Backend {
        /// Always `true`.
        backend: bool,
    },
}

/// Limits announced in `welcome`.
#[derive(Debug, Clone, Serialize)]
pub struct WelcomeLimits {
    /// Largest inbound message, bytes.
    pub max_message_bytes: usize,
    /// Most rooms one connection may join.
    pub max_rooms: usize,
    /// Inbound messages per second.
    pub msgs_per_sec: u32,
    /// Inbound burst.
    pub burst: u32,
    /// Inbound bytes per second (the byte bucket holds as much).
    pub bytes_per_sec: u64,
    /// Rooms this connection may create per second.
    pub room_creates_per_sec: u32,
    /// Room-creation burst.
    pub room_creates_burst: u32,
}

/// The `error` body of a failed reply.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody<'a> {
    /// Error code.
    pub code: ErrorCode,
    /// Human-readable reason.
    pub message: &'a str,
    /// When to retry, for `rate_limited` and `unavailable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// Every frame the server sends.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    /// First frame on every connection.
    Welcome {
        /// Protocol version.
        protocol: u32,
        /// Client id.
        client: &'a str,
        /// User id.
        user: &'a str,
        /// Node name.
        node: &'a str,
        /// Opaque resume token.
        session: &'a str,
        /// Server ping interval.
        heartbeat_ms: u64,
        /// Limits in force.
        limits: WelcomeLimits,
    },
    /// Answer to a request that carried an id.
    Reply {
        /// The request's id, verbatim.
        id: &'a RawValue,
        /// Outcome.
        ok: bool,
        /// Result on success.
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<&'a RawValue>,
        /// Error on failure.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<ErrorBody<'a>>,
    },
    /// A room message.
    Message {
        /// Room.
        room: &'a str,
        /// Sequence number in the room.
        seq: u64,
        /// Room epoch.
        epoch: &'a str,
        /// Publisher.
        from: From<'a>,
        /// Payload.
        data: &'a RawValue,
    },
    /// A member joined (sent to members that asked for presence).
    PresenceJoin {
        /// Room.
        room: &'a str,
        /// Client id.
        client: &'a str,
        /// User id.
        user: &'a str,
    },
    /// A member left.
    PresenceLeave {
        /// Room.
        room: &'a str,
        /// Client id.
        client: &'a str,
        /// User id.
        user: &'a str,
    },
    /// A frame that could not be answered with a reply.
    Error {
        /// Error code.
        code: ErrorCode,
        /// Reason.
        message: &'a str,
        /// When to retry, for `rate_limited`.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// Answer to `{"op":"ping"}`.
    Pong,
    /// Sent right before the server closes the connection.
    Disconnect {
        /// The close code that follows.
        code: u16,
        /// Reason.
        reason: &'a str,
        /// Whether the client should reconnect.
        reconnect: bool,
    },
    /// The node is going away: reconnect after a jittered delay.
    Reconnect {
        /// Reason.
        reason: &'a str,
        /// Jitter window, milliseconds.
        after_ms: [u64; 2],
    },
    /// The room's state snapshot, right after a join reply.
    Snapshot {
        /// Room.
        room: &'a str,
        /// The room seq the snapshot is current as of.
        seq: u64,
        /// Room epoch.
        epoch: &'a str,
        /// Snapshot payload.
        data: &'a RawValue,
    },
    /// A message sent by the backend to one user's connections (`POST /api/v1/users/{user}/send`).
    Direct {
        /// Payload.
        data: &'a RawValue,
    },
    /// An operator made this connection join a room (`POST /admin/v1/clients/{client}/join`):
    /// what a join's reply says; the room's snapshot, if any, follows, then its live messages.
    Joined {
        /// Room.
        room: &'a str,
        /// The room's seq at the join: live messages start above it.
        seq: u64,
        /// Room epoch.
        epoch: &'a str,
        /// Distinct members, this client included.
        members: usize,
    },
    /// An operator made this connection leave a room (`POST /admin/v1/clients/{client}/leave`):
    /// no more messages of it follow.
    Left {
        /// Room.
        room: &'a str,
    },
}

impl ServerFrame<'_> {
    /// Encodes the frame as JSON text.
    pub fn encode(&self) -> String {
        // Serialization of these types cannot fail: every field is a string, number, bool or
        // already-valid raw JSON.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"op":"error","code":"internal","message":"encoding failed"}"#.to_owned()
        })
    }
}

/// Encodes a failed reply, or an `error` frame when there is no id to answer.
pub fn failure(
    id: Option<&RawValue>,
    code: ErrorCode,
    message: &str,
    retry_after_ms: Option<u64>,
) -> String {
    match id {
        Some(id) => ServerFrame::Reply {
            id,
            ok: false,
            result: None,
            error: Some(ErrorBody {
                code,
                message,
                retry_after_ms,
            }),
        }
        .encode(),
        None => ServerFrame::Error {
            code,
            message,
            retry_after_ms,
        }
        .encode(),
    }
}

/// Encodes a successful reply carrying `result` (raw JSON).
pub fn success(id: &RawValue, result: &RawValue) -> String {
    ServerFrame::Reply {
        id,
        ok: true,
        result: Some(result),
        error: None,
    }
    .encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn message_frame_matches_the_contract() {
        let data = raw(r#"{"text":"hi"}"#);
        let f = ServerFrame::Message {
            room: "chat:lobby",
            seq: 58,
            epoch: "e9f1",
            from: From::Client {
                client: "c_1",
                user: "u-42",
            },
            data: &data,
        };
        assert_eq!(
            f.encode(),
            r#"{"op":"message","room":"chat:lobby","seq":58,"epoch":"e9f1","from":{"client":"c_1","user":"u-42"},"data":{"text":"hi"}}"#
        );
    }

    #[test]
    fn failures_are_replies_with_an_id_and_errors_without() {
        let id = raw("4");
        assert_eq!(
            failure(Some(&id), ErrorCode::RateLimited, "slow down", Some(350)),
            r#"{"op":"reply","id":4,"ok":false,"error":{"code":"rate_limited","message":"slow down","retry_after_ms":350}}"#
        );
        assert_eq!(
            failure(None, ErrorCode::BadFrame, "expected a JSON object", None),
            r#"{"op":"error","code":"bad_frame","message":"expected a JSON object"}"#
        );
        assert_eq!(ServerFrame::Pong.encode(), r#"{"op":"pong"}"#);
    }

    #[test]
    fn operator_joins_and_leaves_are_told_to_the_connection() {
        let joined = ServerFrame::Joined {
            room: "chat:lobby",
            seq: 41,
            epoch: "3f9a1c07",
            members: 17,
        };
        assert_eq!(
            joined.encode(),
            r#"{"op":"joined","room":"chat:lobby","seq":41,"epoch":"3f9a1c07","members":17}"#
        );
        assert_eq!(
            ServerFrame::Left { room: "chat:lobby" }.encode(),
            r#"{"op":"left","room":"chat:lobby"}"#
        );
    }
}
