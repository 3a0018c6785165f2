//! Wire types of Gatehouse's outside surfaces, shared by the node, the admin console and the tests.
//!
//! This crate owns the *shape* of what crosses the wire: client protocol v1 frames
//! ([`client`] for what a client sends, [`server`] for what the node sends back), the error
//! codes and close codes ([`codes`]), room-name rules ([`room`]), and the admin API's requests,
//! answers, events and limits ([`admin`]). It depends on serde and serde_json only: no tokio,
//! actix or ractor, so the admin console and the tests can link it without the server.

pub mod admin;
pub mod client;
pub mod codes;
pub mod room;
pub mod server;

/// The client protocol version announced in `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;
