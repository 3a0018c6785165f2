//! A connection's per-room state, kept in a small vector: a connection is in a handful of rooms
//! (`limits.max_rooms`, 100 by default), where a linear scan is as fast as hashing. The first
//! room is held inline (most connections are in one room): no allocation, and the pump, which
//! looks up a room for every delivery, finds it in the connection's own memory.

use protocol::room::RoomName;
use smallvec::SmallVec;

/// Room → `V`, in insertion order.
#[derive(Debug)]
pub struct RoomMap<V>(SmallVec<[(RoomName, V); 1]>);

impl<V> Default for RoomMap<V> {
    fn default() -> Self {
        Self(SmallVec::new())
    }
}

impl<V> RoomMap<V> {
    /// The value for `room`.
    pub fn get(&self, room: &RoomName) -> Option<&V> {
        self.0.iter().find(|(r, _)| r == room).map(|(_, v)| v)
    }

    /// The value for `room`, mutably.
    pub fn get_mut(&mut self, room: &RoomName) -> Option<&mut V> {
        self.0.iter_mut().find(|(r, _)| r == room).map(|(_, v)| v)
    }

    /// The value for `room`, mutably. A key that holds the same name in another allocation is
    /// replaced by `room`, so the next lookup with it (the pump looks up every delivery's room,
    /// which shares one name) compares pointers instead of bytes.
    pub fn get_mut_sharing(&mut self, room: &RoomName) -> Option<&mut V> {
        let (key, v) = self.0.iter_mut().find(|(r, _)| r == room)?;
        if !key.same(room) {
            *key = room.clone();
        }
        Some(v)
    }

    /// Sets the value for `room`.
    pub fn insert(&mut self, room: RoomName, value: V) {
        match self.get_mut(&room) {
            Some(v) => *v = value,
            None => self.0.push((room, value)),
        }
    }

    /// Removes and returns the value for `room`.
    pub fn remove(&mut self, room: &RoomName) -> Option<V> {
        let i = self.0.iter().position(|(r, _)| r == room)?;
        let (_, v) = self.0.swap_remove(i);
        if self.0.is_empty() {
            self.0 = SmallVec::new();
        }
        Some(v)
    }

    /// Rooms held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no room is held.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Takes every entry out.
    pub fn drain(&mut self) -> smallvec::IntoIter<[(RoomName, V); 1]> {
        std::mem::take(&mut self.0).into_iter()
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.0 = SmallVec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(s: &str) -> RoomName {
        RoomName::parse(s).expect("valid room")
    }

    #[test]
    fn behaves_like_a_map() {
        let mut m = RoomMap::default();
        assert!(m.is_empty());
        m.insert(room("a"), 1);
        m.insert(room("b"), 2);
        m.insert(room("a"), 3);
        assert_eq!(m.len(), 2);
        assert_eq!(m.get(&room("a")), Some(&3));
        *m.get_mut(&room("b")).unwrap() += 10;
        let b = room("b");
        *m.get_mut_sharing(&b).unwrap() += 0;
        assert!(m.0.iter().any(|(r, _)| r.same(&b)));
        assert_eq!(m.remove(&room("b")), Some(12));
        assert_eq!(m.remove(&room("b")), None);
        assert_eq!(m.drain().collect::<Vec<_>>(), vec![(room("a"), 3)]);
        assert!(m.is_empty());
    }
}
