//! View 1's state: the nodes of the last `/cluster` answer (filtered and sorted here: the list is
//! small), the selected node, and each node's msgs/s in and out, a sample a second, for the
//! sparklines. Tells what changed between two answers (for the event log).

use super::{matches, Component, ListState, Outcome};
use crate::action::Action;
use protocol::admin::{ClusterNode, ClusterResponse};
use ratatui::layout::Rect;
use ratatui::Frame;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Rate samples kept per node (one a second: five minutes).
pub const RATE_HISTORY: usize = 300;
/// Polls closer together than this (after an action, say) add no rate sample.
const SAMPLE_GAP_MS: u64 = 900;
/// Sort columns, cycled by `s`.
const SORTS: [&str; 4] = ["name", "connections", "rooms", "msgs in/s"];

/// Msgs/s in and out of one node, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateHistory {
    pub ins: VecDeque<u64>,
    pub outs: VecDeque<u64>,
}

impl RateHistory {
    fn push(&mut self, inp: u64, out: u64) {
        for (q, v) in [(&mut self.ins, inp), (&mut self.outs, out)] {
            if q.len() >= RATE_HISTORY {
                q.pop_front();
            }
            q.push_back(v);
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterView {
    /// The last answer.
    pub cluster: ClusterResponse,
    /// Msgs/s history of every node of the last answer, by name.
    pub rates: BTreeMap<String, RateHistory>,
    last_sample_ms: u64,
    pub list: ListState,
    page_size: usize,
}

impl Default for ClusterView {
    fn default() -> Self {
        Self {
            cluster: ClusterResponse::default(),
            rates: BTreeMap::new(),
            last_sample_ms: 0,
            list: ListState::default(),
            page_size: 10,
        }
    }
}

impl ClusterView {
    /// The nodes as shown: filtered by name, sorted by the sort column (then by name).
    pub fn rows(&self) -> Vec<&ClusterNode> {
        let mut rows: Vec<&ClusterNode> = self
            .cluster
            .nodes
            .iter()
            .filter(|n| matches(&self.list.filter, &[n.name()]))
            .collect();
        rows.sort_by(|a, b| a.name().cmp(b.name()));
        match self.list.sort {
            1 => rows.sort_by_key(|n| std::cmp::Reverse(n.stats().map_or(0, |s| s.connections))),
            2 => rows.sort_by_key(|n| std::cmp::Reverse(n.stats().map_or(0, |s| s.rooms_owned))),
            3 => rows.sort_by(|a, b| {
                let rate = |n: &ClusterNode| n.stats().map_or(0.0, |s| s.msgs_in_per_s);
                rate(b).total_cmp(&rate(a))
            }),
            _ => {}
        }
        rows
    }

    /// The selected node's name.
    pub fn selected(&self) -> Option<String> {
        self.rows()
            .get(self.list.selected)
            .map(|n| n.name().to_owned())
    }

    /// Active nodes other than `except`, by name (where a room can move).
    pub fn active_except(&self, except: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .cluster
            .nodes
            .iter()
            .filter(|n| n.state() == "active" && n.name() != except)
            .map(|n| n.name().to_owned())
            .collect();
        out.sort();
        out
    }

    /// Takes a new answer: lines for the event log in `log` when `diff` (what changed since the
    /// last answer), a rate sample when a second has passed since the last one (`taken_ms` 0:
    /// always). Returns whether it took a sample.
    pub fn apply(
        &mut self,
        cluster: ClusterResponse,
        taken_ms: u64,
        diff: bool,
        log: &mut Vec<String>,
    ) -> bool {
        let key = self.selected();
        if diff {
            self.diff(&cluster, log);
        }
        let sample = taken_ms == 0 || taken_ms >= self.last_sample_ms + SAMPLE_GAP_MS;
        if sample {
            self.last_sample_ms = taken_ms;
            self.record_rates(&cluster);
        }
        self.cluster = cluster;
        if let Some(i) = key.and_then(|k| self.rows().iter().position(|n| n.name() == k)) {
            self.list.selected = i;
        }
        self.clamp();
        sample
    }

    fn clamp(&mut self) {
        let n = self.rows().len();
        self.list.selected = self.list.selected.min(n.saturating_sub(1));
    }

    /// One sample of every node's msgs/s; nodes that left the list lose their history.
    fn record_rates(&mut self, cluster: &ClusterResponse) {
        let names: BTreeSet<&str> = cluster.nodes.iter().map(ClusterNode::name).collect();
        self.rates.retain(|k, _| names.contains(k.as_str()));
        let whole = |r: Option<f64>| r.map_or(0, |v| v.max(0.0).round() as u64);
        for n in &cluster.nodes {
            let s = n.stats();
            self.rates.entry(n.name().to_owned()).or_default().push(
                whole(s.map(|s| s.msgs_in_per_s)),
                whole(s.map(|s| s.msgs_out_per_s)),
            );
        }
    }

    fn diff(&self, new: &ClusterResponse, log: &mut Vec<String>) {
        let old: BTreeMap<&str, &ClusterNode> =
            self.cluster.nodes.iter().map(|n| (n.name(), n)).collect();
        for n in &new.nodes {
            let name = n.name();
            match old.get(name) {
                None => log.push(format!("node {name} appeared ({})", n.state())),
                Some(o) if o.state() != n.state() => {
                    log.push(format!("node {name}: {} -> {}", o.state(), n.state()))
                }
                Some(o) if !o.incarnation().is_empty() && o.incarnation() != n.incarnation() => {
                    log.push(format!("node {name} restarted"))
                }
                _ => {}
            }
        }
        let new_names: BTreeSet<&str> = new.nodes.iter().map(ClusterNode::name).collect();
        for name in old.keys().filter(|k| !new_names.contains(*k)) {
            log.push(format!("node {name} left the list"));
        }
    }
}

impl Component for ClusterView {
    fn list(&self) -> &ListState {
        &self.list
    }

    fn sort_names(&self) -> &'static [&'static str] {
        &SORTS
    }

    fn set_page_size(&mut self, rows: usize) {
        self.page_size = rows;
    }

    fn update(&mut self, action: &Action) -> Outcome {
        let rows = self.rows().len();
        self.list.moved(action, self.page_size, rows)
    }

    fn set_filter(&mut self, filter: &str) {
        self.list.set_filter(filter);
    }

    fn cycle_sort(&mut self) {
        self.list.next_sort(SORTS.len());
    }

    fn render(&self, frame: &mut Frame<'_>, area: Rect) {
        crate::ui::cluster::render(self, frame, area);
    }
}
