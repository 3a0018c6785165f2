//! One room's presence events waiting for the next tick, for the local members that asked for
//! them batched (`presence_batch`, `docs/protocol.md` §3): the events of a tick go to each such
//! member as one `presence_batch` frame, in the order the room sent them, without the events
//! about the member itself. A tick's events past [`MAX_BATCH_BYTES`] go out at once, so no
//! frame is much larger than that.
//!
//! Pure: it holds encoded events and builds frames; the relay decides when (its timer) and
//! pushes the frames (its fan-out).

use crate::ids::ClientId;
use bytestring::ByteString;
use protocol::room::RoomName;

/// How long events wait for the ones after them: a member gets at most one `presence_batch`
/// frame per room per tick (unless a tick's events pass [`MAX_BATCH_BYTES`]).
pub const PRESENCE_TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// Bytes of events one batch holds before it is sent without waiting for its tick.
pub const MAX_BATCH_BYTES: usize = 64 * 1024;

/// The events of one room since its last batch.
#[derive(Default)]
pub struct PresenceBatch {
    /// Encoded `presence_join` / `presence_leave` frames and who each is about.
    events: Vec<(ByteString, ClientId)>,
    bytes: usize,
    /// A flush is scheduled for the end of the current tick.
    pub scheduled: bool,
}

impl PresenceBatch {
    /// Adds one event; true when the batch is full and should go now.
    pub fn push(&mut self, frame: ByteString, about: ClientId) -> bool {
        self.bytes += frame.len() + 1;
        self.events.push((frame, about));
        self.bytes >= MAX_BATCH_BYTES
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Takes the waiting events out as frames: the one every member gets, and `frame_for`,
    /// which builds the frame of a member some event is about (its own events left out; `None`
    /// when nothing else is left for it).
    pub fn take(&mut self, room: &RoomName) -> Batch {
        let events = std::mem::take(&mut self.events);
        self.bytes = 0;
        let room = serde_json::to_string(room.as_str()).unwrap_or_default();
        let shared = encode(&room, events.iter().map(|(f, _)| f));
        Batch {
            room,
            shared,
            events,
        }
    }
}

/// The frames of one tick's events.
pub struct Batch {
    room: String,
    shared: ByteString,
    events: Vec<(ByteString, ClientId)>,
}

impl Batch {
    /// The frame a member gets: the shared one, or (when some event is about `client`) one
    /// without those events; `None` when every event is about it.
    pub fn frame_for(&self, client: &ClientId) -> Option<ByteString> {
        if !self.events.iter().any(|(_, about)| about == client) {
            return Some(self.shared.clone());
        }
        let mut others = self
            .events
            .iter()
            .filter(|(_, about)| about != client)
            .map(|(f, _)| f)
            .peekable();
        others.peek()?;
        Some(encode(&self.room, others))
    }
}

/// `{"op":"presence_batch","room":…,"events":[…]}` around the events as they were encoded.
fn encode<'a>(room_json: &str, events: impl Iterator<Item = &'a ByteString>) -> ByteString {
    let mut s = String::with_capacity(64);
    s.push_str(r#"{"op":"presence_batch","room":"#);
    s.push_str(room_json);
    s.push_str(r#","events":["#);
    for (i, e) in events.enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(e);
    }
    s.push_str("]}");
    s.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(op: &str, client: &str) -> (ByteString, ClientId) {
        let f = format!(r#"{{"op":"{op}","room":"r","client":"{client}","user":"u"}}"#);
        (f.into(), ClientId::new(client))
    }

    #[test]
    fn a_tick_is_one_frame_in_order_and_no_member_hears_of_itself() {
        let room = RoomName::parse("r").unwrap();
        let mut b = PresenceBatch::default();
        for (op, c) in [
            ("presence_join", "a"),
            ("presence_join", "b"),
            ("presence_leave", "a"),
        ] {
            let (f, about) = event(op, c);
            assert!(!b.push(f, about));
        }
        let batch = b.take(&room);
        assert!(b.is_empty());
        let shared = batch.frame_for(&ClientId::new("z")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&shared).unwrap();
        assert_eq!(v["op"], "presence_batch");
        assert_eq!(v["room"], "r");
        let ops: Vec<(String, String)> = v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["op"].to_string(), e["client"].to_string()))
            .collect();
        assert_eq!(
            ops,
            [
                (r#""presence_join""#.into(), r#""a""#.into()),
                (r#""presence_join""#.into(), r#""b""#.into()),
                (r#""presence_leave""#.into(), r#""a""#.into()),
            ]
        );
        // `a` gets only `b`'s join; `b` gets `a`'s join and leave.
        let for_a: serde_json::Value =
            serde_json::from_str(&batch.frame_for(&ClientId::new("a")).unwrap()).unwrap();
        assert_eq!(for_a["events"].as_array().unwrap().len(), 1);
        assert_eq!(for_a["events"][0]["client"], "b");
        let for_b: serde_json::Value =
            serde_json::from_str(&batch.frame_for(&ClientId::new("b")).unwrap()).unwrap();
        assert_eq!(for_b["events"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_member_every_event_is_about_gets_nothing_and_a_full_batch_says_so() {
        let room = RoomName::parse("r").unwrap();
        let mut b = PresenceBatch::default();
        let (f, about) = event("presence_join", "a");
        b.push(f, about);
        assert!(b.take(&room).frame_for(&ClientId::new("a")).is_none());
        let mut full = false;
        for i in 0..MAX_BATCH_BYTES {
            let (f, about) = event("presence_join", &format!("c{i}"));
            if b.push(f, about) {
                full = true;
                break;
            }
        }
        assert!(full, "a batch says when it passes MAX_BATCH_BYTES");
        assert!(b.take(&room).frame_for(&ClientId::new("x")).unwrap().len() > MAX_BATCH_BYTES);
    }
}
