//! The admin API's answers, as the console reads them (`docs/admin-api.md`). Every field the
//! console does not strictly need is optional or defaulted, so a `down` node (which carries only
//! its last known facts) or a newer node with extra fields still parses.

use serde::Deserialize;

/// `GET /admin/v1/cluster`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ClusterResp {
    #[serde(default)]
    pub nodes: Vec<NodeInfo>,
    #[serde(default)]
    pub missing: Vec<String>,
}

/// One node of `/cluster`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NodeInfo {
    pub name: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub admin_address: Option<String>,
    #[serde(default)]
    pub connections: Option<u64>,
    #[serde(default)]
    pub rooms_owned: Option<u64>,
    #[serde(default)]
    pub msgs_in_per_s: Option<f64>,
    #[serde(default)]
    pub msgs_out_per_s: Option<f64>,
    #[serde(default)]
    pub rss_bytes: Option<u64>,
    #[serde(default)]
    pub uptime_s: Option<u64>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub rooms_left: Option<u64>,
    #[serde(default)]
    pub connections_left: Option<u64>,
    #[serde(default)]
    pub rtt_us: Option<u64>,
    #[serde(default)]
    pub reconnects: Option<u64>,
    #[serde(default)]
    pub incarnation: Option<String>,
}

/// `GET /admin/v1/rooms`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RoomsResp {
    #[serde(default)]
    pub rooms: Vec<RoomInfo>,
    #[serde(default)]
    pub total: u64,
}

/// One room of `/rooms`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RoomInfo {
    pub name: String,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub members: u64,
    #[serde(default)]
    pub nodes: Vec<String>,
    #[serde(default)]
    pub msgs_per_s: f64,
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub epoch: String,
    #[serde(default)]
    pub history_len: u64,
}

/// `GET /admin/v1/rooms/{room}`: the room plus the first page of its members.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RoomDetail {
    pub name: String,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub members: Vec<Member>,
    #[serde(default)]
    pub members_total: u64,
    #[serde(default)]
    pub nodes: Vec<String>,
    #[serde(default)]
    pub msgs_per_s: f64,
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub epoch: String,
    #[serde(default)]
    pub history_len: u64,
}

/// One member of a room.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Member {
    pub client: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub node: String,
}

/// `GET /admin/v1/clients`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ClientsResp {
    #[serde(default)]
    pub clients: Vec<ClientInfo>,
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub missing: Vec<String>,
}

/// One connection of `/clients` (a client id can appear twice while a resume overlaps).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ClientInfo {
    pub id: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub node: String,
    #[serde(default)]
    pub conn: u64,
    #[serde(default)]
    pub remote_addr: String,
    #[serde(default)]
    pub rooms: u64,
    #[serde(default)]
    pub connected_at: u64,
    #[serde(default)]
    pub msgs_in: u64,
    #[serde(default)]
    pub msgs_out: u64,
    #[serde(default)]
    pub queue_bytes: u64,
    #[serde(default)]
    pub throttled: bool,
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

/// Limits in force on a connection.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RateLimit {
    #[serde(default)]
    pub msgs_per_sec: u64,
    #[serde(default)]
    pub burst: u64,
    #[serde(default)]
    pub bytes_per_sec: u64,
}

/// `GET /admin/v1/clients/{client}`: the first connection plus all of them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ClientDetail {
    pub id: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub connections: Vec<ClientInfo>,
}

/// What the drill-down shows, fetched on every poll next to the lists.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    Room(RoomDetail),
    Client(ClientDetail),
}

/// One poll's worth of answers, sent whole to the UI.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The admin URL that answered.
    pub node_url: String,
    pub cluster: ClusterResp,
    pub rooms: Option<RoomsResp>,
    pub clients: Option<ClientsResp>,
    pub detail: Option<Detail>,
    /// Errors of the individual calls of this poll (a list that failed keeps its last rows).
    pub errors: Vec<String>,
}
