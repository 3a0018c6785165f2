//! View 2: the rooms of the cluster, a page at a time (paged, filtered and sorted by the API);
//! Enter shows one room, its live message rate (a sparkline) and a page of its members; `h`
//! turns that pane to its history, newest first (both paged by the API).

use super::table::{col, table, Col, Give};
use super::{fmt_rate, paged_title, selected_style};
use crate::views::{Pane, RoomDrill, RoomsView};
use protocol::admin::{HistoryMessage, MessageFrom};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::widgets::{Block, Paragraph, TableState};
use ratatui::Frame;

const ROOMS: [Col; 6] = [
    col("NAME", Give::Id),
    col("OWNER", Give::Name),
    col("MEMB", Give::Fixed),
    col("NODES", Give::Text),
    col("MSG/s", Give::Fixed),
    col("SEQ/EPOCH", Give::Name),
];

const MEMBERS: [Col; 3] = [
    col("CLIENT", Give::Id),
    col("USER", Give::Name),
    col("NODE", Give::Name),
];

const HISTORY: [Col; 5] = [
    col("SEQ", Give::Fixed),
    col("TIME", Give::Fixed),
    col("FROM", Give::Name),
    col("CLIENT", Give::Id),
    col("DATA", Give::Text),
];

pub fn render(view: &RoomsView, frame: &mut Frame<'_>, area: Rect) {
    if let Some(drill) = &view.drill {
        return render_detail(drill, frame, area);
    }
    let rows = view.list.shown();
    let body = rows
        .iter()
        .map(|r| {
            let cells = vec![
                r.name.clone(),
                r.owner.clone(),
                r.members.to_string(),
                r.nodes.join(","),
                fmt_rate(Some(r.msgs_per_s)),
                format!("{}/{}", r.seq, r.epoch),
            ];
            (cells, Style::new())
        })
        .collect();
    let block = Block::bordered().title(paged_title("Rooms", &view.list, rows.len()));
    let table = table(&ROOMS, body, block.inner(area).width)
        .block(block)
        .row_highlight_style(selected_style());
    let mut st =
        TableState::default().with_selected((!rows.is_empty()).then_some(view.list.list.selected));
    frame.render_stateful_widget(table, area, &mut st);
}

fn render_detail(drill: &RoomDrill, frame: &mut Frame<'_>, area: Rect) {
    let name = &drill.name;
    let head_rows = crate::views::ROOM_HEAD_ROWS as u16;
    let [head, pane] =
        Layout::vertical([Constraint::Length(head_rows), Constraint::Min(3)]).areas(area);
    let Some(d) = &drill.detail else {
        frame.render_widget(
            Paragraph::new(format!("loading {name} …"))
                .block(Block::bordered().title(format!(" room {name} (Esc back) "))),
            area,
        );
        return;
    };
    frame.render_widget(
        Paragraph::new(format!(
            "owner {}  seq {}  epoch {}  history {}\nmembers {}  msgs/s {}  nodes {}",
            d.owner,
            d.seq,
            d.epoch,
            d.history_len,
            d.members_total,
            fmt_rate(Some(d.msgs_per_s)),
            d.nodes.join(",")
        ))
        .block(Block::bordered().title(format!(
            " room {} (Esc back, p publish, m migrate) ",
            d.name
        ))),
        head,
    );
    // The live message rate since the drill-down opened, newest on the right.
    let inner = Block::bordered().inner(head);
    let spark = Rect::new(inner.x, inner.y + 2, inner.width, 1);
    super::render_history(frame, spark, &drill.rate, None, Color::Green);
    match drill.pane {
        Pane::Members => render_members(drill, frame, pane),
        Pane::History => render_history_pane(drill, frame, pane),
    }
}

fn render_members(drill: &RoomDrill, frame: &mut Frame<'_>, area: Rect) {
    let list = &drill.members;
    let rows = list.shown();
    let body = rows
        .iter()
        .map(|m| {
            let cells = vec![m.client.clone(), m.user.clone(), m.node.clone()];
            (cells, Style::new())
        })
        .collect();
    let title = format!(
        "{}(h history, k kick, t throttle, l leave) ",
        paged_title("members", list, rows.len())
    );
    let block = Block::bordered().title(title);
    let table = table(&MEMBERS, body, block.inner(area).width)
        .block(block)
        .row_highlight_style(selected_style());
    let mut st =
        TableState::default().with_selected((!rows.is_empty()).then_some(list.list.selected));
    frame.render_stateful_widget(table, area, &mut st);
}

fn render_history_pane(drill: &RoomDrill, frame: &mut Frame<'_>, area: Rect) {
    let list = &drill.history;
    let rows = list.shown();
    let body = rows
        .iter()
        .map(|m| {
            let style = if m.from.backend {
                Style::new().fg(Color::Yellow)
            } else {
                Style::new()
            };
            (history_cells(m), style)
        })
        .collect();
    let title = format!(
        "{}(h members, p publish) ",
        paged_title("history", list, rows.len())
    );
    let block = Block::bordered().title(title);
    let table = table(&HISTORY, body, block.inner(area).width)
        .block(block)
        .row_highlight_style(selected_style());
    let mut st =
        TableState::default().with_selected((!rows.is_empty()).then_some(list.list.selected));
    frame.render_stateful_widget(table, area, &mut st);
}

/// A history row: seq, time (UTC), who (`backend`, or the user and the client), the payload
/// on one line.
fn history_cells(m: &HistoryMessage) -> Vec<String> {
    let (from, client) = match &m.from {
        MessageFrom { backend: true, .. } => ("backend".to_owned(), String::new()),
        MessageFrom { user, client, .. } => (
            user.clone().unwrap_or_default(),
            client.clone().unwrap_or_default(),
        ),
    };
    let data: String = m
        .data
        .get()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    vec![m.seq.to_string(), clock(m.published_ms), from, client, data]
}

/// `HH:MM:SS` (UTC) of Unix milliseconds; `-` for none.
fn clock(ms: u64) -> String {
    if ms == 0 {
        return "-".to_owned();
    }
    let s = ms / 1000 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}
