//! A handle on one room instance: the room actor itself when it runs on this node, or its
//! actor name and the gateway of the node it runs on ([`super::gateway`]). Everything that
//! talks to a room holds one of these; nothing holds a cluster proxy of a room actor (there are
//! none: room actors are not remotely usable).
//!
//! Owns nothing but the handle; it never looks a room up (that is [`crate::directory`]'s job).

use super::gateway;
use crate::groups::is_live;
use crate::wire::gateway::GatewayMessage;
use crate::wire::room::{RoomAt, RoomMessage};
use ractor::message::{BoxedDowncastErr, SerializedMessage};
use ractor::{ActorRef, RpcReplyPort};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// What a room actor takes: a [`RoomMessage`], from this node (as it is) or from another node
/// through the gateway (decoded here, in the room's own task). Unlike [`RoomMessage`] it is not
/// serializable, so ractor_cluster never advertises a room actor to its peers: a room costs a
/// node nothing unless the node owns it, keeps its replica or holds its members.
pub struct RoomInbox(pub RoomMessage);

impl ractor::Message for RoomInbox {
    fn deserialize(bytes: SerializedMessage) -> Result<Self, BoxedDowncastErr> {
        <RoomMessage as ractor::Message>::deserialize(bytes).map(RoomInbox)
    }
}
/// Why a call to a room failed.
#[derive(Debug, thiserror::Error)]
pub enum RoomCallError {
    /// The room did not answer in time, or is gone (its node left).
    #[error("room unavailable: {0}")]
    Unavailable(String),
    /// The room refused the request.
    #[error("{0}")]
    Refused(String),
}

/// One room instance, on this node or another.
#[derive(Clone)]
pub struct RoomRef {
    to: To,
}

#[derive(Clone)]
enum To {
    /// The actor, on this node. Its name is the actor's own, read when needed: every member
    /// connection holds a `RoomRef`, and a copy of the name each cost ≈ 70 bytes.
    Local(ActorRef<RoomInbox>),
    /// The gateway of the node it runs on, and the instance's actor name (unique: room, epoch,
    /// node and a random tag).
    Remote {
        name: Arc<str>,
        gateway: ActorRef<GatewayMessage>,
    },
}

impl std::fmt::Debug for RoomRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl RoomRef {
    /// A room actor on this node.
    pub fn local(actor: ActorRef<RoomInbox>) -> Self {
        Self {
            to: To::Local(actor),
        }
    }

    /// The live room actor named `name` on this node, if there is one.
    pub fn local_named(name: &str) -> Option<Self> {
        let cell = ractor::registry::where_is(name).filter(is_live)?;
        crate::wire::names::parse_room_actor(name)?;
        Some(Self::local(ActorRef::from(cell)))
    }

    /// The instance `at` names: on this node (`me`) the actor itself, if it runs; elsewhere
    /// through that node's gateway, if the node is reachable.
    pub fn resolve(at: &RoomAt, me: &str) -> Option<Self> {
        if at.node == me {
            return Self::local_named(&at.name);
        }
        Some(Self {
            to: To::Remote {
                name: Arc::from(at.name.as_str()),
                gateway: gateway::of(&at.node)?,
            },
        })
    }

    /// The instance's actor name (a local one is read off the actor: a copy).
    pub fn name(&self) -> std::borrow::Cow<'_, str> {
        match &self.to {
            To::Local(a) => std::borrow::Cow::Owned(a.get_name().unwrap_or_default()),
            To::Remote { name, .. } => std::borrow::Cow::Borrowed(name),
        }
    }

    /// Where it runs, for a message to another node.
    pub fn at(&self, room: &str) -> RoomAt {
        let name = self.name().into_owned();
        let node = crate::wire::names::parse_room_actor(&name).map_or("", |(_, n)| n);
        RoomAt {
            room: room.to_owned(),
            node: node.to_owned(),
            name,
        }
    }

    /// Whether both name the same instance.
    pub fn same(&self, other: &RoomRef) -> bool {
        match (&self.to, &other.to) {
            (To::Local(a), To::Local(b)) => a.get_id() == b.get_id(),
            (To::Remote { name: a, .. }, To::Remote { name: b, .. }) => a == b,
            _ => self.name() == other.name(),
        }
    }

    /// Whether the instance runs on this node.
    pub fn is_local(&self) -> bool {
        matches!(self.to, To::Local(_))
    }

    /// Whether it may still answer: a local actor that has not stopped, or a remote one whose
    /// node's gateway is reachable (a room that stops on a live node tells its members' relays
    /// itself; see [`crate::relay`]).
    pub fn is_live(&self) -> bool {
        match &self.to {
            To::Local(a) => is_live(&a.get_cell()),
            To::Remote { gateway, .. } => is_live(&gateway.get_cell()),
        }
    }

    /// Sends a message (a cast, or a call whose reply port it carries).
    pub fn send(&self, msg: RoomMessage) -> Result<(), RoomCallError> {
        let sent = match &self.to {
            To::Local(a) => a.send_message(RoomInbox(msg)).map_err(|_| ()),
            To::Remote { name, gateway } => gateway
                .send_message(GatewayMessage::Room {
                    target: name.clone(),
                    msg,
                })
                .map_err(|_| ()),
        };
        sent.map_err(|()| RoomCallError::Unavailable(format!("room `{}` is gone", self.name())))
    }

    /// Sends a call now and returns the wait for its answer (at most `ms`): calls from one
    /// caller reach the room in the order they were started.
    pub fn call_started<T: Send + 'static>(
        &self,
        build: impl FnOnce(RpcReplyPort<T>) -> RoomMessage,
        ms: u64,
    ) -> impl Future<Output = Result<T, RoomCallError>> + 'static {
        let timeout = Duration::from_millis(ms);
        let (tx, rx) = ractor::concurrency::oneshot();
        let sent = self.send(build(RpcReplyPort::from((tx, timeout))));
        // The name only for an error (a local one is a copy): the room itself otherwise.
        let room = self.clone();
        async move {
            sent?;
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(_)) => Err(RoomCallError::Unavailable(format!(
                    "room `{}` is gone",
                    room.name()
                ))),
                Err(_) => Err(RoomCallError::Unavailable(format!(
                    "room `{}` did not answer in {ms} ms",
                    room.name()
                ))),
            }
        }
    }

    /// A call: sends it and waits for the answer (at most `ms`).
    pub async fn call<T: Send + 'static>(
        &self,
        build: impl FnOnce(RpcReplyPort<T>) -> RoomMessage,
        ms: u64,
    ) -> Result<T, RoomCallError> {
        self.call_started(build, ms).await
    }
}
