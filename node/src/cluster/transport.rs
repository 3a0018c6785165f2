//! Cluster links on our own sockets, handed to ractor_cluster as external streams (it then runs
//! its handshake and sessions on them as usual). What this adds to the library's links:
//!
//! - **Control first, and a bound on what waits for a peer.** The write half is a queue
//!   ([`super::outbox`]) that takes what the library writes at once and writes heartbeats and
//!   pings ahead of bulk data, so a peer that reads slowly is not marked down for it. What waits
//!   for a peer is that queue plus what the library still holds (counted where it is enqueued,
//!   [`crate::peer_queue`]); rooms hold their deliveries back above half the budget, and over
//!   `link_stats::OUTBOUND_BUDGET` (only replies and moves can take it there), or a write that makes no
//!   progress for `link_stats::WRITE_STALL`, the link is cut as after a link drop: the session stops (its
//!   queue is freed), the manager marks the peer down unless another link to it lives, and
//!   dials it again later.
//! - **A fence for a silent link.** Heartbeats cross every link twice a second; a link that
//!   carries nothing for `link_stats::READ_SILENCE` (including a socket that connects and never speaks,
//!   which the library's listener would hold forever) is closed.
//! - **TCP options**: no Nagle, keepalive, TCP_USER_TIMEOUT so unacknowledged data to a vanished
//!   host fails the socket in seconds, not the kernel's 15 minutes, and TCP_NOTSENT_LOWAT so
//!   little waits unsent in the kernel, behind which a heartbeat could not be moved.
//! - **The handshake fences** of [`super::handshake`]: the cap on incoming links authenticating
//!   (over it a link is closed at accept), the handshake deadline and the gate on what a link
//!   not yet authenticated may send.
//! - **Per-link counters** (queued bytes, fences) for `/metrics`, by peer once the manager
//!   knows who is on a link. Only authenticated links are in [`Links`]; a link authenticating
//!   is in its pending list (bounded by the cap) until it is confirmed or closed.
//!
//! It owns sockets only; it never decodes what crosses them after the handshake beyond telling
//! control frames from bulk, and never touches the view.

use super::handshake::{HandshakeFence, Handshakes, Slot};
pub use super::link_stats::{Fences, LinkStats, NOTSENT_LOWAT};
use ractor::ActorRef;
use ractor_cluster::{BoxRead, BoxWrite, ClusterBidiStream, NodeServerMessage};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// TCP_USER_TIMEOUT on cluster sockets.
const USER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a dial may take to connect.
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Every open link's counters, by label (the dialed address for outgoing links, `in:<addr>`
/// for incoming ones: the label ractor_cluster reports as the session's `peer_addr`).
#[derive(Debug, Default)]
pub struct Links {
    by_label: Mutex<HashMap<String, Arc<LinkStats>>>,
    /// Links authenticating, by label (two dials of one address share a label).
    pending: Mutex<HashMap<String, Vec<Arc<LinkStats>>>>,
}

impl Links {
    fn register(&self, label: &str) -> Arc<LinkStats> {
        let s = Arc::new(LinkStats::default());
        if let Ok(mut m) = self.pending.lock() {
            m.entry(label.to_owned()).or_default().push(s.clone());
        }
        s
    }

    /// The link with this label authenticated: its reads are no longer gated and its counters
    /// are kept for the manager. (Of two dials of one address, both are let through: they are
    /// ours, and the session election closes one.)
    pub fn confirm(&self, label: &str) {
        let Some(stats) = self.pending.lock().ok().and_then(|mut m| m.remove(label)) else {
            return;
        };
        for s in &stats {
            s.confirmation.confirm();
        }
        if let (Some(last), Ok(mut m)) = (stats.last(), self.by_label.lock()) {
            m.insert(label.to_owned(), last.clone());
        }
    }

    /// Forgets a link that closed before authenticating.
    fn forget_pending(&self, label: &str, stats: &Arc<LinkStats>) {
        if let Ok(mut m) = self.pending.lock() {
            if let Some(v) = m.get_mut(label) {
                v.retain(|s| !Arc::ptr_eq(s, stats));
                if v.is_empty() {
                    m.remove(label);
                }
            }
        }
    }

    /// The counters of the link with this label.
    pub fn get(&self, label: &str) -> Option<Arc<LinkStats>> {
        self.by_label.lock().ok()?.get(label).cloned()
    }

    /// Forgets a closed link; returns its counters.
    pub fn remove(&self, label: &str) -> Option<Arc<LinkStats>> {
        self.by_label.lock().ok()?.remove(label)
    }
}

/// What a link holds while it authenticates: its place under the cap (incoming links) and its
/// entry in the pending list, both given back when it is confirmed or closed.
struct Authenticating {
    _slot: Option<Slot>,
    links: Arc<Links>,
    label: String,
    stats: Arc<LinkStats>,
}

impl Drop for Authenticating {
    fn drop(&mut self) {
        self.links.forget_pending(&self.label, &self.stats);
    }
}

/// A cluster socket ready for ractor_cluster.
struct Link {
    stream: TcpStream,
    label: String,
    stats: Arc<LinkStats>,
    fences: Fences,
    handshakes: Arc<Handshakes>,
    authenticating: Authenticating,
}

impl ClusterBidiStream for Link {
    fn split(self: Box<Self>) -> (BoxRead, BoxWrite) {
        let (r, w) = self.stream.into_split();
        let read = SilenceFence::new(r, self.fences.silence, self.stats.clone());
        let read = HandshakeFence::new(
            read,
            self.stats.confirmation.clone(),
            self.handshakes,
            self.authenticating,
            self.label,
        );
        let write = super::outbox::start(w, self.fences, self.stats.clone());
        (Box::new(read), Box::new(write))
    }

    fn peer_label(&self) -> Option<String> {
        Some(self.label.clone())
    }

    fn local_label(&self) -> Option<String> {
        self.stream.local_addr().ok().map(|a| a.to_string())
    }
}

fn tune(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let sock = socket2::SockRef::from(stream);
    let _ = sock.set_tcp_user_timeout(Some(USER_TIMEOUT));
    let _ = sock.set_tcp_notsent_lowat(NOTSENT_LOWAT);
    let ka = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(5))
        .with_interval(Duration::from_secs(2))
        .with_retries(3);
    let _ = sock.set_tcp_keepalive(&ka);
}

/// What every link needs from the node: the transport, the counters, the handshake fences.
#[derive(Clone)]
pub struct Transport {
    /// ractor_cluster's node server.
    pub server: ActorRef<NodeServerMessage>,
    /// Every link's counters.
    pub links: Arc<Links>,
    /// The cap and counters of links authenticating.
    pub handshakes: Arc<Handshakes>,
    /// The limits every link enforces.
    pub fences: Fences,
    /// The address links are dialed from: the cluster listener's, when it names one (so a peer
    /// sees this node's links come from the address it listens on); otherwise the system's
    /// choice.
    pub source: Option<std::net::IpAddr>,
}

fn hand_over(
    t: &Transport,
    stream: TcpStream,
    label: String,
    is_server: bool,
    slot: Option<Slot>,
) -> io::Result<()> {
    tune(&stream);
    let stats = t.links.register(&label);
    let link = Link {
        stream,
        authenticating: Authenticating {
            _slot: slot,
            links: t.links.clone(),
            label: label.clone(),
            stats: stats.clone(),
        },
        label,
        stats,
        fences: t.fences,
        handshakes: t.handshakes.clone(),
    };
    let server = &t.server;
    server
        .cast(NodeServerMessage::ConnectionOpenedExternal {
            stream: Box::new(link),
            is_server,
        })
        .map_err(|e| io::Error::other(e.to_string()))
}

/// Dials `addr` and hands the link to the transport (the handshake goes on there).
pub async fn dial(t: &Transport, addr: &str) -> io::Result<()> {
    let connect = async {
        let target = tokio::net::lookup_host(addr)
            .await?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
        let socket = if target.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        if let Some(ip) = t.source.filter(|ip| ip.is_ipv4() == target.is_ipv4()) {
            socket.bind(std::net::SocketAddr::new(ip, 0))?;
        }
        socket.connect(target).await
    };
    let stream = tokio::time::timeout(DIAL_TIMEOUT, connect)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    hand_over(t, stream, addr.to_owned(), false, None)
}

/// Accepts cluster links on `listener` until the transport stops. Over the cap of links
/// authenticating, a link is closed at once (never handed to the library).
pub async fn accept(listener: TcpListener, t: Transport) {
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                let label = format!("in:{from}");
                let Some(slot) = t.handshakes.admit(&label) else {
                    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                    drop(stream);
                    continue;
                };
                if hand_over(&t, stream, label, true, Some(slot)).is_err() {
                    return; // The transport is gone: the node is stopping.
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cluster listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The read half: fails once nothing arrived for `silence`.
struct SilenceFence<R> {
    inner: R,
    silence: Duration,
    timer: Pin<Box<Sleep>>,
    stats: Arc<LinkStats>,
}

impl<R> SilenceFence<R> {
    fn new(inner: R, silence: Duration, stats: Arc<LinkStats>) -> Self {
        Self {
            inner,
            silence,
            timer: Box::pin(tokio::time::sleep(silence)),
            stats,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for SilenceFence<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    let next = Instant::now() + self.silence;
                    self.timer.as_mut().reset(next);
                }
                Poll::Ready(r)
            }
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    if let Ok(mut f) = self.stats.fenced.lock() {
                        f.get_or_insert("silent");
                    }
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "cluster link silent",
                    )))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_silent_link_is_closed() {
        let (a, mut b) = tokio::io::duplex(1024);
        let stats = Arc::new(LinkStats::default());
        let mut r = SilenceFence::new(a, Duration::from_millis(200), stats.clone());
        b.write_all(b"hi").await.unwrap();
        let mut buf = [0u8; 2];
        r.read_exact(&mut buf).await.unwrap();
        let err = r.read_exact(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(*stats.fenced.lock().unwrap(), Some("silent"));
    }
}
