//! View 3's state: a page of `/clients` ([`PagedList`]), each connection's msgs/s in and out
//! from its counters in the last two polls, and the open client, if any (all its connections).

use super::paging::{labels, Page};
use super::{matches, Component, ListState, Outcome, PagedList, Row};
use crate::action::Action;
use crate::client::Focus;
use crate::model::Answer;
use protocol::admin::{ClientDetail, ClientSort, ClientSummary, ClientsResponse, ListQuery};
use ratatui::layout::Rect;
use ratatui::Frame;
use std::collections::HashMap;

const SORTS: [(&str, &str); 5] = [
    ("id", ClientSort::Id.as_str()),
    ("user", ClientSort::User.as_str()),
    ("node", ClientSort::Node.as_str()),
    ("msgs in", ClientSort::MsgsIn.as_str()),
    ("queue", ClientSort::QueueBytes.as_str()),
];
const SORT_NAMES: [&str; 5] = labels(&SORTS);

/// One connection: `client@node#conn`.
pub fn conn_key(c: &ClientSummary) -> String {
    format!("{}@{}#{}", c.id, c.node, c.conn)
}

impl Row for ClientSummary {
    const SORTS: &'static [(&'static str, &'static str)] = &SORTS;

    fn key(&self) -> String {
        conn_key(self)
    }

    fn matches(&self, filter: &str) -> bool {
        matches(filter, &[&self.id, &self.user])
    }

    fn order(rows: &mut [&Self], sort: usize) {
        rows.sort_by(|a, b| a.id.cmp(&b.id).then(a.node.cmp(&b.node)));
        match sort {
            1 => rows.sort_by(|a, b| a.user.cmp(&b.user)),
            2 => rows.sort_by(|a, b| a.node.cmp(&b.node)),
            3 => rows.sort_by_key(|c| std::cmp::Reverse(c.msgs_in)),
            4 => rows.sort_by_key(|c| std::cmp::Reverse(c.queue_bytes)),
            _ => {}
        }
    }
}

/// The open client.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientDrill {
    pub id: String,
    /// Its last answer.
    pub detail: Option<ClientDetail>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientsView {
    pub list: PagedList<ClientSummary>,
    /// Msgs in and out per second of each connection on the page (by [`conn_key`]).
    pub rates: HashMap<String, (f64, f64)>,
    /// The counters behind `rates`: msgs in, msgs out, when (Unix ms).
    counts: HashMap<String, (u64, u64, u64)>,
    pub drill: Option<ClientDrill>,
}

impl ClientsView {
    /// The page to fetch: none while a client is open.
    pub fn wanted(&self) -> Option<ListQuery> {
        self.drill.is_none().then(|| self.list.query())
    }

    /// The open client, to fetch.
    pub fn focus(&self) -> Option<Focus> {
        self.drill.as_ref().map(|d| Focus::Client(d.id.clone()))
    }

    /// Closes the open client (another drill-down opened).
    pub fn close(&mut self) {
        self.drill = None;
    }

    /// Takes a page of `/clients` if it answers the page wanted now, and the rates of its
    /// connections as of `at_ms`.
    pub fn apply(&mut self, answer: Option<Answer<ClientsResponse>>, at_ms: u64) {
        let Some(Answer { query, page }) = answer.filter(|a| a.query == self.list.query()) else {
            self.list.clamp();
            return;
        };
        self.rates_from(&page.clients, at_ms);
        self.list.take(
            query,
            Page {
                rows: page.clients,
                total: page.total,
                next_cursor: page.next_cursor,
                missing: page.missing,
            },
        );
    }

    /// Per-connection msgs/s from the counters of this page and the last one: a connection
    /// seen at least half a second ago gets a new rate; connections no longer on the page are
    /// forgotten.
    fn rates_from(&mut self, clients: &[ClientSummary], at_ms: u64) {
        let mut counts = HashMap::with_capacity(clients.len());
        let mut rates = HashMap::with_capacity(clients.len());
        for c in clients {
            let key = conn_key(c);
            let mut now = (c.msgs_in, c.msgs_out, at_ms);
            match self.counts.get(&key) {
                Some(&(i, o, t)) if at_ms >= t + 500 => {
                    let secs = (at_ms - t) as f64 / 1000.0;
                    let per_s = |new: u64, old: u64| new.saturating_sub(old) as f64 / secs;
                    rates.insert(key.clone(), (per_s(c.msgs_in, i), per_s(c.msgs_out, o)));
                }
                Some(&prev) => {
                    // Too soon after the last sample to say much: keep that one.
                    now = prev;
                    if let Some(r) = self.rates.get(&key) {
                        rates.insert(key.clone(), *r);
                    }
                }
                None => {}
            }
            counts.insert(key, now);
        }
        self.counts = counts;
        self.rates = rates;
    }

    /// Takes the open client's answer, if `detail` is it; a poll with errors (`ok` false) and no
    /// answer for it forgets the last one.
    pub fn take_detail(&mut self, detail: Option<ClientDetail>, ok: bool) {
        let Some(drill) = &mut self.drill else { return };
        match detail {
            Some(d) if d.first.id == drill.id => drill.detail = Some(d),
            _ if !ok => drill.detail = None,
            _ => {}
        }
    }
}

impl Component for ClientsView {
    fn list(&self) -> &ListState {
        &self.list.list
    }

    fn sort_names(&self) -> &'static [&'static str] {
        &SORT_NAMES
    }

    fn set_page_size(&mut self, rows: usize) {
        self.list.page_size = rows;
    }

    fn update(&mut self, action: &Action) -> Outcome {
        match (action, &self.drill) {
            (Action::Open, None) => match self.list.selected() {
                Some(c) => {
                    let id = c.id.clone();
                    self.drill = Some(ClientDrill {
                        id: id.clone(),
                        detail: None,
                    });
                    Outcome::Focus(Some(Focus::Client(id)))
                }
                None => Outcome::Done,
            },
            (Action::Back, Some(_)) => {
                self.drill = None;
                Outcome::Focus(None)
            }
            // An open client's connections are not a list to move in.
            (_, Some(_)) => Outcome::Done,
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
        match &self.drill {
            Some(d) => Some(d.id.clone()),
            None => self.list.selected().map(|c| c.id.clone()),
        }
    }

    fn render(&self, frame: &mut Frame<'_>, area: Rect) {
        crate::ui::clients::render(self, frame, area);
    }
}
