//! Client requests on one connection: decode, rate-limit, and answer join, leave, publish,
//! presence, history and ping (`docs/protocol.md` §3); and an operator's join or leave of a
//! room, done the same way (`Outbound::RoomOp`).
//!
//! Every frame gets an answer or a deliberate silence (a successful request without an `id`);
//! bad input is answered with an `error` frame or a failed `reply` and the connection stays open.

use super::{emit, Conn, Exit, Joined};
use crate::directory;
use crate::metrics::Metrics;
use crate::outbound::local::RoomWrite;
use crate::relay::RelayMessage;
use crate::room_access::calls;
use crate::room_access::RoomRef;
use crate::wire::room::{JoinReply, JoinRequest, Publisher};
use bytestring::ByteString;
use cluster_config::WebhookEvent;
use protocol::client::Presence;
use protocol::client::{
    decode, Request, RequestId, Since, PRESENCE_DEFAULT_LIMIT, PRESENCE_MAX_LIMIT,
    PRESENCE_REPLY_BYTES,
};
use protocol::codes::{close, ErrorCode};
use protocol::room::RoomName;
use protocol::server::{failure, success, ServerFrame};
use serde_json::value::RawValue;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// How long a join keeps trying a room it cannot reach before it answers `unavailable`
/// (`docs/protocol.md` §3): long enough for a room whose owner was lost to be restored.
const JOIN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// How long filling a gap in a room's live messages waits for each of finding the room and
/// reading its history (`Conn::fill_gap`): the connection's inbox waits meanwhile.
const GAP_FILL_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// How often a join tries again after its first two attempts.
const RETRY_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// A pause this long without a `rate_limited` answer ends an abuse episode.
const ABUSE_GAP: std::time::Duration = std::time::Duration::from_secs(1);

fn raw(s: String) -> Box<RawValue> {
    // Every caller passes JSON produced by serde_json.
    RawValue::from_string(s)
        .unwrap_or_else(|_| RawValue::from_string("null".to_owned()).expect("`null` is valid JSON"))
}

fn json(v: &serde_json::Value) -> Box<RawValue> {
    raw(v.to_string())
}

/// Most publishes a connection may have sent and not yet seen answered.
const MAX_IN_FLIGHT: usize = 64;

/// A publish sent to its room, with what its answer needs.
pub(crate) struct PublishDone {
    id: Option<RequestId>,
    room: RoomName,
    hook_data: Option<Box<RawValue>>,
    answer: Result<crate::wire::room::Published, crate::room_access::RoomCallError>,
}

/// The wait for one publish's answer.
pub(crate) type PendingPublish = std::pin::Pin<Box<dyn std::future::Future<Output = PublishDone>>>;

/// What a join found: the connection was a member already (its cursor), or it joined now.
enum Entered {
    Already(crate::outbound::local::Cursor),
    Joined(JoinReply),
}

/// Why a join was refused: what the client is answered.
struct Refused {
    code: ErrorCode,
    message: String,
    retry_after_ms: Option<u64>,
}

impl Refused {
    fn new(code: ErrorCode, message: String) -> Self {
        Self {
            code,
            message,
            retry_after_ms: None,
        }
    }
}

impl Conn {
    /// Answers a failure: a `reply` with `ok:false` when the request had an id, else an `error`.
    pub(super) async fn reject(
        &mut self,
        id: Option<&RequestId>,
        code: ErrorCode,
        message: &str,
        retry_after_ms: Option<u64>,
    ) -> Result<(), Exit> {
        Metrics::count(&self.ctx.metrics.client_errors, code.as_str());
        let frame = failure(id.map(RequestId::raw), code, message, retry_after_ms);
        self.write_str(frame).await
    }

    async fn ok(&mut self, id: Option<&RequestId>, result: &RawValue) -> Result<(), Exit> {
        match id {
            Some(id) => self.write_str(success(id.raw(), result)).await,
            None => Ok(()),
        }
    }

    /// Handles one binary frame: counted and rate-limited like any frame, answered `bad_frame`.
    pub(super) async fn on_binary(&mut self, len: usize) -> Result<(), Exit> {
        self.count_in(len);
        if self.over_limit(None, len).await? {
            return Ok(());
        }
        self.reject(
            None,
            ErrorCode::BadFrame,
            "binary frames are not supported; send JSON text",
            None,
        )
        .await
    }

    /// Handles one text frame.
    pub(super) async fn on_text(&mut self, text: ByteString) -> Result<(), Exit> {
        self.count_in(text.len());
        let decoded = decode(&text);
        let id = match &decoded {
            Ok(d) => d.id.clone(),
            Err(e) => e.id.clone(),
        };
        if self.over_limit(id.as_ref(), text.len()).await? {
            return Ok(());
        }
        match decoded {
            Err(e) => self.reject(e.id.as_ref(), e.code, &e.message, None).await,
            Ok(d) => {
                tracing::trace!(op = d.request.op(), "request");
                self.dispatch(d.id, d.request).await
            }
        }
    }

    /// Takes one frame of `len` bytes from the buckets; when over the limit, answers
    /// `rate_limited` (or closes 1008 after a sustained episode) and returns true.
    async fn over_limit(&mut self, id: Option<&RequestId>, len: usize) -> Result<bool, Exit> {
        // Rate limit every frame, well-formed or not.
        let now = Instant::now();
        let verdict = self
            .msg_bucket
            .take(1.0, now)
            .and_then(|()| self.byte_bucket.take(len as f64, now));
        if let Err(retry_after) = verdict {
            self.ctx.metrics.rate_limited.inc();
            // An abuse episode lasts while the client keeps hitting its limit at least once a
            // second (tokens refill, so some requests pass in between).
            let episode = self.limited.get_or_insert_with(|| Box::new([now, now]));
            let [since, last] = &mut **episode;
            if now.duration_since(*last) > ABUSE_GAP {
                *since = now;
            }
            *last = now;
            let since = *since;
            if now.duration_since(since) >= self.ctx.config.limits.abuse_close_after {
                return Err(Exit::Close(crate::outbound::CloseRequest {
                    code: close::POLICY,
                    reason: "rate limit exceeded for too long".into(),
                    reconnect: false,
                    hint: None,
                }));
            }
            let msg = {
                let l = self.handle.shared.limits.lock().map(|l| *l).ok();
                l.map_or_else(
                    || "rate limit exceeded".to_owned(),
                    |l| {
                        format!(
                            "{} messages/s (burst {}) or {} bytes/s exceeded",
                            l.msgs_per_sec, l.burst, l.bytes_per_sec
                        )
                    },
                )
            };
            self.reject(id, ErrorCode::RateLimited, &msg, Some(retry_after))
                .await?;
            return Ok(true);
        }
        Ok(false)
    }

    async fn dispatch(&mut self, id: Option<RequestId>, req: Request) -> Result<(), Exit> {
        let id = id.as_ref();
        match req {
            // Like every request with an id, a ping with one gets a `reply` echoing it (with an
            // empty result); a ping without an id gets `{"op":"pong"}`.
            Request::Ping => match id {
                Some(_) => self.ok(id, &json(&serde_json::json!({}))).await,
                None => self.write_str(ServerFrame::Pong.encode()).await,
            },
            Request::Join {
                room,
                since,
                last,
                presence,
            } => self.join(id, room, since, last, presence).await,
            Request::Leave { room } => self.leave(id, room).await,
            Request::Publish { room, data } => self.publish(id, room, data).await,
            Request::Presence { room, after, limit } => self.presence(id, room, after, limit).await,
            Request::History { room, since, limit } => self.history(id, room, since, limit).await,
        }
    }

    /// Takes one room creation from this connection's bucket, or says how long until one.
    fn take_room_create(&mut self) -> Result<(), u64> {
        let l = &self.ctx.config.limits;
        let now = std::time::Instant::now();
        self.room_creates
            .get_or_insert_with(|| {
                Box::new(crate::rate_limit::bucket::TokenBucket::new(
                    f64::from(l.room_creates_per_sec),
                    f64::from(l.room_creates_burst),
                    now,
                ))
            })
            .take(1.0, now)
    }

    async fn call_join(
        &self,
        room_ref: &RoomRef,
        since: Option<Since>,
        last: Option<u32>,
    ) -> Result<JoinReply, crate::room_access::RoomCallError> {
        let req = JoinRequest {
            client: self.handle.info.client.to_string(),
            user: self.handle.info.user.to_string(),
            node: self.ctx.node.clone(),
            since,
            last,
            quiet: false,
            replay_bytes: None,
        };
        calls::join(room_ref, req).await
    }

    async fn join(
        &mut self,
        id: Option<&RequestId>,
        room: RoomName,
        since: Option<Since>,
        last: Option<u32>,
        presence: Presence,
    ) -> Result<(), Exit> {
        let o = match self.enter(&room, since, last, presence, false).await {
            Ok(Entered::Joined(o)) => o,
            Ok(Entered::Already(c)) => {
                let result = json(&serde_json::json!({
                    "room": room.as_str(), "seq": c.delivered, "epoch": &*c.epoch, "already_joined": true
                }));
                return self.ok(id, &result).await;
            }
            Err(r) => return self.reject(id, r.code, &r.message, r.retry_after_ms).await,
        };
        let mut result = serde_json::json!({
            "room": room.as_str(), "seq": o.seq, "epoch": &*o.epoch, "members": o.members,
        });
        if let Some(rec) = o.recovered {
            result["recovered"] = rec.into();
        }
        if o.recovered.is_some() || last.is_some() {
            result["replayed"] = o.replay.len().into();
        }
        self.ok(id, &json(&result)).await?;
        if let Some((_, frame)) = o.snapshot {
            self.write_str(frame).await?;
        }
        for d in o.replay {
            self.write(d.frame.clone()).await?;
        }
        self.mark_reply();
        Ok(())
    }

    /// Joins `room` for the client's `join` or an operator's (`operator`): checks the
    /// connection's room count, the token's `rooms` claim and (for the client's own join of a
    /// room that runs nowhere yet) its room-creation rate; subscribes at the relay, joins the
    /// room's owner and records the membership. The caller writes what the client is told: from
    /// here on live messages above the join's seq may be written by the pump too, so the caller
    /// queues the reply, snapshot and replay before it awaits anything.
    async fn enter(
        &mut self,
        room: &RoomName,
        since: Option<Since>,
        last: Option<u32>,
        presence: Presence,
        operator: bool,
    ) -> Result<Entered, Refused> {
        if let Some(c) = self.local.cursor(room) {
            return Ok(Entered::Already(c));
        }
        let max = self.ctx.config.limits.max_rooms;
        if self.joined.len() >= max {
            return Err(Refused::new(
                ErrorCode::TooManyRooms,
                format!("at most {max} rooms per connection"),
            ));
        }
        if !self.identity.may_access(room.as_str()) {
            return Err(Refused::new(
                ErrorCode::Forbidden,
                format!("not allowed to join `{room}`"),
            ));
        }
        // A join of a room that runs nowhere creates it: at most so many per second (an
        // operator's join is not the client's doing and takes nothing from its allowance).
        let existing = match directory::find_local(room) {
            Some(r) => Some(r),
            None => directory::locate(&self.ctx.placement, room)
                .await
                .ok()
                .flatten(),
        };
        if existing.is_none() && !operator {
            if let Err(wait_ms) = self.take_room_create() {
                let l = &self.ctx.config.limits;
                let message = format!(
                    "creating rooms: {} per second (burst {}) exceeded",
                    l.room_creates_per_sec, l.room_creates_burst
                );
                self.ctx.metrics.rate_limited.inc();
                return Err(Refused {
                    code: ErrorCode::RateLimited,
                    message,
                    retry_after_ms: Some(wait_ms),
                });
            }
        }
        let _ = self.ctx.relay.cast(RelayMessage::Subscribe {
            room: room.clone(),
            conn: self.handle.clone(),
            presence,
        });
        // A room that stopped between lookup and join is looked up (re-created) once more at
        // once; after that, for up to JOIN_PATIENCE, every RETRY_EVERY: a room whose owner was
        // just lost is back within a second or so (restored from its replica), and a join held
        // that long is one the client need not make again.
        let mut outcome = None;
        let mut found = existing;
        let deadline = tokio::time::Instant::now() + JOIN_PATIENCE;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let last_error;
            let looked_up = match found.take() {
                Some(r) => Ok(r),
                None => directory::lookup(&self.ctx.placement, room).await,
            };
            match looked_up {
                Ok(room_ref) => match self.call_join(&room_ref, since.clone(), last).await {
                    Ok(o) => {
                        outcome = Some((room_ref, o));
                        break;
                    }
                    Err(e) => last_error = format!("join failed: {e}"),
                },
                Err(e) => last_error = format!("room lookup failed: {e}"),
            }
            // A connection asked to close (a drain, a kick) stops waiting: its close goes out
            // now, not after the patience.
            let closing = self.handle.shared.closing();
            if attempt >= 2 && (closing || tokio::time::Instant::now() + RETRY_EVERY >= deadline) {
                tracing::warn!(client = %self.handle.info.client, room = %room, attempts = attempt, error = %last_error, "join gave up");
                break;
            }
            tracing::debug!(client = %self.handle.info.client, room = %room, error = %last_error, "join retried");
            if attempt >= 2 {
                tokio::time::sleep(RETRY_EVERY).await;
            }
        }
        let Some((room_ref, o)) = outcome else {
            let _ = self.ctx.relay.cast(RelayMessage::Unsubscribe {
                room: room.clone(),
                conn: self.handle.id,
            });
            return Err(Refused {
                code: ErrorCode::Unavailable,
                message: "room unavailable, retry".into(),
                retry_after_ms: Some(1000),
            });
        };
        self.ctx.metrics.joins.inc();
        if !room_ref.is_local() {
            // A room on this node told this node's relay itself, before its reply.
            let _ = self.ctx.relay.cast(RelayMessage::Owner {
                room: room.clone(),
                owner: room_ref.clone(),
                epoch: o.epoch.clone(),
            });
        }
        self.handle
            .shared
            .rooms
            .store(self.joined.len() + 1, Ordering::Relaxed);
        self.joined.insert(
            room.clone(),
            Joined {
                room_ref,
                prev: None,
                at: std::time::Instant::now(),
            },
        );
        self.local.cursors.borrow_mut().insert(
            room.clone(),
            crate::outbound::local::Cursor {
                epoch: o.epoch.clone(),
                delivered: o.seq,
            },
        );
        emit(
            &self.ctx,
            WebhookEvent::Join,
            &self.handle,
            Some(room),
            None,
            None,
        );
        Ok(Entered::Joined(o))
    }

    /// An operator's join or leave (`Outbound::RoomOp`): done as the client's own would be,
    /// told to the client with a `joined` frame (and the room's snapshot) or a `left` frame,
    /// and answered on the op's channel.
    pub(super) async fn room_op(&mut self, op: crate::outbound::RoomOp) -> Result<(), Exit> {
        use crate::outbound::RoomOpOutcome;
        let crate::outbound::RoomOp { room, join, reply } = op;
        let (outcome, written) = if join {
            match self.enter(&room, None, None, Presence::Off, true).await {
                Ok(Entered::Already(_)) => (RoomOpOutcome::Unchanged, Ok(())),
                Ok(Entered::Joined(o)) => {
                    let frame = ServerFrame::Joined {
                        room: room.as_str(),
                        seq: o.seq,
                        epoch: &o.epoch,
                        members: o.members,
                    }
                    .encode();
                    let mut written = self.write_str(frame).await;
                    if let (Ok(()), Some((_, snapshot))) = (&written, o.snapshot) {
                        written = self.write_str(snapshot).await;
                    }
                    self.mark_reply();
                    (RoomOpOutcome::Done, written)
                }
                Err(r) => (RoomOpOutcome::Refused(r.code, r.message), Ok(())),
            }
        } else if self.quit(&room) {
            let frame = ServerFrame::Left {
                room: room.as_str(),
            }
            .encode();
            (RoomOpOutcome::Done, self.write_str(frame).await)
        } else {
            (RoomOpOutcome::Unchanged, Ok(()))
        };
        tracing::info!(client = %self.handle.info.client, room = %room, join, outcome = ?outcome, "room changed by an operator");
        let _ = reply.send(outcome);
        written
    }

    /// Writes what the room holds of `room` between this connection's position and a live
    /// message that came past it: asks the instance it joined if that one is still reachable,
    /// else where the room runs now (never creating it), each at most [`GAP_FILL_PATIENCE`].
    /// Whatever it cannot get stays a gap (the live message is written after it anyway).
    pub(super) async fn fill_gap(&mut self, room: &RoomName) {
        let Some(c) = self.local.cursor(room) else {
            return;
        };
        let joined = self
            .joined
            .get(room)
            .map(|j| j.room_ref.clone())
            .filter(RoomRef::is_live);
        let owner = match joined {
            Some(r) => Some(r),
            None => {
                let found = directory::locate(&self.ctx.placement, room);
                match tokio::time::timeout(GAP_FILL_PATIENCE, found).await {
                    Ok(Ok(r)) => r,
                    _ => None,
                }
            }
        };
        let Some(owner) = owner else {
            tracing::warn!(client = %self.handle.info.client, room = %room, seq = c.delivered, "a gap in the room's messages could not be filled: no owner found");
            return;
        };
        let since = Since {
            seq: c.delivered,
            epoch: c.epoch.to_string(),
        };
        let limit = self.ctx.config.rooms.history_size;
        let page = tokio::time::timeout(
            GAP_FILL_PATIENCE,
            calls::history(&owner, Some(since), limit),
        );
        let page = match page.await {
            Ok(Ok(p)) if p.epoch == c.epoch => p,
            _ => {
                tracing::warn!(client = %self.handle.info.client, room = %room, seq = c.delivered, "a gap in the room's messages could not be filled from its history");
                return;
            }
        };
        // In seq order from the position asked: contiguous when the page is complete; past what
        // history no longer holds when it is not.
        let mut filled = 0u64;
        for d in &page.messages {
            if self.local.room_message_over_gap(d) == RoomWrite::Written {
                filled += 1;
                self.count_out(d.frame.len());
            }
        }
        tracing::debug!(client = %self.handle.info.client, room = %room, from = c.delivered, filled, complete = page.complete, "filled a gap from the room's history");
    }

    /// Joins a re-created room again after its owner was lost: quietly (no presence flap), and
    /// with everything the new owner already has, written before anything live.
    pub(super) async fn rejoin(&mut self, r: crate::outbound::Rehome) -> Result<(), Exit> {
        let (old_epoch, old_seq, prev) =
            match (self.joined.get(&r.room), self.local.cursor(&r.room)) {
                // Not a member any more, or already joined there since the owner was lost.
                (None, _) | (_, None) => return Ok(()),
                (Some(j), _) if j.room_ref.same(&r.owner) && r.lost_at.is_none_or(|t| j.at > t) => {
                    return Ok(())
                }
                (Some(j), Some(c)) => (c.epoch, c.delivered, j.prev.clone()),
            };
        // Resume from where this connection is: a room restored from its replica has the same
        // epoch and replays exactly what we missed.
        let req = JoinRequest {
            client: self.handle.info.client.to_string(),
            user: self.handle.info.user.to_string(),
            node: self.ctx.node.clone(),
            since: Some(Since {
                seq: old_seq,
                epoch: old_epoch.to_string(),
            }),
            last: None,
            quiet: true,
            replay_bytes: None,
        };
        match calls::join(&r.owner, req).await {
            Ok(o) => {
                let mut replay = o.replay;
                if o.epoch != old_epoch {
                    let cap = self.ctx.config.rooms.history_size;
                    // Back to the epoch this connection had before (the rival owner it followed
                    // during a partition yielded): resume where it left that epoch, if the
                    // history still holds everything since.
                    let resumed = match prev.filter(|(e, _)| *e == o.epoch) {
                        Some((epoch, seq)) => {
                            let since = Since {
                                seq,
                                epoch: epoch.to_string(),
                            };
                            calls::history(&r.owner, Some(since), cap)
                                .await
                                .ok()
                                .filter(|p| p.complete)
                                .map(|p| p.messages)
                        }
                        None => None,
                    };
                    // Otherwise a re-created room (new epoch): everything it has so far.
                    replay = match resumed {
                        Some(m) => m,
                        None => calls::history(&r.owner, None, cap)
                            .await
                            .map(|p| p.messages)
                            .unwrap_or_default(),
                    };
                    replay.retain(|d| d.seq <= o.seq && d.epoch == o.epoch);
                }
                if let Some(j) = self.joined.get_mut(&r.room) {
                    j.room_ref = r.owner.clone();
                    j.at = std::time::Instant::now();
                    let mut cursors = self.local.cursors.borrow_mut();
                    if let Some(c) = cursors.get_mut(&r.room) {
                        if c.epoch == o.epoch {
                            // Same epoch: the pump may have written live messages while this
                            // re-join was under way; replay only what is beyond them.
                            let written = c.delivered;
                            replay.retain(|d| d.seq > written);
                            c.delivered = c.delivered.max(o.seq);
                        } else {
                            j.prev = Some((c.epoch.clone(), c.delivered));
                            c.epoch = o.epoch.clone();
                            c.delivered = o.seq;
                        }
                    }
                }
                let _ = self.ctx.relay.cast(RelayMessage::Owner {
                    room: r.room.clone(),
                    owner: r.owner,
                    epoch: o.epoch.clone(),
                });
                tracing::debug!(client = %self.handle.info.client, room = %r.room, epoch = %o.epoch, same_epoch = o.epoch == old_epoch, replayed = replay.len(), "re-joined the room at its new owner");
                for d in replay {
                    self.write(d.frame.clone()).await?;
                }
                self.mark_reply();
                Ok(())
            }
            Err(e) => {
                // The relay sees a handle that died and re-homes the room again; a room that
                // stopped tells its relays itself.
                tracing::warn!(client = %self.handle.info.client, room = %r.room, error = %e, "re-joining the room at its new owner failed");
                Ok(())
            }
        }
    }

    async fn leave(&mut self, id: Option<&RequestId>, room: RoomName) -> Result<(), Exit> {
        if !self.quit(&room) {
            let msg = format!("not a member of `{room}`");
            return self.reject(id, ErrorCode::NotJoined, &msg, None).await;
        }
        let result = json(&serde_json::json!({ "room": room.as_str() }));
        self.ok(id, &result).await
    }

    /// Leaves `room` (the client's `leave` or an operator's): unsubscribes, tells the room,
    /// forgets the membership. False when the connection is not a member.
    fn quit(&mut self, room: &RoomName) -> bool {
        let Some(j) = self.joined.remove(room) else {
            return false;
        };
        self.local.cursors.borrow_mut().remove(room);
        let _ = self.ctx.relay.cast(RelayMessage::Unsubscribe {
            room: room.clone(),
            conn: self.handle.id,
        });
        calls::leave(
            &j.room_ref,
            self.handle.info.client.as_str(),
            &self.ctx.node,
        );
        self.handle
            .shared
            .rooms
            .store(self.joined.len(), Ordering::Relaxed);
        emit(
            &self.ctx,
            WebhookEvent::Leave,
            &self.handle,
            Some(room),
            None,
            None,
        );
        true
    }

    fn joined_ref(&self, room: &RoomName) -> Option<RoomRef> {
        self.joined.get(room).map(|j| j.room_ref.clone())
    }

    async fn publish(
        &mut self,
        id: Option<&RequestId>,
        room: RoomName,
        data: Box<RawValue>,
    ) -> Result<(), Exit> {
        let Some(room_ref) = self.joined_ref(&room) else {
            let msg = format!("join `{room}` before publishing to it");
            return self.reject(id, ErrorCode::NotJoined, &msg, None).await;
        };
        if !self.identity.may_access(room.as_str()) {
            let msg = format!("not allowed to publish to `{room}`");
            return self.reject(id, ErrorCode::Forbidden, &msg, None).await;
        }
        let wants_hook = self.ctx.webhook.wants_publish(room.as_str());
        let hook_data = wants_hook.then(|| data.clone());
        let from = Publisher::Client {
            client: self.handle.info.client.to_string(),
            user: self.handle.info.user.to_string(),
        };
        // Pipelined: the publish goes to its room now (in order), and its answer is written when
        // it comes, while this connection reads on. A connection waits only once it has
        // MAX_IN_FLIGHT publishes unanswered.
        while let Some(p) = self.pending.as_mut().filter(|p| p.len() >= MAX_IN_FLIGHT) {
            match futures_util::StreamExt::next(&mut **p).await {
                Some(done) => self.published(done).await?,
                None => break,
            }
        }
        let answer = calls::publish_started(&room_ref, from, data);
        let id = id.cloned();
        let pending = self.pending.get_or_insert_with(Default::default);
        pending.push_back(Box::pin(async move {
            PublishDone {
                id,
                room,
                hook_data,
                answer: answer.await,
            }
        }));
        Ok(())
    }

    /// Writes the answer to one publish (in the order the publishes were sent).
    pub(super) async fn published(&mut self, done: PublishDone) -> Result<(), Exit> {
        let PublishDone {
            id,
            room,
            hook_data,
            answer,
        } = done;
        let id = id.as_ref();
        match answer {
            Ok(crate::wire::room::Published { seq, .. }) => {
                if let Some(data) = hook_data {
                    self.ctx.webhook.emit(crate::webhook::Event {
                        kind: "publish",
                        client: self.handle.info.client.to_string(),
                        user: self.handle.info.user.to_string(),
                        room: Some(room.to_string()),
                        seq: Some(seq),
                        data: Some(data),
                        code: None,
                        ts_ms: crate::webhook::now_ms(),
                    });
                }
                let result = raw(format!(r#"{{"seq":{seq}}}"#));
                self.ok(id, &result).await
            }
            Err(e) => {
                tracing::warn!(client = %self.handle.info.client, room = %room, error = %e, "publish failed");
                self.reject(
                    id,
                    ErrorCode::Unavailable,
                    "room unavailable, retry",
                    Some(1000),
                )
                .await
            }
        }
    }

    /// Answers one page of the room's members (`docs/protocol.md` §3 `presence`): at most
    /// `limit` of them and [`PRESENCE_REPLY_BYTES`] of `members` text, and the cursor of the
    /// next page; the reply is marked as one the client asked for, like a history page.
    async fn presence(
        &mut self,
        id: Option<&RequestId>,
        room: RoomName,
        after: Option<String>,
        limit: Option<u32>,
    ) -> Result<(), Exit> {
        let Some(room_ref) = self.joined_ref(&room) else {
            let msg = format!("join `{room}` to see its presence");
            return self.reject(id, ErrorCode::NotJoined, &msg, None).await;
        };
        let limit = limit
            .unwrap_or(PRESENCE_DEFAULT_LIMIT)
            .min(PRESENCE_MAX_LIMIT) as usize;
        let page = calls::presence_json(&room_ref, after, limit, PRESENCE_REPLY_BYTES, false).await;
        match page {
            Ok((members, count, next)) => {
                let result = raw(format!(
                    r#"{{"count":{count},"members":{members},"next":{},"room":{}}}"#,
                    serde_json::Value::from(next),
                    serde_json::Value::from(room.as_str()),
                ));
                self.ok(id, &result).await?;
                self.mark_reply();
                Ok(())
            }
            Err(_) => {
                self.reject(
                    id,
                    ErrorCode::Unavailable,
                    "room unavailable, retry",
                    Some(1000),
                )
                .await
            }
        }
    }

    async fn history(
        &mut self,
        id: Option<&RequestId>,
        room: RoomName,
        since: Option<Since>,
        limit: Option<u32>,
    ) -> Result<(), Exit> {
        let Some(room_ref) = self.joined_ref(&room) else {
            let msg = format!("join `{room}` to read its history");
            return self.reject(id, ErrorCode::NotJoined, &msg, None).await;
        };
        let cap = self.ctx.config.rooms.history_size;
        let limit = limit.map_or(100, |l| l as usize).min(cap);
        match calls::history(&room_ref, since, limit).await {
            Ok(page) => {
                let messages = page.messages_json();
                let result = raw(format!(
                    r#"{{"room":{},"epoch":{},"seq":{},"recovered":{},"messages":{}}}"#,
                    serde_json::Value::from(room.as_str()),
                    serde_json::Value::from(&*page.epoch),
                    page.seq,
                    page.complete,
                    messages
                ));
                self.ok(id, &result).await?;
                self.mark_reply();
                Ok(())
            }
            Err(_) => {
                self.reject(
                    id,
                    ErrorCode::Unavailable,
                    "room unavailable, retry",
                    Some(1000),
                )
                .await
            }
        }
    }
}
