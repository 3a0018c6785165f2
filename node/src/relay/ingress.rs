//! The relay's door for other nodes: a remotely usable actor (one per node, in the process
//! group [`GROUP`], named `gatehouse.relay:<node>`) that takes room deliveries and presence
//! events sent by room owners on other nodes and hands them to the local relay. The relay itself
//! stays local because it holds connection handles, which never leave a node.
//! Its messages and their encodings are in [`crate::wire::ingress`].

use super::RelayMessage;
use crate::wire::ingress::IngressMessage;
use crate::wire::room::Empty;
use protocol::room::RoomName;
use ractor::{Actor, ActorProcessingErr, ActorRef};

/// The process group of every node's relay ingress.
pub const GROUP: &str = crate::wire::names::RELAYS;

/// The actor name of `node`'s ingress.
pub fn name_of(node: &str) -> String {
    crate::groups::name_in(GROUP, node)
}

/// The ingress of every other node that is reachable.
pub fn remote_all() -> Vec<ActorRef<IngressMessage>> {
    ractor::pg::get_members(&GROUP.to_owned())
        .into_iter()
        .filter(|c| !c.get_id().is_local() && crate::groups::is_live(c))
        .map(ActorRef::from)
        .collect()
}

/// The ingress; forwards to the local relay.
pub struct IngressActor {
    /// The local relay.
    pub relay: ActorRef<RelayMessage>,
}

impl Actor for IngressActor {
    type Msg = IngressMessage;
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
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            IngressMessage::Deliver(d) => {
                let _ = self.relay.cast(RelayMessage::Deliver(d.0));
            }
            IngressMessage::Barrier(_, reply) => {
                let _ = reply.send(Empty {});
            }
            IngressMessage::Moved(m) => {
                if let Ok(room) = RoomName::parse(&m.room) {
                    let _ = self.relay.cast(RelayMessage::Moved {
                        room,
                        rejoin: m.rejoin,
                    });
                }
            }
            IngressMessage::Presence(p) => {
                if let Ok(room) = RoomName::parse(&p.room) {
                    let _ = self.relay.cast(RelayMessage::Presence {
                        room,
                        frame: p.frame.into(),
                        exclude: crate::ids::ClientId::new(&p.exclude),
                    });
                }
            }
        }
        Ok(())
    }
}
