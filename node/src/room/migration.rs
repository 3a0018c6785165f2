//! Moving a room's ownership to another node: the state that moves (seq, epoch, history,
//! snapshot, presence, the nodes with members), cut into chunks that stay far below the
//! cluster link's frame limit, and put back together by the target's room host.
//!
//! The sequence (see ARCHITECTURE.md, "Migration"): the old owner stops taking messages (its
//! mailbox holds them), flushes every relay it sends to (a barrier per node, so nothing it sent
//! can arrive after the new owner's first message), sends the chunks, and once the new owner
//! runs and is visible in the room's group it leaves the group, tells the relays, and forwards
//! whatever still reaches it for a grace period. `seq` and epoch continue; nothing is lost,
//! duplicated or reordered for connected members.

use crate::outbound::Delivery;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use protocol::room::RoomName;
use ractor::BytesConvertable;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Largest chunk payload, bytes: far below ractor_cluster's 16 MiB frame limit.
pub const CHUNK_BYTES: usize = 1 << 20;

/// One moved member.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MovedMember {
    /// Client id.
    pub client: String,
    /// User id.
    pub user: String,
    /// Node it is connected to.
    pub node: String,
    /// Its connections in the room.
    pub conns: u32,
}

/// One message of history, as moved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MovedMessage {
    /// Seq.
    pub seq: u64,
    /// Encoded frame.
    pub frame: String,
    /// Publish time, microseconds since the Unix epoch.
    pub us: u64,
}

/// A chunk of a moving room.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AdoptChunk {
    /// Room.
    pub room: String,
    /// Identifies one move (a room may move again later).
    pub move_id: String,
    /// Chunk number, from 0.
    pub index: u32,
    /// Whether this is the last chunk.
    pub last: bool,
    /// Room epoch (every chunk).
    pub epoch: String,
    /// Room seq at the handoff (every chunk).
    pub seq: u64,
    /// Members (first chunk).
    #[serde(default)]
    pub members: Vec<MovedMember>,
    /// Nodes with members and their member-connection counts (first chunk).
    #[serde(default)]
    pub nodes: Vec<(String, u32)>,
    /// The snapshot: (seq, base64 of the compressed bytes, uncompressed length) (first chunk).
    #[serde(default)]
    pub snapshot: Option<(u64, String, usize)>,
    /// History, oldest first (a slice of it per chunk).
    #[serde(default)]
    pub history: Vec<MovedMessage>,
}

/// The target's answer to a chunk.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AdoptReply {
    /// Why the move failed.
    pub error: Option<String>,
}

impl BytesConvertable for AdoptChunk {
    fn into_bytes(self) -> Vec<u8> {
        serde_json::to_vec(&self).expect("chunks always encode")
    }
    fn from_bytes(bytes: Vec<u8>) -> Self {
        serde_json::from_slice(&bytes).expect("a chunk from a peer must decode")
    }
}

impl BytesConvertable for AdoptReply {
    fn into_bytes(self) -> Vec<u8> {
        serde_json::to_vec(&self).expect("replies always encode")
    }
    fn from_bytes(bytes: Vec<u8>) -> Self {
        serde_json::from_slice(&bytes).expect("a reply from a peer must decode")
    }
}

/// The whole state of a room in motion.
#[derive(Debug, Clone, Default)]
pub struct MovedRoom {
    /// Epoch.
    pub epoch: String,
    /// Seq.
    pub seq: u64,
    /// Members.
    pub members: Vec<MovedMember>,
    /// Nodes with members.
    pub nodes: Vec<(String, u32)>,
    /// Snapshot parts.
    pub snapshot: Option<(u64, Vec<u8>, usize)>,
    /// History.
    pub history: Vec<Arc<Delivery>>,
}

/// Cuts `m` into chunks of at most about [`CHUNK_BYTES`] each.
pub fn chunks(room: &RoomName, move_id: &str, m: &MovedRoom) -> Vec<AdoptChunk> {
    let base = AdoptChunk {
        room: room.to_string(),
        move_id: move_id.to_owned(),
        epoch: m.epoch.clone(),
        seq: m.seq,
        ..AdoptChunk::default()
    };
    let mut out = vec![AdoptChunk {
        members: m.members.clone(),
        nodes: m.nodes.clone(),
        snapshot: m
            .snapshot
            .as_ref()
            .map(|(s, bytes, len)| (*s, B64.encode(bytes), *len)),
        ..base.clone()
    }];
    let mut size = 0;
    for d in &m.history {
        let cost = d.frame.len() * 2 + 64;
        if size + cost > CHUNK_BYTES && !out.last().is_some_and(|c| c.history.is_empty()) {
            out.push(AdoptChunk {
                index: out.len() as u32,
                ..base.clone()
            });
            size = 0;
        }
        size += cost;
        if let Some(c) = out.last_mut() {
            c.history.push(MovedMessage {
                seq: d.seq,
                frame: d.frame.to_string(),
                us: d.published_us,
            });
        }
    }
    if let Some(c) = out.last_mut() {
        c.last = true;
    }
    out
}

/// Puts chunks back together; `None` if they do not form one move.
pub fn assemble(room: &RoomName, chunks: Vec<AdoptChunk>) -> Option<MovedRoom> {
    let first = chunks.first()?.clone();
    let epoch: Arc<str> = Arc::from(first.epoch.as_str());
    let mut history = Vec::new();
    for (i, c) in chunks.into_iter().enumerate() {
        if c.index as usize != i || c.move_id != first.move_id {
            return None;
        }
        for h in c.history {
            history.push(Arc::new(Delivery {
                room: room.clone(),
                seq: h.seq,
                epoch: epoch.clone(),
                frame: h.frame.into(),
                published_us: h.us,
            }));
        }
    }
    let snapshot = match first.snapshot {
        Some((s, b64, len)) => Some((s, B64.decode(b64).ok()?, len)),
        None => None,
    };
    Some(MovedRoom {
        epoch: first.epoch,
        seq: first.seq,
        members: first.members,
        nodes: first.nodes,
        snapshot,
        history,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_state_moves_in_bounded_chunks_and_comes_back_whole() {
        let room = RoomName::parse("big").unwrap();
        let frame = "x".repeat(60_000);
        let history: Vec<Arc<Delivery>> = (1..=100)
            .map(|seq| {
                Arc::new(Delivery {
                    room: room.clone(),
                    seq,
                    epoch: Arc::from("e"),
                    frame: frame.clone().into(),
                    published_us: seq,
                })
            })
            .collect();
        let m = MovedRoom {
            epoch: "e".into(),
            seq: 100,
            members: vec![MovedMember {
                client: "c".into(),
                user: "u".into(),
                node: "n".into(),
                conns: 1,
            }],
            nodes: vec![("n".into(), 1)],
            snapshot: Some((50, vec![1, 2, 3], 10)),
            history,
        };
        let cs = chunks(&room, "m1", &m);
        assert!(cs.len() > 5);
        for c in &cs {
            assert!(c.clone().into_bytes().len() < 2 * CHUNK_BYTES);
        }
        assert!(cs.last().unwrap().last && !cs[0].last);
        let back = assemble(&room, cs).unwrap();
        assert_eq!(back.history.len(), 100);
        assert_eq!(back.history[99].seq, 100);
        assert_eq!(back.snapshot, Some((50, vec![1, 2, 3], 10)));
        assert_eq!(back.members.len(), 1);
    }
}
