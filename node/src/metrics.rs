//! Prometheus metrics of one node (`GET /metrics`), all named `gatehouse_*`.
//!
//! One [`Metrics`] value is created at start and shared by `Arc`; counters are atomics, so
//! recording never takes a lock. Hot paths count in bulk (the relay adds one publish's
//! deliveries at once) and latency is sampled, so metrics never cost a contended write per frame.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};

/// Label for counters split by a short reason or code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// The reason, e.g. `origin`, `4008`, `kick`.
    pub reason: String,
}

/// Label for per-peer metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabel {
    /// Peer's logical name.
    pub peer: String,
}

/// Every metric the node exports.
pub struct Metrics {
    registry: Registry,
    /// Open client connections.
    pub connections_active: Gauge,
    /// Client connections accepted since start.
    pub connections_total: Counter,
    /// Upgrades refused before the WebSocket opened, by reason.
    pub rejected_upgrades: Family<ReasonLabel, Counter>,
    /// Sockets accepted and not yet a client connection (head under way, plain HTTP).
    pub pending_sockets: Gauge,
    /// Such sockets dropped, by reason (`http::pending::Dropped`).
    pub pending_dropped: Family<ReasonLabel, Counter>,
    /// `accept` failures on the public listener, by errno name.
    pub accept_errors: Family<ReasonLabel, Counter>,
    /// Connections closed by the server, by close code.
    pub closes: Family<ReasonLabel, Counter>,
    /// Client frames received.
    pub messages_in: Counter,
    /// Frames written to clients.
    pub messages_out: Counter,
    /// Bytes received in client frames.
    pub bytes_in: Counter,
    /// Bytes of frames written to clients.
    pub bytes_out: Counter,
    /// Room actors alive on this node.
    pub rooms_active: Gauge,
    /// Bytes of room history, snapshots and replicas held on this node.
    pub room_memory_bytes: Gauge,
    /// Bytes the allocator has handed out (`memory::heap_bytes`), as of the last scrape.
    pub heap_bytes: Gauge,
    /// Rooms homed on this node that run on another (moved there), as last counted.
    pub room_directory_entries: Gauge,
    /// Messages dropped from history before their time, by reason (`room::budget::Eviction`).
    pub history_evictions: Family<ReasonLabel, Counter>,
    /// Rooms not created because the node held `rooms.max_rooms`.
    pub rooms_refused: Counter,
    /// Successful room joins.
    pub joins: Counter,
    /// Messages published into rooms owned here.
    pub publishes: Counter,
    /// Requests answered `rate_limited`.
    pub rate_limited: Counter,
    /// Connections closed with 4008 because their outbound queue overflowed.
    pub slow_consumer_closes: Counter,
    /// Error frames and failed replies sent, by code.
    pub client_errors: Family<ReasonLabel, Counter>,
    /// Publish (owner assigns seq) → frame handed to the client's socket, seconds (sampled).
    pub deliver_latency: Histogram,
    /// Webhook events waiting to be sent.
    pub webhook_queue: Gauge,
    /// Webhook events delivered.
    pub webhook_delivered: Counter,
    /// Webhook requests that failed (each attempt).
    pub webhook_failures: Counter,
    /// Webhook events dropped (buffer full or attempts exhausted).
    pub webhook_dropped: Counter,
    /// Admin API mutating calls, by action.
    pub admin_actions: Family<ReasonLabel, Counter>,
    /// Backend API calls, by endpoint.
    pub api_requests: Family<ReasonLabel, Counter>,
    /// Whether each cluster peer is up (1) or down (0).
    pub peer_up: Family<PeerLabel, Gauge>,
    /// Heartbeat round trip to each peer, seconds.
    pub peer_rtt: Family<PeerLabel, Gauge<f64, AtomicU64>>,
    /// Bytes waiting for each peer (the link's queue and the library's, `peer_queue`).
    pub peer_queued_bytes: Family<PeerLabel, Gauge>,
    /// The largest message this node's cluster links have written since it started.
    pub cluster_frame_max: Gauge,
    /// Links to each peer cut because the peer stopped reading, went silent, or was sent more
    /// than the outbound budget.
    pub peer_fenced: Family<PeerLabel, Counter>,
    /// Times each peer went down and came back, or restarted.
    pub peer_reconnects: Family<PeerLabel, Counter>,
    /// Incoming cluster links authenticating now (capped by `node.cluster_max_handshakes`).
    pub cluster_handshakes: Gauge,
    /// Handles held for actors on other nodes (a few per peer, never per room); set when
    /// scraped.
    pub cluster_remote_actors: Gauge,
    /// Cluster links closed before authenticating, by reason (`cluster::gate::Refusal`).
    pub cluster_handshakes_refused: Family<ReasonLabel, Counter>,
    /// Deliveries sent to other nodes' relays (one per node with members, per publish).
    pub cluster_deliveries: Counter,
    /// Times a room began holding deliveries back from a node whose link was over half its
    /// budget (`peer_queue`).
    pub cluster_held_back: Counter,
    /// Room migrations, by result (`ok`, `failed`).
    pub migrations: Family<ReasonLabel, Counter>,
    /// Two owners of one room met (after a partition healed) or a replica was not used because
    /// the cluster disagreed, by outcome (`yielded`, `same_epoch`, `replica_not_used`).
    pub room_conflicts: Family<ReasonLabel, Counter>,
    /// Drains started on this node.
    pub drains: Counter,
    /// Frames received per second over the last second (f64 bits), set by [`spawn_sampler`].
    pub rate_in: AtomicU64,
    /// Frames written per second over the last second (f64 bits).
    pub rate_out: AtomicU64,
}

/// Samples the message counters every second into per-second rates for the admin API.
pub fn spawn_sampler(m: std::sync::Arc<Metrics>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        let (mut last_in, mut last_out) = (m.messages_in.get(), m.messages_out.get());
        loop {
            tick.tick().await;
            let (i, o) = (m.messages_in.get(), m.messages_out.get());
            m.rate_in
                .store(((i - last_in) as f64).to_bits(), Ordering::Relaxed);
            m.rate_out
                .store(((o - last_out) as f64).to_bits(), Ordering::Relaxed);
            (last_in, last_out) = (i, o);
        }
    })
}

impl Metrics {
    /// Frames received per second, last second.
    pub fn in_per_s(&self) -> f64 {
        f64::from_bits(self.rate_in.load(Ordering::Relaxed))
    }

    /// Frames written per second, last second.
    pub fn out_per_s(&self) -> f64 {
        f64::from_bits(self.rate_out.load(Ordering::Relaxed))
    }
}

/// Resident set size of this process, bytes (from `/proc/self/status`).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// One delivery in this many has its latency recorded.
pub const LATENCY_SAMPLE: u64 = 8;

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("gatehouse");
        let m = Self {
            connections_active: Gauge::default(),
            connections_total: Counter::default(),
            rejected_upgrades: Family::default(),
            pending_sockets: Gauge::default(),
            pending_dropped: Family::default(),
            accept_errors: Family::default(),
            closes: Family::default(),
            messages_in: Counter::default(),
            messages_out: Counter::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            rooms_active: Gauge::default(),
            room_memory_bytes: Gauge::default(),
            heap_bytes: Gauge::default(),
            room_directory_entries: Gauge::default(),
            history_evictions: Family::default(),
            rooms_refused: Counter::default(),
            joins: Counter::default(),
            publishes: Counter::default(),
            rate_limited: Counter::default(),
            slow_consumer_closes: Counter::default(),
            client_errors: Family::default(),
            deliver_latency: Histogram::new(exponential_buckets(0.000_05, 2.0, 18)),
            webhook_queue: Gauge::default(),
            webhook_delivered: Counter::default(),
            webhook_failures: Counter::default(),
            webhook_dropped: Counter::default(),
            admin_actions: Family::default(),
            api_requests: Family::default(),
            peer_up: Family::default(),
            peer_rtt: Family::default(),
            peer_queued_bytes: Family::default(),
            cluster_frame_max: Gauge::default(),
            peer_fenced: Family::default(),
            peer_reconnects: Family::default(),
            cluster_handshakes: Gauge::default(),
            cluster_remote_actors: Gauge::default(),
            cluster_handshakes_refused: Family::default(),
            cluster_deliveries: Counter::default(),
            cluster_held_back: Counter::default(),
            migrations: Family::default(),
            room_conflicts: Family::default(),
            drains: Counter::default(),
            rate_in: AtomicU64::new(0),
            rate_out: AtomicU64::new(0),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "connections_active",
            "Open client connections",
            m.connections_active.clone(),
        );
        r.register(
            "connections",
            "Client connections accepted",
            m.connections_total.clone(),
        );
        r.register(
            "rejected_upgrades",
            "WebSocket upgrades refused before opening, by reason",
            m.rejected_upgrades.clone(),
        );
        r.register(
            "pending_sockets",
            "Sockets accepted that are not client connections yet (head under way, plain HTTP)",
            m.pending_sockets.clone(),
        );
        r.register(
            "pending_sockets_dropped",
            "Sockets dropped before admission, by reason (evicted, node_full, per_ip, deadline, bad_proxy_header)",
            m.pending_dropped.clone(),
        );
        r.register(
            "accept_errors",
            "accept() failures on the public listener, by errno",
            m.accept_errors.clone(),
        );
        r.register(
            "closes",
            "Connections closed by the server, by close code",
            m.closes.clone(),
        );
        r.register(
            "messages_in",
            "Client frames received",
            m.messages_in.clone(),
        );
        r.register(
            "messages_out",
            "Frames written to clients",
            m.messages_out.clone(),
        );
        r.register(
            "bytes_in",
            "Bytes received in client frames",
            m.bytes_in.clone(),
        );
        r.register(
            "bytes_out",
            "Bytes of frames written to clients",
            m.bytes_out.clone(),
        );
        r.register(
            "rooms_active",
            "Room actors alive on this node",
            m.rooms_active.clone(),
        );
        r.register(
            "room_memory_bytes",
            "Bytes of room history, snapshots and replicas held on this node",
            m.room_memory_bytes.clone(),
        );
        r.register(
            "heap_bytes",
            "Bytes of heap in use (glibc mallinfo2: chunks in use plus blocks mapped on their own), read at each scrape",
            m.heap_bytes.clone(),
        );
        r.register(
            "history_evictions",
            "Messages dropped from history before their time, by reason (room_bytes, node_budget, idle_pressure)",
            m.history_evictions.clone(),
        );
        r.register(
            "rooms_refused",
            "Rooms not created because the node held rooms.max_rooms",
            m.rooms_refused.clone(),
        );
        r.register("joins", "Successful room joins", m.joins.clone());
        r.register(
            "publishes",
            "Messages published into rooms owned here",
            m.publishes.clone(),
        );
        r.register(
            "rate_limited",
            "Requests answered rate_limited",
            m.rate_limited.clone(),
        );
        r.register(
            "slow_consumer_closes",
            "Connections closed with 4008 (outbound queue overflow)",
            m.slow_consumer_closes.clone(),
        );
        r.register(
            "client_errors",
            "Error frames and failed replies sent to clients, by code",
            m.client_errors.clone(),
        );
        r.register(
            "publish_deliver_latency_seconds",
            "Publish to hand-off to the client socket (sampled)",
            m.deliver_latency.clone(),
        );
        r.register(
            "webhook_queue",
            "Webhook events waiting to be sent",
            m.webhook_queue.clone(),
        );
        r.register(
            "webhook_delivered",
            "Webhook events delivered",
            m.webhook_delivered.clone(),
        );
        r.register(
            "webhook_failures",
            "Webhook request attempts that failed",
            m.webhook_failures.clone(),
        );
        r.register(
            "webhook_dropped",
            "Webhook events dropped",
            m.webhook_dropped.clone(),
        );
        r.register(
            "admin_actions",
            "Admin API mutating calls, by action",
            m.admin_actions.clone(),
        );
        r.register(
            "api_requests",
            "Backend API calls, by endpoint",
            m.api_requests.clone(),
        );
        r.register(
            "cluster_peer_up",
            "Whether each cluster peer is up",
            m.peer_up.clone(),
        );
        r.register(
            "cluster_peer_rtt_seconds",
            "Heartbeat round trip to each peer",
            m.peer_rtt.clone(),
        );
        r.register(
            "cluster_peer_queued_bytes",
            "Bytes waiting to be written to each peer",
            m.peer_queued_bytes.clone(),
        );
        r.register(
            "cluster_frame_bytes_max",
            "The largest message this node's cluster links have written since it started",
            m.cluster_frame_max.clone(),
        );
        r.register(
            "cluster_peer_fenced",
            "Links to a peer cut because it stopped reading, went silent or exceeded the outbound budget",
            m.peer_fenced.clone(),
        );
        r.register(
            "cluster_peer_reconnects",
            "Times each peer went down and came back, or restarted",
            m.peer_reconnects.clone(),
        );
        r.register(
            "cluster_handshakes",
            "Incoming cluster links authenticating now",
            m.cluster_handshakes.clone(),
        );
        r.register(
            "cluster_handshakes_refused",
            "Cluster links closed before authenticating, by reason",
            m.cluster_handshakes_refused.clone(),
        );
        r.register(
            "cluster_deliveries_sent",
            "Room deliveries sent to other nodes (one per node with members per publish)",
            m.cluster_deliveries.clone(),
        );
        r.register(
            "cluster_deliveries_held_back",
            "Times a room began holding deliveries back from a node whose link was over half its budget",
            m.cluster_held_back.clone(),
        );
        r.register(
            "cluster_remote_actors",
            "Handles this node holds for actors on other nodes (a few per peer, never per room)",
            m.cluster_remote_actors.clone(),
        );
        r.register(
            "room_directory_entries",
            "Rooms homed on this node that run on another node (moved there)",
            m.room_directory_entries.clone(),
        );
        r.register(
            "room_migrations",
            "Room migrations, by result",
            m.migrations.clone(),
        );
        r.register(
            "room_conflicts",
            "Room ownership conflicts resolved (two owners after a partition, replicas not used)",
            m.room_conflicts.clone(),
        );
        r.register("drains", "Drains started on this node", m.drains.clone());
        Self { registry, ..m }
    }

    /// Counts one event under `family` with label `reason`.
    pub fn count(family: &Family<ReasonLabel, Counter>, reason: &str) {
        family
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Renders the Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
