//! The console's navigation, prompts and outbox: which view is on screen, the prompt, confirm
//! or pick in progress, the status line, and the requests for the network task (the outbox the
//! UI loop forwards). No drawing and no I/O.
//!
//! The views own their state (`crate::views`): the App hands a view the moves and drill-downs
//! meant for it, a poll's answers to the views they belong to, and turns what a view asks for
//! (a drill-down to fetch, the page on screen) into `Command`s. Every change of view, filter,
//! sort, page or page size becomes a `Command::Lists` naming only the list on screen, and every
//! change of the open drill-down (a room's pane or its page) a `Command::Focus`.

use crate::action::{Action, View};
use crate::client::{Command, Focus, Op};
use crate::event::NetEvent;
use crate::keymap::KeyMode;
use crate::model::{Detail, Lists, Snapshot};
use crate::views::{
    describe, ClientsView, ClusterView, Component, EventsView, ListState, Outcome, RoomsView,
};
use protocol::admin::{RawJson, DEFAULT_KICK_REASON, MAX_PAGE, MAX_REASON_BYTES};
use protocol::room::RoomName;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptKind {
    AttachUrl,
    KickReason {
        client: String,
    },
    ThrottleRate {
        client: String,
    },
    ThrottleBurst {
        client: String,
        rate: u32,
    },
    /// The message to publish into `room` (JSON, or text sent as a JSON string).
    PublishData {
        room: String,
    },
    /// The room `client` is to join.
    JoinRoom {
        client: String,
    },
    /// The room `client` is to leave.
    LeaveRoom {
        client: String,
    },
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

#[derive(Debug)]
pub struct App {
    pub view: View,
    pub node_url: String,
    pub cluster: ClusterView,
    pub rooms: RoomsView,
    pub clients: ClientsView,
    pub events: EventsView,
    pub mode: Mode,
    pub help: bool,
    pub status: String,
    pub status_is_error: bool,
    /// Rows a PgUp/PgDn moves and a page holds; the UI loop sets it from the terminal height.
    pub page_size: usize,
    pub quit: bool,
    /// Whether any snapshot arrived yet (the first one is not diffed into the event log).
    have_snapshot: bool,
    outbox: Vec<Command>,
    last_poll_error: Option<String>,
    /// The last `Command::Lists` sent.
    sent_lists: Option<Lists>,
    /// The last `Command::Focus` sent.
    sent_focus: Option<Focus>,
}

impl App {
    pub fn new(node_url: &str) -> Self {
        let mut app = App {
            view: View::Cluster,
            node_url: node_url.to_owned(),
            cluster: ClusterView::default(),
            rooms: RoomsView::default(),
            clients: ClientsView::default(),
            events: EventsView::default(),
            mode: Mode::Normal,
            help: false,
            status: format!("connecting to {node_url} …"),
            status_is_error: false,
            page_size: 10,
            quit: false,
            have_snapshot: false,
            outbox: Vec::new(),
            last_poll_error: None,
            sent_lists: None,
            sent_focus: None,
        };
        app.set_page_size(10);
        app
    }

    /// Requests for the network task since the last call (including the pages to fetch, when
    /// they changed).
    pub fn take_commands(&mut self) -> Vec<Command> {
        self.sync_lists();
        self.sync_focus();
        std::mem::take(&mut self.outbox)
    }

    /// The drill-down the network task should fetch: the open room (its pane's page) or client.
    pub fn wanted_focus(&self) -> Option<Focus> {
        self.rooms.focus().or_else(|| self.clients.focus())
    }

    fn sync_focus(&mut self) {
        let want = self.wanted_focus();
        if self.sent_focus != want {
            self.sent_focus.clone_from(&want);
            self.outbox.push(Command::Focus(want));
        }
    }

    /// Rows per page of the server-paged lists; the UI loop sets it from the terminal height.
    pub fn set_page_size(&mut self, rows: usize) {
        let rows = rows.clamp(1, MAX_PAGE);
        self.page_size = rows;
        for v in View::ALL {
            self.component_mut(v).set_page_size(rows);
        }
    }

    /// What the network task should fetch: only the list on screen (none in a drill-down).
    pub fn wanted_lists(&self) -> Lists {
        match self.view {
            View::Rooms => Lists {
                rooms: self.rooms.wanted(),
                clients: None,
            },
            View::Clients => Lists {
                rooms: None,
                clients: self.clients.wanted(),
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

    /// A view's state.
    pub fn component(&self, view: View) -> &dyn Component {
        match view {
            View::Cluster => &self.cluster,
            View::Rooms => &self.rooms,
            View::Clients => &self.clients,
            View::Events => &self.events,
        }
    }

    fn component_mut(&mut self, view: View) -> &mut dyn Component {
        match view {
            View::Cluster => &mut self.cluster,
            View::Rooms => &mut self.rooms,
            View::Clients => &mut self.clients,
            View::Events => &mut self.events,
        }
    }

    /// The view on screen.
    pub fn current(&self) -> &dyn Component {
        self.component(self.view)
    }

    /// The list of the view on screen.
    pub fn list(&self) -> &ListState {
        self.current().list()
    }

    fn set_status(&mut self, text: impl Into<String>, error: bool) {
        self.status = text.into();
        self.status_is_error = error;
    }

    pub fn log(&mut self, text: impl Into<String>) {
        self.events.push(text);
    }

    /// Whether the view on screen shows a drill-down instead of its list.
    #[cfg(test)]
    pub fn drilled(&self) -> bool {
        match self.view {
            View::Rooms => self.rooms.drill.is_some(),
            View::Clients => self.clients.drill.is_some(),
            _ => false,
        }
    }

    // ---- targets of the actions ----

    pub fn target_client(&self) -> Option<String> {
        self.current().target_client()
    }

    pub fn target_node(&self) -> Option<String> {
        match self.view {
            View::Cluster => self.cluster.selected(),
            _ => None,
        }
    }

    pub fn target_room(&self) -> Option<String> {
        match self.view {
            View::Rooms => self.rooms.target_room(),
            _ => None,
        }
    }

    /// The room open in the Rooms view, if the view on screen is it.
    fn open_room(&self) -> Option<String> {
        match self.view {
            View::Rooms => self.rooms.drill.as_ref().map(|d| d.name.clone()),
            _ => None,
        }
    }

    fn prompt(&mut self, kind: PromptKind, input: String) {
        self.mode = Mode::Prompt { kind, input };
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
            Action::Up
            | Action::Down
            | Action::PageUp
            | Action::PageDown
            | Action::Open
            | Action::Back => {
                // The focus itself is sent when it changes (`sync_focus`); one drill-down at a
                // time.
                if let Outcome::Focus(focus) = self.component_mut(self.view).update(&action) {
                    match &focus {
                        Some(Focus::Room { .. }) => self.clients.close(),
                        Some(Focus::Client(_)) => self.rooms.close(),
                        None => {}
                    }
                }
            }
            Action::OpenFilter => {
                let input = self.list().filter.clone();
                self.mode = Mode::Filter { input };
            }
            Action::CycleSort => {
                let view = self.component_mut(self.view);
                view.cycle_sort();
                let name = view.sort_names()[view.list().sort];
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
                    let options = self.cluster.active_except(&self.rooms.owner_of(&room));
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
            Action::Publish => match self.target_room() {
                Some(room) => self.prompt(PromptKind::PublishData { room }, String::new()),
                None => self.set_status("p: select a room in the Rooms view (2)", true),
            },
            Action::History => {
                if self.view == View::Rooms && self.rooms.toggle_history() {
                    self.clients.close();
                } else {
                    self.set_status("h: select a room in the Rooms view (2)", true);
                }
            }
            Action::JoinRoom => match self.target_client() {
                Some(client) => self.prompt(PromptKind::JoinRoom { client }, String::new()),
                None => self.set_status(
                    "j: select a client (Clients view or a room's members)",
                    true,
                ),
            },
            Action::LeaveRoom => match self.target_client() {
                // From a room's members: that room, to confirm or change.
                Some(client) => {
                    let room = self.open_room().unwrap_or_default();
                    self.prompt(PromptKind::LeaveRoom { client }, room);
                }
                None => self.set_status(
                    "l: select a client (Clients view or a room's members)",
                    true,
                ),
            },
            _ => {}
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
                self.component_mut(self.view).set_filter(input.trim());
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
                    DEFAULT_KICK_REASON.to_owned()
                } else {
                    text.to_owned()
                };
                if reason.len() > MAX_REASON_BYTES {
                    self.set_status(
                        format!("the reason may be at most {MAX_REASON_BYTES} bytes"),
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
            PromptKind::PublishData { room } => {
                if text.is_empty() {
                    self.set_status("nothing to publish: type JSON, or text", true);
                    self.prompt(PromptKind::PublishData { room }, input);
                    return;
                }
                // JSON as typed; anything else goes as a JSON string.
                let data = match RawJson::parse(text) {
                    Ok(json) if !json.is_null() => json,
                    _ => RawJson::string(text),
                };
                self.mode = Mode::Confirm {
                    op: Op::Publish {
                        room,
                        data: data.get().to_owned(),
                    },
                };
            }
            PromptKind::JoinRoom { client } => {
                let kind = PromptKind::JoinRoom {
                    client: client.clone(),
                };
                self.room_prompt(kind, input, |room| Op::Join { client, room });
            }
            PromptKind::LeaveRoom { client } => {
                let kind = PromptKind::LeaveRoom {
                    client: client.clone(),
                };
                self.room_prompt(kind, input, |room| Op::Leave { client, room });
            }
        }
    }

    /// A room name typed for a join or leave: the op to confirm, or the prompt again with why.
    fn room_prompt(&mut self, kind: PromptKind, input: String, op: impl FnOnce(String) -> Op) {
        match RoomName::parse(input.trim()) {
            Ok(room) => {
                self.mode = Mode::Confirm {
                    op: op(room.to_string()),
                }
            }
            Err(e) => {
                self.set_status(format!("not a room name: {e}"), true);
                self.prompt(kind, input);
            }
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
                let selected = crate::views::step(selected, delta, options.len());
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
            NetEvent::Stream(frame) => {
                if let Some(line) = describe(&frame) {
                    self.log(line);
                }
            }
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

    /// Hands a poll's answers to the views they belong to; logs what changed since the last
    /// poll (or, for the first, what the cluster holds) and the poll's first error.
    pub fn apply_snapshot(&mut self, s: Snapshot) {
        let mut lines = Vec::new();
        let diff = self.have_snapshot;
        if !diff {
            let nodes = || s.cluster.nodes.iter().filter_map(|n| n.stats());
            let rooms: i64 = nodes().map(|n| n.rooms_owned).sum();
            let conns: u64 = nodes().map(|n| n.connections).sum();
            lines.push(format!(
                "first answer from {}: {} nodes, {rooms} rooms, {conns} connections",
                s.node_url,
                s.cluster.nodes.len(),
            ));
        }
        self.have_snapshot = true;
        let sampled = self.cluster.apply(s.cluster, s.taken_ms, diff, &mut lines);
        self.rooms.apply(s.rooms, diff, &mut lines);
        for l in lines {
            self.log(l);
        }
        self.node_url = s.node_url;
        self.clients.apply(s.clients, s.taken_ms);
        let ok = s.errors.is_empty();
        let (room, client) = match s.detail {
            Some(Detail::Room(d, page)) => (Some((*d, page)), None),
            Some(Detail::Client(d)) => (None, Some(d)),
            None => (None, None),
        };
        self.rooms.take_detail(room, ok, sampled);
        self.clients.take_detail(client, ok);
        self.events.clamp();
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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::Answer;
    use crate::ui::tests::fixture;
    use crate::views::{conn_key, RATE_HISTORY};
    use protocol::admin::{ClientSummary, ClientsResponse, ListQuery, RoomsResponse};

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
        let names: Vec<&str> = app.cluster.rows().iter().map(|n| n.name()).collect();
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
        assert_eq!(app.clients.list.shown().len(), 2);
        app.update(Action::Submit);
        assert_eq!(app.clients.list.shown().len(), 1);
        assert_eq!(app.target_client().as_deref(), Some("c_1aBcDeFgHiJkLmNo"));
        // Other views keep their rows.
        app.update(Action::Show(View::Rooms));
        assert_eq!(app.rooms.list.shown().len(), 2);
        // Empty filter shows all.
        app.update(Action::Show(View::Clients));
        app.update(Action::OpenFilter);
        app.update(Action::ClearInput);
        app.update(Action::Submit);
        assert_eq!(app.clients.list.shown().len(), 2);
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
            cluster: app.cluster.cluster.clone(),
            ..Default::default()
        };
        set_state(&mut s.cluster.nodes[0], "drained");
        s.rooms = Some(Answer {
            query: app.rooms.list.query(),
            page: RoomsResponse {
                rooms: vec![app.rooms.list.rows[0].clone()],
                total: 1,
                ..Default::default()
            },
        });
        app.on_net(NetEvent::Snapshot(Box::new(s)));
        let log: Vec<&str> = app.events.log.iter().map(|l| l.text.as_str()).collect();
        assert!(log.contains(&"node node-b: draining -> drained"), "{log:?}");
        assert!(log.contains(&"room board:7 disappeared"), "{log:?}");
    }

    #[test]
    fn each_view_keeps_its_sort() {
        let mut app = fixture();
        app.update(Action::Show(View::Rooms));
        app.update(Action::CycleSort);
        assert_eq!(app.rooms.list.shown()[0].name, "chat:lobby");
        assert_eq!(app.cluster.list.sort, 0);
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
    fn client_page(query: ListQuery, first: usize, n: usize, next: Option<&str>) -> Snapshot {
        let clients = (first..first + n)
            .map(|i| ClientSummary {
                id: format!("c_{i:05}"),
                user: format!("u-{i}"),
                node: "node-a".into(),
                ..Default::default()
            })
            .collect();
        Snapshot {
            node_url: "http://127.0.0.1:9701".into(),
            clients: Some(Answer {
                query,
                page: ClientsResponse {
                    clients,
                    total: 100_000,
                    next_cursor: next.map(str::to_owned),
                    ..Default::default()
                },
            }),
            ..Default::default()
        }
    }

    /// Sets the state of a node of a `/cluster` answer.
    fn set_state(n: &mut protocol::admin::ClusterNode, state: &str) {
        match n {
            protocol::admin::ClusterNode::Live(n) => n.stats.state = state.into(),
            protocol::admin::ClusterNode::Down(n) => n.state = state.into(),
        }
    }

    /// The figures of a node of a `/cluster` answer.
    fn stats(n: &mut protocol::admin::ClusterNode) -> &mut protocol::admin::NodeStats {
        match n {
            protocol::admin::ClusterNode::Live(n) => &mut n.stats,
            protocol::admin::ClusterNode::Down(_) => panic!("a live node"),
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
        let want = ListQuery {
            sort: Some("id".into()),
            limit: Some(18),
            ..ListQuery::default()
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
            lists(&mut app)[0]
                .rooms
                .as_ref()
                .and_then(|q| q.sort.as_deref()),
            Some("name")
        );
        // A taller terminal asks for longer pages.
        app.set_page_size(40);
        assert_eq!(
            lists(&mut app)[0].rooms.as_ref().and_then(|q| q.limit),
            Some(40)
        );
    }

    #[test]
    fn filter_and_sort_go_to_the_api_and_restart_paging() {
        let mut app = App::new("http://127.0.0.1:9100");
        app.set_page_size(10);
        app.update(Action::Show(View::Clients));
        app.apply_snapshot(client_page(app.clients.list.query(), 0, 10, Some("k10")));
        app.update(Action::PageDown);
        assert_eq!(app.clients.list.query().cursor.as_deref(), Some("k10"));
        app.update(Action::OpenFilter);
        type_str(&mut app, "u-4 2&");
        app.update(Action::Submit);
        let q = lists(&mut app).pop().unwrap().clients.unwrap();
        assert_eq!(
            (q.q.as_deref(), q.cursor.as_deref()),
            (Some("u-4 2&"), None)
        );
        assert_eq!(q.query_string(), "?limit=10&sort=id&q=u-4%202%26");
        app.update(Action::CycleSort);
        app.update(Action::CycleSort);
        app.update(Action::CycleSort);
        let q = lists(&mut app).pop().unwrap().clients.unwrap();
        assert_eq!(q.sort.as_deref(), Some("msgs_in"));
        // The Rooms view kept its own filter and sort.
        assert_eq!(app.rooms.list.query().q, None);
        assert_eq!(app.rooms.list.query().sort.as_deref(), Some("name"));
    }

    #[test]
    fn pages_forward_and_back_with_cursors() {
        let mut app = App::new("http://127.0.0.1:9100");
        app.set_page_size(10);
        app.update(Action::Show(View::Clients));
        let first = app.clients.list.query();
        app.apply_snapshot(client_page(first.clone(), 0, 10, Some("k09")));
        assert!(app.clients.list.loaded());
        assert_eq!(app.clients.list.shown()[0].id, "c_00000");
        app.update(Action::PageDown);
        assert_eq!(app.list().selected, 0);
        let second = app.clients.list.query();
        assert_eq!(second.cursor.as_deref(), Some("k09"));
        assert!(!app.clients.list.loaded());
        // Still loading: another PgDn waits instead of skipping ahead.
        app.update(Action::PageDown);
        assert_eq!(app.clients.list.query(), second);
        // A late answer for the first page is not shown as the second.
        app.apply_snapshot(client_page(first.clone(), 0, 10, Some("k09")));
        assert!(!app.clients.list.loaded());
        app.apply_snapshot(client_page(second.clone(), 10, 10, Some("k19")));
        assert_eq!(app.clients.list.shown()[0].id, "c_00010");
        assert_eq!(app.clients.list.paging.offset(), 10);
        // Up on the first row goes to the previous page, selecting its last row.
        app.update(Action::Up);
        assert_eq!(app.clients.list.query(), first);
        app.apply_snapshot(client_page(first.clone(), 0, 10, Some("k09")));
        assert_eq!(app.list().selected, 9);
        // Down on the last row goes forward again.
        app.update(Action::Down);
        assert_eq!(app.clients.list.query(), second);
        app.apply_snapshot(client_page(second, 10, 3, None));
        // The last page: PgDn moves to its last row; PgUp goes back to the first page.
        app.update(Action::PageDown);
        assert_eq!(app.list().selected, 2);
        app.update(Action::PageUp);
        assert_eq!(app.clients.list.query(), first);
        app.update(Action::PageUp);
        assert_eq!(app.clients.list.query(), first);
        // A page whose rows all went away gives way to the one before it.
        app.apply_snapshot(client_page(first, 0, 10, Some("k09")));
        app.update(Action::PageDown);
        app.apply_snapshot(client_page(app.clients.list.query(), 10, 0, None));
        assert_eq!(app.clients.list.query().cursor, None);
    }

    #[test]
    fn rate_history_takes_a_sample_a_second_and_forgets_departed_nodes() {
        let mut app = fixture();
        assert_eq!(app.cluster.rates["node-a"].ins, [3]);
        let mut s = Snapshot {
            node_url: app.node_url.clone(),
            cluster: app.cluster.cluster.clone(),
            taken_ms: 10_000,
            ..Default::default()
        };
        stats(&mut s.cluster.nodes[1]).msgs_in_per_s = 7.4;
        app.apply_snapshot(s.clone());
        // A poll right after an action adds nothing.
        s.taken_ms = 10_300;
        app.apply_snapshot(s.clone());
        assert_eq!(app.cluster.rates["node-a"].ins, [3, 7]);
        assert_eq!(app.cluster.rates["node-a"].outs, [6, 6]);
        s.cluster.nodes.retain(|n| n.name() != "node-c");
        for i in 0..RATE_HISTORY as u64 + 5 {
            s.taken_ms = 11_000 + i * 1000;
            app.apply_snapshot(s.clone());
        }
        assert_eq!(app.cluster.rates["node-a"].ins.len(), RATE_HISTORY);
        assert!(!app.cluster.rates.contains_key("node-c"));
    }

    #[test]
    fn client_rates_come_from_the_counters_of_two_polls() {
        let mut app = App::new("http://127.0.0.1:9100");
        app.update(Action::Show(View::Clients));
        let mut page = client_page(app.clients.list.query(), 0, 2, None);
        page.taken_ms = 50_000;
        app.apply_snapshot(page.clone());
        assert!(app.clients.rates.is_empty(), "one poll says nothing yet");
        let clients = &mut page.clients.as_mut().unwrap().page.clients;
        clients[0].msgs_in = 30;
        clients[0].msgs_out = 3;
        page.taken_ms = 52_000;
        app.apply_snapshot(page.clone());
        let key = conn_key(&app.clients.list.rows[0]);
        assert_eq!(app.clients.rates[&key], (15.0, 1.5));
        // A poll right after (an action's refresh) keeps the rate rather than divide by ~0.
        page.taken_ms = 52_100;
        app.apply_snapshot(page);
        assert_eq!(app.clients.rates[&key], (15.0, 1.5));
        assert_eq!(app.clients.rates.len(), 2);
    }

    #[test]
    fn a_new_sort_selects_the_first_row_of_its_answer() {
        let mut app = fixture();
        app.update(Action::Show(View::Rooms));
        app.update(Action::CycleSort);
        // Sorted here at once: chat:lobby (17 members) first, selected.
        assert_eq!(app.target_room().as_deref(), Some("chat:lobby"));
        // The API's answer puts another room first: the selection stays on the first row.
        let room = |name: &str| {
            app.rooms
                .list
                .rows
                .iter()
                .find(|r| r.name == name)
                .unwrap()
                .clone()
        };
        let (mut board, lobby) = (room("board:7"), room("chat:lobby"));
        board.members = 99;
        let answer = Snapshot {
            node_url: app.node_url.clone(),
            cluster: app.cluster.cluster.clone(),
            rooms: Some(Answer {
                query: app.rooms.list.query(),
                page: RoomsResponse {
                    rooms: vec![board, lobby],
                    total: 2,
                    ..Default::default()
                },
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

    #[test]
    fn publish_sends_json_as_typed_and_text_as_a_string_after_a_confirm() {
        let mut app = fixture();
        app.update(Action::Show(View::Clients));
        app.update(Action::Publish);
        assert!(app.status_is_error, "publish needs a room");
        app.update(Action::Show(View::Rooms));
        app.update(Action::Publish);
        assert_eq!(app.key_mode(), KeyMode::Text);
        app.update(Action::Submit);
        assert!(app.status_is_error, "nothing to publish");
        type_str(&mut app, r#" {"text": "hi"} "#);
        app.update(Action::Submit);
        assert_eq!(app.key_mode(), KeyMode::Confirm);
        app.update(Action::Confirm);
        assert_eq!(
            actions(&mut app),
            vec![Command::Op(Op::Publish {
                room: "board:7".into(),
                data: r#"{"text": "hi"}"#.into()
            })]
        );
        // Not JSON: sent as a string, shown as such in the confirmation.
        app.update(Action::Publish);
        type_str(&mut app, r#"deploy at "6""#);
        app.update(Action::Submit);
        match &app.mode {
            Mode::Confirm { op } => {
                assert_eq!(op.describe(), r#"publish "deploy at \"6\"" to board:7"#)
            }
            m => panic!("{m:?}"),
        }
    }

    #[test]
    fn join_and_leave_ask_for_a_valid_room_then_a_confirm() {
        let mut app = fixture();
        app.update(Action::Show(View::Clients));
        app.update(Action::JoinRoom);
        type_str(&mut app, "no spaces");
        app.update(Action::Submit);
        assert!(app.status_is_error);
        assert_eq!(app.key_mode(), KeyMode::Text, "asked again");
        app.update(Action::ClearInput);
        type_str(&mut app, "chat:lobby");
        app.update(Action::Submit);
        app.update(Action::Confirm);
        assert_eq!(
            actions(&mut app),
            vec![Command::Op(Op::Join {
                client: "c_1aBcDeFgHiJkLmNo".into(),
                room: "chat:lobby".into()
            })]
        );
        // From a room's members, `l` offers that room.
        app.update(Action::Show(View::Rooms));
        app.update(Action::Open);
        app.rooms.drill.as_mut().unwrap().members.rows = vec![protocol::admin::Member {
            client: "c_7HqK2mX9pL4vR1sT".into(),
            user: "u-42".into(),
            node: "node-b".into(),
        }];
        app.update(Action::LeaveRoom);
        match &app.mode {
            Mode::Prompt {
                kind: PromptKind::LeaveRoom { client },
                input,
            } => assert_eq!(
                (client.as_str(), input.as_str()),
                ("c_7HqK2mX9pL4vR1sT", "board:7")
            ),
            m => panic!("{m:?}"),
        }
        app.update(Action::Submit);
        app.update(Action::Confirm);
        assert_eq!(
            actions(&mut app),
            vec![
                Command::Op(Op::Leave {
                    client: "c_7HqK2mX9pL4vR1sT".into(),
                    room: "board:7".into()
                }),
                Command::Focus(app.wanted_focus()),
            ]
        );
    }
}
