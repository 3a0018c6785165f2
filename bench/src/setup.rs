//! Opening and joining many connections with bounded concurrency.

use crate::proto::{JoinReply, Proto};
use crate::ws::{self, Reader, Target, Writer};
use anyhow::{anyhow, bail, Context as _, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// How to open connections.
#[derive(Debug, Clone)]
pub struct ConnectOpts {
    /// Servers: connection `i` goes to `targets[i % len]`.
    pub targets: Vec<Target>,
    /// What the servers speak.
    pub proto: Proto,
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

/// Connects (connection number `i`, to `targets[i % len]`) and waits until the server says
/// the connection is ready (Gatehouse: `welcome`; Socket.IO: the namespace connect answer).
pub async fn open(opts: &ConnectOpts, i: usize) -> Result<Conn> {
    open_to(opts, i, &opts.targets[i % opts.targets.len()]).await
}

/// Like [`open`], to a given target.
pub async fn open_to(opts: &ConnectOpts, i: usize, target: &Target) -> Result<Conn> {
    let fut = async {
        let src = ws::source_addr(i, opts.source_ips);
        let (mut rd, mut wr) = ws::connect(target, Some(src), opts.read_buffer, i as u64 + 1)
            .await
            .with_context(|| format!("connection {i} from {src}"))?;
        let first = rd.next_text(&mut wr).await?;
        let (reply, ready) = opts.proto.greet(&first).map_err(|e| anyhow!(e))?;
        if let Some(r) = reply {
            wr.send_text(r).await?;
        }
        if !ready {
            loop {
                let t = rd.next_text(&mut wr).await?;
                if let Some(hb) = opts.proto.heartbeat_reply(&t) {
                    wr.send_text(hb).await?;
                } else if opts.proto.is_ready(&t) {
                    break;
                } else {
                    bail!(
                        "unexpected frame before ready: {}",
                        String::from_utf8_lossy(&t[..t.len().min(200)])
                    );
                }
            }
        }
        Ok(Conn { rd, wr })
    };
    tokio::time::timeout(opts.timeout, fut)
        .await
        .map_err(|_| anyhow!("connection {i}: not ready within {:?}", opts.timeout))?
}

/// What a join reply said.
#[derive(Debug, Clone)]
pub struct Joined {
    /// The room's `epoch` (Gatehouse: each room actor has its own, so two epochs for one room
    /// name mean two owners; empty elsewhere).
    pub epoch: String,
}

/// Joins `room`.
pub async fn join(
    c: &mut Conn,
    proto: Proto,
    room: &str,
    id: u64,
    timeout: Duration,
) -> Result<Joined> {
    let req = proto.join_frame(room, id);
    join_with(c, proto, &req, id, timeout)
        .await
        .with_context(|| format!("join {room}"))
}

/// Sends the join request `req` (whose id is `id`) and waits for its reply, asking again
/// after `retry_after_ms` when the server says so.
pub async fn join_with(
    c: &mut Conn,
    proto: Proto,
    req: &str,
    id: u64,
    timeout: Duration,
) -> Result<Joined> {
    let fut = async {
        // A join past the connection's room-creation rate is answered `rate_limited` with
        // `retry_after_ms`: asked again then, as a client should (within `timeout`).
        'ask: loop {
            c.wr.send_text(req.as_bytes()).await?;
            loop {
                let t = c.rd.next_text(&mut c.wr).await?;
                if let Some(hb) = proto.heartbeat_reply(&t) {
                    c.wr.send_text(hb).await?;
                    continue;
                }
                match proto.join_reply(&t, id) {
                    JoinReply::No => {}
                    JoinReply::Ok { epoch } => return Ok(Joined { epoch }),
                    JoinReply::RetryAfter(ms) => {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        continue 'ask;
                    }
                    JoinReply::Refused(e) => bail!("refused: {e}"),
                }
            }
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| anyhow!("no join reply within {timeout:?}"))?
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
    proto: Proto,
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
            let r = join(&mut c, proto, &room, 1, timeout).await;
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
