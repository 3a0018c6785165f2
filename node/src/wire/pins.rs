//! Pins the encoding of every message that crosses between nodes (test only).
//!
//! Each remotely usable actor's message enum is serialized variant by variant, with a sample
//! payload whose every field is set, exactly as ractor_cluster would send it (the variant name
//! and the payload's bytes); each reply type is encoded as its actor would answer. The result
//! is compared with `node/src/wire/pins.golden`, so any change to what two nodes say to each
//! other — a renamed field or variant, a new field, another binary layout — is a visible diff in
//! review, beside [`crate::wire::CLUSTER_PROTOCOL_VERSION`] (pinned too).
//!
//! After a deliberate change, rewrite the file with
//! `GATEHOUSE_WIRE_PINS=write cargo nextest run -p node wire::pins` and say in the commit whether
//! the change is compatible (fields added with `#[serde(default)]`) or bumps the protocol.
//!
//! Owns nothing at run time; it only reads the wire types.

use crate::delivery::Delivery;
use crate::wire::endpoint::{
    ClientsReply, ClientsRequest, EndpointMessage, Heartbeat, Member, NodeCommand,
    NodeCommandReply, StatsReply, StatsRequest,
};
use crate::wire::gateway::GatewayMessage;
use crate::wire::host::{EnsureReply, EnsureRoom, Located, ReplicaKey, RoomHostMessage};
use crate::wire::ingress::{IngressMessage, MovedNote, PresenceEvent, SharedDelivery};
use crate::wire::listing::{ListRooms, RoomListPage, RoomListQuery, RoomsListed};
use crate::wire::migration::{AdoptChunk, AdoptReply, MovedMember, MovedMessage};
use crate::wire::room::{
    Empty, HistoryPage, HistoryRequest, InfoReply, JoinReply, JoinRequest, LeaveRequest,
    MigrateReply, MigrateRequest, PresenceEntry, PresenceList, PresencePage, PublishRequest,
    Published, Publisher, RivalNote, RoomAt, RoomInfo, RoomMessage, SnapshotGetReply, SnapshotPut,
    SnapshotPutReply,
};
use crate::wire::CLUSTER_PROTOCOL_VERSION;
use protocol::client::Since;
use protocol::room::RoomName;
use ractor::message::SerializedMessage;
use ractor::{BytesConvertable, RpcReplyPort};
use serde_json::value::RawValue;
use std::fmt::Write;
use std::sync::Arc;

const GOLDEN: &str = "src/wire/pins.golden";

/// A message's arguments as the derive packs them (each a big-endian `u64` length, then its
/// bytes), each shown as [`show`] does; anything else as `show` alone.
fn show_args(bytes: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 8 {
        let (len, tail) = rest.split_at(8);
        let len = u64::from_be_bytes(len.try_into().expect("8 bytes")) as usize;
        if len > tail.len() {
            return show(bytes);
        }
        let (part, tail) = tail.split_at(len);
        parts.push(show(part));
        rest = tail;
    }
    if rest.is_empty() && !parts.is_empty() {
        parts.join(" | ")
    } else {
        show(bytes)
    }
}

/// Bytes as text when they are printable UTF-8 (JSON payloads), else as hex.
fn show(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_owned(),
        _ => bytes.iter().fold(String::from("hex:"), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        }),
    }
}

/// A reply port nobody answers (a call's port is not part of its encoding).
fn port<T>() -> RpcReplyPort<T> {
    let (tx, _rx) = ractor::concurrency::oneshot();
    RpcReplyPort::from(tx)
}

fn message<M: ractor::Message>(out: &mut String, actor: &str, m: M) {
    match m.serialize() {
        Ok(SerializedMessage::Cast { variant, args, .. }) => {
            let (variant, args) = (variant.escape_debug(), show_args(&args));
            let _ = writeln!(out, "{actor} cast {variant}: {args}");
        }
        Ok(SerializedMessage::Call { variant, args, .. }) => {
            let (variant, args) = (variant.escape_debug(), show_args(&args));
            let _ = writeln!(out, "{actor} call {variant}: {args}");
        }
        Ok(SerializedMessage::CallReply(..)) => panic!("{actor}: a message encoded as a reply"),
        Err(_) => panic!("{actor}: a message that does not encode"),
    }
}

fn reply<T: BytesConvertable>(out: &mut String, name: &str, r: T) {
    let _ = writeln!(out, "reply {name}: {}", show(&r.into_bytes()));
}

fn raw(s: &str) -> Box<RawValue> {
    RawValue::from_string(s.to_owned()).expect("valid JSON")
}

fn delivery() -> Arc<Delivery> {
    Arc::new(Delivery {
        room: RoomName::parse("chat:lobby").expect("valid room"),
        seq: 58,
        epoch: Arc::from("3f9a1c07"),
        frame: r#"{"op":"message","room":"chat:lobby","seq":58,"data":"ü"}"#.into(),
        published_us: 1_796_000_000_000_001,
    })
}

fn at() -> RoomAt {
    RoomAt {
        room: "chat:lobby".into(),
        node: "node-b".into(),
        name: "room:chat:lobby@3f9a1c07~node-b~9c1e".into(),
    }
}

fn since() -> Option<Since> {
    Some(Since {
        seq: 41,
        epoch: "3f9a1c07".into(),
    })
}

fn chunk() -> AdoptChunk {
    AdoptChunk {
        room: "chat:lobby".into(),
        move_id: "m-7".into(),
        index: 2,
        last: true,
        epoch: "3f9a1c07".into(),
        seq: 58,
        members: vec![MovedMember {
            client: "c_1".into(),
            user: "u-1".into(),
            node: "node-a".into(),
            conns: 2,
        }],
        nodes: vec![("node-a".into(), 2)],
        snapshot: Some((50, "c25hcA==".into(), 1)),
        snapshot_more: "cA==".into(),
        history: vec![MovedMessage {
            seq: 58,
            frame: r#"{"op":"message"}"#.into(),
            us: 7,
        }],
    }
}

fn room_info() -> RoomInfo {
    RoomInfo {
        name: "chat:lobby".into(),
        owner: "node-b".into(),
        members: 17,
        nodes: vec!["node-a".into(), "node-b".into()],
        seq: 58,
        epoch: "3f9a1c07".into(),
        history_len: 58,
        has_snapshot: true,
        msgs_per_s: 4.5,
        backup: Some("node-c".into()),
    }
}

fn endpoint(out: &mut String) {
    let hb = Heartbeat {
        version: CLUSTER_PROTOCOL_VERSION,
        name: "node-a".into(),
        incarnation: "5e9a27d39aaa3923".into(),
        addr: "10.0.0.1:7100".into(),
        public_addr: "10.0.0.1:9000".into(),
        state: "active".into(),
        sent_us: 11,
        echo_us: 10,
        hold_us: 1,
        members: vec![Member {
            name: "node-b".into(),
            incarnation: "8c7b1d663fd829c2".into(),
            addr: "10.0.0.2:7100".into(),
            state: "down".into(),
        }],
    };
    message(out, "endpoint", EndpointMessage::Heartbeat(hb));
    let stats = StatsRequest {
        version: CLUSTER_PROTOCOL_VERSION,
    };
    message(out, "endpoint", EndpointMessage::Stats(stats, port()));
    let requests = [
        ClientsRequest::SendToUser {
            user: "u-1".into(),
            frame: r#"{"op":"direct"}"#.into(),
        },
        ClientsRequest::Kick {
            client: "c_1".into(),
            code: 4001,
            reason: "kicked".into(),
        },
        ClientsRequest::Throttle {
            client: "c_1".into(),
            limits: Some(crate::wire::endpoint::Limits {
                msgs_per_sec: 5,
                burst: 10,
                bytes_per_sec: 65_536,
            }),
        },
        ClientsRequest::Page(crate::wire::endpoint::ClientQuery {
            q: Some("u-".into()),
            node: Some("node-a".into()),
            members: Some(vec!["c_1".into()]),
            sort: "id".into(),
            after: Some("c_0".into()),
            limit: 50,
        }),
        ClientsRequest::Invalid,
        ClientsRequest::Get {
            client: "c_1".into(),
        },
        ClientsRequest::Join {
            client: "c_1".into(),
            room: "chat:lobby".into(),
        },
        ClientsRequest::Leave {
            client: "c_1".into(),
            room: "chat:lobby".into(),
        },
    ];
    for r in requests {
        message(out, "endpoint", EndpointMessage::Clients(r, port()));
    }
    let drain = NodeCommand { op: "drain".into() };
    message(out, "endpoint", EndpointMessage::Node(drain, port()));
    reply(
        out,
        "StatsReply",
        StatsReply {
            json: r#"{"name":"node-a"}"#.into(),
        },
    );
    let client = serde_json::from_value(serde_json::json!({
        "id": "c_1", "user": "u-1", "node": "node-a", "conn": 7, "remote_addr": "203.0.113.7",
        "rooms": 2, "connected_at": 1_796_000_000, "msgs_in": 3, "msgs_out": 4, "queue_bytes": 0,
        "rate_limit": {"msgs_per_sec": 100, "burst": 200, "bytes_per_sec": 1_048_576},
        "throttled": false,
    }))
    .expect("a client summary");
    reply(
        out,
        "ClientsReply",
        ClientsReply {
            count: 1,
            clients: vec![client],
            remaining: 3,
            ..ClientsReply::default()
        },
    );
    reply(
        out,
        "ClientsReply (join)",
        ClientsReply {
            count: 1,
            unchanged: 2,
            refused: Some(crate::wire::endpoint::Refusal {
                code: "forbidden".into(),
                message: "not allowed to join `x`".into(),
            }),
            ..ClientsReply::default()
        },
    );
    reply(
        out,
        "NodeCommandReply",
        NodeCommandReply {
            state: "draining".into(),
            error: Some("no".into()),
        },
    );
}

fn room(out: &mut String) {
    let join = JoinRequest {
        client: "c_1".into(),
        user: "u-1".into(),
        node: "node-a".into(),
        since: since(),
        last: Some(5),
        quiet: true,
        replay_bytes: Some(524_288),
    };
    let messages = vec![
        RoomMessage::Join(join, port()),
        RoomMessage::Leave(LeaveRequest {
            client: "c_1".into(),
            node: "node-a".into(),
        }),
        RoomMessage::Publish(
            PublishRequest {
                from: Publisher::Client {
                    client: "c_1".into(),
                    user: "u-1".into(),
                },
                data: raw(r#"{"text":"hi"}"#),
            },
            port(),
        ),
        RoomMessage::Publish(
            PublishRequest {
                from: Publisher::Backend,
                data: raw("42"),
            },
            port(),
        ),
        RoomMessage::Presence(
            PresencePage {
                after: Some("c_0".into()),
                limit: Some(100),
            },
            port(),
        ),
        RoomMessage::History(
            HistoryRequest {
                since: since(),
                limit: 100,
                max_bytes: Some(524_288),
            },
            port(),
        ),
        RoomMessage::SetSnapshot(
            SnapshotPut {
                data: raw(r#"{"board":[1,2]}"#),
            },
            port(),
        ),
        RoomMessage::GetSnapshot(Empty {}, port()),
        RoomMessage::Info(Empty {}, port()),
        RoomMessage::Tick(Empty {}),
        RoomMessage::Migrate(
            MigrateRequest {
                to: "node-c".into(),
            },
            port(),
        ),
        RoomMessage::Rival(RivalNote { winner: at() }),
    ];
    for m in messages {
        message(out, "room", m);
    }
    // Through the gateway: the same, with the target room actor's name in front.
    message(
        out,
        "gateway",
        GatewayMessage::Room {
            target: Arc::from(at().name.as_str()),
            msg: RoomMessage::Info(Empty {}, port()),
        },
    );
    message(
        out,
        "gateway",
        GatewayMessage::Room {
            target: Arc::from(at().name.as_str()),
            msg: RoomMessage::Tick(Empty {}),
        },
    );
    reply(
        out,
        "JoinReply",
        JoinReply {
            error: Some("none".into()),
            seq: 58,
            epoch: Arc::from("3f9a1c07"),
            members: 17,
            recovered: Some(true),
            snapshot: Some((50, r#"{"op":"snapshot"}"#.into())),
            replay: vec![delivery()],
            replay_until: Some(58),
        },
    );
    reply(
        out,
        "Published",
        Published {
            seq: 59,
            epoch: "3f9a1c07".into(),
        },
    );
    reply(
        out,
        "PresenceList",
        PresenceList {
            members: vec![PresenceEntry {
                client: "c_1".into(),
                user: "u-1".into(),
                node: "node-a".into(),
            }],
            next: Some("c_1".into()),
        },
    );
    reply(
        out,
        "HistoryPage",
        HistoryPage {
            epoch: Arc::from("3f9a1c07"),
            seq: 58,
            complete: true,
            messages: vec![delivery()],
        },
    );
    reply(
        out,
        "SnapshotPutReply",
        SnapshotPutReply {
            seq: Some(59),
            error: Some("too large".into()),
        },
    );
    reply(
        out,
        "SnapshotGetReply",
        SnapshotGetReply {
            snapshot: Some((50, "3f9a1c07".into(), raw(r#"{"board":[1,2]}"#))),
            error: None,
        },
    );
    reply(out, "RoomInfo", InfoReply(room_info()));
    reply(
        out,
        "MigrateReply",
        MigrateReply {
            from: "node-b".into(),
            to: "node-c".into(),
            seq: 58,
            epoch: "3f9a1c07".into(),
            error: None,
        },
    );
    reply(out, "Empty", Empty {});
}

fn host(out: &mut String) {
    let ensure = EnsureRoom {
        room: "chat:lobby".into(),
        live: vec!["node-a".into(), "node-b".into()],
        create: false,
    };
    let messages = vec![
        RoomHostMessage::Ensure(ensure, port()),
        RoomHostMessage::Adopt(chunk(), port()),
        RoomHostMessage::ReplicaSync(chunk()),
        RoomHostMessage::ReplicaAppend(SharedDelivery(delivery()), port()),
        RoomHostMessage::ReplicaDrop(ReplicaKey {
            room: "chat:lobby".into(),
            epoch: "3f9a1c07".into(),
        }),
        RoomHostMessage::Register(at()),
        RoomHostMessage::Unregister(at()),
        RoomHostMessage::Locate(at(), port()),
        RoomHostMessage::List(
            ListRooms(RoomListQuery {
                q: Some("chat".into()),
                node: Some("node-b".into()),
                sort: "members".into(),
                after: Some("chat:a".into()),
                limit: 50,
            }),
            port(),
        ),
        RoomHostMessage::Tick(Empty {}),
    ];
    for m in messages {
        message(out, "room_host", m);
    }
    reply(
        out,
        "EnsureReply",
        EnsureReply {
            error: Some("settling".into()),
            settling: true,
            at: Some(at()),
        },
    );
    reply(out, "Located", Located { at: vec![at()] });
    reply(
        out,
        "AdoptReply",
        AdoptReply {
            error: None,
            name: Some(at().name),
        },
    );
    reply(
        out,
        "RoomListPage",
        RoomsListed(RoomListPage {
            rooms: vec![room_info()],
            total: 3,
            remaining: 2,
        }),
    );
}

fn ingress(out: &mut String) {
    let messages = vec![
        IngressMessage::Deliver(SharedDelivery(delivery())),
        IngressMessage::Presence(PresenceEvent {
            room: "chat:lobby".into(),
            frame: r#"{"op":"presence_join"}"#.into(),
            exclude: "c_1".into(),
        }),
        IngressMessage::Barrier(Empty {}, port()),
        IngressMessage::Moved(MovedNote {
            room: "chat:lobby".into(),
            rejoin: true,
        }),
    ];
    for m in messages {
        message(out, "ingress", m);
    }
}

/// Everything that crosses between nodes, one line per message or reply.
fn pins() -> String {
    let mut out = format!("cluster protocol version: {CLUSTER_PROTOCOL_VERSION}\n");
    endpoint(&mut out);
    room(&mut out);
    host(&mut out);
    ingress(&mut out);
    out
}

#[tokio::test]
async fn what_nodes_say_to_each_other_is_pinned() {
    let now = pins();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if std::env::var("GATEHOUSE_WIRE_PINS").as_deref() == Ok("write") {
        std::fs::write(&path, &now).expect("golden file written");
        return;
    }
    let pinned = std::fs::read_to_string(&path).unwrap_or_default();
    if now != pinned {
        let changed: Vec<String> = now
            .lines()
            .zip(pinned.lines().chain(std::iter::repeat("")))
            .filter(|(a, b)| a != b)
            .map(|(a, b)| format!("  now:    {a}\n  pinned: {b}"))
            .collect();
        panic!(
            "the inter-node wire changed ({} of {} lines; {} lines pinned):\n{}\n\
             If it is deliberate: GATEHOUSE_WIRE_PINS=write cargo nextest run -p node wire::pins, \
             and say in the commit whether the protocol version changes.",
            changed.len(),
            now.lines().count(),
            pinned.lines().count(),
            changed.join("\n")
        );
    }
}
