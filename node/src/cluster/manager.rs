//! The cluster manager: this node's membership. It dials seeds and every peer it learns of
//! (forever, with backoff), sends heartbeats to every peer's endpoint twice a second, keeps the
//! [`View`](super::view::View), marks peers `down` on silence or a closed link, and stops the
//! ractor_cluster session of a down peer so a restarted peer (new incarnation) is admitted at
//! once.
//!
//! It never touches rooms or connections; it owns the view and the dial schedule only.
//!
//! This module is the actor shell: it holds the sessions (ractor_cluster's actors), sends
//! heartbeats, dials, resolves seeds, stops sessions, publishes placement and agreement, counts
//! and logs. What membership decides (view transitions, failure detection, refusals, the dial
//! schedule, joining, owning rooms) is the pure [`state::MembershipState`], which this shell may
//! not bypass.

pub mod state;

use super::events::SessionEvent;
use super::view::{Change, PeerState};
use super::GROUP;
use crate::ids::now_micros;
use crate::lifecycle::{Lifecycle, NodeState};
use crate::wire::endpoint::{EndpointMessage, Heartbeat};
use crate::wire::protocol_version;
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::NodeSessionMessage;
pub use state::TICK;
use state::{Heard, JoinVerdict, MembershipState, Ownership};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A dial that has not authenticated by then is abandoned.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

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

/// The manager's state: the pure [`MembershipState`] and the sessions the actor acts on.
pub struct ManagerState {
    args: ManagerArgs,
    m: MembershipState,
    /// Outgoing sessions not yet authenticated: actor id → (session, opened at, address).
    pending: HashMap<ActorId, (ActorRef<NodeSessionMessage>, Instant, String)>,
    /// Full names of authenticated sessions by session actor id.
    sessions: HashMap<ActorId, (ActorRef<NodeSessionMessage>, String)>,
    /// Rate limit of the "closed before authenticating" line.
    unauth_log: super::log_limit::LogLimit,
    /// The transport label (`peer_addr`) of every open session, for its counters.
    labels: HashMap<ActorId, String>,
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
        let members = self.m.gossip(self.my_state());
        for (id, cell) in remote_endpoints() {
            let Some((name, _)) = id.rsplit_once('#') else {
                continue;
            };
            let (echo_us, hold_us) = self.m.echo(name, now);
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
        let change = match self.m.on_heartbeat(&hb, now, now_micros()) {
            Heard::Refused {
                version,
                first,
                tell,
            } => {
                if first {
                    tracing::error!(
                        peer = %hb.name,
                        peer_version = version,
                        our_version = protocol_version(),
                        "refusing cluster peer: it speaks another cluster protocol version"
                    );
                }
                // Tell it our version first (a heartbeat), so it logs the refusal too; the link
                // is closed on a later tick.
                if tell {
                    self.send_heartbeats();
                }
                return;
            }
            Heard::Ignored => return,
            Heard::Accepted {
                change,
                state_changed,
            } => {
                if state_changed {
                    // A peer's state changed (it turned active, say): placement follows at
                    // once, and the peer hears at once that we see it so (it owns rooms only
                    // then).
                    self.publish_active();
                    self.send_heartbeats();
                }
                change
            }
        };
        match change {
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
            Change::Refreshed | Change::Incompatible(_) | Change::Ignored => {}
        }
        self.m.learn(&hb, now);
    }

    /// Peers whose link closed and did not come back within [`state::LINK_GRACE`] are down.
    fn settle_suspects(&mut self) {
        let sessions = &self.sessions;
        let has_link = |name: &str, inc: &str| {
            let prefix = format!("{name}#{inc}@");
            sessions.values().any(|(_, f)| f.starts_with(&prefix))
        };
        for p in self.m.settle_suspects(Instant::now(), has_link) {
            tracing::warn!(peer = %p.name, "cluster peer down: link closed");
            crate::events::emit(crate::events::Event::PeerDown {
                node: p.name.clone(),
                reason: "link closed".into(),
            });
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
        for p in self.m.expire(Instant::now()) {
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

    /// Logs a link that closed before authenticating as a likely wrong cookie, unless its peer
    /// came up meanwhile (a duplicate link closed by the session election).
    fn judge_unauthenticated(&mut self) {
        for (who, peer_addr) in self.m.unauthenticated_due(Instant::now()) {
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

    /// Dials what [`MembershipState::dials`] says is due, each off the actor.
    fn reconcile(&mut self) {
        let pending = self.pending.values().map(|(_, _, a)| a.as_str());
        let jitter = || Duration::from_millis(rand::random::<u64>() % 250);
        for addr in self.m.dials(Instant::now(), pending, jitter) {
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
        match self.m.join_verdict(self.my_state(), Instant::now()) {
            JoinVerdict::Wait => return,
            JoinVerdict::ActiveAlone => {
                tracing::warn!(seeds = ?self.args.seeds, "no seed answered; serving alone until peers appear");
            }
            JoinVerdict::Active => {}
        }
        self.args.lifecycle.set(NodeState::Active);
    }

    /// Exports each peer's state and round trip.
    fn export_metrics(&self) {
        for p in self.m.view().peers() {
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
        for p in self.m.view().peers() {
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
    /// room placement, as [`MembershipState::owners`] decides.
    fn publish_active(&mut self) {
        let owners = self.m.owners(self.my_state(), Instant::now());
        match owners.began {
            Some(Ownership::Deadline { after }) => {
                tracing::warn!(
                    "not every live peer reports this node active after {:?}; owning rooms anyway",
                    state::OWN_DEADLINE
                );
                tracing::info!(
                    after_ms = after.as_millis() as u64,
                    "every live peer counts this node active: it owns rooms"
                );
            }
            Some(Ownership::SeenActiveByAll { after }) => {
                tracing::info!(
                    after_ms = after.as_millis() as u64,
                    "every live peer counts this node active: it owns rooms"
                );
            }
            None => {}
        }
        let names = owners.active;
        if self.args.members.set(names.clone(), owners.live) {
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
                    let name = parse_node_name(&peer).map(|(n, _)| n);
                    if self.m.dial_answered(&addr, name.as_deref()) {
                        // A DNS seed that resolves to this node too: never a peer.
                        session.stop(Some("gatehouse: that address is this node".into()));
                        return;
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
                // What the closed link means is the membership's to decide (a suspect judged
                // a moment later, a duplicate, a refusal, or a link judged later because it
                // closed before authenticating).
                self.m
                    .on_link_closed(parsed, authenticated, peer_addr, Instant::now());
            }
        }
    }

    fn peers(&self) -> Vec<PeerInfo> {
        let endpoints: HashMap<String, ActorCell> = remote_endpoints().into_iter().collect();
        self.m
            .view()
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
        let m = MembershipState::new(
            &args.name,
            &args.incarnation,
            &args.addr,
            &args.seeds,
            Instant::now(),
        );
        Ok(ManagerState {
            args,
            m,
            pending: HashMap::new(),
            labels: HashMap::new(),
            sessions: HashMap::new(),
            unauth_log: super::log_limit::LogLimit::new(super::handshake::REFUSAL_LOG_EVERY),
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
                // Time this node did not run is not its peers' silence.
                if let Some(pause) = state.m.tick(Instant::now()) {
                    tracing::warn!(pause_ms = pause.as_millis() as u64, "this node did not run for a while; its peers' silence meanwhile does not count against them");
                }
                for (name, inc) in state.m.refusals_due(Instant::now()) {
                    state.stop_sessions_of(&name, &inc, "incompatible protocol version");
                }
                state.settle_suspects();
                state.judge_unauthenticated();
                state.expire();
                let due = state.m.schedule(state.my_state());
                if due.heartbeat {
                    state.send_heartbeats();
                }
                if due.resolve {
                    state.resolve_seeds(&myself);
                }
                if due.reconcile {
                    state.reconcile();
                }
                state.update_lifecycle();
                state.publish_active();
                state.args.agreement.set(state.m.agreed());
                state.export_metrics();
            }
            ClusterMessage::Heartbeat(hb) => {
                state.on_heartbeat(hb);
                state.args.agreement.set(state.m.agreed());
            }
            ClusterMessage::Session(e) => state.on_session(e),
            ClusterMessage::Peers(reply) => {
                let _ = reply.send(state.peers());
            }
            ClusterMessage::Resolved(addrs) => {
                for a in state.m.resolved(addrs) {
                    tracing::info!(addr = %a, "cluster address learned from a DNS seed");
                }
            }
        }
        Ok(())
    }
}
