//! The per-node relay: delivers room messages and presence events to this node's connections.
//!
//! A room's owner sends each publish once per node that has members (one cast here, whatever the
//! member count); the relay hands the shared [`Delivery`] to each HTTP worker's pump with that
//! worker's subscribers of the room (a list kept per room and rebuilt only when its membership
//! changes, `pump::Subscribers`), so a publish costs one cross-thread wake per worker rather than
//! one per subscriber, and no per-subscriber work here. The relay owns the map `room → local subscribers` and nothing else: it never waits on
//! a connection (pushes are non-blocking, overflow closes the connection) and never assigns seqs.
//!
//! Ordering: the relay forwards in the order its mailbox receives, which is the order the owner
//! sent; connections drop any seq they already have (replay/live overlap at join).

use crate::delivery::Delivery;
use crate::directory::{self, Placement};
use crate::ids::{ClientId, ConnId};
use crate::outbound::pump::{Fanout, Subscribers};
use crate::outbound::Rehome;
use crate::outbound::{ConnHandle, Outbound};
use crate::room_access::calls;
use crate::room_access::RoomRef;
use bytestring::ByteString;
use protocol::client::Presence;
use protocol::room::RoomName;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub mod ingress;
pub mod presence;

/// Messages accepted by [`RelayActor`].
pub enum RelayMessage {
    /// A local connection wants `room`'s messages (sent before it asks the room to join).
    Subscribe {
        /// Room.
        room: RoomName,
        /// The connection.
        conn: ConnHandle,
        /// Whether and how to deliver presence events.
        presence: Presence,
    },
    /// A local connection no longer wants `room`.
    Unsubscribe {
        /// Room.
        room: RoomName,
        /// The connection.
        conn: ConnId,
    },
    /// A published message for every local subscriber of its room.
    Deliver(Arc<Delivery>),
    /// A presence event for local subscribers that asked for presence, except `exclude`.
    Presence {
        /// Room.
        room: RoomName,
        /// Encoded `presence_join` / `presence_leave` frame.
        frame: ByteString,
        /// The client the event is about (it does not get its own event).
        exclude: ClientId,
    },
    /// The end of a room's presence tick: its batched events go out (sent by the relay to
    /// itself).
    FlushPresence(RoomName),
    /// Counts for the admin API: (rooms with local subscribers, subscriptions).
    Stats(RpcReplyPort<(usize, usize)>),
    /// A connection joined `room` at `owner`: the relay watches that owner. Sent by the room
    /// itself for a member on its own node (before its join reply), by the connection otherwise.
    Owner {
        /// Room.
        room: RoomName,
        /// The room's instance.
        owner: RoomRef,
        /// Its epoch.
        epoch: Arc<str>,
    },
    /// The room moved to another owner: a migration (the members' handles switch), or a
    /// rival's win after a partition (`rejoin`: the members rejoin the winner with `since`).
    Moved {
        /// Room.
        room: RoomName,
        /// The new owner does not hold the members.
        rejoin: bool,
    },
    /// A re-homing attempt for `room` ended (successfully or not).
    Rehomed {
        /// Room.
        room: RoomName,
        /// The new owner, if one was reached.
        owner: Option<RoomRef>,
        /// Its epoch.
        epoch: Option<Arc<str>>,
        /// True when the room moved with its state (same epoch); false when it was re-created.
        moved: bool,
    },
    /// Periodic check of the owners of rooms with local subscribers.
    Tick,
}

impl ractor::Message for RelayMessage {}

struct Subscriber {
    conn: ConnHandle,
    presence: Presence,
}

/// The relay; one per node.
pub struct RelayActor {
    /// Room placement, for finding an owner again.
    pub placement: Placement,
}

/// One room's local subscribers and the owner they joined.
#[derive(Default)]
struct RoomSubs {
    /// By connection: a join or leave is one lookup, not a scan (a room of 100 000 members
    /// emptied by a mass disconnect was 100 000 scans of up to 100 000 entries).
    subs: HashMap<ConnId, Subscriber>,
    /// `subs` grouped by worker for publishes; rebuilt at the first publish after a change.
    fanout: Option<Subscribers>,
    /// How many of `subs` asked for presence events, each as its own frame and batched: a
    /// presence event for a room where none did costs one check, not a scan of its members
    /// (every join into a hot room sends one).
    each: usize,
    batched: usize,
    /// Events waiting for the tick, for the batched ones.
    batch: presence::PresenceBatch,
    owner: Option<RoomRef>,
    epoch: Option<Arc<str>>,
    rehoming: bool,
    /// A re-homing found no owner (its owner is behind a partition, say): when, so the relay
    /// tries again until one answers.
    orphaned: Option<std::time::Instant>,
    /// When the owner was found lost (not moved), until a re-homing reaches one: the owner
    /// dropped this node's members then, so each must join again.
    lost_at: Option<std::time::Instant>,
}

impl RoomSubs {
    /// Counts (`add`) or uncounts a subscriber's presence mode.
    fn count(&mut self, p: Presence, add: bool) {
        let n = match p {
            Presence::Off => return,
            Presence::Each => &mut self.each,
            Presence::Batched => &mut self.batched,
        };
        if add {
            *n += 1;
        } else {
            *n -= 1;
        }
    }

    /// Sends the waiting presence events to the members that asked for them batched: one
    /// frame each, without the events about themselves.
    fn flush_presence(&mut self, room: &RoomName) {
        if self.batch.is_empty() {
            return;
        }
        let batch = self.batch.take(room);
        let mut out = Fanout::default();
        for s in self
            .subs
            .values()
            .filter(|s| s.presence == Presence::Batched)
        {
            if let Some(f) = batch.frame_for(&s.conn.info.client) {
                let len = f.len();
                out.push(&s.conn, Outbound::Frame(f), len);
            }
        }
        out.send();
    }
}

/// Local subscriptions.
#[derive(Default)]
pub struct RelayState {
    rooms: HashMap<RoomName, RoomSubs>,
}

/// How often the relay checks that the owners of its rooms are alive.
const OWNER_CHECK: Duration = Duration::from_millis(200);

/// How long an orphaned room waits before the next re-homing attempt.
const ORPHAN_RETRY: Duration = Duration::from_secs(1);

/// What a re-homing starts from.
struct Rehoming {
    room: RoomName,
    /// The owner announced a move (`Moved`); otherwise the owner was lost.
    announced: bool,
    /// The owner the members had (a mover still answers until it stops).
    old: Option<RoomRef>,
    /// The epoch they had: an owner with the same epoch already holds them (a migration).
    old_epoch: Option<Arc<str>>,
}

/// Finds the room's new owner; if its epoch is the old one (the room moved with its state), only
/// the connections' handles change; otherwise (the owner was lost) every local subscriber
/// re-joins it, quietly. Then each connection is told where its room now lives.
async fn rehome(myself: ActorRef<RelayMessage>, placement: Placement, r: Rehoming) {
    let Rehoming {
        room,
        announced,
        old,
        old_epoch,
    } = r;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let owner = loop {
        let found = directory::lookup(&placement, &room).await;
        match found {
            Ok(r) if announced && old.as_ref().is_some_and(|o| o.same(&r)) => {
                // The mover is still visible here; its successor's membership is on its way.
                // (An owner that was lost and is found again is the owner: it is back.)
                if tokio::time::Instant::now() >= deadline {
                    break None;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(r) => break Some(r),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(room = %room, error = %e, "re-homing: owner not ready");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                tracing::error!(room = %room, error = %e, "re-homing failed; members must rejoin");
                break None;
            }
        }
    };
    let (epoch, moved) = match &owner {
        None => (None, false),
        Some(owner) => {
            let epoch = calls::info(owner)
                .await
                .ok()
                .map(|i| Arc::<str>::from(i.epoch.as_str()));
            // Only an announced move keeps the members where they are; a room restored from
            // its replica (same epoch) or re-created (new epoch) needs every member back.
            let moved = announced && epoch.is_some() && epoch == old_epoch;
            (epoch, moved)
        }
    };
    // The relay itself tells the connections (from its mailbox, so no delivery of the new
    // owner can reach a connection before it learned where its room is).
    let _ = myself.cast(RelayMessage::Rehomed {
        room,
        owner,
        epoch,
        moved,
    });
}

impl Actor for RelayActor {
    type Msg = RelayMessage;
    type State = RelayState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        (): (),
    ) -> Result<Self::State, ActorProcessingErr> {
        myself.send_interval(OWNER_CHECK, || RelayMessage::Tick);
        Ok(RelayState::default())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RelayMessage::Subscribe {
                room,
                conn,
                presence,
            } => {
                let r = state.rooms.entry(room).or_default();
                match r.subs.entry(conn.id) {
                    Entry::Occupied(mut s) => {
                        let was = std::mem::replace(&mut s.get_mut().presence, presence);
                        r.count(was, false);
                        r.count(presence, true);
                    }
                    Entry::Vacant(v) => {
                        v.insert(Subscriber { conn, presence });
                        r.count(presence, true);
                        r.fanout = None;
                    }
                }
            }
            RelayMessage::Unsubscribe { room, conn } => {
                if let Some(r) = state.rooms.get_mut(&room) {
                    if let Some(s) = r.subs.remove(&conn) {
                        r.count(s.presence, false);
                        r.fanout = None;
                    }
                    if r.subs.is_empty() && !r.rehoming {
                        state.rooms.remove(&room);
                    }
                }
            }
            RelayMessage::Deliver(d) => {
                if let Some(r) = state.rooms.get_mut(&d.room) {
                    // One message per worker; overflow closes the connection with 4008.
                    let subs = &r.subs;
                    r.fanout
                        .get_or_insert_with(|| Subscribers::new(subs.values().map(|s| &s.conn)))
                        .deliver(&d);
                }
            }
            RelayMessage::Presence {
                room,
                frame,
                exclude,
            } => {
                let Some(r) = state.rooms.get_mut(&room) else {
                    return Ok(());
                };
                if r.each > 0 {
                    let mut out = Fanout::default();
                    for s in r
                        .subs
                        .values()
                        .filter(|s| s.presence == Presence::Each && s.conn.info.client != exclude)
                    {
                        out.push(&s.conn, Outbound::Frame(frame.clone()), frame.len());
                    }
                    out.send();
                }
                if r.batched > 0 {
                    if r.batch.push(frame, exclude) {
                        r.flush_presence(&room);
                    } else if !r.batch.scheduled {
                        r.batch.scheduled = true;
                        myself.send_after(presence::PRESENCE_TICK, move || {
                            RelayMessage::FlushPresence(room)
                        });
                    }
                }
            }
            RelayMessage::FlushPresence(room) => {
                if let Some(r) = state.rooms.get_mut(&room) {
                    r.batch.scheduled = false;
                    r.flush_presence(&room);
                }
            }
            RelayMessage::Stats(reply) => {
                let subs = state.rooms.values().map(|r| r.subs.len()).sum();
                let _ = reply.send((state.rooms.len(), subs));
            }
            RelayMessage::Owner { room, owner, epoch } => {
                if let Some(r) = state.rooms.get_mut(&room) {
                    if !r.rehoming {
                        r.owner = Some(owner);
                        r.epoch = Some(epoch);
                    }
                }
            }
            RelayMessage::Moved { room, rejoin } => {
                let placement = &self.placement;
                if let Some(r) = state.rooms.get_mut(&room) {
                    if !r.rehoming && !r.subs.is_empty() {
                        r.rehoming = true;
                        if rejoin {
                            r.lost_at.get_or_insert_with(std::time::Instant::now);
                        }
                        let job = Rehoming {
                            announced: !rejoin,
                            room: room.clone(),
                            old: r.owner.take(),
                            old_epoch: r.epoch.clone(),
                        };
                        tokio::spawn(rehome(myself.clone(), placement.clone(), job));
                    }
                }
            }
            RelayMessage::Rehomed {
                room,
                owner,
                epoch,
                moved,
            } => {
                if let Some(r) = state.rooms.get_mut(&room) {
                    r.rehoming = false;
                    if let (Some(o), Some(e)) = (&owner, &epoch) {
                        let note = Rehome {
                            room: room.clone(),
                            owner: o.clone(),
                            epoch: e.clone(),
                            seq: 0,
                            lost_at: if moved { None } else { r.lost_at },
                        };
                        let mut fan = Fanout::default();
                        for s in r.subs.values() {
                            let out = if moved {
                                Outbound::Rehomed(Box::new(note.clone()))
                            } else {
                                Outbound::Rejoin(Box::new(note.clone()))
                            };
                            fan.push(&s.conn, out, 0);
                        }
                        fan.send();
                        if moved {
                            tracing::info!(room = %room, members = r.subs.len(), "room moved; members follow");
                        } else {
                            tracing::info!(room = %room, members = r.subs.len(), "room re-created after its owner was lost; members rejoin");
                        }
                    }
                    if owner.is_some() {
                        r.orphaned = None;
                        r.lost_at = None;
                        r.owner = owner;
                        r.epoch = epoch;
                    } else {
                        r.orphaned = Some(std::time::Instant::now());
                    }
                    if r.subs.is_empty() {
                        state.rooms.remove(&room);
                    }
                }
            }
            RelayMessage::Tick => {
                let placement = &self.placement;
                for (room, r) in &mut state.rooms {
                    let lost = r.owner.as_ref().is_some_and(|o| !o.is_live());
                    let retry = r.owner.is_none()
                        && r.orphaned.is_some_and(|t| t.elapsed() >= ORPHAN_RETRY);
                    if !(lost || retry) || r.rehoming || r.subs.is_empty() {
                        continue;
                    }
                    if lost {
                        tracing::warn!(room = %room, members = r.subs.len(), "room owner lost; re-homing");
                        r.lost_at.get_or_insert_with(std::time::Instant::now);
                    }
                    r.orphaned = None;
                    r.rehoming = true;
                    let job = Rehoming {
                        announced: false,
                        room: room.clone(),
                        old: r.owner.take(),
                        old_epoch: r.epoch.clone(),
                    };
                    tokio::spawn(rehome(myself.clone(), placement.clone(), job));
                }
            }
        }
        Ok(())
    }
}
