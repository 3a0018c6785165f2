//! The admin API `/admin/v1` (`docs/admin-api.md`), typed once: what the console and operators
//! send ([`ListQuery`], [`KickRequest`], [`ThrottleRequest`], [`MigrateRequest`],
//! [`PublishRequest`], [`RoomRequest`]), what a node
//! answers, what its event stream carries, and the API's limits and sort columns. The node
//! serialises these types, the console deserialises the same ones; neither writes the shapes by
//! hand. The few types a node also sends to its peers when it answers for the cluster
//! ([`ClientSummary`], [`ClientQuery`], [`RoomInfo`], [`Member`], [`RoomListQuery`],
//! [`RoomListPage`], [`NodeStats`]) keep their field order: the inter-node wire pins it.
//!
//! Owns shapes, limits and the query-string encoding only; no I/O and no behaviour (paging,
//! filtering, sorting and every check happen on the node). Depends on serde and serde_json only.
//!
//! Answers are written with their keys in alphabetical order, as the contract's examples show:
//! a node encodes an answer through [`to_value`], whose maps keep their keys sorted. Unknown
//! fields are ignored when reading (a newer node may add some); request bodies the contract
//! says reject unknown fields do.

mod clients;
mod events;
mod nodes;
mod ops;
mod query;
mod rooms;

pub use clients::{
    ClientDetail, ClientQuery, ClientSummary, ClientsResponse, KickRequest, KickResponse,
    RateLimitView, ThrottleRequest, ThrottleResponse, UnthrottleResponse,
};
pub use events::{Control, Event, EventRecord, StreamFrame, UnknownFrame};
pub use nodes::{
    ClusterNode, ClusterResponse, DownNode, LiveNode, NodeCommandResponse, NodeStats, PeerLink,
    StatsResponse,
};
pub use ops::{
    history_cursor, parse_history_cursor, HistoryMessage, HistoryResponse, JoinResponse,
    LeaveResponse, MessageFrom, PresenceResponse, PublishRequest, PublishResponse, RawJson,
    RoomRequest, HISTORY_CURSOR_SEPARATOR,
};
pub use query::{percent_encode, ClientSort, ListQuery, RoomSort, CLIENT_SORTS, ROOM_SORTS};
pub use rooms::{
    Member, MigrateRequest, MigrateResponse, RoomDetail, RoomInfo, RoomInstance, RoomListPage,
    RoomListQuery, RoomsResponse,
};

use crate::codes::ErrorCode;
use serde::{Deserialize, Serialize};

/// Every path of the API starts with this.
pub const PREFIX: &str = "/admin/v1";
/// Rows of a list page when the query gives no `limit`.
pub const DEFAULT_PAGE: usize = 100;
/// The largest page: a larger `limit` is cut to this (and `limit=0` gives one row).
pub const MAX_PAGE: usize = 1000;
/// Longest request body (kick, throttle, migrate, join, leave), in bytes; a larger one gets
/// 413. A publish's body is bounded by the node's `limits.max_message_bytes` instead (plus
/// [`PUBLISH_BODY_SLACK`]).
pub const MAX_BODY_BYTES: usize = 4096;
/// What a publish's body may hold beyond `limits.max_message_bytes` (the `{"data":…}` around
/// the message), as for the backend API's publish.
pub const PUBLISH_BODY_SLACK: usize = 1024;
/// Most bytes of messages (their `message` frames as stored) one history page holds: a page that
/// would hold more keeps its newest messages that fit (at least one). As for a client's
/// `history`.
pub const MAX_HISTORY_PAGE_BYTES: usize = 4 << 20;
/// Longest kick `reason`, in bytes.
pub const MAX_REASON_BYTES: usize = 120;
/// The kick `reason` when the body gives none.
pub const DEFAULT_KICK_REASON: &str = "kicked by operator";

/// The page size a list query asks for: [`DEFAULT_PAGE`] when absent, within 1..=[`MAX_PAGE`].
pub fn page_limit(limit: Option<usize>) -> usize {
    limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
}

/// An answer as the node writes it: a JSON value whose objects keep their keys sorted.
pub fn to_value<T: Serialize>(answer: &T) -> serde_json::Value {
    serde_json::to_value(answer).unwrap_or(serde_json::Value::Null)
}

/// Every error answer of the backend and admin APIs: `{"error":{"code":…,"message":…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The `error` of an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
}

#[cfg(test)]
mod tests;
