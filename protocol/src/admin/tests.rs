//! Pins the admin API's JSON: every answer, encoded as the node encodes it ([`super::to_value`]),
//! is compared with the `json!` the node wrote by hand before these types existed (same keys,
//! values and number kinds, so the same bytes), and the console's reading of each is checked.
#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::json;

/// The encoded text of a typed answer and of the hand-written `json!` it replaces.
fn same(typed: impl Serialize, by_hand: serde_json::Value) {
    assert_eq!(to_value(&typed).to_string(), by_hand.to_string());
}

fn stats(name: &str, state: &str, draining: bool) -> NodeStats {
    NodeStats {
        active_view: vec!["node-a".into(), "node-b".into()],
        address: "0.0.0.0:8080".into(),
        admin_address: "127.0.0.1:9100".into(),
        bytes_in: 18_230,
        bytes_out: 96_112,
        connections: 2,
        connections_left: draining.then_some(2),
        incarnation: "5d2c0f9e8a7b6c14".into(),
        messages_in: 310,
        messages_out: 1204,
        msgs_in_per_s: 3.0,
        msgs_out_per_s: 6.5,
        name: name.into(),
        rate_limited: 1,
        rooms_left: draining.then_some(0),
        rooms_owned: 1,
        rooms_with_local_members: 1,
        rss_bytes: 24_576_000,
        slow_consumer_closes: 0,
        state: state.into(),
        subscriptions: 2,
        uptime_s: 3600,
        version: "0.1.0".into(),
        webhook_queue: 0,
    }
}

/// `stats.rs` before: one `json!` of 24 keys.
fn stats_by_hand(name: &str, state: &str, draining: bool) -> serde_json::Value {
    let conns: usize = 2;
    json!({
        "name": name,
        "incarnation": "5d2c0f9e8a7b6c14",
        "address": "0.0.0.0:8080",
        "admin_address": "127.0.0.1:9100",
        "state": state,
        "version": "0.1.0",
        "uptime_s": 3600u64,
        "connections": conns,
        "rooms_owned": 1i64,
        "rooms_with_local_members": 1usize,
        "subscriptions": 2usize,
        "messages_in": 310u64,
        "messages_out": 1204u64,
        "msgs_in_per_s": 3.0f64,
        "msgs_out_per_s": 6.5f64,
        "bytes_in": 18_230u64,
        "bytes_out": 96_112u64,
        "slow_consumer_closes": 0u64,
        "rate_limited": 1u64,
        "webhook_queue": 0i64,
        "rss_bytes": 24_576_000u64,
        "active_view": ["node-a", "node-b"],
        "rooms_left": draining.then_some(0usize),
        "connections_left": draining.then_some(conns),
    })
}

#[test]
fn stats_and_cluster_answers_keep_their_shape() {
    let mut by_hand = stats_by_hand("node-a", "active", false);
    by_hand["queue_bytes"] = 5usize.into();
    same(
        StatsResponse {
            node: stats("node-a", "active", false),
            queue_bytes: 5,
        },
        by_hand,
    );
    // A peer's figures travel as text: the same text as before.
    assert_eq!(
        serde_json::to_string(&stats("node-b", "draining", true)).unwrap(),
        stats_by_hand("node-b", "draining", true).to_string()
    );

    let mut peer = stats_by_hand("node-b", "draining", true);
    peer["rtt_us"] = None::<u64>.into();
    peer["reconnects"] = 0u64.into();
    let down = json!({
        "name": "node-c", "incarnation": "9a0e", "cluster_address": "10.0.0.3:7100",
        "address": "0.0.0.0:8080", "state": "down", "reconnects": 1u64,
    });
    let nodes = vec![stats_by_hand("node-a", "active", false), peer, down];
    let missing: Vec<String> = vec!["node-d".into()];
    let by_hand = json!({ "nodes": nodes, "partial": !missing.is_empty(), "missing": missing });
    let typed = ClusterResponse {
        missing: vec!["node-d".into()],
        nodes: vec![
            ClusterNode::Live(LiveNode {
                stats: stats("node-a", "active", false),
                link: None,
            }),
            ClusterNode::Live(LiveNode {
                stats: stats("node-b", "draining", true),
                link: Some(PeerLink {
                    reconnects: 0,
                    rtt_us: None,
                }),
            }),
            ClusterNode::Down(DownNode {
                address: "0.0.0.0:8080".into(),
                cluster_address: "10.0.0.3:7100".into(),
                incarnation: "9a0e".into(),
                name: "node-c".into(),
                reconnects: 1,
                state: "down".into(),
            }),
        ],
        partial: true,
    };
    same(&typed, by_hand.clone());
    // The console reads each kind of entry back as what it is.
    let back: ClusterResponse = serde_json::from_value(by_hand).unwrap();
    assert_eq!(back, typed);
    assert_eq!(back.nodes[0].reconnects(), None);
    assert_eq!(back.nodes[1].reconnects(), Some(0));
    assert_eq!(back.nodes[2].state(), "down");
    assert!(back.nodes[2].stats().is_none());
}

fn summary(id: &str, node: &str) -> ClientSummary {
    ClientSummary {
        id: id.into(),
        user: "u-42".into(),
        node: node.into(),
        conn: 3,
        remote_addr: "203.0.113.7".into(),
        rooms: 2,
        connected_at: 1_717_000_000,
        msgs_in: 12,
        msgs_out: 40,
        queue_bytes: 0,
        rate_limit: RateLimitView {
            msgs_per_sec: 100,
            burst: 200,
            bytes_per_sec: 1_048_576,
        },
        throttled: false,
    }
}

#[test]
fn client_answers_keep_their_shape() {
    let page = vec![summary("c_7", "node-b")];
    let missing: Vec<String> = Vec::new();
    let next: Option<String> = None;
    same(
        ClientsResponse {
            clients: page.clone(),
            missing: Vec::new(),
            next_cursor: None,
            partial: false,
            total: 1,
        },
        json!({
            "clients": page, "total": 1usize, "next_cursor": next,
            "partial": !missing.is_empty(), "missing": missing,
        }),
    );
    // One client: the first connection's fields plus every connection.
    let conns = vec![summary("c_7", "node-a"), summary("c_7", "node-b")];
    let mut by_hand = serde_json::to_value(&conns[0]).unwrap();
    by_hand["connections"] = serde_json::to_value(&conns).unwrap();
    let detail = ClientDetail {
        first: conns[0].clone(),
        connections: conns,
    };
    same(&detail, by_hand.clone());
    assert_eq!(
        serde_json::from_value::<ClientDetail>(by_hand).unwrap(),
        detail
    );
    same(
        KickResponse {
            client: "c_7".into(),
            kicked: 1,
        },
        json!({ "client": "c_7", "kicked": 1usize }),
    );
    same(
        ThrottleResponse {
            burst: 10,
            bytes_per_sec: 65_536,
            client: "c_7".into(),
            connections: 1,
            msgs_per_sec: 5,
        },
        json!({
            "client": "c_7", "connections": 1usize,
            "msgs_per_sec": 5u32, "burst": 10u32, "bytes_per_sec": 65_536u64
        }),
    );
    same(
        UnthrottleResponse {
            client: "c_7".into(),
            connections: 1,
        },
        json!({ "client": "c_7", "connections": 1usize }),
    );
}

fn room() -> RoomInfo {
    RoomInfo {
        name: "chat:lobby".into(),
        owner: "node-b".into(),
        members: 17,
        nodes: vec!["node-a".into(), "node-b".into()],
        seq: 58,
        epoch: "3f9a1c07".into(),
        history_len: 58,
        has_snapshot: false,
        msgs_per_s: 4.0,
        backup: Some("node-c".into()),
    }
}

#[test]
fn room_answers_keep_their_shape() {
    let rooms = vec![room()];
    let missing: Vec<String> = vec!["node-d".into()];
    let next = Some("chat:lobby".to_owned());
    same(
        RoomsResponse {
            missing: missing.clone(),
            next_cursor: next.clone(),
            partial: true,
            rooms: rooms.clone(),
            total: 3,
        },
        json!({
            "rooms": rooms, "total": 3usize, "next_cursor": next,
            "partial": !missing.is_empty(), "missing": missing
        }),
    );
    // One room: its fields, a page of members in place of their number, and its instances.
    let members = vec![Member {
        client: "c_7".into(),
        user: "u-42".into(),
        node: "node-a".into(),
    }];
    let mut by_hand = serde_json::to_value(room()).unwrap();
    by_hand["members"] = json!(members);
    by_hand["members_total"] = json!(17usize);
    by_hand["next_cursor"] = json!(Some("c_7"));
    by_hand["instances"] =
        serde_json::Value::Array(vec![json!({"node": "node-b", "epoch": "3f9a1c07"})]);
    let detail = RoomDetail::new(
        room(),
        members,
        Some("c_7".into()),
        vec![RoomInstance {
            epoch: "3f9a1c07".into(),
            node: "node-b".into(),
        }],
    );
    same(&detail, by_hand.clone());
    assert_eq!(
        serde_json::from_value::<RoomDetail>(by_hand).unwrap(),
        detail
    );
    same(
        MigrateResponse {
            epoch: "3f9a1c07".into(),
            from: "node-b".into(),
            room: "chat:lobby".into(),
            seq: 58,
            to: "node-c".into(),
        },
        json!({
            "room": "chat:lobby", "from": "node-b", "to": "node-c", "seq": 58u64,
            "epoch": "3f9a1c07"
        }),
    );
    same(
        NodeCommandResponse {
            node: "node-b".into(),
            state: "draining".into(),
        },
        json!({ "node": "node-b", "state": "draining" }),
    );
}

#[test]
fn inter_node_types_keep_their_field_order() {
    assert_eq!(
        serde_json::to_string(&room()).unwrap(),
        r#"{"name":"chat:lobby","owner":"node-b","members":17,"nodes":["node-a","node-b"],"seq":58,"epoch":"3f9a1c07","history_len":58,"has_snapshot":false,"msgs_per_s":4.0,"backup":"node-c"}"#
    );
    assert_eq!(
        serde_json::to_string(&summary("c_1", "node-a")).unwrap(),
        r#"{"id":"c_1","user":"u-42","node":"node-a","conn":3,"remote_addr":"203.0.113.7","rooms":2,"connected_at":1717000000,"msgs_in":12,"msgs_out":40,"queue_bytes":0,"rate_limit":{"msgs_per_sec":100,"burst":200,"bytes_per_sec":1048576},"throttled":false}"#
    );
    // A room from an older peer, without a rate or a backup.
    let older = r#"{"name":"r","owner":"a","members":1,"nodes":[],"seq":1,"epoch":"e","history_len":0,"has_snapshot":false}"#;
    let r: RoomInfo = serde_json::from_str(older).unwrap();
    assert_eq!((r.msgs_per_s, r.backup), (0.0, None));
}

#[test]
fn the_event_stream_keeps_its_shape() {
    // Events were written as a struct (stamp first), hello and lagged with `json!`.
    let record = EventRecord {
        observed_by: "node-a".into(),
        at_ms: 1_795_459_100_123,
        event: Event::RoomCreated {
            room: "chat:lobby".into(),
            epoch: "e25ec9c5".into(),
            restored: false,
        },
    };
    let text = serde_json::to_string(&record).unwrap();
    assert_eq!(
        text,
        r#"{"observed_by":"node-a","at_ms":1795459100123,"type":"room_created","room":"chat:lobby","epoch":"e25ec9c5","restored":false}"#
    );
    let hello = Control::Hello {
        observed_by: "node-a".into(),
        state: "active".into(),
    };
    same(
        &hello,
        json!({"type": "hello", "observed_by": "node-a", "state": "active"}),
    );
    same(
        Control::Lagged { missed: 7 },
        json!({"type": "lagged", "missed": 7u64}),
    );
    // The console reads each frame as what it is.
    let read = |t: &str| serde_json::from_str::<StreamFrame>(t).unwrap();
    assert_eq!(read(&text), StreamFrame::Event(record));
    assert_eq!(
        read(r#"{"observed_by":"node-a","state":"active","type":"hello"}"#),
        StreamFrame::Control(hello)
    );
    assert_eq!(
        read(r#"{"missed":7,"type":"lagged"}"#),
        StreamFrame::Control(Control::Lagged { missed: 7 })
    );
    // A kind this build does not know is not a frame it knows, but still names its type.
    let newer = r#"{"observed_by":"node-b","at_ms":1,"type":"room_renamed","room":"r"}"#;
    assert!(serde_json::from_str::<StreamFrame>(newer).is_err());
    let head: UnknownFrame = serde_json::from_str(newer).unwrap();
    assert_eq!(
        (head.kind.as_str(), head.observed_by.as_deref()),
        ("room_renamed", Some("node-b"))
    );
}

#[test]
fn requests_read_as_the_contract_says() {
    // An empty kick body is allowed, as is a body without a reason.
    assert_eq!(
        serde_json::from_str::<KickRequest>("{}").unwrap(),
        KickRequest::default()
    );
    assert_eq!(
        serde_json::to_string(&KickRequest {
            reason: Some("spam".into())
        })
        .unwrap(),
        r#"{"reason":"spam"}"#
    );
    // Throttle and migrate refuse unknown fields; `bytes_per_sec` is optional.
    let t: ThrottleRequest = serde_json::from_str(r#"{"msgs_per_sec":5,"burst":10}"#).unwrap();
    assert_eq!(t.bytes_per_sec, None);
    assert_eq!(
        serde_json::to_string(&t).unwrap(),
        r#"{"msgs_per_sec":5,"burst":10}"#
    );
    assert!(
        serde_json::from_str::<ThrottleRequest>(r#"{"msgs_per_sec":5,"burst":10,"colour":1}"#)
            .is_err()
    );
    assert!(serde_json::from_str::<MigrateRequest>(r#"{"to":"b","from":"a"}"#).is_err());
    let e: ErrorBody =
        serde_json::from_str(r#"{"error":{"code":"not_found","message":"no such client"}}"#)
            .unwrap();
    assert_eq!(e.error.code, crate::codes::ErrorCode::NotFound);
}

#[test]
fn list_queries_and_their_columns() {
    assert_eq!(
        CLIENT_SORTS,
        [
            "id",
            "user",
            "node",
            "msgs_in",
            "msgs_out",
            "queue_bytes",
            "connected_at"
        ]
    );
    assert_eq!(ROOM_SORTS, ["name", "members", "msgs_per_s", "owner"]);
    assert_eq!((page_limit(None), page_limit(Some(0))), (DEFAULT_PAGE, 1));
    assert_eq!(page_limit(Some(5000)), MAX_PAGE);
    let q = ListQuery {
        limit: Some(10),
        sort: Some(ClientSort::MsgsIn.as_str().into()),
        q: Some("u-4 2&".into()),
        cursor: Some("c_1#node-a#3".into()),
        ..ListQuery::default()
    };
    assert_eq!(
        q.query_string(),
        "?limit=10&sort=msgs_in&q=u-4%202%26&cursor=c_1%23node-a%233"
    );
    assert_eq!(ListQuery::default().query_string(), "");
    assert_eq!(percent_encode("a b/c:d"), "a%20b%2Fc:d");
}

#[test]
fn room_operations_read_and_write_as_the_contract_says() {
    // A publish's body: the message as JSON text, never re-parsed; unknown fields refused.
    let p: PublishRequest = serde_json::from_str(r#"{"data":{"text":"hi", "n":1}}"#).unwrap();
    assert_eq!(p.data.get(), r#"{"text":"hi", "n":1}"#);
    assert!(!p.data.is_null());
    assert!(serde_json::from_str::<PublishRequest>(r#"{"data":1,"as":"x"}"#).is_err());
    assert!(serde_json::from_str::<PublishRequest>("{}").is_err());
    assert!(serde_json::from_str::<PublishRequest>(r#"{"data":null}"#)
        .unwrap()
        .data
        .is_null());
    assert_eq!(RawJson::parse(" [1, 2] ").unwrap().get(), "[1, 2]");
    assert!(RawJson::parse("hello").is_err());
    assert_eq!(RawJson::string("say \"hi\"").get(), r#""say \"hi\"""#);
    same(
        PublishResponse {
            epoch: "3f9a1c07".into(),
            room: "chat:lobby".into(),
            seq: 59,
        },
        json!({"epoch": "3f9a1c07", "room": "chat:lobby", "seq": 59}),
    );
    // A history entry reads from a stored `message` frame, and is written with sorted keys.
    let frame = r#"{"op":"message","room":"chat:lobby","seq":58,"epoch":"3f9a1c07","from":{"client":"c_7","user":"u-42"},"data":{"text":"hi"}}"#;
    let mut m: HistoryMessage = serde_json::from_str(frame).unwrap();
    assert_eq!(m.seq, 58);
    assert_eq!(m.from.user.as_deref(), Some("u-42"));
    m.published_ms = 1_795_459_100_123;
    let backend: HistoryMessage = serde_json::from_str(
        r#"{"op":"message","room":"r","seq":59,"epoch":"e","from":{"backend":true},"data":"x"}"#,
    )
    .unwrap();
    assert!(backend.from.backend && backend.from.client.is_none());
    let page = HistoryResponse {
        epoch: "3f9a1c07".into(),
        messages: vec![backend, m],
        next_cursor: Some(history_cursor("3f9a1c07", 58)),
        room: "chat:lobby".into(),
        seq: 59,
    };
    let text = to_value(&page).to_string();
    assert_eq!(
        text,
        r#"{"epoch":"3f9a1c07","messages":[{"data":"x","from":{"backend":true},"published_ms":0,"seq":59},{"data":{"text":"hi"},"from":{"client":"c_7","user":"u-42"},"published_ms":1795459100123,"seq":58}],"next_cursor":"3f9a1c07:58","room":"chat:lobby","seq":59}"#
    );
    assert_eq!(
        serde_json::from_str::<HistoryResponse>(&text).unwrap(),
        page
    );
    assert_eq!(parse_history_cursor("3f9a1c07:58"), Some(("3f9a1c07", 58)));
    assert_eq!(parse_history_cursor("58"), None);
    assert_eq!(parse_history_cursor("e:x"), None);
    same(
        PresenceResponse {
            members: vec![Member {
                client: "c_7".into(),
                user: "u-42".into(),
                node: "node-a".into(),
            }],
            next_cursor: None,
            room: "chat:lobby".into(),
            total: 1,
        },
        json!({
            "members": [{"client": "c_7", "node": "node-a", "user": "u-42"}],
            "next_cursor": null, "room": "chat:lobby", "total": 1
        }),
    );
    // Join and leave: `{"room":…}`, nothing else.
    let r: RoomRequest = serde_json::from_str(r#"{"room":"chat:lobby"}"#).unwrap();
    assert_eq!(r.room, "chat:lobby");
    assert!(serde_json::from_str::<RoomRequest>(r#"{"room":"a","rooms":[]}"#).is_err());
    same(
        JoinResponse {
            already_joined: 0,
            client: "c_7".into(),
            joined: 1,
            room: "chat:lobby".into(),
        },
        json!({"already_joined": 0, "client": "c_7", "joined": 1, "room": "chat:lobby"}),
    );
    same(
        LeaveResponse {
            client: "c_7".into(),
            left: 1,
            room: "chat:lobby".into(),
        },
        json!({"client": "c_7", "left": 1, "room": "chat:lobby"}),
    );
    // The operator's actions in the event stream.
    let joined = EventRecord {
        observed_by: "node-a".into(),
        at_ms: 1,
        event: Event::ClientJoined {
            client: "c_7".into(),
            room: "chat:lobby".into(),
        },
    };
    assert_eq!(
        serde_json::to_string(&joined).unwrap(),
        r#"{"observed_by":"node-a","at_ms":1,"type":"client_joined","client":"c_7","room":"chat:lobby"}"#
    );
    let published =
        r#"{"observed_by":"node-a","at_ms":1,"type":"room_published","room":"r","seq":3}"#;
    assert_eq!(
        serde_json::from_str::<StreamFrame>(published).unwrap(),
        StreamFrame::Event(EventRecord {
            observed_by: "node-a".into(),
            at_ms: 1,
            event: Event::RoomPublished {
                room: "r".into(),
                seq: 3
            },
        })
    );
}
