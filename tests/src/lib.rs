//! Test harness for end-to-end tests: starts real `gatehouse` processes on free loopback ports,
//! talks to them with a real WebSocket client (tokio-tungstenite) and a real HTTP client
//! (reqwest), and waits on conditions with deadlines, never on fixed sleeps.
//!
//! The cases live in `cases` (compiled only for tests), one module per surface.

#![allow(clippy::unwrap_used)]

pub mod client;
pub mod cluster;
pub mod events;
pub mod http;
pub mod netlab;
pub mod node;
pub mod procfs;
pub mod tokens;
pub mod wait;

#[cfg(test)]
mod cases;

pub use client::Client;
pub use node::{Node, NodeBuilder};
