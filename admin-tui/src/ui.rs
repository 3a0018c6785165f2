//! Drawing, from state only: the frame (tab line, status line, prompt or key hints line, help
//! and pick overlays) from `&App`, and each view's body from that view's state (`cluster`,
//! `rooms`, `clients`, `events`, called by the views' `Component::render`). Fits 80×24; larger
//! terminals get longer lists (and pages), longer and taller sparklines, and tables whose
//! columns are cut less (`table`: sized by their content, ids and names cut last).

pub(crate) mod clients;
pub(crate) mod cluster;
pub(crate) mod events;
pub(crate) mod rooms;
pub(crate) mod table;

use crate::action::View;
use crate::app::{App, Mode, PromptKind};
use crate::views::{PagedList, Row};
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, List, ListItem, ListState, Paragraph};
use ratatui::Frame;

pub fn render(app: &App, frame: &mut Frame<'_>) {
    let [tabs, body, status, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    render_tabs(app, frame, tabs);
    app.current().render(frame, body);
    let style = if app.status_is_error {
        Style::new().fg(Color::Red)
    } else {
        Style::new().fg(Color::Green)
    };
    frame.render_widget(
        Paragraph::new(Span::styled(app.status.as_str(), style)),
        status,
    );
    frame.render_widget(Paragraph::new(bottom_line(app)), bottom);
    if let Mode::Pick {
        room,
        options,
        selected,
    } = &app.mode
    {
        render_pick(frame, room, options, *selected);
    }
    if app.help {
        render_help(frame);
    }
}

fn render_tabs(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let mut spans = Vec::new();
    for v in View::ALL {
        let label = format!(" {} {} ", v.index() + 1, v.title());
        let style = if v == app.view {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::new()
        };
        spans.push(Span::styled(label, style));
    }
    spans.push(Span::raw(format!(" @ {}", app.node_url)));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn bottom_line(app: &App) -> Line<'static> {
    let hl = Style::new().fg(Color::Yellow);
    match &app.mode {
        Mode::Normal => Line::from(Span::styled(
            key_hints(app),
            Style::new().fg(Color::DarkGray),
        )),
        Mode::Filter { input } => Line::from(vec![
            Span::styled("filter: ", hl),
            Span::raw(format!("{input}_")),
            Span::styled(
                "  (Enter apply, Ctrl-U clear, Esc)",
                Style::new().fg(Color::DarkGray),
            ),
        ]),
        Mode::Prompt { kind, input } => {
            let q = match kind {
                PromptKind::AttachUrl => "attach to admin URL (host:port or http://…): ".to_owned(),
                PromptKind::KickReason { client } => format!("kick {client}, reason: "),
                PromptKind::ThrottleRate { client } => format!("throttle {client}, msgs/s: "),
                PromptKind::ThrottleBurst { rate, .. } => {
                    format!("throttle at {rate} msgs/s, burst: ")
                }
                PromptKind::PublishData { room } => format!("publish to {room} (JSON or text): "),
                PromptKind::JoinRoom { client } => format!("join {client} to room: "),
                PromptKind::LeaveRoom { client } => format!("remove {client} from room: "),
            };
            Line::from(vec![Span::styled(q, hl), Span::raw(format!("{input}_"))])
        }
        Mode::Confirm { op } => Line::from(Span::styled(
            format!("{}? y to confirm, any other key cancels", op.describe()),
            hl.add_modifier(Modifier::BOLD),
        )),
        Mode::Pick { room, .. } => Line::from(Span::styled(
            format!("migrate {room}: pick the target node (Up/Down, Enter; Esc cancels)"),
            hl,
        )),
    }
}

/// The keys of the view on screen (each view's own first), in one line of 80 columns.
fn key_hints(app: &App) -> &'static str {
    let drilled = |open: bool, in_room: &'static str, list: &'static str| {
        if open {
            in_room
        } else {
            list
        }
    };
    match app.view {
        View::Cluster => {
            "d drain  u undrain  / filter  s sort  1-4/Tab view  : attach  ? help  q quit"
        }
        View::Rooms => drilled(
            app.rooms.drill.is_some(),
            "h history/members  p publish  m migrate  k kick  l leave  Esc back  ? help",
            "⏎ open  h history  p publish  m migrate  / filter  s sort  1-4 view  ? help",
        ),
        View::Clients => drilled(
            app.clients.drill.is_some(),
            "k kick  t/T throttle/unthrottle  j join  l leave  Esc back  ? help  q quit",
            "⏎ open  k kick  t/T thr/unthr  j join  l leave  / filter  s sort  ? help",
        ),
        View::Events => "/ filter  s sort  1-4/Tab view  : attach  ? help  q quit",
    }
}

fn centered(frame: &Frame<'_>, w: u16, h: u16) -> Rect {
    let area = frame.area();
    let [v] = Layout::vertical([Constraint::Length(h.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [r] = Layout::horizontal([Constraint::Length(w.min(area.width))])
        .flex(Flex::Center)
        .areas(v);
    r
}

fn render_pick(frame: &mut Frame<'_>, room: &str, options: &[String], selected: usize) {
    let area = centered(frame, 40, options.len() as u16 + 2);
    frame.render_widget(Clear, area);
    let items: Vec<ListItem<'_>> = options.iter().map(|o| ListItem::new(o.as_str())).collect();
    let list = List::new(items)
        .block(Block::bordered().title(format!(" move {room} to ")))
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("> ");
    let mut st = ListState::default().with_selected(Some(selected));
    frame.render_stateful_widget(list, area, &mut st);
}

const HELP: &[&str] = &[
    "1 2 3 4, Tab   Cluster, Rooms, Clients, Events",
    "Up/Down   move the selection (past the edge: next page)",
    "PgUp/PgDn   previous / next page (lists, a room's panes)",
    "Enter / Esc   open / leave a room or client",
    "/   filter this view (Ctrl-U clears, Enter applies)",
    "s   cycle the sort column",
    "k   kick the client (reason, Enter, y)",
    "t   throttle (msgs/s, Enter, burst, Enter, y)",
    "T   unthrottle the client",
    "d / u   drain (then y) / undrain the node",
    "m   migrate the room (pick node, Enter, y)",
    "p   publish into the room as the backend (text, Enter, y)",
    "h   the room's history, newest first (again: members)",
    "j / l   make the client join / leave a room (name, y)",
    ":   attach to another node (admin URL, Enter)",
    "?   this help      q, Ctrl-C   quit",
];

fn render_help(frame: &mut Frame<'_>) {
    let area = centered(frame, 60, HELP.len() as u16 + 2);
    frame.render_widget(Clear, area);
    let lines: Vec<Line<'_>> = HELP.iter().map(|l| Line::raw(*l)).collect();
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" keys (Esc or ? closes) ")),
        area,
    );
}

/// The title of a server-paged list: the rows on screen out of the total, the page, sort,
/// filter, and whether the page is still loading or some nodes did not answer.
fn paged_title<T: Row>(what: &str, list: &PagedList<T>, shown: usize) -> String {
    let (ls, paging, total) = (&list.list, &list.paging, list.total);
    let sort = T::SORTS[ls.sort.min(T::SORTS.len() - 1)].0;
    let mut t = if shown == 0 {
        format!(" {what} 0 of {total} · sort {sort} ")
    } else {
        let first = paging.offset() + 1;
        let last = paging.offset() + shown as u64;
        format!(" {what} {first}-{last} of {total} · sort {sort} ")
    };
    if paging.number() > 1 {
        t.push_str(&format!("· p{} ", paging.number()));
    }
    if !ls.filter.is_empty() {
        t.push_str(&format!("· filter \"{}\" ", ls.filter));
    }
    if !list.loaded() {
        t.push_str("· loading… ");
    }
    if !list.missing.is_empty() {
        t.push_str(&format!("· PARTIAL, missing {} ", list.missing.join(",")));
    }
    t
}

/// The title of a list block: view, counts, sort and filter.
fn list_title(
    ls: &crate::views::ListState,
    names: &[&str],
    what: &str,
    shown: usize,
    total: usize,
) -> String {
    let sort = names[ls.sort.min(names.len() - 1)];
    let mut t = format!(" {what} {shown}/{total} · sort {sort} ");
    if !ls.filter.is_empty() {
        t.push_str(&format!("· filter \"{}\" ", ls.filter));
    }
    t
}

/// A rate history as a sparkline in `area`, newest sample on the right, scaled to `peak`
/// (`None`: the highest sample shown).
pub(crate) fn render_history(
    frame: &mut Frame<'_>,
    area: Rect,
    hist: &std::collections::VecDeque<u64>,
    peak: Option<u64>,
    color: Color,
) {
    let newest_first: Vec<u64> = hist
        .iter()
        .rev()
        .take(usize::from(area.width))
        .copied()
        .collect();
    let peak = peak.unwrap_or_else(|| newest_first.iter().copied().max().unwrap_or(0).max(1));
    frame.render_widget(
        ratatui::widgets::Sparkline::default()
            .data(&newest_first)
            .max(peak)
            .direction(ratatui::widgets::RenderDirection::RightToLeft)
            .style(Style::new().fg(color)),
        area,
    );
}

pub(crate) fn selected_style() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

pub(crate) fn fmt_rate(r: Option<f64>) -> String {
    match r {
        None => "-".into(),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
    }
}

pub(crate) fn fmt_bytes(b: u64) -> String {
    const K: f64 = 1024.0;
    let f = b as f64;
    if f >= K * K * K {
        format!("{:.1}G", f / (K * K * K))
    } else if f >= K * K {
        format!("{:.1}M", f / (K * K))
    } else if f >= K {
        format!("{:.1}K", f / K)
    } else {
        format!("{b}")
    }
}

pub(crate) fn fmt_uptime(s: u64) -> String {
    if s >= 86_400 {
        format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600)
    } else if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
pub(crate) mod tests;
