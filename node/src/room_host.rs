//! The room host: spawns room actors on this node on request, from this node or any other
//! (ractor has no remote spawn, so the owner node's host is asked), and keeps the directory of
//! the rooms whose *home* this node is (their rendezvous owner among the active nodes) but that
//! run elsewhere. One per node, remotely usable, in the process group [`GROUP`] and named
//! `gatehouse.room_hosts:<node>`.
//!
//! Ensure is serialized here, so two callers asking for the same absent room get one actor; it
//! answers where the room runs ([`RoomAt`]): here (the local process group `room:<name>`), where
//! a room that runs away from home said it runs (`Register`), or, in the seconds after
//! placement changed, where the previous home says it runs; only then is it created here. Two
//! instances of one room (a healed partition) meet here, and the one that loses is told. The
//! host supervises its rooms: a room that fails is logged, its members' relays are told, and it
//! is gone (the next lookup creates it again with a new epoch); the host never stops because a
//! room did.

use crate::ids::new_epoch;
use crate::metrics::Metrics;
use crate::relay::RelayMessage;
use crate::room::budget::RoomMemory;
use crate::room::history::History;
use crate::room::{RoomActor, RoomArgs};
use crate::room_access::RoomRef;
use crate::wire::host::{EnsureReply, Located, RoomHostMessage};
use crate::wire::migration::{self, AdoptChunk, AdoptReply, MovedRoom};
use crate::wire::names::group_of;
use crate::wire::room::RivalNote;
use crate::wire::room::{RoomAt, RoomMessage};
use cluster_config::RoomsSection;
use protocol::room::RoomName;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use std::collections::HashMap;
use std::sync::Arc;

/// The process group of every node's room host.
pub const GROUP: &str = crate::wire::names::ROOM_HOSTS;

/// The actor name of `node`'s room host.
pub fn name_of(node: &str) -> String {
    crate::groups::name_in(GROUP, node)
}

/// A replica older than this (no sync or append) is never restored: its owner may have moved
/// on without it.
const REPLICA_FRESH: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a restore waits for the cluster to agree that the room's owner is gone (a crash is
/// agreed within a heartbeat or two; a partition never is).
const RESTORE_AGREEMENT: std::time::Duration = std::time::Duration::from_secs(3);

/// A move (or replica sync) whose last chunk has not come after this long is dropped: the
/// mover gave up on it (a move waits at most a minute for its calls).
const ARRIVING_DEADLINE: std::time::Duration = std::time::Duration::from_secs(90);

/// How often the host does its housekeeping.
const TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// How long after placement changed a home that does not know a room asks the previous home
/// before creating it (rooms that run away from their new home tell it within a second).
const SETTLE_WINDOW: std::time::Duration = std::time::Duration::from_secs(5);

/// How long asking another node where a room runs may take.
const ASK_OTHERS_MS: u64 = 1_000;

/// Chunks of rooms on their way here, by move id; replicas kept here; the directory of rooms
/// homed here that run elsewhere.
#[derive(Default)]
pub struct HostState {
    /// Chunks of moves and replica syncs under way, with when their first chunk came.
    arriving: HashMap<String, (Vec<AdoptChunk>, std::time::Instant)>,
    /// Replicas of rooms owned elsewhere, for which this node is the backup.
    replicas: HashMap<String, Replica>,
    /// Rooms whose home is this node that run on another node: where, and when they last said
    /// so. Bounded by the rooms the other nodes run (each node's `rooms.max_rooms`); an entry
    /// not refreshed for three times [`crate::room::HOME_REFRESH`], or whose node left, goes.
    homed: HashMap<String, (RoomAt, std::time::Instant)>,
    /// The active nodes as last seen, the ones before them, and when they changed.
    view: (Vec<String>, Vec<String>, Option<std::time::Instant>),
}

/// A replica kept here: the room's state, its history (held to the same bounds as the owner's),
/// when it was last updated, and its bytes counted in the node's room memory.
pub struct Replica {
    /// Everything but the history.
    room: MovedRoom,
    history: History,
    at: std::time::Instant,
    counted: usize,
}

impl Replica {
    /// The snapshot's bytes (counted with the history).
    fn extra(&self) -> usize {
        self.room.snapshot.as_ref().map_or(0, |(_, b, _)| b.len())
    }

    /// The whole state, to restore the room from.
    fn into_moved(mut self) -> MovedRoom {
        self.room.history = self.history.last(usize::MAX, 0);
        self.room
    }
}

impl HostState {
    fn arrive(&mut self, chunk: AdoptChunk) {
        self.arriving
            .entry(chunk.move_id.clone())
            .or_insert_with(|| (Vec::new(), std::time::Instant::now()))
            .0
            .push(chunk);
    }

    fn take_arrived(&mut self, id: &str) -> Vec<AdoptChunk> {
        self.arriving.remove(id).map(|(c, _)| c).unwrap_or_default()
    }

    /// Notes the active nodes; when they changed, the previous list is kept (for
    /// [`SETTLE_WINDOW`]) to find the rooms' previous homes.
    fn note_view(&mut self, active: Vec<String>) {
        if active != self.view.0 {
            self.view.1 = std::mem::replace(&mut self.view.0, active);
            self.view.2 = Some(std::time::Instant::now());
        }
    }

    /// Removes a replica, giving its bytes back.
    fn drop_replica(&mut self, room: &str, memory: &RoomMemory) -> Option<Replica> {
        let r = self.replicas.remove(room)?;
        memory.sub(r.counted);
        Some(r)
    }
}

impl RoomHostActor {
    fn args(&self, room: RoomName, epoch: Arc<str>, adopted: Option<MovedRoom>) -> RoomArgs {
        RoomArgs {
            name: room,
            epoch,
            node: self.node.clone(),
            local_relay: self.relay.clone(),
            history_size: self.rooms.history_size,
            history_ttl: self.rooms.history_ttl,
            history_max_bytes: self.rooms.history_max_bytes,
            memory: self.memory.clone(),
            max_snapshot_bytes: self.rooms.max_snapshot_bytes,
            idle_timeout: self.rooms.idle_timeout,
            metrics: self.metrics.clone(),
            adopted,
            members: self.members.clone(),
        }
    }

    /// Starts a room actor here and makes it findable; answers where it runs.
    async fn start(
        &self,
        myself: &ActorRef<RoomHostMessage>,
        args: RoomArgs,
    ) -> Result<RoomAt, String> {
        let room = args.name.clone();
        let group = group_of(&room);
        let name = crate::wire::names::room_actor_name(&room, &args.epoch, &self.node);
        match Actor::spawn_linked(Some(name.clone()), RoomActor, args, myself.get_cell()).await {
            Ok((actor, _)) => {
                ractor::pg::join(group, vec![actor.get_cell()]);
                Ok(RoomAt {
                    room: room.to_string(),
                    node: self.node.clone(),
                    name,
                })
            }
            Err(e) => Err(format!("cannot start room `{room}`: {e}")),
        }
    }

    fn is_live(&self, node: &str) -> bool {
        node == self.node || self.members.live().iter().any(|n| n == node)
    }

    /// Where `room` runs as this node knows it: here, or where its directory entry says (an
    /// entry whose node is no longer live is dropped).
    fn located(&self, state: &mut HostState, room: &RoomName) -> Option<RoomAt> {
        if let Some(r) = crate::directory::find_local(room) {
            return Some(r.at(room.as_str()));
        }
        let (at, _) = state.homed.get(room.as_str())?;
        if at.node != self.node && self.is_live(&at.node) {
            return Some(at.clone());
        }
        state.homed.remove(room.as_str());
        None
    }

    /// Where a room this node does not know runs, asked of the nodes that may know: its home
    /// in this node's own view (the asker's view may differ while placement settles, or across
    /// a partition that just healed), and, in the seconds after placement changed, its previous
    /// home (the room has not told this node yet).
    async fn ask_other_homes(&self, state: &HostState, room: &RoomName) -> Option<RoomAt> {
        let active = self.members.active();
        let mine = crate::placement::owner(room.as_str(), &active);
        let prev = state
            .view
            .2
            .filter(|t| t.elapsed() <= SETTLE_WINDOW)
            .and_then(|_| crate::placement::owner(room.as_str(), &state.view.1));
        let mut asked: Vec<&str> = Vec::new();
        for home in [mine, prev].into_iter().flatten() {
            if home == self.node || asked.contains(&home) || !self.is_live(home) {
                continue;
            }
            asked.push(home);
            let Some(host) = crate::placement::host_of(home) else {
                continue;
            };
            let q = RoomAt {
                room: room.to_string(),
                ..RoomAt::default()
            };
            let found = ractor::call_t!(host, RoomHostMessage::Locate, ASK_OTHERS_MS, q);
            if let Some(a) = found
                .ok()
                .and_then(|f| f.at.into_iter().find(|a| self.is_live(&a.node)))
            {
                return Some(a);
            }
        }
        None
    }

    /// A room homed here says where it runs. Another live instance with the same epoch is the
    /// other half of a move (the newer word wins); with another epoch it is a rival: the
    /// rendezvous rule picks the one that stays, and the other is told to yield.
    fn register(&self, state: &mut HostState, at: RoomAt) {
        let Ok(room) = RoomName::parse(&at.room) else {
            return;
        };
        if at.node == self.node || !self.is_live(&at.node) {
            return;
        }
        let Some((new_epoch, new_node)) = crate::wire::names::parse_room_actor(&at.name) else {
            return;
        };
        let now = std::time::Instant::now();
        let current = self.located(state, &room).filter(|c| c.name != at.name);
        let Some(c) = current else {
            state.homed.insert(at.room.clone(), (at, now));
            return;
        };
        let Some((cur_epoch, cur_node)) = crate::wire::names::parse_room_actor(&c.name) else {
            state.homed.insert(at.room.clone(), (at, now));
            return;
        };
        if cur_epoch == new_epoch {
            state.homed.insert(at.room.clone(), (at, now));
            return;
        }
        let new_wins = crate::placement::rival_wins(
            room.as_str(),
            (cur_node, cur_epoch),
            (new_node, new_epoch),
        );
        let (winner, loser) = if new_wins {
            (at.clone(), c.clone())
        } else {
            (c.clone(), at.clone())
        };
        if winner.node == self.node {
            state.homed.remove(room.as_str());
        } else {
            state.homed.insert(at.room.clone(), (winner.clone(), now));
        }
        tokio::spawn(tell_loser(self.node.clone(), winner, loser));
    }

    /// A room failed (it never ran its `post_stop`): the relays of every node are told, so
    /// members of it re-join, and its home forgets it.
    fn room_failed(&self, name: &str) {
        let Some(room) = crate::wire::names::room_of_actor(name) else {
            return;
        };
        let _ = self.relay.cast(RelayMessage::Moved {
            room: room.clone(),
            rejoin: true,
        });
        for r in crate::relay::ingress::remote_all() {
            let _ = r.cast(crate::wire::ingress::IngressMessage::Moved(
                crate::wire::ingress::MovedNote {
                    room: room.to_string(),
                    rejoin: true,
                },
            ));
        }
        let active = self.members.active();
        if let Some(home) = crate::placement::owner(room.as_str(), &active) {
            let at = RoomAt {
                room: room.to_string(),
                node: self.node.clone(),
                name: name.to_owned(),
            };
            crate::placement::tell_host(home, RoomHostMessage::Unregister(at));
        }
    }
}

/// Two live instances of one room: once both answer (neither is a stopped one whose word is on
/// its way), the loser is told which one stays.
async fn tell_loser(me: String, winner: RoomAt, loser: RoomAt) {
    let (Some(w), Some(l)) = (
        RoomRef::resolve(&winner, &me),
        RoomRef::resolve(&loser, &me),
    ) else {
        return;
    };
    if crate::room_access::calls::info(&w).await.is_err()
        || crate::room_access::calls::info(&l).await.is_err()
    {
        return;
    }
    tracing::warn!(room = %winner.room, winner = %winner.node, loser = %loser.node, "two owners of a room met at its home: the loser yields");
    let _ = l.send(RoomMessage::Rival(RivalNote { winner }));
}

/// The room host; one per node.
pub struct RoomHostActor {
    /// This node's name.
    pub node: String,
    /// Active and live nodes (for placement checks and the rooms' choice of backup).
    pub members: Arc<crate::placement::Membership>,
    /// This node's lifecycle: only an active node creates rooms.
    pub lifecycle: Arc<crate::lifecycle::Lifecycle>,
    /// Whether the cluster agrees that the nodes this one sees as down are gone.
    pub agreement: Arc<crate::placement::agreement::Agreement>,
    /// This node's relay.
    pub relay: ActorRef<RelayMessage>,
    /// Room defaults.
    pub rooms: RoomsSection,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The node's room memory: its budget and its room count.
    pub memory: Arc<RoomMemory>,
}

impl Actor for RoomHostActor {
    type Msg = RoomHostMessage;
    type State = HostState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        (): (),
    ) -> Result<Self::State, ActorProcessingErr> {
        myself.send_interval(TICK, || RoomHostMessage::Tick(crate::wire::room::Empty {}));
        Ok(HostState::default())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RoomHostMessage::Adopt(chunk, reply) => {
                let room = match RoomName::parse(&chunk.room) {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = reply.send(AdoptReply {
                            error: Some(e.to_string()),
                            name: None,
                        });
                        return Ok(());
                    }
                };
                let (id, last) = (chunk.move_id.clone(), chunk.last);
                // A node that is leaving takes no room: the mover keeps it and looks for an
                // active node (a drain that races another node's drain, staggered stops).
                if matches!(
                    self.lifecycle.get(),
                    crate::lifecycle::NodeState::Draining | crate::lifecycle::NodeState::Drained
                ) {
                    state.arriving.remove(&id);
                    let _ = reply.send(AdoptReply {
                        error: Some(format!(
                            "node `{}` is draining and takes no rooms",
                            self.node
                        )),
                        name: None,
                    });
                    return Ok(());
                }
                // A second instance of a room on one node is never made on purpose: the one
                // running here stays, and the mover keeps its own (the rooms settle it).
                if crate::directory::find_local(&room).is_some() {
                    state.arriving.remove(&id);
                    let _ = reply.send(AdoptReply {
                        error: Some(format!("room `{room}` already runs on this node")),
                        name: None,
                    });
                    return Ok(());
                }
                state.arrive(chunk);
                if !last {
                    let _ = reply.send(AdoptReply::default());
                    return Ok(());
                }
                let chunks = state.take_arrived(&id);
                let out = match migration::assemble(&room, chunks) {
                    None => Err("the moved room's chunks do not fit together".to_owned()),
                    Some(moved) => {
                        let epoch: Arc<str> = Arc::from(moved.epoch.as_str());
                        let args = self.args(room.clone(), epoch, Some(moved));
                        self.start(&myself, args).await
                    }
                };
                if out.is_ok() {
                    tracing::info!(room = %room, "room adopted");
                }
                let _ = reply.send(match out {
                    Ok(at) => AdoptReply {
                        error: None,
                        name: Some(at.name),
                    },
                    Err(e) => AdoptReply {
                        error: Some(e),
                        name: None,
                    },
                });
            }
            RoomHostMessage::Ensure(req, reply) => {
                let room = match RoomName::parse(&req.room) {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = reply.send(EnsureReply {
                            error: Some(e.to_string()),
                            ..EnsureReply::default()
                        });
                        return Ok(());
                    }
                };
                state.note_view(self.members.active());
                let mut at = self.located(state, &room);
                if at.is_none() {
                    at = self.ask_other_homes(state, &room).await;
                }
                if at.is_some() || !req.create {
                    let _ = reply.send(EnsureReply {
                        at,
                        ..EnsureReply::default()
                    });
                    return Ok(());
                }
                // Create only what this node owns in its own view too: a node whose view lags
                // (a peer that just turned active, not yet counted everywhere) may have picked
                // this one while another node picks the newcomer.
                let active = if self.lifecycle.get() == crate::lifecycle::NodeState::Active {
                    self.members.active()
                } else {
                    Vec::new()
                };
                if let Err(why) =
                    crate::placement::may_create(room.as_str(), &self.node, &active, &req.live)
                {
                    tracing::debug!(room = %room, %why, "ensure declined");
                    let _ = reply.send(EnsureReply {
                        error: Some(why),
                        settling: true,
                        at: None,
                    });
                    return Ok(());
                }
                // At the node's cap on rooms, no new one (rooms moving here are still taken).
                if !self.memory.room_allowed() {
                    self.metrics.rooms_refused.inc();
                    let _ = reply.send(EnsureReply {
                        error: Some(format!(
                            "node `{}` holds its maximum of {} rooms (rooms.max_rooms)",
                            self.node,
                            self.memory.max_rooms()
                        )),
                        ..EnsureReply::default()
                    });
                    return Ok(());
                }
                // A replica is restored only by the node that owns the room among *every* node
                // it counts active now: the asker's list of nodes it hears may be older than
                // this node's view (an Ensure waits here behind others), and an owner that just
                // came back (a late heartbeat on an overloaded host, not a loss) runs the room
                // still; restoring it then would make two owners under one epoch. Until placement
                // says so, the asker retries (the owner's room reappears in its group).
                let fresh = state
                    .replicas
                    .get(room.as_str())
                    .is_some_and(|r| r.at.elapsed() <= REPLICA_FRESH);
                if fresh
                    && crate::placement::owner(room.as_str(), &self.members.active())
                        != Some(self.node.as_str())
                {
                    tracing::info!(room = %room, "replica kept: the room's owner is counted active again; placement is settling");
                    let _ = reply.send(EnsureReply {
                        error: Some(format!(
                            "room `{room}`: its owner is active again in the view of `{}`; placement is settling",
                            self.node
                        )),
                        settling: true,
                        at: None,
                    });
                    return Ok(());
                }
                // The owner was lost and this node holds a fresh replica: the room comes back with
                // its epoch, seq and history (members rejoin with `since`).
                let mut restored = state
                    .drop_replica(room.as_str(), &self.memory)
                    .filter(|r| r.at.elapsed() <= REPLICA_FRESH)
                    .map(Replica::into_moved);
                // Same epoch only when everyone agrees the owner is gone: behind a partition it
                // may still be assigning seqs in that epoch.
                if restored.is_some() && !self.agreement.wait(RESTORE_AGREEMENT).await {
                    tracing::warn!(room = %room, "the cluster does not agree that the room's owner is gone (partition?): new epoch instead of the replica");
                    Metrics::count(&self.metrics.room_conflicts, "replica_not_used");
                    restored = None;
                }
                let from_replica = restored.is_some();
                let epoch: Arc<str> = match &restored {
                    Some(r) => Arc::from(r.epoch.as_str()),
                    None => new_epoch(),
                };
                let args_epoch = epoch.clone();
                let args = self.args(room.clone(), epoch, restored);
                let started = self.start(&myself, args).await;
                if started.is_ok() {
                    crate::events::emit(crate::events::Event::RoomCreated {
                        room: room.to_string(),
                        epoch: args_epoch.to_string(),
                        restored: from_replica,
                    });
                    if from_replica {
                        tracing::warn!(room = %room, "room restored from its replica");
                    } else {
                        tracing::info!(room = %room, "room created");
                    }
                }
                let _ = reply.send(match started {
                    Ok(at) => EnsureReply {
                        at: Some(at),
                        ..EnsureReply::default()
                    },
                    Err(e) => EnsureReply {
                        error: Some(e),
                        ..EnsureReply::default()
                    },
                });
            }
            RoomHostMessage::ReplicaSync(chunk) => {
                let Ok(room) = RoomName::parse(&chunk.room) else {
                    return Ok(());
                };
                let (id, last) = (chunk.move_id.clone(), chunk.last);
                state.arrive(chunk);
                if last {
                    let chunks = state.take_arrived(&id);
                    state.drop_replica(room.as_str(), &self.memory);
                    if let Some(mut r) = migration::assemble(&room, chunks) {
                        r.members.clear();
                        r.nodes.clear();
                        let mut history = History::new(
                            self.rooms.history_size,
                            std::time::Duration::ZERO,
                            self.rooms.history_max_bytes,
                        );
                        for d in std::mem::take(&mut r.history) {
                            history.push(d);
                        }
                        let mut rep = Replica {
                            room: r,
                            history,
                            at: std::time::Instant::now(),
                            counted: 0,
                        };
                        let extra = rep.extra();
                        self.memory.recount(&rep.history, extra, &mut rep.counted);
                        state.replicas.insert(room.to_string(), rep);
                    }
                }
            }
            RoomHostMessage::ReplicaAppend(d, reply) => {
                let d = d.0;
                let key = d.room.to_string();
                let memory = &self.memory;
                let held = state.replicas.get_mut(&key).is_some_and(|rep| {
                    if *rep.room.epoch != *d.epoch || d.seq != rep.room.seq + 1 {
                        return false;
                    }
                    rep.room.seq = d.seq;
                    // The owner's bounds: count, bytes, the node's budget.
                    let extra = rep.extra();
                    memory.store(&mut rep.history, d.clone(), extra, &mut rep.counted);
                    rep.at = std::time::Instant::now();
                    true
                });
                if !held && state.drop_replica(&key, &self.memory).is_some() {
                    // Out of step: a stale replica must never be restored.
                    tracing::warn!(room = %key, "replica out of step; dropped until the next sync");
                }
                let _ = reply.send(AdoptReply {
                    error: (!held).then(|| "no replica in step".to_owned()),
                    name: None,
                });
            }
            RoomHostMessage::ReplicaDrop(k) => {
                if state
                    .replicas
                    .get(&k.room)
                    .is_some_and(|r| r.room.epoch == k.epoch)
                {
                    state.drop_replica(&k.room, &self.memory);
                }
            }
            RoomHostMessage::Register(at) => self.register(state, at),
            RoomHostMessage::Unregister(at) => {
                if state
                    .homed
                    .get(&at.room)
                    .is_some_and(|(cur, _)| cur.name == at.name)
                {
                    state.homed.remove(&at.room);
                }
            }
            RoomHostMessage::Locate(q, reply) => {
                let mut found = Vec::new();
                if let Ok(room) = RoomName::parse(&q.room) {
                    found.extend(
                        crate::directory::local_instances(&room)
                            .iter()
                            .map(|r| r.at(room.as_str())),
                    );
                    if let Some(a) = self
                        .located(state, &room)
                        .filter(|a| !found.iter().any(|f| f.name == a.name))
                    {
                        found.push(a);
                    }
                }
                let _ = reply.send(Located { at: found });
            }
            RoomHostMessage::List(crate::wire::listing::ListRooms(q), reply) => {
                tokio::spawn(async move {
                    let page = crate::room_access::listing::local_page(q).await;
                    let _ = reply.send(crate::wire::listing::RoomsListed(page));
                });
            }
            RoomHostMessage::Tick(_) => {
                self.memory.regulate(crate::ids::now_micros());
                state.note_view(self.members.active());
                // Directory entries not refreshed, or of nodes that left, go.
                let stale = crate::room::HOME_REFRESH * 3;
                let live = self.members.live();
                state
                    .homed
                    .retain(|_, (at, seen)| seen.elapsed() <= stale && live.contains(&at.node));
                self.metrics
                    .room_directory_entries
                    .set(i64::try_from(state.homed.len()).unwrap_or(i64::MAX));
                // A replica too old to be restored is only memory; a move whose last chunk
                // never came, too.
                let stale: Vec<String> = state
                    .replicas
                    .iter()
                    .filter(|(_, r)| r.at.elapsed() > REPLICA_FRESH)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in stale {
                    state.drop_replica(&k, &self.memory);
                }
                state
                    .arriving
                    .retain(|_, (_, since)| since.elapsed() <= ARRIVING_DEADLINE);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(who, reason) = event {
            tracing::error!(actor = %who.get_id(), name = ?who.get_name(), %reason, "room failed");
            if let Some(name) = who.get_name() {
                self.room_failed(&name);
            }
        }
        Ok(())
    }
}
