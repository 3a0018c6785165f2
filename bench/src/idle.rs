//! `idle`: N joined, idle connections. Measures the connect rate (TCP + upgrade + `welcome`),
//! the join rate, and the node's RSS growth per connection once it is stable.

use crate::proto::Proto;
use crate::report::{r2, Latency};
use crate::setup::{self, ConnectOpts};
use crate::sys::{self, CpuMeter};
use crate::ws::Frame;
use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `idle`.
#[derive(Debug, Args)]
pub struct IdleArgs {
    /// What the server speaks.
    #[arg(long, value_enum, default_value_t = Proto::Gatehouse)]
    target: Proto,
    /// Server WebSocket URL, e.g. ws://127.0.0.1:8080/ws (the target's usual path when none)
    #[arg(long)]
    url: String,
    /// Connections to open (keep ≤ ~15 000 per process: the fd limit is 20 000).
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Rooms to spread them over (connection i joins room i mod R).
    #[arg(long, default_value_t = 100)]
    rooms: usize,
    /// Rooms each connection joins: connection i joins rooms (i·K + j) mod R for j < K, one
    /// round of joins per j (e.g. 1 000 connections × 100 rooms each over 100 000 rooms).
    #[arg(long, default_value_t = 1)]
    rooms_per_connection: usize,
    /// The node's process id: its VmRSS is read before and after.
    #[arg(long)]
    pid: Option<u32>,
    /// Connects (and joins) in flight at once.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// Source addresses to spread over, from 127.0.0.2 on.
    #[arg(long, default_value_t = 64)]
    source_ips: usize,
    /// Initial read buffer per client connection, bytes (grown on demand).
    #[arg(long, default_value_t = 1024)]
    read_buffer: usize,
    /// Longest wait for the node's RSS to become stable, seconds.
    #[arg(long, default_value_t = 30)]
    settle_max: u64,
    /// The node's Prometheus endpoint, for its heap (`gatehouse_heap_bytes`) beside its RSS
    /// (default with --target gatehouse: http://HOST/metrics of --url; "none" to skip).
    #[arg(long)]
    metrics: Option<String>,
    /// Keep the connections open this many more seconds after measuring.
    #[arg(long, default_value_t = 0)]
    hold: u64,
}

/// Figures of one `idle` run.
#[derive(Debug, Serialize)]
pub struct IdleReport {
    mode: &'static str,
    target: Proto,
    url: String,
    connections_requested: usize,
    rooms: usize,
    rooms_per_connection: usize,
    joins: usize,
    connected: usize,
    connect_failed: usize,
    connect_first_error: Option<String>,
    connect_secs: f64,
    connects_per_s: f64,
    connect_latency: Latency,
    joined: usize,
    join_failed: usize,
    join_first_error: Option<String>,
    join_secs: f64,
    joins_per_s: f64,
    node_rss_before_kib: Option<u64>,
    node_rss_connected_kib: Option<u64>,
    node_rss_after_kib: Option<u64>,
    node_rss_per_conn_kib: Option<f64>,
    node_rss_per_conn_unjoined_kib: Option<f64>,
    /// The node's heap in use (`gatehouse_heap_bytes`) at the same three moments, KiB.
    node_heap_before_kib: Option<u64>,
    node_heap_connected_kib: Option<u64>,
    node_heap_after_kib: Option<u64>,
    /// Heap growth per joined connection, KiB (RSS minus heap: the allocator's free space).
    node_heap_per_conn_kib: Option<f64>,
    node_heap_per_conn_unjoined_kib: Option<f64>,
    rooms_with_several_epochs: usize,
    room_owners_seen: usize,
    rss_stable: bool,
    settle_secs: f64,
    closed_by_server: usize,
    node_cpu_connect_pct: Option<f64>,
    generator_cpu_connect_pct: f64,
    generator_cpu_per_core_pct: f64,
    generator_cores: usize,
    generator_saturated: bool,
    generator_rss_kib: u64,
    unix_time: u64,
}

/// Polls the node's RSS every 500 ms until the last 5 samples (2 s) lie within
/// max(64 KiB, 0.2 %) of each other, or `max` runs out. Returns (RSS, stable, waited).
async fn stable_rss(pid: u32, max: Duration) -> Result<(u64, bool, Duration)> {
    let t0 = Instant::now();
    let mut window: Vec<u64> = Vec::new();
    loop {
        let v = sys::rss_kib(pid)?;
        window.push(v);
        if window.len() > 5 {
            window.remove(0);
        }
        if window.len() == 5 {
            let lo = window.iter().copied().min().unwrap_or(v);
            let hi = window.iter().copied().max().unwrap_or(v);
            if hi - lo <= (v / 500).max(64) {
                return Ok((v, true, t0.elapsed()));
            }
        }
        if t0.elapsed() >= max {
            return Ok((v, false, t0.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The node's heap in use, KiB (`gatehouse_heap_bytes` at `url`), if it reports one.
async fn heap_kib(url: Option<&str>) -> Option<u64> {
    let url = url?;
    match crate::load::scrape_metric(url, "gatehouse_heap_bytes").await {
        Ok(v) if v > 0.0 => Some((v / 1024.0) as u64),
        Ok(_) => None,
        Err(e) => {
            eprintln!("idle: heap not read: {e:#}");
            None
        }
    }
}

/// (after − before) / n, KiB, to two decimals.
fn per_kib(before: Option<u64>, after: Option<u64>, n: usize) -> Option<f64> {
    match (before, after) {
        (Some(b), Some(a)) if n > 0 => Some(r2((a as f64 - b as f64) / n as f64)),
        _ => None,
    }
}

/// Runs `idle`.
pub async fn run(a: IdleArgs, threads: usize) -> Result<IdleReport> {
    if a.connections == 0 || a.rooms == 0 {
        bail!("--connections and --rooms must be positive");
    }
    let opts = Arc::new(ConnectOpts {
        targets: vec![a.target.target(&a.url)?],
        proto: a.target,
        source_ips: a.source_ips,
        read_buffer: a.read_buffer,
        timeout: Duration::from_secs(20),
    });
    let metrics = match a.metrics.as_deref() {
        Some("none") => None,
        Some(u) => Some(u.to_owned()),
        None if a.target == Proto::Gatehouse => {
            Some(format!("http://{}/metrics", opts.targets[0].host))
        }
        None => None,
    };
    let rss_before = match a.pid {
        Some(pid) => Some(stable_rss(pid, Duration::from_secs(5)).await?.0),
        None => None,
    };
    let heap_before = heap_kib(metrics.as_deref()).await;
    let tag = setup::run_tag();

    eprintln!("idle: opening {} connections…", a.connections);
    let cpu = CpuMeter::start(a.pid);
    let opened = setup::open_many(opts.clone(), a.connections, a.concurrency).await;
    let (gen_cpu, node_cpu) = cpu.stop();
    let connected = opened.conns.iter().filter(|c| c.is_some()).count();
    let connect_secs = opened.elapsed.as_secs_f64();
    eprintln!(
        "idle: {connected} connected in {connect_secs:.2} s ({} failed)",
        opened.failed
    );

    // The node's RSS with connections only (not yet joined), to split the cost.
    let rss_connected = match a.pid {
        Some(pid) => Some(stable_rss(pid, Duration::from_secs(10)).await?.0),
        None => None,
    };
    let heap_connected = heap_kib(metrics.as_deref()).await;

    let rooms = a.rooms;
    let per = a.rooms_per_connection.max(1);
    let (mut joined, mut join_failed, mut join_first_error, mut join_elapsed) = setup::join_many(
        opened.conns,
        a.target,
        {
            let tag = tag.clone();
            move |i| format!("idle-{tag}-{}", (i * per) % rooms)
        },
        a.concurrency,
        opts.timeout,
    )
    .await;
    // Every further round joins each connection to its next room.
    let first_round: Vec<(usize, String)> = joined
        .iter()
        .map(|(i, _, j)| (*i, j.epoch.clone()))
        .collect();
    let mut joins_done = joined.len();
    for round in 1..per {
        let mut conns: Vec<Option<setup::Conn>> = (0..a.connections).map(|_| None).collect();
        for (i, c, _) in joined.drain(..) {
            conns[i] = Some(c);
        }
        let (j, f, e, el) = setup::join_many(
            conns,
            a.target,
            {
                let tag = tag.clone();
                move |i| format!("idle-{tag}-{}", (i * per + round) % rooms)
            },
            a.concurrency,
            opts.timeout,
        )
        .await;
        joins_done += j.len();
        join_failed += f;
        if join_first_error.is_none() {
            join_first_error = e;
        }
        join_elapsed += el;
        joined = j;
    }
    eprintln!(
        "idle: {} connections joined {joins_done} rooms in {:.2} s",
        joined.len(),
        join_elapsed.as_secs_f64()
    );

    // One owner per room: every join of a room should answer the same epoch (checked on the
    // first round's joins).
    let mut epochs: std::collections::HashMap<usize, std::collections::HashSet<&str>> =
        std::collections::HashMap::new();
    for (i, epoch) in &first_round {
        epochs
            .entry((i * per) % rooms)
            .or_default()
            .insert(epoch.as_str());
    }
    let split_rooms = epochs.values().filter(|e| e.len() > 1).count();
    let room_owners: usize = epochs.values().map(std::collections::HashSet::len).sum();
    drop(epochs);
    if split_rooms > 0 {
        eprintln!(
            "idle: WARNING: {split_rooms} rooms answered joins with several epochs ({room_owners} owners for {} rooms)",
            rooms
        );
    }

    // Hold every connection with a reader that answers heartbeats and notes closes.
    let closed = Arc::new(AtomicUsize::new(0));
    let n_joined = joined.len();
    let mut holders = Vec::with_capacity(n_joined);
    for (_, mut c, _) in joined {
        let closed = closed.clone();
        let proto = a.target;
        holders.push(tokio::spawn(async move {
            loop {
                match c.rd.next().await {
                    Ok(Frame::Ping(r)) => {
                        let p = c.rd.slice(&r).to_vec();
                        if c.wr.pong(&p).await.is_err() {
                            break;
                        }
                    }
                    Ok(Frame::Text(r)) => {
                        if let Some(hb) = proto.heartbeat_reply(c.rd.slice(&r)) {
                            if c.wr.send_text(hb).await.is_err() {
                                break;
                            }
                        }
                    }
                    Ok(Frame::Close(_)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            closed.fetch_add(1, Ordering::Relaxed);
        }));
    }

    let (rss_after, rss_stable, settle) = match a.pid {
        Some(pid) => {
            eprintln!("idle: waiting for the node's RSS to settle…");
            let (v, s, d) = stable_rss(pid, Duration::from_secs(a.settle_max)).await?;
            (Some(v), s, d)
        }
        None => (None, false, Duration::ZERO),
    };
    let heap_after = heap_kib(metrics.as_deref()).await;
    if a.hold > 0 {
        tokio::time::sleep(Duration::from_secs(a.hold)).await;
    }
    let closed_by_server = closed.load(Ordering::Relaxed);
    for h in &holders {
        h.abort();
    }

    let unjoined = per_kib(rss_before, rss_connected, connected);
    let cores = threads.clamp(1, sys::allowed_cpus().max(1));
    let per_conn = per_kib(rss_before, rss_after, n_joined);
    Ok(IdleReport {
        mode: "idle",
        target: a.target,
        url: a.url,
        connections_requested: a.connections,
        rooms: a.rooms,
        rooms_per_connection: per,
        joins: joins_done,
        connected,
        connect_failed: opened.failed,
        connect_first_error: opened.first_error,
        connect_secs: r2(connect_secs),
        connects_per_s: r2(connected as f64 / connect_secs.max(1e-9)),
        connect_latency: Latency::of_durations(&opened.latencies),
        joined: n_joined,
        join_failed,
        join_first_error,
        join_secs: r2(join_elapsed.as_secs_f64()),
        joins_per_s: r2(joins_done as f64 / join_elapsed.as_secs_f64().max(1e-9)),
        node_rss_before_kib: rss_before,
        node_rss_connected_kib: rss_connected,
        node_rss_after_kib: rss_after,
        node_rss_per_conn_kib: per_conn,
        node_rss_per_conn_unjoined_kib: unjoined,
        node_heap_before_kib: heap_before,
        node_heap_connected_kib: heap_connected,
        node_heap_after_kib: heap_after,
        node_heap_per_conn_kib: per_kib(heap_before, heap_after, n_joined),
        node_heap_per_conn_unjoined_kib: per_kib(heap_before, heap_connected, connected),
        rooms_with_several_epochs: split_rooms,
        room_owners_seen: room_owners,
        rss_stable,
        settle_secs: r2(settle.as_secs_f64()),
        closed_by_server,
        node_cpu_connect_pct: node_cpu.map(r2),
        generator_cpu_connect_pct: r2(gen_cpu),
        generator_cpu_per_core_pct: r2(gen_cpu / cores as f64),
        generator_cores: cores,
        generator_saturated: gen_cpu / cores as f64 > 85.0,
        generator_rss_kib: sys::self_rss_kib(),
        unix_time: crate::report::unix_micros() / 1_000_000,
    })
}

impl IdleReport {
    /// Human-readable summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "idle: {} connections over {} rooms at {}",
            self.connections_requested, self.rooms, self.url
        );
        let _ = writeln!(
            s,
            "  connect: {} ok, {} failed in {:.2} s → {:.0} connections/s (incl. welcome); {}",
            self.connected,
            self.connect_failed,
            self.connect_secs,
            self.connects_per_s,
            self.connect_latency.line()
        );
        if let Some(e) = &self.connect_first_error {
            let _ = writeln!(s, "  first connect error: {e}");
        }
        let _ = writeln!(
            s,
            "  join: {} ok, {} failed in {:.2} s → {:.0} joins/s",
            self.joined, self.join_failed, self.join_secs, self.joins_per_s
        );
        if let Some(e) = &self.join_first_error {
            let _ = writeln!(s, "  first join error: {e}");
        }
        match (
            self.node_rss_before_kib,
            self.node_rss_after_kib,
            self.node_rss_per_conn_kib,
        ) {
            (Some(b), Some(af), Some(p)) => {
                let _ = writeln!(
                    s,
                    "  node RSS: {b} KiB → {af} KiB ({}, after {:.1} s) → {p:.2} KiB per joined connection",
                    if self.rss_stable { "stable" } else { "NOT stable" },
                    self.settle_secs
                );
            }
            _ => {
                let _ = writeln!(s, "  node RSS: not measured (pass --pid)");
            }
        }
        if let (Some(c), Some(u)) = (
            self.node_rss_connected_kib,
            self.node_rss_per_conn_unjoined_kib,
        ) {
            let _ = writeln!(
                s,
                "  of which connected, before joining: {c} KiB → {u:.2} KiB per connection"
            );
        }
        if let (Some(h), Some(u)) = (
            self.node_heap_per_conn_kib,
            self.node_heap_per_conn_unjoined_kib,
        ) {
            let _ = writeln!(
                s,
                "  node heap in use: {h:.2} KiB per joined connection ({u:.2} before joining)"
            );
        }
        if self.rooms_with_several_epochs > 0 {
            let _ = writeln!(
                s,
                "  WARNING: {} rooms answered joins with different epochs: {} room owners seen for {} rooms",
                self.rooms_with_several_epochs, self.room_owners_seen, self.rooms
            );
        }
        let _ = writeln!(
            s,
            "  closed by the server during the run: {}",
            self.closed_by_server
        );
        let _ = write!(
            s,
            "  CPU while connecting: generator {:.0} % of a core{}; generator RSS {} KiB",
            self.generator_cpu_connect_pct,
            self.node_cpu_connect_pct
                .map(|n| format!(", node {n:.0} %"))
                .unwrap_or_default(),
            self.generator_rss_kib
        );
        if self.generator_saturated {
            let _ = write!(
                s,
                "\n  WARNING: the generator used > 85 % of a core while connecting: the connect rate is a lower bound"
            );
        }
        s
    }
}
