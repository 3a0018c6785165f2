//! The orders a page of `GET /admin/v1/clients` walks on this node ([`Orders`]): for every
//! sort column, this node's connections in the order of their cursor key ([`sort_key`]), kept
//! as connections come and go, so a page of `limit` rows after a cursor costs
//! O(log n + limit) instead of listing, keying and sorting every connection.
//!
//! - `id`, `user` and `connected_at` never change during a connection's life: one B-tree each,
//!   updated by [`Orders::insert`] and [`Orders::remove`]. The `id` order is always kept; the
//!   `user` and `connected_at` orders only from the first page sorted by them on
//!   ([`Orders::fill`]): until then a connect costs two tree inserts less (on a hot-room storm
//!   the orders' key comparisons were about a tenth of the node's CPU) and holds two keys less.
//!   A page sorted by a column whose order is not kept (yet) is cut from one pass over every
//!   connection, as a `q` page is.
//! - `node` is the same on every connection of a node: its order is the `id` order.
//! - `msgs_in`, `msgs_out` and `queue_bytes` change with every frame: their B-trees hold the
//!   values read at the last [`Orders::refresh`] (the hub refreshes at most once a second, when a
//!   page sorted by one of them is asked for), and a page sorted by them shows those values.
//!
//! What a connection is (client, user, connect time, counters) is read from the hub's own record
//! of it ([`Rows`]), never copied: the orders hold only their keys, and while the counter orders
//! are kept, the counters those hold.
//!
//! A key is never built as a string: [`Key`] compares as the bytes of its [`sort_key`] string
//! would, so a cursor (that string) is looked up directly. Pure: no locks, no I/O.
//!
//! Measured over 100 000 connections (release build, a throwaway test, on a 2-core machine
//! shared with a benchmark, 2026-12-07): a page of 100 by `id`, `user` or `msgs_in` took
//! 10–33 µs, against 40–55 ms to key and sort every row as each node did before (not counting
//! the summaries it built of every connection first); with `q`, 21–41 ms, a test of every
//! connection (its strings, scattered in memory) to keep `total` exact; an insert 6 µs; a
//! refresh of every counter 30 ms when none changed, 220 ms when all did (in batches).

use crate::ids::{ClientId, ConnId, UserId};
use protocol::admin::{ClientQuery, ClientSort, ClientSummary};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

/// A numeric column's key part, largest first.
fn desc(v: u64) -> String {
    format!("{:020}", u64::MAX - v)
}

/// The cursor key of a connection for a sort column: the column, then a unique tie-breaker
/// (client id, node, connection number). Text columns ascend, numeric ones descend (their part
/// is `u64::MAX - value` in 20 digits). An unknown column sorts as `id`.
pub fn sort_key(c: &ClientSummary, sort: &str) -> String {
    let tie = format!("{}#{}#{:020}", c.id, c.node, c.conn);
    match Column::of(sort) {
        Column::Id => tie,
        Column::User => format!("{}#{tie}", c.user),
        Column::Node => format!("{}#{tie}", c.node),
        Column::ConnectedAt => format!("{}#{tie}", desc(c.connected_at)),
        Column::Counter(i) => {
            let counters = [c.msgs_in, c.msgs_out, c.queue_bytes as u64];
            format!("{}#{tie}", desc(counters[i]))
        }
    }
}

/// A sort column of `/clients`, as the node orders it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// Client id (and any unknown column).
    Id,
    /// User id.
    User,
    /// Node (one value per node: the `id` order).
    Node,
    /// When the connection opened.
    ConnectedAt,
    /// A counter: index into [`Counters`] (`msgs_in`, `msgs_out`, `queue_bytes`).
    Counter(usize),
}

impl Column {
    /// The column of a `sort` value ([`ClientSort`]); an unknown one sorts as `id`.
    pub fn of(sort: &str) -> Self {
        match ClientSort::parse(sort).unwrap_or(ClientSort::Id) {
            ClientSort::Id => Self::Id,
            ClientSort::User => Self::User,
            ClientSort::Node => Self::Node,
            ClientSort::ConnectedAt => Self::ConnectedAt,
            ClientSort::MsgsIn => Self::Counter(0),
            ClientSort::MsgsOut => Self::Counter(1),
            ClientSort::QueueBytes => Self::Counter(2),
        }
    }
}

/// `msgs_in`, `msgs_out`, `queue_bytes` of one connection.
pub type Counters = [u64; 3];

/// What a key holds before its tie-breaker.
#[derive(Debug, Clone)]
enum Head {
    /// Nothing: the key is the tie-breaker (`id`).
    None,
    /// Text, then `#` (`user`).
    Text(Arc<str>),
    /// A number largest first, as 20 digits of `u64::MAX - v`, then `#`.
    Desc(u64),
    /// A cursor: these bytes, no tie-breaker.
    Probe(Arc<str>),
}

/// A key that orders as the bytes of its [`sort_key`] string.
#[derive(Debug, Clone)]
struct Key {
    head: Head,
    /// `id#node#conn` (20 digits), shared by every order of a connection.
    tie: Arc<str>,
}

impl Key {
    fn probe(cursor: &str) -> Self {
        Key {
            head: Head::Probe(Arc::from(cursor)),
            tie: Arc::from(""),
        }
    }

    /// The key's string, in up to three slices (`buf` holds a number's digits).
    fn parts<'a>(&'a self, buf: &'a mut [u8; 20]) -> [&'a [u8]; 3] {
        match &self.head {
            Head::None => [self.tie.as_bytes(), b"", b""],
            Head::Text(t) => [t.as_bytes(), b"#", self.tie.as_bytes()],
            Head::Desc(v) => {
                let mut n = u64::MAX - v;
                for b in buf.iter_mut().rev() {
                    *b = b'0' + (n % 10) as u8;
                    n /= 10;
                }
                [&buf[..], b"#", self.tie.as_bytes()]
            }
            Head::Probe(p) => [p.as_bytes(), b"", b""],
        }
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        match (&self.head, &other.head) {
            (Head::None, Head::None) => self.tie.cmp(&other.tie),
            // Fixed-width digits of MAX - v: the larger value first, then the tie-breaker.
            (Head::Desc(a), Head::Desc(b)) => b.cmp(a).then_with(|| self.tie.cmp(&other.tie)),
            _ => {
                let (mut x, mut y) = ([0u8; 20], [0u8; 20]);
                let a = self.parts(&mut x);
                let b = other.parts(&mut y);
                a.iter()
                    .flat_map(|p| p.iter())
                    .cmp(b.iter().flat_map(|p| p.iter()))
            }
        }
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Key {}

/// What the orders read of one held connection: the hub's own record of it, borrowed (the
/// orders copy none of it: a copy per connection was ≈ 150 bytes of every idle connection).
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    /// Client id.
    pub client: &'a ClientId,
    /// User id.
    pub user: &'a UserId,
    /// When the connection opened, Unix seconds.
    pub connected_at: u64,
    /// Its counters now (what a counter order takes it in under, and what a page sorted by a
    /// counter that is not kept reads).
    pub counters: Counters,
}

/// Where the orders read a held connection's [`Row`]: the hub's map of connections. Every
/// connection the orders hold has a row (the hub changes both under one lock).
pub trait Rows {
    /// The row of connection `id`, if held.
    fn row(&self, id: ConnId) -> Option<Row<'_>>;
}

/// A connection's tie-breaker, `id#node#conn` (20 digits): the key of the `id` order and the
/// end of every other.
fn tie(node: &str, id: ConnId, client: &ClientId) -> Arc<str> {
    Arc::from(format!("{client}#{node}#{:020}", id.0))
}

/// Connection `row`'s key in `column`, after `tie` (counter columns: `counters`).
fn key(column: Column, node: &Arc<str>, tie: &Arc<str>, row: Row<'_>, counters: Counters) -> Key {
    let head = match column {
        Column::Id => Head::None,
        Column::User => Head::Text(row.user.shared()),
        Column::Node => Head::Text(node.clone()),
        Column::ConnectedAt => Head::Desc(row.connected_at),
        Column::Counter(i) => Head::Desc(counters[i]),
    };
    Key {
        head,
        tie: tie.clone(),
    }
}

/// Where a [`Orders::refresh`] goes on.
#[derive(Debug)]
pub struct Resume(Key);

/// This node's connections in the order of every sort column. Holds one key per connection
/// in each order it keeps, and while the counter orders are kept the counters they hold (all
/// bounded by `limits.max_connections`); what a connection is (client, user, connect time) is
/// read from the hub's [`Rows`], not copied.
#[derive(Debug)]
pub struct Orders {
    node: Arc<str>,
    by_id: BTreeMap<Key, ConnId>,
    by_user: BTreeMap<Key, ConnId>,
    by_connected: BTreeMap<Key, ConnId>,
    by_counter: [BTreeMap<Key, ConnId>; 3],
    /// The counters of every connection in the counter orders, as of the last refresh (what
    /// those orders hold); empty while they are not kept.
    counted: HashMap<ConnId, Counters>,
    /// The counter orders are kept only from the first page sorted by a counter on (most nodes
    /// are never asked one): until then a connect or a close costs three tree updates less.
    counting: Kept,
    /// The same for the `user` and `connected_at` orders ([`Orders::fill`]).
    users: Kept,
    connected: Kept,
}

/// Whether an order that is kept only once asked for is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kept {
    /// Not yet asked for: the order is empty.
    Off,
    /// A first refresh or fill is filling it, batch by batch; connections that come meanwhile
    /// go in at once.
    Filling,
    /// Kept on every connect and close (and, for counters, refresh).
    On,
}

impl Orders {
    /// Empty orders of node `node`.
    pub fn new(node: &str) -> Self {
        Self {
            node: Arc::from(node),
            by_id: BTreeMap::new(),
            by_user: BTreeMap::new(),
            by_connected: BTreeMap::new(),
            by_counter: Default::default(),
            counted: HashMap::new(),
            counting: Kept::Off,
            users: Kept::Off,
            connected: Kept::Off,
        }
    }

    /// Connections held.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// The counters the counter orders hold for connection `id` (as of the last refresh), while
    /// they are kept.
    pub fn counters(&self, id: ConnId) -> Option<Counters> {
        self.counted.get(&id).copied()
    }

    /// Adds connection `id` (`row`). The hub adds a connection once.
    pub fn insert(&mut self, id: ConnId, row: Row<'_>) {
        let counters = row.counters;
        let tie = tie(&self.node, id, row.client);
        let key = |column| key(column, &self.node, &tie, row, counters);
        self.by_id.insert(key(Column::Id), id);
        if self.users != Kept::Off {
            self.by_user.insert(key(Column::User), id);
        }
        if self.connected != Kept::Off {
            self.by_connected.insert(key(Column::ConnectedAt), id);
        }
        if self.counting != Kept::Off {
            for (i, m) in self.by_counter.iter_mut().enumerate() {
                m.insert(key(Column::Counter(i)), id);
            }
            self.counted.insert(id, counters);
        }
    }

    /// Removes connection `id` (`row`, as it was inserted), if held.
    pub fn remove(&mut self, id: ConnId, row: Row<'_>) {
        let tie = tie(&self.node, id, row.client);
        let counters = self.counted.remove(&id);
        let key = |column| key(column, &self.node, &tie, row, counters.unwrap_or_default());
        if self.by_id.remove(&key(Column::Id)).is_none() {
            return;
        }
        if self.users != Kept::Off {
            self.by_user.remove(&key(Column::User));
        }
        if self.connected != Kept::Off {
            self.by_connected.remove(&key(Column::ConnectedAt));
        }
        if counters.is_some() {
            for (i, m) in self.by_counter.iter_mut().enumerate() {
                m.remove(&key(Column::Counter(i)));
            }
        }
    }

    /// Reads the counters (from their [`Row`]s) of up to `max` connections, in `id` order from
    /// `from` (the start without), and moves those that changed in the counter orders: O(log n)
    /// to start, O(1) per read, O(log n) per change. Answers where to go on, or `None` when it
    /// reached the end (connections that came or went meanwhile are fine: a new one was read
    /// when it came).
    pub fn refresh(
        &mut self,
        from: Option<Resume>,
        max: usize,
        rows: &impl Rows,
    ) -> Option<Resume> {
        let (batch, next) = self.batch(from, max);
        if self.counting == Kept::Off {
            self.counting = Kept::Filling;
        }
        for (id, tie) in &batch {
            let Some(row) = rows.row(*id) else {
                continue;
            };
            // Filling, a connection not in yet goes in (one that came since is already, under
            // its counters as read then).
            let held = self.counted.get(id).copied();
            let before = held.unwrap_or_default();
            let now = row.counters;
            if held.is_some() && now == before {
                continue;
            }
            for (i, m) in self.by_counter.iter_mut().enumerate() {
                if held.is_none() || now[i] != before[i] {
                    if held.is_some() {
                        m.remove(&key(Column::Counter(i), &self.node, tie, row, before));
                    }
                    m.insert(key(Column::Counter(i), &self.node, tie, row, now), *id);
                }
            }
            self.counted.insert(*id, now);
        }
        if next.is_none() {
            self.counting = Kept::On;
        }
        next
    }

    /// Up to `max` connections in `id` order after `from` (from the start without), and where
    /// the next batch starts (`None`: this one reached the end). The walk of [`Orders::refresh`]
    /// and [`Orders::fill`].
    /// Each connection comes with its tie-breaker (shared with its `id` key, not made again).
    fn batch(&self, from: Option<Resume>, max: usize) -> (Vec<(ConnId, Arc<str>)>, Option<Resume>) {
        let max = max.max(1);
        let start = from.map_or(Bound::Unbounded, |r| Bound::Excluded(r.0));
        let mut ids = Vec::new();
        let mut last = None;
        for (k, id) in self.by_id.range((start, Bound::Unbounded)).take(max) {
            ids.push((*id, k.tie.clone()));
            last = Some(k);
        }
        let next = last.filter(|_| ids.len() == max).cloned().map(Resume);
        (ids, next)
    }

    /// Whether `column`'s order holds every connection (a page can walk it).
    pub fn is_kept(&self, column: Column) -> bool {
        match column {
            Column::Id | Column::Node => true,
            Column::User => self.users == Kept::On,
            Column::ConnectedAt => self.connected == Kept::On,
            Column::Counter(_) => self.counting == Kept::On,
        }
    }

    /// Fills the `user` or `connected_at` order (`column`; any other is always kept or
    /// refreshed instead) with up to `max` connections, in `id` order from `from` (the start
    /// without); from the first call on, connections that come are put in at once. Answers
    /// where to go on, or `None` once the order holds every connection and is kept from then
    /// on.
    pub fn fill(
        &mut self,
        column: Column,
        from: Option<Resume>,
        max: usize,
        rows: &impl Rows,
    ) -> Option<Resume> {
        let kept = match column {
            Column::User => self.users,
            Column::ConnectedAt => self.connected,
            _ => return None,
        };
        if kept == Kept::On {
            return None;
        }
        let (batch, next) = self.batch(from, max);
        let (state, map) = match column {
            Column::User => (&mut self.users, &mut self.by_user),
            _ => (&mut self.connected, &mut self.by_connected),
        };
        *state = if next.is_none() {
            Kept::On
        } else {
            Kept::Filling
        };
        for (id, tie) in batch {
            if let Some(row) = rows.row(id) {
                map.insert(key(column, &self.node, &tie, row, [0; 3]), id);
            }
        }
        next
    }

    /// The key of connection `id` (`row`) in `column`'s order, as a comparable value.
    fn key_of(&self, column: Column, id: ConnId, row: Row<'_>) -> Key {
        let counters = self.counters(id).unwrap_or(row.counters);
        key(
            column,
            &self.node,
            &tie(&self.node, id, row.client),
            row,
            counters,
        )
    }

    /// Whether connection `id`'s key in `column` sorts after `cursor` (true without one).
    pub fn is_after(
        &self,
        rows: &impl Rows,
        column: Column,
        id: ConnId,
        cursor: Option<&str>,
    ) -> bool {
        let Some(row) = rows.row(id) else {
            return false;
        };
        cursor.is_none_or(|c| self.key_of(column, id, row) > Key::probe(c))
    }

    /// Sorts `ids` (held connections) in `column`'s order.
    pub fn sort(&self, rows: &impl Rows, column: Column, ids: &mut Vec<ConnId>) {
        let mut keyed: Vec<(Key, ConnId)> = ids
            .iter()
            .filter_map(|id| rows.row(*id).map(|r| (self.key_of(column, *id, r), *id)))
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        *ids = keyed.into_iter().map(|(_, id)| id).collect();
    }

    /// The connections whose key in `column` sorts after `cursor` (every one without), in order:
    /// O(log n) to start, O(1) per connection after.
    pub fn after<'a>(
        &'a self,
        column: Column,
        cursor: Option<&str>,
    ) -> Box<dyn Iterator<Item = ConnId> + 'a> {
        let map = match column {
            Column::Id | Column::Node => &self.by_id,
            Column::User => &self.by_user,
            Column::ConnectedAt => &self.by_connected,
            Column::Counter(i) => &self.by_counter[i],
        };
        let Some(cursor) = cursor else {
            return Box::new(map.values().copied());
        };
        let start = if column == Column::Node {
            // Every key is `node#` + an `id` key: the cursor's place among them is the place of
            // what follows `node#` in it, or before all, or after all.
            let prefix = format!("{}#", self.node);
            match cursor.strip_prefix(prefix.as_str()) {
                Some(rest) => Bound::Excluded(Key::probe(rest)),
                None if cursor < prefix.as_str() => Bound::Unbounded,
                None => return Box::new(std::iter::empty()),
            }
        } else {
            Bound::Excluded(Key::probe(cursor))
        };
        Box::new(map.range((start, Bound::Unbounded)).map(|(_, id)| *id))
    }
}

/// One node's page of a [`ClientQuery`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// Connections that match the query (exact).
    pub count: usize,
    /// The first `limit` of them after the cursor, in order.
    pub ids: Vec<ConnId>,
    /// How many match after the cursor, counted up to `limit + 1`: enough for the node that
    /// merges the pages to tell whether there is a next one.
    pub remaining: usize,
}

impl Orders {
    /// `query` over these connections; `members`: the connections of the query's `members`
    /// (looked up by the caller), if it has them.
    ///
    /// Cost: no filter, O(log n + limit); `node`, O(1) more; `members` (m connections here),
    /// O(m log m); `q` (a substring of the id or user), one pass testing every connection (the
    /// `count` is exact), O(log limit) per match after the cursor.
    pub fn page(
        &self,
        query: &ClientQuery,
        members: Option<Vec<ConnId>>,
        rows: &impl Rows,
    ) -> Page {
        let limit = query.limit.max(1);
        let mut out = Page::default();
        if query.node.as_deref().is_some_and(|n| n != &*self.node) {
            return out;
        }
        let text = query.q.as_deref().filter(|s| !s.is_empty());
        let fits = |r: &Row<'_>| {
            text.is_none_or(|s| r.client.as_str().contains(s) || r.user.as_str().contains(s))
        };
        let held_and_fits = |id: &ConnId| rows.row(*id).is_some_and(|r| fits(&r));
        let column = Column::of(&query.sort);
        let cursor = query.after.as_deref();
        match members {
            Some(mut ids) => {
                ids.sort_unstable();
                ids.dedup();
                ids.retain(held_and_fits);
                out.count = ids.len();
                ids.retain(|id| self.is_after(rows, column, *id, cursor));
                out.remaining = ids.len().min(limit + 1);
                self.sort(rows, column, &mut ids);
                ids.truncate(limit);
                out.ids = ids;
            }
            None if text.is_none() && self.is_kept(column) => {
                out.count = self.len();
                let mut walk = self.after(column, cursor);
                out.ids = walk.by_ref().take(limit).collect();
                out.remaining = out.ids.len() + walk.take(1).count();
            }
            None => {
                // `total` is exact, so every connection is tested anyway: one pass, keeping the
                // `limit` smallest keys after the cursor (also the way when `column`'s order is
                // not kept yet).
                let probe = cursor.map(Key::probe);
                let mut kept: BinaryHeap<(Key, ConnId)> = BinaryHeap::with_capacity(limit + 1);
                let mut after = 0;
                let held = self
                    .by_id
                    .iter()
                    .filter_map(|(k, id)| rows.row(*id).map(|r| (k, *id, r)));
                for (id_key, id, row) in held.filter(|(_, _, r)| fits(r)) {
                    out.count += 1;
                    let counters = self.counters(id).unwrap_or(row.counters);
                    let key = key(column, &self.node, &id_key.tie, row, counters);
                    if probe.as_ref().is_some_and(|p| key <= *p) {
                        continue;
                    }
                    after += 1;
                    if kept.len() == limit && kept.peek().is_some_and(|top| key > top.0) {
                        continue;
                    }
                    kept.push((key, id));
                    if kept.len() > limit {
                        kept.pop();
                    }
                }
                out.remaining = after.min(limit + 1);
                out.ids = kept
                    .into_sorted_vec()
                    .into_iter()
                    .map(|(_, id)| id)
                    .collect();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::admin::RateLimitView;

    /// A connection as the index and as [`sort_key`] see it.
    #[derive(Clone)]
    struct Conn {
        id: ConnId,
        client: String,
        user: String,
        connected_at: u64,
        counters: Counters,
    }

    fn summary(c: &Conn) -> ClientSummary {
        ClientSummary {
            id: c.client.clone(),
            user: c.user.clone(),
            node: "node-a".into(),
            conn: c.id.0,
            remote_addr: String::new(),
            rooms: 0,
            connected_at: c.connected_at,
            msgs_in: c.counters[0],
            msgs_out: c.counters[1],
            queue_bytes: c.counters[2] as usize,
            rate_limit: RateLimitView::default(),
            throttled: false,
        }
    }

    /// Connections with awkward ids and users (bytes below and above `#`, prefixes of each
    /// other, non-ASCII) and many ties.
    fn conns() -> Vec<Conn> {
        let clients = [
            "c_a", "c_a!", "c_a b", "c_a#x", "c_ab", "c_", "c_é", "c_a~", "c_Z",
        ];
        let users = ["u", "u!", "u#", "", "u-1", "ü", "u 2"];
        (0..60u64)
            .map(|i| Conn {
                id: ConnId(i * 7 % 61 + 1),
                client: clients[i as usize % clients.len()].to_owned(),
                user: users[(i as usize / 3) % users.len()].to_owned(),
                connected_at: 1_700_000_000 + i % 4,
                counters: [i % 5, (i * 13) % 3, if i % 2 == 0 { 0 } else { u64::MAX }],
            })
            .collect()
    }

    /// Orders holding `list`, with the counter orders kept (as once a page sorted by a counter
    /// was asked: an empty refresh turns them on).
    fn orders(list: &[Conn]) -> Held {
        let mut o = Held::new();
        assert!(o.refresh(None, usize::MAX).is_none());
        assert!(o.fill(Column::User, None, usize::MAX).is_none());
        assert!(o.fill(Column::ConnectedAt, None, usize::MAX).is_none());
        for c in list {
            add(&mut o, c);
        }
        o
    }

    /// Adds connection `c` of node-a, as the hub does at its connect.
    fn add(o: &mut Held, c: &Conn) {
        let row = (
            ClientId::new(&c.client),
            UserId::new(&c.user),
            c.connected_at,
            c.counters,
        );
        o.rows.0.insert(c.id, row);
        let row = o.rows.row(c.id).unwrap();
        o.o.insert(c.id, row);
    }

    /// The hub's rows, as the tests keep them.
    #[derive(Default)]
    struct Table(HashMap<ConnId, (ClientId, UserId, u64, Counters)>);

    impl Rows for Table {
        fn row(&self, id: ConnId) -> Option<Row<'_>> {
            self.0.get(&id).map(|(client, user, t, counters)| Row {
                client,
                user,
                connected_at: *t,
                counters: *counters,
            })
        }
    }

    /// Orders of node-a and the rows they read, changed together as the hub changes them.
    struct Held {
        o: Orders,
        rows: Table,
    }

    impl std::ops::Deref for Held {
        type Target = Orders;
        fn deref(&self) -> &Orders {
            &self.o
        }
    }

    impl Held {
        fn new() -> Self {
            Held {
                o: Orders::new("node-a"),
                rows: Table::default(),
            }
        }

        fn remove(&mut self, id: ConnId) {
            if let Some(row) = self.rows.row(id) {
                self.o.remove(id, row);
            }
            self.rows.0.remove(&id);
        }

        fn refresh(&mut self, from: Option<Resume>, max: usize) -> Option<Resume> {
            self.o.refresh(from, max, &self.rows)
        }

        fn fill(&mut self, column: Column, from: Option<Resume>, max: usize) -> Option<Resume> {
            self.o.fill(column, from, max, &self.rows)
        }

        fn page(&self, query: &ClientQuery, members: Option<Vec<ConnId>>) -> Page {
            self.o.page(query, members, &self.rows)
        }

        fn is_after(&self, column: Column, id: ConnId, cursor: Option<&str>) -> bool {
            self.o.is_after(&self.rows, column, id, cursor)
        }

        fn sort(&self, column: Column, ids: &mut Vec<ConnId>) {
            self.o.sort(&self.rows, column, ids)
        }
    }

    /// Every column, and one no column has (it sorts as `id`).
    fn sorts() -> impl Iterator<Item = &'static str> {
        protocol::admin::CLIENT_SORTS.into_iter().chain(["bogus"])
    }

    /// The order and cursor semantics of string keys: what `after` must give.
    fn reference(list: &[Conn], sort: &str, cursor: Option<&str>) -> Vec<ConnId> {
        let mut keyed: Vec<(String, ConnId)> = list
            .iter()
            .map(|c| (sort_key(&summary(c), sort), c.id))
            .filter(|(k, _)| cursor.is_none_or(|a| k.as_str() > a))
            .collect();
        keyed.sort();
        keyed.into_iter().map(|(_, id)| id).collect()
    }

    #[test]
    fn every_order_is_the_order_of_its_string_keys_after_any_cursor() {
        let list = conns();
        let o = orders(&list);
        assert_eq!(o.len(), list.len());
        for sort in sorts() {
            let col = Column::of(sort);
            let all: Vec<ConnId> = o.after(col, None).collect();
            assert_eq!(all, reference(&list, sort, None), "{sort}");
            // Cursors: every row's own key (ties included), and strings between and around them.
            let mut cursors: Vec<String> =
                list.iter().map(|c| sort_key(&summary(c), sort)).collect();
            cursors.extend(
                [
                    "",
                    "#",
                    "!",
                    "c_a",
                    "c_a#",
                    "c_a#node-a#",
                    "node-a",
                    "node-a#",
                    "node-a#c_a",
                    "node-b",
                    "nod",
                    "u",
                    "u#",
                    "u#c_a!",
                    "~",
                    "ÿ",
                    "0",
                    "18446744073709551615",
                    "18446744073709551615#",
                    "18446744073709551614#c_a",
                    "9",
                ]
                .map(String::from),
            );
            for c in &cursors {
                let got: Vec<ConnId> = o.after(col, Some(c)).collect();
                assert_eq!(got, reference(&list, sort, Some(c)), "{sort} after {c:?}");
                for id in list.iter().map(|c| c.id) {
                    assert_eq!(
                        o.is_after(col, id, Some(c)),
                        got.contains(&id),
                        "{sort} {id:?} after {c:?}"
                    );
                }
            }
            let mut ids: Vec<ConnId> = list.iter().rev().map(|c| c.id).collect();
            o.sort(col, &mut ids);
            assert_eq!(ids, all, "{sort}");
        }
    }

    #[test]
    fn a_page_after_each_cursor_walks_every_row_once() {
        let list = conns();
        let o = orders(&list);
        for sort in sorts() {
            let col = Column::of(sort);
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page: Vec<ConnId> = o.after(col, cursor.as_deref()).take(7).collect();
                let Some(last) = page.last() else { break };
                let c = list.iter().find(|c| c.id == *last).unwrap();
                cursor = Some(sort_key(&summary(c), sort));
                seen.extend(page);
            }
            assert_eq!(seen, reference(&list, sort, None), "{sort}");
        }
    }

    #[test]
    fn removed_connections_leave_every_order_and_refreshed_counters_move() {
        let mut list = conns();
        let mut o = orders(&list);
        for c in list.iter().filter(|c| c.id.0 % 3 == 0) {
            o.remove(c.id);
        }
        o.remove(ConnId(10_000));
        list.retain(|c| c.id.0 % 3 != 0);
        assert_eq!(o.len(), list.len());
        for c in &mut list {
            c.counters = [c.id.0 % 4, 7, c.id.0];
            o.rows.0.get_mut(&c.id).unwrap().3 = c.counters;
        }
        // In batches of 4, as the hub does (releasing its lock between them).
        let mut from = None;
        let mut batches = 0;
        loop {
            batches += 1;
            from = o.refresh(from, 4);
            if from.is_none() {
                break;
            }
        }
        assert_eq!(batches, list.len() / 4 + 1);
        for sort in sorts() {
            let all: Vec<ConnId> = o.after(Column::of(sort), None).collect();
            assert_eq!(all, reference(&list, sort, None), "{sort}");
        }
        assert_eq!(o.counters(list[0].id), Some(list[0].counters));
        // A connection that comes after is in every order at once, under its counters now.
        let c = Conn {
            id: ConnId(20_000),
            client: "c_new".into(),
            user: "u".into(),
            connected_at: 1,
            counters: [3, 2, 1],
        };
        add(&mut o, &c);
        list.push(c);
        assert_eq!(o.len(), list.len());
        assert_eq!(o.counters(ConnId(20_000)), Some([3, 2, 1]));
        for sort in sorts() {
            let all: Vec<ConnId> = o.after(Column::of(sort), None).collect();
            assert_eq!(all, reference(&list, sort, None), "{sort}");
        }
        assert_eq!(
            o.after(Column::Id, Some("c_n")).next(),
            Some(ConnId(20_000))
        );
    }

    #[test]
    fn a_cursor_of_another_node_sorts_before_or_after_all_of_this_one() {
        let list = conns();
        let o = orders(&list);
        assert_eq!(o.after(Column::Node, Some("node-0#zz")).count(), list.len());
        assert_eq!(o.after(Column::Node, Some("node-b#")).count(), 0);
        assert_eq!(o.after(Column::Node, Some("node-a")).count(), list.len());
    }

    /// The page every node computed before these orders: list, filter, key, sort, cut.
    fn listed_page(list: &[Conn], q: &ClientQuery) -> (usize, Vec<ConnId>, usize) {
        let text = q.q.as_deref().filter(|s| !s.is_empty());
        let mut keyed: Vec<(String, ConnId)> = list
            .iter()
            .map(summary)
            .filter(|c| {
                text.is_none_or(|s| c.id.contains(s) || c.user.contains(s))
                    && q.node.as_deref().is_none_or(|n| c.node == n)
                    && q.members.as_ref().is_none_or(|m| m.contains(&c.id))
            })
            .map(|c| (sort_key(&c, &q.sort), ConnId(c.conn)))
            .collect();
        let count = keyed.len();
        if let Some(after) = &q.after {
            keyed.retain(|(k, _)| k > after);
        }
        let remaining = keyed.len();
        keyed.sort();
        keyed.truncate(q.limit.max(1));
        (
            count,
            keyed.into_iter().map(|(_, id)| id).collect(),
            remaining,
        )
    }

    #[test]
    fn a_page_is_the_page_of_listing_everything_with_remaining_counted_to_limit_plus_one() {
        let list = conns();
        let o = orders(&list);
        // The same connections on a node never asked a page sorted by user, connected_at or a
        // counter: those pages are cut from a pass over every connection, with the same rows.
        let mut unkept = Held::new();
        for c in &list {
            add(&mut unkept, c);
        }
        let texts = [
            None,
            Some(""),
            Some("a"),
            Some("c_a!"),
            Some("#"),
            Some("u 2"),
            Some("zz"),
        ];
        let members = [
            None,
            Some(vec![
                "c_a".to_owned(),
                "c_é".to_owned(),
                "c_gone".to_owned(),
            ]),
            Some(vec![]),
        ];
        let nodes = [None, Some("node-a"), Some("node-b")];
        for sort in sorts() {
            for text in texts {
                for m in &members {
                    for node in nodes {
                        for limit in [0, 1, 4, 100] {
                            let mut q = ClientQuery {
                                q: text.map(String::from),
                                node: node.map(String::from),
                                members: m.clone(),
                                sort: sort.into(),
                                after: None,
                                limit,
                            };
                            // Follow the cursors to the end, and start after an odd cursor too.
                            let mut cursors = vec![None, Some("c_a#".to_owned())];
                            while let Some(after) = cursors.pop() {
                                q.after = after;
                                let ids = q.members.as_ref().map(|m| {
                                    list.iter()
                                        .filter(|c| m.contains(&c.client))
                                        .map(|c| c.id)
                                        .collect()
                                });
                                let got = o.page(&q, ids.clone());
                                assert_eq!(unkept.page(&q, ids), got, "not kept: {q:?}");
                                let (count, want, remaining) = listed_page(&list, &q);
                                let limit = limit.max(1);
                                assert_eq!(
                                    (got.count, &got.ids, got.remaining),
                                    (count, &want, remaining.min(limit + 1)),
                                    "{q:?}"
                                );
                                if remaining > got.ids.len() {
                                    let last = got.ids.last().unwrap();
                                    let c = list.iter().find(|c| c.id == *last).unwrap();
                                    cursors.push(Some(sort_key(&summary(c), sort)));
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn counter_orders_are_kept_only_from_the_first_refresh_on_and_hold_everyone_after_it() {
        let list = conns();
        let (first, rest) = list.split_at(list.len() / 2);
        let mut o = Held::new();
        for c in first {
            add(&mut o, c);
        }
        // Never asked: a connect keeps no counter order.
        assert_eq!(o.after(Column::Counter(0), None).count(), 0);
        assert_eq!(o.after(Column::Id, None).count(), first.len());
        // A first refresh in batches of one; connections that come between batches are kept.
        let mut from = o.refresh(None, 1);
        for c in rest {
            add(&mut o, c);
            from = o.refresh(from, 1);
        }
        while from.is_some() {
            from = o.refresh(from, 1);
        }
        for i in 0..3 {
            let mut ids: Vec<ConnId> = o.after(Column::Counter(i), None).collect();
            ids.sort();
            let mut want: Vec<ConnId> = list.iter().map(|c| c.id).collect();
            want.sort();
            assert_eq!(ids, want, "counter order {i}");
        }
        // From then on a close leaves them too.
        o.remove(list[0].id);
        assert_eq!(o.after(Column::Counter(2), None).count(), list.len() - 1);
    }

    #[test]
    fn user_and_connected_orders_are_kept_only_from_the_first_fill_on_and_hold_everyone_after_it() {
        let list = conns();
        let (first, rest) = list.split_at(list.len() / 2);
        let mut o = Held::new();
        for c in first {
            add(&mut o, c);
        }
        for column in [Column::User, Column::ConnectedAt] {
            // Never asked: a connect keeps neither order.
            assert_eq!(o.after(column, None).count(), 0);
            assert!(!o.is_kept(column));
        }
        // A first fill of the user order in batches of one; connections that come between
        // batches are kept. The connected_at order stays off meanwhile.
        let mut from = o.fill(Column::User, None, 1);
        for c in rest {
            add(&mut o, c);
            from = o.fill(Column::User, from, 1);
        }
        while from.is_some() {
            from = o.fill(Column::User, from, 1);
        }
        assert!(o.is_kept(Column::User));
        assert!(!o.is_kept(Column::ConnectedAt));
        assert_eq!(o.after(Column::ConnectedAt, None).count(), 0);
        let want: Vec<ConnId> = {
            let mut keyed: Vec<(String, ConnId)> = list
                .iter()
                .map(|c| (sort_key(&summary(c), "user"), c.id))
                .collect();
            keyed.sort();
            keyed.into_iter().map(|(_, id)| id).collect()
        };
        assert_eq!(o.after(Column::User, None).collect::<Vec<_>>(), want);
        // From then on a close leaves it too.
        o.remove(list[0].id);
        assert_eq!(o.after(Column::User, None).count(), list.len() - 1);
        assert!(o.fill(Column::ConnectedAt, None, usize::MAX).is_none());
        assert_eq!(o.after(Column::ConnectedAt, None).count(), list.len() - 1);
    }
}
