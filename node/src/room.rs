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
//!
//! This module is the actor shell: it keeps the handles (relays per node, the backup's room
//! host, the successor after a move), sends, calls, counts and logs. What the room decides
//! (members, seqs, history and recovery, what a slow node gets, where home and backup are, the
//! order of a hand-over) is the pure [`state::Room`], which this shell may not bypass.

pub mod budget;
pub mod history;
pub mod snapshot;
pub mod state;

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
    Empty, JoinReply, JoinRequest, Publisher, RoomAt, RoomInfo, RoomMessage, SnapshotGetReply,
    SnapshotPutReply,
};
use protocol::room::RoomName;
use protocol::server::From;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::value::RawValue;
use snapshot::Snapshot;
pub use state::HOME_REFRESH;
use state::{BackupChange, Fan, HandOverStep, HomeSync, PresenceChange, RivalVerdict, Room};
use std::collections::HashMap;
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

impl state::Link for crate::peer_queue::PeerQueue {
    fn hold_back(&self) -> bool {
        crate::peer_queue::PeerQueue::hold_back(self)
    }

    fn may_resume(&self) -> bool {
        crate::peer_queue::PeerQueue::may_resume(self)
    }
}

/// Finds `node`'s relay ingress through its process group.
fn remote_relay(node: &str) -> Option<ActorRef<IngressMessage>> {
    crate::groups::node_actor(ingress::GROUP, node).filter(|a| !a.get_id().is_local())
}

/// The room actor (configuration lives in its state: rooms are spawned with arguments).
pub struct RoomActor;

/// A room's state: the pure [`Room`] and the handles the actor acts through.
pub struct RoomState {
    args: RoomArgs,
    room: Room,
    /// Where each node the room counts members on is reached (the same nodes as the room's).
    relays: HashMap<String, RelayTarget>,
    /// Set once the room moved: the new owner, and until when this actor forwards to it.
    moved: Option<(RoomRef, Instant)>,
    /// The node keeping this room's replica, and its room host.
    backup: Option<(
        String,
        ActorRef<RoomHostMessage>,
        Arc<crate::peer_queue::PeerQueue>,
    )>,
    /// Bytes of history and snapshot counted in the node's [`budget::RoomMemory`].
    counted: usize,
}

impl RoomState {
    /// Brings the node's count of this room's bytes (history and snapshot) up to date.
    fn account(&mut self) {
        let extra = self.room.snapshot_bytes();
        self.args
            .memory
            .recount(self.room.history(), extra, &mut self.counted);
    }

    /// Stores a published message within the room's and the node's bounds
    /// ([`budget::RoomMemory::store`]).
    fn store(&mut self, d: Arc<Delivery>) {
        let extra = self.room.snapshot_bytes();
        self.args
            .memory
            .store(self.room.history_mut(), d, extra, &mut self.counted);
    }

    fn broadcast_presence(&mut self, change: &PresenceChange) {
        let frame = change.frame(&self.args.name);
        let mut lost = Vec::new();
        for (node, target) in &self.relays {
            if !target.presence(&self.args.name, &frame, change.client()) {
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
        let tail = self.room.resend(node);
        if let (Some(fresh), Some(t)) = (remote_relay(node), self.relays.get_mut(node)) {
            let target = RelayTarget::Remote(fresh, crate::peer_queue::of(node));
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
        let Some(leaves) = self.room.node_lost(node, Instant::now()) else {
            return;
        };
        self.relays.remove(node);
        tracing::warn!(room = %self.args.name, %node, members = leaves.len(), "members' node is gone; removing them");
        for change in &leaves {
            self.broadcast_presence(change);
        }
    }

    fn target_for(&self, node: &str) -> Option<RelayTarget> {
        if node == self.args.node {
            return Some(RelayTarget::Local(self.args.local_relay.clone()));
        }
        if let Some(t) = self.relays.get(node) {
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
        self.relays.entry(req.node.clone()).or_insert(target);
        if let Some(change) = self.room.join(&req.client, &req.user, &req.node, req.quiet) {
            self.broadcast_presence(&change);
        }
        self.room.expire_history(now_micros());
        let snapshot = self.room.snapshot_frame();
        let replay = self
            .room
            .replay(req.since.as_ref(), req.last, req.replay_bytes);
        JoinReply {
            error: None,
            seq: self.room.seq(),
            epoch: self.room.epoch().clone(),
            members: self.room.members(),
            recovered: replay.since.map(state::SinceOutcome::recovered),
            snapshot,
            replay: replay.messages,
            replay_until: replay.until,
        }
    }

    fn leave(&mut self, client: &str, node: &str) {
        let left = self.room.leave(client, node, Instant::now());
        if left.node_gone {
            self.relays.remove(node);
        }
        if let Some(change) = left.presence {
            self.broadcast_presence(&change);
        }
    }

    /// Sequences, stores, replicates (acknowledged by the backup), then delivers a publish.
    async fn publish(&mut self, from: &Publisher, data: &RawValue) -> Arc<Delivery> {
        let from = match from {
            Publisher::Client { client, user } => From::Client {
                client: client.as_str(),
                user: user.as_str(),
            },
            Publisher::Backend => From::Backend { backend: true },
        };
        let d = self.room.sequence(from, data, now_micros());
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
        self.room.count_publish(Instant::now());
        d
    }

    /// Sends `d` (stored in history already) to every node with members, or (`None`) what the
    /// nodes held back from may get now; what each remote node gets is the room's decision
    /// ([`Room::fan`]). A backlog is paced like live deliveries (over half the budget again, the
    /// rest waits) unless `flush` (before a move: it all goes).
    fn fan_out(&mut self, d: Option<&Arc<Delivery>>, flush: bool) {
        let mut lost = Vec::new();
        let mut remote = 0u64;
        for (node, target) in &self.relays {
            if let RelayTarget::Remote(_, q) = target {
                match self.room.fan(node, d.map(|d| d.seq), flush, &**q) {
                    Fan::Send => {}
                    Fan::Skip => continue,
                    Fan::HeldBack(seq) => {
                        self.args.metrics.cluster_held_back.inc();
                        tracing::warn!(room = %self.args.name, %node, seq, waiting = q.waiting(), "peer over half its link budget: deliveries held back");
                        continue;
                    }
                    Fan::Resume(backlog) => {
                        if backlog.missed > 0 {
                            tracing::warn!(room = %self.args.name, %node, missed = backlog.missed, "deliveries held back from a slow peer are no longer in history: its members see a gap");
                        }
                        let mut sent = 0u64;
                        for x in &backlog.messages {
                            if !flush && q.hold_back() {
                                self.room.hold(node, x.seq);
                                break;
                            }
                            if !target.deliver(x) {
                                lost.push(node.clone());
                                break;
                            }
                            sent += 1;
                        }
                        tracing::info!(room = %self.args.name, %node, resent = sent, still_held = self.room.is_held(node), "peer has room again: deliveries held back are sent");
                        remote += sent;
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

    fn info(&self) -> RoomInfo {
        RoomInfo {
            name: self.args.name.to_string(),
            owner: self.args.node.clone(),
            members: self.room.members(),
            nodes: self.room.nodes(),
            seq: self.room.seq(),
            epoch: self.args.epoch.to_string(),
            history_len: self.room.history().len(),
            has_snapshot: self.room.snapshot().is_some(),
            msgs_per_s: self.room.msgs_per_s(Instant::now()),
            backup: self.backup.as_ref().map(|(n, _, _)| n.clone()),
        }
    }

    /// Keeps the replica where [`state::backup_change`] says: when that changes, the old
    /// backup forgets the room and the new one gets the whole state, then every publish.
    fn sync_backup(&mut self) {
        let active = self.args.members.active();
        let current = self.backup.as_ref().map(|(n, _, _)| n.as_str());
        let node = match state::backup_change(&self.args.name, &self.args.node, &active, current) {
            BackupChange::Keep => return,
            BackupChange::Drop => {
                self.drop_replica();
                return;
            }
            BackupChange::MoveTo(node) => {
                self.drop_replica();
                node
            }
        };
        let Some(host) = crate::placement::host_of(&node) else {
            return;
        };
        // The whole state crosses the link: wait until the backup's link has room.
        let q = crate::peer_queue::of(&node);
        if !q.may_resume() {
            return;
        }
        let state = self.room.moving_state();
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
            seq: self.room.seq(),
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
            .filter_map(|(n, t)| match t {
                RelayTarget::Remote(r, _) => Some((n.clone(), r.clone())),
                RelayTarget::Local(_) => None,
            })
            .collect();
        for (node, r) in remote {
            if ractor::call_t!(r, IngressMessage::Barrier, 2_000, Empty {}).is_err() {
                self.node_lost(&node);
            }
        }
        let moving = self.room.moving_state();
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
            room = %self.args.name, to, seq = self.room.seq(), chunks = n,
            history = moving.history.len(), members = moving.members.len(),
            ms = started.elapsed().as_millis() as u64, "room migrated"
        );
        out
    }

    /// Carries out [`Room::hand_over`]: the home learns where `successor` runs, this instance
    /// steps out of the room's group, and every relay with members is pointed at `successor`;
    /// whatever still reaches this actor is forwarded there, in order, for
    /// [`state::FORWARD_GRACE`]. `rejoin`: the successor does not hold this room's members (a
    /// rival that won after a partition), so they rejoin it with `since` rather than only
    /// following it.
    fn hand_over(&mut self, myself: &ActorRef<RoomInbox>, successor: RoomRef, rejoin: bool) {
        let active = self.args.members.active();
        for step in self.room.hand_over(&active, rejoin, Instant::now()) {
            match step {
                HandOverStep::RegisterSuccessorAt(home) => {
                    let at = successor.at(self.args.name.as_str());
                    crate::placement::tell_host(&home, RoomHostMessage::Register(at));
                }
                HandOverStep::UnregisterAt(told) => {
                    crate::placement::tell_host(
                        &told,
                        RoomHostMessage::Unregister(self.at(myself)),
                    );
                }
                HandOverStep::LeaveGroup => {
                    let group = crate::wire::names::group_of(&self.args.name);
                    ractor::pg::leave(group, vec![myself.get_cell()]);
                }
                HandOverStep::DropReplica => self.drop_replica(),
                HandOverStep::ForwardUntil(until) => self.moved = Some((successor.clone(), until)),
                HandOverStep::SendHeld => self.fan_out(None, true),
                HandOverStep::NotifyRelays { rejoin } => self.notify_relays(rejoin),
            }
        }
    }

    /// Tells every relay with members that the room moved: they follow it (`rejoin` false: the
    /// successor holds the members) or rejoin it with `since` (`rejoin`: a rival won, or this
    /// instance stopped without a successor).
    fn notify_relays(&self, rejoin: bool) {
        for target in self.relays.values() {
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

    /// Tells the room's home node where it runs, as [`Room::sync_home`] decides. The home is
    /// where every other node looks the room up, and where two instances of it meet.
    fn sync_home(&mut self, myself: &ActorRef<RoomInbox>) {
        let active = self.args.members.active();
        let now = Instant::now();
        let HomeSync::Tell {
            unregister,
            register,
        } = self.room.sync_home(&self.args.node, &active, now)
        else {
            return;
        };
        if let Some(told) = unregister {
            crate::placement::tell_host(&told, RoomHostMessage::Unregister(self.at(myself)));
        }
        if let Some(h) = register {
            if crate::placement::tell_host(&h, RoomHostMessage::Register(self.at(myself))) {
                tracing::debug!(room = %self.args.name, home = %h, "told the room's home where it runs");
                self.room.home_told(h, now);
            }
        }
    }

    /// Two owners of this room after a partition healed, met at its home node: the instance on
    /// the rendezvous winner of the two nodes keeps the room, the other hands over to it (its
    /// members re-join the winner; what only the loser's side published is not in the winner's
    /// history, and its members see the winner's epoch). See [`state::rival_verdict`].
    fn on_rival(&mut self, myself: &ActorRef<RoomInbox>, note: crate::wire::room::RivalNote) {
        let w = note.winner;
        let me = myself.get_name().unwrap_or_default();
        let RivalVerdict::Yield { node, epoch } = state::rival_verdict(
            &self.args.name,
            (self.args.node.as_str(), &*self.args.epoch),
            &me,
            &w.name,
        ) else {
            return;
        };
        let Some(winner) = RoomRef::resolve(&w, &self.args.node) else {
            return;
        };
        Metrics::count(&self.args.metrics.room_conflicts, "yielded");
        tracing::warn!(
            room = %self.args.name, seq = self.room.seq(), epoch = %self.args.epoch,
            winner = node.as_str(), winner_epoch = epoch.as_str(), members = self.room.members(),
            "two owners of a room after a partition: yielding to the rendezvous winner"
        );
        self.hand_over(myself, winner, true);
    }
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
        let room = Room::new(
            args.name.clone(),
            args.epoch.clone(),
            args.history_size,
            args.history_ttl,
            args.history_max_bytes,
            Instant::now(),
        );
        let mut state = RoomState {
            args,
            room,
            relays: HashMap::new(),
            moved: None,
            backup: None,
            counted: 0,
        };
        state.args.memory.room_started();
        if let Some(m) = adopted {
            for (node, _) in &m.nodes {
                match state.target_for(node) {
                    Some(t) => {
                        state.relays.insert(node.clone(), t);
                    }
                    None => {
                        tracing::warn!(room = %state.args.name, %node, "moved room: a member node is unreachable")
                    }
                }
            }
            let relays = &state.relays;
            state.room.adopt(m, |node| relays.contains_key(node));
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
            if let Some(home) = state.room.take_home() {
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
                let local = req.node == state.args.node;
                let out = state.join(req);
                if local && out.error.is_none() {
                    // A member on this node: its relay learns the room's owner and epoch from
                    // here, on this thread, before the reply leaves, instead of from the
                    // connection after it (one wake of this thread less per join: in a join
                    // storm each of them was a context switch).
                    let _ = state.args.local_relay.cast(RelayMessage::Owner {
                        room: state.args.name.clone(),
                        owner: RoomRef::local(myself.clone()),
                        epoch: out.epoch.clone(),
                    });
                }
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
                let _ = reply.send(state.room.presence_page(page.after.as_deref(), page.limit));
            }
            RoomMessage::History(req, reply) => {
                let limit = (req.limit as usize).min(state.args.history_size);
                let max = req
                    .max_bytes
                    .map_or(MAX_REPLY_BYTES, |m| {
                        usize::try_from(m).unwrap_or(usize::MAX)
                    })
                    .min(MAX_REPLY_BYTES);
                let _ = reply.send(state.room.history_page(req.since, limit, max, now_micros()));
            }
            RoomMessage::SetSnapshot(req, reply) => {
                let out = match Snapshot::new(
                    state.room.seq(),
                    &req.data,
                    state.args.max_snapshot_bytes,
                ) {
                    Ok(s) if !state.args.memory.fits(state.room.snapshot_growth(&s)) => {
                        SnapshotPutReply {
                            seq: None,
                            error: Some(format!(
                                "the node's room memory is full (rooms.memory_budget_bytes, {} bytes in use)",
                                state.args.memory.used()
                            )),
                        }
                    }
                    Ok(s) => {
                        let seq = state.room.set_snapshot(s);
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
                let out = match state.room.snapshot() {
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
                    .filter(|(_, t)| match t {
                        RelayTarget::Remote(r, _) => !crate::groups::is_live(&r.get_cell()),
                        RelayTarget::Local(_) => false,
                    })
                    .map(|(n, _)| n.clone())
                    .collect();
                for node in gone {
                    state.relay_gone(&node);
                }
                if state.room.has_held() {
                    state.fan_out(None, false);
                }
                state.sync_home(&myself);
                state.sync_backup();
                // Under memory pressure, rooms without members give up what is older than the
                // node's cutoff: the oldest history of idle rooms goes first.
                let hk = state.room.housekeep(
                    Instant::now(),
                    now_micros(),
                    state.args.idle_timeout,
                    state.args.memory.cutoff_us(),
                );
                state
                    .args
                    .memory
                    .evicted(budget::Eviction::IdlePressure, hk.evicted);
                if let Some(t) = hk.oldest_us {
                    state.args.memory.note_oldest(t);
                }
                if hk.stop {
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
