//! The connection hub: this node's index of live connections by connection id, client id and
//! user id ([`HubIndex`]), and the actor that addresses connections by id for everything that
//! is not a room delivery: kick, send-to-user, throttle pushes, an operator's join or leave of a
//! room, listing for the admin API, closing all at shutdown. Connections are not ractor actors (see ARCHITECTURE.md,
//! "Connections").
//!
//! A connection registers and unregisters itself in the index with a plain call on its own
//! worker thread, under a short lock: an actor message per connect woke the hub's runtime
//! thread for every new client (≈ 15 % of the node's CPU while clients connected, `perf
//! record`, 2026-12-06). Everything else goes through the actor, which reads the index.
//!
//! The index also keeps this node's connections in the order of every sort column of the admin
//! API's `/clients` ([`order`]), so a page costs O(log n + limit) rather than every connection.
//!
//! The hub only enqueues into connections' bounded queues or sets their close flag; it never
//! waits on a connection and never holds room state.

pub mod order;

use crate::ids::{ClientId, ConnId, UserId};
use crate::outbound::{ConnHandle, Outbound, Push, RoomOp, RoomOpOutcome};
use crate::wire::endpoint::{ClientQuery, ClientSummary, ClientsReply, Limits, RateLimitView};
use bytestring::ByteString;
use order::{Column, Counters, Orders, Row, Rows};
use protocol::room::RoomName;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Messages accepted by [`HubActor`].
pub enum HubMessage {
    /// Close every connection of `client`; answers how many.
    Kick {
        /// Client.
        client: ClientId,
        /// Close code.
        code: u16,
        /// Reason.
        reason: String,
        /// Answer.
        reply: RpcReplyPort<usize>,
    },
    /// Enqueue `frame` on every connection of `user`; answers how many took it.
    SendToUser {
        /// User.
        user: UserId,
        /// Encoded frame.
        frame: ByteString,
        /// Answer.
        reply: RpcReplyPort<usize>,
    },
    /// Push new limits to every connection of `client`; answers how many.
    ApplyLimits {
        /// Client.
        client: ClientId,
        /// Limits.
        limits: Limits,
        /// Whether these are an operator override.
        throttled: bool,
        /// Answer.
        reply: RpcReplyPort<usize>,
    },
    /// Asks every connection of `client` to join (`join`) or leave `room`; answers the wait for
    /// each connection's outcome (a connection that ends first never answers).
    RoomOp {
        /// Client.
        client: ClientId,
        /// Room.
        room: RoomName,
        /// Join (true) or leave (false).
        join: bool,
        /// Answer: one receiver per connection that took the request.
        reply: RpcReplyPort<Vec<oneshot::Receiver<RoomOpOutcome>>>,
    },
    /// Summaries of every connection.
    List(RpcReplyPort<Vec<ClientSummary>>),
    /// One page of this node's connections for the admin API (`count`, the page's rows,
    /// `remaining` counted up to `limit + 1`; see [`order::Orders::page`]).
    Page {
        /// Query.
        query: ClientQuery,
        /// Answer.
        reply: RpcReplyPort<ClientsReply>,
    },
    /// Summaries of one client's connections.
    Get {
        /// Client.
        client: ClientId,
        /// Answer.
        reply: RpcReplyPort<Vec<ClientSummary>>,
    },
    /// Close every connection (shutdown); answers how many.
    CloseAll {
        /// Close code.
        code: u16,
        /// Reason.
        reason: String,
        /// Whether clients should reconnect.
        reconnect: bool,
        /// Answer.
        reply: RpcReplyPort<usize>,
    },
    /// Number of live connections.
    Count(RpcReplyPort<usize>),
    /// Drain step: send `frame` (the reconnect hint) to, and close with `code`, up to `max`
    /// connections not yet closing; answers how many are left open.
    DrainBatch {
        /// Most connections to close now.
        max: usize,
        /// Encoded `reconnect` frame written before the close, if any.
        frame: Option<String>,
        /// Close code (1012).
        code: u16,
        /// Reason.
        reason: String,
        /// Answer: connections still open (closing ones included).
        reply: RpcReplyPort<usize>,
    },
}

impl ractor::Message for HubMessage {}

/// The hub; one per node.
pub struct HubActor {
    /// This node's name.
    pub node: String,
    /// The index the actor reads and connections write.
    pub index: std::sync::Arc<HubIndex>,
}

/// Most clients remembered as recently gone (for resuming with an older session token).
pub const GONE_MAX: usize = 100_000;

/// This node's live connections, shared by the connections (which add and remove themselves)
/// and the hub actor (which reads them).
pub struct HubIndex {
    state: std::sync::Mutex<HubState>,
    session_ttl: std::time::Duration,
    /// Connections unregistered that are still writing their last frames (a shutdown waits for
    /// them before it stops the listener whose workers carry them).
    closing: std::sync::atomic::AtomicUsize,
}

/// Counts one connection as closing until dropped ([`HubIndex::closing`]).
pub struct Closing(Arc<HubIndex>);

impl Drop for Closing {
    fn drop(&mut self) {
        self.0.closing.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HubIndex {
    /// An empty index of node `node`'s connections; closed clients stay resumable for
    /// `session_ttl`.
    pub fn new(node: &str, session_ttl: std::time::Duration) -> Self {
        Self {
            state: std::sync::Mutex::new(HubState {
                conns: HashMap::new(),
                by_client: HashMap::new(),
                by_user: HashMap::new(),
                gone: HashMap::new(),
                orders: Orders::new(node),
                counted_at: None,
            }),
            session_ttl,
            closing: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Counts a connection as closing (its last frames on their way) while the guard lives.
    pub fn closing(self: &Arc<Self>) -> Closing {
        self.closing.fetch_add(1, Ordering::AcqRel);
        Closing(self.clone())
    }

    /// Connections still writing their last frames.
    pub fn closing_count(&self) -> usize {
        self.closing.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        // Every update leaves the maps consistent, so a panic elsewhere does not poison them.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A connection opened.
    pub fn register(&self, h: ConnHandle) {
        let mut state = self.lock();
        state.orders.insert(h.id, row(&h));
        state
            .by_client
            .entry(h.info.client.clone())
            .or_default()
            .push(h.id);
        state
            .by_user
            .entry(h.info.user.clone())
            .or_default()
            .push(h.id);
        state.conns.insert(h.id, h);
    }

    /// Whether `client` may resume its id: connected now, or its last connection closed within
    /// the session TTL.
    pub fn resumable(&self, client: &ClientId) -> bool {
        let state = self.lock();
        state.by_client.contains_key(client)
            || state
                .gone
                .get(client)
                .is_some_and(|t| t.elapsed() <= self.session_ttl)
    }

    /// A connection closed.
    pub fn unregister(&self, id: ConnId) {
        let mut guard = self.lock();
        let state = &mut *guard;
        if let Some(h) = state.conns.remove(&id) {
            state.orders.remove(id, row(&h));
            remove_from(&mut state.by_client, &h.info.client, id);
            remove_from(&mut state.by_user, &h.info.user, id);
            if !state.by_client.contains_key(&h.info.client) {
                let now = std::time::Instant::now();
                let ttl = self.session_ttl;
                if state.gone.len() >= 1024 && state.gone.len().is_power_of_two() {
                    state.gone.retain(|_, t| now.duration_since(*t) <= ttl);
                }
                // Bounded however fast clients come and go: past the cap a client that left is
                // not remembered (its session token still resumes it while the token is
                // younger than the session TTL, which is the common case).
                if state.gone.len() < GONE_MAX {
                    state.gone.insert(h.info.client.clone(), now);
                }
            }
        }
    }
}

/// The hub's indexes.
struct HubState {
    conns: HashMap<ConnId, ConnHandle>,
    /// A client or a user has one connection, most of the time: kept inline, no allocation.
    by_client: HashMap<ClientId, Ids>,
    by_user: HashMap<UserId, Ids>,
    /// Clients whose last connection closed, and when (pruned after the session TTL).
    gone: HashMap<ClientId, std::time::Instant>,
    /// Every connection in the order of every `/clients` sort column.
    orders: Orders,
    /// When the counter orders were last refreshed.
    counted_at: Option<std::time::Instant>,
}

/// Connections whose counters a refresh reads per hold of the lock (connecting clients wait for
/// it between batches, not for the whole refresh).
const REFRESH_BATCH: usize = 1024;

/// How stale the order of the counter columns (`msgs_in`, `msgs_out`, `queue_bytes`) may be:
/// a page sorted by one of them refreshes them when their last refresh is older.
pub const COUNTERS_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// Unix seconds of `t` (0 before the epoch).
fn unix_secs(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What the `/clients` orders read of a connection.
fn row(h: &ConnHandle) -> Row<'_> {
    Row {
        client: &h.info.client,
        user: &h.info.user,
        connected_at: unix_secs(h.info.connected_at),
        counters: counters(h),
    }
}

impl Rows for HashMap<ConnId, ConnHandle> {
    fn row(&self, id: ConnId) -> Option<Row<'_>> {
        self.get(&id).map(row)
    }
}

/// `msgs_in`, `msgs_out`, `queue_bytes` of a connection now.
fn counters(h: &ConnHandle) -> Counters {
    [
        h.shared.msgs_in.load(Ordering::Relaxed),
        h.shared.msgs_out.load(Ordering::Relaxed),
        h.shared.queued_bytes.load(Ordering::Relaxed) as u64,
    ]
}

impl HubState {
    fn of_client(&self, client: &ClientId) -> impl Iterator<Item = &ConnHandle> {
        self.by_client
            .get(client)
            .into_iter()
            .flatten()
            .filter_map(|id| self.conns.get(id))
    }
}

/// A connection as the admin API shows it.
fn summary(node: &str, h: &ConnHandle) -> ClientSummary {
    let limits = h.shared.limits.lock().map(|l| *l).ok();
    ClientSummary {
        id: h.info.client.to_string(),
        user: h.info.user.to_string(),
        node: node.to_owned(),
        conn: h.id.0,
        remote_addr: h.info.remote_ip.to_string(),
        rooms: h.shared.rooms.load(Ordering::Relaxed),
        connected_at: unix_secs(h.info.connected_at),
        msgs_in: h.shared.msgs_in.load(Ordering::Relaxed),
        msgs_out: h.shared.msgs_out.load(Ordering::Relaxed),
        queue_bytes: h.shared.queued_bytes.load(Ordering::Relaxed),
        rate_limit: limits.map_or(
            RateLimitView {
                msgs_per_sec: 0,
                burst: 0,
                bytes_per_sec: 0,
            },
            |l| RateLimitView {
                msgs_per_sec: l.msgs_per_sec,
                burst: l.burst,
                bytes_per_sec: l.bytes_per_sec,
            },
        ),
        throttled: h.shared.throttled.load(Ordering::Relaxed),
    }
}

/// The connections of one client or user.
type Ids = smallvec::SmallVec<[ConnId; 1]>;

fn remove_from<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Ids>, key: &K, id: ConnId) {
    if let Some(v) = map.get_mut(key) {
        v.retain(|c| *c != id);
        if v.is_empty() {
            map.remove(key);
        }
    }
}

impl HubActor {
    /// Refreshes the counter orders if their last refresh is [`COUNTERS_REFRESH`] old, in
    /// batches of [`REFRESH_BATCH`] connections, the lock released between them.
    fn refresh_counters(&self) {
        let began = std::time::Instant::now();
        let mut from = None;
        loop {
            let mut guard = self.index.lock();
            let state = &mut *guard;
            if from.is_none()
                && state
                    .counted_at
                    .is_some_and(|t| t.elapsed() < COUNTERS_REFRESH)
            {
                return;
            }
            from = state.orders.refresh(from, REFRESH_BATCH, &state.conns);
            if from.is_none() {
                state.counted_at = Some(began);
                return;
            }
        }
    }

    /// Fills the `user` or `connected_at` order the first time a page is sorted by it, in
    /// batches of [`REFRESH_BATCH`] connections, the lock released between them (kept from
    /// then on: `hub::order`).
    fn fill_order(&self, column: Column) {
        let mut from = None;
        loop {
            let mut guard = self.index.lock();
            let state = &mut *guard;
            if from.is_none() && state.orders.is_kept(column) {
                return;
            }
            from = state.orders.fill(column, from, REFRESH_BATCH, &state.conns);
            if from.is_none() {
                return;
            }
        }
    }

    /// This node's page of `query`: the rows are found in the orders under the lock, their
    /// summaries built outside it. Sorted by a counter, the rows show the counters the order
    /// holds (read at most [`COUNTERS_REFRESH`] ago), so that rows, order and cursor agree.
    fn page(&self, query: &ClientQuery) -> ClientsReply {
        let column = Column::of(&query.sort);
        match column {
            Column::Counter(_) => self.refresh_counters(),
            Column::User | Column::ConnectedAt => self.fill_order(column),
            Column::Id | Column::Node => {}
        }
        let mut guard = self.index.lock();
        let state = &mut *guard;
        let members = query.members.as_ref().map(|m| {
            m.iter()
                .flat_map(|c| {
                    state
                        .by_client
                        .get(&ClientId::new(c))
                        .into_iter()
                        .flatten()
                        .copied()
                })
                .collect()
        });
        let page = state.orders.page(query, members, &state.conns);
        let rows: Vec<(ConnHandle, Option<Counters>)> = page
            .ids
            .iter()
            .filter_map(|id| {
                let held = state.orders.counters(*id);
                state.conns.get(id).map(|h| (h.clone(), held))
            })
            .collect();
        drop(guard);
        let clients = rows
            .iter()
            .map(|(h, held)| {
                let mut s = summary(&self.node, h);
                if let (Column::Counter(_), Some([msgs_in, msgs_out, queue_bytes])) = (column, held)
                {
                    s.msgs_in = *msgs_in;
                    s.msgs_out = *msgs_out;
                    s.queue_bytes = *queue_bytes as usize;
                }
                s
            })
            .collect();
        ClientsReply {
            count: page.count,
            clients,
            remaining: page.remaining,
            ..ClientsReply::default()
        }
    }
}

impl Actor for HubActor {
    type Msg = HubMessage;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        (): (),
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        (): &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let msg = match msg {
            HubMessage::Page { query, reply } => {
                let _ = reply.send(self.page(&query));
                return Ok(());
            }
            other => other,
        };
        let guard = self.index.lock();
        let state = &*guard;
        match msg {
            HubMessage::Kick {
                client,
                code,
                reason,
                reply,
            } => {
                let n = state
                    .of_client(&client)
                    .filter(|h| h.close(code, &reason, false))
                    .count();
                let _ = reply.send(n);
            }
            HubMessage::SendToUser { user, frame, reply } => {
                let n = state
                    .by_user
                    .get(&user)
                    .into_iter()
                    .flatten()
                    .filter_map(|id| state.conns.get(id))
                    .filter(|h| h.push(Outbound::Frame(frame.clone()), frame.len()) == Push::Queued)
                    .count();
                let _ = reply.send(n);
            }
            HubMessage::ApplyLimits {
                client,
                limits,
                throttled,
                reply,
            } => {
                let mut n = 0;
                for h in state.of_client(&client) {
                    h.shared.throttled.store(throttled, Ordering::Relaxed);
                    if h.push(Outbound::Limits(Box::new(limits)), 0) == Push::Queued {
                        n += 1;
                    }
                }
                let _ = reply.send(n);
            }
            HubMessage::RoomOp {
                client,
                room,
                join,
                reply,
            } => {
                let mut waits = Vec::new();
                for h in state.of_client(&client) {
                    let (tx, rx) = oneshot::channel();
                    let op = RoomOp {
                        room: room.clone(),
                        join,
                        reply: tx,
                    };
                    if h.push(Outbound::RoomOp(Box::new(op)), 0) == Push::Queued {
                        waits.push(rx);
                    }
                }
                let _ = reply.send(waits);
            }
            HubMessage::List(reply) => {
                // Summaries are built outside the lock: connecting clients wait on it.
                let handles: Vec<ConnHandle> = state.conns.values().cloned().collect();
                drop(guard);
                let mut v: Vec<ClientSummary> =
                    handles.iter().map(|h| summary(&self.node, h)).collect();
                v.sort_by(|a, b| a.id.cmp(&b.id).then(a.conn.cmp(&b.conn)));
                let _ = reply.send(v);
            }
            HubMessage::Page { .. } => {}
            HubMessage::Get { client, reply } => {
                let v = state
                    .of_client(&client)
                    .map(|h| summary(&self.node, h))
                    .collect();
                let _ = reply.send(v);
            }
            HubMessage::CloseAll {
                code,
                reason,
                reconnect,
                reply,
            } => {
                let n = state
                    .conns
                    .values()
                    .filter(|h| h.close(code, &reason, reconnect))
                    .count();
                let _ = reply.send(n);
            }
            HubMessage::Count(reply) => {
                let _ = reply.send(state.conns.len());
            }
            HubMessage::DrainBatch {
                max,
                frame,
                code,
                reason,
                reply,
            } => {
                let mut n = 0;
                for h in state.conns.values() {
                    if n >= max {
                        break;
                    }
                    if h.shared.closing() {
                        continue;
                    }
                    match &frame {
                        Some(f) => h.close_with_hint(code, &reason, f.clone()),
                        None => h.close(code, &reason, true),
                    };
                    n += 1;
                }
                let _ = reply.send(state.conns.len());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::{ConnInfo, ConnShared};

    fn handle(id: u64, client: &str, user: &str) -> ConnHandle {
        let limits = Limits {
            msgs_per_sec: 1,
            burst: 1,
            bytes_per_sec: 1,
        };
        let info = ConnInfo {
            client: ClientId::new(client),
            user: UserId::new(user),
            remote_ip: std::net::Ipv4Addr::LOCALHOST.into(),
            connected_at: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + id),
        };
        ConnHandle::new(
            ConnId(id),
            info,
            Arc::new(ConnShared::new(8, 1 << 20, limits)),
            None,
        )
    }

    async fn page(hub: &ActorRef<HubMessage>, sort: &str, after: Option<String>) -> ClientsReply {
        let query = ClientQuery {
            sort: sort.into(),
            after,
            limit: 2,
            ..ClientQuery::default()
        };
        ractor::call_t!(hub, |tx| HubMessage::Page { query, reply: tx }, 1_000).unwrap()
    }

    fn ids(r: &ClientsReply) -> Vec<&str> {
        r.clients.iter().map(|c| c.id.as_str()).collect()
    }

    #[tokio::test]
    async fn pages_follow_connections_as_they_come_and_go_and_counters_as_last_read() {
        let index = Arc::new(HubIndex::new("node-a", std::time::Duration::from_secs(60)));
        let handles: Vec<ConnHandle> = (1..=4)
            .map(|i| handle(i, &format!("c_{i}"), &format!("u-{}", 5 - i)))
            .collect();
        for h in &handles {
            index.register(h.clone());
        }
        let hub = HubActor {
            node: "node-a".into(),
            index: index.clone(),
        };
        let (hub, task) = Actor::spawn(None, hub, ()).await.unwrap();

        let p = page(&hub, "user", None).await;
        assert_eq!((p.count, ids(&p), p.remaining), (4, vec!["c_4", "c_3"], 3));
        let cursor = crate::hub::order::sort_key(&p.clients[1], "user");
        let p = page(&hub, "user", Some(cursor)).await;
        assert_eq!((ids(&p), p.remaining), (vec!["c_2", "c_1"], 2));

        // A connection that closes leaves every order; one that opens joins them.
        index.unregister(ConnId(4));
        index.register(handle(9, "c_0", "u-9"));
        let p = page(&hub, "connected_at", None).await;
        assert_eq!((p.count, ids(&p)), (4, vec!["c_0", "c_3"]));

        // Counters are read by the first page sorted by one, and shown as read until the next
        // read, at most a second later.
        let p = page(&hub, "msgs_in", None).await;
        assert_eq!(ids(&p), ["c_0", "c_1"], "all 0: by id");
        handles[1].shared.msgs_in.store(5, Ordering::Relaxed);
        let p = page(&hub, "msgs_in", None).await;
        assert_eq!(ids(&p), ["c_0", "c_1"], "as read");
        assert_eq!(p.clients[0].msgs_in, 0);
        let p = page(&hub, "user", None).await;
        assert_eq!(ids(&p), ["c_3", "c_2"]);
        assert_eq!(
            p.clients[1].msgs_in, 5,
            "sorted by another column: as they are"
        );
        tokio::time::sleep(COUNTERS_REFRESH).await;
        let p = page(&hub, "msgs_in", None).await;
        assert_eq!(ids(&p), ["c_2", "c_0"], "read again");
        assert_eq!(p.clients[0].msgs_in, 5);
        hub.stop(None);
        task.await.unwrap();
    }
}
