//! View 4: the live log: events streamed by the attached node (`/admin/v1/events`: peers up and
//! down, rooms created, moved or closed, operator actions), what this console saw change between
//! polls, attach/failover, and the operator's own actions.

use super::list_title;
use crate::views::{Component, EventsView};
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, List, ListItem, ListState};
use ratatui::Frame;

pub fn render(view: &EventsView, frame: &mut Frame<'_>, area: Rect) {
    let rows = view.rows();
    let items: Vec<ListItem<'_>> = rows
        .iter()
        .map(|l| ListItem::new(Line::raw(format!("{} {}", l.time, l.text))))
        .collect();
    let title = format!(
        "{}· node stream + polls ",
        list_title(
            &view.list,
            view.sort_names(),
            "Events",
            rows.len(),
            view.log.len()
        )
    );
    let list = List::new(items)
        .block(Block::bordered().title(title))
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut st =
        ListState::default().with_selected((!rows.is_empty()).then_some(view.list.selected));
    frame.render_stateful_widget(list, area, &mut st);
}
