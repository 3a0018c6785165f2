//! View 1: the nodes of the cluster; under them each node's msgs/s in and out as sparklines (one
//! sample a second, the newest on the right: a wider terminal shows a longer history, a taller
//! one taller bars), and the selected node's addresses.

use super::table::{col, table, Col, Give};
use super::{fmt_bytes, fmt_rate, fmt_uptime, list_title, selected_style};
use crate::views::{ClusterView, Component, RateHistory};
use protocol::admin::ClusterNode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, TableState};
use ratatui::Frame;

const NODES: [Col; 10] = [
    col("NAME", Give::Id),
    col("STATE", Give::Fixed),
    col("CONN", Give::Fixed),
    col("ROOMS", Give::Fixed),
    col("IN/s", Give::Fixed),
    col("OUT/s", Give::Fixed),
    col("RSS", Give::Fixed),
    col("UP", Give::Fixed),
    col("VER", Give::Name),
    col("LEFT", Give::Fixed),
];

/// Rows of the selected node's panel.
const INFO_ROWS: u16 = 4;
/// Tallest sparkline band per node.
const MAX_BAND: u16 = 8;

pub fn render(view: &ClusterView, frame: &mut Frame<'_>, area: Rect) {
    let rows = view.rows();
    // The table as tall as its rows (header and borders too), leaving the sparklines at least
    // one band inside their borders.
    let table_h = (rows.len() as u16 + 3)
        .min(area.height.saturating_sub(INFO_ROWS + 3))
        .max(3);
    let [list, trends, info] = Layout::vertical([
        Constraint::Length(table_h),
        Constraint::Min(0),
        Constraint::Length(INFO_ROWS),
    ])
    .areas(area);
    render_trends(view, frame, trends, &rows);
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    let body = rows
        .iter()
        .map(|n| {
            let s = n.stats();
            let left = match s.map(|s| (s.rooms_left, s.connections_left)) {
                None | Some((None, None)) => String::new(),
                Some((r, c)) => format!(
                    "{}r/{}c",
                    opt(r.map(|v| v.to_string())),
                    opt(c.map(|v| v.to_string()))
                ),
            };
            let style = match n.state() {
                "active" => Style::new(),
                "down" => Style::new().fg(Color::Red),
                _ => Style::new().fg(Color::Yellow),
            };
            let cells = vec![
                n.name().to_owned(),
                n.state().to_owned(),
                opt(s.map(|s| s.connections.to_string())),
                opt(s.map(|s| s.rooms_owned.to_string())),
                fmt_rate(s.map(|s| s.msgs_in_per_s)),
                fmt_rate(s.map(|s| s.msgs_out_per_s)),
                opt(s.map(|s| fmt_bytes(s.rss_bytes))),
                opt(s.map(|s| fmt_uptime(s.uptime_s))),
                opt(s.map(|s| s.version.clone())),
                left,
            ];
            (cells, style)
        })
        .collect();
    let cluster = &view.cluster;
    let mut title = list_title(
        &view.list,
        view.sort_names(),
        "Nodes",
        rows.len(),
        cluster.nodes.len(),
    );
    if !cluster.missing.is_empty() {
        title.push_str(&format!(
            "· PARTIAL, missing {} ",
            cluster.missing.join(",")
        ));
    }
    let block = Block::bordered().title(title);
    let table = table(&NODES, body, block.inner(list).width)
        .block(block)
        .row_highlight_style(selected_style());
    let mut st =
        TableState::default().with_selected((!rows.is_empty()).then_some(view.list.selected));
    frame.render_stateful_widget(table, list, &mut st);

    let or_dash = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    let text = match rows.get(view.list.selected) {
        Some(n) => vec![
            format!(
                "{}  admin {}  public {}",
                n.name(),
                or_dash(n.stats().map_or("", |s| s.admin_address.as_str())),
                or_dash(n.address())
            ),
            format!(
                "rtt {}  reconnects {}  incarnation {}",
                n.rtt_us()
                    .map_or("-".into(), |r| format!("{:.1}ms", r as f64 / 1000.0)),
                n.reconnects().map_or("-".into(), |r| r.to_string()),
                or_dash(n.incarnation()),
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

/// One band per node (as many as fit, keeping the selected node in view): its name, then msgs/s
/// in and out, each with a sparkline of its history.
fn render_trends(view: &ClusterView, frame: &mut Frame<'_>, area: Rect, rows: &[&ClusterNode]) {
    if area.height < 3 {
        return;
    }
    let samples = view.rates.values().map(|h| h.ins.len()).max().unwrap_or(0);
    let block = Block::bordered().title(format!(" msgs/s in · out, last {samples}s "));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if rows.is_empty() || inner.height == 0 {
        return;
    }
    let band = (inner.height / rows.len() as u16).clamp(1, MAX_BAND);
    let fit = usize::from(inner.height / band).max(1);
    let selected = view.list.selected.min(rows.len() - 1);
    let start = (selected + 1).saturating_sub(fit);
    let name_w = rows
        .iter()
        .map(|n| n.name().len())
        .max()
        .unwrap_or(4)
        .min(16) as u16;
    let empty = RateHistory::default();
    for (i, n) in rows.iter().skip(start).take(fit).enumerate() {
        let y = inner.y + i as u16 * band;
        let r = Rect::new(inner.x, y, inner.width, band);
        let hist = view.rates.get(n.name()).unwrap_or(&empty);
        let [name, ins, _, outs] = Layout::horizontal([
            Constraint::Length(name_w + 1),
            Constraint::Fill(1),
            Constraint::Length(1),
            Constraint::Fill(1),
        ])
        .areas(r);
        let style = if start + i == selected {
            super::selected_style()
        } else {
            Style::new()
        };
        frame.render_widget(Paragraph::new(Span::styled(n.name(), style)), name);
        let peak = hist
            .ins
            .iter()
            .chain(&hist.outs)
            .copied()
            .max()
            .unwrap_or(0)
            .max(1);
        render_series(
            frame,
            ins,
            "in ",
            n.stats().map(|s| s.msgs_in_per_s),
            &hist.ins,
            peak,
            Color::Green,
        );
        render_series(
            frame,
            outs,
            "out",
            n.stats().map(|s| s.msgs_out_per_s),
            &hist.outs,
            peak,
            Color::Cyan,
        );
    }
}

/// `in   12 ▁▂▅▇…`: the label and current rate, then the sparkline (newest sample on the
/// right, scaled to `peak`, the node's highest rate in or out over the history kept).
fn render_series(
    frame: &mut Frame<'_>,
    area: Rect,
    label: &str,
    now: Option<f64>,
    hist: &std::collections::VecDeque<u64>,
    peak: u64,
    color: Color,
) {
    let [text, spark] =
        Layout::horizontal([Constraint::Length(10), Constraint::Fill(1)]).areas(area);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(label.to_owned(), Style::new().fg(Color::DarkGray)),
            Span::raw(format!("{:>6} ", fmt_rate(now))),
        ])),
        text,
    );
    super::render_history(frame, spark, hist, Some(peak), color);
}
