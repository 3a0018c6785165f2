//! The membership view: logical node name → (incarnation, address, state, last heard).
//! Pure state with the clock passed in; the cluster manager is its only owner.
//!
//! Rules: a heartbeat makes its sender known (or updates it); a new incarnation of a known name
//! replaces the old one (a restart); silence longer than the timeout makes a peer `down`; a
//! `down` peer that speaks again is back with the state it reports.

use crate::wire::endpoint::{Heartbeat, Member};
use crate::wire::protocol_version;
#[cfg(test)]
use crate::wire::CLUSTER_PROTOCOL_VERSION;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A peer's state in the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// Starting up.
    Joining,
    /// Serving.
    Active,
    /// Draining.
    Draining,
    /// Drained.
    Drained,
    /// Not heard from within the timeout, or its link closed.
    Down,
}

impl PeerState {
    /// Contract name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Joining => "joining",
            Self::Active => "active",
            Self::Draining => "draining",
            Self::Drained => "drained",
            Self::Down => "down",
        }
    }

    /// Parses a contract name; unknown names read as `joining`.
    pub fn parse(s: &str) -> Self {
        match s {
            "active" => Self::Active,
            "draining" => Self::Draining,
            "drained" => Self::Drained,
            "down" => Self::Down,
            _ => Self::Joining,
        }
    }
}

/// One peer.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Logical name.
    pub name: String,
    /// Current incarnation.
    pub incarnation: String,
    /// Cluster address.
    pub addr: String,
    /// Public address.
    pub public_addr: String,
    /// State.
    pub state: PeerState,
    /// When we last heard from it.
    pub last_seen: Instant,
    /// When it went down, if it is down.
    pub down_since: Option<Instant>,
    /// Round-trip time of the heartbeat exchange, microseconds.
    pub rtt_us: Option<u64>,
    /// `sent_us` of its last heartbeat (echoed back to it).
    pub last_sent_us: u64,
    /// Times it went down and came back (or restarted).
    pub reconnects: u64,
    /// The peer's own view, from its last heartbeat (for agreement on who is down).
    pub reported: Vec<Member>,
    /// It went down after it had drained: it left the cluster on purpose and no longer counts
    /// towards a majority.
    pub left: bool,
}

/// What a heartbeat changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A name not seen before.
    Joined,
    /// A known peer, nothing notable.
    Refreshed,
    /// A down peer is back.
    Recovered,
    /// The peer restarted: the old incarnation is gone.
    Restarted {
        /// The replaced incarnation.
        old: String,
    },
    /// The peer speaks another cluster protocol version.
    Incompatible(u32),
    /// A heartbeat about ourselves (another process with our name), or an old incarnation.
    Ignored,
}

/// The view.
#[derive(Debug)]
pub struct View {
    me: String,
    my_incarnation: String,
    peers: BTreeMap<String, Peer>,
    timeout: Duration,
}

impl View {
    /// An empty view for node `me`; peers silent longer than `timeout` are down.
    pub fn new(me: &str, my_incarnation: &str, timeout: Duration) -> Self {
        Self {
            me: me.to_owned(),
            my_incarnation: my_incarnation.to_owned(),
            peers: BTreeMap::new(),
            timeout,
        }
    }

    /// Applies a heartbeat received at `now` (`now_us` on the wall clock, for the RTT).
    pub fn on_heartbeat(&mut self, hb: &Heartbeat, now: Instant, now_us: u64) -> Change {
        if hb.version != protocol_version() {
            return Change::Incompatible(hb.version);
        }
        if hb.name == self.me {
            return Change::Ignored;
        }
        let rtt =
            (hb.echo_us > 0).then(|| now_us.saturating_sub(hb.echo_us).saturating_sub(hb.hold_us));
        let state = PeerState::parse(&hb.state);
        match self.peers.get_mut(&hb.name) {
            None => {
                self.peers.insert(
                    hb.name.clone(),
                    Peer {
                        name: hb.name.clone(),
                        incarnation: hb.incarnation.clone(),
                        addr: hb.addr.clone(),
                        public_addr: hb.public_addr.clone(),
                        state,
                        last_seen: now,
                        down_since: None,
                        rtt_us: rtt,
                        last_sent_us: hb.sent_us,
                        reconnects: 0,
                        reported: hb.members.clone(),
                        left: false,
                    },
                );
                Change::Joined
            }
            Some(p) => {
                if p.incarnation != hb.incarnation {
                    if p.state != PeerState::Down && hb.sent_us < p.last_sent_us {
                        // A late heartbeat from the previous incarnation.
                        return Change::Ignored;
                    }
                    let old = std::mem::replace(&mut p.incarnation, hb.incarnation.clone());
                    p.addr.clone_from(&hb.addr);
                    p.public_addr.clone_from(&hb.public_addr);
                    p.state = state;
                    p.last_seen = now;
                    p.down_since = None;
                    p.rtt_us = None;
                    p.last_sent_us = hb.sent_us;
                    p.reconnects += 1;
                    p.reported.clone_from(&hb.members);
                    p.left = false;
                    return Change::Restarted { old };
                }
                let was_down = p.state == PeerState::Down;
                p.state = state;
                p.reported.clone_from(&hb.members);
                p.left = false;
                p.last_seen = now;
                p.down_since = None;
                p.last_sent_us = hb.sent_us;
                p.addr.clone_from(&hb.addr);
                p.public_addr.clone_from(&hb.public_addr);
                if rtt.is_some() {
                    p.rtt_us = rtt;
                }
                if was_down {
                    p.reconnects += 1;
                    Change::Recovered
                } else {
                    Change::Refreshed
                }
            }
        }
    }

    /// This node did not run for `pause` (an overloaded host, a stop): the peers' silence
    /// during it is not theirs (their heartbeats may be waiting to be read), so it does not count
    /// towards the timeout.
    pub fn forgive(&mut self, pause: Duration, now: Instant) {
        for p in self.peers.values_mut() {
            if p.state != PeerState::Down {
                p.last_seen = (p.last_seen + pause).min(now);
            }
        }
    }

    /// Marks peers silent for longer than the timeout as down; returns them.
    pub fn expire(&mut self, now: Instant) -> Vec<Peer> {
        let mut out = Vec::new();
        for p in self.peers.values_mut() {
            if p.state != PeerState::Down
                && now.saturating_duration_since(p.last_seen) > self.timeout
            {
                p.left = p.state == PeerState::Drained;
                p.state = PeerState::Down;
                p.down_since = Some(now);
                out.push(p.clone());
            }
        }
        out
    }

    /// Marks `name` down now (its link closed); returns it if it was up.
    pub fn mark_down(&mut self, name: &str, incarnation: &str, now: Instant) -> Option<Peer> {
        let p = self.peers.get_mut(name)?;
        if p.incarnation != incarnation || p.state == PeerState::Down {
            return None;
        }
        p.left = p.state == PeerState::Drained;
        p.state = PeerState::Down;
        p.down_since = Some(now);
        Some(p.clone())
    }

    /// Every peer, by name.
    pub fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.peers.values()
    }

    /// One peer.
    pub fn get(&self, name: &str) -> Option<&Peer> {
        self.peers.get(name)
    }

    /// Names of peers that are not down.
    pub fn live(&self) -> Vec<String> {
        self.peers
            .values()
            .filter(|p| p.state != PeerState::Down)
            .map(|p| p.name.clone())
            .collect()
    }

    /// Whether this node may treat the peers it sees as down as really gone (crashed), rather
    /// than cut off by a partition while still serving on the other side: it sees a strict
    /// majority of the members (peers that drained and left do not count), and no peer it can
    /// hear reports any of them as up. Restoring a room from its replica with the same epoch is
    /// safe only then; otherwise two owners could assign seqs under one epoch.
    pub fn agreed(&self) -> bool {
        let members = 1 + self.peers.values().filter(|p| !p.left).count();
        let live: Vec<&Peer> = self
            .peers
            .values()
            .filter(|p| p.state != PeerState::Down)
            .collect();
        if (1 + live.len()) * 2 <= members {
            return false;
        }
        let down: Vec<&Peer> = self
            .peers
            .values()
            .filter(|p| p.state == PeerState::Down && !p.left)
            .collect();
        !live.iter().any(|p| {
            p.reported.iter().any(|m| {
                m.state != "down"
                    && down
                        .iter()
                        .any(|d| d.name == m.name && d.incarnation == m.incarnation)
            })
        })
    }

    /// Whether every peer that is not down reports this node, in this incarnation, as
    /// `active` in its last heartbeat: then every node that can be asked to place a room counts
    /// this one among the owners, and this node may create rooms without a second owner
    /// appearing on a node whose view lags (see `directory`).
    pub fn seen_active_by_all(&self) -> bool {
        self.peers
            .values()
            .filter(|p| p.state != PeerState::Down)
            .all(|p| {
                p.reported.iter().any(|m| {
                    m.name == self.me && m.incarnation == self.my_incarnation && m.state == "active"
                })
            })
    }

    /// The view as gossip, ourselves first.
    pub fn gossip(&self, my_addr: &str, my_state: &str) -> Vec<Member> {
        let mut v = vec![Member {
            name: self.me.clone(),
            incarnation: self.my_incarnation.clone(),
            addr: my_addr.to_owned(),
            state: my_state.to_owned(),
        }];
        v.extend(self.peers.values().map(|p| Member {
            name: p.name.clone(),
            incarnation: p.incarnation.clone(),
            addr: p.addr.clone(),
            state: p.state.as_str().to_owned(),
        }));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(name: &str, inc: &str, sent: u64) -> Heartbeat {
        Heartbeat {
            version: CLUSTER_PROTOCOL_VERSION,
            name: name.into(),
            incarnation: inc.into(),
            addr: format!("{name}:7100"),
            state: "active".into(),
            sent_us: sent,
            ..Heartbeat::default()
        }
    }

    #[test]
    fn joins_expires_recovers_and_restarts() {
        let t0 = Instant::now();
        let mut v = View::new("a", "i0", Duration::from_millis(2500));
        assert_eq!(v.on_heartbeat(&hb("b", "1", 10), t0, 10), Change::Joined);
        assert_eq!(v.on_heartbeat(&hb("b", "1", 20), t0, 20), Change::Refreshed);
        assert!(v.expire(t0 + Duration::from_secs(2)).is_empty());
        let down = v.expire(t0 + Duration::from_secs(3));
        assert_eq!(down.len(), 1);
        assert_eq!(v.get("b").unwrap().state, PeerState::Down);
        assert_eq!(
            v.on_heartbeat(&hb("b", "1", 30), t0 + Duration::from_secs(4), 30),
            Change::Recovered
        );
        assert_eq!(
            v.on_heartbeat(&hb("b", "2", 40), t0 + Duration::from_secs(5), 40),
            Change::Restarted { old: "1".into() }
        );
        // A late beat of the old incarnation does not flip it back.
        assert_eq!(
            v.on_heartbeat(&hb("b", "1", 35), t0 + Duration::from_secs(5), 41),
            Change::Ignored
        );
        assert_eq!(v.get("b").unwrap().incarnation, "2");
    }

    #[test]
    fn refuses_other_versions_and_itself() {
        let mut v = View::new("a", "i0", Duration::from_secs(1));
        let mut other = hb("b", "1", 1);
        other.version = CLUSTER_PROTOCOL_VERSION + 1;
        assert_eq!(
            v.on_heartbeat(&other, Instant::now(), 1),
            Change::Incompatible(CLUSTER_PROTOCOL_VERSION + 1)
        );
        assert_eq!(
            v.on_heartbeat(&hb("a", "x", 1), Instant::now(), 1),
            Change::Ignored
        );
        assert!(v.get("b").is_none());
    }

    #[test]
    fn marks_down_only_the_current_incarnation() {
        let t0 = Instant::now();
        let mut v = View::new("a", "i0", Duration::from_secs(1));
        v.on_heartbeat(&hb("b", "2", 1), t0, 1);
        assert!(v.mark_down("b", "1", t0).is_none());
        assert!(v.mark_down("b", "2", t0).is_some());
        assert!(v.live().is_empty());
        assert_eq!(v.gossip("a:7100", "active").len(), 2);
    }

    #[test]
    fn a_pause_of_this_node_is_not_its_peers_silence() {
        let t0 = Instant::now();
        let mut v = View::new("a", "i0", Duration::from_secs(1));
        v.on_heartbeat(&hb("b", "1", 1), t0, 1);
        // This node did not run for 1.5 s: forgiven, b is not down at t0 + 1.5 s…
        let later = t0 + Duration::from_millis(1500);
        v.forgive(Duration::from_millis(1500), later);
        assert!(v.expire(later).is_empty());
        // …but b's own silence after that counts as usual.
        assert_eq!(v.expire(later + Duration::from_millis(1100)).len(), 1);
    }

    fn member(name: &str, inc: &str, state: &str) -> Member {
        Member {
            name: name.into(),
            incarnation: inc.into(),
            addr: format!("{name}:7100"),
            state: state.into(),
        }
    }

    #[test]
    fn agrees_on_a_crash_but_not_on_a_partition_or_a_minority() {
        let t0 = Instant::now();
        let mut v = View::new("a", "i0", Duration::from_secs(1));
        v.on_heartbeat(&hb("b", "1", 1), t0, 1);
        v.on_heartbeat(&hb("c", "1", 1), t0, 1);
        assert!(v.agreed());
        v.mark_down("b", "1", t0);
        // c still hears b: a partition between a and b, not a crash.
        let mut from_c = hb("c", "1", 2);
        from_c.members = vec![member("c", "1", "active"), member("b", "1", "active")];
        v.on_heartbeat(&from_c, t0, 2);
        assert!(!v.agreed());
        // c saw b go down too.
        from_c.members[1].state = "down".into();
        from_c.sent_us = 3;
        v.on_heartbeat(&from_c, t0, 3);
        assert!(v.agreed());
        // Alone out of three: a minority never restores.
        v.mark_down("c", "1", t0);
        assert!(!v.agreed());
        // A peer that drained and left does not count.
        let mut w = View::new("a", "i0", Duration::from_secs(1));
        let mut drained = hb("b", "1", 1);
        drained.state = "drained".into();
        w.on_heartbeat(&drained, t0, 1);
        w.mark_down("b", "1", t0);
        assert!(w.agreed());
    }

    #[test]
    fn owns_rooms_only_once_every_live_peer_sees_it_active() {
        let t0 = Instant::now();
        let mut v = View::new("a", "i0", Duration::from_secs(1));
        assert!(v.seen_active_by_all(), "alone: nobody to wait for");
        let mut from_b = hb("b", "1", 1);
        from_b.members = vec![member("b", "1", "active"), member("a", "i0", "joining")];
        v.on_heartbeat(&from_b, t0, 1);
        assert!(!v.seen_active_by_all(), "b still sees a joining");
        from_b.members[1].state = "active".into();
        from_b.sent_us = 2;
        v.on_heartbeat(&from_b, t0, 2);
        assert!(v.seen_active_by_all());
        // c knows only a's previous incarnation.
        let mut from_c = hb("c", "1", 1);
        from_c.members = vec![member("c", "1", "active"), member("a", "old", "active")];
        v.on_heartbeat(&from_c, t0, 1);
        assert!(!v.seen_active_by_all());
        // A peer that is down is not waited for.
        v.mark_down("c", "1", t0);
        assert!(v.seen_active_by_all());
    }
}
