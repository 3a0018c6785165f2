//! The Gatehouse node: a WebSocket gateway built on actix-web (HTTP edges; upgraded sockets are
//! its own, see `websocket`) and ractor (rooms, relay, hub, rate-limit policy, membership).
//!
//! The modules form layers (ARCHITECTURE.md, "Layers"): a module imports only modules of its
//! own layer and of lower ones, never in a cycle, and the three services of layer 4 never
//! import each other. `tests/src/cases/tidy.rs` checks every `crate::` path against this list.
//!
//! 0. core — values, cells and leaf services: `ids`, `groups`, `fds`, `memory`, `metrics`,
//!    `telemetry`, `webhook`, `events`, `lifecycle`, `peer_queue`, `admission`, `auth`,
//!    `session_token`, `delivery`, `websocket`.
//! 1. `wire` — everything that crosses between nodes, and the cluster protocol version.
//! 2. `placement` — who owns a room, the membership cells the cluster writes and rooms read.
//! 3. handles — `room_access` (talking to a room), `outbound` (a connection's queue, its
//!    worker's pump, the state the pump writes).
//! 4. services — rooms (`directory`, `relay`, `room`, `room_host`), the connection registry
//!    (`hub`, `rate_limit`) and membership (`cluster`).
//! 5. operations — `context`, `connection`, `clients`, `drain`, `stats`, `rebalance`,
//!    `peer_requests`.
//! 6. `http` — the public and admin listeners.
//! 7. `server` — wiring, start and shutdown.
//!
//! Public: only what the binary needs ([`run`], [`telemetry`], [`memory`]).

// 0. core
mod admission;
mod auth;
mod delivery;
mod events;
mod fds;
mod groups;
mod ids;
mod lifecycle;
pub mod memory;
mod metrics;
mod peer_queue;
mod session_token;
pub mod telemetry;
mod webhook;
mod websocket;

// 1. wire
mod wire;

// 2. placement
mod placement;

// 3. handles
mod outbound;
mod room_access;

// 4. services: rooms | registry | membership
mod directory;
mod relay;
mod room;
mod room_host;

mod hub;
mod rate_limit;

mod cluster;

// 5. operations
mod clients;
mod connection;
mod context;
mod drain;
mod peer_requests;
mod rebalance;
mod stats;

// 6. surfaces
mod http;

// 7. wiring
mod server;

pub use server::{run, StartError};
