//! End-to-end cases, one module per surface. Each test starts its own node(s) on free ports,
//! so tests run in parallel.

mod abuse;
mod admin;
mod admin_ops;
mod auth;
mod backend_api;
mod cluster;
mod cluster_abuse;
mod cluster_big_room;
mod cluster_room_cost;
mod cluster_slow_peer;
mod cluster_stop;
mod conformance;
mod deploy;
mod drain;
mod errors;
mod handshake;
mod js_client;
mod limits;
mod local_cluster_script;
mod messaging;
mod ops;
mod partition;
mod presence_pages;
mod recovery;
mod rolling_upgrade;
mod snapshot;
mod tidy;
mod tidy_admin;
mod webhook;
