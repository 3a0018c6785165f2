//! One client connection: a task on the HTTP worker that owns the WebSocket (reads and writes),
//! its rooms, its token buckets and its heartbeat. Not a ractor actor: a full actor costs about
//! 9 KiB per connection, so each connection is a lightweight task with a bounded, typed inbox
//! ([`Outbound`]) and the [`crate::hub`] actor addresses connections by id (ARCHITECTURE.md).
//!
//! The loop waits on, in priority order: its doorbell (a close request — kick, slow consumer,
//! shutdown — or something in its inbox: room messages, direct frames, limit changes), its one
//! timer (token expiry, 4001, or the heartbeat: a ping every `heartbeat_ms`, 4009 after two
//! missed pongs), the answers to its publishes in flight, the socket turning writable, and client
//! frames. It polls them all in one `poll_fn` and keeps no future between polls: the task is
//! what every idle connection holds (ARCHITECTURE.md, "Connections"). Requests are handled in
//! [`requests`]. This module never assigns seqs and never touches another connection.

pub mod requests;

use crate::admission::AdmitGuard;
use crate::auth::Identity;
use crate::ids::{now_micros, ClientId, ConnId};
use crate::metrics::LATENCY_SAMPLE;
use crate::outbound::local::{ConnLocal, RoomWrite};
use crate::outbound::room_map::RoomMap;
use crate::outbound::{CloseRequest, ConnHandle, ConnInfo, ConnShared, Outbound};
use crate::rate_limit::bucket::TokenBucket;
use crate::relay::RelayMessage;
use crate::room_access::RoomRef;
use crate::webhook::{now_ms, Event};
use crate::websocket::{linger_close, Reader, WsError, WsMessage};
use crate::wire::endpoint::Limits;
use bytestring::ByteString;
use cluster_config::WebhookEvent;
use futures_util::StreamExt;
use protocol::codes::close;
use protocol::room::RoomName;
use protocol::server::{ServerFrame, WelcomeLimits};
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpStream;
use tracing::Instrument;

/// How long the final `disconnect` frame and close frame may wait for a client that does not
/// read before the connection is dropped.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(15);

/// How long, after the close frame, the socket is drained while the client closes its side.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Everything the WebSocket edge established before the upgrade.
pub struct Accepted {
    /// Who the client is.
    pub identity: Identity,
    /// Client id (resumed or new).
    pub client: ClientId,
    /// Whether the id came from a valid session token.
    pub resumed: bool,
    /// Peer address.
    pub remote_ip: IpAddr,
    /// The admission slot, freed when the connection ends.
    pub guard: AdmitGuard,
}

/// A room this connection has joined (its epoch and highest seq written are its
/// [`crate::outbound::local::Cursor`], which the worker's pump advances too).
pub(crate) struct Joined {
    room_ref: RoomRef,
    /// The epoch this connection had before the last epoch change, and how far it got in it:
    /// when the room comes back to that epoch (two owners after a partition, the old one kept),
    /// the connection resumes it from there.
    prev: Option<(Arc<str>, u64)>,
    /// When this connection last joined the room's owner (a join or a re-join).
    at: std::time::Instant,
}

/// What woke the main loop, in the order it looks.
enum Wakeup {
    /// The doorbell: a close request or something in the inbox.
    Wake,
    /// The heartbeat / expiry timer.
    Tick,
    /// The oldest publish in flight was answered (boxed: the largest variant would otherwise
    /// size the slot every idle connection's task keeps for this value).
    Published(Box<requests::PublishDone>),
    /// The socket took writes again (false: it failed).
    Writable(bool),
    /// A client message (or why reading stopped).
    Message(Result<WsMessage, WsError>),
}

/// How the main loop ended.
enum Exit {
    /// The node asked to close (kick, slow consumer, shutdown, expiry, abuse, heartbeat).
    Close(CloseRequest),
    /// The client sent a close frame with this code (1000 when it gave none).
    ClientClosed(u16),
    /// A protocol error: close with this code.
    Protocol(u16, String),
    /// The socket is gone.
    Gone,
}

/// What a connection's task needs of the node, and nothing more: it is built once by the
/// node's context (`context::NodeCtx::conn`) and shared by every connection, so a connection
/// cannot reach the cluster, the drainer, the hub actor or the admin surfaces.
pub struct ConnDeps {
    /// Validated configuration (limits, rooms).
    pub config: Arc<cluster_config::Config>,
    /// This node's name.
    pub node: String,
    /// Metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The hub's index, where connections add and remove themselves.
    pub conns: Arc<crate::hub::HubIndex>,
    /// The limits that apply (read at connect).
    pub policy: Arc<crate::rate_limit::Policy>,
    /// The local relay.
    pub relay: ractor::ActorRef<crate::relay::RelayMessage>,
    /// Room placement (finding and creating rooms).
    pub placement: crate::directory::Placement,
    /// Session token keys (the `welcome`'s resume token).
    pub sessions: crate::session_token::SessionKeys,
    /// Webhook producer.
    pub webhook: crate::webhook::Webhook,
}

/// The connection's own state.
pub(crate) struct Conn {
    ctx: Arc<ConnDeps>,
    handle: ConnHandle,
    /// Socket write side and room cursors, shared with the worker's pump.
    local: Rc<ConnLocal>,
    /// The connection's slot in the worker's pump.
    slot: usize,
    reader: Reader,
    identity: Identity,
    joined: RoomMap<Joined>,
    msg_bucket: TokenBucket,
    byte_bucket: TokenBucket,
    /// The current (or last) abuse episode: its start and the last `rate_limited` answer
    /// (rate-limited answers at least once a second keep it going). Boxed: set only for a
    /// client that hit its limit, it costs an idle connection a pointer.
    limited: Option<Box<[Instant; 2]>>,
    /// Room messages written by this task (for latency sampling).
    sample: u64,
    /// Publishes sent to their rooms and not answered yet, oldest first (see `requests`); made
    /// at the first publish (an empty `FuturesOrdered` holds two shared blocks, ≈ 150 bytes a
    /// connection that never publishes would keep).
    pending: Option<Box<futures_util::stream::FuturesOrdered<requests::PendingPublish>>>,
    /// Rooms this connection may still create (`limits.room_creates_per_sec`); made at the
    /// first join of a room that does not exist, so an idle connection holds a pointer only.
    room_creates: Option<Box<TokenBucket>>,
}

/// Room a reply's frames (their envelopes, the reply frame itself) may take beyond the
/// replay and the snapshot.
const REPLY_ENVELOPE: usize = 64 * 1024;

/// The largest reply one request can produce (`docs/protocol.md`, "Largest replies"): a
/// join's replay or a history page (at most [`crate::wire::room::MAX_REPLY_BYTES`]), a snapshot (at
/// most `rooms.max_snapshot_bytes`) and their envelopes. This much of a reply may wait for a
/// client that reads it without counting against its outbound budget.
pub fn reply_allowance(config: &cluster_config::Config) -> usize {
    crate::wire::room::MAX_REPLY_BYTES + config.rooms.max_snapshot_bytes + REPLY_ENVELOPE
}

fn bytes_burst(l: &Limits) -> f64 {
    // At least one maximal message must fit, and a second's worth.
    l.bytes_per_sec as f64
}

/// Spawns the connection's task on the current HTTP worker, on the upgraded socket `io`;
/// `leftover` holds bytes the client sent right after the handshake, `response` the encoded
/// `101` response, written together with the `welcome`.
pub fn spawn(ctx: Arc<ConnDeps>, io: TcpStream, leftover: &[u8], response: &[u8], acc: Accepted) {
    // A `debug` span: at `info` a span per connection costs ≈ 0.5 KiB of every idle connection
    // (the subscriber's slot and formatted fields), a tenth of its footprint. With
    // `GATEHOUSE_LOG=debug` every event of the connection carries client, user and IP; at
    // `info` the connection's own `info`/`warn` events name the client themselves.
    let span = tracing::debug_span!("conn", client = %acc.client, user = %acc.identity.user, ip = %acc.remote_ip);
    let reader = Reader::new(leftover, ctx.config.limits.max_message_bytes);
    let mut writer = crate::websocket::Writer::default();
    writer.raw(response);
    // Registration and the connection's state are made here, outside the task: an async
    // fn keeps its arguments in its future beside what it builds from them, so the task takes
    // only the finished state (ARCHITECTURE.md, "Connections").
    let Accepted {
        identity,
        client,
        resumed,
        remote_ip,
        guard,
    } = acc;
    let conn = Conn::start(
        ctx, io, reader, writer, identity, client, resumed, remote_ip,
    );
    let fut = run(conn, guard);
    if span.is_disabled() {
        // No span to carry: the task stays a few dozen bytes smaller.
        actix_web::rt::spawn(fut);
    } else {
        actix_web::rt::spawn(fut.instrument(span));
    }
}

/// The connection's task. A plain `async` block rather than an `async fn`: the block uses the
/// state it captured where it lies, while an `async fn` would move its arguments into locals
/// and keep both in the task (≈ 0.4 KiB more for every connection).
#[allow(clippy::manual_async_fn)]
fn run(mut conn: Conn, guard: AdmitGuard) -> impl std::future::Future<Output = ()> {
    async move {
        // The rarely used, large futures (welcome, request handling, the close) are boxed
        // while they run, so the task an idle connection keeps stays small.
        let exit = conn.main_loop().await;
        Box::pin(conn.finish(exit)).await;
        drop(guard);
    }
}

fn emit(
    ctx: &ConnDeps,
    kind: WebhookEvent,
    h: &ConnHandle,
    room: Option<&RoomName>,
    seq: Option<u64>,
    code: Option<u16>,
) {
    if !ctx.webhook.wants(kind) {
        return;
    }
    let name = match kind {
        WebhookEvent::Connect => "connect",
        WebhookEvent::Disconnect => "disconnect",
        WebhookEvent::Join => "join",
        WebhookEvent::Leave => "leave",
        WebhookEvent::Publish => "publish",
    };
    ctx.webhook.emit(Event {
        kind: name,
        client: h.info.client.to_string(),
        user: h.info.user.to_string(),
        room: room.map(ToString::to_string),
        seq,
        data: None,
        code,
        ts_ms: now_ms(),
    });
}

impl Conn {
    /// Registers the connection (hub, pump, metrics, the `connect` webhook) and builds its
    /// state. Not async: nothing here is kept in the task's future.
    #[allow(clippy::too_many_arguments)]
    fn start(
        ctx: Arc<ConnDeps>,
        io: TcpStream,
        reader: Reader,
        writer: crate::websocket::Writer,
        identity: Identity,
        client: ClientId,
        resumed: bool,
        remote_ip: IpAddr,
    ) -> Self {
        let cfg = &ctx.config.limits;
        let id = ConnId::next();
        let (limits, throttled) = ctx.policy.for_client(&client);
        let shared = Arc::new(ConnShared::new(
            cfg.outbound_queue,
            cfg.outbound_queue_bytes,
            limits,
        ));
        shared.throttled.store(throttled, Ordering::Relaxed);
        let info = ConnInfo {
            client,
            user: identity.user.clone(),
            remote_ip,
            connected_at: SystemTime::now(),
        };
        let pump = crate::outbound::pump::Pump::local(&ctx.metrics);
        let local = Rc::new(ConnLocal::new(id, io, shared.clone()));
        *local.writer.borrow_mut() = writer;
        let slot = crate::outbound::pump::Pump::register(local.clone());
        let handle = ConnHandle::new(id, info, shared, Some((pump, slot)));
        ctx.conns.register(handle.clone());
        ctx.metrics.connections_active.inc();
        ctx.metrics.connections_total.inc();
        tracing::debug!(conn = %id, resumed, "connected");
        emit(&ctx, WebhookEvent::Connect, &handle, None, None, None);
        let now = Instant::now();
        Conn {
            msg_bucket: TokenBucket::new(
                f64::from(limits.msgs_per_sec),
                f64::from(limits.burst),
                now,
            ),
            byte_bucket: TokenBucket::new(limits.bytes_per_sec as f64, bytes_burst(&limits), now),
            ctx,
            handle,
            local,
            slot,
            reader,
            identity,
            joined: RoomMap::default(),
            limited: None,
            sample: 0,
            pending: None,
            room_creates: None,
        }
    }

    /// Queues one text frame for the socket; it is written, together with whatever else is
    /// queued, when this turn of the loop ends ([`Conn::flush_now`]). Never waits. Bytes that a
    /// client does not read count against its queue budget: over it, the connection closes
    /// with 4008 like an overflowing queue.
    async fn write(&mut self, frame: ByteString) -> Result<(), Exit> {
        self.local.writer.borrow_mut().text(frame.as_bytes());
        self.count_out(frame.len());
        Ok(())
    }

    /// Marks what is queued (the reply just written with its snapshot and replay, at most
    /// [`reply_allowance`] bytes) as a reply the client asked for: the outbound
    /// budget does not hold it against the client, and the next request is read only once the
    /// reply has left (a client cannot stack replies it does not read).
    fn mark_reply(&self) {
        let cap = reply_allowance(&self.ctx.config);
        self.local.writer.borrow_mut().mark_reply(cap);
    }

    /// Counts one frame of `len` bytes written (the pump counts its own per round).
    fn count_out(&self, len: usize) {
        self.handle.shared.msgs_out.fetch_add(1, Ordering::Relaxed);
        self.ctx.metrics.messages_out.inc();
        self.ctx.metrics.bytes_out.inc_by(len as u64);
    }

    /// Closes with 4008 when more than the outbound budget waits beyond the replies in
    /// progress (checked once per turn of the loop, after the flush).
    fn check_unwritten(&self) -> Result<(), Exit> {
        let over = self
            .local
            .writer
            .borrow()
            .over_budget(self.handle.shared.max_queued_bytes);
        if over {
            return Err(Exit::Close(CloseRequest {
                code: close::SLOW_CONSUMER,
                reason: "slow consumer: outbound queue overflow".into(),
                reconnect: true,
                hint: None,
            }));
        }
        Ok(())
    }

    /// Writes what the socket takes now; the rest waits for the socket to become writable.
    fn flush_now(&mut self) -> Result<(), Exit> {
        let local = &self.local;
        local
            .writer
            .borrow_mut()
            .try_flush(&local.io)
            .map_err(|_| Exit::Gone)?;
        Ok(())
    }

    async fn write_str(&mut self, s: String) -> Result<(), Exit> {
        self.write(ByteString::from(s)).await
    }

    async fn welcome(&mut self) -> Result<(), Exit> {
        let cfg = &self.ctx.config.limits;
        let l = self.handle.shared.limits.lock().map(|l| *l).ok();
        let (rate, burst, bytes) = l
            .map_or((cfg.msgs_per_sec, cfg.burst, cfg.bytes_per_sec), |l| {
                (l.msgs_per_sec, l.burst, l.bytes_per_sec)
            });
        let session = self.ctx.sessions.issue(
            &self.handle.info.client,
            &self.handle.info.user,
            now_micros() / 1_000_000,
        );
        let frame = ServerFrame::Welcome {
            protocol: protocol::PROTOCOL_VERSION,
            client: self.handle.info.client.as_str(),
            user: self.handle.info.user.as_str(),
            node: &self.ctx.node,
            session: &session,
            heartbeat_ms: cfg.heartbeat.as_millis() as u64,
            limits: WelcomeLimits {
                max_message_bytes: cfg.max_message_bytes,
                max_rooms: cfg.max_rooms,
                msgs_per_sec: rate,
                burst,
                bytes_per_sec: bytes,
                room_creates_per_sec: cfg.room_creates_per_sec,
                room_creates_burst: cfg.room_creates_burst,
            },
        }
        .encode();
        self.write_str(frame).await?;
        // The `101` and the `welcome` leave in one write.
        self.flush_now()
    }

    /// Writes the `welcome`, then serves the connection until it ends. What lives across its
    /// wait is what every idle connection keeps in its task, so nothing else may: no value of
    /// the welcome, and what woke the loop is handed whole to a boxed handler
    /// ([`Conn::on_wakeup`]) when handling it may wait (a value matched in place here would
    /// stay in the task, ≈ 0.1 KiB: `the_connection_task_stays_small`).
    async fn main_loop(&mut self) -> Exit {
        if let Err(e) = Box::pin(self.welcome()).await {
            return e;
        }
        // One timer serves the heartbeat and the token's expiry (a timer is ~100 bytes of every
        // idle connection): it fires at whichever comes first.
        let first_ping = tokio::time::Instant::now() + self.ctx.config.limits.heartbeat;
        let mut missed_pongs: u32 = 0;
        // A token's `exp` is the token issuer's to choose: one too far off to be a time (past
        // what the clock can add) is no expiry at all, never a panic.
        let expiry = self.identity.expires_at.and_then(|exp| {
            let now_s = now_micros() / 1_000_000;
            tokio::time::Instant::now().checked_add(Duration::from_secs(exp.saturating_sub(now_s)))
        });
        let deadline =
            |next_ping| expiry.map_or(next_ping, |e: tokio::time::Instant| e.min(next_ping));
        let timer = tokio::time::sleep_until(deadline(first_ping));
        tokio::pin!(timer);
        // Bytes written at the last heartbeat tick (while a reply waits, the client's progress
        // in reading it is its sign of life: its pongs wait behind requests not read yet).
        let mut written_at_tick = self.local.writer.borrow().written();

        loop {
            // While a reply the client asked for still waits for the socket, its next request
            // waits in the kernel: one reply at a time is what a client may leave unread.
            let reading = !self.local.writer.borrow().reply_pending();
            // One poll over every source, in priority order, with no future stored between
            // polls: the socket's readiness, the doorbell and the publishes in flight are
            // polled where they lie (a `select!` would keep each branch's future in the task).
            let woke = std::future::poll_fn(|cx| {
                if self.handle.shared.wake.poll(cx).is_ready() {
                    return Poll::Ready(Wakeup::Wake);
                }
                if std::future::Future::poll(timer.as_mut(), cx).is_ready() {
                    return Poll::Ready(Wakeup::Tick);
                }
                if let Some(p) = self.pending.as_mut().filter(|p| !p.is_empty()) {
                    if let Poll::Ready(Some(done)) = p.poll_next_unpin(cx) {
                        return Poll::Ready(Wakeup::Published(Box::new(done)));
                    }
                }
                if self.local.pending() > 0 {
                    if let Poll::Ready(r) = self.local.io.poll_write_ready(cx) {
                        return Poll::Ready(Wakeup::Writable(r.is_ok()));
                    }
                }
                if reading {
                    if let Poll::Ready(m) = self.reader.poll_recv(&self.local.io, cx) {
                        return Poll::Ready(Wakeup::Message(m));
                    }
                }
                Poll::Pending
            })
            .await;
            let step = match woke {
                Wakeup::Tick => {
                    let now = tokio::time::Instant::now();
                    if expiry.is_some_and(|e| now >= e) {
                        Err(Exit::Close(CloseRequest {
                            code: close::TOKEN_EXPIRED,
                            reason: "token expired".into(),
                            reconnect: true,
                            hint: None,
                        }))
                    } else if !reading && self.local.writer.borrow().written() == written_at_tick {
                        Err(Exit::Close(CloseRequest {
                            code: close::SLOW_CONSUMER,
                            reason: "slow consumer: a reply was not read for a heartbeat interval"
                                .into(),
                            reconnect: true,
                            hint: None,
                        }))
                    } else if missed_pongs >= 2 {
                        Err(Exit::Close(CloseRequest {
                            code: close::HEARTBEAT_TIMEOUT,
                            reason: "heartbeat timeout: two pongs missed".into(),
                            reconnect: true,
                            hint: None,
                        }))
                    } else {
                        written_at_tick = self.local.writer.borrow().written();
                        // Pongs sent while a reply was being read wait unread: not missed.
                        missed_pongs = if reading { missed_pongs + 1 } else { 0 };
                        self.local.writer.borrow_mut().ping(b"gh");
                        // A late tick delays the next one (no burst of pings).
                        let next_ping = now + self.ctx.config.limits.heartbeat;
                        timer.as_mut().reset(deadline(next_ping));
                        Ok(())
                    }
                }
                Wakeup::Writable(true) => self.flush_now(),
                Wakeup::Writable(false) => Err(Exit::Gone),
                Wakeup::Message(Ok(WsMessage::Ping(b))) => {
                    self.local.writer.borrow_mut().pong(&b);
                    Ok(())
                }
                Wakeup::Message(Ok(WsMessage::Pong)) => {
                    missed_pongs = 0;
                    Ok(())
                }
                Wakeup::Message(Ok(WsMessage::Close(reason))) => Err(Exit::ClientClosed(
                    reason.map_or(close::NORMAL, |r| u16::from(r.code)),
                )),
                Wakeup::Message(Err(e)) => Err(protocol_exit(&e)),
                // Moved whole into the boxed handler: nothing of it stays in this task.
                other => Box::pin(self.on_wakeup(other)).await,
            };
            // Everything this turn queued goes out in one write.
            let step = step.and_then(|()| {
                if self.local.pending() > 0 {
                    self.flush_now()?;
                }
                self.check_unwritten()
            });
            if let Err(exit) = step {
                return exit;
            }
        }
    }

    /// What woke the main loop, when handling it may wait: the doorbell (a close request, or
    /// the inbox), a publish answered, a client's text or binary message.
    async fn on_wakeup(&mut self, woke: Wakeup) -> Result<(), Exit> {
        match woke {
            Wakeup::Wake => match self.handle.shared.take_close() {
                Some(req) => Err(Exit::Close(req)),
                None => self.on_outbound().await,
            },
            Wakeup::Published(done) => self.published(*done).await,
            Wakeup::Message(Ok(WsMessage::Text(text))) => self.on_text(text).await,
            Wakeup::Message(Ok(WsMessage::Binary(b))) => self.on_binary(b.len()).await,
            // Handled in the loop itself, never sent here: the loop hands over the whole value
            // (a split type moved out of it in part kept the whole in the task: 8 bytes over a
            // cell size).
            Wakeup::Tick | Wakeup::Writable(_) | Wakeup::Message(_) => Ok(()),
        }
    }

    /// Handles what waits in the inbox, up to a batch (frames waiting for one socket are
    /// written together); with more left, comes back after the loop's other work.
    async fn on_outbound(&mut self) -> Result<(), Exit> {
        for _ in 0..64 {
            match self.handle.shared.pop() {
                Some(o) => self.one_outbound(o).await?,
                None => return Ok(()),
            }
        }
        self.handle.shared.wake.notify_one();
        Ok(())
    }

    async fn one_outbound(&mut self, o: Outbound) -> Result<(), Exit> {
        match o {
            Outbound::Room(d) => {
                let len = d.frame.len();
                self.handle
                    .shared
                    .queued_bytes
                    .fetch_sub(len, Ordering::AcqRel);
                // Not joined (any more), or a re-created room (new epoch): this connection
                // takes the latter through its rejoin, which replays everything the new owner
                // has, in order. Duplicates are dropped. Past a gap (the owner changed under
                // this connection before the old one sent it everything), the hole is filled
                // from the room's history first, so that nothing is skipped and a later re-join's
                // replay does not find it already passed.
                let mut written = self.local.room_message(&d);
                if written == RoomWrite::Gap {
                    Box::pin(self.fill_gap(&d.room)).await;
                    written = self.local.room_message_over_gap(&d);
                }
                if written != RoomWrite::Written {
                    return Ok(());
                }
                self.count_out(len);
                self.sample = self.sample.wrapping_add(1);
                if self.sample.is_multiple_of(LATENCY_SAMPLE) {
                    let us = now_micros().saturating_sub(d.published_us);
                    self.ctx.metrics.deliver_latency.observe(us as f64 / 1e6);
                }
                self.check_unwritten()
            }
            Outbound::Frame(f) => {
                self.handle
                    .shared
                    .queued_bytes
                    .fetch_sub(f.len(), Ordering::AcqRel);
                self.write(f).await
            }
            Outbound::Rejoin(r) => self.rejoin(*r).await,
            Outbound::RoomOp(op) => self.room_op(*op).await,
            Outbound::Rehomed(r) => {
                if let Some(j) = self.joined.get_mut(&r.room) {
                    j.room_ref = r.owner;
                    let mut cursors = self.local.cursors.borrow_mut();
                    if let Some(c) = cursors.get_mut(&r.room) {
                        if c.epoch != r.epoch {
                            j.prev = Some((std::mem::replace(&mut c.epoch, r.epoch), c.delivered));
                            c.delivered = r.seq;
                        } else {
                            c.delivered = c.delivered.max(r.seq);
                        }
                        tracing::debug!(client = %self.handle.info.client, room = %r.room, epoch = %c.epoch, "room re-homed");
                    }
                }
                Ok(())
            }
            Outbound::Limits(l) => {
                let now = Instant::now();
                self.msg_bucket
                    .reconfigure(f64::from(l.msgs_per_sec), f64::from(l.burst), now);
                self.byte_bucket
                    .reconfigure(l.bytes_per_sec as f64, bytes_burst(&l), now);
                if let Ok(mut cur) = self.handle.shared.limits.lock() {
                    *cur = *l;
                }
                tracing::info!(client = %self.handle.info.client, ?l, "limits changed");
                Ok(())
            }
        }
    }

    fn count_in(&self, len: usize) {
        self.handle.shared.msgs_in.fetch_add(1, Ordering::Relaxed);
        self.ctx.metrics.messages_in.inc();
        self.ctx.metrics.bytes_in.inc_by(len as u64);
    }

    /// Leaves every room, unregisters, tells the client why, and closes the socket.
    async fn finish(mut self, exit: Exit) {
        // From here on the pump only queues for this connection, and the write side is ours.
        crate::outbound::pump::Pump::unregister(self.slot);
        self.handle.shared.close_queue();
        self.local.cursors.borrow_mut().clear();
        let rooms: Vec<(RoomName, Joined)> = self.joined.drain().collect();
        for (room, _) in &rooms {
            emit(
                &self.ctx,
                WebhookEvent::Leave,
                &self.handle,
                Some(room),
                None,
                None,
            );
        }
        for (room, j) in rooms {
            let _ = self.ctx.relay.cast(RelayMessage::Unsubscribe {
                room: room.clone(),
                conn: self.handle.id,
            });
            crate::room_access::calls::leave(
                &j.room_ref,
                self.handle.info.client.as_str(),
                &self.ctx.node,
            );
        }
        // Counted as closing until its last frames are out, so a shutdown does not stop the
        // worker that carries it first.
        let closing = self.ctx.conns.closing();
        self.ctx.conns.unregister(self.handle.id);
        self.ctx.metrics.connections_active.dec();

        let (code, reason, notify, hint) = match exit {
            Exit::Close(req) => {
                let frame = ServerFrame::Disconnect {
                    code: req.code,
                    reason: &req.reason,
                    reconnect: req.reconnect,
                }
                .encode();
                (req.code, req.reason, Some(frame), req.hint)
            }
            Exit::ClientClosed(code) => (code, String::new(), None, None),
            Exit::Protocol(code, reason) => (code, reason, None, None),
            Exit::Gone => (0, String::new(), None, None),
        };
        if code == close::SLOW_CONSUMER {
            self.ctx.metrics.slow_consumer_closes.inc();
        }
        if notify.is_some() || matches!(code, 1002 | 1007 | 1009) {
            crate::metrics::Metrics::count(&self.ctx.metrics.closes, &code.to_string());
        }
        tracing::debug!(code, %reason, "closing");
        emit(
            &self.ctx,
            WebhookEvent::Disconnect,
            &self.handle,
            None,
            None,
            Some(code),
        );
        if code == 0 {
            return;
        }
        // A client that does not read may never take these: bound the wait (the kernel's
        // TCP_USER_TIMEOUT, set at accept, then tears the socket down).
        let mut writer = self.local.writer.take();
        if let Some(h) = hint {
            writer.text(h.as_bytes());
        }
        if let Some(f) = notify {
            writer.text(f.as_bytes());
        }
        writer.close(code, &reason);
        // The worker's pump may still hold this connection (it is on its list of connections to
        // flush, with nothing left to write since the writer was taken): the frames go out
        // through the shared socket all the same, and the socket closes once both let go.
        let local = self.local;
        if tokio::time::timeout(CLOSE_WRITE_TIMEOUT, writer.flush(&local.io))
            .await
            .is_ok_and(|r| r.is_ok())
        {
            // Written: a shutdown need not wait for the client's answer to the close.
            drop(closing);
            linger_close(&local.io, CLOSE_LINGER).await;
        }
    }
}

fn protocol_exit(e: &WsError) -> Exit {
    match e.close_code() {
        Some(code) => Exit::Protocol(code, e.to_string()),
        None => Exit::Gone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<F: std::future::Future>(_task: fn(Conn, AdmitGuard) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every idle connection keeps its task: a `select!` over stored futures, an argument kept
    /// twice or a value held across an await shows here first. Tokio's task cell is the future
    /// plus 104 bytes (header 32, scheduler and id 24, trailer 48), rounded up to 128: a future
    /// of at most 664 bytes keeps the cell at 768 (2026-12-07: 632 in a test build; it was 784,
    /// an 896-byte cell, while the welcome's result and what woke the loop were kept across the
    /// loop's waits). Moving only part of a value matched across an await keeps all of it: what
    /// woke the loop goes whole into [`Conn::on_wakeup`], and a typed split of it measured 672.
    #[test]
    fn the_connection_task_stays_small() {
        let size = future_size(run);
        eprintln!(
            "connection task future: {size} bytes, Conn {}",
            std::mem::size_of::<Conn>()
        );
        assert!(
            size <= 664,
            "the connection task's future grew to {size} bytes (over 664: a 896-byte task cell)"
        );
    }
}
