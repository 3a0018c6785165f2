//! The room actor: the one owner of a room's `seq`, epoch, history, snapshot and presence.
//!
//! A room is found through [`crate::directory`] (on its node, the local process group
//! `room:<name>`; from another node, through the room's home node), never through a global map,
//! so the cluster can place it on any node. A room actor is not remotely usable: other nodes
//! reach it through its node's gateway (`room_access::gateway`) with a [`RoomRef`]. It knows its subscribers per node (the
//! node's relay and a count), not per connection: each publish is encoded once and sent once to
//! each node's relay, which fans it out locally. It never touches a socket and never waits on a
//! connection or a relay (casts only).
//!
//! Invariants: `seq` rises by exactly 1 per publish and is assigned only here; the epoch changes
//! only when a room is created without its history; a join's reply carries the replay of
//! everything up to the seq at that moment, and every later seq goes through the relays.

pub mod budget;
pub mod history;
pub mod snapshot;

use crate::delivery::Delivery;
use crate::ids::now_micros;
use crate::metrics::Metrics;
use crate::relay::ingress;
use crate::relay::RelayMessage;
use crate::room_access::{RoomInbox, RoomRef};
use crate::wire::host::RoomHostMessage;
use crate::wire::ingress::{IngressMessage, PresenceEvent, SharedDelivery};
use crate::wire::room::MAX_REPLY_BYTES;
use crate::wire::room::{
    Empty, HistoryPage, JoinReply, JoinRequest, PresenceEntry, PresenceList, Publisher, RoomAt,
    RoomInfo, RoomMessage, SnapshotGetReply, SnapshotPutReply,
};
use history::{History, Recovery};
use protocol::client::Since;
use protocol::room::RoomName;
use protocol::server::{From, ServerFrame};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::value::RawValue;
use snapshot::Snapshot;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Spawn arguments and immutable configuration of a room.
pub struct RoomArgs {
    /// Room name.
    pub name: RoomName,
    /// Epoch to start with.
    pub epoch: Arc<str>,
    /// This node's name.
    pub node: String,
    /// This node's relay (members on this node are reached without encoding).
    pub local_relay: ActorRef<RelayMessage>,
    /// History length.
    pub history_size: usize,
    /// History max age.
    pub history_ttl: Duration,
    /// History max bytes.
    pub history_max_bytes: usize,
    /// The node's room memory (its budget, its room count).
    pub memory: Arc<budget::RoomMemory>,
    /// Largest snapshot.
    pub max_snapshot_bytes: usize,
    /// Idle time before an empty room stops.
    pub idle_timeout: Duration,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// State moved from the previous owner (a migration) or restored from a replica, or
    /// `None` for a new room.
    pub adopted: Option<crate::wire::migration::MovedRoom>,
    /// Active nodes, for the choice of the backup that keeps this room's replica.
    pub members: Arc<crate::placement::Membership>,
}

/// How long a publish waits for the replica's acknowledgement before going on without one.
const REPLICA_MS: u64 = 500;

/// Bytes a snapshot holds (compressed).
fn snapshot_bytes(s: &Snapshot) -> usize {
    s.parts().1.len()
}

fn bytes_of(v: &[Arc<Delivery>]) -> usize {
    v.iter().map(|d| d.frame.len()).sum()
}

/// How long a room that moved keeps forwarding what still reaches it.
const FORWARD_GRACE: Duration = Duration::from_secs(10);

/// How often a room that runs away from its home node tells the home again where it is (the
/// home forgets an entry not refreshed for three times this).
pub const HOME_REFRESH: Duration = Duration::from_secs(10);

/// Where a node's members are reached.
#[derive(Clone)]
enum RelayTarget {
    /// This node: the shared delivery goes to the relay as it is.
    Local(ActorRef<RelayMessage>),
    /// Another node: one encoded cast to its relay ingress (counted in the peer's queue).
    Remote(ActorRef<IngressMessage>, Arc<crate::peer_queue::PeerQueue>),
}

impl RelayTarget {
    /// Sends a delivery; false when the target is gone (its node left).
    fn deliver(&self, d: &Arc<Delivery>) -> bool {
        match self {
            Self::Local(r) => r.cast(RelayMessage::Deliver(d.clone())).is_ok(),
            Self::Remote(r, q) => {
                q.enqueue(d.frame.len() + 64);
                r.cast(IngressMessage::Deliver(SharedDelivery(d.clone())))
                    .is_ok()
            }
        }
    }

    fn presence(&self, room: &RoomName, frame: &str, exclude: &str) -> bool {
        match self {
            Self::Local(r) => r
                .cast(RelayMessage::Presence {
                    room: room.clone(),
                    frame: frame.to_owned().into(),
                    exclude: crate::ids::ClientId::new(exclude),
                })
                .is_ok(),
            Self::Remote(r, q) => {
                q.enqueue(frame.len() + room.as_str().len() + exclude.len() + 64);
                r.cast(IngressMessage::Presence(PresenceEvent {
                    room: room.to_string(),
                    frame: frame.to_owned(),
                    exclude: exclude.to_owned(),
                }))
                .is_ok()
            }
        }
    }
}

/// Finds `node`'s relay ingress through its process group.
fn remote_relay(node: &str) -> Option<ActorRef<IngressMessage>> {
    crate::groups::node_actor(ingress::GROUP, node).filter(|a| !a.get_id().is_local())
}

/// The shared name of `node` (a handful of nodes: a scan).
fn intern(names: &mut Vec<Arc<str>>, node: &str) -> Arc<str> {
    if let Some(n) = names.iter().find(|n| &***n == node) {
        return n.clone();
    }
    let n: Arc<str> = Arc::from(node);
    names.push(n.clone());
    n
}

/// How many recent messages a room re-sends to a node reached through a new link.
const RESEND_TAIL: usize = 256;

/// One member client (a room of 10 000 keeps 10 000: boxed strings, and the node's name
/// shared, not copied, per member).
struct Member {
    user: Box<str>,
    node: Arc<str>,
    conns: u32,
}

/// The room actor (configuration lives in its state: rooms are spawned with arguments).
pub struct RoomActor;

/// A room's state.
pub struct RoomState {
    args: RoomArgs,
    seq: u64,
    history: History,
    snapshot: Option<Snapshot>,
    /// By client id, in order (a presence page is a range, not a sort of every member).
    members: BTreeMap<Box<str>, Member>,
    /// The names of the nodes members are on, shared by the members.
    node_names: Vec<Arc<str>>,
    /// Per node with members: where to reach it and how many member connections it has.
    relays: HashMap<String, (RelayTarget, u32)>,
    /// Nodes this room holds deliveries back from (their link is over half its budget,
    /// [`crate::peer_queue`]), with the first seq not sent. Sent from history, in order, once
    /// the link has room again ([`RoomState::fan_out`]).
    held: HashMap<String, u64>,
    idle_since: Option<Instant>,
    /// Publishes in the current and the last full second, for `msgs_per_s`.
    rate: (Instant, u64, u64),
    /// Set once the room moved: the new owner, and until when this actor forwards to it.
    moved: Option<(RoomRef, Instant)>,
    /// The node keeping this room's replica, and its room host.
    backup: Option<(
        String,
        ActorRef<RoomHostMessage>,
        Arc<crate::peer_queue::PeerQueue>,
    )>,
    /// The home node this room told where it runs (it runs away from its home: placement
    /// changed, or an operator moved it), and when. See [`RoomState::sync_home`].
    home: Option<(String, Instant)>,
    /// Bytes of history and snapshot counted in the node's [`budget::RoomMemory`].
    counted: usize,
}

impl RoomState {
    /// Brings the node's count of this room's bytes (history and snapshot) up to date.
    fn account(&mut self) {
        let extra = self.snapshot.as_ref().map_or(0, snapshot_bytes);
        self.args
            .memory
            .recount(&self.history, extra, &mut self.counted);
    }

    /// Stores a published message within the room's and the node's bounds
    /// ([`budget::RoomMemory::store`]).
    fn store(&mut self, d: Arc<Delivery>) {
        let extra = self.snapshot.as_ref().map_or(0, snapshot_bytes);
        self.args
            .memory
            .store(&mut self.history, d, extra, &mut self.counted);
    }

    fn presence_frame(&self, join: bool, client: &str, user: &str) -> String {
        let room = self.args.name.as_str();
        if join {
            ServerFrame::PresenceJoin { room, client, user }.encode()
        } else {
            ServerFrame::PresenceLeave { room, client, user }.encode()
        }
    }

    fn broadcast_presence(&mut self, frame: &str, exclude: &str) {
        let mut lost = Vec::new();
        for (node, (target, _)) in &self.relays {
            if !target.presence(&self.args.name, frame, exclude) {
                lost.push(node.clone());
            }
        }
        for node in lost {
            self.relay_gone(&node);
        }
    }

    /// A node's relay cannot be reached through the handle this room holds. If the node still
    /// has a live relay (its link was replaced: ractor_cluster closes one of two crossing
    /// sessions, and a healed partition reconnects), the room switches to it and re-sends its
    /// recent messages, in order (what went into the closed link is lost; connections drop
    /// what they already have). Otherwise the node is gone.
    fn relay_gone(&mut self, node: &str) {
        let held = self.held.remove(node);
        if let (Some(fresh), Some((t, _))) = (remote_relay(node), self.relays.get_mut(node)) {
            let target = RelayTarget::Remote(fresh, crate::peer_queue::of(node));
            let tail = match held {
                Some(from) => self.history.range(from.saturating_sub(1), usize::MAX),
                None => self.history.last(RESEND_TAIL, 0),
            };
            if tail.iter().all(|d| target.deliver(d)) {
                *t = target;
                tracing::info!(room = %self.args.name, %node, resent = tail.len(), "members' node reached through a new link");
                return;
            }
        }
        self.node_lost(node);
    }

    /// A node's relay is gone (the node left or crashed): its members leave, and the others are
    /// told (presence leaves are synthesized here, by the owner).
    fn node_lost(&mut self, node: &str) {
        self.held.remove(node);
        if self.relays.remove(node).is_none() {
            return;
        }
        let gone: Vec<Box<str>> = self
            .members
            .iter()
            .filter(|(_, m)| &*m.node == node)
            .map(|(c, _)| c.clone())
            .collect();
        tracing::warn!(room = %self.args.name, %node, members = gone.len(), "members' node is gone; removing them");
        for client in gone {
            if let Some(m) = self.members.remove(&client) {
                let frame = self.presence_frame(false, &client, &m.user);
                self.broadcast_presence(&frame, &client);
            }
        }
        if self.members.is_empty() {
            self.idle_since = Some(Instant::now());
        }
    }

    fn target_for(&self, node: &str) -> Option<RelayTarget> {
        if node == self.args.node {
            return Some(RelayTarget::Local(self.args.local_relay.clone()));
        }
        if let Some((t, _)) = self.relays.get(node) {
            return Some(t.clone());
        }
        remote_relay(node).map(|r| RelayTarget::Remote(r, crate::peer_queue::of(node)))
    }

    fn join(&mut self, req: JoinRequest) -> JoinReply {
        let Some(target) = self.target_for(&req.node) else {
            return JoinReply {
                error: Some(format!("node `{}` has no reachable relay", req.node)),
                ..JoinReply::default()
            };
        };
        self.idle_since = None;
        let entry = self.relays.entry(req.node.clone()).or_insert((target, 0));
        entry.1 += 1;
        let node = intern(&mut self.node_names, &req.node);
        let m = self
            .members
            .entry(req.client.as_str().into())
            .or_insert_with(|| Member {
                user: req.user.as_str().into(),
                node: node.clone(),
                conns: 0,
            });
        m.conns += 1;
        m.node = node;
        if m.conns == 1 && !req.quiet {
            let frame = self.presence_frame(true, &req.client, &req.user);
            self.broadcast_presence(&frame, &req.client);
        }
        self.history.expire(now_micros());

        let epoch = self.args.epoch.clone();
        let floor = self.snapshot.as_ref().map_or(0, |s| s.seq);
        let snapshot = self.snapshot.as_ref().and_then(|s| {
            let data = s.data().ok()?;
            let frame = ServerFrame::Snapshot {
                room: self.args.name.as_str(),
                seq: s.seq,
                epoch: &epoch,
                data: &data,
            }
            .encode();
            Some((s.seq, frame))
        });
        let (recovered, replay) = match (req.since, req.last) {
            (Some(since), _) => {
                if since.epoch.as_str() != &*epoch {
                    (Some(false), Vec::new())
                } else {
                    let after = since.seq.max(floor);
                    match self
                        .history
                        .after(after.min(self.seq), self.seq, self.args.history_size)
                    {
                        Recovery::Complete(v) if since.seq <= self.seq => (Some(true), v),
                        _ => (Some(false), Vec::new()),
                    }
                }
            }
            (None, Some(n)) => (None, self.history.last(n as usize, floor)),
            (None, None) => (None, Vec::new()),
        };
        // A reply that would be too large: a recovery says it is incomplete (never a silent
        // partial replay); `last` keeps the most recent messages that fit.
        let (recovered, replay) = if bytes_of(&replay) <= MAX_REPLY_BYTES {
            (recovered, replay)
        } else if recovered.is_some() {
            (Some(false), Vec::new())
        } else {
            let mut kept = Vec::new();
            let mut size = 0;
            for d in replay.into_iter().rev() {
                size += d.frame.len();
                if size > MAX_REPLY_BYTES {
                    break;
                }
                kept.push(d);
            }
            kept.reverse();
            (None, kept)
        };
        // A caller on another node reads a long replay in pages: the first is in the reply.
        let mut replay = replay;
        let mut replay_until = None;
        if let Some(max) = req.replay_bytes {
            let max = usize::try_from(max).unwrap_or(usize::MAX);
            if bytes_of(&replay) > max {
                replay_until = replay.last().map(|d| d.seq);
                cap(&mut replay, max);
            }
        }
        JoinReply {
            error: None,
            seq: self.seq,
            epoch,
            members: self.members.len(),
            recovered,
            snapshot,
            replay,
            replay_until,
        }
    }

    fn leave(&mut self, client: &str, node: &str) {
        if let Some(entry) = self.relays.get_mut(node) {
            entry.1 = entry.1.saturating_sub(1);
            if entry.1 == 0 {
                self.relays.remove(node);
                self.held.remove(node);
            }
        }
        let gone = match self.members.get_mut(client) {
            Some(m) => {
                m.conns = m.conns.saturating_sub(1);
                m.conns == 0
            }
            None => false,
        };
        if gone {
            if let Some(m) = self.members.remove(client) {
                let frame = self.presence_frame(false, client, &m.user);
                self.broadcast_presence(&frame, client);
            }
        }
        if self.members.is_empty() {
            self.idle_since = Some(Instant::now());
        }
    }

    /// Sequences, stores, replicates (acknowledged by the backup), then delivers a publish.
    async fn publish(&mut self, from: &Publisher, data: &RawValue) -> Arc<Delivery> {
        self.seq += 1;
        let from = match from {
            Publisher::Client { client, user } => From::Client {
                client: client.as_str(),
                user: user.as_str(),
            },
            Publisher::Backend => From::Backend { backend: true },
        };
        let frame = ServerFrame::Message {
            room: self.args.name.as_str(),
            seq: self.seq,
            epoch: &self.args.epoch,
            from,
            data,
        }
        .encode();
        let d = Arc::new(Delivery {
            room: self.args.name.clone(),
            seq: self.seq,
            epoch: self.args.epoch.clone(),
            frame: frame.into(),
            published_us: now_micros(),
        });
        self.store(d.clone());
        // The replica holds it before anyone sees it: a member never has a seq its room could
        // lose with its owner. A backup whose link is over half its budget is given up rather
        // than waited for (every publish would wait on the slow link); the replica is synced
        // again once the link has room.
        if let Some((node, _, q)) = &self.backup {
            if q.hold_back() {
                tracing::warn!(room = %self.args.name, backup = %node, waiting = q.waiting(), "backup's link over half its budget; replica resynced later");
                self.backup = None;
            }
        }
        if let Some((node, host, _)) = &self.backup {
            let held = ractor::call_t!(
                host,
                RoomHostMessage::ReplicaAppend,
                REPLICA_MS,
                SharedDelivery(d.clone())
            )
            .map(|r| r.error.is_none())
            .unwrap_or(false);
            if !held {
                tracing::warn!(room = %self.args.name, backup = %node, "replica did not take a message; resyncing");
                self.backup = None;
            }
        }
        self.fan_out(Some(&d), false);
        self.count_rate();
        d
    }

    /// Sends `d` (stored in history already) to every node with members. A node whose link is
    /// over half its budget is held back from instead: from then on it gets nothing until its
    /// link is below a quarter of the budget, and then what it missed from history, in order,
    /// before anything newer, until the link is over half its budget again (`flush`, before a
    /// move, sends it all). What history no longer holds is a gap its members see in `seq`, as
    /// when a `since` falls outside history.
    fn fan_out(&mut self, d: Option<&Arc<Delivery>>, flush: bool) {
        let mut lost = Vec::new();
        let mut remote = 0u64;
        for (node, (target, _)) in &self.relays {
            if let RelayTarget::Remote(_, q) = target {
                // (Nothing held back is the usual case: no lookup per publish then.)
                let held = if self.held.is_empty() {
                    None
                } else {
                    self.held.get(node).copied()
                };
                if let Some(from) = held {
                    if !(flush || q.may_resume()) {
                        continue;
                    }
                    self.held.remove(node);
                    let backlog = self.history.range(from.saturating_sub(1), usize::MAX);
                    let gone = backlog.first().map_or(self.seq + 1, |f| f.seq) - from;
                    if gone > 0 {
                        tracing::warn!(room = %self.args.name, %node, missed = gone, "deliveries held back from a slow peer are no longer in history: its members see a gap");
                    }
                    // Paced like live deliveries: over half the budget again, the rest waits.
                    let mut sent = 0u64;
                    for x in &backlog {
                        if !flush && q.hold_back() {
                            self.held.insert(node.clone(), x.seq);
                            break;
                        }
                        if !target.deliver(x) {
                            lost.push(node.clone());
                            break;
                        }
                        sent += 1;
                    }
                    tracing::info!(room = %self.args.name, %node, resent = sent, still_held = self.held.contains_key(node), "peer has room again: deliveries held back are sent");
                    remote += sent;
                    continue;
                }
                if let Some(d) = d {
                    if q.hold_back() {
                        self.held.insert(node.clone(), d.seq);
                        self.args.metrics.cluster_held_back.inc();
                        tracing::warn!(room = %self.args.name, %node, seq = d.seq, waiting = q.waiting(), "peer over half its link budget: deliveries held back");
                        continue;
                    }
                }
            }
            if let Some(d) = d {
                remote += u64::from(matches!(target, RelayTarget::Remote(..)));
                if !target.deliver(d) {
                    lost.push(node.clone());
                }
            }
        }
        self.args.metrics.cluster_deliveries.inc_by(remote);
        for node in lost {
            self.relay_gone(&node);
        }
    }

    fn count_rate(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.rate.0) >= Duration::from_secs(1) {
            let whole = now.duration_since(self.rate.0) < Duration::from_secs(2);
            self.rate = (now, 0, if whole { self.rate.1 } else { 0 });
        }
        self.rate.1 += 1;
    }

    fn info(&self) -> RoomInfo {
        let mut nodes: Vec<String> = self.relays.keys().cloned().collect();
        nodes.sort();
        let stale = self.rate.0.elapsed() >= Duration::from_secs(2);
        RoomInfo {
            name: self.args.name.to_string(),
            owner: self.args.node.clone(),
            members: self.members.len(),
            nodes,
            seq: self.seq,
            epoch: self.args.epoch.to_string(),
            history_len: self.history.len(),
            has_snapshot: self.snapshot.is_some(),
            msgs_per_s: if stale { 0.0 } else { self.rate.2 as f64 },
            backup: self.backup.as_ref().map(|(n, _, _)| n.clone()),
        }
    }

    /// Keeps the replica on the rendezvous winner among the other active nodes (the node that
    /// would own the room if this one were gone): when that changes, the old backup forgets the
    /// room and the new one gets the whole state, then every publish.
    fn sync_backup(&mut self) {
        let mut others = self.args.members.active();
        others.retain(|n| *n != self.args.node);
        let want = crate::placement::owner(self.args.name.as_str(), &others).map(str::to_owned);
        if want.as_deref() == self.backup.as_ref().map(|(n, _, _)| n.as_str()) {
            return;
        }
        self.drop_replica();
        let Some(node) = want else { return };
        let Some(host) = crate::placement::host_of(&node) else {
            return;
        };
        // The whole state crosses the link: wait until the backup's link has room.
        let q = crate::peer_queue::of(&node);
        if !q.may_resume() {
            return;
        }
        let state = self.moving_state();
        let id = format!(
            "replica:{}@{}#{}",
            self.args.name,
            self.args.epoch,
            now_micros()
        );
        for c in crate::wire::migration::chunks(&self.args.name, &id, &state) {
            if host.cast(RoomHostMessage::ReplicaSync(c)).is_err() {
                return;
            }
        }
        tracing::debug!(room = %self.args.name, backup = %node, "replica synced");
        self.backup = Some((node, host, q));
    }

    /// Tells the backup to forget this room's replica.
    fn drop_replica(&mut self) {
        if let Some((_, host, _)) = self.backup.take() {
            let _ = host.cast(RoomHostMessage::ReplicaDrop(
                crate::wire::host::ReplicaKey {
                    room: self.args.name.to_string(),
                    epoch: self.args.epoch.to_string(),
                },
            ));
        }
    }

    /// Everything that moves with the room.
    fn moving_state(&self) -> crate::wire::migration::MovedRoom {
        let mut members: Vec<crate::wire::migration::MovedMember> = self
            .members
            .iter()
            .map(|(c, m)| crate::wire::migration::MovedMember {
                client: c.to_string(),
                user: m.user.to_string(),
                node: m.node.to_string(),
                conns: m.conns,
            })
            .collect();
        members.sort_by(|a, b| a.client.cmp(&b.client));
        crate::wire::migration::MovedRoom {
            epoch: self.args.epoch.to_string(),
            seq: self.seq,
            members,
            nodes: self
                .relays
                .iter()
                .map(|(n, (_, c))| (n.clone(), *c))
                .collect(),
            snapshot: self.snapshot.as_ref().map(|s| {
                let (seq, bytes, len) = s.parts();
                (seq, bytes.to_vec(), len)
            }),
            history: self.history.last(usize::MAX, 0),
        }
    }

    /// Moves the room to `to`: barrier to every remote relay, send the state in chunks (the
    /// last one starts the new owner, whose name comes back), leave the group, tell the home
    /// and the relays. Runs inside the actor's handler, so every message that arrives meanwhile
    /// waits in the mailbox (and is forwarded, in order, once the move is done).
    async fn migrate(
        &mut self,
        myself: &ActorRef<RoomInbox>,
        to: &str,
    ) -> crate::wire::room::MigrateReply {
        let mut out = crate::wire::room::MigrateReply {
            from: self.args.node.clone(),
            to: to.to_owned(),
            seq: self.seq,
            epoch: self.args.epoch.to_string(),
            error: None,
        };
        if to == self.args.node {
            return out;
        }
        let Some(host) = crate::placement::host_of(to) else {
            out.error = Some(format!("node `{to}` is not reachable"));
            return out;
        };
        let started = Instant::now();
        // Nothing this owner sent may arrive after the successor's first message.
        let remote: Vec<(String, ActorRef<IngressMessage>)> = self
            .relays
            .iter()
            .filter_map(|(n, (t, _))| match t {
                RelayTarget::Remote(r, _) => Some((n.clone(), r.clone())),
                RelayTarget::Local(_) => None,
            })
            .collect();
        for (node, r) in remote {
            if ractor::call_t!(r, IngressMessage::Barrier, 2_000, Empty {}).is_err() {
                self.node_lost(&node);
            }
        }
        let moving = self.moving_state();
        let move_id = format!(
            "{}@{}#{}",
            self.args.name,
            self.args.epoch,
            crate::ids::now_micros()
        );
        let chunks = crate::wire::migration::chunks(&self.args.name, &move_id, &moving);
        let n = chunks.len();
        let mut adopted = None;
        for c in chunks {
            let res = ractor::call_t!(host, RoomHostMessage::Adopt, 10_000, c);
            let err = match res {
                Ok(r) => {
                    adopted = r.name.or(adopted);
                    r.error
                }
                Err(e) => Some(e.to_string()),
            };
            if let Some(e) = err {
                tracing::error!(room = %self.args.name, to, error = %e, "migration failed; keeping the room");
                Metrics::count(&self.args.metrics.migrations, "failed");
                out.error = Some(format!("migration to `{to}` failed: {e}"));
                return out;
            }
        }
        let at = adopted.map(|name| RoomAt {
            room: self.args.name.to_string(),
            node: to.to_owned(),
            name,
        });
        let Some(successor) = at.and_then(|at| RoomRef::resolve(&at, &self.args.node)) else {
            // The adopting node took every chunk but did not say where the room runs (or its
            // gateway is gone): this instance keeps the room.
            out.error = Some(format!(
                "`{to}` adopted the room but cannot be reached through its gateway"
            ));
            return out;
        };
        self.hand_over(myself, successor, false);
        Metrics::count(&self.args.metrics.migrations, "ok");
        crate::events::emit(crate::events::Event::RoomMigrated {
            room: self.args.name.to_string(),
            from: self.args.node.clone(),
            to: to.to_owned(),
        });
        tracing::info!(
            room = %self.args.name, to, seq = self.seq, chunks = n,
            history = moving.history.len(), members = moving.members.len(),
            ms = started.elapsed().as_millis() as u64, "room migrated"
        );
        out
    }

    /// Steps out of the room's group, tells the room's home node where it runs now, and points
    /// every relay with members at `successor`; whatever still reaches this actor is forwarded
    /// there, in order, for [`FORWARD_GRACE`]. `rejoin`: the successor does not hold this
    /// room's members (a rival that won after a partition), so they rejoin it with `since`
    /// rather than only following it.
    fn hand_over(&mut self, myself: &ActorRef<RoomInbox>, successor: RoomRef, rejoin: bool) {
        // The home learns where the successor runs before this instance leaves the group: a
        // lookup there never finds neither (the successor also tells the home itself, on its
        // first tick, when it runs away from home).
        let active = self.args.members.active();
        let room = self.args.name.as_str();
        if let Some(home) = crate::placement::owner(room, &active) {
            crate::placement::tell_host(home, RoomHostMessage::Register(successor.at(room)));
        }
        if let Some((told, _)) = self.home.take() {
            crate::placement::tell_host(&told, RoomHostMessage::Unregister(self.at(myself)));
        }
        let group = crate::wire::names::group_of(&self.args.name);
        ractor::pg::leave(group, vec![myself.get_cell()]);
        self.drop_replica();
        self.moved = Some((successor, Instant::now() + FORWARD_GRACE));
        // Nodes held back from get what they missed before they follow the room.
        if !self.held.is_empty() {
            self.fan_out(None, true);
        }
        self.notify_relays(rejoin);
    }

    /// Tells every relay with members that the room moved: they follow it (`rejoin` false: the
    /// successor holds the members) or rejoin it with `since` (`rejoin`: a rival won, or this
    /// instance stopped without a successor).
    fn notify_relays(&self, rejoin: bool) {
        for (target, _) in self.relays.values() {
            match target {
                RelayTarget::Local(r) => {
                    let _ = r.cast(RelayMessage::Moved {
                        room: self.args.name.clone(),
                        rejoin,
                    });
                }
                RelayTarget::Remote(r, _) => {
                    let _ = r.cast(IngressMessage::Moved(crate::wire::ingress::MovedNote {
                        room: self.args.name.to_string(),
                        rejoin,
                    }));
                }
            }
        }
    }

    /// Where this instance runs, as the home node records it.
    fn at(&self, myself: &ActorRef<RoomInbox>) -> RoomAt {
        RoomAt {
            room: self.args.name.to_string(),
            node: self.args.node.clone(),
            name: myself.get_name().unwrap_or_default(),
        }
    }

    /// The room's home node (its rendezvous owner among the active nodes) when that is not this
    /// node; `None` when the room runs at home (or no node is active).
    fn home_node(&self) -> Option<String> {
        let active = self.args.members.active();
        crate::placement::owner(self.args.name.as_str(), &active)
            .filter(|h| *h != self.args.node)
            .map(str::to_owned)
    }

    /// A room that runs away from its home node (placement changed, an operator moved it, a
    /// partition healed) tells the home where it runs, again every [`HOME_REFRESH`] and at once
    /// when the home changes; a room back at home tells the old one it left. The home is where
    /// every other node looks the room up, and where two instances of it meet.
    fn sync_home(&mut self, myself: &ActorRef<RoomInbox>) {
        let home = self.home_node();
        let due = match (&home, &self.home) {
            (Some(h), Some((told, at))) => h != told || at.elapsed() >= HOME_REFRESH,
            (Some(_), None) => true,
            (None, Some(_)) => true,
            (None, None) => false,
        };
        if !due {
            return;
        }
        if let Some((told, _)) = &self.home {
            if home.as_ref() != Some(told) {
                crate::placement::tell_host(told, RoomHostMessage::Unregister(self.at(myself)));
            }
        }
        self.home = None;
        if let Some(h) = home {
            if crate::placement::tell_host(&h, RoomHostMessage::Register(self.at(myself))) {
                tracing::debug!(room = %self.args.name, home = %h, "told the room's home where it runs");
                self.home = Some((h, Instant::now()));
            }
        }
    }

    /// Two owners of this room after a partition healed, met at its home node: the instance on
    /// the rendezvous winner of the two nodes keeps the room, the other hands over to it (its
    /// members re-join the winner; what only the loser's side published is not in the winner's
    /// history, and its members see the winner's epoch). The loser checks the home's verdict
    /// with the same rule ([`crate::placement::rival_wins`]).
    fn on_rival(&mut self, myself: &ActorRef<RoomInbox>, note: crate::wire::room::RivalNote) {
        let w = note.winner;
        if w.name == myself.get_name().unwrap_or_default() {
            return;
        }
        let Some((epoch, node)) = crate::wire::names::parse_room_actor(&w.name) else {
            return;
        };
        if epoch == &*self.args.epoch
            || !crate::placement::rival_wins(
                self.args.name.as_str(),
                (&self.args.node, &self.args.epoch),
                (node, epoch),
            )
        {
            return;
        }
        let Some(winner) = RoomRef::resolve(&w, &self.args.node) else {
            return;
        };
        Metrics::count(&self.args.metrics.room_conflicts, "yielded");
        tracing::warn!(
            room = %self.args.name, seq = self.seq, epoch = %self.args.epoch,
            winner = node, winner_epoch = epoch, members = self.members.len(),
            "two owners of a room after a partition: yielding to the rendezvous winner"
        );
        self.hand_over(myself, winner, true);
    }

    /// One page of members after client id `after`, in client id order, at most
    /// [`crate::wire::room::PRESENCE_PAGE_BYTES`] and `limit` of them; `next` is set when more follow.
    fn presence_page(&self, after: Option<&str>, limit: Option<u32>) -> PresenceList {
        let limit = limit.map_or(usize::MAX, |l| (l as usize).max(1));
        let from = match after {
            Some(a) => std::ops::Bound::Excluded(a),
            None => std::ops::Bound::Unbounded,
        };
        let mut size = 0;
        let mut members = Vec::new();
        let mut next = None;
        for (c, m) in self
            .members
            .range::<str, _>((from, std::ops::Bound::Unbounded))
        {
            let cost = c.len() + m.user.len() + m.node.len() + 48;
            if (size + cost > crate::wire::room::PRESENCE_PAGE_BYTES || members.len() == limit)
                && !members.is_empty()
            {
                next = members.last().map(|e: &PresenceEntry| e.client.clone());
                break;
            }
            size += cost;
            members.push(PresenceEntry {
                client: c.to_string(),
                user: m.user.to_string(),
                node: m.node.to_string(),
            });
        }
        PresenceList { members, next }
    }

    fn history_page(
        &mut self,
        since: Option<Since>,
        limit: usize,
        max_bytes: usize,
    ) -> HistoryPage {
        self.history.expire(now_micros());
        let epoch = self.args.epoch.clone();
        match since {
            Some(s) if !s.epoch.is_empty() && s.epoch.as_str() != &*epoch => HistoryPage {
                epoch,
                seq: self.seq,
                complete: false,
                messages: Vec::new(),
            },
            Some(s) => {
                let mut messages = self.history.range(s.seq, limit);
                cap(&mut messages, max_bytes);
                let complete = s.seq == self.seq
                    || (s.seq < self.seq && messages.first().is_some_and(|d| d.seq == s.seq + 1));
                HistoryPage {
                    epoch,
                    seq: self.seq,
                    complete,
                    messages,
                }
            }
            None => {
                let mut messages = self.history.last(limit, 0);
                cap(&mut messages, max_bytes);
                HistoryPage {
                    epoch,
                    seq: self.seq,
                    complete: true,
                    messages,
                }
            }
        }
    }
}

/// Keeps the oldest messages of a page that fit in `max` bytes, at least one (the reader
/// pages on).
fn cap(messages: &mut Vec<Arc<Delivery>>, max: usize) {
    let mut size = 0;
    let keep = messages
        .iter()
        .take_while(|d| {
            size += d.frame.len();
            size <= max
        })
        .count();
    messages.truncate(keep.max(1));
}

/// Hands a message that reached a moved room to its new owner, in order (one handle, one
/// path). A call carries its reply port along; one whose forward fails fails at once for its
/// caller, who looks the room up again (never a silent drop).
fn forward(to: &RoomRef, msg: RoomMessage) {
    if matches!(msg, RoomMessage::Tick(_) | RoomMessage::Rival(_)) {
        return;
    }
    let _ = to.send(msg);
}

/// How often a room does housekeeping.
const TICK: Duration = Duration::from_secs(1);

impl Actor for RoomActor {
    type Msg = RoomInbox;
    type State = RoomState;
    type Arguments = RoomArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: RoomArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        myself.send_interval(TICK, || RoomInbox(RoomMessage::Tick(Empty {})));
        args.metrics.rooms_active.inc();
        tracing::debug!(room = %args.name, epoch = %args.epoch, "room started");
        let mut args = args;
        let adopted = args.adopted.take();
        let mut state = RoomState {
            history: History::new(args.history_size, args.history_ttl, args.history_max_bytes),
            args,
            seq: 0,
            snapshot: None,
            members: BTreeMap::new(),
            node_names: Vec::new(),
            relays: HashMap::new(),
            held: HashMap::new(),
            idle_since: Some(Instant::now()),
            rate: (Instant::now(), 0, 0),
            moved: None,
            backup: None,
            home: None,
            counted: 0,
        };
        state.args.memory.room_started();
        if let Some(m) = adopted {
            state.seq = m.seq;
            for d in m.history {
                state.history.push(d);
            }
            state.snapshot = m
                .snapshot
                .map(|(seq, bytes, len)| Snapshot::from_parts(seq, bytes, len));
            for (node, count) in m.nodes {
                match state.target_for(&node) {
                    Some(t) => {
                        state.relays.insert(node, (t, count));
                    }
                    None => {
                        tracing::warn!(room = %state.args.name, %node, "moved room: a member node is unreachable")
                    }
                }
            }
            for mm in m.members {
                if state.relays.contains_key(&mm.node) {
                    let node = intern(&mut state.node_names, &mm.node);
                    state.members.insert(
                        mm.client.into_boxed_str(),
                        Member {
                            user: mm.user.into_boxed_str(),
                            node,
                            conns: mm.conns,
                        },
                    );
                }
            }
            if !state.members.is_empty() {
                state.idle_since = None;
            }
        }
        state.account();
        Ok(state)
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.args.metrics.rooms_active.dec();
        state.args.memory.room_stopped();
        state.args.memory.sub(state.counted);
        state.counted = 0;
        if state.moved.is_none() {
            state.drop_replica();
            // Stopped without a successor: the home forgets it, and the relays that still have
            // members here (none, normally: an idle room has no members) re-home them.
            if let Some((home, _)) = state.home.take() {
                crate::placement::tell_host(&home, RoomHostMessage::Unregister(state.at(&myself)));
            }
            state.notify_relays(true);
        }
        tracing::debug!(room = %state.args.name, "room stopped");
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let RoomInbox(msg) = msg;
        if let Some((to, until)) = &state.moved {
            forward(to, msg);
            if Instant::now() >= *until {
                myself.stop(Some("moved".into()));
            }
            return Ok(());
        }
        match msg {
            RoomMessage::Migrate(req, reply) => {
                let out = state.migrate(&myself, &req.to).await;
                let _ = reply.send(out);
            }
            RoomMessage::Join(req, reply) => {
                let _span = tracing::debug_span!("room_join", room = %state.args.name, client = %req.client, node = %req.node).entered();
                let out = state.join(req);
                let _ = reply.send(out);
            }
            RoomMessage::Leave(req) => state.leave(&req.client, &req.node),
            RoomMessage::Publish(req, reply) => {
                let d = state.publish(&req.from, &req.data).await;
                state.args.metrics.publishes.inc();
                let _ = reply.send(crate::wire::room::Published {
                    seq: d.seq,
                    epoch: d.epoch.to_string(),
                });
            }
            RoomMessage::Presence(page, reply) => {
                let _ = reply.send(state.presence_page(page.after.as_deref(), page.limit));
            }
            RoomMessage::History(req, reply) => {
                let limit = (req.limit as usize).min(state.args.history_size);
                let max = req
                    .max_bytes
                    .map_or(MAX_REPLY_BYTES, |m| {
                        usize::try_from(m).unwrap_or(usize::MAX)
                    })
                    .min(MAX_REPLY_BYTES);
                let _ = reply.send(state.history_page(req.since, limit, max));
            }
            RoomMessage::SetSnapshot(req, reply) => {
                let out = match Snapshot::new(state.seq, &req.data, state.args.max_snapshot_bytes) {
                    Ok(s)
                        if !state.args.memory.fits(
                            snapshot_bytes(&s)
                                .saturating_sub(state.snapshot.as_ref().map_or(0, snapshot_bytes)),
                        ) =>
                    {
                        SnapshotPutReply {
                            seq: None,
                            error: Some(format!(
                                "the node's room memory is full (rooms.memory_budget_bytes, {} bytes in use)",
                                state.args.memory.used()
                            )),
                        }
                    }
                    Ok(s) => {
                        let seq = s.seq;
                        state.snapshot = Some(s);
                        // The replica gets the new snapshot with a full sync on the next tick.
                        state.drop_replica();
                        SnapshotPutReply {
                            seq: Some(seq),
                            error: None,
                        }
                    }
                    Err(e) => SnapshotPutReply {
                        seq: None,
                        error: Some(e.to_string()),
                    },
                };
                let _ = reply.send(out);
            }
            RoomMessage::GetSnapshot(_, reply) => {
                let out = match &state.snapshot {
                    None => SnapshotGetReply::default(),
                    Some(s) => match s.data() {
                        Ok(d) => SnapshotGetReply {
                            snapshot: Some((s.seq, state.args.epoch.to_string(), d)),
                            error: None,
                        },
                        Err(e) => SnapshotGetReply {
                            snapshot: None,
                            error: Some(e.to_string()),
                        },
                    },
                };
                let _ = reply.send(out);
            }
            RoomMessage::Info(_, reply) => {
                let _ = reply.send(crate::wire::room::InfoReply(state.info()));
            }
            RoomMessage::Rival(note) => state.on_rival(&myself, note),
            RoomMessage::Tick(_) => {
                // A member node that died: its members leave now (and the others are told),
                // not at the next publish.
                let gone: Vec<String> = state
                    .relays
                    .iter()
                    .filter(|(_, (t, _))| match t {
                        RelayTarget::Remote(r, _) => !crate::groups::is_live(&r.get_cell()),
                        RelayTarget::Local(_) => false,
                    })
                    .map(|(n, _)| n.clone())
                    .collect();
                for node in gone {
                    state.relay_gone(&node);
                }
                if !state.held.is_empty() {
                    state.fan_out(None, false);
                }
                state.sync_home(&myself);
                state.sync_backup();
                state.history.expire(now_micros());
                // Under memory pressure, rooms without members give up what is older than the
                // node's cutoff: the oldest history of idle rooms goes first.
                if state.members.is_empty() {
                    let cutoff = state.args.memory.cutoff_us();
                    if cutoff > 0 {
                        let n = state.history.expire_before(cutoff);
                        state.args.memory.evicted(budget::Eviction::IdlePressure, n);
                    }
                    if let Some(t) = state.history.oldest_us() {
                        state.args.memory.note_oldest(t);
                    }
                }
                let idle = state
                    .idle_since
                    .is_some_and(|t| t.elapsed() >= state.args.idle_timeout);
                if idle && state.history.is_empty() && state.snapshot.is_none() {
                    tracing::debug!(room = %state.args.name, "room idle, stopping");
                    crate::events::emit(crate::events::Event::RoomClosed {
                        room: state.args.name.to_string(),
                    });
                    myself.stop(Some("idle".into()));
                }
            }
        }
        state.account();
        Ok(())
    }
}
