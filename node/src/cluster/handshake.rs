//! Cluster links before they authenticate: what a stranger on the cluster port can cost.
//!
//! - **A cap.** At most `node.cluster_max_handshakes` incoming links may be authenticating at
//!   once ([`Handshakes::admit`]); over it a new link is closed at once, before ractor_cluster
//!   sees it (no session, no actor, no buffer).
//! - **A deadline.** A link that has not authenticated [`HANDSHAKE_DEADLINE`] after it opened is
//!   closed, however its bytes trickle in ([`HandshakeFence`], on the read side of every link,
//!   incoming or dialed).
//! - **A gate.** Until the link is confirmed authenticated, the bytes it sends reach the library
//!   only as whole, well-formed handshake frames of at most [`super::gate::MAX_HANDSHAKE_FRAME`] bytes
//!   (see [`super::gate`]); anything else waits unread (TCP pushes back) for the confirmation or
//!   the deadline. So a stranger never makes the library buffer more than one small frame.
//! - **Accounting without per-link state.** Refusals are counted by reason only
//!   (`gatehouse_cluster_handshakes_refused_total{reason}`), the links authenticating are one
//!   gauge, and refusal log lines are rate-limited ([`LogLimit`]).
//!
//! The confirmation comes from ractor_cluster's `node_session_authenticated` event (see
//! [`super::events`]), through [`Confirmation::confirm`]. This module owns the pre-auth read
//! path and the cap; it never touches sessions, the view or the manager.

use super::gate::{Gate, Refusal, Verdict};
use super::log_limit::LogLimit;
use crate::metrics::Metrics;
use futures_util::task::AtomicWaker;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// Longest a link may take to authenticate (the manager abandons its own dials after as long).
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(5);
/// At most one refusal log line per this long (the rest are counted in the next line).
pub const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// The node's authenticating links: the cap, the counters, the log limit.
pub struct Handshakes {
    slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    deadline: Duration,
    log: LogLimit,
}

/// A place among the authenticating links; freed when dropped.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.metrics.cluster_handshakes.dec();
    }
}

impl Handshakes {
    /// At most `max` incoming links authenticating at once.
    pub fn new(max: u32, metrics: Arc<Metrics>) -> Self {
        Self::with_deadline(max, metrics, HANDSHAKE_DEADLINE)
    }

    /// As [`Handshakes::new`], with another deadline (unit tests).
    pub fn with_deadline(max: u32, metrics: Arc<Metrics>, deadline: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max as usize)),
            metrics,
            deadline,
            log: LogLimit::new(REFUSAL_LOG_EVERY),
        }
    }

    /// A slot for a new incoming link, or `None` (refusal counted and logged) when the cap is
    /// reached: the caller closes the socket at once.
    pub fn admit(&self, from: &str) -> Option<Slot> {
        match self.slots.clone().try_acquire_owned() {
            Ok(permit) => {
                self.metrics.cluster_handshakes.inc();
                Some(Slot {
                    _permit: permit,
                    metrics: self.metrics.clone(),
                })
            }
            Err(_) => {
                self.refused(Refusal::Capacity, from);
                None
            }
        }
    }

    /// Counts a refusal; logs it unless a refusal was logged less than [`REFUSAL_LOG_EVERY`] ago.
    pub fn refused(&self, why: Refusal, from: &str) {
        Metrics::count(&self.metrics.cluster_handshakes_refused, why.as_str());
        if let Some(left_out) = self.log.allow() {
            tracing::warn!(
                peer_addr = %from,
                reason = why.as_str(),
                refusals_not_logged = left_out,
                "cluster link refused before authenticating: {why}"
            );
        }
    }
}

/// Whether a link authenticated; wakes its read side when it does.
#[derive(Debug, Default)]
pub struct Confirmation {
    done: AtomicBool,
    waker: AtomicWaker,
}

impl Confirmation {
    /// The link authenticated: its reads go straight through from now on.
    pub fn confirm(&self) {
        self.done.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Whether [`Confirmation::confirm`] was called.
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

/// The read half of a cluster link: the gate and the deadline until the link is confirmed,
/// then a plain pass-through. `G` is whatever is held while authenticating (the [`Slot`], the
/// link's registration) and dropped at confirmation or with the link.
pub struct HandshakeFence<R, G> {
    inner: R,
    confirmation: Arc<Confirmation>,
    handshakes: Arc<Handshakes>,
    /// Released or held bytes still to hand on (`gate.buffered()[sent..]`).
    sent: usize,
    releasing: bool,
    gate: Option<Gate>,
    deadline: Pin<Box<Sleep>>,
    held: Option<G>,
    label: String,
    /// Set once the link was refused: every later read fails the same way.
    refused: Option<Refusal>,
}

impl<R, G> HandshakeFence<R, G> {
    /// Wraps `inner`; the deadline runs from now.
    pub fn new(
        inner: R,
        confirmation: Arc<Confirmation>,
        handshakes: Arc<Handshakes>,
        held: G,
        label: String,
    ) -> Self {
        let deadline = Box::pin(tokio::time::sleep(handshakes.deadline));
        Self {
            inner,
            confirmation,
            handshakes,
            sent: 0,
            releasing: false,
            gate: Some(Gate::default()),
            deadline,
            held: Some(held),
            label,
            refused: None,
        }
    }

    /// Refuses the link: counted, maybe logged, and an error of kind `UnexpectedEof` so the
    /// library closes the session quietly (it logs other read errors per link).
    fn refuse(&mut self, why: Refusal) -> io::Error {
        if self.refused.is_none() {
            self.handshakes.refused(why, &self.label);
            self.refused = Some(why);
            self.gate = None;
            self.held = None;
        }
        io::Error::new(io::ErrorKind::UnexpectedEof, why)
    }
}

impl<R: AsyncRead + Unpin, G: Unpin> AsyncRead for HandshakeFence<R, G> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(why) = this.refused {
            return Poll::Ready(Err(this.refuse(why)));
        }
        loop {
            let Some(gate) = this.gate.as_mut() else {
                // Confirmed, and nothing buffered left: straight through.
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            };
            if this.releasing {
                let rest = &gate.buffered()[this.sent..];
                let n = rest.len().min(buf.remaining());
                buf.put_slice(&rest[..n]);
                this.sent += n;
                if this.sent == gate.buffered().len() {
                    gate.clear();
                    this.sent = 0;
                    this.releasing = false;
                }
                return Poll::Ready(Ok(()));
            }
            if this.confirmation.is_done() {
                // Authenticated: hand on what the gate holds (a frame it was keeping back),
                // then get out of the way.
                this.held = None;
                if gate.buffered().is_empty() {
                    this.gate = None;
                } else {
                    this.releasing = true;
                }
                continue;
            }
            if this.deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(this.refuse(Refusal::Deadline)));
            }
            match gate.verdict() {
                Verdict::NeedMore => {
                    let space = gate.space();
                    let mut rb = ReadBuf::new(space);
                    match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                        Poll::Ready(Ok(())) => {
                            let n = rb.filled().len();
                            if n == 0 {
                                // End of stream mid-handshake: the library sees it as such.
                                return Poll::Ready(Ok(()));
                            }
                            gate.filled(n);
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Verdict::Release(_) => this.releasing = true,
                Verdict::Hold => {
                    this.confirmation.waker.register(cx.waker());
                    if this.confirmation.is_done() {
                        continue;
                    }
                    return Poll::Pending;
                }
                Verdict::Refuse(why) => return Poll::Ready(Err(this.refuse(why))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn handshakes(max: u32, deadline_ms: u64) -> Arc<Handshakes> {
        Arc::new(Handshakes::with_deadline(
            max,
            Arc::new(Metrics::new()),
            Duration::from_millis(deadline_ms),
        ))
    }

    fn refused(h: &Handshakes, why: &str) -> u64 {
        h.metrics
            .cluster_handshakes_refused
            .get_or_create(&crate::metrics::ReasonLabel { reason: why.into() })
            .get()
    }

    fn auth_frame() -> Vec<u8> {
        // auth { server_status {} }
        let payload = [0x0A, 2, 0x12, 0];
        let mut f = (payload.len() as u64).to_be_bytes().to_vec();
        f.extend_from_slice(&payload);
        f
    }

    #[tokio::test]
    async fn a_trickling_stranger_is_cut_at_the_deadline() {
        let h = handshakes(4, 300);
        let (a, mut b) = tokio::io::duplex(1024);
        let c = Arc::new(Confirmation::default());
        let mut r = HandshakeFence::new(a, c, h.clone(), (), "in:test".into());
        let writer = tokio::spawn(async move {
            for _ in 0..20 {
                if b.write_all(b"x").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            b
        });
        let started = std::time::Instant::now();
        let mut sink = [0u8; 64];
        let err = loop {
            match r.read(&mut sink).await {
                Ok(0) => panic!("no EOF expected"),
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("deadline"), "{err}");
        assert!(started.elapsed() < Duration::from_millis(600));
        assert_eq!(refused(&h, "deadline"), 1);
        drop(writer);
    }

    #[tokio::test]
    async fn handshake_frames_pass_and_the_rest_waits_for_confirmation() {
        let h = handshakes(4, 5_000);
        let (a, mut b) = tokio::io::duplex(64 * 1024);
        let c = Arc::new(Confirmation::default());
        let mut r = HandshakeFence::new(a, c.clone(), h, (), "x".into());
        let f = auth_frame();
        b.write_all(&f).await.unwrap();
        // A node message (field 2) of 20 000 bytes: a real peer's first frame after auth.
        let mut node = 20_000u64.to_be_bytes().to_vec();
        node.push(0x12);
        node.extend(std::iter::repeat_n(0u8, 19_999));
        b.write_all(&node).await.unwrap();
        let mut got = vec![0u8; f.len()];
        r.read_exact(&mut got).await.unwrap();
        assert_eq!(got, f);
        // Held: nothing more is read until the link is confirmed.
        let mut one = [0u8; 1];
        let held = tokio::time::timeout(Duration::from_millis(200), r.read_exact(&mut one)).await;
        assert!(
            held.is_err(),
            "a non-handshake frame passed before confirmation"
        );
        c.confirm();
        let mut rest = vec![0u8; node.len()];
        r.read_exact(&mut rest).await.unwrap();
        assert_eq!(rest, node);
    }

    #[tokio::test]
    async fn a_malformed_frame_is_refused_and_the_cap_holds() {
        let h = handshakes(2, 5_000);
        let s1 = h.admit("a").unwrap();
        let _s2 = h.admit("b").unwrap();
        assert!(h.admit("c").is_none());
        assert_eq!(refused(&h, "capacity"), 1);
        drop(s1);
        assert!(h.admit("d").is_some());

        let (a, mut b) = tokio::io::duplex(1024);
        let mut r = HandshakeFence::new(a, Arc::default(), h.clone(), (), "y".into());
        b.write_all(&[0, 0, 0, 0, 0, 0, 0, 3, 0x0A, 9, 9])
            .await
            .unwrap();
        let mut sink = [0u8; 16];
        let err = r.read(&mut sink).await.unwrap_err();
        assert!(err.to_string().contains("malformed"), "{err}");
        assert_eq!(refused(&h, "malformed"), 1);
    }
}
