//! Typed, validated Gatehouse node configuration.
//!
//! Four layers, later ones win: embedded defaults ([`raw`]), a TOML file, the environment
//! ([`env`](mod@env), the contract's `GATEHOUSE_*` names, each secret also as `…_FILE`), and command-line
//! flags ([`Overrides`]). One step ([`validate`]) turns the raw layers into a [`Config`] and
//! names the field (and where it came from) in every error.
//!
//! This crate reads only the files it is pointed at (the config file and `*_FILE` secrets) and
//! the environment through the [`Env`] trait it is given; it binds no sockets and starts nothing.

pub mod env;
pub mod raw;
pub mod render;
pub mod secret;
pub mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use env::{Env, MapEnv, SystemEnv, ENV_VARS};
pub use secret::Secret;

/// A configuration error, user-facing: it names the file or variable, the field and the problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file (or a `*_FILE` secret) could not be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// File that failed.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML for this schema (unknown field, wrong type).
    #[error("invalid config file `{path}`: {message}")]
    Parse {
        /// File that failed.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A field has a value that does not make sense.
    #[error("{origin}: `{field}` is invalid: {reason}")]
    Invalid {
        /// Where the configuration came from (file path, or "defaults / environment / flags").
        origin: String,
        /// Dotted field name, e.g. `limits.burst`.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Values given on the command line; `None` leaves the lower layers' value.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--name`
    pub name: Option<String>,
    /// `--listen`
    pub listen: Option<String>,
    /// `--admin-listen`
    pub admin_listen: Option<String>,
    /// `--cluster-listen`
    pub cluster_listen: Option<String>,
    /// `--advertise`
    pub advertise: Option<String>,
    /// `--seeds` (comma-separated)
    pub seeds: Option<String>,
    /// `--exit-when-drained`
    pub exit_when_drained: bool,
    /// `--log-format`
    pub log_format: Option<String>,
}

/// Signing algorithm for client JWTs; pinned, never read from the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with a shared secret.
    Hs256,
    /// RSA-SHA256 with a public key (PEM).
    Rs256,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Client events the webhook can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookEvent {
    /// A client connected.
    Connect,
    /// A client disconnected.
    Disconnect,
    /// A client joined a room.
    Join,
    /// A client left a room.
    Leave,
    /// A client published (only in rooms matching `webhook.publish_rooms`).
    Publish,
}

/// Node identity and listeners.
#[derive(Debug, Clone)]
pub struct NodeSection {
    /// Logical node name (`node-a`).
    pub name: String,
    /// Public listener: WebSocket, backend API, health and metrics.
    pub listen: SocketAddr,
    /// Admin API listener.
    pub admin_listen: SocketAddr,
    /// Cluster listener.
    pub cluster_listen: SocketAddr,
    /// Host other nodes use to reach this one.
    pub advertise: String,
    /// Seed peers `host:port`.
    pub seeds: Vec<String>,
    /// Cluster cookie; also the key the session tokens are derived from.
    pub cookie: Secret,
    /// True when no cookie was configured and a random one was generated.
    pub cookie_generated: bool,
    /// How long SIGTERM waits for a drain before exiting anyway.
    pub shutdown_grace: Duration,
    /// Exit when a drain started through the admin API completes.
    pub exit_when_drained: bool,
    /// HTTP worker threads (0 = one per core).
    pub workers: usize,
    /// Serve `GET /conformance/echo`, a WebSocket echo on the same stack and limits as `/ws`,
    /// for the Autobahn conformance suite. Off in production.
    pub conformance_echo: bool,
    /// Clients told to reconnect elsewhere per second during a drain.
    pub drain_rate: u32,
    /// Upper end of the `reconnect` hint's `after_ms` window.
    pub drain_jitter: Duration,
    /// How long a drain keeps the node unready (`/readyz` 503) but still serving before rooms
    /// and clients move, so a load balancer that health-checks `/readyz` stops sending new
    /// clients here first.
    pub drain_delay: Duration,
    /// When a node joins, move the rooms it now owns (by rendezvous hashing) to it.
    pub rebalance_on_join: bool,
    /// Read a PROXY protocol v1/v2 header on public-listener connections from
    /// `trusted_proxies` (required there; refused from anyone else).
    pub proxy_protocol: bool,
    /// Networks whose connections carry a PROXY header naming the real client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Most incoming cluster links authenticating at once; over it a new one is closed at once
    /// (a cluster of N nodes has at most a few per peer at a time).
    pub cluster_max_handshakes: u32,
    /// Bytes that may wait for one peer (enqueued for it and not yet written to its link);
    /// over it the link is cut, as after a link drop.
    pub cluster_peer_budget_bytes: usize,
}

/// Client authentication and admission.
#[derive(Debug, Clone)]
pub struct AuthSection {
    /// Reject clients without a valid token.
    pub required: bool,
    /// Pinned JWT algorithm.
    pub algorithm: JwtAlgorithm,
    /// HS256 secret.
    pub jwt_secret: Option<Secret>,
    /// RS256 public key, PEM text.
    pub jwt_public_key: Option<String>,
    /// Accepted `aud` values (empty: not checked).
    pub audience: Vec<String>,
    /// Accepted `iss` values (empty: not checked).
    pub issuer: Vec<String>,
    /// Clock skew allowed on `exp` / `nbf`.
    pub leeway: Duration,
    /// Browser origins allowed to open a WebSocket (empty: any).
    pub allowed_origins: Vec<String>,
    /// Concurrent connections per client IP (0: unlimited).
    pub max_connections_per_ip: u32,
    /// Concurrent connections per user (0: unlimited).
    pub max_connections_per_user: u32,
}

/// Per-connection limits.
#[derive(Debug, Clone)]
pub struct LimitsSection {
    /// Largest inbound message; over it the connection closes with 1009.
    pub max_message_bytes: usize,
    /// Most rooms per connection.
    pub max_rooms: usize,
    /// Inbound messages per second.
    pub msgs_per_sec: u32,
    /// Inbound message burst.
    pub burst: u32,
    /// Inbound bytes per second.
    pub bytes_per_sec: u64,
    /// A client still limited after this long is closed with 1008.
    pub abuse_close_after: Duration,
    /// Outbound queue length per connection, frames; overflow closes with 4008.
    pub outbound_queue: usize,
    /// Outbound queue size per connection, bytes; overflow closes with 4008.
    pub outbound_queue_bytes: usize,
    /// Server ping interval.
    pub heartbeat: Duration,
    /// How long a `session` token from `welcome` can resume its client id.
    pub session_ttl: Duration,
    /// Connections this node accepts in all (0: as many as its file descriptors allow).
    pub max_connections: u32,
    /// Sockets still sending their head (or served as plain HTTP) per node; at the cap the
    /// oldest unfinished head is dropped.
    pub max_pending_sockets: u32,
    /// Such sockets per client IP; over it a new one is closed at once.
    pub max_pending_sockets_per_ip: u32,
    /// How long a new socket may take to send its PROXY header and request head.
    pub handshake_timeout: Duration,
    /// Rooms one connection may create per second (joins of rooms that do not exist yet).
    pub room_creates_per_sec: u32,
    /// Burst of room creations per connection.
    pub room_creates_burst: u32,
}

/// Room defaults.
#[derive(Debug, Clone)]
pub struct RoomsSection {
    /// History ring buffer length per room.
    pub history_size: usize,
    /// Messages older than this leave the history (zero: kept until pushed out).
    pub history_ttl: Duration,
    /// Largest room snapshot the backend may set, bytes (uncompressed).
    pub max_snapshot_bytes: usize,
    /// An empty room with nothing left to keep stops after this long.
    pub idle_timeout: Duration,
    /// Bytes of history per room; beyond it the oldest messages go.
    pub history_max_bytes: usize,
    /// Live rooms per node; beyond it no new room is created here.
    pub max_rooms: usize,
    /// Bytes of history, snapshots and replicas per node; beyond it the oldest history goes.
    pub memory_budget_bytes: usize,
}

/// Backend API.
#[derive(Debug, Clone)]
pub struct ApiSection {
    /// Bearer key; without one `/api/v1` answers loopback clients only.
    pub key: Option<Secret>,
}

/// Admin API.
#[derive(Debug, Clone)]
pub struct AdminSection {
    /// Bearer token; without one the admin API answers loopback clients only.
    pub token: Option<Secret>,
}

/// Webhook to the backend.
#[derive(Debug, Clone)]
pub struct WebhookSection {
    /// Target URL; none disables the webhook.
    pub url: Option<String>,
    /// HMAC-SHA256 key for `X-Gatehouse-Signature`.
    pub secret: Option<Secret>,
    /// Events sent.
    pub events: Vec<WebhookEvent>,
    /// Rooms (globs) whose publishes are sent as `publish` events.
    pub publish_rooms: Vec<String>,
    /// Most events per request.
    pub batch_max: usize,
    /// How long an event may wait for a batch to fill.
    pub flush_interval: Duration,
    /// Events buffered while the backend is slow or down; beyond it events are dropped and counted.
    pub buffer: usize,
    /// Bytes of buffered events (their `data` included); beyond it events are dropped and
    /// counted.
    pub buffer_bytes: usize,
    /// Attempts per batch before it is dropped and counted.
    pub max_attempts: u32,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// Logging.
#[derive(Debug, Clone)]
pub struct LogSection {
    /// `tracing` filter directive, e.g. `info` or `node=debug,info`.
    pub level: String,
    /// Output format.
    pub format: LogFormat,
}

/// The validated configuration handed to the node.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the configuration came from, for messages.
    pub origin: String,
    /// `[node]`
    pub node: NodeSection,
    /// `[auth]`
    pub auth: AuthSection,
    /// `[limits]`
    pub limits: LimitsSection,
    /// `[rooms]`
    pub rooms: RoomsSection,
    /// `[api]`
    pub api: ApiSection,
    /// `[admin]`
    pub admin: AdminSection,
    /// `[webhook]`
    pub webhook: WebhookSection,
    /// `[log]`
    pub log: LogSection,
}

/// Loads the configuration: defaults, then `path` (if any), then `env`, then `overrides`.
pub fn load(
    path: Option<&Path>,
    env: &dyn Env,
    overrides: &Overrides,
) -> Result<Config, ConfigError> {
    let (raw, origin) = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_owned(),
                source,
            })?;
            (raw::parse(&text, p)?, format!("config `{}`", p.display()))
        }
        None => (raw::RawConfig::default(), "embedded defaults".to_owned()),
    };
    let raw = env::apply(raw, env, overrides)?;
    validate::validate(raw, origin)
}

/// Parses and validates TOML text (no environment, no flags); used by tests and examples.
pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
    let raw = raw::parse(text, Path::new("<inline>"))?;
    validate::validate(raw, "config `<inline>`".to_owned())
}
