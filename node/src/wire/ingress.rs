//! The relay ingress's messages: deliveries and presence events from room owners on other
//! nodes, the barrier a moving room waits on, and the note that a room moved. Deliveries are
//! encoded once per publish per node, in a compact binary form (the frame's bytes are copied
//! as they are, never re-encoded).

use super::room::Empty;
use crate::delivery::Delivery;
use protocol::room::RoomName;
use ractor::{BytesConvertable, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A delivery in transit: shared locally, binary on the wire.
#[derive(Debug, Clone)]
pub struct SharedDelivery(pub Arc<Delivery>);

impl BytesConvertable for SharedDelivery {
    fn into_bytes(self) -> Vec<u8> {
        let d = &self.0;
        let (room, epoch, frame) = (
            d.room.as_str().as_bytes(),
            d.epoch.as_bytes(),
            d.frame.as_bytes(),
        );
        let mut out = Vec::with_capacity(24 + room.len() + epoch.len() + frame.len());
        out.extend_from_slice(&d.seq.to_be_bytes());
        out.extend_from_slice(&d.published_us.to_be_bytes());
        out.extend_from_slice(&(room.len() as u32).to_be_bytes());
        out.extend_from_slice(room);
        out.extend_from_slice(&(epoch.len() as u32).to_be_bytes());
        out.extend_from_slice(epoch);
        out.extend_from_slice(frame);
        out
    }

    fn from_bytes(bytes: Vec<u8>) -> Self {
        // A malformed payload panics here; ractor catches it and drops the message.
        Self(Arc::new(
            decode(&bytes).expect("a delivery from a peer must decode"),
        ))
    }
}

fn decode(b: &[u8]) -> Option<Delivery> {
    let u64_at = |i: usize| {
        b.get(i..i + 8)
            .map(|s| u64::from_be_bytes(s.try_into().unwrap_or_default()))
    };
    let u32_at = |i: usize| {
        b.get(i..i + 4)
            .map(|s| u32::from_be_bytes(s.try_into().unwrap_or_default()) as usize)
    };
    let seq = u64_at(0)?;
    let us = u64_at(8)?;
    let rl = u32_at(16)?;
    let room = std::str::from_utf8(b.get(20..20 + rl)?).ok()?;
    let el = u32_at(20 + rl)?;
    let epoch = std::str::from_utf8(b.get(24 + rl..24 + rl + el)?).ok()?;
    let frame = String::from_utf8(b.get(24 + rl + el..)?.to_vec()).ok()?;
    Some(Delivery {
        room: RoomName::parse(room).ok()?,
        seq,
        epoch: Arc::from(epoch),
        frame: frame.into(),
        published_us: us,
    })
}

/// A presence event in transit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PresenceEvent {
    /// Room.
    pub room: String,
    /// Encoded frame.
    pub frame: String,
    /// Client the event is about.
    pub exclude: String,
}

impl BytesConvertable for PresenceEvent {
    fn into_bytes(self) -> Vec<u8> {
        serde_json::to_vec(&self).expect("presence events always encode")
    }
    fn from_bytes(bytes: Vec<u8>) -> Self {
        serde_json::from_slice(&bytes).expect("a presence event from a peer must decode")
    }
}

/// Messages accepted by a node's relay ingress, from room owners on other nodes.
#[derive(RactorClusterMessage)]
pub enum IngressMessage {
    /// A published message for this node's subscribers.
    Deliver(SharedDelivery),
    /// A presence event for this node's subscribers.
    Presence(PresenceEvent),
    /// Answered once everything the caller sent before it has been handed to the relay (the
    /// link is FIFO), so a moving room knows nothing of its can arrive after its successor's.
    #[rpc]
    Barrier(Empty, RpcReplyPort<Empty>),
    /// The room moved to another owner: the relay switches its members' handles.
    Moved(MovedNote),
}

/// A room that moved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MovedNote {
    /// Room.
    pub room: String,
    /// The new owner does not hold the members (a rival that won after a partition): they
    /// rejoin it (absent from older nodes: they follow it).
    #[serde(default)]
    pub rejoin: bool,
}

impl BytesConvertable for MovedNote {
    fn into_bytes(self) -> Vec<u8> {
        serde_json::to_vec(&self).expect("notes always encode")
    }
    fn from_bytes(bytes: Vec<u8>) -> Self {
        serde_json::from_slice(&bytes).expect("a note from a peer must decode")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_round_trip_in_binary() {
        let d = Delivery {
            room: RoomName::parse("chat:lobby").unwrap(),
            seq: 58,
            epoch: Arc::from("e9f1"),
            frame: r#"{"op":"message","data":"ü"}"#.into(),
            published_us: 123,
        };
        let back = SharedDelivery::from_bytes(SharedDelivery(Arc::new(d)).into_bytes()).0;
        assert_eq!((back.seq, back.published_us), (58, 123));
        assert_eq!((back.room.as_str(), &*back.epoch), ("chat:lobby", "e9f1"));
        assert_eq!(&*back.frame, r#"{"op":"message","data":"ü"}"#);
        assert!(decode(&[1, 2, 3]).is_none());
    }
}
