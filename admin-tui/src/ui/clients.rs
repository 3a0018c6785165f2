//! View 3: client connections on every node, a page at a time (paged, filtered and sorted by the
//! API), with each connection's msgs/s in and out from its counters in the last two polls; Enter
//! shows one client and all its connections.

use super::table::{col, table, Col, Give};
use super::{fmt_bytes, fmt_rate, paged_title, selected_style};
use crate::views::{conn_key, ClientDrill, ClientsView};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::widgets::{Block, Paragraph, TableState};
use ratatui::Frame;

const CLIENTS: [Col; 9] = [
    col("ID", Give::Id),
    col("USER", Give::Name),
    col("NODE", Give::Name),
    col("ADDRESS", Give::Text),
    col("RMS", Give::Fixed),
    col("IN/s", Give::Fixed),
    col("OUT/s", Give::Fixed),
    col("QUEUE", Give::Fixed),
    col("THR", Give::Fixed),
];

const CONNECTIONS: [Col; 8] = [
    col("NODE", Give::Name),
    col("CONN", Give::Fixed),
    col("ADDRESS", Give::Text),
    col("RMS", Give::Fixed),
    col("IN/OUT", Give::Fixed),
    col("QUEUE", Give::Fixed),
    col("LIMIT", Give::Fixed),
    col("THROTTLE", Give::Fixed),
];

pub fn render(view: &ClientsView, frame: &mut Frame<'_>, area: Rect) {
    if let Some(drill) = &view.drill {
        return render_detail(drill, frame, area);
    }
    let rows = view.list.shown();
    let body = rows
        .iter()
        .map(|c| {
            let rate = view.rates.get(&conn_key(c)).copied();
            let cells = vec![
                c.id.clone(),
                c.user.clone(),
                c.node.clone(),
                c.remote_addr.clone(),
                c.rooms.to_string(),
                fmt_rate(rate.map(|r| r.0)),
                fmt_rate(rate.map(|r| r.1)),
                fmt_bytes(c.queue_bytes as u64),
                if c.throttled { "yes" } else { "" }.to_owned(),
            ];
            let style = if c.throttled {
                Style::new().fg(Color::Yellow)
            } else {
                Style::new()
            };
            (cells, style)
        })
        .collect();
    let block = Block::bordered().title(paged_title("Clients", &view.list, rows.len()));
    let table = table(&CLIENTS, body, block.inner(area).width)
        .block(block)
        .row_highlight_style(selected_style());
    let mut st =
        TableState::default().with_selected((!rows.is_empty()).then_some(view.list.list.selected));
    frame.render_stateful_widget(table, area, &mut st);
}

fn render_detail(drill: &ClientDrill, frame: &mut Frame<'_>, area: Rect) {
    let id = &drill.id;
    let [head, list] = Layout::vertical([Constraint::Length(3), Constraint::Min(3)]).areas(area);
    let Some(d) = &drill.detail else {
        frame.render_widget(
            Paragraph::new(format!("loading {id} …"))
                .block(Block::bordered().title(format!(" client {id} (Esc back) "))),
            area,
        );
        return;
    };
    frame.render_widget(
        Paragraph::new(format!(
            "user {}  connections {}",
            d.first.user,
            d.connections.len()
        ))
        .block(Block::bordered().title(format!(
            " client {} (Esc back, k kick, t/T throttle, j/l join/leave) ",
            d.first.id
        ))),
        head,
    );
    let body = d
        .connections
        .iter()
        .map(|c| {
            let lim = format!("{}/s b{}", c.rate_limit.msgs_per_sec, c.rate_limit.burst);
            let cells = vec![
                c.node.clone(),
                c.conn.to_string(),
                c.remote_addr.clone(),
                c.rooms.to_string(),
                format!("{}/{}", c.msgs_in, c.msgs_out),
                fmt_bytes(c.queue_bytes as u64),
                lim,
                if c.throttled { "throttled" } else { "default" }.to_owned(),
            ];
            (cells, Style::new())
        })
        .collect();
    let block = Block::bordered().title(" connections ");
    let table = table(&CONNECTIONS, body, block.inner(list).width).block(block);
    frame.render_widget(table, list);
}
