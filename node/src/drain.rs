//! Draining a node for a rolling upgrade (`POST /admin/v1/nodes/{node}/drain`, or SIGTERM):
//! state `draining` (readiness off, new clients refused, no new rooms placed here), after
//! `node.drain_delay` (time for load balancers to see `/readyz` fail) every room
//! this node owns migrates to its owner among the other active nodes, then clients get the
//! `reconnect` hint and a 1012 close, paced at `node.drain_rate` per second; when nothing is
//! left, state `drained`. With no other active node (a lone node) rooms stay and clients are
//! closed at once with 1001. `undrain` stops a drain in progress and returns to `active`.
//!
//! Whole-cluster stop (every node told to drain at once): a drain first waits
//! [`PEER_STATE_SETTLE`] so that peers draining at the same moment are seen as such, and moves
//! rooms only to nodes that are `active`; the moment no active peer is left (before, while
//! moving rooms or while pacing clients out) it finishes as a lone node does, at once.
//!
//! The drainer is one task per node driven by [`DrainCommand`]s; it owns no room or connection
//! state, only the order of the steps.

use crate::context::{NodeCtx, NodeState};
use crate::hub::HubMessage;
use crate::room::calls;
use protocol::room::RoomName;
use protocol::server::ServerFrame;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// How long a drain waits, when it has peers, before it picks where rooms go: a peer that started
/// draining at the same moment has announced it by then (a state change is sent on the cluster
/// manager's next tick, 250 ms).
pub const PEER_STATE_SETTLE: Duration = Duration::from_millis(600);

/// What the drainer is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainCommand {
    /// Start (or continue) draining; `exit` makes the process end when drained.
    Start {
        /// End the process when drained.
        exit: bool,
    },
    /// Stop a drain in progress and return to `active`.
    Cancel,
}

/// The handle the rest of the node uses.
#[derive(Clone)]
pub struct Drainer {
    tx: mpsc::Sender<DrainCommand>,
    /// Notified when a drain that should end the process is done.
    pub exit: Arc<Notify>,
}

impl Drainer {
    /// Sends a command; false when the drainer is gone.
    pub fn send(&self, cmd: DrainCommand) -> bool {
        self.tx.try_send(cmd).is_ok()
    }
}

/// Applies an admin `drain` / `undrain` to this node; answers its state.
pub fn command(ctx: &NodeCtx, op: &str) -> crate::wire::endpoint::NodeCommandReply {
    let sent = match op {
        "drain" => ctx.drain.send(DrainCommand::Start {
            exit: ctx.config.node.exit_when_drained,
        }),
        "undrain" => match ctx.state() {
            NodeState::Draining => ctx.drain.send(DrainCommand::Cancel),
            NodeState::Drained => {
                ctx.set_state(NodeState::Active);
                true
            }
            _ => true,
        },
        other => {
            return crate::wire::endpoint::NodeCommandReply {
                state: ctx.state().as_str().into(),
                error: Some(format!("unknown command `{other}`")),
            }
        }
    };
    let state = if op == "drain" && sent {
        NodeState::Draining
    } else {
        ctx.state()
    };
    crate::wire::endpoint::NodeCommandReply {
        state: state.as_str().into(),
        error: (!sent).then(|| "the drainer is not running".into()),
    }
}

/// Rooms whose owner runs on this node.
pub fn owned_rooms() -> Vec<RoomName> {
    crate::room::listing::local_rooms()
        .into_iter()
        .filter_map(|(name, _)| RoomName::parse(&name).ok())
        .collect()
}

/// Creates the drainer; [`run`] must be spawned with the receiver once the context exists.
pub fn channel() -> (Drainer, mpsc::Receiver<DrainCommand>) {
    let (tx, rx) = mpsc::channel(16);
    (
        Drainer {
            tx,
            exit: Arc::new(Notify::new()),
        },
        rx,
    )
}

enum Outcome {
    Done,
    Cancelled,
}

/// The drainer task.
pub async fn run(ctx: Arc<NodeCtx>, mut rx: mpsc::Receiver<DrainCommand>) {
    let exit = Arc::new(AtomicBool::new(false));
    while let Some(cmd) = rx.recv().await {
        let DrainCommand::Start { exit: e } = cmd else {
            continue;
        };
        exit.fetch_or(e, Ordering::AcqRel);
        if ctx.state() == NodeState::Drained {
            if exit.load(Ordering::Acquire) {
                ctx.drain.exit.notify_one();
            }
            continue;
        }
        ctx.set_state(NodeState::Draining);
        ctx.metrics.drains.inc();
        match drain_once(&ctx, &mut rx, &exit).await {
            Outcome::Cancelled => {
                tracing::info!("drain cancelled");
                ctx.set_state(NodeState::Active);
            }
            Outcome::Done => {
                ctx.set_state(NodeState::Drained);
                tracing::info!("drained");
                if exit.load(Ordering::Acquire) {
                    ctx.drain.exit.notify_one();
                }
            }
        }
    }
}

/// Applies commands that arrive during a drain; true when it was cancelled.
fn cancelled(rx: &mut mpsc::Receiver<DrainCommand>, exit: &AtomicBool) -> bool {
    while let Ok(cmd) = rx.try_recv() {
        match cmd {
            DrainCommand::Cancel => return true,
            DrainCommand::Start { exit: e } => {
                exit.fetch_or(e, Ordering::AcqRel);
            }
        }
    }
    false
}

fn other_active(ctx: &NodeCtx) -> Vec<String> {
    let mut others = ctx.placement.members.active();
    others.retain(|n| *n != ctx.node);
    others
}

async fn drain_once(
    ctx: &NodeCtx,
    rx: &mut mpsc::Receiver<DrainCommand>,
    exit: &AtomicBool,
) -> Outcome {
    let started = std::time::Instant::now();
    // 0. Stay unready but serving for `drain_delay`, so a load balancer that health-checks
    //    `/readyz` stops routing new clients here before the clients here are told to move.
    let delay = ctx.config.node.drain_delay;
    if !delay.is_zero() {
        tracing::info!(
            ms = delay.as_millis() as u64,
            "drain: unready, waiting for load balancers to notice"
        );
        let until = tokio::time::Instant::now() + delay;
        while tokio::time::Instant::now() < until {
            if cancelled(rx, exit) {
                return Outcome::Cancelled;
            }
            tokio::time::sleep_until(
                until.min(tokio::time::Instant::now() + Duration::from_millis(50)),
            )
            .await;
        }
    }
    // Peers told to drain at the same moment (a whole-cluster stop) say so within a tick: hear
    // it before choosing where rooms go, rather than move them to a node that is leaving too.
    if !other_active(ctx).is_empty() {
        let until = tokio::time::Instant::now() + PEER_STATE_SETTLE;
        while tokio::time::Instant::now() < until && !other_active(ctx).is_empty() {
            if cancelled(rx, exit) {
                return Outcome::Cancelled;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // A peer that is up but has not yet reported `active` (it just started) will in a moment:
    // wait for it rather than take this node for a lone one.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while other_active(ctx).is_empty() && tokio::time::Instant::now() < deadline {
        let peers = ractor::call_t!(ctx.cluster, crate::cluster::ClusterMessage::Peers, 1_000)
            .unwrap_or_default();
        use crate::cluster::view::PeerState;
        // Peers that are up (joining or active) will be in the active list within a tick.
        if !peers
            .iter()
            .any(|p| matches!(p.state, PeerState::Joining | PeerState::Active))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // 1. Rooms leave first, so clients that reconnect elsewhere find their history there.
    let targets = other_active(ctx);
    let mut moved = 0;
    if !targets.is_empty() {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let rooms = owned_rooms();
            if rooms.is_empty() || tokio::time::Instant::now() >= deadline {
                break;
            }
            if other_active(ctx).is_empty() {
                // Every peer left `active` meanwhile (they are draining too): nowhere to go.
                tracing::info!(
                    rooms = rooms.len(),
                    "drain: no active peer left; finishing as a lone node"
                );
                break;
            }
            for room in rooms {
                if cancelled(rx, exit) {
                    return Outcome::Cancelled;
                }
                let targets = other_active(ctx);
                let Some(to) = crate::directory::owner(room.as_str(), &targets) else {
                    break;
                };
                let Some(r) = crate::directory::find_local(&room) else {
                    continue;
                };
                match calls::migrate(&r, to).await {
                    Ok(_) => moved += 1,
                    Err(e) => {
                        tracing::warn!(room = %room, to, error = %e, "drain: migration failed; will retry")
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tracing::info!(
        rooms = moved,
        ms = started.elapsed().as_millis() as u64,
        "drain: rooms moved"
    );
    // 2. Clients go, paced, with a hint to come back elsewhere after a jittered delay.
    let lone = other_active(ctx).is_empty();
    let (code, reason, hint) = if lone {
        (
            protocol::codes::close::GOING_AWAY,
            "server shutting down",
            None,
        )
    } else {
        let jitter = ctx.config.node.drain_jitter.as_millis() as u64;
        let frame = ServerFrame::Reconnect {
            reason: "node draining",
            after_ms: [0, jitter],
        }
        .encode();
        (
            protocol::codes::close::SERVICE_RESTART,
            "node draining",
            Some(frame),
        )
    };
    let (mut code, mut reason, mut hint) = (code, reason, hint);
    let rate = ctx.config.node.drain_rate.max(1) as usize;
    let mut per_tick = if lone { usize::MAX } else { rate.div_ceil(100) };
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        tick.tick().await;
        if cancelled(rx, exit) {
            return Outcome::Cancelled;
        }
        if hint.is_some() && other_active(ctx).is_empty() {
            // Nowhere left to reconnect to: the rest go at once, as from a lone node.
            tracing::info!("drain: no active peer left; closing the remaining clients with 1001");
            (code, reason, hint) = (
                protocol::codes::close::GOING_AWAY,
                "server shutting down",
                None,
            );
            per_tick = usize::MAX;
        }
        let left = ractor::call_t!(
            ctx.hub,
            |tx| HubMessage::DrainBatch {
                max: per_tick,
                frame: hint.clone(),
                code,
                reason: reason.to_owned(),
                reply: tx
            },
            2_000
        )
        .unwrap_or(usize::MAX);
        if left == 0 {
            break;
        }
    }
    tracing::info!(
        ms = started.elapsed().as_millis() as u64,
        "drain: clients gone"
    );
    Outcome::Done
}
