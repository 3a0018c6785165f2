//! View 2: the rooms of the cluster, a page at a time (paged, filtered and sorted by the API);
//! Enter shows one room, its members and its live message rate (a sparkline).

use super::{fmt_rate, paged_title, selected_style};
use crate::views::{RoomDrill, RoomsView};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState};
use ratatui::Frame;

pub fn render(view: &RoomsView, frame: &mut Frame<'_>, area: Rect) {
    if let Some(drill) = &view.drill {
        return render_detail(drill, frame, area);
    }
    let rows = view.list.shown();
    let body: Vec<Row<'_>> = rows
        .iter()
        .map(|r| {
            Row::new(vec![
                r.name.clone(),
                r.owner.clone(),
                r.members.to_string(),
                r.nodes.join(","),
                fmt_rate(Some(r.msgs_per_s)),
                format!("{}/{}", r.seq, r.epoch),
            ])
        })
        .collect();
    let table = Table::new(
        body,
        [
            Constraint::Min(12),
            Constraint::Length(8),
            Constraint::Length(5),
            Constraint::Length(14),
            Constraint::Length(6),
            Constraint::Length(16),
        ],
    )
    .header(
        Row::new(["NAME", "OWNER", "MEMB", "NODES", "MSG/s", "SEQ/EPOCH"])
            .style(Style::new().fg(Color::Cyan)),
    )
    .block(Block::bordered().title(paged_title("Rooms", &view.list, rows.len())))
    .row_highlight_style(selected_style());
    let mut st =
        TableState::default().with_selected((!rows.is_empty()).then_some(view.list.list.selected));
    frame.render_stateful_widget(table, area, &mut st);
}

fn render_detail(drill: &RoomDrill, frame: &mut Frame<'_>, area: Rect) {
    let name = &drill.name;
    let [head, list] = Layout::vertical([Constraint::Length(5), Constraint::Min(3)]).areas(area);
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
        .block(Block::bordered().title(format!(" room {} (Esc back, m migrate) ", d.name))),
        head,
    );
    // The live message rate since the drill-down opened, newest on the right.
    let inner = Block::bordered().inner(head);
    let spark = Rect::new(inner.x, inner.y + 2, inner.width, 1);
    super::render_history(frame, spark, &drill.rate, None, Color::Green);
    let body: Vec<Row<'_>> = d
        .members
        .iter()
        .map(|m| Row::new(vec![m.client.clone(), m.user.clone(), m.node.clone()]))
        .collect();
    let table = Table::new(
        body,
        [
            Constraint::Min(20),
            Constraint::Length(16),
            Constraint::Length(10),
        ],
    )
    .header(Row::new(["CLIENT", "USER", "NODE"]).style(Style::new().fg(Color::Cyan)))
    .block(Block::bordered().title(format!(
        " members {}/{} (k kick, t throttle) ",
        d.members.len(),
        d.members_total
    )))
    .row_highlight_style(selected_style());
    let mut st =
        TableState::default().with_selected((!d.members.is_empty()).then_some(drill.selected));
    frame.render_stateful_widget(table, list, &mut st);
}
