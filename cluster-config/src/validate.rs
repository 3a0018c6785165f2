//! Raw layers → validated [`Config`]: small checks, each naming its field.

use crate::env::read_secret_file;
use crate::raw::RawConfig;
use crate::*;
use std::net::SocketAddr;

/// Largest `rooms.max_snapshot_bytes`: a join's reply (the snapshot plus up to 4 MiB of replay,
/// each up to twice as large once escaped in JSON) stays under ractor_cluster's 16 MiB frame.
pub const MAX_SNAPSHOT_BYTES: usize = 2 * 1024 * 1024;

struct Check {
    origin: String,
}

impl Check {
    fn err(&self, field: &'static str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.clone(),
            field,
            reason: reason.into(),
        }
    }

    fn addr(&self, field: &'static str, v: &str) -> Result<SocketAddr, ConfigError> {
        v.parse().map_err(|_| {
            self.err(
                field,
                format!("`{v}` is not an `ip:port` socket address (e.g. `127.0.0.1:8080`)"),
            )
        })
    }

    /// A burst of at least its rate.
    fn burst(
        &self,
        field: &'static str,
        burst: u32,
        rate_field: &str,
        rate: u32,
    ) -> Result<(), ConfigError> {
        if burst < rate {
            return Err(self.err(
                field,
                format!(
                    "{burst} is below `{rate_field}` ({rate}); the burst must be at least the rate"
                ),
            ));
        }
        Ok(())
    }

    fn positive(&self, field: &'static str, v: u64) -> Result<(), ConfigError> {
        if v == 0 {
            return Err(self.err(field, "must be greater than 0"));
        }
        Ok(())
    }

    /// A secret from its inline value or its `_file`; the file wins.
    fn secret(&self, value: &str, file: &str) -> Result<Option<Secret>, ConfigError> {
        let v = if !file.is_empty() {
            read_secret_file(file)?
        } else {
            value.to_owned()
        };
        Ok((!v.is_empty()).then(|| Secret::new(v)))
    }
}

fn random_cookie() -> String {
    // 32 bytes from the OS, hex-encoded; no extra dependency for one call.
    let mut bytes = [0u8; 32];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    if !ok {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ u128::from(std::process::id());
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// Validates the raw layers into a [`Config`].
pub fn validate(raw: RawConfig, origin: String) -> Result<Config, ConfigError> {
    let c = Check { origin };
    let RawConfig {
        node,
        auth,
        limits,
        rooms,
        api,
        admin,
        webhook,
        log,
    } = raw;

    // [node]
    if !is_valid_node_name(&node.name) {
        return Err(c.err(
            "node.name",
            format!(
                "`{}` must be 1-63 characters from A-Z a-z 0-9 - _ .",
                node.name
            ),
        ));
    }
    let listen = c.addr("node.listen", &node.listen)?;
    let admin_listen = c.addr("node.admin_listen", &node.admin_listen)?;
    let cluster_listen = c.addr("node.cluster_listen", &node.cluster_listen)?;
    if listen.port() != 0 && listen == admin_listen {
        return Err(c.err(
            "node.admin_listen",
            "must differ from `node.listen` (the admin API has its own listener)",
        ));
    }
    for s in &node.seeds {
        let ok = s
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
        if !ok {
            return Err(c.err("node.seeds", format!("`{s}` is not `host:port`")));
        }
    }
    c.positive("node.drain_rate", u64::from(node.drain_rate))?;
    if node.drain_delay_ms >= node.shutdown_grace_s.saturating_mul(1000) && node.drain_delay_ms > 0
    {
        return Err(c.err(
            "node.drain_delay_ms",
            format!(
                "{} ms is not below `node.shutdown_grace_s` ({} s): a SIGTERM drain would end before anything moved",
                node.drain_delay_ms, node.shutdown_grace_s
            ),
        ));
    }
    let mut trusted_proxies = Vec::with_capacity(node.trusted_proxies.len());
    for t in &node.trusted_proxies {
        let net = t
            .parse::<ipnet::IpNet>()
            .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                c.err(
                    "node.trusted_proxies",
                    format!("`{t}` is not an IP address or network (e.g. `10.0.0.0/8`)"),
                )
            })?;
        trusted_proxies.push(net);
    }
    if node.proxy_protocol && trusted_proxies.is_empty() {
        return Err(c.err(
            "node.trusted_proxies",
            "`node.proxy_protocol = true` needs the proxies' addresses (e.g. `[\"10.0.0.0/8\"]`): a PROXY header is accepted only from them",
        ));
    }
    if node.cluster_peer_budget_bytes < 1024 * 1024 {
        return Err(c.err(
            "node.cluster_peer_budget_bytes",
            "must be at least 1048576 (one migration chunk must fit)",
        ));
    }
    if !(1..=65_536).contains(&node.cluster_max_handshakes) {
        return Err(c.err("node.cluster_max_handshakes", "must be between 1 and 65536"));
    }
    let cookie = c.secret(&node.cookie, &node.cookie_file)?;
    let cookie_generated = cookie.is_none();
    let cookie = cookie.unwrap_or_else(|| Secret::new(random_cookie()));
    let advertise = if node.advertise.is_empty() {
        cluster_listen.ip().to_string()
    } else {
        node.advertise.clone()
    };

    // [admin] / [api]
    let admin_token = c.secret(&admin.token, &admin.token_file)?;
    if admin_token.is_none() && !admin_listen.ip().is_loopback() {
        return Err(c.err(
            "node.admin_listen",
            format!(
                "`{admin_listen}` is not a loopback address and no admin token is set; set `admin.token` (or GATEHOUSE_ADMIN_TOKEN) or bind to 127.0.0.1"
            ),
        ));
    }
    let api_key = c.secret(&api.key, &api.key_file)?;

    // [auth]
    let algorithm = match auth.algorithm.to_ascii_uppercase().as_str() {
        "HS256" => JwtAlgorithm::Hs256,
        "RS256" => JwtAlgorithm::Rs256,
        other => {
            return Err(c.err(
                "auth.algorithm",
                format!("`{other}` is not supported; use `HS256` or `RS256`"),
            ))
        }
    };
    let jwt_secret = c.secret(&auth.jwt_secret, &auth.jwt_secret_file)?;
    let jwt_public_key = if auth.jwt_public_key_file.is_empty() {
        None
    } else {
        Some(read_secret_file(&auth.jwt_public_key_file)?)
    };
    match algorithm {
        JwtAlgorithm::Hs256 => {
            if let Some(s) = &jwt_secret {
                if s.expose().len() < 32 {
                    return Err(c.err(
                        "auth.jwt_secret",
                        "an HS256 secret must be at least 32 bytes",
                    ));
                }
            } else if auth.required {
                return Err(c.err(
                    "auth.jwt_secret",
                    "`auth.required = true` with HS256 needs a secret (GATEHOUSE_JWT_SECRET or `auth.jwt_secret_file`)",
                ));
            }
        }
        JwtAlgorithm::Rs256 => match &jwt_public_key {
            Some(pem) if pem.contains("-----BEGIN") => {}
            Some(_) => {
                return Err(c.err(
                    "auth.jwt_public_key_file",
                    "the file does not hold a PEM public key",
                ))
            }
            None => {
                return Err(c.err(
                    "auth.jwt_public_key_file",
                    "RS256 needs a PEM public key file",
                ))
            }
        },
    }
    if auth.leeway_s > 5 {
        return Err(c.err("auth.leeway_s", "must be at most 5 seconds"));
    }
    for o in &auth.allowed_origins {
        if o != "*" && !(o.starts_with("http://") || o.starts_with("https://")) {
            return Err(c.err(
                "auth.allowed_origins",
                format!("`{o}` must be an origin like `https://app.example.com` (or `*`)"),
            ));
        }
    }

    // [limits]
    if limits.max_message_bytes < 128 || limits.max_message_bytes > 16 * 1024 * 1024 {
        return Err(c.err(
            "limits.max_message_bytes",
            "must be between 128 and 16777216",
        ));
    }
    c.positive("limits.max_rooms", limits.max_rooms as u64)?;
    c.positive("limits.msgs_per_sec", u64::from(limits.msgs_per_sec))?;
    c.burst(
        "limits.burst",
        limits.burst,
        "limits.msgs_per_sec",
        limits.msgs_per_sec,
    )?;
    c.positive("limits.bytes_per_sec", limits.bytes_per_sec)?;
    c.positive("limits.abuse_close_after_s", limits.abuse_close_after_s)?;
    c.positive("limits.outbound_queue", limits.outbound_queue as u64)?;
    if limits.outbound_queue_bytes < limits.max_message_bytes {
        return Err(c.err(
            "limits.outbound_queue_bytes",
            "must be at least `limits.max_message_bytes`",
        ));
    }
    c.positive(
        "limits.max_pending_sockets",
        u64::from(limits.max_pending_sockets),
    )?;
    c.positive(
        "limits.max_pending_sockets_per_ip",
        u64::from(limits.max_pending_sockets_per_ip),
    )?;
    if !(100..=60_000).contains(&limits.handshake_timeout_ms) {
        return Err(c.err(
            "limits.handshake_timeout_ms",
            "must be between 100 and 60000",
        ));
    }
    c.positive(
        "limits.room_creates_per_sec",
        u64::from(limits.room_creates_per_sec),
    )?;
    c.burst(
        "limits.room_creates_burst",
        limits.room_creates_burst,
        "limits.room_creates_per_sec",
        limits.room_creates_per_sec,
    )?;
    if limits.heartbeat_ms < 100 {
        return Err(c.err("limits.heartbeat_ms", "must be at least 100"));
    }

    // [rooms]
    c.positive("rooms.history_size", rooms.history_size as u64)?;
    if rooms.history_size > 1_000_000 {
        return Err(c.err("rooms.history_size", "must be at most 1000000"));
    }
    c.positive("rooms.max_snapshot_bytes", rooms.max_snapshot_bytes as u64)?;
    if rooms.max_snapshot_bytes > MAX_SNAPSHOT_BYTES {
        // A join's reply carries the snapshot and up to 4 MiB of replay, and may cross nodes in
        // one message: escaped in JSON it must stay under the cluster's 16 MiB frame limit.
        return Err(c.err(
            "rooms.max_snapshot_bytes",
            format!("must be at most {MAX_SNAPSHOT_BYTES} (a join's reply crosses nodes in one message)"),
        ));
    }
    c.positive("rooms.idle_timeout_s", rooms.idle_timeout_s)?;
    c.positive("rooms.history_max_bytes", rooms.history_max_bytes as u64)?;
    c.positive("rooms.max_rooms", rooms.max_rooms as u64)?;
    if rooms.memory_budget_bytes < rooms.history_max_bytes {
        return Err(c.err(
            "rooms.memory_budget_bytes",
            format!(
                "{} is below `rooms.history_max_bytes` ({}): one room's history must fit",
                rooms.memory_budget_bytes, rooms.history_max_bytes
            ),
        ));
    }

    // [webhook]
    let url = (!webhook.url.is_empty()).then(|| webhook.url.clone());
    if let Some(u) = &url {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(c.err(
                "webhook.url",
                format!("`{u}` must start with http:// or https://"),
            ));
        }
    }
    let webhook_secret = c.secret(&webhook.secret, &webhook.secret_file)?;
    if url.is_some() && webhook_secret.is_none() {
        return Err(c.err(
            "webhook.secret",
            "a webhook needs a signing secret (GATEHOUSE_WEBHOOK_SECRET or `webhook.secret_file`)",
        ));
    }
    let mut events = Vec::new();
    for e in &webhook.events {
        events.push(match e.as_str() {
            "connect" => WebhookEvent::Connect,
            "disconnect" => WebhookEvent::Disconnect,
            "join" => WebhookEvent::Join,
            "leave" => WebhookEvent::Leave,
            "publish" => WebhookEvent::Publish,
            other => {
                return Err(c.err(
                    "webhook.events",
                    format!("`{other}` is not one of connect, disconnect, join, leave, publish"),
                ))
            }
        });
    }
    for g in &webhook.publish_rooms {
        globset::Glob::new(g).map_err(|e| c.err("webhook.publish_rooms", format!("`{g}`: {e}")))?;
    }
    c.positive("webhook.batch_max", webhook.batch_max as u64)?;
    c.positive("webhook.flush_ms", webhook.flush_ms)?;
    c.positive("webhook.buffer", webhook.buffer as u64)?;
    c.positive("webhook.buffer_bytes", webhook.buffer_bytes as u64)?;
    c.positive("webhook.max_attempts", u64::from(webhook.max_attempts))?;
    c.positive("webhook.timeout_ms", webhook.timeout_ms)?;

    // [log]
    let format = match log.format.as_str() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => return Err(c.err("log.format", format!("`{other}` is not `text` or `json`"))),
    };
    if log.level.trim().is_empty() {
        return Err(c.err("log.level", "must not be empty (e.g. `info`)"));
    }

    Ok(Config {
        origin: c.origin.clone(),
        node: NodeSection {
            name: node.name,
            listen,
            admin_listen,
            cluster_listen,
            advertise,
            seeds: node.seeds,
            cookie,
            cookie_generated,
            shutdown_grace: Duration::from_secs(node.shutdown_grace_s),
            exit_when_drained: node.exit_when_drained,
            workers: node.workers,
            conformance_echo: node.conformance_echo,
            drain_rate: node.drain_rate,
            drain_jitter: Duration::from_millis(node.drain_jitter_ms),
            drain_delay: Duration::from_millis(node.drain_delay_ms),
            rebalance_on_join: node.rebalance_on_join,
            proxy_protocol: node.proxy_protocol,
            trusted_proxies,
            cluster_max_handshakes: node.cluster_max_handshakes,
            cluster_peer_budget_bytes: node.cluster_peer_budget_bytes,
        },
        auth: AuthSection {
            required: auth.required,
            algorithm,
            jwt_secret,
            jwt_public_key,
            audience: auth.audience,
            issuer: auth.issuer,
            leeway: Duration::from_secs(auth.leeway_s),
            allowed_origins: auth.allowed_origins,
            max_connections_per_ip: auth.max_connections_per_ip,
            max_connections_per_user: auth.max_connections_per_user,
        },
        limits: LimitsSection {
            max_message_bytes: limits.max_message_bytes,
            max_rooms: limits.max_rooms,
            msgs_per_sec: limits.msgs_per_sec,
            burst: limits.burst,
            bytes_per_sec: limits.bytes_per_sec,
            abuse_close_after: Duration::from_secs(limits.abuse_close_after_s),
            outbound_queue: limits.outbound_queue,
            outbound_queue_bytes: limits.outbound_queue_bytes,
            heartbeat: Duration::from_millis(limits.heartbeat_ms),
            session_ttl: Duration::from_secs(limits.session_ttl_s),
            max_connections: limits.max_connections,
            max_pending_sockets: limits.max_pending_sockets,
            max_pending_sockets_per_ip: limits.max_pending_sockets_per_ip,
            handshake_timeout: Duration::from_millis(limits.handshake_timeout_ms),
            room_creates_per_sec: limits.room_creates_per_sec,
            room_creates_burst: limits.room_creates_burst,
        },
        rooms: RoomsSection {
            history_size: rooms.history_size,
            history_ttl: Duration::from_secs(rooms.history_ttl_s),
            max_snapshot_bytes: rooms.max_snapshot_bytes,
            idle_timeout: Duration::from_secs(rooms.idle_timeout_s),
            history_max_bytes: rooms.history_max_bytes,
            max_rooms: rooms.max_rooms,
            memory_budget_bytes: rooms.memory_budget_bytes,
        },
        api: ApiSection { key: api_key },
        admin: AdminSection { token: admin_token },
        webhook: WebhookSection {
            url,
            secret: webhook_secret,
            events,
            publish_rooms: webhook.publish_rooms,
            batch_max: webhook.batch_max,
            flush_interval: Duration::from_millis(webhook.flush_ms),
            buffer: webhook.buffer,
            buffer_bytes: webhook.buffer_bytes,
            max_attempts: webhook.max_attempts,
            timeout: Duration::from_millis(webhook.timeout_ms),
        },
        log: LogSection {
            level: log.level,
            format,
        },
    })
}
