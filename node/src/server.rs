//! Wiring and lifecycle: spawns the node's actors, binds the listeners, serves, and shuts down.
//!
//! Start order: metrics → hub, relay, room host, rate limiter (actors) → webhook sender →
//! listeners (bound before anything is announced, so a port conflict stops the start) → state
//! `active`. Shutdown on SIGTERM/SIGINT: state `draining` (`/readyz` 503, new clients refused),
//! every client gets `disconnect` + close 1001 (a one-node cluster has nowhere to move rooms),
//! wait for connections to end (bounded by `shutdown_grace_s`) and to have written their last
//! frames (at most 5 s more: the listener's workers carry those writes), stop the listeners,
//! flush the webhook, exit 0.

use crate::auth::{AuthSetupError, Authenticator};
use crate::context::NodeCtx;
use crate::hub::{HubActor, HubMessage};
use crate::lifecycle::{Lifecycle, NodeState};
use crate::metrics::{spawn_sampler, Metrics};
use crate::rate_limit::{Policy, RateLimiter, RateLimiterActor, RateLimiterState};
use crate::relay::RelayActor;
use crate::room_host::RoomHostActor;
use crate::webhook::Webhook;
use crate::wire::endpoint::Limits;
use actix_http::HttpService;
use actix_service::{map_config, IntoServiceFactory, ServiceFactoryExt};
use actix_web::{web, App, HttpServer};
use cluster_config::Config;
use ractor::Actor;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error("cannot listen on `{addr}` (`{field}`)")]
    Bind {
        /// Config field.
        field: &'static str,
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// An actor failed to start.
    #[error("cannot start the {0} actor: {1}")]
    Actor(&'static str, String),
    /// The auth keys in config are unusable.
    #[error(transparent)]
    Auth(#[from] AuthSetupError),
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Http(#[from] std::io::Error),
    /// The public listener's workers did not start.
    #[error(transparent)]
    Workers(#[from] crate::http::workers::StartError),
    /// The cluster layer could not start.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
}

/// Binds a listener with a deep accept queue (a burst of reconnecting clients must not overflow
/// it; `std`'s own bind uses 128).
fn bind(field: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    let err = |source| StartError::Bind {
        field,
        addr,
        source,
    };
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))
        .map_err(err)?;
    s.set_reuse_address(true).map_err(err)?;
    s.bind(&addr.into()).map_err(err)?;
    s.listen(LISTEN_BACKLOG).map_err(err)?;
    Ok(s.into())
}

/// Accept queue length of the public and admin listeners (the kernel caps it at somaxconn).
const LISTEN_BACKLOG: i32 = 4096;

async fn spawn_actor<A: Actor>(
    what: &'static str,
    actor: A,
    args: A::Arguments,
) -> Result<ractor::ActorRef<A::Msg>, StartError> {
    Actor::spawn(Some(format!("gatehouse:{what}")), actor, args)
        .await
        .map(|(r, _)| r)
        .map_err(|e| StartError::Actor(what, e.to_string()))
}

/// Runs a node until SIGTERM/SIGINT; returns after a clean shutdown.
pub async fn run(mut config: Config) -> Result<(), StartError> {
    let (cap, warning) = crate::fds::connection_cap(
        config.limits.max_connections,
        config.limits.max_pending_sockets,
        crate::fds::raise_limit(),
    );
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    config.limits.max_connections = cap;
    let config = Arc::new(config);
    let node = config.node.name.clone();
    let _span = tracing::info_span!("node", node = %node).entered();
    let metrics = Arc::new(Metrics::new());
    crate::events::init(&node);
    let sampler = spawn_sampler(metrics.clone());

    let conns = Arc::new(crate::hub::HubIndex::new(&node, config.limits.session_ttl));
    let hub = spawn_actor(
        "hub",
        HubActor {
            node: node.clone(),
            index: conns.clone(),
        },
        (),
    )
    .await?;
    let lifecycle = Lifecycle::new();
    let members = Arc::new(crate::placement::Membership::default());
    // Placement finds this node's room host by name, so the relay (which the host's rooms
    // need) is given it at start, before the host exists.
    let placement = crate::directory::Placement {
        node: node.clone(),
        members: members.clone(),
        lifecycle: lifecycle.clone(),
    };
    let relay = spawn_actor(
        "relay",
        RelayActor {
            placement: placement.clone(),
        },
        (),
    )
    .await?;
    let agreement = Arc::new(crate::placement::agreement::Agreement::default());
    let room_host = Actor::spawn(
        Some(crate::room_host::name_of(&node)),
        RoomHostActor {
            node: node.clone(),
            members: members.clone(),
            lifecycle: lifecycle.clone(),
            agreement: agreement.clone(),
            relay: relay.clone(),
            rooms: config.rooms.clone(),
            metrics: metrics.clone(),
            memory: crate::room::budget::RoomMemory::new(
                config.rooms.memory_budget_bytes,
                config.rooms.max_rooms,
                metrics.clone(),
            ),
        },
        (),
    )
    .await
    .map(|(r, _)| r)
    .map_err(|e| StartError::Actor("room_host", e.to_string()))?;
    ractor::pg::join(
        crate::room_host::GROUP.to_owned(),
        vec![room_host.get_cell()],
    );
    let ingress = Actor::spawn(
        Some(crate::relay::ingress::name_of(&node)),
        crate::relay::ingress::IngressActor {
            relay: relay.clone(),
        },
        (),
    )
    .await
    .map(|(r, _)| r)
    .map_err(|e| StartError::Actor("relay_ingress", e.to_string()))?;
    ractor::pg::join(
        crate::relay::ingress::GROUP.to_owned(),
        vec![ingress.get_cell()],
    );
    let gateway = Actor::spawn(
        Some(crate::room_access::gateway::name_of(&node)),
        crate::room_access::gateway::GatewayActor,
        (),
    )
    .await
    .map(|(r, _)| r)
    .map_err(|e| StartError::Actor("room_gateway", e.to_string()))?;
    ractor::pg::join(
        crate::room_access::gateway::GROUP.to_owned(),
        vec![gateway.get_cell()],
    );
    let policy = Arc::new(Policy::new(Limits {
        msgs_per_sec: config.limits.msgs_per_sec,
        burst: config.limits.burst,
        bytes_per_sec: config.limits.bytes_per_sec,
    }));
    let limiter = spawn_actor(
        "rate_limiter",
        RateLimiterActor,
        RateLimiterState {
            policy: policy.clone(),
            hub: hub.clone(),
        },
    )
    .await?;
    let limiter = RateLimiter {
        actor: limiter,
        policy,
    };
    let (webhook, webhook_task) = Webhook::start(&config.webhook, node.clone(), metrics.clone());
    let auth = Authenticator::new(&config.auth)?;

    let public_l = bind("node.listen", config.node.listen)?;
    // Every client socket inherits these from the listener (`http::front`).
    crate::http::front::tune_listener(&public_l)?;
    let admin_l = bind("node.admin_listen", config.node.admin_listen)?;
    let public_addr = public_l.local_addr()?;
    let admin_addr = admin_l.local_addr()?;

    let incarnation = format!("{:016x}", rand::random::<u64>());
    let (cluster, peer_requests) = crate::cluster::start(
        &config,
        &incarnation,
        lifecycle.clone(),
        public_addr.to_string(),
        placement.members.clone(),
        agreement,
        metrics.clone(),
    )
    .await?;
    let (drainer, drain_rx) = crate::drain::channel();
    let ctx = Arc::new(NodeCtx::new(
        config.clone(),
        incarnation,
        lifecycle.clone(),
        cluster.manager.clone(),
        drainer.clone(),
        (public_addr, admin_addr),
        metrics.clone(),
        auth,
        hub.clone(),
        conns,
        relay.clone(),
        placement,
        limiter.clone(),
        webhook,
    ));
    let peer_task = tokio::spawn(crate::peer_requests::serve(ctx.clone(), peer_requests));
    let drain_task = tokio::spawn(crate::drain::run(ctx.clone(), drain_rx));
    let rebalance_task = config
        .node
        .rebalance_on_join
        .then(|| tokio::spawn(crate::rebalance::run(ctx.clone())));
    let workers = if config.node.workers == 0 {
        std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
    } else {
        config.node.workers
    };

    let data = web::Data::from(ctx.clone());
    // The public listener: our own workers (`http::workers`) accept and serve each socket on
    // one thread; `/ws` upgrades are answered by `http::front`, everything else reaches the
    // actix-web app through actix-http, as `HttpServer` would run it.
    let pending = crate::http::pending::Pending::new(
        config.limits.max_pending_sockets,
        config.limits.max_pending_sockets_per_ip,
        workers,
        metrics.clone(),
    );
    let public = crate::http::workers::Workers::start(public_l, workers, metrics.clone(), {
        let data = data.clone();
        let ctx = ctx.clone();
        move || {
            let app = App::new()
                .app_data(data.clone())
                .configure(crate::http::public)
                .into_factory()
                .map_err(|err: actix_web::Error| err.error_response());
            let http = HttpService::build()
                .client_request_timeout(ctx.config.limits.handshake_timeout)
                .on_connect_ext(|io: &actix_web::rt::net::TcpStream, ext| {
                    ext.insert(crate::http::front::TcpPeer(io.peer_addr().ok()));
                })
                .upgrade(crate::http::upgrade::service(ctx.clone()))
                .finish(map_config(app, |()| actix_web::dev::AppConfig::default()));
            crate::http::front::service(ctx.clone(), pending.clone(), http)
        }
    })?;
    let admin = HttpServer::new({
        let data = data.clone();
        move || {
            App::new()
                .app_data(data.clone())
                .configure(crate::http::admin_routes)
        }
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(admin_l)?
    .run();
    let admin_handle = admin.handle();
    let admin_task = tokio::spawn(admin);

    warn_about_open_surfaces(&config);
    if !crate::cluster::has_other_seeds(&config.node.seeds, &cluster.addr) {
        // Nobody to join: serve at once (the manager turns a node with seeds active).
        ctx.set_state(NodeState::Active);
        ctx.placement
            .members
            .set(vec![node.clone()], vec![node.clone()]);
    }
    tracing::info!(
        public = %public_addr,
        admin = %admin_addr,
        cluster = %cluster.addr,
        incarnation = %ctx.incarnation,
        workers,
        version = env!("CARGO_PKG_VERSION"),
        "listening"
    );

    // Run until SIGTERM/SIGINT (a drain, bounded by the grace period) or until a drain started
    // through the admin API completes with `--exit-when-drained`.
    let exit_when_drained = config.node.exit_when_drained;
    tokio::select! {
        () = wait_for_signal() => {
            tracing::info!("shutting down: draining first");
            drainer.send(crate::lifecycle::DrainCommand::Start { exit: true });
            let grace = config.node.shutdown_grace;
            if tokio::time::timeout(grace, drainer.exit.notified()).await.is_err() {
                tracing::warn!(grace_s = grace.as_secs(), "drain did not finish within the grace period");
            }
        }
        () = drainer.exit.notified(), if exit_when_drained => {
            tracing::info!("drained: exiting (--exit-when-drained)");
        }
    }
    // Whoever is still connected now is told the node is going away.
    let closed = ractor::call_t!(
        hub,
        |tx| HubMessage::CloseAll {
            code: protocol::codes::close::GOING_AWAY,
            reason: "server shutting down".into(),
            reconnect: true,
            reply: tx
        },
        5_000
    )
    .unwrap_or(0);
    // Then wait (at most 5 s) until every connection is gone and has written its last frames,
    // whether closed just now or by the drain before.
    if closed > 0 || ctx.conns.closing_count() > 0 {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if ractor::call_t!(hub, HubMessage::Count, 1_000).unwrap_or(0) == 0
                && ctx.conns.closing_count() == 0
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    ctx.set_state(NodeState::Drained);
    drain_task.abort();
    peer_task.abort();
    if let Some(t) = rebalance_task {
        t.abort();
    }
    public.stop().await;
    admin_handle.stop(true).await;
    let _ = admin_task.await;
    drop(data);
    // The webhook sender ends once every producer is gone; give it a bounded time to flush.
    if let Some(task) = webhook_task {
        if let Ok(ctx) = Arc::try_unwrap(ctx) {
            if let Ok(mut conn) = Arc::try_unwrap(ctx.conn) {
                conn.webhook.close();
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    sampler.abort();
    cluster.stop();
    for actor in [
        hub.get_cell(),
        relay.get_cell(),
        room_host.get_cell(),
        ingress.get_cell(),
        limiter.actor.get_cell(),
    ] {
        actor.stop(None);
    }
    tracing::info!("stopped");
    Ok(())
}

fn warn_about_open_surfaces(c: &Config) {
    if c.admin.token.is_none() {
        tracing::warn!(admin = %c.node.admin_listen, "no admin token set: the admin API answers loopback clients only");
    }
    if c.api.key.is_none() {
        tracing::warn!("no API key set: /api/v1 answers loopback clients only");
    }
    if !c.auth.required {
        tracing::warn!("auth.required = false: clients without a token connect as anonymous users");
    }
    if c.node.cookie_generated {
        tracing::info!("no cluster cookie set: generated a random one (session tokens will not survive a restart)");
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            std::future::pending::<()>().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
