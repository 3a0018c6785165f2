//! The room's messages and their payloads, encodable for other nodes: a room is owned by one
//! node and reached from every node, so every variant can cross the cluster link
//! (`RactorClusterMessage`). A room actor itself is *not* remotely usable (its inbox type,
//! `room_access::RoomInbox`, says so): no peer holds a proxy of it. A message for a room on another node
//! goes through that node's gateway (`room_access::gateway`) inside a `room_access::RoomRef`.
//! Local callers pass the values as they are (no encoding); only a call that crosses nodes is
//! encoded, as one JSON payload per variant (fields may be added with `#[serde(default)]`;
//! variants are never renamed: see ARCHITECTURE.md, "Compatibility").
//!
//! Messages and encodings only: the typed calls that send them are in `room_access::calls`.

use crate::delivery::Delivery;
use protocol::client::Since;
use protocol::room::RoomName;
use ractor::{BytesConvertable, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::Arc;

/// Who published.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Publisher {
    /// A client connection.
    Client {
        /// Client id.
        client: String,
        /// User id.
        user: String,
    },
    /// The backend API.
    Backend,
}

/// A member joining through its node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    /// Client id.
    pub client: String,
    /// User id.
    pub user: String,
    /// Node the client is connected to (its relay receives the room's messages).
    pub node: String,
    /// Recovery position.
    pub since: Option<Since>,
    /// Replay the last N messages.
    pub last: Option<u32>,
    /// Re-joining after the room moved: do not announce the member again.
    #[serde(default)]
    pub quiet: bool,
    /// Most bytes of replay to put in the reply (a caller on another node reads the rest with
    /// `History`, so no message across the link is larger than a page); absent: all of it.
    #[serde(default)]
    pub replay_bytes: Option<u64>,
}

/// What a join returns: the reply fields and everything to replay before live messages.
#[derive(Debug, Clone, Default)]
pub struct JoinReply {
    /// Why the join failed (e.g. the member's node has no reachable relay).
    pub error: Option<String>,
    /// Room seq at the moment of the join.
    pub seq: u64,
    /// Room epoch.
    pub epoch: Arc<str>,
    /// Distinct members after the join.
    pub members: usize,
    /// With `since`: whether recovery is complete.
    pub recovered: Option<bool>,
    /// The snapshot frame and its seq, if the room has one.
    pub snapshot: Option<(u64, String)>,
    /// Messages to replay, in order.
    pub replay: Vec<Arc<Delivery>>,
    /// Set when `replay` is the first part of the replay (`replay_bytes`): the seq of its last
    /// message, which the caller reads up to with `History`.
    pub replay_until: Option<u64>,
}

/// A member leaving.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaveRequest {
    /// Client id.
    pub client: String,
    /// Node it was on.
    pub node: String,
}

/// A publish.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishRequest {
    /// Publisher identity (set by the gateway, never by the client).
    pub from: Publisher,
    /// Payload.
    pub data: Box<RawValue>,
}

/// A publish's outcome.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Published {
    /// Assigned seq.
    pub seq: u64,
    /// Room epoch.
    pub epoch: String,
}

/// A member as listed by presence: the admin API's room member (`protocol::admin::Member`).
pub use protocol::admin::Member as PresenceEntry;

/// The members of a room.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PresenceList {
    /// Members, by client id.
    pub members: Vec<PresenceEntry>,
    /// The last client id of this page when more follow: ask again with it as `after`.
    #[serde(default)]
    pub next: Option<String>,
}

/// Asks for one page of a room's members: those with a client id after `after`, in client id
/// order, at most [`PRESENCE_PAGE_BYTES`] of them (an empty request, as older nodes send it,
/// is the first page).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PresencePage {
    /// Start after this client id.
    #[serde(default)]
    pub after: Option<String>,
    /// At most this many members (absent: as many as fit the page; older nodes ignore it).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Most bytes of members in one presence page: a room of any size is listed across the
/// cluster link in messages of this size (far below ractor_cluster's 16 MiB frame limit).
pub const PRESENCE_PAGE_BYTES: usize = 512 * 1024;

/// Most frame bytes in one join reply or history page: such a reply may cross nodes, and must
/// stay far below the cluster link's 16 MiB frame limit (encoded, a frame can double in size).
pub const MAX_REPLY_BYTES: usize = 4 << 20;

/// A history read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HistoryRequest {
    /// Only messages after this position (an empty epoch means the room's current one).
    pub since: Option<Since>,
    /// At most this many.
    pub limit: u64,
    /// At most this many bytes of messages (at least one message; absent: the room's own cap).
    #[serde(default)]
    pub max_bytes: Option<u64>,
}

/// A room's history as read by `history` and the backend API.
#[derive(Debug, Clone, Default)]
pub struct HistoryPage {
    /// Room epoch.
    pub epoch: Arc<str>,
    /// Current seq.
    pub seq: u64,
    /// Whether the page starts right after the asked position.
    pub complete: bool,
    /// Messages, oldest first.
    pub messages: Vec<Arc<Delivery>>,
}

impl HistoryPage {
    /// The page as a JSON array of `message` frames (the stored encodings, not re-encoded).
    pub fn messages_json(&self) -> String {
        let len: usize = self.messages.iter().map(|d| d.frame.len() + 1).sum();
        let mut out = String::with_capacity(len + 2);
        out.push('[');
        for (i, d) in self.messages.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&d.frame);
        }
        out.push(']');
        out
    }
}

/// A snapshot to store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotPut {
    /// Payload.
    pub data: Box<RawValue>,
}

/// The outcome of storing a snapshot.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SnapshotPutReply {
    /// The seq it is current as of.
    pub seq: Option<u64>,
    /// Why it was refused.
    pub error: Option<String>,
}

/// A snapshot as read back.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SnapshotGetReply {
    /// (seq, epoch, data), if the room has one.
    pub snapshot: Option<(u64, String, Box<RawValue>)>,
    /// Why it could not be read.
    pub error: Option<String>,
}

/// A room's summary: the admin API's `protocol::admin::RoomInfo`.
pub use protocol::admin::RoomInfo;

/// What a room answers to `Info`: its [`RoomInfo`], encoded as it is (a newtype only because
/// ractor's encoding trait cannot be implemented for another crate's type).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InfoReply(pub RoomInfo);

/// Asks the owner to move the room to another node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MigrateRequest {
    /// Target node.
    pub to: String,
}

/// The outcome of a move.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MigrateReply {
    /// Node that owned the room.
    pub from: String,
    /// Node that owns it now.
    pub to: String,
    /// Seq at the handoff.
    pub seq: u64,
    /// Epoch (unchanged by a move).
    pub epoch: String,
    /// Why it did not move.
    pub error: Option<String>,
}

/// An empty payload (requests without arguments, the housekeeping tick).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Empty {}

/// Messages accepted by a room actor, from any node.
#[derive(RactorClusterMessage)]
pub enum RoomMessage {
    /// A client joins through its node's relay (the connection subscribed there first).
    #[rpc]
    Join(JoinRequest, RpcReplyPort<JoinReply>),
    /// A client's connection leaves (explicitly or by closing).
    Leave(LeaveRequest),
    /// Publish a message; answers its seq.
    #[rpc]
    Publish(PublishRequest, RpcReplyPort<Published>),
    /// Members of the room.
    #[rpc]
    Presence(PresencePage, RpcReplyPort<PresenceList>),
    /// Read history.
    #[rpc]
    History(HistoryRequest, RpcReplyPort<HistoryPage>),
    /// Replace the snapshot.
    #[rpc]
    SetSnapshot(SnapshotPut, RpcReplyPort<SnapshotPutReply>),
    /// Read the snapshot.
    #[rpc]
    GetSnapshot(Empty, RpcReplyPort<SnapshotGetReply>),
    /// Admin summary.
    #[rpc]
    Info(Empty, RpcReplyPort<InfoReply>),
    /// Periodic housekeeping: expire history, stop when idle.
    Tick(Empty),
    /// Move the room to another node (admin `migrate`, drain).
    #[rpc]
    Migrate(MigrateRequest, RpcReplyPort<MigrateReply>),
    /// From the room's home node: another instance of this room, with another epoch, is live
    /// (after a partition healed); the one named `winner` keeps the room.
    Rival(RivalNote),
}

/// Where one room instance runs: its node and its actor name (which carries its epoch, see
/// [`crate::wire::names::room_actor_name`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomAt {
    /// Room name.
    pub room: String,
    /// The node it runs on.
    pub node: String,
    /// Its actor name there.
    pub name: String,
}

/// Two live instances of one room: the one that keeps it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RivalNote {
    /// The instance that keeps the room.
    pub winner: RoomAt,
}

// === encodings ===

super::json_payloads!(
    JoinRequest,
    LeaveRequest,
    PublishRequest,
    Published,
    PresenceList,
    PresencePage,
    HistoryRequest,
    SnapshotPut,
    SnapshotPutReply,
    SnapshotGetReply,
    InfoReply,
    Empty,
    MigrateRequest,
    MigrateReply,
    RivalNote,
    RoomAt
);

/// One delivery as carried inside JSON payloads.
#[derive(Serialize, Deserialize)]
struct DeliveryJson {
    room: String,
    seq: u64,
    epoch: String,
    frame: String,
    us: u64,
}

fn to_json(d: &Delivery) -> DeliveryJson {
    DeliveryJson {
        room: d.room.to_string(),
        seq: d.seq,
        epoch: d.epoch.to_string(),
        frame: d.frame.to_string(),
        us: d.published_us,
    }
}

fn from_json(d: DeliveryJson) -> Option<Arc<Delivery>> {
    Some(Arc::new(Delivery {
        room: RoomName::parse(&d.room).ok()?,
        seq: d.seq,
        epoch: Arc::from(d.epoch),
        frame: d.frame.into(),
        published_us: d.us,
    }))
}

#[derive(Serialize, Deserialize)]
struct JoinReplyJson {
    error: Option<String>,
    seq: u64,
    epoch: String,
    members: usize,
    recovered: Option<bool>,
    snapshot: Option<(u64, String)>,
    replay: Vec<DeliveryJson>,
    #[serde(default)]
    replay_until: Option<u64>,
}

impl BytesConvertable for JoinReply {
    fn into_bytes(self) -> Vec<u8> {
        let j = JoinReplyJson {
            error: self.error,
            seq: self.seq,
            epoch: self.epoch.to_string(),
            members: self.members,
            recovered: self.recovered,
            snapshot: self.snapshot,
            replay: self.replay.iter().map(|d| to_json(d)).collect(),
            replay_until: self.replay_until,
        };
        serde_json::to_vec(&j).expect("join replies always encode")
    }
    fn from_bytes(bytes: Vec<u8>) -> Self {
        let j: JoinReplyJson = super::decode(&bytes, "join reply");
        Self {
            error: j.error,
            seq: j.seq,
            epoch: Arc::from(j.epoch),
            members: j.members,
            recovered: j.recovered,
            snapshot: j.snapshot,
            replay: j.replay.into_iter().filter_map(from_json).collect(),
            replay_until: j.replay_until,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct HistoryPageJson {
    epoch: String,
    seq: u64,
    complete: bool,
    messages: Vec<DeliveryJson>,
}

impl BytesConvertable for HistoryPage {
    fn into_bytes(self) -> Vec<u8> {
        let j = HistoryPageJson {
            epoch: self.epoch.to_string(),
            seq: self.seq,
            complete: self.complete,
            messages: self.messages.iter().map(|d| to_json(d)).collect(),
        };
        serde_json::to_vec(&j).expect("history pages always encode")
    }
    fn from_bytes(bytes: Vec<u8>) -> Self {
        let j: HistoryPageJson = super::decode(&bytes, "history page");
        Self {
            epoch: Arc::from(j.epoch),
            seq: j.seq,
            complete: j.complete,
            messages: j.messages.into_iter().filter_map(from_json).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_replies_and_history_pages_cross_the_wire_intact() {
        let d = Arc::new(Delivery {
            room: RoomName::parse("r").unwrap(),
            seq: 7,
            epoch: Arc::from("e1"),
            frame: r#"{"op":"message","seq":7,"data":"é\n"}"#.into(),
            published_us: 42,
        });
        let reply = JoinReply {
            seq: 7,
            epoch: Arc::from("e1"),
            members: 2,
            recovered: Some(true),
            snapshot: Some((3, "{}".into())),
            replay: vec![d.clone()],
            error: None,
            replay_until: Some(9),
        };
        let back = JoinReply::from_bytes(reply.into_bytes());
        assert_eq!(back.replay[0].frame, d.frame);
        assert_eq!(back.replay[0].seq, 7);
        assert_eq!(back.recovered, Some(true));
        assert_eq!(back.replay_until, Some(9));
        // From a node of the previous version: no `replay_until`, the replay is whole.
        let older = br#"{"error":null,"seq":1,"epoch":"e","members":1,"recovered":null,"snapshot":null,"replay":[]}"#;
        assert_eq!(JoinReply::from_bytes(older.to_vec()).replay_until, None);
        let page = HistoryPage {
            epoch: Arc::from("e1"),
            seq: 7,
            complete: true,
            messages: vec![d],
        };
        let back = HistoryPage::from_bytes(page.into_bytes());
        assert_eq!(
            back.messages_json(),
            r#"[{"op":"message","seq":7,"data":"é\n"}]"#
        );
        let p = PublishRequest {
            from: Publisher::Backend,
            data: RawValue::from_string("[1,2]".into()).unwrap(),
        };
        assert_eq!(
            PublishRequest::from_bytes(p.into_bytes()).data.get(),
            "[1,2]"
        );
    }
}
