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

use crate::delivery::Delivery;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use protocol::room::RoomName;
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
    /// Members (a slice of them per chunk, as many as fit).
    #[serde(default)]
    pub members: Vec<MovedMember>,
    /// Nodes with members and their member-connection counts (first chunk).
    #[serde(default)]
    pub nodes: Vec<(String, u32)>,
    /// The snapshot: (seq, base64 of the first piece of the compressed bytes, uncompressed
    /// length) (first chunk).
    #[serde(default)]
    pub snapshot: Option<(u64, String, usize)>,
    /// More of the snapshot's base64, continuing the first piece (chunks after the first).
    #[serde(default)]
    pub snapshot_more: String,
    /// History, oldest first (a slice of it per chunk).
    #[serde(default)]
    pub history: Vec<MovedMessage>,
}

/// The target's answer to a chunk.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AdoptReply {
    /// Why the move failed.
    pub error: Option<String>,
    /// Once the last chunk started the room: its actor name on the adopting node.
    #[serde(default)]
    pub name: Option<String>,
}

super::json_payloads!(AdoptChunk, AdoptReply);

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

/// Cuts `m` into chunks of at most about [`CHUNK_BYTES`] each (encoded): the members, the
/// snapshot and the history are all spread over as many chunks as they need, so no message of a
/// move or a replica sync is larger than that, however large the room.
pub fn chunks(room: &RoomName, move_id: &str, m: &MovedRoom) -> Vec<AdoptChunk> {
    let base = AdoptChunk {
        room: room.to_string(),
        move_id: move_id.to_owned(),
        epoch: m.epoch.clone(),
        seq: m.seq,
        ..AdoptChunk::default()
    };
    let mut out = vec![AdoptChunk {
        nodes: m.nodes.clone(),
        ..base.clone()
    }];
    let mut size = 0;
    // Starts a new chunk when `cost` more bytes would not fit the current one (unless it is
    // still empty: one item larger than a chunk gets a chunk of its own).
    let mut room_for = |out: &mut Vec<AdoptChunk>, cost: usize| {
        if size + cost > CHUNK_BYTES && size > 0 {
            out.push(AdoptChunk {
                index: out.len() as u32,
                ..base.clone()
            });
            size = 0;
        }
        size += cost;
    };
    if let Some((seq, bytes, len)) = &m.snapshot {
        // Pieces of a multiple of 3 bytes: their base64 texts concatenate into the whole's.
        const PIECE: usize = (CHUNK_BYTES / 2) / 3 * 3;
        for (k, piece) in bytes.chunks(PIECE).enumerate() {
            let text = B64.encode(piece);
            room_for(&mut out, text.len() + 64);
            let c = out.last_mut().expect("at least one chunk");
            if k == 0 {
                c.snapshot = Some((*seq, text, *len));
            } else {
                c.snapshot_more = text;
            }
        }
    }
    for mm in &m.members {
        room_for(
            &mut out,
            mm.client.len() + mm.user.len() + mm.node.len() + 64,
        );
        if let Some(c) = out.last_mut() {
            c.members.push(mm.clone());
        }
    }
    for d in &m.history {
        room_for(&mut out, d.frame.len() * 2 + 64);
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
    let mut members = Vec::new();
    let mut snapshot_b64 = first.snapshot.as_ref().map(|(_, b, _)| b.clone());
    for (i, c) in chunks.into_iter().enumerate() {
        if c.index as usize != i || c.move_id != first.move_id {
            return None;
        }
        members.extend(c.members);
        if !c.snapshot_more.is_empty() {
            snapshot_b64.as_mut()?.push_str(&c.snapshot_more);
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
    let snapshot = match (first.snapshot, snapshot_b64) {
        (Some((s, _, len)), Some(b64)) => Some((s, B64.decode(b64).ok()?, len)),
        _ => None,
    };
    Some(MovedRoom {
        epoch: first.epoch,
        seq: first.seq,
        members,
        nodes: first.nodes,
        snapshot,
        history,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ractor::BytesConvertable;

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

    #[test]
    fn a_room_of_200_000_members_and_a_large_snapshot_moves_in_bounded_chunks() {
        let room = RoomName::parse("huge").unwrap();
        let members: Vec<MovedMember> = (0..200_000)
            .map(|i| MovedMember {
                client: format!("c_{i:012}"),
                user: format!("anon-{i:016x}"),
                node: "node-a".into(),
                conns: 1,
            })
            .collect();
        let snapshot: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let m = MovedRoom {
            epoch: "e".into(),
            seq: 7,
            members,
            nodes: vec![("node-a".into(), 200_000)],
            snapshot: Some((5, snapshot.clone(), 9_000_000)),
            history: Vec::new(),
        };
        let cs = chunks(&room, "m2", &m);
        assert!(cs.len() > 10);
        for c in &cs {
            let n = c.clone().into_bytes().len();
            assert!(n <= CHUNK_BYTES + 64 * 1024, "a chunk of {n} bytes");
        }
        let back = assemble(&room, cs).unwrap();
        assert_eq!(back.members.len(), 200_000);
        assert_eq!(back.members[199_999].client, "c_000000199999");
        assert_eq!(back.snapshot, Some((5, snapshot, 9_000_000)));
    }
}
