//! The console's state and `App::update`: no drawing and no I/O. Network answers come in through
//! `App::on_net`; requests for the network task collect in an outbox the UI loop forwards.
//!
//! Rooms and clients are paged, filtered and sorted by the API: the state holds one page of each
//! (`Paging` remembers the cursors of the pages before it, so PgUp goes back), and every change
//! of view, filter, sort, page or page size becomes a `Command::Lists` for the network task. An
//! answer is shown only if it answers the page the console wants now. The node list is small and
//! is filtered and sorted here; so is the event log. Each node's msgs/s in and out are kept for
//! the Cluster view's sparklines.

use crate::action::{Action, View};
use crate::client::{Command, Focus, Op};
use crate::event::NetEvent;
use crate::keymap::KeyMode;
use crate::model::{
    ClientInfo, ClusterResp, Detail, Lists, NodeInfo, PageQuery, RoomInfo, RoomsResp, Snapshot,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// How many lines the Events view keeps.
const EVENT_LOG_CAP: usize = 2000;
/// Longest kick reason the API accepts, in bytes.
const MAX_REASON: usize = 120;

/// Rate samples kept per node (one a second: five minutes).
pub const RATE_HISTORY: usize = 300;
/// Polls closer together than this (after an action, say) add no rate sample.
const SAMPLE_GAP_MS: u64 = 900;
/// The API's largest page.
const MAX_PAGE: usize = 1000;

/// Sort columns of each view, cycled by `s`.
pub const NODE_SORTS: [&str; 4] = ["name", "connections", "rooms", "msgs in/s"];
pub const ROOM_SORTS: [&str; 4] = ["name", "members", "msgs/s", "owner"];
pub const CLIENT_SORTS: [&str; 5] = ["id", "user", "node", "msgs in", "queue"];
pub const EVENT_SORTS: [&str; 1] = ["newest"];
/// The API's `sort` values for `ROOM_SORTS` and `CLIENT_SORTS`, in the same order.
pub const ROOM_SORT_PARAMS: [&str; 4] = ["name", "members", "msgs_per_s", "owner"];
pub const CLIENT_SORT_PARAMS: [&str; 5] = ["id", "user", "node", "msgs_in", "queue_bytes"];

/// Where a server-paged list is: the pages before the current one, and the one after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paging {
    /// For every page after the first, up to the current one: its cursor and the position of
    /// its first row in the whole list.
    pub stack: Vec<(String, u64)>,
    /// The current page's `next_cursor`, from its last answer (`None`: the last page).
    pub next: Option<String>,
    /// Select the last row when the page arrives (Up from the first row of a page).
    pub select_last: bool,
    /// The request the rows on screen answer.
    pub shown: Option<PageQuery>,
}

impl Paging {
    pub fn cursor(&self) -> Option<String> {
        self.stack.last().map(|(c, _)| c.clone())
    }

    /// Position of the page's first row in the whole list.
    pub fn offset(&self) -> u64 {
        self.stack.last().map_or(0, |(_, o)| *o)
    }

    /// 1-based page number.
    pub fn number(&self) -> usize {
        self.stack.len() + 1
    }

    fn reset(&mut self) {
        self.stack.clear();
        self.next = None;
        self.select_last = false;
    }
}

/// Msgs/s in and out of one node, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateHistory {
    pub ins: VecDeque<u64>,
    pub outs: VecDeque<u64>,
}

impl RateHistory {
    fn push(&mut self, inp: u64, out: u64) {
        for (q, v) in [(&mut self.ins, inp), (&mut self.outs, out)] {
            if q.len() >= RATE_HISTORY {
                q.pop_front();
            }
            q.push_back(v);
        }
    }
}

/// Per-view list state: each view keeps its own filter, sort and selection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListState {
    pub selected: usize,
    pub filter: String,
    pub sort: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptKind {
    AttachUrl,
    KickReason { client: String },
    ThrottleRate { client: String },
    ThrottleBurst { client: String, rate: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Filter {
        input: String,
    },
    Prompt {
        kind: PromptKind,
        input: String,
    },
    Confirm {
        op: Op,
    },
    Pick {
        room: String,
        options: Vec<String>,
        selected: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub time: String,
    pub text: String,
}

#[derive(Debug)]
pub struct App {
    pub view: View,
    pub node_url: String,
    pub cluster: ClusterResp,
    pub rooms: Vec<RoomInfo>,
    pub clients: Vec<ClientInfo>,
    pub rooms_total: u64,
    pub clients_total: u64,
    /// Peers that did not answer the last `/rooms` and `/clients`.
    pub rooms_missing: Vec<String>,
    pub clients_missing: Vec<String>,
    pub rooms_page: Paging,
    pub clients_page: Paging,
    /// Msgs/s history of every node of the last `/cluster`, by name.
    pub rates: BTreeMap<String, RateHistory>,
    last_sample_ms: u64,
    /// Msgs/s of the open room drill-down, a sample a second, oldest first.
    pub room_rate: VecDeque<u64>,
    /// Msgs in and out per second of each connection on the Clients page (by `conn_key`), from
    /// its counters in the last two polls.
    pub client_rates: HashMap<String, (f64, f64)>,
    /// The counters behind `client_rates`: msgs in, msgs out, when (Unix ms).
    client_counts: HashMap<String, (u64, u64, u64)>,
    /// The open drill-down (a room in Rooms, a client in Clients) and its last answer.
    pub drill: Option<Focus>,
    pub detail: Option<Detail>,
    /// Selected member in a room drill-down.
    pub detail_sel: usize,
    pub lists: [ListState; 4],
    pub mode: Mode,
    pub help: bool,
    pub status: String,
    pub status_is_error: bool,
    pub events: VecDeque<LogLine>,
    /// Rows a PgUp/PgDn moves; the UI loop sets it from the terminal height.
    pub page_size: usize,
    pub quit: bool,
    /// Whether any snapshot arrived yet (the first one is not diffed into the event log).
    pub have_snapshot: bool,
    outbox: Vec<Command>,
    last_poll_error: Option<String>,
    /// The last `Command::Lists` sent.
    sent_lists: Option<Lists>,
}

impl App {
    pub fn new(node_url: &str) -> Self {
        App {
            view: View::Cluster,
            node_url: node_url.to_owned(),
            cluster: ClusterResp::default(),
            rooms: Vec::new(),
            clients: Vec::new(),
            rooms_total: 0,
            clients_total: 0,
            rooms_missing: Vec::new(),
            clients_missing: Vec::new(),
            rooms_page: Paging::default(),
            clients_page: Paging::default(),
            rates: BTreeMap::new(),
            last_sample_ms: 0,
            room_rate: VecDeque::new(),
            client_rates: HashMap::new(),
            client_counts: HashMap::new(),
            drill: None,
            detail: None,
            detail_sel: 0,
            lists: Default::default(),
            mode: Mode::Normal,
            help: false,
            status: format!("connecting to {node_url} …"),
            status_is_error: false,
            events: VecDeque::new(),
            page_size: 10,
            quit: false,
            have_snapshot: false,
            outbox: Vec::new(),
            last_poll_error: None,
            sent_lists: None,
        }
    }

    /// Requests for the network task since the last call (including the pages to fetch, when
    /// they changed).
    pub fn take_commands(&mut self) -> Vec<Command> {
        self.sync_lists();
        std::mem::take(&mut self.outbox)
    }

    /// Rows per page of the server-paged lists; the UI loop sets it from the terminal height.
    pub fn set_page_size(&mut self, rows: usize) {
        self.page_size = rows.clamp(1, MAX_PAGE);
    }

    /// The page of `/rooms` the console wants: the Rooms view's filter and sort, the current
    /// cursor, a screenful of rows.
    pub fn rooms_query(&self) -> PageQuery {
        let ls = &self.lists[View::Rooms.index()];
        PageQuery {
            q: ls.filter.clone(),
            sort: ROOM_SORT_PARAMS[ls.sort.min(ROOM_SORT_PARAMS.len() - 1)].to_owned(),
            cursor: self.rooms_page.cursor(),
            limit: self.page_size.clamp(1, MAX_PAGE) as u32,
        }
    }

    /// The page of `/clients` the console wants.
    pub fn clients_query(&self) -> PageQuery {
        let ls = &self.lists[View::Clients.index()];
        PageQuery {
            q: ls.filter.clone(),
            sort: CLIENT_SORT_PARAMS[ls.sort.min(CLIENT_SORT_PARAMS.len() - 1)].to_owned(),
            cursor: self.clients_page.cursor(),
            limit: self.page_size.clamp(1, MAX_PAGE) as u32,
        }
    }

    /// What the network task should fetch: only the list on screen (none in a drill-down).
    pub fn wanted_lists(&self) -> Lists {
        match self.view {
            View::Rooms if !self.drilled() => Lists {
                rooms: Some(self.rooms_query()),
                clients: None,
            },
            View::Clients if !self.drilled() => Lists {
                rooms: None,
                clients: Some(self.clients_query()),
            },
            _ => Lists::default(),
        }
    }

    fn sync_lists(&mut self) {
        let want = self.wanted_lists();
        if self.sent_lists.as_ref() != Some(&want) {
            self.sent_lists = Some(want.clone());
            self.outbox.push(Command::Lists(want));
        }
    }

    /// The paging of the current view, if it is a server-paged list (and not drilled into).
    fn paging_mut(&mut self) -> Option<&mut Paging> {
        match self.view {
            View::Rooms if !self.drilled() => Some(&mut self.rooms_page),
            View::Clients if !self.drilled() => Some(&mut self.clients_page),
            _ => None,
        }
    }

    /// Whether the rows on screen answer the page the console wants (else it is loading).
    pub fn page_loaded(&self, view: View) -> bool {
        match view {
            View::Rooms => self.rooms_page.shown.as_ref() == Some(&self.rooms_query()),
            View::Clients => self.clients_page.shown.as_ref() == Some(&self.clients_query()),
            _ => true,
        }
    }

    pub fn key_mode(&self) -> KeyMode {
        if self.help {
            return KeyMode::Help;
        }
        match self.mode {
            Mode::Normal => KeyMode::Normal,
            Mode::Filter { .. } | Mode::Prompt { .. } => KeyMode::Text,
            Mode::Confirm { .. } => KeyMode::Confirm,
            Mode::Pick { .. } => KeyMode::Pick,
        }
    }

    pub fn list(&self) -> &ListState {
        &self.lists[self.view.index()]
    }

    fn list_mut(&mut self) -> &mut ListState {
        &mut self.lists[self.view.index()]
    }

    fn set_status(&mut self, text: impl Into<String>, error: bool) {
        self.status = text.into();
        self.status_is_error = error;
    }

    pub fn log(&mut self, text: impl Into<String>) {
        if self.events.len() >= EVENT_LOG_CAP {
            self.events.pop_front();
        }
        self.events.push_back(LogLine {
            time: clock(),
            text: text.into(),
        });
    }

    // ---- rows as shown: filtered by the view's filter, sorted by its sort column ----

    pub fn node_rows(&self) -> Vec<&NodeInfo> {
        let ls = &self.lists[View::Cluster.index()];
        let mut rows: Vec<&NodeInfo> = self
            .cluster
            .nodes
            .iter()
            .filter(|n| matches(&ls.filter, &[&n.name]))
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        match ls.sort {
            1 => rows.sort_by_key(|n| std::cmp::Reverse(n.connections.unwrap_or(0))),
            2 => rows.sort_by_key(|n| std::cmp::Reverse(n.rooms_owned.unwrap_or(0))),
            3 => rows.sort_by(|a, b| {
                b.msgs_in_per_s
                    .unwrap_or(0.0)
                    .total_cmp(&a.msgs_in_per_s.unwrap_or(0.0))
            }),
            _ => {}
        }
        rows
    }

    pub fn room_rows(&self) -> Vec<&RoomInfo> {
        let ls = &self.lists[View::Rooms.index()];
        let mut rows: Vec<&RoomInfo> = self
            .rooms
            .iter()
            .filter(|r| matches(&ls.filter, &[&r.name]))
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        match ls.sort {
            1 => rows.sort_by_key(|r| std::cmp::Reverse(r.members)),
            2 => rows.sort_by(|a, b| b.msgs_per_s.total_cmp(&a.msgs_per_s)),
            3 => rows.sort_by(|a, b| a.owner.cmp(&b.owner)),
            _ => {}
        }
        rows
    }

    pub fn client_rows(&self) -> Vec<&ClientInfo> {
        let ls = &self.lists[View::Clients.index()];
        let mut rows: Vec<&ClientInfo> = self
            .clients
            .iter()
            .filter(|c| matches(&ls.filter, &[&c.id, &c.user]))
            .collect();
        rows.sort_by(|a, b| a.id.cmp(&b.id).then(a.node.cmp(&b.node)));
        match ls.sort {
            1 => rows.sort_by(|a, b| a.user.cmp(&b.user)),
            2 => rows.sort_by(|a, b| a.node.cmp(&b.node)),
            3 => rows.sort_by_key(|c| std::cmp::Reverse(c.msgs_in)),
            4 => rows.sort_by_key(|c| std::cmp::Reverse(c.queue_bytes)),
            _ => {}
        }
        rows
    }

    /// Events, newest first.
    pub fn event_rows(&self) -> Vec<&LogLine> {
        let f = &self.lists[View::Events.index()].filter;
        self.events
            .iter()
            .rev()
            .filter(|l| matches(f, &[&l.text]))
            .collect()
    }

    pub fn sort_names(view: View) -> &'static [&'static str] {
        match view {
            View::Cluster => &NODE_SORTS,
            View::Rooms => &ROOM_SORTS,
            View::Clients => &CLIENT_SORTS,
            View::Events => &EVENT_SORTS,
        }
    }

    fn row_count(&self, view: View) -> usize {
        match view {
            View::Cluster => self.node_rows().len(),
            View::Rooms => self.room_rows().len(),
            View::Clients => self.client_rows().len(),
            View::Events => self.event_rows().len(),
        }
    }

    fn row_key(&self, view: View) -> Option<String> {
        let i = self.lists[view.index()].selected;
        match view {
            View::Cluster => self.node_rows().get(i).map(|n| n.name.clone()),
            View::Rooms => self.room_rows().get(i).map(|r| r.name.clone()),
            View::Clients => self.client_rows().get(i).map(|c| conn_key(c)),
            View::Events => None,
        }
    }

    fn find_key(&self, view: View, key: &str) -> Option<usize> {
        match view {
            View::Cluster => self.node_rows().iter().position(|n| n.name == key),
            View::Rooms => self.room_rows().iter().position(|r| r.name == key),
            View::Clients => self.client_rows().iter().position(|c| conn_key(c) == key),
            View::Events => None,
        }
    }

    fn clamp_selection(&mut self) {
        for v in View::ALL {
            let n = self.row_count(v);
            let ls = &mut self.lists[v.index()];
            ls.selected = ls.selected.min(n.saturating_sub(1));
        }
        let members = self.room_detail_members();
        self.detail_sel = self.detail_sel.min(members.saturating_sub(1));
    }

    fn room_detail_members(&self) -> usize {
        match (&self.drill, &self.detail) {
            (Some(Focus::Room(_)), Some(Detail::Room(r))) => r.members.len(),
            _ => 0,
        }
    }

    /// Whether the current view shows a drill-down instead of its list.
    pub fn drilled(&self) -> bool {
        matches!(
            (self.view, &self.drill),
            (View::Rooms, Some(Focus::Room(_))) | (View::Clients, Some(Focus::Client(_)))
        )
    }

    // ---- targets of the actions ----

    pub fn target_client(&self) -> Option<String> {
        match (self.view, &self.drill) {
            (View::Clients, Some(Focus::Client(id))) => Some(id.clone()),
            (View::Clients, _) => self
                .client_rows()
                .get(self.list().selected)
                .map(|c| c.id.clone()),
            (View::Rooms, Some(Focus::Room(_))) => match &self.detail {
                Some(Detail::Room(r)) => r.members.get(self.detail_sel).map(|m| m.client.clone()),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn target_node(&self) -> Option<String> {
        match self.view {
            View::Cluster => self
                .node_rows()
                .get(self.list().selected)
                .map(|n| n.name.clone()),
            _ => None,
        }
    }

    pub fn target_room(&self) -> Option<String> {
        match (self.view, &self.drill) {
            (View::Rooms, Some(Focus::Room(r))) => Some(r.clone()),
            (View::Rooms, _) => self
                .room_rows()
                .get(self.list().selected)
                .map(|r| r.name.clone()),
            _ => None,
        }
    }

    // ---- update ----

    pub fn update(&mut self, action: Action) {
        match action {
            Action::Quit => self.quit = true,
            Action::ToggleHelp => self.help = !self.help,
            _ if self.help => {}
            _ => match self.mode.clone() {
                Mode::Normal => self.update_normal(action),
                Mode::Filter { input } => self.update_filter(action, input),
                Mode::Prompt { kind, input } => self.update_prompt(action, kind, input),
                Mode::Confirm { op } => self.update_confirm(action, op),
                Mode::Pick {
                    room,
                    options,
                    selected,
                } => self.update_pick(action, room, options, selected),
            },
        }
    }

    fn update_normal(&mut self, action: Action) {
        match action {
            Action::Show(v) => self.view = v,
            Action::NextView => self.view = self.view.next(),
            Action::Up => self.up(),
            Action::Down => self.down(),
            Action::PageUp => self.page_up(),
            Action::PageDown => self.page_down(),
            Action::Open => self.open(),
            Action::Back if self.drilled() => {
                self.drill = None;
                self.detail = None;
                self.detail_sel = 0;
                self.outbox.push(Command::Focus(None));
            }
            Action::OpenFilter => {
                let input = self.list().filter.clone();
                self.mode = Mode::Filter { input };
            }
            Action::CycleSort => {
                let n = Self::sort_names(self.view).len();
                let ls = self.list_mut();
                ls.sort = (ls.sort + 1) % n;
                ls.selected = 0;
                if let Some(p) = self.paging_mut() {
                    p.reset();
                }
                let name = Self::sort_names(self.view)[self.list().sort];
                self.set_status(format!("sorted by {name}"), false);
            }
            Action::Kick => match self.target_client() {
                Some(client) => {
                    self.mode = Mode::Prompt {
                        kind: PromptKind::KickReason { client },
                        input: String::new(),
                    }
                }
                None => self.set_status(
                    "k: select a client (Clients view or a room's members)",
                    true,
                ),
            },
            Action::Throttle => match self.target_client() {
                Some(client) => {
                    self.mode = Mode::Prompt {
                        kind: PromptKind::ThrottleRate { client },
                        input: String::new(),
                    }
                }
                None => self.set_status(
                    "t: select a client (Clients view or a room's members)",
                    true,
                ),
            },
            Action::Unthrottle => match self.target_client() {
                Some(client) => self.send_op(Op::Unthrottle { client }),
                None => self.set_status(
                    "T: select a client (Clients view or a room's members)",
                    true,
                ),
            },
            Action::Attach => {
                self.mode = Mode::Prompt {
                    kind: PromptKind::AttachUrl,
                    input: String::new(),
                };
            }
            Action::Drain => match self.target_node() {
                Some(node) => {
                    self.mode = Mode::Confirm {
                        op: Op::Drain { node },
                    }
                }
                None => self.set_status("d: select a node in the Cluster view (1)", true),
            },
            Action::Undrain => match self.target_node() {
                Some(node) => self.send_op(Op::Undrain { node }),
                None => self.set_status("u: select a node in the Cluster view (1)", true),
            },
            Action::Migrate => match self.target_room() {
                Some(room) => {
                    let owner = self
                        .rooms
                        .iter()
                        .find(|r| r.name == room)
                        .map(|r| r.owner.clone())
                        .unwrap_or_default();
                    let mut options: Vec<String> = self
                        .cluster
                        .nodes
                        .iter()
                        .filter(|n| n.state == "active" && n.name != owner)
                        .map(|n| n.name.clone())
                        .collect();
                    options.sort();
                    if options.is_empty() {
                        self.set_status(format!("m: no other active node to move {room} to"), true);
                    } else {
                        self.mode = Mode::Pick {
                            room,
                            options,
                            selected: 0,
                        };
                    }
                }
                None => self.set_status("m: select a room in the Rooms view (2)", true),
            },
            _ => {}
        }
    }

    fn up(&mut self) {
        if !(self.list().selected == 0 && self.page_back(true)) {
            self.move_by(-1);
        }
    }

    fn down(&mut self) {
        let last = self.row_count(self.view).saturating_sub(1);
        if !(self.list().selected >= last && self.page_forward()) {
            self.move_by(1);
        }
    }

    fn page_up(&mut self) {
        if !self.page_back(false) {
            self.move_by(-(self.page_size.max(1) as isize));
        }
    }

    fn page_down(&mut self) {
        if !self.page_forward() {
            self.move_by(self.page_size.max(1) as isize);
        }
    }

    /// PgDn (or Down on the last row) in a server-paged list: asks for the next page. False
    /// when there is none (the last page, not a paged view, or the page is still loading).
    fn page_forward(&mut self) -> bool {
        let view = self.view;
        let loaded = self.page_loaded(view);
        let rows = match view {
            View::Rooms => self.rooms.len(),
            _ => self.clients.len(),
        } as u64;
        let Some(p) = self.paging_mut() else {
            return false;
        };
        if !loaded {
            // The page asked for last is still coming: stay put rather than skip past it.
            return true;
        }
        let Some(next) = p.next.take() else {
            return false;
        };
        let offset = p.offset() + rows;
        p.stack.push((next, offset));
        p.select_last = false;
        self.list_mut().selected = 0;
        true
    }

    /// PgUp (or Up on the first row, then `select_last`) in a server-paged list: goes back one
    /// page. False on the first page.
    fn page_back(&mut self, select_last: bool) -> bool {
        let Some(p) = self.paging_mut() else {
            return false;
        };
        if p.stack.pop().is_none() {
            return false;
        }
        p.next = None;
        p.select_last = select_last;
        self.list_mut().selected = 0;
        true
    }

    fn move_by(&mut self, delta: isize) {
        if self.drilled() {
            let n = self.room_detail_members();
            self.detail_sel = step(self.detail_sel, delta, n);
            return;
        }
        let n = self.row_count(self.view);
        let ls = self.list_mut();
        ls.selected = step(ls.selected, delta, n);
    }

    fn open(&mut self) {
        let focus = match self.view {
            View::Rooms if !self.drilled() => self.target_room().map(Focus::Room),
            View::Clients if !self.drilled() => self.target_client().map(Focus::Client),
            _ => None,
        };
        if let Some(f) = focus {
            self.drill = Some(f.clone());
            self.detail = None;
            self.detail_sel = 0;
            self.room_rate.clear();
            self.outbox.push(Command::Focus(Some(f)));
        }
    }

    fn update_filter(&mut self, action: Action, mut input: String) {
        match action {
            Action::Input(c) => input.push(c),
            Action::Backspace => {
                input.pop();
            }
            Action::ClearInput => input.clear(),
            Action::Submit => {
                let ls = self.list_mut();
                ls.filter = input.trim().to_owned();
                ls.selected = 0;
                if let Some(p) = self.paging_mut() {
                    p.reset();
                }
                self.mode = Mode::Normal;
                return;
            }
            Action::Cancel => {
                self.mode = Mode::Normal;
                return;
            }
            _ => return,
        }
        self.mode = Mode::Filter { input };
    }

    fn update_prompt(&mut self, action: Action, kind: PromptKind, mut input: String) {
        match action {
            Action::Input(c) => input.push(c),
            Action::Backspace => {
                input.pop();
            }
            Action::ClearInput => input.clear(),
            Action::Cancel => {
                self.mode = Mode::Normal;
                self.set_status("cancelled", false);
                return;
            }
            Action::Submit => {
                self.submit_prompt(kind, input);
                return;
            }
            _ => return,
        }
        self.mode = Mode::Prompt { kind, input };
    }

    fn submit_prompt(&mut self, kind: PromptKind, input: String) {
        let text = input.trim();
        match kind {
            PromptKind::AttachUrl => {
                if text.is_empty() {
                    self.mode = Mode::Normal;
                    return;
                }
                let url = if text.starts_with("http://") || text.starts_with("https://") {
                    text.trim_end_matches('/').to_owned()
                } else {
                    format!("http://{}", text.trim_end_matches('/'))
                };
                self.log(format!("attaching to {url}"));
                self.set_status(format!("attaching to {url}"), false);
                self.outbox.push(Command::Attach(url));
                self.mode = Mode::Normal;
            }
            PromptKind::KickReason { client } => {
                let reason = if text.is_empty() {
                    "kicked by operator".to_owned()
                } else {
                    text.to_owned()
                };
                if reason.len() > MAX_REASON {
                    self.set_status(
                        format!("the reason may be at most {MAX_REASON} bytes"),
                        true,
                    );
                    self.mode = Mode::Prompt {
                        kind: PromptKind::KickReason { client },
                        input,
                    };
                    return;
                }
                self.mode = Mode::Confirm {
                    op: Op::Kick { client, reason },
                };
            }
            PromptKind::ThrottleRate { client } => match text.parse::<u32>() {
                Ok(rate) if rate > 0 => {
                    self.mode = Mode::Prompt {
                        kind: PromptKind::ThrottleBurst { client, rate },
                        input: String::new(),
                    };
                }
                _ => {
                    self.set_status("msgs/s must be a whole number above 0", true);
                    self.mode = Mode::Prompt {
                        kind: PromptKind::ThrottleRate { client },
                        input,
                    };
                }
            },
            PromptKind::ThrottleBurst { client, rate } => match text.parse::<u32>() {
                Ok(burst) if burst > 0 => {
                    self.mode = Mode::Confirm {
                        op: Op::Throttle {
                            client,
                            msgs_per_sec: rate,
                            burst,
                        },
                    };
                }
                _ => {
                    self.set_status("burst must be a whole number above 0", true);
                    self.mode = Mode::Prompt {
                        kind: PromptKind::ThrottleBurst { client, rate },
                        input,
                    };
                }
            },
        }
    }

    fn update_confirm(&mut self, action: Action, op: Op) {
        match action {
            Action::Confirm => {
                self.mode = Mode::Normal;
                self.send_op(op);
            }
            Action::Cancel => {
                self.mode = Mode::Normal;
                self.set_status(format!("cancelled: {}", op.describe()), false);
            }
            _ => {}
        }
    }

    fn update_pick(&mut self, action: Action, room: String, options: Vec<String>, selected: usize) {
        match action {
            Action::Up | Action::Down => {
                let delta = if action == Action::Up { -1 } else { 1 };
                let selected = step(selected, delta, options.len());
                self.mode = Mode::Pick {
                    room,
                    options,
                    selected,
                };
            }
            Action::Submit => match options.get(selected) {
                Some(to) => {
                    self.mode = Mode::Confirm {
                        op: Op::Migrate {
                            room,
                            to: to.clone(),
                        },
                    }
                }
                None => self.mode = Mode::Normal,
            },
            Action::Cancel => {
                self.mode = Mode::Normal;
                self.set_status("cancelled", false);
            }
            _ => {}
        }
    }

    fn send_op(&mut self, op: Op) {
        let what = op.describe();
        self.set_status(format!("{what} …"), false);
        self.log(format!("action: {what}"));
        self.outbox.push(Command::Op(op));
    }

    // ---- network news ----

    pub fn on_net(&mut self, ev: NetEvent) {
        match ev {
            NetEvent::Snapshot(s) => self.apply_snapshot(*s),
            NetEvent::Attached(url) => {
                self.node_url = url.clone();
                self.log(format!("attached to {url}"));
                self.set_status(format!("attached to {url}"), false);
            }
            NetEvent::Unreachable { url, error, next } => {
                let text = match &next {
                    Some(n) => format!("{url} is not answering ({error}); switching to {n}"),
                    None => {
                        format!("{url} is not answering ({error}); no other known node, retrying")
                    }
                };
                if let Some(n) = next {
                    self.node_url = n;
                }
                if self.last_poll_error.as_deref() != Some(text.as_str()) {
                    self.log(text.clone());
                    self.last_poll_error = Some(text.clone());
                }
                self.set_status(text, true);
            }
            NetEvent::ServerEvent(line) => self.log(line),
            NetEvent::PollError(e) => {
                if self.last_poll_error.as_deref() != Some(e.as_str()) {
                    self.log(format!("poll failed: {e}"));
                    self.last_poll_error = Some(e.clone());
                }
                self.set_status(e, true);
            }
            NetEvent::OpResult { what, result } => {
                match result {
                    Ok(body) => {
                        self.log(format!("ok: {what}: {body}"));
                        self.set_status(format!("ok: {what}: {body}"), false);
                    }
                    Err(e) => {
                        self.log(format!("FAILED: {what}: {e}"));
                        self.set_status(format!("FAILED: {what}: {e}"), true);
                    }
                }
                self.outbox.push(Command::Refresh);
            }
        }
    }

    pub fn apply_snapshot(&mut self, mut s: Snapshot) {
        let mut keys: Vec<Option<String>> = View::ALL.iter().map(|v| self.row_key(*v)).collect();
        // A page that answers an older request (another filter, sort or page) is dropped.
        let rooms = s.rooms.take().filter(|r| r.query == self.rooms_query());
        let clients = s.clients.take().filter(|c| c.query == self.clients_query());
        // The selection follows its row through a refresh of the same page; a new page (other
        // filter, sort or cursor) keeps the row the action chose (the first, or the last).
        if rooms
            .as_ref()
            .is_some_and(|r| self.rooms_page.shown.as_ref() != Some(&r.query))
        {
            keys[View::Rooms.index()] = None;
        }
        if clients
            .as_ref()
            .is_some_and(|c| self.clients_page.shown.as_ref() != Some(&c.query))
        {
            keys[View::Clients.index()] = None;
        }
        if self.have_snapshot {
            self.diff_into_log(&s, rooms.as_ref());
        } else {
            let sum = |f: fn(&NodeInfo) -> Option<u64>| -> u64 {
                s.cluster.nodes.iter().filter_map(f).sum()
            };
            self.log(format!(
                "first answer from {}: {} nodes, {} rooms, {} connections",
                s.node_url,
                s.cluster.nodes.len(),
                sum(|n| n.rooms_owned),
                sum(|n| n.connections),
            ));
        }
        self.have_snapshot = true;
        let sample = s.taken_ms == 0 || s.taken_ms >= self.last_sample_ms + SAMPLE_GAP_MS;
        if sample {
            self.record_rates(&s);
        }
        self.node_url = s.node_url;
        self.cluster = s.cluster;
        if let Some(r) = rooms {
            self.rooms_total = r.total;
            self.rooms_missing = r.missing;
            self.rooms = r.rooms;
            self.rooms_page.next = r.next_cursor;
            self.rooms_page.shown = Some(r.query);
            if std::mem::take(&mut self.rooms_page.select_last) {
                self.lists[View::Rooms.index()].selected = self.rooms.len().saturating_sub(1);
            }
            if self.rooms.is_empty() {
                // The rows of this page went away: show the page before it.
                self.rooms_page.stack.pop();
            }
        }
        if let Some(c) = clients {
            self.client_rates_from(&c.clients, s.taken_ms);
            self.clients_total = c.total;
            self.clients_missing = c.missing;
            self.clients = c.clients;
            self.clients_page.next = c.next_cursor;
            self.clients_page.shown = Some(c.query);
            if std::mem::take(&mut self.clients_page.select_last) {
                self.lists[View::Clients.index()].selected = self.clients.len().saturating_sub(1);
            }
            if self.clients.is_empty() {
                self.clients_page.stack.pop();
            }
        }
        // A late answer for a drill-down that was closed meanwhile is dropped.
        self.detail = match (&self.drill, s.detail) {
            (Some(Focus::Room(r)), Some(Detail::Room(d))) if &d.name == r => Some(Detail::Room(d)),
            (Some(Focus::Client(c)), Some(Detail::Client(d))) if &d.id == c => {
                Some(Detail::Client(d))
            }
            (Some(_), _) => self.detail.take().filter(|_| s.errors.is_empty()),
            (None, _) => None,
        };
        if let (true, Some(Detail::Room(d))) = (sample, &self.detail) {
            if self.room_rate.len() >= RATE_HISTORY {
                self.room_rate.pop_front();
            }
            self.room_rate
                .push_back(d.msgs_per_s.max(0.0).round() as u64);
        }
        for (v, key) in View::ALL.iter().zip(keys) {
            if let Some(i) = key.and_then(|k| self.find_key(*v, &k)) {
                self.lists[v.index()].selected = i;
            }
        }
        self.clamp_selection();
        if let Some(e) = s.errors.first() {
            // Said once, so that it does not hide the results of later actions.
            if self.last_poll_error.as_deref() != Some(e.as_str()) {
                self.log(format!("poll: {e}"));
                self.last_poll_error = Some(e.clone());
                self.set_status(e.clone(), true);
            }
        } else if self.last_poll_error.take().is_some() {
            self.set_status(format!("attached to {}", self.node_url), false);
        }
    }

    /// Per-connection msgs/s from the counters of this page and the last one: a connection
    /// seen at least half a second ago gets a new rate; connections no longer on the page are
    /// forgotten.
    fn client_rates_from(&mut self, clients: &[ClientInfo], at_ms: u64) {
        let mut counts = HashMap::with_capacity(clients.len());
        let mut rates = HashMap::with_capacity(clients.len());
        for c in clients {
            let key = conn_key(c);
            let mut now = (c.msgs_in, c.msgs_out, at_ms);
            match self.client_counts.get(&key) {
                Some(&(i, o, t)) if at_ms >= t + 500 => {
                    let secs = (at_ms - t) as f64 / 1000.0;
                    let per_s = |new: u64, old: u64| new.saturating_sub(old) as f64 / secs;
                    rates.insert(key.clone(), (per_s(c.msgs_in, i), per_s(c.msgs_out, o)));
                }
                Some(&prev) => {
                    // Too soon after the last sample to say much: keep that one.
                    now = prev;
                    if let Some(r) = self.client_rates.get(&key) {
                        rates.insert(key.clone(), *r);
                    }
                }
                None => {}
            }
            counts.insert(key, now);
        }
        self.client_counts = counts;
        self.client_rates = rates;
    }

    /// One sample of every node's msgs/s, at most about one a second; nodes that left the list
    /// lose their history.
    fn record_rates(&mut self, s: &Snapshot) {
        self.last_sample_ms = s.taken_ms;
        let names: BTreeSet<&str> = s.cluster.nodes.iter().map(|n| n.name.as_str()).collect();
        self.rates.retain(|k, _| names.contains(k.as_str()));
        let whole = |r: Option<f64>| r.map_or(0, |v| v.max(0.0).round() as u64);
        for n in &s.cluster.nodes {
            self.rates
                .entry(n.name.clone())
                .or_default()
                .push(whole(n.msgs_in_per_s), whole(n.msgs_out_per_s));
        }
    }

    fn diff_into_log(&mut self, s: &Snapshot, rooms: Option<&RoomsResp>) {
        let old: BTreeMap<&str, &NodeInfo> = self
            .cluster
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n))
            .collect();
        let mut lines = Vec::new();
        for n in &s.cluster.nodes {
            match old.get(n.name.as_str()) {
                None => lines.push(format!("node {} appeared ({})", n.name, n.state)),
                Some(o) if o.state != n.state => {
                    lines.push(format!("node {}: {} -> {}", n.name, o.state, n.state))
                }
                Some(o) if o.incarnation.is_some() && o.incarnation != n.incarnation => {
                    lines.push(format!("node {} restarted", n.name))
                }
                _ => {}
            }
        }
        let new_names: BTreeSet<&str> = s.cluster.nodes.iter().map(|n| n.name.as_str()).collect();
        for name in old.keys().filter(|k| !new_names.contains(*k)) {
            lines.push(format!("node {name} left the list"));
        }
        // Rooms are compared only when both answers hold the whole unfiltered list (one page):
        // a room leaving a page is not a room leaving the cluster.
        let whole = |q: &PageQuery, next: &Option<String>| {
            q.q.is_empty() && q.cursor.is_none() && next.is_none()
        };
        let comparable = rooms.filter(|r| {
            whole(&r.query, &r.next_cursor)
                && self.rooms_page.shown.as_ref() == Some(&r.query)
                && self.rooms_page.next.is_none()
        });
        if let Some(r) = comparable {
            let old: BTreeMap<&str, &str> = self
                .rooms
                .iter()
                .map(|r| (r.name.as_str(), r.owner.as_str()))
                .collect();
            let new: BTreeMap<&str, &str> = r
                .rooms
                .iter()
                .map(|r| (r.name.as_str(), r.owner.as_str()))
                .collect();
            for (name, owner) in &new {
                match old.get(name) {
                    None => lines.push(format!("room {name} appeared on {owner}")),
                    Some(o) if o != owner => {
                        lines.push(format!("room {name} moved {o} -> {owner}"))
                    }
                    _ => {}
                }
            }
            for name in old.keys().filter(|k| !new.contains_key(*k)) {
                lines.push(format!("room {name} disappeared"));
            }
        }
        for l in lines {
            self.log(l);
        }
    }
}

/// One connection: `client@node#conn`.
pub fn conn_key(c: &ClientInfo) -> String {
    format!("{}@{}#{}", c.id, c.node, c.conn)
}

/// Case-insensitive substring match; an empty filter matches everything.
fn matches(filter: &str, fields: &[&str]) -> bool {
    if filter.is_empty() {
        return true;
    }
    let f = filter.to_lowercase();
    fields.iter().any(|s| s.to_lowercase().contains(&f))
}

fn step(cur: usize, delta: isize, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let max = (len - 1) as isize;
    (cur as isize + delta).clamp(0, max) as usize
}

/// `HH:MM:SS` (UTC) for the event log.
fn clock() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let d = secs % 86_400;
    format!("{:02}:{:02}:{:02}", d / 3600, d / 60 % 60, d % 60)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::{ClientsResp, RoomsResp};
    use crate::ui::tests::fixture;

    /// The commands since the last call, less the page requests.
    fn actions(app: &mut App) -> Vec<Command> {
        app.take_commands()
            .into_iter()
            .filter(|c| !matches!(c, Command::Lists(_)))
            .collect()
    }

    fn type_str(app: &mut App, s: &str) {
        for c in s.chars() {
            app.update(Action::Input(c));
        }
    }

    #[test]
    fn lists_open_with_first_row_selected_and_nodes_by_name() {
        let app = fixture();
        assert_eq!(app.list().selected, 0);
        let names: Vec<&str> = app.node_rows().iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["node-a", "node-b", "node-c"]);
        assert_eq!(app.target_node().as_deref(), Some("node-a"));
    }

    #[test]
    fn selection_moves_and_clamps() {
        let mut app = fixture();
        app.update(Action::Up);
        assert_eq!(app.list().selected, 0);
        app.update(Action::Down);
        app.update(Action::Down);
        app.update(Action::Down);
        assert_eq!(app.list().selected, 2);
        app.update(Action::PageUp);
        assert_eq!(app.list().selected, 0);
        app.update(Action::PageDown);
        assert_eq!(app.list().selected, 2);
    }

    #[test]
    fn filters_are_per_view() {
        let mut app = fixture();
        app.update(Action::Show(View::Clients));
        app.update(Action::OpenFilter);
        assert_eq!(app.key_mode(), KeyMode::Text);
        type_str(&mut app, "xx");
        app.update(Action::ClearInput);
        type_str(&mut app, "u-7");
        // Not applied until Enter.
        assert_eq!(app.client_rows().len(), 2);
        app.update(Action::Submit);
        assert_eq!(app.client_rows().len(), 1);
        assert_eq!(app.target_client().as_deref(), Some("c_1aBcDeFgHiJkLmNo"));
        // Other views keep their rows.
        app.update(Action::Show(View::Rooms));
        assert_eq!(app.room_rows().len(), 2);
        // Empty filter shows all.
        app.update(Action::Show(View::Clients));
        app.update(Action::OpenFilter);
        app.update(Action::ClearInput);
        app.update(Action::Submit);
        assert_eq!(app.client_rows().len(), 2);
    }

    #[test]
    fn esc_leaves_drill_down_but_not_top_level() {
        let mut app = fixture();
        app.update(Action::Back);
        assert_eq!(app.view, View::Cluster);
        assert!(actions(&mut app).is_empty());
        app.update(Action::Show(View::Clients));
        app.update(Action::Open);
        assert!(app.drilled());
        assert_eq!(
            actions(&mut app),
            vec![Command::Focus(Some(Focus::Client(
                "c_1aBcDeFgHiJkLmNo".into()
            )))]
        );
        app.update(Action::Back);
        assert!(!app.drilled());
        assert_eq!(actions(&mut app), vec![Command::Focus(None)]);
    }

    #[test]
    fn kick_flow() {
        let mut app = fixture();
        app.update(Action::Show(View::Clients));
        app.update(Action::Down);
        app.update(Action::Kick);
        type_str(&mut app, "spam");
        app.update(Action::Submit);
        assert_eq!(app.key_mode(), KeyMode::Confirm);
        assert!(actions(&mut app).is_empty());
        app.update(Action::Confirm);
        assert_eq!(
            actions(&mut app),
            vec![Command::Op(Op::Kick {
                client: "c_7HqK2mX9pL4vR1sT".into(),
                reason: "spam".into()
            })]
        );
        assert_eq!(app.mode, Mode::Normal);
        app.on_net(NetEvent::OpResult {
            what: "kick c_7HqK2mX9pL4vR1sT (spam)".into(),
            result: Err("404 not_found: no such client".into()),
        });
        assert!(app.status.contains("404 not_found"));
        assert!(app.status_is_error);
    }

    #[test]
    fn kick_can_be_cancelled() {
        let mut app = fixture();
        app.update(Action::Show(View::Clients));
        app.update(Action::Kick);
        app.update(Action::Cancel);
        assert_eq!(app.mode, Mode::Normal);
        app.update(Action::Kick);
        app.update(Action::Submit);
        app.update(Action::Cancel);
        assert!(actions(&mut app).is_empty());
    }

    #[test]
    fn throttle_flow_validates_numbers() {
        let mut app = fixture();
        app.update(Action::Show(View::Clients));
        app.update(Action::Throttle);
        type_str(&mut app, "abc");
        app.update(Action::Submit);
        assert!(app.status_is_error);
        assert_eq!(app.key_mode(), KeyMode::Text);
        app.update(Action::ClearInput);
        type_str(&mut app, "5");
        app.update(Action::Submit);
        type_str(&mut app, "10");
        app.update(Action::Submit);
        assert_eq!(app.key_mode(), KeyMode::Confirm);
        app.update(Action::Confirm);
        assert_eq!(
            actions(&mut app),
            vec![Command::Op(Op::Throttle {
                client: "c_1aBcDeFgHiJkLmNo".into(),
                msgs_per_sec: 5,
                burst: 10
            })]
        );
    }

    #[test]
    fn drain_confirm_and_migrate_pick() {
        let mut app = fixture();
        app.update(Action::Drain);
        app.update(Action::Confirm);
        assert_eq!(
            actions(&mut app),
            vec![Command::Op(Op::Drain {
                node: "node-a".into()
            })]
        );
        app.update(Action::Show(View::Rooms));
        // board:7 (owner node-a) is first by name; only active nodes other than the owner.
        app.update(Action::Migrate);
        match &app.mode {
            Mode::Pick { options, .. } => assert_eq!(options, &["node-c".to_owned()]),
            m => panic!("{m:?}"),
        }
        app.update(Action::Submit);
        app.update(Action::Confirm);
        assert_eq!(
            actions(&mut app),
            vec![Command::Op(Op::Migrate {
                room: "board:7".into(),
                to: "node-c".into()
            })]
        );
    }

    #[test]
    fn snapshot_diffs_land_in_the_event_log() {
        let mut app = fixture();
        let mut s = Snapshot {
            node_url: "http://127.0.0.1:9701".into(),
            cluster: app.cluster.clone(),
            ..Default::default()
        };
        s.cluster.nodes[0].state = "drained".into();
        s.rooms = Some(RoomsResp {
            rooms: vec![app.rooms[0].clone()],
            total: 1,
            query: app.rooms_query(),
            ..Default::default()
        });
        app.on_net(NetEvent::Snapshot(Box::new(s)));
        let log: Vec<&str> = app.events.iter().map(|l| l.text.as_str()).collect();
        assert!(log.contains(&"node node-b: draining -> drained"), "{log:?}");
        assert!(log.contains(&"room board:7 disappeared"), "{log:?}");
    }

    #[test]
    fn each_view_keeps_its_sort() {
        let mut app = fixture();
        app.update(Action::Show(View::Rooms));
        app.update(Action::CycleSort);
        assert_eq!(app.room_rows()[0].name, "chat:lobby");
        assert_eq!(app.lists[View::Cluster.index()].sort, 0);
    }

    #[test]
    fn colon_prompts_for_a_node_and_sends_an_attach() {
        let mut app = App::new("http://127.0.0.1:9100");
        app.update(Action::Attach);
        assert!(matches!(
            app.mode,
            Mode::Prompt {
                kind: PromptKind::AttachUrl,
                ..
            }
        ));
        for c in "127.0.0.1:9102".chars() {
            app.update(Action::Input(c));
        }
        app.update(Action::Submit);
        assert_eq!(app.mode, Mode::Normal);
        assert!(app
            .outbox
            .iter()
            .any(|c| matches!(c, Command::Attach(u) if u == "http://127.0.0.1:9102")));
    }

    /// A page of `n` clients `c_{first}…` answering `query`, with `next` as its next cursor.
    fn client_page(query: PageQuery, first: usize, n: usize, next: Option<&str>) -> Snapshot {
        let clients = (first..first + n)
            .map(|i| ClientInfo {
                id: format!("c_{i:05}"),
                user: format!("u-{i}"),
                node: "node-a".into(),
                ..Default::default()
            })
            .collect();
        Snapshot {
            node_url: "http://127.0.0.1:9701".into(),
            clients: Some(ClientsResp {
                clients,
                total: 100_000,
                next_cursor: next.map(str::to_owned),
                query,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn lists(app: &mut App) -> Vec<Lists> {
        app.take_commands()
            .into_iter()
            .filter_map(|c| match c {
                Command::Lists(l) => Some(l),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn only_the_list_on_screen_is_fetched_a_screenful_at_a_time() {
        let mut app = App::new("http://127.0.0.1:9100");
        app.set_page_size(18);
        assert_eq!(lists(&mut app), vec![Lists::default()]);
        app.update(Action::Show(View::Clients));
        let want = PageQuery {
            q: String::new(),
            sort: "id".into(),
            cursor: None,
            limit: 18,
        };
        assert_eq!(
            lists(&mut app),
            vec![Lists {
                rooms: None,
                clients: Some(want.clone())
            }]
        );
        assert_eq!(want.query_string(), "?limit=18&sort=id");
        // Nothing changed: nothing is sent again.
        app.update(Action::Down);
        assert!(lists(&mut app).is_empty());
        app.update(Action::Show(View::Rooms));
        assert_eq!(
            lists(&mut app)[0].rooms.as_ref().map(|q| q.sort.as_str()),
            Some("name")
        );
        // A taller terminal asks for longer pages.
        app.set_page_size(40);
        assert_eq!(lists(&mut app)[0].rooms.as_ref().map(|q| q.limit), Some(40));
    }

    #[test]
    fn filter_and_sort_go_to_the_api_and_restart_paging() {
        let mut app = App::new("http://127.0.0.1:9100");
        app.set_page_size(10);
        app.update(Action::Show(View::Clients));
        app.apply_snapshot(client_page(app.clients_query(), 0, 10, Some("k10")));
        app.update(Action::PageDown);
        assert_eq!(app.clients_query().cursor.as_deref(), Some("k10"));
        app.update(Action::OpenFilter);
        type_str(&mut app, "u-4 2&");
        app.update(Action::Submit);
        let q = lists(&mut app).pop().unwrap().clients.unwrap();
        assert_eq!((q.q.as_str(), q.cursor.as_deref()), ("u-4 2&", None));
        assert_eq!(q.query_string(), "?limit=10&sort=id&q=u-4%202%26");
        app.update(Action::CycleSort);
        app.update(Action::CycleSort);
        app.update(Action::CycleSort);
        let q = lists(&mut app).pop().unwrap().clients.unwrap();
        assert_eq!(q.sort, "msgs_in");
        // The Rooms view kept its own filter and sort.
        assert_eq!(app.rooms_query().q, "");
        assert_eq!(app.rooms_query().sort, "name");
    }

    #[test]
    fn pages_forward_and_back_with_cursors() {
        let mut app = App::new("http://127.0.0.1:9100");
        app.set_page_size(10);
        app.update(Action::Show(View::Clients));
        let first = app.clients_query();
        app.apply_snapshot(client_page(first.clone(), 0, 10, Some("k09")));
        assert!(app.page_loaded(View::Clients));
        assert_eq!(app.client_rows()[0].id, "c_00000");
        app.update(Action::PageDown);
        assert_eq!(app.list().selected, 0);
        let second = app.clients_query();
        assert_eq!(second.cursor.as_deref(), Some("k09"));
        assert!(!app.page_loaded(View::Clients));
        // Still loading: another PgDn waits instead of skipping ahead.
        app.update(Action::PageDown);
        assert_eq!(app.clients_query(), second);
        // A late answer for the first page is not shown as the second.
        app.apply_snapshot(client_page(first.clone(), 0, 10, Some("k09")));
        assert!(!app.page_loaded(View::Clients));
        app.apply_snapshot(client_page(second.clone(), 10, 10, Some("k19")));
        assert_eq!(app.client_rows()[0].id, "c_00010");
        assert_eq!(app.clients_page.offset(), 10);
        // Up on the first row goes to the previous page, selecting its last row.
        app.update(Action::Up);
        assert_eq!(app.clients_query(), first);
        app.apply_snapshot(client_page(first.clone(), 0, 10, Some("k09")));
        assert_eq!(app.list().selected, 9);
        // Down on the last row goes forward again.
        app.update(Action::Down);
        assert_eq!(app.clients_query(), second);
        app.apply_snapshot(client_page(second, 10, 3, None));
        // The last page: PgDn moves to its last row; PgUp goes back to the first page.
        app.update(Action::PageDown);
        assert_eq!(app.list().selected, 2);
        app.update(Action::PageUp);
        assert_eq!(app.clients_query(), first);
        app.update(Action::PageUp);
        assert_eq!(app.clients_query(), first);
        // A page whose rows all went away gives way to the one before it.
        app.apply_snapshot(client_page(first, 0, 10, Some("k09")));
        app.update(Action::PageDown);
        app.apply_snapshot(client_page(app.clients_query(), 10, 0, None));
        assert_eq!(app.clients_query().cursor, None);
    }

    #[test]
    fn rate_history_takes_a_sample_a_second_and_forgets_departed_nodes() {
        let mut app = fixture();
        assert_eq!(app.rates["node-a"].ins, [3]);
        let mut s = Snapshot {
            node_url: app.node_url.clone(),
            cluster: app.cluster.clone(),
            taken_ms: 10_000,
            ..Default::default()
        };
        s.cluster.nodes[1].msgs_in_per_s = Some(7.4);
        app.apply_snapshot(s.clone());
        // A poll right after an action adds nothing.
        s.taken_ms = 10_300;
        app.apply_snapshot(s.clone());
        assert_eq!(app.rates["node-a"].ins, [3, 7]);
        assert_eq!(app.rates["node-a"].outs, [6, 6]);
        s.cluster.nodes.retain(|n| n.name != "node-c");
        for i in 0..RATE_HISTORY as u64 + 5 {
            s.taken_ms = 11_000 + i * 1000;
            app.apply_snapshot(s.clone());
        }
        assert_eq!(app.rates["node-a"].ins.len(), RATE_HISTORY);
        assert!(!app.rates.contains_key("node-c"));
    }

    #[test]
    fn client_rates_come_from_the_counters_of_two_polls() {
        let mut app = App::new("http://127.0.0.1:9100");
        app.update(Action::Show(View::Clients));
        let mut page = client_page(app.clients_query(), 0, 2, None);
        page.taken_ms = 50_000;
        app.apply_snapshot(page.clone());
        assert!(app.client_rates.is_empty(), "one poll says nothing yet");
        let clients = &mut page.clients.as_mut().unwrap().clients;
        clients[0].msgs_in = 30;
        clients[0].msgs_out = 3;
        page.taken_ms = 52_000;
        app.apply_snapshot(page.clone());
        let key = conn_key(&app.clients[0]);
        assert_eq!(app.client_rates[&key], (15.0, 1.5));
        // A poll right after (an action's refresh) keeps the rate rather than divide by ~0.
        page.taken_ms = 52_100;
        app.apply_snapshot(page);
        assert_eq!(app.client_rates[&key], (15.0, 1.5));
        assert_eq!(app.client_rates.len(), 2);
    }

    #[test]
    fn a_new_sort_selects_the_first_row_of_its_answer() {
        let mut app = fixture();
        app.update(Action::Show(View::Rooms));
        app.update(Action::CycleSort);
        // Sorted here at once: chat:lobby (17 members) first, selected.
        assert_eq!(app.target_room().as_deref(), Some("chat:lobby"));
        // The API's answer puts another room first: the selection stays on the first row.
        let room = |name: &str| app.rooms.iter().find(|r| r.name == name).unwrap().clone();
        let (mut board, lobby) = (room("board:7"), room("chat:lobby"));
        board.members = 99;
        let answer = Snapshot {
            node_url: app.node_url.clone(),
            cluster: app.cluster.clone(),
            rooms: Some(RoomsResp {
                rooms: vec![board, lobby],
                total: 2,
                query: app.rooms_query(),
                ..Default::default()
            }),
            ..Default::default()
        };
        app.apply_snapshot(answer.clone());
        assert_eq!(app.target_room().as_deref(), Some("board:7"));
        // A refresh of the same page keeps the selected row, wherever it moved.
        app.update(Action::Down);
        app.apply_snapshot(answer);
        assert_eq!(app.target_room().as_deref(), Some("chat:lobby"));
    }
}
