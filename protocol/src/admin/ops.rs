//! What an operator reads and does in a room beside its listing (`docs/admin-api.md`):
//! `POST /rooms/{room}/publish` (as the backend), `GET /rooms/{room}/history` (paged, newest
//! first), `GET /rooms/{room}/presence` (paged, by client id), and
//! `POST /clients/{client}/join` and `/leave` (a client's connections enter or leave a room).
//!
//! Owns these shapes, their bounds ([`HISTORY_CURSOR_SEPARATOR`]) and [`RawJson`], a payload
//! carried as the JSON text it is (never re-parsed into a tree). None of them crosses between
//! nodes.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A JSON value carried as its text: a message's `data` as published. Compared by its text.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawJson(pub Box<RawValue>);

impl RawJson {
    /// `text` if it is one JSON value (surrounding white space dropped), else why not.
    pub fn parse(text: &str) -> Result<Self, String> {
        RawValue::from_string(text.trim().to_owned())
            .map(Self)
            .map_err(|e| e.to_string())
    }

    /// `text` as a JSON string (`hello` → `"hello"`).
    pub fn string(text: &str) -> Self {
        let quoted = serde_json::to_string(text).expect("a string always encodes");
        Self(RawValue::from_string(quoted).expect("an encoded string is JSON"))
    }

    /// `null`.
    pub fn null() -> Self {
        Self(RawValue::from_string("null".to_owned()).expect("`null` is JSON"))
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Whether it is the JSON `null`.
    pub fn is_null(&self) -> bool {
        self.get() == "null"
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for RawJson {}

impl Default for RawJson {
    fn default() -> Self {
        Self::null()
    }
}

/// The body of `POST /admin/v1/rooms/{room}/publish`: the message, published as the backend.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// Any JSON but `null`; at most `limits.max_message_bytes` (the body at most 1 KiB more).
    pub data: RawJson,
}

/// The answer to a publish: where the message went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishResponse {
    /// The room's epoch.
    pub epoch: String,
    /// Room name.
    pub room: String,
    /// The message's seq.
    pub seq: u64,
}

/// Who published a message: a client (`client`, `user`) or the backend (`backend: true`), as
/// in the client protocol's `message` frame.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageFrom {
    /// Published through the backend API or the admin API.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub backend: bool,
    /// The publishing client's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The publishing client's user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// One message of a room's history. Reads from a stored `message` frame too (its other fields
/// are ignored, `published_ms` is then 0).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryMessage {
    /// The payload, as published.
    pub data: RawJson,
    /// Who published it.
    pub from: MessageFrom,
    /// When its owner took it, Unix milliseconds.
    #[serde(default)]
    pub published_ms: u64,
    /// Its seq.
    pub seq: u64,
}

/// `GET /admin/v1/rooms/{room}/history`: one page of the messages the room holds, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryResponse {
    /// The room's epoch (the page's messages are of this epoch).
    pub epoch: String,
    /// This page, newest first.
    pub messages: Vec<HistoryMessage>,
    /// Cursor of the next (older) page; `null` on the last.
    pub next_cursor: Option<String>,
    /// Room name.
    pub room: String,
    /// The room's current seq.
    pub seq: u64,
}

/// Between a history cursor's epoch and seq: `<epoch>:<seq>`, the page holding the messages
/// below that seq in that epoch.
pub const HISTORY_CURSOR_SEPARATOR: char = ':';

/// A history cursor: the messages below `seq` in `epoch`.
pub fn history_cursor(epoch: &str, seq: u64) -> String {
    format!("{epoch}{HISTORY_CURSOR_SEPARATOR}{seq}")
}

/// Reads a history cursor back: `(epoch, seq)`, or `None` if it is not one.
pub fn parse_history_cursor(cursor: &str) -> Option<(&str, u64)> {
    let (epoch, seq) = cursor.rsplit_once(HISTORY_CURSOR_SEPARATOR)?;
    Some((epoch, seq.parse().ok()?))
}

/// `GET /admin/v1/rooms/{room}/presence`: one page of the room's members, by client id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceResponse {
    /// This page.
    pub members: Vec<super::Member>,
    /// Cursor of the next page; `null` on the last.
    pub next_cursor: Option<String>,
    /// Room name.
    pub room: String,
    /// Members of the room (distinct client ids), on every page.
    pub total: usize,
}

/// The body of `POST /admin/v1/clients/{client}/join` and `/leave`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomRequest {
    /// The room.
    pub room: String,
}

/// The answer to a join: how many of the client's connections joined now, and how many were
/// members already.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinResponse {
    /// Connections that were members already.
    pub already_joined: usize,
    /// Client id.
    pub client: String,
    /// Connections that joined now.
    pub joined: usize,
    /// Room name.
    pub room: String,
}

/// The answer to a leave: how many of the client's connections left.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveResponse {
    /// Client id.
    pub client: String,
    /// Connections that left.
    pub left: usize,
    /// Room name.
    pub room: String,
}
