//! Frames a client sends (client protocol v1), and the one decoder that turns raw text into a
//! typed [`Request`].
//!
//! The decoder never panics and never drops a frame silently: every input ends as a request or
//! as a [`DecodeError`] that says whether to answer with an `error` frame (no usable `id`) or a
//! failed `reply` (the frame carried an `id`). Unknown fields are ignored so newer clients can
//! talk to older nodes; unknown ops are answered `unknown_op`.

use crate::codes::ErrorCode;
use crate::room::RoomName;
use serde::Deserialize;
use serde_json::value::RawValue;

/// The request id chosen by the client, kept as its raw JSON text (a number or a string) so the
/// reply echoes it byte for byte.
#[derive(Debug, Clone)]
pub struct RequestId(Box<RawValue>);

impl RequestId {
    /// Returns the raw JSON of the id.
    pub fn raw(&self) -> &RawValue {
        &self.0
    }
}

/// A recovery position: the last `seq` the client saw under `epoch`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Since {
    /// Last sequence number received.
    pub seq: u64,
    /// Epoch that sequence number belongs to.
    pub epoch: String,
}

/// Most members one `presence` reply lists; a larger `limit` is served as this one.
pub const PRESENCE_MAX_LIMIT: u32 = 10_000;

/// Members one `presence` reply lists when the request has no `limit`: as many as the largest
/// `limit`, so a client written before presence was paged gets the whole list of any room whose
/// list fits one reply.
pub const PRESENCE_DEFAULT_LIMIT: u32 = PRESENCE_MAX_LIMIT;

/// Most bytes of the `members` array (its JSON text, brackets and commas included) in one
/// `presence` reply; a reply always lists at least one member when more remain.
pub const PRESENCE_REPLY_BYTES: usize = 1 << 20;

/// Longest `after` cursor accepted, in bytes.
pub const PRESENCE_CURSOR_MAX: usize = 64;

/// Whether `s` can be a `presence` cursor: 1–[`PRESENCE_CURSOR_MAX`] characters from
/// `A–Z a–z 0–9 _ -` (a cursor is opaque to clients; the node's are client ids).
pub fn is_presence_cursor(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= PRESENCE_CURSOR_MAX
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A decoded client request.
/// Whether a member receives the room's presence events, and how (`join`'s `presence` and
/// `presence_batch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Presence {
    /// No presence events.
    #[default]
    Off,
    /// Each event as its own `presence_join` / `presence_leave` frame (`presence: true`).
    Each,
    /// The events of each tick as one `presence_batch` frame (`presence_batch: true`).
    Batched,
}

#[derive(Debug, Clone)]
pub enum Request {
    /// Join a room, optionally recovering (`since`) or replaying (`last`), optionally asking
    /// for presence events.
    Join {
        /// Room to join.
        room: RoomName,
        /// Recovery position.
        since: Option<Since>,
        /// Replay this many of the most recent messages (ignored when `since` is set).
        last: Option<u32>,
        /// Whether and how to receive `presence_join` / `presence_leave` events.
        presence: Presence,
    },
    /// Leave a room.
    Leave {
        /// Room to leave.
        room: RoomName,
    },
    /// Publish `data` to a joined room.
    Publish {
        /// Target room.
        room: RoomName,
        /// Opaque JSON payload.
        data: Box<RawValue>,
    },
    /// List one page of the room's members, in client id order.
    Presence {
        /// Room asked about.
        room: RoomName,
        /// Start after this cursor (the `next` of an earlier reply); `None` is the first page.
        after: Option<String>,
        /// At most this many members (at least 1; the node lists at most
        /// [`PRESENCE_MAX_LIMIT`], [`PRESENCE_DEFAULT_LIMIT`] when `None`).
        limit: Option<u32>,
    },
    /// Read the room's history.
    History {
        /// Room asked about.
        room: RoomName,
        /// Only messages after this position.
        since: Option<Since>,
        /// At most this many messages.
        limit: Option<u32>,
    },
    /// Application-level ping, answered with `pong`.
    Ping,
}

impl Request {
    /// Returns the op name, for logs and metrics.
    pub fn op(&self) -> &'static str {
        match self {
            Self::Join { .. } => "join",
            Self::Leave { .. } => "leave",
            Self::Publish { .. } => "publish",
            Self::Presence { .. } => "presence",
            Self::History { .. } => "history",
            Self::Ping => "ping",
        }
    }
}

/// A frame that decoded: its optional id and the request.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The client's id, echoed in the reply; `None` means "answer nothing on success".
    pub id: Option<RequestId>,
    /// The request.
    pub request: Request,
}

/// Why a frame did not decode, and how to answer it.
#[derive(Debug, Clone)]
pub struct DecodeError {
    /// The frame's id when one could be read: answer with a failed `reply`; otherwise with an
    /// `error` frame.
    pub id: Option<RequestId>,
    /// The error code to send.
    pub code: ErrorCode,
    /// A human-readable reason.
    pub message: String,
}

impl DecodeError {
    fn new(id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            id,
            code,
            message: message.into(),
        }
    }
}

/// The flat shape every client frame is first read into; fields are checked per op after.
#[derive(Deserialize)]
struct RawFrame<'a> {
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    op: Option<&'a RawValue>,
    #[serde(default, borrow)]
    room: Option<&'a RawValue>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
    #[serde(default, borrow)]
    since: Option<&'a RawValue>,
    #[serde(default, borrow)]
    last: Option<&'a RawValue>,
    #[serde(default, borrow)]
    presence: Option<&'a RawValue>,
    #[serde(default, borrow)]
    presence_batch: Option<&'a RawValue>,
    #[serde(default, borrow)]
    limit: Option<&'a RawValue>,
    #[serde(default, borrow)]
    after: Option<&'a RawValue>,
}

/// Decodes one text frame.
pub fn decode(text: &str) -> Result<Decoded, DecodeError> {
    let trimmed = text.trim_start();
    if !trimmed.starts_with('{') {
        return Err(DecodeError::new(
            None,
            ErrorCode::BadFrame,
            "expected a JSON object",
        ));
    }
    let raw: RawFrame<'_> = serde_json::from_str(text).map_err(|e| {
        DecodeError::new(
            None,
            ErrorCode::BadFrame,
            format!("expected a JSON object: {e}"),
        )
    })?;
    // JSON's grammar allows `\ud800` alone, but it is no character: such a payload would reach
    // every member and break strict decoders (serde_json, Go), so it is refused here.
    if text.contains("\\u") && has_unpaired_surrogate(text) {
        return Err(DecodeError::new(
            None,
            ErrorCode::BadFrame,
            "invalid JSON text: an unpaired UTF-16 surrogate escape (\\uD800-\\uDFFF)",
        ));
    }
    let id = match raw.id {
        None => None,
        Some(v) => {
            let s = v.get();
            let ok = s.starts_with('"') || s.starts_with('-') || s.as_bytes()[0].is_ascii_digit();
            if !ok {
                return Err(DecodeError::new(
                    None,
                    ErrorCode::BadRequest,
                    "`id` must be a number or a string",
                ));
            }
            Some(RequestId(v.to_owned()))
        }
    };
    let fail = |code, msg: String| DecodeError::new(id.clone(), code, msg);
    let op: &str = match raw.op {
        None => return Err(fail(ErrorCode::BadRequest, "missing `op`".into())),
        Some(v) => serde_json::from_str::<&str>(v.get())
            .map_err(|_| fail(ErrorCode::BadRequest, "`op` must be a string".into()))?,
    };
    let room = || -> Result<RoomName, DecodeError> {
        let v = raw
            .room
            .ok_or_else(|| fail(ErrorCode::BadRequest, format!("`{op}` needs `room`")))?;
        let s: String = serde_json::from_str(v.get())
            .map_err(|_| fail(ErrorCode::BadRequest, "`room` must be a string".into()))?;
        RoomName::parse(&s).map_err(|e| fail(ErrorCode::RoomInvalid, e.to_string()))
    };
    let since = || -> Result<Option<Since>, DecodeError> {
        match raw.since {
            None => Ok(None),
            Some(v) if v.get() == "null" => Ok(None),
            Some(v) => serde_json::from_str(v.get()).map(Some).map_err(|_| {
                fail(
                    ErrorCode::BadRequest,
                    "`since` must be {\"seq\":<integer>,\"epoch\":<string>}".into(),
                )
            }),
        }
    };
    let uint = |v: Option<&RawValue>, name: &str| -> Result<Option<u32>, DecodeError> {
        match v {
            None => Ok(None),
            Some(v) if v.get() == "null" => Ok(None),
            Some(v) => serde_json::from_str::<u32>(v.get()).map(Some).map_err(|_| {
                fail(
                    ErrorCode::BadRequest,
                    format!("`{name}` must be a non-negative integer"),
                )
            }),
        }
    };
    let request = match op {
        "join" => {
            let flag = |v: Option<&RawValue>, name: &str| match v {
                None => Ok(false),
                Some(v) => serde_json::from_str::<Option<bool>>(v.get())
                    .map(|b| b.unwrap_or(false))
                    .map_err(|_| {
                        fail(ErrorCode::BadRequest, format!("`{name}` must be a boolean"))
                    }),
            };
            let presence = match (
                flag(raw.presence, "presence")?,
                flag(raw.presence_batch, "presence_batch")?,
            ) {
                (_, true) => Presence::Batched,
                (true, false) => Presence::Each,
                (false, false) => Presence::Off,
            };
            Request::Join {
                room: room()?,
                since: since()?,
                last: uint(raw.last, "last")?,
                presence,
            }
        }
        "leave" => Request::Leave { room: room()? },
        "publish" => {
            let data = raw
                .data
                .ok_or_else(|| fail(ErrorCode::BadRequest, "`publish` needs `data`".into()))?;
            Request::Publish {
                room: room()?,
                data: data.to_owned(),
            }
        }
        "presence" => {
            let room = room()?;
            let after = match raw.after {
                None => None,
                Some(v) if v.get() == "null" => None,
                Some(v) => match serde_json::from_str::<String>(v.get()) {
                    Ok(s) if is_presence_cursor(&s) => Some(s),
                    _ => {
                        return Err(fail(
                            ErrorCode::BadRequest,
                            "`after` must be the `next` cursor of an earlier presence reply".into(),
                        ))
                    }
                },
            };
            let limit = match raw.limit {
                None => None,
                Some(v) if v.get() == "null" => None,
                Some(v) => match serde_json::from_str::<u32>(v.get()) {
                    Ok(n) if n > 0 => Some(n),
                    _ => {
                        return Err(fail(
                            ErrorCode::BadRequest,
                            format!(
                                "`limit` must be an integer from 1 to 4294967295 \
                                 (a reply lists at most {PRESENCE_MAX_LIMIT} members)"
                            ),
                        ))
                    }
                },
            };
            Request::Presence { room, after, limit }
        }
        "history" => Request::History {
            room: room()?,
            since: since()?,
            limit: uint(raw.limit, "limit")?,
        },
        "ping" => Request::Ping,
        other => {
            let shown: String = other.chars().take(64).collect();
            return Err(fail(ErrorCode::UnknownOp, format!("unknown op `{shown}`")));
        }
    };
    Ok(Decoded { id, request })
}

/// Whether JSON text (already known to parse) holds a `\\u` escape of a UTF-16 surrogate that
/// is not a high surrogate immediately followed by an escaped low one.
fn has_unpaired_surrogate(text: &str) -> bool {
    let b = text.as_bytes();
    let hex = |at: usize| -> Option<u32> {
        let s = text.get(at..at + 4)?;
        u32::from_str_radix(s, 16).ok()
    };
    let mut in_string = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => in_string = !in_string,
            b'\\' if in_string => {
                if b.get(i + 1) == Some(&b'u') {
                    let Some(c) = hex(i + 2) else { return true };
                    if (0xDC00..=0xDFFF).contains(&c) {
                        return true;
                    }
                    if (0xD800..=0xDBFF).contains(&c) {
                        let low = (b.get(i + 6) == Some(&b'\\') && b.get(i + 7) == Some(&b'u'))
                            .then(|| hex(i + 8))
                            .flatten();
                        if !low.is_some_and(|l| (0xDC00..=0xDFFF).contains(&l)) {
                            return true;
                        }
                        i += 12;
                        continue;
                    }
                    i += 6;
                    continue;
                }
                i += 2;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpaired_surrogate_escapes_are_bad_frames_and_pairs_pass() {
        let pub_ = |data: &str| format!(r#"{{"op":"publish","room":"r","data":{data}}}"#);
        for bad in [
            r#""\ud800""#,
            r#""\udc00x""#,
            r#""\ud800\u0041""#,
            r#"{"k":"\uDBFF"}"#,
        ] {
            let e = decode(&pub_(bad)).unwrap_err();
            assert_eq!(e.code, ErrorCode::BadFrame, "{bad}");
        }
        for good in [
            r#""\ud83d\ude00""#,
            r#""\\ud800""#,
            r#""\u00e9\n""#,
            r#"["\\","\ud800\udc00"]"#,
        ] {
            assert!(decode(&pub_(good)).is_ok(), "{good}");
        }
    }

    fn err(text: &str) -> DecodeError {
        decode(text).expect_err("should not decode")
    }

    #[test]
    fn decodes_every_op() {
        let d = decode(r#"{"id":1,"op":"join","room":"chat:lobby","since":{"seq":41,"epoch":"e9f1"},"presence":true}"#).unwrap();
        assert_eq!(d.id.unwrap().raw().get(), "1");
        match d.request {
            Request::Join {
                room,
                since,
                presence,
                last,
            } => {
                assert_eq!(room.as_str(), "chat:lobby");
                assert_eq!(since.unwrap().seq, 41);
                assert_eq!(presence, Presence::Each);
                assert!(last.is_none());
            }
            other => panic!("{other:?}"),
        }
        // `presence_batch` asks for batched events (with or without `presence`); a wrong type
        // is a bad request naming the field.
        for (text, want) in [
            (
                r#"{"op":"join","room":"r","presence_batch":true}"#,
                Presence::Batched,
            ),
            (
                r#"{"op":"join","room":"r","presence":true,"presence_batch":true}"#,
                Presence::Batched,
            ),
            (
                r#"{"op":"join","room":"r","presence":true,"presence_batch":false}"#,
                Presence::Each,
            ),
            (r#"{"op":"join","room":"r"}"#, Presence::Off),
        ] {
            match decode(text).unwrap().request {
                Request::Join { presence, .. } => assert_eq!(presence, want, "{text}"),
                other => panic!("{other:?}"),
            }
        }
        let e = err(r#"{"id":2,"op":"join","room":"r","presence_batch":1}"#);
        assert!(format!("{e:?}").contains("presence_batch"), "{e:?}");
        let d = decode(r#"{"id":"a","op":"publish","room":"r","data":{"text":"hi"}}"#).unwrap();
        assert_eq!(d.id.unwrap().raw().get(), "\"a\"");
        match d.request {
            Request::Publish { data, .. } => assert_eq!(data.get(), r#"{"text":"hi"}"#),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decode(r#"{"op":"ping"}"#).unwrap().request,
            Request::Ping
        ));
        assert!(matches!(
            decode(r#"{"op":"history","room":"r","limit":5}"#)
                .unwrap()
                .request,
            Request::History { limit: Some(5), .. }
        ));
        assert!(matches!(
            decode(r#"{"op":"join","room":"r","last":20}"#)
                .unwrap()
                .request,
            Request::Join { last: Some(20), .. }
        ));
    }

    #[test]
    fn presence_takes_an_optional_cursor_and_limit() {
        match decode(r#"{"id":1,"op":"presence","room":"r"}"#)
            .unwrap()
            .request
        {
            Request::Presence { room, after, limit } => {
                assert_eq!(room.as_str(), "r");
                assert!(after.is_none() && limit.is_none());
            }
            other => panic!("{other:?}"),
        }
        match decode(r#"{"op":"presence","room":"r","after":"c_7HqK2mX9pL4vR1sT","limit":10000}"#)
            .unwrap()
            .request
        {
            Request::Presence { after, limit, .. } => {
                assert_eq!(after.as_deref(), Some("c_7HqK2mX9pL4vR1sT"));
                assert_eq!(limit, Some(10_000));
            }
            other => panic!("{other:?}"),
        }
        // `null` is absent; a limit above the largest is taken (the node serves the largest).
        assert!(matches!(
            decode(r#"{"op":"presence","room":"r","after":null,"limit":null}"#)
                .unwrap()
                .request,
            Request::Presence {
                after: None,
                limit: None,
                ..
            }
        ));
        assert!(matches!(
            decode(r#"{"op":"presence","room":"r","limit":4294967295}"#)
                .unwrap()
                .request,
            Request::Presence {
                limit: Some(u32::MAX),
                ..
            }
        ));
    }

    #[test]
    fn bad_presence_cursors_and_limits_are_bad_requests_naming_the_field() {
        for (field, value) in [
            ("limit", "0"),
            ("limit", "-1"),
            ("limit", "1.5"),
            ("limit", "\"10\""),
            ("limit", "4294967296"),
            ("limit", "true"),
            ("after", "5"),
            ("after", "\"\""),
            ("after", "\"c_1 2\""),
            ("after", r#""c_\u00e9""#),
            ("after", "{\"x\":1}"),
            ("after", "[\"c_1\"]"),
        ] {
            let text = format!(r#"{{"id":3,"op":"presence","room":"r","{field}":{value}}}"#);
            let e = err(&text);
            assert_eq!(e.code, ErrorCode::BadRequest, "{text}");
            assert_eq!(e.id.unwrap().raw().get(), "3");
            assert!(
                e.message.contains(&format!("`{field}`")),
                "{text}: {}",
                e.message
            );
        }
        let long = format!(
            r#"{{"op":"presence","room":"r","after":"{}"}}"#,
            "a".repeat(65)
        );
        let e = err(&long);
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.id.is_none());
        let longest = format!(
            r#"{{"op":"presence","room":"r","after":"{}"}}"#,
            "a".repeat(64)
        );
        assert!(decode(&longest).is_ok());
        // The room is checked first, as for every op.
        let e = err(r#"{"id":4,"op":"presence","limit":0}"#);
        assert!(e.message.contains("needs `room`"), "{}", e.message);
    }

    #[test]
    fn non_objects_are_bad_frames_without_id() {
        for text in [
            "",
            "[]",
            "42",
            "\"x\"",
            "{",
            "{\"op\":",
            "nul",
            "{\"id\":1,}",
        ] {
            let e = err(text);
            assert_eq!(e.code, ErrorCode::BadFrame, "{text}");
            assert!(e.id.is_none());
        }
    }

    #[test]
    fn unknown_ops_and_bad_fields_keep_the_id() {
        let e = err(r#"{"id":7,"op":"fly"}"#);
        assert_eq!(e.code, ErrorCode::UnknownOp);
        assert_eq!(e.id.unwrap().raw().get(), "7");
        let e = err(r#"{"id":8,"op":"join"}"#);
        assert_eq!(e.code, ErrorCode::BadRequest);
        let e = err(r#"{"id":9,"op":"join","room":"a b"}"#);
        assert_eq!(e.code, ErrorCode::RoomInvalid);
        let e = err(r#"{"id":9,"op":"join","room":"ok","last":-1}"#);
        assert_eq!(e.code, ErrorCode::BadRequest);
        let e = err(r#"{"id":9,"op":"publish","room":"ok"}"#);
        assert_eq!(e.code, ErrorCode::BadRequest);
        let e = err(r#"{"id":{"x":1},"op":"ping"}"#);
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.id.is_none());
    }
}
