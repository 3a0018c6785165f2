//! The names nodes find each other's actors by: the per-node process groups (one actor per
//! node in each, named `<group>:<node>`) and the names of room instances, which carry the
//! room, epoch and node so a peer reads them off a name without a call. Renaming any of these
//! is a change of the cluster protocol, like a change of a message.
//!
//! Pure functions of strings; imports nothing of the node but the room name type.

use protocol::room::RoomName;

/// The process group every node's cluster endpoint joins.
pub const ENDPOINTS: &str = "gatehouse.cluster";

/// The process group of every node's relay ingress.
pub const RELAYS: &str = "gatehouse.relays";

/// The process group of every node's room host.
pub const ROOM_HOSTS: &str = "gatehouse.room_hosts";

/// The process group of every node's room gateway.
pub const ROOM_GATEWAYS: &str = "gatehouse.room_gateways";

/// The process group of a room.
pub fn group_of(room: &RoomName) -> String {
    format!("room:{room}")
}

/// The actor name of a room instance: its group, epoch and node (the node and epoch of any
/// member of a room's group can be read off its name, without a call), plus a random tag so a
/// room that comes back to a node where its forwarder still runs gets a fresh name.
pub fn room_actor_name(room: &RoomName, epoch: &str, node: &str) -> String {
    format!(
        "{}@{epoch}~{node}~{:04x}",
        group_of(room),
        rand::random::<u16>()
    )
}

/// (epoch, node) of a room instance, from its actor name (see [`room_actor_name`]).
pub fn parse_room_actor(name: &str) -> Option<(&str, &str)> {
    let mut right = name.rsplitn(3, '~');
    let _tag = right.next()?;
    let node = right.next()?;
    let (_, epoch) = right.next()?.rsplit_once('@')?;
    Some((epoch, node))
}

/// The room an instance's actor name belongs to (see [`room_actor_name`]).
pub fn room_of_actor(name: &str) -> Option<RoomName> {
    let left = name.rsplitn(3, '~').nth(2)?;
    let (group, _epoch) = left.rsplit_once('@')?;
    RoomName::parse(group.strip_prefix("room:")?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_actor_names_carry_room_epoch_and_node() {
        let room = RoomName::parse("chat@home:1").unwrap();
        let name = room_actor_name(&room, "0badcafe", "node-b");
        assert_eq!(parse_room_actor(&name), Some(("0badcafe", "node-b")));
        assert_eq!(room_of_actor(&name), Some(room));
        assert_eq!(parse_room_actor("gatehouse.room_hosts:node-a"), None);
        assert_eq!(room_of_actor("gatehouse.room_hosts:node-a"), None);
    }
}
