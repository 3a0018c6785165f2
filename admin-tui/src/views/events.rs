//! View 4's state: the log, newest first, filtered here: the attached node's event stream
//! (`protocol::admin::StreamFrame`s, each described as a line), what the console saw change
//! between polls, attach and failover, and the operator's actions and their results.

use super::{matches, Component, ListState, Outcome};
use crate::action::Action;
use crate::model::Streamed;
use protocol::admin::{Control, Event, EventRecord, StreamFrame};
use ratatui::layout::Rect;
use ratatui::Frame;
use std::collections::VecDeque;

/// How many lines the view keeps.
const EVENT_LOG_CAP: usize = 2000;
const SORTS: [&str; 1] = ["newest"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub time: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsView {
    /// Oldest first.
    pub log: VecDeque<LogLine>,
    pub list: ListState,
    page_size: usize,
}

impl Default for EventsView {
    fn default() -> Self {
        Self {
            log: VecDeque::new(),
            list: ListState::default(),
            page_size: 10,
        }
    }
}

impl EventsView {
    /// Adds a line, stamped with the time (the oldest goes beyond [`EVENT_LOG_CAP`]).
    pub fn push(&mut self, text: impl Into<String>) {
        if self.log.len() >= EVENT_LOG_CAP {
            self.log.pop_front();
        }
        self.log.push_back(LogLine {
            time: clock(),
            text: text.into(),
        });
    }

    /// The lines as shown: newest first, filtered.
    pub fn rows(&self) -> Vec<&LogLine> {
        self.log
            .iter()
            .rev()
            .filter(|l| matches(&self.list.filter, &[&l.text]))
            .collect()
    }

    /// Keeps the selection within the rows shown.
    pub fn clamp(&mut self) {
        let n = self.rows().len();
        self.list.selected = self.list.selected.min(n.saturating_sub(1));
    }
}

/// One line of the log for a frame of the event stream (`None` for the stream's hello).
pub fn describe(frame: &Streamed) -> Option<String> {
    let (by, what) = match frame {
        Streamed::Frame(StreamFrame::Control(Control::Hello { .. })) => return None,
        Streamed::Frame(StreamFrame::Control(Control::Lagged { missed })) => {
            ("?", format!("missed {missed} events (console too slow)"))
        }
        Streamed::Frame(StreamFrame::Event(EventRecord {
            observed_by, event, ..
        })) => (observed_by.as_str(), describe_event(observed_by, event)),
        Streamed::Unknown(head, text) => (
            head.observed_by.as_deref().unwrap_or("?"),
            format!("{}: {text}", head.kind),
        ),
    };
    Some(format!("[{by}] {what}"))
}

fn describe_event(by: &str, event: &Event) -> String {
    match event {
        Event::NodeState { state } => format!("node {by}: now {state}"),
        Event::PeerUp { node } => format!("peer {node} up"),
        Event::PeerDown { node, reason } => format!("peer {node} DOWN ({reason})"),
        Event::PeerRestarted { node } => format!("peer {node} restarted"),
        Event::RoomCreated {
            room,
            restored: true,
            ..
        } => format!("room {room} restored from its replica"),
        Event::RoomCreated { room, .. } => format!("room {room} created"),
        Event::RoomMigrated { room, from, to } => format!("room {room} moved {from} -> {to}"),
        Event::RoomClosed { room } => format!("room {room} closed"),
        Event::ClientKicked { client, reason } => format!("client {client} kicked ({reason})"),
        Event::ClientThrottled {
            client,
            throttled: true,
        } => format!("client {client} throttled"),
        Event::ClientThrottled { client, .. } => format!("client {client} unthrottled"),
        Event::ClientJoined { client, room } => format!("client {client} joined {room}"),
        Event::ClientLeft { client, room } => format!("client {client} left {room}"),
        Event::RoomPublished { room, seq } => format!("room {room}: operator published #{seq}"),
    }
}

/// `HH:MM:SS` (UTC) for the log.
fn clock() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let d = secs % 86_400;
    format!("{:02}:{:02}:{:02}", d / 3600, d / 60 % 60, d % 60)
}

impl Component for EventsView {
    fn list(&self) -> &ListState {
        &self.list
    }

    fn sort_names(&self) -> &'static [&'static str] {
        &SORTS
    }

    fn set_page_size(&mut self, rows: usize) {
        self.page_size = rows;
    }

    fn update(&mut self, action: &Action) -> Outcome {
        let rows = self.rows().len();
        self.list.moved(action, self.page_size, rows)
    }

    fn set_filter(&mut self, filter: &str) {
        self.list.set_filter(filter);
    }

    fn cycle_sort(&mut self) {
        self.list.next_sort(SORTS.len());
    }

    fn render(&self, frame: &mut Frame<'_>, area: Rect) {
        crate::ui::events::render(self, frame, area);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn line(text: &str) -> Option<String> {
        describe(&Streamed::parse(text).unwrap())
    }

    #[test]
    fn server_events_read_as_log_lines() {
        assert_eq!(
            line(r#"{"type":"hello","observed_by":"node-a","state":"active"}"#),
            None
        );
        assert_eq!(
            line(r#"{"type":"peer_down","observed_by":"node-a","at_ms":1,"node":"node-c","reason":"silent"}"#).as_deref(),
            Some("[node-a] peer node-c DOWN (silent)")
        );
        assert_eq!(
            line(r#"{"type":"room_migrated","observed_by":"node-b","at_ms":1,"room":"r","from":"node-b","to":"node-a"}"#).as_deref(),
            Some("[node-b] room r moved node-b -> node-a")
        );
        assert_eq!(
            line(r#"{"type":"lagged","missed":3}"#).as_deref(),
            Some("[?] missed 3 events (console too slow)")
        );
        // A kind this build does not know is shown as it came.
        let newer = r#"{"type":"room_renamed","observed_by":"node-b","at_ms":1}"#;
        assert_eq!(line(newer), Some(format!("[node-b] room_renamed: {newer}")));
    }
}
