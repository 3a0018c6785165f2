//! A server-paged list (rooms, clients, an open room's members and history): one page of rows as the API answered it, the cursors of
//! the pages before it (so PgUp goes back), and the page the console wants now as a
//! `protocol::admin::ListQuery`. A page is shown only if it answers the query wanted now.
//!
//! The rows of the page are filtered and sorted here too, the same way, so that a new filter or
//! sort shows at once while the API's answer is on its way.

use super::{delta, step, ListState};
use crate::action::Action;
use protocol::admin::{ListQuery, MAX_PAGE};

/// A row of a server-paged list.
pub trait Row {
    /// The sort columns: as shown, and the API's `sort` value.
    const SORTS: &'static [(&'static str, &'static str)];
    /// What identifies the row across polls (the selection follows it).
    fn key(&self) -> String;
    /// Whether the row matches the view's filter.
    fn matches(&self, filter: &str) -> bool;
    /// Sorts `rows` (already by key order) by sort column `sort`.
    fn order(rows: &mut [&Self], sort: usize);
}

/// The shown names of sort columns.
pub const fn labels<const N: usize>(
    sorts: &[(&'static str, &'static str); N],
) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = sorts[i].0;
        i += 1;
    }
    out
}

/// Where a server-paged list is: the pages before the current one, and the one after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paging {
    /// For every page after the first, up to the current one: its cursor and the position of
    /// its first row in the whole list.
    pub stack: Vec<(String, u64)>,
    /// The current page's `next_cursor`, from its last answer (`None`: the last page).
    pub next: Option<String>,
    /// Select the last row when the page arrives (Up from the first row of a page).
    pub select_last: bool,
    /// The request the rows on screen answer.
    pub shown: Option<ListQuery>,
}

impl Paging {
    pub fn cursor(&self) -> Option<String> {
        self.stack.last().map(|(c, _)| c.clone())
    }

    /// Position of the page's first row in the whole list.
    pub fn offset(&self) -> u64 {
        self.stack.last().map_or(0, |(_, o)| *o)
    }

    /// 1-based page number.
    pub fn number(&self) -> usize {
        self.stack.len() + 1
    }

    fn reset(&mut self) {
        self.stack.clear();
        self.next = None;
        self.select_last = false;
    }
}

/// One page of rows and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct PagedList<T> {
    /// The page as the API answered it.
    pub rows: Vec<T>,
    /// Rows matching the filter, on every page.
    pub total: usize,
    /// Nodes that did not answer the last page.
    pub missing: Vec<String>,
    pub paging: Paging,
    pub list: ListState,
    /// Rows per page.
    pub page_size: usize,
}

impl<T> Default for PagedList<T> {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            total: 0,
            missing: Vec::new(),
            paging: Paging::default(),
            list: ListState::default(),
            page_size: 10,
        }
    }
}

/// A page as the API answered it.
pub struct Page<T> {
    pub rows: Vec<T>,
    pub total: usize,
    pub next_cursor: Option<String>,
    pub missing: Vec<String>,
}

impl<T: Row> PagedList<T> {
    /// The page the console wants: the filter and sort, the current cursor, a screenful. A list
    /// in one fixed order (a sort value of `""`: a room's members, its history) sends no sort.
    pub fn query(&self) -> ListQuery {
        let (_, sort) = T::SORTS[self.list.sort.min(T::SORTS.len() - 1)];
        ListQuery {
            limit: Some(self.page_size.clamp(1, MAX_PAGE)),
            cursor: self.paging.cursor(),
            q: Some(self.list.filter.clone()).filter(|f| !f.is_empty()),
            sort: Some(sort.to_owned()).filter(|s| !s.is_empty()),
            ..ListQuery::default()
        }
    }

    /// Whether the rows on screen answer the page the console wants (else it is loading).
    pub fn loaded(&self) -> bool {
        self.paging.shown.as_ref() == Some(&self.query())
    }

    /// The rows as shown: filtered by the filter, sorted by the sort column.
    pub fn shown(&self) -> Vec<&T> {
        let mut rows: Vec<&T> = self
            .rows
            .iter()
            .filter(|r| r.matches(&self.list.filter))
            .collect();
        T::order(&mut rows, self.list.sort);
        rows
    }

    pub fn selected(&self) -> Option<&T> {
        self.shown().get(self.list.selected).copied()
    }

    fn find(&self, key: &str) -> Option<usize> {
        self.shown().iter().position(|r| r.key() == key)
    }

    /// Moves the selection; past the first or last row, turns the page.
    pub fn update(&mut self, action: &Action) {
        let turned = match action {
            Action::Up => self.list.selected == 0 && self.page_back(true),
            Action::Down => {
                let last = self.shown().len().saturating_sub(1);
                self.list.selected >= last && self.page_forward()
            }
            Action::PageUp => self.page_back(false),
            Action::PageDown => self.page_forward(),
            _ => return,
        };
        if !turned {
            if let Some(d) = delta(action, self.page_size) {
                let n = self.shown().len();
                self.list.selected = step(self.list.selected, d, n);
            }
        }
    }

    /// PgDn (or Down on the last row): asks for the next page. False when there is none (the
    /// last page), true also while the page asked for last is still loading.
    fn page_forward(&mut self) -> bool {
        if !self.loaded() {
            // The page asked for last is still coming: stay put rather than skip past it.
            return true;
        }
        let Some(next) = self.paging.next.take() else {
            return false;
        };
        let offset = self.paging.offset() + self.rows.len() as u64;
        self.paging.stack.push((next, offset));
        self.paging.select_last = false;
        self.list.selected = 0;
        true
    }

    /// PgUp (or Up on the first row, then `select_last`): goes back one page. False on the
    /// first page.
    fn page_back(&mut self, select_last: bool) -> bool {
        if self.paging.stack.pop().is_none() {
            return false;
        }
        self.paging.next = None;
        self.paging.select_last = select_last;
        self.list.selected = 0;
        true
    }

    /// A new filter, from the first page (`restart`: not while a drill-down is open).
    pub fn set_filter(&mut self, filter: &str, restart: bool) {
        self.list.filter = filter.to_owned();
        self.list.selected = 0;
        if restart {
            self.paging.reset();
        }
    }

    /// The next sort column, from the first page (`restart`: not while a drill-down is open).
    pub fn cycle_sort(&mut self, restart: bool) {
        self.list.sort = (self.list.sort + 1) % T::SORTS.len();
        self.list.selected = 0;
        if restart {
            self.paging.reset();
        }
    }

    /// Takes a page if it answers the page wanted now (an answer to an older request, another
    /// filter, sort or page, is dropped). The selection follows its row through a refresh of
    /// the same page; a new page keeps the row the action chose (the first, or the last).
    /// Returns whether it took the page.
    pub fn take(&mut self, query: ListQuery, page: Page<T>) -> bool {
        if query != self.query() {
            return false;
        }
        let key = self
            .selected()
            .map(Row::key)
            .filter(|_| self.paging.shown.as_ref() == Some(&query));
        self.total = page.total;
        self.missing = page.missing;
        self.rows = page.rows;
        self.paging.next = page.next_cursor;
        self.paging.shown = Some(query);
        if std::mem::take(&mut self.paging.select_last) {
            self.list.selected = self.rows.len().saturating_sub(1);
        }
        if self.rows.is_empty() {
            // The rows of this page went away: show the page before it.
            self.paging.stack.pop();
        }
        if let Some(i) = key.and_then(|k| self.find(&k)) {
            self.list.selected = i;
        }
        self.clamp();
        true
    }

    /// Keeps the selection within the rows shown.
    pub fn clamp(&mut self) {
        let n = self.shown().len();
        self.list.selected = self.list.selected.min(n.saturating_sub(1));
    }
}
