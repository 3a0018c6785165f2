//! Opening and joining many connections with bounded concurrency.

use crate::ws::{self, Reader, Target, Writer};
use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// How to open connections.
#[derive(Debug, Clone)]
pub struct ConnectOpts {
    /// Server.
    pub target: Target,
    /// Source addresses used, from 127.0.0.2 on (round-robin).
    pub source_ips: usize,
    /// Initial read buffer per connection, bytes.
    pub read_buffer: usize,
    /// Deadline for one connect + welcome, or one join.
    pub timeout: Duration,
}

/// An open connection past its `welcome`.
pub struct Conn {
    /// Reading half.
    pub rd: Reader,
    /// Writing half.
    pub wr: Writer,
}

/// Connects (connection number `i`) and reads the `welcome` frame.
pub async fn open(opts: &ConnectOpts, i: usize) -> Result<Conn> {
    let fut = async {
        let src = ws::source_addr(i, opts.source_ips);
        let (mut rd, mut wr) = ws::connect(&opts.target, Some(src), opts.read_buffer, i as u64 + 1)
            .await
            .with_context(|| format!("connection {i} from {src}"))?;
        let w = rd.next_text(&mut wr).await?;
        let v: Value = serde_json::from_slice(&w).context("welcome is not JSON")?;
        if v["op"] != "welcome" {
            bail!("first frame is not a welcome: {v}");
        }
        Ok(Conn { rd, wr })
    };
    tokio::time::timeout(opts.timeout, fut)
        .await
        .map_err(|_| anyhow!("connection {i}: no welcome within {:?}", opts.timeout))?
}

/// What a join reply said.
#[derive(Debug, Clone)]
pub struct Joined {
    /// The room's `seq` at join time.
    pub seq: u64,
    /// The room's `epoch` (each room actor has its own: two epochs for one room name mean two
    /// owners).
    pub epoch: String,
}

/// Joins `room`.
pub async fn join(c: &mut Conn, room: &str, id: u64, timeout: Duration) -> Result<Joined> {
    let req = serde_json::json!({"id": id, "op": "join", "room": room}).to_string();
    let fut = async {
        c.wr.send_text(req.as_bytes()).await?;
        loop {
            let t = c.rd.next_text(&mut c.wr).await?;
            if !t.starts_with(br#"{"op":"reply""#) {
                continue;
            }
            let v: Value = serde_json::from_slice(&t).context("reply is not JSON")?;
            if v["id"] != id {
                continue;
            }
            if v["ok"] != true {
                bail!("join {room} failed: {v}");
            }
            return Ok(Joined {
                seq: v["result"]["seq"].as_u64().unwrap_or(0),
                epoch: v["result"]["epoch"].as_str().unwrap_or_default().to_owned(),
            });
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| anyhow!("join {room}: no reply within {timeout:?}"))?
}

/// Result of opening many connections.
pub struct Opened {
    /// Connections in index order; `None` where opening failed.
    pub conns: Vec<Option<Conn>>,
    /// Per-connection connect + welcome time of the successful ones.
    pub latencies: Vec<Duration>,
    /// Failures and the first error.
    pub failed: usize,
    /// First error seen.
    pub first_error: Option<String>,
    /// Wall time of the whole phase.
    pub elapsed: Duration,
}

/// Opens `n` connections, at most `concurrency` in flight.
pub async fn open_many(opts: Arc<ConnectOpts>, n: usize, concurrency: usize) -> Opened {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    let t0 = Instant::now();
    for i in 0..n {
        let sem = sem.clone();
        let opts = opts.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let s = Instant::now();
            let r = open(&opts, i).await;
            (i, r, s.elapsed())
        });
    }
    let mut conns: Vec<Option<Conn>> = (0..n).map(|_| None).collect();
    let mut latencies = Vec::with_capacity(n);
    let mut failed = 0;
    let mut first_error = None;
    while let Some(r) = set.join_next().await {
        match r {
            Ok((i, Ok(c), d)) => {
                conns[i] = Some(c);
                latencies.push(d);
            }
            Ok((_, Err(e), _)) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("task: {e}"));
            }
        }
    }
    Opened {
        conns,
        latencies,
        failed,
        first_error,
        elapsed: t0.elapsed(),
    }
}

/// Joins every connection to `room_of(index)`, at most `concurrency` in flight. Returns the
/// joined connections with their index and join reply, the failures, the first error and the
/// phase's wall time.
pub async fn join_many(
    conns: Vec<Option<Conn>>,
    room_of: impl Fn(usize) -> String,
    concurrency: usize,
    timeout: Duration,
) -> (Vec<(usize, Conn, Joined)>, usize, Option<String>, Duration) {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    let t0 = Instant::now();
    for (i, c) in conns.into_iter().enumerate() {
        let Some(mut c) = c else { continue };
        let room = room_of(i);
        let sem = sem.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let r = join(&mut c, &room, 1, timeout).await;
            (i, c, r)
        });
    }
    let mut joined = Vec::new();
    let mut failed = 0;
    let mut first_error = None;
    while let Some(r) = set.join_next().await {
        match r {
            Ok((i, c, Ok(j))) => joined.push((i, c, j)),
            Ok((_, _, Err(e))) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("task: {e}"));
            }
        }
    }
    joined.sort_by_key(|(i, _, _)| *i);
    (joined, failed, first_error, t0.elapsed())
}

/// A room name unique to this run.
pub fn run_tag() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!("{}-{}", std::process::id(), micros % 1_000_000_000)
}
