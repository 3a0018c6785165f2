//! The membership manager's state machine without its actor: the [`View`] and everything the
//! manager decides around it — failure detection (silence, closed links judged after a grace,
//! the manager's own pauses forgiven), refusing peers of another protocol version, which
//! addresses to dial and when (backoff), when a joining node turns active, when it counts
//! itself among room owners and the node lists placement uses, and when heartbeats, seed
//! resolution and dialing are due. The cluster manager ([`super::ManagerActor`]) owns one
//! [`MembershipState`] and carries out what it decides.
//!
//! Pure: the clock (`now`, `now_us`) and anything random (dial jitter) are passed in, and every
//! answer is a value or a decision ([`Heard`], [`LinkClosed`], [`JoinVerdict`], [`Owners`],
//! [`Schedule`]). It may not touch actors, sessions, sockets, DNS, metrics, logs, events or a
//! time source; the sessions (ractor_cluster's actors) and the lifecycle cell are the actor's.

use crate::cluster::view::{Change, Peer, PeerState, View};
use crate::lifecycle::NodeState;
use crate::wire::endpoint::{Heartbeat, Member};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// How often the manager wakes up.
pub const TICK: Duration = Duration::from_millis(250);
/// Heartbeat period.
pub const HEARTBEAT_EVERY: Duration = Duration::from_millis(500);
/// Silence after which a peer is down (five heartbeats).
pub const DOWN_AFTER: Duration = Duration::from_millis(2_500);
/// How long a link that closed before authenticating waits to be judged.
pub const UNAUTH_GRACE: Duration = Duration::from_secs(2);
/// Most named links closed before authenticating kept for judging at once (each is kept for
/// [`UNAUTH_GRACE`]); more are not judged (a stranger can send any name).
pub const UNAUTH_MAX: usize = 64;
/// How long a link to a peer of another protocol version stays open after the refusal (so our
/// heartbeat, which tells it why, gets there).
pub const REFUSE_AFTER: Duration = Duration::from_millis(400);
/// A tick this much later than due means this node itself was paused (overloaded, stopped).
pub const SELF_PAUSE: Duration = Duration::from_millis(500);
/// First wait between two dials of one address.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between two dials of one address.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A joining node turns active this long after it first heard a peer (and every peer it was
/// told of), so its view and room groups are complete before it places or serves rooms.
pub const JOIN_SETTLE: Duration = Duration::from_millis(500);
/// A closed link is a down peer only if no other link to it exists this long after.
pub const LINK_GRACE: Duration = Duration::from_millis(200);
/// A node with seeds waits at most this long to hear from one before it turns active alone.
pub const JOIN_DEADLINE: Duration = Duration::from_secs(3);
/// An active node counts itself among room owners when every live peer reports it active, or
/// this long after it turned active (a peer that never says so, e.g. an older build).
pub const OWN_DEADLINE: Duration = Duration::from_secs(5);
/// How often DNS seeds are resolved again.
pub const RESOLVE_EVERY: Duration = Duration::from_secs(5);
/// How often the dial targets are reconciled (and on each of the first ticks).
pub const RECONCILE_EVERY: Duration = Duration::from_secs(1);

/// Ticks in `d` (at least one).
fn ticks_in(d: Duration) -> u64 {
    (d.as_millis() / TICK.as_millis()).max(1) as u64
}

/// What a peer's heartbeat meant ([`MembershipState::on_heartbeat`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Heard {
    /// The peer speaks another cluster protocol version: refused.
    Refused {
        /// Its version.
        version: u32,
        /// The first refusal of this incarnation: log it.
        first: bool,
        /// Not being refused yet: send heartbeats now (ours tells it why) and close its links
        /// [`REFUSE_AFTER`] later ([`MembershipState::refusals_due`]).
        tell: bool,
    },
    /// About ourselves, or a late beat of an old incarnation.
    Ignored,
    /// A peer of ours: what changed; `state_changed`: its state or incarnation changed, so
    /// placement is published and heartbeats sent at once (it owns rooms only once it hears
    /// that we see it so). Learn from it with [`MembershipState::learn`] afterwards.
    Accepted {
        /// What the view made of it.
        change: Change,
        /// Its state or incarnation changed.
        state_changed: bool,
    },
}

/// What a closed cluster link means ([`MembershipState::on_link_closed`]).
#[derive(Debug, PartialEq, Eq)]
pub enum LinkClosed {
    /// An authenticated link: the peer is down unless another link to it is up within
    /// [`LINK_GRACE`] (the session election closes duplicates).
    Suspect,
    /// A duplicate link to a live peer, closed by the session election: normal.
    Duplicate,
    /// Closed for another protocol version (already logged as such).
    Refused,
    /// Closed before authenticating: judged after [`UNAUTH_GRACE`] (a wrong cookie unless the
    /// peer is up by then).
    Unauthenticated,
    /// A nameless stranger (accounted for by the handshake), or too many to judge.
    Ignored,
}

/// Whether a joining node turns active ([`MembershipState::join_verdict`]).
#[derive(Debug, PartialEq, Eq)]
pub enum JoinVerdict {
    /// Not joining, or not settled yet.
    Wait,
    /// It heard its peers (or has none to wait for): active now.
    Active,
    /// No seed answered within [`JOIN_DEADLINE`]: active alone until peers appear.
    ActiveAlone,
}

/// How this node came to count itself among room owners.
#[derive(Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Every live peer reports it active, `after` it turned active.
    SeenActiveByAll {
        /// Since it turned active.
        after: Duration,
    },
    /// Not every live peer says so after [`OWN_DEADLINE`]: owning anyway.
    Deadline {
        /// Since it turned active.
        after: Duration,
    },
}

/// The node lists placement uses ([`MembershipState::owners`]).
#[derive(Debug, PartialEq, Eq)]
pub struct Owners {
    /// The nodes that may own rooms, sorted: the peers seen active, and this node once it owns.
    pub active: Vec<String>,
    /// The nodes this one hears, itself included, sorted.
    pub live: Vec<String>,
    /// This node just started owning rooms.
    pub began: Option<Ownership>,
}

/// What is due this tick besides failure detection ([`MembershipState::schedule`]).
#[derive(Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Send heartbeats (the period came, or our state changed since the last ones).
    pub heartbeat: bool,
    /// Resolve the DNS seeds again.
    pub resolve: bool,
    /// Reconcile dials ([`MembershipState::dials`]).
    pub reconcile: bool,
}

/// One address's dial schedule.
#[derive(Debug)]
struct Dial {
    next_at: Instant,
    backoff: Duration,
}

/// The membership state.
#[derive(Debug)]
pub struct MembershipState {
    name: String,
    addr: String,
    seeds: Vec<String>,
    view: View,
    /// Addresses to keep dialing: seeds plus every peer learned.
    known: HashSet<String>,
    dials: HashMap<String, Dial>,
    /// When we got each peer's last heartbeat (for the echo).
    heard_at: HashMap<String, (u64, Instant)>,
    /// Peers refused for another protocol version, logged once each (authenticated peers only).
    refused_logged: HashSet<String>,
    /// Peers refused for another protocol version, whose links close shortly.
    refusing: Vec<(String, String, Instant)>,
    /// Links closed before authenticating, by peer (name, or address when unknown): a wrong
    /// cookie unless that peer is up a moment later.
    unauthenticated: HashMap<String, (String, Instant)>,
    /// Which node answered at each dialed address (a DNS seed resolves to addresses that need
    /// not be what the peers advertise): an address whose node is up needs no dial.
    answered_at: HashMap<String, String>,
    /// Peers whose link closed, and when: down unless a link to them is back shortly.
    suspects: HashMap<String, (String, Instant)>,
    /// Names other nodes report as up (to be heard from before this node turns active).
    gossiped_up: HashSet<String>,
    /// When we first heard a peer (joining settles a moment after).
    first_heard: Option<Instant>,
    /// Since when this node is active (reset when it leaves `active`).
    active_since: Option<Instant>,
    /// Whether this node counts itself among the room owners: once every live peer reports it
    /// active (or [`OWN_DEADLINE`] after it turned active), until it leaves `active`.
    owning: bool,
    /// Our state in the last heartbeats sent (a change is announced at once).
    announced: Option<NodeState>,
    started: Instant,
    ticks: u64,
    /// When the last tick ran (a tick far later than [`TICK`] means this node was not running).
    last_tick: Instant,
}

impl MembershipState {
    /// Node `name` (incarnation `incarnation`, dialed at `addr`) with `seeds` to dial, at `now`.
    pub fn new(name: &str, incarnation: &str, addr: &str, seeds: &[String], now: Instant) -> Self {
        Self {
            name: name.to_owned(),
            addr: addr.to_owned(),
            seeds: seeds.to_vec(),
            view: View::new(name, incarnation, DOWN_AFTER),
            known: seeds.iter().cloned().collect(),
            dials: HashMap::new(),
            heard_at: HashMap::new(),
            refused_logged: HashSet::new(),
            refusing: Vec::new(),
            unauthenticated: HashMap::new(),
            answered_at: HashMap::new(),
            suspects: HashMap::new(),
            gossiped_up: HashSet::new(),
            first_heard: None,
            active_since: None,
            owning: false,
            announced: None,
            started: now,
            ticks: 0,
            last_tick: now,
        }
    }

    /// The view.
    pub fn view(&self) -> &View {
        &self.view
    }

    /// Whether the peers agree on who is down ([`View::agreed`]).
    pub fn agreed(&self) -> bool {
        self.view.agreed()
    }

    /// Starts a tick at `now`. A tick [`SELF_PAUSE`] or more later than due means this node did
    /// not run meanwhile: its peers' silence then does not count against them; returns how
    /// long it was paused.
    pub fn tick(&mut self, now: Instant) -> Option<Duration> {
        self.ticks += 1;
        let pause = now
            .saturating_duration_since(self.last_tick)
            .saturating_sub(TICK);
        self.last_tick = now;
        if pause < SELF_PAUSE {
            return None;
        }
        self.view.forgive(pause, now);
        Some(pause)
    }

    /// Peers refused [`REFUSE_AFTER`] ago or more, (name, incarnation): close their links now.
    pub fn refusals_due(&mut self, now: Instant) -> Vec<(String, String)> {
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.refusing)
            .into_iter()
            .partition(|(_, _, at)| now.saturating_duration_since(*at) >= REFUSE_AFTER);
        self.refusing = keep;
        due.into_iter().map(|(n, i, _)| (n, i)).collect()
    }

    /// Peers whose link closed and did not come back within [`LINK_GRACE`] are down
    /// (`has_link(name, incarnation)`: whether a session to it is still up); returns them.
    pub fn settle_suspects(
        &mut self,
        now: Instant,
        has_link: impl Fn(&str, &str) -> bool,
    ) -> Vec<Peer> {
        let due: Vec<(String, String)> = self
            .suspects
            .iter()
            .filter(|(_, (_, at))| now.saturating_duration_since(*at) >= LINK_GRACE)
            .map(|(n, (i, _))| (n.clone(), i.clone()))
            .collect();
        let mut down = Vec::new();
        for (name, inc) in due {
            self.suspects.remove(&name);
            if has_link(&name, &inc) {
                continue;
            }
            if let Some(p) = self.view.mark_down(&name, &inc, now) {
                down.push(p);
            }
        }
        down
    }

    /// Links closed before authenticating [`UNAUTH_GRACE`] ago whose peer did not come up
    /// meanwhile (a duplicate closed by the session election would have): (peer, address) to
    /// report as a likely wrong cookie.
    pub fn unauthenticated_due(&mut self, now: Instant) -> Vec<(String, String)> {
        let due: Vec<(String, String)> = self
            .unauthenticated
            .iter()
            .filter(|(_, (_, at))| now.saturating_duration_since(*at) >= UNAUTH_GRACE)
            .map(|(who, (addr, _))| (who.clone(), addr.clone()))
            .collect();
        let mut out = Vec::new();
        for (who, addr) in due {
            self.unauthenticated.remove(&who);
            if !self.is_up(&who) {
                out.push((who, addr));
            }
        }
        out
    }

    /// Peers silent for longer than [`DOWN_AFTER`] are down; returns them.
    pub fn expire(&mut self, now: Instant) -> Vec<Peer> {
        self.view.expire(now)
    }

    /// What is due this tick, with this node in `my_state` (a state not yet announced is
    /// announced at once).
    pub fn schedule(&mut self, my_state: NodeState) -> Schedule {
        let changed = self.announced != Some(my_state);
        let heartbeat = changed || self.ticks.is_multiple_of(ticks_in(HEARTBEAT_EVERY));
        if heartbeat {
            self.announced = Some(my_state);
        }
        Schedule {
            heartbeat,
            resolve: self.ticks % ticks_in(RESOLVE_EVERY) == 1,
            reconcile: self.ticks % ticks_in(RECONCILE_EVERY) == 1 || self.ticks < 4,
        }
    }

    /// The echo for `peer`'s next heartbeat at `now`: the `sent_us` of its last one and how
    /// long we held it, microseconds ((0, 0): none yet).
    pub fn echo(&self, peer: &str, now: Instant) -> (u64, u64) {
        self.heard_at.get(peer).map_or((0, 0), |(sent, at)| {
            (*sent, now.saturating_duration_since(*at).as_micros() as u64)
        })
    }

    /// The view as gossip, this node (in `my_state`) first.
    pub fn gossip(&self, my_state: NodeState) -> Vec<Member> {
        self.view.gossip(&self.addr, my_state.as_str())
    }

    /// Applies a peer's heartbeat received at `now` (`now_us` on the wall clock).
    pub fn on_heartbeat(&mut self, hb: &Heartbeat, now: Instant, now_us: u64) -> Heard {
        let before = self
            .view
            .get(&hb.name)
            .map(|p| (p.state, p.incarnation.clone()));
        let change = self.view.on_heartbeat(hb, now, now_us);
        match change {
            Change::Incompatible(version) => {
                let first = self
                    .refused_logged
                    .insert(format!("{}#{}", hb.name, hb.incarnation));
                let tell = !self
                    .refusing
                    .iter()
                    .any(|(n, i, _)| *n == hb.name && *i == hb.incarnation);
                if tell {
                    self.refusing
                        .push((hb.name.clone(), hb.incarnation.clone(), now));
                }
                Heard::Refused {
                    version,
                    first,
                    tell,
                }
            }
            Change::Ignored => Heard::Ignored,
            change => {
                let after = self
                    .view
                    .get(&hb.name)
                    .map(|p| (p.state, p.incarnation.clone()));
                Heard::Accepted {
                    change,
                    state_changed: before != after,
                }
            }
        }
    }

    /// Learns from an accepted heartbeat received at `now`: its echo, its address and the
    /// addresses it gossips (to dial), and the names it reports up (to hear from before this
    /// node turns active).
    pub fn learn(&mut self, hb: &Heartbeat, now: Instant) {
        self.heard_at.insert(hb.name.clone(), (hb.sent_us, now));
        if !hb.addr.is_empty() {
            self.known.insert(hb.addr.clone());
        }
        for m in &hb.members {
            if m.name != self.name && !m.addr.is_empty() {
                self.known.insert(m.addr.clone());
                if m.state != "down" {
                    self.gossiped_up.insert(m.name.clone());
                }
            }
        }
    }

    /// Addresses a DNS seed resolved to: the ones not known before (now dial targets).
    pub fn resolved(&mut self, addrs: Vec<String>) -> Vec<String> {
        addrs
            .into_iter()
            .filter(|a| *a != self.addr && self.known.insert(a.clone()))
            .collect()
    }

    /// An outgoing link to `addr` authenticated, as node `name` when its name reads: the
    /// address needs no dial while that node is up. True when `name` is this node (a DNS seed
    /// that resolves to this node too: never a peer).
    pub fn dial_answered(&mut self, addr: &str, name: Option<&str>) -> bool {
        self.dials.remove(addr);
        match name {
            Some(name) => {
                self.answered_at.insert(addr.to_owned(), name.to_owned());
                name == self.name
            }
            None => false,
        }
    }

    /// A cluster link closed at `now`: `peer` is the (name, incarnation) it named, if any,
    /// `authenticated` whether it was, `peer_addr` where it came from.
    pub fn on_link_closed(
        &mut self,
        peer: Option<(String, String)>,
        authenticated: bool,
        peer_addr: String,
        now: Instant,
    ) -> LinkClosed {
        match peer {
            Some((name, inc)) if authenticated => {
                self.suspects.insert(name, (inc, now));
                LinkClosed::Suspect
            }
            Some((name, _)) if self.is_up(&name) => LinkClosed::Duplicate,
            Some((name, inc)) if self.refused_logged.contains(&format!("{name}#{inc}")) => {
                LinkClosed::Refused
            }
            // Crossing dials close one link before it authenticates while the other one comes
            // up. Only links that named a peer (a node with another cookie does), and
            // boundedly.
            Some((name, _)) if self.unauthenticated.len() < UNAUTH_MAX => {
                self.unauthenticated.entry(name).or_insert((peer_addr, now));
                LinkClosed::Unauthenticated
            }
            Some(_) | None => LinkClosed::Ignored,
        }
    }

    /// Whether peer `name` is known and not down.
    fn is_up(&self, name: &str) -> bool {
        self.view
            .get(name)
            .is_some_and(|p| p.state != PeerState::Down)
    }

    /// Addresses that need no dial: live peers', dials in progress (`pending`), and addresses
    /// where this node or a live peer answered.
    fn connected_addrs<'a>(&self, pending: impl Iterator<Item = &'a str>) -> HashSet<String> {
        let mut out: HashSet<String> = self
            .view
            .peers()
            .filter(|p| p.state != PeerState::Down)
            .map(|p| p.addr.clone())
            .collect();
        out.extend(pending.map(str::to_owned));
        out.extend(
            self.answered_at
                .iter()
                .filter(|(_, n)| **n == self.name || self.is_up(n))
                .map(|(a, _)| a.clone()),
        );
        out
    }

    /// The addresses to dial at `now`, in order: every known address that is not this node's,
    /// not connected and not dialing (`pending`), once its backoff passed. Each dial doubles
    /// the address's backoff (from [`FIRST_BACKOFF`] up to [`MAX_BACKOFF`]) plus `jitter()`; a
    /// connected address starts over.
    pub fn dials<'a>(
        &mut self,
        now: Instant,
        pending: impl Iterator<Item = &'a str>,
        mut jitter: impl FnMut() -> Duration,
    ) -> Vec<String> {
        let connected = self.connected_addrs(pending);
        let mut targets: Vec<String> = self.known.iter().cloned().collect();
        targets.sort();
        let mut out = Vec::new();
        for addr in targets {
            if addr == self.addr || connected.contains(&addr) {
                if let Some(d) = self.dials.get_mut(&addr) {
                    d.backoff = FIRST_BACKOFF;
                }
                continue;
            }
            let d = self.dials.entry(addr.clone()).or_insert(Dial {
                next_at: now,
                backoff: FIRST_BACKOFF,
            });
            if now < d.next_at {
                continue;
            }
            d.next_at = now + d.backoff + jitter();
            d.backoff = (d.backoff * 2).min(MAX_BACKOFF);
            out.push(addr);
        }
        out
    }

    /// Whether this node, in `my_state` at `now`, turns active: a joining node does once it
    /// heard from a peer and from every peer the others say is up (so its view, and the room
    /// groups that came with each link, are complete), [`JOIN_SETTLE`] ago; at once without
    /// other seeds; alone after [`JOIN_DEADLINE`].
    pub fn join_verdict(&mut self, my_state: NodeState, now: Instant) -> JoinVerdict {
        if my_state != NodeState::Joining {
            return JoinVerdict::Wait;
        }
        let has_other_seeds = self.seeds.iter().any(|s| *s != self.addr);
        let heard = !self.view.live().is_empty();
        let first = *self
            .first_heard
            .get_or_insert(if heard { now } else { now + JOIN_DEADLINE });
        if !heard {
            self.first_heard = None;
        }
        let unheard = self.gossiped_up.iter().any(|n| self.view.get(n).is_none());
        let settled = heard && !unheard && now.saturating_duration_since(first) >= JOIN_SETTLE;
        if !has_other_seeds
            || settled
            || now.saturating_duration_since(self.started) >= JOIN_DEADLINE
        {
            if has_other_seeds && !heard {
                return JoinVerdict::ActiveAlone;
            }
            return JoinVerdict::Active;
        }
        JoinVerdict::Wait
    }

    /// The nodes that may own rooms and the nodes this one hears, with this node in `my_state`
    /// at `now`. This node counts itself only once every live peer reports it active (or
    /// [`OWN_DEADLINE`] after it turned active): until then a peer whose view lags would place
    /// a room elsewhere while this node, or a node that sees it, places the same room here (two
    /// owners). It stops counting itself when it leaves `active`.
    pub fn owners(&mut self, my_state: NodeState, now: Instant) -> Owners {
        let mut began = None;
        if my_state == NodeState::Active {
            let since = *self.active_since.get_or_insert(now);
            if !self.owning {
                let after = now.saturating_duration_since(since);
                if self.view.seen_active_by_all() {
                    began = Some(Ownership::SeenActiveByAll { after });
                } else if after >= OWN_DEADLINE {
                    began = Some(Ownership::Deadline { after });
                }
                self.owning = began.is_some();
            }
        } else {
            self.active_since = None;
            self.owning = false;
        }
        let mut active: Vec<String> = self
            .view
            .peers()
            .filter(|p| p.state == PeerState::Active)
            .map(|p| p.name.clone())
            .collect();
        if self.owning {
            active.push(self.name.clone());
        }
        active.sort();
        let mut live = self.view.live();
        live.push(self.name.clone());
        live.sort();
        Owners {
            active,
            live,
            began,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::CLUSTER_PROTOCOL_VERSION;

    fn hb(name: &str, inc: &str, state: &str, sent: u64) -> Heartbeat {
        Heartbeat {
            version: CLUSTER_PROTOCOL_VERSION,
            name: name.into(),
            incarnation: inc.into(),
            addr: format!("{name}:7100"),
            state: state.into(),
            sent_us: sent,
            ..Heartbeat::default()
        }
    }

    fn member(name: &str, inc: &str, state: &str) -> Member {
        Member {
            name: name.into(),
            incarnation: inc.into(),
            addr: format!("{name}:7100"),
            state: state.into(),
        }
    }

    fn node(seeds: &[&str]) -> (MembershipState, Instant) {
        let now = Instant::now();
        let seeds: Vec<String> = seeds.iter().map(|s| (*s).to_owned()).collect();
        (MembershipState::new("a", "i0", "a:7100", &seeds, now), now)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn heartbeats_move_a_peer_through_joined_refreshed_state_changes_and_restarts() {
        let (mut m, t0) = node(&[]);
        let out = m.on_heartbeat(&hb("b", "1", "joining", 1), t0, 1);
        assert_eq!(
            out,
            Heard::Accepted {
                change: Change::Joined,
                state_changed: true
            }
        );
        let out = m.on_heartbeat(&hb("b", "1", "joining", 2), t0, 2);
        assert_eq!(
            out,
            Heard::Accepted {
                change: Change::Refreshed,
                state_changed: false
            }
        );
        // Turning active is a state change: placement follows at once.
        let out = m.on_heartbeat(&hb("b", "1", "active", 3), t0, 3);
        assert_eq!(
            out,
            Heard::Accepted {
                change: Change::Refreshed,
                state_changed: true
            }
        );
        let out = m.on_heartbeat(&hb("b", "2", "active", 4), t0, 4);
        assert_eq!(
            out,
            Heard::Accepted {
                change: Change::Restarted { old: "1".into() },
                state_changed: true
            }
        );
        assert_eq!(
            m.on_heartbeat(&hb("a", "x", "active", 5), t0, 5),
            Heard::Ignored
        );
    }

    #[test]
    fn a_peer_of_another_version_is_refused_told_once_and_its_links_closed_later() {
        let (mut m, t0) = node(&[]);
        let mut other = hb("b", "1", "active", 1);
        other.version = CLUSTER_PROTOCOL_VERSION + 1;
        assert_eq!(
            m.on_heartbeat(&other, t0, 1),
            Heard::Refused {
                version: CLUSTER_PROTOCOL_VERSION + 1,
                first: true,
                tell: true
            }
        );
        assert_eq!(
            m.on_heartbeat(&other, t0 + ms(100), 2),
            Heard::Refused {
                version: CLUSTER_PROTOCOL_VERSION + 1,
                first: false,
                tell: false
            }
        );
        assert!(m.refusals_due(t0 + ms(399)).is_empty());
        assert_eq!(
            m.refusals_due(t0 + REFUSE_AFTER),
            vec![("b".into(), "1".into())]
        );
        assert!(m.refusals_due(t0 + ms(1000)).is_empty(), "closed once");
        // Its links closing are expected, not a wrong cookie.
        assert_eq!(
            m.on_link_closed(Some(("b".into(), "1".into())), false, "b:7100".into(), t0),
            LinkClosed::Refused
        );
        assert!(m.view().get("b").is_none(), "never in the view");
    }

    #[test]
    fn a_silent_peer_is_down_after_the_timeout_but_not_for_this_nodes_own_pause() {
        let (mut m, t0) = node(&[]);
        m.on_heartbeat(&hb("b", "1", "active", 1), t0, 1);
        assert!(
            m.expire(t0 + DOWN_AFTER).is_empty(),
            "not longer than the timeout"
        );
        // Ticks on time: nothing forgiven.
        assert_eq!(m.tick(t0 + TICK), None);
        // This node stalled for 3 s: b's silence meanwhile is not b's.
        let late = t0 + TICK + ms(3_000);
        let paused = m.tick(late).unwrap();
        assert_eq!(paused, ms(3_000) - TICK);
        assert!(m.expire(late).is_empty());
        let down = m.expire(late + DOWN_AFTER + ms(1));
        assert_eq!(down.len(), 1);
        assert_eq!(m.view().get("b").unwrap().state, PeerState::Down);
        // It is back with its next heartbeat.
        let out = m.on_heartbeat(&hb("b", "1", "active", 9), late + ms(5_000), 9);
        assert!(matches!(
            out,
            Heard::Accepted {
                change: Change::Recovered,
                ..
            }
        ));
    }

    #[test]
    fn a_closed_link_is_a_down_peer_only_if_no_other_link_is_up_after_the_grace() {
        let (mut m, t0) = node(&[]);
        m.on_heartbeat(&hb("b", "1", "active", 1), t0, 1);
        m.on_heartbeat(&hb("c", "1", "active", 1), t0, 1);
        for p in ["b", "c"] {
            assert_eq!(
                m.on_link_closed(Some((p.into(), "1".into())), true, format!("{p}:7100"), t0),
                LinkClosed::Suspect
            );
        }
        // Within the grace, nobody is judged.
        assert!(m.settle_suspects(t0 + ms(100), |_, _| false).is_empty());
        // After it: c still has a link (a duplicate was closed), b does not.
        let down = m.settle_suspects(t0 + LINK_GRACE, |name, _| name == "c");
        let names: Vec<&str> = down.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["b"]);
        assert_eq!(m.view().get("c").unwrap().state, PeerState::Active);
        assert!(
            m.settle_suspects(t0 + ms(1000), |_, _| false).is_empty(),
            "judged once"
        );
        // A link to a live peer closed before authenticating: a duplicate.
        assert_eq!(
            m.on_link_closed(Some(("c".into(), "1".into())), false, "c:7100".into(), t0),
            LinkClosed::Duplicate
        );
        assert_eq!(
            m.on_link_closed(None, false, "x:1".into(), t0),
            LinkClosed::Ignored
        );
    }

    #[test]
    fn a_link_closed_before_authenticating_is_reported_unless_its_peer_came_up() {
        let (mut m, t0) = node(&[]);
        for p in ["x", "y"] {
            assert_eq!(
                m.on_link_closed(Some((p.into(), "1".into())), false, format!("{p}:7100"), t0),
                LinkClosed::Unauthenticated
            );
        }
        m.on_heartbeat(&hb("y", "1", "active", 1), t0 + ms(500), 1);
        assert!(m.unauthenticated_due(t0 + ms(1_000)).is_empty());
        let due = m.unauthenticated_due(t0 + UNAUTH_GRACE);
        assert_eq!(due, vec![("x".to_owned(), "x:7100".to_owned())]);
        assert!(
            m.unauthenticated_due(t0 + ms(5_000)).is_empty(),
            "judged once"
        );
        // Bounded: a stranger can send any name.
        for i in 0..UNAUTH_MAX {
            m.on_link_closed(Some((format!("s{i}"), "1".into())), false, "s:1".into(), t0);
        }
        assert_eq!(
            m.on_link_closed(
                Some(("one-more".into(), "1".into())),
                false,
                "s:1".into(),
                t0
            ),
            LinkClosed::Ignored
        );
    }

    #[test]
    fn heartbeats_resolution_and_dials_come_due_on_their_periods() {
        let (mut m, t0) = node(&[]);
        let mut at = t0;
        let mut beats = Vec::new();
        for _ in 0..8 {
            at += TICK;
            m.tick(at);
            beats.push(m.schedule(NodeState::Active).heartbeat);
        }
        // The first tick announces the state; then every other tick (500 ms).
        assert_eq!(
            beats,
            vec![true, true, false, true, false, true, false, true]
        );
        // A change of state is announced at once.
        at += TICK;
        m.tick(at);
        assert!(m.schedule(NodeState::Draining).heartbeat);
        // Ticks 1 and 21 resolve; 1, 2, 3 and every fourth reconcile.
        let (mut m, t0) = node(&[]);
        let mut resolve = Vec::new();
        let mut reconcile = Vec::new();
        for n in 1..=21u32 {
            m.tick(t0 + TICK * n);
            let s = m.schedule(NodeState::Active);
            if s.resolve {
                resolve.push(n);
            }
            if s.reconcile {
                reconcile.push(n);
            }
        }
        assert_eq!(resolve, vec![1, 21]);
        assert_eq!(reconcile, vec![1, 2, 3, 5, 9, 13, 17, 21]);
    }

    #[test]
    fn dials_back_off_and_skip_this_node_connected_peers_and_pending_dials() {
        let (mut m, t0) = node(&["a:7100", "b:7100", "c:7100", "dns-seed:7100"]);
        let none = || Duration::ZERO;
        let first = m.dials(t0, ["c:7100"].into_iter(), none);
        assert_eq!(first, vec!["b:7100".to_owned(), "dns-seed:7100".to_owned()]);
        // Backoff: not again before 500 ms, then 1 s, 2 s, … at most 5 s.
        assert!(
            m.dials(t0 + ms(499), std::iter::empty(), none).len() == 1,
            "only c, new"
        );
        let again = m.dials(t0 + FIRST_BACKOFF, ["c:7100"].into_iter(), none);
        assert_eq!(again, vec!["b:7100".to_owned(), "dns-seed:7100".to_owned()]);
        assert!(m
            .dials(t0 + ms(1_400), ["c:7100"].into_iter(), none)
            .is_empty());
        assert_eq!(
            m.dials(t0 + ms(1_500), ["c:7100"].into_iter(), none).len(),
            2
        );
        // b answers at its address and is up: no more dials to it. The DNS seed turns out to
        // be this node.
        m.on_heartbeat(&hb("b", "1", "active", 1), t0, 1);
        assert!(!m.dial_answered("b:7100", Some("b")));
        assert!(m.dial_answered("dns-seed:7100", Some("a")));
        assert!(m
            .dials(t0 + ms(60_000), ["c:7100"].into_iter(), none)
            .is_empty());
        // Addresses learned from gossip and DNS are dialed too (the known ones only once).
        let mut from_b = hb("b", "1", "active", 2);
        from_b.members = vec![member("d", "1", "active")];
        m.learn(&from_b, t0);
        assert_eq!(
            m.resolved(vec!["e:7100".into(), "a:7100".into(), "b:7100".into()]),
            vec!["e:7100".to_owned()]
        );
        let with_jitter = m.dials(t0 + ms(60_000), ["c:7100"].into_iter(), || ms(7));
        assert_eq!(with_jitter, vec!["d:7100".to_owned(), "e:7100".to_owned()]);
        assert!(m
            .dials(t0 + ms(60_506), ["c:7100"].into_iter(), none)
            .is_empty());
        assert_eq!(
            m.dials(t0 + ms(60_507), ["c:7100"].into_iter(), none).len(),
            2
        );
    }

    #[test]
    fn the_echo_is_the_last_beats_send_time_and_how_long_it_was_held() {
        let (mut m, t0) = node(&[]);
        assert_eq!(m.echo("b", t0), (0, 0));
        let beat = hb("b", "1", "active", 1_234);
        m.on_heartbeat(&beat, t0, 1);
        m.learn(&beat, t0);
        assert_eq!(m.echo("b", t0 + ms(3)), (1_234, 3_000));
        let gossip = m.gossip(NodeState::Joining);
        assert_eq!(
            (gossip[0].name.as_str(), gossip[0].state.as_str()),
            ("a", "joining")
        );
        assert_eq!(gossip.len(), 2);
    }

    #[test]
    fn a_joining_node_turns_active_once_it_heard_everyone_it_was_told_of() {
        // Without other seeds: at once.
        let (mut m, t0) = node(&["a:7100"]);
        assert_eq!(m.join_verdict(NodeState::Joining, t0), JoinVerdict::Active);
        assert_eq!(m.join_verdict(NodeState::Active, t0), JoinVerdict::Wait);

        let (mut m, t0) = node(&["b:7100"]);
        assert_eq!(m.join_verdict(NodeState::Joining, t0), JoinVerdict::Wait);
        let mut from_b = hb("b", "1", "active", 1);
        from_b.members = vec![member("b", "1", "active"), member("c", "1", "active")];
        m.on_heartbeat(&from_b, t0 + ms(100), 1);
        m.learn(&from_b, t0 + ms(100));
        // Heard b, but b says c is up and c was not heard yet.
        assert_eq!(
            m.join_verdict(NodeState::Joining, t0 + ms(100)),
            JoinVerdict::Wait
        );
        assert_eq!(
            m.join_verdict(NodeState::Joining, t0 + ms(700)),
            JoinVerdict::Wait
        );
        m.on_heartbeat(&hb("c", "1", "active", 1), t0 + ms(800), 1);
        // Settled: JOIN_SETTLE after it first heard a peer.
        assert_eq!(
            m.join_verdict(NodeState::Joining, t0 + ms(800)),
            JoinVerdict::Active
        );

        // No seed answers: alone after the deadline.
        let (mut m, t0) = node(&["b:7100"]);
        assert_eq!(
            m.join_verdict(NodeState::Joining, t0 + ms(2_999)),
            JoinVerdict::Wait
        );
        assert_eq!(
            m.join_verdict(NodeState::Joining, t0 + JOIN_DEADLINE),
            JoinVerdict::ActiveAlone
        );
    }

    #[test]
    fn placement_counts_this_node_only_once_every_live_peer_sees_it_active() {
        let (mut m, t0) = node(&[]);
        let mut from_b = hb("b", "1", "active", 1);
        from_b.members = vec![member("b", "1", "active"), member("a", "i0", "joining")];
        m.on_heartbeat(&from_b, t0, 1);
        m.on_heartbeat(&hb("c", "1", "joining", 1), t0, 1);
        // Joining: only the active peers own rooms; every live node is listed.
        let o = m.owners(NodeState::Joining, t0);
        assert_eq!(o.active, vec!["b".to_owned()]);
        assert_eq!(o.live, vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]);
        assert_eq!(o.began, None);
        // Active, but b still sees a joining (and c reports nothing): not yet.
        let o = m.owners(NodeState::Active, t0 + ms(100));
        assert_eq!((o.active, o.began), (vec!["b".to_owned()], None));
        from_b.members[1].state = "active".into();
        from_b.sent_us = 2;
        m.on_heartbeat(&from_b, t0 + ms(200), 2);
        let mut from_c = hb("c", "1", "active", 2);
        from_c.members = vec![member("a", "i0", "active")];
        m.on_heartbeat(&from_c, t0 + ms(300), 2);
        let o = m.owners(NodeState::Active, t0 + ms(300));
        assert_eq!(
            o.active,
            vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]
        );
        assert_eq!(o.began, Some(Ownership::SeenActiveByAll { after: ms(200) }));
        // Owning stays; draining gives it up.
        assert_eq!(m.owners(NodeState::Active, t0 + ms(400)).began, None);
        assert!(m
            .owners(NodeState::Active, t0 + ms(400))
            .active
            .contains(&"a".to_owned()));
        let o = m.owners(NodeState::Draining, t0 + ms(500));
        assert_eq!(o.active, vec!["b".to_owned(), "c".to_owned()]);
    }

    #[test]
    fn a_node_no_peer_confirms_owns_rooms_after_the_deadline() {
        let (mut m, t0) = node(&[]);
        let mut from_b = hb("b", "1", "active", 1);
        from_b.members = vec![member("a", "i0", "joining")];
        m.on_heartbeat(&from_b, t0, 1);
        assert_eq!(m.owners(NodeState::Active, t0).began, None);
        assert_eq!(m.owners(NodeState::Active, t0 + ms(4_999)).began, None);
        let o = m.owners(NodeState::Active, t0 + OWN_DEADLINE);
        assert_eq!(
            o.began,
            Some(Ownership::Deadline {
                after: OWN_DEADLINE
            })
        );
        assert_eq!(o.active, vec!["a".to_owned(), "b".to_owned()]);
        // Alone: every live peer (none) sees it active at once.
        let (mut m, t0) = node(&[]);
        let o = m.owners(NodeState::Active, t0);
        assert_eq!(
            o.began,
            Some(Ownership::SeenActiveByAll {
                after: Duration::ZERO
            })
        );
        assert_eq!(
            (o.active, o.live),
            (vec!["a".to_owned()], vec!["a".to_owned()])
        );
    }

    #[test]
    fn agreement_follows_the_view() {
        let (mut m, t0) = node(&[]);
        m.on_heartbeat(&hb("b", "1", "active", 1), t0, 1);
        m.on_heartbeat(&hb("c", "1", "active", 1), t0, 1);
        assert!(m.agreed());
        m.on_link_closed(Some(("b".into(), "1".into())), true, "b:7100".into(), t0);
        m.on_link_closed(Some(("c".into(), "1".into())), true, "c:7100".into(), t0);
        assert_eq!(m.settle_suspects(t0 + LINK_GRACE, |_, _| false).len(), 2);
        assert!(!m.agreed(), "alone out of three");
    }
}
