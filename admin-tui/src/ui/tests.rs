//! Rendering tests: fixed states drawn into a `TestBackend` at 80×24.
#![allow(clippy::unwrap_used)]

use crate::action::{Action, View};
use crate::app::App;
use crate::client::Focus;
use crate::client::RoomPane;
use crate::event::NetEvent;
use crate::model::*;
use protocol::admin::{
    ClientDetail, ClientSummary, ClientsResponse, ClusterNode, ClusterResponse, HistoryMessage,
    HistoryResponse, LiveNode, Member, MessageFrom, NodeStats, PresenceResponse, RawJson,
    RoomDetail, RoomInfo, RoomsResponse,
};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

pub(crate) fn fixture() -> App {
    let mut app = App::new("http://127.0.0.1:9701");
    let node = |name: &str, state: &str, conns: u64| {
        ClusterNode::Live(LiveNode {
            stats: NodeStats {
                name: name.into(),
                state: state.into(),
                admin_address: format!("127.0.0.1:97{}", &name[5..]),
                connections: conns,
                rooms_owned: 1,
                msgs_in_per_s: 3.0,
                msgs_out_per_s: 6.0,
                rss_bytes: 24_576_000,
                uptime_s: 3600,
                version: "0.1.0".into(),
                rooms_left: (state == "draining").then_some(2),
                connections_left: (state == "draining").then_some(41),
                ..Default::default()
            },
            link: None,
        })
    };
    let client = |id: &str, user: &str, node: &str| ClientSummary {
        id: id.into(),
        user: user.into(),
        node: node.into(),
        remote_addr: "203.0.113.7".into(),
        rooms: 2,
        msgs_in: 12,
        msgs_out: 40,
        ..Default::default()
    };
    app.on_net(NetEvent::Snapshot(Box::new(Snapshot {
        node_url: "http://127.0.0.1:9701".into(),
        cluster: ClusterResponse {
            nodes: vec![
                node("node-b", "draining", 41),
                node("node-a", "active", 2),
                node("node-c", "active", 0),
            ],
            missing: vec![],
            partial: false,
        },
        rooms: Some(Answer {
            query: app.rooms.list.query(),
            page: RoomsResponse {
                rooms: vec![
                    RoomInfo {
                        name: "chat:lobby".into(),
                        owner: "node-b".into(),
                        members: 17,
                        nodes: vec!["node-a".into(), "node-b".into()],
                        msgs_per_s: 4.0,
                        seq: 58,
                        epoch: "3f9a1c07".into(),
                        history_len: 58,
                        ..Default::default()
                    },
                    RoomInfo {
                        name: "board:7".into(),
                        owner: "node-a".into(),
                        members: 3,
                        nodes: vec!["node-a".into()],
                        seq: 120,
                        epoch: "77aa0011".into(),
                        ..Default::default()
                    },
                ],
                total: 2,
                ..Default::default()
            },
        }),
        clients: Some(Answer {
            query: app.clients.list.query(),
            page: ClientsResponse {
                clients: vec![
                    client("c_7HqK2mX9pL4vR1sT", "u-42", "node-b"),
                    client("c_1aBcDeFgHiJkLmNo", "u-7", "node-a"),
                ],
                total: 2,
                ..Default::default()
            },
        }),
        detail: None,
        errors: vec![],
        taken_ms: 0,
    })));
    app
}

/// What the network task is asked to fetch for the open drill-down: the room's name or the
/// client's id.
fn drill(app: &App) -> Option<String> {
    match app.wanted_focus()? {
        Focus::Room { name, .. } => Some(name),
        Focus::Client(id) => Some(id),
    }
}

/// A poll that answers the open room with `detail` and the page of its pane on screen.
fn room_poll(app: &App, detail: RoomDetail, page: Option<RoomPage>, taken_ms: u64) -> NetEvent {
    NetEvent::Snapshot(Box::new(Snapshot {
        node_url: app.node_url.clone(),
        cluster: app.cluster.cluster.clone(),
        detail: Some(Detail::Room(Box::new(detail), page)),
        taken_ms,
        ..Default::default()
    }))
}

/// The page of members the open room asks for, answered with `members`.
fn members_page(app: &App, members: Vec<Member>, total: usize) -> RoomPage {
    let drill = app.rooms.drill.as_ref().unwrap();
    RoomPage::Members(Answer {
        query: drill.members.query(),
        page: PresenceResponse {
            members,
            next_cursor: None,
            room: drill.name.clone(),
            total,
        },
    })
}

pub(crate) fn screen(app: &App) -> String {
    screen_sized(app, 80, 24)
}

pub(crate) fn screen_sized(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| super::render(app, f)).unwrap();
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

#[test]
fn cluster_view() {
    let app = fixture();
    let s = screen(&app);
    for want in [
        "1 Cluster",
        "NAME",
        "STATE",
        "node-a",
        "node-b",
        "node-c",
        "draining",
        "2r/41c",
        "0.1.0",
        "23.4M",
        "1h00m",
        "127.0.0.1:9701",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    // Sorted by name: node-a above node-b.
    assert!(s.find("node-a").unwrap() < s.find("node-b").unwrap());
}

#[test]
fn rooms_view_and_detail() {
    let mut app = fixture();
    app.update(Action::Show(View::Rooms));
    let s = screen(&app);
    for want in [
        "chat:lobby",
        "board:7",
        "OWNER",
        "node-b",
        "58/3f9a1c07",
        "17",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    app.update(Action::Open);
    assert_eq!(drill(&app).as_deref(), Some("board:7"));
    let detail = RoomDetail {
        name: "board:7".into(),
        owner: "node-a".into(),
        members_total: 1,
        seq: 120,
        epoch: "77aa0011".into(),
        ..Default::default()
    };
    let member = Member {
        client: "c_7HqK2mX9pL4vR1sT".into(),
        user: "u-42".into(),
        node: "node-b".into(),
    };
    let page = members_page(&app, vec![member], 1);
    app.on_net(room_poll(&app, detail, Some(page), 0));
    let s = screen(&app);
    for want in [
        "room board:7",
        "members 1-1 of 1",
        "c_7HqK2mX9pL4vR1sT",
        "u-42",
        "epoch 77aa0011",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
}

#[test]
fn clients_view_and_detail() {
    let mut app = fixture();
    app.update(Action::Show(View::Clients));
    let s = screen(&app);
    for want in [
        "c_1aBcDeFgHiJkLmNo",
        "c_7HqK2mX9pL4vR1sT",
        "u-42",
        "203.0.113.7",
        "QUEUE",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    app.update(Action::Open);
    let connections = app.clients.list.rows[1..].to_vec();
    app.clients.drill.as_mut().unwrap().detail = Some(ClientDetail {
        first: connections[0].clone(),
        connections,
    });
    let s = screen(&app);
    for want in [
        "client c_1aBcDeFgHiJkLmNo",
        "connections 1",
        "node-a",
        "default",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
}

#[test]
fn events_view() {
    let mut app = fixture();
    app.update(Action::Show(View::Events));
    let s = screen(&app);
    for want in ["4 Events", "node stream + polls", "first answer from"] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
}

#[test]
fn help_prompt_and_confirm_render() {
    let mut app = fixture();
    app.update(Action::ToggleHelp);
    assert!(screen(&app).contains("throttle (msgs/s"));
    app.update(Action::ToggleHelp);
    app.update(Action::Show(View::Clients));
    app.update(Action::Kick);
    for c in "spam".chars() {
        app.update(Action::Input(c));
    }
    assert!(screen(&app).contains("reason: spam"));
    app.update(Action::Submit);
    assert!(screen(&app).contains("y to confirm"));
}

/// The fixture after `n` polls a second apart in which every node's msgs/s in is `rate(i)` and
/// out is twice that.
fn with_history(n: u64, rate: impl Fn(u64) -> f64) -> App {
    let mut app = fixture();
    let mut s = Snapshot {
        node_url: app.node_url.clone(),
        cluster: app.cluster.cluster.clone(),
        ..Default::default()
    };
    for i in 0..n {
        for node in s.cluster.nodes.iter_mut() {
            let ClusterNode::Live(node) = node else {
                continue;
            };
            node.stats.msgs_in_per_s = rate(i);
            node.stats.msgs_out_per_s = rate(i) * 2.0;
        }
        s.taken_ms = 1_000_000 + i * 1000;
        app.apply_snapshot(s.clone());
    }
    app
}

#[test]
fn cluster_view_draws_rate_sparklines_newest_on_the_right() {
    // Quiet for 90 s, then 9 msgs/s in (18 out) for the last 10 s.
    let app = with_history(100, |i| if i >= 90 { 9.0 } else { 0.0 });
    let s = screen(&app);
    assert!(s.contains("msgs/s in · out, last 101s"), "{s}");
    let lines: Vec<Vec<char>> = s.lines().map(|l| l.chars().collect()).collect();
    let top = lines
        .iter()
        .position(|l| l.iter().collect::<String>().starts_with("│node-a in "))
        .unwrap_or_else(|| panic!("no band for node-a in\n{s}"));
    let text: String = lines[top].iter().collect();
    assert!(text.contains("9.0") && text.contains("18.0"), "{text}");
    // The band's bottom row: inside the border, the name (7 columns), then the in half (35:
    // label 10, sparkline 25), a gap, the out half.
    let bottom = &lines[top + 2];
    let spark_in: String = bottom[1 + 7 + 10..1 + 7 + 35].iter().collect();
    assert_eq!(spark_in.chars().filter(|c| *c != ' ').count(), 10, "{s}");
    assert!(
        spark_in.ends_with('█'),
        "the newest sample is on the right: {spark_in:?}"
    );
    assert!(spark_in.starts_with(' '), "{spark_in:?}");
}

#[test]
fn larger_terminals_get_longer_and_taller_sparklines() {
    let app = with_history(200, |i| (i % 10) as f64 + 1.0);
    let bars = |s: &str| s.chars().filter(|c| "▁▂▃▄▅▆▇█".contains(*c)).count();
    let small = screen(&app);
    let large = screen_sized(&app, 160, 48);
    assert!(bars(&small) > 100, "{small}");
    assert!(
        bars(&large) > 3 * bars(&small),
        "{} vs {}\n{large}",
        bars(&large),
        bars(&small)
    );
    // Every column of the table is still there at 80 columns.
    for want in [
        "NAME", "STATE", "CONN", "ROOMS", "IN/s", "OUT/s", "RSS", "UP", "VER", "LEFT",
    ] {
        assert!(small.contains(want), "missing {want:?} in\n{small}");
    }
}

#[test]
fn paged_lists_say_where_they_are_and_what_is_missing() {
    let mut app = fixture();
    app.update(Action::Show(View::Clients));
    let s = screen(&app);
    assert!(s.contains("Clients 1-2 of 2 · sort id "), "{s}");
    // A second page of a long list, from a cluster with a node that did not answer.
    app.clients.list.paging.next = Some("c_7HqK2mX9pL4vR1sT#node-b#3".into());
    app.update(Action::PageDown);
    assert!(screen(&app).contains("loading…"));
    let mut rooms_and_clients = Snapshot {
        node_url: app.node_url.clone(),
        cluster: app.cluster.cluster.clone(),
        clients: Some(Answer {
            query: app.clients.list.query(),
            page: ClientsResponse {
                clients: app.clients.list.rows.clone(),
                total: 100_000,
                next_cursor: Some("next".into()),
                missing: vec!["node-c".into()],
                partial: true,
            },
        }),
        ..Default::default()
    };
    app.on_net(NetEvent::Snapshot(Box::new(rooms_and_clients.clone())));
    let s = screen(&app);
    assert!(
        s.contains("Clients 3-4 of 100000 · sort id · p2 · PARTIAL, missing node-c"),
        "{s}"
    );
    app.update(Action::Show(View::Rooms));
    rooms_and_clients.clients = None;
    rooms_and_clients.rooms = Some(Answer {
        query: app.rooms.list.query(),
        page: RoomsResponse {
            rooms: app.rooms.list.rows.clone(),
            total: 2,
            missing: vec!["node-b".into()],
            ..Default::default()
        },
    });
    app.on_net(NetEvent::Snapshot(Box::new(rooms_and_clients)));
    assert!(screen(&app).contains("Rooms 1-2 of 2 · sort name · PARTIAL, missing node-b"));
}

#[test]
fn room_drill_down_shows_its_live_rate() {
    let mut app = fixture();
    app.update(Action::Show(View::Rooms));
    app.update(Action::Down);
    app.update(Action::Open);
    assert_eq!(drill(&app).as_deref(), Some("chat:lobby"));
    for (i, rate) in [1.0, 2.0, 4.0, 8.0].into_iter().enumerate() {
        let detail = RoomDetail {
            name: "chat:lobby".into(),
            owner: "node-b".into(),
            msgs_per_s: rate,
            members_total: 17,
            ..Default::default()
        };
        app.on_net(room_poll(&app, detail, None, 5_000 + i as u64 * 1000));
    }
    assert_eq!(app.rooms.drill.as_ref().unwrap().rate, [1, 2, 4, 8]);
    let s = screen(&app);
    assert!(s.contains("msgs/s 8.0"), "{s}");
    let spark = s
        .lines()
        .find(|l| l.contains('█'))
        .unwrap_or_else(|| panic!("no sparkline in\n{s}"));
    assert!(
        spark.trim_end_matches(['│', ' ']).ends_with("▁▂▄█"),
        "{spark}"
    );
}

/// The open room's history pane answered with `messages` (newest first) and `next`.
fn history_page(app: &App, messages: Vec<HistoryMessage>, next: Option<&str>) -> RoomPage {
    let drill = app.rooms.drill.as_ref().unwrap();
    RoomPage::History(Answer {
        query: drill.history.query(),
        page: HistoryResponse {
            epoch: "3f9a1c07".into(),
            messages,
            next_cursor: next.map(str::to_owned),
            room: drill.name.clone(),
            seq: 58,
        },
    })
}

fn message(seq: u64, from: MessageFrom, data: &str) -> HistoryMessage {
    HistoryMessage {
        data: RawJson::parse(data).unwrap(),
        from,
        published_ms: 1_795_459_100_123,
        seq,
    }
}

#[test]
fn a_rooms_history_pane_pages_newest_first() {
    let mut app = fixture();
    app.set_page_size(18);
    app.update(Action::Show(View::Rooms));
    app.update(Action::Down);
    // `h` on a room of the list opens it on its history, a screenful less the room's figures.
    app.update(Action::History);
    let Some(Focus::Room {
        name,
        pane: RoomPane::History(q),
    }) = app.wanted_focus()
    else {
        panic!("{:?}", app.wanted_focus())
    };
    assert_eq!(name, "chat:lobby");
    assert_eq!(q.query_string(), "?limit=13", "a fixed order sends no sort");
    let detail = RoomDetail {
        name: "chat:lobby".into(),
        owner: "node-b".into(),
        history_len: 58,
        seq: 58,
        ..Default::default()
    };
    let backend = MessageFrom {
        backend: true,
        ..Default::default()
    };
    let client = MessageFrom {
        client: Some("c_7HqK2mX9pL4vR1sT".into()),
        user: Some("anon-k1x6YUbSOhP".into()),
        ..Default::default()
    };
    let long = format!(r#"{{"text":"{}"}}"#, "la".repeat(40));
    let page = history_page(
        &app,
        vec![
            message(58, backend, r#"{"note":"at 18:00"}"#),
            message(57, client, &long),
        ],
        Some("3f9a1c07:57"),
    );
    app.on_net(room_poll(&app, detail.clone(), Some(page), 0));
    let s = screen(&app);
    for want in [
        "history 1-2 of 58 · sort newest first",
        "SEQ",
        "DATA",
        "backend",
        r#"{"note":"at 18:00"}"#,
        // Ids and users whole at 80 columns; the payload is what gives way, in its middle.
        "c_7HqK2mX9pL4vR1sT",
        "anon-k1x6YUbSOhP",
        r#"{"text":"lala"#,
        r#"lala"}"#,
        "…",
        "18:38:20",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    // Wider, nothing is cut.
    assert!(screen_sized(&app, 160, 48).contains(&long));
    // PgDn asks for the older page; `h` again turns to the members.
    app.update(Action::PageDown);
    match app.wanted_focus() {
        Some(Focus::Room {
            pane: RoomPane::History(q),
            ..
        }) => assert_eq!(q.cursor.as_deref(), Some("3f9a1c07:57")),
        f => panic!("{f:?}"),
    }
    app.update(Action::History);
    assert!(matches!(
        app.wanted_focus(),
        Some(Focus::Room {
            pane: RoomPane::Members(_),
            ..
        })
    ));
}

#[test]
fn tables_keep_ids_and_users_whole_at_80_columns_and_cut_them_in_the_middle_when_they_must() {
    let mut app = fixture();
    app.update(Action::Show(View::Clients));
    let client = |id: &str, user: &str, addr: &str| ClientSummary {
        id: id.into(),
        user: user.into(),
        node: "node-b".into(),
        remote_addr: addr.into(),
        rooms: 1,
        ..Default::default()
    };
    let rows = vec![
        client("c_ewakeayHpKwsPsSV", "anon-1iWyBQiThe8", "127.0.0.8"),
        client(
            "c_m3Jp6Oyo53tyokKF",
            "anon-NcdQ0eW1rLz",
            "2001:db8::8a2e:370:7334",
        ),
    ];
    app.apply_snapshot(Snapshot {
        node_url: app.node_url.clone(),
        cluster: app.cluster.cluster.clone(),
        clients: Some(Answer {
            query: app.clients.list.query(),
            page: ClientsResponse {
                clients: rows,
                total: 2,
                ..Default::default()
            },
        }),
        ..Default::default()
    });
    let s = screen(&app);
    for want in [
        "c_ewakeayHpKwsPsSV",
        "anon-1iWyBQiThe8",
        "c_m3Jp6Oyo53tyokKF",
        "anon-NcdQ0eW1rLz",
        "THR",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    // The IPv6 address is what gives way at 80 columns, in its middle; at 160 it is whole.
    assert!(!s.contains("2001:db8::8a2e:370:7334"), "{s}");
    assert!(s.contains("2001:…7334"), "{s}");
    assert!(screen_sized(&app, 160, 48).contains("2001:db8::8a2e:370:7334"));
    // In 50 columns the ids give way last, in their middle.
    let narrow = screen_sized(&app, 50, 24);
    assert!(narrow.contains("c_ew…sSV"), "{narrow}");
    assert!(!narrow.contains("c_ewakeayHpKwsPsSV"), "{narrow}");
    assert!(narrow.contains("…"), "{narrow}");
}
