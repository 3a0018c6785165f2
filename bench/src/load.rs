//! `fanout`, `rooms` and `cluster`: R rooms × S subscribers, P publishers at a fixed total rate
//! (or, with `--saturate`, a rate raised step by step and then bisected), against any target
//! (`--target`, see [`crate::proto`]).
//!
//! - `fanout` is R = 1, P = 1: K subscribers in one room.
//! - `rooms` is chat-like load: subscriber `i` joins room `i mod R`; publisher `j` publishes
//!   round-robin to the rooms `r` with `r mod P = j` (so P ≤ R), the total rate split evenly.
//! - `cluster`: several `--url`s (the nodes of one cluster); subscriber `i` connects to node
//!   `i mod N`, publishers to the first. With Gatehouse, every node's `/metrics` is read before
//!   and after each phase: inter-node messages per publish =
//!   Δ Σ `gatehouse_cluster_deliveries_sent_total` / publishes.
//!
//! Every publish carries `{"t":<unix µs>,"n":<per-room counter>,"p":"xx…"}`. Subscribers read
//! `n` from every message (loss, gaps, order) and `t` from one message in `--sample-every`
//! (publish→receive latency, HDR histogram), straight from the frame bytes. Connections stay
//! open across phases; each phase publishes for `--warmup` + `--seconds`, measures over the
//! last `--seconds`, then waits (bounded) for the tail and counts what each subscriber missed.

use crate::proto::{self, Proto};
use crate::report::{self, r2, Latency};
use crate::setup::{self, Conn, ConnectOpts};
use crate::sys::{self, CpuMeter};
use crate::ws::{self, Frame, Reader, Writer};
use anyhow::{bail, Context as _, Result};
use clap::Args;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::MissedTickBehavior;

/// Arguments of `fanout`, `rooms` and `cluster`.
#[derive(Debug, Args, Clone)]
pub struct LoadArgs {
    /// What the server speaks.
    #[arg(long, value_enum, default_value_t = Proto::Gatehouse)]
    target: Proto,
    /// Server WebSocket URL (`ws://IP:PORT[/path]`; the target's usual path when none); give
    /// it several times for `cluster` (subscriber i uses URL i mod N, publishers the first).
    #[arg(long, required = true)]
    url: Vec<String>,
    /// Subscriber connections per room (the publishers are members too, not counted).
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    /// Rooms.
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Publisher connections (at most --rooms).
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// Total publish rate, messages per second (with --saturate: the first step's).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Measured window of each phase, seconds (after the warmup).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Warmup before each window, seconds (published, not measured).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Size of the `data` JSON value, bytes (at least 37).
    #[arg(long, default_value_t = 100)]
    payload: usize,
    /// A subscriber samples the latency of one message in this many (spread over subscribers).
    #[arg(long, default_value_t = 8)]
    sample_every: u64,
    /// Server process id(s): their CPU use over the window is reported (summed).
    #[arg(long)]
    pid: Vec<u32>,
    /// Connects (and joins) in flight at once.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// Source addresses to spread over, from 127.0.0.2 on.
    #[arg(long, default_value_t = 64)]
    source_ips: usize,
    /// Initial read buffer per subscriber, bytes.
    #[arg(long, default_value_t = 16384)]
    read_buffer: usize,
    /// Longest wait after a phase's last publish for the tail to arrive, seconds.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
    /// Room name prefix (a unique run tag and the room index follow).
    #[arg(long, default_value = "load")]
    room_prefix: String,
    /// Saturation mode: raise the rate by --step-factor per phase until a phase fails, then
    /// bisect; report the best passing phase (delivered 95–110 % of offered, no loss, no
    /// subscriber closed, p99 ≤ --max-p99-ms).
    #[arg(long)]
    saturate: bool,
    /// Rate factor between saturation steps.
    #[arg(long, default_value_t = 1.4)]
    step_factor: f64,
    /// Most saturation steps before bisecting.
    #[arg(long, default_value_t = 24)]
    max_steps: usize,
    /// Bisection phases after the first failing step.
    #[arg(long, default_value_t = 3)]
    bisect: usize,
    /// Highest p99 a passing saturation phase may have, ms.
    #[arg(long, default_value_t = 1000.0)]
    max_p99_ms: f64,
    /// Prometheus endpoints to read `gatehouse_cluster_deliveries_sent_total` from (default with
    /// --target gatehouse and several URLs: each URL's host with `/metrics`).
    #[arg(long)]
    metrics: Vec<String>,
}

/// What one subscriber has seen, published after each batch of frames.
#[derive(Default)]
struct SubSlot {
    received: AtomicU64,
    gaps: AtomicU64,
    out_of_order: AtomicU64,
    /// Close code (0 = open; 1 = error or end of stream without a close frame).
    closed: AtomicU64,
}

/// Shared by every task.
struct Shared {
    /// Room messages received by all subscribers.
    deliveries: AtomicU64,
    /// Latency samples count from messages with `t` at or after this (unix µs).
    measure_from_us: AtomicU64,
    hist: Mutex<Histogram<u64>>,
    /// Messages the publishers have written.
    sent: AtomicU64,
}

#[allow(clippy::too_many_arguments)]
async fn subscriber(
    mut rd: Reader,
    mut wr: Writer,
    proto: Proto,
    idx: u64,
    sample_every: u64,
    slot: Arc<SubSlot>,
    shared: Arc<Shared>,
) {
    let mut received = 0u64;
    // Next `n` expected (0 = nothing seen yet: the first message sets it).
    let mut next_n: Option<u64> = None;
    let mut gaps = 0u64;
    let mut ooo = 0u64;
    let mut samples: Vec<u64> = Vec::with_capacity(64);
    let mut pong: Option<Vec<u8>> = None;
    let mut text_pong: Option<&'static [u8]> = None;
    let mut now_us = 0u64;
    let close_code = loop {
        let before = received;
        let mut ended = None;
        loop {
            match rd.try_frame() {
                Ok(Some(Frame::Text(r))) => {
                    let p = rd.slice(&r);
                    if !proto.is_message(p) {
                        if let Some(hb) = proto.heartbeat_reply(p) {
                            text_pong = Some(hb);
                        }
                        continue;
                    }
                    let Some(at) = ws::find_at(p, proto::T_KEY) else {
                        continue;
                    };
                    let d = &p[at..];
                    let Some(n) = ws::find_u64(d, proto::N_KEY) else {
                        continue;
                    };
                    match next_n {
                        Some(e) if n < e => {
                            ooo += 1;
                            continue;
                        }
                        Some(e) => gaps += n - e,
                        None => {}
                    }
                    next_n = Some(n + 1);
                    received += 1;
                    if (n + idx) % sample_every == 0 {
                        if let Some(t) = ws::find_u64(d, proto::T_KEY) {
                            if now_us == 0 {
                                now_us = report::unix_micros();
                            }
                            if t >= shared.measure_from_us.load(Ordering::Relaxed) {
                                samples.push(now_us.saturating_sub(t));
                            }
                        }
                    }
                }
                Ok(Some(Frame::Ping(r))) => pong = Some(rd.slice(&r).to_vec()),
                Ok(Some(Frame::Close(code))) => {
                    ended = Some(u64::from(code));
                    break;
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    ended = Some(1);
                    break;
                }
            }
        }
        slot.received.store(received, Ordering::Relaxed);
        slot.gaps.store(gaps, Ordering::Relaxed);
        slot.out_of_order.store(ooo, Ordering::Relaxed);
        if received > before {
            shared
                .deliveries
                .fetch_add(received - before, Ordering::Relaxed);
        }
        if !samples.is_empty() {
            if let Ok(mut h) = shared.hist.lock() {
                for &s in &samples {
                    report::record(&mut h, s);
                }
            }
            samples.clear();
        }
        if let Some(code) = ended {
            break code;
        }
        if let Some(p) = pong.take() {
            if wr.pong(&p).await.is_err() {
                break 1;
            }
        }
        if let Some(p) = text_pong.take() {
            if wr.send_text(p).await.is_err() {
                break 1;
            }
        }
        match rd.fill().await {
            Ok(0) | Err(_) => break 1,
            Ok(_) => now_us = 0,
        }
    };
    slot.closed.store(close_code.max(1), Ordering::Relaxed);
}

/// A publisher connection and its rooms, kept across phases.
struct Publisher {
    conn: Conn,
    /// (room name, room index, next `n`).
    rooms: Vec<(String, usize, u64)>,
    /// Request ids continue across phases.
    next_id: u64,
}

/// What a publisher saw in one phase.
#[derive(Debug, Default)]
struct PubOutcome {
    sent: u64,
    /// Messages sent per room index.
    sent_per_room: BTreeMap<usize, u64>,
    acked: u64,
    errors: u64,
    first_error: Option<String>,
    own_received: u64,
    ack_hist: Option<Histogram<u64>>,
    closed: Option<String>,
}

async fn publish_phase(
    mut p: Publisher,
    proto: Proto,
    rate: f64,
    total: u64,
    payload: usize,
    shared: Arc<Shared>,
) -> (Publisher, PubOutcome) {
    let mut out = PubOutcome {
        ack_hist: proto.acks_publish().then(report::micros_histogram),
        ..PubOutcome::default()
    };
    let pad = "x".repeat(payload);
    let period = Duration::from_secs_f64((1.0 / rate).clamp(0.001, 1.0));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let first_id = p.next_id;
    let mut send_times: Vec<u64> = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let mut frame = String::with_capacity(payload + 80);
    let t0 = Instant::now();
    let mut done_deadline: Option<tokio::time::Instant> = None;
    let n_rooms = p.rooms.len().max(1) as u64;
    let finished = |out: &PubOutcome| {
        out.sent >= total
            && if proto.acks_publish() {
                out.acked + out.errors >= out.sent
            } else {
                out.own_received >= out.sent
            }
    };
    while !finished(&out) {
        tokio::select! {
            _ = tick.tick(), if out.sent < total => {
                let due = ((t0.elapsed().as_secs_f64() * rate) as u64 + 1).min(total);
                if due > out.sent {
                    let now = report::unix_micros();
                    let k = due - out.sent;
                    while out.sent < due {
                        let ri = usize::try_from(out.sent % n_rooms).unwrap_or(0);
                        let (room, idx, n) = &mut p.rooms[ri];
                        let pad = &pad[..proto::pad_len(payload, *n)];
                        proto.publish_frame(&mut frame, room, p.next_id, now, *n, pad);
                        *n += 1;
                        *out.sent_per_room.entry(*idx).or_insert(0) += 1;
                        p.conn.wr.push_text(frame.as_bytes());
                        send_times.push(now);
                        p.next_id += 1;
                        out.sent += 1;
                    }
                    if let Err(e) = p.conn.wr.flush().await {
                        out.closed = Some(format!("publisher write: {e:#}"));
                        break;
                    }
                    shared.sent.fetch_add(k, Ordering::Relaxed);
                    if out.sent >= total {
                        done_deadline = Some(tokio::time::Instant::now() + Duration::from_secs(10));
                    }
                }
            }
            () = async {
                match done_deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => {
                let waiting = if proto.acks_publish() {
                    format!("{} publishes unanswered", out.sent - out.acked - out.errors)
                } else {
                    format!("{} own copies missing", out.sent.saturating_sub(out.own_received))
                };
                out.closed = Some(format!("{waiting} 10 s after the last publish"));
                break;
            }
            r = p.conn.rd.fill() => {
                match r {
                    Ok(0) => { out.closed = Some("publisher: server closed the connection".into()); break; }
                    Err(e) => { out.closed = Some(format!("publisher read: {e:#}")); break; }
                    Ok(_) => {}
                }
                let now = report::unix_micros();
                let mut pong = None;
                let mut text_pong = None;
                loop {
                    match p.conn.rd.try_frame() {
                        Ok(Some(Frame::Text(r))) => {
                            let f = p.conn.rd.slice(&r);
                            if proto.is_message(f) {
                                out.own_received += 1;
                            } else if proto.is_reply(f) {
                                handle_reply(f, now, first_id, &send_times, &mut out);
                            } else if let Some(hb) = proto.heartbeat_reply(f) {
                                text_pong = Some(hb);
                            }
                        }
                        Ok(Some(Frame::Ping(r))) => pong = Some(p.conn.rd.slice(&r).to_vec()),
                        Ok(Some(Frame::Close(code))) => {
                            out.closed = Some(format!("publisher closed by the server with {code}"));
                            break;
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) => { out.closed = Some(format!("publisher: {e:#}")); break; }
                    }
                }
                if out.closed.is_some() {
                    break;
                }
                if let Some(f) = pong {
                    let _ = p.conn.wr.pong(&f).await;
                }
                if let Some(f) = text_pong {
                    let _ = p.conn.wr.send_text(f).await;
                }
            }
        }
    }
    (p, out)
}

fn handle_reply(f: &[u8], now: u64, first_id: u64, send_times: &[u64], out: &mut PubOutcome) {
    let id = ws::find_u64(f, br#""id":"#);
    if ws::find_at(f, br#""ok":true"#).is_some() {
        out.acked += 1;
        let sent = id
            .and_then(|i| i.checked_sub(first_id))
            .and_then(|i| send_times.get(usize::try_from(i).ok()?));
        if let (Some(h), Some(sent)) = (out.ack_hist.as_mut(), sent) {
            report::record(h, now.saturating_sub(*sent));
        }
    } else {
        out.errors += 1;
        if out.first_error.is_none() {
            out.first_error = Some(String::from_utf8_lossy(f).into_owned());
        }
    }
}

/// Figures of one phase (one publish rate).
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    target_rate: f64,
    offered_msgs_per_s: f64,
    expected_deliveries_per_s: f64,
    delivered_per_s: f64,
    delivered_ratio: f64,
    latency: Latency,
    publish_ack_latency: Option<Latency>,
    published: u64,
    publish_acked: u64,
    publish_errors: u64,
    publish_first_error: Option<String>,
    publisher_problem: Option<String>,
    expected_deliveries: u64,
    received_deliveries: u64,
    lost_deliveries: u64,
    loss_pct: f64,
    seq_gaps: u64,
    out_of_order: u64,
    /// Subscribers closed by the end of this phase (all phases so far).
    subscribers_closed: usize,
    close_codes: BTreeMap<u64, usize>,
    drain_secs: f64,
    generator_cpu_pct: f64,
    generator_cpu_per_core_pct: f64,
    generator_saturated: bool,
    node_cpu_pct: Option<f64>,
    /// Δ Σ gatehouse_cluster_deliveries_sent_total over the phase (cluster runs).
    cluster_deliveries_sent: Option<f64>,
    /// That divided by the publishes.
    inter_node_msgs_per_publish: Option<f64>,
    /// Saturation criterion met (95–110 % delivered, no loss, none closed, p99 bounded).
    passed: bool,
}

/// Figures of one run.
#[derive(Debug, Serialize)]
pub struct LoadReport {
    mode: &'static str,
    target: Proto,
    urls: Vec<String>,
    rooms: usize,
    subscribers_per_room: usize,
    subscribers: usize,
    publishers: usize,
    subscribers_joined: usize,
    connect_failed: usize,
    connect_first_error: Option<String>,
    connect_secs: f64,
    seconds: f64,
    warmup: f64,
    payload_bytes: usize,
    sample_every: u64,
    /// Most distinct epochs answered for one room (Gatehouse; 1 expected: one owner).
    join_epochs: usize,
    generator_cores: usize,
    saturate: bool,
    /// The reported phase: the only one, or with --saturate the best passing one (the first
    /// step when none passed).
    #[serde(flatten)]
    result: Phase,
    /// With --saturate: every phase in order.
    steps: Vec<Phase>,
    unix_time: u64,
}

/// Sums `gatehouse_cluster_deliveries_sent_total` (every label set) at a Prometheus endpoint
/// `http://IP:PORT/path`.
async fn scrape(url: &str) -> Result<f64> {
    scrape_metric(url, "gatehouse_cluster_deliveries_sent_total").await
}

/// Sums metric `name` (every label set) at a Prometheus endpoint `http://IP:PORT/path`.
pub async fn scrape_metric(url: &str, name: &str) -> Result<f64> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("metrics url must start with http:// ({url})"))?;
    let (host, path) = rest
        .find('/')
        .map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(host).await?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
            .await?;
        let mut body = Vec::new();
        s.read_to_end(&mut body).await?;
        anyhow::Ok(String::from_utf8_lossy(&body).into_owned())
    };
    let text = tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .with_context(|| format!("{url}: no answer within 5 s"))??;
    Ok(text
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
        })
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum())
}

async fn scrape_all(urls: &[String]) -> Option<f64> {
    if urls.is_empty() {
        return None;
    }
    let mut sum = 0.0;
    for u in urls {
        match scrape(u).await {
            Ok(v) => sum += v,
            Err(e) => {
                eprintln!("load: metrics: {e:#}");
                return None;
            }
        }
    }
    Some(sum)
}

struct Engine {
    a: LoadArgs,
    shared: Arc<Shared>,
    /// (slot, room index).
    slots: Vec<(Arc<SubSlot>, usize)>,
    subs_per_room: BTreeMap<usize, u64>,
    publishers: Vec<Publisher>,
    metrics: Vec<String>,
    cores: usize,
}

impl Engine {
    async fn phase(&mut self, rate: f64) -> Result<Phase> {
        let a = &self.a;
        let proto = a.target;
        if let Ok(mut h) = self.shared.hist.lock() {
            h.reset();
        }
        let warm_until = report::unix_micros() + (a.warmup * 1e6) as u64;
        self.shared
            .measure_from_us
            .store(warm_until, Ordering::Relaxed);
        let start_counts: Vec<u64> = self
            .slots
            .iter()
            .map(|(s, _)| s.received.load(Ordering::Relaxed))
            .collect();
        let gaps0: u64 = self
            .slots
            .iter()
            .map(|(s, _)| s.gaps.load(Ordering::Relaxed))
            .sum();
        let ooo0: u64 = self
            .slots
            .iter()
            .map(|(s, _)| s.out_of_order.load(Ordering::Relaxed))
            .sum();
        let m0 = scrape_all(&self.metrics).await;
        let d_start = self.shared.deliveries.load(Ordering::Relaxed);

        let n_pub = self.publishers.len();
        let per_pub = rate / n_pub as f64;
        let total = (per_pub * (a.warmup + a.seconds)).round().max(1.0) as u64;
        eprintln!(
            "load: phase at {rate:.1} msg/s ({} publisher(s), {total} messages each)…",
            n_pub
        );
        let mut tasks = Vec::with_capacity(n_pub);
        for p in self.publishers.drain(..) {
            tasks.push(tokio::spawn(publish_phase(
                p,
                proto,
                per_pub,
                total,
                a.payload,
                self.shared.clone(),
            )));
        }
        let t0 = Instant::now();
        tokio::time::sleep_until((t0 + Duration::from_secs_f64(a.warmup)).into()).await;
        let w0 = Instant::now();
        let d0 = self.shared.deliveries.load(Ordering::Relaxed);
        let s0 = self.shared.sent.load(Ordering::Relaxed);
        let gen = CpuMeter::start(None);
        let nodes: Vec<CpuMeter> = a.pid.iter().map(|p| CpuMeter::start(Some(*p))).collect();
        tokio::time::sleep_until((w0 + Duration::from_secs_f64(a.seconds)).into()).await;
        let (gen_cpu, _) = gen.stop();
        let node_cpu: Option<f64> = if nodes.is_empty() {
            None
        } else {
            Some(nodes.iter().filter_map(|m| m.stop().1).sum())
        };
        let window = w0.elapsed().as_secs_f64();
        let d1 = self.shared.deliveries.load(Ordering::Relaxed);
        let s1 = self.shared.sent.load(Ordering::Relaxed);

        let mut outcome = PubOutcome::default();
        let mut ack_hist = report::micros_histogram();
        let mut problems = Vec::new();
        for t in tasks {
            let (p, o) = t.await.context("publisher task")?;
            self.publishers.push(p);
            outcome.sent += o.sent;
            for (r, n) in o.sent_per_room {
                *outcome.sent_per_room.entry(r).or_insert(0) += n;
            }
            outcome.acked += o.acked;
            outcome.errors += o.errors;
            outcome.own_received += o.own_received;
            if outcome.first_error.is_none() {
                outcome.first_error = o.first_error;
            }
            if let Some(h) = o.ack_hist {
                let _ = ack_hist.add(h);
            }
            if let Some(c) = o.closed {
                problems.push(c);
            }
        }
        let expected_total: u64 = outcome
            .sent_per_room
            .iter()
            .map(|(r, n)| n * self.subs_per_room.get(r).copied().unwrap_or(0))
            .sum();

        // Drain: until every delivery arrived, progress stalls for 2 s, or --drain runs out.
        let dr0 = Instant::now();
        let mut last_progress = (
            self.shared.deliveries.load(Ordering::Relaxed),
            Instant::now(),
        );
        loop {
            let d = self.shared.deliveries.load(Ordering::Relaxed);
            if d - d_start >= expected_total || dr0.elapsed().as_secs_f64() >= a.drain {
                break;
            }
            if d != last_progress.0 {
                last_progress = (d, Instant::now());
            } else if last_progress.1.elapsed() >= Duration::from_secs(2) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let drain_secs = dr0.elapsed().as_secs_f64();
        let m1 = scrape_all(&self.metrics).await;

        let mut received = 0;
        let mut lost = 0;
        let mut close_codes = BTreeMap::new();
        for ((slot, room), c0) in self.slots.iter().zip(&start_counts) {
            let got = slot.received.load(Ordering::Relaxed) - c0;
            let expected = outcome.sent_per_room.get(room).copied().unwrap_or(0);
            received += got;
            lost += expected.saturating_sub(got);
            let c = slot.closed.load(Ordering::Relaxed);
            if c != 0 {
                *close_codes.entry(c).or_insert(0) += 1;
            }
        }
        let gaps = self
            .slots
            .iter()
            .map(|(s, _)| s.gaps.load(Ordering::Relaxed))
            .sum::<u64>()
            - gaps0;
        let ooo = self
            .slots
            .iter()
            .map(|(s, _)| s.out_of_order.load(Ordering::Relaxed))
            .sum::<u64>()
            - ooo0;
        let latency = self
            .shared
            .hist
            .lock()
            .map(|h| Latency::of(&h))
            .unwrap_or_default();
        let offered = (s1 - s0) as f64 / window;
        // Expected deliveries per published message, averaged over rooms by what was sent.
        let fan = if outcome.sent > 0 {
            expected_total as f64 / outcome.sent as f64
        } else {
            0.0
        };
        let delivered = (d1 - d0) as f64 / window;
        let ratio = if offered > 0.0 {
            delivered / (offered * fan)
        } else {
            0.0
        };
        let per_core = gen_cpu / self.cores as f64;
        let closed: usize = close_codes.values().sum();
        let cluster = match (m0, m1) {
            (Some(x), Some(y)) => Some(y - x),
            _ => None,
        };
        let publisher_problem = (!problems.is_empty()).then(|| problems.join("; "));
        let passed = (0.95..=1.10).contains(&ratio)
            && lost == 0
            && closed == 0
            && latency.p99_ms <= a.max_p99_ms
            && publisher_problem.is_none()
            && outcome.errors == 0;
        let phase = Phase {
            target_rate: r2(rate),
            offered_msgs_per_s: r2(offered),
            expected_deliveries_per_s: r2(offered * fan),
            delivered_per_s: r2(delivered),
            delivered_ratio: (ratio * 1e4).round() / 1e4,
            latency,
            publish_ack_latency: proto.acks_publish().then(|| Latency::of(&ack_hist)),
            published: outcome.sent,
            publish_acked: outcome.acked,
            publish_errors: outcome.errors,
            publish_first_error: outcome.first_error,
            publisher_problem,
            expected_deliveries: expected_total,
            received_deliveries: received,
            lost_deliveries: lost,
            loss_pct: if expected_total > 0 {
                (lost as f64 / expected_total as f64 * 100.0 * 1000.0).round() / 1000.0
            } else {
                0.0
            },
            seq_gaps: gaps,
            out_of_order: ooo,
            subscribers_closed: closed,
            close_codes,
            drain_secs: r2(drain_secs),
            generator_cpu_pct: r2(gen_cpu),
            generator_cpu_per_core_pct: r2(per_core),
            generator_saturated: per_core > 85.0,
            node_cpu_pct: node_cpu.map(r2),
            cluster_deliveries_sent: cluster,
            inter_node_msgs_per_publish: cluster.map(|c| {
                if outcome.sent > 0 {
                    (c / outcome.sent as f64 * 1000.0).round() / 1000.0
                } else {
                    0.0
                }
            }),
            passed,
        };
        eprintln!(
            "load:   offered {:.1} msg/s, delivered {:.0}/s ({:.1} %), p99 {:.1} ms, lost {}, closed {}, generator {:.0} %{} → {}",
            phase.offered_msgs_per_s,
            phase.delivered_per_s,
            phase.delivered_ratio * 100.0,
            phase.latency.p99_ms,
            phase.lost_deliveries,
            phase.subscribers_closed,
            phase.generator_cpu_per_core_pct,
            phase
                .node_cpu_pct
                .map(|n| format!(", server {n:.0} %"))
                .unwrap_or_default(),
            if phase.passed { "pass" } else { "FAIL" }
        );
        Ok(phase)
    }
}

/// Runs `fanout`, `rooms` or `cluster`.
pub async fn run(mode: &'static str, a: LoadArgs, threads: usize) -> Result<LoadReport> {
    if a.subscribers == 0
        || a.rooms == 0
        || a.publishers == 0
        || a.rate <= 0.0
        || a.seconds <= 0.0
        || a.sample_every == 0
    {
        bail!("--subscribers, --rooms, --publishers, --rate, --seconds and --sample-every must be positive");
    }
    if a.publishers > a.rooms {
        bail!(
            "--publishers ({}) must not exceed --rooms ({})",
            a.publishers,
            a.rooms
        );
    }
    if a.saturate && a.step_factor <= 1.0 {
        bail!("--step-factor must be > 1");
    }
    let targets = a
        .url
        .iter()
        .map(|u| a.target.target(u))
        .collect::<Result<Vec<_>>>()?;
    let metrics = if !a.metrics.is_empty() {
        a.metrics.clone()
    } else if a.target == Proto::Gatehouse && targets.len() > 1 {
        targets
            .iter()
            .map(|t| format!("http://{}/metrics", t.host))
            .collect()
    } else {
        Vec::new()
    };
    let opts = Arc::new(ConnectOpts {
        targets: targets.clone(),
        proto: a.target,
        source_ips: a.source_ips,
        read_buffer: a.read_buffer,
        timeout: Duration::from_secs(30),
    });
    let tag = setup::run_tag();
    let room_name = |r: usize| format!("{}-{tag}-{r}", a.room_prefix);
    let n_subs = a.subscribers * a.rooms;

    eprintln!(
        "load: connecting {n_subs} subscribers ({} rooms × {}) to {} server(s)…",
        a.rooms,
        a.subscribers,
        targets.len()
    );
    let opened = setup::open_many(opts.clone(), n_subs, a.concurrency).await;
    let connect_secs = opened.elapsed.as_secs_f64();
    let rooms = a.rooms;
    let rn = room_name;
    let (joined, join_failed, join_err, _) = setup::join_many(
        opened.conns,
        a.target,
        move |i| rn(i % rooms),
        a.concurrency,
        opts.timeout,
    )
    .await;
    eprintln!(
        "load: {} subscribers joined ({} failed to connect, {join_failed} to join)",
        joined.len(),
        opened.failed
    );
    if joined.is_empty() {
        bail!(
            "no subscriber joined: {}",
            opened.first_error.or(join_err).unwrap_or_default()
        );
    }

    let shared = Arc::new(Shared {
        deliveries: AtomicU64::new(0),
        measure_from_us: AtomicU64::new(u64::MAX),
        hist: Mutex::new(report::micros_histogram()),
        sent: AtomicU64::new(0),
    });
    let mut slots = Vec::with_capacity(joined.len());
    let mut handles = Vec::with_capacity(joined.len());
    let mut epochs: BTreeMap<usize, std::collections::BTreeSet<String>> = BTreeMap::new();
    let mut subs_per_room: BTreeMap<usize, u64> = BTreeMap::new();
    for (i, c, j) in joined {
        let room = i % rooms;
        epochs.entry(room).or_default().insert(j.epoch);
        *subs_per_room.entry(room).or_insert(0) += 1;
        let slot = Arc::new(SubSlot::default());
        slots.push((slot.clone(), room));
        handles.push(tokio::spawn(subscriber(
            c.rd,
            c.wr,
            a.target,
            i as u64,
            a.sample_every,
            slot,
            shared.clone(),
        )));
    }

    // Publishers: on the first server, members of the rooms they publish to.
    let mut publishers = Vec::with_capacity(a.publishers);
    for j in 0..a.publishers {
        let mut conn = setup::open_to(&opts, n_subs + j, &targets[0]).await?;
        let mut prooms = Vec::new();
        for (k, r) in (j..rooms).step_by(a.publishers).enumerate() {
            let name = room_name(r);
            let pj = setup::join(&mut conn, a.target, &name, k as u64 + 1, opts.timeout).await?;
            epochs.entry(r).or_default().insert(pj.epoch);
            prooms.push((name, r, 0));
        }
        publishers.push(Publisher {
            conn,
            rooms: prooms,
            next_id: 1_000_000,
        });
    }
    let join_epochs = epochs.values().map(|e| e.len()).max().unwrap_or(0);
    if a.target == Proto::Gatehouse && join_epochs > 1 {
        eprintln!("load: WARNING: joins of one room answered with {join_epochs} different epochs (several room owners)");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let cores = threads.clamp(1, sys::allowed_cpus().max(1));
    let mut eng = Engine {
        a: a.clone(),
        shared,
        slots,
        subs_per_room,
        publishers,
        metrics,
        cores,
    };
    let mut steps: Vec<Phase> = Vec::new();
    let result = if a.saturate {
        let mut rate = a.rate;
        let mut fail_rate = None;
        for _ in 0..a.max_steps {
            let p = eng.phase(rate).await?;
            let (ok, closed) = (p.passed, p.subscribers_closed);
            steps.push(p);
            if !ok {
                fail_rate = Some(rate);
                break;
            }
            if closed > 0 {
                break;
            }
            rate *= a.step_factor;
        }
        let best_rate = |steps: &[Phase]| {
            steps
                .iter()
                .filter(|p| p.passed)
                .map(|p| p.target_rate)
                .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))))
        };
        if let (Some(mut lo), Some(mut hi)) = (best_rate(&steps), fail_rate) {
            for _ in 0..a.bisect {
                if steps.last().is_some_and(|p| p.subscribers_closed > 0) {
                    break;
                }
                let mid = (lo * hi).sqrt();
                let p = eng.phase(mid).await?;
                if p.passed {
                    lo = mid;
                } else {
                    hi = mid;
                }
                steps.push(p);
            }
        }
        steps
            .iter()
            .filter(|p| p.passed)
            .max_by(|x, y| x.delivered_per_s.total_cmp(&y.delivered_per_s))
            .or(steps.first())
            .cloned()
            .context("no phase ran")?
    } else {
        eng.phase(a.rate).await?
    };
    for h in &handles {
        h.abort();
    }
    Ok(LoadReport {
        mode,
        target: a.target,
        urls: a.url.clone(),
        rooms: a.rooms,
        subscribers_per_room: a.subscribers,
        subscribers: n_subs,
        publishers: a.publishers,
        subscribers_joined: eng.slots.len(),
        connect_failed: opened.failed + join_failed,
        connect_first_error: opened.first_error.or(join_err),
        connect_secs: r2(connect_secs),
        seconds: a.seconds,
        warmup: a.warmup,
        payload_bytes: a.payload.max(proto::DATA_OVERHEAD),
        sample_every: a.sample_every,
        join_epochs,
        generator_cores: cores,
        saturate: a.saturate,
        result,
        steps,
        unix_time: report::unix_micros() / 1_000_000,
    })
}

impl LoadReport {
    /// Human-readable summary.
    pub fn summary(&self) -> String {
        let r = &self.result;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} ({:?}): {} rooms × {} subscribers ({} joined) + {} publisher(s), {}-byte payload, {} s window after {} s warmup, at {}",
            self.mode,
            self.target,
            self.rooms,
            self.subscribers_per_room,
            self.subscribers_joined,
            self.publishers,
            self.payload_bytes,
            self.seconds,
            self.warmup,
            self.urls.join(" ")
        );
        if let Some(e) = &self.connect_first_error {
            let _ = writeln!(
                s,
                "  {} connects/joins failed; first: {e}",
                self.connect_failed
            );
        }
        if self.saturate {
            let _ = writeln!(
                s,
                "  saturation: {} phases; {} at {:.1} msg/s",
                self.steps.len(),
                if r.passed {
                    "best passing phase"
                } else {
                    "NO phase passed; the first"
                },
                r.target_rate
            );
        }
        let _ = writeln!(
            s,
            "  offered {:.1} msg/s → expected {:.0} deliveries/s, delivered {:.0}/s ({:.1} %)",
            r.offered_msgs_per_s,
            r.expected_deliveries_per_s,
            r.delivered_per_s,
            r.delivered_ratio * 100.0
        );
        let _ = writeln!(
            s,
            "  publish→receive latency: {} (1 in {} per subscriber)",
            r.latency.line(),
            self.sample_every
        );
        if let Some(l) = &r.publish_ack_latency {
            let _ = writeln!(s, "  publish→reply latency:   {}", l.line());
        }
        let _ = writeln!(
            s,
            "  published {}, acked {}, errors {}; deliveries expected {}, received {}, lost {} ({:.3} %), gaps {}, out of order {}; drain {:.2} s",
            r.published,
            r.publish_acked,
            r.publish_errors,
            r.expected_deliveries,
            r.received_deliveries,
            r.lost_deliveries,
            r.loss_pct,
            r.seq_gaps,
            r.out_of_order,
            r.drain_secs
        );
        if let Some(e) = &r.publish_first_error {
            let _ = writeln!(s, "  first publish error: {e}");
        }
        if let Some(e) = &r.publisher_problem {
            let _ = writeln!(s, "  publisher: {e}");
        }
        if let Some(m) = r.inter_node_msgs_per_publish {
            let _ = writeln!(s, "  inter-node messages per publish: {m:.3}");
        }
        if self.target == Proto::Gatehouse && self.join_epochs > 1 {
            let _ = writeln!(
                s,
                "  WARNING: the join replies carried up to {} different epochs for one room (several owners)",
                self.join_epochs
            );
        }
        if r.subscribers_closed > 0 {
            let _ = writeln!(
                s,
                "  subscribers closed: {} (by code, 1 = no close frame: {:?})",
                r.subscribers_closed, r.close_codes
            );
        }
        let _ = write!(
            s,
            "  CPU over the window: generator {:.0} % ({:.0} % per core over {} core(s)){}",
            r.generator_cpu_pct,
            r.generator_cpu_per_core_pct,
            self.generator_cores,
            r.node_cpu_pct
                .map(|n| format!(", server {n:.0} % of a core"))
                .unwrap_or_default()
        );
        if r.generator_saturated {
            let _ = write!(
                s,
                "\n  WARNING: the generator used > 85 % of its core(s): these figures are a LOWER BOUND for the server"
            );
        }
        s
    }
}
