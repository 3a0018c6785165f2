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
    /// Beyond the next seq of a room this connection follows in that epoch: messages in between
    /// never reached it (the room's owner changed under it and the old one had not sent them
    /// here). Nothing written: the connection task fills the hole from the room's history first.
    Gap,
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
        self.room_write(d, false)
    }

    /// Queues `d` if it comes after what this connection has of the room in `d`'s epoch, even
    /// past a gap (when the room's history cannot fill it any more).
    pub fn room_message_over_gap(&self, d: &Arc<Delivery>) -> RoomWrite {
        self.room_write(d, true)
    }

    fn room_write(&self, d: &Arc<Delivery>, over_gap: bool) -> RoomWrite {
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
        if d.seq > c.delivered + 1 && !over_gap {
            return RoomWrite::Gap;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::endpoint::Limits;

    fn delivery(room: &RoomName, epoch: &Arc<str>, seq: u64) -> Arc<Delivery> {
        Arc::new(Delivery {
            room: room.clone(),
            seq,
            epoch: epoch.clone(),
            frame: format!("{{\"seq\":{seq}}}").into(),
            published_us: 0,
        })
    }

    /// A live message past the next seq is not written (the connection task fills the hole
    /// from the room's history first); over the gap, or once the hole is filled, it is.
    #[tokio::test]
    async fn a_live_message_past_a_gap_waits_for_the_hole_to_be_filled() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (io, _) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let limits = Limits {
            msgs_per_sec: 10,
            burst: 10,
            bytes_per_sec: 1 << 20,
        };
        let shared = Arc::new(ConnShared::new(16, 1 << 20, limits));
        let local = ConnLocal::new(ConnId::next(), io.unwrap(), shared);
        let room = RoomName::parse("gap").unwrap();
        let epoch: Arc<str> = Arc::from("e1");
        local.cursors.borrow_mut().insert(
            room.clone(),
            Cursor {
                epoch: epoch.clone(),
                delivered: 5,
            },
        );
        assert_eq!(
            local.room_message(&delivery(&room, &epoch, 5)),
            RoomWrite::Duplicate
        );
        assert_eq!(
            local.room_message(&delivery(&room, &epoch, 7)),
            RoomWrite::Gap
        );
        assert_eq!(
            local.cursor(&room).unwrap().delivered,
            5,
            "nothing written past the gap"
        );
        // The hole filled (6), then the live message (7) is the next one.
        assert_eq!(
            local.room_message(&delivery(&room, &epoch, 6)),
            RoomWrite::Written
        );
        assert_eq!(
            local.room_message(&delivery(&room, &epoch, 7)),
            RoomWrite::Written
        );
        // History that cannot fill a hole: written over it.
        assert_eq!(
            local.room_message(&delivery(&room, &epoch, 9)),
            RoomWrite::Gap
        );
        assert_eq!(
            local.room_message_over_gap(&delivery(&room, &epoch, 9)),
            RoomWrite::Written
        );
        assert_eq!(local.cursor(&room).unwrap().delivered, 9);
        // Another epoch is not this connection's to write.
        let other: Arc<str> = Arc::from("e2");
        assert_eq!(
            local.room_message(&delivery(&room, &other, 10)),
            RoomWrite::Other
        );
    }
}
