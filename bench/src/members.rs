//! `members`: many members of a few rooms, held open and checked (issue #16: a room whose
//! member list is larger than ractor_cluster's 16 MiB frame limit, `big-room.sh`; issue #19: the
//! reconnect storm after a drain or a node loss, `reconnect-storm.sh`).
//!
//! Connection `i` connects to `--url` number `i mod U` (U URLs given; one node each), with
//! `?token=<line i of --tokens>` (a JWT whose `sub` is the user id: the script mints them) or,
//! with `--connections N` instead of `--tokens`, anonymously. It waits for `welcome`, joins its
//! room (`--room`, or with `--rooms K > 1` room `<room>-<(i / U) mod K>`), and is then held:
//! pings are answered, and every room `message` is checked against the connection's position in
//! the room (`epoch`, last `seq`): the next seq of the same epoch is in order; a lower or equal
//! seq is a duplicate; a higher one is a gap (the messages skipped are counted); another epoch
//! is an epoch change.
//!
//! With `--reconnect`, a connection that ends comes back like a well-behaved client, whether the
//! node closed it (a drain's 1012, after a `reconnect` frame) or it was lost without a close
//! frame (EOF or reset: the node was killed). It waits a random delay within the `reconnect`
//! frame's `after_ms` (within `--lost-jitter-ms` when there was none), then connects with
//! `?session=` to another of the URLs (the same one when only one is given; after a failed
//! attempt, the next one, backing off 1 → 8 s) and joins with `since` its position; a join
//! answered `unavailable` is sent again on the same connection after its `retry_after_ms`. The
//! replay goes through the same check. Each such move is timed per client: from its first new
//! TCP connect to the join reply (what the node adds), and from the close to the join reply
//! (including the wait the node asked for), with the number of attempts, every refusal (by
//! reason), and the reply's `recovered` and `replayed`.
//!
//! Every `--status-ms` the figures so far go to `--status` (written to a temporary file and
//! renamed, so a reader never sees half a file): how many connections are joined, reconnecting
//! or lost, the lowest and highest seq the joined ones have reached per room, the epochs they
//! are in, messages, gaps, duplicates, closes by code, and the moves' quantiles. The run ends
//! after `--hold` seconds or at SIGTERM / SIGINT, and prints the same figures (one JSON line
//! with `--json`); `--clients FILE` then gets one JSON line per connection (its room, position,
//! gaps, duplicates and every move), from which a script merges several processes' figures.

use crate::report::{micros_histogram, r2, record, Latency};
use crate::sys;
use crate::ws::{self, Frame, Reader, Target, Writer};
use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Arguments of `members`.
#[derive(Debug, Args)]
pub struct MembersArgs {
    /// A node's WebSocket URL, e.g. ws://127.0.0.1:8081/ws; repeat it for several nodes:
    /// connection i connects to URL i mod U first, and moves to another one when it reconnects.
    #[arg(long, required = true)]
    url: Vec<String>,
    /// The room every connection joins (with --rooms K > 1: `<room>-0` … `<room>-<K-1>`).
    #[arg(long)]
    room: String,
    /// Rooms to spread the connections over: connection i joins `<room>-<(i / U) mod K>`.
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// File with one JWT per line: one connection per line (keep ≤ ~18 000 per process: the
    /// fd limit is 20 000).
    #[arg(
        long,
        conflicts_with = "connections",
        required_unless_present = "connections"
    )]
    tokens: Option<PathBuf>,
    /// Anonymous connections (no token), instead of --tokens.
    #[arg(long)]
    connections: Option<usize>,
    /// Connects + joins in flight at once (the first connect of each connection).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Source addresses to spread over.
    #[arg(long, default_value_t = 64)]
    source_ips: usize,
    /// First source address: 127.0.0.2 + this offset (give each process its own range).
    #[arg(long, default_value_t = 0)]
    source_offset: u32,
    /// Initial read buffer per connection, bytes (grown on demand).
    #[arg(long, default_value_t = 2048)]
    read_buffer: usize,
    /// Where to write the figures so far, every --status-ms.
    #[arg(long)]
    status: Option<PathBuf>,
    /// How often to write --status, ms.
    #[arg(long, default_value_t = 500)]
    status_ms: u64,
    /// Come back after a close (a drain's 1012) or a lost connection (no close frame): another
    /// URL when several are given, ?session=, join with since.
    #[arg(long)]
    reconnect: bool,
    /// Upper end of the random wait before reconnecting when the node gave no `after_ms` (a
    /// lost connection, or a close without a `reconnect` frame), ms.
    #[arg(long, default_value_t = 1000)]
    lost_jitter_ms: u64,
    /// Moves slower than this from their first new connect to the join reply are counted
    /// (`moves_over_target`), ms.
    #[arg(long, default_value_t = 1000)]
    target_ms: u64,
    /// At the end, write one JSON line per connection here (room, position, gaps, duplicates,
    /// every move with its timings).
    #[arg(long)]
    clients: Option<PathBuf>,
    /// End after this many seconds (0: at SIGTERM or SIGINT only).
    #[arg(long, default_value_t = 0)]
    hold: u64,
}

/// Where connection `i` stands.
const CONNECTING: u8 = 0;
const JOINED: u8 = 1;
const RECONNECTING: u8 = 2;
const LOST: u8 = 3;
const FAILED: u8 = 4;
const STATE_NAMES: [&str; 5] = ["connecting", "joined", "reconnecting", "lost", "failed"];
const NO_EPOCH: u32 = u32::MAX;
/// How often one connection sends its join again after `unavailable` before giving up on the
/// connection (and reconnecting).
const JOIN_TRIES: u32 = 10;
/// The period of the generator's lag probe, and the lag from which it is logged with its time.
const LAG_TICK: Duration = Duration::from_millis(10);
const LAG_LOGGED_US: u64 = 5_000;
/// At most this many lags are logged with their time (a few hours of a stalled generator).
const LAG_LOG_MAX: usize = 1_000_000;

/// One reconnect of one connection: from the end of its connection to its join reply.
#[derive(Debug, Clone, Serialize)]
struct Move {
    /// How the old connection ended: a close code, or `lost: <error>`.
    why: String,
    /// URL indexes: left, and joined again through.
    from: usize,
    to: usize,
    /// Unix ms of the end of the old connection and of the join reply.
    close_unix_ms: u64,
    back_unix_ms: u64,
    /// Old connection's end → join reply (includes the wait within `after_ms`).
    from_close_ms: f64,
    /// First new TCP connect → join reply (what the node adds; includes retries).
    from_connect_ms: f64,
    /// The successful attempt's TCP connect → join reply, and its two parts: TCP connect →
    /// `welcome` (accept, upgrade, session) and `welcome` → join reply (the join itself).
    last_attempt_ms: f64,
    welcome_ms: f64,
    join_ms: f64,
    /// The longest the generator's own event loop lagged (a 10-ms timer fired late) while
    /// this move was in flight: when it is close to the move's time, the generator, not the
    /// node, was slow.
    generator_lag_max_ms: f64,
    /// Connect attempts (1 = the first one was answered).
    attempts: u32,
    /// Every refused attempt or join, by reason (`upgrade refused: …`, `join: unavailable`, …).
    refusals: Vec<String>,
    /// The join reply's `recovered` (absent: the reply had none).
    recovered: Option<bool>,
    replayed: u64,
    /// The join answered another epoch than the connection's.
    epoch_changed: bool,
}

/// Counters and per-connection positions shared by the connection tasks and the reporter.
struct Shared {
    state: Vec<AtomicU8>,
    last_seq: Vec<AtomicU64>,
    epoch: Vec<AtomicU32>,
    gaps_of: Vec<AtomicU64>,
    dups_of: Vec<AtomicU64>,
    /// Per connection: the first seq it missed (0: none) and when it noticed (unix ms).
    first_gap_seq: Vec<AtomicU64>,
    first_gap_unix_ms: Vec<AtomicU64>,
    url_of: Vec<AtomicUsize>,
    epochs: Mutex<Vec<String>>,
    connected: AtomicUsize,
    initial_done: AtomicUsize,
    initial_secs_ms: AtomicU64,
    connect_failed: AtomicUsize,
    messages: AtomicU64,
    gaps: AtomicU64,
    dups: AtomicU64,
    epoch_changes: AtomicU64,
    reconnects_ok: AtomicUsize,
    reconnect_attempts: AtomicUsize,
    recovered_false: AtomicUsize,
    replayed: AtomicU64,
    closes: Mutex<BTreeMap<String, usize>>,
    refused: Mutex<BTreeMap<String, usize>>,
    moves: Mutex<Vec<(usize, Move)>>,
    /// How late the generator's 10-ms timer fired (µs), and when it was at least
    /// [`LAG_LOGGED_US`] late: (unix ms, µs).
    lag: Mutex<Histogram<u64>>,
    lag_log: Mutex<Vec<(u64, u64)>>,
    first_error: Mutex<Option<String>>,
    t0: Instant,
}

impl Shared {
    /// Counters for `n` members, each starting in `state`.
    fn new(n: usize, state: u8) -> Self {
        Self {
            state: (0..n).map(|_| AtomicU8::new(state)).collect(),
            last_seq: (0..n).map(|_| AtomicU64::new(0)).collect(),
            epoch: (0..n).map(|_| AtomicU32::new(NO_EPOCH)).collect(),
            gaps_of: (0..n).map(|_| AtomicU64::new(0)).collect(),
            dups_of: (0..n).map(|_| AtomicU64::new(0)).collect(),
            first_gap_seq: (0..n).map(|_| AtomicU64::new(0)).collect(),
            first_gap_unix_ms: (0..n).map(|_| AtomicU64::new(0)).collect(),
            url_of: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            epochs: Mutex::new(Vec::new()),
            connected: AtomicUsize::new(0),
            initial_done: AtomicUsize::new(0),
            initial_secs_ms: AtomicU64::new(0),
            connect_failed: AtomicUsize::new(0),
            messages: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            dups: AtomicU64::new(0),
            epoch_changes: AtomicU64::new(0),
            reconnects_ok: AtomicUsize::new(0),
            reconnect_attempts: AtomicUsize::new(0),
            recovered_false: AtomicUsize::new(0),
            replayed: AtomicU64::new(0),
            closes: Mutex::new(BTreeMap::new()),
            refused: Mutex::new(BTreeMap::new()),
            moves: Mutex::new(Vec::new()),
            lag: Mutex::new(micros_histogram()),
            lag_log: Mutex::new(Vec::new()),
            first_error: Mutex::new(None),
            t0: Instant::now(),
        }
    }

    fn error(&self, e: &anyhow::Error) {
        if let Ok(mut g) = self.first_error.lock() {
            g.get_or_insert_with(|| format!("{e:#}"));
        }
    }

    fn close(&self, what: String) {
        if let Ok(mut g) = self.closes.lock() {
            *g.entry(what).or_default() += 1;
        }
    }

    fn refusal(&self, why: &str) {
        if let Ok(mut g) = self.refused.lock() {
            *g.entry(why.to_owned()).or_default() += 1;
        }
    }

    /// The largest generator lag logged from unix ms `from` on, in ms.
    fn lag_max_since(&self, from: u64) -> f64 {
        let Ok(g) = self.lag_log.lock() else {
            return 0.0;
        };
        let us = g
            .iter()
            .rev()
            .take_while(|(t, _)| *t >= from)
            .map(|(_, l)| *l)
            .max()
            .unwrap_or(0);
        us as f64 / 1000.0
    }

    fn epoch_index(&self, e: &str) -> u32 {
        let Ok(mut g) = self.epochs.lock() else {
            return NO_EPOCH;
        };
        if let Some(p) = g.iter().position(|x| x == e) {
            return u32::try_from(p).unwrap_or(NO_EPOCH);
        }
        g.push(e.to_owned());
        u32::try_from(g.len() - 1).unwrap_or(NO_EPOCH)
    }

    fn initial(&self, n: usize) {
        let done = self.initial_done.fetch_add(1, Ordering::Relaxed) + 1;
        if done == n {
            let ms = u64::try_from(self.t0.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.initial_secs_ms.store(ms, Ordering::Relaxed);
        }
    }
}

/// A connection's position in the room, and the check of each message against it.
struct Position {
    i: usize,
    epoch: String,
    last: u64,
}

impl Position {
    fn set(&mut self, sh: &Shared, epoch: &str, seq: u64) {
        if epoch != self.epoch {
            self.epoch = epoch.to_owned();
            sh.epoch[self.i].store(sh.epoch_index(epoch), Ordering::Relaxed);
        }
        self.last = seq;
        sh.last_seq[self.i].store(seq, Ordering::Relaxed);
    }

    fn message(&mut self, sh: &Shared, seq: u64, epoch: &str) {
        sh.messages.fetch_add(1, Ordering::Relaxed);
        if epoch == self.epoch {
            if seq == self.last + 1 {
                self.last = seq;
            } else if seq <= self.last {
                sh.dups.fetch_add(1, Ordering::Relaxed);
                sh.dups_of[self.i].fetch_add(1, Ordering::Relaxed);
                return;
            } else {
                sh.gaps.fetch_add(seq - self.last - 1, Ordering::Relaxed);
                sh.gaps_of[self.i].fetch_add(seq - self.last - 1, Ordering::Relaxed);
                if sh.first_gap_seq[self.i]
                    .compare_exchange(0, self.last + 1, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                {
                    sh.first_gap_unix_ms[self.i].store(unix_ms(), Ordering::Relaxed);
                }
                self.last = seq;
            }
            sh.last_seq[self.i].store(seq, Ordering::Relaxed);
        } else {
            sh.epoch_changes.fetch_add(1, Ordering::Relaxed);
            self.set(sh, epoch, seq);
        }
    }
}

/// `seq` and `epoch` of a `message` frame (borrowed: no allocation per message).
fn parse_message(f: &[u8]) -> Option<(u64, &str)> {
    let seq = ws::find_u64(f, br#""seq":"#)?;
    let key = br#""epoch":""#;
    let at = ws::find_at(f, key)? + key.len();
    let len = f[at..].iter().position(|&b| b == b'"')?;
    Some((seq, std::str::from_utf8(&f[at..at + len]).ok()?))
}

/// The string value of `"key":"…"` (no escapes: session tokens are base64url).
fn str_field(f: &[u8], key: &[u8]) -> Option<String> {
    let at = ws::find_at(f, key)? + key.len();
    let len = f[at..].iter().position(|&b| b == b'"')?;
    Some(String::from_utf8_lossy(&f[at..at + len]).into_owned())
}

/// A cheap per-connection random number (xorshift64*), for reconnect jitter.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

struct Cfg {
    targets: Vec<Target>,
    rooms: Vec<String>,
    source_ips: u32,
    source_offset: u32,
    read_buffer: usize,
    reconnect: bool,
    lost_jitter_ms: u64,
    target_ms: u64,
    n: usize,
}

impl Cfg {
    fn source(&self, i: usize) -> SocketAddr {
        let base = u32::from(Ipv4Addr::new(127, 0, 0, 2)) + self.source_offset;
        let off = u32::try_from(i).unwrap_or(0) % self.source_ips.max(1);
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(base + off), 0))
    }

    /// The URL connection `i` connects to first.
    fn home(&self, i: usize) -> usize {
        i % self.targets.len()
    }

    /// The room connection `i` joins.
    fn room(&self, i: usize) -> &str {
        &self.rooms[(i / self.targets.len()) % self.rooms.len()]
    }

    /// The URL a connection that left URL `from` tries on its attempt number `attempt` (0, 1,
    /// …): one of the others, spread over them by `i` and rotating with each failed attempt.
    fn next_url(&self, i: usize, from: usize, attempt: u32) -> usize {
        let u = self.targets.len();
        if u == 1 {
            return 0;
        }
        let k = (i / u + attempt as usize) % (u - 1);
        (from + 1 + k) % u
    }
}

/// A live, joined connection, and what its join reply said.
struct Live {
    rd: Reader,
    wr: Writer,
    session: String,
    recovered: Option<bool>,
    replayed: u64,
    epoch_changed: bool,
    /// When the `welcome` arrived (the join was sent right after).
    welcomed: Instant,
}

/// `reason` of a failed attempt: the error's root cause, without the OS error number.
fn reason(e: &anyhow::Error) -> String {
    let root = e.root_cause().to_string();
    root.split(" (os error").next().unwrap_or(&root).to_owned()
}

/// Connects to URL `url` (with `session` when resuming), waits for `welcome`, joins (with
/// `since` the connection's position when it has one) and returns once the join is answered.
/// Messages that arrive first go through the position check (a first join: those after the
/// reply's seq). A join answered `unavailable` is sent again after `retry_after_ms`, at most
/// [`JOIN_TRIES`] times; each refusal is pushed to `refusals`.
#[allow(clippy::too_many_arguments)]
async fn connect_join(
    cfg: &Cfg,
    sh: &Shared,
    i: usize,
    url: usize,
    token: Option<&str>,
    session: Option<&str>,
    pos: &mut Position,
    refusals: &mut Vec<String>,
) -> Result<Live> {
    let mut target = cfg.targets[url].clone();
    let mut sep = if target.path.contains('?') { '&' } else { '?' };
    if let Some(t) = token {
        let _ = write!(target.path, "{sep}token={t}");
        sep = '&';
    }
    if let Some(s) = session {
        let _ = write!(target.path, "{sep}session={s}");
    }
    let seed = u64::try_from(i).unwrap_or(0) + 1;
    let (mut rd, mut wr) = ws::connect(&target, Some(cfg.source(i)), cfg.read_buffer, seed)
        .await
        .with_context(|| format!("connection {i}"))?;
    let welcome = rd.next_text(&mut wr).await?;
    if !welcome.starts_with(br#"{"op":"welcome""#) {
        bail!(
            "unexpected first frame: {}",
            String::from_utf8_lossy(&welcome[..welcome.len().min(200)])
        );
    }
    let welcomed = Instant::now();
    let session = str_field(&welcome, br#""session":""#).unwrap_or_default();
    let resuming = !pos.epoch.is_empty();
    let room = cfg.room(i);
    let mut early: Vec<(u64, String)> = Vec::new();
    let mut tries = 0u32;
    'join: loop {
        tries += 1;
        let join = if resuming {
            format!(
                r#"{{"id":{tries},"op":"join","room":"{room}","since":{{"seq":{},"epoch":"{}"}}}}"#,
                pos.last, pos.epoch
            )
        } else {
            format!(r#"{{"id":{tries},"op":"join","room":"{room}"}}"#)
        };
        wr.send_text(join.as_bytes()).await?;
        loop {
            let f = rd.next_text(&mut wr).await?;
            if f.starts_with(br#"{"op":"message""#) {
                if let Some((seq, epoch)) = parse_message(&f) {
                    if resuming {
                        pos.message(sh, seq, epoch);
                    } else {
                        early.push((seq, epoch.to_owned()));
                    }
                }
                continue;
            }
            if !f.starts_with(br#"{"op":"reply""#)
                || ws::find_u64(&f, br#""id":"#) != Some(u64::from(tries))
            {
                continue;
            }
            let v: serde_json::Value = serde_json::from_slice(&f).context("join reply")?;
            if v["ok"] != true {
                let code = v["error"]["code"].as_str().unwrap_or("?");
                if code == "unavailable" && tries < JOIN_TRIES {
                    let why = format!("join: {code}");
                    sh.refusal(&why);
                    refusals.push(why);
                    let after = v["error"]["retry_after_ms"].as_u64().unwrap_or(1000);
                    // Keep answering pings while waiting.
                    let wait = tokio::time::sleep(Duration::from_millis(after.min(10_000)));
                    tokio::pin!(wait);
                    loop {
                        tokio::select! {
                            () = &mut wait => continue 'join,
                            f = rd.next_text(&mut wr) => {
                                let f = f?;
                                if resuming && f.starts_with(br#"{"op":"message""#) {
                                    if let Some((seq, epoch)) = parse_message(&f) {
                                        pos.message(sh, seq, epoch);
                                    }
                                }
                            }
                        }
                    }
                }
                bail!("join refused: {code}: {v}");
            }
            let r = &v["result"];
            let epoch = r["epoch"].as_str().unwrap_or_default().to_owned();
            let seq = r["seq"].as_u64().unwrap_or(0);
            let recovered = r["recovered"].as_bool();
            let replayed = r["replayed"].as_u64().unwrap_or(0);
            let mut epoch_changed = false;
            if resuming {
                if recovered == Some(false) {
                    sh.recovered_false.fetch_add(1, Ordering::Relaxed);
                }
                sh.replayed.fetch_add(replayed, Ordering::Relaxed);
                if epoch != pos.epoch {
                    epoch_changed = true;
                    sh.epoch_changes.fetch_add(1, Ordering::Relaxed);
                    pos.set(sh, &epoch, seq);
                }
            } else {
                pos.set(sh, &epoch, seq);
                for (s, e) in early {
                    if e != epoch || s > seq {
                        pos.message(sh, s, &e);
                    }
                }
            }
            return Ok(Live {
                rd,
                wr,
                session,
                recovered,
                replayed,
                epoch_changed,
                welcomed,
            });
        }
    }
}

/// Reads a joined connection until it closes; returns how it ended (the close code, or
/// `lost: <error>` when it ended without a close frame) and the longest reconnect delay the
/// node asked for.
async fn hold(live: &mut Live, sh: &Shared, pos: &mut Position) -> (Result<u16, String>, u64) {
    let mut after_max = 0;
    loop {
        match live.rd.next().await {
            Ok(Frame::Text(r)) => {
                let f = live.rd.slice(&r);
                if f.starts_with(br#"{"op":"message""#) {
                    if let Some((seq, epoch)) = parse_message(f) {
                        pos.message(sh, seq, epoch);
                    }
                } else if f.starts_with(br#"{"op":"reconnect""#) {
                    // "after_ms":[0,5000]
                    if let Some(at) = ws::find_at(f, br#""after_ms":["#) {
                        let rest = &f[at..];
                        if let Some(c) = ws::find_at(rest, b",") {
                            after_max = ws::find_u64(&rest[c..], b",").unwrap_or(0);
                        }
                    }
                }
            }
            Ok(Frame::Ping(r)) => {
                let p = live.rd.slice(&r).to_vec();
                if let Err(e) = live.wr.pong(&p).await {
                    return (Err(lost(&e)), after_max);
                }
            }
            Ok(Frame::Close(code)) => return (Ok(code), after_max),
            Err(e) => return (Err(lost(&e)), after_max),
            Ok(_) => {}
        }
    }
}

/// How a connection that ended without a close frame is counted: `lost: <the error's root>`
/// ("connection closed by the server": a FIN without a close frame; "Connection reset by
/// peer": an RST).
fn lost(e: &anyhow::Error) -> String {
    format!("lost: {}", reason(e))
}

fn unix_ms() -> u64 {
    crate::report::unix_micros() / 1000
}

fn ms(d: Duration) -> f64 {
    (d.as_micros() as f64 / 10.0).round() / 100.0
}

/// One member, from its first connect until it is lost (or the run ends).
async fn member(
    i: usize,
    token: Option<String>,
    cfg: Arc<Cfg>,
    sh: Arc<Shared>,
    sem: Arc<Semaphore>,
) {
    let mut pos = Position {
        i,
        epoch: String::new(),
        last: 0,
    };
    let mut rng = Rng((u64::try_from(i).unwrap_or(0) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut url = cfg.home(i);
    sh.url_of[i].store(url, Ordering::Relaxed);
    let mut live = {
        let _permit = sem.acquire().await;
        let mut tries = 0;
        loop {
            let mut refusals = Vec::new();
            match connect_join(
                &cfg,
                &sh,
                i,
                url,
                token.as_deref(),
                None,
                &mut pos,
                &mut refusals,
            )
            .await
            {
                Ok(l) => break l,
                Err(e) => {
                    tries += 1;
                    if tries >= 3 {
                        sh.connect_failed.fetch_add(1, Ordering::Relaxed);
                        sh.error(&e);
                        sh.state[i].store(FAILED, Ordering::Relaxed);
                        sh.initial(cfg.n);
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(500 + rng.below(500))).await;
                }
            }
        }
    };
    sh.connected.fetch_add(1, Ordering::Relaxed);
    sh.state[i].store(JOINED, Ordering::Relaxed);
    sh.initial(cfg.n);
    loop {
        let (end, after_max) = hold(&mut live, &sh, &mut pos).await;
        let closed = Instant::now();
        let close_unix_ms = unix_ms();
        let why = end.clone().map_or_else(|e| e, |c| c.to_string());
        sh.close(why.clone());
        if !cfg.reconnect {
            sh.state[i].store(LOST, Ordering::Relaxed);
            return;
        }
        sh.state[i].store(RECONNECTING, Ordering::Relaxed);
        let session = std::mem::take(&mut live.session);
        drop(live);
        // Within the drain's `after_ms` when the node gave one, else within --lost-jitter-ms.
        let first = if after_max > 0 {
            after_max
        } else {
            cfg.lost_jitter_ms
        };
        if first > 0 {
            tokio::time::sleep(Duration::from_millis(rng.below(first))).await;
        }
        let from = url;
        let mut backoff = 1000;
        let mut attempts = 0u32;
        let mut refusals = Vec::new();
        let started = Instant::now();
        let mut attempt_started;
        live = loop {
            url = cfg.next_url(i, from, attempts);
            sh.url_of[i].store(url, Ordering::Relaxed);
            attempts += 1;
            attempt_started = Instant::now();
            sh.reconnect_attempts.fetch_add(1, Ordering::Relaxed);
            match connect_join(
                &cfg,
                &sh,
                i,
                url,
                token.as_deref(),
                Some(&session),
                &mut pos,
                &mut refusals,
            )
            .await
            {
                Ok(l) => break l,
                Err(e) => {
                    let why = reason(&e);
                    sh.refusal(&why);
                    refusals.push(why);
                    tokio::time::sleep(Duration::from_millis(backoff + rng.below(1000))).await;
                    backoff = (backoff * 2).min(8000);
                }
            }
        };
        let back = Instant::now();
        let started_unix_ms = unix_ms()
            .saturating_sub(u64::try_from((back - started).as_millis()).unwrap_or(u64::MAX));
        let m = Move {
            why,
            from,
            to: url,
            close_unix_ms,
            back_unix_ms: unix_ms(),
            from_close_ms: ms(back - closed),
            from_connect_ms: ms(back - started),
            last_attempt_ms: ms(back - attempt_started),
            welcome_ms: ms(live.welcomed - attempt_started),
            join_ms: ms(back - live.welcomed),
            generator_lag_max_ms: sh.lag_max_since(started_unix_ms),
            attempts,
            refusals,
            recovered: live.recovered,
            replayed: live.replayed,
            epoch_changed: live.epoch_changed,
        };
        if let Ok(mut g) = sh.moves.lock() {
            g.push((i, m));
        }
        sh.reconnects_ok.fetch_add(1, Ordering::Relaxed);
        sh.state[i].store(JOINED, Ordering::Relaxed);
    }
}

/// Measures how late a 10-ms timer fires on the generator's runtime, until aborted.
async fn lag_probe(sh: Arc<Shared>) {
    let mut next = Instant::now() + LAG_TICK;
    loop {
        tokio::time::sleep_until(next.into()).await;
        let now = Instant::now();
        let late = u64::try_from((now - next).as_micros()).unwrap_or(u64::MAX);
        if let Ok(mut h) = sh.lag.lock() {
            record(&mut h, late);
        }
        if late >= LAG_LOGGED_US {
            if let Ok(mut g) = sh.lag_log.lock() {
                if g.len() < LAG_LOG_MAX {
                    g.push((unix_ms(), late));
                }
            }
        }
        next = (next + LAG_TICK).max(now);
    }
}

/// Where the joined connections of one room stand.
#[derive(Debug, Default, Serialize)]
pub struct RoomFigures {
    joined: usize,
    /// Lowest / highest last seq over the joined connections.
    min_seq: Option<u64>,
    max_seq: Option<u64>,
    /// Joined connections per epoch they are in.
    epochs: BTreeMap<String, usize>,
}

/// [`RoomFigures`] while they are counted, epochs by index.
#[derive(Default)]
struct RoomAcc {
    joined: usize,
    min_seq: Option<u64>,
    max_seq: Option<u64>,
    epochs: BTreeMap<u32, usize>,
}

/// Figures of a `members` run (also what `--status` holds).
#[derive(Debug, Serialize)]
pub struct MembersReport {
    mode: &'static str,
    /// The first URL (`urls` lists them all).
    url: String,
    urls: Vec<String>,
    room: String,
    assigned: usize,
    /// Connections assigned to each URL first.
    assigned_per_url: Vec<usize>,
    elapsed_s: f64,
    /// Connections that joined at least once.
    connected: usize,
    /// Connections with an outcome of their first connect + join (joined or failed).
    initial_done: usize,
    /// Wall time until every connection had that outcome.
    initial_secs: Option<f64>,
    /// Connections whose first connect + join failed 3 times.
    connect_failed: usize,
    first_error: Option<String>,
    joined_now: usize,
    connecting: usize,
    reconnecting: usize,
    lost: usize,
    failed: usize,
    /// Joined connections per URL they are connected to now.
    joined_per_url: Vec<usize>,
    /// Room messages received (replays included).
    messages: u64,
    /// Messages skipped (seq jumped ahead within an epoch).
    gaps: u64,
    /// Messages received again or out of order (seq not above the last one).
    dups: u64,
    epoch_changes: u64,
    /// Joined connections per epoch they are in.
    epochs: BTreeMap<String, usize>,
    /// Lowest / highest last seq over the joined connections.
    min_seq: Option<u64>,
    max_seq: Option<u64>,
    /// The same per room.
    rooms: BTreeMap<String, RoomFigures>,
    /// Closes seen, by close code, or `lost: <error>` when the connection ended without a
    /// close frame.
    closes: BTreeMap<String, usize>,
    reconnects_ok: usize,
    reconnect_attempts: usize,
    recovered_false: usize,
    replayed: u64,
    /// Completed moves (reconnects that got their join reply), and the connections that made
    /// at least one.
    moves: usize,
    moved_clients: usize,
    /// Moves whose join reply said `recovered:true`, `false`, or had no `recovered`.
    moves_recovered: usize,
    moves_not_recovered: usize,
    moves_recovered_absent: usize,
    /// Moves that needed more than one attempt or join (some attempt was refused).
    moves_refused: usize,
    /// Refused attempts and joins, by reason (`upgrade refused: HTTP/1.1 503 …`, `Connection
    /// refused`, `join: unavailable`, …).
    refused: BTreeMap<String, usize>,
    /// Moves slower than `target_ms` from the first new connect to the join reply.
    target_ms: u64,
    moves_over_target: usize,
    /// First new TCP connect → join reply, per move (what the node adds).
    move_from_connect: Latency,
    /// End of the old connection → join reply (includes the wait within `after_ms`).
    move_from_close: Latency,
    /// The successful attempt's connect → join reply, and its parts: connect → `welcome`,
    /// `welcome` → join reply.
    move_last_attempt: Latency,
    move_welcome: Latency,
    move_join: Latency,
    /// How late the generator's 10-ms timer fired over the whole run (its own scheduling
    /// delay: a lower bound on what every figure above includes of the generator).
    generator_lag: Latency,
    /// Unix ms of the first end of a connection and of the last join reply after one.
    first_close_unix_ms: Option<u64>,
    last_back_unix_ms: Option<u64>,
    generator_rss_kib: u64,
    generator_cpu_s: f64,
    unix_ms: u64,
}

fn report(cfg: &Cfg, sh: &Shared, urls: &[String], base: &str) -> MembersReport {
    let mut counts = [0usize; 5];
    let mut min_seq: Option<u64> = None;
    let mut max_seq: Option<u64> = None;
    let mut by_epoch: BTreeMap<u32, usize> = BTreeMap::new();
    let mut per_room: BTreeMap<&str, RoomAcc> = BTreeMap::new();
    let mut assigned_per_url = vec![0; urls.len()];
    let mut joined_per_url = vec![0; urls.len()];
    for k in 0..cfg.n {
        assigned_per_url[cfg.home(k)] += 1;
        let s = sh.state[k].load(Ordering::Relaxed);
        counts[usize::from(s.min(4))] += 1;
        if s == JOINED {
            let q = sh.last_seq[k].load(Ordering::Relaxed);
            let e = sh.epoch[k].load(Ordering::Relaxed);
            min_seq = Some(min_seq.map_or(q, |m| m.min(q)));
            max_seq = Some(max_seq.map_or(q, |m| m.max(q)));
            *by_epoch.entry(e).or_default() += 1;
            let r = per_room.entry(cfg.room(k)).or_default();
            r.joined += 1;
            r.min_seq = Some(r.min_seq.map_or(q, |m| m.min(q)));
            r.max_seq = Some(r.max_seq.map_or(q, |m| m.max(q)));
            *r.epochs.entry(e).or_default() += 1;
            if let Some(j) = joined_per_url.get_mut(sh.url_of[k].load(Ordering::Relaxed)) {
                *j += 1;
            }
        }
    }
    let names = sh.epochs.lock().map(|g| g.clone()).unwrap_or_default();
    let name = |e: u32| {
        names
            .get(e as usize)
            .cloned()
            .unwrap_or_else(|| "?".to_owned())
    };
    let epochs = by_epoch.into_iter().map(|(e, n)| (name(e), n)).collect();
    let rooms = per_room
        .into_iter()
        .map(|(r, a)| {
            (
                r.to_owned(),
                RoomFigures {
                    joined: a.joined,
                    min_seq: a.min_seq,
                    max_seq: a.max_seq,
                    epochs: a.epochs.into_iter().map(|(e, n)| (name(e), n)).collect(),
                },
            )
        })
        .collect();
    let mut from_connect = Vec::new();
    let mut from_close = Vec::new();
    let mut last_attempt = Vec::new();
    let mut welcome = Vec::new();
    let mut join = Vec::new();
    let (mut rec, mut not_rec, mut absent, mut refused_moves, mut over) = (0, 0, 0, 0, 0);
    let mut moved = std::collections::BTreeSet::new();
    let (mut first_close, mut last_back): (Option<u64>, Option<u64>) = (None, None);
    let moves = sh.moves.lock().map(|g| g.clone()).unwrap_or_default();
    let us = |m: f64| Duration::from_micros((m * 1000.0) as u64);
    for (k, m) in &moves {
        moved.insert(*k);
        from_connect.push(us(m.from_connect_ms));
        from_close.push(us(m.from_close_ms));
        last_attempt.push(us(m.last_attempt_ms));
        welcome.push(us(m.welcome_ms));
        join.push(us(m.join_ms));
        match m.recovered {
            Some(true) => rec += 1,
            Some(false) => not_rec += 1,
            None => absent += 1,
        }
        if !m.refusals.is_empty() {
            refused_moves += 1;
        }
        if m.from_connect_ms > cfg.target_ms as f64 {
            over += 1;
        }
        first_close = Some(first_close.map_or(m.close_unix_ms, |v| v.min(m.close_unix_ms)));
        last_back = Some(last_back.map_or(m.back_unix_ms, |v| v.max(m.back_unix_ms)));
    }
    let initial_ms = sh.initial_secs_ms.load(Ordering::Relaxed);
    MembersReport {
        mode: "members",
        url: urls.first().cloned().unwrap_or_default(),
        urls: urls.to_vec(),
        room: base.to_owned(),
        assigned: cfg.n,
        assigned_per_url,
        elapsed_s: r2(sh.t0.elapsed().as_secs_f64()),
        connected: sh.connected.load(Ordering::Relaxed),
        initial_done: sh.initial_done.load(Ordering::Relaxed),
        initial_secs: (initial_ms > 0).then(|| r2(initial_ms as f64 / 1000.0)),
        connect_failed: sh.connect_failed.load(Ordering::Relaxed),
        first_error: sh.first_error.lock().ok().and_then(|g| g.clone()),
        joined_now: counts[usize::from(JOINED)],
        connecting: counts[usize::from(CONNECTING)],
        reconnecting: counts[usize::from(RECONNECTING)],
        lost: counts[usize::from(LOST)],
        failed: counts[usize::from(FAILED)],
        joined_per_url,
        messages: sh.messages.load(Ordering::Relaxed),
        gaps: sh.gaps.load(Ordering::Relaxed),
        dups: sh.dups.load(Ordering::Relaxed),
        epoch_changes: sh.epoch_changes.load(Ordering::Relaxed),
        epochs,
        min_seq,
        max_seq,
        rooms,
        closes: sh.closes.lock().map(|g| g.clone()).unwrap_or_default(),
        reconnects_ok: sh.reconnects_ok.load(Ordering::Relaxed),
        reconnect_attempts: sh.reconnect_attempts.load(Ordering::Relaxed),
        recovered_false: sh.recovered_false.load(Ordering::Relaxed),
        replayed: sh.replayed.load(Ordering::Relaxed),
        moves: moves.len(),
        moved_clients: moved.len(),
        moves_recovered: rec,
        moves_not_recovered: not_rec,
        moves_recovered_absent: absent,
        moves_refused: refused_moves,
        refused: sh.refused.lock().map(|g| g.clone()).unwrap_or_default(),
        target_ms: cfg.target_ms,
        moves_over_target: over,
        move_from_connect: Latency::of_durations(&from_connect),
        move_from_close: Latency::of_durations(&from_close),
        move_last_attempt: Latency::of_durations(&last_attempt),
        move_welcome: Latency::of_durations(&welcome),
        move_join: Latency::of_durations(&join),
        generator_lag: sh.lag.lock().map(|h| Latency::of(&h)).unwrap_or_default(),
        first_close_unix_ms: first_close,
        last_back_unix_ms: last_back,
        generator_rss_kib: sys::self_rss_kib(),
        generator_cpu_s: r2(sys::self_cpu().as_secs_f64()),
        unix_ms: unix_ms(),
    }
}

fn write_status(path: &PathBuf, r: &MembersReport) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(r)?)
        .with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    Ok(())
}

/// One connection at the end of the run (a line of `--clients`).
#[derive(Serialize)]
struct ClientLine<'a> {
    i: usize,
    room: &'a str,
    home: usize,
    url: usize,
    state: &'static str,
    epoch: Option<String>,
    seq: u64,
    gaps: u64,
    dups: u64,
    /// The first seq this connection missed, and when it noticed (the next one arrived).
    first_gap_seq: Option<u64>,
    first_gap_unix_ms: Option<u64>,
    moves: Vec<&'a Move>,
}

/// Writes one JSON line per connection to `path` (temporary file, then renamed).
fn write_clients(path: &PathBuf, cfg: &Cfg, sh: &Shared) -> Result<()> {
    let moves = sh.moves.lock().map(|g| g.clone()).unwrap_or_default();
    let mut by_client: Vec<Vec<&Move>> = vec![Vec::new(); cfg.n];
    for (k, m) in &moves {
        if let Some(v) = by_client.get_mut(*k) {
            v.push(m);
        }
    }
    let names = sh.epochs.lock().map(|g| g.clone()).unwrap_or_default();
    let tmp = path.with_extension("tmp");
    let file = std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    let mut w = std::io::BufWriter::new(file);
    for (k, mv) in by_client.into_iter().enumerate() {
        let line = ClientLine {
            i: k,
            room: cfg.room(k),
            home: cfg.home(k),
            url: sh.url_of[k].load(Ordering::Relaxed),
            state: STATE_NAMES[usize::from(sh.state[k].load(Ordering::Relaxed).min(4))],
            epoch: names
                .get(sh.epoch[k].load(Ordering::Relaxed) as usize)
                .cloned(),
            seq: sh.last_seq[k].load(Ordering::Relaxed),
            gaps: sh.gaps_of[k].load(Ordering::Relaxed),
            dups: sh.dups_of[k].load(Ordering::Relaxed),
            first_gap_seq: Some(sh.first_gap_seq[k].load(Ordering::Relaxed)).filter(|&v| v > 0),
            first_gap_unix_ms: Some(sh.first_gap_unix_ms[k].load(Ordering::Relaxed))
                .filter(|&v| v > 0),
            moves: mv,
        };
        serde_json::to_writer(&mut w, &line)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    Ok(())
}

/// Runs `members`.
pub async fn run(a: MembersArgs) -> Result<MembersReport> {
    let tokens: Vec<Option<String>> = if let Some(path) = &a.tokens {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let t: Vec<Option<String>> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| Some(l.to_owned()))
            .collect();
        if t.is_empty() {
            bail!("{} holds no tokens", path.display());
        }
        t
    } else {
        vec![None; a.connections.unwrap_or(0)]
    };
    let n = tokens.len();
    if n == 0 {
        bail!("no connections: give --tokens FILE or --connections N > 0");
    }
    let mut targets = Vec::with_capacity(a.url.len());
    for u in &a.url {
        let t = Target::parse(u)?;
        if t.path == "/" {
            return Err(anyhow!("--url needs the path, e.g. ws://127.0.0.1:8081/ws"));
        }
        targets.push(t);
    }
    let rooms = if a.rooms <= 1 {
        vec![a.room.clone()]
    } else {
        (0..a.rooms).map(|k| format!("{}-{k}", a.room)).collect()
    };
    let cfg = Arc::new(Cfg {
        targets,
        rooms,
        source_ips: u32::try_from(a.source_ips.max(1)).unwrap_or(1),
        source_offset: a.source_offset,
        read_buffer: a.read_buffer,
        reconnect: a.reconnect,
        lost_jitter_ms: a.lost_jitter_ms,
        target_ms: a.target_ms,
        n,
    });
    let sh = Arc::new(Shared::new(n, CONNECTING));
    eprintln!(
        "members: {n} connections to {} joining {} ({} room(s))",
        a.url.join(" "),
        a.room,
        cfg.rooms.len()
    );
    let sem = Arc::new(Semaphore::new(a.concurrency.max(1)));
    let mut tasks = Vec::with_capacity(n + 1);
    tasks.push(tokio::spawn(lag_probe(sh.clone())));
    for (i, token) in tokens.into_iter().enumerate() {
        tasks.push(tokio::spawn(member(
            i,
            token,
            cfg.clone(),
            sh.clone(),
            sem.clone(),
        )));
    }

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("SIGTERM handler")?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("SIGINT handler")?;
    let end = async {
        if a.hold == 0 {
            std::future::pending::<()>().await;
        } else {
            tokio::time::sleep(Duration::from_secs(a.hold)).await;
        }
    };
    tokio::pin!(end);
    let mut tick = tokio::time::interval(Duration::from_millis(a.status_ms.max(50)));
    let mut announced = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let r = report(&cfg, &sh, &a.url, &a.room);
                if !announced && r.initial_done == n {
                    announced = true;
                    eprintln!(
                        "members: {} joined, {} failed in {:.2} s",
                        r.joined_now, r.failed, r.initial_secs.unwrap_or(0.0)
                    );
                }
                if let Some(p) = &a.status {
                    write_status(p, &r)?;
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            () = &mut end => break,
        }
    }
    for t in &tasks {
        t.abort();
    }
    let r = report(&cfg, &sh, &a.url, &a.room);
    if let Some(p) = &a.clients {
        write_clients(p, &cfg, &sh)?;
    }
    if let Some(p) = &a.status {
        write_status(p, &r)?;
    }
    Ok(r)
}

impl MembersReport {
    /// Human-readable summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "members: {} connections to {} in room {}",
            self.assigned,
            self.urls.join(" "),
            self.room
        );
        let _ = writeln!(
            s,
            "  first connect + join: {} joined, {} failed (3 tries each), in {} s",
            self.connected,
            self.connect_failed,
            self.initial_secs
                .map_or_else(|| "(not finished)".to_owned(), |v| format!("{v:.2}"))
        );
        if let Some(e) = &self.first_error {
            let _ = writeln!(s, "  first error: {e}");
        }
        let _ = writeln!(
            s,
            "  at the end: {} joined, {} reconnecting, {} lost; seq {}..{}; epochs {:?}",
            self.joined_now,
            self.reconnecting,
            self.lost,
            self.min_seq.map_or("-".into(), |v| v.to_string()),
            self.max_seq.map_or("-".into(), |v| v.to_string()),
            self.epochs
        );
        let _ = writeln!(
            s,
            "  messages {}, gaps {}, duplicates/out of order {}, epoch changes {}",
            self.messages, self.gaps, self.dups, self.epoch_changes
        );
        let _ = write!(
            s,
            "  closes {:?}; reconnects {} ok of {} attempts ({} not recovered, {} replayed)",
            self.closes,
            self.reconnects_ok,
            self.reconnect_attempts,
            self.recovered_false,
            self.replayed
        );
        if self.moves > 0 {
            let _ = write!(
                s,
                "\n  moves {} ({} clients): recovered {}, not recovered {}, no `recovered` {}, \
                 with refusals {} {:?}; over {} ms from connect: {}\n  \
                 from connect: {}\n  from close:   {}\n  generator lag: {}",
                self.moves,
                self.moved_clients,
                self.moves_recovered,
                self.moves_not_recovered,
                self.moves_recovered_absent,
                self.moves_refused,
                self.refused,
                self.target_ms,
                self.moves_over_target,
                self.move_from_connect.line(),
                self.move_from_close.line(),
                self.generator_lag.line()
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_message_positions() {
        let m = br#"{"op":"message","room":"big","seq":58,"epoch":"3f9a1c07","from":{"backend":true},"data":{"n":1}}"#;
        assert_eq!(parse_message(m), Some((58, "3f9a1c07")));
        let w = br#"{"op":"welcome","protocol":1,"client":"c_x","session":"ab-_9.cd","heartbeat_ms":1}"#;
        assert_eq!(str_field(w, br#""session":""#).as_deref(), Some("ab-_9.cd"));
    }

    #[test]
    fn counts_gaps_duplicates_and_epoch_changes() {
        let sh = Shared::new(1, JOINED);
        let mut p = Position {
            i: 0,
            epoch: String::new(),
            last: 0,
        };
        p.set(&sh, "e1", 5);
        for s in [6, 7, 7, 10, 9] {
            p.message(&sh, s, "e1");
        }
        p.message(&sh, 1, "e2");
        assert_eq!(sh.messages.load(Ordering::Relaxed), 6);
        assert_eq!(sh.gaps.load(Ordering::Relaxed), 2);
        assert_eq!(sh.dups.load(Ordering::Relaxed), 2);
        assert_eq!(sh.gaps_of[0].load(Ordering::Relaxed), 2);
        assert_eq!(sh.dups_of[0].load(Ordering::Relaxed), 2);
        assert_eq!(sh.first_gap_seq[0].load(Ordering::Relaxed), 8);
        assert_eq!(sh.epoch_changes.load(Ordering::Relaxed), 1);
        assert_eq!(sh.last_seq[0].load(Ordering::Relaxed), 1);
    }

    fn cfg(urls: usize, rooms: usize) -> Cfg {
        Cfg {
            targets: (0..urls)
                .map(|u| Target::parse(&format!("ws://127.0.0.1:{}/ws", 8081 + u)).unwrap())
                .collect(),
            rooms: (0..rooms).map(|k| format!("r-{k}")).collect(),
            source_ips: 1,
            source_offset: 0,
            read_buffer: 512,
            reconnect: true,
            lost_jitter_ms: 0,
            target_ms: 1000,
            n: 12,
        }
    }

    #[test]
    fn spreads_connections_rooms_and_moves() {
        let c = cfg(3, 2);
        // Connection i: node i mod 3, room (i / 3) mod 2, so every node has every room.
        assert_eq!(
            (0..6).map(|i| c.home(i)).collect::<Vec<_>>(),
            [0, 1, 2, 0, 1, 2]
        );
        assert_eq!(
            (0..6).map(|i| c.room(i)).collect::<Vec<_>>(),
            ["r-0", "r-0", "r-0", "r-1", "r-1", "r-1"]
        );
        // A move never goes back to the URL left; the clients of one node spread over the
        // others, and a failed attempt tries the next one.
        for i in 0..12 {
            for a in 0..4 {
                assert_ne!(c.next_url(i, 1, a), 1);
            }
        }
        assert_eq!(c.next_url(1, 1, 0), 2);
        assert_eq!(c.next_url(4, 1, 0), 0);
        assert_eq!(c.next_url(1, 1, 1), 0);
        let one = cfg(1, 1);
        assert_eq!(one.next_url(5, 0, 3), 0);
    }
}
