//! How anything talks to a room: the handle on one room instance ([`RoomRef`], on this node
//! or through another node's gateway), the typed calls that send a room its messages
//! ([`calls`]), the gateway through which other nodes reach this node's rooms ([`gateway`]),
//! and this node's page of rooms for the admin listing ([`listing`]).
//!
//! Below the room actor and everything that uses rooms: it knows the room's messages
//! (`wire::room`) and the room actors' names, never the actor's code, so the relay, the
//! directory and connections reach rooms without importing `room`.

pub mod address;
pub mod calls;
pub mod gateway;
pub mod listing;

pub use address::{RoomCallError, RoomInbox, RoomRef};
