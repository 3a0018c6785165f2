//! The room gateway's envelope: a message for a room on another node travels as a
//! [`GatewayMessage::Room`], the room's [`RoomMessage`] encoded as the room's own encoding with
//! the target actor's name in front of the variant, and arrives as
//! [`GatewayMessage::Arrived`], still encoded, for the room to decode in its own task.

use super::room::RoomMessage;
use ractor::message::{BoxedDowncastErr, SerializedMessage};
use std::sync::Arc;

/// Between the target's name and the room message's variant in an encoded message's variant
/// field (never in an actor name: room names are printable).
const SEP: char = '\u{1}';

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
