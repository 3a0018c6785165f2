//! One published message as every part of the node shares it: encoded once by the room's
//! owner, then held (behind an `Arc`) by history, the relay and every subscriber's queue.
//!
//! A leaf value: it imports nothing of the node.

use bytestring::ByteString;
use protocol::room::RoomName;
use std::sync::Arc;

/// One published message, encoded once and shared by every subscriber, the relay and history.
#[derive(Debug)]
pub struct Delivery {
    /// Room it was published to.
    pub room: RoomName,
    /// Sequence number assigned by the room's owner.
    pub seq: u64,
    /// Room epoch.
    pub epoch: Arc<str>,
    /// The encoded `message` frame.
    pub frame: ByteString,
    /// When the owner assigned `seq`, microseconds since the Unix epoch.
    pub published_us: u64,
}

impl AsRef<[u8]> for Delivery {
    /// The message frame's payload (what a connection's writer shares).
    fn as_ref(&self) -> &[u8] {
        self.frame.as_bytes()
    }
}
