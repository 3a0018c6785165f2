//! Typed calls to a room: how the rest of the node talks to a room (on this node or another,
//! through a [`RoomRef`]), so no caller builds room messages by hand. A join's replay and a
//! history page that cross nodes are read in pages of [`LINK_PAGE_BYTES`].
//!
//! Owns no state; it builds [`crate::wire::room`] messages and reads their replies.

use super::address::RoomCallError;
use super::address::RoomRef;
use crate::delivery::Delivery;
use crate::wire::room::{
    Empty, HistoryPage, HistoryRequest, JoinReply, JoinRequest, LeaveRequest, MigrateReply,
    MigrateRequest, PresenceEntry, PresencePage, PublishRequest, Published, Publisher, RoomInfo,
    RoomMessage, SnapshotPut,
};
use protocol::client::Since;
use serde::Serialize;
use serde_json::value::RawValue;
use std::sync::Arc;

/// How long a call may wait for its room, milliseconds.
pub const CALL_MS: u64 = 5_000;

/// Joins `room` (the caller subscribed at its relay first).
pub async fn join(room: &RoomRef, mut req: JoinRequest) -> Result<JoinReply, RoomCallError> {
    let remote = !room.is_local();
    if remote {
        req.replay_bytes = Some(LINK_PAGE_BYTES as u64);
    }
    let recovering = req.since.is_some();
    let mut r = room.call(|p| RoomMessage::Join(req, p), CALL_MS).await?;
    if let Some(e) = r.error.take() {
        return Err(RoomCallError::Refused(e));
    }
    if let (Some(until), Some(last)) = (r.replay_until.take(), r.replay.last()) {
        // The rest of the replay, page by page. History that moved on meanwhile makes it
        // incomplete: a recovery then says so (never a partial replay); `last` keeps what it has.
        let since = Since {
            seq: last.seq,
            epoch: r.epoch.to_string(),
        };
        let (more, whole) = read_on(room, since, until, usize::MAX, usize::MAX).await;
        if whole || !recovering {
            r.replay.extend(more);
        } else {
            r.recovered = Some(false);
            r.replay.clear();
        }
    }
    Ok(r)
}

/// Most bytes of messages one reply carries across the cluster link: a join's replay or a
/// history page larger than this is read in pages of this size (no message between nodes
/// approaches the cluster library's frame limit).
pub const LINK_PAGE_BYTES: usize = 512 * 1024;

/// The messages after `since` up to seq `until`, read in [`LINK_PAGE_BYTES`] pages, at most
/// `count` of them and `bytes` of frames; true when that is all of them, false when it stops
/// early: history no longer holds the next one, the room changed epoch or did not answer.
async fn read_on(
    room: &RoomRef,
    mut since: Since,
    until: u64,
    count: usize,
    bytes: usize,
) -> (Vec<Arc<Delivery>>, bool) {
    let mut out = Vec::new();
    let mut size = 0usize;
    while since.seq < until && out.len() < count {
        let req = HistoryRequest {
            since: Some(since.clone()),
            limit: (until - since.seq).min((count - out.len()) as u64),
            max_bytes: Some(LINK_PAGE_BYTES as u64),
        };
        let Ok(page) = room.call(|p| RoomMessage::History(req, p), CALL_MS).await else {
            return (out, false);
        };
        let contiguous = *page.epoch == *since.epoch
            && page
                .messages
                .first()
                .is_some_and(|d| d.seq == since.seq + 1);
        if !contiguous {
            return (out, false);
        }
        for d in page.messages {
            if d.seq > until {
                break;
            }
            if out.len() == count || size + d.frame.len() > bytes {
                return (out, true);
            }
            size += d.frame.len();
            since.seq = d.seq;
            out.push(d);
        }
    }
    (out, true)
}

/// Leaves `room` (fire and forget).
pub fn leave(room: &RoomRef, client: &str, node: &str) {
    let _ = room.send(RoomMessage::Leave(LeaveRequest {
        client: client.to_owned(),
        node: node.to_owned(),
    }));
}

/// Publishes into `room`.
pub async fn publish(
    room: &RoomRef,
    from: Publisher,
    data: Box<RawValue>,
) -> Result<Published, RoomCallError> {
    room.call(
        |p| RoomMessage::Publish(PublishRequest { from, data }, p),
        CALL_MS,
    )
    .await
}

/// Sends a publish now (so publishes from one connection reach the room in the order they were
/// sent) and returns the wait for its answer, which the caller may hold while it goes on.
pub fn publish_started(
    room: &RoomRef,
    from: Publisher,
    data: Box<RawValue>,
) -> impl std::future::Future<Output = Result<Published, RoomCallError>> + 'static {
    room.call_started(
        |p| RoomMessage::Publish(PublishRequest { from, data }, p),
        CALL_MS,
    )
}

/// Members of `room`, read page by page (each page one bounded message across the link); a
/// client's `presence` gets one page at a time instead ([`presence_page`]).
pub async fn presence(room: &RoomRef) -> Result<Vec<PresenceEntry>, RoomCallError> {
    let mut members = Vec::new();
    let mut after = None;
    loop {
        let page = room
            .call(
                |p| RoomMessage::Presence(PresencePage { after, limit: None }, p),
                CALL_MS,
            )
            .await?;
        members.extend(page.members);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(members),
        }
    }
}

/// One page of `room`'s members for a client: those with a client id after `after`, in client
/// id order, handed to `take` one at a time until `limit` were taken or `take` refuses one (the
/// page is full before it). `take` must accept the first member of a page. Reads as many of the
/// room's own pages (each one bounded message across the link) as the page needs; answers the
/// cursor to ask again with (the last client id taken) when more members follow, `None` when
/// the page reached the end of the list.
pub async fn presence_page(
    room: &RoomRef,
    after: Option<String>,
    limit: usize,
    mut take: impl FnMut(&PresenceEntry) -> bool,
) -> Result<Option<String>, RoomCallError> {
    let mut cursor = after;
    let mut taken = 0;
    let mut last: Option<String> = None;
    loop {
        let req = PresencePage {
            after: cursor.clone(),
            limit: u32::try_from(limit - taken).ok(),
        };
        let page = room
            .call(|p| RoomMessage::Presence(req, p), CALL_MS)
            .await?;
        // A room that does not read `after` (a node of an older version) lists from the start:
        // what the client already has is skipped here.
        let fresh = page
            .members
            .into_iter()
            .filter(|m| cursor.as_deref().is_none_or(|c| m.client.as_str() > c));
        for m in fresh {
            if taken == limit || !take(&m) {
                return Ok(last);
            }
            taken += 1;
            last = Some(m.client);
        }
        match page.next {
            // More members follow this page of the room's.
            Some(next) if cursor.as_deref().is_none_or(|c| next.as_str() > c) => {
                if taken == limit {
                    return Ok(last);
                }
                cursor = Some(next);
            }
            _ => return Ok(None),
        }
    }
}

/// One page of `room`'s members as the JSON array a reply carries: entries of `client` and
/// `user` (and `node` when `with_node`), at most `limit` of them and `max_bytes` of array text
/// (escapes, commas and brackets included; at least one entry when any remain). Answers the
/// array, how many it holds and the cursor of the next page (see [`presence_page`]).
pub async fn presence_json(
    room: &RoomRef,
    after: Option<String>,
    limit: usize,
    max_bytes: usize,
    with_node: bool,
) -> Result<(String, usize, Option<String>), RoomCallError> {
    #[derive(Serialize)]
    struct Entry<'a> {
        client: &'a str,
        user: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        node: Option<&'a str>,
    }
    let mut members = String::from("[");
    let mut count = 0usize;
    let next = presence_page(room, after, limit, |m| {
        let entry = serde_json::to_string(&Entry {
            client: &m.client,
            user: &m.user,
            node: with_node.then_some(m.node.as_str()),
        })
        .expect("an entry of strings always encodes");
        // `,` before it and the closing `]` after it must fit too; one entry always does.
        if count > 0 && members.len() + 1 + entry.len() + 1 > max_bytes {
            return false;
        }
        if count > 0 {
            members.push(',');
        }
        members.push_str(&entry);
        count += 1;
        true
    })
    .await?;
    members.push(']');
    Ok((members, count, next))
}

/// History of `room`.
pub async fn history(
    room: &RoomRef,
    since: Option<Since>,
    limit: usize,
) -> Result<HistoryPage, RoomCallError> {
    let remote = !room.is_local();
    let req = HistoryRequest {
        since,
        limit: limit as u64,
        max_bytes: remote.then_some(LINK_PAGE_BYTES as u64),
    };
    let mut page = room.call(|p| RoomMessage::History(req, p), CALL_MS).await?;
    if !remote {
        return Ok(page);
    }
    // Across the link: the rest of what one reply may carry (the room's own cap,
    // `MAX_REPLY_BYTES`), page by page, up to the seq the first page was read at; it ends where
    // history stops being contiguous.
    let bytes: usize = page.messages.iter().map(|d| d.frame.len()).sum();
    if let Some(last) = page.messages.last().filter(|d| d.seq < page.seq) {
        let since = Since {
            seq: last.seq,
            epoch: page.epoch.to_string(),
        };
        let count = limit.saturating_sub(page.messages.len());
        let room_left = crate::wire::room::MAX_REPLY_BYTES.saturating_sub(bytes);
        let (more, _) = read_on(room, since, page.seq, count, room_left).await;
        page.messages.extend(more);
    }
    Ok(page)
}

/// A page of `room`'s history, newest first (the admin API's).
#[derive(Debug, Clone)]
pub struct NewestFirst {
    /// The room's epoch (when the page asked for another epoch, the room's, and no messages).
    pub epoch: Arc<str>,
    /// The room's current seq.
    pub seq: u64,
    /// The page, newest first.
    pub messages: Vec<Arc<Delivery>>,
    /// Whether older messages may be held: the next page is the one below the last message.
    pub more: bool,
}

/// One page of `room`'s history, newest first: the newest `limit` messages held below seq `top`
/// of `epoch` (`before`), or below everything (`None`), cut to the newest that fit in
/// `max_bytes` (one at least). Reads through [`history`], which answers oldest first and keeps
/// the oldest that fit its own cap: when that cuts the page short of `top`, the window shrinks
/// to the messages that fitted and is read again right below `top` (it shrinks on every read,
/// so a page of large messages takes a few calls, each bounded).
pub async fn history_newest(
    room: &RoomRef,
    before: Option<(&str, u64)>,
    limit: usize,
    max_bytes: usize,
) -> Result<NewestFirst, RoomCallError> {
    let mut window = limit.max(1);
    let since = |epoch: &str, top: u64, window: usize| Since {
        seq: top.saturating_sub(window as u64 + 1),
        epoch: epoch.to_owned(),
    };
    let (mut page, epoch, top) = match before {
        // The newest `limit` held: what a history without `since` answers.
        None => {
            let p = history(room, None, window).await?;
            let (epoch, top) = (p.epoch.clone(), p.seq + 1);
            (p, epoch, top)
        }
        Some((epoch, top)) => {
            let p = history(room, Some(since(epoch, top, window)), window).await?;
            (p, Arc::from(epoch), top)
        }
    };
    loop {
        if page.epoch != epoch {
            // The cursor's epoch is gone (the room was re-created): nothing of it is held.
            return Ok(NewestFirst {
                epoch: page.epoch,
                seq: page.seq,
                messages: Vec::new(),
                more: false,
            });
        }
        let floor = top.saturating_sub(window as u64 + 1);
        page.messages.retain(|d| d.seq > floor && d.seq < top);
        let short = page.messages.last().is_some_and(|d| d.seq + 1 < top);
        if short && window > 1 {
            // Cut by the room's byte cap: the newest part of the window is what this page
            // wants, so read as many as fitted, right below `top`.
            window = page.messages.len().max(1);
            page = history(room, Some(since(&epoch, top, window)), window).await?;
            continue;
        }
        let held_from_floor = page.messages.first().is_some_and(|d| d.seq == floor + 1);
        let mut size = 0usize;
        let mut keep = 0usize;
        for d in page.messages.iter().rev() {
            if keep > 0 && size + d.frame.len() > max_bytes {
                break;
            }
            size += d.frame.len();
            keep += 1;
        }
        let trimmed = keep < page.messages.len();
        let mut messages = page.messages.split_off(page.messages.len() - keep);
        messages.reverse();
        let more = messages
            .last()
            .is_some_and(|d| d.seq > 1 && (trimmed || held_from_floor));
        return Ok(NewestFirst {
            epoch,
            seq: page.seq,
            messages,
            more,
        });
    }
}

/// Stores a snapshot; answers its seq.
pub async fn set_snapshot(room: &RoomRef, data: Box<RawValue>) -> Result<u64, RoomCallError> {
    let r = room
        .call(
            |p| RoomMessage::SetSnapshot(SnapshotPut { data }, p),
            CALL_MS,
        )
        .await?;
    match (r.seq, r.error) {
        (Some(seq), _) => Ok(seq),
        (None, e) => Err(RoomCallError::Refused(e.unwrap_or_default())),
    }
}

/// Reads the snapshot: (seq, epoch, data).
pub async fn get_snapshot(
    room: &RoomRef,
) -> Result<Option<(u64, String, Box<RawValue>)>, RoomCallError> {
    let r = room
        .call(|p| RoomMessage::GetSnapshot(Empty {}, p), CALL_MS)
        .await?;
    match r.error {
        Some(e) => Err(RoomCallError::Refused(e)),
        None => Ok(r.snapshot),
    }
}

/// Moves `room` to node `to`; the call waits for the handoff (up to a minute for large rooms).
pub async fn migrate(room: &RoomRef, to: &str) -> Result<MigrateReply, RoomCallError> {
    let req = MigrateRequest { to: to.to_owned() };
    let r = room.call(|p| RoomMessage::Migrate(req, p), 60_000).await?;
    match &r.error {
        Some(e) => Err(RoomCallError::Refused(e.clone())),
        None => Ok(r),
    }
}

/// Admin summary of `room`.
pub async fn info(room: &RoomRef) -> Result<RoomInfo, RoomCallError> {
    room.call(|p| RoomMessage::Info(Empty {}, p), CALL_MS)
        .await
        .map(|r| r.0)
}
