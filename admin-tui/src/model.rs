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

/// One page request of a server-paged list (`/rooms` or `/clients`): filter, sort column,
/// cursor and page size, exactly as sent to the API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageQuery {
    /// `q`: substring of id or user (clients) or room name (rooms); empty: everything.
    pub q: String,
    /// `sort`: the API's column name (`id`, `msgs_in`, `members`, …).
    pub sort: String,
    /// `cursor`: the previous page's `next_cursor`; `None` for the first page.
    pub cursor: Option<String>,
    /// `limit`: rows per page.
    pub limit: u32,
}

impl PageQuery {
    /// `?limit=…&sort=…[&q=…][&cursor=…]`, percent-encoded.
    pub fn query_string(&self) -> String {
        let mut s = format!("?limit={}", self.limit);
        if !self.sort.is_empty() {
            s.push_str(&format!("&sort={}", crate::client::enc(&self.sort)));
        }
        if !self.q.is_empty() {
            s.push_str(&format!("&q={}", crate::client::enc(&self.q)));
        }
        if let Some(c) = &self.cursor {
            s.push_str(&format!("&cursor={}", crate::client::enc(c)));
        }
        s
    }
}

/// `GET /admin/v1/rooms`: one page.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RoomsResp {
    #[serde(default)]
    pub rooms: Vec<RoomInfo>,
    /// Rooms matching the filter, on every page.
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub next_cursor: Option<String>,
    /// Nodes that did not answer.
    #[serde(default)]
    pub missing: Vec<String>,
    /// The request this page answers (set by the console, not by the API).
    #[serde(skip)]
    pub query: PageQuery,
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

/// `GET /admin/v1/clients`: one page.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ClientsResp {
    #[serde(default)]
    pub clients: Vec<ClientInfo>,
    /// Connections matching the filter, on every page.
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub next_cursor: Option<String>,
    /// Nodes that did not answer.
    #[serde(default)]
    pub missing: Vec<String>,
    /// The request this page answers (set by the console, not by the API).
    #[serde(skip)]
    pub query: PageQuery,
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
    /// When the poll started, Unix milliseconds (paces the rate history).
    pub taken_ms: u64,
}

/// Which server-paged lists the network task fetches on every poll, and which page of each.
/// Only the list on screen is fetched, so a console on the Cluster view costs the cluster nothing
/// per connected client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lists {
    pub rooms: Option<PageQuery>,
    pub clients: Option<PageQuery>,
}
