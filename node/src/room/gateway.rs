//! The room gateway: the one remotely usable door to this node's rooms. One per node, named
//! `gatehouse.room_gateways:<node>` in the process group [`GROUP`]. A peer holds one proxy of it
//! (not one per room), so a room costs nothing on a node that does not own it, keep its replica
//! or hold its members.
//!
//! A message for a room on another node travels as a [`GatewayMessage::Room`]: the room's
//! [`RoomMessage`], encoded as the room's own encoding with the target actor's name in front of
//! the variant. The gateway hands it on, still encoded, to the room actor of that name here
//! (the room decodes it in its own task), in the order it arrived, so one caller's messages
//! reach the room in the order they were sent. A call for a room that is no longer here is
//! answered at once with the empty payload, which no reply decodes: the caller's call fails
//! without waiting for its timeout, and it looks the room up again.
//!
//! Owns no state; it never looks inside a room's messages.

use super::address::RoomInbox;
use crate::wire::gateway::GatewayMessage;
use ractor::message::SerializedMessage;
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr};

use crate::groups::is_live;

/// The process group of every node's room gateway.
pub const GROUP: &str = crate::wire::names::ROOM_GATEWAYS;

/// The actor name of `node`'s gateway.
pub fn name_of(node: &str) -> String {
    crate::groups::name_in(GROUP, node)
}

/// The gateway of another node, if that node is reachable.
pub fn of(node: &str) -> Option<ActorRef<GatewayMessage>> {
    crate::groups::node_actor(GROUP, node)
}

/// Answers a call that cannot reach its room: the empty payload (see the module docs).
fn gone(msg: SerializedMessage) {
    if let SerializedMessage::Call { reply, .. } = msg {
        let _ = reply.send(Vec::new());
    }
}

/// The live room actor of that name here (nothing else is reachable through the gateway).
fn room_cell(target: &str) -> Option<ractor::ActorCell> {
    crate::wire::names::parse_room_actor(target)?;
    ractor::registry::where_is(target).filter(is_live)
}

/// The gateway; one per node.
pub struct GatewayActor;

impl Actor for GatewayActor {
    type Msg = GatewayMessage;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        (): (),
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        (): &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            GatewayMessage::Arrived { target, msg } => match room_cell(&target) {
                Some(cell) => {
                    if let Err(e) = cell.send_serialized(msg) {
                        if let MessagingErr::SendErr(m) = *e {
                            gone(m);
                        }
                    }
                }
                None => {
                    tracing::debug!(room = %target, "message for a room no longer here");
                    gone(msg);
                }
            },
            // From this node (a handle that went through the gateway): as it is. A message
            // dropped here drops its reply port, so a call fails at once.
            GatewayMessage::Room { target, msg } => {
                if let Some(cell) = room_cell(&target) {
                    let _ = ActorRef::<RoomInbox>::from(cell).send_message(RoomInbox(msg));
                }
            }
        }
        Ok(())
    }
}
