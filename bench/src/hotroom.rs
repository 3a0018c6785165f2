//! `hotroom`: N connections into ONE room, as a live event or a reconnect storm brings them.
//! Connection `i` connects, waits for the server's ready frame (Gatehouse: `welcome`), joins
//! the shared room (peers: subscribe) and is *ready* once the join is answered; at most
//! `--concurrency` connections are between their connect and their join reply at once. Every
//! joined connection stays open and keeps reading (answering heartbeats), as a member would.
//!
//! Figures: ready connections per second (first connect to last join reply), the
//! connect-to-joined latency per connection (p50/p99/max) and its join part alone, the node's
//! CPU while they come. With `--presence` (Gatehouse), each join asks for presence events, and
//! the presence frames and events every member receives are counted until they stop: a join
//! costs each member already there one event, and the node may batch events per frame.

use crate::proto::Proto;
use crate::report::{r2, Latency};
use crate::setup::{self, ConnectOpts};
use crate::sys::{self, CpuMeter};
use crate::ws::Frame;
use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// Arguments of `hotroom`.
#[derive(Debug, Args)]
pub struct HotRoomArgs {
    /// What the server speaks.
    #[arg(long, value_enum, default_value_t = Proto::Gatehouse)]
    target: Proto,
    /// Server WebSocket URL, e.g. ws://127.0.0.1:8080/ws (the target's usual path when none)
    #[arg(long)]
    url: String,
    /// Connections to bring into the room (keep ≤ ~15 000 per process: the fd limit is 20 000).
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Connections between their connect and their join reply at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// The room (default: one unique to this run).
    #[arg(long)]
    room: Option<String>,
    /// Join with `presence: true` and count the presence events members receive (Gatehouse).
    #[arg(long)]
    presence: bool,
    /// With --presence: ask for batched events (`presence_batch: true`, one frame per tick).
    #[arg(long, requires = "presence")]
    presence_batch: bool,
    /// The node's process id: its CPU time is read while connections come.
    #[arg(long)]
    pid: Option<u32>,
    /// Source addresses to spread over, from 127.0.0.2 on.
    #[arg(long, default_value_t = 64)]
    source_ips: usize,
    /// Initial read buffer per client connection, bytes (grown on demand).
    #[arg(long, default_value_t = 1024)]
    read_buffer: usize,
    /// With --presence: the longest wait for presence events to stop, seconds.
    #[arg(long, default_value_t = 60)]
    settle_max: u64,
}

/// Figures of one `hotroom` run.
#[derive(Debug, Serialize)]
pub struct HotRoomReport {
    mode: &'static str,
    target: Proto,
    url: String,
    room: String,
    presence: bool,
    presence_batch: bool,
    connections_requested: usize,
    concurrency: usize,
    joined: usize,
    failed: usize,
    first_error: Option<String>,
    /// First connect to last join reply.
    secs: f64,
    joined_per_s: f64,
    /// Connect (TCP, upgrade, ready frame) + join reply, per connection.
    connect_to_joined: Latency,
    /// The join request to its reply alone.
    join_only: Latency,
    /// Members the server closed while the others came.
    closed_by_server: usize,
    /// With --presence: presence frames and the events in them, all members together.
    presence_frames: u64,
    presence_events: u64,
    /// Events a member would get if each join were announced to every member already there.
    presence_events_one_per_join: u64,
    /// The most presence frames one member received.
    presence_frames_max_per_member: u64,
    /// From the last join reply until presence events stopped (1 s without one).
    presence_settle_secs: f64,
    node_cpu_pct: Option<f64>,
    /// The node's user CPU time per joined connection while they connected and joined, µs.
    node_user_us_per_joined: Option<f64>,
    /// The node's system (kernel) CPU time per joined connection, the same window, µs.
    node_system_us_per_joined: Option<f64>,
    generator_cpu_pct: f64,
    generator_cpu_per_core_pct: f64,
    generator_saturated: bool,
    generator_rss_kib: u64,
    unix_time: u64,
}

/// Presence counts of all members, and the time of the last presence frame (µs since start).
#[derive(Default)]
struct PresenceCounts {
    frames: AtomicU64,
    events: AtomicU64,
    max_frames: AtomicU64,
    last_us: AtomicU64,
}

/// The join request: the protocol's, with `presence: true` when asked (Gatehouse).
fn join_request(proto: Proto, room: &str, presence: bool, batch: bool) -> String {
    match (proto, presence, batch) {
        (Proto::Gatehouse, true, true) => {
            format!(r#"{{"id":1,"op":"join","room":"{room}","presence_batch":true}}"#)
        }
        (Proto::Gatehouse, true, false) => {
            format!(r#"{{"id":1,"op":"join","room":"{room}","presence":true}}"#)
        }
        _ => proto.join_frame(room, 1),
    }
}

/// Events in one presence frame (a frame may carry one event or a batch of them).
fn presence_events(frame: &[u8]) -> Option<u64> {
    if !frame.starts_with(br#"{"op":"presence_"#) {
        return None;
    }
    let n = frame.windows(9).filter(|w| w == br#""client":"#).count() as u64;
    Some(n.max(1))
}

pub async fn run(a: HotRoomArgs, threads: usize) -> Result<HotRoomReport> {
    if a.connections == 0 || a.concurrency == 0 {
        bail!("--connections and --concurrency must be positive");
    }
    if a.presence && a.target != Proto::Gatehouse {
        bail!("--presence needs --target gatehouse (the peers have no presence events)");
    }
    let opts = Arc::new(ConnectOpts {
        targets: vec![a.target.target(&a.url)?],
        proto: a.target,
        source_ips: a.source_ips,
        read_buffer: a.read_buffer,
        timeout: Duration::from_secs(30),
    });
    let room = a
        .room
        .clone()
        .unwrap_or_else(|| format!("hot-{}", setup::run_tag()));
    let req = Arc::new(join_request(a.target, &room, a.presence, a.presence_batch));
    let sem = Arc::new(Semaphore::new(a.concurrency));
    let counts = Arc::new(PresenceCounts::default());
    let closed = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, mut done_rx) =
        tokio::sync::mpsc::unbounded_channel::<Result<(Duration, Duration), String>>();

    eprintln!(
        "hotroom: bringing {} connections into {room} ({} in flight{})…",
        a.connections,
        a.concurrency,
        match (a.presence, a.presence_batch) {
            (true, true) => ", presence batched",
            (true, false) => ", presence on",
            _ => "",
        }
    );
    let cpu = CpuMeter::start(a.pid);
    let t0 = Instant::now();
    let mut set = JoinSet::new();
    for i in 0..a.connections {
        let (opts, req, sem, counts, closed, done_tx) = (
            opts.clone(),
            req.clone(),
            sem.clone(),
            counts.clone(),
            closed.clone(),
            done_tx.clone(),
        );
        let mut stop = stop_rx.clone();
        let proto = a.target;
        set.spawn(async move {
            let permit = sem.acquire_owned().await;
            let start = Instant::now();
            let mut c = match setup::open(&opts, i).await {
                Ok(c) => c,
                Err(e) => {
                    let _ = done_tx.send(Err(format!("{e:#}")));
                    return;
                }
            };
            let asked = Instant::now();
            if let Err(e) = setup::join_with(&mut c, proto, &req, 1, opts.timeout).await {
                let _ = done_tx.send(Err(format!("{e:#}")));
                return;
            }
            let now = Instant::now();
            let _ = done_tx.send(Ok((now - start, now - asked)));
            // The count of outcomes ends when every connection has sent its own.
            drop(done_tx);
            drop(permit);
            // A member: reads everything, answers heartbeats, counts presence.
            let mut mine = 0u64;
            loop {
                let frame = tokio::select! {
                    f = c.rd.next() => f,
                    _ = stop.changed() => break,
                };
                match frame {
                    Ok(Frame::Ping(r)) => {
                        let p = c.rd.slice(&r).to_vec();
                        if c.wr.pong(&p).await.is_err() {
                            break;
                        }
                    }
                    Ok(Frame::Text(r)) => {
                        let t = c.rd.slice(&r);
                        if let Some(n) = presence_events(t) {
                            mine += 1;
                            counts.frames.fetch_add(1, Ordering::Relaxed);
                            counts.events.fetch_add(n, Ordering::Relaxed);
                            counts.max_frames.fetch_max(mine, Ordering::Relaxed);
                            counts
                                .last_us
                                .fetch_max(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
                        } else if let Some(hb) = proto.heartbeat_reply(t) {
                            let hb = hb.to_vec();
                            if c.wr.send_text(&hb).await.is_err() {
                                break;
                            }
                        }
                    }
                    Ok(Frame::Close(_)) | Err(_) => {
                        closed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Ok(_) => {}
                }
            }
        });
    }
    drop(done_tx);

    let mut total = Vec::with_capacity(a.connections);
    let mut join_only = Vec::with_capacity(a.connections);
    let mut failed = 0;
    let mut first_error = None;
    let mut last_joined = t0;
    while let Some(r) = done_rx.recv().await {
        match r {
            Ok((t, j)) => {
                total.push(t);
                join_only.push(j);
                last_joined = Instant::now();
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let used = cpu.stop_use();
    let (gen_cpu, node_cpu) = (used.own_pct, used.node_pct);
    let secs = (last_joined - t0).as_secs_f64();
    let joined = total.len();
    eprintln!("hotroom: {joined} joined in {secs:.2} s ({failed} failed)");

    // With presence: wait until events stop (1 s without one), within --settle-max.
    let mut settle = Duration::ZERO;
    if a.presence {
        let deadline = Instant::now() + Duration::from_secs(a.settle_max);
        loop {
            let last = Duration::from_micros(counts.last_us.load(Ordering::Relaxed));
            let since_last = t0.elapsed().saturating_sub(last);
            if since_last >= Duration::from_secs(1) || Instant::now() >= deadline {
                settle = (t0 + last).saturating_duration_since(last_joined);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let _ = stop_tx.send(true);
    let closed_by_server = closed.load(Ordering::Relaxed);
    set.abort_all();

    let cores = threads.clamp(1, sys::allowed_cpus().max(1));
    let n = joined as u64;
    Ok(HotRoomReport {
        mode: "hotroom",
        target: a.target,
        url: a.url,
        room,
        presence: a.presence,
        presence_batch: a.presence_batch,
        connections_requested: a.connections,
        concurrency: a.concurrency,
        joined,
        failed,
        first_error,
        secs: r2(secs),
        joined_per_s: r2(joined as f64 / secs.max(1e-9)),
        connect_to_joined: Latency::of_durations(&total),
        join_only: Latency::of_durations(&join_only),
        closed_by_server,
        presence_frames: counts.frames.load(Ordering::Relaxed),
        presence_events: counts.events.load(Ordering::Relaxed),
        presence_events_one_per_join: if a.presence {
            n * n.saturating_sub(1) / 2
        } else {
            0
        },
        presence_frames_max_per_member: counts.max_frames.load(Ordering::Relaxed),
        presence_settle_secs: r2(settle.as_secs_f64()),
        node_cpu_pct: node_cpu.map(r2),
        node_user_us_per_joined: per_joined_us(used.node_times.map(|t| t.0), n),
        node_system_us_per_joined: per_joined_us(used.node_times.map(|t| t.1), n),
        generator_cpu_pct: r2(gen_cpu),
        generator_cpu_per_core_pct: r2(gen_cpu / cores as f64),
        generator_saturated: gen_cpu / cores as f64 > 85.0,
        generator_rss_kib: sys::self_rss_kib(),
        unix_time: crate::report::unix_micros() / 1_000_000,
    })
}

impl HotRoomReport {
    /// A human-readable summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "hotroom {:?} {}: {} of {} joined {} in {:.2} s = {:.0} joined/s ({} in flight), {} failed{}",
            self.target,
            self.url,
            self.joined,
            self.connections_requested,
            self.room,
            self.secs,
            self.joined_per_s,
            self.concurrency,
            self.failed,
            self.first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        );
        let l = &self.connect_to_joined;
        let j = &self.join_only;
        let _ = writeln!(
            s,
            "  connect→joined p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; join alone p50 {:.1} ms, p99 {:.1} ms",
            l.p50_ms, l.p99_ms, l.max_ms, j.p50_ms, j.p99_ms
        );
        if self.presence {
            let _ = writeln!(
                s,
                "  presence: {} frames, {} events (one per join to every member: {}), at most {} frames to one member, settled {:.2} s after the last join",
                self.presence_frames,
                self.presence_events,
                self.presence_events_one_per_join,
                self.presence_frames_max_per_member,
                self.presence_settle_secs
            );
        }
        let _ = write!(
            s,
            "  closed by server {}; node CPU {}{}; generator CPU {:.0} % ({:.0} % per core{})",
            self.closed_by_server,
            self.node_cpu_pct
                .map_or("n/a".to_owned(), |c| format!("{c:.0} %")),
            self.node_user_us_per_joined
                .zip(self.node_system_us_per_joined)
                .map_or(String::new(), |(u, s)| format!(
                    " ({u:.0} µs user + {s:.0} µs system per joined connection)"
                )),
            self.generator_cpu_pct,
            self.generator_cpu_per_core_pct,
            if self.generator_saturated {
                ", SATURATED"
            } else {
                ""
            }
        );
        s
    }
}

/// `t` per joined connection (`n`), µs, to two decimals.
fn per_joined_us(t: Option<std::time::Duration>, n: u64) -> Option<f64> {
    t.filter(|_| n > 0)
        .map(|t| r2(t.as_secs_f64() * 1e6 / n as f64))
}
