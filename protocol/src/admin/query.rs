//! The query string of the list endpoints (`GET /clients`, `GET /rooms`, and the member page of
//! `GET /rooms/{room}`) and their sort columns; how a query is written into a URL.
//!
//! Owns the names of the columns, not the order they sort in: the node keys and sorts rows.

use serde::{Deserialize, Serialize};

/// Paging and filtering of a list (`docs/admin-api.md`, "Paging" and "Filters"). Every field may
/// be absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListQuery {
    /// Page size (see [`super::page_limit`]).
    pub limit: Option<usize>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Case-sensitive substring of the client id or user id (clients) or room name (rooms);
    /// empty: ignored.
    pub q: Option<String>,
    /// Only connections on this node (clients); rooms owned by it or with members on it (rooms).
    pub node: Option<String>,
    /// Only members of this room (clients).
    pub room: Option<String>,
    /// Sort column: one of [`CLIENT_SORTS`] or [`ROOM_SORTS`]; absent or empty: the first.
    pub sort: Option<String>,
}

impl ListQuery {
    /// `?limit=…&sort=…&q=…&cursor=…&node=…&room=…`, the fields that are set, percent-encoded
    /// (empty when none is).
    pub fn query_string(&self) -> String {
        let limit = self.limit.map(|l| l.to_string());
        let fields = [
            ("limit", limit.as_deref()),
            ("sort", self.sort.as_deref()),
            ("q", self.q.as_deref()),
            ("cursor", self.cursor.as_deref()),
            ("node", self.node.as_deref()),
            ("room", self.room.as_deref()),
        ];
        let mut out = String::new();
        for (key, value) in fields {
            if let Some(v) = value {
                out.push(if out.is_empty() { '?' } else { '&' });
                out.push_str(key);
                out.push('=');
                out.push_str(&percent_encode(v));
            }
        }
        out
    }
}

/// Percent-encodes a path segment or query value: every byte but ASCII letters, digits and
/// `-._~:@` (room names and client ids keep their `:` and `@`).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A sort column of `GET /admin/v1/clients`. Text columns sort ascending, numeric ones largest
/// first; ties go by client id, node and connection number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientSort {
    /// Client id (the default).
    Id,
    /// User id.
    User,
    /// The node the connection is on.
    Node,
    /// Frames received.
    MsgsIn,
    /// Frames written.
    MsgsOut,
    /// Bytes waiting in the outbound queue.
    QueueBytes,
    /// When the connection opened.
    ConnectedAt,
}

impl ClientSort {
    /// Every column, the default first.
    pub const ALL: [ClientSort; 7] = [
        Self::Id,
        Self::User,
        Self::Node,
        Self::MsgsIn,
        Self::MsgsOut,
        Self::QueueBytes,
        Self::ConnectedAt,
    ];

    /// The column a `sort` value names, if any.
    pub fn parse(sort: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == sort)
    }

    /// The `sort` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::User => "user",
            Self::Node => "node",
            Self::MsgsIn => "msgs_in",
            Self::MsgsOut => "msgs_out",
            Self::QueueBytes => "queue_bytes",
            Self::ConnectedAt => "connected_at",
        }
    }
}

/// A sort column of `GET /admin/v1/rooms`. Text columns sort ascending, numeric ones largest
/// first; ties go by room name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoomSort {
    /// Room name (the default).
    Name,
    /// Distinct members.
    Members,
    /// Publishes in the last full second.
    MsgsPerS,
    /// The owner node.
    Owner,
}

impl RoomSort {
    /// Every column, the default first.
    pub const ALL: [RoomSort; 4] = [Self::Name, Self::Members, Self::MsgsPerS, Self::Owner];

    /// The `sort` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Members => "members",
            Self::MsgsPerS => "msgs_per_s",
            Self::Owner => "owner",
        }
    }
}

/// The `sort` values of `/clients`, the default first.
pub const CLIENT_SORTS: [&str; ClientSort::ALL.len()] = {
    let mut out = [""; ClientSort::ALL.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = ClientSort::ALL[i].as_str();
        i += 1;
    }
    out
};

/// The `sort` values of `/rooms`, the default first.
pub const ROOM_SORTS: [&str; RoomSort::ALL.len()] = {
    let mut out = [""; RoomSort::ALL.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = RoomSort::ALL[i].as_str();
        i += 1;
    }
    out
};
