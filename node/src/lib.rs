//! The Gatehouse node: a WebSocket gateway built on actix-web (edges; upgraded sockets are its own, see [`websocket`]) and ractor
//! (rooms, relay, hub, rate-limit policy). See ARCHITECTURE.md for the map; in short:
//!
//! - [`http`] — public listener (`/ws`, backend API, health, metrics) and admin listener.
//! - [`connection`] — one task per client: reads, writes, heartbeats, token buckets.
//! - [`websocket`] — frames on the upgraded socket: decoding, coalesced writes.
//! - [`room`] / [`room_host`] / [`directory`] — room actors (owners of seq, history, presence),
//!   their spawner, and the lookup through process groups.
//! - [`relay`] — per-node fan-out from room owners to local connections.
//! - [`hub`] — index of local connections (kick, send-to-user, throttle, listing).
//! - [`rate_limit`] — policy actor and the token bucket.
//! - [`webhook`] — batched, signed client events to the backend.
//! - [`cluster`] — membership on ractor_cluster: dialing, heartbeats, failure detection.
//! - [`server`] — wiring, start, and shutdown.

pub mod admission;
pub mod auth;
pub mod clients;
pub mod cluster;
pub mod connection;
pub mod context;
pub mod delivery;
pub mod directory;
pub mod drain;
pub mod events;
pub mod fds;
pub mod groups;
pub mod http;
pub mod hub;
pub mod ids;
pub mod memory;
pub mod metrics;
pub mod outbound;
pub mod peer_queue;
pub mod pump;
pub mod rate_limit;
pub mod rebalance;
pub mod relay;
pub mod room;
pub mod room_host;
pub mod server;
pub mod session_token;
pub mod stats;
pub mod telemetry;
pub mod webhook;
pub mod websocket;
pub mod wire;

pub use server::{run, StartError};
