//! View 1: the nodes of the cluster, and the selected node's addresses.

use super::{fmt_bytes, fmt_rate, fmt_uptime, list_title, selected_style};
use crate::app::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState};
use ratatui::Frame;

pub fn render(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let [list, info] = Layout::vertical([Constraint::Min(3), Constraint::Length(4)]).areas(area);
    let rows = app.node_rows();
    let opt = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
    let body: Vec<Row<'_>> = rows
        .iter()
        .map(|n| {
            let left = match (n.rooms_left, n.connections_left) {
                (None, None) => String::new(),
                (r, c) => format!("{}r/{}c", opt(r), opt(c)),
            };
            let style = match n.state.as_str() {
                "active" => Style::new(),
                "down" => Style::new().fg(Color::Red),
                _ => Style::new().fg(Color::Yellow),
            };
            Row::new(vec![
                n.name.clone(),
                n.state.clone(),
                opt(n.connections),
                opt(n.rooms_owned),
                fmt_rate(n.msgs_in_per_s),
                fmt_rate(n.msgs_out_per_s),
                n.rss_bytes.map_or("-".into(), fmt_bytes),
                n.uptime_s.map_or("-".into(), fmt_uptime),
                n.version.clone().unwrap_or_else(|| "-".into()),
                left,
            ])
            .style(style)
        })
        .collect();
    let mut title = list_title(app, "Nodes", rows.len(), app.cluster.nodes.len() as u64);
    if !app.cluster.missing.is_empty() {
        title.push_str(&format!(
            "· PARTIAL, missing {} ",
            app.cluster.missing.join(",")
        ));
    }
    let table = Table::new(
        body,
        [
            Constraint::Min(6),
            Constraint::Length(8),
            Constraint::Length(5),
            Constraint::Length(5),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(9),
        ],
    )
    .header(
        Row::new([
            "NAME", "STATE", "CONN", "ROOMS", "IN/s", "OUT/s", "RSS", "UP", "VER", "LEFT",
        ])
        .style(Style::new().fg(Color::Cyan)),
    )
    .block(Block::bordered().title(title))
    .row_highlight_style(selected_style());
    let mut st =
        TableState::default().with_selected((!rows.is_empty()).then_some(app.list().selected));
    frame.render_stateful_widget(table, list, &mut st);

    let text = match rows.get(app.list().selected) {
        Some(n) => vec![
            format!(
                "{}  admin {}  public {}",
                n.name,
                n.admin_address.as_deref().unwrap_or("-"),
                n.address.as_deref().unwrap_or("-")
            ),
            format!(
                "rtt {}  reconnects {}  incarnation {}",
                n.rtt_us
                    .map_or("-".into(), |r| format!("{:.1}ms", r as f64 / 1000.0)),
                n.reconnects.map_or("-".into(), |r| r.to_string()),
                n.incarnation.as_deref().unwrap_or("-"),
            ),
        ],
        None => vec!["no nodes yet".to_owned()],
    };
    frame.render_widget(
        Paragraph::new(text.join("\n"))
            .block(Block::bordered().title(" selected node (d drain, u undrain) ")),
        info,
    );
}
