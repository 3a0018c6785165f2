//! What travels from rooms, the relay and the hub to one connection: the [`Outbound`] enum, the
//! shared [`Delivery`] of one publish, and the [`ConnHandle`] that enqueues into a connection's
//! bounded queue without ever waiting.
//!
//! Policy (`docs/protocol.md` §9, close 4008): the queue is bounded in frames and in bytes; a push
//! that would overflow it marks the connection as a slow consumer and wakes it to close. The
//! pusher (relay, hub) never blocks, so one client that never reads slows nobody else.

pub mod local;
pub mod pump;
pub mod room_map;

use crate::delivery::Delivery;
use crate::ids::{ClientId, ConnId, UserId};
use crate::wire::endpoint::Limits;
use bytestring::ByteString;
use futures_util::task::AtomicWaker;
use protocol::room::RoomName;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::SystemTime;

/// A unit of work for a connection.
#[derive(Debug)]
pub enum Outbound {
    /// A room message; the connection drops it unless it is the next one for that room.
    Room(Arc<Delivery>),
    /// A ready frame (presence event, direct message, reconnect hint).
    Frame(ByteString),
    /// New rate limits pushed by the rate limiter (admin throttle).
    Limits(Box<Limits>),
    /// The room moved with its state (same epoch): only the handle changes.
    Rehomed(Box<Rehome>),
    /// The room's owner was lost and the room re-created: join it again (quietly).
    Rejoin(Box<Rehome>),
    /// An operator's join or leave of a room, answered on its reply channel.
    RoomOp(Box<RoomOp>),
}

/// An operator asks a connection to join or leave a room (`POST /admin/v1/clients/{client}/join`
/// and `/leave`); the connection does it as if the client had asked, tells the client
/// (`joined` / `left`), and answers on `reply`. A connection that ends first drops the request
/// unanswered.
#[derive(Debug)]
pub struct RoomOp {
    /// The room.
    pub room: RoomName,
    /// Join (true) or leave (false).
    pub join: bool,
    /// The answer.
    pub reply: tokio::sync::oneshot::Sender<RoomOpOutcome>,
}

/// What a connection did with a [`RoomOp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomOpOutcome {
    /// It joined or left.
    Done,
    /// It was a member already (join), or was not one (leave).
    Unchanged,
    /// It refused to join: the client protocol's code and message (`forbidden`,
    /// `too_many_rooms`, `unavailable`).
    Refused(protocol::codes::ErrorCode, String),
}

/// Where a re-homed room lives now.
#[derive(Debug, Clone)]
pub struct Rehome {
    /// Room.
    pub room: RoomName,
    /// The new owner.
    pub owner: crate::room_access::RoomRef,
    /// Its epoch (new unless the history survived).
    pub epoch: Arc<str>,
    /// Its seq when we re-joined.
    pub seq: u64,
    /// When the relay found the old owner lost (None for a move): the owner dropped this node's
    /// members then, so a connection that joined before must join again, even if the owner
    /// found is the very instance it had (an owner behind a healed partition).
    pub lost_at: Option<std::time::Instant>,
}

/// Why the node wants a connection closed.
#[derive(Debug, Clone)]
pub struct CloseRequest {
    /// Close code.
    pub code: u16,
    /// Reason sent in the `disconnect` frame and the close frame.
    pub reason: String,
    /// Whether the client should reconnect.
    pub reconnect: bool,
    /// A frame written before the `disconnect` frame (the drain's `reconnect` hint).
    pub hint: Option<String>,
}

/// State one connection shares with the node: queue accounting, counters for the admin API,
/// and the close signal. Written by the connection, read by everyone.
///
/// `repr(C)` keeps what a pump reads for every delivery (`queued`, `close_code`) at the front,
/// in one cache line.
#[derive(Debug)]
#[repr(C)]
pub struct ConnShared {
    /// Items in the inbox (kept under the inbox's lock, read without it: the pump asks for
    /// every delivery).
    queued: AtomicUsize,
    /// Set once a close was requested; the first request wins.
    close_code: AtomicU16,
    /// Bytes waiting in the outbound queue.
    pub queued_bytes: AtomicUsize,
    /// Most bytes the queue may hold.
    pub max_queued_bytes: usize,
    /// Frames received from the client.
    pub msgs_in: AtomicU64,
    /// Frames written to the client.
    pub msgs_out: AtomicU64,
    /// Rooms joined.
    pub rooms: AtomicUsize,
    /// Whether an operator throttle is in force.
    pub throttled: AtomicBool,
    /// Current limits (for the admin API).
    pub limits: Mutex<Limits>,
    /// Boxed: set once in a connection's life, and 48 bytes smaller while it is not.
    close: Mutex<Option<Box<CloseRequest>>>,
    /// Wakes the connection: a close request or something queued.
    pub wake: Wake,
    /// The connection's inbox: `None` once the connection has ended. A plain deque (empty, it
    /// allocates nothing) rather than a channel, whose fixed blocks cost an idle connection
    /// about 1.8 KiB.
    queue: Mutex<Option<VecDeque<Outbound>>>,
    /// Most frames the inbox holds.
    max_frames: usize,
}

impl ConnShared {
    /// Creates the shared state with a queue of at most `max_frames` frames and
    /// `max_queued_bytes` bytes.
    pub fn new(max_frames: usize, max_queued_bytes: usize, limits: Limits) -> Self {
        Self {
            queued_bytes: AtomicUsize::new(0),
            max_queued_bytes,
            msgs_in: AtomicU64::new(0),
            msgs_out: AtomicU64::new(0),
            rooms: AtomicUsize::new(0),
            throttled: AtomicBool::new(false),
            limits: Mutex::new(limits),
            close_code: AtomicU16::new(0),
            close: Mutex::new(None),
            wake: Wake::default(),
            queue: Mutex::new(Some(VecDeque::new())),
            queued: AtomicUsize::new(0),
            max_frames,
        }
    }

    /// Takes the oldest queued item.
    pub fn pop(&self) -> Option<Outbound> {
        let mut q = self.queue.lock().ok()?;
        let q = q.as_mut()?;
        let item = q.pop_front();
        if item.is_some() {
            self.queued.fetch_sub(1, Ordering::Release);
        }
        if q.is_empty() && q.capacity() > 64 {
            // A burst is over: give the memory back.
            *q = VecDeque::new();
        }
        item
    }

    /// Ends the inbox: later pushes find the connection gone.
    pub fn close_queue(&self) {
        if let Ok(mut q) = self.queue.lock() {
            *q = None;
            self.queued.store(0, Ordering::Release);
        }
    }

    /// Asks the connection to close; returns false if a close was already requested.
    pub fn request_close(&self, req: CloseRequest) -> bool {
        if self
            .close_code
            .compare_exchange(0, req.code, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        if let Ok(mut slot) = self.close.lock() {
            *slot = Some(Box::new(req));
        }
        self.wake.notify_one();
        true
    }

    /// Takes the pending close request, if any.
    pub fn take_close(&self) -> Option<CloseRequest> {
        if self.close_code.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.close
            .lock()
            .ok()
            .and_then(|mut s| s.take())
            .map(|b| *b)
    }

    /// Whether a close was requested.
    pub fn closing(&self) -> bool {
        self.close_code.load(Ordering::Acquire) != 0
    }

    /// Whether nothing waits in the inbox (so a frame written around it cannot overtake one
    /// in it).
    pub fn queue_empty(&self) -> bool {
        self.queued.load(Ordering::Acquire) == 0
    }

    /// Closes the connection as a slow consumer (4008).
    pub fn overflow(&self) {
        self.request_close(CloseRequest {
            code: protocol::codes::close::SLOW_CONSUMER,
            reason: "slow consumer: outbound queue overflow".into(),
            reconnect: true,
            hint: None,
        });
    }
}

/// Static facts about a connection, for the admin API and the user index.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Client id.
    pub client: ClientId,
    /// User id.
    pub user: UserId,
    /// Peer address.
    pub remote_ip: IpAddr,
    /// When the WebSocket opened.
    pub connected_at: SystemTime,
}

/// The node's way to reach one connection: a bounded queue plus shared state. Cheap to clone
/// (one reference count: the relay clones it once per delivery).
#[derive(Debug, Clone)]
pub struct ConnHandle(Arc<HandleInner>);

/// What a [`ConnHandle`] points to.
#[derive(Debug)]
pub struct HandleInner {
    /// Connection id.
    pub id: ConnId,
    /// Static facts.
    pub info: ConnInfo,
    /// Shared state.
    pub shared: Arc<ConnShared>,
    /// The pump of the worker this connection runs on, and the connection's slot there (see
    /// `pump`).
    pump: Option<(crate::outbound::pump::Pump, usize)>,
}

impl std::ops::Deref for ConnHandle {
    type Target = HandleInner;
    fn deref(&self) -> &HandleInner {
        &self.0
    }
}

/// Outcome of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Queued.
    Queued,
    /// The queue overflowed: the connection was told to close with 4008.
    Overflow,
    /// The connection is gone or closing.
    Closed,
}

impl ConnHandle {
    /// Creates a handle; the connection reads its inbox through `shared` ([`ConnShared::pop`]).
    /// `pump` is the worker's pump and the connection's slot there, when it has one.
    pub fn new(
        id: ConnId,
        info: ConnInfo,
        shared: Arc<ConnShared>,
        pump: Option<(crate::outbound::pump::Pump, usize)>,
    ) -> Self {
        Self(Arc::new(HandleInner {
            id,
            info,
            shared,
            pump,
        }))
    }

    /// The pump of this connection's worker and the connection's slot there, if it has one.
    pub fn pump(&self) -> Option<&(crate::outbound::pump::Pump, usize)> {
        self.pump.as_ref()
    }

    /// Counts `bytes` against the queue budget before they are queued (by a pump); overflow
    /// closes the connection with 4008.
    pub fn reserve(&self, bytes: usize) -> Result<(), Push> {
        if self.shared.closing() {
            return Err(Push::Closed);
        }
        let queued = self.shared.queued_bytes.fetch_add(bytes, Ordering::AcqRel) + bytes;
        if queued > self.shared.max_queued_bytes {
            self.shared.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            self.overflow();
            return Err(Push::Overflow);
        }
        Ok(())
    }

    /// Gives back bytes reserved for something that was never queued.
    pub fn release(&self, bytes: usize) {
        self.shared.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Queues `out`, whose `bytes` are already reserved; a full queue closes the connection.
    pub fn deliver(&self, out: Outbound, bytes: usize) -> Push {
        let pushed = match self.shared.queue.lock() {
            Ok(mut q) => match q.as_mut() {
                Some(q) if q.len() < self.shared.max_frames => {
                    q.push_back(out);
                    self.shared.queued.fetch_add(1, Ordering::Release);
                    Push::Queued
                }
                Some(_) => Push::Overflow,
                None => Push::Closed,
            },
            Err(_) => Push::Closed,
        };
        match pushed {
            Push::Queued => self.shared.wake.notify_one(),
            Push::Overflow => {
                self.release(bytes);
                self.overflow();
            }
            Push::Closed => self.release(bytes),
        }
        pushed
    }

    /// Enqueues `out` (`bytes` long) without waiting; overflow closes the connection with 4008.
    pub fn push(&self, out: Outbound, bytes: usize) -> Push {
        match self.reserve(bytes) {
            Ok(()) => self.deliver(out, bytes),
            Err(p) => p,
        }
    }

    /// Closes the connection as a slow consumer (4008).
    pub fn overflow(&self) {
        self.shared.overflow();
    }

    /// Asks the connection to close.
    pub fn close(&self, code: u16, reason: &str, reconnect: bool) -> bool {
        self.shared.request_close(CloseRequest {
            code,
            reason: reason.to_owned(),
            reconnect,
            hint: None,
        })
    }

    /// Asks the connection to close after writing `hint`.
    pub fn close_with_hint(&self, code: u16, reason: &str, hint: String) -> bool {
        self.shared.request_close(CloseRequest {
            code,
            reason: reason.to_owned(),
            reconnect: true,
            hint: Some(hint),
        })
    }
}

/// A connection's doorbell: a flag and the waker of the task that waits on it. The
/// connection's loop polls it beside its socket and timer without a stored future (a tokio
/// `Notified` future would sit in every idle connection's task), so it costs 32 bytes of the
/// shared state and nothing in the task. A ring before the task waits is kept, like a `Notify`
/// permit.
#[derive(Debug, Default)]
pub struct Wake {
    rung: AtomicBool,
    waker: AtomicWaker,
}

impl Wake {
    /// Rings: the waiting task (or the next poll) sees it once.
    pub fn notify_one(&self) {
        self.rung.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Ready once since the last ring; otherwise registers `cx`'s waker.
    pub fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.rung.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // A ring between the check and the registration woke no one: look again.
        if self.rung.swap(false, Ordering::AcqRel) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}
