//! Room names: 1–128 characters from `A–Z a–z 0–9 _ . : @ -` (`docs/protocol.md` §6).

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Longest room name accepted, in bytes (all allowed characters are one byte).
pub const MAX_ROOM_NAME: usize = 128;

/// A validated room name; cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RoomName(Arc<str>);

/// Why a string is not a room name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomNameError {
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_ROOM_NAME`].
    TooLong(usize),
    /// The name holds a character outside the allowed set.
    BadChar(char),
}

impl std::fmt::Display for RoomNameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => write!(f, "room name is empty"),
            Self::TooLong(n) => write!(
                f,
                "room name is {n} characters, at most {MAX_ROOM_NAME} allowed"
            ),
            Self::BadChar(c) => write!(
                f,
                "room name holds {c:?}; allowed are A-Z a-z 0-9 _ . : @ -"
            ),
        }
    }
}

impl std::error::Error for RoomNameError {}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '@' | '-')
}

impl RoomName {
    /// Validates `name` against the room-name rules.
    pub fn parse(name: &str) -> Result<Self, RoomNameError> {
        if name.is_empty() {
            return Err(RoomNameError::Empty);
        }
        if let Some(c) = name.chars().find(|c| !allowed(*c)) {
            return Err(RoomNameError::BadChar(c));
        }
        if name.len() > MAX_ROOM_NAME {
            return Err(RoomNameError::TooLong(name.len()));
        }
        Ok(Self(Arc::from(name)))
    }

    /// Returns the name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether both hold the very same allocation (then they are equal without comparing
    /// bytes).
    pub fn same(&self, other: &RoomName) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Display for RoomName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RoomName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        RoomName::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_alphabet() {
        assert!(RoomName::parse("chat:lobby").is_ok());
        assert!(RoomName::parse("a_b.c:d@e-F9").is_ok());
        assert!(RoomName::parse(&"x".repeat(128)).is_ok());
    }

    #[test]
    fn rejects_empty_long_and_foreign_characters() {
        assert_eq!(RoomName::parse(""), Err(RoomNameError::Empty));
        assert_eq!(
            RoomName::parse(&"x".repeat(129)),
            Err(RoomNameError::TooLong(129))
        );
        assert_eq!(RoomName::parse("a b"), Err(RoomNameError::BadChar(' ')));
        assert_eq!(RoomName::parse("é"), Err(RoomNameError::BadChar('é')));
        assert_eq!(RoomName::parse("a/b"), Err(RoomNameError::BadChar('/')));
    }
}
