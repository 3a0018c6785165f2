//! The part of a connection that its worker's pump may touch: the socket's write side and the
//! per-room cursors (epoch, highest seq written). Lives on the connection's HTTP worker thread
//! only (`Rc`, `RefCell`): the connection task and the worker's pump both run there, one at a
//! time, and neither holds a borrow across an `.await`.
//!
//! Why: a room message for a connection that is idle (nothing in its queue) is written by the
//! pump straight into this buffer, and the pump flushes every connection it wrote to once per
//! round, after all the publishes that arrived meanwhile. So a delivery costs no queue push, no
//! task wake and no task poll, and a connection that gets several messages in one round gets one
//! `write` for all of them.
//!
//! Owns the write buffer and the cursors; the socket's reads, the rooms' owners and everything
//! else stay with the connection task.

use super::room_map::RoomMap;
use crate::delivery::Delivery;
use crate::ids::ConnId;
use crate::outbound::ConnShared;
use crate::websocket::Writer;
use protocol::room::RoomName;
use std::cell::{Cell, RefCell};
use std::sync::Arc;
use tokio::net::TcpStream;

/// Where a connection is in one room.
#[derive(Debug, Clone)]
pub struct Cursor {
    /// The room's epoch this connection follows.
    pub epoch: Arc<str>,
    /// Highest seq written to the client; anything at or below it is a duplicate.
    pub delivered: u64,
}

/// What became of a room message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomWrite {
    /// Queued for the socket.
    Written,
    /// Already written (replay/live overlap, a re-send): dropped.
    Duplicate,
    /// Not a room this connection follows in that epoch: the connection task decides.
    Other,
}

/// Worker-local state of one connection.
#[derive(Debug)]
pub struct ConnLocal {
    /// Connection id (checked by the pump against the handle, since slots are reused).
    pub id: ConnId,
    /// The state the connection shares with the node (the pump checks its inbox and close
    /// request from here, without going through the handle).
    pub shared: Arc<ConnShared>,
    /// The upgraded socket.
    pub io: TcpStream,
    /// Frames waiting for the socket.
    pub writer: RefCell<Writer>,
    /// Rooms joined (present once the join's reply and replay are written).
    pub cursors: RefCell<RoomMap<Cursor>>,
    /// Frames the pump wrote since its last flush of this connection; above zero, the
    /// connection is on the pump's list to flush (its `msgs_out` is counted then, once per
    /// flush rather than once per frame).
    pub unflushed: Cell<u32>,
}

impl ConnLocal {
    /// State for a new connection on `io`.
    pub fn new(id: ConnId, io: TcpStream, shared: Arc<ConnShared>) -> Self {
        Self {
            id,
            shared,
            io,
            writer: RefCell::new(Writer::default()),
            cursors: RefCell::new(RoomMap::default()),
            unflushed: Cell::new(0),
        }
    }

    /// Queues `d` if it is the next message of a room this connection follows in `d`'s epoch.
    pub fn room_message(&self, d: &Arc<Delivery>) -> RoomWrite {
        let mut cursors = self.cursors.borrow_mut();
        let Some(c) = cursors.get_mut_sharing(&d.room) else {
            return RoomWrite::Other;
        };
        if !Arc::ptr_eq(&c.epoch, &d.epoch) {
            if c.epoch != d.epoch {
                return RoomWrite::Other;
            }
            // Share the room's epoch: the next comparison is a pointer's.
            c.epoch = d.epoch.clone();
        }
        if d.seq <= c.delivered {
            return RoomWrite::Duplicate;
        }
        c.delivered = d.seq;
        // The payload is shared, not copied: every subscriber's writer points at it.
        self.writer.borrow_mut().shared_text(d.clone());
        RoomWrite::Written
    }

    /// Bytes waiting for the socket.
    pub fn pending(&self) -> usize {
        self.writer.borrow().pending()
    }

    /// The cursor of `room`, if joined.
    pub fn cursor(&self, room: &RoomName) -> Option<Cursor> {
        self.cursors.borrow().get(room).cloned()
    }
}
