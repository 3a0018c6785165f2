//! View 2's state: a page of `/rooms` ([`PagedList`]) and the open room, if any: its figures,
//! its msgs/s since it opened, and one of two panes, each a server-paged list: its members
//! (`/presence`, by client id) or its history (`/history`, newest first). Tells which rooms
//! appeared, moved or disappeared between two answers that both hold every room.

use super::paging::{labels, Page};
use super::{matches, Component, ListState, Outcome, PagedList, Row};
use crate::action::Action;
use crate::client::{Focus, RoomPane};
use crate::model::{Answer, RoomPage};
use protocol::admin::{
    HistoryMessage, ListQuery, Member, RoomDetail, RoomInfo, RoomSort, RoomsResponse,
};
use ratatui::layout::Rect;
use ratatui::Frame;
use std::collections::{BTreeMap, VecDeque};

/// Msgs/s samples kept for the open room (one a second).
const RATE_HISTORY: usize = super::RATE_HISTORY;
const SORTS: [(&str, &str); 4] = [
    ("name", RoomSort::Name.as_str()),
    ("members", RoomSort::Members.as_str()),
    ("msgs/s", RoomSort::MsgsPerS.as_str()),
    ("owner", RoomSort::Owner.as_str()),
];
const SORT_NAMES: [&str; 4] = labels(&SORTS);

impl Row for RoomInfo {
    const SORTS: &'static [(&'static str, &'static str)] = &SORTS;

    fn key(&self) -> String {
        self.name.clone()
    }

    fn matches(&self, filter: &str) -> bool {
        matches(filter, &[&self.name])
    }

    fn order(rows: &mut [&Self], sort: usize) {
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        match sort {
            1 => rows.sort_by_key(|r| std::cmp::Reverse(r.members)),
            2 => rows.sort_by(|a, b| b.msgs_per_s.total_cmp(&a.msgs_per_s)),
            3 => rows.sort_by(|a, b| a.owner.cmp(&b.owner)),
            _ => {}
        }
    }
}

/// Rows the open room's figures take above its pane.
pub const ROOM_HEAD_ROWS: usize = 5;

impl Row for Member {
    /// Members come by client id, the one order the API has.
    const SORTS: &'static [(&'static str, &'static str)] = &[("client id", "")];

    fn key(&self) -> String {
        self.client.clone()
    }

    fn matches(&self, _filter: &str) -> bool {
        true
    }

    fn order(_rows: &mut [&Self], _sort: usize) {}
}

impl Row for HistoryMessage {
    /// Newest first, the one order the API has.
    const SORTS: &'static [(&'static str, &'static str)] = &[("newest first", "")];

    fn key(&self) -> String {
        self.seq.to_string()
    }

    fn matches(&self, _filter: &str) -> bool {
        true
    }

    fn order(_rows: &mut [&Self], _sort: usize) {}
}

/// What the open room shows under its figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Pane {
    #[default]
    Members,
    History,
}

/// The open room.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomDrill {
    pub name: String,
    /// Its last answer (its figures).
    pub detail: Option<RoomDetail>,
    /// The pane on screen.
    pub pane: Pane,
    /// A page of its members.
    pub members: PagedList<Member>,
    /// A page of its history, newest first.
    pub history: PagedList<HistoryMessage>,
    /// Its msgs/s, a sample a second, oldest first.
    pub rate: VecDeque<u64>,
}

impl RoomDrill {
    fn new(name: String, pane: Pane, page_size: usize) -> Self {
        let mut d = RoomDrill {
            name,
            pane,
            ..RoomDrill::default()
        };
        d.set_page_size(page_size);
        d
    }

    /// Rows of a pane's page: the list's less the room's figures.
    fn set_page_size(&mut self, list_rows: usize) {
        let rows = list_rows.saturating_sub(ROOM_HEAD_ROWS).max(1);
        self.members.page_size = rows;
        self.history.page_size = rows;
    }

    /// What the network task fetches for it.
    pub fn focus(&self) -> Focus {
        let pane = match self.pane {
            Pane::Members => RoomPane::Members(self.members.query()),
            Pane::History => RoomPane::History(self.history.query()),
        };
        Focus::Room {
            name: self.name.clone(),
            pane,
        }
    }

    /// The selected member, in the members pane.
    pub fn selected_member(&self) -> Option<&Member> {
        match self.pane {
            Pane::Members => self.members.selected(),
            Pane::History => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomsView {
    pub list: PagedList<RoomInfo>,
    pub drill: Option<RoomDrill>,
}

impl RoomsView {
    /// The room the room actions (migrate) apply to: the open one, or the selected row.
    pub fn target_room(&self) -> Option<String> {
        match &self.drill {
            Some(d) => Some(d.name.clone()),
            None => self.list.selected().map(|r| r.name.clone()),
        }
    }

    /// The owner of `room` as the page on screen says (empty if it is not on the page).
    pub fn owner_of(&self, room: &str) -> String {
        self.list
            .rows
            .iter()
            .find(|r| r.name == room)
            .map(|r| r.owner.clone())
            .unwrap_or_default()
    }

    /// The page to fetch: none while a room is open.
    pub fn wanted(&self) -> Option<ListQuery> {
        self.drill.is_none().then(|| self.list.query())
    }

    /// The open room and its pane's page, to fetch.
    pub fn focus(&self) -> Option<Focus> {
        self.drill.as_ref().map(RoomDrill::focus)
    }

    /// `h`: the history of the open room, or back to its members; in the list, opens the
    /// selected room on its history. Says whether a room is open now.
    pub fn toggle_history(&mut self) -> bool {
        match &mut self.drill {
            Some(d) => {
                d.pane = match d.pane {
                    Pane::Members => Pane::History,
                    Pane::History => Pane::Members,
                };
                true
            }
            None => match self.list.selected() {
                Some(r) => {
                    let name = r.name.clone();
                    self.drill = Some(RoomDrill::new(name, Pane::History, self.list.page_size));
                    true
                }
                None => false,
            },
        }
    }

    /// Closes the open room (another drill-down opened).
    pub fn close(&mut self) {
        self.drill = None;
    }

    /// Takes a page of `/rooms` if it answers the page wanted now; with `diff`, says in `log`
    /// which rooms appeared, moved or disappeared (only when this page and the last one both
    /// hold the whole unfiltered list: a room leaving a page is not a room leaving the cluster).
    pub fn apply(
        &mut self,
        answer: Option<Answer<RoomsResponse>>,
        diff: bool,
        log: &mut Vec<String>,
    ) {
        let Some(Answer { query, page }) = answer.filter(|a| a.query == self.list.query()) else {
            self.list.clamp();
            return;
        };
        let whole = query.q.as_deref().unwrap_or("").is_empty()
            && query.cursor.is_none()
            && page.next_cursor.is_none();
        let comparable = whole
            && self.list.paging.shown.as_ref() == Some(&query)
            && self.list.paging.next.is_none();
        if diff && comparable {
            self.diff(&page.rooms, log);
        }
        self.list.take(
            query,
            Page {
                rows: page.rooms,
                total: page.total,
                next_cursor: page.next_cursor,
                missing: page.missing,
            },
        );
    }

    fn diff(&self, new: &[RoomInfo], log: &mut Vec<String>) {
        let by_name = |rooms: &[RoomInfo]| -> BTreeMap<String, String> {
            rooms
                .iter()
                .map(|r| (r.name.clone(), r.owner.clone()))
                .collect()
        };
        let (old, new) = (by_name(&self.list.rows), by_name(new));
        for (name, owner) in &new {
            match old.get(name) {
                None => log.push(format!("room {name} appeared on {owner}")),
                Some(o) if o != owner => log.push(format!("room {name} moved {o} -> {owner}")),
                _ => {}
            }
        }
        for name in old.keys().filter(|k| !new.contains_key(*k)) {
            log.push(format!("room {name} disappeared"));
        }
    }

    /// Takes the open room's answer, if `detail` is it (and its pane's page, if that answers
    /// the page on screen); a poll with errors (`ok` false) and no answer for it forgets the
    /// last one. With `sample`, adds a rate sample.
    pub fn take_detail(
        &mut self,
        detail: Option<(RoomDetail, Option<RoomPage>)>,
        ok: bool,
        sample: bool,
    ) {
        let Some(drill) = &mut self.drill else { return };
        match detail {
            Some((d, page)) if d.name == drill.name => {
                match page {
                    Some(RoomPage::Members(Answer { query, page })) => {
                        drill.members.take(
                            query,
                            Page {
                                rows: page.members,
                                total: page.total,
                                next_cursor: page.next_cursor,
                                missing: Vec::new(),
                            },
                        );
                    }
                    Some(RoomPage::History(Answer { query, page })) => {
                        drill.history.take(
                            query,
                            Page {
                                rows: page.messages,
                                total: d.history_len,
                                next_cursor: page.next_cursor,
                                missing: Vec::new(),
                            },
                        );
                    }
                    None => {}
                }
                drill.detail = Some(d);
            }
            _ if !ok => drill.detail = None,
            _ => {}
        }
        if let (true, Some(d)) = (sample, &drill.detail) {
            if drill.rate.len() >= RATE_HISTORY {
                drill.rate.pop_front();
            }
            drill.rate.push_back(d.msgs_per_s.max(0.0).round() as u64);
        }
    }
}

impl Component for RoomsView {
    fn list(&self) -> &ListState {
        &self.list.list
    }

    fn sort_names(&self) -> &'static [&'static str] {
        &SORT_NAMES
    }

    fn set_page_size(&mut self, rows: usize) {
        self.list.page_size = rows;
        if let Some(d) = &mut self.drill {
            d.set_page_size(rows);
        }
    }

    fn update(&mut self, action: &Action) -> Outcome {
        match (action, &mut self.drill) {
            (Action::Open, None) => match self.list.selected() {
                Some(r) => {
                    let drill = RoomDrill::new(r.name.clone(), Pane::Members, self.list.page_size);
                    let focus = drill.focus();
                    self.drill = Some(drill);
                    Outcome::Focus(Some(focus))
                }
                None => Outcome::Done,
            },
            (Action::Back, Some(_)) => {
                self.drill = None;
                Outcome::Focus(None)
            }
            (_, Some(drill)) => {
                match drill.pane {
                    Pane::Members => drill.members.update(action),
                    Pane::History => drill.history.update(action),
                }
                Outcome::Done
            }
            (_, None) => {
                self.list.update(action);
                Outcome::Done
            }
        }
    }

    fn set_filter(&mut self, filter: &str) {
        self.list.set_filter(filter, self.drill.is_none());
    }

    fn cycle_sort(&mut self) {
        self.list.cycle_sort(self.drill.is_none());
    }

    fn target_client(&self) -> Option<String> {
        let member = self.drill.as_ref()?.selected_member()?;
        Some(member.client.clone())
    }

    fn render(&self, frame: &mut Frame<'_>, area: Rect) {
        crate::ui::rooms::render(self, frame, area);
    }
}
