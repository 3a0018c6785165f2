//! The literal mirror of the TOML file, with the embedded defaults.
//!
//! Every field has a default, so an empty file (or no file) is a working development node.
//! Unknown fields are errors, so a typo is reported instead of ignored. Values are checked
//! later, in [`crate::validate`]; this module only holds them.

use crate::ConfigError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// `[node]`
    pub node: RawNode,
    /// `[auth]`
    pub auth: RawAuth,
    /// `[limits]`
    pub limits: RawLimits,
    /// `[rooms]`
    pub rooms: RawRooms,
    /// `[api]`
    pub api: RawApi,
    /// `[admin]`
    pub admin: RawAdmin,
    /// `[webhook]`
    pub webhook: RawWebhook,
    /// `[log]`
    pub log: RawLog,
}

/// `[node]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawNode {
    pub name: String,
    pub listen: String,
    pub admin_listen: String,
    pub cluster_listen: String,
    pub advertise: String,
    pub seeds: Vec<String>,
    pub cookie: String,
    pub cookie_file: String,
    pub shutdown_grace_s: u64,
    pub exit_when_drained: bool,
    pub workers: usize,
    pub conformance_echo: bool,
    pub drain_rate: u32,
    pub drain_jitter_ms: u64,
    pub drain_delay_ms: u64,
    pub rebalance_on_join: bool,
    pub proxy_protocol: bool,
    pub trusted_proxies: Vec<String>,
    pub cluster_max_handshakes: u32,
    pub cluster_peer_budget_bytes: usize,
}

impl Default for RawNode {
    fn default() -> Self {
        Self {
            name: "node-a".into(),
            listen: "0.0.0.0:8080".into(),
            admin_listen: "127.0.0.1:9100".into(),
            cluster_listen: "127.0.0.1:7100".into(),
            advertise: String::new(),
            seeds: Vec::new(),
            cookie: String::new(),
            cookie_file: String::new(),
            shutdown_grace_s: 30,
            exit_when_drained: false,
            workers: 0,
            conformance_echo: false,
            drain_rate: 500,
            drain_jitter_ms: 5000,
            drain_delay_ms: 0,
            rebalance_on_join: true,
            proxy_protocol: false,
            trusted_proxies: Vec::new(),
            cluster_max_handshakes: 256,
            cluster_peer_budget_bytes: 64 * 1024 * 1024,
        }
    }
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAuth {
    pub required: bool,
    pub algorithm: String,
    pub jwt_secret: String,
    pub jwt_secret_file: String,
    pub jwt_public_key_file: String,
    pub audience: Vec<String>,
    pub issuer: Vec<String>,
    pub leeway_s: u64,
    pub allowed_origins: Vec<String>,
    pub max_connections_per_ip: u32,
    pub max_connections_per_user: u32,
}

impl Default for RawAuth {
    fn default() -> Self {
        Self {
            required: false,
            algorithm: "HS256".into(),
            jwt_secret: String::new(),
            jwt_secret_file: String::new(),
            jwt_public_key_file: String::new(),
            audience: Vec::new(),
            issuer: Vec::new(),
            leeway_s: 5,
            allowed_origins: Vec::new(),
            max_connections_per_ip: 10_000,
            max_connections_per_user: 100,
        }
    }
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLimits {
    pub max_message_bytes: usize,
    pub max_rooms: usize,
    pub msgs_per_sec: u32,
    pub burst: u32,
    pub bytes_per_sec: u64,
    pub abuse_close_after_s: u64,
    pub outbound_queue: usize,
    pub outbound_queue_bytes: usize,
    pub heartbeat_ms: u64,
    pub session_ttl_s: u64,
    pub max_connections: u32,
    pub max_pending_sockets: u32,
    pub max_pending_sockets_per_ip: u32,
    pub handshake_timeout_ms: u64,
    pub room_creates_per_sec: u32,
    pub room_creates_burst: u32,
}

impl Default for RawLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: 65_536,
            max_rooms: 128,
            msgs_per_sec: 100,
            burst: 200,
            bytes_per_sec: 1_048_576,
            abuse_close_after_s: 10,
            outbound_queue: 1024,
            outbound_queue_bytes: 1_048_576,
            heartbeat_ms: 15_000,
            session_ttl_s: 60,
            max_connections: 0,
            max_pending_sockets: 1024,
            max_pending_sockets_per_ip: 64,
            handshake_timeout_ms: 5_000,
            room_creates_per_sec: 2,
            room_creates_burst: 20,
        }
    }
}

/// `[rooms]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRooms {
    pub history_size: usize,
    pub history_ttl_s: u64,
    pub max_snapshot_bytes: usize,
    pub idle_timeout_s: u64,
    pub history_max_bytes: usize,
    pub max_rooms: usize,
    pub memory_budget_bytes: usize,
}

impl Default for RawRooms {
    fn default() -> Self {
        Self {
            history_size: 1000,
            history_ttl_s: 3600,
            max_snapshot_bytes: 1_048_576,
            idle_timeout_s: 5,
            history_max_bytes: 1_048_576,
            max_rooms: 10_000,
            memory_budget_bytes: 256 * 1024 * 1024,
        }
    }
}

/// `[api]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawApi {
    pub key: String,
    pub key_file: String,
}

/// `[admin]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAdmin {
    pub token: String,
    pub token_file: String,
}

/// `[webhook]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawWebhook {
    pub url: String,
    pub secret: String,
    pub secret_file: String,
    pub events: Vec<String>,
    pub publish_rooms: Vec<String>,
    pub batch_max: usize,
    pub flush_ms: u64,
    pub buffer: usize,
    pub buffer_bytes: usize,
    pub max_attempts: u32,
    pub timeout_ms: u64,
}

impl Default for RawWebhook {
    fn default() -> Self {
        Self {
            url: String::new(),
            secret: String::new(),
            secret_file: String::new(),
            events: vec![
                "connect".into(),
                "disconnect".into(),
                "join".into(),
                "leave".into(),
                "publish".into(),
            ],
            publish_rooms: Vec::new(),
            batch_max: 100,
            flush_ms: 200,
            buffer: 10_000,
            buffer_bytes: 16 * 1024 * 1024,
            max_attempts: 5,
            timeout_ms: 5_000,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLog {
    pub level: String,
    pub format: String,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

/// Parses TOML text; `path` only names the file in errors.
pub fn parse(text: &str, path: &Path) -> Result<RawConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string().trim_end().replace('\n', " "),
    })
}
