//! `fanout`: K subscribers and one publisher in one room. The publisher (a member too) sends
//! `{"t":<unix µs>,"p":"xx…"}` at a fixed rate; subscribers read `seq` (every message, for loss)
//! and `t` (a sample of messages, for latency) straight from the frame bytes.
//!
//! Timeline: connect + join everything, then publish for `warmup + seconds`; figures cover the
//! `seconds` window after the warmup, then the run waits (bounded) for the tail to arrive and
//! counts what each subscriber missed.

use crate::report::{self, r2, Latency};
use crate::setup::{self, Conn, ConnectOpts};
use crate::sys::{self, CpuMeter};
use crate::ws::{self, Frame, Reader, Target, Writer};
use anyhow::{bail, Result};
use clap::Args;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::time::MissedTickBehavior;

/// Arguments of `fanout`.
#[derive(Debug, Args)]
pub struct FanoutArgs {
    /// Node WebSocket URL, e.g. ws://127.0.0.1:8080/ws
    #[arg(long)]
    url: String,
    /// Subscriber connections (the publisher is one more member).
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    /// Publish rate, messages per second.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Measured window, seconds (after the warmup).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Warmup before the window, seconds (published, not measured).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Size of the `data` JSON value, bytes (at least ~30 for the timestamp).
    #[arg(long, default_value_t = 100)]
    payload: usize,
    /// A subscriber samples the latency of one message in this many (spread over subscribers).
    #[arg(long, default_value_t = 8)]
    sample_every: u64,
    /// The node's process id: its CPU use over the window is reported too.
    #[arg(long)]
    pid: Option<u32>,
    /// Connects (and joins) in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Source addresses to spread over, from 127.0.0.2 on.
    #[arg(long, default_value_t = 64)]
    source_ips: usize,
    /// Initial read buffer per subscriber, bytes.
    #[arg(long, default_value_t = 16384)]
    read_buffer: usize,
    /// Longest wait after the last publish for the tail to arrive, seconds.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
    /// Room name (default: unique per run).
    #[arg(long)]
    room: Option<String>,
}

/// What one subscriber has seen, published after each batch of frames.
#[derive(Default)]
struct SubSlot {
    received: AtomicU64,
    last_seq: AtomicU64,
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
    /// Messages the publisher has written.
    sent: AtomicU64,
}

const MESSAGE_PREFIX: &[u8] = br#"{"op":"message""#;
const SEQ_KEY: &[u8] = br#""seq":"#;
const T_KEY: &[u8] = br#""data":{"t":"#;

async fn subscriber(
    mut rd: Reader,
    mut wr: Writer,
    idx: u64,
    join_seq: u64,
    sample_every: u64,
    slot: Arc<SubSlot>,
    shared: Arc<Shared>,
) {
    let mut received = 0u64;
    let mut last = join_seq;
    let mut gaps = 0u64;
    let mut ooo = 0u64;
    let mut samples: Vec<u64> = Vec::with_capacity(64);
    let mut pong: Option<Vec<u8>> = None;
    let mut now_us = 0u64;
    let close_code = loop {
        let before = received;
        let mut ended = None;
        loop {
            match rd.try_frame() {
                Ok(Some(Frame::Text(r))) => {
                    let p = rd.slice(&r);
                    if !p.starts_with(MESSAGE_PREFIX) {
                        continue;
                    }
                    let Some(seq) = ws::find_u64(p, SEQ_KEY) else {
                        continue;
                    };
                    if seq <= last {
                        ooo += 1;
                        continue;
                    }
                    gaps += seq - last - 1;
                    last = seq;
                    received += 1;
                    if (seq + idx) % sample_every == 0 {
                        if let Some(t) = ws::find_u64(p, T_KEY) {
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
        slot.last_seq.store(last, Ordering::Relaxed);
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
        match rd.fill().await {
            Ok(0) | Err(_) => break 1,
            Ok(_) => now_us = 0,
        }
    };
    slot.closed.store(close_code.max(1), Ordering::Relaxed);
}

/// What the publisher saw.
#[derive(Debug, Default)]
struct PubOutcome {
    sent: u64,
    acked: u64,
    errors: u64,
    first_error: Option<String>,
    first_seq: Option<u64>,
    last_seq: u64,
    own_received: u64,
    ack_hist: Option<Histogram<u64>>,
    closed: Option<String>,
}

struct PubPlan {
    room: String,
    rate: f64,
    total: u64,
    payload: usize,
}

fn publish_frame(buf: &mut String, room: &str, id: u64, t: u64, pad: &str) {
    buf.clear();
    let _ = write!(
        buf,
        r#"{{"id":{id},"op":"publish","room":"{room}","data":{{"t":{t},"p":"{pad}"}}}}"#
    );
}

async fn publisher(mut c: Conn, plan: PubPlan, shared: Arc<Shared>) -> PubOutcome {
    let mut out = PubOutcome {
        ack_hist: Some(report::micros_histogram()),
        ..PubOutcome::default()
    };
    // `{"t":1700000000000000,"p":""}` is 29 bytes.
    let pad = "x".repeat(plan.payload.saturating_sub(29));
    let period = Duration::from_secs_f64((1.0 / plan.rate).clamp(0.001, 1.0));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut send_times: Vec<u64> = Vec::with_capacity(usize::try_from(plan.total).unwrap_or(0));
    let mut frame = String::with_capacity(plan.payload + 80);
    let t0 = Instant::now();
    let mut ack_deadline: Option<tokio::time::Instant> = None;
    while out.sent < plan.total || out.acked + out.errors < out.sent {
        tokio::select! {
            _ = tick.tick(), if out.sent < plan.total => {
                let due = ((t0.elapsed().as_secs_f64() * plan.rate) as u64 + 1).min(plan.total);
                if due > out.sent {
                    let now = report::unix_micros();
                    while out.sent < due {
                        publish_frame(&mut frame, &plan.room, out.sent, now, &pad);
                        c.wr.push_text(frame.as_bytes());
                        send_times.push(now);
                        out.sent += 1;
                    }
                    if let Err(e) = c.wr.flush().await {
                        out.closed = Some(format!("publisher write: {e:#}"));
                        break;
                    }
                    shared.sent.store(out.sent, Ordering::Relaxed);
                    if out.sent == plan.total {
                        ack_deadline = Some(tokio::time::Instant::now() + Duration::from_secs(10));
                    }
                }
            }
            () = async {
                match ack_deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => {
                out.closed = Some(format!("{} publishes unanswered after 10 s", out.sent - out.acked - out.errors));
                break;
            }
            r = c.rd.fill() => {
                match r {
                    Ok(0) => { out.closed = Some("publisher: server closed the connection".into()); break; }
                    Err(e) => { out.closed = Some(format!("publisher read: {e:#}")); break; }
                    Ok(_) => {}
                }
                let now = report::unix_micros();
                let mut pong = None;
                loop {
                    match c.rd.try_frame() {
                        Ok(Some(Frame::Text(r))) => {
                            let p = c.rd.slice(&r);
                            if p.starts_with(MESSAGE_PREFIX) {
                                out.own_received += 1;
                            } else if p.starts_with(br#"{"op":"reply""#) {
                                handle_reply(p, now, &send_times, &mut out);
                            }
                        }
                        Ok(Some(Frame::Ping(r))) => pong = Some(c.rd.slice(&r).to_vec()),
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
                if let Some(p) = pong {
                    let _ = c.wr.pong(&p).await;
                }
            }
        }
    }
    out
}

fn handle_reply(p: &[u8], now: u64, send_times: &[u64], out: &mut PubOutcome) {
    let id = ws::find_u64(p, br#""id":"#);
    if ws::find_at(p, br#""ok":true"#).is_some() {
        out.acked += 1;
        if let Some(seq) = ws::find_u64(p, SEQ_KEY) {
            out.first_seq = Some(out.first_seq.map_or(seq, |s| s.min(seq)));
            out.last_seq = out.last_seq.max(seq);
        }
        if let (Some(h), Some(sent)) = (
            out.ack_hist.as_mut(),
            id.and_then(|i| send_times.get(usize::try_from(i).ok()?)),
        ) {
            report::record(h, now.saturating_sub(*sent));
        }
    } else {
        out.errors += 1;
        if out.first_error.is_none() {
            out.first_error = Some(String::from_utf8_lossy(p).into_owned());
        }
    }
}

/// Figures of one `fanout` run.
#[derive(Debug, Serialize)]
pub struct FanoutReport {
    mode: &'static str,
    url: String,
    subscribers: usize,
    subscribers_joined: usize,
    connect_failed: usize,
    connect_first_error: Option<String>,
    connect_secs: f64,
    target_rate: f64,
    seconds: f64,
    warmup: f64,
    payload_bytes: usize,
    sample_every: u64,
    offered_msgs_per_s: f64,
    expected_deliveries_per_s: f64,
    delivered_per_s: f64,
    delivered_ratio: f64,
    latency: Latency,
    publish_ack_latency: Latency,
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
    subscribers_closed: usize,
    close_codes: BTreeMap<u64, usize>,
    drain_secs: f64,
    /// Distinct epochs in the join replies (1 expected: one owner per room).
    join_epochs: usize,
    generator_cpu_pct: f64,
    generator_cpu_per_core_pct: f64,
    generator_cores: usize,
    generator_saturated: bool,
    node_cpu_pct: Option<f64>,
    unix_time: u64,
}

/// Runs `fanout`.
pub async fn run(a: FanoutArgs, threads: usize) -> Result<FanoutReport> {
    if a.subscribers == 0 || a.rate <= 0.0 || a.seconds <= 0.0 || a.sample_every == 0 {
        bail!("--subscribers, --rate, --seconds and --sample-every must be positive");
    }
    let opts = Arc::new(ConnectOpts {
        target: Target::parse(&a.url)?,
        source_ips: a.source_ips,
        read_buffer: a.read_buffer,
        timeout: Duration::from_secs(20),
    });
    let room = a
        .room
        .clone()
        .unwrap_or_else(|| format!("fanout-{}", setup::run_tag()));

    eprintln!("fanout: connecting {} subscribers…", a.subscribers);
    let opened = setup::open_many(opts.clone(), a.subscribers, a.concurrency).await;
    let connect_secs = opened.elapsed.as_secs_f64();
    let r = room.clone();
    let (joined, join_failed, join_err, _) = setup::join_many(
        opened.conns,
        move |_| r.clone(),
        a.concurrency,
        opts.timeout,
    )
    .await;
    eprintln!(
        "fanout: {} subscribers joined ({} failed to connect, {join_failed} to join)",
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
    let mut epochs = std::collections::BTreeSet::new();
    for (i, c, j) in joined {
        let seq = j.seq;
        epochs.insert(j.epoch);
        let slot = Arc::new(SubSlot::default());
        slot.last_seq.store(seq, Ordering::Relaxed);
        slots.push((slot.clone(), seq));
        handles.push(tokio::spawn(subscriber(
            c.rd,
            c.wr,
            i as u64,
            seq,
            a.sample_every,
            slot,
            shared.clone(),
        )));
    }

    let mut pubc = setup::open(&opts, a.subscribers).await?;
    let pj = setup::join(&mut pubc, &room, 1, opts.timeout).await?;
    epochs.insert(pj.epoch);
    if epochs.len() > 1 {
        eprintln!(
            "fanout: WARNING: joins of one room answered with {} different epochs (several room owners)",
            epochs.len()
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let total = (a.rate * (a.warmup + a.seconds)).round().max(1.0) as u64;
    eprintln!(
        "fanout: publishing {total} messages at {} msg/s to {room} ({} s warmup + {} s measured)…",
        a.rate, a.warmup, a.seconds
    );
    let plan = PubPlan {
        room: room.clone(),
        rate: a.rate,
        total,
        payload: a.payload,
    };
    let pub_task = tokio::spawn(publisher(pubc, plan, shared.clone()));
    let t0 = Instant::now();

    // The measured window.
    tokio::time::sleep_until((t0 + Duration::from_secs_f64(a.warmup)).into()).await;
    shared
        .measure_from_us
        .store(report::unix_micros(), Ordering::Relaxed);
    let w0 = Instant::now();
    let d0 = shared.deliveries.load(Ordering::Relaxed);
    let s0 = shared.sent.load(Ordering::Relaxed);
    let cpu = CpuMeter::start(a.pid);
    tokio::time::sleep_until((w0 + Duration::from_secs_f64(a.seconds)).into()).await;
    let (gen_cpu, node_cpu) = cpu.stop();
    let window = w0.elapsed().as_secs_f64();
    let d1 = shared.deliveries.load(Ordering::Relaxed);
    let s1 = shared.sent.load(Ordering::Relaxed);

    let outcome = pub_task.await?;
    // Drain: until every delivery arrived, progress stalls for 2 s, or --drain runs out.
    let n_subs = slots.len() as u64;
    let expected_per_sub = match outcome.first_seq {
        Some(f) => outcome.last_seq.saturating_sub(f) + 1,
        None => 0,
    };
    let dr0 = Instant::now();
    let mut last_progress = (shared.deliveries.load(Ordering::Relaxed), Instant::now());
    loop {
        let d = shared.deliveries.load(Ordering::Relaxed);
        if d >= expected_per_sub * n_subs || dr0.elapsed().as_secs_f64() >= a.drain {
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
    for h in &handles {
        h.abort();
    }

    let mut received = 0;
    let mut lost = 0;
    let mut gaps = 0;
    let mut ooo = 0;
    let mut close_codes = BTreeMap::new();
    for (slot, join_seq) in &slots {
        let got = slot.received.load(Ordering::Relaxed);
        // Messages this subscriber should have: our publishes after its join.
        let expected = match outcome.first_seq {
            Some(f) => outcome
                .last_seq
                .saturating_sub(f.max(join_seq + 1))
                .saturating_add(1),
            None => 0,
        };
        received += got;
        lost += expected.saturating_sub(got);
        gaps += slot.gaps.load(Ordering::Relaxed);
        ooo += slot.out_of_order.load(Ordering::Relaxed);
        let c = slot.closed.load(Ordering::Relaxed);
        if c != 0 {
            *close_codes.entry(c).or_insert(0) += 1;
        }
    }
    let expected_total = expected_per_sub * n_subs;
    let latency = shared
        .hist
        .lock()
        .map(|h| Latency::of(&h))
        .unwrap_or_default();
    let offered = (s1 - s0) as f64 / window;
    let delivered = (d1 - d0) as f64 / window;
    let cores = threads.clamp(1, sys::allowed_cpus().max(1));
    let per_core = gen_cpu / cores as f64;
    Ok(FanoutReport {
        mode: "fanout",
        url: a.url,
        subscribers: a.subscribers,
        subscribers_joined: slots.len(),
        connect_failed: opened.failed + join_failed,
        connect_first_error: opened.first_error.or(join_err),
        connect_secs: r2(connect_secs),
        target_rate: a.rate,
        seconds: a.seconds,
        warmup: a.warmup,
        payload_bytes: a.payload.max(29),
        sample_every: a.sample_every,
        offered_msgs_per_s: r2(offered),
        expected_deliveries_per_s: r2(offered * n_subs as f64),
        delivered_per_s: r2(delivered),
        delivered_ratio: r2(if offered > 0.0 {
            delivered / (offered * n_subs as f64)
        } else {
            0.0
        }),
        latency,
        publish_ack_latency: outcome
            .ack_hist
            .as_ref()
            .map(Latency::of)
            .unwrap_or_default(),
        published: outcome.sent,
        publish_acked: outcome.acked,
        publish_errors: outcome.errors,
        publish_first_error: outcome.first_error,
        publisher_problem: outcome.closed,
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
        subscribers_closed: close_codes.values().sum(),
        close_codes,
        drain_secs: r2(drain_secs),
        join_epochs: epochs.len(),
        generator_cpu_pct: r2(gen_cpu),
        generator_cpu_per_core_pct: r2(per_core),
        generator_cores: cores,
        generator_saturated: per_core > 85.0,
        node_cpu_pct: node_cpu.map(r2),
        unix_time: report::unix_micros() / 1_000_000,
    })
}

impl FanoutReport {
    /// Human-readable summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "fanout: {} subscribers ({} joined) + 1 publisher, {} msg/s target, {}-byte payload, {} s window after {} s warmup, at {}",
            self.subscribers,
            self.subscribers_joined,
            self.target_rate,
            self.payload_bytes,
            self.seconds,
            self.warmup,
            self.url
        );
        if let Some(e) = &self.connect_first_error {
            let _ = writeln!(
                s,
                "  {} connects/joins failed; first: {e}",
                self.connect_failed
            );
        }
        let _ = writeln!(
            s,
            "  offered {:.1} msg/s → expected {:.0} deliveries/s, delivered {:.0}/s ({:.1} %)",
            self.offered_msgs_per_s,
            self.expected_deliveries_per_s,
            self.delivered_per_s,
            self.delivered_ratio * 100.0
        );
        let _ = writeln!(
            s,
            "  publish→receive latency: {} (1 in {} per subscriber)",
            self.latency.line(),
            self.sample_every
        );
        let _ = writeln!(
            s,
            "  publish→reply latency:   {}",
            self.publish_ack_latency.line()
        );
        let _ = writeln!(
            s,
            "  published {}, acked {}, errors {}; deliveries expected {}, received {}, lost {} ({:.3} %), seq gaps {}, out of order {}; drain {:.2} s",
            self.published,
            self.publish_acked,
            self.publish_errors,
            self.expected_deliveries,
            self.received_deliveries,
            self.lost_deliveries,
            self.loss_pct,
            self.seq_gaps,
            self.out_of_order,
            self.drain_secs
        );
        if let Some(e) = &self.publish_first_error {
            let _ = writeln!(s, "  first publish error: {e}");
        }
        if let Some(e) = &self.publisher_problem {
            let _ = writeln!(s, "  publisher: {e}");
        }
        if self.join_epochs > 1 {
            let _ = writeln!(
                s,
                "  WARNING: the join replies carried {} different epochs for one room (several owners)",
                self.join_epochs
            );
        }
        if self.subscribers_closed > 0 {
            let _ = writeln!(
                s,
                "  subscribers closed: {} (by code, 1 = no close frame: {:?})",
                self.subscribers_closed, self.close_codes
            );
        }
        let _ = write!(
            s,
            "  CPU over the window: generator {:.0} % ({:.0} % per core over {} core(s)){}",
            self.generator_cpu_pct,
            self.generator_cpu_per_core_pct,
            self.generator_cores,
            self.node_cpu_pct
                .map(|n| format!(", node {n:.0} % of a core"))
                .unwrap_or_default()
        );
        if self.generator_saturated {
            let _ = write!(
                s,
                "\n  WARNING: the generator used > 85 % of its core(s): these figures are a lower bound for the node"
            );
        }
        s
    }
}
