//! The cluster manager: this node's membership. It dials seeds and every peer it learns of
//! (forever, with backoff), sends heartbeats to every peer's endpoint twice a second, keeps the
//! [`View`], marks peers `down` on silence or a closed link, and stops the ractor_cluster
//! session of a down peer so a restarted peer (new incarnation) is admitted at once.
//!
//! It never touches rooms or connections; it owns the view and the dial schedule only.

use super::events::SessionEvent;
use super::view::{Change, PeerState, View};
use super::GROUP;
use crate::ids::now_micros;
use crate::lifecycle::{Lifecycle, NodeState};
use crate::wire::endpoint::{EndpointMessage, Heartbeat};
use crate::wire::protocol_version;
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::NodeSessionMessage;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the manager wakes up.
pub const TICK: Duration = Duration::from_millis(250);

/// How long a link that closed before authenticating waits to be judged.
const UNAUTH_GRACE: Duration = Duration::from_secs(2);
/// Most named links closed before authenticating kept for judging at once (each is kept for
/// [`UNAUTH_GRACE`]); more are not judged (a stranger can send any name).
const UNAUTH_MAX: usize = 64;

/// How long a link to a peer of another protocol version stays open after the refusal (so our
/// heartbeat, which tells it why, gets there).
const REFUSE_AFTER: Duration = Duration::from_millis(400);
/// Heartbeat period.
pub const HEARTBEAT_EVERY: Duration = Duration::from_millis(500);
/// Silence after which a peer is down (five heartbeats).
pub const DOWN_AFTER: Duration = Duration::from_millis(2_500);
/// A tick this much later than due means this node itself was paused (overloaded, stopped).
const SELF_PAUSE: Duration = Duration::from_millis(500);
/// A dial that has not authenticated by then is abandoned.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait between two dials of one address.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A joining node turns active this long after it first heard a peer (and every peer it was
/// told of), so its view and room groups are complete before it places or serves rooms.
const JOIN_SETTLE: Duration = Duration::from_millis(500);
/// A closed link is a down peer only if no other link to it exists this long after.
const LINK_GRACE: Duration = Duration::from_millis(200);
/// A node with seeds waits at most this long to hear from one before it turns active alone.
const JOIN_DEADLINE: Duration = Duration::from_secs(3);
/// An active node counts itself among room owners when every live peer reports it active, or
/// this long after it turned active (a peer that never says so, e.g. an older build).
const OWN_DEADLINE: Duration = Duration::from_secs(5);

/// A peer as the admin API shows it.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// Logical name.
    pub name: String,
    /// Incarnation.
    pub incarnation: String,
    /// Cluster address.
    pub addr: String,
    /// Public address.
    pub public_addr: String,
    /// State.
    pub state: PeerState,
    /// Heartbeat round trip, microseconds.
    pub rtt_us: Option<u64>,
    /// Times the peer went down and came back or restarted.
    pub reconnects: u64,
    /// Its endpoint, when a link is up.
    pub endpoint: Option<ActorRef<EndpointMessage>>,
}

/// Messages accepted by [`ManagerActor`].
pub enum ClusterMessage {
    /// Periodic work: expire, heartbeat, dial.
    Tick,
    /// A peer's heartbeat (from the local endpoint).
    Heartbeat(Heartbeat),
    /// A ractor_cluster session event.
    Session(SessionEvent),
    /// The peers, for the admin API.
    Peers(RpcReplyPort<Vec<PeerInfo>>),
    /// Addresses a DNS seed resolved to (every one is dialed).
    Resolved(Vec<String>),
}

impl ractor::Message for ClusterMessage {}

/// Spawn arguments.
pub struct ManagerArgs {
    /// Logical name.
    pub name: String,
    /// Incarnation.
    pub incarnation: String,
    /// Cluster address peers dial (`host:port`).
    pub addr: String,
    /// Public address, for operators.
    pub public_addr: String,
    /// Seed addresses.
    pub seeds: Vec<String>,
    /// The node's lifecycle state.
    pub lifecycle: Arc<Lifecycle>,
    /// Active and live nodes, kept here for room placement.
    pub members: Arc<crate::placement::Membership>,
    /// Whether the peers agree on who is down (for the room host's restores).
    pub agreement: Arc<crate::placement::agreement::Agreement>,
    /// The links' counters (queued bytes, fences).
    pub links: Arc<super::transport::Links>,
    /// What dialing needs (the node server, the links, the handshake fences).
    pub transport: super::transport::Transport,
    /// Metrics (per-peer state, RTT, reconnects).
    pub metrics: Arc<crate::metrics::Metrics>,
}

struct Dial {
    next_at: Instant,
    backoff: Duration,
}

/// The manager's state.
pub struct ManagerState {
    args: ManagerArgs,
    view: View,
    /// Addresses to keep dialing: seeds plus every peer learned.
    known: HashSet<String>,
    dials: HashMap<String, Dial>,
    /// Outgoing sessions not yet authenticated: actor id → (session, opened at, address).
    pending: HashMap<ActorId, (ActorRef<NodeSessionMessage>, Instant, String)>,
    /// Full names of authenticated sessions by session actor id.
    sessions: HashMap<ActorId, (ActorRef<NodeSessionMessage>, String)>,
    /// When we got each peer's last heartbeat (for the echo).
    heard_at: HashMap<String, (u64, Instant)>,
    /// Peers refused for another protocol version, logged once each (authenticated peers only).
    refused_logged: HashSet<String>,
    /// Rate limit of the "closed before authenticating" line.
    unauth_log: super::log_limit::LogLimit,
    /// When we first heard a peer (joining settles a moment after).
    first_heard: Option<Instant>,
    /// Since when this node is active (reset when it leaves `active`).
    active_since: Option<Instant>,
    /// Whether this node counts itself among the room owners: once every live peer reports it
    /// active (or [`OWN_DEADLINE`] after it turned active), until it leaves `active`.
    owning: bool,
    /// Names other nodes report as up (to be heard from before this node turns active).
    gossiped_up: HashSet<String>,
    /// Our state in the last heartbeats sent (a change is announced at once).
    announced: Option<NodeState>,
    /// Links closed before authenticating, by peer (name, or address when unknown): a wrong
    /// cookie unless that peer is up a moment later.
    unauthenticated: HashMap<String, (String, Instant)>,
    /// Peers refused for another protocol version, whose links close shortly.
    refusing: Vec<(String, String, Instant)>,
    /// Which node answered at each dialed address (a DNS seed resolves to addresses that need
    /// not be what the peers advertise): an address whose node is up needs no dial.
    answered_at: HashMap<String, String>,
    /// The transport label (`peer_addr`) of every open session, for its counters.
    labels: HashMap<ActorId, String>,
    /// Peers whose link closed, and when: down unless a link to them is back shortly.
    suspects: HashMap<String, (String, Instant)>,
    started: Instant,
    ticks: u64,
    /// When the last tick ran (a tick far later than [`TICK`] means this node was not running).
    last_tick: Instant,
}

/// The manager; one per node.
pub struct ManagerActor;

/// Splits a ractor node name `name#incarnation@host` into (name, incarnation).
pub fn parse_node_name(full: &str) -> Option<(String, String)> {
    let left = full.split('@').next()?;
    let (name, inc) = left.rsplit_once('#')?;
    Some((name.to_owned(), inc.to_owned()))
}

/// The endpoint actor name of a node: `gatehouse.cluster:<name>#<incarnation>`.
pub fn endpoint_name(name: &str, incarnation: &str) -> String {
    format!("{GROUP}:{name}#{incarnation}")
}

fn remote_endpoints() -> Vec<(String, ActorCell)> {
    ractor::pg::get_members(&GROUP.to_owned())
        .into_iter()
        .filter(|c| !c.get_id().is_local())
        .filter_map(|c| {
            let n = c.get_name()?;
            let rest = n.strip_prefix(&format!("{GROUP}:"))?.to_owned();
            Some((rest, c))
        })
        .collect()
}

impl ManagerState {
    fn my_state(&self) -> NodeState {
        self.args.lifecycle.get()
    }

    fn send_heartbeats(&mut self) {
        let now = Instant::now();
        let members = self.view.gossip(&self.args.addr, self.my_state().as_str());
        for (id, cell) in remote_endpoints() {
            let Some((name, _)) = id.rsplit_once('#') else {
                continue;
            };
            let (echo_us, hold_us) = self.heard_at.get(name).map_or((0, 0), |(sent, at)| {
                (*sent, now.duration_since(*at).as_micros() as u64)
            });
            let hb = Heartbeat {
                version: protocol_version(),
                name: self.args.name.clone(),
                incarnation: self.args.incarnation.clone(),
                addr: self.args.addr.clone(),
                public_addr: self.args.public_addr.clone(),
                state: self.my_state().as_str().to_owned(),
                sent_us: now_micros(),
                echo_us,
                hold_us,
                members: members.clone(),
            };
            let _ = ActorRef::<EndpointMessage>::from(cell).cast(EndpointMessage::Heartbeat(hb));
        }
    }

    /// Stops every session to `name#incarnation`, so the link is rebuilt from scratch.
    fn stop_sessions_of(&mut self, name: &str, incarnation: &str, why: &str) {
        let prefix = format!("{name}#{incarnation}@");
        let ids: Vec<ActorId> = self
            .sessions
            .iter()
            .filter(|(_, (_, full))| full.starts_with(&prefix))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some((s, _)) = self.sessions.remove(&id) {
                s.stop(Some(format!("gatehouse: {why}")));
            }
        }
    }

    fn on_heartbeat(&mut self, hb: Heartbeat) {
        let now = Instant::now();
        let before = self
            .view
            .get(&hb.name)
            .map(|p| (p.state, p.incarnation.clone()));
        let change = self.view.on_heartbeat(&hb, now, now_micros());
        let after = self
            .view
            .get(&hb.name)
            .map(|p| (p.state, p.incarnation.clone()));
        if before != after && !matches!(change, Change::Incompatible(_) | Change::Ignored) {
            // A peer's state changed (it turned active, say): placement follows at once, and
            // the peer hears at once that we see it so (it owns rooms only then).
            self.publish_active();
            self.send_heartbeats();
        }
        match change {
            Change::Incompatible(v) => {
                if self
                    .refused_logged
                    .insert(format!("{}#{}", hb.name, hb.incarnation))
                {
                    tracing::error!(
                        peer = %hb.name,
                        peer_version = v,
                        our_version = protocol_version(),
                        "refusing cluster peer: it speaks another cluster protocol version"
                    );
                }
                // Tell it our version first (a heartbeat), so it logs the refusal too; the link
                // is closed on a later tick.
                if !self
                    .refusing
                    .iter()
                    .any(|(n, i, _)| *n == hb.name && *i == hb.incarnation)
                {
                    self.send_heartbeats();
                    self.refusing
                        .push((hb.name.clone(), hb.incarnation.clone(), Instant::now()));
                }
                return;
            }
            Change::Ignored => return,
            Change::Joined => {
                crate::events::emit(crate::events::Event::PeerUp {
                    node: hb.name.clone(),
                });
                tracing::info!(peer = %hb.name, incarnation = %hb.incarnation, addr = %hb.addr, state = %hb.state, "cluster peer joined");
            }
            Change::Recovered => {
                crate::events::emit(crate::events::Event::PeerUp {
                    node: hb.name.clone(),
                });
                tracing::info!(peer = %hb.name, "cluster peer is back");
                self.count_reconnect(&hb.name);
            }
            Change::Restarted { old } => {
                tracing::info!(peer = %hb.name, old_incarnation = %old, incarnation = %hb.incarnation, "cluster peer restarted");
                self.count_reconnect(&hb.name);
                crate::events::emit(crate::events::Event::PeerRestarted {
                    node: hb.name.clone(),
                });
                self.stop_sessions_of(&hb.name, &old, "peer restarted");
            }
            Change::Refreshed => {}
        }
        self.heard_at.insert(hb.name.clone(), (hb.sent_us, now));
        if !hb.addr.is_empty() {
            self.known.insert(hb.addr.clone());
        }
        for m in &hb.members {
            if m.name != self.args.name && !m.addr.is_empty() {
                self.known.insert(m.addr.clone());
                if m.state != "down" {
                    self.gossiped_up.insert(m.name.clone());
                }
            }
        }
    }

    /// Peers whose link closed and did not come back within [`LINK_GRACE`] are down.
    fn settle_suspects(&mut self) {
        let now = Instant::now();
        let due: Vec<(String, String)> = self
            .suspects
            .iter()
            .filter(|(_, (_, at))| now.duration_since(*at) >= LINK_GRACE)
            .map(|(n, (i, _))| (n.clone(), i.clone()))
            .collect();
        for (name, inc) in due {
            self.suspects.remove(&name);
            let prefix = format!("{name}#{inc}@");
            if self.sessions.values().any(|(_, f)| f.starts_with(&prefix)) {
                continue;
            }
            if let Some(p) = self.view.mark_down(&name, &inc, now) {
                tracing::warn!(peer = %p.name, "cluster peer down: link closed");
                crate::events::emit(crate::events::Event::PeerDown {
                    node: p.name.clone(),
                    reason: "link closed".into(),
                });
            }
        }
    }

    fn count_reconnect(&self, peer: &str) {
        self.args
            .metrics
            .peer_reconnects
            .get_or_create(&crate::metrics::PeerLabel {
                peer: peer.to_owned(),
            })
            .inc();
    }

    fn expire(&mut self) {
        for p in self.view.expire(Instant::now()) {
            tracing::warn!(peer = %p.name, silent_ms = p.last_seen.elapsed().as_millis() as u64, "cluster peer down: no heartbeat");
            crate::events::emit(crate::events::Event::PeerDown {
                node: p.name.clone(),
                reason: "silent".into(),
            });
            self.stop_sessions_of(&p.name, &p.incarnation, "peer silent");
        }
        let now = Instant::now();
        let stale: Vec<ActorId> = self
            .pending
            .iter()
            .filter(|(_, (_, at, _))| now.duration_since(*at) > DIAL_TIMEOUT)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            if let Some((s, _, addr)) = self.pending.remove(&id) {
                tracing::debug!(%addr, "cluster dial did not authenticate in time; dropping it");
                s.stop(Some("gatehouse: handshake timeout".into()));
            }
        }
    }

    fn connected_addrs(&self) -> HashSet<String> {
        let mut out: HashSet<String> = self
            .view
            .peers()
            .filter(|p| p.state != PeerState::Down)
            .map(|p| p.addr.clone())
            .collect();
        out.extend(self.pending.values().map(|(_, _, a)| a.clone()));
        out.extend(
            self.answered_at
                .iter()
                .filter(|(_, n)| {
                    **n == self.args.name
                        || self.view.get(n).is_some_and(|p| p.state != PeerState::Down)
                })
                .map(|(a, _)| a.clone()),
        );
        out
    }

    /// Logs a link that closed before authenticating as a likely wrong cookie, unless its peer
    /// came up meanwhile (a duplicate link closed by the session election).
    fn judge_unauthenticated(&mut self) {
        let due: Vec<(String, String)> = self
            .unauthenticated
            .iter()
            .filter(|(_, (_, at))| at.elapsed() >= UNAUTH_GRACE)
            .map(|(who, (addr, _))| (who.clone(), addr.clone()))
            .collect();
        for (who, peer_addr) in due {
            self.unauthenticated.remove(&who);
            let up = self
                .view
                .get(&who)
                .is_some_and(|p| p.state != PeerState::Down);
            if up {
                continue;
            }
            if let Some(left_out) = self.unauth_log.allow() {
                tracing::warn!(
                    peer = %who,
                    %peer_addr,
                    not_logged = left_out,
                    "cluster link closed before authenticating (wrong cluster cookie?)"
                );
            }
        }
    }

    /// Resolves the seeds that are DNS names (a Kubernetes headless service, say), off the
    /// actor; every address they resolve to becomes a dial target.
    fn resolve_seeds(&self, myself: &ActorRef<ClusterMessage>) {
        let names: Vec<String> = self
            .args
            .seeds
            .iter()
            .filter(|s| s.parse::<std::net::SocketAddr>().is_err())
            .cloned()
            .collect();
        if names.is_empty() {
            return;
        }
        let me = myself.clone();
        tokio::spawn(async move {
            let mut found = Vec::new();
            for seed in names {
                match tokio::time::timeout(Duration::from_secs(2), tokio::net::lookup_host(&seed))
                    .await
                {
                    Ok(Ok(addrs)) => found.extend(addrs.map(|a| a.to_string())),
                    Ok(Err(e)) => tracing::debug!(%seed, error = %e, "seed did not resolve"),
                    Err(_) => tracing::debug!(%seed, "seed resolution timed out"),
                }
            }
            let _ = me.cast(ClusterMessage::Resolved(found));
        });
    }

    fn reconcile(&mut self) {
        let now = Instant::now();
        let connected = self.connected_addrs();
        let mut targets: Vec<String> = self.known.iter().cloned().collect();
        targets.sort();
        for addr in targets {
            if addr == self.args.addr || connected.contains(&addr) {
                if let Some(d) = self.dials.get_mut(&addr) {
                    d.backoff = Duration::from_millis(500);
                }
                continue;
            }
            let d = self.dials.entry(addr.clone()).or_insert(Dial {
                next_at: now,
                backoff: Duration::from_millis(500),
            });
            if now < d.next_at {
                continue;
            }
            let jitter = Duration::from_millis(rand::random::<u64>() % 250);
            d.next_at = now + d.backoff + jitter;
            d.backoff = (d.backoff * 2).min(MAX_BACKOFF);
            let transport = self.args.transport.clone();
            tokio::spawn(async move {
                match super::transport::dial(&transport, &addr).await {
                    Ok(()) => tracing::debug!(%addr, "cluster dial connected"),
                    Err(e) => tracing::debug!(%addr, error = %e, "cluster dial failed"),
                }
            });
        }
    }

    fn update_lifecycle(&mut self) {
        if self.my_state() != NodeState::Joining {
            return;
        }
        let has_other_seeds = self.args.seeds.iter().any(|s| *s != self.args.addr);
        let heard = !self.view.live().is_empty();
        // Joined = heard from a peer, and from every peer the others say is up (so this node's
        // view, and the room groups that came with each link, are complete), a moment ago.
        let first = *self.first_heard.get_or_insert_with(|| {
            if heard {
                Instant::now()
            } else {
                Instant::now() + JOIN_DEADLINE
            }
        });
        if !heard {
            self.first_heard = None;
        }
        let unheard = self.gossiped_up.iter().any(|n| self.view.get(n).is_none());
        let settled = heard && !unheard && first.elapsed() >= JOIN_SETTLE;
        if !has_other_seeds || settled || self.started.elapsed() >= JOIN_DEADLINE {
            if has_other_seeds && !heard {
                tracing::warn!(seeds = ?self.args.seeds, "no seed answered; serving alone until peers appear");
            }
            self.args.lifecycle.set(NodeState::Active);
        }
    }

    /// Exports each peer's state and round trip.
    fn export_metrics(&self) {
        for p in self.view.peers() {
            let label = crate::metrics::PeerLabel {
                peer: p.name.clone(),
            };
            let m = &self.args.metrics;
            m.peer_up
                .get_or_create(&label)
                .set(i64::from(p.state != PeerState::Down));
            if let Some(rtt) = p.rtt_us {
                m.peer_rtt.get_or_create(&label).set(rtt as f64 / 1e6);
            }
        }
        let mut queued: HashMap<String, u64> = HashMap::new();
        for (id, (_, full)) in &self.sessions {
            let Some((name, _)) = parse_node_name(full) else {
                continue;
            };
            let link = self.labels.get(id).and_then(|l| self.args.links.get(l));
            // From now on the link counts what it carries against what is enqueued for this
            // peer (`peer_queue`), which fences a peer that falls too far behind.
            if let Some(s) = &link {
                if s.peer.get().is_none() {
                    s.attach(crate::peer_queue::of(&name));
                }
            }
            let bytes = link.map_or(0, |s| s.queued.load(std::sync::atomic::Ordering::Relaxed));
            *queued.entry(name).or_default() += bytes;
        }
        for p in self.view.peers() {
            let label = crate::metrics::PeerLabel {
                peer: p.name.clone(),
            };
            let bytes = queued.get(&p.name).copied().unwrap_or(0);
            self.args
                .metrics
                .peer_queued_bytes
                .get_or_create(&label)
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        self.args
            .metrics
            .cluster_frame_max
            .set(i64::try_from(super::outbox::largest_frame()).unwrap_or(i64::MAX));
    }

    /// Publishes the nodes that may own rooms and the nodes this one hears (both sorted) for
    /// room placement. This node counts itself only once every live peer reports it active:
    /// until then a peer whose view lags would place a room elsewhere while this node, or a
    /// node that sees it, places the same room here (two owners).
    fn publish_active(&mut self) {
        if self.my_state() == NodeState::Active {
            let since = *self.active_since.get_or_insert_with(Instant::now);
            if !self.owning {
                let all = self.view.seen_active_by_all();
                if all || since.elapsed() >= OWN_DEADLINE {
                    if !all {
                        tracing::warn!(
                            "not every live peer reports this node active after {OWN_DEADLINE:?}; owning rooms anyway"
                        );
                    }
                    tracing::info!(
                        after_ms = since.elapsed().as_millis() as u64,
                        "every live peer counts this node active: it owns rooms"
                    );
                    self.owning = true;
                }
            }
        } else {
            self.active_since = None;
            self.owning = false;
        }
        let mut names: Vec<String> = self
            .view
            .peers()
            .filter(|p| p.state == PeerState::Active)
            .map(|p| p.name.clone())
            .collect();
        if self.owning {
            names.push(self.args.name.clone());
        }
        names.sort();
        let mut live = self.view.live();
        live.push(self.args.name.clone());
        live.sort();
        if self.args.members.set(names.clone(), live) {
            tracing::info!(active = ?names, "active nodes changed");
        }
    }

    fn on_session(&mut self, e: SessionEvent) {
        match e {
            SessionEvent::Opened {
                session,
                peer_addr,
                incoming,
            } => {
                self.labels.insert(session.get_id(), peer_addr.clone());
                if !incoming {
                    self.pending
                        .insert(session.get_id(), (session, Instant::now(), peer_addr));
                }
            }
            SessionEvent::Authenticated { session, peer } => {
                let id = session.get_id();
                if let Some((_, _, addr)) = self.pending.remove(&id) {
                    self.dials.remove(&addr);
                    if let Some((name, _)) = parse_node_name(&peer) {
                        let myself = name == self.args.name;
                        self.answered_at.insert(addr, name);
                        if myself {
                            // A DNS seed that resolves to this node too: never a peer.
                            session.stop(Some("gatehouse: that address is this node".into()));
                            return;
                        }
                    }
                }
                tracing::debug!(%peer, "cluster link authenticated");
                self.sessions.insert(id, (session, peer));
            }
            SessionEvent::Closed {
                session,
                peer,
                peer_addr,
            } => {
                let id = session.get_id();
                self.pending.remove(&id);
                let authenticated = self.sessions.remove(&id).is_some();
                let parsed = peer.as_deref().and_then(parse_node_name);
                let fenced = self
                    .labels
                    .remove(&id)
                    .and_then(|l| self.args.links.remove(&l))
                    .and_then(|s| s.fenced.lock().ok().and_then(|f| *f));
                // Only authenticated links are fenced here (and have a series per peer); a link
                // refused before authenticating is counted by reason in `handshake`.
                if let (Some(why), true, Some((who, _))) = (fenced, authenticated, parsed.as_ref())
                {
                    let who = who.clone();
                    tracing::warn!(peer = %who, %peer_addr, reason = why, "cluster link fenced");
                    self.args
                        .metrics
                        .peer_fenced
                        .get_or_create(&crate::metrics::PeerLabel { peer: who })
                        .inc();
                }
                match parsed {
                    Some((name, inc)) if authenticated => {
                        // Duplicate links are closed by the session election while another link
                        // to the same peer lives on: decide a moment later (next ticks).
                        self.suspects.insert(name, (inc, Instant::now()));
                    }
                    // A duplicate link to a live peer, closed by the session election: normal.
                    Some((name, _))
                        if self
                            .view
                            .get(&name)
                            .is_some_and(|p| p.state != PeerState::Down) => {}
                    // Closed by us or by it for another protocol version (logged as such).
                    Some((name, inc)) if self.refused_logged.contains(&format!("{name}#{inc}")) => {
                    }
                    // Judged a moment later: crossing dials close one link before it
                    // authenticates while the other one comes up. Only links that named a peer
                    // (a node with another cookie does), and boundedly; a nameless one is a
                    // stranger, accounted for by `handshake`.
                    Some((name, _)) if self.unauthenticated.len() < UNAUTH_MAX => {
                        self.unauthenticated
                            .entry(name)
                            .or_insert((peer_addr, Instant::now()));
                    }
                    Some(_) | None => {}
                }
            }
        }
    }

    fn peers(&self) -> Vec<PeerInfo> {
        let endpoints: HashMap<String, ActorCell> = remote_endpoints().into_iter().collect();
        self.view
            .peers()
            .map(|p| PeerInfo {
                name: p.name.clone(),
                incarnation: p.incarnation.clone(),
                addr: p.addr.clone(),
                public_addr: p.public_addr.clone(),
                state: p.state,
                rtt_us: p.rtt_us,
                reconnects: p.reconnects,
                endpoint: endpoints
                    .get(&format!("{}#{}", p.name, p.incarnation))
                    .cloned()
                    .map(ActorRef::from),
            })
            .collect()
    }
}

impl Actor for ManagerActor {
    type Msg = ClusterMessage;
    type State = ManagerState;
    type Arguments = ManagerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ManagerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        myself.send_interval(TICK, || ClusterMessage::Tick);
        let known = args.seeds.iter().cloned().collect();
        Ok(ManagerState {
            view: View::new(&args.name, &args.incarnation, DOWN_AFTER),
            args,
            known,
            dials: HashMap::new(),
            pending: HashMap::new(),
            labels: HashMap::new(),
            answered_at: HashMap::new(),
            refusing: Vec::new(),
            unauthenticated: HashMap::new(),
            sessions: HashMap::new(),
            heard_at: HashMap::new(),
            refused_logged: HashSet::new(),
            unauth_log: super::log_limit::LogLimit::new(super::handshake::REFUSAL_LOG_EVERY),
            announced: None,
            first_heard: None,
            active_since: None,
            owning: false,
            gossiped_up: HashSet::new(),
            suspects: HashMap::new(),
            started: Instant::now(),
            ticks: 0,
            last_tick: Instant::now(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ClusterMessage::Tick => {
                state.ticks += 1;
                // Time this node did not run is not its peers' silence.
                let now = Instant::now();
                let pause = now
                    .saturating_duration_since(state.last_tick)
                    .saturating_sub(TICK);
                state.last_tick = now;
                if pause >= SELF_PAUSE {
                    tracing::warn!(pause_ms = pause.as_millis() as u64, "this node did not run for a while; its peers' silence meanwhile does not count against them");
                    state.view.forgive(pause, now);
                }
                let due: Vec<(String, String, Instant)> = state
                    .refusing
                    .iter()
                    .filter(|(_, _, at)| at.elapsed() >= REFUSE_AFTER)
                    .cloned()
                    .collect();
                state
                    .refusing
                    .retain(|(_, _, at)| at.elapsed() < REFUSE_AFTER);
                for (name, inc, _) in due {
                    state.stop_sessions_of(&name, &inc, "incompatible protocol version");
                }
                state.settle_suspects();
                state.judge_unauthenticated();
                state.expire();
                let every = |d: Duration| (d.as_millis() / TICK.as_millis()).max(1) as u64;
                let changed = state.announced != Some(state.my_state());
                if changed || state.ticks % every(HEARTBEAT_EVERY) == 0 {
                    state.announced = Some(state.my_state());
                    state.send_heartbeats();
                }
                if state.ticks % every(Duration::from_secs(5)) == 1 {
                    state.resolve_seeds(&myself);
                }
                if state.ticks % every(Duration::from_secs(1)) == 1 || state.ticks < 4 {
                    state.reconcile();
                }
                state.update_lifecycle();
                state.publish_active();
                state.args.agreement.set(state.view.agreed());
                state.export_metrics();
            }
            ClusterMessage::Heartbeat(hb) => {
                state.on_heartbeat(hb);
                state.args.agreement.set(state.view.agreed());
            }
            ClusterMessage::Session(e) => state.on_session(e),
            ClusterMessage::Peers(reply) => {
                let _ = reply.send(state.peers());
            }
            ClusterMessage::Resolved(addrs) => {
                for a in addrs {
                    if a != state.args.addr && state.known.insert(a.clone()) {
                        tracing::info!(addr = %a, "cluster address learned from a DNS seed");
                    }
                }
            }
        }
        Ok(())
    }
}
