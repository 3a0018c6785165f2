//! The room host: spawns room actors on this node on request, from this node or any other
//! (ractor has no remote spawn, so the owner node's host is asked). One per node, remotely
//! usable, in the process group [`GROUP`] and named `gatehouse.room_host:<node>`.
//!
//! Ensure is serialized here, so two callers asking for the same absent room get one actor. A
//! new room joins the process group `room:<name>`, through which every lookup on every node
//! finds it, and is named `room:<name>@<epoch>`. The host supervises its rooms: a room that
//! fails is logged and gone (the next lookup creates it again with a new epoch); the host never
//! stops because a room did.

use crate::directory::group_of;
use crate::ids::new_epoch;
use crate::metrics::Metrics;
use crate::relay::ingress::SharedDelivery;
use crate::relay::RelayMessage;
use crate::room::budget::RoomMemory;
use crate::room::history::History;
use crate::room::migration::{self, AdoptChunk, AdoptReply, MovedRoom};
use crate::room::{RoomActor, RoomArgs};
use cluster_config::RoomsSection;
use protocol::room::RoomName;
use ractor::{
    Actor, ActorProcessingErr, ActorRef, BytesConvertable, RpcReplyPort, SupervisionEvent,
};
use ractor_cluster::RactorClusterMessage;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// The process group of every node's room host.
pub const GROUP: &str = "gatehouse.room_hosts";

/// The actor name of `node`'s room host.
pub fn name_of(node: &str) -> String {
    format!("{GROUP}:{node}")
}

/// Asks for a room to exist on this node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnsureRoom {
    /// Room name.
    pub room: String,
    /// The nodes the asker hears, itself included (empty from an older node).
    #[serde(default)]
    pub live: Vec<String>,
}

/// The outcome: `error` is set when the room could not be started.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EnsureReply {
    /// Why not.
    pub error: Option<String>,
    /// The refusal is placement settling (this node does not own the room in its own view
    /// yet): ask again shortly.
    #[serde(default)]
    pub settling: bool,
}

impl BytesConvertable for EnsureRoom {
    fn into_bytes(self) -> Vec<u8> {
        serde_json::to_vec(&self).expect("requests always encode")
    }
    fn from_bytes(bytes: Vec<u8>) -> Self {
        serde_json::from_slice(&bytes).expect("a request from a peer must decode")
    }
}

impl BytesConvertable for EnsureReply {
    fn into_bytes(self) -> Vec<u8> {
        serde_json::to_vec(&self).expect("replies always encode")
    }
    fn from_bytes(bytes: Vec<u8>) -> Self {
        serde_json::from_slice(&bytes).expect("a reply from a peer must decode")
    }
}

/// Messages accepted by [`RoomHostActor`], from any node.
#[derive(RactorClusterMessage)]
pub enum RoomHostMessage {
    /// Makes sure the room runs (here, unless a live owner exists anywhere).
    #[rpc]
    Ensure(EnsureRoom, RpcReplyPort<EnsureReply>),
    /// One chunk of a room moving here; the last one starts the room with the moved state.
    #[rpc]
    Adopt(AdoptChunk, RpcReplyPort<AdoptReply>),
    /// One chunk of a room's whole state for the replica kept here (this node is its backup).
    ReplicaSync(AdoptChunk),
    /// A message just published in a room replicated here; answered once it is held, so the
    /// owner acknowledges a publish only when its replica has it.
    #[rpc]
    ReplicaAppend(SharedDelivery, RpcReplyPort<AdoptReply>),
    /// Forget the replica of a room (it moved, stopped, or chose another backup).
    ReplicaDrop(ReplicaKey),
    /// Housekeeping, sent by the host to itself every second: the node's room memory is
    /// regulated, replicas too old to be restored and moves that never finished are dropped.
    Tick(crate::room::Empty),
}

/// Names a replica: room and epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicaKey {
    /// Room.
    pub room: String,
    /// Epoch of the replicated room.
    pub epoch: String,
}

impl BytesConvertable for ReplicaKey {
    fn into_bytes(self) -> Vec<u8> {
        serde_json::to_vec(&self).expect("keys always encode")
    }
    fn from_bytes(bytes: Vec<u8>) -> Self {
        serde_json::from_slice(&bytes).expect("a key from a peer must decode")
    }
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

/// Chunks of rooms on their way here, by move id.
#[derive(Default)]
pub struct HostState {
    /// Chunks of moves and replica syncs under way, with when their first chunk came.
    arriving: HashMap<String, (Vec<AdoptChunk>, std::time::Instant)>,
    /// Replicas of rooms owned elsewhere, for which this node is the backup.
    replicas: HashMap<String, Replica>,
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

    /// Starts a room actor here and makes it findable.
    async fn start(
        &self,
        myself: &ActorRef<RoomHostMessage>,
        args: RoomArgs,
    ) -> Result<(), String> {
        let room = args.name.clone();
        let group = group_of(&room);
        let name = crate::directory::room_actor_name(&room, &args.epoch, &self.node);
        match Actor::spawn_linked(Some(name), RoomActor, args, myself.get_cell()).await {
            Ok((actor, _)) => {
                ractor::pg::join(group, vec![actor.get_cell()]);
                Ok(())
            }
            Err(e) => Err(format!("cannot start room `{room}`: {e}")),
        }
    }
}

/// The room host; one per node.
pub struct RoomHostActor {
    /// This node's name.
    pub node: String,
    /// Active and live nodes (for placement checks and the rooms' choice of backup).
    pub members: Arc<crate::directory::Membership>,
    /// This node's lifecycle: only an active node creates rooms.
    pub lifecycle: Arc<crate::context::Lifecycle>,
    /// Whether the cluster agrees that the nodes this one sees as down are gone.
    pub agreement: Arc<crate::cluster::agreement::Agreement>,
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
        myself.send_interval(TICK, || RoomHostMessage::Tick(crate::room::Empty {}));
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
                        });
                        return Ok(());
                    }
                };
                let (id, last) = (chunk.move_id.clone(), chunk.last);
                // A node that is leaving takes no room: the mover keeps it and looks for an
                // active node (a drain that races another node's drain, staggered stops).
                if matches!(
                    self.lifecycle.get(),
                    crate::context::NodeState::Draining | crate::context::NodeState::Drained
                ) {
                    state.arriving.remove(&id);
                    let _ = reply.send(AdoptReply {
                        error: Some(format!(
                            "node `{}` is draining and takes no rooms",
                            self.node
                        )),
                    });
                    return Ok(());
                }
                // A second instance of a room on one node is never made on purpose: the one
                // running here stays, and the mover keeps its own (the rooms settle it).
                if crate::directory::instances(&room)
                    .iter()
                    .any(|c| c.get_id().is_local())
                {
                    state.arriving.remove(&id);
                    let _ = reply.send(AdoptReply {
                        error: Some(format!("room `{room}` already runs on this node")),
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
                    None => Some("the moved room's chunks do not fit together".to_owned()),
                    Some(moved) => {
                        let epoch: Arc<str> = Arc::from(moved.epoch.as_str());
                        let args = self.args(room.clone(), epoch, Some(moved));
                        self.start(&myself, args).await.err()
                    }
                };
                if out.is_none() {
                    tracing::info!(room = %room, "room adopted");
                }
                let _ = reply.send(AdoptReply { error: out });
            }
            RoomHostMessage::Ensure(req, reply) => {
                let room = match RoomName::parse(&req.room) {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = reply.send(EnsureReply {
                            error: Some(e.to_string()),
                            settling: false,
                        });
                        return Ok(());
                    }
                };
                if crate::directory::find(&room).is_some() {
                    let _ = reply.send(EnsureReply::default());
                    return Ok(());
                }
                // Create only what this node owns in its own view too: a node whose view lags
                // (a peer that just turned active, not yet counted everywhere) may have picked
                // this one while another node picks the newcomer.
                let active = if self.lifecycle.get() == crate::context::NodeState::Active {
                    self.members.active()
                } else {
                    Vec::new()
                };
                if let Err(why) =
                    crate::directory::may_create(room.as_str(), &self.node, &active, &req.live)
                {
                    tracing::debug!(room = %room, %why, "ensure declined");
                    let _ = reply.send(EnsureReply {
                        error: Some(why),
                        settling: true,
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
                        settling: false,
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
                    && crate::directory::owner(room.as_str(), &self.members.active())
                        != Some(self.node.as_str())
                {
                    tracing::info!(room = %room, "replica kept: the room's owner is counted active again; placement is settling");
                    let _ = reply.send(EnsureReply {
                        error: Some(format!(
                            "room `{room}`: its owner is active again in the view of `{}`; placement is settling",
                            self.node
                        )),
                        settling: true,
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
                let error = self.start(&myself, args).await.err();
                if error.is_none() {
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
                let _ = reply.send(EnsureReply {
                    error,
                    settling: false,
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
            RoomHostMessage::Tick(_) => {
                self.memory.regulate(crate::ids::now_micros());
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
        }
        Ok(())
    }
}
