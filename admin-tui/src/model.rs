//! What the network task hands the UI, built from the admin API's own types
//! (`protocol::admin`): one poll's answers ([`Snapshot`]), each list page with the request it
//! answers ([`Answer`]), the open drill-down ([`Detail`], [`RoomPage`]) and a frame of the event stream
//! ([`Streamed`]); and what the UI asks the task to fetch ([`Lists`]).
//!
//! Declares no shape of the API: every answer here is a `protocol::admin` type, read as the
//! node wrote it (the tidy test `tidy_admin` keeps it so).

use protocol::admin::{
    ClientDetail, ClientsResponse, ClusterResponse, HistoryResponse, ListQuery, PresenceResponse,
    RoomDetail, RoomsResponse, StreamFrame, UnknownFrame,
};

/// A list page and the request it answers (the console shows a page only if it answers the
/// page it wants now).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer<T> {
    /// The request, as sent.
    pub query: ListQuery,
    /// The node's answer.
    pub page: T,
}

/// What the drill-down shows, fetched on every poll next to the lists.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    /// The open room (its figures), and the page of its pane on screen, if that answered.
    Room(Box<RoomDetail>, Option<RoomPage>),
    Client(ClientDetail),
}

/// A page of the open room's pane: its members (`/presence`) or its history (`/history`).
#[derive(Debug, Clone, PartialEq)]
pub enum RoomPage {
    Members(Answer<PresenceResponse>),
    History(Answer<HistoryResponse>),
}

/// One poll's worth of answers, sent whole to the UI.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The admin URL that answered.
    pub node_url: String,
    pub cluster: ClusterResponse,
    pub rooms: Option<Answer<RoomsResponse>>,
    pub clients: Option<Answer<ClientsResponse>>,
    pub detail: Option<Detail>,
    /// Errors of the individual calls of this poll (a list that failed keeps its last rows).
    pub errors: Vec<String>,
    /// When the poll started, Unix milliseconds (paces the rate history).
    pub taken_ms: u64,
}

/// Which server-paged lists the network task fetches on every poll, and which page of each.
/// Only the list on screen is fetched, so a console on the Cluster view costs the cluster nothing
/// per connected client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lists {
    pub rooms: Option<ListQuery>,
    pub clients: Option<ListQuery>,
}

/// One text frame of the attached node's event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Streamed {
    /// A frame this build knows.
    Frame(StreamFrame),
    /// A frame of a kind it does not know (a newer node): its type and node, and the text.
    Unknown(UnknownFrame, String),
}

impl Streamed {
    /// Reads one frame (`None` for text that is not a frame at all).
    pub fn parse(text: &str) -> Option<Self> {
        match serde_json::from_str(text) {
            Ok(frame) => Some(Self::Frame(frame)),
            Err(_) => serde_json::from_str(text)
                .ok()
                .map(|head| Self::Unknown(head, text.to_owned())),
        }
    }
}
