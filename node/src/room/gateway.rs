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

use super::wire::{RoomInbox, RoomMessage};
use ractor::message::{BoxedDowncastErr, SerializedMessage};
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr};
use std::sync::Arc;

use crate::groups::is_live;

/// The process group of every node's room gateway.
pub const GROUP: &str = "gatehouse.room_gateways";

/// Between the target's name and the room message's variant in an encoded message's variant
/// field (never in an actor name: room names are printable).
const SEP: char = '\u{1}';

/// The actor name of `node`'s gateway.
pub fn name_of(node: &str) -> String {
    crate::groups::name_in(GROUP, node)
}

/// The gateway of another node, if that node is reachable.
pub fn of(node: &str) -> Option<ActorRef<GatewayMessage>> {
    crate::groups::node_actor(GROUP, node)
}

/// Messages accepted by the gateway.
pub enum GatewayMessage {
    /// For the room actor named `target` on the gateway's node (built by the sender).
    Room {
        /// The room actor's name.
        target: Arc<str>,
        /// The message.
        msg: RoomMessage,
    },
    /// The same as it arrives from another node, still encoded.
    Arrived {
        /// The room actor's name.
        target: String,
        /// The room's message, encoded.
        msg: SerializedMessage,
    },
}

/// Rewrites an encoded message's variant with `f`, which may also take something out of it.
fn map_variant<T>(
    msg: SerializedMessage,
    f: impl FnOnce(String) -> Result<(T, String), BoxedDowncastErr>,
) -> Result<(T, SerializedMessage), BoxedDowncastErr> {
    Ok(match msg {
        SerializedMessage::Cast {
            variant,
            args,
            metadata,
        } => {
            let (out, variant) = f(variant)?;
            let msg = SerializedMessage::Cast {
                variant,
                args,
                metadata,
            };
            (out, msg)
        }
        SerializedMessage::Call {
            variant,
            args,
            reply,
            metadata,
        } => {
            let (out, variant) = f(variant)?;
            let msg = SerializedMessage::Call {
                variant,
                args,
                reply,
                metadata,
            };
            (out, msg)
        }
        SerializedMessage::CallReply(..) => return Err(BoxedDowncastErr),
    })
}

/// Puts `target` in front of an encoded message's variant.
fn address(target: &str, msg: SerializedMessage) -> Result<SerializedMessage, BoxedDowncastErr> {
    map_variant(msg, |v| Ok(((), format!("{target}{SEP}{v}")))).map(|((), m)| m)
}

/// Splits an addressed message into its target and the room's own encoding.
fn unaddress(msg: SerializedMessage) -> Result<(String, SerializedMessage), BoxedDowncastErr> {
    map_variant(msg, |v| {
        let (t, v) = v.split_once(SEP).ok_or(BoxedDowncastErr)?;
        Ok((t.to_owned(), v.to_owned()))
    })
}

impl ractor::Message for GatewayMessage {
    fn serializable() -> bool {
        true
    }

    fn serialize(self) -> Result<SerializedMessage, BoxedDowncastErr> {
        match self {
            Self::Room { target, msg } => {
                address(&target, <RoomMessage as ractor::Message>::serialize(msg)?)
            }
            Self::Arrived { target, msg } => address(&target, msg),
        }
    }

    fn deserialize(bytes: SerializedMessage) -> Result<Self, BoxedDowncastErr> {
        let (target, msg) = unaddress(bytes)?;
        Ok(Self::Arrived { target, msg })
    }
}

/// Answers a call that cannot reach its room: the empty payload (see the module docs).
fn gone(msg: SerializedMessage) {
    if let SerializedMessage::Call { reply, .. } = msg {
        let _ = reply.send(Vec::new());
    }
}

/// The live room actor of that name here (nothing else is reachable through the gateway).
fn room_cell(target: &str) -> Option<ractor::ActorCell> {
    crate::directory::parse_room_actor(target)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_addressed_message_keeps_its_target_and_variant() {
        let msg = SerializedMessage::Cast {
            variant: "Leave".into(),
            args: b"{}".to_vec(),
            metadata: None,
        };
        let addressed = address("room:r@e~node-a~00ff", msg).unwrap();
        let (target, back) = unaddress(addressed).unwrap();
        assert_eq!(target, "room:r@e~node-a~00ff");
        match back {
            SerializedMessage::Cast { variant, args, .. } => {
                assert_eq!(variant, "Leave");
                assert_eq!(args, b"{}");
            }
            _ => panic!("a cast stays a cast"),
        }
        // Not addressed (a peer of another build): refused, never misrouted.
        let bare = SerializedMessage::Cast {
            variant: "Leave".into(),
            args: Vec::new(),
            metadata: None,
        };
        assert!(unaddress(bare).is_err());
    }
}
