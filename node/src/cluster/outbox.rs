//! A link's outbound queue, with control frames first. ractor_cluster writes every message for a
//! peer through one FIFO; behind a peer that reads slowly, a heartbeat would wait behind
//! everything queued before it, and the peer would mark this node down. So the write half handed
//! to the library takes what the library writes at once (it never waits on the socket), splits
//! it into frames, and keeps two queues: control frames ([`super::frames::is_control`]) and bulk.
//! A writer task writes them to the socket, a control frame as soon as the bulk segment being
//! written is out (segments are at most [`SEGMENT`] bytes, or one larger frame). With
//! `TCP_NOTSENT_LOWAT` on the socket, little waits in the kernel: what waits is here, where it is
//! counted and ordered.
//!
//! Bounds: what waits here plus what the library still holds for the peer (counted where it is
//! enqueued, [`crate::peer_queue`]) over the budget fails the link; a write that makes no
//! progress for the stall time fails it. A failed link's socket is shut down both ways, so the
//! library's session ends however idle it is.
//!
//! Owns the queue and the socket's write half; never decodes more of a frame than
//! [`super::frames`] does.

use super::frames::is_control;
use super::link_stats::{Fences, LinkStats, NOTSENT_LOWAT};
use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// Largest run of bulk frames written as one segment (a control frame waits at most for one).
pub const SEGMENT: usize = 64 * 1024;
/// Bytes of a frame's length prefix.
const HEADER: usize = 8;

/// The largest frame any link of this process has queued (for
/// `gatehouse_cluster_frame_bytes_max`: no message between nodes may approach the library's
/// 16 MiB frame limit).
static LARGEST: AtomicU64 = AtomicU64::new(0);

/// The largest frame (length prefix included) any link has queued since the process started.
pub fn largest_frame() -> u64 {
    LARGEST.load(Ordering::Relaxed)
}

#[derive(Default)]
struct Queues {
    /// Bytes of a frame not yet whole.
    carry: BytesMut,
    control: VecDeque<Bytes>,
    bulk: VecDeque<Bytes>,
    /// Bytes in `carry`, `control` and `bulk`, plus the segment being written.
    held: usize,
    /// Why the link failed.
    failed: Option<&'static str>,
    /// The library dropped its write half: the writer stops.
    closed: bool,
}

impl Queues {
    /// Moves every whole frame in `carry` to its queue; runs of bulk frames become segments of
    /// at most [`SEGMENT`] bytes (or one larger frame).
    fn split(&mut self) {
        // `carry[..run]` is a run of whole bulk frames not queued yet; the next frame starts at
        // `run`.
        let mut run = 0usize;
        while let Some(head) = self.carry.get(run..run + HEADER) {
            let len = u64::from_be_bytes(head.try_into().unwrap_or([0; 8]));
            let Some(total) = usize::try_from(len)
                .ok()
                .and_then(|l| l.checked_add(HEADER))
            else {
                break;
            };
            if self.carry.len() < run + total {
                break;
            }
            LARGEST.fetch_max(total as u64, Ordering::Relaxed);
            if is_control(&self.carry[run + HEADER..run + total]) {
                if run > 0 {
                    self.bulk.push_back(self.carry.split_to(run).freeze());
                    run = 0;
                }
                self.control.push_back(self.carry.split_to(total).freeze());
                continue;
            }
            if run > 0 && run + total > SEGMENT {
                self.bulk.push_back(self.carry.split_to(run).freeze());
                run = 0;
            }
            run += total;
        }
        if run > 0 {
            self.bulk.push_back(self.carry.split_to(run).freeze());
        }
    }
}

/// The queue shared by the library's write half and the writer task.
pub struct Outbox {
    queues: Mutex<Queues>,
    wake: Notify,
    stats: Arc<LinkStats>,
    fences: Fences,
}

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publishes what waits for the peer; true when it is over the budget.
    fn publish(&self, held: usize) -> bool {
        let waiting = self.stats.publish(held as u64);
        waiting > self.fences.budget as u64
    }

    fn fail(&self, why: &'static str) {
        if let Ok(mut f) = self.stats.fenced.lock() {
            f.get_or_insert(why);
        }
        let mut q = self.lock();
        q.failed.get_or_insert(why);
        q.control.clear();
        q.bulk.clear();
        q.carry.clear();
        q.held = 0;
        drop(q);
        self.stats.publish(0);
        self.wake.notify_one();
    }

    fn next(&self) -> Result<Option<Bytes>, ()> {
        let mut q = self.lock();
        if q.closed || q.failed.is_some() {
            return Err(());
        }
        Ok(q.control.pop_front().or_else(|| q.bulk.pop_front()))
    }
}

fn fenced(why: &'static str) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("cluster link fenced: {why}"),
    )
}

/// The write half handed to ractor_cluster: takes every write at once.
pub struct OutboxWriter {
    outbox: Arc<Outbox>,
}

impl Drop for OutboxWriter {
    fn drop(&mut self) {
        self.outbox.lock().closed = true;
        self.outbox.wake.notify_one();
    }
}

impl AsyncWrite for OutboxWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let o = &self.outbox;
        let mut q = o.lock();
        if let Some(why) = q.failed {
            return Poll::Ready(Err(fenced(why)));
        }
        q.carry.extend_from_slice(buf);
        q.held += buf.len();
        q.split();
        let held = q.held;
        drop(q);
        o.stats.took(buf.len() as u64);
        if o.publish(held) {
            o.fail("outbound budget exceeded");
            return Poll::Ready(Err(fenced("outbound budget exceeded")));
        }
        o.wake.notify_one();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.outbox.lock().failed {
            Some(why) => Poll::Ready(Err(fenced(why))),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.outbox.lock().closed = true;
        self.outbox.wake.notify_one();
        Poll::Ready(Ok(()))
    }
}

/// Starts the writer task for `socket` and returns the write half for the library.
pub fn start<W: AsyncWrite + Unpin + LinkSocket + Send + 'static>(
    socket: W,
    fences: Fences,
    stats: Arc<LinkStats>,
) -> OutboxWriter {
    let outbox = Arc::new(Outbox {
        queues: Mutex::default(),
        wake: Notify::new(),
        stats,
        fences,
    });
    tokio::spawn(write(outbox.clone(), socket));
    OutboxWriter { outbox }
}

/// Writes queued frames, control first, until the link closes or fails.
async fn write<W: AsyncWrite + Unpin + LinkSocket>(outbox: Arc<Outbox>, mut socket: W) {
    loop {
        let segment = match outbox.next() {
            Err(()) => break,
            Ok(Some(s)) => s,
            Ok(None) => {
                outbox.wake.notified().await;
                continue;
            }
        };
        if let Err(why) = write_segment(&outbox, &mut socket, segment).await {
            outbox.fail(why);
            break;
        }
    }
    // Failed or closed: the library's read half must end too, however idle the link is, and
    // nothing waits here any more.
    socket.shut_down();
    outbox.stats.publish(0);
}

async fn write_segment<W: AsyncWrite + Unpin + LinkSocket>(
    outbox: &Outbox,
    socket: &mut W,
    mut segment: Bytes,
) -> Result<(), &'static str> {
    while segment.has_remaining() {
        // Little may wait unsent in the kernel (a heartbeat could not overtake it there).
        match tokio::time::timeout(outbox.fences.stall, socket.unsent_room()).await {
            Err(_) => return Err("peer not reading"),
            Ok(Err(_)) => return Err("write failed"),
            Ok(Ok(())) => {}
        }
        match tokio::time::timeout(outbox.fences.stall, socket.write(&segment)).await {
            Err(_) => return Err("peer not reading"),
            Ok(Err(_) | Ok(0)) => return Err("write failed"),
            Ok(Ok(n)) => {
                segment.advance(n);
                outbox.stats.written.fetch_add(n as u64, Ordering::Relaxed);
                let held = {
                    let mut q = outbox.lock();
                    q.held = q.held.saturating_sub(n);
                    q.held
                };
                outbox.publish(held);
            }
        }
    }
    Ok(())
}

/// What the writer needs of a link's socket beyond writing.
pub trait LinkSocket {
    /// Shuts the socket down both ways (the library's read half ends too).
    fn shut_down(&self);
    /// Waits until the kernel holds at most [`NOTSENT_LOWAT`] unsent bytes.
    fn unsent_room(&self) -> impl std::future::Future<Output = io::Result<()>> + Send;
}

impl LinkSocket for tokio::net::tcp::OwnedWriteHalf {
    fn shut_down(&self) {
        let sock = socket2::SockRef::from(self.as_ref());
        let _ = sock.shutdown(std::net::Shutdown::Both);
    }

    async fn unsent_room(&self) -> io::Result<()> {
        let s: &tokio::net::TcpStream = self.as_ref();
        let lowat = NOTSENT_LOWAT as usize;
        loop {
            // With TCP_NOTSENT_LOWAT set, the socket turns writable when the unsent bytes fall
            // under it; a "would block" here clears the readiness so the wait is for that edge.
            let checked = s.try_io(
                tokio::io::Interest::WRITABLE,
                || match super::unsent::bytes(s) {
                    Some(n) if n > lowat => Err(io::ErrorKind::WouldBlock.into()),
                    _ => Ok(()),
                },
            );
            match checked {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => s.writable().await?,
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
impl LinkSocket for tokio::io::DuplexStream {
    fn shut_down(&self) {}
    async fn unsent_room(&self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u64).to_be_bytes().to_vec();
        f.extend_from_slice(payload);
        f
    }

    /// A heartbeat cast as ractor_cluster encodes it.
    fn heartbeat(n: u8) -> Vec<u8> {
        let mut cast = vec![0x08, 0x01, 0x12, 0x01, n, 0x1a, 9];
        cast.extend_from_slice(b"Heartbeat");
        let mut node = vec![0x0a, u8::try_from(cast.len()).unwrap()];
        node.extend(cast);
        let mut top = vec![0x12, u8::try_from(node.len()).unwrap()];
        top.extend(node);
        frame(&top)
    }

    fn bulk(n: usize, fill: u8) -> Vec<u8> {
        // Not protobuf a control frame could be read from.
        frame(&vec![fill; n])
    }

    fn fences(budget: usize) -> Fences {
        Fences {
            budget,
            stall: Duration::from_millis(300),
            silence: Duration::from_secs(10),
        }
    }

    #[test]
    fn frames_split_into_control_and_bounded_bulk_segments_across_partial_writes() {
        let mut q = Queues::default();
        let mut all = Vec::new();
        for i in 0..40 {
            all.extend(bulk(4000, 1));
            if i == 20 {
                all.extend(heartbeat(1));
            }
        }
        // Fed in awkward pieces.
        for piece in all.chunks(777) {
            q.carry.extend_from_slice(piece);
            q.split();
        }
        assert!(q.carry.is_empty());
        assert_eq!(q.control.len(), 1);
        assert_eq!(&q.control[0][..], &heartbeat(1)[..]);
        let bulk_bytes: usize = q.bulk.iter().map(Bytes::len).sum();
        assert_eq!(bulk_bytes, 40 * 4008);
        assert!(q
            .bulk
            .iter()
            .all(|s| s.len() <= SEGMENT && s.len() % 4008 == 0));
        // A frame larger than a segment is a segment of its own.
        q.carry.extend_from_slice(&bulk(3 * SEGMENT, 2));
        q.split();
        assert_eq!(q.bulk.back().unwrap().len(), 3 * SEGMENT + HEADER);
    }

    #[tokio::test]
    async fn a_heartbeat_overtakes_queued_bulk_and_order_is_otherwise_kept() {
        // A reader that has not started: everything waits in the outbox.
        let (a, mut b) = tokio::io::duplex(16 * 1024);
        let stats = Arc::new(LinkStats::default());
        let mut w = start(a, fences(64 << 20), stats.clone());
        let mut sent = Vec::new();
        for i in 0..100u8 {
            let f = bulk(10_000, i);
            sent.push(f.clone());
            w.write_all(&f).await.unwrap();
        }
        w.write_all(&heartbeat(7)).await.unwrap();
        w.flush().await.unwrap();
        assert!(stats.queued.load(Ordering::Relaxed) > 900_000);
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 20];
        while got.len() < 100 * 10_008 + heartbeat(7).len() {
            let n = b.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        // The heartbeat comes out within the first two segments, not after a megabyte.
        let hb = heartbeat(7);
        let at = got.windows(hb.len()).position(|w| w == hb).unwrap();
        assert!(at <= 2 * SEGMENT, "heartbeat at byte {at}");
        let mut rest = got[..at].to_vec();
        rest.extend_from_slice(&got[at + hb.len()..]);
        assert_eq!(rest, sent.concat());
    }

    #[tokio::test]
    async fn over_the_budget_the_link_fails_and_a_stalled_peer_fails_it_too() {
        let (a, _b) = tokio::io::duplex(16 * 1024);
        let stats = Arc::new(LinkStats::default());
        let mut w = start(a, fences(1 << 20), stats.clone());
        w.write_all(&bulk(512 * 1024, 1)).await.unwrap();
        let err = w.write_all(&bulk(600 * 1024, 1)).await.unwrap_err();
        assert!(err.to_string().contains("budget"), "{err}");
        assert_eq!(
            *stats.fenced.lock().unwrap(),
            Some("outbound budget exceeded")
        );
        assert_eq!(stats.queued.load(Ordering::Relaxed), 0, "freed");

        let (a, _b) = tokio::io::duplex(16 * 1024);
        let stats = Arc::new(LinkStats::default());
        let mut w = start(a, fences(1 << 20), stats.clone());
        w.write_all(&bulk(100 * 1024, 1)).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while stats.fenced.lock().unwrap().is_none() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await; // polling, with a deadline
        }
        assert_eq!(*stats.fenced.lock().unwrap(), Some("peer not reading"));
        assert!(w.write_all(b"x").await.is_err());
    }

    #[tokio::test]
    async fn what_the_library_still_holds_for_the_peer_counts_against_the_budget() {
        // A reader that takes everything: the link is never the bottleneck here, but the
        // library's queue in front of it (what rooms enqueued for the peer) is.
        let (a, mut b) = tokio::io::duplex(64 * 1024);
        let reader = tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = b.read_to_end(&mut sink).await;
        });
        let stats = Arc::new(LinkStats::default());
        let peer = Arc::new(crate::peer_queue::PeerQueue::default());
        peer.enqueue(10 << 20);
        stats.attach(peer.clone());
        let mut w = start(a, fences(1 << 20), stats.clone());
        // What was enqueued before the link was attached does not count.
        w.write_all(&bulk(1000, 1)).await.unwrap();
        peer.enqueue(900 * 1024);
        w.write_all(&bulk(1000, 1)).await.unwrap();
        assert!(peer.waiting() >= 890 * 1024);
        peer.enqueue(200 * 1024);
        let err = w.write_all(&bulk(1000, 1)).await.unwrap_err();
        assert!(err.to_string().contains("budget"), "{err}");
        drop(w);
        reader.await.unwrap();
    }
}
