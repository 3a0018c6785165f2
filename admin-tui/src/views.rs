//! The console's four views, each owning its state: [`ClusterView`] (the nodes and their rate
//! history), [`RoomsView`] and [`ClientsView`] (a server-paged list and a drill-down each; an
//! open room pages its members or its history) and
//! [`EventsView`] (the log). Each updates itself from the actions the App hands it and from its
//! part of a poll, and draws itself (through `crate::ui`), behind the uniform [`Component`].
//!
//! No I/O and no prompts: a view says what it wants of the network task by returning an
//! [`Outcome`]; the App keeps navigation, prompts and the outbox.

mod clients;
mod cluster;
mod events;
mod paging;
mod rooms;

pub use clients::{conn_key, ClientDrill, ClientsView};
pub use cluster::{ClusterView, RateHistory, RATE_HISTORY};
pub use events::{describe, EventsView};
pub use paging::{PagedList, Row};
pub use rooms::{Pane, RoomDrill, RoomsView, ROOM_HEAD_ROWS};

use crate::action::Action;
use crate::client::Focus;
use ratatui::layout::Rect;
use ratatui::Frame;

/// A view's list: the selected row, the filter and the sort column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListState {
    pub selected: usize,
    pub filter: String,
    /// Index into the view's sort columns.
    pub sort: usize,
}

impl ListState {
    /// Moves the selection for a move action, within `len` rows, `page` rows a page (a list
    /// the console holds whole; a server-paged one is a [`PagedList`]).
    pub fn moved(&mut self, action: &Action, page: usize, len: usize) -> Outcome {
        if let Some(d) = delta(action, page) {
            self.selected = step(self.selected, d, len);
        }
        Outcome::Done
    }

    /// A new filter, from the first row.
    pub fn set_filter(&mut self, filter: &str) {
        self.filter = filter.to_owned();
        self.selected = 0;
    }

    /// The next of `n` sort columns, from the first row.
    pub fn next_sort(&mut self, n: usize) {
        self.sort = (self.sort + 1) % n.max(1);
        self.selected = 0;
    }
}

/// What an action on a view asks of the App.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing more.
    Done,
    /// A drill-down opened (`Some`) or closed (`None`): the network task fetches it from now on.
    Focus(Option<Focus>),
}

/// What every view offers the App.
pub trait Component {
    /// The list's selection, filter and sort.
    fn list(&self) -> &ListState;
    /// The sort columns `s` cycles through, as shown.
    fn sort_names(&self) -> &'static [&'static str];
    /// Rows a PgUp/PgDn moves, and a page of a server-paged list.
    fn set_page_size(&mut self, rows: usize);
    /// Moving (Up, Down, PgUp, PgDn), opening (Enter) and leaving (Esc) a drill-down; other
    /// actions are the App's.
    fn update(&mut self, action: &Action) -> Outcome;
    /// Applies a filter the operator entered.
    fn set_filter(&mut self, filter: &str);
    /// The next sort column.
    fn cycle_sort(&mut self);
    /// The client the client actions (kick, throttle) apply to, if the view has one selected.
    fn target_client(&self) -> Option<String> {
        None
    }
    /// Draws the view's body in `area`.
    fn render(&self, frame: &mut Frame<'_>, area: Rect);
}

/// Case-insensitive substring match; an empty filter matches everything.
pub fn matches(filter: &str, fields: &[&str]) -> bool {
    if filter.is_empty() {
        return true;
    }
    let f = filter.to_lowercase();
    fields.iter().any(|s| s.to_lowercase().contains(&f))
}

/// `cur` moved by `delta` within `0..len`.
pub fn step(cur: usize, delta: isize, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let max = (len - 1) as isize;
    (cur as isize + delta).clamp(0, max) as usize
}

/// The step of a move action: one row, or a page of `page` rows.
fn delta(action: &Action, page: usize) -> Option<isize> {
    let page = page.max(1) as isize;
    match action {
        Action::Up => Some(-1),
        Action::Down => Some(1),
        Action::PageUp => Some(-page),
        Action::PageDown => Some(page),
        _ => None,
    }
}
