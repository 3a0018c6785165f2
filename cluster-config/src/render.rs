//! Renders the effective configuration as TOML with every secret redacted, for
//! `gatehouse check-config`.

use crate::raw::*;
use crate::Config;

const REDACTED: &str = "<redacted>";

fn secret(s: Option<&crate::Secret>) -> String {
    if s.is_some() {
        REDACTED.to_owned()
    } else {
        String::new()
    }
}

/// Returns the effective configuration as TOML, secrets shown as `<redacted>`.
pub fn effective_toml(c: &Config) -> String {
    let wh_events = c
        .webhook
        .events
        .iter()
        .map(|e| format!("{e:?}").to_ascii_lowercase())
        .collect();
    let raw = RawConfig {
        node: RawNode {
            name: c.node.name.clone(),
            listen: c.node.listen.to_string(),
            admin_listen: c.node.admin_listen.to_string(),
            cluster_listen: c.node.cluster_listen.to_string(),
            advertise: c.node.advertise.clone(),
            seeds: c.node.seeds.clone(),
            cookie: if c.node.cookie_generated {
                "<generated at start>".to_owned()
            } else {
                REDACTED.to_owned()
            },
            cookie_file: String::new(),
            shutdown_grace_s: c.node.shutdown_grace.as_secs(),
            exit_when_drained: c.node.exit_when_drained,
            workers: c.node.workers,
            conformance_echo: c.node.conformance_echo,
            drain_rate: c.node.drain_rate,
            drain_jitter_ms: c.node.drain_jitter.as_millis() as u64,
            drain_delay_ms: c.node.drain_delay.as_millis() as u64,
            rebalance_on_join: c.node.rebalance_on_join,
            proxy_protocol: c.node.proxy_protocol,
            trusted_proxies: c
                .node
                .trusted_proxies
                .iter()
                .map(ToString::to_string)
                .collect(),
            cluster_max_handshakes: c.node.cluster_max_handshakes,
            cluster_peer_budget_bytes: c.node.cluster_peer_budget_bytes,
        },
        auth: RawAuth {
            required: c.auth.required,
            algorithm: format!("{:?}", c.auth.algorithm).to_ascii_uppercase(),
            jwt_secret: secret(c.auth.jwt_secret.as_ref()),
            jwt_secret_file: String::new(),
            jwt_public_key_file: if c.auth.jwt_public_key.is_some() {
                "<loaded>".to_owned()
            } else {
                String::new()
            },
            audience: c.auth.audience.clone(),
            issuer: c.auth.issuer.clone(),
            leeway_s: c.auth.leeway.as_secs(),
            allowed_origins: c.auth.allowed_origins.clone(),
            max_connections_per_ip: c.auth.max_connections_per_ip,
            max_connections_per_user: c.auth.max_connections_per_user,
        },
        limits: RawLimits {
            max_message_bytes: c.limits.max_message_bytes,
            max_rooms: c.limits.max_rooms,
            msgs_per_sec: c.limits.msgs_per_sec,
            burst: c.limits.burst,
            bytes_per_sec: c.limits.bytes_per_sec,
            abuse_close_after_s: c.limits.abuse_close_after.as_secs(),
            outbound_queue: c.limits.outbound_queue,
            outbound_queue_bytes: c.limits.outbound_queue_bytes,
            heartbeat_ms: c.limits.heartbeat.as_millis() as u64,
            session_ttl_s: c.limits.session_ttl.as_secs(),
            max_connections: c.limits.max_connections,
            max_pending_sockets: c.limits.max_pending_sockets,
            max_pending_sockets_per_ip: c.limits.max_pending_sockets_per_ip,
            handshake_timeout_ms: c.limits.handshake_timeout.as_millis() as u64,
            room_creates_per_sec: c.limits.room_creates_per_sec,
            room_creates_burst: c.limits.room_creates_burst,
        },
        rooms: RawRooms {
            history_size: c.rooms.history_size,
            history_ttl_s: c.rooms.history_ttl.as_secs(),
            max_snapshot_bytes: c.rooms.max_snapshot_bytes,
            idle_timeout_s: c.rooms.idle_timeout.as_secs(),
            history_max_bytes: c.rooms.history_max_bytes,
            max_rooms: c.rooms.max_rooms,
            memory_budget_bytes: c.rooms.memory_budget_bytes,
        },
        api: RawApi {
            key: secret(c.api.key.as_ref()),
            key_file: String::new(),
        },
        admin: RawAdmin {
            token: secret(c.admin.token.as_ref()),
            token_file: String::new(),
        },
        webhook: RawWebhook {
            url: c.webhook.url.clone().unwrap_or_default(),
            secret: secret(c.webhook.secret.as_ref()),
            secret_file: String::new(),
            events: wh_events,
            publish_rooms: c.webhook.publish_rooms.clone(),
            batch_max: c.webhook.batch_max,
            flush_ms: c.webhook.flush_interval.as_millis() as u64,
            buffer: c.webhook.buffer,
            buffer_bytes: c.webhook.buffer_bytes,
            max_attempts: c.webhook.max_attempts,
            timeout_ms: c.webhook.timeout.as_millis() as u64,
        },
        log: RawLog {
            level: c.log.level.clone(),
            format: format!("{:?}", c.log.format).to_ascii_lowercase(),
        },
    };
    toml::to_string_pretty(&raw).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
}
