//! `members`: many authenticated members of ONE room, held open and checked (issue #16: a
//! room whose member list is larger than ractor_cluster's 16 MiB frame limit; `big-room.sh`).
//!
//! Connection `i` connects with `?token=<line i of --tokens>` (a JWT whose `sub` is the user
//! id: the script mints them), waits for `welcome`, joins `--room`, and is then held: pings
//! are answered, and every room `message` is checked against the connection's position in the
//! room (`epoch`, last `seq`): the next seq of the same epoch is in order; a lower or equal seq
//! is a duplicate; a higher one is a gap (the messages skipped are counted); another epoch is
//! an epoch change. With `--reconnect`, a connection the node closes with 1012 (drain) comes
//! back like a well-behaved client: it waits within the `reconnect` frame's `after_ms`, then
//! connects again to the same URL with `?session=` (backing off 1 → 8 s while the node refuses)
//! and joins with `since` its position; the replay goes through the same check. Any other
//! close, or a lost connection, leaves the connection lost.
//!
//! Every `--status-ms` the figures so far go to `--status` (written to a temporary file and
//! renamed, so a reader never sees half a file): how many connections are joined, reconnecting
//! or lost, the lowest and highest seq the joined ones have reached, the epochs they are in,
//! messages, gaps, duplicates, closes by code. The run ends after `--hold` seconds or at
//! SIGTERM / SIGINT, and prints the same figures (one JSON line with `--json`).

use crate::report::r2;
use crate::sys;
use crate::ws::{self, Frame, Reader, Target, Writer};
use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Arguments of `members`.
#[derive(Debug, Args)]
pub struct MembersArgs {
    /// The node's WebSocket URL, e.g. ws://127.0.0.1:8081/ws
    #[arg(long)]
    url: String,
    /// The room every connection joins.
    #[arg(long)]
    room: String,
    /// File with one JWT per line: one connection per line (keep ≤ ~18 000 per process: the
    /// fd limit is 20 000).
    #[arg(long)]
    tokens: PathBuf,
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
    /// Come back after a close (a drain's 1012, or a lost connection): same URL, ?session=,
    /// join with since.
    #[arg(long)]
    reconnect: bool,
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
const NO_EPOCH: u32 = u32::MAX;

/// Counters and per-connection positions shared by the connection tasks and the reporter.
struct Shared {
    state: Vec<AtomicU8>,
    last_seq: Vec<AtomicU64>,
    epoch: Vec<AtomicU32>,
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
                return;
            } else {
                sh.gaps.fetch_add(seq - self.last - 1, Ordering::Relaxed);
                self.last = seq;
            }
            sh.last_seq[self.i].store(seq, Ordering::Relaxed);
        } else {
            sh.epoch_changes.fetch_add(1, Ordering::Relaxed);
            self.set(sh, epoch, seq);
        }
    }
}

/// `seq` and `epoch` of a `message` frame.
fn parse_message(f: &[u8]) -> Option<(u64, String)> {
    let seq = ws::find_u64(f, br#""seq":"#)?;
    let key = br#""epoch":""#;
    let at = ws::find_at(f, key)? + key.len();
    let len = f[at..].iter().position(|&b| b == b'"')?;
    Some((seq, String::from_utf8_lossy(&f[at..at + len]).into_owned()))
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
    target: Target,
    room: String,
    source_ips: u32,
    source_offset: u32,
    read_buffer: usize,
    reconnect: bool,
    n: usize,
}

impl Cfg {
    fn source(&self, i: usize) -> SocketAddr {
        let base = u32::from(Ipv4Addr::new(127, 0, 0, 2)) + self.source_offset;
        let off = u32::try_from(i).unwrap_or(0) % self.source_ips.max(1);
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(base + off), 0))
    }
}

/// A live, joined connection.
struct Live {
    rd: Reader,
    wr: Writer,
    session: String,
}

/// Connects (with `session` when resuming), waits for `welcome`, joins (with `since` the
/// connection's position when it has one) and returns once the join is answered. Messages that
/// arrive first go through the position check (a first join: those after the reply's seq).
async fn connect_join(
    cfg: &Cfg,
    sh: &Shared,
    i: usize,
    token: &str,
    session: Option<&str>,
    pos: &mut Position,
) -> Result<Live> {
    let mut target = cfg.target.clone();
    let sep = if target.path.contains('?') { '&' } else { '?' };
    let _ = write!(target.path, "{sep}token={token}");
    if let Some(s) = session {
        let _ = write!(target.path, "&session={s}");
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
    let session = str_field(&welcome, br#""session":""#).unwrap_or_default();
    let resuming = !pos.epoch.is_empty();
    let join = if resuming {
        format!(
            r#"{{"id":1,"op":"join","room":"{}","since":{{"seq":{},"epoch":"{}"}}}}"#,
            cfg.room, pos.last, pos.epoch
        )
    } else {
        format!(r#"{{"id":1,"op":"join","room":"{}"}}"#, cfg.room)
    };
    wr.send_text(join.as_bytes()).await?;
    let mut early: Vec<(u64, String)> = Vec::new();
    loop {
        let f = rd.next_text(&mut wr).await?;
        if f.starts_with(br#"{"op":"message""#) {
            if let Some((seq, epoch)) = parse_message(&f) {
                if resuming {
                    pos.message(sh, seq, &epoch);
                } else {
                    early.push((seq, epoch));
                }
            }
            continue;
        }
        if !f.starts_with(br#"{"op":"reply""#) || ws::find_u64(&f, br#""id":"#) != Some(1) {
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(&f).context("join reply")?;
        if v["ok"] != true {
            bail!("join refused: {v}");
        }
        let r = &v["result"];
        let epoch = r["epoch"].as_str().unwrap_or_default().to_owned();
        let seq = r["seq"].as_u64().unwrap_or(0);
        if resuming {
            if r["recovered"] == false {
                sh.recovered_false.fetch_add(1, Ordering::Relaxed);
            }
            sh.replayed
                .fetch_add(r["replayed"].as_u64().unwrap_or(0), Ordering::Relaxed);
            if epoch != pos.epoch {
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
        return Ok(Live { rd, wr, session });
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
                        pos.message(sh, seq, &epoch);
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
    let root = e.root_cause().to_string();
    let short = root.split(" (os error").next().unwrap_or(&root);
    format!("lost: {short}")
}

/// One member, from its first connect until it is lost (or the run ends).
async fn member(i: usize, token: String, cfg: Arc<Cfg>, sh: Arc<Shared>, sem: Arc<Semaphore>) {
    let mut pos = Position {
        i,
        epoch: String::new(),
        last: 0,
    };
    let mut rng = Rng((u64::try_from(i).unwrap_or(0) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut live = {
        let _permit = sem.acquire().await;
        let mut tries = 0;
        loop {
            match connect_join(&cfg, &sh, i, &token, None, &mut pos).await {
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
        sh.close(end.clone().map_or_else(|e| e, |c| c.to_string()));
        if !cfg.reconnect {
            sh.state[i].store(LOST, Ordering::Relaxed);
            return;
        }
        sh.state[i].store(RECONNECTING, Ordering::Relaxed);
        let session = std::mem::take(&mut live.session);
        drop(live);
        // Within the drain's `after_ms` when the node gave one, else within a second.
        let first = if after_max > 0 { after_max } else { 1000 };
        tokio::time::sleep(Duration::from_millis(rng.below(first))).await;
        let mut backoff = 1000;
        live = loop {
            sh.reconnect_attempts.fetch_add(1, Ordering::Relaxed);
            match connect_join(&cfg, &sh, i, &token, Some(&session), &mut pos).await {
                Ok(l) => break l,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(backoff + rng.below(1000))).await;
                    backoff = (backoff * 2).min(8000);
                }
            }
        };
        sh.reconnects_ok.fetch_add(1, Ordering::Relaxed);
        sh.state[i].store(JOINED, Ordering::Relaxed);
    }
}

/// Figures of a `members` run (also what `--status` holds).
#[derive(Debug, Serialize)]
pub struct MembersReport {
    mode: &'static str,
    url: String,
    room: String,
    assigned: usize,
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
    /// Closes seen, by close code, or `lost: <error>` when the connection ended without a
    /// close frame.
    closes: BTreeMap<String, usize>,
    reconnects_ok: usize,
    reconnect_attempts: usize,
    recovered_false: usize,
    replayed: u64,
    generator_rss_kib: u64,
    generator_cpu_s: f64,
    unix_ms: u64,
}

fn report(cfg: &Cfg, sh: &Shared, url: &str) -> MembersReport {
    let mut counts = [0usize; 5];
    let mut min_seq: Option<u64> = None;
    let mut max_seq: Option<u64> = None;
    let mut by_epoch: BTreeMap<u32, usize> = BTreeMap::new();
    for k in 0..cfg.n {
        let s = sh.state[k].load(Ordering::Relaxed);
        counts[usize::from(s.min(4))] += 1;
        if s == JOINED {
            let q = sh.last_seq[k].load(Ordering::Relaxed);
            min_seq = Some(min_seq.map_or(q, |m| m.min(q)));
            max_seq = Some(max_seq.map_or(q, |m| m.max(q)));
            *by_epoch
                .entry(sh.epoch[k].load(Ordering::Relaxed))
                .or_default() += 1;
        }
    }
    let names = sh.epochs.lock().map(|g| g.clone()).unwrap_or_default();
    let epochs = by_epoch
        .into_iter()
        .map(|(e, n)| {
            (
                names
                    .get(e as usize)
                    .cloned()
                    .unwrap_or_else(|| "?".to_owned()),
                n,
            )
        })
        .collect();
    let initial_ms = sh.initial_secs_ms.load(Ordering::Relaxed);
    MembersReport {
        mode: "members",
        url: url.to_owned(),
        room: cfg.room.clone(),
        assigned: cfg.n,
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
        messages: sh.messages.load(Ordering::Relaxed),
        gaps: sh.gaps.load(Ordering::Relaxed),
        dups: sh.dups.load(Ordering::Relaxed),
        epoch_changes: sh.epoch_changes.load(Ordering::Relaxed),
        epochs,
        min_seq,
        max_seq,
        closes: sh.closes.lock().map(|g| g.clone()).unwrap_or_default(),
        reconnects_ok: sh.reconnects_ok.load(Ordering::Relaxed),
        reconnect_attempts: sh.reconnect_attempts.load(Ordering::Relaxed),
        recovered_false: sh.recovered_false.load(Ordering::Relaxed),
        replayed: sh.replayed.load(Ordering::Relaxed),
        generator_rss_kib: sys::self_rss_kib(),
        generator_cpu_s: r2(sys::self_cpu().as_secs_f64()),
        unix_ms: crate::report::unix_micros() / 1000,
    }
}

fn write_status(path: &PathBuf, r: &MembersReport) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(r)?)
        .with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    Ok(())
}

/// Runs `members`.
pub async fn run(a: MembersArgs) -> Result<MembersReport> {
    let text = std::fs::read_to_string(&a.tokens)
        .with_context(|| format!("read {}", a.tokens.display()))?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    drop(text);
    if tokens.is_empty() {
        bail!("{} holds no tokens", a.tokens.display());
    }
    let n = tokens.len();
    let target = Target::parse(&a.url)?;
    if target.path == "/" {
        return Err(anyhow!("--url needs the path, e.g. ws://127.0.0.1:8081/ws"));
    }
    let cfg = Arc::new(Cfg {
        target,
        room: a.room.clone(),
        source_ips: u32::try_from(a.source_ips.max(1)).unwrap_or(1),
        source_offset: a.source_offset,
        read_buffer: a.read_buffer,
        reconnect: a.reconnect,
        n,
    });
    let sh = Arc::new(Shared::new(n, CONNECTING));
    eprintln!("members: {n} connections to {} joining {}", a.url, a.room);
    let sem = Arc::new(Semaphore::new(a.concurrency.max(1)));
    let mut tasks = Vec::with_capacity(n);
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
                let r = report(&cfg, &sh, &a.url);
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
    let r = report(&cfg, &sh, &a.url);
    if let Some(p) = &a.status {
        write_status(p, &r)?;
    }
    for t in &tasks {
        t.abort();
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
            self.assigned, self.url, self.room
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
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_message_positions() {
        let m = br#"{"op":"message","room":"big","seq":58,"epoch":"3f9a1c07","from":{"backend":true},"data":{"n":1}}"#;
        assert_eq!(parse_message(m), Some((58, "3f9a1c07".to_owned())));
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
        assert_eq!(sh.epoch_changes.load(Ordering::Relaxed), 1);
        assert_eq!(sh.last_seq[0].load(Ordering::Relaxed), 1);
    }
}
