//! A room's state machine without its actor: the members (per client, and their connections
//! per node), `seq` and the epoch, the history and what a join's `since` or `last` gets from it,
//! history pages, presence pages, the deliveries held back from a slow node, the snapshot, the
//! state that moves with the room and the order of a hand-over, and where the room's home and
//! backup are. The room actor ([`super::RoomActor`]) owns one [`Room`] and carries out what it
//! decides.
//!
//! Pure: the clock is passed in (`now`, `now_us`) and every answer is a value or a decision
//! ([`SinceOutcome`], [`PresenceChange`], [`Left`], [`Fan`], [`HomeSync`], [`BackupChange`],
//! [`RivalVerdict`], [`HandOverStep`], [`Housekeeping`]). It may not touch actors, relays, room
//! hosts, process groups, the node's room memory budget, metrics, logs or a time source: where a
//! node's members are reached (one relay handle per node this state counts) and everything that
//! is sent is the actor's.

use super::history::{History, Recovery};
use super::snapshot::Snapshot;
use crate::delivery::Delivery;
use crate::wire::migration::{MovedMember, MovedRoom};
use crate::wire::room::MAX_REPLY_BYTES;
use crate::wire::room::{HistoryPage, PresenceEntry, PresenceList, PRESENCE_PAGE_BYTES};
use protocol::client::Since;
use protocol::room::RoomName;
use protocol::server::{From, ServerFrame};
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many recent messages a room re-sends to a node reached through a new link.
pub const RESEND_TAIL: usize = 256;

/// How long a room that moved keeps forwarding what still reaches it.
pub const FORWARD_GRACE: Duration = Duration::from_secs(10);

/// How often a room that runs away from its home node tells the home again where it is (the
/// home forgets an entry not refreshed for three times this).
pub const HOME_REFRESH: Duration = Duration::from_secs(10);

/// Bytes a snapshot holds (compressed).
pub fn snapshot_bytes(s: &Snapshot) -> usize {
    s.parts().1.len()
}

/// Frame bytes of `v`.
fn bytes_of(v: &[Arc<Delivery>]) -> usize {
    v.iter().map(|d| d.frame.len()).sum()
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

/// The shared name of `node` (a handful of nodes: a scan).
fn intern(names: &mut Vec<Arc<str>>, node: &str) -> Arc<str> {
    if let Some(n) = names.iter().find(|n| &***n == node) {
        return n.clone();
    }
    let n: Arc<str> = Arc::from(node);
    names.push(n.clone());
    n
}

/// One member client (a room of 10 000 keeps 10 000: boxed strings, and the node's name
/// shared, not copied, per member).
#[derive(Debug)]
struct Member {
    user: Box<str>,
    node: Arc<str>,
    conns: u32,
}

/// A member that arrived or left, to announce to every node with members (but not to the
/// member's own connections).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceChange {
    /// Its first connection joined.
    Joined {
        /// Client id.
        client: String,
        /// User id.
        user: String,
    },
    /// Its last connection left, or its node is gone.
    Left {
        /// Client id.
        client: String,
        /// User id.
        user: String,
    },
}

impl PresenceChange {
    /// The member's client id (excluded from the announcement).
    pub fn client(&self) -> &str {
        match self {
            Self::Joined { client, .. } | Self::Left { client, .. } => client,
        }
    }

    /// The `presence_join` / `presence_leave` frame for `room`.
    pub fn frame(&self, room: &RoomName) -> String {
        let room = room.as_str();
        match self {
            Self::Joined { client, user } => ServerFrame::PresenceJoin { room, client, user },
            Self::Left { client, user } => ServerFrame::PresenceLeave { room, client, user },
        }
        .encode()
    }
}

/// What a leave changed.
#[derive(Debug, PartialEq, Eq)]
pub struct Left {
    /// The member's node has no member connections left here: the room stops sending to it.
    pub node_gone: bool,
    /// The member's last connection left: the others are told.
    pub presence: Option<PresenceChange>,
}

/// How a join's `since` went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinceOutcome {
    /// Everything after the position is replayed (possibly nothing).
    Recovered,
    /// The position is in another epoch (the room was created again without its history).
    OtherEpoch,
    /// The position is past the room's seq (the room lost what the client saw).
    Ahead,
    /// History no longer holds everything after the position (or more than it ever holds).
    TooOld,
    /// The replay would not fit in one reply ([`MAX_REPLY_BYTES`]).
    TooLarge,
}

impl SinceOutcome {
    /// The reply's `recovered`.
    pub fn recovered(self) -> bool {
        self == Self::Recovered
    }
}

/// What a join replays before live messages.
#[derive(Debug)]
pub struct Replay {
    /// With `since`: how the recovery went (anything but [`SinceOutcome::Recovered`] replays
    /// nothing: never a silent partial replay).
    pub since: Option<SinceOutcome>,
    /// Messages to replay, in order.
    pub messages: Vec<Arc<Delivery>>,
    /// Set when `messages` is the first page of the replay (`replay_bytes`): the seq of the
    /// replay's last message, which the caller reads up to with history pages.
    pub until: Option<u64>,
}

/// What a remote node with members gets now, given how full its link is ([`Link`]).
#[derive(Debug)]
pub enum Fan {
    /// The new delivery.
    Send,
    /// Nothing now: it is held back from, and its link has no room yet (or nothing is new).
    Skip,
    /// Its link is over half its budget: it is held back from, from this seq on.
    HeldBack(u64),
    /// It was held back from and its link has room again (or the room moves): what it missed,
    /// from history, before anything newer.
    Resume(Backlog),
}

/// What a node held back from missed.
#[derive(Debug)]
pub struct Backlog {
    /// What history still holds of it, in order.
    pub messages: Vec<Arc<Delivery>>,
    /// How many of its seqs history no longer holds (its members see a gap).
    pub missed: u64,
}

/// How full a node's link is (the actor reads it from `crate::peer_queue`).
pub trait Link {
    /// More than half the link budget waits: hold deliveries back.
    fn hold_back(&self) -> bool;
    /// Less than a quarter waits: what was held back may be sent.
    fn may_resume(&self) -> bool;
}

/// What the room tells its home node ([`Room::sync_home`]), in this order.
#[derive(Debug, PartialEq, Eq)]
pub enum HomeSync {
    /// Nothing to tell.
    UpToDate,
    /// Tell the home.
    Tell {
        /// The node told before, which is no longer the home: it forgets the room.
        unregister: Option<String>,
        /// The home (not this node): where the room runs (confirm with [`Room::home_told`]).
        register: Option<String>,
    },
}

/// One step of handing a room over to its successor, in the order [`Room::hand_over`] returns
/// them.
#[derive(Debug, PartialEq, Eq)]
pub enum HandOverStep {
    /// Tell the room's home node where the successor runs (before this instance leaves the
    /// group, so a lookup there never finds neither).
    RegisterSuccessorAt(String),
    /// The node this instance told it runs there forgets it.
    UnregisterAt(String),
    /// Leave the room's process group.
    LeaveGroup,
    /// The backup forgets this instance's replica.
    DropReplica,
    /// Forward whatever still reaches this instance to the successor until then.
    ForwardUntil(Instant),
    /// Send the nodes held back from what they missed (flushed, not paced).
    SendHeld,
    /// Tell every node with members that the room moved: they follow it, or rejoin it with
    /// `since` (`rejoin`).
    NotifyRelays {
        /// The successor does not hold the members.
        rejoin: bool,
    },
}

/// Where the replica should be now ([`backup_change`]).
#[derive(Debug, PartialEq, Eq)]
pub enum BackupChange {
    /// It is where it should be (or there is none and should be none).
    Keep,
    /// The backup forgets it, and no other node keeps one.
    Drop,
    /// The backup (if any) forgets it, and this node gets the whole state.
    MoveTo(String),
}

/// What to make of another instance of the room, met at its home after a partition healed.
#[derive(Debug, PartialEq, Eq)]
pub enum RivalVerdict {
    /// This instance keeps the room (or the note is about itself, or unreadable).
    Keep,
    /// The other instance, on `node` with `epoch`, wins: hand the room over to it.
    Yield {
        /// The winner's node.
        node: String,
        /// The winner's epoch.
        epoch: String,
    },
}

/// What a tick's housekeeping found ([`Room::housekeep`]).
#[derive(Debug, PartialEq, Eq)]
pub struct Housekeeping {
    /// Messages dropped for the node's memory pressure (rooms without members only).
    pub evicted: usize,
    /// A room without members: when its oldest message was published.
    pub oldest_us: Option<u64>,
    /// Idle long enough and nothing to keep: the room stops.
    pub stop: bool,
}

/// Publishes in the current and in the last whole second, for `msgs_per_s`.
#[derive(Debug)]
struct Rate {
    since: Instant,
    current: u64,
    last: u64,
}

impl Rate {
    fn count(&mut self, now: Instant) {
        let age = now.saturating_duration_since(self.since);
        if age >= Duration::from_secs(1) {
            let whole = age < Duration::from_secs(2);
            self.last = if whole { self.current } else { 0 };
            self.since = now;
            self.current = 0;
        }
        self.current += 1;
    }

    fn per_s(&self, now: Instant) -> f64 {
        if now.saturating_duration_since(self.since) >= Duration::from_secs(2) {
            0.0
        } else {
            self.last as f64
        }
    }
}

/// A room's state.
#[derive(Debug)]
pub struct Room {
    name: RoomName,
    epoch: Arc<str>,
    /// The history's capacity (the most a recovery or a page may ask for).
    history_size: usize,
    seq: u64,
    history: History,
    snapshot: Option<Snapshot>,
    /// By client id, in order (a presence page is a range, not a sort of every member).
    members: BTreeMap<Box<str>, Member>,
    /// The names of the nodes members are on, shared by the members.
    node_names: Vec<Arc<str>>,
    /// Per node with members: how many member connections it has.
    nodes: HashMap<String, u32>,
    /// Nodes this room holds deliveries back from (their link is over half its budget), with
    /// the first seq not sent.
    held: HashMap<String, u64>,
    idle_since: Option<Instant>,
    rate: Rate,
    /// The home node this room told where it runs (it runs away from its home), and when.
    home: Option<(String, Instant)>,
}

impl Room {
    /// A new, empty room (idle from `now`) with a history of `history_size` messages, each for
    /// at most `history_ttl` (zero: no age limit), `history_max_bytes` in all.
    pub fn new(
        name: RoomName,
        epoch: Arc<str>,
        history_size: usize,
        history_ttl: Duration,
        history_max_bytes: usize,
        now: Instant,
    ) -> Self {
        Self {
            name,
            epoch,
            history_size,
            seq: 0,
            history: History::new(history_size, history_ttl, history_max_bytes),
            snapshot: None,
            members: BTreeMap::new(),
            node_names: Vec::new(),
            nodes: HashMap::new(),
            held: HashMap::new(),
            idle_since: Some(now),
            rate: Rate {
                since: now,
                current: 0,
                last: 0,
            },
            home: None,
        }
    }

    /// Takes the state moved from the previous owner (or restored from a replica): its seq,
    /// history and snapshot, the nodes with members the actor can reach (`reachable`) and
    /// their members; members on other nodes are dropped.
    pub fn adopt(&mut self, m: MovedRoom, reachable: impl Fn(&str) -> bool) {
        self.seq = m.seq;
        for d in m.history {
            self.history.push(d);
        }
        self.snapshot = m
            .snapshot
            .map(|(seq, bytes, len)| Snapshot::from_parts(seq, bytes, len));
        for (node, count) in m.nodes {
            if reachable(&node) {
                self.nodes.insert(node, count);
            }
        }
        for mm in m.members {
            if self.nodes.contains_key(&mm.node) {
                let node = intern(&mut self.node_names, &mm.node);
                self.members.insert(
                    mm.client.into_boxed_str(),
                    Member {
                        user: mm.user.into_boxed_str(),
                        node,
                        conns: mm.conns,
                    },
                );
            }
        }
        if !self.members.is_empty() {
            self.idle_since = None;
        }
    }

    /// The room's seq (its last message's).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The room's epoch.
    pub fn epoch(&self) -> &Arc<str> {
        &self.epoch
    }

    /// Distinct members.
    pub fn members(&self) -> usize {
        self.members.len()
    }

    /// The nodes with members, sorted.
    pub fn nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self.nodes.keys().cloned().collect();
        nodes.sort();
        nodes
    }

    /// The history.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The history, to store a message in within the node's budget (the actor's
    /// `budget::RoomMemory::store`).
    pub fn history_mut(&mut self) -> &mut History {
        &mut self.history
    }

    /// Drops history older than its ttl at `now_us`.
    pub fn expire_history(&mut self, now_us: u64) {
        self.history.expire(now_us);
    }

    /// The snapshot.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Bytes the snapshot holds (0: none).
    pub fn snapshot_bytes(&self) -> usize {
        self.snapshot.as_ref().map_or(0, snapshot_bytes)
    }

    /// Bytes the room would hold more with `s` in place of its snapshot.
    pub fn snapshot_growth(&self, s: &Snapshot) -> usize {
        snapshot_bytes(s).saturating_sub(self.snapshot_bytes())
    }

    /// Replaces the snapshot; returns its seq.
    pub fn set_snapshot(&mut self, s: Snapshot) -> u64 {
        let seq = s.seq;
        self.snapshot = Some(s);
        seq
    }

    /// The snapshot's seq and its `snapshot` frame, if the room has one (and it decodes).
    pub fn snapshot_frame(&self) -> Option<(u64, String)> {
        let s = self.snapshot.as_ref()?;
        let data = s.data().ok()?;
        let frame = ServerFrame::Snapshot {
            room: self.name.as_str(),
            seq: s.seq,
            epoch: &self.epoch,
            data: &data,
        }
        .encode();
        Some((s.seq, frame))
    }

    /// A connection of `client` (user `user`) on `node` joins; returns its arrival to announce
    /// when it is the client's first connection here (and not a `quiet` re-join after a move).
    pub fn join(
        &mut self,
        client: &str,
        user: &str,
        node: &str,
        quiet: bool,
    ) -> Option<PresenceChange> {
        self.idle_since = None;
        *self.nodes.entry(node.to_owned()).or_insert(0) += 1;
        let node = intern(&mut self.node_names, node);
        let m = self.members.entry(client.into()).or_insert_with(|| Member {
            user: user.into(),
            node: node.clone(),
            conns: 0,
        });
        m.conns += 1;
        m.node = node;
        (m.conns == 1 && !quiet).then(|| PresenceChange::Joined {
            client: client.to_owned(),
            user: user.to_owned(),
        })
    }

    /// A connection of `client` on `node` leaves (at `now`).
    pub fn leave(&mut self, client: &str, node: &str, now: Instant) -> Left {
        let mut node_gone = false;
        if let Some(count) = self.nodes.get_mut(node) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.nodes.remove(node);
                self.held.remove(node);
                node_gone = true;
            }
        }
        let last = match self.members.get_mut(client) {
            Some(m) => {
                m.conns = m.conns.saturating_sub(1);
                m.conns == 0
            }
            None => false,
        };
        let presence = if last {
            self.members.remove(client).map(|m| PresenceChange::Left {
                client: client.to_owned(),
                user: m.user.into(),
            })
        } else {
            None
        };
        if self.members.is_empty() {
            self.idle_since = Some(now);
        }
        Left {
            node_gone,
            presence,
        }
    }

    /// `node` is gone (it left or crashed): its members leave, and the others are told (the
    /// owner announces their leaves). `None` when the room counted no members there.
    pub fn node_lost(&mut self, node: &str, now: Instant) -> Option<Vec<PresenceChange>> {
        self.held.remove(node);
        self.nodes.remove(node)?;
        let gone: Vec<Box<str>> = self
            .members
            .iter()
            .filter(|(_, m)| &*m.node == node)
            .map(|(c, _)| c.clone())
            .collect();
        let mut leaves = Vec::with_capacity(gone.len());
        for client in gone {
            if let Some(m) = self.members.remove(&client) {
                leaves.push(PresenceChange::Left {
                    client: client.into(),
                    user: m.user.into(),
                });
            }
        }
        if self.members.is_empty() {
            self.idle_since = Some(now);
        }
        Some(leaves)
    }

    /// What a join replays: with `since`, everything after it or nothing (see
    /// [`SinceOutcome`]); with `last`, the last `last` messages (after the snapshot's seq);
    /// a reply that would be larger than [`MAX_REPLY_BYTES`] says it is incomplete (`since`)
    /// or keeps the most recent messages that fit (`last`). With `replay_bytes` (a caller on
    /// another node), a longer replay is cut to its first page.
    pub fn replay(
        &self,
        since: Option<&Since>,
        last: Option<u32>,
        replay_bytes: Option<u64>,
    ) -> Replay {
        let floor = self.snapshot.as_ref().map_or(0, |s| s.seq);
        let (outcome, messages) = match (since, last) {
            (Some(since), _) => match self.recover(since, floor) {
                Ok(v) => (Some(SinceOutcome::Recovered), v),
                Err(o) => (Some(o), Vec::new()),
            },
            (None, Some(n)) => (None, self.history.last(n as usize, floor)),
            (None, None) => (None, Vec::new()),
        };
        let (outcome, mut messages) = if bytes_of(&messages) <= MAX_REPLY_BYTES {
            (outcome, messages)
        } else if outcome.is_some() {
            (Some(SinceOutcome::TooLarge), Vec::new())
        } else {
            let mut kept = Vec::new();
            let mut size = 0;
            for d in messages.into_iter().rev() {
                size += d.frame.len();
                if size > MAX_REPLY_BYTES {
                    break;
                }
                kept.push(d);
            }
            kept.reverse();
            (None, kept)
        };
        let mut until = None;
        if let Some(max) = replay_bytes {
            let max = usize::try_from(max).unwrap_or(usize::MAX);
            if bytes_of(&messages) > max {
                until = messages.last().map(|d| d.seq);
                cap(&mut messages, max);
            }
        }
        Replay {
            since: outcome,
            messages,
            until,
        }
    }

    /// Everything after `since` (from the snapshot's seq `floor` on), or why not.
    fn recover(&self, since: &Since, floor: u64) -> Result<Vec<Arc<Delivery>>, SinceOutcome> {
        if since.epoch.as_str() != &*self.epoch {
            return Err(SinceOutcome::OtherEpoch);
        }
        if since.seq > self.seq {
            return Err(SinceOutcome::Ahead);
        }
        let after = since.seq.max(floor).min(self.seq);
        match self.history.after(after, self.seq, self.history_size) {
            Recovery::Complete(v) => Ok(v),
            Recovery::Incomplete => Err(SinceOutcome::TooOld),
        }
    }

    /// Sequences a publish at `now_us` (wall clock, microseconds): the next seq, and its
    /// `message` frame encoded once. The caller stores it ([`Room::history_mut`]) before anyone
    /// sees it.
    pub fn sequence(&mut self, from: From<'_>, data: &RawValue, now_us: u64) -> Arc<Delivery> {
        self.seq += 1;
        let frame = ServerFrame::Message {
            room: self.name.as_str(),
            seq: self.seq,
            epoch: &self.epoch,
            from,
            data,
        }
        .encode();
        Arc::new(Delivery {
            room: self.name.clone(),
            seq: self.seq,
            epoch: self.epoch.clone(),
            frame: frame.into(),
            published_us: now_us,
        })
    }

    /// Counts a publish at `now` for [`Room::msgs_per_s`].
    pub fn count_publish(&mut self, now: Instant) {
        self.rate.count(now);
    }

    /// Publishes in the last whole second (0 when the room was quiet since).
    pub fn msgs_per_s(&self, now: Instant) -> f64 {
        self.rate.per_s(now)
    }

    /// Whether any node is held back from.
    pub fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// Whether `node` is held back from.
    pub fn is_held(&self, node: &str) -> bool {
        self.held.contains_key(node)
    }

    /// Holds deliveries back from `node` from `seq` on (its link is over half its budget).
    pub fn hold(&mut self, node: &str, seq: u64) {
        self.held.insert(node.to_owned(), seq);
    }

    /// What the remote `node` gets of a publish of seq `new` (or, with `None`, of a pass over the
    /// nodes held back from): a node held back from gets what it missed once its link is below a
    /// quarter of its budget (or at once with `flush`, before a move), and until then nothing; a
    /// node whose link is over half its budget is held back from. What history no longer holds
    /// is a gap its members see in `seq`, as when a `since` falls outside history.
    pub fn fan(&mut self, node: &str, new: Option<u64>, flush: bool, link: &impl Link) -> Fan {
        // (Nothing held back is the usual case: no lookup per publish then.)
        let held = if self.held.is_empty() {
            None
        } else {
            self.held.get(node).copied()
        };
        if let Some(from) = held {
            if !(flush || link.may_resume()) {
                return Fan::Skip;
            }
            self.held.remove(node);
            let messages = self.history.range(from.saturating_sub(1), usize::MAX);
            let missed = messages.first().map_or(self.seq + 1, |f| f.seq) - from;
            return Fan::Resume(Backlog { messages, missed });
        }
        match new {
            Some(seq) if link.hold_back() => {
                self.held.insert(node.to_owned(), seq);
                Fan::HeldBack(seq)
            }
            Some(_) => Fan::Send,
            None => Fan::Skip,
        }
    }

    /// What a node reached through a new link (its old one closed) is sent again, in order:
    /// what it was held back from, else the last [`RESEND_TAIL`] messages. It is no longer held
    /// back from.
    pub fn resend(&mut self, node: &str) -> Vec<Arc<Delivery>> {
        match self.held.remove(node) {
            Some(from) => self.history.range(from.saturating_sub(1), usize::MAX),
            None => self.history.last(RESEND_TAIL, 0),
        }
    }

    /// One page of members after client id `after`, in client id order, at most
    /// [`PRESENCE_PAGE_BYTES`] and `limit` of them; `next` is set when more
    /// follow.
    pub fn presence_page(&self, after: Option<&str>, limit: Option<u32>) -> PresenceList {
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
            if (size + cost > PRESENCE_PAGE_BYTES || members.len() == limit) && !members.is_empty()
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

    /// One page of history (at `now_us`): after `since` (in this epoch; another epoch gets an
    /// empty, incomplete page), else the last `limit`; at most `max_bytes` of frames, at least
    /// one message. `complete`: the page starts right after the asked position.
    pub fn history_page(
        &mut self,
        since: Option<Since>,
        limit: usize,
        max_bytes: usize,
        now_us: u64,
    ) -> HistoryPage {
        self.history.expire(now_us);
        let epoch = self.epoch.clone();
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

    /// Everything that moves with the room (members in client id order).
    pub fn moving_state(&self) -> MovedRoom {
        MovedRoom {
            epoch: self.epoch.to_string(),
            seq: self.seq,
            members: self
                .members
                .iter()
                .map(|(c, m)| MovedMember {
                    client: c.to_string(),
                    user: m.user.to_string(),
                    node: m.node.to_string(),
                    conns: m.conns,
                })
                .collect(),
            nodes: self.nodes.iter().map(|(n, c)| (n.clone(), *c)).collect(),
            snapshot: self.snapshot.as_ref().map(|s| {
                let (seq, bytes, len) = s.parts();
                (seq, bytes.to_vec(), len)
            }),
            history: self.history.last(usize::MAX, 0),
        }
    }

    /// A room on node `me` that runs away from its home node (its rendezvous owner among the
    /// `active` nodes) tells the home where it runs, again every [`HOME_REFRESH`] and at once
    /// when the home changes; a room back at home tells the old one it left. Once due, the
    /// room counts as having told no one until [`Room::home_told`].
    pub fn sync_home(&mut self, me: &str, active: &[String], now: Instant) -> HomeSync {
        let home = crate::placement::owner(self.name.as_str(), active)
            .filter(|h| *h != me)
            .map(str::to_owned);
        let due = match (&home, &self.home) {
            (Some(h), Some((told, at))) => {
                h != told || now.saturating_duration_since(*at) >= HOME_REFRESH
            }
            (Some(_), None) | (None, Some(_)) => true,
            (None, None) => false,
        };
        if !due {
            return HomeSync::UpToDate;
        }
        let unregister = self
            .home
            .take()
            .map(|(told, _)| told)
            .filter(|told| home.as_ref() != Some(told));
        HomeSync::Tell {
            unregister,
            register: home,
        }
    }

    /// The home was told, at `now`, where the room runs.
    pub fn home_told(&mut self, home: String, now: Instant) {
        self.home = Some((home, now));
    }

    /// Forgets the home told (the room stops); returns it, to tell it the room is gone.
    pub fn take_home(&mut self) -> Option<String> {
        self.home.take().map(|(h, _)| h)
    }

    /// The steps of handing the room over to a successor, in order, at `now`: the home (the
    /// rendezvous owner among the `active` nodes) learns where the successor runs before this
    /// instance leaves the group, the node told before forgets this instance, the replica goes,
    /// what still reaches this instance is forwarded for [`FORWARD_GRACE`], the nodes held back
    /// from get what they missed before they follow the room, and the relays are told last.
    /// `rejoin`: the successor does not hold this room's members (a rival that won).
    pub fn hand_over(
        &mut self,
        active: &[String],
        rejoin: bool,
        now: Instant,
    ) -> Vec<HandOverStep> {
        let mut steps = Vec::with_capacity(7);
        if let Some(home) = crate::placement::owner(self.name.as_str(), active) {
            steps.push(HandOverStep::RegisterSuccessorAt(home.to_owned()));
        }
        if let Some(told) = self.take_home() {
            steps.push(HandOverStep::UnregisterAt(told));
        }
        steps.push(HandOverStep::LeaveGroup);
        steps.push(HandOverStep::DropReplica);
        steps.push(HandOverStep::ForwardUntil(now + FORWARD_GRACE));
        if self.has_held() {
            steps.push(HandOverStep::SendHeld);
        }
        steps.push(HandOverStep::NotifyRelays { rejoin });
        steps
    }

    /// A tick's housekeeping at `now` (`now_us` on the wall clock): history past its ttl goes;
    /// a room without members also drops what was published before the node's memory-pressure
    /// `cutoff_us` (0: none) and reports its oldest message; a room idle for `idle_timeout`
    /// with no history and no snapshot stops.
    pub fn housekeep(
        &mut self,
        now: Instant,
        now_us: u64,
        idle_timeout: Duration,
        cutoff_us: u64,
    ) -> Housekeeping {
        self.history.expire(now_us);
        let mut evicted = 0;
        let mut oldest_us = None;
        if self.members.is_empty() {
            if cutoff_us > 0 {
                evicted = self.history.expire_before(cutoff_us);
            }
            oldest_us = self.history.oldest_us();
        }
        let idle = self
            .idle_since
            .is_some_and(|t| now.saturating_duration_since(t) >= idle_timeout);
        Housekeeping {
            evicted,
            oldest_us,
            stop: idle && self.history.is_empty() && self.snapshot.is_none(),
        }
    }
}

/// Where the replica of `room` on node `me` should be, given that it is on `current`: on the
/// rendezvous winner among the other `active` nodes (the node that would own the room if this
/// one were gone).
pub fn backup_change(
    room: &RoomName,
    me: &str,
    active: &[String],
    current: Option<&str>,
) -> BackupChange {
    let mut others = active.to_vec();
    others.retain(|n| n != me);
    let want = crate::placement::owner(room.as_str(), &others);
    match want {
        _ if want == current => BackupChange::Keep,
        None => BackupChange::Drop,
        Some(n) => BackupChange::MoveTo(n.to_owned()),
    }
}

/// Two owners of `room` after a partition healed, met at its home node: this instance (actor
/// `my_actor` on node `me` with `epoch`) and the `winner` the home named (its actor name). The
/// instance on the rendezvous winner of the two nodes keeps the room; the loser checks the
/// home's verdict with the same rule (`crate::placement::rival_wins`).
pub fn rival_verdict(
    room: &RoomName,
    me: (&str, &str),
    my_actor: &str,
    winner: &str,
) -> RivalVerdict {
    if winner == my_actor {
        return RivalVerdict::Keep;
    }
    let Some((epoch, node)) = crate::wire::names::parse_room_actor(winner) else {
        return RivalVerdict::Keep;
    };
    if epoch == me.1 || !crate::placement::rival_wins(room.as_str(), me, (node, epoch)) {
        return RivalVerdict::Keep;
    }
    RivalVerdict::Yield {
        node: node.to_owned(),
        epoch: epoch.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    const T0_US: u64 = 1_000_000_000;

    fn room(history: usize) -> (Room, Instant) {
        let now = Instant::now();
        let name = RoomName::parse("lobby").unwrap();
        (
            Room::new(
                name,
                Arc::from("e1"),
                history,
                Duration::ZERO,
                usize::MAX,
                now,
            ),
            now,
        )
    }

    /// Sequences and stores a message, as the actor does (without a node budget).
    fn publish(r: &mut Room, text: &str) -> Arc<Delivery> {
        let data = RawValue::from_string(format!("\"{text}\"")).unwrap();
        let from = From::Client {
            client: "c1",
            user: "u1",
        };
        let at = T0_US + r.seq();
        let d = r.sequence(from, &data, at);
        r.history_mut().push(d.clone());
        d
    }

    fn since(seq: u64, epoch: &str) -> Since {
        Since {
            seq,
            epoch: epoch.into(),
        }
    }

    fn seqs(v: &[Arc<Delivery>]) -> Vec<u64> {
        v.iter().map(|d| d.seq).collect()
    }

    /// A link whose fullness the test sets.
    #[derive(Default)]
    struct TestLink {
        full: Cell<bool>,
        drained: Cell<bool>,
    }

    impl Link for TestLink {
        fn hold_back(&self) -> bool {
            self.full.get()
        }
        fn may_resume(&self) -> bool {
            self.drained.get()
        }
    }

    #[test]
    fn joins_and_leaves_count_connections_and_announce_first_and_last() {
        let (mut r, t0) = room(10);
        let joined = r.join("c1", "u1", "a", false);
        assert_eq!(
            joined,
            Some(PresenceChange::Joined {
                client: "c1".into(),
                user: "u1".into()
            })
        );
        // A second connection of the same client is not announced again.
        assert_eq!(r.join("c1", "u1", "a", false), None);
        // A quiet re-join (the room moved) is not announced either.
        assert_eq!(r.join("c2", "u2", "b", true), None);
        assert_eq!(r.members(), 2);
        assert_eq!(r.nodes(), vec!["a".to_owned(), "b".to_owned()]);

        let left = r.leave("c1", "a", t0);
        assert_eq!(
            left,
            Left {
                node_gone: false,
                presence: None
            },
            "c1 still has a connection on a"
        );
        let left = r.leave("c1", "a", t0);
        assert!(left.node_gone);
        assert_eq!(
            left.presence,
            Some(PresenceChange::Left {
                client: "c1".into(),
                user: "u1".into()
            })
        );
        assert_eq!(r.members(), 1);
        assert_eq!(r.nodes(), vec!["b".to_owned()]);
        // Leaving twice, or a client never seen, changes nothing.
        assert_eq!(
            r.leave("c9", "z", t0),
            Left {
                node_gone: false,
                presence: None
            }
        );
    }

    #[test]
    fn a_lost_node_takes_its_members_with_it_and_the_room_turns_idle() {
        let (mut r, t0) = room(10);
        r.join("c1", "u1", "a", false);
        r.join("c2", "u2", "b", false);
        r.join("c3", "u3", "b", false);
        let leaves = r.node_lost("b", t0).unwrap();
        let gone: Vec<&str> = leaves.iter().map(PresenceChange::client).collect();
        assert_eq!(gone, vec!["c2", "c3"]);
        assert_eq!(r.members(), 1);
        assert!(r.node_lost("b", t0).is_none(), "already gone");
        // Not idle while c1 is here; idle once a's member left and the timeout passed.
        let later = t0 + Duration::from_secs(60);
        assert!(!r.housekeep(later, T0_US, Duration::from_secs(30), 0).stop);
        r.node_lost("a", later).unwrap();
        assert!(
            !r.housekeep(later, T0_US, Duration::from_secs(30), 0).stop,
            "idle from now"
        );
        let hk = r.housekeep(
            later + Duration::from_secs(30),
            T0_US,
            Duration::from_secs(30),
            0,
        );
        assert!(hk.stop);
    }

    #[test]
    fn a_room_with_history_or_a_snapshot_does_not_stop_when_idle_and_sheds_history_under_pressure()
    {
        let (mut r, t0) = room(10);
        publish(&mut r, "a");
        publish(&mut r, "b");
        let late = t0 + Duration::from_secs(600);
        let hk = r.housekeep(late, T0_US + 10, Duration::from_secs(1), 0);
        assert_eq!(
            hk,
            Housekeeping {
                evicted: 0,
                oldest_us: Some(T0_US),
                stop: false
            }
        );
        // Under pressure, a room without members drops what is older than the cutoff.
        let hk = r.housekeep(late, T0_US + 10, Duration::from_secs(1), T0_US + 1);
        assert_eq!(hk.evicted, 1);
        assert_eq!(hk.oldest_us, Some(T0_US + 1));
        // With a member, it keeps its history and reports nothing.
        r.join("c1", "u1", "a", false);
        let hk = r.housekeep(late, T0_US + 10, Duration::from_secs(1), T0_US + 5);
        assert_eq!(
            hk,
            Housekeeping {
                evicted: 0,
                oldest_us: None,
                stop: false
            }
        );
    }

    #[test]
    fn publishes_get_consecutive_seqs_in_the_rooms_epoch() {
        let (mut r, _) = room(10);
        for n in 1..=3 {
            let d = publish(&mut r, "x");
            assert_eq!(d.seq, n);
            assert_eq!(&*d.epoch, "e1");
        }
        assert_eq!(r.seq(), 3);
        let d = publish(&mut r, "hello");
        let frame: serde_json::Value = serde_json::from_str(&d.frame).unwrap();
        assert_eq!(frame["op"], "message");
        assert_eq!(frame["seq"], 4);
        assert_eq!(frame["epoch"], "e1");
        assert_eq!(frame["data"], "hello");
        assert_eq!(seqs(&r.history().last(10, 0)), vec![1, 2, 3, 4]);
    }

    #[test]
    fn since_recovers_what_history_holds_and_nothing_otherwise() {
        let (mut r, _) = room(3);
        for _ in 0..5 {
            publish(&mut r, "x");
        }
        // History holds 3, 4, 5.
        let rp = r.replay(Some(&since(2, "e1")), None, None);
        assert_eq!(rp.since, Some(SinceOutcome::Recovered));
        assert_eq!(seqs(&rp.messages), vec![3, 4, 5]);
        let rp = r.replay(Some(&since(5, "e1")), None, None);
        assert_eq!(rp.since, Some(SinceOutcome::Recovered));
        assert!(rp.messages.is_empty(), "nothing missed");
        // Too old: 2 is gone.
        let rp = r.replay(Some(&since(1, "e1")), None, None);
        assert_eq!(rp.since, Some(SinceOutcome::TooOld));
        assert!(rp.messages.is_empty(), "never a partial replay");
        // Past the room's seq, or from another epoch.
        let rp = r.replay(Some(&since(9, "e1")), None, None);
        assert_eq!(rp.since, Some(SinceOutcome::Ahead));
        let rp = r.replay(Some(&since(4, "e0")), None, None);
        assert_eq!(rp.since, Some(SinceOutcome::OtherEpoch));
        assert!(!SinceOutcome::OtherEpoch.recovered() && SinceOutcome::Recovered.recovered());
        // `last` replays the most recent, and neither asks for nothing.
        let rp = r.replay(None, Some(2), None);
        assert_eq!((rp.since, seqs(&rp.messages)), (None, vec![4, 5]));
        assert!(r.replay(None, None, None).messages.is_empty());
    }

    #[test]
    fn a_snapshot_is_the_floor_of_a_recovery_and_of_last() {
        let (mut r, _) = room(10);
        for _ in 0..4 {
            publish(&mut r, "x");
        }
        let data = RawValue::from_string("{\"board\":1}".into()).unwrap();
        let s = Snapshot::new(r.seq(), &data, 1 << 20).unwrap();
        assert!(r.snapshot_growth(&s) > 0);
        assert_eq!(r.set_snapshot(s), 4);
        publish(&mut r, "y");
        let (seq, frame) = r.snapshot_frame().unwrap();
        assert_eq!(seq, 4);
        assert!(frame.contains("\"board\":1"));
        // From before the snapshot: only what came after it.
        let rp = r.replay(Some(&since(1, "e1")), None, None);
        assert_eq!(rp.since, Some(SinceOutcome::Recovered));
        assert_eq!(seqs(&rp.messages), vec![5]);
        assert_eq!(seqs(&r.replay(None, Some(10), None).messages), vec![5]);
    }

    #[test]
    fn a_long_replay_is_cut_into_a_first_page() {
        let (mut r, _) = room(10);
        for _ in 0..4 {
            publish(&mut r, "x");
        }
        let one = r.history().last(1, 0)[0].frame.len() as u64;
        let rp = r.replay(Some(&since(0, "e1")), None, Some(2 * one));
        assert_eq!(rp.since, Some(SinceOutcome::Recovered));
        assert_eq!(seqs(&rp.messages), vec![1, 2]);
        assert_eq!(rp.until, Some(4), "the caller reads up to 4 in pages");
        let rp = r.replay(Some(&since(0, "e1")), None, Some(100 * one));
        assert_eq!((seqs(&rp.messages).len(), rp.until), (4, None));
    }

    #[test]
    fn a_replay_too_large_for_one_reply_is_incomplete_but_last_keeps_the_newest() {
        let name = RoomName::parse("big").unwrap();
        let mut r = Room::new(
            name,
            Arc::from("e1"),
            10,
            Duration::ZERO,
            usize::MAX,
            Instant::now(),
        );
        let big = "x".repeat(MAX_REPLY_BYTES / 3);
        for _ in 0..4 {
            publish(&mut r, &big);
        }
        let rp = r.replay(Some(&since(0, "e1")), None, None);
        assert_eq!(rp.since, Some(SinceOutcome::TooLarge));
        assert!(rp.messages.is_empty());
        let rp = r.replay(None, Some(4), None);
        assert_eq!(seqs(&rp.messages), vec![3, 4], "two fit, three do not");
    }

    #[test]
    fn history_pages_are_complete_only_when_they_start_right_after_the_position() {
        let (mut r, _) = room(3);
        for _ in 0..5 {
            publish(&mut r, "x");
        }
        let p = r.history_page(Some(since(3, "e1")), 10, usize::MAX, T0_US);
        assert!(p.complete);
        assert_eq!((p.seq, seqs(&p.messages)), (5, vec![4, 5]));
        let p = r.history_page(Some(since(0, "e1")), 10, usize::MAX, T0_US);
        assert!(!p.complete, "1 and 2 are gone");
        assert_eq!(seqs(&p.messages), vec![3, 4, 5]);
        let p = r.history_page(Some(since(5, "e1")), 10, usize::MAX, T0_US);
        assert!(p.complete && p.messages.is_empty());
        let p = r.history_page(Some(since(3, "other")), 10, usize::MAX, T0_US);
        assert!(!p.complete && p.messages.is_empty());
        // An empty epoch reads this one; a byte cap keeps at least one message.
        let p = r.history_page(Some(since(2, "")), 10, 1, T0_US);
        assert!(p.complete);
        assert_eq!(seqs(&p.messages), vec![3]);
        let p = r.history_page(None, 2, usize::MAX, T0_US);
        assert!(p.complete);
        assert_eq!(seqs(&p.messages), vec![4, 5]);
    }

    #[test]
    fn presence_pages_follow_client_order_and_say_where_to_go_on() {
        let (mut r, _) = room(10);
        for c in ["c3", "c1", "c2"] {
            r.join(c, "u", "a", false);
        }
        let p = r.presence_page(None, Some(2));
        let ids: Vec<&str> = p.members.iter().map(|m| m.client.as_str()).collect();
        assert_eq!(ids, vec!["c1", "c2"]);
        assert_eq!(p.next.as_deref(), Some("c2"));
        let p = r.presence_page(p.next.as_deref(), Some(2));
        assert_eq!(p.members.len(), 1);
        assert_eq!((p.members[0].node.as_str(), p.next), ("a", None));
        // A zero limit still lists one.
        assert_eq!(r.presence_page(None, Some(0)).members.len(), 1);
    }

    #[test]
    fn a_slow_node_is_held_back_from_and_resumes_from_history_in_order() {
        let (mut r, _) = room(3);
        let link = TestLink::default();
        let d1 = publish(&mut r, "x");
        assert!(matches!(r.fan("b", Some(d1.seq), false, &link), Fan::Send));
        link.full.set(true);
        let d2 = publish(&mut r, "x");
        assert!(matches!(
            r.fan("b", Some(d2.seq), false, &link),
            Fan::HeldBack(2)
        ));
        assert!(r.is_held("b") && r.has_held());
        // Held back: nothing new is sent until the link drains below a quarter.
        link.full.set(false);
        let d3 = publish(&mut r, "x");
        assert!(matches!(r.fan("b", Some(d3.seq), false, &link), Fan::Skip));
        link.drained.set(true);
        match r.fan("b", None, false, &link) {
            Fan::Resume(b) => {
                assert_eq!(seqs(&b.messages), vec![2, 3]);
                assert_eq!(b.missed, 0);
            }
            other => panic!("expected a resume, got {other:?}"),
        }
        assert!(!r.has_held());
        // Held back long enough that history dropped some of it: a gap, then the rest.
        r.hold("b", 4);
        for _ in 0..5 {
            publish(&mut r, "x");
        }
        // History holds 6, 7, 8; 4 and 5 are gone. A flush (a move) does not wait.
        link.drained.set(false);
        match r.fan("b", None, true, &link) {
            Fan::Resume(b) => {
                assert_eq!(seqs(&b.messages), vec![6, 7, 8]);
                assert_eq!(b.missed, 2);
            }
            other => panic!("expected a resume, got {other:?}"),
        }
    }

    #[test]
    fn a_node_reached_through_a_new_link_gets_what_it_was_held_back_from_or_the_recent_tail() {
        let (mut r, t0) = room(300);
        r.join("c1", "u1", "b", false);
        for _ in 0..(RESEND_TAIL + 10) {
            publish(&mut r, "x");
        }
        let tail = r.resend("b");
        assert_eq!(tail.len(), RESEND_TAIL);
        assert_eq!(tail.last().map(|d| d.seq), Some(r.seq()));
        r.hold("b", 250);
        let tail = r.resend("b");
        assert_eq!(seqs(&tail), (250..=266).collect::<Vec<_>>());
        assert!(!r.is_held("b"));
        // A node whose last member leaves is no longer held back from.
        r.hold("b", 260);
        assert!(r.leave("c1", "b", t0).node_gone);
        assert!(!r.has_held());
    }

    #[test]
    fn the_moving_state_round_trips_through_adoption() {
        let (mut r, _) = room(10);
        r.join("c2", "u2", "b", false);
        r.join("c1", "u1", "a", false);
        r.join("c1", "u1", "a", false);
        r.join("c3", "u3", "gone", false);
        for _ in 0..3 {
            publish(&mut r, "x");
        }
        let data = RawValue::from_string("[1,2]".into()).unwrap();
        r.set_snapshot(Snapshot::new(r.seq(), &data, 1 << 20).unwrap());
        let m = r.moving_state();
        let clients: Vec<&str> = m.members.iter().map(|m| m.client.as_str()).collect();
        assert_eq!(clients, vec!["c1", "c2", "c3"], "in client order");
        assert_eq!((m.seq, m.epoch.as_str(), m.history.len()), (3, "e1", 3));

        let (mut next, _) = room(10);
        next.adopt(m, |n| n != "gone");
        assert_eq!(next.seq(), 3);
        assert_eq!(seqs(&next.history().last(10, 0)), vec![1, 2, 3]);
        assert_eq!(next.snapshot().map(|s| s.seq), Some(3));
        assert_eq!(next.nodes(), vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(next.members(), 2, "c3's node is unreachable");
        // c1 moved with both its connections: one leave keeps it.
        let t = Instant::now();
        assert_eq!(next.leave("c1", "a", t).presence, None);
        assert!(next.leave("c1", "a", t).presence.is_some());
        // The next publish continues the seq.
        assert_eq!(publish(&mut next, "y").seq, 4);
    }

    #[test]
    fn a_hand_over_tells_the_home_first_and_the_relays_last() {
        let (mut r, t0) = room(10);
        let active = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let home = crate::placement::owner("lobby", &active)
            .unwrap()
            .to_owned();
        r.home_told("old-home".into(), t0);
        r.hold("b", 1);
        let steps = r.hand_over(&active, false, t0);
        assert_eq!(
            steps,
            vec![
                HandOverStep::RegisterSuccessorAt(home),
                HandOverStep::UnregisterAt("old-home".into()),
                HandOverStep::LeaveGroup,
                HandOverStep::DropReplica,
                HandOverStep::ForwardUntil(t0 + FORWARD_GRACE),
                HandOverStep::SendHeld,
                HandOverStep::NotifyRelays { rejoin: false },
            ]
        );
        // Told no home, nothing held back, no active node: the group, the replica, the
        // forwarding and the relays remain.
        let (mut r, t0) = room(10);
        let steps = r.hand_over(&[], true, t0);
        assert_eq!(
            steps,
            vec![
                HandOverStep::LeaveGroup,
                HandOverStep::DropReplica,
                HandOverStep::ForwardUntil(t0 + FORWARD_GRACE),
                HandOverStep::NotifyRelays { rejoin: true },
            ]
        );
    }

    #[test]
    fn a_room_away_from_home_tells_it_and_refreshes_and_a_room_at_home_unregisters() {
        let (mut r, t0) = room(10);
        let active = vec!["a".to_owned(), "b".to_owned()];
        let home = crate::placement::owner("lobby", &active)
            .unwrap()
            .to_owned();
        let away = if home == "a" { "b" } else { "a" };
        // At home: nothing to tell.
        assert_eq!(r.sync_home(&home, &active, t0), HomeSync::UpToDate);
        // Away: tell the home, then only every HOME_REFRESH.
        assert_eq!(
            r.sync_home(away, &active, t0),
            HomeSync::Tell {
                unregister: None,
                register: Some(home.clone())
            }
        );
        r.home_told(home.clone(), t0);
        assert_eq!(
            r.sync_home(away, &active, t0 + Duration::from_secs(1)),
            HomeSync::UpToDate
        );
        let later = t0 + HOME_REFRESH;
        assert_eq!(
            r.sync_home(away, &active, later),
            HomeSync::Tell {
                unregister: None,
                register: Some(home.clone())
            },
            "refreshed, not unregistered"
        );
        // A telling that failed is tried again on the next tick.
        assert!(matches!(
            r.sync_home(away, &active, later),
            HomeSync::Tell { .. }
        ));
        r.home_told(home.clone(), later);
        // Back at home (the other node left): the old home forgets it.
        let alone = vec![away.to_owned()];
        assert_eq!(
            r.sync_home(away, &alone, later),
            HomeSync::Tell {
                unregister: Some(home),
                register: None
            }
        );
        assert_eq!(r.take_home(), None);
    }

    #[test]
    fn the_backup_is_the_rendezvous_winner_among_the_others() {
        let name = RoomName::parse("lobby").unwrap();
        let active = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let others = vec!["b".to_owned(), "c".to_owned()];
        let want = crate::placement::owner("lobby", &others).unwrap();
        assert_eq!(
            backup_change(&name, "a", &active, Some(want)),
            BackupChange::Keep
        );
        assert_eq!(
            backup_change(&name, "a", &active, None),
            BackupChange::MoveTo(want.to_owned())
        );
        let other = if want == "b" { "c" } else { "b" };
        assert_eq!(
            backup_change(&name, "a", &active, Some(other)),
            BackupChange::MoveTo(want.to_owned())
        );
        // Alone: no backup.
        assert_eq!(
            backup_change(&name, "a", &["a".to_owned()], Some("b")),
            BackupChange::Drop
        );
        assert_eq!(
            backup_change(&name, "a", &["a".to_owned()], None),
            BackupChange::Keep
        );
    }

    #[test]
    fn of_two_owners_the_rendezvous_winner_keeps_the_room() {
        let name = RoomName::parse("lobby").unwrap();
        let pair = ["a".to_owned(), "b".to_owned()];
        let winner = crate::placement::owner("lobby", &pair).unwrap();
        let loser = if winner == "a" { "b" } else { "a" };
        let actor = |node: &str, epoch: &str| format!("room:lobby@{epoch}~{node}~0001");
        let w = actor(winner, "ew");
        // The loser yields to the winner the home named.
        assert_eq!(
            rival_verdict(&name, (loser, "el"), &actor(loser, "el"), &w),
            RivalVerdict::Yield {
                node: winner.to_owned(),
                epoch: "ew".into()
            }
        );
        // The winner keeps it; so does an instance named as the winner itself, one with the
        // same epoch, and one told an unreadable name.
        let l = actor(loser, "el");
        assert_eq!(
            rival_verdict(&name, (winner, "ew"), &w, &l),
            RivalVerdict::Keep
        );
        assert_eq!(
            rival_verdict(&name, (loser, "el"), &l, &l),
            RivalVerdict::Keep
        );
        assert_eq!(
            rival_verdict(&name, (loser, "ew"), &l, &w),
            RivalVerdict::Keep
        );
        assert_eq!(
            rival_verdict(&name, (loser, "el"), &l, "nonsense"),
            RivalVerdict::Keep
        );
    }

    #[test]
    fn the_rate_is_the_last_whole_second_and_zero_once_quiet() {
        let (mut r, t0) = room(10);
        for _ in 0..3 {
            r.count_publish(t0);
        }
        assert_eq!(r.msgs_per_s(t0), 0.0, "no whole second yet");
        let t1 = t0 + Duration::from_millis(1100);
        r.count_publish(t1);
        assert_eq!(r.msgs_per_s(t1), 3.0);
        assert_eq!(
            r.msgs_per_s(t1 + Duration::from_secs(2)),
            0.0,
            "quiet since"
        );
        // A second with no publish at all in between counts as zero.
        let t3 = t1 + Duration::from_millis(2500);
        r.count_publish(t3);
        assert_eq!(r.msgs_per_s(t3), 0.0);
    }
}
