//! The node's lifecycle: its state (`joining`, `active`, `draining`, `drained`), shared by
//! every part that must act on it, and the handle through which a drain is asked for (the
//! drainer task itself is `drain`).
//!
//! A leaf: it imports nothing of the node but the event bus that announces state changes.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};

/// Lifecycle state of a node (`docs/admin-api.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum NodeState {
    /// Starting, not ready for clients.
    Joining = 0,
    /// Serving.
    Active = 1,
    /// Moving rooms and clients away; not accepting new clients.
    Draining = 2,
    /// Nothing left; waiting to stop.
    Drained = 3,
}

impl NodeState {
    /// The contract's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Joining => "joining",
            Self::Active => "active",
            Self::Draining => "draining",
            Self::Drained => "drained",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Active,
            2 => Self::Draining,
            3 => Self::Drained,
            _ => Self::Joining,
        }
    }
}

/// The node's lifecycle state, shared by the HTTP edges and the cluster manager.
#[derive(Debug)]
pub struct Lifecycle(AtomicU8);

impl Lifecycle {
    /// Starts in `joining`.
    pub fn new() -> Arc<Self> {
        Arc::new(Self(AtomicU8::new(NodeState::Joining as u8)))
    }

    /// Current state.
    pub fn get(&self) -> NodeState {
        NodeState::from_u8(self.0.load(Ordering::Acquire))
    }

    /// Moves to `s`.
    pub fn set(&self, s: NodeState) {
        let old = NodeState::from_u8(self.0.swap(s as u8, Ordering::AcqRel));
        if old != s {
            tracing::info!(from = old.as_str(), to = s.as_str(), "node state changed");
            crate::events::emit(crate::events::Event::NodeState {
                state: s.as_str().to_owned(),
            });
        }
    }
}

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
    /// A handle on the drainer task that reads `tx`; `exit` is notified when a drain that
    /// should end the process is done.
    pub fn new(tx: mpsc::Sender<DrainCommand>, exit: Arc<Notify>) -> Self {
        Self { tx, exit }
    }

    /// Sends a command; false when the drainer is gone.
    pub fn send(&self, cmd: DrainCommand) -> bool {
        self.tx.try_send(cmd).is_ok()
    }
}
